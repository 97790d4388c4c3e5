//! How a session ended and what it used.

use llm::{Usage, Usd};
use serde::{Deserialize, Serialize};

/// Why a session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The model ended its turn without calling a tool.
    Completed,
    /// The session reached its maximum number of turns.
    TurnLimit,
    /// The conversation neared the model's context window; the model was asked to wrap up and
    /// had one more turn.
    ContextLimit,
    /// The next prompt would not fit the model's context window (estimated before sending, or
    /// the provider answered "prompt is too long"): the next session starts fresh.
    ContextExhausted,
    /// The model kept making the same tool call with the same result after being told so.
    RepeatedAction,
    /// The model went round in a cycle of the same turns without progress.
    Cycle,
    /// Turns in a row without progress (no new content in the project, no check newly passing).
    NoProgress,
    /// Turns in a row in which every tool call failed.
    ToolErrors,
    /// Answers cut off at `max_tokens`, in a row or too often.
    CutOffAnswers,
    /// An answer with neither text nor a tool call.
    EmptyAnswer,
    /// Answers with more tool calls than allowed at once.
    TooManyToolCalls,
    /// The session ran for its wall-clock limit.
    WallClock,
    /// Every feature passes: nothing is left to do.
    AllPassing,
    /// The cancellation token fired; the step under way was finished first.
    Cancelled,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::TurnLimit => "turn_limit",
            EndReason::ContextLimit => "context_limit",
            EndReason::ContextExhausted => "context_exhausted",
            EndReason::RepeatedAction => "repeated_action",
            EndReason::Cycle => "cycle",
            EndReason::NoProgress => "no_progress",
            EndReason::ToolErrors => "tool_errors",
            EndReason::CutOffAnswers => "cut_off_answers",
            EndReason::EmptyAnswer => "empty_answer",
            EndReason::TooManyToolCalls => "too_many_tool_calls",
            EndReason::WallClock => "wall_clock",
            EndReason::AllPassing => "all_passing",
            EndReason::Cancelled => "cancelled",
        }
    }

    /// How the ending reads in a sentence: "3 sessions ended on {this}".
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::Completed => "the model ending its turn",
            EndReason::TurnLimit => "the turn limit",
            EndReason::ContextLimit => "the context window filling up",
            EndReason::ContextExhausted => "a prompt too long for the context window",
            EndReason::RepeatedAction => "the same call repeated with the same result",
            EndReason::Cycle => "cycles of the same actions",
            EndReason::NoProgress => "turns without progress",
            EndReason::ToolErrors => "tool calls that kept failing",
            EndReason::CutOffAnswers => "repeated cut-off answers",
            EndReason::EmptyAnswer => "empty answers",
            EndReason::TooManyToolCalls => "too many tool calls at once",
            EndReason::WallClock => "the session time limit",
            EndReason::AllPassing => "every feature passing",
            EndReason::Cancelled => "an interrupt",
        }
    }

    /// Whether the watchdog ended the session because the model misbehaved.
    pub fn is_misbehaviour(self) -> bool {
        matches!(
            self,
            EndReason::RepeatedAction
                | EndReason::Cycle
                | EndReason::NoProgress
                | EndReason::ToolErrors
                | EndReason::CutOffAnswers
                | EndReason::EmptyAnswer
                | EndReason::TooManyToolCalls
        )
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finished session reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOutcome {
    /// Model calls made.
    pub turns: u32,
    pub end: EndReason,
    /// The evidence for the ending, in a line (empty for a plain completion).
    pub end_detail: String,
    /// Token counts summed over the session's calls (`reported_cost` summed too when every call
    /// reported one; `estimated` when any call's figures were estimated).
    pub usage: Usage,
    /// What the session's calls cost, as the Governor settled them.
    pub cost: Usd,
    /// The text of the model's last answer.
    pub final_text: String,
}

/// Adds `more` to `total`.
pub(crate) fn add_usage(total: &mut Usage, more: &Usage) {
    total.input_tokens += more.input_tokens;
    total.output_tokens += more.output_tokens;
    total.cache_read_tokens += more.cache_read_tokens;
    total.cache_write_tokens += more.cache_write_tokens;
    total.estimated |= more.estimated;
    total.reported_cost = match (total.reported_cost, more.reported_cost) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (None, b) => b,
        (a, None) => a,
    };
}
