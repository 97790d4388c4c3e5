//! One session of the run: its record in the run state, its configuration, and running it with
//! the run's tools (frozen files and `loopwright.toml` put back afterwards).

use super::prompts::PromptKind;
use super::state::{self, SessionEnd, SessionKind, SessionRecord};
use super::{tail_chars, RunContext, RunError};
use crate::events::rfc3339_now;
use crate::outcome::SessionOutcome;
use crate::session::{Session, SessionConfig, SessionError};
use crate::stop::StopReason;
use tokio_util::sync::CancellationToken;

impl RunContext<'_> {
    /// Starts a session record and returns its number and id.
    pub(super) fn begin_session(&self, kind: SessionKind) -> Result<(u32, String), RunError> {
        let (number, id) = {
            let mut s = self.lock();
            let number = s.next_session_number();
            let record = SessionRecord::started(number, kind, &rfc3339_now());
            let id = record.id.clone();
            s.sessions.push(record);
            (number, id)
        };
        self.save()?;
        Ok((number, id))
    }

    pub(super) fn end_session(
        &self,
        number: u32,
        ending: &Ending,
        newly: Vec<String>,
        regressions: Vec<String>,
    ) {
        self.note_ledger();
        let mut s = self.lock();
        let passing = s.passing();
        if let Some(rec) = s.sessions.iter_mut().find(|r| r.number == number) {
            rec.passing_at_end = Some(passing);
            rec.ended = Some(rfc3339_now());
            rec.end = Some(ending.end.clone());
            rec.end_detail = ending.detail.clone();
            rec.turns = ending.turns;
            rec.final_text = tail_chars(ending.text.trim(), 1500);
            rec.newly_passing = newly;
            rec.regressions = regressions;
        }
    }

    pub(super) fn session_config(
        &self,
        id: &str,
        system_prompt: String,
        task: &str,
    ) -> Result<SessionConfig, RunError> {
        let mut config = SessionConfig::new(id, system_prompt, task);
        config.max_turns = self.cfg.max_turns;
        config.context_window = self.cfg.context_window;
        config.watchdog = self.cfg.watchdog.clone();
        config.max_tool_result_chars = self.cfg.max_tool_result_chars;
        config.transcript = Some(
            self.cfg
                .state_dir
                .join("transcripts")
                .join(format!("{id}.jsonl")),
        );
        config.wrap_up_message = self.cfg.prompts.render(
            PromptKind::WrapUp,
            &[(
                "reason",
                "the conversation is near the model's context window",
            )],
        )?;
        Ok(config)
    }

    /// Runs one agent session with the run's tools. Whatever happens in it, frozen files and
    /// `loopwright.toml` are put back afterwards. The outer error is the harness's own (the
    /// config snapshot could not be saved); the inner one is the session's.
    pub(super) async fn run_agent(
        &self,
        number: u32,
        config: SessionConfig,
        tool: &(impl tools::Tool + crate::session::SessionHooks),
        cancel: CancellationToken,
    ) -> Result<Result<crate::outcome::SessionOutcome, SessionError>, RunError> {
        let guard = self.toolbox.guard_session(&self.cfg.state_dir)?;
        let result = Session::new(self.governor, self.toolbox, config)
            .tool(tool)
            .hooks(tool)
            .events(&self.events)
            .cancel_token(cancel)
            .run()
            .await;
        // Background processes the agent started (dev servers) end with its session.
        self.toolbox.sandbox().end_session().await;
        let id = state::session_id(number);
        self.report_restored(&id, &guard.restore());
        self.guard_git(&id, Some(number)).await;
        Ok(result)
    }
}

/// `loopwright: session 3 — verified F2, F4`.
pub(super) fn session_commit_message(number: u32, note: &str, newly: &[String]) -> String {
    if newly.is_empty() {
        format!("loopwright: session {number}{note} — no feature newly verified")
    } else {
        format!(
            "loopwright: session {number}{note} — verified {}",
            newly.join(", ")
        )
    }
}

/// How a session ended, as the run records it.
pub(super) struct Ending {
    /// The session's [`crate::EndReason`], or the stop of a session that ended on an error
    /// (`budget`, `pin_violation`, `overbilled`, else `error`).
    pub(super) end: SessionEnd,
    /// The evidence (the watchdog's line, or the error).
    pub(super) detail: String,
    pub(super) turns: u32,
    /// The model's last words (or the error).
    pub(super) text: String,
}

impl Ending {
    pub(super) fn of(result: &Result<SessionOutcome, SessionError>) -> Ending {
        match result {
            Ok(o) => Ending {
                end: o.end.into(),
                detail: o.end_detail.clone(),
                turns: o.turns,
                text: o.final_text.clone(),
            },
            Err(e) => Ending {
                end: SessionEnd::Stopped(stop_of(e)),
                detail: String::new(),
                turns: 0,
                text: e.to_string(),
            },
        }
    }
}

/// The stop a session's error is recorded as: the Governor's budget, pin and over-billing
/// stops by name, anything else as an error.
fn stop_of(e: &SessionError) -> StopReason {
    match e.stop_reason() {
        reason @ (StopReason::Budget | StopReason::PinViolation | StopReason::Overbilled) => reason,
        _ => StopReason::Error,
    }
}
