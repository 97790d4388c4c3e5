//! A scripted fake model server for tests, benches and the offline demo.
//!
//! [`FakeServer`] listens on `127.0.0.1` and speaks both wires loopwright talks: Anthropic
//! Messages (`POST …/v1/messages`) and OpenAI-compatible Chat Completions
//! (`POST …/chat/completions` under any prefix, e.g. `/v1` or `/api/v1`), streaming (SSE) or
//! not, plus an OpenRouter-style catalog at `GET …/models`. Each model request is answered by
//! the next [`Turn`] of a [`Script`] — a [`Reply`] (text, tool calls, stop reason, usage, cost,
//! served model) or a [`Fault`] (HTTP error with `retry-after`, cut stream, malformed SSE,
//! error event after HTTP 200, idle stall) — or by a handler that reads the request. Every
//! request is logged ([`LoggedRequest`]) for tests to assert on.
//!
//! The HTTP layer is a small hand-written HTTP/1.1 server on tokio rather than hyper or axum:
//! fault injection needs exact control of the bytes on the socket and when they are flushed —
//! closing a chunked body without its terminating chunk, writing half of a fixed-length body,
//! pausing between two SSE events, sending raw non-JSON lines — which a framework's body
//! abstraction hides or normalises. The server reads one request (`content-length` body) per
//! connection and answers with `connection: close`.
//!
//! [`TempPostgres`] starts a throwaway PostgreSQL server (for the ledger's database backend).
//!
//! This crate does not depend on `llm` (which dev-depends on it); it has its own types.
//!
//! ```no_run
//! # async fn demo() {
//! use testkit::{FakeServer, Script, Turn};
//! let server = FakeServer::start(Script::turns(vec![
//!     Turn::http_error_retry_after(429, "0"),
//!     Turn::text("Hello!"),
//! ]))
//! .await;
//! let base = server.anthropic_base_url();
//! // ... point a client at `base`, then:
//! assert_eq!(server.request_count(), 2);
//! # }
//! ```

mod catalog;
mod error;
mod http;
mod log;
pub mod postgres;
mod script;
mod server;
mod wire;

pub use catalog::{default_catalog, CatalogModel, Pricing};
pub use error::TestkitError;
pub use log::{LoggedRequest, Route};
pub use postgres::TempPostgres;
pub use script::{
    DelayFault, DripFault, ErrorEventFault, Fault, HttpFault, Quirks, Reply, Script, StallFault,
    StreamFault, ToolCall, Turn, TurnHandler, Usage,
};
pub use server::{refused_base_url, FakeServer};

/// Reads a JSON script file (see [`Script`] for the format).
pub fn load_script(path: &std::path::Path) -> Result<Script, TestkitError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestkitError::ReadScript {
        path: path.display().to_string(),
        source,
    })?;
    Script::from_json(&text).map_err(|source| TestkitError::ParseScript {
        path: path.display().to_string(),
        source,
    })
}
