//! `dns-check`: does the DR site's name resolve as it should? The name is
//! asked of one DNS server at a time (the given `nameserver`, or each of
//! the system's in turn until one answers) with `hickory-resolver`, never
//! from a cache or `/etc/hosts`; the whole answer (CNAME chain, addresses,
//! TTLs, the server) is the evidence. It must be a CNAME to `cname`, or
//! resolve to exactly `resolves_to`. With `tls`, drillbook connects to an
//! address of the answer with SNI = the name and checks the certificate
//! there: valid for the name, chained to a trusted CA (rustls / webpki),
//! and valid for at least `min_days` more days.
//!
//! A check that got an answer returns it with its verdict (the evidence is
//! kept whatever the verdict); only a cancellation or an unusable
//! `ca_file` end it without one.

pub mod sandbox;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as ResolveError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use jiff::Timestamp;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::drill::evidence::{DnsAddress, DnsCertificate, DnsCname, DnsResult, Evidence};
use crate::engine::certificate::{self, CertificateInfo};
use crate::engine::render::RenderError;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::duration::format_duration;
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{DnsCheckSpec, DnsExpect, TlsExpect, check_dns_name, parse_nameserver};

/// What the name must resolve to, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Any address.
    Resolves,
    /// A CNAME to this name (lowercase, no final dot), directly or through further CNAMEs.
    Cname(String),
    /// Exactly these addresses, in any order.
    Addresses(Vec<IpAddr>),
}

/// A `dns-check` step with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheckStep {
    /// Lowercase, without a final dot.
    pub name: String,
    pub expect: Expect,
    pub tls: Option<TlsExpect>,
    /// PEM CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// `None`: the system's resolvers, one after the other.
    pub nameserver: Option<SocketAddr>,
    /// For the answer; the TLS check has as long again.
    pub timeout: Duration,
}

/// `Dr.Example.COM.` → `dr.example.com`.
fn normal(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl DnsCheckStep {
    pub fn render(spec: &DnsCheckSpec, context: &TemplateContext, templater: &Templater) -> Result<Self, RenderError> {
        let render = |key: &str, text: &str| templater.render_plain(text, context).map_err(RenderError::at(key));
        let invalid = |key: &'static str| move |message: String| RenderError::Invalid { key, message };
        let name = normal(&render("name", &spec.name.text)?);
        check_dns_name(&name).map_err(invalid("name"))?;
        let expect = match &spec.expect {
            DnsExpect::Resolves => Expect::Resolves,
            DnsExpect::Cname(cname) => {
                let cname = normal(&render("cname", &cname.text)?);
                check_dns_name(&cname).map_err(invalid("cname"))?;
                Expect::Cname(cname)
            }
            DnsExpect::Addresses(addresses) => {
                let mut parsed = Vec::new();
                for address in addresses {
                    let text = render("resolves_to", &address.text)?;
                    let ip = text.trim().parse::<IpAddr>().map_err(|_| RenderError::Invalid {
                        key: "resolves_to",
                        message: format!("`{text}` is not an IP address"),
                    })?;
                    parsed.push(ip);
                }
                Expect::Addresses(parsed)
            }
        };
        let ca_file = match &spec.ca_file {
            Some(t) => Some(render("ca_file", &t.text)?).filter(|p| !p.trim().is_empty()).map(PathBuf::from),
            None => None,
        };
        let nameserver = match &spec.nameserver {
            Some(t) => Some(parse_nameserver(&render("nameserver", &t.text)?).map_err(invalid("nameserver"))?),
            None => None,
        };
        Ok(DnsCheckStep { name, expect, tls: spec.tls, ca_file, nameserver, timeout: spec.timeout })
    }

    /// What the answer must be: `CNAME lb.example.net`, `203.0.113.7`, `any address`.
    pub fn expected(&self) -> String {
        match &self.expect {
            Expect::Resolves => "any address".to_string(),
            Expect::Cname(target) => format!("CNAME {target}"),
            Expect::Addresses(addresses) => join(addresses.iter().map(ToString::to_string)),
        }
    }

    /// The step as journaled: `dr.acme.com: CNAME lb.example.net; TLS on 443, 21+ days left (asking 10.0.0.2:53)`.
    pub fn describe(&self) -> String {
        let tls =
            self.tls.map(|tls| format!("; TLS on port {}, {}+ days left", tls.port, tls.min_days)).unwrap_or_default();
        let server = self.nameserver.map_or_else(|| "the system's resolver".to_string(), |s| s.to_string());
        format!("{}: {}{tls} (asking {server})", self.name, self.expected())
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// How a check that got as far as asking ended: the evidence, and why it
/// failed (`None`: it passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsOutcome {
    pub result: DnsResult,
    pub failure: Option<String>,
}

impl DnsOutcome {
    pub fn evidence(&self) -> Evidence {
        Evidence::Dns(self.result.clone())
    }
}

/// How a check ended without an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("stopped while checking")]
    Cancelled,
    /// Nothing was asked: no DNS server to ask, or an unusable `ca_file`.
    #[error("{0}")]
    Setup(String),
}

async fn say(events: &mpsc::Sender<EngineEvent>, step_id: &str, stream: OutputStream, line: String) {
    let _ = events.send(EngineEvent::Output { step_id: step_id.into(), stream, lines: vec![line].into() }).await;
}

/// Asks, judges the answer, then (with `tls`) checks the certificate.
pub async fn run(
    step: &DnsCheckStep,
    step_id: &str,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
) -> Result<DnsOutcome, DnsError> {
    let servers = match step.nameserver {
        Some(server) => vec![server],
        None => system_servers()?,
    };
    // Loaded before anything is asked: an unusable `ca_file` is a setup error.
    let roots = match step.tls {
        Some(_) => {
            let ca_file = step.ca_file.clone();
            let roots = tokio::task::spawn_blocking(move || crate::engine::http::root_store(ca_file.as_deref()))
                .await
                .map_err(|e| DnsError::Setup(format!("internal error while loading CA certificates: {e}")))?;
            Some(roots.map_err(|e| DnsError::Setup(e.to_string()))?)
        }
        None => None,
    };
    let asking = join(servers.iter().map(ToString::to_string));
    say(
        events,
        step_id,
        OutputStream::Stdout,
        format!("asking {asking} for {} (expecting {})", step.name, step.expected()),
    )
    .await;
    let answer = tokio::select! {
        () = cancel.cancelled() => return Err(DnsError::Cancelled),
        answer = ask_each(step, &servers) => answer,
    };
    for line in answer.lines(step) {
        say(events, step_id, OutputStream::Stdout, line).await;
    }
    let mut result = DnsResult {
        name: step.name.clone(),
        server: answer.server.to_string(),
        response: answer.response.clone(),
        cnames: answer.cnames.clone(),
        addresses: answer.addresses.iter().map(|(ip, ttl)| DnsAddress { address: ip.to_string(), ttl: *ttl }).collect(),
        expected: step.expected(),
        elapsed_ms: answer.elapsed.as_millis() as u64,
        certificate: None,
    };
    if let Some(failure) = judge(step, &answer) {
        say(events, step_id, OutputStream::Stdout, format!("✗ {failure}")).await;
        return Ok(DnsOutcome { result, failure: Some(failure) });
    }
    say(events, step_id, OutputStream::Stdout, format!("✓ {} resolves as expected ({})", step.name, step.expected()))
        .await;
    let (Some(tls), Some((roots, private_ca))) = (step.tls, roots) else {
        return Ok(DnsOutcome { result, failure: None });
    };
    let addresses: Vec<IpAddr> = answer.addresses.iter().map(|(ip, _)| *ip).collect();
    let checked = tokio::select! {
        () = cancel.cancelled() => return Err(DnsError::Cancelled),
        checked = tokio::time::timeout(step.timeout, check_certificate(step, tls, &addresses, roots, private_ca)) => checked,
    };
    let certificate = checked.unwrap_or_else(|_| DnsCertificate {
        problem: Some(format!(
            "no TLS handshake with {} on port {} within {}",
            step.name,
            tls.port,
            format_duration(step.timeout)
        )),
        ..unchecked_certificate(&addresses, tls)
    });
    for line in certificate_lines(&certificate) {
        say(events, step_id, OutputStream::Stdout, line).await;
    }
    let failure = certificate.problem.clone();
    match &failure {
        Some(problem) => say(events, step_id, OutputStream::Stdout, format!("✗ {problem}")).await,
        None => {
            let line =
                format!("✓ the certificate covers {}, is trusted and has {}+ days left", step.name, tls.min_days);
            say(events, step_id, OutputStream::Stdout, line).await;
        }
    }
    result.certificate = Some(Box::new(certificate));
    Ok(DnsOutcome { result, failure })
}

/// The system's DNS servers (`/etc/resolv.conf`), in order.
fn system_servers() -> Result<Vec<SocketAddr>, DnsError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
        DnsError::Setup(format!(
            "cannot read the system's resolver configuration: {e}; give the step a `nameserver` (e.g. \"10.0.0.2:53\")"
        ))
    })?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for server in config.name_servers() {
        let port = server.connections.first().map_or(53, |c| c.port);
        let address = SocketAddr::new(server.ip, port);
        if !servers.contains(&address) {
            servers.push(address);
        }
    }
    if servers.is_empty() {
        return Err(DnsError::Setup(
            "the system has no DNS server configured: give the step a `nameserver` (e.g. \"10.0.0.2:53\")".into(),
        ));
    }
    Ok(servers)
}

/// What one DNS server answered (or that none did).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    /// The server that answered; the last one asked when none did.
    server: SocketAddr,
    /// `NOERROR`, `NXDOMAIN`, … or `no answer`.
    response: String,
    cnames: Vec<DnsCname>,
    addresses: Vec<(IpAddr, u32)>,
    /// The server answered but the answer is not usable (`SERVFAIL`), or none answered.
    problem: Option<Problem>,
    elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    NxDomain,
    NoRecords,
    Code(String),
    NoAnswer(Duration),
    Error(String),
}

impl Answer {
    fn lines(&self, step: &DnsCheckStep) -> Vec<String> {
        let mut lines = vec![match &self.problem {
            Some(Problem::NoAnswer(limit)) => {
                format!("no answer from {} within {}", self.server, format_duration(*limit))
            }
            Some(Problem::Error(error)) => format!("asking {} failed: {error}", self.server),
            _ => format!("answer from {} in {} ms: {}", self.server, self.elapsed.as_millis(), self.response),
        }];
        for cname in &self.cnames {
            lines.push(format!("  {}. {} IN CNAME {}.", cname.name, cname.ttl, cname.target));
        }
        let owner = self.cnames.last().map_or(step.name.as_str(), |c| c.target.as_str());
        for (ip, ttl) in &self.addresses {
            let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
            lines.push(format!("  {owner}. {ttl} IN {kind} {ip}"));
        }
        lines
    }
}

/// Asks each server in turn until one answers (a negative answer is an answer).
async fn ask_each(step: &DnsCheckStep, servers: &[SocketAddr]) -> Answer {
    let mut last = None;
    for server in servers {
        let answer = ask(step, *server).await;
        if !matches!(answer.problem, Some(Problem::NoAnswer(_) | Problem::Error(_))) {
            return answer;
        }
        last = Some(answer);
    }
    last.unwrap_or_else(|| Answer {
        server: SocketAddr::from(([0, 0, 0, 0], 53)),
        response: "no answer".into(),
        cnames: Vec::new(),
        addresses: Vec::new(),
        problem: Some(Problem::Error("no DNS server to ask".into())),
        elapsed: Duration::ZERO,
    })
}

/// A resolver that asks `server` only: no cache worth the name, no hosts file, no search domains.
fn resolver(server: SocketAddr, timeout: Duration) -> Result<TokioResolver, NetError> {
    let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
    for connection in &mut name_server.connections {
        connection.port = server.port();
    }
    let mut options = ResolverOpts::default();
    // Two tries over UDP within the step's limit: one lost datagram is not a verdict.
    options.timeout = (timeout / 2).max(Duration::from_millis(200));
    options.attempts = 2;
    options.use_hosts_file = ResolveHosts::Never;
    options.cache_size = 0;
    options.ndots = 0;
    options.preserve_intermediates = true;
    Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![name_server]), TokioRuntimeProvider::default())
        .with_options(options)
        .build()
}

async fn ask(step: &DnsCheckStep, server: SocketAddr) -> Answer {
    let started = Instant::now();
    let mut answer = Answer {
        server,
        response: "no answer".into(),
        cnames: Vec::new(),
        addresses: Vec::new(),
        problem: None,
        elapsed: Duration::ZERO,
    };
    let resolver = match resolver(server, step.timeout) {
        Ok(resolver) => resolver,
        Err(error) => {
            answer.problem = Some(Problem::Error(format!("cannot set up the resolver: {error}")));
            return answer;
        }
    };
    let fqdn = format!("{}.", step.name);
    let looked_up = tokio::time::timeout(step.timeout, resolver.lookup_ip(fqdn.as_str())).await;
    answer.elapsed = started.elapsed();
    match looked_up {
        Err(_) | Ok(Err(NetError::Timeout)) => {
            answer.problem = Some(Problem::NoAnswer(step.timeout));
        }
        Ok(Ok(lookup)) => {
            let lookup = lookup.as_lookup();
            answer.response = response_name(lookup.message().metadata.response_code);
            for record in lookup.answers() {
                match &record.data {
                    RData::CNAME(target) => answer.cnames.push(DnsCname {
                        name: normal(&record.name.to_ascii()),
                        target: normal(&target.0.to_ascii()),
                        ttl: record.ttl,
                    }),
                    RData::A(a) => answer.addresses.push((IpAddr::V4(a.0), record.ttl)),
                    RData::AAAA(aaaa) => answer.addresses.push((IpAddr::V6(aaaa.0), record.ttl)),
                    _ => {}
                }
            }
            answer.cnames = chain(&step.name, std::mem::take(&mut answer.cnames));
        }
        Ok(Err(NetError::Dns(ResolveError::NoRecordsFound(none)))) => {
            answer.response = response_name(none.response_code);
            answer.problem = Some(match none.response_code {
                ResponseCode::NXDomain => Problem::NxDomain,
                _ => Problem::NoRecords,
            });
        }
        Ok(Err(NetError::Dns(ResolveError::ResponseCode(code)))) => {
            answer.response = response_name(code);
            answer.problem = Some(Problem::Code(answer.response.clone()));
        }
        Ok(Err(error)) => answer.problem = Some(Problem::Error(error.to_string())),
    }
    answer
}

/// The CNAMEs in the order they are followed from `name` (a server may list them in any order).
fn chain(name: &str, mut cnames: Vec<DnsCname>) -> Vec<DnsCname> {
    let mut ordered = Vec::new();
    let mut at = name.to_string();
    while let Some(index) = cnames.iter().position(|c| c.name == at) {
        let next = cnames.remove(index);
        at = next.target.clone();
        ordered.push(next);
    }
    ordered.extend(cnames);
    ordered
}

/// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, … as dig prints them.
fn response_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("{} ({})", other, u16::from(other)),
    }
}

/// Why the answer is not what the step expects, in one line naming both.
fn judge(step: &DnsCheckStep, answer: &Answer) -> Option<String> {
    let name = &step.name;
    let server = answer.server;
    match &answer.problem {
        Some(Problem::NxDomain) => return Some(format!("{name} does not exist (NXDOMAIN from {server})")),
        Some(Problem::NoRecords) => {
            return Some(format!("{name} has no address record ({} from {server}, no answer)", answer.response));
        }
        Some(Problem::Code(code)) => return Some(format!("{server} answered {code} for {name}")),
        Some(Problem::NoAnswer(limit)) => {
            return Some(format!("no answer from {server} for {name} within {}", format_duration(*limit)));
        }
        Some(Problem::Error(error)) => return Some(format!("cannot ask {server} for {name}: {error}")),
        None => {}
    }
    let addresses = join(answer.addresses.iter().map(|(ip, _)| ip.to_string()));
    match &step.expect {
        Expect::Cname(expected) => {
            let Some(first) = answer.cnames.first() else {
                return Some(format!(
                    "{name} is not a CNAME (it has address records: {}), expected a CNAME to {expected}",
                    if addresses.is_empty() { "none".to_string() } else { addresses }
                ));
            };
            if !answer.cnames.iter().any(|c| &c.target == expected) {
                let via = join(answer.cnames.iter().skip(1).map(|c| c.target.clone()));
                let via = if via.is_empty() { String::new() } else { format!(" (then {via})") };
                return Some(format!("{name} is a CNAME to {}{via}, not to {expected}", first.target));
            }
        }
        Expect::Addresses(expected) => {
            let mut got: Vec<IpAddr> = answer.addresses.iter().map(|(ip, _)| *ip).collect();
            let mut wanted = expected.clone();
            got.sort();
            got.dedup();
            wanted.sort();
            wanted.dedup();
            if got != wanted {
                let got = if got.is_empty() { "no address".to_string() } else { addresses };
                return Some(format!(
                    "{name} resolves to {got}, not {}",
                    join(expected.iter().map(ToString::to_string))
                ));
            }
        }
        Expect::Resolves => {}
    }
    if answer.addresses.is_empty() {
        let end = answer.cnames.last().map_or(name.as_str(), |c| c.target.as_str());
        return Some(format!("{end} has no address record (answer from {server})"));
    }
    None
}

/// Lines describing the certificate, for the log.
fn certificate_lines(certificate: &DnsCertificate) -> Vec<String> {
    if certificate.names.is_empty() && certificate.not_after.is_none() {
        return Vec::new();
    }
    let mut lines =
        vec![format!("certificate at {}: {}", certificate.address, join(certificate.names.iter().cloned()))];
    if !certificate.issuer.is_empty() {
        lines.push(format!("  issued by {}", certificate.issuer));
    }
    if let (Some(expires), Some(days)) = (&certificate.not_after, certificate.days_left) {
        lines.push(format!("  expires {expires} ({days} days left; at least {} wanted)", certificate.min_days));
    }
    lines
}

/// A certificate not seen yet: the address it is asked of, nothing known.
fn unchecked_certificate(addresses: &[IpAddr], tls: TlsExpect) -> DnsCertificate {
    DnsCertificate {
        address: addresses.first().map(|ip| SocketAddr::new(*ip, tls.port).to_string()).unwrap_or_default(),
        subject: String::new(),
        names: Vec::new(),
        issuer: String::new(),
        not_after: None,
        days_left: None,
        min_days: tls.min_days,
        trusted: false,
        problem: None,
    }
}

/// Remembers the certificate the server presented, then lets webpki judge
/// it: a refused certificate can still be described.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.clone().into_owned());
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connects to the first address that accepts, shakes hands with SNI = the
/// name, and judges the certificate.
async fn check_certificate(
    step: &DnsCheckStep,
    tls: TlsExpect,
    addresses: &[IpAddr],
    roots: rustls::RootCertStore,
    private_ca: bool,
) -> DnsCertificate {
    let name = &step.name;
    let mut certificate = unchecked_certificate(addresses, tls);
    let fail = |mut certificate: DnsCertificate, problem: String| {
        certificate.problem = Some(problem);
        certificate
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build() {
        Ok(verifier) => verifier,
        Err(error) => {
            return fail(
                certificate,
                format!("cannot check certificates: {error} (no system CA certificates, and no `ca_file`)"),
            );
        }
    };
    let recording = Arc::new(Recording { inner: verifier, seen: Mutex::new(None) });
    let config = match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(builder) => builder.dangerous().with_custom_certificate_verifier(recording.clone()).with_no_client_auth(),
        Err(error) => return fail(certificate, format!("cannot set up TLS: {error}")),
    };
    let Ok(server_name) = ServerName::try_from(name.clone()) else {
        return fail(certificate, format!("`{name}` is not a valid TLS server name"));
    };
    let mut last_error = None;
    let mut tcp = None;
    for ip in addresses {
        let address = SocketAddr::new(*ip, tls.port);
        match TcpStream::connect(address).await {
            Ok(stream) => {
                certificate.address = address.to_string();
                tcp = Some(stream);
                break;
            }
            Err(error) => last_error = Some(format!("cannot connect to {address}: {error}")),
        }
    }
    let Some(tcp) = tcp else {
        return fail(certificate, last_error.unwrap_or_else(|| format!("{name} has no address to connect to")));
    };
    let handshake = TlsConnector::from(Arc::new(config)).connect(server_name, tcp).await;
    let seen = recording.seen.lock().ok().and_then(|seen| seen.clone());
    let info = seen.as_ref().map(|der| certificate::read(der));
    if let Some(Ok(info)) = &info {
        describe_into(&mut certificate, info);
    }
    let stream = match handshake {
        Ok(stream) => stream,
        Err(error) => {
            let info = info.and_then(Result::ok);
            let problem = refused(name, &certificate.address, &error, info.as_ref(), private_ca);
            return fail(certificate, problem);
        }
    };
    drop(stream);
    certificate.trusted = true;
    let info = match info {
        Some(Ok(info)) => info,
        Some(Err(why)) => return fail(certificate, format!("the certificate of {name}: {why}")),
        None => {
            let problem = format!("{} presented no certificate", certificate.address);
            return fail(certificate, problem);
        }
    };
    let days = certificate::days_left(info.not_after, Timestamp::now());
    if days < tls.min_days {
        let problem = format!(
            "the certificate of {name} expires on {} ({days} day{} left): fewer than min_days = {}",
            certificate::day(info.not_after),
            if days == 1 { "" } else { "s" },
            tls.min_days
        );
        return fail(certificate, problem);
    }
    certificate
}

fn describe_into(certificate: &mut DnsCertificate, info: &CertificateInfo) {
    let now = Timestamp::now();
    certificate.subject = info.subject.clone();
    certificate.names = info.names();
    certificate.issuer = info.issuer.clone();
    certificate.not_after = Some(info.not_after.to_string());
    certificate.days_left = Some(certificate::days_left(info.not_after, now));
}

/// Why rustls refused the certificate, in one line naming what it is.
fn refused(
    name: &str,
    address: &str,
    error: &std::io::Error,
    info: Option<&CertificateInfo>,
    private_ca: bool,
) -> String {
    let Some(rustls_error) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return format!("TLS handshake with {address} (SNI {name}) failed: {error}");
    };
    use rustls::CertificateError as E;
    let rustls::Error::InvalidCertificate(reason) = rustls_error else {
        return format!("TLS handshake with {address} (SNI {name}) failed: {rustls_error}");
    };
    let names = info.map(|i| join(i.names().into_iter())).filter(|n| !n.is_empty());
    let issuer = info.map(CertificateInfo::issuer_short);
    let expiry = info.map(|i| certificate::day(i.not_after));
    match reason {
        E::NotValidForName | E::NotValidForNameContext { .. } => format!(
            "the certificate at {address} is for {}, not {name}",
            names.unwrap_or_else(|| "other names".to_string())
        ),
        E::Expired | E::ExpiredContext { .. } => match expiry {
            Some(day) => format!("the certificate of {name} expired on {day}"),
            None => format!("the certificate of {name} has expired"),
        },
        E::NotValidYet | E::NotValidYetContext { .. } => {
            let from = info.map(|i| format!(" (valid from {})", certificate::day(i.not_before))).unwrap_or_default();
            format!("the certificate of {name} is not valid yet{from}: check the clocks")
        }
        E::UnknownIssuer => {
            let issuer = issuer.map(|i| format!(" (issued by {i})")).unwrap_or_default();
            let hint = if private_ca {
                "signed by neither a system CA nor one in `ca_file`"
            } else {
                "not signed by a CA this machine trusts (a private CA needs `ca_file`)"
            };
            format!("the certificate of {name}{issuer} is {hint}")
        }
        other => format!("the certificate of {name} at {address} is refused: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Template;

    fn template(text: &str) -> Template {
        Template { text: text.into(), span: 0..0 }
    }

    fn spec(expect: DnsExpect) -> DnsCheckSpec {
        DnsCheckSpec {
            name: template("DR.{{ project }}.example.com."),
            expect,
            tls: Some(TlsExpect { port: 443, min_days: 21 }),
            ca_file: None,
            nameserver: Some(template("127.0.0.1:5353")),
            timeout: Duration::from_secs(10),
        }
    }

    fn context() -> TemplateContext {
        let mut context = TemplateContext::new();
        context.set_var("project", "acme");
        context
    }

    fn answer(cnames: &[(&str, &str)], addresses: &[&str]) -> Answer {
        Answer {
            server: "127.0.0.1:53".parse().unwrap(),
            response: "NOERROR".into(),
            cnames: cnames
                .iter()
                .map(|(name, target)| DnsCname { name: name.to_string(), target: target.to_string(), ttl: 300 })
                .collect(),
            addresses: addresses.iter().map(|a| (a.parse().unwrap(), 60)).collect(),
            problem: None,
            elapsed: Duration::from_millis(2),
        }
    }

    #[test]
    fn renders_and_describes_the_step() {
        let step =
            DnsCheckStep::render(&spec(DnsExpect::Cname(template("LB.example.net."))), &context(), &Templater::new())
                .unwrap();
        assert_eq!(step.name, "dr.acme.example.com");
        assert_eq!(step.expect, Expect::Cname("lb.example.net".into()));
        assert_eq!(step.nameserver, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(
            step.describe(),
            "dr.acme.example.com: CNAME lb.example.net; TLS on port 443, 21+ days left (asking 127.0.0.1:5353)"
        );
        let bad = spec(DnsExpect::Addresses(vec![template("{{ project }}")]));
        let error = DnsCheckStep::render(&bad, &context(), &Templater::new()).unwrap_err().to_string();
        assert_eq!(error, "`resolves_to`: `acme` is not an IP address");
    }

    #[test]
    fn judges_cnames_and_addresses_naming_both_sides() {
        let mut step =
            DnsCheckStep::render(&spec(DnsExpect::Cname(template("lb.example.net"))), &context(), &Templater::new())
                .unwrap();
        let name = "dr.acme.example.com";
        assert_eq!(judge(&step, &answer(&[(name, "lb.example.net")], &["127.0.0.1"])), None);
        // Through a further CNAME.
        let through = answer(&[(name, "lb.example.net"), ("lb.example.net", "x.elb.example")], &["127.0.0.1"]);
        assert_eq!(judge(&step, &through), None);
        assert_eq!(
            judge(&step, &answer(&[(name, "old-lb.example.net")], &["127.0.0.1"])).unwrap(),
            "dr.acme.example.com is a CNAME to old-lb.example.net, not to lb.example.net"
        );
        assert_eq!(
            judge(&step, &answer(&[], &["192.0.2.1"])).unwrap(),
            "dr.acme.example.com is not a CNAME (it has address records: 192.0.2.1), expected a CNAME to lb.example.net"
        );
        assert_eq!(
            judge(&step, &answer(&[(name, "lb.example.net")], &[])).unwrap(),
            "lb.example.net has no address record (answer from 127.0.0.1:53)"
        );
        step.expect = Expect::Addresses(vec!["203.0.113.7".parse().unwrap(), "203.0.113.8".parse().unwrap()]);
        assert_eq!(judge(&step, &answer(&[], &["203.0.113.8", "203.0.113.7"])), None, "in any order");
        assert_eq!(
            judge(&step, &answer(&[], &["203.0.113.7"])).unwrap(),
            "dr.acme.example.com resolves to 203.0.113.7, not 203.0.113.7, 203.0.113.8"
        );
        let mut nx = answer(&[], &[]);
        nx.problem = Some(Problem::NxDomain);
        assert_eq!(judge(&step, &nx).unwrap(), "dr.acme.example.com does not exist (NXDOMAIN from 127.0.0.1:53)");
        nx.problem = Some(Problem::NoAnswer(Duration::from_secs(2)));
        assert_eq!(judge(&step, &nx).unwrap(), "no answer from 127.0.0.1:53 for dr.acme.example.com within 2s");
    }

    #[test]
    fn the_cname_chain_is_put_in_order() {
        let links = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(n, t)| DnsCname { name: n.to_string(), target: t.to_string(), ttl: 1 }).collect()
        };
        let ordered = chain("a", links(&[("b", "c"), ("a", "b")]));
        assert_eq!(ordered.iter().map(|c| c.target.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    }
}
