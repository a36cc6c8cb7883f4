//! Durations as runbooks write them: `90s`, `30m`, `4h`, `1h30m`, `2d`, `500ms`.

use std::time::Duration;

/// What a duration must look like, in every message about one.
const EXPECTED: &str = "expected a number with a unit, like 90s, 30m, 4h or 1h30m";

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: {}", EXPECTED)]
    Empty,
    /// A part does not start with a number.
    #[error("bad duration `{text}`: {}", EXPECTED)]
    NoNumber { text: String },
    #[error("bad duration `{text}`: number too large")]
    TooLarge {
        text: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("bad duration `{text}`: `{number}` has no unit; {}", EXPECTED)]
    NoUnit { text: String, number: u64 },
    #[error("bad duration `{text}`: unknown unit `{unit}`; {}", EXPECTED)]
    UnknownUnit { text: String, unit: String },
}

/// Parses a human duration. Units: `ms`, `s`, `m`, `h`, `d`; parts may be
/// combined (`1h30m`). A bare number is refused on purpose: `timeout = "30"`
/// could mean seconds or minutes, and a wrong guess at 3 a.m. is expensive.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::NoNumber { text: text.to_string() });
        }
        let number: u64 =
            rest[..digits].parse().map_err(|source| DurationError::TooLarge { text: text.to_string(), source })?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" | "sec" | "secs" => Duration::from_secs(number),
            "m" | "min" | "mins" => Duration::from_secs(number.saturating_mul(60)),
            "h" | "hr" | "hrs" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            "" => return Err(DurationError::NoUnit { text: text.to_string(), number }),
            other => return Err(DurationError::UnknownUnit { text: text.to_string(), unit: other.to_string() }),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration compactly for humans, leaving out zero parts:
/// `4h`, `1h 2m 5s`, `4m 5s`, `12s`, `850ms`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs == 0 {
        return match duration.as_millis() {
            0 => "0s".to_string(),
            millis => format!("{millis}ms"),
        };
    }
    let parts = [(secs / 86_400, "d"), (secs / 3600 % 24, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect::<Vec<_>>().join(" ")
}

/// A drill cadence: a named period or a duration, as the runbook's
/// `cadence` writes it. A quarter is 92 days and a month 31, the longest
/// each can be, so a drill on the same date next quarter is never overdue.
pub fn parse_cadence(text: &str) -> Result<Duration, DurationError> {
    const DAY: u64 = 24 * 3600;
    match text.trim() {
        "weekly" => Ok(Duration::from_secs(7 * DAY)),
        "monthly" => Ok(Duration::from_secs(31 * DAY)),
        "quarterly" => Ok(Duration::from_secs(92 * DAY)),
        "yearly" | "annually" => Ok(Duration::from_secs(366 * DAY)),
        other => parse_duration(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_combined_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(14_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn refuses_bare_numbers_and_unknown_units() {
        assert!(parse_duration("30").unwrap_err().to_string().contains("has no unit"));
        assert!(parse_duration("3 weeks").unwrap_err().to_string().contains("unknown unit `weeks`"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_secs(12)), "12s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m 5s");
        assert_eq!(format_duration(Duration::from_secs(3725)), "1h 2m 5s");
        assert_eq!(format_duration(Duration::from_secs(14_400)), "4h");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
    }
}
