//! Training's answer to a `dns-check`: no DNS server of the DR site is
//! asked from the sandbox, so the answer is the one the step expects (a
//! CNAME to `cname`, or the `resolves_to` addresses, or a documentation
//! address), and with `tls` a certificate for the name with time to spare.
//! The log says it is the sandbox, and the evidence names the sandbox
//! resolver and CA, so no report can pass it off as a real answer.

use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;

use super::{DnsCheckStep, DnsOutcome, Expect};
use crate::drill::evidence::{DnsAddress, DnsCertificate, DnsCname, DnsResult};
use crate::engine::certificate;
use crate::engine::{EngineEvent, OutputStream};

/// What the sandbox resolver is called in the log and the evidence.
pub const SANDBOX_RESOLVER: &str = "sandbox resolver (training)";
/// The issuer of the sandbox's certificates.
pub const SANDBOX_CA: &str = "CN=drillbook training sandbox CA";
/// The address a name resolves to in the sandbox when the step names none (TEST-NET-3).
const SANDBOX_ADDRESS: &str = "203.0.113.10";

pub async fn run(step: &DnsCheckStep, step_id: &str, events: &mpsc::Sender<EngineEvent>) -> DnsOutcome {
    let result = answer(step, Timestamp::now());
    let mut lines = vec![format!("training: the {SANDBOX_RESOLVER} answers for {} instead of DNS", step.name)];
    for cname in &result.cnames {
        lines.push(format!("  {}. {} IN CNAME {}.", cname.name, cname.ttl, cname.target));
    }
    for address in &result.addresses {
        lines.push(format!("  {} IN A {}", address.ttl, address.address));
    }
    lines.push(format!("✓ {} resolves as expected ({})", step.name, step.expected()));
    if let Some(certificate) = &result.certificate {
        lines.push(format!(
            "training: a sandbox certificate for {}, expires {} ({} days left)",
            step.name,
            certificate.not_after.as_deref().unwrap_or("-"),
            certificate.days_left.unwrap_or_default()
        ));
    }
    let _ = events
        .send(EngineEvent::Output { step_id: step_id.into(), stream: OutputStream::Stdout, lines: lines.into() })
        .await;
    DnsOutcome { result, failure: None }
}

/// The answer the step expects, as the sandbox gives it.
pub fn answer(step: &DnsCheckStep, now: Timestamp) -> DnsResult {
    let cnames = match &step.expect {
        Expect::Cname(target) => vec![DnsCname { name: step.name.clone(), target: target.clone(), ttl: 300 }],
        Expect::Resolves | Expect::Addresses(_) => Vec::new(),
    };
    let addresses = match &step.expect {
        Expect::Addresses(list) => list.iter().map(|ip| DnsAddress { address: ip.to_string(), ttl: 60 }).collect(),
        Expect::Resolves | Expect::Cname(_) => vec![DnsAddress { address: SANDBOX_ADDRESS.into(), ttl: 60 }],
    };
    let certificate = step.tls.map(|tls| {
        let days = tls.min_days.max(30) + 60;
        let not_after = now + SignedDuration::from_hours(days * 24);
        Box::new(DnsCertificate {
            address: format!("{}:{} (sandbox)", addresses.first().map_or(SANDBOX_ADDRESS, |a| &a.address), tls.port),
            subject: format!("CN={}", step.name),
            names: vec![step.name.clone()],
            issuer: SANDBOX_CA.into(),
            not_after: Some(not_after.to_string()),
            days_left: Some(certificate::days_left(not_after, now)),
            min_days: tls.min_days,
            trusted: true,
            problem: None,
        })
    });
    DnsResult {
        name: step.name.clone(),
        server: SANDBOX_RESOLVER.into(),
        response: "NOERROR".into(),
        cnames,
        addresses,
        expected: step.expected(),
        elapsed_ms: 1,
        certificate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::TlsExpect;

    fn step(expect: Expect) -> DnsCheckStep {
        DnsCheckStep {
            name: "dr.acme.com".into(),
            expect,
            tls: Some(TlsExpect { port: 443, min_days: 45 }),
            ca_file: None,
            nameserver: None,
            timeout: std::time::Duration::from_secs(10),
        }
    }

    #[test]
    fn the_sandbox_answers_what_the_step_expects() {
        let now = Timestamp::now();
        let cname = answer(&step(Expect::Cname("lb.acme.net".into())), now);
        assert_eq!(cname.cnames[0].target, "lb.acme.net");
        assert_eq!(cname.server, SANDBOX_RESOLVER);
        let certificate = cname.certificate.unwrap();
        assert!(certificate.days_left.unwrap() >= 45 + 60 - 1, "{certificate:?}");
        assert_eq!(certificate.issuer, SANDBOX_CA);
        let addresses = answer(&step(Expect::Addresses(vec!["203.0.113.7".parse().unwrap()])), now);
        assert_eq!(addresses.addresses[0].address, "203.0.113.7");
        assert!(addresses.cnames.is_empty());
        // And the real judge agrees.
        let judged = super::super::Answer {
            server: "127.0.0.1:53".parse().unwrap(),
            response: cname.response.clone(),
            cnames: cname.cnames.clone(),
            addresses: cname.addresses.iter().map(|a| (a.address.parse().unwrap(), a.ttl)).collect(),
            problem: None,
            elapsed: std::time::Duration::ZERO,
        };
        assert_eq!(super::super::judge(&step(Expect::Cname("lb.acme.net".into())), &judged), None);
    }
}
