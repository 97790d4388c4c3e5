//! `ModelRef`: a parsed model string (`provider/model`, `provider/vendor/model[:variant]`,
//! `replay/PATH`). Parsing is the only way to build one, so a `ModelRef` is never malformed.

use std::fmt;

/// Who serves a model. Built-ins have fixed wire formats and default endpoints; `Custom` names a
/// `[providers.NAME]` table from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Anthropic,
    Openai,
    Openrouter,
    Ollama,
    /// Plays a recorded session back from a cassette file; never touches the network.
    Replay,
    Custom(String),
}

impl Provider {
    /// The built-in provider names, in the order they are listed to users.
    pub const BUILTIN: [&'static str; 5] =
        ["anthropic", "openai", "openrouter", "ollama", "replay"];

    /// The built-in provider called `name`, if any.
    pub fn builtin(name: &str) -> Option<Provider> {
        match name {
            "anthropic" => Some(Provider::Anthropic),
            "openai" => Some(Provider::Openai),
            "openrouter" => Some(Provider::Openrouter),
            "ollama" => Some(Provider::Ollama),
            "replay" => Some(Provider::Replay),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Openai => "openai",
            Provider::Openrouter => "openrouter",
            Provider::Ollama => "ollama",
            Provider::Replay => "replay",
            Provider::Custom(name) => name,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelRefError {
    #[error("the model string is empty; give one like anthropic/claude-sonnet-4-5, openai/gpt-4.1-mini or openrouter/mistralai/mistral-7b-instruct:free")]
    Empty,
    #[error("model string {input:?} contains whitespace; model strings look like provider/model with no spaces")]
    Whitespace { input: String },
    #[error("model string {input:?} does not name a provider; write provider/model, e.g. anthropic/claude-sonnet-4-5 or ollama/qwen2.5-coder:7b")]
    MissingProvider { input: String },
    #[error(
        "model string {input:?} names provider {provider:?} but no model; write {provider}/MODEL"
    )]
    MissingModel { input: String, provider: String },
    #[error("model string {input:?} has an empty part (a doubled '/', or a trailing '/' or ':'); write provider/model or provider/vendor/model[:variant]")]
    EmptyPart { input: String },
    #[error("unknown provider {provider:?} in model string {input:?}; built-in providers: {known}; configured providers: {configured} (define others with [providers.NAME] base_url, api_key_env, wire in the config file)")]
    UnknownProvider {
        input: String,
        provider: String,
        known: String,
        configured: String,
    },
    #[error("OpenRouter model ids name their vendor: write openrouter/VENDOR/MODEL[:variant] (e.g. openrouter/mistralai/mistral-7b-instruct:free), not {input:?}")]
    OpenrouterWithoutVendor { input: String },
}

/// A model the Governor may call: a provider plus the provider's own model id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelRef {
    provider: Provider,
    /// What goes on the wire (for `replay`, the cassette path).
    model: String,
}

impl ModelRef {
    /// Parses a model string naming a built-in provider.
    pub fn parse(input: &str) -> Result<ModelRef, ModelRefError> {
        ModelRef::parse_with(input, &[] as &[&str])
    }

    /// Parses a model string whose provider is a built-in or one of `configured` (the names of
    /// the `[providers.NAME]` tables). A configured name equal to a built-in one configures the
    /// built-in (its endpoint), it does not replace it.
    pub fn parse_with<S: AsRef<str>>(
        input: &str,
        configured: &[S],
    ) -> Result<ModelRef, ModelRefError> {
        if input.trim().is_empty() {
            return Err(ModelRefError::Empty);
        }
        let owned = || input.to_string();
        if input.trim() != input {
            return Err(ModelRefError::Whitespace { input: owned() });
        }
        let Some((provider_name, rest)) = input.split_once('/') else {
            return Err(ModelRefError::MissingProvider { input: owned() });
        };
        if provider_name.is_empty() {
            return Err(ModelRefError::MissingProvider { input: owned() });
        }
        if provider_name.chars().any(char::is_whitespace) {
            return Err(ModelRefError::Whitespace { input: owned() });
        }
        let provider = match Provider::builtin(provider_name) {
            Some(p) => p,
            None if configured.iter().any(|c| c.as_ref() == provider_name) => {
                Provider::Custom(provider_name.to_string())
            }
            None => {
                let mut names: Vec<&str> = configured.iter().map(AsRef::as_ref).collect();
                names.sort_unstable();
                let configured = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                };
                return Err(ModelRefError::UnknownProvider {
                    input: owned(),
                    provider: provider_name.to_string(),
                    known: Provider::BUILTIN.join(", "),
                    configured,
                });
            }
        };
        if rest.is_empty() {
            return Err(ModelRefError::MissingModel {
                input: owned(),
                provider: provider_name.to_string(),
            });
        }
        if provider == Provider::Replay {
            // The rest is a file path, taken as is (it may be absolute: `replay//tmp/x.jsonl`).
            return Ok(ModelRef {
                provider,
                model: rest.to_string(),
            });
        }
        if rest.chars().any(char::is_whitespace) {
            return Err(ModelRefError::Whitespace { input: owned() });
        }
        if rest.split('/').any(str::is_empty) || rest.ends_with(':') || rest.contains(":/") {
            return Err(ModelRefError::EmptyPart { input: owned() });
        }
        if provider == Provider::Openrouter && !rest.contains('/') {
            return Err(ModelRefError::OpenrouterWithoutVendor { input: owned() });
        }
        Ok(ModelRef {
            provider,
            model: rest.to_string(),
        })
    }

    /// A reference to another model id of the same provider (used to price a served model).
    pub(crate) fn sibling(&self, model: &str) -> ModelRef {
        ModelRef {
            provider: self.provider.clone(),
            model: model.to_string(),
        }
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The model id exactly as it goes on the wire (for `replay`, the cassette path).
    pub fn model_id(&self) -> &str {
        &self.model
    }

    /// The `:variant` suffix of the last path segment (`free` in `mistral-7b-instruct:free`,
    /// `7b` in Ollama's `qwen2.5-coder:7b`).
    pub fn variant(&self) -> Option<&str> {
        if self.provider == Provider::Replay {
            return None;
        }
        let last = self.model.rsplit('/').next().unwrap_or(&self.model);
        last.rsplit_once(':').map(|(_, v)| v)
    }

    /// An OpenRouter `:free` variant (priced at zero).
    pub fn is_free_variant(&self) -> bool {
        self.provider == Provider::Openrouter && self.variant() == Some("free")
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

impl std::str::FromStr for ModelRef {
    type Err = ModelRefError;
    fn from_str(s: &str) -> Result<ModelRef, ModelRefError> {
        ModelRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_model_strings_parse_and_round_trip() {
        let cases: &[(&str, &str, &str, bool)] = &[
            (
                "anthropic/claude-sonnet-4-5-20250929",
                "anthropic",
                "claude-sonnet-4-5-20250929",
                false,
            ),
            (
                "anthropic/claude-sonnet-4-5",
                "anthropic",
                "claude-sonnet-4-5",
                false,
            ),
            (
                "openrouter/mistralai/mistral-7b-instruct:free",
                "openrouter",
                "mistralai/mistral-7b-instruct:free",
                true,
            ),
            (
                "openrouter/anthropic/claude-3.5-sonnet",
                "openrouter",
                "anthropic/claude-3.5-sonnet",
                false,
            ),
            ("openai/gpt-4.1-mini", "openai", "gpt-4.1-mini", false),
            (
                "ollama/qwen2.5-coder:7b",
                "ollama",
                "qwen2.5-coder:7b",
                false,
            ),
            (
                "ollama/hf.co/user/model:q4",
                "ollama",
                "hf.co/user/model:q4",
                false,
            ),
            (
                "replay/PATH/TO/cassette.jsonl",
                "replay",
                "PATH/TO/cassette.jsonl",
                false,
            ),
            (
                "replay//tmp/run 1/cassette.jsonl",
                "replay",
                "/tmp/run 1/cassette.jsonl",
                false,
            ),
        ];
        for (input, provider, model, free) in cases {
            let m = ModelRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(m.provider().name(), *provider, "{input}");
            assert_eq!(m.model_id(), *model, "{input}");
            assert_eq!(m.is_free_variant(), *free, "{input}");
            assert_eq!(m.to_string(), *input, "{input} must round-trip");
            assert_eq!(ModelRef::parse(&m.to_string()).unwrap(), m);
        }
    }

    #[test]
    fn variants_are_read_from_the_last_segment() {
        assert_eq!(
            ModelRef::parse("ollama/qwen2.5-coder:7b")
                .unwrap()
                .variant(),
            Some("7b")
        );
        assert_eq!(ModelRef::parse("openai/gpt-4.1").unwrap().variant(), None);
        assert!(
            !ModelRef::parse("ollama/x:free").unwrap().is_free_variant(),
            "only OpenRouter has :free pricing"
        );
    }

    #[test]
    fn bad_model_strings_get_clear_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("claude-sonnet-4-5", "does not name a provider"),
            ("/claude-sonnet-4-5", "does not name a provider"),
            ("anthropic/", "no model"),
            ("anthropic/claude sonnet", "whitespace"),
            (" anthropic/claude", "whitespace"),
            ("anthropic/claude\t", "whitespace"),
            ("openrouter/mistral-7b-instruct:free", "name their vendor"),
            ("openrouter//mistral", "empty part"),
            ("openrouter/mistralai/", "empty part"),
            ("openrouter/mistralai/m:", "empty part"),
            ("gemini/gemini-2.5-pro", "unknown provider \"gemini\""),
        ];
        for (input, needle) in cases {
            let err = ModelRef::parse(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn unknown_provider_lists_known_and_configured_ones() {
        let err = ModelRef::parse_with("vlm/qwen", &["llamacpp", "vllm"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("anthropic, openai, openrouter, ollama, replay"),
            "{err}"
        );
        assert!(err.contains("llamacpp, vllm"), "{err}");
        let err = ModelRef::parse("vllm/qwen").unwrap_err().to_string();
        assert!(err.contains("configured providers: none"), "{err}");
    }

    #[test]
    fn configured_providers_parse() {
        let m = ModelRef::parse_with("vllm/Qwen/Qwen2.5-Coder-7B-Instruct", &["vllm"]).unwrap();
        assert_eq!(m.provider(), &Provider::Custom("vllm".into()));
        assert_eq!(m.model_id(), "Qwen/Qwen2.5-Coder-7B-Instruct");
        // A configured table named like a built-in configures the built-in.
        let m = ModelRef::parse_with("anthropic/claude-haiku-4-5", &["anthropic"]).unwrap();
        assert_eq!(m.provider(), &Provider::Anthropic);
    }
}
