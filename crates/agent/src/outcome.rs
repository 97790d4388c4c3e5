//! How a session ended and what it used.

use llm::{Usage, Usd};
use serde::{Deserialize, Serialize};

/// Why a session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The model ended its turn without calling a tool, after calling tools earlier.
    Completed,
    /// The model ended its turn without ever calling a tool: nothing was done (a model that
    /// writes its tool calls as text the harness does not read ends this way).
    NoAction,
    /// The session reached its maximum number of turns.
    TurnLimit,
    /// The conversation neared the model's context window; the model was asked to wrap up and
    /// had one more turn.
    ContextLimit,
    /// The model kept making the same tool call with the same result after being told so.
    RepeatedAction,
    /// The cancellation token fired; the step under way was finished first.
    Cancelled,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::NoAction => "no_action",
            EndReason::TurnLimit => "turn_limit",
            EndReason::ContextLimit => "context_limit",
            EndReason::RepeatedAction => "repeated_action",
            EndReason::Cancelled => "cancelled",
        }
    }
}

impl EndReason {
    /// A sentence for the user when the end needs one.
    pub fn explanation(self) -> Option<&'static str> {
        match self {
            EndReason::NoAction => {
                Some("the model answered without using any tool; nothing was changed")
            }
            _ => None,
        }
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
