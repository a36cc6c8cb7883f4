//! Kubernetes: read the image tag production runs (`k8s-image-tag`), watch
//! a namespace until its workloads are Ready (`k8s-wait`) and scale
//! workloads (`k8s-scale`). The cluster sits behind [`Cluster`]: the real
//! API through kube ([`kube_cluster::KubeCluster`], the user's kubeconfig) or
//! an in-process simulated cluster ([`sim::SimCluster`], a directory, for the
//! sandbox of `demo` and training mode). Both pass the same tests.

pub mod image;
pub mod isolation;
pub mod kube_cluster;
pub mod scale;
pub mod sim;
pub mod tag;
pub mod wait;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use jiff::Timestamp;

/// What a `context` naming the sandbox looks like: `sandbox:/path/to/dir`.
pub const SANDBOX_PREFIX: &str = "sandbox:";

/// Which cluster a step talks to, as shown in every pane, dialog and report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    /// The kubeconfig context (the current one when the step names none).
    pub context: String,
    /// The API server URL (or the sandbox directory).
    pub server: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }

    /// The API resource, for messages about permissions.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
        }
    }
}

/// A Deployment or StatefulSet: what it wants and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub name: String,
    /// `spec.replicas`.
    pub desired: u32,
    /// `status.replicas`: pods that exist, old and new.
    pub current: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
    /// `status.observedGeneration` has caught up with `metadata.generation`.
    pub observed: bool,
    /// Container name and image, in spec order.
    pub containers: Vec<(String, String)>,
    /// `deployment.kubernetes.io/revision`.
    pub revision: Option<u64>,
    /// `spec.selector.matchLabels`: which pods belong to it.
    pub selector: BTreeMap<String, String>,
    pub created: Option<Timestamp>,
}

impl Workload {
    /// Every replica is updated to the current spec, Ready and available, and
    /// no old pod is left.
    pub fn is_rolled_out(&self) -> bool {
        self.observed
            && self.updated == self.desired
            && self.ready == self.desired
            && self.available == self.desired
            && self.current == self.desired
    }

    /// The pod is one of this workload's: its labels match the selector and
    /// its controller is of the kind this workload creates pods through.
    pub fn owns(&self, pod: &PodInfo) -> bool {
        let controller = match self.kind {
            WorkloadKind::Deployment => "ReplicaSet",
            WorkloadKind::StatefulSet => "StatefulSet",
        };
        pod.controller.as_deref().is_none_or(|kind| kind == controller)
            && !self.selector.is_empty()
            && self.selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
    }
}

/// A ReplicaSet: one revision of a Deployment's pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionInfo {
    pub name: String,
    /// The Deployment that controls it.
    pub deployment: Option<String>,
    pub revision: Option<u64>,
    pub containers: Vec<(String, String)>,
    pub created: Option<Timestamp>,
    pub replicas: u32,
}

/// A pod as the pod table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// The pod's `Ready` condition.
    pub ready: bool,
    pub ready_containers: u32,
    pub containers: u32,
    /// Why it is not running as it should, as kubectl shows it:
    /// `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull`, `OOMKilled`,
    /// `ContainerCreating`, `Terminating`…
    pub reason: Option<String>,
    /// The message that came with the reason, if any.
    pub message: Option<String>,
    pub restarts: u32,
    pub created: Option<Timestamp>,
    /// Container images, in spec order.
    pub images: Vec<String>,
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Being deleted.
    pub terminating: bool,
    /// Kind of the controller that owns it (`ReplicaSet`, `StatefulSet`,
    /// `Job`…): a Job's pod carrying a Deployment's labels is not one of its pods.
    pub controller: Option<String>,
}

impl PodInfo {
    /// STATUS as kubectl prints it.
    pub fn status(&self) -> String {
        if self.terminating {
            return "Terminating".into();
        }
        self.reason.clone().unwrap_or_else(|| self.phase.clone())
    }

    /// Done for good (a Job's Completed pod, an evicted pod): it takes no
    /// part in a rollout and never terminates by itself.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }
}

/// Everything a watch has seen of a namespace, as of now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub deployments: Vec<Workload>,
    pub pods: Vec<PodInfo>,
}

/// What a namespace watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The namespace changed (or the watch (re)started): all of it, sorted by name.
    Snapshot(Snapshot),
    /// The watch broke (server gone, restarted, stream dropped); it retries after `retry_in`.
    Reconnecting { reason: String, attempt: u32, retry_in: Duration },
    /// Watching again after a break.
    Reconnected,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum K8sError {
    #[error("no kubeconfig: {0} (set KUBECONFIG or create ~/.kube/config)")]
    NoKubeconfig(String),
    #[error("unknown context `{context}` in the kubeconfig (it has: {})", known.join(", "))]
    UnknownContext { context: String, known: Vec<String> },
    #[error("namespace `{namespace}` not found in context `{context}`")]
    NamespaceNotFound { namespace: String, context: String },
    #[error("forbidden: cannot {verb} {resource} in namespace `{namespace}` (context `{context}`): {message}")]
    Forbidden { verb: String, resource: String, namespace: String, context: String, message: String },
    #[error("{kind} `{name}` not found in namespace `{namespace}`")]
    NotFound { kind: String, name: String, namespace: String },
    #[error("cannot reach the API server {server} (context `{context}`): {reason}")]
    Unreachable { server: String, context: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// Why a Kubernetes step may not write where it would.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The step names no context, and the one connected to is not the one
    /// this drill's earlier Kubernetes steps used: `used` holds their
    /// (context, server).
    #[error(
        "refusing to write to context `{context}` ({server}): this drill's earlier Kubernetes steps used {} \
         (resume with the drill's `--context`, or name the `context` in the step)",
        describe_used(.used)
    )]
    OtherContext { context: String, server: String, used: Vec<(String, Option<String>)> },
    /// An entry of the runbook's `protected` list does not render.
    #[error("`protected` entry `{entry}`: {source}")]
    ProtectedEntry {
        entry: String,
        #[source]
        source: crate::runbook::template::TemplateError,
    },
    /// The namespace is in the runbook's `protected` list.
    #[error(
        "refusing to scale namespace `{namespace}`: it is protected by this runbook (`[runbook] protected`); \
         only read-only steps may use it"
    )]
    Protected { namespace: String },
}

/// "`dr` (https://…), `other` (https://…)": the clusters earlier steps used.
fn describe_used(used: &[(String, Option<String>)]) -> String {
    used.iter()
        .map(|(context, server)| match server {
            Some(server) => format!("`{context}` ({server})"),
            None => format!("`{context}`"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Kubernetes cluster as the steps need it. Every call is scoped to one
/// namespace; lists come back sorted by name.
pub trait Cluster: Send + Sync + std::fmt::Debug {
    fn target(&self) -> &ClusterTarget;
    /// `Ok` when the namespace exists; [`K8sError::NamespaceNotFound`] if not.
    fn check_namespace<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<(), K8sError>>;
    fn workloads<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
    ) -> BoxFuture<'a, Result<Vec<Workload>, K8sError>>;
    /// ReplicaSets: the revision history of the Deployments.
    fn revisions<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<RevisionInfo>, K8sError>>;
    fn pods<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<PodInfo>, K8sError>>;
    /// Deployments and pods of a namespace, live: a snapshot at once, another
    /// after every change (coalesced), reconnecting with backoff when the
    /// watch breaks. Ends only when dropped, or with the first item being an
    /// `Err` when the watch cannot start (forbidden, namespace gone).
    fn watch(&self, namespace: &str) -> BoxStream<'static, Result<WatchEvent, K8sError>>;
    /// Lines of a pod's log (the first container unless named). `previous`:
    /// the container's last terminated run (what a crash-looping pod said).
    fn logs(&self, namespace: &str, pod: &str, options: LogOptions) -> BoxStream<'static, Result<String, K8sError>>;
    /// What an isolation check compares ([`isolation`]): the pod templates of
    /// Deployments, StatefulSets and CronJobs, ConfigMaps, Secrets,
    /// NetworkPolicies and Ingress hosts; one list per kind.
    fn config<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<isolation::config::NamespaceConfig, K8sError>>;
    /// Sets replicas through the Scale subresource; returns the previous count.
    fn scale<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
        name: &'a str,
        replicas: u32,
    ) -> BoxFuture<'a, Result<u32, K8sError>>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub tail_lines: Option<u32>,
    pub follow: bool,
    pub previous: bool,
}

/// Checks the namespace exists where that can be asked: a role limited to
/// the namespace may not `get namespaces`, and needs not to.
pub async fn require_namespace(cluster: &dyn Cluster, namespace: &str) -> Result<(), K8sError> {
    match cluster.check_namespace(namespace).await {
        Ok(()) | Err(K8sError::Forbidden { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Refuses a write to a cluster other than the one this drill's earlier
/// Kubernetes steps used, when the step does not name its context: a drill
/// resumed without its `--context` must not scale the current context
/// (often production's cluster) instead of DR's.
pub fn require_same_context(
    runbook: &crate::runbook::Runbook,
    state: &crate::drill::state::DrillState,
    step: &crate::runbook::Step,
    connected: &ClusterTarget,
) -> Result<(), GuardError> {
    use crate::runbook::Action;
    let implicit = |action: &Action| match action {
        Action::K8sImageTag(spec) => spec.target.context.is_none(),
        Action::K8sWait(spec) => spec.target.context.is_none(),
        Action::K8sScale(spec) => spec.target.context.is_none(),
        _ => false,
    };
    if !implicit(&step.action) {
        return Ok(());
    }
    // (context, server) of each earlier step: the sandbox's context name is
    // the same for every directory, and a context may be re-pointed.
    let used: std::collections::BTreeSet<(String, Option<String>)> = runbook
        .steps
        .iter()
        .filter(|other| other.id != step.id && implicit(&other.action))
        .filter_map(|other| {
            let (context, _, server) = state.step(&other.id)?.evidence.as_ref()?.cluster()?;
            Some((context.to_string(), Some(server.to_string())))
        })
        .collect();
    let same = |(context, server): &(String, Option<String>)| {
        context == &connected.context && server.as_ref().is_none_or(|s| s == &connected.server)
    };
    if used.is_empty() || used.iter().any(same) {
        return Ok(());
    }
    Err(GuardError::OtherContext {
        context: connected.context.clone(),
        server: connected.server.clone(),
        used: used.into_iter().collect(),
    })
}

/// The environment variable `--context` is handed down in.
pub const CONTEXT_ENV: &str = "DRILLBOOK_KUBE_CONTEXT";

/// The context a `kubectl` in a command step talks to: `--context`, else the
/// kubeconfig's current context (`None` when there is no kubeconfig).
pub fn kubectl_context() -> Option<String> {
    if let Some(context) = std::env::var(CONTEXT_ENV).ok().filter(|c| !c.is_empty()) {
        return Some(context);
    }
    kube::config::Kubeconfig::read().ok()?.current_context.filter(|c| !c.is_empty())
}

/// Opens the cluster a step names: `sandbox:DIR` is the simulated cluster
/// in DIR; anything else a kubeconfig context (`None`: the CLI's
/// `--context`, else the kubeconfig's current context).
pub async fn connect(context: Option<&str>) -> Result<Arc<dyn Cluster>, K8sError> {
    let default_context = std::env::var(CONTEXT_ENV).ok().filter(|c| !c.is_empty());
    let context = context.or(default_context.as_deref());
    if let Some(dir) = context.and_then(|c| c.strip_prefix(SANDBOX_PREFIX)) {
        return Ok(Arc::new(sim::SimCluster::open(std::path::Path::new(dir))?));
    }
    Ok(Arc::new(kube_cluster::KubeCluster::connect(context).await?))
}

/// The runbook's `protected` namespaces, rendered with the drill's values.
pub fn protected_namespaces(
    runbook: &crate::runbook::Runbook,
    context: &crate::runbook::template::TemplateContext,
    templater: &crate::runbook::template::Templater,
) -> Result<Vec<String>, GuardError> {
    runbook
        .protected
        .iter()
        .map(|t| {
            templater
                .render_plain(&t.text, context)
                .map_err(|source| GuardError::ProtectedEntry { entry: t.text.clone(), source })
        })
        .collect()
}
