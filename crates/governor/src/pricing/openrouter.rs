//! OpenRouter's prices: read from its `GET /models`, cached on disk, refreshed on request.

use super::Price;
use crate::error::GovernorError;
use llm::Usd;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::builtin::p;

    fn usd(s: &str) -> Usd {
        Usd::parse_decimal(s).unwrap()
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
        assert_eq!(err.kind(), crate::ErrorKind::BadInput);
        assert!(err.to_string().contains("--refresh"), "{err}");
    }
}
