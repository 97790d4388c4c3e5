//! One agent session: system prompt + task, then model turn → tool calls → results, until the
//! model ends its turn without calling a tool or a limit hits.
//!
//! Limits, each ending the session with its [`EndReason`]:
//! - **turns**: at most [`SessionConfig::max_turns`] model calls;
//! - **context**: when a call's total input tokens plus `max_tokens` pass
//!   [`SessionConfig::context_fraction_percent`] of the context window, the model is told once to
//!   wrap up (finish the step, write `progress.md`, end its turn); its tools still run, and the
//!   session ends after that turn. Before every call the next prompt's size is estimated; one
//!   that would not fit (or a provider's "prompt is too long") ends the session as
//!   [`EndReason::ContextExhausted`], and the next session starts fresh;
//! - **misbehaviour**: the [`Watchdog`] sees every turn and ends the session on no progress,
//!   failing tools, repetition, cycles, cut-off or empty answers, too many calls at once, the
//!   wall-clock limit, or when every feature passes (see [`crate::watchdog`]);
//! - **cancellation**: when the token fires, a model call in flight is abandoned (the Governor
//!   settles it by its torn-attempt rule) or the tool call under way finishes, then the session
//!   ends.
//!
//! Every tool result is capped at [`SessionConfig::max_tool_result_chars`] (head and tail kept,
//! with a note of what was cut and how to read more).

use crate::events::rfc3339_now;
use crate::events::{one_line, summarize_input, Event, EventKind, EventSink};
use crate::fingerprint::ProjectStates;
use crate::outcome::{add_usage, EndReason, SessionOutcome};
use crate::transcript::{Transcript, TranscriptEntry};
use crate::watchdog::{CallSeen, TurnSeen, Verdict, Watchdog, WatchdogConfig};
use governor::{Governor, GovernorError};
use llm::{
    ContentPart, LlmError, Message, Prompt, Response, Role, StopReason, StreamEvent, ToolSpec,
    Usage, Usd,
};
use std::path::PathBuf;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tools::{BoxFuture, Tool, ToolOutcome, ToolRegistry, Toolbox};

/// What the caller of a session watches besides the tools it adds (the orchestrator: checks
/// newly passing, features recorded, the git guard after a command).
pub trait SessionHooks: Send + Sync {
    /// A counter of what the caller counts as progress (checks newly passing, features
    /// recorded); the watchdog sees a turn that raised it as progress. Default: none.
    fn progress_marks(&self) -> u64 {
        0
    }

    /// Whether there is nothing left to do (every feature passes): the session ends after the
    /// turn. Default: never.
    fn work_done(&self) -> bool {
        false
    }

    /// Runs after every tool call that ran (the orchestrator checks the project's git history
    /// here); a returned note is appended to the call's result for the model. Default: nothing.
    fn after_tool<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async { None })
    }
}

/// The text the model gets when it nears the context window (used unless the caller gives its
/// own, e.g. the orchestrator's `wrapup.md`).
pub const DEFAULT_WRAP_UP: &str = "You are near the context limit of this session. Finish the \
step you are on, do not start anything new, write what you did and what comes next to \
`progress.md`, and end your turn.";

const CUT_OFF: &str = "Your answer was cut off at the max_tokens limit. Continue, in smaller \
steps: write big files in several parts (write_file, then edit_file to append) and keep each \
answer short.";

const CUT_OFF_TOOL: &str = "This tool call was not run: your answer was cut off at the \
max_tokens limit while writing it, so its input is incomplete. Repeat it in smaller steps.";

const NOT_RUN_CANCELLED: &str = "This tool call was not run: the session was interrupted.";

const NOT_RUN_OUT_OF_TIME: &str = "This tool call was not run: the session reached its time limit.";

/// Default for [`SessionConfig::max_tool_result_chars`]: about 10k tokens (above `read_file`'s own
/// 32 KB cap, so a read is cut with its own "continue at offset N" trailer).
pub const DEFAULT_MAX_TOOL_RESULT_CHARS: usize = 40_000;

/// Tokens assumed per character of text not yet counted by the provider (conservative: code
/// and JSON run at 3-4 characters a token).
const CHARS_PER_TOKEN: usize = 4;
/// A call is not worth making with less room than this for the answer.
const MIN_ANSWER_TOKENS: u64 = 512;

/// How a session runs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Names the session in events, the transcript and the Governor's ledger.
    pub id: String,
    pub system_prompt: String,
    pub task: String,
    pub max_turns: u32,
    /// The model's context window in tokens; `None`: [`default_context_window`] of the model.
    pub context_window: Option<u64>,
    /// The share of the context window (percent) past which the model is told to wrap up.
    pub context_fraction_percent: u8,
    /// When the session ends because the model misbehaves (see [`crate::watchdog`]).
    pub watchdog: WatchdogConfig,
    /// A tool result longer than this many characters is cut in the middle (head and tail
    /// kept, with a note on how to read the rest).
    pub max_tool_result_chars: usize,
    pub wrap_up_message: String,
    /// Where to write the JSONL transcript (`None`: no transcript).
    pub transcript: Option<PathBuf>,
}

impl SessionConfig {
    /// Defaults: 50 turns, wrap-up at 85% of the context window, the watchdog's defaults, tool
    /// results capped at 40k characters, no transcript. (`max_tokens` is the Governor's; the
    /// session only lowers it when the context window has less room.)
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
            context_window: None,
            context_fraction_percent: 85,
            watchdog: WatchdogConfig::default(),
            max_tool_result_chars: DEFAULT_MAX_TOOL_RESULT_CHARS,
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
    /// Why the session's error stops a run or an `exec` (the CLI maps it to the exit code).
    pub fn stop_reason(&self) -> crate::StopReason {
        match self {
            SessionError::Governor(e) => e.kind().into(),
            SessionError::Transcript { .. } => crate::StopReason::Error,
        }
    }
}

/// A session ready to run. Borrows the Governor (the one door to the model) and the toolbox.
pub struct Session<'a> {
    governor: &'a Governor,
    toolbox: &'a Toolbox,
    /// Tools the caller adds to the toolbox's (the orchestrator's `add_features`,
    /// `verify_feature`), offered after them.
    extra: Vec<&'a dyn Tool>,
    hooks: Option<&'a dyn SessionHooks>,
    events: &'a dyn EventSink,
    cancel: CancellationToken,
    config: SessionConfig,
}

impl<'a> Session<'a> {
    pub fn new(governor: &'a Governor, toolbox: &'a Toolbox, config: SessionConfig) -> Session<'a> {
        Session {
            governor,
            toolbox,
            extra: Vec::new(),
            hooks: None,
            events: &crate::events::NoEvents,
            cancel: CancellationToken::new(),
            config,
        }
    }

    /// Adds a tool to the toolbox's (one of the same name takes its place).
    pub fn tool(mut self, tool: &'a dyn Tool) -> Session<'a> {
        self.extra.push(tool);
        self
    }

    pub fn hooks(mut self, hooks: &'a dyn SessionHooks) -> Session<'a> {
        self.hooks = Some(hooks);
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
    /// The toolbox's tools and the caller's.
    registry: ToolRegistry<'a>,
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
    watchdog: Watchdog,
    states: ProjectStates,
    /// Tokens of the last request and its answer, as the provider counted them.
    last_request_tokens: u64,
    /// Characters added to the conversation since the last request.
    pending_chars: usize,
    end_detail: String,
}

/// What running an answer's tool calls gave.
struct ToolsRun {
    results: Vec<ContentPart>,
    seen: Vec<CallSeen>,
    refused_over_cap: usize,
    out_of_time: Option<String>,
}

impl<'a> Running<'a> {
    fn start(s: Session<'a>) -> Result<Running<'a>, SessionError> {
        let mut registry = s.toolbox.registry();
        for tool in &s.extra {
            registry.register(*tool);
        }
        let tools = registry.specs();
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
        let pending_chars = s.config.system_prompt.len()
            + s.config.task.len()
            + tools
                .iter()
                .map(|t| t.name.len() + t.description.len() + t.input_schema.to_string().len())
                .sum::<usize>();
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
            watchdog: Watchdog::new(s.config.watchdog.clone()),
            states: ProjectStates::new(s.toolbox.project().path()),
            last_request_tokens: 0,
            pending_chars,
            end_detail: String::new(),
            registry,
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

    /// The loop: ask, run the tools, let the watchdog judge the turn, answer, until an end.
    async fn turns(&mut self) -> Result<EndReason, SessionError> {
        loop {
            if self.s.cancel.is_cancelled() {
                return Ok(EndReason::Cancelled);
            }
            if let Some((end, detail)) = self.watchdog.out_of_time() {
                self.end_detail = detail;
                return Ok(end);
            }
            let Some(max_tokens) = self.room_for_answer() else {
                return Ok(EndReason::ContextExhausted);
            };
            let response = match self.ask(max_tokens).await {
                Ok(response) => response,
                // Ctrl-C during the model call: it was abandoned and settled by the Governor.
                Err(SessionError::Governor(GovernorError::Cancelled { charged })) => {
                    self.cost = self.cost.saturating_add(charged);
                    return Ok(EndReason::Cancelled);
                }
                Err(e) if is_context_overflow(&e) => {
                    self.end_detail = format!(
                        "the provider refused the prompt as too long for the context window ({})",
                        crate::events::one_line(&e.to_string(), 200)
                    );
                    return Ok(EndReason::ContextExhausted);
                }
                Err(e) => return Err(e),
            };
            let calls = tool_calls(&response);
            let cut_off = response.stop_reason == StopReason::MaxTokens;
            let wrap_up_turn = self.wrap_up_sent;
            let empty = calls.is_empty() && !cut_off && response.text().trim().is_empty();
            if calls.is_empty() && !cut_off && !empty {
                return Ok(if wrap_up_turn {
                    EndReason::ContextLimit
                } else {
                    EndReason::Completed
                });
            }
            let marks_before = self.s.hooks.map_or(0, |h| h.progress_marks());
            let run = self.run_tools(&calls, cut_off).await?;
            let turn = TurnSeen {
                cut_off,
                empty,
                new_content: !empty && self.states.observe(),
                marks: self
                    .s
                    .hooks
                    .map_or(0, |h| h.progress_marks())
                    .saturating_sub(marks_before),
                work_done: !empty && self.s.hooks.is_some_and(|h| h.work_done()),
                refused_over_cap: run.refused_over_cap,
                calls: run.seen,
            };
            let verdict = match run.out_of_time {
                Some(detail) => Verdict::End {
                    reason: EndReason::WallClock,
                    detail,
                },
                None => self.watchdog.observe(&turn),
            };
            let mut notices = Vec::new();
            if cut_off {
                notices.push(CUT_OFF.to_string());
            }
            let ending = match verdict {
                Verdict::Continue { warning } => {
                    notices.extend(warning);
                    None
                }
                Verdict::End { reason, detail } => {
                    self.end_detail = detail;
                    notices.clear();
                    Some(reason)
                }
            };
            if ending.is_none() && !wrap_up_turn && self.near_context_limit(&response.usage) {
                self.wrap_up_sent = true;
                notices.push(self.s.config.wrap_up_message.clone());
            }
            if !empty {
                self.answer(run.results, notices)?;
            }
            if self.s.cancel.is_cancelled() {
                return Ok(EndReason::Cancelled);
            }
            if let Some(end) = ending {
                return Ok(end);
            }
            if wrap_up_turn {
                return Ok(EndReason::ContextLimit);
            }
            if self.turns >= self.s.config.max_turns {
                return Ok(EndReason::TurnLimit);
            }
        }
    }

    /// The `max_tokens` of the next call: the Governor's, lowered when the estimated
    /// prompt leaves less room in the context window; `None` when not even a short answer
    /// would fit (the end detail then says why).
    fn room_for_answer(&mut self) -> Option<u32> {
        let counted = self.last_request_tokens + (self.pending_chars / CHARS_PER_TOKEN) as u64;
        let whole: usize = self.s.config.system_prompt.len()
            + self
                .messages
                .iter()
                .map(|m| m.content.iter().map(part_chars).sum::<usize>())
                .sum::<usize>();
        let estimate = counted.max((whole / CHARS_PER_TOKEN) as u64);
        let room = self.context_window.saturating_sub(estimate);
        let configured = self.s.governor.max_tokens();
        let wanted = u64::from(configured);
        if room >= wanted {
            return Some(configured);
        }
        if room < MIN_ANSWER_TOKENS.min(wanted) {
            self.end_detail = format!(
                "the next prompt (about {estimate} tokens) would not leave room for an answer in \
                 the {} token context window",
                self.context_window
            );
            return None;
        }
        Some(u32::try_from(room).unwrap_or(configured))
    }

    /// One model call through the Governor, with its bookkeeping (transcript, events, totals).
    async fn ask(&mut self, max_tokens: u32) -> Result<Response, SessionError> {
        self.log_new_messages()?;
        let prompt = Prompt {
            system: self.s.config.system_prompt.clone(),
            messages: self.messages.clone(),
            tools: self.tools.clone(),
            temperature: None,
            // Only ever lower than the Governor's own limit (the context window's room).
            max_tokens_cap: Some(max_tokens),
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
        let settled = self
            .s
            .governor
            .call(&self.s.config.id, &prompt, &self.s.cancel, &mut on_event)
            .await?;
        let (response, cost) = (settled.response, settled.cost);
        self.turns += 1;
        self.cost = self.cost.saturating_add(cost);
        add_usage(&mut self.usage, &response.usage);
        self.last_request_tokens = response.usage.total_input() + response.usage.output_tokens;
        self.pending_chars = 0;
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
    /// the limit hit) is answered with an error instead of run. Calls past the watchdog's cap,
    /// and once cancelled or out of time the remaining calls, are answered "not run".
    async fn run_tools(
        &mut self,
        calls: &[ToolCall],
        cut_off: bool,
    ) -> Result<ToolsRun, SessionError> {
        let allowed = self.watchdog.allowed_calls(calls.len());
        let mut run = ToolsRun {
            results: Vec::with_capacity(calls.len()),
            seen: Vec::with_capacity(calls.len()),
            refused_over_cap: 0,
            out_of_time: None,
        };
        for (i, call) in calls.iter().enumerate() {
            if run.out_of_time.is_none() {
                run.out_of_time = self.watchdog.out_of_time().map(|(_, detail)| detail);
            }
            let outcome = if i >= allowed {
                run.refused_over_cap += 1;
                ToolOutcome::failure(&call.name, self.watchdog.over_cap_refusal(calls.len()))
            } else if cut_off && i + 1 == calls.len() {
                ToolOutcome::failure(&call.name, CUT_OFF_TOOL)
            } else if self.s.cancel.is_cancelled() {
                ToolOutcome::failure(&call.name, NOT_RUN_CANCELLED)
            } else if run.out_of_time.is_some() {
                ToolOutcome::failure(&call.name, NOT_RUN_OUT_OF_TIME)
            } else {
                let mut outcome = self.run_tool(call).await?;
                outcome.content = cap_text(&outcome.content, self.s.config.max_tool_result_chars);
                outcome
            };
            if i < allowed {
                run.seen.push(CallSeen {
                    name: call.name.clone(),
                    input: call.input.clone(),
                    result: outcome.content.clone(),
                    is_error: outcome.is_error,
                });
            }
            run.results.push(ContentPart::ToolResult {
                tool_use_id: call.id.clone(),
                content: outcome.content,
                is_error: outcome.is_error,
            });
        }
        Ok(run)
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
        let mut outcome = self.dispatch(&call.name, &call.input).await;
        if let Some(hooks) = self.s.hooks {
            if let Some(note) = hooks.after_tool(&call.name).await {
                if !outcome.content.is_empty() && !outcome.content.ends_with('\n') {
                    outcome.content.push('\n');
                }
                outcome.content.push_str(&note);
            }
        }
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
        // Connections through the egress proxy (this command's, and any a background process
        // made since the last tool call).
        for event in self.s.toolbox.sandbox().take_proxy_events() {
            self.emit(EventKind::proxy_connection(&event));
        }
        Ok(outcome)
    }

    async fn dispatch(&self, name: &str, input: &serde_json::Value) -> ToolOutcome {
        self.registry.call(name, input).await
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
            self.pending_chars += content.iter().map(part_chars).sum::<usize>();
            self.messages.push(Message {
                role: Role::User,
                content,
            });
            self.unlogged += 1;
        }
        Ok(())
    }

    fn near_context_limit(&self, usage: &Usage) -> bool {
        let used = usage.total_input() + u64::from(self.s.governor.max_tokens());
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
            detail: self.end_detail.clone(),
            turns: self.turns,
            cost: self.cost,
        })?;
        self.emit(EventKind::SessionCompleted {
            end,
            detail: self.end_detail.clone(),
            turns: self.turns,
            usage: self.usage.clone(),
            cost: self.cost,
        });
        Ok(SessionOutcome {
            turns: self.turns,
            end,
            end_detail: self.end_detail,
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

/// The characters a content part adds to the prompt.
fn part_chars(part: &ContentPart) -> usize {
    match part {
        ContentPart::Text { text } => text.len(),
        ContentPart::ToolUse { name, input, .. } => name.len() + input.to_string().len(),
        ContentPart::ToolResult { content, .. } => content.len(),
    }
}

/// Whether a failed call was the provider refusing a prompt too long for the context window
/// (Anthropic: 400 `invalid_request_error` "prompt is too long"; OpenAI:
/// `context_length_exceeded`; others: "maximum context length", 413 request too large).
pub fn is_context_overflow(e: &SessionError) -> bool {
    fn llm(e: &LlmError) -> bool {
        match e {
            LlmError::Http {
                status: 400 | 413,
                kind,
                message,
                ..
            } => {
                let text = format!("{kind} {message}").to_ascii_lowercase();
                [
                    "prompt is too long",
                    "context_length_exceeded",
                    "context length",
                    "context window",
                    "maximum context",
                    "too many tokens",
                    "input is too long",
                    "request_too_large",
                    "too large for the model",
                ]
                .iter()
                .any(|needle| text.contains(needle))
            }
            _ => false,
        }
    }
    matches!(
        e,
        SessionError::Governor(
            GovernorError::Provider(inner) | GovernorError::RetriesExhausted { last: inner, .. }
        ) if llm(inner)
    )
}

/// `text` cut to at most `max` characters: its head and tail, with a note in the middle saying
/// what was cut and how to read more.
pub fn cap_text(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if max == 0 || count <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(400);
    let head_chars = keep * 2 / 3;
    let tail_chars = keep - head_chars;
    let head: String = text.chars().take(head_chars).collect();
    let tail: String = text.chars().skip(count - tail_chars).collect();
    let cut = count - head_chars - tail_chars;
    format!(
        "{head}\n[... {cut} characters cut from the middle of this result to keep the \
         conversation small; read a file in parts with read_file offset/limit, search with grep \
         and a narrower pattern or path, or redirect a command's output to a file and read the \
         part you need ...]\n{tail}"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_results_keep_head_and_tail_with_a_note() {
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let capped = cap_text(&text, 3_000);
        assert!(capped.chars().count() <= 3_200, "{}", capped.len());
        assert!(capped.starts_with("line 0\n"));
        assert!(capped.ends_with("line 9999\n"));
        assert!(capped.contains("characters cut") && capped.contains("read_file offset/limit"));
        assert_eq!(cap_text("short", 3_000), "short");
    }
}
