//! A validated runbook: what the engine runs. Every template has been
//! checked for syntax and for names that exist where it is used.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

pub use super::model::StepKind;

/// A string that may contain `{{ templates }}`, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Runbook {
    /// Where the runbook was read from (as given by the user).
    pub path: PathBuf,
    pub text: String,
    /// Hex SHA-256 of `text`: identifies the exact runbook a drill ran.
    pub sha256: String,
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub rto_target: Option<Duration>,
    pub rpo_target: Option<Duration>,
    pub protected: Vec<Template>,
    /// The project (a template: usually `{{ project }}`).
    pub project: Option<Template>,
    /// `cadence` as written (checked), and its period.
    pub cadence: Option<(String, Duration)>,
    /// In file order; defaults may refer to earlier or later variables.
    pub vars: Vec<VarDef>,
    pub steps: Vec<Step>,
    /// Files this runbook was resolved from (a project file and its
    /// pattern), as (file name, text): a drill keeps them beside its
    /// snapshot of `text`. Empty for a runbook read as it is.
    pub sources: Vec<(String, String)>,
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.id == id)
    }

    pub fn var(&self, name: &str) -> Option<&VarDef> {
        self.vars.iter().find(|var| var.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct VarDef {
    pub name: String,
    pub default: Option<Template>,
    pub prompt: Option<String>,
    pub help: Option<String>,
    pub secret: bool,
    pub env: Option<String>,
    pub choices: Vec<String>,
}

impl VarDef {
    /// The environment variable a secret is handed to commands in.
    pub fn secret_env_name(&self) -> String {
        self.env.clone().unwrap_or_else(|| format!("DRILLBOOK_SECRET_{}", self.name.to_ascii_uppercase()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    No,
    /// Ask yes/no.
    YesNo,
    /// The operator types the target (namespace, or the step id).
    Typed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Stop,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub title: String,
    pub help: Option<String>,
    pub kind: StepKind,
    pub when: Option<Template>,
    pub optional: bool,
    pub on_failure: OnFailure,
    pub always: bool,
    pub confirm: Confirm,
    pub url: Option<Template>,
    /// Name this step's result is captured under, if any.
    pub capture: Option<String>,
    /// Captures of earlier steps this step's templates use (`{{ backup }}`):
    /// a restore is the step that uses the backup.
    pub uses: Vec<String>,
    pub action: Action,
    /// 1-based line of the `[[step]]` in the runbook.
    pub line: usize,
    /// The step's table as written, to tell whether it changed since a drill started.
    pub source: String,
}

impl Step {
    /// The text of checklist item `index`, if this is a checklist that has it.
    pub fn checklist_item(&self, index: usize) -> Option<&str> {
        match &self.action {
            Action::Checklist(list) => list.items.get(index).map(|item| item.text.as_str()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    Manual,
    Checklist(ChecklistSpec),
    Command(CommandSpec),
    S3Backup(S3BackupSpec),
    S3Check(S3CheckSpec),
    K8sImageTag(K8sImageTagSpec),
    K8sWait(K8sWaitSpec),
    K8sScale(K8sScaleSpec),
    K8sIsolation(K8sIsolationSpec),
    HttpCheck(HttpCheckSpec),
    SqlCheck(SqlCheckSpec),
    DnsCheck(DnsCheckSpec),
    BrowserCheck(BrowserCheckSpec),
}

#[derive(Debug, Clone)]
pub struct ChecklistSpec {
    pub items: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistItem {
    pub text: String,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureStream {
    #[default]
    Stdout,
    Stderr,
    Both,
}

#[derive(Debug, Clone)]
pub struct RegexCapture {
    pub name: String,
    pub regex: regex::Regex,
    pub stream: CaptureStream,
}

#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub run: Template,
    pub cwd: Option<Template>,
    pub env: BTreeMap<String, Template>,
    pub timeout: Option<Duration>,
    pub expect_exit: Vec<i32>,
    pub tty: bool,
    /// What training mode runs instead of `run`.
    pub simulate: Option<Template>,
    pub capture: Option<RegexCapture>,
}

/// Which backup an `s3-backup` step restores: its restore-target policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupSelect {
    /// The newest.
    Latest,
    /// The operator picks.
    Choose,
    /// One modified within `window` before the drill, picked reproducibly
    /// from the drill id, so older backups get restored too.
    Random { window: Duration },
    /// The newest modified at or before a point in time (templates allowed).
    Before(Template),
}

#[derive(Debug, Clone)]
pub struct S3BackupSpec {
    pub bucket: Template,
    pub prefix: Option<Template>,
    pub pattern: Option<Template>,
    pub select: BackupSelect,
    pub versions: bool,
    pub profile: Option<Template>,
    pub region: Option<Template>,
    pub endpoint: Option<Template>,
    pub parts: Option<u32>,
    pub timeout: Option<Duration>,
}

/// What a fingerprint does when a table shrank beyond `max_shrink`, vanished or changed its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShrink {
    Fail,
    Warn,
}

#[derive(Debug, Clone)]
pub struct SqlCheckSpec {
    /// The connection URL (no password: that is `password`).
    pub database: Template,
    /// May hold a secret: never journaled or logged.
    pub password: Option<Template>,
    pub fingerprint: bool,
    pub exact: bool,
    /// The fraction of rows a table may lose against the previous drill (0.2 for `20%`).
    pub max_shrink: Option<f64>,
    pub on_shrink: OnShrink,
    /// Each statement's limit (default 60 s).
    pub timeout: Duration,
    pub checks: Vec<SqlQuery>,
}

/// One `[[step.check]]`.
#[derive(Debug, Clone)]
pub struct SqlQuery {
    pub name: String,
    pub query: String,
    pub expect: Option<super::expect::Expectation>,
    pub capture: Option<String>,
    pub freshness: bool,
}

#[derive(Debug, Clone)]
pub struct BrowserCheckSpec {
    /// The base URL (`goto` paths are relative to it); the step's `url`.
    pub url: Template,
    /// Width and height of the page, in CSS pixels.
    pub viewport: (u32, u32),
    /// Each action's limit unless it gives its own.
    pub timeout: Duration,
    /// The browser executable; `None`: found on PATH.
    pub browser: Option<Template>,
    pub actions: Vec<BrowserAction>,
}

/// One `[[step.action]]`.
#[derive(Debug, Clone)]
pub struct BrowserAction {
    pub verb: BrowserVerb,
    /// Its own limit (else the step's).
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum BrowserVerb {
    Goto {
        path: Template,
        expect_status: Option<u16>,
    },
    /// Selector → value, in the runbook's (alphabetical) order. The values may hold secrets.
    Fill(Vec<(String, Template)>),
    Click(Template),
    WaitFor(Template),
    ExpectText(Template),
    Upload {
        selector: Template,
        file: Template,
    },
    /// A literal file name (checked: no template, so no secret can name a file).
    Screenshot(String),
}

impl BrowserVerb {
    /// The verb as the runbook writes it.
    pub fn name(&self) -> &'static str {
        match self {
            BrowserVerb::Goto { .. } => "goto",
            BrowserVerb::Fill(_) => "fill",
            BrowserVerb::Click(_) => "click",
            BrowserVerb::WaitFor(_) => "wait_for",
            BrowserVerb::ExpectText(_) => "expect_text",
            BrowserVerb::Upload { .. } => "upload",
            BrowserVerb::Screenshot(_) => "screenshot",
        }
    }

    /// What it acts on, unrendered (selectors, a path): never a fill's values.
    pub fn target_template(&self) -> String {
        match self {
            BrowserVerb::Goto { path, .. } => path.text.clone(),
            BrowserVerb::Fill(fields) => {
                fields.iter().map(|(selector, _)| selector.as_str()).collect::<Vec<_>>().join(", ")
            }
            BrowserVerb::Click(t) | BrowserVerb::WaitFor(t) | BrowserVerb::ExpectText(t) => t.text.clone(),
            BrowserVerb::Upload { selector, file } => format!("{} ← {}", selector.text, file.text),
            BrowserVerb::Screenshot(name) => name.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct S3CheckSpec {
    pub bucket: Template,
    /// Where the permission probe writes (`PREFIX.drillbook-probe/DRILL-ID`) and what `list` lists.
    pub prefix: Option<Template>,
    /// Bucket flags (`versioning = true`).
    pub expect: BTreeMap<String, bool>,
    /// Bucket values to equal (`object_ownership = "BucketOwnerEnforced"`).
    pub expect_values: BTreeMap<String, String>,
    /// The permissions an identity must and must not have, tried with real requests.
    pub access: Option<Box<AccessSpec>>,
    /// The bucket this one must be a complete replica of.
    pub replica: Option<Box<ReplicaSpec>>,
    pub same_as: Option<Template>,
    pub other_region_than: Option<Template>,
    pub replicated_from: Option<Template>,
    pub profile: Option<Template>,
    pub region: Option<Template>,
    pub endpoint: Option<Template>,
}

/// Whose permissions an `s3-check` probes.
#[derive(Debug, Clone)]
pub enum ProbeIdentity {
    /// Access keys, normally from secret variables: they reach the S3 client only.
    Keys { access_key_id: Template, secret_access_key: Template },
    /// A profile of the AWS config files.
    Profile(Template),
}

/// One S3 permission an identity is probed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    List,
    Put,
    Get,
    Delete,
    DeleteVersion,
}

impl Permission {
    pub const ALL: [Permission; 5] =
        [Permission::List, Permission::Put, Permission::Get, Permission::Delete, Permission::DeleteVersion];

    pub fn name(self) -> &'static str {
        match self {
            Permission::List => "list",
            Permission::Put => "put",
            Permission::Get => "get",
            Permission::Delete => "delete",
            Permission::DeleteVersion => "delete-version",
        }
    }

    pub fn parse(text: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == text)
    }

    /// The S3 operation that proves it.
    pub fn operation(self) -> &'static str {
        match self {
            Permission::List => "ListObjectsV2",
            Permission::Put => "PutObject",
            Permission::Get => "GetObject",
            Permission::Delete => "DeleteObject",
            Permission::DeleteVersion => "DeleteObject with a versionId",
        }
    }
}

/// `as` + `can` + `cannot` of an `s3-check`.
#[derive(Debug, Clone)]
pub struct AccessSpec {
    pub identity: ProbeIdentity,
    pub can: Vec<Permission>,
    pub cannot: Vec<Permission>,
}

/// `replica_of` of an `s3-check`.
#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    pub source: Template,
    pub max_missing: u64,
    /// Objects newer than this are in flight, not missing.
    pub max_lag: Option<Duration>,
    /// Objects HEADed for `x-amz-replication-status`.
    pub sample: u32,
}

/// Cluster coordinates shared by the Kubernetes steps.
#[derive(Debug, Clone)]
pub struct K8sTarget {
    pub context: Option<Template>,
    pub namespace: Template,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSelect {
    Current,
    Choose,
}

#[derive(Debug, Clone)]
pub struct K8sImageTagSpec {
    pub target: K8sTarget,
    pub deployments: Vec<String>,
    pub select: TagSelect,
}

#[derive(Debug, Clone)]
pub struct K8sWaitSpec {
    pub target: K8sTarget,
    pub deployments: Vec<String>,
    pub expect_tag: Option<Template>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct K8sScaleSpec {
    pub target: K8sTarget,
    /// Empty with `all`: every Deployment in the namespace.
    pub deployments: Vec<String>,
    pub all: bool,
    pub statefulsets: bool,
    pub replicas: u32,
    pub wait: bool,
    pub timeout: Option<Duration>,
}

/// What a `k8s-isolation` step does with a kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforce {
    /// Fails the step (`require`, `suspended`).
    Require,
    /// Listed, the step passes.
    Warn,
    /// Not checked.
    Ignore,
}

impl Enforce {
    /// As the runbook spells it; `strict` is the key's word for `Require`.
    pub fn name(self, strict: &'static str) -> &'static str {
        match self {
            Enforce::Require => strict,
            Enforce::Warn => "warn",
            Enforce::Ignore => "ignore",
        }
    }
}

#[derive(Debug, Clone)]
pub struct K8sIsolationSpec {
    /// DR.
    pub target: K8sTarget,
    pub production: K8sTarget,
    /// Empty: the defaults (`engine::k8s::isolation::DEFAULT_KEYS`).
    pub keys: Vec<String>,
    pub allow: Vec<String>,
    pub network_policy: Enforce,
    pub cronjobs: Enforce,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct HttpCheckSpec {
    pub url: Template,
    pub method: String,
    /// The expected status (`expect_status`, or the older `status`).
    pub status: u16,
    pub contains: Option<Template>,
    /// Attempts after the first.
    pub retries: u32,
    pub interval: Duration,
    /// Overall limit; `None`: the attempts alone bound the step.
    pub timeout: Option<Duration>,
    /// PEM CA certificates trusted besides the system's.
    pub ca_file: Option<Template>,
}

/// What a `dns-check` expects the name to resolve to.
#[derive(Debug, Clone)]
pub enum DnsExpect {
    /// Any address will do.
    Resolves,
    /// A CNAME to this host name.
    Cname(Template),
    /// Exactly these addresses.
    Addresses(Vec<Template>),
}

/// `tls = { port, min_days }`: the certificate served for the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsExpect {
    pub port: u16,
    pub min_days: i64,
}

#[derive(Debug, Clone)]
pub struct DnsCheckSpec {
    pub name: Template,
    pub expect: DnsExpect,
    pub tls: Option<TlsExpect>,
    /// PEM CA certificates trusted besides the system's.
    pub ca_file: Option<Template>,
    /// `IP` or `IP:port`; `None`: the system's resolver.
    pub nameserver: Option<Template>,
    /// For the answer (and, apart, for the TLS handshake).
    pub timeout: Duration,
}

/// Parses a `nameserver`: an IP address with an optional port (53 by default).
pub fn parse_nameserver(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<std::net::SocketAddr>() {
        return Ok(address);
    }
    if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, 53));
    }
    Err(format!("`{text}` is not a DNS server address: give an IP address with an optional port, e.g. \"10.0.0.2:53\""))
}

/// Checks a DNS name: labels of letters, digits, `-` and `_`, each 1 to 63
/// characters, 253 in all; a final dot is allowed.
pub fn check_dns_name(text: &str) -> Result<(), String> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    if name.len() > 253 {
        return Err(format!("`{text}` is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("`{text}` has an empty label (two dots in a row?)"));
        }
        if label.len() > 63 {
            return Err(format!("`{text}`: the label `{label}` is longer than 63 characters"));
        }
        if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("`{text}` is not a DNS name: `{bad}` is not allowed (letters, digits, `-`)"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("`{text}`: the label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

/// An `http-check` URL taken apart: what the connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub https: bool,
    /// Without brackets for an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written: the `Host` header.
    pub authority: String,
    /// `/path?query` (`/` when empty): the request target.
    pub path_and_query: String,
}

/// Why a text is not a URL an `http-check` can use.
#[derive(Debug, thiserror::Error)]
pub enum HttpUrlError {
    #[error("`{0}` is not an absolute URL: start it with https:// or http://")]
    NotAbsolute(String),
    #[error("`{text}` is not a valid URL ({source})")]
    Invalid {
        text: String,
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    #[error("`{text}`: only http and https URLs can be checked, not `{scheme}`")]
    Scheme { text: String, scheme: String },
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` holds credentials: they would be written to the journal; put them nowhere in a runbook")]
    Credentials(String),
}

/// Parses an `http-check` URL: absolute, `http` or `https`, with a host and
/// no credentials (they would be journaled with the URL).
pub fn parse_http_url(text: &str) -> Result<HttpUrl, HttpUrlError> {
    if !text.contains("://") && !text.trim().is_empty() {
        return Err(HttpUrlError::NotAbsolute(text.to_string()));
    }
    let uri: hyper::Uri =
        text.trim().parse().map_err(|source| HttpUrlError::Invalid { text: text.to_string(), source })?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(other) => return Err(HttpUrlError::Scheme { text: text.to_string(), scheme: other.to_string() }),
        None => return Err(HttpUrlError::NotAbsolute(text.to_string())),
    };
    let authority = uri.authority().ok_or_else(|| HttpUrlError::NoHost(text.to_string()))?;
    if authority.as_str().contains('@') {
        return Err(HttpUrlError::Credentials(text.to_string()));
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() {
        return Err(HttpUrlError::NoHost(text.to_string()));
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let path_and_query = if path_and_query.is_empty() { "/" } else { path_and_query };
    Ok(HttpUrl {
        https,
        host,
        port,
        authority: authority.as_str().to_string(),
        path_and_query: path_and_query.to_string(),
    })
}

/// Fields of the object a typed step captures, and which one a bare
/// `{{ name }}` renders. `None`: the step captures nothing typed.
pub fn capture_fields(kind: StepKind) -> Option<&'static [&'static str]> {
    match kind {
        StepKind::S3Backup => {
            Some(&["key", "version_id", "path", "size", "last_modified", "age", "sha256", "bucket", "value"])
        }
        StepKind::K8sImageTag => {
            Some(&["tag", "image", "repository", "digest", "deployments", "namespace", "context", "value"])
        }
        StepKind::HttpCheck => {
            Some(&["status", "latency_ms", "attempts", "cert_expires", "cert_days_left", "url", "value"])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_taken_apart() {
        let url = parse_http_url("https://dr.acme.example.com/healthz?full=1").unwrap();
        assert_eq!(
            url,
            HttpUrl {
                https: true,
                host: "dr.acme.example.com".into(),
                port: 443,
                authority: "dr.acme.example.com".into(),
                path_and_query: "/healthz?full=1".into(),
            }
        );
        let plain = parse_http_url("http://127.0.0.1:8080").unwrap();
        assert_eq!((plain.https, plain.port, plain.path_and_query.as_str()), (false, 8080, "/"));
        let v6 = parse_http_url("http://[::1]:9000/up").unwrap();
        assert_eq!((v6.host.as_str(), v6.authority.as_str()), ("::1", "[::1]:9000"));
    }

    #[test]
    fn what_cannot_be_checked_is_refused_with_a_reason() {
        for (url, reason) in [
            ("dr.example.com/healthz", "not an absolute URL"),
            ("ftp://dr.example.com/", "only http and https"),
            ("https://user:secret@dr.example.com/", "credentials"),
            ("https://dr example.com/", "not a valid URL"),
            ("", "not a valid URL"),
        ] {
            let error = parse_http_url(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url:?}: {error}");
        }
    }
}
