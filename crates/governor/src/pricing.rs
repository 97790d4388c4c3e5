//! Prices: a built-in table for Anthropic and OpenAI, zero for free and local models, user
//! overrides from the config, and a refreshed OpenRouter catalog. Lookup order: config override
//! > refreshed OpenRouter cache > built-in. All money is [`Usd`] (fixed-point), never `f64`.

use crate::error::GovernorError;
use crate::model_ref::{ModelRef, Provider};
use llm::{Usage, Usd};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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

fn ceil_div(a: i128, b: i128) -> i128 {
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

/// A decimal amount written in a config file: a string (`"3.00"`, preferred) or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl Decimal {
    fn to_usd(&self) -> Result<Usd, String> {
        let text = match self {
            Decimal::Text(s) => s.clone(),
            Decimal::Integer(i) => i.to_string(),
            Decimal::Float(f) => f.to_string(),
        };
        let usd = Usd::parse_decimal(&text).map_err(|e| e.to_string())?;
        if usd.nanos() < 0 {
            return Err(format!("{text:?} is negative"));
        }
        Ok(usd)
    }
}

/// One `[pricing."provider/model"]` table: USD per million tokens. Missing `cache_read` is
/// taken as `input`; missing `cache_write` as 1.25 × `input` (Anthropic's 5-minute write), both
/// on the safe side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input: Decimal,
    pub output: Decimal,
    #[serde(default)]
    pub cache_read: Option<Decimal>,
    #[serde(default)]
    pub cache_write: Option<Decimal>,
}

impl PriceOverride {
    fn to_price(&self, key: &str) -> Result<Price, GovernorError> {
        let field = |name: &str, d: &Decimal| {
            d.to_usd().map_err(|e| {
                GovernorError::Config(format!(
                    "[pricing.\"{key}\"] {name}: {e}; write USD per million tokens as a decimal string like \"3.00\""
                ))
            })
        };
        let input = field("input", &self.input)?;
        let output = field("output", &self.output)?;
        let cache_read = match &self.cache_read {
            Some(d) => field("cache_read", d)?,
            None => input,
        };
        let cache_write = match &self.cache_write {
            Some(d) => field("cache_write", d)?,
            None => Usd::from_nanos(
                i64::try_from(ceil_div(i128::from(input.nanos()) * 5, 4)).unwrap_or(i64::MAX),
            ),
        };
        Ok(Price {
            input,
            output,
            cache_read,
            cache_write,
        })
    }
}

/// All `[pricing."provider/model"]` tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PricingOverrides(pub BTreeMap<String, PriceOverride>);

impl PricingOverrides {
    /// Reads the `pricing` table of a loaded config file.
    pub fn from_toml(table: &toml::Table) -> Result<PricingOverrides, GovernorError> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                GovernorError::Config(format!("the [pricing] configuration is invalid: {e}"))
            })
    }
}

/// OpenRouter's prices, refreshed from `GET /models` and cached on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenRouterCatalog {
    /// RFC 3339 time of the refresh.
    pub fetched_at: String,
    /// Model id (`vendor/model[:variant]`) → price per Mtok. Models whose price is variable or
    /// unreadable are left out (unknown price: refused under a budget).
    pub models: BTreeMap<String, Price>,
}

/// Reads an OpenRouter per-token decimal string as USD per million tokens, exactly.
fn per_token_to_per_mtok(s: &str) -> Option<Usd> {
    let s = s.trim();
    let shifted = match s.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = s[i + 1..].parse().ok()?;
            format!("{}e{}", &s[..i], exp + 6)
        }
        None => format!("{s}e6"),
    };
    let usd = Usd::parse_decimal(&shifted).ok()?;
    (usd.nanos() >= 0).then_some(usd)
}

impl OpenRouterCatalog {
    /// Parses the body of OpenRouter's `GET /api/v1/models`:
    /// `data[].pricing.{prompt, completion, input_cache_read, input_cache_write}` in USD per
    /// token. A missing cache price is taken as the prompt price.
    pub fn from_models_json(
        body: &serde_json::Value,
        fetched_at: &str,
    ) -> Result<OpenRouterCatalog, String> {
        let data = body
            .get("data")
            .and_then(|d| d.as_array())
            .ok_or("the model list has no data array")?;
        let mut models = BTreeMap::new();
        for m in data {
            let Some(id) = m.get("id").and_then(|v| v.as_str()) else {
                continue;
            };
            let Some(pricing) = m.get("pricing") else {
                continue;
            };
            let field = |names: &[&str]| {
                names.iter().find_map(|n| pricing.get(*n)).map(|v| match v {
                    serde_json::Value::String(s) => per_token_to_per_mtok(s),
                    serde_json::Value::Number(n) => per_token_to_per_mtok(&n.to_string()),
                    _ => None,
                })
            };
            let (Some(Some(input)), Some(Some(output))) =
                (field(&["prompt"]), field(&["completion"]))
            else {
                continue; // variable ("-1") or unreadable price: unknown
            };
            let cache = |names: &[&str]| match field(names) {
                None => Some(input),
                Some(v) => v,
            };
            let (Some(cache_read), Some(cache_write)) = (
                cache(&["input_cache_read", "input_cache_reads", "cache_read"]),
                cache(&["input_cache_write", "input_cache_writes", "cache_write"]),
            ) else {
                continue;
            };
            models.insert(
                id.to_string(),
                Price {
                    input,
                    output,
                    cache_read,
                    cache_write,
                },
            );
        }
        Ok(OpenRouterCatalog {
            fetched_at: fetched_at.to_string(),
            models,
        })
    }

    /// Loads the cache file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<OpenRouterCatalog>, GovernorError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(GovernorError::Catalog {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| GovernorError::Catalog {
                path: path.to_path_buf(),
                reason: format!("{e}; delete it or run `loopwright models --refresh`"),
            })
    }

    /// Writes the cache file atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), GovernorError> {
        let err = |e: std::io::Error| GovernorError::Catalog {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        llm::atomic_write(path, &json).map_err(err)
    }
}

/// Fetches OpenRouter's model list through `client` (an OpenRouter client built by the
/// Governor's provider resolution), parses its prices and writes them to `cache_path`.
pub async fn refresh_openrouter_catalog(
    client: &llm::ModelClient,
    cache_path: &Path,
) -> Result<OpenRouterCatalog, GovernorError> {
    let body = client
        .list_models()
        .await
        .map_err(GovernorError::Provider)?;
    let catalog = OpenRouterCatalog::from_models_json(&body, &crate::ledger::now_rfc3339())
        .map_err(|reason| GovernorError::Catalog {
            path: cache_path.to_path_buf(),
            reason: format!("OpenRouter's model list could not be read: {reason}"),
        })?;
    catalog.save(cache_path)?;
    Ok(catalog)
}

const fn milli(m: i64) -> Usd {
    Usd::from_nanos(m * 1_000_000)
}

/// Price in thousandths of a dollar per Mtok: input, output, cache write, cache read.
const fn p(input: i64, output: i64, cache_write: i64, cache_read: i64) -> Price {
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
const BUILTIN: &[(Provider, &[&str], Price)] = &[
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

fn builtin_price(provider: &Provider, id: &str) -> Option<Price> {
    let find = |id: &str| {
        BUILTIN
            .iter()
            .find(|(p, ids, _)| p == provider && ids.contains(&id))
            .map(|(_, _, price)| *price)
    };
    find(id).or_else(|| strip_snapshot_suffix(id).and_then(find))
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

    /// When the OpenRouter cache was refreshed, if there is one.
    pub fn openrouter_fetched_at(&self) -> Option<&str> {
        self.openrouter.as_ref().map(|c| c.fetched_at.as_str())
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
    fn bad_overrides_name_the_key() {
        for body in [
            "[\"openai/x\"]\ninput = \"three\"\noutput = \"1\"\n",
            "[\"openai/x\"]\ninput = \"-1\"\noutput = \"1\"\n",
        ] {
            let t: toml::Table = toml::from_str(body).unwrap();
            let err = PriceCatalog::new(&PricingOverrides::from_toml(&t).unwrap(), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("[pricing.\"openai/x\"] input"), "{err}");
        }
        let t: toml::Table = toml::from_str("[\"openai/x\"]\ninput = \"1\"\n").unwrap();
        assert!(PricingOverrides::from_toml(&t)
            .unwrap_err()
            .to_string()
            .contains("[pricing]"));
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

    #[test]
    fn openrouter_models_json_is_read_per_token_into_per_mtok() {
        let body = serde_json::json!({"data": [
            {"id": "anthropic/claude-sonnet-4.5", "pricing": {"prompt": "0.000003", "completion": "0.000015",
                "input_cache_read": "0.0000003", "input_cache_write": "0.00000375"}},
            {"id": "mistralai/mistral-7b-instruct:free", "pricing": {"prompt": "0", "completion": "0"}},
            {"id": "x/tiny", "pricing": {"prompt": "3.75e-8", "completion": "1e-7"}},
            {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
            {"id": "x/broken", "pricing": {"prompt": "cheap", "completion": "0"}},
            {"name": "no id"}
        ]});
        let c = OpenRouterCatalog::from_models_json(&body, "2026-11-01T00:00:00Z").unwrap();
        let s = c.models["anthropic/claude-sonnet-4.5"];
        assert_eq!(
            (s.input, s.output, s.cache_read, s.cache_write),
            (usd("3"), usd("15"), usd("0.3"), usd("3.75"))
        );
        assert!(c.models["mistralai/mistral-7b-instruct:free"].is_free());
        let t = c.models["x/tiny"];
        assert_eq!(
            (t.input, t.output, t.cache_read),
            (usd("0.0375"), usd("0.1"), usd("0.0375"))
        );
        assert!(
            !c.models.contains_key("openrouter/auto"),
            "variable prices are unknown"
        );
        assert!(!c.models.contains_key("x/broken"));
        assert!(OpenRouterCatalog::from_models_json(&serde_json::json!({}), "t").is_err());
    }

    #[test]
    fn openrouter_cache_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/openrouter-models.json");
        assert_eq!(OpenRouterCatalog::load(&path).unwrap(), None);
        let mut c = OpenRouterCatalog {
            fetched_at: "2026-11-01T00:00:00Z".into(),
            ..Default::default()
        };
        c.models.insert("a/b".into(), p(1, 2, 3, 4));
        c.save(&path).unwrap();
        assert_eq!(OpenRouterCatalog::load(&path).unwrap(), Some(c));
        std::fs::write(&path, "{not json").unwrap();
        let err = OpenRouterCatalog::load(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--refresh"), "{err}");
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
