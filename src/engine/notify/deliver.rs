//! One notification to one target: an HTTP/1.1 POST (hyper; TLS through
//! rustls with the system's CAs, as `http-check` does), each attempt within
//! a time limit, retried with a growing pause after what may pass (no
//! answer, a refused connection, a 5xx, 408 or 429), not after what will
//! not (any other 4xx: a wrong or revoked URL).
//!
//! Errors name the host and port at most, never the URL's path: a webhook's
//! path is its secret.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Target;
use crate::runbook::duration::format_duration;

/// How hard a notification is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Each attempt's limit: connecting, TLS, the request and the answer's head.
    pub timeout: Duration,
    /// The pause after the first failed attempt, doubled after each next one.
    pub backoff: Duration,
}

impl Default for Delivery {
    /// 3 attempts of 10 s, 0.5 s then 1 s apart: a server that answers 500
    /// costs 1.5 s, so the end of a drill (which waits 5 s) still hears how
    /// its last notification went.
    fn default() -> Self {
        Delivery { attempts: 3, timeout: Duration::from_secs(10), backoff: Duration::from_millis(500) }
    }
}

/// How one attempt failed.
enum Failed {
    /// Worth another attempt.
    Transient(String),
    /// Another attempt would fail the same way.
    Permanent(String),
}

/// TLS for every HTTPS target of a notifier, or why it could not be set up.
pub(super) type Tls = Arc<Result<TlsConnector, String>>;

/// The system's CAs (as `http-check` trusts them), HTTP/1.1 only.
pub(super) fn tls() -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(crate::engine::http::system_roots().iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    Arc::new(match config {
        Ok(mut config) => {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(TlsConnector::from(Arc::new(config)))
        }
        Err(error) => Err(format!("cannot set up TLS: {error}")),
    })
}

/// Posts `body` to the target until it is taken or the attempts run out;
/// the error says why the last attempt failed and how many were made.
pub(super) async fn deliver(target: &Target, body: Bytes, delivery: Delivery, tls: &Tls) -> Result<(), String> {
    let mut pause = delivery.backoff;
    let attempts = delivery.attempts.max(1);
    for attempt in 1..=attempts {
        let failed = match tokio::time::timeout(delivery.timeout, post(target, body.clone(), tls)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(failed)) => failed,
            Err(_) => Failed::Transient(format!("no answer within {}", format_duration(delivery.timeout))),
        };
        match failed {
            Failed::Permanent(error) => return Err(format!("{error} (not retried)")),
            Failed::Transient(error) if attempt == attempts => {
                return Err(format!("{error} ({attempts} attempt{})", if attempts == 1 { "" } else { "s" }));
            }
            Failed::Transient(_) => {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
    }
    Err("no attempt was made".into())
}

/// One attempt: connect, TLS when HTTPS, POST, read the status.
async fn post(target: &Target, body: Bytes, tls: &Tls) -> Result<(), Failed> {
    let endpoint = &target.endpoint;
    let address = format!("{}:{}", endpoint.host, endpoint.port);
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|error| Failed::Transient(describe_connect(&error, &address)))?;
    let _ = tcp.set_nodelay(true);
    if !endpoint.https {
        return exchange(target, tcp, body).await;
    }
    let connector = tls.as_ref().as_ref().map_err(|error| Failed::Permanent(error.clone()))?;
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|_| Failed::Permanent(format!("`{}` is not a valid TLS server name", endpoint.host)))?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|error| Failed::Transient(format!("TLS handshake with {address} failed: {error}")))?;
    exchange(target, stream, body).await
}

/// Stops the connection's task when the attempt ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange<S>(target: &Target, stream: S, body: Bytes) -> Result<(), Failed>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| Failed::Transient(describe_hyper(&error)))?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = Request::builder()
        .method(Method::POST)
        .uri(target.endpoint.path_and_query.as_str())
        .header(header::HOST, target.endpoint.authority.as_str())
        .header(header::USER_AGENT, concat!("drillbook/", env!("CARGO_PKG_VERSION")))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .body(Full::new(body))
        .map_err(|error| Failed::Permanent(format!("cannot build the request: {error}")))?;
    let response = sender.send_request(request).await.map_err(|error| Failed::Transient(describe_hyper(&error)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let answered = format!("the server answered {}", status_text(status));
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS {
        Err(Failed::Transient(answered))
    } else {
        Err(Failed::Permanent(answered))
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn describe_connect(error: &io::Error, address: &str) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => format!("connection refused by {address}"),
        io::ErrorKind::ConnectionReset => format!("connection reset by {address}"),
        _ => format!("cannot connect to {address}: {error}"),
    }
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
