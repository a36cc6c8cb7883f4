//! `http-check`: is a URL up and answering what it should? One request per
//! attempt (HTTP/1.1 over hyper, TLS through rustls on aws-lc-rs), retried
//! after a connection error, a wrong status or a body without the expected
//! text, `interval` apart, within an overall `timeout`. Redirects are not
//! followed: a 301 is reported as a 301. For HTTPS the server certificate's
//! expiry is read and reported, with a warning when it is near.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::drill::evidence::{Evidence, HttpResult};
use crate::engine::certificate;
use crate::engine::render::RenderError;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::duration::format_duration;
use crate::runbook::template::{CaptureValue, TemplateContext, Templater};
use crate::runbook::{HttpCheckSpec, HttpUrl, parse_http_url};

/// Each request's own limit (within the step's overall `timeout`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a body is read to look for `contains`.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// A certificate expiring within this many days is warned about.
pub const CERT_WARNING_DAYS: i64 = 14;

/// An `http-check` step with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheckStep {
    pub url: String,
    pub target: HttpUrl,
    pub method: String,
    pub expect_status: u16,
    pub contains: Option<String>,
    /// Attempts after the first.
    pub retries: u32,
    pub interval: Duration,
    /// Overall limit; `None`: the attempts alone bound the step.
    pub timeout: Option<Duration>,
    pub request_timeout: Duration,
    /// PEM CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
}

impl HttpCheckStep {
    pub fn render(spec: &HttpCheckSpec, context: &TemplateContext, templater: &Templater) -> Result<Self, RenderError> {
        let render = |key: &str, text: &str| templater.render_plain(text, context).map_err(RenderError::at(key));
        let url = render("url", &spec.url.text)?.trim().to_string();
        let target = parse_http_url(&url).map_err(RenderError::Url)?;
        let contains = match &spec.contains {
            Some(t) => Some(render("contains", &t.text)?).filter(|c| !c.is_empty()),
            None => None,
        };
        let ca_file = match &spec.ca_file {
            Some(t) => Some(render("ca_file", &t.text)?).filter(|p| !p.trim().is_empty()).map(PathBuf::from),
            None => None,
        };
        Ok(HttpCheckStep {
            url,
            target,
            method: spec.method.clone(),
            expect_status: spec.status,
            contains,
            retries: spec.retries,
            interval: spec.interval,
            timeout: spec.timeout,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ca_file,
        })
    }

    /// What counts as up: `200` or `200 containing "ok"`.
    pub fn expectation(&self) -> String {
        match &self.contains {
            Some(text) => format!("{} containing {text:?}", self.expect_status),
            None => self.expect_status.to_string(),
        }
    }

    /// The step as journaled: `GET URL (expect 200, containing "ok")`.
    pub fn describe(&self) -> String {
        let containing = self.contains.as_ref().map(|t| format!(", containing {t:?}")).unwrap_or_default();
        format!("{} {} (expect {}{containing})", self.method, self.url, self.expect_status)
    }

    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }
}

/// How a successful check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOutcome {
    pub status: u16,
    /// Of the successful attempt: connect, TLS, request and body.
    pub latency_ms: u64,
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// The server certificate's notAfter (RFC 3339, UTC), for HTTPS.
    pub cert_expires: Option<String>,
    pub cert_days_left: Option<i64>,
}

impl HttpOutcome {
    /// Journaled as the step's evidence, for the report.
    pub fn evidence(&self, url: &str) -> Evidence {
        Evidence::Http(HttpResult {
            url: url.to_string(),
            status: self.status,
            latency_ms: self.latency_ms,
            attempts: self.attempts,
            cert_expires: self.cert_expires.clone(),
            cert_days_left: self.cert_days_left,
        })
    }

    /// `capture = "name"`: `{{ name }}` is the status; fields for the rest.
    pub fn capture(&self, url: &str) -> CaptureValue {
        let mut value = CaptureValue::plain(self.status.to_string());
        let fields = [
            ("status", self.status.into()),
            ("latency_ms", self.latency_ms.into()),
            ("attempts", self.attempts.into()),
            ("cert_expires", self.cert_expires.clone().into()),
            ("cert_days_left", self.cert_days_left.into()),
            ("url", url.into()),
        ];
        value.fields = fields.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        value
    }
}

/// How a check ended other than in success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("{method} {url}: {last} (attempt {attempts} of {attempts}); expected {expected}")]
    Failed { method: String, url: String, attempts: u32, last: String, expected: String },
    #[error(
        "{method} {url}: timed out after {} (attempt {attempts} of {total}); last: {last}; expected {expected}",
        format_duration(*.timeout)
    )]
    TimedOut {
        method: String,
        url: String,
        timeout: Duration,
        attempts: u32,
        total: u32,
        last: String,
        expected: String,
    },
    #[error("stopped while checking")]
    Cancelled,
    /// Nothing was sent: the TLS setup failed (an unreadable `ca_file`).
    #[error("{0}")]
    Setup(String),
}

/// The server certificate, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Certificate {
    Expires(Timestamp),
    Unreadable(certificate::CertificateError),
}

/// What one attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Observation {
    Response {
        status: StatusCode,
        location: Option<String>,
        /// `None`: the body was not looked at (no `contains`).
        body_has_text: Option<bool>,
        /// The body was longer than [`BODY_LIMIT`]; only its start was searched.
        truncated: bool,
        certificate: Option<Certificate>,
    },
    /// No response: DNS, connection, TLS or protocol error.
    Error(String),
    /// No response within the request's limit.
    NoResponse(Duration),
}

impl Observation {
    fn is_success(&self, step: &HttpCheckStep) -> bool {
        match self {
            Observation::Response { status, body_has_text, .. } => {
                status.as_u16() == step.expect_status && body_has_text.unwrap_or(true)
            }
            Observation::Error(_) | Observation::NoResponse(_) => false,
        }
    }

    /// The status (`503 Service Unavailable`) or error (`connection refused
    /// …`), and what the body check found (`, but the body does not contain
    /// "ok"`): apart, so the log line can put the latency between them.
    fn parts(&self, step: &HttpCheckStep) -> (String, String) {
        match self {
            Observation::Error(message) => (message.clone(), String::new()),
            Observation::NoResponse(limit) => {
                (format!("no response within {}", format_duration(*limit)), String::new())
            }
            Observation::Response { status, location, body_has_text, truncated, .. } => {
                let mut head = status_text(*status);
                if let Some(location) = location {
                    head.push_str(&format!(" (Location: {location})"));
                }
                let mut tail = String::new();
                if status.as_u16() == step.expect_status
                    && let (Some(found), Some(wanted)) = (body_has_text, &step.contains)
                {
                    let within = if *truncated { " (searched its first MiB)" } else { "" };
                    if *found {
                        tail = format!(", body contains {wanted:?}");
                    } else {
                        tail = format!(", but the body does not contain {wanted:?}{within}");
                    }
                }
                (head, tail)
            }
        }
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

async fn say(events: &mpsc::Sender<EngineEvent>, step_id: &str, stream: OutputStream, line: String) {
    let _ = events.send(EngineEvent::Output { step_id: step_id.into(), stream, lines: vec![line].into() }).await;
}

async fn progress(events: &mpsc::Sender<EngineEvent>, step_id: &str, message: String) {
    let _ = events.send(EngineEvent::Progress { step_id: step_id.into(), message }).await;
}

/// Checks the URL until it answers as expected, the attempts or the
/// overall timeout run out, or `cancel` fires (which stops at once, in the
/// middle of a request or a wait). Every attempt is one `Output` line and
/// one `Progress` event.
pub async fn run(
    step: &HttpCheckStep,
    step_id: &str,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
) -> Result<HttpOutcome, HttpError> {
    let started = Instant::now();
    let deadline = step.timeout.map(|timeout| started + timeout);
    let total = step.attempts();
    let mut plan = format!("{}: expecting {}", step.describe_target(), step.expectation());
    if total > 1 {
        plan.push_str(&format!("; up to {total} attempts, {} apart", format_duration(step.interval)));
    }
    if let Some(timeout) = step.timeout {
        plan.push_str(&format!("; at most {} in all", format_duration(timeout)));
    }
    say(events, step_id, OutputStream::Stdout, plan).await;

    let tls = if step.target.https {
        let ca_file = step.ca_file.clone();
        let built = tokio::task::spawn_blocking(move || tls_connector(ca_file.as_deref()))
            .await
            .map_err(|e| HttpError::Setup(format!("internal error while loading CA certificates: {e}")))?;
        Some(built.map_err(|e| HttpError::Setup(e.to_string()))?)
    } else {
        None
    };

    let expected = step.expectation();
    let timed_out = |attempts: u32, last: String| HttpError::TimedOut {
        method: step.method.clone(),
        url: step.url.clone(),
        timeout: step.timeout.unwrap_or_default(),
        attempts,
        total,
        last,
        expected: expected.clone(),
    };
    let mut last = "no response yet".to_string();
    for number in 1..=total {
        let attempt_started = Instant::now();
        let limit = match deadline {
            Some(deadline) => step.request_timeout.min(deadline.saturating_duration_since(attempt_started)),
            None => step.request_timeout,
        };
        let observation = tokio::select! {
            () = cancel.cancelled() => return Err(HttpError::Cancelled),
            result = tokio::time::timeout(limit, attempt(step, tls.as_ref())) => match result {
                Ok(observation) => observation,
                Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    let line = format!("attempt {number}/{total}: no response before the overall timeout");
                    say(events, step_id, OutputStream::Stdout, line.clone()).await;
                    progress(events, step_id, line).await;
                    return Err(timed_out(number, last));
                }
                Err(_) => Observation::NoResponse(limit),
            },
        };
        let latency = attempt_started.elapsed();
        let took = match observation {
            Observation::Response { .. } => format!(" in {} ms", latency.as_millis()),
            Observation::Error(_) => format!(" after {} ms", latency.as_millis()),
            Observation::NoResponse(_) => String::new(),
        };
        let (head, tail) = observation.parts(step);
        let described = format!("{head}{tail}");
        if observation.is_success(step) {
            let line = format!("attempt {number}/{total}: {head}{took}{tail}");
            say(events, step_id, OutputStream::Stdout, line.clone()).await;
            progress(events, step_id, line).await;
            let (cert_expires, cert_days_left) = match &observation {
                Observation::Response { certificate: Some(certificate), .. } => {
                    report_certificate(step, step_id, events, certificate).await
                }
                _ => (None, None),
            };
            return Ok(HttpOutcome {
                status: step.expect_status,
                latency_ms: latency.as_millis() as u64,
                attempts: number,
                cert_expires,
                cert_days_left,
            });
        }
        last = described.clone();
        let (ending, error) = if number == total {
            let retries = if total > 1 { "no retries left" } else { "no retries (`retries` = 0)" };
            let error = HttpError::Failed {
                method: step.method.clone(),
                url: step.url.clone(),
                attempts: number,
                last: last.clone(),
                expected: expected.clone(),
            };
            (format!("expected {expected}; {retries}"), Some(error))
        } else if deadline.is_some_and(|d| Instant::now() + step.interval >= d) {
            let timeout = format_duration(step.timeout.unwrap_or_default());
            (
                format!("expected {expected}; no time for another attempt within {timeout}"),
                Some(timed_out(number, last.clone())),
            )
        } else {
            (format!("retrying in {}", format_duration(step.interval)), None)
        };
        let line = format!("attempt {number}/{total}: {head}{took}{tail}; {ending}");
        say(events, step_id, OutputStream::Stdout, line.clone()).await;
        progress(events, step_id, line).await;
        if let Some(error) = error {
            return Err(error);
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(HttpError::Cancelled),
            () = tokio::time::sleep(step.interval) => {}
        }
    }
    // Not reached: the last attempt returns above.
    Err(HttpError::Failed { method: step.method.clone(), url: step.url.clone(), attempts: total, last, expected })
}

impl HttpCheckStep {
    fn describe_target(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// Logs the certificate's expiry (a warning when it is near); returns
/// what the outcome records.
async fn report_certificate(
    step: &HttpCheckStep,
    step_id: &str,
    events: &mpsc::Sender<EngineEvent>,
    certificate: &Certificate,
) -> (Option<String>, Option<i64>) {
    let host = &step.target.host;
    match certificate {
        Certificate::Expires(expiry) => {
            let days = certificate::days_left(*expiry, Timestamp::now());
            let line = format!("certificate of {host} expires {expiry} ({days} days left)");
            say(events, step_id, OutputStream::Stdout, line).await;
            if days < CERT_WARNING_DAYS {
                let warning = format!(
                    "warning: the certificate of {host} expires in {days} day{} ({expiry}): renew it before the next drill",
                    if days == 1 { "" } else { "s" }
                );
                say(events, step_id, OutputStream::Stderr, warning.clone()).await;
                progress(events, step_id, warning).await;
            }
            (Some(expiry.to_string()), Some(days))
        }
        Certificate::Unreadable(why) => {
            say(events, step_id, OutputStream::Stderr, format!("warning: {why}")).await;
            (None, None)
        }
    }
}

/// The system's CA certificates, loaded once per process.
pub(crate) fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Why TLS for a check could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSetupError {
    #[error("cannot read `ca_file` {}: {source}", .path.display())]
    ReadCaFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`ca_file` {} is not valid PEM: {source}", .path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("`ca_file` {}: a certificate cannot be used as a CA: {source}", .path.display())]
    NotCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("`ca_file` {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", .path.display())]
    NoCertificate { path: PathBuf },
    #[error("cannot set up TLS: {0}")]
    Config(#[source] rustls::Error),
}

/// The CAs a check trusts: the system's, plus `ca_file`'s. Also says
/// whether a `ca_file` was given (which explains an unknown issuer).
pub(crate) fn root_store(ca_file: Option<&std::path::Path>) -> Result<(rustls::RootCertStore, bool), TlsSetupError> {
    let (roots, _) = roots_counted(ca_file)?;
    Ok((roots, ca_file.is_some()))
}

fn roots_counted(ca_file: Option<&std::path::Path>) -> Result<(rustls::RootCertStore, usize), TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let (system, _) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| TlsSetupError::ReadCaFile { path: path.into(), source })?;
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|source| TlsSetupError::Pem { path: path.into(), source })?;
            roots.add(certificate).map_err(|source| TlsSetupError::NotCa { path: path.into(), source })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsSetupError::NoCertificate { path: path.into() });
        }
    }
    Ok((roots, system))
}

/// TLS for one check: the system's CAs, plus `ca_file`'s.
fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<Tls, TlsSetupError> {
    let (roots, system) = roots_counted(ca_file)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls { connector: TlsConnector::from(Arc::new(config)), system_roots: system, private_ca: ca_file.is_some() })
}

struct Tls {
    connector: TlsConnector,
    /// How many system CA certificates were usable (0 explains an unknown issuer).
    system_roots: usize,
    private_ca: bool,
}

/// Aborts the connection task when the attempt ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request: resolve, connect, TLS, send, read the status and (for
/// `contains`) up to [`BODY_LIMIT`] of the body.
async fn attempt(step: &HttpCheckStep, tls: Option<&Tls>) -> Observation {
    let target = &step.target;
    let address = format!("{}:{}", target.host, target.port);
    let tcp = match connect(&target.host, target.port).await {
        Ok(tcp) => tcp,
        Err(error) => return Observation::Error(error.to_string()),
    };
    let _ = tcp.set_nodelay(true);
    match tls {
        None => exchange(step, tcp, None).await,
        Some(tls) => {
            let name = match ServerName::try_from(target.host.clone()) {
                Ok(name) => name,
                Err(e) => return Observation::Error(format!("`{}` is not a valid TLS server name: {e}", target.host)),
            };
            let stream = match tls.connector.connect(name, tcp).await {
                Ok(stream) => stream,
                Err(error) => return Observation::Error(describe_tls(&error, &address, tls)),
            };
            let certificate = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).map(|leaf| {
                match certificate::read(leaf) {
                    Ok(info) => Certificate::Expires(info.not_after),
                    Err(why) => Certificate::Unreadable(why),
                }
            });
            exchange(step, stream, certificate).await
        }
    }
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot resolve `{host}`: no addresses")]
    NoAddresses { host: String },
    /// The last address tried refused (or did not answer).
    #[error("{}", describe_io(.source, .address))]
    Connect {
        address: String,
        #[source]
        source: io::Error,
    },
}

/// Resolves and connects to the first address that accepts.
async fn connect(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    let address = format!("{host}:{port}");
    let addresses: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ConnectError::Resolve { host: host.to_string(), source })?
        .collect();
    let mut last = None;
    for socket in &addresses {
        match TcpStream::connect(socket).await {
            Ok(tcp) => return Ok(tcp),
            Err(error) => last = Some(error),
        }
    }
    Err(match last {
        Some(source) => ConnectError::Connect { address, source },
        None => ConnectError::NoAddresses { host: host.to_string() },
    })
}

fn describe_io(error: &io::Error, address: &str) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => format!("connection refused by {address} (nothing listening there?)"),
        io::ErrorKind::ConnectionReset => format!("connection reset by {address}"),
        io::ErrorKind::TimedOut => format!("connecting to {address} timed out"),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            format!("{address} is unreachable: {error}")
        }
        _ => format!("cannot connect to {address}: {error}"),
    }
}

fn describe_tls(error: &io::Error, address: &str, tls: &Tls) -> String {
    let Some(rustls_error) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return format!("TLS handshake with {address} failed: {error}");
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(reason) => {
            use rustls::CertificateError as E;
            let why = match reason {
                E::UnknownIssuer if tls.private_ca => {
                    "it is signed by neither a system CA nor one in `ca_file`".to_string()
                }
                E::UnknownIssuer if tls.system_roots == 0 => {
                    "no system CA certificates were found, and no `ca_file` is set".to_string()
                }
                E::UnknownIssuer => {
                    "it is not signed by a CA this machine trusts (a private CA needs `ca_file`)".into()
                }
                E::Expired | E::ExpiredContext { .. } => "it has expired".into(),
                E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet (check the clocks)".into(),
                E::NotValidForName | E::NotValidForNameContext { .. } => {
                    format!("it is not valid for the name in the URL ({address})")
                }
                _ => String::new(),
            };
            let why = if why.is_empty() { String::new() } else { format!(": {why}") };
            format!("certificate error from {address}: {rustls_error}{why}")
        }
        other => format!("TLS handshake with {address} failed: {other}"),
    }
}

/// Sends the request on an open connection and reads the answer.
async fn exchange<S>(step: &HttpCheckStep, stream: S, certificate: Option<Certificate>) -> Observation
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(pair) => pair,
        Err(error) => return Observation::Error(describe_hyper(&error)),
    };
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let method = Method::from_bytes(step.method.as_bytes()).unwrap_or(Method::GET);
    let request = Request::builder()
        .method(method.clone())
        .uri(step.target.path_and_query.as_str())
        .header(header::HOST, step.target.authority.as_str())
        .header(header::USER_AGENT, concat!("drillbook/", env!("CARGO_PKG_VERSION")))
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new());
    let request = match request {
        Ok(request) => request,
        Err(error) => return Observation::Error(format!("cannot build the request: {error}")),
    };
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(error) => return Observation::Error(describe_hyper(&error)),
    };
    let status = response.status();
    let location = status
        .is_redirection()
        .then(|| response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_string))
        .flatten();
    let (mut body_has_text, mut truncated) = (None, false);
    if let Some(wanted) = step.contains.as_deref().filter(|_| method != Method::HEAD) {
        let mut body = response.into_body();
        let mut read: Vec<u8> = Vec::new();
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = BODY_LIMIT - read.len();
                        read.extend_from_slice(&data[..data.len().min(room)]);
                        if data.len() > room {
                            truncated = true;
                            break;
                        }
                    }
                }
                Some(Err(error)) => {
                    return Observation::Error(format!(
                        "{} but the body broke off: {}",
                        status_text(status),
                        describe_hyper(&error)
                    ));
                }
            }
        }
        body_has_text = Some(contains(&read, wanted.as_bytes()));
    }
    Observation::Response { status, location, body_has_text, truncated, certificate }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|window| window == needle)
}

/// hyper's message with its causes ("connection closed before message completed").
fn describe_hyper(error: &hyper::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Template;

    fn spec(url: &str) -> HttpCheckSpec {
        HttpCheckSpec {
            url: Template { text: url.into(), span: 0..0 },
            method: "GET".into(),
            status: 200,
            contains: Some(Template { text: "ok {{ project }}".into(), span: 0..0 }),
            retries: 2,
            interval: Duration::from_secs(10),
            timeout: None,
            ca_file: None,
        }
    }

    fn context() -> TemplateContext {
        let mut context = TemplateContext::new();
        context.set_var("project", "acme");
        context
    }

    #[test]
    fn renders_and_describes_the_step() {
        let step =
            HttpCheckStep::render(&spec("https://dr.{{ project }}.example.com/healthz"), &context(), &Templater::new())
                .unwrap();
        assert_eq!(step.url, "https://dr.acme.example.com/healthz");
        assert_eq!(step.target.host, "dr.acme.example.com");
        assert_eq!(step.target.port, 443);
        assert_eq!(step.contains.as_deref(), Some("ok acme"));
        assert_eq!(step.describe(), "GET https://dr.acme.example.com/healthz (expect 200, containing \"ok acme\")");
        assert_eq!(step.expectation(), "200 containing \"ok acme\"");
        assert_eq!(step.attempts(), 3);
    }

    #[test]
    fn a_url_that_renders_to_something_else_is_refused() {
        let templater = Templater::new();
        for (url, wanted) in [
            ("{{ project }}.example.com", "not an absolute URL"),
            ("ftp://{{ project }}.example.com/", "only http and https"),
            ("https://user:pw@{{ project }}.example.com/", "credentials"),
        ] {
            let error = HttpCheckStep::render(&spec(url), &context(), &templater).unwrap_err().to_string();
            assert!(error.starts_with("`url`: ") && error.contains(wanted), "{url}: {error}");
        }
    }

    #[test]
    fn the_outcome_as_journaled_and_captured() {
        let outcome = HttpOutcome {
            status: 200,
            latency_ms: 12,
            attempts: 3,
            cert_expires: Some("2031-01-02T00:00:00Z".into()),
            cert_days_left: Some(400),
        };
        let evidence = outcome.evidence("https://x/");
        assert_eq!(
            evidence.untagged(),
            serde_json::json!({"url": "https://x/", "status": 200, "latency_ms": 12, "attempts": 3,
                "cert_expires": "2031-01-02T00:00:00Z", "cert_days_left": 400})
        );
        let capture = outcome.capture("https://x/");
        assert_eq!(capture.value, "200");
        assert_eq!(capture.fields["cert_days_left"], 400);
        assert_eq!(capture.fields["latency_ms"], 12);
    }

    #[test]
    fn finds_text_in_bytes() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(!contains(b"status: o k", b"ok"));
        assert!(contains(b"", b""));
        assert!(!contains(b"o", b"ok"));
    }
}
