//! Wire clients for model APIs: Anthropic Messages and OpenAI-compatible Chat Completions
//! (OpenAI, OpenRouter, Ollama, llama.cpp, vLLM), streaming SSE, deadlines and cancellation,
//! record/replay, and one neutral message/tool/usage model. A client makes one attempt per
//! `send`; retrying is the Governor's, which reserves and settles each attempt. Only the
//! Governor (crate `governor`) holds a [`ModelClient`].

pub mod anthropic;
pub mod atomic;
pub mod cassette;
pub mod client;
pub mod error;
pub mod money;
pub mod openai;
pub mod retry;
pub mod sse;
pub mod text_tools;
pub mod types;

pub use atomic::atomic_write;
pub use cassette::{CassetteEntry, CassetteReader, CassetteWriter};
pub use client::{
    parse_response_body, AttemptError, Delivery, Endpoint, ModelClient, Timeouts, WireFormat,
    WireOptions,
};
pub use error::LlmError;
pub use money::Usd;
pub use text_tools::{CallFilter, TextProtocol, ToolProtocol};
pub use types::*;
