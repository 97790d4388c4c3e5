//! Prices: a built-in table for Anthropic and OpenAI ([`builtin`]), zero for free and local
//! models, user overrides from the config ([`overrides`]), and a refreshed OpenRouter catalog
//! ([`openrouter`]). Lookup order: config override > refreshed OpenRouter cache > built-in. All
//! money is [`Usd`] (fixed-point), never `f64`.

mod builtin;
mod openrouter;
mod overrides;

pub(crate) use builtin::strip_snapshot_suffix;
pub use openrouter::{refresh_openrouter_catalog, OpenRouterCatalog};
pub use overrides::{Decimal, PriceOverride, PricingOverrides};

use crate::error::GovernorError;
use crate::model_ref::{ModelRef, Provider};
use builtin::{builtin_price, BUILTIN};
use llm::{Usage, Usd};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const TOKENS_PER_MTOK: i128 = 1_000_000;

/// USD per million tokens for each kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Price {
    /// Uncached input.
    pub input: Usd,
    pub output: Usd,
    pub cache_read: Usd,
    pub cache_write: Usd,
}

impl Price {
    pub const FREE: Price = Price {
        input: Usd::ZERO,
        output: Usd::ZERO,
        cache_read: Usd::ZERO,
        cache_write: Usd::ZERO,
    };

    pub fn is_free(&self) -> bool {
        self.input.is_zero()
            && self.output.is_zero()
            && self.cache_read.is_zero()
            && self.cache_write.is_zero()
    }

    /// The cost of `usage` at this price, rounded up to the next nano-dollar.
    pub fn cost(&self, usage: &Usage) -> Usd {
        per_mtok_total(&[
            (usage.input_tokens, self.input),
            (usage.output_tokens, self.output),
            (usage.cache_read_tokens, self.cache_read),
            (usage.cache_write_tokens, self.cache_write),
        ])
    }

    /// The dearest price an input token can have (uncached, cache write or cache read): what
    /// a reservation charges per input token, since which of them a token becomes is not known
    /// before the call.
    pub fn max_input(&self) -> Usd {
        self.input.max(self.cache_write).max(self.cache_read)
    }

    /// Worst-case cost of a call with at most `input_tokens` of input (of any kind) and
    /// `output_tokens` of output, rounded up.
    pub fn worst_case(&self, input_tokens: u64, output_tokens: u64) -> Usd {
        per_mtok_total(&[
            (input_tokens, self.max_input()),
            (output_tokens, self.output),
        ])
    }

    /// The higher of two prices, kind by kind.
    pub fn max(self, other: Price) -> Price {
        Price {
            input: self.input.max(other.input),
            output: self.output.max(other.output),
            cache_read: self.cache_read.max(other.cache_read),
            cache_write: self.cache_write.max(other.cache_write),
        }
    }
}

/// Σ tokens × (nanos per Mtok) / 1e6, rounded up, saturating.
pub(crate) fn per_mtok_total(items: &[(u64, Usd)]) -> Usd {
    let scaled: i128 = items
        .iter()
        .map(|(tokens, price)| i128::from(*tokens) * i128::from(price.nanos().max(0)))
        .sum();
    Usd::from_nanos(i64::try_from(ceil_div(scaled, TOKENS_PER_MTOK)).unwrap_or(i64::MAX))
}

pub(crate) fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// `[pricing."provider/model"]` in the config.
    Override,
    /// The refreshed OpenRouter catalog cache.
    OpenrouterCatalog,
    /// The table compiled into loopwright.
    BuiltIn,
    /// An OpenRouter `:free` variant.
    FreeVariant,
    /// A self-hosted or replayed model.
    Local,
}

/// A price and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedModel {
    pub price: Price,
    pub source: PriceSource,
}

/// One row of `loopwright models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// `provider/model`.
    pub model: String,
    pub price: Price,
    pub source: PriceSource,
}

/// Every known price: overrides, the OpenRouter cache, the built-in table.
#[derive(Debug, Clone, Default)]
pub struct PriceCatalog {
    overrides: BTreeMap<String, Price>,
    openrouter: Option<OpenRouterCatalog>,
}

impl PriceCatalog {
    /// Checks every override (a bad decimal is a config error naming the key).
    pub fn new(
        overrides: &PricingOverrides,
        openrouter: Option<OpenRouterCatalog>,
    ) -> Result<PriceCatalog, GovernorError> {
        let overrides = overrides
            .0
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.to_price(k)?)))
            .collect::<Result<_, GovernorError>>()?;
        Ok(PriceCatalog {
            overrides,
            openrouter,
        })
    }

    /// The price of `model`; `local` marks a self-hosted provider (zero unless overridden).
    /// `None`: unknown.
    pub fn lookup(&self, model: &ModelRef, local: bool) -> Option<PricedModel> {
        if let Some(price) = self.overrides.get(&model.to_string()) {
            return Some(PricedModel {
                price: *price,
                source: PriceSource::Override,
            });
        }
        if model.provider() == &Provider::Openrouter {
            if let Some(price) = self
                .openrouter
                .as_ref()
                .and_then(|c| c.models.get(model.model_id()))
            {
                return Some(PricedModel {
                    price: *price,
                    source: PriceSource::OpenrouterCatalog,
                });
            }
        }
        if model.is_free_variant() {
            return Some(PricedModel {
                price: Price::FREE,
                source: PriceSource::FreeVariant,
            });
        }
        if local || matches!(model.provider(), Provider::Replay | Provider::Ollama) {
            return Some(PricedModel {
                price: Price::FREE,
                source: PriceSource::Local,
            });
        }
        builtin_price(model.provider(), model.model_id()).map(|price| PricedModel {
            price,
            source: PriceSource::BuiltIn,
        })
    }

    /// Every priced model, for `loopwright models`: overrides first, then the OpenRouter cache,
    /// then the built-in table.
    pub fn entries(&self) -> Vec<CatalogEntry> {
        let mut out: Vec<CatalogEntry> = self
            .overrides
            .iter()
            .map(|(k, p)| CatalogEntry {
                model: k.clone(),
                price: *p,
                source: PriceSource::Override,
            })
            .collect();
        if let Some(c) = &self.openrouter {
            out.extend(c.models.iter().map(|(id, p)| CatalogEntry {
                model: format!("openrouter/{id}"),
                price: *p,
                source: PriceSource::OpenrouterCatalog,
            }));
        }
        for (provider, ids, price) in BUILTIN {
            for id in *ids {
                out.push(CatalogEntry {
                    model: format!("{provider}/{id}"),
                    price: *price,
                    source: PriceSource::BuiltIn,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use builtin::p;

    fn usd(s: &str) -> Usd {
        Usd::parse_decimal(s).unwrap()
    }

    fn m(s: &str) -> ModelRef {
        ModelRef::parse(s).unwrap()
    }

    #[test]
    fn builtin_prices_resolve_aliases_and_snapshots() {
        let cat = PriceCatalog::default();
        for id in [
            "anthropic/claude-sonnet-4-5",
            "anthropic/claude-sonnet-4-5-20250929",
            "anthropic/claude-sonnet-4-20250514",
        ] {
            let p = cat.lookup(&m(id), false).unwrap();
            assert_eq!(p.source, PriceSource::BuiltIn, "{id}");
            assert_eq!(p.price.input, usd("3"), "{id}");
            assert_eq!(p.price.output, usd("15"), "{id}");
            assert_eq!(p.price.cache_write, usd("3.75"), "{id}");
            assert_eq!(p.price.cache_read, usd("0.30"), "{id}");
        }
        let p = cat
            .lookup(&m("openai/gpt-4.1-mini-2025-04-14"), false)
            .unwrap()
            .price;
        assert_eq!(
            (p.input, p.output, p.cache_read),
            (usd("0.40"), usd("1.60"), usd("0.10"))
        );
        assert_eq!(
            cat.lookup(&m("openai/gpt-4o-2024-05-13"), false)
                .unwrap()
                .price
                .input,
            usd("5")
        );
        assert_eq!(
            cat.lookup(&m("anthropic/claude-3-5-haiku-latest"), false)
                .unwrap()
                .price
                .input,
            usd("0.80")
        );
        assert!(cat.lookup(&m("openai/gpt-9-ultra"), false).is_none());
        assert!(
            cat.lookup(&m("openrouter/openai/gpt-4.1"), false).is_none(),
            "OpenRouter needs its catalog"
        );
    }

    #[test]
    fn free_local_and_replay_models_cost_nothing() {
        let cat = PriceCatalog::default();
        assert_eq!(
            cat.lookup(&m("openrouter/a/b:free"), false).unwrap().source,
            PriceSource::FreeVariant
        );
        assert!(cat
            .lookup(&m("ollama/qwen2.5-coder:7b"), false)
            .unwrap()
            .price
            .is_free());
        assert!(cat
            .lookup(&m("replay/x.jsonl"), false)
            .unwrap()
            .price
            .is_free());
        let custom = ModelRef::parse_with("llamacpp/q", &["llamacpp"]).unwrap();
        assert!(cat.lookup(&custom, true).unwrap().price.is_free());
        assert!(
            cat.lookup(&custom, false).is_none(),
            "a remote custom provider has no known price"
        );
    }

    #[test]
    fn override_beats_cache_beats_builtin() {
        let overrides: PricingOverrides = toml::from_str::<toml::Table>(
            r#"
            ["anthropic/claude-sonnet-4-5"]
            input = "2.00"
            output = "10.00"
            cache_read = "0.20"
            cache_write = "2.50"
            ["openrouter/x/y"]
            input = "1"
            output = 2
            ["ollama/big"]
            input = "0.5"
            output = "0.5"
            "#,
        )
        .map(|t| PricingOverrides::from_toml(&t).unwrap())
        .unwrap();
        let mut cache = OpenRouterCatalog::default();
        cache.models.insert("x/y".into(), p(7000, 7000, 7000, 7000));
        cache.models.insert("x/z".into(), p(4000, 8000, 5000, 400));
        cache.models.insert("a/b:free".into(), p(0, 0, 0, 0));
        let cat = PriceCatalog::new(&overrides, Some(cache)).unwrap();

        let s = cat
            .lookup(&m("anthropic/claude-sonnet-4-5"), false)
            .unwrap();
        assert_eq!(
            (s.source, s.price.input, s.price.cache_write),
            (PriceSource::Override, usd("2"), usd("2.5"))
        );
        let s = cat.lookup(&m("openrouter/x/y"), false).unwrap();
        assert_eq!(
            (s.source, s.price.input, s.price.output),
            (PriceSource::Override, usd("1"), usd("2"))
        );
        assert_eq!(s.price.cache_read, usd("1"), "missing cache_read = input");
        assert_eq!(
            s.price.cache_write,
            usd("1.25"),
            "missing cache_write = 1.25 x input"
        );
        let s = cat.lookup(&m("openrouter/x/z"), false).unwrap();
        assert_eq!(
            (s.source, s.price.output),
            (PriceSource::OpenrouterCatalog, usd("8"))
        );
        assert_eq!(
            cat.lookup(&m("openrouter/a/b:free"), false).unwrap().source,
            PriceSource::OpenrouterCatalog
        );
        assert_eq!(
            cat.lookup(&m("ollama/big"), true).unwrap().price.input,
            usd("0.5"),
            "an override prices a local model"
        );
        assert_eq!(
            cat.lookup(&m("anthropic/claude-haiku-4-5"), false)
                .unwrap()
                .source,
            PriceSource::BuiltIn
        );

        let entries = cat.entries();
        assert_eq!(entries[0].source, PriceSource::Override);
        assert!(entries
            .iter()
            .any(|e| e.model == "openrouter/x/z" && e.source == PriceSource::OpenrouterCatalog));
        assert!(entries
            .iter()
            .any(|e| e.model == "openai/gpt-4.1-mini" && e.source == PriceSource::BuiltIn));
    }

    #[test]
    fn cost_rounds_up_and_prices_each_token_kind() {
        let price = p(3000, 15000, 3750, 300);
        let usage = Usage {
            input_tokens: 1,
            ..Usage::default()
        };
        // 1 token at $3/Mtok = 3000 nano-dollars exactly.
        assert_eq!(price.cost(&usage).nanos(), 3_000);
        let price_odd = Price {
            input: Usd::from_nanos(1_500_001),
            ..Price::FREE
        };
        assert_eq!(
            price_odd.cost(&usage).nanos(),
            2,
            "1.500001 nanos rounds up to 2"
        );
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 2000,
            cache_read_tokens: 10_000,
            cache_write_tokens: 4000,
            ..Usage::default()
        };
        // 1000*3 + 2000*15 + 10000*0.3 + 4000*3.75 = 3000 + 30000 + 3000 + 15000 = 51000 µ$.
        assert_eq!(price.cost(&usage), usd("0.051"));
        assert_eq!(Price::FREE.cost(&usage), Usd::ZERO);
        // Worst case prices all input at the dearest input kind (cache write here).
        assert_eq!(price.worst_case(1_000_000, 0), usd("3.75"));
        assert_eq!(price.worst_case(0, 1_000_000), usd("15"));
    }
}
