//! Building: a build session with a fresh conversation, its prompt, and what the harness does
//! at its end (re-check, commit, record, the stall count).

use super::extra::VerifyFeature;
use super::features::feature_table;
use super::project_files;
use super::prompts::PromptKind;
use super::sessions::{session_commit_message, Ending};
use super::state::{self, SessionKind, Stall};
use super::{RunContext, RunError};
use crate::events::EventKind;
use crate::outcome::EndReason;
use tokio_util::sync::CancellationToken;

impl RunContext<'_> {
    pub(super) async fn build_session(
        &self,
        spec: &str,
        cancel: CancellationToken,
    ) -> Result<EndReason, RunError> {
        let (number, id) = self.begin_session(SessionKind::Building)?;
        self.write_feature_list()?;
        let before = self.passing_ids();
        let prompt = self.building_prompt(spec, number).await?;
        let config = self.session_config(&id, prompt, "Continue building the application: pick the next features that are not passing, implement them, and verify them with verify_feature.")?;
        let tools = VerifyFeature::new(self, number);
        let result = self.run_agent(number, config, &tools, cancel).await?;
        self.write_feature_list()?;
        let cancelled = matches!(&result, Ok(o) if o.end == EndReason::Cancelled);
        let regressions = if result.is_ok() && !cancelled {
            self.recheck_passing(number).await?
        } else {
            Vec::new()
        };
        let after = self.passing_ids();
        let newly: Vec<String> = after.difference(&before).cloned().collect();
        // The work is committed before its verdicts count as passing.
        let committed = self
            .commit(
                &id,
                Some(number),
                &session_commit_message(number, "", &newly),
            )
            .await;
        if committed.is_ok() {
            self.mark_committed();
        }
        let ending = Ending::of(&result);
        self.end_session(number, &ending, newly.clone(), regressions);
        {
            let mut s = self.lock();
            let passing = s.passing();
            if passing > s.best_passing {
                s.best_passing = passing;
                s.stall = Stall::default();
            } else if !cancelled && result.is_ok() {
                s.stall.add(&ending.end);
            }
        }
        self.save()?;
        committed?;
        result.map(|o| o.end).map_err(RunError::Session)
    }

    pub(super) async fn building_prompt(
        &self,
        spec: &str,
        number: u32,
    ) -> Result<String, RunError> {
        let (table, passing, total, last) = {
            let s = self.lock();
            let last = s
                .sessions
                .iter()
                .rev()
                .find(|r| r.number < number && r.end.is_some())
                .map(|r| {
                    let ended = match (&r.end, r.end_detail.as_str()) {
                        (Some(end), "") => end.to_string(),
                        (Some(end), detail) => format!("{end} ({detail})"),
                        (None, _) => "unknown".to_string(),
                    };
                    let mut t = format!(
                        "Session {} ({:?}) ended: {ended}. Newly passing: {}.",
                        r.number,
                        r.kind,
                        if r.newly_passing.is_empty() {
                            "none".to_string()
                        } else {
                            r.newly_passing.join(", ")
                        }
                    );
                    if !r.regressions.is_empty() {
                        t.push_str(&format!(
                            " Regressed (passing before, failing at the end): {}.",
                            r.regressions.join(", ")
                        ));
                    }
                    for note in &r.notes {
                        t.push_str(&format!("\n{note}"));
                    }
                    if !r.final_text.is_empty() {
                        t.push_str(&format!("\nIts last words:\n{}", r.final_text));
                    }
                    t
                })
                .unwrap_or_else(|| "This is the first build session.".to_string());
            (
                feature_table(&s.features, &s.status),
                s.passing(),
                s.features.len(),
                last,
            )
        };
        let progress = project_files::read_progress(&self.cfg.project_dir);
        if let Some(message) = progress.warning {
            self.emit(&state::session_id(number), EventKind::Warning { message });
        }
        let progress = progress.text;
        let log = self.git.recent_log(15).await;
        let log = if log.trim().is_empty() {
            "(no commits yet)".to_string()
        } else {
            log
        };
        Ok(self.cfg.prompts.render(
            PromptKind::Building,
            &[
                ("spec", spec),
                ("feature_table", &table),
                ("passing", &passing.to_string()),
                ("total", &total.to_string()),
                ("progress", &progress),
                ("git_log", &log),
                ("last_session", &last),
            ],
        )?)
    }
}
