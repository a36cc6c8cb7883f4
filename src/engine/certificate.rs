//! Reading an X.509 certificate (with `x509-parser`): whom it is for (the
//! subject's common name and the subject alternative names), who issued it,
//! and when it expires. `http-check` and `dns-check` read certificates this
//! one way. Nothing here trusts the input: a certificate that cannot be
//! read is an error, never a panic. Whether it is *trusted* is rustls'
//! business (webpki); this only says what it claims.

use std::net::IpAddr;

use jiff::Timestamp;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject as a distinguished name (`CN=dr.example.com, O=Acme`).
    pub subject: String,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// Subject alternative names: DNS names, then IP addresses, as written.
    pub alt_names: Vec<String>,
    /// The issuer as a distinguished name.
    pub issuer: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

impl CertificateInfo {
    /// Every name the certificate carries: the common name, then the
    /// alternative names, without repeats.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for name in self.common_name.iter().chain(&self.alt_names) {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The issuer's common name where it has one (`Let's Encrypt R11`), else the whole name.
    pub fn issuer_short(&self) -> String {
        short_name(&self.issuer)
    }
}

/// Why a certificate cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the certificate: {0}")]
pub struct CertificateError(String);

/// Reads a DER X.509 certificate.
pub fn read(der: &[u8]) -> Result<CertificateInfo, CertificateError> {
    let (_, certificate) = X509Certificate::from_der(der).map_err(|e| CertificateError(e.to_string()))?;
    let timestamp = |seconds: i64| {
        Timestamp::from_second(seconds).map_err(|_| CertificateError(format!("a time out of range ({seconds} s)")))
    };
    let validity = certificate.validity();
    let not_before = timestamp(validity.not_before.timestamp())?;
    let not_after = timestamp(validity.not_after.timestamp())?;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    let alternative = certificate
        .subject_alternative_name()
        .map_err(|e| CertificateError(format!("its subject alternative names: {e}")))?;
    for name in alternative.iter().flat_map(|extension| extension.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(name) => dns.push(name.to_string()),
            GeneralName::IPAddress(bytes) => {
                let address = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                    _ => None,
                };
                if let Some(address) = address {
                    ips.push(address.to_string());
                }
            }
            _ => {}
        }
    }
    dns.extend(ips);
    Ok(CertificateInfo {
        subject: name_text(certificate.subject()),
        common_name: common_name(certificate.subject()),
        alt_names: dns,
        issuer: name_text(certificate.issuer()),
        not_before,
        not_after,
    })
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string)
}

fn name_text(name: &X509Name<'_>) -> String {
    let text = name.to_string();
    if text.is_empty() { "(empty name)".to_string() } else { text }
}

/// `CN=R11, O=Let's Encrypt, C=US` → `R11`; a name without a CN as it is.
fn short_name(distinguished: &str) -> String {
    distinguished
        .split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .map_or_else(|| distinguished.to_string(), str::to_string)
}

/// Whole days from `now` until `expiry` (negative once expired; a
/// certificate that expires in 23 hours has 0 days left).
pub fn days_left(expiry: Timestamp, now: Timestamp) -> i64 {
    (expiry.as_second() - now.as_second()).div_euclid(86_400)
}

/// The day a certificate expires, as the operator reads it: `2031-01-02`.
pub fn day(expiry: Timestamp) -> String {
    expiry.strftime("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn certificate(names: &[&str], not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "dr.example.com");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Acme");
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_names_issuer_and_validity() {
        let der = certificate(&["dr.example.com", "*.dr.example.com", "127.0.0.1"], (2024, 2, 29), (2031, 12, 31));
        let info = read(&der).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("dr.example.com"));
        assert_eq!(info.alt_names, ["dr.example.com", "*.dr.example.com", "127.0.0.1"]);
        assert_eq!(info.names(), ["dr.example.com", "*.dr.example.com", "127.0.0.1"], "the CN is not repeated");
        assert!(info.subject.contains("CN=dr.example.com") && info.subject.contains("O=Acme"), "{}", info.subject);
        assert_eq!(info.issuer, info.subject, "self-signed");
        assert_eq!(info.issuer_short(), "dr.example.com");
        assert_eq!(info.not_before, at("2024-02-29T00:00:00Z"));
        assert_eq!(info.not_after, at("2031-12-31T00:00:00Z"));
        assert_eq!(day(info.not_after), "2031-12-31");
    }

    #[test]
    fn reads_both_time_encodings() {
        // rcgen writes UTCTime up to 2049 and GeneralizedTime from 2050 on, as RFC 5280 asks.
        let info = read(&certificate(&["a.example"], (1999, 1, 2), (2051, 6, 7))).unwrap();
        assert_eq!(info.not_before, at("1999-01-02T00:00:00Z"), "UTCTime 99 is 1999");
        assert_eq!(info.not_after, at("2051-06-07T00:00:00Z"), "GeneralizedTime past 2049");
    }

    #[test]
    fn a_certificate_without_alternative_names_has_its_common_name() {
        let info = read(&certificate(&[], (2020, 1, 1), (2030, 1, 1))).unwrap();
        assert!(info.alt_names.is_empty());
        assert_eq!(info.names(), ["dr.example.com"]);
    }

    #[test]
    fn short_names_prefer_the_common_name() {
        assert_eq!(short_name("CN=R11, O=Let's Encrypt, C=US"), "R11");
        assert_eq!(short_name("O=Acme, C=US"), "O=Acme, C=US");
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        let der = certificate(&["dr.example.com"], (2020, 1, 1), (2030, 1, 1));
        for length in 0..der.len() {
            assert!(read(&der[..length]).is_err(), "truncated to {length} bytes");
        }
        assert!(read(&[]).unwrap_err().to_string().starts_with("cannot read the certificate: "));
        assert!(read(&[0x30, 0x80, 0x00, 0x00]).is_err());
        assert!(read(&[0x04, 0x01, 0x00]).is_err());
        // Every single-byte corruption either still parses or is refused cleanly.
        for index in 0..der.len() {
            let mut broken = der.clone();
            broken[index] ^= 0xff;
            let _ = read(&broken);
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
