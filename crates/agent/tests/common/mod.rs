#![allow(clippy::unwrap_used, clippy::expect_used)]

//! A Governor pointed at the fake server (Anthropic wire), no retries.

use governor::{
    Governor, GovernorConfig, GovernorSettings, PricingOverrides, ProvidersConfig, RetryPolicy,
};
use llm::Usd;
use std::path::Path;
use std::time::Duration;
use testkit::FakeServer;

pub const MODEL: &str = "anthropic/claude-sonnet-4-5";

pub fn governor_for(server: &FakeServer, state: &Path, budget: Option<Usd>) -> Governor {
    Governor::new(governor_config(server, state, budget)).unwrap()
}

pub fn governor_config(server: &FakeServer, state: &Path, budget: Option<Usd>) -> GovernorConfig {
    let providers = ProvidersConfig::default();
    let pricing = PricingOverrides::default();
    let settings = GovernorSettings {
        model: MODEL,
        providers: &providers,
        pricing: &pricing,
        openrouter_catalog: None,
        budget,
        free_only: false,
        ledger_path: state.join("ledger.jsonl"),
        record_to: None,
    };
    let base = server.anthropic_base_url();
    let env = move |k: &str| match k {
        "ANTHROPIC_API_KEY" => Some("test-key".to_string()),
        "ANTHROPIC_BASE_URL" => Some(base.clone()),
        _ => None,
    };
    let mut config = GovernorConfig::resolve(&settings, &env).unwrap();
    config.retry = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    config
}
