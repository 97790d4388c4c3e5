//! Wire clients for model APIs: Anthropic Messages and OpenAI-compatible Chat Completions
//! (OpenAI, OpenRouter, Ollama, llama.cpp, vLLM), streaming SSE, retries, and one neutral
//! message/tool/usage model. Only the Governor (crate `governor`) holds a [`ModelClient`].

pub mod client;
pub mod error;
pub mod money;
pub mod types;

pub use client::{Endpoint, ModelClient, RetryPolicy, WireFormat, WireOptions};
pub use error::LlmError;
pub use money::Usd;
pub use types::*;
