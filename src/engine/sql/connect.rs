//! Where a `sql-check` connects and how: the URL's `sslmode` honoured as
//! libpq does (`disable`; `prefer`, the default, and `require` encrypt
//! without checking the certificate; `verify-ca` and `verify-full` check it
//! against the system's CAs, `verify-ca` with the host name too, which is
//! stricter than libpq), and the errors a user meets said in one line.

use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres::Client;
use tokio_postgres::config::{Host, SslMode};

/// How long a connection may take before the step says so.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    Verify,
}

impl TlsMode {
    pub fn describe(self) -> &'static str {
        match self {
            TlsMode::Disable => "no TLS: sslmode=disable",
            TlsMode::Prefer => "TLS if the server offers it, certificate not checked: sslmode=prefer",
            TlsMode::Require => "TLS, certificate not checked: sslmode=require",
            TlsMode::Verify => "TLS, certificate and host checked against the system's CAs",
        }
    }
}

/// A parsed connection URL.
#[derive(Debug, Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    pub tls_mode: TlsMode,
    /// `postgresql://user@host:port/db`: for the log and the evidence.
    pub display: String,
}

/// Why a connection was not made, in the words a user acts on.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("`database` is not a PostgreSQL URL ({url}): {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to {target}: {message}")]
    Failed { target: String, message: String },
    #[error("cannot connect to {target}: no answer within {seconds} s")]
    Timeout { target: String, seconds: u64 },
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, ConnectError> {
        let bad = |reason: String| ConnectError::BadUrl { url: redact_url(url), reason };
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return Err(bad("it must start with postgresql://".into()));
        }
        // tokio-postgres knows disable/prefer/require only: the verifying modes are read here.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut tls_mode = TlsMode::Prefer;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", mode)) => {
                    tls_mode = match mode {
                        "disable" => TlsMode::Disable,
                        "allow" | "prefer" => TlsMode::Prefer,
                        "require" => TlsMode::Require,
                        "verify-ca" | "verify-full" => TlsMode::Verify,
                        other => return Err(bad(format!("unknown sslmode `{other}`"))),
                    }
                }
                _ => kept.push(pair),
            }
        }
        let cleaned = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        let mut config: tokio_postgres::Config =
            cleaned.parse().map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
        if config.get_password().is_some() {
            return Err(bad("it holds a password: give it in `password` (a secret variable) instead".into()));
        }
        config.ssl_mode(match tls_mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::Verify => SslMode::Require,
        });
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("drillbook sql-check");
        let display = display(&config);
        Ok(Target { config, tls_mode, display })
    }
}

fn display(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or_else(|| config.get_user().unwrap_or("postgres"));
    format!("postgresql://{user}{host}:{port}/{database}")
}

/// The URL with anything after `user:` up to `@` hidden, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            match user.split_once(':') {
                Some((name, _)) => format!("{}{name}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// An open connection; the task driving it stops when this is dropped.
pub struct Connected {
    pub client: Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

pub async fn connect(target: &Target, password: Option<&str>) -> Result<Connected, ConnectError> {
    let mut config = target.config.clone();
    // As libpq: the step's password, else $PGPASSWORD, else ~/.pgpass.
    let fallback = || std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()).or_else(|| pgpass(&config));
    if let Some(password) = password.map(str::to_string).or_else(fallback) {
        config.password(password);
    }
    let failed = |error: tokio_postgres::Error| ConnectError::Failed {
        target: target.display.clone(),
        message: describe(&error),
    };
    let attempt = async {
        if target.tls_mode == TlsMode::Disable {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(failed)?;
            Ok(Connected {
                client,
                driver: tokio::spawn(async move {
                    let _ = connection.await;
                }),
            })
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(target.tls_mode)?);
            let (client, connection) = config.connect(tls).await.map_err(failed)?;
            Ok(Connected {
                client,
                driver: tokio::spawn(async move {
                    let _ = connection.await;
                }),
            })
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), attempt).await {
        Ok(connected) => connected,
        Err(_) => Err(ConnectError::Timeout { target: target.display.clone(), seconds: CONNECT_TIMEOUT.as_secs() }),
    }
}

/// The password `~/.pgpass` (or `$PGPASSFILE`) holds for this host, port,
/// database and user: `host:port:database:user:password`, `*` matching anything.
fn pgpass(config: &tokio_postgres::Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config.get_user().unwrap_or_default();
    let database = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, [&host, &port, database, user])
}

fn pgpass_lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines().filter(|line| !line.trim_start().starts_with('#')).find_map(|line| {
        let fields = split_pgpass(line);
        let [host, port, database, user, password] = <[String; 5]>::try_from(fields).ok()?;
        let matches =
            [host, port, database, user].iter().zip(wanted).all(|(field, want)| field == "*" || field == want);
        matches.then_some(password)
    })
}

/// Fields split on `:`, with `\:` and `\\` escaped.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

fn tls_config(mode: TlsMode) -> Result<rustls::ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ConnectError::Tls)?;
    let config = if mode == TlsMode::Verify {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(crate::engine::http::system_roots().iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(Unchecked(provider))).with_no_client_auth()
    };
    Ok(config)
}

/// `sslmode=prefer`/`require`: encrypted, the certificate not checked (libpq's meaning).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One line for an error of the driver: the server's message and what to do
/// for the common ones, or the cause of a failed connection.
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        let hint = match code {
            "28P01" => " (wrong password: check the secret variable given in `password`)",
            "28000" if db.message().contains("no encryption") => {
                " (the server requires TLS: add ?sslmode=require to `database`)"
            }
            "3D000" => " (check the database name in `database`)",
            "57014" => "",
            _ => "",
        };
        return format!("{}{hint}", db.message());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if text.contains("password missing") {
        text.push_str(" (the server asks for a password: set `password` from a secret variable)");
    } else if text.contains("UnknownIssuer") {
        text.push_str(" (the server's certificate is not signed by a CA this system trusts: add the CA to the system's, or use sslmode=require to encrypt without checking)");
    } else if text.contains("server does not support TLS") {
        text.push_str(" (use sslmode=prefer or sslmode=disable for a server without TLS)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_as_libpq_matches_them() {
        let text = "# comment\ndb.example:5432:shop:app:first\n*:*:*:app:se\\:cret\n";
        assert_eq!(pgpass_lookup(text, ["db.example", "5432", "shop", "app"]).as_deref(), Some("first"));
        assert_eq!(pgpass_lookup(text, ["other", "6432", "x", "app"]).as_deref(), Some("se:cret"));
        assert_eq!(pgpass_lookup(text, ["other", "6432", "x", "root"]), None);
    }

    #[test]
    fn urls_and_their_sslmode() {
        let target = Target::parse("postgresql://app@db.example:6432/shop?sslmode=verify-full").unwrap();
        assert_eq!(target.tls_mode, TlsMode::Verify);
        assert_eq!(target.display, "postgresql://app@db.example:6432/shop");
        let target = Target::parse("postgres://app@localhost/shop").unwrap();
        assert_eq!(target.tls_mode, TlsMode::Prefer);
        assert_eq!(target.display, "postgresql://app@localhost:5432/shop");
        assert_eq!(Target::parse("postgresql://a@h/d?sslmode=disable").unwrap().tls_mode, TlsMode::Disable);
        assert!(
            Target::parse("postgresql://a@h/d?sslmode=sometimes").unwrap_err().to_string().contains("unknown sslmode")
        );
        let error = Target::parse("postgresql://app:hunter2@h/d").unwrap_err().to_string();
        assert!(error.contains("holds a password") && !error.contains("hunter2"), "{error}");
        assert!(Target::parse("mysql://x@h/d").is_err());
    }
}
