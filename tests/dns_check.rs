//! `dns-check` against a DNS server this test starts on a loopback UDP
//! port (and, for the certificate, a rustls server with rcgen
//! certificates): the right CNAME, a CNAME to another target, NXDOMAIN, a
//! server that never answers, `resolves_to`; then TLS: a valid
//! certificate, one for another name, one expiring within `min_days`, an
//! expired one, an untrusted issuer. Drills through the binary check the
//! journal's typed evidence and the reports; `drillbook check` the keys.

use crate::support;

use crate::dns as dns_server;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use dns_server::{DnsServer, Rec};
use drillbook::drill::evidence::{DnsResult, Evidence};
use drillbook::engine::EngineEvent;
use drillbook::engine::dns::{self, DnsCheckStep, DnsOutcome, Expect};
use drillbook::runbook::TlsExpect;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::server::{Serving, serve_on};
use support::{Home, stderr_of, stdout_of};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const NAME: &str = "dr.acme.test";
const LB: &str = "lb.acme-hosting.test";
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// `dr.acme.test` CNAME `target` → 127.0.0.1; `old-lb.acme-hosting.test` exists too.
fn zone(target: &'static str) -> DnsServer {
    DnsServer::start(&[
        (NAME, Rec::Cname(target)),
        (LB, Rec::A(LOOPBACK)),
        ("old-lb.acme-hosting.test", Rec::A(Ipv4Addr::new(127, 0, 0, 2))),
        ("plain.acme.test", Rec::A(LOOPBACK)),
    ])
}

fn step(server: &DnsServer, expect: Expect) -> DnsCheckStep {
    DnsCheckStep {
        name: NAME.into(),
        expect,
        tls: None,
        ca_file: None,
        nameserver: Some(server.address),
        timeout: Duration::from_secs(5),
    }
}

struct Checked {
    outcome: DnsOutcome,
    lines: Vec<String>,
}

impl Checked {
    fn text(&self) -> String {
        self.lines.join("\n")
    }

    fn failure(&self) -> &str {
        self.outcome.failure.as_deref().unwrap_or_else(|| panic!("expected a failure:\n{}", self.text()))
    }

    fn passed(&self) -> &DnsResult {
        assert_eq!(self.outcome.failure, None, "{}", self.text());
        &self.outcome.result
    }
}

async fn check(step: &DnsCheckStep) -> Checked {
    let (sender, mut events) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(event) = events.recv().await {
            if let EngineEvent::Output { lines: batch, .. } = event {
                lines.extend(batch);
            }
        }
        lines
    });
    let outcome = dns::run(step, "check-dns", &sender, &CancellationToken::new()).await;
    drop(sender);
    let lines = collector.await.unwrap();
    let outcome = outcome.unwrap_or_else(|e| panic!("the check ended without an outcome: {e}\n{}", lines.join("\n")));
    Checked { outcome, lines }
}

#[tokio::test]
async fn the_right_cname_passes_and_the_whole_answer_is_kept() {
    let server = zone(LB);
    let checked = check(&step(&server, Expect::Cname(LB.into()))).await;
    let result = checked.passed();
    assert_eq!(result.server, server.nameserver());
    assert_eq!(result.response, "NOERROR");
    assert_eq!(result.cnames.len(), 1, "{result:?}");
    assert_eq!((result.cnames[0].name.as_str(), result.cnames[0].target.as_str()), (NAME, LB));
    assert_eq!(result.cnames[0].ttl, dns_server::CNAME_TTL);
    assert_eq!(result.addresses.len(), 1);
    assert_eq!((result.addresses[0].address.as_str(), result.addresses[0].ttl), ("127.0.0.1", dns_server::A_TTL));
    assert_eq!(result.expected, format!("CNAME {LB}"));
    let text = checked.text();
    assert!(text.contains(&format!("answer from {} in ", server.nameserver())), "{text}");
    assert!(text.contains(&format!("{NAME}. 300 IN CNAME {LB}.")), "{text}");
    assert!(text.contains(&format!("{LB}. 60 IN A 127.0.0.1")), "{text}");
}

#[tokio::test]
async fn a_cname_to_another_target_fails_naming_both() {
    let server = zone("old-lb.acme-hosting.test");
    let checked = check(&step(&server, Expect::Cname(LB.into()))).await;
    assert_eq!(checked.failure(), format!("{NAME} is a CNAME to old-lb.acme-hosting.test, not to {LB}"));
    // The evidence keeps what was answered.
    assert_eq!(checked.outcome.result.cnames[0].target, "old-lb.acme-hosting.test");
    assert_eq!(checked.outcome.result.addresses[0].address, "127.0.0.2");
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_nxdomain() {
    let server = zone(LB);
    let mut missing = step(&server, Expect::Cname(LB.into()));
    missing.name = "dr-typo.acme.test".into();
    let checked = check(&missing).await;
    assert_eq!(checked.failure(), format!("dr-typo.acme.test does not exist (NXDOMAIN from {})", server.nameserver()));
    assert_eq!(checked.outcome.result.response, "NXDOMAIN");
    assert!(checked.outcome.result.addresses.is_empty());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_in_one_line() {
    let server = DnsServer::silent();
    let mut asked = step(&server, Expect::Cname(LB.into()));
    asked.timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let checked = check(&asked).await;
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(checked.failure(), format!("no answer from {} for {NAME} within 1s", server.nameserver()));
    assert_eq!(checked.outcome.result.response, "no answer");
    assert!(server.queries() >= 1, "the server was asked");
}

#[tokio::test]
async fn resolves_to_matches_or_names_both_sides() {
    let server = zone(LB);
    let mut plain = step(&server, Expect::Addresses(vec!["127.0.0.1".parse().unwrap()]));
    plain.name = "plain.acme.test".into();
    let result = check(&plain).await.passed().clone();
    assert!(result.cnames.is_empty());
    assert_eq!(result.addresses[0].address, "127.0.0.1");

    plain.expect = Expect::Addresses(vec!["203.0.113.7".parse().unwrap()]);
    let checked = check(&plain).await;
    assert_eq!(checked.failure(), "plain.acme.test resolves to 127.0.0.1, not 203.0.113.7");

    // A CNAME when addresses were expected: the target's addresses count.
    let mut through = step(&server, Expect::Addresses(vec!["127.0.0.1".parse().unwrap()]));
    through.expect = Expect::Addresses(vec!["127.0.0.1".parse().unwrap()]);
    check(&through).await.passed();
}

// ---- the certificate ----

/// A private CA and a certificate it signed for `names`, valid until `not_after`.
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

fn date(days_from_now: i64) -> (i32, u8, u8) {
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let day = today.saturating_add(jiff::ToSpan::days(days_from_now));
    (i32::from(day.year()), day.month() as u8, day.day() as u8)
}

fn pki(names: &[&str], not_after: (i32, u8, u8), not_before: (i32, u8, u8)) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "drillbook test CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    Pki { ca_pem: ca.pem(), chain: vec![leaf.der().clone()], key: key.serialize_der() }
}

/// A TLS server on 127.0.0.1 that completes handshakes and closes.
struct TlsServer {
    port: u16,
    _serving: Serving,
}

fn tls_server(pki: &Pki) -> TlsServer {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone()));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), key)
            .unwrap(),
    );
    let serving = serve_on(TcpListener::bind("127.0.0.1:0").unwrap(), move |mut tcp, _| {
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut tls = rustls::ServerConnection::new(config.clone()).unwrap();
        while tls.is_handshaking() {
            if tls.complete_io(&mut tcp).is_err() {
                return;
            }
        }
        tls.send_close_notify();
        let _ = tls.complete_io(&mut tcp);
        let _ = tcp.flush();
    });
    TlsServer { port: serving.port(), _serving: serving }
}

struct TlsCase {
    _dns: DnsServer,
    _tls: TlsServer,
    _dir: tempfile::TempDir,
    step: DnsCheckStep,
}

/// The zone points the name at 127.0.0.1, where a TLS server presents `pki`'s certificate.
fn tls_case(pki: &Pki, min_days: i64, trust_ca: bool) -> TlsCase {
    let dns = zone(LB);
    let tls = tls_server(pki);
    let dir = tempfile::tempdir().unwrap();
    let mut step = step(&dns, Expect::Cname(LB.into()));
    step.tls = Some(TlsExpect { port: tls.port, min_days });
    if trust_ca {
        let ca_file = dir.path().join("private-ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).unwrap();
        step.ca_file = Some(ca_file);
    }
    TlsCase { _dns: dns, _tls: tls, _dir: dir, step }
}

#[tokio::test]
async fn a_valid_certificate_for_the_name_passes() {
    let pki = pki(&[NAME, "www.acme.test"], date(400), date(-1));
    let case = tls_case(&pki, 21, true);
    let checked = check(&case.step).await;
    let certificate = checked.passed().certificate.clone().expect("the certificate is evidence");
    assert!(certificate.trusted);
    assert_eq!(certificate.address, format!("127.0.0.1:{}", case.step.tls.unwrap().port));
    assert_eq!(certificate.names, [NAME, "www.acme.test"]);
    assert_eq!(certificate.issuer, "CN=drillbook test CA");
    assert!(certificate.days_left.is_some_and(|d| (398..=400).contains(&d)), "{certificate:?}");
    assert_eq!(certificate.min_days, 21);
    assert!(checked.text().contains("the certificate covers dr.acme.test, is trusted and has 21+ days left"));
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_naming_its_names() {
    let pki = pki(&["www.other.test", "other.test"], date(400), date(-1));
    let case = tls_case(&pki, 21, true);
    let checked = check(&case.step).await;
    let port = case.step.tls.unwrap().port;
    assert_eq!(
        checked.failure(),
        format!("the certificate at 127.0.0.1:{port} is for www.other.test, other.test, not {NAME}")
    );
    let certificate = checked.outcome.result.certificate.as_ref().unwrap();
    assert!(!certificate.trusted);
    assert_eq!(certificate.names, ["www.other.test", "other.test"]);
}

#[tokio::test]
async fn a_certificate_expiring_within_min_days_fails_naming_the_date() {
    let expiry = date(5);
    let pki = pki(&[NAME], expiry, date(-1));
    let case = tls_case(&pki, 21, true);
    let checked = check(&case.step).await;
    let day = format!("{:04}-{:02}-{:02}", expiry.0, expiry.1, expiry.2);
    let failure = checked.failure();
    assert!(failure.starts_with(&format!("the certificate of {NAME} expires on {day} (")), "{failure}");
    assert!(failure.ends_with("left): fewer than min_days = 21"), "{failure}");
    let certificate = checked.outcome.result.certificate.as_ref().unwrap();
    assert!(certificate.trusted, "trusted, but too close to expiry");
    assert!(certificate.days_left.is_some_and(|d| (4..=5).contains(&d)), "{certificate:?}");
}

#[tokio::test]
async fn an_expired_certificate_fails_naming_the_date() {
    let expiry = date(-3);
    let pki = pki(&[NAME], expiry, date(-90));
    let case = tls_case(&pki, 21, true);
    let checked = check(&case.step).await;
    let day = format!("{:04}-{:02}-{:02}", expiry.0, expiry.1, expiry.2);
    assert_eq!(checked.failure(), format!("the certificate of {NAME} expired on {day}"));
}

#[tokio::test]
async fn an_untrusted_issuer_fails_naming_it() {
    let pki = pki(&[NAME], date(400), date(-1));
    let case = tls_case(&pki, 21, false);
    let checked = check(&case.step).await;
    assert_eq!(
        checked.failure(),
        format!(
            "the certificate of {NAME} (issued by drillbook test CA) is not signed by a CA this machine trusts (a private CA needs `ca_file`)"
        )
    );
}

// ---- through the binary ----

fn runbook(server: &DnsServer, cname: &str, tls: Option<(u16, &std::path::Path)>) -> String {
    let tls = tls
        .map(|(port, ca)| format!("tls = {{ port = {port}, min_days = 21 }}\nca_file = \"{}\"\n", ca.display()))
        .unwrap_or_default();
    format!(
        r#"[runbook]
id = "dr-dns"
title = "DR DNS check"

[vars.project]
default = "acme"

[[step]]
id = "check-dns"
kind = "dns-check"
name = "dr.{{{{ project }}}}.test"
cname = "{cname}"
nameserver = "{}"
timeout = "3s"
{tls}"#,
        server.nameserver()
    )
}

fn evidence_of(journal: &str) -> Vec<Evidence> {
    journal
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["event"].clone())
        .filter(|event| event["type"] == "chosen" && event["step"] == "check-dns")
        .map(|event| serde_json::from_value::<Evidence>(event["choice"].clone()).unwrap())
        .collect()
}

#[test]
fn a_drill_checks_dns_and_the_certificate_and_reports_the_answer() {
    let pki = pki(&[NAME], date(400), date(-1));
    let dns = zone(LB);
    let tls = tls_server(&pki);
    let home = Home::new();
    let ca = home.runbook("private-ca.pem", &pki.ca_pem);
    let runbook = home.runbook("dr.toml", &runbook(&dns, LB, Some((tls.port, &ca))));
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains(&format!("{NAME}. 300 IN CNAME {LB}.")), "{stdout}");

    let journal = home.journal();
    assert!(journal.contains(&format!("\"command\":\"{NAME}: CNAME {LB}; TLS on port {}, 21+ days left", tls.port)));
    let evidence = evidence_of(&journal);
    let [Evidence::Dns(result)] = evidence.as_slice() else { panic!("one dns evidence: {journal}") };
    assert_eq!(result.server, dns.nameserver());
    assert_eq!(result.cnames[0].target, LB);
    assert_eq!(result.addresses[0].address, "127.0.0.1");
    let certificate = result.certificate.as_ref().unwrap();
    assert!(certificate.trusted && certificate.problem.is_none(), "{certificate:?}");

    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    let markdown = stdout_of(&home.cmd().args(["report", &id]).output().unwrap());
    assert!(markdown.contains(&format!("- {NAME} asked of {}: NOERROR in ", dns.nameserver())), "{markdown}");
    assert!(markdown.contains(&format!("- {NAME} CNAME {LB} (TTL 300 s)")), "{markdown}");
    assert!(markdown.contains("- addresses: 127.0.0.1 (TTL 60 s)"), "{markdown}");
    assert!(markdown.contains("- issued by CN=drillbook test CA"), "{markdown}");
    assert!(markdown.contains("- certificate trusted and valid for the name"), "{markdown}");
    let json = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["steps"][0]["choice"]["cnames"][0]["target"], LB);
    assert_eq!(json["steps"][0]["choice"]["certificate"]["trusted"], true);
    let html = stdout_of(&home.cmd().args(["report", &id, "--format", "html"]).output().unwrap());
    assert!(html.contains("What DNS answered"), "the HTML report has the evidence");
    home.cmd().args(["verify", &id]).assert().success();
}

#[test]
fn a_drill_whose_name_points_elsewhere_fails_with_one_line_and_keeps_the_answer() {
    let dns = zone("old-lb.acme-hosting.test");
    let home = Home::new();
    let runbook = home.runbook("dr.toml", &runbook(&dns, LB, None));
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{}", stderr_of(&output));
    let reason = format!("{NAME} is a CNAME to old-lb.acme-hosting.test, not to {LB}");
    assert!(stdout.contains(&format!("✗ failed: {reason}")), "{stdout}");
    let journal = home.journal();
    let evidence = evidence_of(&journal);
    let [Evidence::Dns(result)] = evidence.as_slice() else {
        panic!("the answer is journaled though the step failed: {journal}")
    };
    assert_eq!(result.cnames[0].target, "old-lb.acme-hosting.test");
    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    let markdown = stdout_of(&home.cmd().args(["report", &id]).output().unwrap());
    assert!(markdown.contains(&reason), "{markdown}");
    assert!(markdown.contains(&format!("- {NAME} CNAME old-lb.acme-hosting.test (TTL 300 s)")), "{markdown}");
}

#[test]
fn training_answers_from_the_sandbox() {
    let home = Home::new();
    // A nameserver nobody listens on: training must not ask it.
    let text = r#"[runbook]
id = "dr-dns"
title = "DR DNS check"

[[step]]
id = "check-dns"
kind = "dns-check"
name = "dr.acme.test"
cname = "lb.acme-hosting.test"
tls = { port = 443, min_days = 21 }
nameserver = "127.0.0.1:9"
"#;
    let runbook = home.runbook("dr.toml", text);
    let output = home.cmd().args(["run", "--plain", "--yes", "--training"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("training: the sandbox resolver (training) answers for dr.acme.test"), "{stdout}");
    let evidence = evidence_of(&home.journal());
    let [Evidence::Dns(result)] = evidence.as_slice() else { panic!("{evidence:?}") };
    assert_eq!(result.server, "sandbox resolver (training)");
    assert!(result.certificate.as_ref().is_some_and(|c| c.trusted && c.days_left.unwrap() > 21));
}

#[test]
fn check_points_at_every_bad_key() {
    let home = Home::new();
    let text = r#"[runbook]
id = "dr-dns"
title = "DR DNS check"

[[step]]
id = "both"
kind = "dns-check"
name = "dr.acme.test"
cname = "lb.acme.test"
resolves_to = ["203.0.113.7"]

[[step]]
id = "bad-values"
kind = "dns-check"
name = "dr..acme.test"
resolves_to = ["203.0.113.7", "not-an-ip"]
nameserver = "ns1.acme.test"
tls = { port = 70000 }
"#;
    let runbook = home.runbook("dns.toml", text);
    let output = home.cmd().arg("check").arg(&runbook).output().unwrap();
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    for expected in [
        ":10:15: error: give either `cname` or `resolves_to`, not both",
        ":15:8: error: `name`: `dr..acme.test` has an empty label",
        ":16:31: error: `resolves_to`: `not-an-ip` is not an IP address",
        ":17:14: error: `nameserver`: `ns1.acme.test` is not a DNS server address",
        ":18:16: error: `tls.port` = 70000 is out of range 1..=65535",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }

    for (key, expected) in [
        (
            "tls = { port = 443, min_days = \"21\" }",
            ":9:32: error: invalid type: string \"21\", expected a whole number (without quotes)",
        ),
        ("tls = { port = 443, days = 21 }", ":9:21: error: unknown key `days`"),
        ("ttl = 30", ":9:1: error: unknown key `ttl`"),
    ] {
        let text = format!(
            "[runbook]\nid = \"x\"\ntitle = \"x\"\n\n[[step]]\nid = \"d\"\nkind = \"dns-check\"\nname = \"dr.acme.test\"\n{key}\n"
        );
        let runbook = home.runbook("one.toml", &text);
        let output = home.cmd().arg("check").arg(&runbook).output().unwrap();
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{key}");
        assert!(stderr.contains(expected), "{key}: {expected}\n{stderr}");
    }
}

#[test]
fn the_schema_has_the_kind_and_its_keys() {
    let output = Home::new().cmd().arg("schema").output().unwrap();
    let schema = stdout_of(&output);
    for word in ["\"dns-check\"", "\"resolves_to\"", "\"nameserver\"", "\"min_days\"", "\"cname\""] {
        assert!(schema.contains(word), "{word}");
    }
}
