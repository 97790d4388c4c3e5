//! Budget reservation, pure and testable: how much a call may cost at worst, how far
//! `max_tokens` must be lowered to fit the remaining budget, and when to refuse.

use crate::pricing::Price;
use llm::{Message, Prompt, ToolSpec, Usd};

/// The smallest answer worth asking for. When the remaining budget cannot pay for the input
/// bound plus this many output tokens (or the caller's own `max_tokens`, if smaller) the call
/// is refused: a model cut off after a few words only wastes the money.
pub const MIN_ANSWER_TOKENS: u32 = 256;

/// Tokens a provider may add around the text we send (role markers, tool-use scaffolding such
/// as Anthropic's tool system prompt), on top of one token per byte of text.
pub const REQUEST_OVERHEAD_TOKENS: u64 = 2048;

/// A planned call: the bound used, the (possibly lowered) `max_tokens`, and the worst-case cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub input_bound: u64,
    pub max_tokens: u32,
    pub reserved: Usd,
}

/// The call does not fit: even the smallest answer would need `needed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    pub needed: Usd,
}

/// Plans a call of at most `input_bound` input tokens asking for `max_tokens`, with
/// `remaining` budget (`None`: no budget). `max_tokens` is lowered to what the budget can pay
/// for; below `min(MIN_ANSWER_TOKENS, max_tokens)` the call is refused.
pub fn reserve(
    price: &Price,
    input_bound: u64,
    max_tokens: u32,
    remaining: Option<Usd>,
) -> Result<Reservation, Shortfall> {
    let full = price.worst_case(input_bound, u64::from(max_tokens));
    let Some(remaining) = remaining else {
        return Ok(Reservation {
            input_bound,
            max_tokens,
            reserved: full,
        });
    };
    if full <= remaining {
        return Ok(Reservation {
            input_bound,
            max_tokens,
            reserved: full,
        });
    }
    let floor = max_tokens.min(MIN_ANSWER_TOKENS);
    let needed = price.worst_case(input_bound, u64::from(floor));
    // ceil(X / 1e6) <= R  <=>  X <= R * 1e6 (X, R integers), so the largest affordable output
    // is floor((R * 1e6 - input part) / output price).
    let budget_scaled = i128::from(remaining.nanos().max(0)) * 1_000_000;
    let input_scaled = i128::from(input_bound) * i128::from(price.max_input().nanos());
    let output_price = i128::from(price.output.nanos());
    let affordable = if budget_scaled < input_scaled {
        0
    } else if output_price == 0 {
        i128::from(max_tokens)
    } else {
        (budget_scaled - input_scaled) / output_price
    };
    let affordable = u32::try_from(affordable.min(i128::from(max_tokens))).unwrap_or(max_tokens);
    if affordable < floor || affordable == 0 {
        return Err(Shortfall { needed });
    }
    let reserved = price.worst_case(input_bound, u64::from(affordable));
    debug_assert!(reserved <= remaining);
    Ok(Reservation {
        input_bound,
        max_tokens: affordable,
        reserved,
    })
}

/// What the Governor remembers of a session's previous call, to bound the next one's input.
#[derive(Debug, Clone)]
pub struct PreviousCall {
    system: String,
    tools: Vec<ToolSpec>,
    messages: Vec<Message>,
    /// Reported input (all kinds) + output tokens of that call.
    tokens: u64,
}

impl PreviousCall {
    /// Remembers a call whose usage the server reported (estimated usage is not remembered:
    /// an estimate is no bound).
    pub fn new(prompt: &Prompt, total_input: u64, output: u64) -> PreviousCall {
        PreviousCall {
            system: prompt.system.clone(),
            tools: prompt.tools.clone(),
            messages: prompt.messages.clone(),
            tokens: total_input.saturating_add(output),
        }
    }
}

/// An upper bound of the input tokens of `prompt`: bytes of the whole prompt (a token is at
/// least one byte) plus [`REQUEST_OVERHEAD_TOKENS`]; tighter when the request extends the
/// session's previous one (same system and tools, previous messages as a prefix): the previous
/// call's reported input + output tokens plus the bytes of the messages added since.
pub fn input_upper_bound(previous: Option<&PreviousCall>, request: &Prompt) -> u64 {
    let from_bytes = (request.approx_bytes() as u64).saturating_add(REQUEST_OVERHEAD_TOKENS);
    let Some(prev) = previous else {
        return from_bytes;
    };
    let extends = prev.system == request.system
        && prev.tools == request.tools
        && request.messages.len() >= prev.messages.len()
        && request.messages[..prev.messages.len()] == prev.messages[..];
    if !extends {
        return from_bytes;
    }
    let added: u64 = request.messages[prev.messages.len()..]
        .iter()
        .map(|m| m.approx_bytes() as u64)
        .sum();
    prev.tokens.saturating_add(added).min(from_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charge::settlement;
    use llm::{ContentPart, Usage};
    use proptest::prelude::*;

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

    #[test]
    fn no_budget_reserves_the_full_worst_case() {
        let r = reserve(&sonnet(), 1000, 4096, None).unwrap();
        assert_eq!(r.max_tokens, 4096);
        // 1000 * 3.75 + 4096 * 15 = 3750 + 61440 µ$
        assert_eq!(r.reserved, usd("0.06519"));
    }

    #[test]
    fn max_tokens_is_lowered_to_what_the_budget_pays_for() {
        // $0.02 left: 1000 input at 3.75 = $0.00375; the rest buys 1083 output tokens at $15/M.
        let r = reserve(&sonnet(), 1000, 4096, Some(usd("0.02"))).unwrap();
        assert_eq!(r.max_tokens, 1083);
        assert!(r.reserved <= usd("0.02"));
        assert!(
            sonnet().worst_case(1000, 1084) > usd("0.02"),
            "one more token would not fit"
        );
    }

    #[test]
    fn refuses_when_even_a_small_answer_does_not_fit() {
        let s = reserve(&sonnet(), 1000, 4096, Some(usd("0.005"))).unwrap_err();
        assert_eq!(
            s.needed,
            sonnet().worst_case(1000, u64::from(MIN_ANSWER_TOKENS))
        );
        assert!(s.needed > usd("0.005"));
        // The input alone over budget.
        assert!(reserve(&sonnet(), 1_000_000, 4096, Some(usd("1"))).is_err());
        // A caller asking for fewer tokens than the floor needs only that many.
        let r = reserve(&sonnet(), 100, 10, Some(usd("0.001"))).unwrap();
        assert_eq!(r.max_tokens, 10);
    }

    #[test]
    fn free_models_always_fit() {
        let r = reserve(&Price::FREE, 10_000_000, 8192, Some(Usd::ZERO)).unwrap();
        assert_eq!((r.max_tokens, r.reserved), (8192, Usd::ZERO));
    }

    fn request(messages: Vec<Message>) -> Prompt {
        Prompt {
            system: "you are a coder".into(),
            messages,
            ..Prompt::default()
        }
    }

    #[test]
    fn input_bound_grows_from_the_previous_call() {
        let m1 = Message::user_text("x".repeat(4000));
        let first = request(vec![m1.clone()]);
        let b1 = input_upper_bound(None, &first);
        assert_eq!(b1, first.approx_bytes() as u64 + REQUEST_OVERHEAD_TOKENS);
        let prev = PreviousCall::new(&first, 1000, 200);
        let reply = Message::assistant(vec![ContentPart::Text { text: "ok".into() }]);
        let next_msg = Message::user_text("y".repeat(100));
        let second = request(vec![m1.clone(), reply.clone(), next_msg.clone()]);
        assert_eq!(
            input_upper_bound(Some(&prev), &second),
            1200 + reply.approx_bytes() as u64 + next_msg.approx_bytes() as u64
        );
        // A different conversation in the same session falls back to bytes.
        let other = request(vec![Message::user_text("z".repeat(50))]);
        assert_eq!(
            input_upper_bound(Some(&prev), &other),
            other.approx_bytes() as u64 + REQUEST_OVERHEAD_TOKENS
        );
        // Never above the byte bound.
        let huge_prev = PreviousCall::new(&first, 1_000_000, 0);
        assert_eq!(
            input_upper_bound(Some(&huge_prev), &second),
            second.approx_bytes() as u64 + REQUEST_OVERHEAD_TOKENS
        );
    }

    fn arb_price() -> impl Strategy<Value = Price> {
        // Up to $100 per Mtok, any nano-dollar amount; cache prices independent.
        let p = 0i64..100_000_000_000;
        (p.clone(), p.clone(), p.clone(), p).prop_map(|(i, o, r, w)| Price {
            input: Usd::from_nanos(i),
            output: Usd::from_nanos(o),
            cache_read: Usd::from_nanos(r),
            cache_write: Usd::from_nanos(w),
        })
    }

    proptest! {
        /// However usage, prices, max_tokens and request sizes fall, as long as the server
        /// stays within the bounds the reservation assumed (input ≤ bound, output ≤
        /// max_tokens), the settled costs never sum past the budget.
        #[test]
        fn settled_costs_never_exceed_the_budget(
            price in arb_price(),
            budget_nanos in 0i64..5_000_000_000,
            calls in proptest::collection::vec(
                (0u64..200_000, 1u32..64_000, 0u32..=100, 0u32..=100, 0u32..=100, 0u32..=100),
                1..40,
            ),
        ) {
            let budget = Usd::from_nanos(budget_nanos);
            let mut spent = Usd::ZERO;
            for (bound, max_tokens, in_pct, out_pct, read_pct, write_pct) in calls {
                let remaining = budget.saturating_sub(spent);
                let Ok(r) = reserve(&price, bound, max_tokens, Some(remaining)) else { continue };
                prop_assert!(r.reserved <= remaining);
                prop_assert!(r.max_tokens <= max_tokens);
                prop_assert!(r.max_tokens >= max_tokens.min(MIN_ANSWER_TOKENS));
                // The server uses part of the input bound, split across the kinds of input.
                let total_in = r.input_bound * u64::from(in_pct) / 100;
                let read = total_in * u64::from(read_pct) / 100;
                let write = (total_in - read) * u64::from(write_pct) / 100;
                let usage = Usage {
                    input_tokens: total_in - read - write,
                    cache_read_tokens: read,
                    cache_write_tokens: write,
                    output_tokens: u64::from(r.max_tokens) * u64::from(out_pct) / 100,
                    reported_cost: None,
                    estimated: false,
                };
                let cost = settlement(Some(price.cost(&usage)), None);
                prop_assert!(cost <= r.reserved, "settled {cost} above reserved {}", r.reserved);
                spent = spent.saturating_add(cost);
                prop_assert!(spent <= budget, "spent {spent} above budget {budget}");
            }
        }
    }
}
