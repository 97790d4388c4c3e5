//! Verification: the harness runs a feature's check in the sandbox (frozen files restored
//! before and after), records the verdict, and re-runs passing checks at a session's end.

use super::features::Feature;
use super::{state, tail_chars, RunContext, RunError, CHECK_OUTPUT_CHARS};
use crate::events::EventKind;
use std::collections::BTreeSet;

/// The result of running one feature's check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The test runner reported that it found no tests (`Ran 0 tests`, `no tests ran`...):
    /// never a pass, whatever the exit code.
    pub ran_no_tests: bool,
    /// The end of the check's stdout and stderr.
    pub output: String,
}

impl CheckResult {
    pub(super) fn describe_exit(&self) -> String {
        match (self.timed_out, self.exit_code) {
            (true, _) => "timed out".into(),
            (false, Some(0)) if self.ran_no_tests => "exited 0 but ran no tests".into(),
            (false, Some(c)) => format!("exited {c}"),
            (false, None) => "was killed by a signal".into(),
        }
    }
}

impl RunContext<'_> {
    pub(super) async fn run_check(
        &self,
        session: &str,
        feature: &Feature,
    ) -> Result<CheckResult, RunError> {
        self.run_check_in(self.toolbox, session, feature).await
    }

    /// [`Self::run_check`] with the tools of a copy of the project (a worker's).
    pub(super) async fn run_check_in(
        &self,
        toolbox: &tools::Toolbox,
        session: &str,
        feature: &Feature,
    ) -> Result<CheckResult, RunError> {
        let frozen = toolbox.frozen();
        self.report_restored(session, &frozen.verify_and_restore().restored);
        let out = toolbox
            .sandbox()
            .run(&feature.check, self.cfg.check_timeout)
            .await?;
        self.report_restored(session, &frozen.verify_and_restore().restored);
        let exited_zero = out.exit_code == Some(0) && !out.timed_out;
        let mut output = String::new();
        if !out.stdout.trim().is_empty() {
            output.push_str("stdout:\n");
            output.push_str(&tail_chars(&out.stdout, CHECK_OUTPUT_CHARS / 2));
            output.push('\n');
        }
        if !out.stderr.trim().is_empty() {
            output.push_str("stderr:\n");
            output.push_str(&tail_chars(&out.stderr, CHECK_OUTPUT_CHARS / 2));
            output.push('\n');
        }
        let ran_no_tests = ran_no_tests(&out.stdout) || ran_no_tests(&out.stderr);
        if ran_no_tests {
            output.push_str(
                "[harness] the check ran no tests (its output says so), so it cannot pass\n",
            );
        }
        Ok(CheckResult {
            passed: exited_zero && !ran_no_tests,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            ran_no_tests,
            output,
        })
    }

    /// `verify_feature`: runs the check and records the verdict.
    pub(crate) async fn verify(
        &self,
        feature: &Feature,
        session: u32,
    ) -> Result<CheckResult, RunError> {
        let session_id = state::session_id(session);
        let result = self.run_check(&session_id, feature).await?;
        {
            let mut s = self.lock();
            let st = s.status.entry(feature.id.clone()).or_default();
            st.last_checked_in = Some(session);
            if result.passed {
                st.passes = true;
                // Recorded as passing once the session's work is committed.
                st.uncommitted = true;
                st.verified_in.get_or_insert(session);
            } else {
                st.passes = false;
            }
        }
        self.save()?;
        self.write_feature_list()?;
        let (passing, total) = {
            let s = self.lock();
            (s.verified_passing(), s.features.len())
        };
        self.emit(
            &session_id,
            EventKind::FeatureVerified {
                id: feature.id.clone(),
                passed: result.passed,
                exit_code: result.exit_code,
                passing,
                total,
            },
        );
        Ok(result)
    }

    /// Re-runs every passing check; a failure flips the feature back. Returns the regressions.
    pub(super) async fn recheck_passing(&self, session: u32) -> Result<Vec<String>, RunError> {
        let session_id = state::session_id(session);
        let passing: Vec<Feature> = {
            let s = self.lock();
            s.features
                .iter()
                .filter(|f| s.status.get(&f.id).is_some_and(|st| st.passes))
                .cloned()
                .collect()
        };
        let mut regressions = Vec::new();
        for f in passing {
            let result = self.run_check(&session_id, &f).await?;
            let mut s = self.lock();
            let st = s.status.entry(f.id.clone()).or_default();
            st.last_checked_in = Some(session);
            if !result.passed {
                st.passes = false;
                st.regressions += 1;
                regressions.push(f.id.clone());
                drop(s);
                let (passing, total) = self.tally();
                self.emit(
                    &session_id,
                    EventKind::FeatureRegressed {
                        id: f.id.clone(),
                        exit_code: result.exit_code,
                        output: tail_chars(&result.output, 1000),
                        passing,
                        total,
                    },
                );
            }
        }
        self.save()?;
        self.write_feature_list()?;
        Ok(regressions)
    }

    pub(super) fn passing_ids(&self) -> BTreeSet<String> {
        let s = self.lock();
        s.status
            .iter()
            .filter(|(_, st)| st.passes)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// Whether a test runner's output says it ran no tests: Python's unittest (`Ran 0 tests`, `NO
/// TESTS RAN`), pytest (`collected 0 items`, `no tests ran`), Jest (`No tests found`), Go (`no
/// test files`), node's test runner (`# tests 0`), mocha (`0 passing`), cargo (every `running
/// N tests` with N = 0).
pub fn ran_no_tests(output: &str) -> bool {
    let mut cargo_counts = Vec::new();
    for line in output.lines() {
        let t = line.trim();
        if t.starts_with("Ran 0 tests")
            || t.contains("NO TESTS RAN")
            || t.contains("collected 0 items")
            || t.contains("no tests ran")
            || t.starts_with("No tests found")
            || t.contains("[no test files]")
            || t == "# tests 0"
            || t.starts_with("0 passing")
        {
            return true;
        }
        if let Some(rest) = t.strip_prefix("running ") {
            if let Some(n) = rest
                .strip_suffix(" tests")
                .or_else(|| rest.strip_suffix(" test"))
            {
                if let Ok(n) = n.parse::<u64>() {
                    cargo_counts.push(n);
                }
            }
        }
    }
    !cargo_counts.is_empty() && cargo_counts.iter().all(|n| *n == 0)
}

#[cfg(test)]
mod tests {
    use super::ran_no_tests;

    #[test]
    fn zero_test_runs_are_recognised_and_real_runs_are_not() {
        for none in [
            "\n----------------------------------------------------------------------\nRan 0 tests in 0.000s\n\nOK\n",
            "============================ no tests ran in 0.01s =============================",
            "collected 0 items\n",
            "running 0 tests\ntest result: ok. 0 passed\n\nrunning 0 tests\n",
            "# tests 0\n# pass 0\n",
            "?   \texample.com/app\t[no test files]",
        ] {
            assert!(ran_no_tests(none), "{none}");
        }
        for some in [
            "Ran 10 tests in 0.1s\n\nOK",
            "collected 20 items\n",
            "running 3 tests\n...\nrunning 0 tests\n",
            "10 passing (2ms)",
            "",
        ] {
            assert!(!ran_no_tests(some), "{some}");
        }
    }
}
