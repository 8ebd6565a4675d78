//! Go-style durations (`300ms`, `30s`, `10m`, `1h30m`), as Terraform users write them.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration: use a number and a unit (ms, s, m, h), e.g. \"30s\" or \"1h30m\"")]
pub struct ParseDurationError(pub String);

pub fn parse(text: &str) -> Result<Duration, ParseDurationError> {
    let err = || ParseDurationError(text.to_owned());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        let part = Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| err())?;
        total = total.checked_add(part).ok_or_else(err)?;
    }
    Ok(total)
}

/// The shortest Go-style spelling of `duration` (`30m`, `1h30m`, `45s`, `250ms`), which
/// [`parse`] reads back; below a millisecond is dropped.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0".to_owned();
    }
    let mut out = String::new();
    let mut rest = millis;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        let count = rest / size;
        rest %= size;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_what_it_parses() {
        for (text, secs) in [("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("45s", 45), ("20m", 1200)] {
            assert_eq!(format(Duration::from_secs(secs)), text);
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)));
        }
        assert_eq!(format(Duration::from_millis(1250)), "1s250ms");
        assert_eq!(parse(&format(Duration::from_millis(1250))), Ok(Duration::from_millis(1250)));
        assert_eq!(format(Duration::ZERO), "0");
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "10", "m", "10x", "ten minutes", "1h-5m", "1e400h"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
