//! The Governor's test setup: a model pointed at testkit's fake server, one retry policy, a
//! ledger in a temp dir.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use governor::{
    Governor, GovernorConfig, GovernorError, GovernorSettings, PricingOverrides, ProvidersConfig,
    RetryPolicy, Settled,
};
use llm::{Message, Prompt, StreamEvent, Usd};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::FakeServer;
use tokio_util::sync::CancellationToken;

pub fn usd(s: &str) -> Usd {
    Usd::parse_decimal(s).unwrap()
}

pub struct Setup {
    pub model: String,
    pub env: BTreeMap<String, String>,
    pub budget: Option<Usd>,
    pub free_only: bool,
    pub ledger: PathBuf,
    pub catalog: Option<PathBuf>,
    /// Attempts per call (1: no retry).
    pub attempts: u32,
}

impl Setup {
    pub fn new(model: &str, server: &FakeServer, dir: &Path) -> Setup {
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("ANTHROPIC_API_KEY", "test-key"),
            ("OPENAI_API_KEY", "test-key"),
            ("OPENROUTER_API_KEY", "test-key"),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        env.insert("ANTHROPIC_BASE_URL".into(), server.anthropic_base_url());
        env.insert("OPENAI_BASE_URL".into(), server.openai_base_url());
        env.insert("OPENROUTER_BASE_URL".into(), server.openrouter_base_url());
        env.insert("OLLAMA_HOST".into(), server.base_url());
        Setup {
            model: model.to_string(),
            env,
            budget: None,
            free_only: false,
            ledger: dir.join("state/ledger.jsonl"),
            catalog: None,
            attempts: 1,
        }
    }

    pub fn config(&self) -> Result<GovernorConfig, GovernorError> {
        let providers = ProvidersConfig::default();
        let pricing = PricingOverrides::default();
        let settings = GovernorSettings {
            model: &self.model,
            providers: &providers,
            pricing: &pricing,
            openrouter_catalog: self.catalog.as_deref(),
            budget: self.budget,
            free_only: self.free_only,
            ledger_path: self.ledger.clone(),
            record_to: None,
        };
        let env = |k: &str| self.env.get(k).cloned();
        let mut config = GovernorConfig::resolve(&settings, &env)?;
        config.retry = RetryPolicy {
            max_attempts: self.attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        Ok(config)
    }

    pub fn governor(&self) -> Result<Governor, GovernorError> {
        Governor::new(self.config()?)
    }
}

/// A prompt asking for at most `max_tokens` (the Governor's limit and the budget apply on top).
pub fn request(messages: Vec<Message>, max_tokens: u32) -> Prompt {
    Prompt {
        system: "You are a careful coding agent.".into(),
        messages,
        max_tokens_cap: Some(max_tokens),
        ..Prompt::default()
    }
}

pub async fn call(
    g: &Governor,
    session: &str,
    req: Prompt,
) -> Result<llm::Response, GovernorError> {
    let never = tokio_util::sync::CancellationToken::new();
    g.call(session, &req, &never, &mut |_| {})
        .await
        .map(|settled| settled.response)
}

/// A call with every stream event collected, and its settlement.
pub async fn call_settled(
    g: &Governor,
    session: &str,
    req: &Prompt,
    cancel: &CancellationToken,
) -> (Result<Settled, GovernorError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let result = g.call(session, req, cancel, &mut |e| events.push(e)).await;
    (result, events)
}
