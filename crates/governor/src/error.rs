//! What the Governor refuses or reports, and the exit code each maps to (DESIGN.md).

use crate::model_ref::ModelRefError;
use llm::{LlmError, Usd};
use std::path::PathBuf;

/// Exit codes (DESIGN.md): 1 internal error · 2 bad usage, config or input · 3 budget
/// exhausted · 4 model pin violated.
pub mod exit {
    pub const INTERNAL: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const BUDGET: i32 = 3;
    pub const PIN: i32 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum GovernorError {
    #[error(transparent)]
    ModelRef(#[from] ModelRefError),

    /// Bad configuration (provider tables, price overrides, base URLs).
    #[error("{0}")]
    Config(String),

    #[error("{var} is not set; export it (the API key for {provider}) or pick another provider with --model")]
    MissingKey { var: String, provider: String },

    /// A budget is set but the model's price is not known: refusing to spend blind.
    #[error("no price is known for {model}, so a budget cannot be enforced; add [pricing.\"{model}\"] input = \"...\", output = \"...\" (USD per million tokens) to the config, refresh the OpenRouter catalog with `loopwright models --refresh`, or run without --budget")]
    UnknownPrice { model: String },

    /// The next call could cross the budget even with a small answer.
    #[error("budget exhausted: spent {spent} of {limit}; the next call needs up to {needed}. Raise --budget to continue (the ledger keeps what was spent)")]
    BudgetExhausted { spent: Usd, limit: Usd, needed: Usd },

    /// `--free-only` and a model or call that is not free.
    #[error("free-only mode: {detail}")]
    FreeOnlyViolation { model: String, detail: String },

    /// The server answered with a model other than the pinned one. The call was settled in the
    /// ledger; the run must stop.
    #[error("model pin violated: asked for {asked:?} but the provider answered with {served:?}; the call was recorded in the ledger and the run stops")]
    PinViolation { asked: String, served: String },

    /// The provider call failed (after the client's retries).
    #[error(transparent)]
    Provider(LlmError),

    /// An earlier violation stopped this Governor; no further calls are made.
    #[error("the model door is closed after an earlier violation: {reason}")]
    Stopped { reason: String, code: i32 },

    #[error("cannot write the spend ledger {path}: {source}; nothing was sent")]
    LedgerWrite {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot read the spend ledger {path}: {source}")]
    LedgerRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the spend ledger {path} is corrupt at line {line} ({reason}); it is append-only and must not be edited by hand: restore it, or move it aside to start a new budget")]
    LedgerCorrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("the price catalog cache {path} could not be used: {reason}")]
    Catalog { path: PathBuf, reason: String },
}

impl GovernorError {
    /// The process exit code this error maps to (DESIGN.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            GovernorError::ModelRef(_)
            | GovernorError::Config(_)
            | GovernorError::MissingKey { .. }
            | GovernorError::UnknownPrice { .. }
            | GovernorError::LedgerCorrupt { .. }
            | GovernorError::Catalog { .. } => exit::USAGE,
            GovernorError::BudgetExhausted { .. } | GovernorError::FreeOnlyViolation { .. } => {
                exit::BUDGET
            }
            GovernorError::PinViolation { .. } => exit::PIN,
            GovernorError::Provider(e) => provider_exit_code(e),
            GovernorError::Stopped { code, .. } => *code,
            GovernorError::LedgerWrite { .. } | GovernorError::LedgerRead { .. } => exit::INTERNAL,
        }
    }
}

/// A final refusal by the provider that the user must fix in configuration (bad key, no access,
/// unknown model, a request the API rejects) is exit 2; a provider-side spend or credit limit is
/// exit 3; anything else (network, overload after retries, garbled answers) is exit 1.
fn provider_exit_code(e: &LlmError) -> i32 {
    match e {
        LlmError::Http {
            status: 400 | 401 | 403 | 404 | 413 | 422,
            ..
        } => exit::USAGE,
        LlmError::Http { status: 402, .. } | LlmError::SpendLimit { .. } => exit::BUDGET,
        LlmError::InvalidRequest(_)
        | LlmError::ReplayDiverged(_)
        | LlmError::ReplayExhausted { .. }
        | LlmError::Cassette { .. } => exit::USAGE,
        LlmError::RetriesExhausted { last, .. } => provider_exit_code(last),
        _ => exit::INTERNAL,
    }
}

/// Whether the provider may have generated (and billed) tokens before `e` ended the call. A
/// refusal (HTTP error status, a request never sent) costs nothing; a cut or failed stream may
/// have cost up to the whole reservation.
pub(crate) fn may_have_billed(e: &LlmError) -> bool {
    match e {
        LlmError::Http { .. }
        | LlmError::SpendLimit { .. }
        | LlmError::InvalidRequest(_)
        | LlmError::ReplayDiverged(_)
        | LlmError::ReplayExhausted { .. }
        | LlmError::Cassette { .. } => false,
        // Earlier attempts may have streamed (and been billed) before failing.
        _ => true,
    }
}
