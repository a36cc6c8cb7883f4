//! What a `sql-check` expects of a query's answer: `>= 1000`, `= 0`,
//! `between 1 and 5`, or a quoted string it must equal. Parsed when the
//! runbook is checked (so `drillbook check` points at a typo), applied to
//! the text PostgreSQL answered.

use std::cmp::Ordering;
use std::fmt;

/// A comparison operator of an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Lt => "<",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Ge => ordering != Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Lt => ordering == Ordering::Less,
        }
    }
}

/// A number as written: kept as text for the report, compared exactly
/// when both sides are integers.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub text: String,
    value: f64,
    integer: Option<i128>,
}

impl Number {
    pub fn parse(text: &str) -> Option<Number> {
        let text = text.trim();
        let integer = text.parse::<i128>().ok();
        let value = text.parse::<f64>().ok().filter(|v| v.is_finite())?;
        // `inf`, `nan` and `1e5` parse as f64 but are not what anyone means by a count.
        if !text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.')) {
            return None;
        }
        Some(Number { text: text.to_string(), value, integer })
    }

    fn cmp(&self, other: &Number) -> Ordering {
        match (self.integer, other.integer) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.value.partial_cmp(&other.value).unwrap_or(Ordering::Equal),
        }
    }
}

/// What a check's answer must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    Compare(Op, Number),
    /// Inclusive at both ends.
    Between(Number, Number),
    /// The answer's text, exactly.
    Equals(String),
}

/// Why an expectation does not parse: the byte offset in the text and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectError {
    pub offset: usize,
    pub message: String,
}

const FORMS: &str = "expected `= N`, `!= N`, `>= N`, `<= N`, `> N`, `< N`, `between A and B`, or a quoted string \
                     such as \"'ok'\"";

impl Expectation {
    pub fn parse(text: &str) -> Result<Expectation, ExpectError> {
        let lead = text.len() - text.trim_start().len();
        let trimmed = text.trim();
        let error = |offset: usize, message: String| ExpectError { offset: lead + offset, message };
        if trimmed.is_empty() {
            return Err(error(0, format!("the expectation is empty: {FORMS}")));
        }
        if let Some(quote) = trimmed.chars().next().filter(|c| *c == '\'' || *c == '"') {
            let inner = &trimmed[1..];
            return match inner.strip_suffix(quote) {
                Some(value) if !inner.is_empty() => Ok(Expectation::Equals(value.to_string())),
                _ => Err(error(0, format!("the string is not closed with {quote}"))),
            };
        }
        if let Some(rest) = strip_word(trimmed, "between") {
            let rest_at = trimmed.len() - rest.len();
            let lower = rest.to_ascii_lowercase();
            let Some(and) = lower.find(" and ") else {
                return Err(error(rest_at, "`between` needs `A and B`, e.g. `between 10 and 20`".into()));
            };
            let (low, high) = (&rest[..and], &rest[and + 5..]);
            let low_number =
                Number::parse(low).ok_or_else(|| error(rest_at, format!("`{}` is not a number", low.trim())))?;
            let high_number = Number::parse(high)
                .ok_or_else(|| error(rest_at + and + 5, format!("`{}` is not a number", high.trim())))?;
            if low_number.cmp(&high_number) == Ordering::Greater {
                return Err(error(
                    rest_at,
                    format!("between {} and {}: the lower bound is above the upper", low.trim(), high.trim()),
                ));
            }
            return Ok(Expectation::Between(low_number, high_number));
        }
        let (op, rest) = [("!=", Op::Ne), (">=", Op::Ge), ("<=", Op::Le), ("=", Op::Eq), (">", Op::Gt), ("<", Op::Lt)]
            .into_iter()
            .find_map(|(symbol, op)| trimmed.strip_prefix(symbol).map(|rest| (op, rest)))
            .ok_or_else(|| error(0, format!("`{trimmed}`: {FORMS}")))?;
        let at = trimmed.len() - rest.len() + (rest.len() - rest.trim_start().len());
        match Number::parse(rest) {
            Some(number) => Ok(Expectation::Compare(op, number)),
            None if rest.trim().is_empty() => Err(error(at, format!("`{}` needs a number after it", op.symbol()))),
            None => Err(error(
                at,
                format!("`{}` is not a number (to compare text, quote it: \"'{}'\")", rest.trim(), rest.trim()),
            )),
        }
    }

    /// Whether `answer` (the first column of the first row, `None` for no row or NULL) meets it;
    /// `Err` says what came back instead.
    pub fn check(&self, answer: Option<&str>) -> Result<(), String> {
        let Some(answer) = answer else {
            return Err(format!("expected {self}, got no value (no row, or NULL)"));
        };
        let met = match self {
            Expectation::Equals(expected) => answer == expected,
            Expectation::Compare(op, expected) => match Number::parse(answer) {
                Some(got) => op.holds(got.cmp(expected)),
                None => return Err(format!("expected {self}, got `{answer}`, which is not a number")),
            },
            Expectation::Between(low, high) => match Number::parse(answer) {
                Some(got) => got.cmp(low) != Ordering::Less && got.cmp(high) != Ordering::Greater,
                None => return Err(format!("expected {self}, got `{answer}`, which is not a number")),
            },
        };
        if met { Ok(()) } else { Err(format!("expected {self}, got {answer}")) }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Compare(op, number) => write!(f, "{} {}", op.symbol(), number.text),
            Expectation::Between(low, high) => write!(f, "between {} and {}", low.text, high.text),
            Expectation::Equals(text) => write!(f, "'{text}'"),
        }
    }
}

fn strip_word<'t>(text: &'t str, word: &str) -> Option<&'t str> {
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace)).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(expect: &str, answer: &str) -> bool {
        Expectation::parse(expect).unwrap().check(Some(answer)).is_ok()
    }

    #[test]
    fn every_operator_compares_numbers() {
        for (expect, answer, want) in [
            ("= 5", "5", true),
            ("= 5", "6", false),
            ("!= 0", "0", false),
            ("!= 0", "3", true),
            (">= 1000", "1000", true),
            (">= 1000", "999", false),
            ("<= 10", "10", true),
            ("<= 10", "11", false),
            ("> 0", "0", false),
            ("> 0", "1", true),
            ("< 1.5", "1.49", true),
            ("< 1.5", "1.5", false),
            ("between 10 and 20", "10", true),
            ("between 10 and 20", "20", true),
            ("Between 10 AND 20", "21", false),
            ("=170141183460469231731687303715884105727", "170141183460469231731687303715884105727", true),
            ("'ok'", "ok", true),
            ("\"ok\"", "OK", false),
        ] {
            assert_eq!(holds(expect, answer), want, "{expect} on {answer}");
        }
    }

    #[test]
    fn a_failed_expectation_says_what_came_back() {
        let expect = Expectation::parse(">= 1000").unwrap();
        assert_eq!(expect.check(Some("12")).unwrap_err(), "expected >= 1000, got 12");
        assert_eq!(expect.check(None).unwrap_err(), "expected >= 1000, got no value (no row, or NULL)");
        assert_eq!(expect.check(Some("abc")).unwrap_err(), "expected >= 1000, got `abc`, which is not a number");
    }

    #[test]
    fn bad_expectations_point_at_the_problem() {
        let error = Expectation::parse(">= lots").unwrap_err();
        assert_eq!(error.offset, 3);
        assert!(error.message.contains("`lots` is not a number"), "{}", error.message);
        let error = Expectation::parse("  about 5").unwrap_err();
        assert_eq!(error.offset, 2);
        assert!(error.message.contains("expected `= N`"), "{}", error.message);
        assert!(Expectation::parse("between 5").unwrap_err().message.contains("A and B"));
        assert!(Expectation::parse("between 9 and 2").unwrap_err().message.contains("lower bound"));
        assert!(Expectation::parse("'open").unwrap_err().message.contains("not closed"));
        assert!(Expectation::parse(">=").unwrap_err().message.contains("needs a number"));
        assert!(Expectation::parse("").unwrap_err().message.contains("empty"));
        assert!(Expectation::parse("= inf").is_err());
    }
}
