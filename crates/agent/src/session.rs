//! One agent session: system prompt + task, then model turn → tool calls → results, until the
//! model ends its turn without calling a tool or a limit hits. A session whose model never
//! called a tool ends as [`EndReason::NoAction`], not `Completed`: nothing was done.
//!
//! Limits, each ending the session with its [`EndReason`]:
//! - **turns**: at most [`SessionConfig::max_turns`] model calls;
//! - **context**: when a call's total input tokens plus `max_tokens` pass
//!   [`SessionConfig::context_fraction_percent`] of the context window, the model is told once to
//!   wrap up (finish the step, write `progress.md`, end its turn); its tools still run, and the
//!   session ends after that turn;
//! - **repetition**: the same tool call (name + canonical input) with the same result
//!   [`SessionConfig::repeat_limit`] times earns a nudge; once more and the session ends;
//! - **cancellation**: when the token fires, the step under way (a model call or a tool call)
//!   finishes, then the session ends.

use crate::events::rfc3339_now;
use crate::events::{one_line, summarize_input, Event, EventKind, EventSink};
use crate::outcome::{add_usage, EndReason, SessionOutcome};
use crate::repeat::RepeatDetector;
use crate::transcript::{Transcript, TranscriptEntry};
use governor::{Governor, GovernorError};
use llm::{
    ContentPart, Message, Request, Response, Role, StopReason, StreamEvent, ToolSpec, Usage, Usd,
};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tools::{ToolOutcome, Toolbox};

/// A boxed future, so [`ExtraTools`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tools the caller adds to the toolbox's (the orchestrator's `add_features`, `verify_feature`).
pub trait ExtraTools: Send + Sync {
    /// The tools' specs, offered to the model after the toolbox's.
    fn specs(&self) -> Vec<ToolSpec>;

    /// Handles a call, or returns `None` when `name` is not one of these tools (it then goes to
    /// the toolbox).
    fn call<'a>(
        &'a self,
        name: &'a str,
        input: &'a serde_json::Value,
    ) -> BoxFuture<'a, Option<ToolOutcome>>;
}

/// The text the model gets when it nears the context window (used unless the caller gives its
/// own, e.g. the orchestrator's `wrapup.md`).
pub const DEFAULT_WRAP_UP: &str = "You are near the context limit of this session. Finish the \
step you are on, do not start anything new, write what you did and what comes next to \
`progress.md`, and end your turn.";

const REPEAT_NUDGE: &str = "You are repeating yourself: you made the same tool call with the \
same result several times. Doing it again will not change the result. Try a different \
approach, or end your turn if the task is done. If you repeat it once more, the session ends.";

const CUT_OFF: &str = "Your answer was cut off at the max_tokens limit. Continue, in smaller \
steps: write big files in several parts (write_file, then edit_file to append) and keep each \
answer short.";

const CUT_OFF_TOOL: &str = "This tool call was not run: your answer was cut off at the \
max_tokens limit while writing it, so its input is incomplete. Repeat it in smaller steps.";

const NOT_RUN_CANCELLED: &str = "This tool call was not run: the session was interrupted.";

/// How a session runs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Names the session in events, the transcript and the Governor's ledger.
    pub id: String,
    pub system_prompt: String,
    pub task: String,
    pub max_turns: u32,
    /// `max_tokens` asked for each call (the Governor may lower it to fit the budget).
    pub max_tokens: u32,
    /// The model's context window in tokens; `None`: [`default_context_window`] of the model.
    pub context_window: Option<u64>,
    /// The share of the context window (percent) past which the model is told to wrap up.
    pub context_fraction_percent: u8,
    /// Identical call + result this many times earns a nudge; once more ends the session.
    pub repeat_limit: u32,
    pub wrap_up_message: String,
    /// Where to write the JSONL transcript (`None`: no transcript).
    pub transcript: Option<PathBuf>,
}

impl SessionConfig {
    /// Defaults: 50 turns, 8192 max tokens, wrap-up at 85% of the context window, nudge after 3
    /// identical calls, no transcript.
    pub fn new(
        id: impl Into<String>,
        system_prompt: impl Into<String>,
        task: impl Into<String>,
    ) -> SessionConfig {
        SessionConfig {
            id: id.into(),
            system_prompt: system_prompt.into(),
            task: task.into(),
            max_turns: 50,
            max_tokens: 8192,
            context_window: None,
            context_fraction_percent: 85,
            repeat_limit: 3,
            wrap_up_message: DEFAULT_WRAP_UP.to_string(),
            transcript: None,
        }
    }
}

/// The context window assumed for a model id when none is configured, by family: Claude 200k,
/// GPT-4.1 1M, GPT-4o/o-series/GPT-5 128k+, Gemini 1M, DeepSeek/Qwen/Llama/Mistral 32k (local
/// servers often run with less than the model supports), anything else 32k. Conservative on
/// purpose: a guard that fires early costs a session; one that fires late costs an HTTP 400.
pub fn default_context_window(model: &str) -> u64 {
    let m = model.to_ascii_lowercase();
    let table: &[(&str, u64)] = &[
        ("claude", 200_000),
        ("gpt-4.1", 1_000_000),
        ("gpt-5", 272_000),
        ("gpt-4o", 128_000),
        ("o3", 200_000),
        ("o4", 200_000),
        ("gemini", 1_000_000),
    ];
    table
        .iter()
        .find(|(family, _)| m.contains(family))
        .map_or(32_768, |(_, window)| *window)
}

/// Why a session could not finish.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A model call was refused or failed (budget, pin, provider): see [`GovernorError`].
    #[error(transparent)]
    Governor(#[from] GovernorError),
    #[error("cannot write the session transcript {path}: {source}")]
    Transcript {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SessionError {
    /// The process exit code this error maps to (DESIGN.md): the Governor's for its errors
    /// (2 config, 3 budget, 4 pin, 1 other), 1 for the transcript.
    pub fn exit_code(&self) -> i32 {
        match self {
            SessionError::Governor(e) => e.exit_code(),
            SessionError::Transcript { .. } => 1,
        }
    }
}

/// A session ready to run. Borrows the Governor (the one door to the model) and the toolbox.
pub struct Session<'a> {
    governor: &'a Governor,
    toolbox: &'a Toolbox,
    extra: Option<&'a dyn ExtraTools>,
    events: &'a dyn EventSink,
    cancel: CancellationToken,
    config: SessionConfig,
}

impl<'a> Session<'a> {
    pub fn new(governor: &'a Governor, toolbox: &'a Toolbox, config: SessionConfig) -> Session<'a> {
        Session {
            governor,
            toolbox,
            extra: None,
            events: &crate::events::NoEvents,
            cancel: CancellationToken::new(),
            config,
        }
    }

    pub fn extra_tools(mut self, extra: &'a dyn ExtraTools) -> Session<'a> {
        self.extra = Some(extra);
        self
    }

    pub fn events(mut self, events: &'a dyn EventSink) -> Session<'a> {
        self.events = events;
        self
    }

    /// When `cancel` fires, the current step finishes and the session ends as `Cancelled`.
    pub fn cancel_token(mut self, cancel: CancellationToken) -> Session<'a> {
        self.cancel = cancel;
        self
    }

    /// Runs the session to its end. Governor errors (budget, pin, provider) end it with `Err`;
    /// the transcript then ends with an `error` line.
    pub async fn run(self) -> Result<SessionOutcome, SessionError> {
        let mut run = Running::start(self)?;
        let result = run.turns().await;
        run.finish(result)
    }
}

/// One tool call of the assistant's answer.
struct ToolCall {
    id: String,
    name: String,
    input: serde_json::Value,
}

/// The state of a session while it runs.
struct Running<'a> {
    s: Session<'a>,
    transcript: Option<Transcript>,
    tools: Vec<ToolSpec>,
    messages: Vec<Message>,
    /// Messages not yet written to the transcript (they go out with the next request).
    unlogged: usize,
    turns: u32,
    usage: Usage,
    cost: Usd,
    final_text: String,
    context_window: u64,
    wrap_up_sent: bool,
    repeats: RepeatDetector,
    /// Tool calls the model made in this session (run or not).
    calls_made: usize,
}

impl<'a> Running<'a> {
    fn start(s: Session<'a>) -> Result<Running<'a>, SessionError> {
        let mut tools = s.toolbox.specs();
        if let Some(extra) = s.extra {
            tools.extend(extra.specs());
        }
        let model = s.governor.model().to_string();
        let model_id = s.governor.model().model_id().to_string();
        let context_window = s
            .config
            .context_window
            .unwrap_or_else(|| default_context_window(&model_id));
        let transcript = match &s.config.transcript {
            Some(path) => {
                Some(
                    Transcript::create(path).map_err(|source| SessionError::Transcript {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let mut run = Running {
            transcript,
            messages: vec![Message::user_text(s.config.task.clone())],
            unlogged: 1,
            turns: 0,
            usage: Usage::default(),
            cost: Usd::ZERO,
            final_text: String::new(),
            context_window,
            wrap_up_sent: false,
            repeats: RepeatDetector::new(s.config.repeat_limit),
            calls_made: 0,
            tools,
            s,
        };
        run.log(TranscriptEntry::Session {
            ts: rfc3339_now(),
            session: run.s.config.id.clone(),
            model: model.clone(),
            system: run.s.config.system_prompt.clone(),
            tools: run.tools.iter().map(|t| t.name.clone()).collect(),
        })?;
        run.emit(EventKind::SessionStarted {
            model,
            project: run.s.toolbox.project().path().display().to_string(),
            max_turns: run.s.config.max_turns,
            budget: run.s.governor.budget(),
        });
        Ok(run)
    }

    /// The loop: ask, run the tools, answer, until an end.
    async fn turns(&mut self) -> Result<EndReason, SessionError> {
        loop {
            if self.s.cancel.is_cancelled() {
                return Ok(EndReason::Cancelled);
            }
            let response = self.ask().await?;
            let calls = tool_calls(&response);
            let cut_off = response.stop_reason == StopReason::MaxTokens;
            let wrap_up_turn = self.wrap_up_sent;
            self.calls_made += calls.len();
            if calls.is_empty() && !cut_off {
                return Ok(if wrap_up_turn {
                    EndReason::ContextLimit
                } else if self.calls_made == 0 {
                    EndReason::NoAction
                } else {
                    EndReason::Completed
                });
            }
            let (results, repeated) = self.run_tools(&calls, cut_off).await?;
            let mut notices = Vec::new();
            if cut_off {
                notices.push(CUT_OFF.to_string());
            }
            if repeated == Repeated::Nudge {
                notices.push(REPEAT_NUDGE.to_string());
            }
            if !wrap_up_turn && self.near_context_limit(&response.usage) {
                self.wrap_up_sent = true;
                notices.push(self.s.config.wrap_up_message.clone());
            }
            self.answer(results, notices)?;
            let end = self.end_after_turn(repeated, wrap_up_turn);
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }

    /// One model call through the Governor, with its bookkeeping (transcript, events, totals).
    async fn ask(&mut self) -> Result<Response, SessionError> {
        self.log_new_messages()?;
        let request = Request {
            model: String::new(), // the Governor sets the pinned model
            system: self.s.config.system_prompt.clone(),
            messages: self.messages.clone(),
            tools: self.tools.clone(),
            max_tokens: self.s.config.max_tokens,
            temperature: None,
        };
        let events = self.s.events;
        let session = self.s.config.id.clone();
        let mut on_event = |event: StreamEvent| match event {
            StreamEvent::TextDelta(text) => events.text_delta(&session, &text),
            StreamEvent::Retry {
                attempt,
                wait_ms,
                reason,
            } => events.emit(&Event::now(
                &session,
                EventKind::Retry {
                    attempt,
                    wait_ms,
                    reason,
                },
            )),
            StreamEvent::ToolUseStarted { .. } => {}
        };
        let spent_before = self.s.governor.spent();
        let response = self
            .s
            .governor
            .call(&self.s.config.id, request, &mut on_event)
            .await?;
        let cost = self.s.governor.spent().saturating_sub(spent_before);
        self.turns += 1;
        self.cost = self.cost.saturating_add(cost);
        add_usage(&mut self.usage, &response.usage);
        self.final_text = response.text();
        self.messages
            .push(Message::assistant(response.parts.clone()));
        self.unlogged = 0;
        let stop_reason = stop_reason_name(&response.stop_reason);
        self.log(TranscriptEntry::Response {
            ts: rfc3339_now(),
            turn: self.turns,
            parts: response.parts.clone(),
            stop_reason: stop_reason.clone(),
            usage: response.usage.clone(),
            cost,
            served_model: response.served_model.clone(),
            request_id: response.request_id.clone(),
        })?;
        if !self.final_text.trim().is_empty() {
            self.emit(EventKind::AssistantText {
                turn: self.turns,
                text: self.final_text.clone(),
            });
        }
        self.emit(EventKind::TurnCompleted {
            turn: self.turns,
            stop_reason,
            usage: response.usage.clone(),
            cost,
            spent: self.s.governor.spent(),
            budget: self.s.governor.budget(),
            tool_calls: response.tool_uses().count(),
        });
        Ok(response)
    }

    /// Runs the calls in order. After a cut-off answer the last call (the one being written when
    /// the limit hit) is answered with an error instead of run. Once cancelled, the remaining
    /// calls are answered "not run".
    async fn run_tools(
        &mut self,
        calls: &[ToolCall],
        cut_off: bool,
    ) -> Result<(Vec<ContentPart>, Repeated), SessionError> {
        let mut results = Vec::with_capacity(calls.len());
        let mut repeated = Repeated::No;
        for (i, call) in calls.iter().enumerate() {
            let outcome = if cut_off && i + 1 == calls.len() {
                ToolOutcome::failure(&call.name, CUT_OFF_TOOL)
            } else if self.s.cancel.is_cancelled() {
                ToolOutcome::failure(&call.name, NOT_RUN_CANCELLED)
            } else {
                let outcome = self.run_tool(call).await?;
                repeated = repeated.max(self.repeats.record(&call.name, &call.input, &outcome));
                outcome
            };
            results.push(ContentPart::ToolResult {
                tool_use_id: call.id.clone(),
                content: outcome.content,
                is_error: outcome.is_error,
            });
        }
        Ok((results, repeated))
    }

    async fn run_tool(&mut self, call: &ToolCall) -> Result<ToolOutcome, SessionError> {
        let turn = self.turns;
        self.emit(EventKind::ToolStarted {
            turn,
            id: call.id.clone(),
            name: call.name.clone(),
            summary: summarize_input(&call.name, &call.input),
        });
        self.log(TranscriptEntry::ToolCall {
            ts: rfc3339_now(),
            id: call.id.clone(),
            name: call.name.clone(),
            input: call.input.clone(),
        })?;
        let started = Instant::now();
        let outcome = self.dispatch(&call.name, &call.input).await;
        self.log(TranscriptEntry::ToolResult {
            ts: rfc3339_now(),
            id: call.id.clone(),
            name: call.name.clone(),
            content: outcome.content.clone(),
            is_error: outcome.is_error,
            exit_code: outcome.exit_code,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })?;
        if !outcome.frozen_restored.is_empty() {
            self.emit(EventKind::FrozenRestored {
                paths: outcome
                    .frozen_restored
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            });
        }
        self.emit(EventKind::ToolCompleted {
            turn,
            id: call.id.clone(),
            name: call.name.clone(),
            exit_code: outcome.exit_code,
            is_error: outcome.is_error,
            summary: one_line(&outcome.summary, 120),
        });
        Ok(outcome)
    }

    async fn dispatch(&self, name: &str, input: &serde_json::Value) -> ToolOutcome {
        if let Some(extra) = self.s.extra {
            if let Some(outcome) = extra.call(name, input).await {
                return outcome;
            }
        }
        self.s.toolbox.call(name, input).await
    }

    /// The next user message: tool results first (the wire requires it), then any notices.
    fn answer(
        &mut self,
        results: Vec<ContentPart>,
        notices: Vec<String>,
    ) -> Result<(), SessionError> {
        for notice in &notices {
            self.emit(EventKind::Notice {
                turn: self.turns,
                notice: notice.clone(),
            });
        }
        let mut content = results;
        content.extend(notices.into_iter().map(|text| ContentPart::Text { text }));
        if !content.is_empty() {
            self.messages.push(Message {
                role: Role::User,
                content,
            });
            self.unlogged += 1;
        }
        Ok(())
    }

    /// Whether a limit ends the session after a turn whose tools ran.
    fn end_after_turn(&self, repeated: Repeated, wrap_up_turn: bool) -> Option<EndReason> {
        if self.s.cancel.is_cancelled() {
            Some(EndReason::Cancelled)
        } else if repeated == Repeated::End {
            Some(EndReason::RepeatedAction)
        } else if wrap_up_turn {
            Some(EndReason::ContextLimit)
        } else if self.turns >= self.s.config.max_turns {
            Some(EndReason::TurnLimit)
        } else {
            None
        }
    }

    fn near_context_limit(&self, usage: &Usage) -> bool {
        let used = usage.total_input() + u64::from(self.s.config.max_tokens);
        used * 100 > self.context_window * u64::from(self.s.config.context_fraction_percent)
    }

    /// Records the end (or the error) and builds the outcome.
    fn finish(
        mut self,
        result: Result<EndReason, SessionError>,
    ) -> Result<SessionOutcome, SessionError> {
        let end = match result {
            Ok(end) => end,
            Err(err) => {
                let _ = self.log_new_messages();
                let _ = self.log(TranscriptEntry::Error {
                    ts: rfc3339_now(),
                    message: err.to_string(),
                });
                return Err(err);
            }
        };
        self.log_new_messages()?;
        self.log(TranscriptEntry::End {
            ts: rfc3339_now(),
            end,
            turns: self.turns,
            cost: self.cost,
        })?;
        self.emit(EventKind::SessionCompleted {
            end,
            turns: self.turns,
            usage: self.usage.clone(),
            cost: self.cost,
        });
        Ok(SessionOutcome {
            turns: self.turns,
            end,
            usage: self.usage,
            cost: self.cost,
            final_text: self.final_text,
        })
    }

    fn log_new_messages(&mut self) -> Result<(), SessionError> {
        let start = self.messages.len() - self.unlogged.min(self.messages.len());
        let new: Vec<Message> = self.messages[start..].to_vec();
        for message in new {
            self.log(TranscriptEntry::Message {
                ts: rfc3339_now(),
                message,
            })?;
        }
        self.unlogged = 0;
        Ok(())
    }

    fn log(&mut self, entry: TranscriptEntry) -> Result<(), SessionError> {
        match &mut self.transcript {
            Some(t) => t.append(&entry).map_err(|source| SessionError::Transcript {
                path: t.path().to_path_buf(),
                source,
            }),
            None => Ok(()),
        }
    }

    fn emit(&self, kind: EventKind) {
        self.s.events.emit(&Event::now(&self.s.config.id, kind));
    }
}

/// What the repetition detector says about a turn's calls (ordered: the worst one counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Repeated {
    No,
    Nudge,
    End,
}

fn tool_calls(response: &Response) -> Vec<ToolCall> {
    response
        .tool_uses()
        .map(|(id, name, input)| ToolCall {
            id: id.to_string(),
            name: name.to_string(),
            input: input.clone(),
        })
        .collect()
}

fn stop_reason_name(reason: &StopReason) -> String {
    match reason {
        StopReason::EndTurn => "end_turn".into(),
        StopReason::ToolUse => "tool_use".into(),
        StopReason::MaxTokens => "max_tokens".into(),
        StopReason::StopSequence => "stop_sequence".into(),
        StopReason::Refusal => "refusal".into(),
        StopReason::ContentFilter => "content_filter".into(),
        StopReason::Other(other) => other.clone(),
    }
}
