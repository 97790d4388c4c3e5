//! Planning: the planning session, `add_features` batch validation, and freezing the plan
//! (canonical copies and hashes in the state dir, `feature_list.json`, a commit).
//!
//! Plans are checked by running them: each feature's check runs when it is recorded and again
//! when the plan is frozen, on the project as it stands (nothing built yet). A check that passes
//! then cannot tell a working feature from a missing one (`true`, `echo ok`, a grep of the
//! spec), and one that runs no tests can never mean anything: both go back to the planner
//! with the check's output. The rule is "the check must not pass now" rather than a list of
//! bad commands, so it holds for any check, in any language.
//!
//! Everything the planning session wrote is frozen, listed in `test_files` or not: every file
//! created or changed since the first planning session started (compared with a snapshot taken
//! then, `planning-baseline.json`), but `progress.md`, the harness's own files, caches and what
//! `.gitignore` names.

use super::extra::AddFeatures;
use super::features::{duplicate_ids, feature_table, field_problems, Feature, FeatureStatus};
use super::prompts::PromptKind;
use super::sessions::Ending;
use super::state::{Phase, SessionEnd, SessionKind, Stall, StateError};
use super::{RunContext, RunError, FEATURES_FILE, FROZEN_DIR};
use crate::events::EventKind;
use crate::outcome::EndReason;
use sandbox::Access;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tools::FrozenFiles;

/// The snapshot of the project taken when planning started.
const PLANNING_BASELINE_FILE: &str = "planning-baseline.json";
/// Files the harness writes or the agent keeps notes in: never frozen as "written in planning".
const NEVER_FROZEN: [&str; 4] = [
    "progress.md",
    "feature_list.json",
    "app_spec.txt",
    "loopwright.toml",
];
/// A file bigger than this that planning wrote is not frozen (the frozen copies are held in
/// memory).
const MAX_FROZEN_BYTES: u64 = 4 * 1024 * 1024;
/// At most this many files written in planning are frozen (besides the listed test files).
const MAX_FROZEN_WRITTEN: usize = 1000;

impl<'a> RunContext<'a> {
    pub(super) async fn planning_session(
        &self,
        spec: &str,
        cancel: CancellationToken,
    ) -> Result<EndReason, RunError> {
        let ready = {
            let s = self.lock();
            s.plan_ready && !s.features.is_empty()
        };
        if ready {
            // The last planning session finished, but the run stopped before its plan was
            // frozen: freeze it now rather than pay for planning again.
            let problems = self.try_freeze().await?;
            if problems.is_empty() {
                return Ok(EndReason::Completed);
            }
            self.note_planning_problems(&problems);
            self.save()?;
        }
        self.save_planning_baseline()?;
        let (number, id) = self.begin_session(SessionKind::Planning)?;
        let previous = self.planning_notes();
        let prompt = self.cfg.prompts.render(
            PromptKind::Planning,
            &[
                ("spec", spec),
                ("previous", &previous),
                ("feature_count", &self.feature_count_note()),
            ],
        )?;
        let config = self.session_config(&id, prompt, "Plan the application described in app_spec.txt: write the tests, then record every feature with add_features.")?;
        let tools = AddFeatures::new(self, number);
        let result = self.run_agent(number, config, &tools, cancel).await?;
        let mut ending = Ending::of(&result);
        let cancelled = matches!(&result, Ok(o) if o.end == EndReason::Cancelled);
        let finished = result.is_ok() && !cancelled;
        let recorded = !self.features().is_empty();
        if finished && !recorded {
            ending
                .text
                .push_str("\n\n[harness] the planning session recorded no features");
        }
        // The session's end is saved before freezing starts: a run killed while freezing
        // resumes by freezing, not by planning again. A session that stopped early (an error,
        // Ctrl-C) leaves its features for the next planning session to complete.
        self.end_session(number, &ending, vec![], vec![]);
        self.lock().plan_ready = finished && recorded;
        self.save()?;
        if finished && recorded {
            let problems = self.try_freeze().await?;
            if !problems.is_empty() {
                self.note_planning_problems(&problems);
            }
        }
        {
            let mut s = self.lock();
            if s.phase == Phase::Building {
                s.stall = Stall::default();
            } else if !cancelled && result.is_ok() {
                s.stall.add(&ending.end);
            }
        }
        self.save()?;
        result.map(|o| o.end).map_err(RunError::Session)
    }

    /// Freezing found problems: the plan goes back to planning, and the last planning session's
    /// record says why (the next planning prompt shows it).
    pub(super) fn note_planning_problems(&self, problems: &[String]) {
        let mut s = self.lock();
        s.plan_ready = false;
        if let Some(rec) = s
            .sessions
            .iter_mut()
            .rev()
            .find(|r| r.kind == SessionKind::Planning)
        {
            let note = format!(
                "[harness] planning ended with problems, the plan was not frozen; the features \
                 with problems were dropped, record them again once fixed:\n- {}",
                problems.join("\n- ")
            );
            rec.final_text = if rec.final_text.is_empty() {
                note
            } else {
                format!("{}\n\n{note}", rec.final_text)
            };
        }
    }

    /// ` Aim for about N features in all.` when the user asked for a number (`--features`).
    fn feature_count_note(&self) -> String {
        match self.cfg.feature_count {
            Some(n) => format!(" Aim for about {n} features in all."),
            None => String::new(),
        }
    }

    /// `run --extend-plan` on a frozen plan whose spec changed: the new spec goes into the
    /// project and the frozen set (the old test files stay frozen as they are), and the run
    /// goes back to planning, where the existing features are shown as already recorded; the
    /// session adds features for what is new and freezing takes in the new test files.
    pub(super) fn open_extension(&self, spec: &str) -> Result<(), RunError> {
        let target = self.cfg.project_dir.join("app_spec.txt");
        llm::atomic_write(&target, spec.as_bytes()).map_err(|source| RunError::Io {
            path: target,
            source,
        })?;
        let paths: Vec<PathBuf> = self
            .toolbox
            .frozen()
            .paths()
            .map(std::path::Path::to_path_buf)
            .collect();
        let frozen = FrozenFiles::snapshot(self.toolbox.project(), &paths)?;
        frozen.write_copies(&self.cfg.state_dir.join(FROZEN_DIR))?;
        self.toolbox.set_frozen(frozen)?;
        // What the extension writes is told apart from what the build sessions wrote.
        let baseline = self.cfg.state_dir.join(PLANNING_BASELINE_FILE);
        match std::fs::remove_file(&baseline) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(RunError::Io {
                    path: baseline,
                    source: e,
                })
            }
            _ => {}
        }
        self.save_planning_baseline()?;
        {
            let mut s = self.lock();
            s.phase = Phase::Planning;
            s.plan_ready = false;
            s.stall = Stall::default();
        }
        self.save()?;
        Ok(())
    }

    /// `run --import`: a feature list given by the user takes the place of a planning session.
    /// It goes through the checks a planned batch goes through, then is frozen the same way
    /// (which checks it all again); any problem refuses it and leaves the run unplanned.
    pub(super) async fn import_plan(&self, features: Vec<Feature>) -> Result<(), RunError> {
        {
            let s = self.lock();
            if s.phase != Phase::Planning || !s.features.is_empty() {
                return Err(RunError::ImportOverPlan {
                    state_dir: self.cfg.state_dir.clone(),
                });
            }
        }
        let problems = self.batch_problems(&[], &features);
        if !problems.is_empty() {
            return Err(RunError::Import(problems));
        }
        // Nothing in the project was written by a planning session: only the listed test
        // files (and the spec) are frozen.
        self.save_planning_baseline()?;
        self.add_planned(features)?;
        self.lock().plan_ready = true;
        self.save()?;
        let problems = self.try_freeze().await?;
        if !problems.is_empty() {
            {
                let mut s = self.lock();
                s.features.clear();
                s.status.clear();
                s.plan_ready = false;
            }
            self.save()?;
            return Err(RunError::Import(problems));
        }
        Ok(())
    }

    /// What an earlier planning session left, for the next one's prompt.
    pub(super) fn planning_notes(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        if !s.features.is_empty() && self.cfg.extend_plan {
            out.push_str(
                "\n# The specification changed after it was planned\n\
                 The features below were planned from the earlier specification; they are frozen \
                 (their tests cannot change) and some are built. Read the specification above, \
                 write tests for what it now asks that these features do not cover, and record \
                 only those new features, with new ids.\n",
            );
        }
        if !s.features.is_empty() {
            out.push_str("\n# Features already recorded by an earlier planning session\n");
            out.push_str(&feature_table(&s.features, &s.status));
            out.push_str(
                "Do not add them again; check their test files exist, then add the rest.\n",
            );
        }
        // The session being started has no end yet; the one before it is the last.
        if let Some(last) = s
            .sessions
            .iter()
            .rev()
            .find(|r| r.kind == SessionKind::Planning && r.end.is_some())
        {
            out.push_str("\n# How the last planning session ended\n");
            let completed = SessionEnd::Ended(EndReason::Completed);
            let end = last.end.as_ref().map_or("unknown", SessionEnd::as_str);
            if last.end.as_ref() != Some(&completed) {
                out.push_str(&format!(
                    "It stopped before it finished ({end}); what it recorded is listed above, \
                     the rest of the plan is still to be recorded.\n"
                ));
            }
            if !last.end_detail.is_empty() {
                out.push_str(&format!("Why it ended: {}.\n", last.end_detail));
            }
            out.push_str(&last.final_text);
            out.push('\n');
        }
        out
    }

    /// Problems of a batch of features: fields, duplicate ids, checks the policy refuses, test
    /// files that do not exist.
    pub(crate) fn batch_problems(&self, existing: &[Feature], batch: &[Feature]) -> Vec<String> {
        let mut problems: Vec<String> = batch.iter().flat_map(field_problems).collect();
        for dup in duplicate_ids(existing, batch) {
            problems.push(format!(
                "feature id {dup:?} is used twice; ids must be unique"
            ));
        }
        let root = self.toolbox.project();
        for f in batch {
            if !f.check.trim().is_empty() {
                if let Err(denial) =
                    self.toolbox
                        .policy()
                        .check(&f.check, root, self.toolbox.policy_context())
                {
                    problems.push(format!(
                        "feature {:?}: its check `{}` is not allowed: {denial}",
                        f.id, f.check
                    ));
                }
            }
            for t in f.test_files.iter().filter(|t| !t.trim().is_empty()) {
                match root.resolve(t, Access::Read) {
                    Ok(abs) if abs.is_file() => {}
                    Ok(_) => problems.push(format!(
                        "feature {:?}: test file {t:?} does not exist (write it before recording the feature)",
                        f.id
                    )),
                    Err(e) => problems.push(format!("feature {:?}: test file {t:?}: {e}", f.id)),
                }
            }
        }
        problems
    }

    /// Problems of a batch whose fields are valid, found by running it: checks that pass before
    /// the application exists or run no tests, and a plan grown past the maximum.
    pub(crate) async fn batch_run_problems(
        &self,
        existing: usize,
        batch: &[Feature],
    ) -> Result<Vec<String>, RunError> {
        let mut problems = Vec::new();
        if existing + batch.len() > self.cfg.max_features {
            problems.push(format!(
                "the plan would have {} features, more than the {} allowed; make each feature \
                 bigger (a feature can need several steps) and record fewer",
                existing + batch.len(),
                self.cfg.max_features
            ));
        }
        for f in batch {
            if let Some(p) = self.vacuous_check(f).await? {
                problems.push(p);
            }
        }
        Ok(problems)
    }

    /// Runs a feature's check now: a problem when it passes (before the application exists) or
    /// runs no tests.
    async fn vacuous_check(&self, f: &Feature) -> Result<Option<String>, RunError> {
        let result = self.run_check("planning", f).await?;
        let output = if result.output.trim().is_empty() {
            "(no output)".to_string()
        } else {
            result.output.trim_end().to_string()
        };
        Ok(if result.ran_no_tests {
            Some(format!(
                "feature {:?}: its check `{}` ran no tests ({}), so it can never tell whether \
                 the feature works; make it run the feature's tests (a test file with test \
                 methods, the right module or path). Its output:\n{output}",
                f.id,
                f.check,
                result.describe_exit()
            ))
        } else if result.passed {
            Some(format!(
                "feature {:?}: its check `{}` passes now, before the application is built (it \
                 exited 0), so it cannot tell a working feature from a missing one. A check \
                 must fail until the feature is built: write a test that exercises the feature \
                 as the spec describes and make the check run it. Its output:\n{output}",
                f.id, f.check
            ))
        } else {
            None
        })
    }

    /// The project's files as they were when planning started (kept in the state dir), so
    /// freezing can tell what the planning sessions wrote.
    fn save_planning_baseline(&self) -> Result<(), RunError> {
        let path = self.cfg.state_dir.join(PLANNING_BASELINE_FILE);
        if path.exists() {
            return Ok(());
        }
        let hashes = crate::fingerprint::file_hashes(&self.cfg.project_dir, MAX_FROZEN_BYTES);
        let json = serde_json::to_vec_pretty(&hashes).unwrap_or_default();
        llm::atomic_write(&path, &json).map_err(|source| RunError::Io { path, source })
    }

    /// Files created or changed since planning started (see the module docs), relative to the
    /// project.
    async fn written_in_planning(&self) -> Result<Vec<String>, RunError> {
        let path = self.cfg.state_dir.join(PLANNING_BASELINE_FILE);
        let before: BTreeMap<String, String> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(RunError::Io { path, source }),
        };
        let now = crate::fingerprint::file_hashes(&self.cfg.project_dir, MAX_FROZEN_BYTES);
        let candidates: Vec<String> = now
            .into_iter()
            .filter(|(rel, hash)| before.get(rel) != Some(hash))
            .map(|(rel, _)| rel)
            .filter(|rel| !NEVER_FROZEN.contains(&rel.as_str()))
            .collect();
        let ignored: BTreeSet<String> = self.git.ignored(&candidates).await.into_iter().collect();
        let mut written: Vec<String> = candidates
            .into_iter()
            .filter(|rel| !ignored.contains(rel))
            .collect();
        written.truncate(MAX_FROZEN_WRITTEN);
        Ok(written)
    }

    /// Records a validated batch and saves the state; returns the number of features in all.
    pub(crate) fn add_planned(&self, batch: Vec<Feature>) -> Result<usize, StateError> {
        let total = {
            let mut s = self.lock();
            for f in &batch {
                s.status.insert(f.id.clone(), FeatureStatus::default());
            }
            s.features.extend(batch);
            s.features.len()
        };
        self.save()?;
        Ok(total)
    }

    /// Validates the whole plan again and freezes it: canonical copies and hashes in the state
    /// dir, `feature_list.json` in the project, a commit, phase Building. Returns the problems
    /// that prevented freezing (then invalid features are dropped so planning can redo them).
    pub(super) async fn try_freeze(&self) -> Result<Vec<String>, RunError> {
        let features = self.features();
        // Features frozen before (a plan being extended) are built: their checks pass now and
        // are not run again as if the application did not exist.
        let already_frozen: BTreeSet<String> =
            std::fs::read(self.cfg.state_dir.join(FEATURES_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice::<Vec<Feature>>(&b).ok())
                .map(|fs| fs.into_iter().map(|f| f.id).collect())
                .unwrap_or_default();
        let mut problems = Vec::new();
        let mut valid = Vec::new();
        for f in &features {
            let mut p = self.batch_problems(&valid, std::slice::from_ref(f));
            if p.is_empty() && !already_frozen.contains(&f.id) {
                p = self
                    .batch_run_problems(valid.len(), std::slice::from_ref(f))
                    .await?;
            }
            if p.is_empty() {
                valid.push(f.clone());
            } else {
                problems.extend(p);
            }
        }
        if !problems.is_empty() {
            {
                let mut s = self.lock();
                s.features = valid;
                s.plan_ready = false;
                let ids: BTreeSet<String> = s.features.iter().map(|f| f.id.clone()).collect();
                s.status.retain(|k, _| ids.contains(k));
            }
            self.save()?;
            return Ok(problems);
        }
        let mut paths: Vec<PathBuf> = vec![PathBuf::from("app_spec.txt")];
        let listed = features.iter().flat_map(|f| f.test_files.iter().cloned());
        for t in listed.chain(self.written_in_planning().await?) {
            let p = PathBuf::from(t);
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        let frozen = FrozenFiles::snapshot(self.toolbox.project(), &paths)?;
        frozen.write_copies(&self.cfg.state_dir.join(FROZEN_DIR))?;
        let canonical = serde_json::to_vec_pretty(&features).map_err(|e| StateError::Corrupt {
            path: self.cfg.state_dir.join(FEATURES_FILE),
            message: e.to_string(),
        })?;
        let features_path = self.cfg.state_dir.join(FEATURES_FILE);
        llm::atomic_write(&features_path, &canonical).map_err(|source| RunError::Io {
            path: features_path,
            source,
        })?;
        let frozen_count = frozen.len();
        self.toolbox.set_frozen(frozen)?;
        self.write_feature_list()?;
        // The commit comes before the phase is saved: a run stopped in between is still
        // planning with its plan ready, and freezes again (every step above is idempotent).
        self.commit(
            "run",
            None,
            &format!(
                "loopwright: plan — {} features, {} files frozen",
                features.len(),
                frozen_count
            ),
        )
        .await?;
        {
            let mut s = self.lock();
            s.phase = Phase::Building;
            s.plan_ready = false;
            s.stall = Stall::default();
        }
        self.save()?;
        self.emit(
            "run",
            EventKind::PlanFrozen {
                features: features.len(),
                frozen_files: frozen_count,
            },
        );
        Ok(Vec::new())
    }
}
