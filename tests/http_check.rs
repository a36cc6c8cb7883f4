//! `http-check` against servers this test starts on loopback: retries
//! until a site comes up, wrong statuses and bodies, refused connections,
//! a site that starts late, cancellation, the overall timeout, redirects,
//! and HTTPS with a private CA (refused by default, trusted with
//! `ca_file`, the certificate's expiry reported). Then a drill through the
//! binary in plain mode, its journal and report.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drillbook::engine::http::{self, HttpCheckStep, HttpError, HttpOutcome};
use drillbook::engine::{EngineEvent, OutputStream};
use drillbook::runbook::parse_http_url;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::server::{Connection, Serving, free_port, serve_on};
use support::wait::poll_until;
use support::{Home, stderr_of, stdout_of, wait_for};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the test server does with the n-th request (0-based).
#[derive(Clone)]
enum Reply {
    Answer {
        status: u16,
        reason: &'static str,
        body: String,
        headers: Vec<(&'static str, String)>,
    },
    /// Reads the request and never answers (until the server stops).
    Hang,
}

fn answer(status: u16, reason: &'static str, body: &str) -> Reply {
    Reply::Answer { status, reason, body: body.to_string(), headers: Vec::new() }
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

/// A small HTTP/1.1 server on 127.0.0.1 (optionally TLS), one thread per
/// connection. Stops when dropped.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    _serving: Serving,
}

impl Server {
    fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
        Server::on(TcpListener::bind("127.0.0.1:0").unwrap(), Arc::new(script), None)
    }

    fn start_tls(config: Arc<rustls::ServerConfig>, script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
        Server::on(TcpListener::bind("127.0.0.1:0").unwrap(), Arc::new(script), Some(config))
    }

    fn on(listener: TcpListener, script: Script, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let serving = serve_on(listener, move |stream, connection| {
            let reply = script(connection.id() as usize);
            serve(stream, reply, &seen, connection, tls.clone());
        });
        Server { port: serving.port(), requests, _serving: serving }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    tcp: TcpStream,
    reply: Reply,
    requests: &Mutex<Vec<String>>,
    connection: &Connection,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    match tls {
        None => exchange(tcp, reply, requests, connection),
        Some(config) => {
            let tls = rustls::ServerConnection::new(config).unwrap();
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            exchange(&mut stream, reply, requests, connection);
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    }
}

fn exchange(stream: impl Read + Write, reply: Reply, requests: &Mutex<Vec<String>>, connection: &Connection) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return, // a client that gave up (e.g. refused our certificate)
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    requests.lock().unwrap().push(head);
    match reply {
        Reply::Answer { status, reason, body, headers } => {
            let mut response = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str("Connection: close\r\n\r\n");
            response.push_str(&body);
            let stream = reader.get_mut();
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.flush();
        }
        Reply::Hang => {
            let _ = poll_until(Duration::from_secs(30), || connection.stopping().then_some(()));
        }
    }
}

fn step(url: &str) -> HttpCheckStep {
    HttpCheckStep {
        url: url.to_string(),
        target: parse_http_url(url).unwrap(),
        method: "GET".into(),
        expect_status: 200,
        contains: None,
        retries: 0,
        interval: Duration::from_millis(100),
        timeout: None,
        request_timeout: Duration::from_secs(10),
        ca_file: None,
    }
}

/// What a check reported, and how it ended.
struct Checked {
    result: Result<HttpOutcome, HttpError>,
    lines: Vec<(OutputStream, String)>,
    progress: Vec<String>,
    took: Duration,
}

impl Checked {
    fn text(&self) -> String {
        self.lines.iter().map(|(_, line)| line.as_str()).collect::<Vec<_>>().join("\n")
    }

    fn error(&self) -> String {
        match &self.result {
            Ok(outcome) => panic!("expected a failure, got {outcome:?}\n{}", self.text()),
            Err(error) => error.to_string(),
        }
    }

    fn outcome(&self) -> &HttpOutcome {
        match &self.result {
            Ok(outcome) => outcome,
            Err(error) => panic!("expected success, got: {error}\n{}", self.text()),
        }
    }
}

async fn check_with(step: &HttpCheckStep, cancel: CancellationToken) -> Checked {
    let (sender, mut events) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let (mut lines, mut progress) = (Vec::new(), Vec::new());
        while let Some(event) = events.recv().await {
            match event {
                EngineEvent::Output { step_id, stream, lines: batch } => {
                    assert_eq!(step_id, "dr-up");
                    lines.extend(batch.into_iter().map(|line| (stream, line)));
                }
                EngineEvent::Progress { message, .. } => progress.push(message),
                EngineEvent::Pods { .. } => panic!("an http-check has no pods"),
                EngineEvent::Evidence { .. } => panic!("an http-check journals its evidence when it ends"),
                EngineEvent::FileSaved { .. } => panic!("an http-check saves no file"),
            }
        }
        (lines, progress)
    });
    let started = Instant::now();
    let result = http::run(step, "dr-up", &sender, &cancel).await;
    let took = started.elapsed();
    drop(sender);
    let (lines, progress) = collector.await.unwrap();
    Checked { result, lines, progress, took }
}

async fn check(step: &HttpCheckStep) -> Checked {
    check_with(step, CancellationToken::new()).await
}

#[tokio::test]
async fn a_site_that_answers_503_twice_is_up_on_the_third_attempt() {
    let server = Server::start(|n| {
        if n < 2 { answer(503, "Service Unavailable", "starting") } else { answer(200, "OK", "status: ok\n") }
    });
    let mut up = step(&server.url("/healthz?full=1"));
    up.contains = Some("ok".into());
    up.retries = 30;
    let checked = check(&up).await;
    let outcome = checked.outcome();
    assert_eq!((outcome.status, outcome.attempts), (200, 3), "{}", checked.text());
    assert_eq!((outcome.cert_expires.as_deref(), outcome.cert_days_left), (None, None));
    assert!(outcome.latency_ms < 5_000);
    let text = checked.text();
    assert!(text.contains(&format!("GET {}: expecting 200 containing \"ok\"; up to 31 attempts", up.url)), "{text}");
    assert!(text.contains("attempt 1/31: 503 Service Unavailable in "), "{text}");
    assert!(text.contains(" ms; retrying in 100ms"), "{text}");
    assert!(text.contains("attempt 3/31: 200 OK in ") && text.contains("body contains \"ok\""), "{text}");
    assert_eq!(checked.lines.iter().filter(|(_, l)| l.starts_with("attempt ")).count(), 3, "one line an attempt");
    assert_eq!(checked.progress.len(), 3, "a Progress event an attempt: {:?}", checked.progress);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let first = requests[0].to_ascii_lowercase();
    assert!(first.starts_with("get /healthz?full=1 http/1.1\r\n"), "{first}");
    assert!(first.contains(&format!("host: 127.0.0.1:{}\r\n", server.port)), "{first}");
    assert!(first.contains("user-agent: drillbook/"), "{first}");
}

#[tokio::test]
async fn a_wrong_status_fails_naming_the_url_what_came_and_what_was_expected() {
    let server = Server::start(|_| answer(404, "Not Found", "no such page"));
    let mut up = step(&server.url("/healthz"));
    up.retries = 2;
    up.interval = Duration::from_millis(50);
    let checked = check(&up).await;
    let error = checked.error();
    assert!(matches!(checked.result, Err(HttpError::Failed { attempts: 3, .. })));
    assert_eq!(error, format!("GET {}: 404 Not Found (attempt 3 of 3); expected 200", up.url));
    let text = checked.text();
    assert!(text.contains("attempt 2/3: 404 Not Found in ") && text.contains("; retrying in 50ms"), "{text}");
    assert!(
        text.contains("attempt 3/3: 404 Not Found in ") && text.contains("; expected 200; no retries left"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_body_without_the_text_fails() {
    let server = Server::start(|_| answer(200, "OK", "{\"status\": \"starting\"}"));
    let mut up = step(&server.url("/healthz"));
    up.contains = Some("\"status\": \"ready\"".into());
    up.retries = 1;
    let checked = check(&up).await;
    let error = checked.error();
    assert!(error.contains("200 OK, but the body does not contain \"\\\"status\\\": \\\"ready\\\"\""), "{error}");
    assert!(error.ends_with("expected 200 containing \"\\\"status\\\": \\\"ready\\\"\""), "{error}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn redirects_are_reported_not_followed() {
    let server = Server::start(|_| Reply::Answer {
        status: 301,
        reason: "Moved Permanently",
        body: String::new(),
        headers: vec![("Location", "https://elsewhere.example.com/".into())],
    });
    let checked = check(&step(&server.url("/"))).await;
    let error = checked.error();
    assert!(
        error.contains(
            "301 Moved Permanently (Location: https://elsewhere.example.com/) (attempt 1 of 1); expected 200"
        ),
        "{error}"
    );
    assert!(checked.text().contains("no retries (`retries` = 0)"), "{}", checked.text());
    assert_eq!(server.requests().len(), 1, "the redirect is not followed");

    let mut moved = step(&server.url("/"));
    moved.expect_status = 301;
    assert_eq!(check(&moved).await.outcome().status, 301);
}

#[tokio::test]
async fn a_refused_connection_is_named_as_such() {
    let port = free_port();
    let up = step(&format!("http://127.0.0.1:{port}/healthz"));
    let checked = check(&up).await;
    let error = checked.error();
    assert_eq!(
        error,
        format!(
            "GET http://127.0.0.1:{port}/healthz: connection refused by 127.0.0.1:{port} (nothing listening there?) (attempt 1 of 1); expected 200"
        )
    );
    assert!(
        checked.text().contains(&format!("attempt 1/1: connection refused by 127.0.0.1:{port}")),
        "{}",
        checked.text()
    );
}

#[tokio::test]
async fn a_site_that_starts_listening_late_is_waited_for() {
    let port = free_port();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        Server::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), Arc::new(|_| answer(200, "OK", "ok")), None)
    });
    let mut up = step(&format!("http://127.0.0.1:{port}/"));
    up.retries = 40;
    up.interval = Duration::from_millis(100);
    up.contains = Some("ok".into());
    let checked = check(&up).await;
    let _server = late.join().unwrap();
    let outcome = checked.outcome();
    assert!(outcome.attempts >= 3, "{outcome:?}");
    assert!(checked.took >= Duration::from_millis(900), "{:?}", checked.took);
    let text = checked.text();
    assert!(text.contains("attempt 1/41: connection refused by"), "{text}");
    assert!(text.contains(&format!("attempt {}/41: 200 OK", outcome.attempts)), "{text}");
}

#[tokio::test]
async fn a_hung_request_is_cut_by_the_request_limit_and_retried() {
    let server = Server::start(|n| if n == 0 { Reply::Hang } else { answer(200, "OK", "") });
    let mut up = step(&server.url("/"));
    up.request_timeout = Duration::from_millis(300);
    up.retries = 1;
    let checked = check(&up).await;
    assert_eq!(checked.outcome().attempts, 2);
    assert!(checked.text().contains("attempt 1/2: no response within 300ms; retrying in 100ms"), "{}", checked.text());
}

#[tokio::test]
async fn cancelling_stops_at_once_while_waiting_and_mid_request() {
    // Between attempts: a 10 s interval is not waited out.
    let server = Server::start(|_| answer(503, "Service Unavailable", ""));
    let mut up = step(&server.url("/"));
    up.retries = 100;
    up.interval = Duration::from_secs(10);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        trigger.cancel();
    });
    let checked = check_with(&up, cancel).await;
    assert!(matches!(checked.result, Err(HttpError::Cancelled)), "{:?}", checked.result);
    assert!(checked.took < Duration::from_secs(3), "{:?}", checked.took);
    assert_eq!(server.requests().len(), 1);

    // In the middle of a request that never gets an answer.
    let hanging = Server::start(|_| Reply::Hang);
    let mut up = step(&hanging.url("/"));
    up.request_timeout = Duration::from_secs(30);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        trigger.cancel();
    });
    let checked = check_with(&up, cancel).await;
    assert!(matches!(checked.result, Err(HttpError::Cancelled)), "{:?}", checked.result);
    assert_eq!(checked.error(), "stopped while checking");
    assert!(checked.took < Duration::from_secs(3), "{:?}", checked.took);
}

#[tokio::test]
async fn the_overall_timeout_ends_the_check() {
    // Retries would go on for minutes; the timeout stops them.
    let server = Server::start(|_| answer(503, "Service Unavailable", ""));
    let mut up = step(&server.url("/healthz"));
    up.retries = 100;
    up.interval = Duration::from_millis(300);
    up.timeout = Some(Duration::from_secs(1));
    let checked = check(&up).await;
    let error = checked.error();
    assert!(matches!(checked.result, Err(HttpError::TimedOut { .. })), "{error}");
    assert!(
        error.starts_with(&format!("GET {}: timed out after 1s (attempt ", up.url))
            && error.ends_with("of 101); last: 503 Service Unavailable; expected 200"),
        "{error}"
    );
    assert!(checked.took < Duration::from_millis(1_500), "{:?}", checked.took);
    assert!(checked.text().contains("no time for another attempt within 1s"), "{}", checked.text());

    // A request still waiting for its answer when the time is up.
    let hanging = Server::start(|_| Reply::Hang);
    let mut up = step(&hanging.url("/"));
    up.timeout = Some(Duration::from_millis(600));
    let checked = check(&up).await;
    let error = checked.error();
    assert!(error.contains("timed out after 600ms (attempt 1 of 1); last: no response yet"), "{error}");
    assert!(checked.took < Duration::from_secs(2), "{:?}", checked.took);
}

/// A private CA, and a server certificate it signed for 127.0.0.1 and
/// localhost, valid until `not_after` (y, m, d).
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

fn private_ca(not_after: (i32, u8, u8)) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "drillbook test CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "dr.test");
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    Pki { ca_pem: ca.pem(), chain: vec![leaf.der().clone()], key: key.serialize_der() }
}

fn tls_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), key)
        .unwrap();
    Arc::new(config)
}

fn https(server: &Server, path: &str) -> HttpCheckStep {
    step(&format!("https://127.0.0.1:{}{path}", server.port))
}

#[tokio::test]
async fn https_with_an_untrusted_certificate_fails_with_a_certificate_error() {
    let pki = private_ca((2031, 1, 2));
    let server = Server::start_tls(tls_config(&pki), |_| answer(200, "OK", "ok"));
    let checked = check(&https(&server, "/healthz")).await;
    let error = checked.error();
    assert!(error.contains(&format!("certificate error from 127.0.0.1:{}", server.port)), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(error.contains("`ca_file`"), "the error says how to trust a private CA: {error}");
    assert!(server.requests().is_empty(), "no request is sent over an untrusted connection");
}

#[tokio::test]
async fn a_private_ca_in_ca_file_is_trusted_and_the_expiry_reported() {
    let pki = private_ca((2031, 1, 2));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let server = Server::start_tls(tls_config(&pki), |_| answer(200, "OK", "ok"));
    let mut up = https(&server, "/healthz");
    up.ca_file = Some(ca_file);
    up.contains = Some("ok".into());
    let checked = check(&up).await;
    let outcome = checked.outcome();
    assert_eq!(outcome.cert_expires.as_deref(), Some("2031-01-02T00:00:00Z"));
    let expiry: jiff::Timestamp = "2031-01-02T00:00:00Z".parse().unwrap();
    let days = (expiry.as_second() - jiff::Timestamp::now().as_second()).div_euclid(86_400);
    assert!(outcome.cert_days_left.is_some_and(|left| (left - days).abs() <= 1), "{outcome:?}");
    let text = checked.text();
    assert!(text.contains("certificate of 127.0.0.1 expires 2031-01-02T00:00:00Z ("), "{text}");
    assert!(!text.contains("warning"), "{text}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_certificate_about_to_expire_is_warned_about() {
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let soon = today.saturating_add(jiff::ToSpan::days(6));
    let pki = private_ca((i32::from(soon.year()), soon.month() as u8, soon.day() as u8));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let server = Server::start_tls(tls_config(&pki), |_| answer(200, "OK", ""));
    let mut up = https(&server, "/");
    up.ca_file = Some(ca_file);
    let checked = check(&up).await;
    let left = checked.outcome().cert_days_left.unwrap();
    assert!((4..=6).contains(&left), "{left}");
    let warning = checked.lines.iter().find(|(_, line)| line.starts_with("warning:")).expect("a warning");
    assert_eq!(warning.0, OutputStream::Stderr);
    assert!(warning.1.contains(&format!("the certificate of 127.0.0.1 expires in {left} days")), "{}", warning.1);
}

#[tokio::test]
async fn a_ca_file_that_cannot_be_used_stops_before_any_request() {
    let pki = private_ca((2031, 1, 2));
    let server = Server::start_tls(tls_config(&pki), |_| answer(200, "OK", ""));
    let dir = tempfile::tempdir().unwrap();
    let mut up = https(&server, "/");
    up.ca_file = Some(dir.path().join("missing.pem"));
    let error = check(&up).await.error();
    assert!(error.starts_with("cannot read `ca_file` ") && error.contains("missing.pem"), "{error}");
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    up.ca_file = Some(not_pem);
    let error = check(&up).await.error();
    assert!(error.contains("holds no PEM certificate"), "{error}");
    assert!(server.requests().is_empty());
}

// ---- through the binary ----

fn drill_runbook(url: &str, retries: u32, interval: &str) -> String {
    format!(
        r#"[runbook]
id = "dr-http"
title = "DR site check"

[[step]]
id = "dr-up"
kind = "http-check"
url = "{url}"
expect_status = 200
contains = "ok"
retries = {retries}
interval = "{interval}"
timeout = "5m"
capture = "up"

[[step]]
id = "after"
kind = "command"
run = "echo status {{{{ up }}}} after {{{{ up.attempts }}}} attempts"
"#
    )
}

fn events(journal: &str) -> Vec<serde_json::Value> {
    journal.lines().map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["event"].clone()).collect()
}

#[test]
fn a_drill_checks_a_site_and_journals_what_it_saw() {
    let server =
        Server::start(|n| if n == 0 { answer(503, "Service Unavailable", "") } else { answer(200, "OK", "all ok") });
    let url = server.url("/healthz");
    let home = Home::new();
    let runbook = home.runbook("dr.toml", &drill_runbook(&url, 3, "200ms"));
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("  | attempt 1/4: 503 Service Unavailable in "), "{stdout}");
    assert!(stdout.contains("  | attempt 2/4: 200 OK in "), "{stdout}");
    assert!(stdout.contains("captured up = 200"), "{stdout}");
    assert!(stdout.contains("  | status 200 after 2 attempts"), "{stdout}");

    let journal = home.journal();
    let events = events(&journal);
    let of = |kind: &str| events.iter().filter(|e| e["type"] == kind && e["step"] == "dr-up").collect::<Vec<_>>();
    let started = of("step_started");
    assert_eq!(started.len(), 1, "{journal}");
    assert_eq!(started[0]["command"], format!("GET {url} (expect 200, containing \"ok\")"));
    assert_eq!(started[0]["log"], "logs/dr-up.1.log");
    let chosen = of("chosen");
    assert_eq!(chosen.len(), 1, "{journal}");
    let choice = &chosen[0]["choice"];
    assert_eq!(choice["url"], url);
    assert_eq!(choice["status"], 200);
    assert_eq!(choice["attempts"], 2);
    assert!(choice["latency_ms"].is_u64());
    assert!(choice["cert_expires"].is_null() && choice["cert_days_left"].is_null(), "{choice}");
    let capture = of("capture_set");
    assert_eq!(capture[0]["name"], "up");
    assert_eq!(capture[0]["value"]["value"], "200");
    assert_eq!(capture[0]["value"]["fields"]["status"], 200);
    assert_eq!(capture[0]["value"]["fields"]["attempts"], 2);
    let finished = of("step_finished");
    assert_eq!(finished[0]["result"], "succeeded");

    let drill = home.only_drill();
    let log = std::fs::read_to_string(drill.join("logs/dr-up.1.log")).unwrap();
    assert!(log.contains("attempt 1/4: 503 Service Unavailable") && log.contains("attempt 2/4: 200 OK"), "{log}");

    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    let report = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["steps"][0]["choice"]["status"], 200);
    assert_eq!(report["steps"][0]["captures"]["up"]["value"], "200");
    let markdown = stdout_of(&home.cmd().args(["report", &id]).output().unwrap());
    assert!(markdown.contains(&format!("- `{url}` answered 200 in ")), "{markdown}");
    assert!(markdown.contains(" on attempt 2"), "{markdown}");
    home.cmd().args(["verify", &id]).assert().success();
}

#[test]
fn a_drill_whose_site_stays_down_fails_with_the_reason() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let home = Home::new();
    let runbook = home.runbook("dr.toml", &drill_runbook(&url, 1, "100ms"));
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{}", stderr_of(&output));
    let reason = format!(
        "GET {url}: connection refused by 127.0.0.1:{port} (nothing listening there?) (attempt 2 of 2); expected 200 containing \"ok\""
    );
    assert!(stdout.contains(&format!("✗ failed: {reason}")), "{stdout}");
    let events = events(&home.journal());
    let finished = events.iter().find(|e| e["type"] == "step_finished").unwrap();
    assert_eq!(finished["result"], "failed");
    assert_eq!(finished["reason"], reason);
    assert!(!events.iter().any(|e| e["type"] == "chosen" || e["type"] == "capture_set"));
}

#[test]
fn a_drill_stopped_during_a_check_is_interrupted_and_resumes() {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let server = Server::start(move |_| {
        if flag.load(Ordering::SeqCst) { answer(200, "OK", "ok") } else { answer(503, "Service Unavailable", "") }
    });
    let home = Home::new();
    let runbook = home.runbook("dr.toml", &drill_runbook(&server.url("/"), 100, "10s"));
    let child = home.spawn_run(&runbook);
    wait_for("the check to reach the server", Duration::from_secs(30), || {
        (!server.requests().is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped_at = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(stopped_at.elapsed() < Duration::from_secs(5), "the 10 s interval is not waited out");
    assert_eq!(output.status.code(), Some(130), "{}\n{}", stdout_of(&output), stderr_of(&output));
    let journal = home.journal();
    assert!(
        journal.contains(
            "\"type\":\"step_interrupted\",\"step\":\"dr-up\",\"attempt\":1,\"reason\":\"stopped by SIGTERM\""
        ),
        "{journal}"
    );

    up.store(true, Ordering::SeqCst);
    let resumed = home.cmd().args(["resume", "--plain", "--yes"]).output().unwrap();
    assert!(resumed.status.success(), "{}\n{}", stdout_of(&resumed), stderr_of(&resumed));
    assert!(stdout_of(&resumed).contains("attempt 1/101: 200 OK"), "{}", stdout_of(&resumed));
}
