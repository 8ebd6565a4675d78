//! Arbitrary-precision decimal numbers, as Terraform's `number` type needs them.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use bigdecimal::num_bigint::{BigInt, Sign};
use bigdecimal::{BigDecimal, ToPrimitive, Zero};

/// Longest accepted textual form of a number.
const MAX_TEXT_LEN: usize = 100_000;
/// Most significant decimal digits a number may have.
const MAX_DIGITS: u64 = 50_000;
/// Largest magnitude of the decimal exponent (scale) a number may have.
const MAX_SCALE: i64 = 20_000;

/// A Terraform number: an exact decimal, not limited to the range or precision of `i64`/`f64`.
///
/// Very large exponents (beyond about 10^±20000) and very long mantissas are rejected so that
/// no input can make formatting or arithmetic unreasonably expensive.
#[derive(Clone)]
pub struct Number(BigDecimal);

/// Why a string is not a [`Number`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseNumberError(String);

impl Number {
    /// Wraps a decimal, normalising it; `None` if it is beyond the supported range.
    pub fn from_big_decimal(value: BigDecimal) -> Option<Number> {
        if value.is_zero() {
            return Some(Number(BigDecimal::zero()));
        }
        if value.digits() > MAX_DIGITS {
            return None;
        }
        let value = value.normalized();
        let scale = value.fractional_digit_count();
        if !(-MAX_SCALE..=MAX_SCALE).contains(&scale) {
            return None;
        }
        Some(Number(value))
    }

    /// The exact decimal value.
    pub fn as_big_decimal(&self) -> &BigDecimal {
        &self.0
    }

    pub fn zero() -> Number {
        Number(BigDecimal::zero())
    }

    pub fn from_i64(value: i64) -> Number {
        Number(BigDecimal::from(value).normalized())
    }

    pub fn from_u64(value: u64) -> Number {
        Number(BigDecimal::from(value).normalized())
    }

    pub fn from_i128(value: i128) -> Number {
        Number(BigDecimal::from(value).normalized())
    }

    pub fn from_u128(value: u128) -> Number {
        Number(BigDecimal::from(value).normalized())
    }

    /// The shortest decimal that reads back as `value` (so `0.1` becomes exactly `0.1`);
    /// `None` for NaN and infinities.
    pub fn from_f64(value: f64) -> Option<Number> {
        if !value.is_finite() {
            return None;
        }
        format!("{value:e}").parse().ok()
    }

    /// The exact binary value of `value` as a decimal (so `0.1` becomes
    /// `0.1000000000000000055511151231257827021181583404541015625`); `None` for NaN and infinities.
    pub fn from_f64_exact(value: f64) -> Option<Number> {
        if !value.is_finite() {
            return None;
        }
        if value == 0.0 {
            return Some(Number::zero());
        }
        let bits = value.to_bits();
        let negative = bits >> 63 == 1;
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1u64 << 52) - 1);
        let (mantissa, exponent) =
            if biased == 0 { (fraction, -1074) } else { (fraction | (1u64 << 52), biased - 1075) };
        let mantissa = BigInt::from(mantissa);
        let mut decimal = if exponent >= 0 {
            BigDecimal::new(mantissa << exponent as usize, 0)
        } else {
            // m * 2^-k == m * 5^k / 10^k
            let k = (-exponent) as u32;
            BigDecimal::new(mantissa * BigInt::from(5u8).pow(k), i64::from(k))
        };
        if negative {
            decimal = -decimal;
        }
        Number::from_big_decimal(decimal)
    }

    /// Whether the value has no fractional part.
    pub fn is_integer(&self) -> bool {
        self.0.fractional_digit_count() <= 0
    }

    /// The integer value scaled to an integer, if integral and at most `max_zeros` trailing zeros.
    fn integer_value(&self, max_zeros: i64) -> Option<BigInt> {
        let (int, scale) = self.0.as_bigint_and_exponent();
        if scale > 0 || -scale > max_zeros {
            return None;
        }
        Some(int * BigInt::from(10u8).pow((-scale) as u32))
    }

    /// The value as `i64`, only if it is an integer within range.
    pub fn to_i64(&self) -> Option<i64> {
        self.integer_value(19)?.to_i64()
    }

    /// The value as `u64`, only if it is a non-negative integer within range.
    pub fn to_u64(&self) -> Option<u64> {
        self.integer_value(20)?.to_u64()
    }

    /// The value as `i128`, only if it is an integer within range.
    pub fn to_i128(&self) -> Option<i128> {
        self.integer_value(39)?.to_i128()
    }

    /// The value as `u128`, only if it is a non-negative integer within range.
    pub fn to_u128(&self) -> Option<u128> {
        self.integer_value(39)?.to_u128()
    }

    /// The nearest `f64` (infinite if beyond its range).
    pub fn to_f64(&self) -> f64 {
        if self.0.is_zero() {
            return 0.0;
        }
        let (int, scale) = self.0.as_bigint_and_exponent();
        format!("{int}e{}", -scale).parse().unwrap_or(f64::NAN)
    }

    /// The value as `f64` only if that `f64` is exactly this value.
    pub fn to_f64_exact(&self) -> Option<f64> {
        let f = self.to_f64();
        (Number::from_f64_exact(f).as_ref() == Some(self)).then_some(f)
    }
}

impl fmt::Display for Number {
    /// Plain decimal notation without exponent: `1`, `-5`, `0.000001`, `1180591620717411303424`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, scale) = self.0.as_bigint_and_exponent();
        if int.sign() == Sign::Minus {
            f.write_str("-")?;
        }
        let digits = int.magnitude().to_string();
        if scale <= 0 {
            f.write_str(&digits)?;
            for _ in 0..(-scale) {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let scale = scale as usize;
        if digits.len() > scale {
            let (whole, fraction) = digits.split_at(digits.len() - scale);
            write!(f, "{whole}.{fraction}")
        } else {
            f.write_str("0.")?;
            for _ in 0..(scale - digits.len()) {
                f.write_str("0")?;
            }
            f.write_str(&digits)
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

/// Checks the syntax `[+-]digits[.digits][(e|E)[+-]digits]` (also `.5` and `5.`).
fn valid_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        i += 1;
        if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}

impl FromStr for Number {
    type Err = ParseNumberError;

    fn from_str(text: &str) -> Result<Number, ParseNumberError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(ParseNumberError(format!("number has more than {MAX_TEXT_LEN} characters")));
        }
        if !valid_syntax(text) {
            let shown: String = text.chars().take(64).collect();
            return Err(ParseNumberError(format!("{shown:?} is not a valid number")));
        }
        let decimal = BigDecimal::from_str(text.strip_prefix('+').unwrap_or(text))
            .map_err(|e| ParseNumberError(format!("invalid number: {e}")))?;
        Number::from_big_decimal(decimal)
            .ok_or_else(|| ParseNumberError("number is beyond the supported range".to_owned()))
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        // Both sides are normalised, so equal values have equal representations.
        self.0.as_bigint_and_exponent() == other.0.as_bigint_and_exponent()
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl Hash for Number {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (int, scale) = self.0.as_bigint_and_exponent();
        int.hash(state);
        scale.hash(state);
    }
}

impl Default for Number {
    fn default() -> Number {
        Number::zero()
    }
}

macro_rules! from_int {
    ($($t:ty => $via:ident),*) => {$(
        impl From<$t> for Number {
            fn from(value: $t) -> Number {
                Number::$via(value.into())
            }
        }
    )*};
}
from_int!(i8 => from_i64, i16 => from_i64, i32 => from_i64, i64 => from_i64,
          u8 => from_u64, u16 => from_u64, u32 => from_u64, u64 => from_u64);

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        text.parse().expect("valid number")
    }

    #[test]
    fn display_is_plain_and_canonical() {
        assert_eq!(n("1.0").to_string(), "1");
        assert_eq!(n("100").to_string(), "100");
        assert_eq!(n("1e3").to_string(), "1000");
        assert_eq!(n("-5").to_string(), "-5");
        assert_eq!(n("0.000").to_string(), "0");
        assert_eq!(n("-0").to_string(), "0");
        assert_eq!(n("1e-30").to_string(), "0.000000000000000000000000000001");
        assert_eq!(n("12.3400").to_string(), "12.34");
        assert_eq!(n(".5").to_string(), "0.5");
        assert_eq!(n("+7.").to_string(), "7");
        assert_eq!(n("1180591620717411303424").to_string(), "1180591620717411303424");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "-", ".", "1e", "e5", "1.2.3", "NaN", "inf", "0x10", " 1", "1 ", "1e-99999999999"] {
            assert!(bad.parse::<Number>().is_err(), "{bad:?}");
        }
        assert!("1e30000".parse::<Number>().is_err());
    }

    #[test]
    fn integer_conversions() {
        assert_eq!(n("1e3").to_i64(), Some(1000));
        assert_eq!(n("1.5").to_i64(), None);
        assert_eq!(n("9223372036854775807").to_i64(), Some(i64::MAX));
        assert_eq!(n("9223372036854775808").to_i64(), None);
        assert_eq!(n("-9223372036854775808").to_i64(), Some(i64::MIN));
        assert_eq!(n("18446744073709551615").to_u64(), Some(u64::MAX));
        assert_eq!(n("-1").to_u64(), None);
        assert_eq!(n("1e300").to_i64(), None);
        assert_eq!(Number::from_u64(u64::MAX).to_string(), "18446744073709551615");
        assert!(n("1e300").is_integer());
        assert!(!n("0.1").is_integer());
    }

    #[test]
    fn floats() {
        assert_eq!(Number::from_f64(0.1), Some(n("0.1")));
        assert_eq!(Number::from_f64(f64::NAN), None);
        assert_eq!(Number::from_f64(f64::INFINITY), None);
        assert_eq!(Number::from_f64(-2.5), Some(n("-2.5")));
        assert_eq!(Number::from_f64(1e21), Some(n("1e21")));
        assert_eq!(
            Number::from_f64_exact(0.1).map(|x| x.to_string()).as_deref(),
            Some("0.1000000000000000055511151231257827021181583404541015625")
        );
        assert_eq!(Number::from_f64_exact(0.5), Some(n("0.5")));
        assert_eq!(n("0.1").to_f64(), 0.1);
        assert_eq!(n("0.1").to_f64_exact(), None);
        assert_eq!(n("0.5").to_f64_exact(), Some(0.5));
        assert_eq!(n("1e400").to_f64(), f64::INFINITY);
        let tiny = Number::from_f64_exact(f64::from_bits(1)).expect("subnormal");
        assert_eq!(tiny.to_f64(), f64::from_bits(1));
    }

    #[test]
    fn equality_and_order() {
        assert_eq!(n("1.50"), n("1.5"));
        assert!(n("2") > n("1.999999999999999999999999"));
        assert!(n("-3") < n("0"));
        use std::collections::hash_map::DefaultHasher;
        let hash = |x: &Number| {
            let mut h = DefaultHasher::new();
            x.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&n("10")), hash(&n("1e1")));
    }
}
