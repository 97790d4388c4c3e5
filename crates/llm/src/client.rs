//! The one model client: an endpoint, a wire format, retries, streaming.
//!
//! SKELETON — the bodies are filled in by the llm work; the signatures are what the Governor uses.

use crate::error::LlmError;
use crate::types::{Request, Response, StreamEvent};
use std::time::Duration;

/// Which wire format an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// Anthropic Messages (`POST {base}/v1/messages`).
    Anthropic,
    /// OpenAI-compatible Chat Completions (`POST {base}/chat/completions`).
    Openai,
}

/// Where and how to reach a provider.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub wire: WireFormat,
    /// Anthropic: `https://api.anthropic.com` (the client appends `/v1/messages`).
    /// OpenAI-compatible: the API root including `/v1` (`https://api.openai.com/v1`,
    /// `https://openrouter.ai/api/v1`, `http://localhost:11434/v1`); the client appends
    /// `/chat/completions`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Extra headers (OpenRouter's `HTTP-Referer`, `X-Title`).
    pub extra_headers: Vec<(String, String)>,
}

/// Request-shaping choices made by the Governor.
#[derive(Debug, Clone)]
pub struct WireOptions {
    pub stream: bool,
    /// Anthropic: put `cache_control` breakpoints on tools+system and the newest user turn.
    pub prompt_caching: bool,
    /// OpenRouter: send `provider: {allow_fallbacks: false}` (and never a `models` list).
    pub openrouter_pin: bool,
}

impl Default for WireOptions {
    fn default() -> Self {
        WireOptions {
            stream: true,
            prompt_caching: true,
            openrouter_pin: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A stream that sends nothing (not even a ping/keep-alive) for this long is abandoned.
    pub idle_timeout: Duration,
    /// Time allowed to connect and receive response headers.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// A client for one endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ModelClient {
    pub endpoint: Endpoint,
    pub options: WireOptions,
    pub retry: RetryPolicy,
}

impl ModelClient {
    pub fn new(endpoint: Endpoint, options: WireOptions, retry: RetryPolicy) -> Result<ModelClient, LlmError> {
        Ok(ModelClient {
            endpoint,
            options,
            retry,
        })
    }

    /// Sends `request` (retrying per policy) and returns the complete answer. `on_event` sees
    /// text and tool calls as they stream in, and every retry.
    pub async fn send(
        &self,
        request: &Request,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Response, LlmError> {
        let _ = (request, on_event);
        todo!("filled in by the llm work")
    }
}
