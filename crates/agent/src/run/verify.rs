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
    /// The end of the check's stdout and stderr.
    pub output: String,
}

impl CheckResult {
    pub(super) fn describe_exit(&self) -> String {
        match (self.timed_out, self.exit_code) {
            (true, _) => "timed out".into(),
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
        let frozen = self.toolbox.frozen();
        self.report_restored(session, &frozen.verify_and_restore().restored);
        let out = self
            .toolbox
            .sandbox()
            .run(&feature.check, self.cfg.check_timeout)
            .await?;
        self.report_restored(session, &frozen.verify_and_restore().restored);
        let passed = out.exit_code == Some(0) && !out.timed_out;
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
        Ok(CheckResult {
            passed,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
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
                st.verified_in.get_or_insert(session);
            } else {
                st.passes = false;
            }
        }
        self.save()?;
        self.write_feature_list()?;
        let (passing, total) = self.tally();
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
