//! What a step saw or decided, journaled as typed evidence: the backup
//! object it chose, the tag production runs, the replicas a scale changed,
//! what DR ran when a wait succeeded, how a URL answered. A resumed step
//! reads its earlier choice from here; the report renders each kind.
//!
//! New journals tag each item with its `kind`. Journals written before the
//! evidence was typed carry the same fields without a tag: they are
//! recognised by their fields, so an old drill replays and reports as it did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One item of evidence, as journaled: its fields and its `kind`, keys in
/// alphabetical order as journals always wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The backup object an `s3-backup` step chose, before downloading it.
    Backup(BackupChoice),
    /// The tag a `k8s-image-tag` step chose (what production runs).
    Tag(TagChoice),
    /// What a `k8s-scale` step changes, journaled before it changes it.
    Scale(ScalePlan),
    /// What DR ran when a `k8s-wait` step succeeded.
    Wait(WaitResult),
    /// How the URL of an `http-check` step answered.
    Http(HttpResult),
    /// What the queries of a `sql-check` answered, and the database's fingerprint.
    Sql(SqlResult),
    /// What an `s3-check` found: the bucket's settings, an identity's permissions, the replica.
    Bucket(BucketResult),
    /// The whole DNS answer of a `dns-check`, and the certificate served for the name.
    Dns(DnsResult),
    /// What the actions of a `browser-check` did, each with where the page was.
    Browser(BrowserResult),
    /// What a `k8s-isolation` check compared between DR and production, and what it found.
    Isolation(Box<IsolationResult>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupChoice {
    pub key: String,
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub size: u64,
    /// RFC 3339.
    #[serde(default)]
    pub last_modified: String,
    #[serde(default)]
    pub etag: Option<String>,
    /// The restore-target policy (`latest`, `choose`, `random within 30d`, `before …`);
    /// journals from before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Why this object: what the policy saw and how it picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagChoice {
    pub tag: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub context: String,
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub namespace: String,
}

/// A workload a scale changes, with its replicas before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub kind: String,
    pub name: String,
    pub replicas: u32,
}

/// What a scale does: shown, confirmed and journaled before it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalePlan {
    pub context: String,
    #[serde(default)]
    pub server: String,
    pub namespace: String,
    pub to: u32,
    pub workloads: Vec<Planned>,
}

impl ScalePlan {
    /// Lines for the confirmation and the log: every workload, so the
    /// operator confirms knowing all of them.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!("context:   {}", self.context),
            format!("namespace: {}", self.namespace),
            format!("scale to {} replica(s):", self.to),
        ];
        lines.extend(self.workloads.iter().map(|w| format!("  {}/{}: {} → {}", w.kind, w.name, w.replicas, self.to)));
        lines
    }

    /// On a retry or resume: act on what there is now, but report the
    /// replicas from before the first attempt for the workloads it knew.
    pub fn keep_earlier_counts(&mut self, earlier: &ScalePlan) {
        if earlier.context != self.context || earlier.namespace != self.namespace {
            return;
        }
        for workload in &mut self.workloads {
            if let Some(before) = earlier.workloads.iter().find(|w| w.kind == workload.kind && w.name == workload.name)
            {
                workload.replicas = before.replicas;
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitResult {
    #[serde(default)]
    pub context: String,
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub expect_tag: Option<String>,
    /// Deployment → the tag (or digest) its pods ran.
    pub running: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResult {
    pub url: String,
    pub status: u16,
    /// Of the successful attempt: connect, TLS, request and body.
    #[serde(default)]
    pub latency_ms: u64,
    /// Attempts made, the successful one included.
    #[serde(default)]
    pub attempts: u32,
    /// The server certificate's notAfter (RFC 3339, UTC), for HTTPS.
    #[serde(default)]
    pub cert_expires: Option<String>,
    #[serde(default)]
    pub cert_days_left: Option<i64>,
}

/// What an `s3-check` step found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketResult {
    pub bucket: String,
    /// The expected-vs-actual table of the bucket's settings.
    #[serde(default)]
    pub rows: Vec<CheckRow>,
    /// Each permission tried as the identity, in the order tried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeResult>,
    /// Probe objects (or versions of them) the step could not remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes_left: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<Box<ReplicaResult>>,
}

/// One line of an `s3-check`'s expected-vs-actual table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    pub property: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
}

/// One permission tried with a real request as the probed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// `list`, `put`, `get`, `delete`, `delete-version`.
    pub permission: String,
    /// `key …WXYZ` (the access key id's last 4 characters) or `profile NAME`.
    pub identity: String,
    /// The request, e.g. `DeleteObject s3://bucket/prefix/.drillbook-probe/ID`.
    pub request: String,
    /// `allowed` (`can`) or `denied` (`cannot`).
    pub expected: String,
    /// `allowed`, or `denied (AccessDenied)` with S3's error code.
    pub outcome: String,
    pub ok: bool,
    /// What a mismatch means, in an operator's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
}

/// What a `k8s-isolation` step compared and found. It holds no value of any
/// variable: findings name where a value came from, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationResult {
    pub context: String,
    pub server: String,
    pub namespace: String,
    pub production_context: String,
    pub production_namespace: String,
    /// Every finding, failures and warnings.
    pub findings: Vec<IsolationFinding>,
    pub compared: IsolationCompared,
}

/// One way DR could reach production.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationFinding {
    /// `configuration`, `network`, `ingress`, `schedule`.
    pub area: String,
    /// `fail` or `warn`.
    pub severity: String,
    /// What in DR: `deployment/web container app: DATABASE_URL`.
    pub subject: String,
    /// What is wrong, naming where the value came from and what production uses it.
    pub finding: String,
    /// What to do about it.
    pub fix: String,
}

/// What was compared, so a clean result shows the check was not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationCompared {
    /// The key patterns compared, and those allowed to be shared.
    pub keys: Vec<String>,
    pub allow: Vec<String>,
    /// DR workloads (`deployment/web`), containers, and variables matching `keys`.
    pub workloads: Vec<String>,
    pub containers: u32,
    pub variables: u32,
    /// Production's workloads and variables matching `keys`.
    pub production_workloads: u32,
    pub production_variables: u32,
    /// DR's NetworkPolicies (`name: selector`), and the `network_policy` rule.
    pub policies: Vec<String>,
    pub network_policy: String,
    /// Hosts DR's Ingresses claim, against production's count.
    pub hosts: Vec<String>,
    pub production_hosts: u32,
    /// DR's CronJobs (`name (suspended)`), and the `cronjobs` rule.
    pub cronjobs: Vec<String>,
    pub cronjobs_rule: String,
}

impl IsolationResult {
    /// Findings that fail the step.
    pub fn failures(&self) -> impl Iterator<Item = &IsolationFinding> {
        self.findings.iter().filter(|f| f.severity == "fail")
    }

    /// What was compared and found, in lines an operator reads: the step
    /// log, the TUI and every report show these.
    pub fn lines(&self) -> Vec<String> {
        let c = &self.compared;
        let list = |items: &[String]| if items.is_empty() { "none".to_string() } else { items.join(", ") };
        let mut lines = vec![
            format!(
                "DR `{}` ({}) against production `{}` ({})",
                self.namespace, self.context, self.production_namespace, self.production_context
            ),
            format!(
                "configuration: {} variable(s) matching {} in {} container(s) of {} DR workload(s) ({}), against {} \
                 production variable(s) in {} workload(s); shared on purpose: {}",
                c.variables,
                c.keys.join(" "),
                c.containers,
                c.workloads.len(),
                list(&c.workloads),
                c.production_variables,
                c.production_workloads,
                list(&c.allow),
            ),
            format!("network policies ({}): {}", c.network_policy, list(&c.policies)),
            format!("ingress hosts: {} (production has {})", list(&c.hosts), c.production_hosts),
            format!("cronjobs ({}): {}", c.cronjobs_rule, list(&c.cronjobs)),
        ];
        if self.findings.is_empty() {
            lines.push("no finding: nothing in DR points at production".into());
        }
        for finding in &self.findings {
            let mark = if finding.severity == "fail" { "FAIL" } else { "WARN" };
            lines.push(format!("{mark} {}: {}: {}", finding.area, finding.subject, finding.finding));
            lines.push(format!("     fix: {}", finding.fix));
        }
        lines
    }
}

/// How complete a replica is, object by object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaResult {
    pub source: String,
    pub replica: String,
    pub source_objects: u64,
    pub source_bytes: u64,
    pub replica_objects: u64,
    pub replica_bytes: u64,
    /// In the source, not in the replica, older than `max_lag`.
    pub missing: u64,
    /// In the source, not in the replica, newer than `max_lag`: still replicating.
    #[serde(default)]
    pub in_flight: u64,
    /// In both with another size or ETag.
    pub differ: u64,
    /// Only in the replica.
    pub extra: u64,
    #[serde(default)]
    pub missing_examples: Vec<String>,
    #[serde(default)]
    pub differ_examples: Vec<String>,
    #[serde(default)]
    pub extra_examples: Vec<String>,
    /// The age of the oldest missing object, in seconds: the replication lag.
    #[serde(default)]
    pub lag_seconds: Option<u64>,
    /// Objects HEADed for `x-amz-replication-status`.
    #[serde(default)]
    pub sampled: u32,
    /// Sampled keys whose replication status is FAILED.
    #[serde(default)]
    pub failed: Vec<String>,
    pub max_missing: u64,
    #[serde(default)]
    pub max_lag: Option<String>,
}

/// What a `dns-check` step was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsResult {
    /// The name asked for.
    pub name: String,
    /// The DNS server that answered (or was asked, when none answered): `10.0.0.2:53`.
    pub server: String,
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, … or `no answer`.
    pub response: String,
    /// The CNAME chain from the name, in order.
    #[serde(default)]
    pub cnames: Vec<DnsCname>,
    /// The addresses the name resolved to.
    #[serde(default)]
    pub addresses: Vec<DnsAddress>,
    /// What was expected: `CNAME lb.example.net`, `203.0.113.7`, `any address`.
    pub expected: String,
    #[serde(default)]
    pub elapsed_ms: u64,
    /// The certificate served for the name (with `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Box<DnsCertificate>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCname {
    pub name: String,
    pub target: String,
    pub ttl: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsAddress {
    pub address: String,
    pub ttl: u32,
}

/// The certificate a `dns-check` was served at the resolved address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCertificate {
    /// `203.0.113.7:443`, asked with SNI = the name.
    pub address: String,
    /// The subject as a distinguished name.
    #[serde(default)]
    pub subject: String,
    /// Common name and subject alternative names.
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub issuer: String,
    /// notAfter, RFC 3339 UTC.
    #[serde(default)]
    pub not_after: Option<String>,
    #[serde(default)]
    pub days_left: Option<i64>,
    pub min_days: i64,
    /// Valid for the name and chained to a trusted CA (rustls/webpki).
    pub trusted: bool,
    /// Why the certificate is not good enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What a `sql-check` step found in the restored database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlResult {
    /// The connection URL as the runbook gave it (never a password).
    pub database: String,
    /// The server's `SELECT version()`.
    #[serde(default)]
    pub server: String,
    pub checks: Vec<SqlAnswer>,
    /// The newest `freshness` answer (RFC 3339, UTC): the newest data restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<FingerprintComparison>,
}

/// One query, what it answered and whether that was what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlAnswer {
    pub name: String,
    pub query: String,
    /// The first column of the first row, as text (`None`: no row, or NULL).
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(default)]
    pub freshness: bool,
    pub passed: bool,
    /// Why it did not pass (or did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(default)]
    pub elapsed_ms: u64,
}

/// What a `browser-check` step did: journaled when the browser is up and
/// again after each action, so the report (and a live view) has every
/// action that ran, even when a later one failed or drillbook died.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserResult {
    /// The base URL the actions ran against (the sandbox site's, in training).
    pub url: String,
    /// The browser's product and version (`Chrome/156.0.8078.129`).
    #[serde(default)]
    pub browser: String,
    /// The actions ran against drillbook's training sandbox site, not the runbook's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
    /// The attempt of the step this is the evidence of.
    #[serde(default)]
    pub attempt: u32,
    /// The actions that ran, in order (the failing one last).
    pub actions: Vec<BrowserActionResult>,
}

/// One action, how long it took and where the page was after it. Never a
/// value typed into a field: `target` is the selectors, and every text is
/// redacted of secrets before it is journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserActionResult {
    /// 1-based, as `drillbook check` counts them.
    pub index: usize,
    /// `goto`, `fill`, `click`, `wait_for`, `expect_text`, `upload`, `screenshot`.
    pub verb: String,
    /// The path, selector(s), text or screenshot name it acted on.
    pub target: String,
    /// The page's URL after it.
    #[serde(default)]
    pub url: String,
    /// The HTTP status of the page's document, where the browser knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// A screenshot it took (or of the failing page), relative to the drill directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<String>,
}

impl BrowserActionResult {
    /// One line for the log, the plain output and the reports.
    pub fn line(&self) -> String {
        let status = self.status.map(|s| format!(" {s}")).unwrap_or_default();
        let mark = if self.ok { "ok" } else { "FAILED" };
        let mut line = format!(
            "{mark} {}. {} {} ({} ms){status} {}",
            self.index, self.verb, self.target, self.duration_ms, self.url
        );
        if let Some(shot) = &self.screenshot {
            line.push_str(&format!(" → {shot}"));
        }
        if let Some(problem) = &self.problem {
            line.push_str(&format!(": {problem}"));
        }
        line.trim_end().to_string()
    }
}

/// Every table's row count and columns, and one hash of the whole schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// SHA-256 of every table's columns and types (from `information_schema`).
    pub schema_hash: String,
    /// `schema.table` → its rows and columns.
    pub tables: BTreeMap<String, TableFingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFingerprint {
    pub rows: i64,
    /// `count(*)`; otherwise the planner's estimate after `ANALYZE`.
    pub exact: bool,
    /// `name type`, in column order.
    pub columns: Vec<String>,
}

/// This drill's fingerprint against the previous completed drill of the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintComparison {
    /// The drill compared with (`None`: there was none, the first drill has no baseline).
    pub baseline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_started: Option<String>,
    pub schema_changed: bool,
    /// Tables whose rows or columns changed, or that appeared or vanished.
    pub changes: Vec<TableChange>,
    /// What fails the step (or is warned about, with `on_shrink = "warn"`).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChange {
    pub table: String,
    pub before: Option<i64>,
    pub now: Option<i64>,
    /// `+12`, `-30 (-25.0%)`, `new table`, `vanished`, `columns changed: …`.
    pub change: String,
}

impl Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut value = self.untagged();
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert("kind".into(), self.kind().into());
        }
        value.serialize(s)
    }
}

impl Evidence {
    /// The name of its kind, as journaled.
    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::Backup(_) => "backup",
            Evidence::Tag(_) => "tag",
            Evidence::Scale(_) => "scale",
            Evidence::Wait(_) => "wait",
            Evidence::Http(_) => "http",
            Evidence::Sql(_) => "sql",
            Evidence::Bucket(_) => "bucket",
            Evidence::Dns(_) => "dns",
            Evidence::Browser(_) => "browser",
            Evidence::Isolation(_) => "isolation",
        }
    }

    /// The cluster a Kubernetes step acted on: (context, namespace, server).
    pub fn cluster(&self) -> Option<(&str, &str, &str)> {
        match self {
            Evidence::Tag(t) => Some((&t.context, &t.namespace, &t.server)),
            Evidence::Scale(s) => Some((&s.context, &s.namespace, &s.server)),
            Evidence::Wait(w) => Some((&w.context, &w.namespace, &w.server)),
            Evidence::Isolation(i) => Some((&i.context, &i.namespace, &i.server)),
            Evidence::Backup(_)
            | Evidence::Http(_)
            | Evidence::Sql(_)
            | Evidence::Dns(_)
            | Evidence::Bucket(_)
            | Evidence::Browser(_) => None,
        }
    }

    /// The same fields without the `kind` tag, as journals and reports
    /// showed them before the evidence was typed.
    pub fn untagged(&self) -> serde_json::Value {
        let value = match self {
            Evidence::Backup(b) => serde_json::to_value(b),
            Evidence::Tag(t) => serde_json::to_value(t),
            Evidence::Scale(s) => serde_json::to_value(s),
            Evidence::Wait(w) => serde_json::to_value(w),
            Evidence::Http(h) => serde_json::to_value(h),
            Evidence::Sql(q) => serde_json::to_value(q),
            Evidence::Bucket(b) => serde_json::to_value(b),
            Evidence::Dns(d) => serde_json::to_value(d),
            Evidence::Browser(b) => serde_json::to_value(b),
            Evidence::Isolation(i) => serde_json::to_value(i),
        };
        value.unwrap_or(serde_json::Value::Null)
    }
}

/// Serializes an optional item without its `kind` tag (the JSON report's
/// `choice` field keeps the shape it always had).
pub fn serialize_untagged<S: serde::Serializer>(evidence: &Option<Evidence>, s: S) -> Result<S::Ok, S::Error> {
    evidence.as_ref().map(Evidence::untagged).serialize(s)
}

impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        let kind = match value.get("kind").and_then(|k| k.as_str()) {
            Some(kind) => kind.to_string(),
            // Before evidence was typed: known by its fields.
            None => legacy_kind(&value)
                .ok_or_else(|| D::Error::custom(format!("unrecognised evidence (no `kind`): {value}")))?
                .to_string(),
        };
        let evidence = match kind.as_str() {
            "backup" => serde_json::from_value(value).map(Evidence::Backup),
            "tag" => serde_json::from_value(value).map(Evidence::Tag),
            "scale" => serde_json::from_value(value).map(Evidence::Scale),
            "wait" => serde_json::from_value(value).map(Evidence::Wait),
            "http" => serde_json::from_value(value).map(Evidence::Http),
            "sql" => serde_json::from_value(value).map(Evidence::Sql),
            "bucket" => serde_json::from_value(value).map(Evidence::Bucket),
            "dns" => serde_json::from_value(value).map(Evidence::Dns),
            "browser" => serde_json::from_value(value).map(Evidence::Browser),
            "isolation" => serde_json::from_value(value).map(Evidence::Isolation),
            other => return Err(D::Error::custom(format!("unknown evidence kind `{other}`"))),
        };
        evidence.map_err(|e| D::Error::custom(format!("{kind} evidence: {e}")))
    }
}

/// The kind of an untagged (older) evidence object, by the fields only it has.
fn legacy_kind(value: &serde_json::Value) -> Option<&'static str> {
    let has = |key: &str| value.get(key).is_some();
    if has("workloads") {
        Some("scale")
    } else if has("running") {
        Some("wait")
    } else if has("key") {
        Some("backup")
    } else if has("url") && has("status") {
        Some("http")
    } else if has("tag") {
        Some("tag")
    } else {
        None
    }
}

impl BucketResult {
    /// What the check found, in lines an operator reads: the settings table, each probe, the
    /// replica's counts and examples. The step log, the TUI and the reports all show these.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.rows.is_empty() {
            let width = |f: fn(&CheckRow) -> &str, title: &str| {
                self.rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0).max(title.len())
            };
            let (p, e, a) = (
                width(|r| &r.property, "property"),
                width(|r| &r.expected, "expected"),
                width(|r| &r.actual, "actual"),
            );
            lines.push(format!("{:<p$}  {:<e$}  {:<a$}  result", "property", "expected", "actual"));
            for row in &self.rows {
                let result = if row.ok { "ok" } else { "MISMATCH" };
                lines.push(format!("{:<p$}  {:<e$}  {:<a$}  {result}", row.property, row.expected, row.actual));
            }
        }
        if let Some(first) = self.probes.first() {
            lines
                .push(format!("permissions of {} (each tried with a real request on a probe object):", first.identity));
            for probe in &self.probes {
                let verdict = if probe.ok { "ok" } else { "FINDING" };
                lines.push(format!(
                    "  {:<14} expected {:<7}  {}: {}  {verdict}",
                    probe.permission, probe.expected, probe.request, probe.outcome
                ));
                if let Some(finding) = &probe.finding {
                    lines.push(format!("    {finding}"));
                }
            }
        }
        for left in &self.probes_left {
            lines.push(format!("probe left behind: {left} (remove it by hand)"));
        }
        if let Some(replica) = &self.replica {
            lines.extend(replica.lines());
        }
        lines
    }
}

impl ReplicaResult {
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "replica {} of {}: {} objects ({}) against {} ({})",
                self.replica,
                self.source,
                self.replica_objects,
                human_bytes(self.replica_bytes),
                self.source_objects,
                human_bytes(self.source_bytes)
            ),
            format!(
                "missing {} (allowed {}), in flight {}, different {}, only in the replica {}",
                self.missing, self.max_missing, self.in_flight, self.differ, self.extra
            ),
        ];
        if let Some(lag) = self.lag_seconds {
            let window = self.max_lag.as_ref().map(|m| format!(" (max_lag {m})")).unwrap_or_default();
            lines.push(format!("oldest missing object: {} old{window}", human_seconds(lag)));
        }
        for (what, examples) in [
            ("missing", &self.missing_examples),
            ("different", &self.differ_examples),
            ("only in the replica", &self.extra_examples),
        ] {
            if !examples.is_empty() {
                lines.push(format!("{what}: {}", examples.join(", ")));
            }
        }
        if self.sampled > 0 {
            lines.push(match self.failed.len() {
                0 => format!("replication status of {} sampled objects: none FAILED", self.sampled),
                _ => format!("replication FAILED for: {}", self.failed.join(", ")),
            });
        }
        lines
    }
}

/// `3d 4h`, `12m`, `40s`.
pub fn human_seconds(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `1.5 GiB`, `312 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_items_of_older_journals_are_known_by_their_fields() {
        let cases = [
            (
                r#"{"key":"acme/daily.pgdump","version_id":null,"size":3,"last_modified":"2026-11-27T03:00:00Z","etag":"\"x\""}"#,
                "backup",
            ),
            (
                r#"{"tag":"main-1","image":"r/web:main-1","context":"c","server":"s","namespace":"acme-production"}"#,
                "tag",
            ),
            (
                r#"{"context":"c","server":"s","namespace":"acme-dr","to":0,"workloads":[{"kind":"deployment","name":"web","replicas":2}]}"#,
                "scale",
            ),
            (
                r#"{"context":"c","server":"s","namespace":"acme-dr","expect_tag":null,"running":{"web":"main-1"}}"#,
                "wait",
            ),
            (
                r#"{"url":"https://x/","status":200,"latency_ms":3,"attempts":1,"cert_expires":null,"cert_days_left":null}"#,
                "http",
            ),
        ];
        for (json, kind) in cases {
            let evidence: Evidence = serde_json::from_str(json).unwrap();
            let tagged = serde_json::to_value(&evidence).unwrap();
            assert_eq!(tagged["kind"], kind, "{json}");
            assert_eq!(evidence.untagged(), serde_json::from_str::<serde_json::Value>(json).unwrap());
            // And a tagged item reads back as itself.
            assert_eq!(serde_json::from_value::<Evidence>(tagged).unwrap(), evidence);
        }
    }

    #[test]
    fn unknown_evidence_is_a_clear_error() {
        let error = serde_json::from_str::<Evidence>(r#"{"what":1}"#).unwrap_err().to_string();
        assert!(error.contains("unrecognised evidence"), "{error}");
        let error = serde_json::from_str::<Evidence>(r#"{"kind":"smtp"}"#).unwrap_err().to_string();
        assert!(error.contains("unknown evidence kind `smtp`"), "{error}");
        let error = serde_json::from_str::<Evidence>(r#"{"kind":"dns"}"#).unwrap_err().to_string();
        assert!(error.starts_with("dns evidence:"), "{error}");
        let error = serde_json::from_str::<Evidence>(r#"{"kind":"tag","tag":1}"#).unwrap_err().to_string();
        assert!(error.starts_with("tag evidence:"), "{error}");
    }
}
