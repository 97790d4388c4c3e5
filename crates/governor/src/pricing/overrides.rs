//! `[pricing."provider/model"]` tables: user prices that override every other source.

use super::{ceil_div, Price};
use crate::error::GovernorError;
use llm::Usd;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A decimal amount written in a config file: a string (`"3.00"`, preferred) or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl Decimal {
    fn to_usd(&self) -> Result<Usd, String> {
        let text = match self {
            Decimal::Text(s) => s.clone(),
            Decimal::Integer(i) => i.to_string(),
            Decimal::Float(f) => f.to_string(),
        };
        let usd = Usd::parse_decimal(&text).map_err(|e| e.to_string())?;
        if usd.nanos() < 0 {
            return Err(format!("{text:?} is negative"));
        }
        Ok(usd)
    }
}

/// One `[pricing."provider/model"]` table: USD per million tokens. Missing `cache_read` is
/// taken as `input`; missing `cache_write` as 1.25 × `input` (Anthropic's 5-minute write), both
/// on the safe side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input: Decimal,
    pub output: Decimal,
    #[serde(default)]
    pub cache_read: Option<Decimal>,
    #[serde(default)]
    pub cache_write: Option<Decimal>,
}

impl PriceOverride {
    pub(super) fn to_price(&self, key: &str) -> Result<Price, GovernorError> {
        let field = |name: &str, d: &Decimal| {
            d.to_usd().map_err(|e| {
                GovernorError::Config(format!(
                    "[pricing.\"{key}\"] {name}: {e}; write USD per million tokens as a decimal string like \"3.00\""
                ))
            })
        };
        let input = field("input", &self.input)?;
        let output = field("output", &self.output)?;
        let cache_read = match &self.cache_read {
            Some(d) => field("cache_read", d)?,
            None => input,
        };
        let cache_write = match &self.cache_write {
            Some(d) => field("cache_write", d)?,
            None => Usd::from_nanos(
                i64::try_from(ceil_div(i128::from(input.nanos()) * 5, 4)).unwrap_or(i64::MAX),
            ),
        };
        Ok(Price {
            input,
            output,
            cache_read,
            cache_write,
        })
    }
}

/// All `[pricing."provider/model"]` tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PricingOverrides(pub BTreeMap<String, PriceOverride>);

impl PricingOverrides {
    /// Reads the `pricing` table of a loaded config file.
    pub fn from_toml(table: &toml::Table) -> Result<PricingOverrides, GovernorError> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                GovernorError::Config(format!("the [pricing] configuration is invalid: {e}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::PriceCatalog;

    #[test]
    fn bad_overrides_name_the_key() {
        for body in [
            "[\"openai/x\"]\ninput = \"three\"\noutput = \"1\"\n",
            "[\"openai/x\"]\ninput = \"-1\"\noutput = \"1\"\n",
        ] {
            let t: toml::Table = toml::from_str(body).unwrap();
            let err = PriceCatalog::new(&PricingOverrides::from_toml(&t).unwrap(), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("[pricing.\"openai/x\"] input"), "{err}");
        }
        let t: toml::Table = toml::from_str("[\"openai/x\"]\ninput = \"1\"\n").unwrap();
        assert!(PricingOverrides::from_toml(&t)
            .unwrap_err()
            .to_string()
            .contains("[pricing]"));
    }
}
