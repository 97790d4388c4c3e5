//! The OpenRouter-style model catalog served at `GET …/models`.

use serde::{Deserialize, Serialize};

/// One catalog entry (`data[]` of OpenRouter's `GET /api/v1/models`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogModel {
    pub id: String,
    pub name: String,
    pub context_length: u64,
    pub pricing: Pricing,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_parameters: Vec<String>,
}

/// Prices as decimal strings in USD per token, as OpenRouter sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub prompt: String,
    pub completion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_write: Option<String>,
}

impl CatalogModel {
    /// A model priced `prompt` / `completion` USD per token (decimal strings, e.g. `"0.000003"`).
    pub fn new(
        id: impl Into<String>,
        context_length: u64,
        prompt: impl Into<String>,
        completion: impl Into<String>,
    ) -> CatalogModel {
        let id = id.into();
        CatalogModel {
            name: id.clone(),
            id,
            context_length,
            pricing: Pricing {
                prompt: prompt.into(),
                completion: completion.into(),
                input_cache_read: None,
                input_cache_write: None,
            },
            supported_parameters: tool_parameters(),
        }
    }

    /// A free model (`"0"` prices).
    pub fn free(id: impl Into<String>, context_length: u64) -> CatalogModel {
        CatalogModel::new(id, context_length, "0", "0")
    }

    pub fn with_cache_prices(
        mut self,
        read: impl Into<String>,
        write: impl Into<String>,
    ) -> CatalogModel {
        self.pricing.input_cache_read = Some(read.into());
        self.pricing.input_cache_write = Some(write.into());
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> CatalogModel {
        self.name = name.into();
        self
    }
}

fn tool_parameters() -> Vec<String> {
    ["tools", "tool_choice", "max_tokens", "temperature"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The catalog served when a script names none: a cached paid Anthropic model, a cheap paid
/// OpenAI model, and two `:free` models.
pub fn default_catalog() -> Vec<CatalogModel> {
    vec![
        CatalogModel::new(
            "anthropic/claude-sonnet-4.5",
            200_000,
            "0.000003",
            "0.000015",
        )
        .with_name("Anthropic: Claude Sonnet 4.5")
        .with_cache_prices("0.0000003", "0.00000375"),
        CatalogModel::new("openai/gpt-4.1-mini", 1_047_576, "0.0000004", "0.0000016")
            .with_name("OpenAI: GPT-4.1 Mini")
            .with_cache_prices("0.0000001", "0"),
        CatalogModel::free("meta-llama/llama-3.2-3b-instruct:free", 131_072)
            .with_name("Meta: Llama 3.2 3B Instruct (free)"),
        CatalogModel::free("mistralai/mistral-7b-instruct:free", 32_768)
            .with_name("Mistral: Mistral 7B Instruct (free)"),
    ]
}

/// The JSON body of `GET …/models`.
pub(crate) fn catalog_body(catalog: &[CatalogModel]) -> serde_json::Value {
    serde_json::json!({ "data": catalog })
}
