//! Exit codes (DESIGN.md) and the error type commands return to `main`.

/// 0 success · 1 internal error · 2 bad usage, config or input · 3 budget exhausted ·
/// 4 the provider broke the call's contract (model pin violated, or billed above what was
/// asked) · 5 stopped before completion · 130 interrupted.
pub mod code {
    pub const OK: i32 = 0;
    pub const INTERNAL: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const BUDGET: i32 = 3;
    /// The provider broke the call's contract: another model answered, or it billed above
    /// what was asked.
    pub const PIN: i32 = 4;
    pub const INCOMPLETE: i32 = 5;
    pub const INTERRUPTED: i32 = 130;
}

/// The exit code of each reason a run or a session stops (the only place they become numbers).
pub fn of_stop(reason: agent::StopReason) -> i32 {
    use agent::StopReason;
    match reason {
        StopReason::Complete => code::OK,
        StopReason::BadInput => code::USAGE,
        StopReason::Budget => code::BUDGET,
        StopReason::PinViolation | StopReason::Overbilled => code::PIN,
        StopReason::SessionLimit | StopReason::Stalled => code::INCOMPLETE,
        StopReason::Interrupted => code::INTERRUPTED,
        StopReason::Error => code::INTERNAL,
    }
}

/// The exit code of a Governor error, by its kind.
pub fn of_governor(kind: governor::ErrorKind) -> i32 {
    of_stop(kind.into())
}

/// A command's failure: the message and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: i32, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }

    pub fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(code::USAGE, error)
    }

    /// A Governor error, with the exit code of its kind.
    pub fn governor(error: governor::GovernorError) -> Failure {
        Failure::new(of_governor(error.kind()), error)
    }

    /// A run's error, with the exit code of the stop it is.
    pub fn run(error: agent::run::RunError) -> Failure {
        Failure::new(of_stop(error.stop_reason()), error)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure {
            code: code::INTERNAL,
            error,
        }
    }
}

pub type CmdResult = Result<i32, Failure>;
