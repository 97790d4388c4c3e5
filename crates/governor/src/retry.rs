//! When the Governor tries a call again, and how long it waits first. Which failures are worth
//! another attempt is the wire's knowledge ([`llm::LlmError::is_retryable`]); how many attempts,
//! and how long to wait, is decided here. Every attempt is reserved and settled in the ledger
//! (see [`crate::charge`] for what each one costs).

use llm::AttemptError;
use rand::Rng;
use std::time::Duration;

/// How many attempts a call gets and how the waits between them grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub max_attempts: u32,
    /// The first backoff ceiling; it doubles with each failed attempt ("full jitter").
    pub base_delay: Duration,
    /// The most a backoff waits.
    pub max_delay: Duration,
    /// The longest `retry-after` honoured. A server asking for more (an hour, a day: a daily or
    /// account limit) gets no retry: the call fails at once with a message saying so.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, backoff from 0.5 s up to 60 s, `retry-after` honoured up to 120 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// The failure is final (not retryable, or a replay).
    Final,
    /// Every allowed attempt was used.
    Exhausted,
    /// The server asked to wait longer than [`RetryPolicy::max_retry_after`].
    WaitTooLong(Duration),
}

impl RetryPolicy {
    /// Decides after failed attempt number `attempt` (1-based).
    pub fn next_step(&self, attempt: u32, failure: &AttemptError, rng: &mut impl Rng) -> NextStep {
        if !failure.error.is_retryable() {
            return NextStep::Final;
        }
        if attempt >= self.max_attempts.max(1) {
            return NextStep::Exhausted;
        }
        match failure.retry_after {
            Some(wait) if wait > self.max_retry_after => NextStep::WaitTooLong(wait),
            Some(wait) => NextStep::RetryAfter(wait),
            None => NextStep::RetryAfter(self.backoff(attempt, rng)),
        }
    }

    /// The wait before retrying after failed attempt number `attempt` (1-based): "full jitter",
    /// a uniformly random time between zero and `base_delay × 2^(attempt-1)`, capped at
    /// `max_delay`.
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        if ceiling_ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rng.gen_range(0..=ceiling_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm::{Delivery, LlmError};
    use rand::SeedableRng;

    fn failure(error: LlmError, retry_after: Option<Duration>) -> AttemptError {
        AttemptError {
            error,
            delivery: Delivery::NotSent,
            retry_after,
        }
    }

    fn overloaded() -> LlmError {
        LlmError::Http {
            status: 529,
            kind: "overloaded_error".into(),
            message: "busy".into(),
            request_id: None,
        }
    }

    #[test]
    fn backoff_stays_under_the_exponential_ceiling_and_max_delay() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..40 {
            for _ in 0..50 {
                let d = policy.backoff(attempt, &mut rng);
                let ceiling = (100u64 << (attempt - 1).min(30)).min(1000);
                assert!(d.as_millis() as u64 <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
        // Jitter: not every draw is the same.
        let draws: std::collections::HashSet<u128> = (0..50)
            .map(|_| policy.backoff(5, &mut rng).as_millis())
            .collect();
        assert!(draws.len() > 5);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap_and_final_beyond_it() {
        let policy = RetryPolicy::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let f = failure(overloaded(), Some(Duration::from_secs(3)));
        assert_eq!(
            policy.next_step(1, &f, &mut rng),
            NextStep::RetryAfter(Duration::from_secs(3))
        );
        let day = Duration::from_secs(86_400);
        let f = failure(overloaded(), Some(day));
        assert_eq!(
            policy.next_step(1, &f, &mut rng),
            NextStep::WaitTooLong(day)
        );
    }

    #[test]
    fn attempts_are_bounded_and_refusals_final() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let f = failure(overloaded(), None);
        assert!(matches!(
            policy.next_step(2, &f, &mut rng),
            NextStep::RetryAfter(_)
        ));
        assert_eq!(policy.next_step(3, &f, &mut rng), NextStep::Exhausted);
        let refused = failure(
            LlmError::Http {
                status: 400,
                kind: "invalid_request_error".into(),
                message: "no".into(),
                request_id: None,
            },
            None,
        );
        assert_eq!(policy.next_step(1, &refused, &mut rng), NextStep::Final);
        let deadline = failure(LlmError::DeadlineExceeded { secs: 1 }, None);
        assert_eq!(policy.next_step(1, &deadline, &mut rng), NextStep::Final);
    }
}
