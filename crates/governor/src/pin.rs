//! Is the model that answered the model we pinned?
//!
//! Equivalent forms (anything else is a pin violation):
//! - the exact id;
//! - the provider's dated snapshot of a requested alias: `claude-sonnet-4-5` →
//!   `claude-sonnet-4-5-20250929` (Anthropic), `gpt-4.1-mini` → `gpt-4.1-mini-2025-04-14`
//!   (OpenAI, and OpenRouter's `openai/gpt-4o` → `openai/gpt-4o-2024-08-06`); an alias ending
//!   in `-latest` may be answered by any dated snapshot of its base;
//! - OpenRouter only: the requested id without its `:variant` (OpenRouter reports
//!   `vendor/model` for a `vendor/model:free` request). The cost of such a call is still
//!   checked: a non-zero reported cost aborts free-only runs;
//! - Ollama only: `name` requested, `name:latest` served (Ollama's default tag);
//! - an empty served model only from a local provider (Ollama, a self-hosted server, a replay):
//!   llama.cpp and some vLLM builds leave it blank, and a local server cannot swap in a paid
//!   model. From a remote provider an empty served model is a violation (fail closed).

use crate::model_ref::Provider;
use crate::pricing::strip_snapshot_suffix;

/// Whether `served` is an acceptable answer to a request pinned to `asked`.
pub fn served_model_matches(provider: &Provider, asked: &str, served: &str, local: bool) -> bool {
    let served = served.trim();
    if served.is_empty() {
        return local;
    }
    if served == asked || is_snapshot_of(asked, served) {
        return true;
    }
    match provider {
        Provider::Openrouter => match asked.rsplit_once(':') {
            Some((base, _variant)) if !base.contains(':') => {
                served == base || is_snapshot_of(base, served)
            }
            _ => false,
        },
        Provider::Ollama => !asked.contains(':') && served == format!("{asked}:latest"),
        _ => false,
    }
}

/// `served` is a dated snapshot of the alias `asked` (or of the base of `asked-latest`).
fn is_snapshot_of(asked: &str, served: &str) -> bool {
    let base = asked.strip_suffix("-latest").unwrap_or(asked);
    match strip_snapshot_suffix(served) {
        Some(stem) => stem == base && !served.ends_with("-latest"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalences() {
        let ok: &[(Provider, &str, &str, bool)] = &[
            (
                Provider::Anthropic,
                "claude-sonnet-4-5",
                "claude-sonnet-4-5",
                false,
            ),
            (
                Provider::Anthropic,
                "claude-sonnet-4-5",
                "claude-sonnet-4-5-20250929",
                false,
            ),
            (
                Provider::Anthropic,
                "claude-3-5-haiku-latest",
                "claude-3-5-haiku-20241022",
                false,
            ),
            (
                Provider::Openai,
                "gpt-4.1-mini",
                "gpt-4.1-mini-2025-04-14",
                false,
            ),
            (
                Provider::Openrouter,
                "mistralai/mistral-7b-instruct:free",
                "mistralai/mistral-7b-instruct",
                false,
            ),
            (
                Provider::Openrouter,
                "mistralai/mistral-7b-instruct:free",
                "mistralai/mistral-7b-instruct:free",
                false,
            ),
            (
                Provider::Openrouter,
                "openai/gpt-4o",
                "openai/gpt-4o-2024-08-06",
                false,
            ),
            (
                Provider::Ollama,
                "qwen2.5-coder:7b",
                "qwen2.5-coder:7b",
                true,
            ),
            (Provider::Ollama, "llama3", "llama3:latest", true),
            (Provider::Ollama, "llama3", "", true),
            (Provider::Replay, "x.jsonl", "", true),
        ];
        for (p, asked, served, local) in ok {
            assert!(
                served_model_matches(p, asked, served, *local),
                "{p}: {asked} -> {served:?}"
            );
        }
        let bad: &[(Provider, &str, &str, bool)] = &[
            (
                Provider::Anthropic,
                "claude-sonnet-4-5",
                "claude-opus-4-1-20250805",
                false,
            ),
            (
                Provider::Anthropic,
                "claude-sonnet-4-5",
                "claude-sonnet-4-5-haiku",
                false,
            ),
            (
                Provider::Anthropic,
                "claude-sonnet-4-5-20250929",
                "claude-sonnet-4-5",
                false,
            ),
            (
                Provider::Anthropic,
                "claude-sonnet-4",
                "claude-sonnet-4-5-20250929",
                false,
            ),
            (Provider::Anthropic, "claude-sonnet-4-5", "", false),
            (Provider::Openai, "gpt-4.1-mini", "gpt-4.1", false),
            (
                Provider::Openai,
                "gpt-4.1",
                "gpt-4.1-mini-2025-04-14",
                false,
            ),
            (
                Provider::Openrouter,
                "mistralai/mistral-7b-instruct:free",
                "mistralai/mixtral-8x7b",
                false,
            ),
            (
                Provider::Openrouter,
                "mistralai/mistral-7b-instruct",
                "mistralai/mistral-7b-instruct:free",
                false,
            ),
            (
                Provider::Openrouter,
                "a/b:free",
                "anthropic/claude-3-haiku",
                false,
            ),
            (
                Provider::Ollama,
                "qwen2.5-coder:7b",
                "qwen2.5-coder:32b",
                true,
            ),
            (Provider::Custom("vllm".into()), "q", "", false),
        ];
        for (p, asked, served, local) in bad {
            assert!(
                !served_model_matches(p, asked, served, *local),
                "{p}: {asked} -> {served:?}"
            );
        }
    }
}
