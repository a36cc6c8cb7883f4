//! The runbook file as written: a serde model that keeps the byte span of
//! every value, so validation can point at `file:line:col`.
//!
//! Steps are one flat table with every key any kind may use; which keys are
//! allowed and required for which `kind` is checked in `validate`, where the
//! error can say "`bucket` does not apply to a `command` step" instead of
//! serde's generic "unknown field".

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::{Deref, Range};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

/// A value with the byte range it came from. A newtype over `toml::Spanned`
/// so it can describe itself in the JSON schema as the bare value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(transparent)]
pub struct Sp<T>(pub toml::Spanned<T>);

impl<T> Sp<T> {
    pub fn span(&self) -> Range<usize> {
        self.0.span()
    }

    pub fn get_ref(&self) -> &T {
        self.0.get_ref()
    }
}

impl<T> Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.get_ref()
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A drillbook runbook: metadata, variables and an ordered list of steps.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drillbook runbook")]
pub struct RawDocument {
    pub runbook: Sp<RawMeta>,
    #[serde(default)]
    pub vars: BTreeMap<Sp<String>, Sp<RawVar>>,
    #[serde(default, rename = "step")]
    pub steps: Vec<Sp<RawStep>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    /// Stable identifier of the runbook, e.g. `backup-verification`.
    pub id: Sp<String>,
    pub title: Sp<String>,
    /// Markdown shown on the start screen.
    pub description: Option<Sp<String>>,
    /// Recovery time objective: the drill clock is compared against it (e.g. `4h`).
    pub rto_target: Option<Sp<String>>,
    /// Recovery point objective: the restored backup's age is compared against it (e.g. `24h`).
    pub rpo_target: Option<Sp<String>>,
    /// Namespaces no write step may touch (templates allowed).
    #[serde(default)]
    pub protected: Vec<Sp<String>>,
    /// The project a drill of this runbook proves (templates allowed: `{{ project }}`), for the fleet register.
    pub project: Option<Sp<String>>,
    /// How often it must be drilled: `quarterly`, `monthly`, `weekly`, `yearly` or a duration (`30d`).
    pub cadence: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVar {
    /// Default value (may use other variables: `{{ project }}-dr`).
    pub default: Option<Sp<String>>,
    /// Question asked when the variable has no value.
    pub prompt: Option<Sp<String>>,
    /// Longer explanation shown with the prompt.
    pub help: Option<Sp<String>>,
    /// Never written to the journal, logs or report; reaches commands only as an environment variable.
    #[serde(default)]
    pub secret: bool,
    /// Environment variable the value is read from (and, for secrets, passed as).
    pub env: Option<Sp<String>>,
    /// Allowed values; the operator picks one.
    pub choices: Option<Sp<Vec<String>>>,
}

/// `confirm = true` asks yes/no; `confirm = "typed"` makes the operator type the target.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawConfirm {
    Flag(bool),
    Word(String),
}

/// `capture = "name"` for typed steps; `{ name, regex }` for command output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawCapture {
    Name(String),
    Regex(RawRegexCapture),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRegexCapture {
    pub name: String,
    pub regex: String,
    /// Which output the regex reads: `stdout` (default), `stderr` or `both`.
    pub stream: Option<String>,
}

/// Exit codes that count as success.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawExitCodes {
    One(i64),
    Many(Vec<i64>),
}

/// A checklist item: its text, or `{ text, required = false }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawChecklistItem {
    Text(String),
    Full(RawChecklistItemFull),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChecklistItemFull {
    pub text: String,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// One value of an `s3-check`'s `expect`: a flag or a value to equal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawBucketExpect {
    Flag(bool),
    Text(String),
}

/// Whose permissions an `s3-check` probes: keys (give them from secret variables) or a profile.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub access_key_id: Option<Sp<String>>,
    pub secret_access_key: Option<Sp<String>>,
    pub profile: Option<Sp<String>>,
}

/// The production side of a `k8s-isolation` step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProduction {
    pub context: Option<Sp<String>>,
    pub namespace: Sp<String>,
}

/// Every step kind drillbook knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Manual,
    Checklist,
    Command,
    S3Backup,
    S3Check,
    K8sImageTag,
    K8sWait,
    K8sScale,
    K8sIsolation,
    HttpCheck,
    SqlCheck,
    DnsCheck,
    BrowserCheck,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Manual => "manual",
            StepKind::Checklist => "checklist",
            StepKind::Command => "command",
            StepKind::S3Backup => "s3-backup",
            StepKind::S3Check => "s3-check",
            StepKind::K8sImageTag => "k8s-image-tag",
            StepKind::K8sWait => "k8s-wait",
            StepKind::K8sScale => "k8s-scale",
            StepKind::K8sIsolation => "k8s-isolation",
            StepKind::HttpCheck => "http-check",
            StepKind::SqlCheck => "sql-check",
            StepKind::DnsCheck => "dns-check",
            StepKind::BrowserCheck => "browser-check",
        }
    }
}

/// One `[[step]]`. Which keys apply depends on `kind`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    // Common to every kind.
    pub id: Sp<String>,
    pub kind: Sp<StepKind>,
    pub title: Option<Sp<String>>,
    /// Markdown shown beside the step.
    pub help: Option<Sp<String>>,
    /// Condition on variables (a template expression); the step is skipped when false.
    pub when: Option<Sp<String>>,
    /// A failure or skip of this step does not fail the drill.
    #[serde(default)]
    pub optional: bool,
    /// `stop` (default) or `continue`.
    pub on_failure: Option<Sp<String>>,
    /// Teardown: runs even when the drill stops on a failure or is aborted.
    #[serde(default)]
    pub always: bool,
    pub confirm: Option<Sp<RawConfirm>>,
    pub capture: Option<Sp<RawCapture>>,
    /// Link opened from the step (checklist, manual, http-check); a `browser-check`'s base URL.
    pub url: Option<Sp<String>>,

    // command
    /// Shell script run with `sh -c`; template values are shell-quoted automatically.
    pub run: Option<Sp<String>>,
    pub cwd: Option<Sp<String>>,
    pub env: Option<Sp<BTreeMap<String, Sp<String>>>>,
    pub timeout: Option<Sp<String>>,
    pub expect_exit: Option<Sp<RawExitCodes>>,
    /// Run in a pseudo-terminal (interactive programs).
    pub tty: Option<Sp<bool>>,
    /// Training mode runs this harmless script instead of `run` (plausible
    /// output, changes to the sandbox); without it the command is shown, not run.
    pub simulate: Option<Sp<String>>,

    // checklist
    pub items: Option<Sp<Vec<RawChecklistItem>>>,

    // s3-backup / s3-check
    pub bucket: Option<Sp<String>>,
    pub prefix: Option<Sp<String>>,
    pub pattern: Option<Sp<String>>,
    /// `latest`/`choose`/`random`/`before` (s3-backup), `current`/`choose` (k8s-image-tag).
    pub select: Option<Sp<String>>,
    pub versions: Option<Sp<bool>>,
    pub profile: Option<Sp<String>>,
    pub region: Option<Sp<String>>,
    pub endpoint: Option<Sp<String>>,
    pub parts: Option<Sp<i64>>,
    /// Bucket properties: flags (`versioning = true`) or values (`object_ownership = "BucketOwnerEnforced"`).
    pub expect: Option<Sp<BTreeMap<String, RawBucketExpect>>>,
    pub same_as: Option<Sp<String>>,
    pub other_region_than: Option<Sp<String>>,
    pub replicated_from: Option<Sp<String>>,
    /// s3-check: the identity whose permissions are probed (`access_key_id` + `secret_access_key`, or `profile`).
    #[serde(rename = "as")]
    pub as_identity: Option<Sp<RawIdentity>>,
    /// s3-check: permissions the identity must have (`list`, `put`, `get`, `delete`, `delete-version`).
    pub can: Option<Sp<Vec<Sp<String>>>>,
    /// s3-check: permissions the identity must not have.
    pub cannot: Option<Sp<Vec<Sp<String>>>>,
    /// s3-check: the bucket this one replicates; every object is compared.
    pub replica_of: Option<Sp<String>>,
    /// s3-check with `replica_of`: objects that may be missing from the replica (default 0).
    pub max_missing: Option<Sp<i64>>,
    /// s3-check with `replica_of`: objects newer than this are in flight, not missing (e.g. `1h`).
    pub max_lag: Option<Sp<String>>,
    /// s3-check with `replica_of`: objects HEADed for their replication status (default 20).
    pub sample: Option<Sp<i64>>,

    // kubernetes
    pub context: Option<Sp<String>>,
    pub namespace: Option<Sp<String>>,
    pub deployments: Option<Sp<Vec<String>>>,
    pub statefulsets: Option<Sp<bool>>,
    pub all: Option<Sp<bool>>,
    pub replicas: Option<Sp<i64>>,
    pub wait: Option<Sp<bool>>,
    pub expect_tag: Option<Sp<String>>,
    /// k8s-isolation: production's context and namespace, compared with DR's.
    pub production: Option<Sp<RawProduction>>,
    /// k8s-isolation: variable names compared (globs, e.g. `*DATABASE_URL*`).
    pub keys: Option<Sp<Vec<Sp<String>>>>,
    /// k8s-isolation: variable names whose values DR may share with production on purpose.
    pub allow: Option<Sp<Vec<Sp<String>>>>,
    /// k8s-isolation: `require` (default), `warn` or `ignore` an egress gap.
    pub network_policy: Option<Sp<String>>,
    /// k8s-isolation: `suspended` (default: DR CronJobs must be suspended), `warn` or `ignore`.
    pub cronjobs: Option<Sp<String>>,

    // http-check
    /// HTTP method of an `http-check` (default `GET`).
    pub method: Option<Sp<String>>,
    /// Older spelling of `expect_status`.
    pub status: Option<Sp<i64>>,
    /// Status an `http-check` expects (default 200). Redirects are not followed: a 301 is reported as 301.
    pub expect_status: Option<Sp<i64>>,
    /// Text the response body must contain (the first MiB is read).
    pub contains: Option<Sp<String>>,
    /// Further attempts after a connection error, a wrong status or missing text (default 0).
    pub retries: Option<Sp<i64>>,
    /// Wait between attempts (default `5s`).
    pub interval: Option<Sp<String>>,
    /// PEM file of CA certificates trusted besides the system's, for a site behind a private CA (`http-check`, `dns-check`).
    pub ca_file: Option<Sp<String>>,

    // s3-backup: the restore-target policy
    /// `select = "random"`: backups modified within this long before the drill (e.g. `30d`).
    pub window: Option<Sp<String>>,
    /// `select = "before"`: the newest backup at or before this time (RFC 3339, templates allowed).
    pub before: Option<Sp<String>>,

    // sql-check
    /// `postgresql://user@host:port/db?sslmode=...` (templates allowed; give the password in `password`).
    pub database: Option<Sp<String>>,
    /// The password (use a secret variable: it is never journaled or logged).
    pub password: Option<Sp<String>>,
    /// Record every table's row count and a schema hash, compared with the previous drill.
    pub fingerprint: Option<Sp<bool>>,
    /// Count rows exactly (`count(*)`) instead of the planner's estimate after `ANALYZE`.
    pub exact: Option<Sp<bool>>,
    /// The most a table may shrink against the previous completed drill, e.g. `"20%"`.
    pub max_shrink: Option<Sp<String>>,
    /// `fail` (default) or `warn` when a table shrank beyond `max_shrink`, vanished or its columns changed.
    pub on_shrink: Option<Sp<String>>,
    /// The queries of a `sql-check`, each with what it must answer.
    pub check: Option<Sp<Vec<Sp<RawSqlCheck>>>>,

    // dns-check
    /// The DNS name a `dns-check` resolves, e.g. `dr.{{ project }}.com`.
    pub name: Option<Sp<String>>,
    /// The name must be a CNAME to this host name (directly or through further CNAMEs).
    pub cname: Option<Sp<String>>,
    /// The name must resolve to exactly these addresses (instead of `cname`).
    pub resolves_to: Option<Sp<Vec<Sp<String>>>>,
    /// Connect to the resolved address and check its TLS certificate for the name.
    pub tls: Option<Sp<RawTls>>,
    /// Ask this DNS server (`IP` or `IP:port`) instead of the system's resolver.
    pub nameserver: Option<Sp<String>>,

    // browser-check
    /// The browser window of a `browser-check`: `{ width = 1280, height = 800 }`.
    pub viewport: Option<Sp<RawViewport>>,
    /// The Chromium (or Chrome) executable of a `browser-check`; default: `chromium`,
    /// `chromium-browser` or `google-chrome` on PATH.
    pub browser: Option<Sp<String>>,
    /// The actions of a `browser-check`, in order; each has exactly one verb.
    pub action: Option<Sp<Vec<Sp<RawBrowserAction>>>>,
}

/// `tls = { port = 443, min_days = 21 }` of a `dns-check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// The port to connect to (default 443).
    pub port: Option<Sp<i64>>,
    /// The certificate must be valid for at least this many more days (default 14).
    pub min_days: Option<Sp<i64>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawViewport {
    pub width: Sp<i64>,
    pub height: Sp<i64>,
}

/// One `[[step.action]]` of a `browser-check` step: exactly one of `goto`,
/// `fill`, `click`, `wait_for`, `expect_text`, `upload`, `screenshot`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBrowserAction {
    /// Open this path (relative to the step's `url`) or absolute URL, and wait for it to load.
    pub goto: Option<Sp<String>>,
    /// With `goto`: the HTTP status the page must answer.
    pub expect_status: Option<Sp<i64>>,
    /// Selector → value typed into the field (values may use secret variables: never journaled or logged).
    pub fill: Option<Sp<BTreeMap<String, Sp<String>>>>,
    /// Click the element the selector finds (and wait for the page it loads, if any).
    pub click: Option<Sp<String>>,
    /// Wait until the selector finds a visible element.
    pub wait_for: Option<Sp<String>>,
    /// Wait until the page's visible text contains this.
    pub expect_text: Option<Sp<String>>,
    /// Set a file input's file: `{ selector = "input[type=file]", file = "/path/image.png" }`.
    pub upload: Option<Sp<RawUpload>>,
    /// Save a screenshot as `evidence/STEP/NAME.png` (letters, digits, `-`, `_`, `.`).
    pub screenshot: Option<Sp<String>>,
    /// This action's limit (default: the step's `timeout`, else 15s).
    pub timeout: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpload {
    pub selector: Sp<String>,
    pub file: Sp<String>,
}

/// One `[[step.check]]` of a `sql-check` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSqlCheck {
    pub name: Sp<String>,
    /// Run in a read-only transaction; the first column of the first row is the answer.
    pub query: Sp<String>,
    /// `= N`, `!= N`, `>= N`, `<= N`, `> N`, `< N`, `between A and B`, or a quoted string to equal.
    pub expect: Option<Sp<RawExpect>>,
    /// Keep the answer as a capture for later steps.
    pub capture: Option<Sp<String>>,
    /// The answer is a timestamp: the newest data in the restored database (the data RPO).
    #[serde(default)]
    pub freshness: bool,
}

/// `expect = ">= 1000"`, or a bare number meaning `= N`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawExpect {
    Number(i64),
    Text(String),
}

impl RawStep {
    /// Kind-specific keys present in this step, with their spans, for the
    /// "does not apply to this kind" check.
    pub fn kind_specific_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut keys = Vec::new();
        macro_rules! present {
            ($($field:ident),*) => {$(
                if let Some(value) = &self.$field {
                    keys.push((stringify!($field), value.span()));
                }
            )*};
        }
        present!(
            run,
            cwd,
            env,
            timeout,
            expect_exit,
            tty,
            simulate,
            items,
            bucket,
            prefix,
            pattern,
            select,
            versions,
            profile,
            region,
            endpoint,
            parts,
            expect,
            same_as,
            other_region_than,
            replicated_from,
            can,
            cannot,
            replica_of,
            max_missing,
            max_lag,
            sample,
            context,
            namespace,
            deployments,
            statefulsets,
            all,
            replicas,
            wait,
            expect_tag,
            method,
            status,
            expect_status,
            contains,
            retries,
            interval,
            ca_file,
            window,
            before,
            database,
            password,
            fingerprint,
            exact,
            max_shrink,
            on_shrink,
            check,
            name,
            cname,
            resolves_to,
            tls,
            nameserver,
            viewport,
            browser,
            action,
            url,
            capture,
            confirm
        );
        // `as` is a Rust keyword: the field has another name than the key.
        if let Some(value) = &self.as_identity {
            keys.push(("as", value.span()));
        }
        keys
    }
}

/// Keys each kind accepts beyond the common ones (id, kind, title, help,
/// when, optional, on_failure, always).
pub fn allowed_keys(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::Manual => &["url", "confirm"],
        StepKind::Checklist => &["items", "url"],
        StepKind::Command => &["run", "cwd", "env", "timeout", "expect_exit", "tty", "simulate", "confirm", "capture"],
        StepKind::S3Backup => &[
            "bucket", "prefix", "pattern", "select", "window", "before", "versions", "profile", "region", "endpoint",
            "parts", "capture", "timeout", "confirm",
        ],
        StepKind::S3Check => &[
            "bucket",
            "prefix",
            "expect",
            "same_as",
            "other_region_than",
            "replicated_from",
            "as",
            "can",
            "cannot",
            "replica_of",
            "max_missing",
            "max_lag",
            "sample",
            "profile",
            "region",
            "endpoint",
        ],
        StepKind::K8sImageTag => &["context", "namespace", "deployments", "select", "capture"],
        StepKind::K8sWait => &["context", "namespace", "deployments", "expect_tag", "timeout"],
        StepKind::K8sScale => {
            &["context", "namespace", "deployments", "statefulsets", "all", "replicas", "wait", "confirm", "timeout"]
        }
        StepKind::K8sIsolation => {
            &["context", "namespace", "production", "keys", "allow", "network_policy", "cronjobs", "timeout"]
        }
        StepKind::HttpCheck => &[
            "url",
            "method",
            "status",
            "expect_status",
            "contains",
            "retries",
            "interval",
            "timeout",
            "ca_file",
            "capture",
        ],
        StepKind::SqlCheck => {
            &["database", "password", "fingerprint", "exact", "max_shrink", "on_shrink", "check", "timeout"]
        }
        StepKind::DnsCheck => &["name", "cname", "resolves_to", "tls", "ca_file", "nameserver", "timeout"],
        StepKind::BrowserCheck => &["url", "viewport", "timeout", "browser", "action"],
    }
}

/// Every kind, for suggestions and the "which kinds use this key" hint.
pub const ALL_KINDS: [StepKind; 13] = [
    StepKind::Manual,
    StepKind::Checklist,
    StepKind::Command,
    StepKind::S3Backup,
    StepKind::S3Check,
    StepKind::K8sImageTag,
    StepKind::K8sWait,
    StepKind::K8sScale,
    StepKind::K8sIsolation,
    StepKind::HttpCheck,
    StepKind::SqlCheck,
    StepKind::DnsCheck,
    StepKind::BrowserCheck,
];
