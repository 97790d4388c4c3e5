//! `Usd`: money as a fixed-point integer of nano-dollars (1e-9 USD). Never `f64`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Nano-dollars per dollar.
const NANOS_PER_USD: i128 = 1_000_000_000;

/// An amount of US dollars, stored as whole nano-dollars.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Usd(i64);

/// A decimal string could not be read as an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a decimal amount of US dollars (expected digits with an optional '.', like 0.05)")]
pub struct ParseUsdError {
    input: String,
}

impl Usd {
    pub const ZERO: Usd = Usd(0);

    pub const fn from_nanos(nanos: i64) -> Usd {
        Usd(nanos)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }

    /// Parses a plain decimal (`"0.05"`, `"3"`, `"0.000003"`, `"-1.5"`, `"1e-6"`) exactly, rounding
    /// digits beyond nano-dollars up (away from zero), so a price never reads cheaper than it is.
    pub fn parse_decimal(input: &str) -> Result<Usd, ParseUsdError> {
        let err = || ParseUsdError {
            input: input.to_string(),
        };
        let s = input.trim().trim_start_matches('$');
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        // Split off an exponent, as JSON numbers may carry one (`1.5e-7`).
        let (mantissa, exp) = match s.find(['e', 'E']) {
            Some(i) => {
                let e: i32 = s[i + 1..].parse().map_err(|_| err())?;
                (&s[..i], e)
            }
            None => (s, 0),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((a, b)) => (a, b),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let digits: String = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        // value = digits * 10^(exp - frac_len); we want nanos = value * 10^9
        let scale = exp - frac_part.len() as i32 + 9;
        if digits.is_empty() {
            return Ok(Usd::ZERO);
        }
        if digits.len() > 30 {
            return Err(err());
        }
        let n: i128 = digits.parse().map_err(|_| err())?;
        let nanos: i128 = if scale >= 0 {
            if scale > 20 {
                return Err(err());
            }
            n.checked_mul(10i128.pow(scale as u32)).ok_or_else(err)?
        } else {
            let div = 10i128.checked_pow((-scale) as u32);
            match div {
                Some(d) => (n + d - 1) / d,
                None => 1, // a positive amount far below a nano-dollar rounds up to one
            }
        };
        let nanos = i64::try_from(nanos).map_err(|_| err())?;
        Ok(Usd(if neg { -nanos } else { nanos }))
    }

    /// Reads a JSON number (as providers report `usage.cost`) without going through `f64`
    /// arithmetic: the number's own decimal text is parsed.
    pub fn from_json_number(n: &serde_json::Number) -> Result<Usd, ParseUsdError> {
        Usd::parse_decimal(&n.to_string())
    }
}

impl fmt::Display for Usd {
    /// `$0.012345` style: dollars with six decimals (trailing precision kept when it matters).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as i128;
        let sign = if n < 0 { "-" } else { "" };
        let n = n.abs();
        let whole = n / NANOS_PER_USD;
        let frac = n % NANOS_PER_USD;
        if frac % 1_000 == 0 {
            write!(f, "{sign}${whole}.{:06}", frac / 1_000)
        } else {
            write!(f, "{sign}${whole}.{frac:09}")
        }
    }
}

impl std::str::FromStr for Usd {
    type Err = ParseUsdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Usd::parse_decimal(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals_exactly() {
        assert_eq!(Usd::parse_decimal("0.05").unwrap().nanos(), 50_000_000);
        assert_eq!(Usd::parse_decimal("3").unwrap().nanos(), 3_000_000_000);
        assert_eq!(Usd::parse_decimal("0.000003").unwrap().nanos(), 3_000);
        assert_eq!(Usd::parse_decimal("$1.5").unwrap().nanos(), 1_500_000_000);
        assert_eq!(Usd::parse_decimal("-0.25").unwrap().nanos(), -250_000_000);
        assert_eq!(Usd::parse_decimal("1.5e-7").unwrap().nanos(), 150);
        assert_eq!(Usd::parse_decimal("2E2").unwrap().nanos(), 200_000_000_000);
    }

    #[test]
    fn rounds_sub_nano_digits_up() {
        assert_eq!(Usd::parse_decimal("0.0000000001").unwrap().nanos(), 1);
        assert_eq!(Usd::parse_decimal("0.0000000011").unwrap().nanos(), 2);
        assert_eq!(Usd::parse_decimal("1e-30").unwrap().nanos(), 1);
        assert_eq!(Usd::parse_decimal("0.000").unwrap(), Usd::ZERO);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            ".",
            "abc",
            "1.2.3",
            "1e",
            "--1",
            "1,5",
            "99999999999999999999999",
        ] {
            assert!(
                Usd::parse_decimal(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn displays_dollars() {
        assert_eq!(Usd::from_nanos(50_000_000).to_string(), "$0.050000");
        assert_eq!(Usd::from_nanos(1).to_string(), "$0.000000001");
        assert_eq!(Usd::from_nanos(-1_500_000_000).to_string(), "-$1.500000");
    }

    #[test]
    fn reads_json_numbers_without_float_math() {
        let v: serde_json::Value = serde_json::from_str(r#"{"cost": 0.000123}"#).unwrap();
        let n = v["cost"].as_number().unwrap();
        assert_eq!(Usd::from_json_number(n).unwrap().nanos(), 123_000);
    }
}
