//! Errors of the wire clients.

/// What went wrong talking to a model API.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The server answered with an HTTP error status.
    #[error("the model API answered HTTP {status} ({kind}): {message}")]
    Http {
        status: u16,
        /// Provider error type/code (`rate_limit_error`, `overloaded_error`, `402`...).
        kind: String,
        message: String,
        request_id: Option<String>,
    },
    /// The provider refused because a spend or credit limit was reached: final, never retried.
    #[error(
        "the provider refused the call because a spend or credit limit was reached: {message}"
    )]
    SpendLimit { status: u16, message: String },
    /// An `error` event/object inside a stream that began with HTTP 200.
    #[error("the model API reported an error mid-stream ({kind}): {message}")]
    StreamError { kind: String, message: String },
    /// Connecting or reading failed.
    #[error("could not reach the model API: {0}")]
    Transport(String),
    /// No response headers within the first-byte timeout.
    #[error("the model API sent no response headers within {secs}s (a local server may need longer to read a long prompt: raise first_byte_timeout_secs in its [providers.NAME] table)")]
    FirstByteTimeout { secs: u64 },
    /// The stream went silent for longer than the idle timeout.
    #[error("the model API stream sent nothing for {secs}s; giving up on this attempt (idle_timeout_secs in the provider's [providers.NAME] table)")]
    IdleTimeout { secs: u64 },
    /// The attempt as a whole took longer than the per-call deadline (a stream that only sends
    /// keep-alives, or a very slow answer). Not retried: the next attempt would likely do the same.
    #[error("the model call took longer than the {secs}s allowed for one call and was abandoned (call_timeout_secs in the provider's [providers.NAME] table)")]
    DeadlineExceeded { secs: u64 },
    /// The caller cancelled the call (Ctrl-C) while it was in flight.
    #[error("the model call was cancelled while in flight")]
    Cancelled,
    /// The body could not be understood.
    #[error("the model API sent a response that could not be parsed: {0}")]
    Malformed(String),
    /// The stream ended before the message was complete.
    #[error("the model API stream ended before the answer was complete: {0}")]
    Truncated(String),
    /// Replaying a cassette: the run asked for something the recording did not contain.
    #[error("replay diverged from the recording: {0}")]
    ReplayDiverged(String),
    /// Replaying a cassette: no recorded responses left.
    #[error("replay cassette ran out after {used} responses; the recording ends here")]
    ReplayExhausted { used: usize },
    /// A cassette file could not be read or written.
    #[error("cassette {path}: {message}")]
    Cassette { path: String, message: String },
    /// A request that cannot be sent (bad configuration, unrepresentable content).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}
