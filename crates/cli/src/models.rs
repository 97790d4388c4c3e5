//! `loopwright models`: the price catalog (USD per million tokens), and `--refresh` to fetch
//! OpenRouter's current prices into the cache.

use crate::config::{catalog_cache_path, load_layers};
use crate::exit::{code, CmdResult, Failure};
use crate::stdout::outln;
use anyhow::anyhow;
use governor::{
    openrouter_catalog_client, refresh_openrouter_catalog, OpenRouterCatalog, PriceCatalog,
    PriceSource, PricingOverrides, ProvidersConfig,
};
use llm::Usd;
use std::collections::BTreeMap;

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Show only models that cost nothing (OpenRouter `:free` variants, local servers).
    #[arg(long)]
    pub free: bool,
    /// Fetch OpenRouter's current model list and prices into the cache first.
    #[arg(long)]
    pub refresh: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Dollars per million tokens with two to six decimals: `$3.00`, `$0.075`, `$0.000001`.
pub fn per_mtok(usd: Usd) -> String {
    let nanos = usd.nanos();
    let whole = nanos / 1_000_000_000;
    let frac = (nanos % 1_000_000_000).abs();
    let mut digits = format!("{frac:09}");
    while digits.len() > 2 && digits.ends_with('0') {
        digits.pop();
    }
    format!("${whole}.{digits}")
}

fn source_name(source: PriceSource) -> &'static str {
    match source {
        PriceSource::Override => "config",
        PriceSource::OpenrouterCatalog => "openrouter",
        PriceSource::BuiltIn => "built-in",
        PriceSource::FreeVariant => "free variant",
        PriceSource::Local => "local",
    }
}

pub async fn run(args: ModelsArgs) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().ok();
    let file = load_layers(cwd.as_deref(), &env).map_err(Failure::usage)?;
    let providers =
        ProvidersConfig::from_toml(&file.providers).map_err(|e| Failure::usage(anyhow!(e)))?;
    let pricing =
        PricingOverrides::from_toml(&file.pricing).map_err(|e| Failure::usage(anyhow!(e)))?;
    let cache = catalog_cache_path(&env);
    let lookup = |k: &str| env.get(k).cloned();
    let openrouter = if args.refresh {
        let path = cache.clone().ok_or_else(|| {
            Failure::usage(anyhow!(
                "cannot place the catalog cache: set XDG_CACHE_HOME or HOME"
            ))
        })?;
        let client = openrouter_catalog_client(&providers, &lookup).map_err(Failure::governor)?;
        let catalog = refresh_openrouter_catalog(&client, &path)
            .await
            .map_err(|e| {
                Failure::new(
                    code::INTERNAL,
                    anyhow!(e).context("refreshing OpenRouter's price list"),
                )
            })?;
        eprintln!(
            "fetched {} OpenRouter models into {}",
            catalog.models.len(),
            path.display()
        );
        Some(catalog)
    } else {
        match &cache {
            Some(path) => OpenRouterCatalog::load(path).map_err(|e| Failure::usage(anyhow!(e)))?,
            None => None,
        }
    };
    let fetched_at = openrouter.as_ref().map(|c| c.fetched_at.clone());
    let catalog =
        PriceCatalog::new(&pricing, openrouter).map_err(|e| Failure::usage(anyhow!(e)))?;
    let mut entries = catalog.entries();
    if args.free {
        entries.retain(|e| e.price.is_free());
    }
    if args.json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "model": e.model,
                    "source": source_name(e.source),
                    "input_per_mtok": per_mtok(e.price.input),
                    "output_per_mtok": per_mtok(e.price.output),
                    "cache_read_per_mtok": per_mtok(e.price.cache_read),
                    "cache_write_per_mtok": per_mtok(e.price.cache_write),
                })
            })
            .collect();
        outln!(
            "{}",
            crate::terminal::json_pretty(&rows).map_err(|e| Failure::from(anyhow!(e)))?
        );
        return Ok(code::OK);
    }
    // Model names come from OpenRouter's list: shown without control characters.
    let names: Vec<String> = entries
        .iter()
        .map(|e| crate::terminal::sanitize(&e.model).replace('\n', " "))
        .collect();
    let width = names
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!(
        "{:<width$}  {:>10}  {:>10}  {:>10}  {:>11}  source",
        "model",
        "input",
        "output",
        "cache read",
        "cache write"
    );
    for (e, name) in entries.iter().zip(&names) {
        outln!(
            "{:<width$}  {:>10}  {:>10}  {:>10}  {:>11}  {}",
            name,
            per_mtok(e.price.input),
            per_mtok(e.price.output),
            per_mtok(e.price.cache_read),
            per_mtok(e.price.cache_write),
            source_name(e.source)
        );
    }
    outln!("USD per million tokens.");
    if args.free {
        outln!("Also free: any ollama/MODEL, any openrouter/VENDOR/MODEL:free, and local servers configured under [providers].");
    }
    match fetched_at {
        Some(at) => {
            outln!("OpenRouter prices fetched {at}; refresh with `loopwright models --refresh`.")
        }
        None => {
            outln!("No OpenRouter price list cached; fetch one with `loopwright models --refresh`.")
        }
    }
    Ok(code::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_mtok_trims_but_keeps_cents() {
        assert_eq!(per_mtok(Usd::parse_decimal("3").unwrap()), "$3.00");
        assert_eq!(per_mtok(Usd::parse_decimal("0.075").unwrap()), "$0.075");
        assert_eq!(
            per_mtok(Usd::parse_decimal("0.000001").unwrap()),
            "$0.000001"
        );
        assert_eq!(per_mtok(Usd::ZERO), "$0.00");
    }
}
