//! Exact money: US dollars held as integer micro-dollars, never binary floating point.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Micro-dollars in one dollar.
const MICROS: u64 = 1_000_000;
/// The largest amount accepted: a trillion dollars keeps every sum far from `u64` overflow.
const MAX_DOLLARS: u64 = 1_000_000_000_000;

/// A non-negative amount of US dollars with at most six decimal places.
///
/// Written as a decimal string (`"12.50"`) or a JSON number (`12.5`); a negative, non-finite or
/// over-precise amount is refused rather than rounded, so an amount can never turn into a credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(u64);

/// Why a text is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a plain decimal number.
    #[error("{0:?} is not an amount: write a decimal number such as \"12.50\"")]
    Malformed(String),
    /// A minus sign.
    #[error("{0:?} is negative: amounts are at least 0")]
    Negative(String),
    /// More than six decimal places.
    #[error("{0:?} has more than 6 decimal places")]
    TooPrecise(String),
    /// Larger than any amount Charter accepts.
    #[error("{0:?} is too large (at most 1000000000000)")]
    TooLarge(String),
}

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(0);

    /// An amount of micro-dollars.
    pub const fn from_micros(micros: u64) -> Money {
        Money(micros)
    }

    /// The amount in micro-dollars.
    pub const fn micros(self) -> u64 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The sum, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Parses a decimal text: digits, an optional fraction of at most six digits and an optional
    /// exponent (`1e-3`), as JSON numbers may be written.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let malformed = || MoneyError::Malformed(text.to_owned());
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err(MoneyError::Negative(text.to_owned()));
        }
        let (mantissa, exponent) = match trimmed.find(['e', 'E']) {
            Some(at) => {
                let exp: i32 = trimmed[at + 1..].parse().map_err(|_| malformed())?;
                (&trimmed[..at], exp)
            }
            None => (trimmed, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !digits_ok(whole) || !digits_ok(fraction) {
            return Err(malformed());
        }
        // All digits, with the decimal point moved by the exponent: value = digits × 10^-scale.
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        let scale = i64::try_from(fraction.len()).map_err(|_| malformed())? - i64::from(exponent);
        let (significant, scale) = strip_trailing_zeros(digits, scale);
        if significant.is_empty() {
            return Ok(Money::ZERO);
        }
        if scale > 6 {
            return Err(MoneyError::TooPrecise(text.to_owned()));
        }
        let too_large = || MoneyError::TooLarge(text.to_owned());
        // Micro-dollars = significant × 10^(6 - scale); bound the length before parsing.
        let shift = u32::try_from(6 - scale).map_err(|_| too_large())?;
        if significant.len() + shift as usize > 20 {
            return Err(too_large());
        }
        let micros = significant
            .parse::<u64>()
            .ok()
            .and_then(|v| v.checked_mul(10u64.checked_pow(shift)?))
            .ok_or_else(too_large)?;
        if micros > MAX_DOLLARS * MICROS {
            return Err(too_large());
        }
        Ok(Money(micros))
    }
}

/// Drops trailing zeros of the digits while the scale allows, so `1.500000000` is not "too precise".
fn strip_trailing_zeros(digits: &str, mut scale: i64) -> (&str, i64) {
    let mut digits = digits;
    while scale > 0 && digits.ends_with('0') {
        digits = &digits[..digits.len() - 1];
        scale -= 1;
    }
    (digits, scale)
}

impl fmt::Display for Money {
    /// At least two decimals, more when needed: `12.50`, `0.000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / MICROS;
        let fraction = format!("{:06}", self.0 % MICROS);
        let fraction = fraction.trim_end_matches('0');
        write!(f, "{whole}.{fraction:0<2}")
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount of US dollars as a decimal string or number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                Money::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                Money::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                if !v.is_finite() {
                    return Err(E::custom("an amount must be a finite number"));
                }
                // Rust prints the shortest text that reads back as the same f64: the number as
                // the client wrote it, as long as it had no more digits than an f64 holds.
                Money::parse(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(MoneyVisitor)
    }
}

impl schemars::JsonSchema for Money {
    fn schema_name() -> Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "US dollars, at least 0, at most 6 decimal places, at most 1,000,000,000,000. A JSON number with a fraction is read from its shortest decimal text, which a float may not give exactly: write amounts with cents as strings",
            // What the document promises is within what `parse` takes: at most 12 whole digits
            // (past leading zeros) in a string, and whole numbers only as JSON numbers (whose
            // fractions a float may carry past 6 places).
            "oneOf": [
                {"type": "string", "pattern": "^0*[0-9]{1,12}(\\.[0-9]{1,6})?$"},
                {"type": "integer", "minimum": 0, "maximum": MAX_DOLLARS}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_strings() {
        assert_eq!(Money::parse("12.50").unwrap().micros(), 12_500_000);
        assert_eq!(Money::parse("0.000001").unwrap().micros(), 1);
        assert_eq!(Money::parse("7").unwrap().micros(), 7_000_000);
        assert_eq!(Money::parse(".5").unwrap().micros(), 500_000);
        assert_eq!(Money::parse("5.").unwrap().micros(), 5_000_000);
        assert_eq!(Money::parse("0").unwrap(), Money::ZERO);
        assert_eq!(Money::parse("1.500000000").unwrap().micros(), 1_500_000);
        assert_eq!(Money::parse("1e-3").unwrap().micros(), 1_000);
        assert_eq!(Money::parse("2.5E2").unwrap().micros(), 250_000_000);
    }

    #[test]
    fn refuses_what_is_not_money() {
        assert!(matches!(Money::parse("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(
            Money::parse("0.0000001"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse("1e-7"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(Money::parse("abc"), Err(MoneyError::Malformed(_))));
        assert!(matches!(Money::parse(""), Err(MoneyError::Malformed(_))));
        assert!(matches!(Money::parse("."), Err(MoneyError::Malformed(_))));
        assert!(matches!(
            Money::parse("1.2.3"),
            Err(MoneyError::Malformed(_))
        ));
        assert!(matches!(Money::parse("+1"), Err(MoneyError::Malformed(_))));
        assert!(matches!(Money::parse("NaN"), Err(MoneyError::Malformed(_))));
        assert!(matches!(
            Money::parse("1e400"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            Money::parse("1000000000001"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            Money::parse("99999999999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn displays_with_at_least_two_decimals() {
        assert_eq!(Money::from_micros(12_500_000).to_string(), "12.50");
        assert_eq!(Money::from_micros(1).to_string(), "0.000001");
        assert_eq!(Money::ZERO.to_string(), "0.00");
        assert_eq!(Money::from_micros(20_000).to_string(), "0.02");
    }

    #[test]
    fn json_strings_and_numbers() {
        let m: Money = serde_json::from_str("0.02").unwrap();
        assert_eq!(m.micros(), 20_000);
        let m: Money = serde_json::from_str("\"0.02\"").unwrap();
        assert_eq!(m.micros(), 20_000);
        let m: Money = serde_json::from_str("3").unwrap();
        assert_eq!(m.micros(), 3_000_000);
        assert!(serde_json::from_str::<Money>("-0.5").is_err());
        assert!(serde_json::from_str::<Money>("0.1234567").is_err());
        assert!(serde_json::from_str::<Money>("true").is_err());
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"3.00\"");
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(micros in 0u64..=MAX_DOLLARS * MICROS) {
            let m = Money::from_micros(micros);
            proptest::prop_assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
        }
    }
}
