//! One agent session: a system prompt and a task, then model turn → tool calls → results until
//! the model ends its turn or a limit hits; the [`watchdog`] ends a session that misbehaves. Every model call goes through the `governor`; tool
//! calls go to the `tools` toolbox (plus any [`tools::Tool`] the caller adds, watched through
//! [`SessionHooks`]). A session reports
//! [`Event`]s to an [`EventSink`] and keeps a JSONL [`Transcript`].
//!
//! [`run`] is the long-running orchestrator built on sessions: planning, frozen feature checks,
//! build sessions verified by the harness, resume, and stopping.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod events;
pub mod fingerprint;
pub mod interrupt;
pub mod outcome;
pub mod run;
pub mod session;
pub mod stop;
pub mod transcript;
mod untrusted_file;
pub mod watchdog;

pub use events::{CollectEvents, Event, EventKind, EventSink, NoEvents};
pub use interrupt::{Interrupt, Signal};
pub use outcome::{EndReason, SessionOutcome};
pub use session::{
    default_context_window, Session, SessionConfig, SessionError, SessionHooks,
    DEFAULT_MAX_TOOL_RESULT_CHARS, DEFAULT_WRAP_UP,
};
pub use stop::StopReason;
pub use tools::{BoxFuture, Tool};
pub use transcript::{Transcript, TranscriptEntry};
pub use watchdog::WatchdogConfig;
