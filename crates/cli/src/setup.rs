//! Wiring shared by the commands: the Governor from settings and config, state directories.

use crate::config::{catalog_cache_path, FileConfig};
use crate::exit::Failure;
use anyhow::anyhow;
use governor::{Governor, GovernorConfig, GovernorSettings, PricingOverrides, ProvidersConfig};
use llm::Usd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the Governor needs besides the config file.
pub struct GovernorRequest<'a> {
    pub model: &'a str,
    pub budget: Option<Usd>,
    pub free_only: bool,
    pub ledger_path: PathBuf,
    pub record_to: Option<PathBuf>,
}

/// Resolves the model, provider, key and price, and opens the ledger. Errors carry the exit
/// code of DESIGN.md (2 bad model/key/config, 3 free-only/budget).
pub fn build_governor(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> Result<Governor, Failure> {
    let config = resolve_governor(req, file, env)?;
    Governor::new(config).map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))
}

/// The Governor's configuration, resolved but not yet opened (nothing sent, no ledger).
pub fn resolve_governor(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> Result<GovernorConfig, Failure> {
    let providers = ProvidersConfig::from_toml(&file.providers).map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))?;
    let pricing = PricingOverrides::from_toml(&file.pricing).map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))?;
    let cache = catalog_cache_path(env);
    let settings = GovernorSettings {
        model: req.model,
        providers: &providers,
        pricing: &pricing,
        openrouter_catalog: cache.as_deref(),
        budget: req.budget,
        free_only: req.free_only,
        ledger_path: req.ledger_path.clone(),
        record_to: req.record_to.clone(),
    };
    let lookup = |k: &str| env.get(k).cloned();
    GovernorConfig::resolve(&settings, &lookup).map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))
}

/// `$XDG_STATE_HOME/loopwright/<name>`, else `~/.local/state/loopwright/<name>`.
pub fn state_home(env: &BTreeMap<String, String>, name: &str) -> Option<PathBuf> {
    let base = env
        .get("XDG_STATE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").filter(|s| !s.is_empty()).map(|h| Path::new(h).join(".local").join("state")))?;
    Some(base.join("loopwright").join(name))
}
