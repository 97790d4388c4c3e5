//! Why a run (or an `exec` session) stopped: one enum for every crate above the Governor. Its
//! names are those of the stop records (`run.json`'s `last_stop`, the `run.completed` event);
//! exit codes are the CLI's business (`crates/cli/src/exit.rs` maps each reason to its number).

use serde::{Deserialize, Serialize};

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every feature's check passes.
    Complete,
    /// The budget is spent (or `--free-only` met a cost, or the provider's own spend limit).
    Budget,
    /// A model other than the pinned one answered.
    PinViolation,
    /// The provider billed above what was asked.
    Overbilled,
    /// `--max-sessions` reached.
    SessionLimit,
    /// Sessions in a row without progress reached the stall limit (or planning failed to
    /// produce a plan `planning_attempts` times).
    Stalled,
    /// A signal (Ctrl-C, SIGTERM, SIGHUP): the current step finished or was cancelled and
    /// settled, and the state was saved.
    Interrupted,
    /// Bad configuration or input the user must fix (spec, state dir, prompts, a ledger or run
    /// state that does not add up).
    BadInput,
    /// Anything else: a provider that keeps failing, an I/O error.
    Error,
}

impl StopReason {
    /// The name in stop records and events.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Complete => "complete",
            StopReason::Budget => "budget",
            StopReason::PinViolation => "pin_violation",
            StopReason::Overbilled => "overbilled",
            StopReason::SessionLimit => "session_limit",
            StopReason::Stalled => "stalled",
            StopReason::Interrupted => "interrupted",
            StopReason::BadInput => "bad_input",
            StopReason::Error => "error",
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<governor::ErrorKind> for StopReason {
    fn from(kind: governor::ErrorKind) -> StopReason {
        use governor::ErrorKind;
        match kind {
            ErrorKind::BadInput => StopReason::BadInput,
            ErrorKind::Budget => StopReason::Budget,
            ErrorKind::PinViolation => StopReason::PinViolation,
            ErrorKind::Overbilled => StopReason::Overbilled,
            ErrorKind::Cancelled => StopReason::Interrupted,
            ErrorKind::Failure => StopReason::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_the_serde_names() {
        for reason in [
            StopReason::Complete,
            StopReason::Budget,
            StopReason::PinViolation,
            StopReason::Overbilled,
            StopReason::SessionLimit,
            StopReason::Stalled,
            StopReason::Interrupted,
            StopReason::BadInput,
            StopReason::Error,
        ] {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::String(reason.as_str().into())
            );
        }
    }
}
