//! Just enough DER to read when a certificate expires: the walk from the
//! outer `Certificate` to `tbsCertificate.validity` (RFC 5280 §4.1), and its
//! `UTCTime`/`GeneralizedTime` values. Nothing here trusts the input: every
//! length is checked against what is left, and anything unexpected is an
//! error, never a panic.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version` of a v2/v3 certificate.
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Why DER input cannot be read as far as the validity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    #[error("unexpected end of data")]
    End,
    #[error("unexpected end of data in a length")]
    EndInLength,
    #[error("tag 0x{0:02x} uses the high-tag-number form, which no certificate field needs")]
    HighTag(u8),
    #[error("indefinite length: not DER")]
    IndefiniteLength,
    /// A length written in more bytes than a certificate can need.
    #[error("a length of {0} bytes is too large for a certificate")]
    LengthTooLarge(usize),
    #[error("an element of {length} bytes where only {left} are left")]
    Overrun { length: usize, left: usize },
    /// `what` was expected, with `tag`.
    #[error("expected {what} (tag 0x{tag:02x}), found tag 0x{found:02x}")]
    Unexpected { what: &'static str, tag: u8, found: u8 },
    #[error("expected a time (tag 0x17 or 0x18), found tag 0x{0:02x}")]
    NotTime(u8),
    /// The time's text, as far as it is UTF-8.
    #[error("`{0}` is not a valid time")]
    InvalidTime(String),
    #[error("`{0}` is not a UTC time ending in Z")]
    NotUtc(String),
}

/// Why a certificate's expiry cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the certificate's validity: {0}")]
pub struct ValidityError(#[from] DerError);

/// One DER element: its tag and its content bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and what follows.
fn element(input: &[u8]) -> Result<(Element<'_>, &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::End)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTag(tag));
    }
    let (&first, rest) = rest.split_first().ok_or(DerError::EndInLength)?;
    let (length, rest) = match first {
        0x00..=0x7f => (usize::from(first), rest),
        0x80 => return Err(DerError::IndefiniteLength),
        _ => {
            let count = usize::from(first & 0x7f);
            if count > 4 {
                return Err(DerError::LengthTooLarge(count));
            }
            let bytes = rest.get(..count).ok_or(DerError::EndInLength)?;
            let length = bytes.iter().fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
            (length, &rest[count..])
        }
    };
    if length > rest.len() {
        return Err(DerError::Overrun { length, left: rest.len() });
    }
    let (content, rest) = rest.split_at(length);
    Ok((Element { tag, content }, rest))
}

/// Reads an element that must have `tag`.
fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(Element<'a>, &'a [u8]), DerError> {
    let (found, rest) = element(input)?;
    if found.tag != tag {
        return Err(DerError::Unexpected { what, tag, found: found.tag });
    }
    Ok((found, rest))
}

/// Two ASCII digits as a number.
fn two_digits(text: &[u8], at: usize) -> Result<i32, DerError> {
    match text.get(at..at + 2) {
        Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => Ok(i32::from(a - b'0') * 10 + i32::from(b - b'0')),
        _ => Err(DerError::InvalidTime(String::from_utf8_lossy(text).into_owned())),
    }
}

/// A `UTCTime` (`YYMMDDHHMMSSZ`, years 1950–2049) or `GeneralizedTime`
/// (`YYYYMMDDHHMMSS[.fff]Z`), as RFC 5280 §4.1.2.5 allows them.
fn time(found: Element<'_>) -> Result<Timestamp, DerError> {
    let text = found.content;
    let invalid = || DerError::InvalidTime(String::from_utf8_lossy(text).into_owned());
    let (year, rest) = match found.tag {
        UTC_TIME => {
            let yy = two_digits(text, 0)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME => (two_digits(text, 0)? * 100 + two_digits(text, 2)?, &text[4..]),
        other => return Err(DerError::NotTime(other)),
    };
    let [month, day, hour, minute, second] = [0, 2, 4, 6, 8].map(|at| two_digits(rest, at));
    let tail = rest.get(10..).ok_or_else(invalid)?;
    // Fractions of a second (GeneralizedTime only) do not matter for an expiry date.
    let tail = match tail.strip_prefix(b".") {
        Some(fraction) if found.tag == GENERALIZED_TIME => skip_digits(fraction),
        Some(_) => return Err(invalid()),
        None => tail,
    };
    if tail != b"Z" {
        return Err(DerError::NotUtc(String::from_utf8_lossy(text).into_owned()));
    }
    let datetime = DateTime::new(
        i16::try_from(year).map_err(|_| invalid())?,
        i8::try_from(month?).map_err(|_| invalid())?,
        i8::try_from(day?).map_err(|_| invalid())?,
        i8::try_from(hour?).map_err(|_| invalid())?,
        i8::try_from(minute?).map_err(|_| invalid())?,
        i8::try_from(second?).map_err(|_| invalid())?,
        0,
    )
    .map_err(|_| invalid())?;
    TimeZone::UTC.to_timestamp(datetime).map_err(|_| invalid())
}

fn skip_digits(text: &[u8]) -> &[u8] {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    &text[digits..]
}

/// A certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// Reads `tbsCertificate.validity` from a DER X.509 certificate.
pub fn validity(certificate: &[u8]) -> Result<Validity, ValidityError> {
    let (outer, _) = expect(certificate, SEQUENCE, "a Certificate SEQUENCE")?;
    let (tbs, _) = expect(outer.content, SEQUENCE, "a tbsCertificate SEQUENCE")?;
    let mut fields = tbs.content;
    let (first, rest) = element(fields)?;
    if first.tag == VERSION {
        fields = rest;
    }
    let (_, fields) = expect(fields, INTEGER, "the serialNumber INTEGER")?;
    let (_, fields) = expect(fields, SEQUENCE, "the signature AlgorithmIdentifier")?;
    let (_, fields) = expect(fields, SEQUENCE, "the issuer Name")?;
    let (validity, _) = expect(fields, SEQUENCE, "the Validity SEQUENCE")?;
    let (not_before, rest) = element(validity.content)?;
    let (not_after, _) = element(rest)?;
    Ok(Validity { not_before: time(not_before)?, not_after: time(not_after)? })
}

/// Whole days from `now` until `expiry` (negative once expired; a
/// certificate that expires in 23 hours has 0 days left).
pub fn days_left(expiry: Timestamp, now: Timestamp) -> i64 {
    (expiry.as_second() - now.as_second()).div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["dr.example.com".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn reads_the_validity_of_a_real_certificate() {
        // rcgen writes UTCTime up to 2049 and GeneralizedTime from 2050 on, as RFC 5280 asks.
        let der = certificate((2024, 2, 29), (2031, 12, 31));
        let validity = validity(&der).unwrap();
        assert_eq!(validity.not_before, at("2024-02-29T00:00:00Z"));
        assert_eq!(validity.not_after, at("2031-12-31T00:00:00Z"));
        let late = validity_of(certificate((1999, 1, 2), (2051, 6, 7)));
        assert_eq!(late.not_before, at("1999-01-02T00:00:00Z"), "UTCTime 99 is 1999");
        assert_eq!(late.not_after, at("2051-06-07T00:00:00Z"), "GeneralizedTime past 2049");
    }

    fn validity_of(der: Vec<u8>) -> Validity {
        validity(&der).unwrap()
    }

    #[test]
    fn walks_long_form_lengths_and_skips_the_version() {
        let der = certificate((2020, 1, 1), (2030, 1, 1));
        // A certificate is longer than 127 bytes: its outer length is long-form.
        assert_eq!(der[0], SEQUENCE);
        assert!(der[1] & 0x80 != 0, "{:02x}", der[1]);
        // ... and v3, so the walk skips `[0] version`.
        let (outer, _) = element(&der).unwrap();
        let (tbs, _) = element(outer.content).unwrap();
        assert_eq!(element(tbs.content).unwrap().0.tag, VERSION);
    }

    #[test]
    fn times_in_both_encodings() {
        let utc = |text: &str| time(Element { tag: UTC_TIME, content: text.as_bytes() });
        let general = |text: &str| time(Element { tag: GENERALIZED_TIME, content: text.as_bytes() });
        assert_eq!(utc("491231235959Z").unwrap(), at("2049-12-31T23:59:59Z"));
        assert_eq!(utc("500101000000Z").unwrap(), at("1950-01-01T00:00:00Z"));
        assert_eq!(general("20500101120000Z").unwrap(), at("2050-01-01T12:00:00Z"));
        assert_eq!(general("20500101120000.25Z").unwrap(), at("2050-01-01T12:00:00Z"));
        for bad in ["", "4912312359Z", "491231235959", "491231235959+0100", "491331235959Z", "4912312359a9Z"] {
            assert!(utc(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(utc("491231235959.5Z").is_err(), "UTCTime has no fractions");
        assert!(general("20500230000000Z").is_err(), "there is no 30 February");
        assert!(time(Element { tag: 0x04, content: b"20500101120000Z" }).is_err());
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        let der = certificate((2020, 1, 1), (2030, 1, 1));
        for length in 0..der.len() {
            assert!(validity(&der[..length]).is_err(), "truncated to {length} bytes");
        }
        assert!(validity(&[]).is_err());
        assert!(validity(&[0x30, 0x80, 0x00, 0x00]).unwrap_err().to_string().contains("indefinite length"));
        assert!(validity(&[0x30, 0x85, 1, 0, 0, 0, 0]).unwrap_err().to_string().contains("too large"));
        assert!(validity(&[0x1f, 0x01, 0x00]).unwrap_err().to_string().contains("high-tag-number"));
        assert!(validity(&[0x04, 0x01, 0x00]).unwrap_err().to_string().contains("expected a Certificate SEQUENCE"));
        // A SEQUENCE of the wrong things.
        assert!(validity(&[0x30, 0x03, 0x30, 0x01, 0x05]).is_err());
        // Every single-byte corruption either still parses or is refused cleanly.
        for index in 0..der.len().min(400) {
            let mut broken = der.clone();
            broken[index] ^= 0xff;
            let _ = validity(&broken);
        }
    }

    #[test]
    fn days_left_counts_whole_days() {
        let expiry = at("2030-01-10T00:00:00Z");
        assert_eq!(days_left(expiry, at("2030-01-01T00:00:00Z")), 9);
        assert_eq!(days_left(expiry, at("2030-01-09T01:00:00Z")), 0);
        assert_eq!(days_left(expiry, at("2030-01-10T01:00:00Z")), -1);
    }
}
