//! Providers: where a model is reached (endpoint, wire format, key) from built-in defaults, the
//! configuration's `[providers.NAME]` tables and the environment.

use crate::error::GovernorError;
use crate::model_ref::{ModelRef, Provider};
use llm::{Endpoint, Timeouts, WireFormat, WireOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The API key Ollama ignores but OpenAI-compatible clients must send.
pub const OLLAMA_DUMMY_KEY: &str = "ollama";

/// One `[providers.NAME]` table. For a custom provider `base_url` and `wire` are required; for a
/// built-in one every field is optional and overrides the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// API root: Anthropic wire without `/v1`, OpenAI wire with it (`http://localhost:8080/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the API key (none: send no key).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub wire: Option<WireFormat>,
    /// Self-hosted (priced at zero unless a `[pricing]` entry says otherwise). Default: true when
    /// `base_url` points at this machine (localhost, 127.0.0.0/8, ::1).
    #[serde(default)]
    pub local: Option<bool>,
    /// Seconds to wait for the response headers (the prompt is read first) [local 600, remote 60].
    #[serde(default)]
    pub first_byte_timeout_secs: Option<u64>,
    /// Seconds of silence (not even a keep-alive) before an answer is abandoned [local 300, remote 120].
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds one call may take in all, keep-alives or not [local 1800, remote 600].
    #[serde(default)]
    pub call_timeout_secs: Option<u64>,
    /// `"native"` (the API's tool calling, the default) or `"text"` (tools described in the prompt, calls read from the answer's text: for models without good native tool calling).
    #[serde(default)]
    pub tool_protocol: Option<llm::ToolProtocol>,
    /// The most tokens one answer of this provider's models may have, over the top-level
    /// `max_tokens` (a slow local server wants fewer).
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

impl ProviderConfig {
    /// The deadlines of a call: this table's keys over the defaults for a local or remote
    /// server ([`Timeouts::LOCAL`], [`Timeouts::REMOTE`]). Zero is refused (it would end every
    /// call at once).
    pub fn timeouts(&self, name: &str, local: bool) -> Result<Timeouts, GovernorError> {
        let base = if local {
            Timeouts::LOCAL
        } else {
            Timeouts::REMOTE
        };
        let pick = |key: &str, value: Option<u64>, default: Duration| {
            match value {
            Some(0) => Err(GovernorError::Config(format!(
                "[providers.{name}] {key} = 0 would end every call at once; give a number of seconds, or remove it for the default ({}s)",
                default.as_secs()
            ))),
            Some(secs) => Ok(Duration::from_secs(secs)),
            None => Ok(default),
        }
        };
        Ok(Timeouts {
            first_byte: pick(
                "first_byte_timeout_secs",
                self.first_byte_timeout_secs,
                base.first_byte,
            )?,
            idle: pick("idle_timeout_secs", self.idle_timeout_secs, base.idle)?,
            call: pick("call_timeout_secs", self.call_timeout_secs, base.call)?,
        })
    }
}

/// All `[providers.NAME]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProvidersConfig(pub BTreeMap<String, ProviderConfig>);

impl ProvidersConfig {
    /// Reads the `providers` table of a loaded config file.
    pub fn from_toml(table: &toml::Table) -> Result<ProvidersConfig, GovernorError> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                GovernorError::Config(format!("the [providers] configuration is invalid: {e}"))
            })
    }

    /// Names of the configured tables (custom providers and configured built-ins).
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// Parses a model string against the built-in and configured providers.
    pub fn parse_model(&self, input: &str) -> Result<ModelRef, GovernorError> {
        Ok(ModelRef::parse_with(input, &self.names())?)
    }
}

/// How the Governor reaches a resolved model.
#[derive(Debug, Clone)]
pub enum Connection {
    Http {
        endpoint: Endpoint,
        options: WireOptions,
    },
    /// Play the cassette at this path.
    Replay { cassette: PathBuf },
}

/// A provider resolved against configuration and environment: ready to build a client.
#[derive(Debug, Clone)]
pub struct ResolvedProvider {
    pub provider: Provider,
    pub connection: Connection,
    /// Self-hosted or offline: calls cost nothing unless a price override says otherwise.
    pub local: bool,
    /// The deadlines of each attempt (per-provider config over the local or remote defaults).
    pub timeouts: Timeouts,
}

impl ResolvedProvider {
    /// The base URL (or `replay:PATH`), for display.
    pub fn location(&self) -> String {
        match &self.connection {
            Connection::Http { endpoint, .. } => endpoint.base_url.clone(),
            Connection::Replay { cassette } => format!("replay:{}", cassette.display()),
        }
    }

    /// Builds the one model client for this provider.
    pub fn client(&self) -> Result<llm::ModelClient, GovernorError> {
        match &self.connection {
            Connection::Http { endpoint, options } => {
                llm::ModelClient::new(endpoint.clone(), options.clone(), self.timeouts)
                    .map_err(GovernorError::Provider)
            }
            Connection::Replay { cassette } => {
                let reader = llm::CassetteReader::open(cassette).map_err(|e| {
                    GovernorError::Config(format!(
                        "cannot open the replay cassette {}: {e}",
                        cassette.display()
                    ))
                })?;
                Ok(llm::ModelClient::replay(std::sync::Arc::new(reader)))
            }
        }
    }
}

struct Builtin {
    wire: WireFormat,
    default_base: &'static str,
    base_env: &'static str,
    key_env: Option<&'static str>,
}

fn builtin(provider: &Provider) -> Option<Builtin> {
    Some(match provider {
        Provider::Anthropic => Builtin {
            wire: WireFormat::Anthropic,
            default_base: "https://api.anthropic.com",
            base_env: "ANTHROPIC_BASE_URL",
            key_env: Some("ANTHROPIC_API_KEY"),
        },
        Provider::Openai => Builtin {
            wire: WireFormat::Openai,
            default_base: "https://api.openai.com/v1",
            base_env: "OPENAI_BASE_URL",
            key_env: Some("OPENAI_API_KEY"),
        },
        Provider::Openrouter => Builtin {
            wire: WireFormat::Openai,
            default_base: "https://openrouter.ai/api/v1",
            base_env: "OPENROUTER_BASE_URL",
            key_env: Some("OPENROUTER_API_KEY"),
        },
        Provider::Ollama => Builtin {
            wire: WireFormat::Openai,
            default_base: "http://localhost:11434/v1",
            base_env: "OLLAMA_HOST",
            key_env: None,
        },
        Provider::Replay | Provider::Custom(_) => return None,
    })
}

/// `OLLAMA_HOST` is a host (`127.0.0.1:11434`, `http://box:11434`) without `/v1`.
fn ollama_base(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let with_scheme = if host.contains("://") {
        host.to_string()
    } else {
        format!("http://{host}")
    };
    if with_scheme.ends_with("/v1") {
        with_scheme
    } else {
        format!("{with_scheme}/v1")
    }
}

/// True when `base_url` points at this machine.
pub fn is_loopback_url(base_url: &str) -> bool {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

fn check_url(url: &str, origin: &str) -> Result<(), GovernorError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(GovernorError::Config(format!(
            "{origin} is {url:?}, which is not an http:// or https:// URL; fix it or unset it"
        )))
    }
}

/// Resolves where `model` is served. `env` looks up environment variables (the CLI passes the
/// real environment; tests a map); empty values count as unset.
pub fn resolve_provider(
    model: &ModelRef,
    providers: &ProvidersConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedProvider, GovernorError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let provider = model.provider().clone();
    if provider == Provider::Replay {
        return Ok(ResolvedProvider {
            provider,
            connection: Connection::Replay {
                cassette: PathBuf::from(model.model_id()),
            },
            local: true,
            timeouts: Timeouts::LOCAL,
        });
    }
    let configured = providers
        .0
        .get(provider.name())
        .cloned()
        .unwrap_or_default();
    let (wire, base_url, key_env, local) = match builtin(&provider) {
        Some(b) => {
            if let Some(w) = configured.wire {
                if w != b.wire {
                    return Err(GovernorError::Config(format!(
                        "[providers.{name}] sets wire = {w:?} but {name} speaks {:?}; remove the wire key",
                        b.wire,
                        name = provider.name()
                    )));
                }
            }
            let (base, origin) = match (get(b.base_env), &configured.base_url) {
                (Some(v), _) => {
                    let v = if provider == Provider::Ollama {
                        ollama_base(&v)
                    } else {
                        v
                    };
                    (v, b.base_env.to_string())
                }
                (None, Some(v)) => (
                    v.clone(),
                    format!("[providers.{}] base_url", provider.name()),
                ),
                (None, None) => (
                    b.default_base.to_string(),
                    "the default base URL".to_string(),
                ),
            };
            check_url(&base, &origin)?;
            let key_env = configured
                .api_key_env
                .clone()
                .or(b.key_env.map(str::to_string));
            let local = configured.local.unwrap_or(provider == Provider::Ollama);
            (b.wire, base, key_env, local)
        }
        None => {
            let name = provider.name();
            let base = configured.base_url.clone().ok_or_else(|| {
                GovernorError::Config(format!(
                    "[providers.{name}] has no base_url; add base_url = \"http://HOST:PORT/v1\""
                ))
            })?;
            check_url(&base, &format!("[providers.{name}] base_url"))?;
            let wire = configured.wire.ok_or_else(|| {
                GovernorError::Config(format!(
                    "[providers.{name}] has no wire; add wire = \"openai\" (llama.cpp, vLLM) or wire = \"anthropic\""
                ))
            })?;
            let local = configured.local.unwrap_or_else(|| is_loopback_url(&base));
            (wire, base, configured.api_key_env.clone(), local)
        }
    };
    let api_key = match (&key_env, &provider) {
        (Some(var), _) => match get(var) {
            Some(key) => Some(key),
            None if provider == Provider::Ollama => Some(OLLAMA_DUMMY_KEY.to_string()),
            None => {
                return Err(GovernorError::MissingKey {
                    var: var.clone(),
                    provider: provider.name().to_string(),
                })
            }
        },
        (None, Provider::Ollama) => Some(OLLAMA_DUMMY_KEY.to_string()),
        (None, _) => None,
    };
    let extra_headers = if provider == Provider::Openrouter {
        vec![
            (
                "HTTP-Referer".to_string(),
                "https://github.com/loopwright/loopwright".to_string(),
            ),
            ("X-Title".to_string(), "loopwright".to_string()),
        ]
    } else {
        Vec::new()
    };
    let options = WireOptions {
        stream: true,
        prompt_caching: wire == WireFormat::Anthropic,
        openrouter_pin: provider == Provider::Openrouter,
        tool_protocol: configured.tool_protocol.unwrap_or_default(),
    };
    let timeouts = configured.timeouts(provider.name(), local)?;
    Ok(ResolvedProvider {
        provider,
        timeouts,
        connection: Connection::Http {
            endpoint: Endpoint {
                wire,
                base_url: base_url.trim_end_matches('/').to_string(),
                api_key,
                extra_headers,
            },
            options,
        },
        local,
    })
}

/// A client for OpenRouter's model catalogue (`GET /models`, used by
/// [`crate::refresh_openrouter_catalog`]): the OpenRouter endpoint as configured, with the key
/// when one is set (the catalogue itself needs none).
pub fn openrouter_catalog_client(
    providers: &ProvidersConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<llm::ModelClient, GovernorError> {
    let model = ModelRef::parse("openrouter/openrouter/auto")?;
    let resolved = match resolve_provider(&model, providers, env) {
        Ok(r) => r,
        Err(GovernorError::MissingKey { var, .. }) => {
            let placeholder = |name: &str| {
                if name == var {
                    Some("-".to_string())
                } else {
                    env(name)
                }
            };
            let mut r = resolve_provider(&model, providers, &placeholder)?;
            if let Connection::Http { endpoint, .. } = &mut r.connection {
                endpoint.api_key = None;
            }
            r
        }
        Err(e) => return Err(e),
    };
    resolved.client()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn endpoint(r: &ResolvedProvider) -> (&Endpoint, &WireOptions) {
        match &r.connection {
            Connection::Http { endpoint, options } => (endpoint, options),
            Connection::Replay { .. } => panic!("expected http"),
        }
    }

    #[test]
    fn builtins_use_default_urls_and_their_key_variables() {
        let cfg = ProvidersConfig::default();
        let env = env_of(&[
            ("ANTHROPIC_API_KEY", "ak"),
            ("OPENAI_API_KEY", "ok"),
            ("OPENROUTER_API_KEY", "rk"),
        ]);
        let cases = [
            (
                "anthropic/claude-sonnet-4-5",
                "https://api.anthropic.com",
                "ak",
                WireFormat::Anthropic,
            ),
            (
                "openai/gpt-4.1-mini",
                "https://api.openai.com/v1",
                "ok",
                WireFormat::Openai,
            ),
            (
                "openrouter/a/b:free",
                "https://openrouter.ai/api/v1",
                "rk",
                WireFormat::Openai,
            ),
            (
                "ollama/qwen2.5-coder:7b",
                "http://localhost:11434/v1",
                OLLAMA_DUMMY_KEY,
                WireFormat::Openai,
            ),
        ];
        for (model, base, key, wire) in cases {
            let r = resolve_provider(&ModelRef::parse(model).unwrap(), &cfg, &env).unwrap();
            let (e, o) = endpoint(&r);
            assert_eq!(e.base_url, base, "{model}");
            assert_eq!(e.api_key.as_deref(), Some(key), "{model}");
            assert_eq!(e.wire, wire, "{model}");
            assert_eq!(
                o.openrouter_pin,
                model.starts_with("openrouter/"),
                "{model}"
            );
            assert_eq!(r.local, model.starts_with("ollama/"), "{model}");
        }
    }

    #[test]
    fn env_overrides_base_urls() {
        let cfg = ProvidersConfig::default();
        let env = env_of(&[
            ("ANTHROPIC_API_KEY", "k"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/"),
            ("OPENROUTER_API_KEY", "k"),
            ("OPENROUTER_BASE_URL", "http://127.0.0.1:9/api/v1"),
        ]);
        let r = resolve_provider(
            &ModelRef::parse("anthropic/claude-haiku-4-5").unwrap(),
            &cfg,
            &env,
        )
        .unwrap();
        assert_eq!(endpoint(&r).0.base_url, "http://127.0.0.1:9");
        let r = resolve_provider(&ModelRef::parse("openrouter/x/y").unwrap(), &cfg, &env).unwrap();
        assert_eq!(endpoint(&r).0.base_url, "http://127.0.0.1:9/api/v1");
    }

    #[test]
    fn ollama_host_gets_scheme_and_v1() {
        let cfg = ProvidersConfig::default();
        for (host, base) in [
            ("127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
            ("http://gpu-box:11434/", "http://gpu-box:11434/v1"),
            ("https://ollama.example/v1", "https://ollama.example/v1"),
        ] {
            let r = resolve_provider(
                &ModelRef::parse("ollama/llama3").unwrap(),
                &cfg,
                &env_of(&[("OLLAMA_HOST", host)]),
            )
            .unwrap();
            assert_eq!(endpoint(&r).0.base_url, base, "{host}");
        }
    }

    #[test]
    fn missing_key_names_the_variable() {
        let cfg = ProvidersConfig::default();
        for (model, var) in [
            ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
            ("openai/gpt-4.1", "OPENAI_API_KEY"),
            ("openrouter/a/b:free", "OPENROUTER_API_KEY"),
        ] {
            let err = resolve_provider(
                &ModelRef::parse(model).unwrap(),
                &cfg,
                &env_of(&[(var, "")]),
            )
            .unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("{var} is not set")), "{msg}");
            assert!(msg.contains("--model"), "{msg}");
            assert_eq!(err.kind(), crate::ErrorKind::BadInput);
        }
    }

    #[test]
    fn custom_provider_from_toml() {
        let table: toml::Table = toml::from_str(
            r#"
            [llamacpp]
            base_url = "http://127.0.0.1:8080/v1"
            wire = "openai"

            [together]
            base_url = "https://api.together.xyz/v1"
            wire = "openai"
            api_key_env = "TOGETHER_API_KEY"

            [anthropic]
            base_url = "https://proxy.example"
            "#,
        )
        .unwrap();
        let cfg = ProvidersConfig::from_toml(&table).unwrap();
        let env = env_of(&[("TOGETHER_API_KEY", "tk"), ("ANTHROPIC_API_KEY", "ak")]);

        let m = cfg.parse_model("llamacpp/qwen2.5-coder-7b").unwrap();
        let r = resolve_provider(&m, &cfg, &env).unwrap();
        assert!(r.local, "a loopback server is local");
        assert_eq!(endpoint(&r).0.api_key, None);
        assert_eq!(endpoint(&r).0.base_url, "http://127.0.0.1:8080/v1");

        let m = cfg.parse_model("together/meta-llama/Llama-3-70b").unwrap();
        let r = resolve_provider(&m, &cfg, &env).unwrap();
        assert!(!r.local, "a remote server is not local");
        assert_eq!(endpoint(&r).0.api_key.as_deref(), Some("tk"));
        let err = resolve_provider(&m, &cfg, &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TOGETHER_API_KEY is not set"), "{err}");

        let m = cfg.parse_model("anthropic/claude-haiku-4-5").unwrap();
        let r = resolve_provider(&m, &cfg, &env).unwrap();
        assert_eq!(endpoint(&r).0.base_url, "https://proxy.example");
        // The environment still wins over the file.
        let env2 = env_of(&[
            ("ANTHROPIC_API_KEY", "ak"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:1"),
        ]);
        let r = resolve_provider(&m, &cfg, &env2).unwrap();
        assert_eq!(endpoint(&r).0.base_url, "http://127.0.0.1:1");
    }

    #[test]
    fn bad_provider_tables_are_config_errors() {
        let table: toml::Table =
            toml::from_str("[x]\nbase_url = \"http://h/v1\"\nwire = \"grpc\"\n").unwrap();
        assert!(ProvidersConfig::from_toml(&table)
            .unwrap_err()
            .to_string()
            .contains("[providers]"));
        let table: toml::Table =
            toml::from_str("[x]\nbase_url = \"http://h/v1\"\nmodel = \"m\"\n").unwrap();
        assert!(
            ProvidersConfig::from_toml(&table).is_err(),
            "unknown keys are refused"
        );
        let table: toml::Table = toml::from_str("[x]\nbase_url = \"http://h/v1\"\n").unwrap();
        let cfg = ProvidersConfig::from_toml(&table).unwrap();
        let err =
            resolve_provider(&cfg.parse_model("x/m").unwrap(), &cfg, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("has no wire"), "{err}");
        let table: toml::Table =
            toml::from_str("[x]\nbase_url = \"h:80\"\nwire = \"openai\"\n").unwrap();
        let cfg = ProvidersConfig::from_toml(&table).unwrap();
        let err =
            resolve_provider(&cfg.parse_model("x/m").unwrap(), &cfg, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("not an http"), "{err}");
    }

    #[test]
    fn tool_protocol_is_per_provider_and_native_by_default() {
        let table: toml::Table = toml::from_str(
            "[llamacpp]\nbase_url = \"http://127.0.0.1:8080/v1\"\nwire = \"openai\"\ntool_protocol = \"text\"\n\
             [openrouter]\ntool_protocol = \"text\"\n",
        )
        .unwrap();
        let cfg = ProvidersConfig::from_toml(&table).unwrap();
        let env = env_of(&[("OPENROUTER_API_KEY", "k"), ("OPENAI_API_KEY", "k")]);
        for (model, want) in [
            ("llamacpp/qwen", llm::ToolProtocol::Text),
            ("openrouter/x/y:free", llm::ToolProtocol::Text),
            ("openai/gpt-4.1", llm::ToolProtocol::Native),
        ] {
            let r = resolve_provider(&cfg.parse_model(model).unwrap(), &cfg, &env).unwrap();
            assert_eq!(endpoint(&r).1.tool_protocol, want, "{model}");
        }
        let bad: toml::Table = toml::from_str(
            "[x]\nbase_url = \"http://h/v1\"\nwire = \"openai\"\ntool_protocol = \"xml\"\n",
        )
        .unwrap();
        assert!(ProvidersConfig::from_toml(&bad).is_err());
    }

    #[test]
    fn replay_needs_no_key() {
        let r = resolve_provider(
            &ModelRef::parse("replay/a/b.jsonl").unwrap(),
            &ProvidersConfig::default(),
            &env_of(&[]),
        )
        .unwrap();
        assert!(
            matches!(r.connection, Connection::Replay { ref cassette } if cassette == &PathBuf::from("a/b.jsonl"))
        );
        assert!(r.local);
    }

    #[test]
    fn timeouts_default_by_kind_and_come_from_the_table() {
        let table: toml::Table = toml::from_str(
            r#"
            [llamacpp]
            base_url = "http://127.0.0.1:8080/v1"
            wire = "openai"
            idle_timeout_secs = 900

            [anthropic]
            call_timeout_secs = 120

            [broken]
            base_url = "http://127.0.0.1:8080/v1"
            wire = "openai"
            first_byte_timeout_secs = 0
            "#,
        )
        .unwrap();
        let cfg = ProvidersConfig::from_toml(&table).unwrap();
        let env = env_of(&[("ANTHROPIC_API_KEY", "k")]);
        let local = resolve_provider(&cfg.parse_model("llamacpp/q").unwrap(), &cfg, &env).unwrap();
        assert_eq!(
            local.timeouts,
            Timeouts {
                idle: Duration::from_secs(900),
                ..Timeouts::LOCAL
            }
        );
        let remote = resolve_provider(
            &cfg.parse_model("anthropic/claude-haiku-4-5").unwrap(),
            &cfg,
            &env,
        )
        .unwrap();
        assert_eq!(
            remote.timeouts,
            Timeouts {
                call: Duration::from_secs(120),
                ..Timeouts::REMOTE
            }
        );
        let ollama =
            resolve_provider(&ModelRef::parse("ollama/q").unwrap(), &cfg, &env_of(&[])).unwrap();
        assert_eq!(ollama.timeouts, Timeouts::LOCAL);
        let err = resolve_provider(&cfg.parse_model("broken/q").unwrap(), &cfg, &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[providers.broken] first_byte_timeout_secs = 0"),
            "{err}"
        );
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://localhost:8080/v1"));
        assert!(is_loopback_url("http://127.0.0.1/v1"));
        assert!(is_loopback_url("http://[::1]:8000/v1"));
        assert!(!is_loopback_url("https://api.together.xyz/v1"));
        assert!(!is_loopback_url("http://localhost.evil.com/v1"));
    }
}
