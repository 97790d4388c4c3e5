//! Planning: the planning session, `add_features` batch validation, and freezing the plan
//! (canonical copies and hashes in the state dir, `feature_list.json`, a commit).

use super::extra::PlanningTools;
use super::features::{duplicate_ids, feature_table, field_problems, Feature, FeatureStatus};
use super::prompts::PromptKind;
use super::sessions::stop_reason_of;
use super::state::{Phase, SessionKind, StateError};
use super::{git, RunContext, RunError, FEATURES_FILE, FROZEN_DIR};
use crate::events::EventKind;
use crate::outcome::EndReason;
use sandbox::Access;
use std::collections::BTreeSet;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tools::FrozenFiles;

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
        let tools = PlanningTools { ctx: self };
        let result = self.run_agent(&id, config, &tools, cancel).await?;
        let (end, turns, text) = match &result {
            Ok(o) => (o.end.as_str().to_string(), o.turns, o.final_text.clone()),
            Err(e) => (stop_reason_of(e).to_string(), 0, e.to_string()),
        };
        let cancelled = matches!(&result, Ok(o) if o.end == EndReason::Cancelled);
        let finished = result.is_ok() && !cancelled;
        let recorded = !self.features().is_empty();
        let final_text = if finished && !recorded {
            format!("{text}\n\n[harness] the planning session recorded no features")
        } else {
            text
        };
        // The session's end is saved before freezing starts: a run killed while freezing
        // resumes by freezing, not by planning again. A session that stopped early (an error,
        // Ctrl-C) leaves its features for the next planning session to complete.
        self.end_session(number, &end, turns, &final_text, vec![], vec![]);
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
                s.sessions_without_progress = 0;
            } else if !cancelled {
                s.sessions_without_progress += 1;
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
        {
            let mut s = self.lock();
            s.phase = Phase::Planning;
            s.plan_ready = false;
            s.sessions_without_progress = 0;
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
            let end = last.end.as_deref().unwrap_or("unknown");
            if end != "completed" {
                out.push_str(&format!(
                    "It stopped before it finished ({end}); what it recorded is listed above, \
                     the rest of the plan is still to be recorded.\n"
                ));
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
        let mut problems = Vec::new();
        let mut valid = Vec::new();
        for f in &features {
            let p = self.batch_problems(&valid, std::slice::from_ref(f));
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
        for f in &features {
            for t in &f.test_files {
                let p = PathBuf::from(t);
                if !paths.contains(&p) {
                    paths.push(p);
                }
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
        git::commit_all(
            self.toolbox.sandbox(),
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
            s.sessions_without_progress = 0;
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
