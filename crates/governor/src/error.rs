//! What the Governor refuses or reports, and the kind of stop each is ([`ErrorKind`]). The exit
//! code of each kind is the CLI's business (DESIGN.md's table lives in `crates/cli`).

use crate::model_ref::ModelRefError;
use llm::{LlmError, Usd};
use std::path::PathBuf;

/// What kind of stop an error is (the run's stop reason and the CLI's exit code follow from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad configuration or input the user must fix: model string, key, price, base URL, a
    /// corrupt or short ledger, a request the provider rejects (400/401/403/404), a replay that
    /// diverged.
    BadInput,
    /// The budget is spent: the next call (or retry) could cross it, `--free-only` met a cost,
    /// or the provider's own credit or spend limit refused the call.
    Budget,
    /// A model other than the pinned one answered.
    PinViolation,
    /// The provider billed above what was asked (output over `max_tokens`, input over the
    /// bound, a cost above the reservation).
    Overbilled,
    /// The call was cancelled while in flight (Ctrl-C); it was settled by the torn-attempt rule.
    Cancelled,
    /// Anything else: a provider that keeps failing after retries, a network down, a ledger
    /// that cannot be written.
    Failure,
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

    /// The provider billed above what the call asked for. The attempt was recorded in the
    /// ledger as reported and flagged; the run must stop.
    #[error("the provider billed above what was asked: {detail}; the call was recorded in the ledger as reported (flagged overbilled) and the run stops — check the provider's usage page before continuing")]
    Overbilled { detail: String },

    /// The call was cancelled while in flight; `charged` is what its attempts were settled at.
    #[error("the model call was cancelled (settled at {charged} in the ledger)")]
    Cancelled { charged: Usd },

    /// A provider call failed with a final error (a refusal, or one not worth retrying).
    #[error(transparent)]
    Provider(LlmError),

    /// Every allowed attempt failed; each was settled in the ledger.
    #[error("gave up after {attempts} attempts (each is in the ledger); last error: {last}")]
    RetriesExhausted { attempts: u32, last: LlmError },

    /// The provider asked to wait longer than loopwright waits before a retry.
    #[error("the provider asked to wait {wait_secs}s before retrying, more than the {cap_secs}s loopwright waits; treated as final (a daily or account limit?) — try again later. Last error: {last}")]
    RetryAfterTooLong {
        wait_secs: u64,
        cap_secs: u64,
        last: LlmError,
    },

    /// An earlier violation stopped this Governor; no further calls are made.
    #[error("the model door is closed after an earlier violation: {reason}")]
    Stopped { reason: String, kind: ErrorKind },

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

    /// The ledger holds less than the run last knew it had spent: it was truncated, emptied or
    /// replaced.
    #[error("the spend ledger {path} accounts for {found} but this run had already recorded {expected} in it: the ledger was truncated, emptied or replaced. Restore it from a backup (spend must never be forgotten), or move the state dir aside to start a new run and budget")]
    LedgerShort {
        path: PathBuf,
        found: Usd,
        expected: Usd,
    },

    #[error("the price catalog cache {path} could not be used: {reason}")]
    Catalog { path: PathBuf, reason: String },

    /// The ledger database (`url` without its password) could not be used: `BadInput` when
    /// it is opened (a URL that cannot be used, a server that cannot be reached or refuses
    /// the login, a schema of another version, totals that do not match the rows), `Failure`
    /// when a reservation or settlement fails later.
    #[error("the ledger database {url}: {detail}")]
    LedgerDb {
        url: String,
        detail: String,
        kind: ErrorKind,
    },
}

impl GovernorError {
    /// What kind of stop this is (the CLI maps kinds to exit codes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            GovernorError::ModelRef(_)
            | GovernorError::Config(_)
            | GovernorError::MissingKey { .. }
            | GovernorError::UnknownPrice { .. }
            | GovernorError::LedgerCorrupt { .. }
            | GovernorError::LedgerShort { .. }
            | GovernorError::Catalog { .. } => ErrorKind::BadInput,
            GovernorError::BudgetExhausted { .. } | GovernorError::FreeOnlyViolation { .. } => {
                ErrorKind::Budget
            }
            GovernorError::PinViolation { .. } => ErrorKind::PinViolation,
            GovernorError::Overbilled { .. } => ErrorKind::Overbilled,
            GovernorError::Cancelled { .. } => ErrorKind::Cancelled,
            GovernorError::Provider(e) | GovernorError::RetriesExhausted { last: e, .. } => {
                provider_kind(e)
            }
            GovernorError::RetryAfterTooLong { .. } => ErrorKind::Failure,
            GovernorError::Stopped { kind, .. } => *kind,
            GovernorError::LedgerWrite { .. } | GovernorError::LedgerRead { .. } => {
                ErrorKind::Failure
            }
            GovernorError::LedgerDb { kind, .. } => *kind,
        }
    }
}

/// A final refusal by the provider that the user must fix in configuration (bad key, no access,
/// unknown model, a request the API rejects) is bad input; a provider-side spend or credit limit
/// is the budget; anything else (network, overload after retries, garbled answers) a failure.
fn provider_kind(e: &LlmError) -> ErrorKind {
    match e {
        LlmError::Http {
            status: 400 | 401 | 403 | 404 | 413 | 422,
            ..
        } => ErrorKind::BadInput,
        LlmError::Http { status: 402, .. } | LlmError::SpendLimit { .. } => ErrorKind::Budget,
        LlmError::InvalidRequest(_)
        | LlmError::ReplayDiverged(_)
        | LlmError::ReplayExhausted { .. }
        | LlmError::Cassette { .. } => ErrorKind::BadInput,
        LlmError::Cancelled => ErrorKind::Cancelled,
        _ => ErrorKind::Failure,
    }
}
