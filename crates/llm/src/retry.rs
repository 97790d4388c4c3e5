//! What is worth another attempt, how long the server asked to wait, and how HTTP error bodies
//! of both formats read. The retrying itself is the Governor's (crate `governor`): it reserves
//! and settles every attempt in its ledger.

use crate::client::WireFormat;
use crate::error::LlmError;
use crate::types::Usage;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// Reads a `retry-after` header value: whole or fractional seconds, or an HTTP date (a date in
/// the past means "now"). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0 * 365.0)));
        }
        return None;
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// True for HTTP statuses worth another attempt: 408, 409 (Anthropic's transient conflict), 429,
/// 529 and every 5xx.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 529) || (500..600).contains(&status)
}

impl LlmError {
    /// True when another attempt may succeed: retryable HTTP statuses, transport failures,
    /// first-byte and idle timeouts, truncated streams, malformed bodies or events, and mid-stream
    /// errors that say the server was overloaded or failed internally. Not: refusals, the
    /// per-call deadline (the next attempt would likely take as long), cancellation, replay.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => retryable_status(*status),
            LlmError::Transport(_)
            | LlmError::FirstByteTimeout { .. }
            | LlmError::IdleTimeout { .. }
            | LlmError::Truncated(_)
            | LlmError::Malformed(_) => true,
            LlmError::StreamError { kind, .. } => {
                let k = kind.to_ascii_lowercase();
                let transient_name = [
                    "overloaded",
                    "api_error",
                    "server_error",
                    "rate_limit",
                    "timeout",
                    "unavailable",
                ]
                .iter()
                .any(|w| k.contains(w));
                let transient_code = k.parse::<u16>().map(retryable_status).unwrap_or(false);
                transient_name || transient_code
            }
            _ => false,
        }
    }
}

/// True when an error message says a spend, credit or billing limit (not a rate limit) stopped
/// the call.
fn mentions_spend_limit(kind: &str, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    let k = kind.to_ascii_lowercase();
    k == "insufficient_quota"
        || [
            "spend limit",
            "spending limit",
            "credit limit",
            "insufficient credit",
            "credit balance",
            "out of credits",
            "billing",
            "usage limits",
        ]
        .iter()
        .any(|w| m.contains(w))
}

/// Turns an HTTP error answer into an error: the provider's error type/code and message from
/// either format's body (`{type:"error", error:{type, message}}`, `{error:{code|type, message}}`
/// or `{error: "text"}`); a spend or credit refusal (402, or a 400/403/429 that says so) becomes
/// [`LlmError::SpendLimit`].
pub fn error_from_http(status: u16, body: &[u8], header_request_id: Option<String>) -> LlmError {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (kind, message) = match parsed.as_ref().map(|v| &v["error"]) {
        Some(Value::String(s)) => (status.to_string(), s.clone()),
        Some(err @ Value::Object(_)) => {
            let kind = match (&err["type"], &err["code"]) {
                (Value::String(s), _) | (_, Value::String(s)) => s.clone(),
                (_, Value::Number(n)) => n.to_string(),
                _ => status.to_string(),
            };
            let message = err["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            (kind, message)
        }
        _ => {
            let snippet: String = text.chars().take(500).collect();
            let message = if snippet.trim().is_empty() {
                "(empty body)".to_string()
            } else {
                snippet
            };
            (status.to_string(), message)
        }
    };
    let request_id = header_request_id.or_else(|| {
        parsed
            .as_ref()
            .and_then(|v| v["request_id"].as_str())
            .map(str::to_string)
    });
    if status == 402 || (matches!(status, 400 | 403 | 429) && mentions_spend_limit(&kind, &message))
    {
        return LlmError::SpendLimit { status, message };
    }
    LlmError::Http {
        status,
        kind,
        message,
        request_id,
    }
}

/// The usage an HTTP error body reports, if any (a top-level `usage` object in the wire's
/// format). Providers bill nothing for a refused request unless they say otherwise here.
pub fn usage_in_error_body(wire: WireFormat, body: &[u8]) -> Option<Usage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(match wire {
        WireFormat::Anthropic => crate::anthropic::parse_usage(u),
        WireFormat::Openai => crate::openai::parse_usage(u),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stream_errors_retryable_by_kind() {
        let se = |k: &str| LlmError::StreamError {
            kind: k.into(),
            message: String::new(),
        };
        assert!(se("overloaded_error").is_retryable());
        assert!(se("api_error").is_retryable());
        assert!(se("502").is_retryable());
        assert!(!se("invalid_request_error").is_retryable());
        assert!(!se("400").is_retryable());
    }

    #[test]
    fn deadlines_and_cancellation_are_final_but_malformed_events_are_retried() {
        assert!(LlmError::Malformed("x".into()).is_retryable());
        assert!(LlmError::FirstByteTimeout { secs: 1 }.is_retryable());
        assert!(LlmError::IdleTimeout { secs: 1 }.is_retryable());
        assert!(!LlmError::DeadlineExceeded { secs: 1 }.is_retryable());
        assert!(!LlmError::Cancelled.is_retryable());
    }

    #[test]
    fn error_bodies_bill_only_the_usage_they_report() {
        let plain = br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
        assert_eq!(usage_in_error_body(WireFormat::Anthropic, plain), None);
        let billed =
            br#"{"error":{"message":"cut"},"usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
        let u = usage_in_error_body(WireFormat::Openai, billed).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (12, 3));
        assert_eq!(usage_in_error_body(WireFormat::Openai, b"not json"), None);
    }
}
