//! "Did you mean": the closest known name to a mistyped provider or model.

use governor::{GovernorError, ModelRefError, OpenRouterCatalog, PriceCatalog, PricingOverrides};
use std::path::Path;

/// Levenshtein distance between two strings (by characters).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The candidate closest to `input`, when close enough to be a typo (a third of its length,
/// at least two edits).
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (input.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .filter(|c| *c != input)
        .map(|c| (distance(input, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean X?"` for an unknown provider (among the built-in and configured ones) or a
/// model with no known price (among the catalog's models), else `""`.
pub fn for_model_error(
    error: &GovernorError,
    model: &str,
    pricing: &PricingOverrides,
    openrouter_cache: Option<&Path>,
) -> String {
    let guess = match error {
        GovernorError::ModelRef(ModelRefError::UnknownProvider {
            provider,
            configured,
            ..
        }) => {
            let names: Vec<&str> = governor::Provider::BUILTIN
                .iter()
                .copied()
                .chain(
                    configured
                        .split(", ")
                        .filter(|c| !c.is_empty() && *c != "none"),
                )
                .collect();
            closest(provider, names).map(|p| {
                let rest = model.split_once('/').map(|(_, r)| r).unwrap_or("");
                format!("{p}/{rest}")
            })
        }
        GovernorError::UnknownPrice { .. } => {
            let cached = openrouter_cache.and_then(|p| OpenRouterCatalog::load(p).ok().flatten());
            let entries = PriceCatalog::new(pricing, cached)
                .map(|c| c.entries())
                .unwrap_or_default();
            closest(model, entries.iter().map(|e| e.model.as_str())).map(str::to_string)
        }
        _ => None,
    };
    guess
        .map(|g| format!("; did you mean {g}?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(distance("anthropc", "anthropic"), 1);
        assert_eq!(
            closest("anthropc", governor::Provider::BUILTIN),
            Some("anthropic")
        );
        assert_eq!(
            closest("openruter", governor::Provider::BUILTIN),
            Some("openrouter")
        );
        assert_eq!(closest("mistral", governor::Provider::BUILTIN), None);
        assert_eq!(
            closest(
                "anthropic/claude-sonet-4-5",
                ["anthropic/claude-sonnet-4-5", "openai/gpt-4.1-mini"]
            ),
            Some("anthropic/claude-sonnet-4-5")
        );
    }
}
