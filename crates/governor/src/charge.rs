//! What one attempt costs: the charging rule, and what counts as over-billing. Pure and
//! testable; the Governor applies it to every attempt and writes the result in the ledger.
//!
//! # The rule
//! Every attempt that may have reached the provider is reserved before it is sent (its worst
//! case: the input bound at the dearest input price plus `max_tokens` at the output price) and
//! settled after it, as its own ledger entry:
//!
//! | how the attempt ended | charged |
//! | --- | --- |
//! | answered | its usage at the model's price, or the provider-reported cost when higher |
//! | not sent (connection refused, DNS or TLS failure, connect timeout, replay) | nothing |
//! | refused with an HTTP error status | nothing, unless the error body reports usage (then that usage) |
//! | torn after it was sent, with the provider's final usage already received | that usage |
//! | torn, with the input counts of the stream's start (Anthropic `message_start`) | those input tokens at their price + `max_tokens` output tokens |
//! | torn, nothing reported | the whole reservation |
//!
//! "Torn" is every attempt that was sent and did not bring a complete answer: a stream cut after
//! HTTP 200, a first-byte, idle or per-call timeout, a malformed event, an error event after
//! HTTP 200, a cancellation (Ctrl-C), an answer that could not be recorded.
//!
//! Why the output of a torn attempt is charged at `max_tokens` and not at the tokens seen:
//! what the client received is a lower bound of what the provider generated. A provider or a
//! router in between may keep generating after the connection broke and bill the whole
//! completion (OpenRouter documents that providers without stream cancellation bill the full
//! response; a cut connection is noticed late). `max_tokens` is the most it can bill, so the
//! ledger never shows less than the provider's invoice, and an honest provider never takes the
//! ledger past the budget. The price of that certainty: a torn attempt usually counts close to
//! its reservation, so a budget near its end may refuse the retry (the call then stops with
//! "budget exhausted", exit 3, and the run resumes with a larger budget).
//!
//! With no known price (only allowed without a budget) an attempt is charged what the provider
//! reported, or nothing. Usage a server did not report and the client estimated is charged at
//! the estimate, never above the reservation.
//!
//! # Over-billing
//! Usage reported above what the call asked for breaks the call's contract: output tokens above
//! the `max_tokens` sent, total input tokens far above the input bound (more than
//! [`INPUT_BOUND_SLACK`] times it), or a cost above the reservation (a provider-reported cost
//! counts). The bound counts a token per byte, which no tokenizer reaches, but a bound carried
//! over from the previous call's reported figures can be off by a template's worth of tokens;
//! input between the bound and twice it costs no more than was reserved unless the cost check
//! says so, and the cost check is what keeps the budget. Token checks apply to priced models
//! only (a local server's counts cost nothing); the cost check to every model with a known
//! price (a `:free` model reporting a cost is over-billed). Estimated usage is never
//! over-billing. Over-billed usage is recorded as reported, flagged, and stops the Governor.

use crate::budget::Reservation;
use crate::pricing::{per_mtok_total, Price};
use llm::{SeenUsage, Usage, Usd};
use serde::{Deserialize, Serialize};

/// Reported input is over-billing above this many times the input bound (see the module docs).
pub const INPUT_BOUND_SLACK: u64 = 2;

/// How an attempt ended, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// A complete answer.
    Answered,
    /// Nothing reached the provider.
    NotSent,
    /// The provider refused with an HTTP error status.
    Refused,
    /// Sent, and no complete answer came back.
    Torn,
    /// Cancelled while in flight (charged as torn).
    Cancelled,
}

impl AttemptOutcome {
    /// The name the ledger gives it (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Answered => "answered",
            AttemptOutcome::NotSent => "not_sent",
            AttemptOutcome::Refused => "refused",
            AttemptOutcome::Torn => "torn",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

/// What the charge of a torn attempt was based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornBasis {
    /// The provider's final usage had arrived.
    FinalUsage,
    /// The input counts of the stream's start, plus `max_tokens` of output.
    ReportedInput,
    /// Nothing reported: the whole reservation.
    Reservation,
    /// No price known: only a reported cost could be charged, and none came.
    UnknownPrice,
}

impl TornBasis {
    /// For the ledger note.
    pub fn describe(self) -> &'static str {
        match self {
            TornBasis::FinalUsage => "its final usage had arrived",
            TornBasis::ReportedInput => "the input it reported plus max_tokens of output",
            TornBasis::Reservation => "nothing reported: the whole reservation",
            TornBasis::UnknownPrice => "no price known and no cost reported",
        }
    }
}

/// The cost to settle for usage the provider reported: the provider-reported cost and the
/// cost computed from the usage at `price` — the larger of the two when both exist, so neither
/// a provider that under-reports nor a stale price table can make the ledger under-count.
pub fn settlement(computed: Option<Usd>, reported: Option<Usd>) -> Usd {
    match (computed, reported) {
        (Some(c), Some(r)) => c.max(r),
        (Some(c), None) => c,
        (None, Some(r)) => r,
        (None, None) => Usd::ZERO,
    }
}

/// The charge of an attempt that answered (or whose final usage arrived): [`settlement`] of
/// its usage at `price`. Estimated usage is capped at the reservation (the estimate is ours;
/// an honest provider stays within what was reserved).
pub fn answered(price: Option<&Price>, usage: &Usage, plan: &Reservation) -> Usd {
    let cost = settlement(price.map(|p| p.cost(usage)), usage.reported_cost);
    if usage.estimated && price.is_some() {
        cost.min(plan.reserved)
    } else {
        cost
    }
}

/// The charge of a refused attempt: nothing, unless the error body reported usage.
pub fn refused(price: Option<&Price>, usage: Option<&Usage>, plan: &Reservation) -> Usd {
    usage.map_or(Usd::ZERO, |u| answered(price, u, plan))
}

/// The charge of a torn attempt, and what it was based on (see the module docs).
pub fn torn(price: Option<&Price>, seen: &SeenUsage, plan: &Reservation) -> (Usd, TornBasis) {
    if let Some(last) = &seen.last {
        return (answered(price, last, plan), TornBasis::FinalUsage);
    }
    let Some(price) = price else {
        return (Usd::ZERO, TornBasis::UnknownPrice);
    };
    match &seen.input {
        Some(input) => (
            per_mtok_total(&[
                (input.input_tokens, price.input),
                (input.cache_read_tokens, price.cache_read),
                (input.cache_write_tokens, price.cache_write),
                (u64::from(plan.max_tokens), price.output),
            ]),
            TornBasis::ReportedInput,
        ),
        None => (plan.reserved, TornBasis::Reservation),
    }
}

/// Why `usage` (charged `cost`) is above what the call asked for, or `None` when it is not.
/// `price` is the pinned model's (`None`: unknown, nothing to check).
pub fn overbilling(
    price: Option<&Price>,
    plan: &Reservation,
    usage: &Usage,
    cost: Usd,
) -> Option<String> {
    let price = price?;
    if usage.estimated {
        return None;
    }
    let mut why = Vec::new();
    if !price.is_free() {
        if usage.output_tokens > u64::from(plan.max_tokens) {
            why.push(format!(
                "{} output tokens for max_tokens {}",
                usage.output_tokens, plan.max_tokens
            ));
        }
        if usage.total_input() > plan.input_bound.saturating_mul(INPUT_BOUND_SLACK) {
            why.push(format!(
                "{} input tokens, far above the bound of {}",
                usage.total_input(),
                plan.input_bound
            ));
        }
    }
    if cost > plan.reserved {
        why.push(format!(
            "a cost of {cost} above the {} reserved",
            plan.reserved
        ));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Usd {
        Usd::parse_decimal(s).unwrap()
    }

    fn sonnet() -> Price {
        Price {
            input: usd("3"),
            output: usd("15"),
            cache_write: usd("3.75"),
            cache_read: usd("0.3"),
        }
    }

    fn plan() -> Reservation {
        // 1000 input at 3.75 + 1000 output at 15 = 0.01875
        Reservation {
            input_bound: 1000,
            max_tokens: 1000,
            reserved: sonnet().worst_case(1000, 1000),
        }
    }

    #[test]
    fn settlement_takes_the_larger_figure() {
        assert_eq!(settlement(Some(usd("1")), Some(usd("2"))), usd("2"));
        assert_eq!(settlement(Some(usd("3")), Some(usd("2"))), usd("3"));
        assert_eq!(settlement(None, Some(usd("2"))), usd("2"));
        assert_eq!(settlement(None, None), Usd::ZERO);
    }

    #[test]
    fn torn_attempts_charge_what_may_have_been_billed() {
        let p = sonnet();
        let nothing = SeenUsage::default();
        assert_eq!(
            torn(Some(&p), &nothing, &plan()),
            (plan().reserved, TornBasis::Reservation)
        );
        let input = SeenUsage {
            input: Some(Usage {
                input_tokens: 100,
                cache_read_tokens: 200,
                ..Usage::default()
            }),
            last: None,
        };
        // 100 × 3 + 200 × 0.3 + 1000 × 15 per Mtok = 300 + 60 + 15000 µ$.
        assert_eq!(
            torn(Some(&p), &input, &plan()),
            (usd("0.01536"), TornBasis::ReportedInput)
        );
        let last = SeenUsage {
            input: None,
            last: Some(Usage {
                input_tokens: 100,
                output_tokens: 10,
                ..Usage::default()
            }),
        };
        assert_eq!(
            torn(Some(&p), &last, &plan()),
            (usd("0.00045"), TornBasis::FinalUsage)
        );
        assert_eq!(
            torn(None, &input, &plan()),
            (Usd::ZERO, TornBasis::UnknownPrice)
        );
    }

    #[test]
    fn refusals_bill_nothing_unless_the_body_says_so() {
        assert_eq!(refused(Some(&sonnet()), None, &plan()), Usd::ZERO);
        let u = Usage {
            input_tokens: 1000,
            ..Usage::default()
        };
        assert_eq!(refused(Some(&sonnet()), Some(&u), &plan()), usd("0.003"));
    }

    #[test]
    fn estimates_never_charge_above_the_reservation() {
        let u = Usage {
            input_tokens: 1000,
            output_tokens: 50_000,
            estimated: true,
            ..Usage::default()
        };
        assert_eq!(answered(Some(&sonnet()), &u, &plan()), plan().reserved);
        assert_eq!(
            overbilling(Some(&sonnet()), &plan(), &u, plan().reserved),
            None
        );
    }

    #[test]
    fn over_billing_names_what_was_above_the_ask() {
        let p = sonnet();
        let honest = Usage {
            input_tokens: 1000,
            output_tokens: 1000,
            ..Usage::default()
        };
        let cost = answered(Some(&p), &honest, &plan());
        assert_eq!(overbilling(Some(&p), &plan(), &honest, cost), None);
        let long = Usage {
            output_tokens: 1001,
            ..honest.clone()
        };
        let why = overbilling(Some(&p), &plan(), &long, answered(Some(&p), &long, &plan()));
        assert!(why
            .as_deref()
            .unwrap()
            .contains("1001 output tokens for max_tokens 1000"));
        let near = Usage {
            input_tokens: 2000,
            output_tokens: 0,
            ..Usage::default()
        };
        assert_eq!(
            overbilling(Some(&p), &plan(), &near, answered(Some(&p), &near, &plan())),
            None,
            "up to twice the bound is tolerated when it costs no more than reserved"
        );
        let far = Usage {
            input_tokens: 2001,
            ..near.clone()
        };
        let why = overbilling(Some(&p), &plan(), &far, answered(Some(&p), &far, &plan()));
        assert!(
            why.as_deref()
                .unwrap()
                .contains("2001 input tokens, far above"),
            "{why:?}"
        );
        let dear = Usage {
            reported_cost: Some(usd("0.05")),
            ..honest.clone()
        };
        let why = overbilling(Some(&p), &plan(), &dear, answered(Some(&p), &dear, &plan()));
        assert!(
            why.as_deref()
                .unwrap()
                .contains("above the $0.018750 reserved"),
            "{why:?}"
        );
        // A free model: token counts are not checked, a cost is.
        let free_plan = Reservation {
            reserved: Usd::ZERO,
            ..plan()
        };
        assert_eq!(
            overbilling(Some(&Price::FREE), &free_plan, &long, Usd::ZERO),
            None
        );
        assert!(overbilling(Some(&Price::FREE), &free_plan, &dear, usd("0.05")).is_some());
        assert_eq!(overbilling(None, &plan(), &long, usd("9")), None);
    }
}
