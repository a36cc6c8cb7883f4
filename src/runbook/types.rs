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
    /// In file order; defaults may refer to earlier or later variables.
    pub vars: Vec<VarDef>,
    pub steps: Vec<Step>,
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
    pub action: Action,
    /// 1-based line of the `[[step]]` in the runbook.
    pub line: usize,
    /// The step's table as written, to tell whether it changed since a drill started.
    pub source: String,
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
    HttpCheck(HttpCheckSpec),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupSelect {
    Latest,
    Choose,
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

#[derive(Debug, Clone)]
pub struct S3CheckSpec {
    pub bucket: Template,
    pub expect: BTreeMap<String, bool>,
    pub same_as: Option<Template>,
    pub other_region_than: Option<Template>,
    pub replicated_from: Option<Template>,
    pub profile: Option<Template>,
    pub region: Option<Template>,
    pub endpoint: Option<Template>,
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

#[derive(Debug, Clone)]
pub struct HttpCheckSpec {
    pub url: Template,
    pub method: String,
    pub status: u16,
    pub contains: Option<Template>,
    pub retries: u32,
    pub interval: Duration,
    pub timeout: Option<Duration>,
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
        _ => None,
    }
}
