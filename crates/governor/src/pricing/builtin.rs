//! The price table compiled into loopwright, and how model ids find their row.

use super::Price;
use crate::model_ref::Provider;
use llm::Usd;

const fn milli(m: i64) -> Usd {
    Usd::from_nanos(m * 1_000_000)
}

/// Price in thousandths of a dollar per Mtok: input, output, cache write, cache read.
pub(super) const fn p(input: i64, output: i64, cache_write: i64, cache_read: i64) -> Price {
    Price {
        input: milli(input),
        output: milli(output),
        cache_read: milli(cache_read),
        cache_write: milli(cache_write),
    }
}

/// Built-in prices, USD per million tokens.
///
/// Anthropic: platform.claude.com/docs/en/about-claude/pricing (read 2026-11): cache write is
/// the 5-minute write, 1.25 × input; cache read 0.1 × input. Prices for prompts over 200K tokens
/// (1M-context beta) are higher and not modelled: loopwright does not request that beta.
/// OpenAI: developers.openai.com/api/docs/pricing (read 2026-11): OpenAI charges nothing extra
/// for cache writes (write = input); cached input is 0.25–0.5 × input (GPT-4.x, o-series) or
/// 0.1 × (GPT-5 family).
/// Keys are aliases; dated snapshots (`-20250929`, `-2025-04-14`) and `-latest` resolve to them.
pub(super) const BUILTIN: &[(Provider, &[&str], Price)] = &[
    (
        Provider::Anthropic,
        &["claude-opus-5"],
        p(5000, 25000, 6250, 500),
    ),
    (
        Provider::Anthropic,
        &["claude-opus-4-8"],
        p(5000, 25000, 6250, 500),
    ),
    (
        Provider::Anthropic,
        &["claude-opus-4-7"],
        p(5000, 25000, 6250, 500),
    ),
    (
        Provider::Anthropic,
        &["claude-opus-4-6"],
        p(5000, 25000, 6250, 500),
    ),
    (
        Provider::Anthropic,
        &["claude-opus-4-5"],
        p(5000, 25000, 6250, 500),
    ),
    (
        Provider::Anthropic,
        &["claude-opus-4-1"],
        p(15000, 75000, 18750, 1500),
    ),
    (
        Provider::Anthropic,
        &["claude-opus-4-0", "claude-opus-4"],
        p(15000, 75000, 18750, 1500),
    ),
    (
        Provider::Anthropic,
        &["claude-sonnet-4-6"],
        p(3000, 15000, 3750, 300),
    ),
    (
        Provider::Anthropic,
        &["claude-sonnet-4-5"],
        p(3000, 15000, 3750, 300),
    ),
    (
        Provider::Anthropic,
        &["claude-sonnet-4-0", "claude-sonnet-4"],
        p(3000, 15000, 3750, 300),
    ),
    (
        Provider::Anthropic,
        &["claude-3-7-sonnet"],
        p(3000, 15000, 3750, 300),
    ),
    (
        Provider::Anthropic,
        &["claude-haiku-4-5"],
        p(1000, 5000, 1250, 100),
    ),
    (
        Provider::Anthropic,
        &["claude-3-5-haiku"],
        p(800, 4000, 1000, 80),
    ),
    (
        Provider::Anthropic,
        &["claude-3-haiku"],
        p(250, 1250, 300, 30),
    ),
    (Provider::Openai, &["gpt-5.1"], p(1250, 10000, 1250, 125)),
    (Provider::Openai, &["gpt-5"], p(1250, 10000, 1250, 125)),
    (Provider::Openai, &["gpt-5-mini"], p(250, 2000, 250, 25)),
    (Provider::Openai, &["gpt-5-nano"], p(50, 400, 50, 5)),
    (Provider::Openai, &["gpt-4.1"], p(2000, 8000, 2000, 500)),
    (Provider::Openai, &["gpt-4.1-mini"], p(400, 1600, 400, 100)),
    (Provider::Openai, &["gpt-4.1-nano"], p(100, 400, 100, 25)),
    (Provider::Openai, &["gpt-4o"], p(2500, 10000, 2500, 1250)),
    // The first gpt-4o snapshot kept its launch price and had no cache discount.
    (
        Provider::Openai,
        &["gpt-4o-2024-05-13"],
        p(5000, 15000, 5000, 5000),
    ),
    (Provider::Openai, &["gpt-4o-mini"], p(150, 600, 150, 75)),
    (Provider::Openai, &["o3"], p(2000, 8000, 2000, 500)),
    (Provider::Openai, &["o3-mini"], p(1100, 4400, 1100, 550)),
    (Provider::Openai, &["o4-mini"], p(1100, 4400, 1100, 275)),
];

/// `base` when `id` is `base` plus a date suffix (`-20250929`, `-2025-04-14`) or `-latest`.
pub(crate) fn strip_snapshot_suffix(id: &str) -> Option<&str> {
    if let Some(base) = id.strip_suffix("-latest") {
        return Some(base);
    }
    let bytes = id.as_bytes();
    let is_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    // -YYYYMMDD
    if bytes.len() > 9 && bytes[bytes.len() - 9] == b'-' && is_digits(&bytes[bytes.len() - 8..]) {
        return Some(&id[..id.len() - 9]);
    }
    // -YYYY-MM-DD
    if bytes.len() > 11 {
        let tail = &bytes[bytes.len() - 11..];
        if tail[0] == b'-'
            && is_digits(&tail[1..5])
            && tail[5] == b'-'
            && is_digits(&tail[6..8])
            && tail[8] == b'-'
            && is_digits(&tail[9..11])
        {
            return Some(&id[..id.len() - 11]);
        }
    }
    None
}

pub(super) fn builtin_price(provider: &Provider, id: &str) -> Option<Price> {
    let find = |id: &str| {
        BUILTIN
            .iter()
            .find(|(p, ids, _)| p == provider && ids.contains(&id))
            .map(|(_, _, price)| *price)
    };
    find(id).or_else(|| strip_snapshot_suffix(id).and_then(find))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_cache_prices_follow_the_multipliers() {
        for (provider, ids, price) in BUILTIN {
            // Claude 3 Haiku is the documented exception: $0.30 write, $0.03 read on $0.25 input.
            if *provider == Provider::Anthropic && ids[0] != "claude-3-haiku" {
                let input = i128::from(price.input.nanos());
                assert_eq!(
                    i128::from(price.cache_write.nanos()),
                    input * 5 / 4,
                    "{ids:?}"
                );
                assert_eq!(i128::from(price.cache_read.nanos()) * 10, input, "{ids:?}");
            }
        }
    }

    #[test]
    fn snapshot_suffixes() {
        assert_eq!(
            strip_snapshot_suffix("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            strip_snapshot_suffix("gpt-4.1-mini-2025-04-14"),
            Some("gpt-4.1-mini")
        );
        assert_eq!(
            strip_snapshot_suffix("claude-3-5-haiku-latest"),
            Some("claude-3-5-haiku")
        );
        assert_eq!(strip_snapshot_suffix("gpt-4.1-mini"), None);
        assert_eq!(strip_snapshot_suffix("o3"), None);
    }
}
