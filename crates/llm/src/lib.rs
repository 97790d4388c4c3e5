//! Wire clients for model APIs: Anthropic Messages and OpenAI-compatible Chat Completions
//! (OpenAI, OpenRouter, Ollama, llama.cpp, vLLM), streaming SSE, retries, record/replay, and one
//! neutral message/tool/usage model. Only the Governor (crate `governor`) holds a
//! [`ModelClient`].

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
    parse_response_body, Endpoint, ModelClient, RetryPolicy, WireFormat, WireOptions,
};
pub use error::LlmError;
pub use money::Usd;
pub use text_tools::{CallFilter, TextProtocol, ToolProtocol};
pub use types::*;
