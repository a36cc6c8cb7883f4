//! The checks of a `dns-check` step: the name, what it must resolve to
//! (`cname` or `resolves_to`, not both), the DNS server to ask, and the
//! certificate check (`tls`, `ca_file`).

use std::time::Duration;

use super::{Validator, template};
use crate::runbook::model::{RawStep, Sp};
use crate::runbook::types::*;

/// How long the answer (and, apart, the TLS handshake) may take when the step gives no `timeout`.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(10);
/// How many more days a certificate must be valid when `tls` gives no `min_days`.
pub const DEFAULT_MIN_DAYS: i64 = 14;

impl Validator<'_> {
    pub(super) fn dns_check(&mut self, raw: &Sp<RawStep>) -> Option<DnsCheckSpec> {
        let Some(name) = raw.name.as_ref() else {
            self.error(
                raw.kind.span(),
                format!("a `dns-check` step needs `name`, the DNS name to resolve (step `{}`)", raw.id.as_str()),
            );
            return None;
        };
        if !name.contains("{{")
            && let Err(message) = check_dns_name(name)
        {
            self.error(name.span(), format!("`name`: {message}"));
        }
        let expect = match (&raw.cname, &raw.resolves_to) {
            (Some(cname), Some(addresses)) => {
                let later = if addresses.span().start > cname.span().start { addresses.span() } else { cname.span() };
                self.error(
                    later,
                    "give either `cname` or `resolves_to`, not both: a name that is a CNAME has the addresses of its target",
                );
                DnsExpect::Cname(template(cname))
            }
            (Some(cname), None) => {
                if !cname.contains("{{")
                    && let Err(message) = check_dns_name(cname)
                {
                    self.error(cname.span(), format!("`cname`: {message}"));
                }
                DnsExpect::Cname(template(cname))
            }
            (None, Some(addresses)) => {
                if addresses.is_empty() {
                    self.error(addresses.span(), "`resolves_to` is empty: list the addresses the name must have");
                }
                for address in addresses.iter() {
                    if !address.contains("{{") && address.trim().parse::<std::net::IpAddr>().is_err() {
                        self.error(
                            address.span(),
                            format!("`resolves_to`: `{}` is not an IP address", address.as_str()),
                        );
                    }
                }
                DnsExpect::Addresses(addresses.iter().map(template).collect())
            }
            (None, None) => DnsExpect::Resolves,
        };
        if let Some(nameserver) = &raw.nameserver
            && !nameserver.contains("{{")
            && let Err(message) = parse_nameserver(nameserver)
        {
            self.error(nameserver.span(), format!("`nameserver`: {message}"));
        }
        let tls = raw.tls.as_ref().map(|tls| {
            let port = tls.port.as_ref().and_then(|p| self.ranged(p, "tls.port", 1, 65_535)).unwrap_or(443) as u16;
            let min_days = tls
                .min_days
                .as_ref()
                .and_then(|d| self.ranged(d, "tls.min_days", 0, 3_650))
                .unwrap_or(DEFAULT_MIN_DAYS);
            TlsExpect { port, min_days }
        });
        if let Some(ca_file) = &raw.ca_file
            && tls.is_none()
        {
            self.error(
                ca_file.span(),
                "`ca_file` is for the certificate check: add `tls = { port = 443, min_days = 14 }`, or remove it",
            );
        }
        Some(DnsCheckSpec {
            name: template(name),
            expect,
            tls,
            ca_file: raw.ca_file.as_ref().map(template),
            nameserver: raw.nameserver.as_ref().map(template),
            timeout: self.duration(&raw.timeout, "timeout").unwrap_or(DEFAULT_DNS_TIMEOUT),
        })
    }
}
