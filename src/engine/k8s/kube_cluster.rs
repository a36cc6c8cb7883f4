//! [`Cluster`] on a real API server, through kube-rs and the user's kubeconfig.
//!
//! Everything the steps show is computed here from the raw objects, the way `kubectl`
//! computes it (a pod's STATUS column in particular), so that what drillbook prints during
//! a drill matches what an operator sees when they run kubectl next to it.
//!
//! Errors are mapped in one place ([`KubeCluster::error`]) into [`K8sError`]s that name the
//! verb and resource in RBAC terms, the namespace and the context: an operator who reads
//! "forbidden: cannot patch deployments/scale in namespace `prod`" knows which Role to fix.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::io::AsyncBufRead;
use futures::stream::BoxStream;
use futures::{AsyncBufReadExt, FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Namespace, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::runtime::watcher;
use kube::{Client, Config, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::{
    Cluster, ClusterTarget, K8sError, LogOptions, PodInfo, RevisionInfo, Snapshot, WatchEvent, Workload, WorkloadKind,
};

/// An unreachable server should fail a step in seconds, not after kube's default 30 s: a
/// drill is timed, and a wrong context is the most common mistake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A one-shot request (get, list, patch) that gets no answer in this long is reported as an
/// unreachable server. Streams (watches, followed logs) are not bounded by it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Objects per page of the watchers' (re)lists.
const LIST_PAGE_SIZE: u32 = 100;

/// Server-side timeout of each watch call: the watcher re-watches from its last
/// resourceVersion after it, and notices a silently dead connection within it (+5 s).
const WATCH_TIMEOUT_SECS: u32 = 60;
/// Changes closer together than this make one snapshot: a rollout changes several pods in
/// a burst, and a redraw per event would only flicker.
const COALESCE: Duration = Duration::from_millis(75);
/// The first retry of a broken watch; doubled each time up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// A cluster reached through a kubeconfig context.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    target: ClusterTarget,
}

impl fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // kube::Client has no Debug; the target is what identifies the cluster anyway.
        f.debug_struct("KubeCluster").field("target", &self.target).finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// The user's kubeconfig: every file in `KUBECONFIG` (merged the way kubectl merges
    /// them), else `~/.kube/config`. `context`: that context, else the current one.
    pub async fn connect(context: Option<&str>) -> Result<KubeCluster, K8sError> {
        let kubeconfig = Kubeconfig::read().map_err(kubeconfig_error)?;
        KubeCluster::from_parsed(kubeconfig, context).await
    }

    /// One kubeconfig file, as tests and `--kubeconfig`-style callers need.
    pub async fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<KubeCluster, K8sError> {
        let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
        KubeCluster::from_parsed(kubeconfig, context).await
    }

    /// Picks the context and builds the client. Nothing is sent to the server yet, so this
    /// is quick even when the server is down; the first request reports that.
    async fn from_parsed(kubeconfig: Kubeconfig, context: Option<&str>) -> Result<KubeCluster, K8sError> {
        let known: Vec<String> = kubeconfig.contexts.iter().map(|named| named.name.clone()).collect();
        let name = match context {
            Some(name) => name.to_owned(),
            None => match kubeconfig.current_context.as_deref().filter(|name| !name.is_empty()) {
                Some(name) => name.to_owned(),
                None if known.is_empty() => {
                    return Err(K8sError::NoKubeconfig("the kubeconfig has no contexts".into()));
                }
                None => {
                    return Err(K8sError::Other(format!(
                        "the kubeconfig sets no current-context: name one of its contexts ({})",
                        known.join(", ")
                    )));
                }
            },
        };
        let Some(named) = kubeconfig.contexts.iter().find(|named| named.name == name) else {
            return Err(K8sError::UnknownContext { context: name, known });
        };
        let server = named
            .context
            .as_ref()
            .and_then(|ctx| kubeconfig.clusters.iter().find(|cluster| cluster.name == ctx.cluster))
            .and_then(|cluster| cluster.cluster.as_ref())
            .and_then(|cluster| cluster.server.clone())
            .unwrap_or_default();
        let options = KubeConfigOptions { context: Some(name.clone()), ..KubeConfigOptions::default() };
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|err| {
            K8sError::Other(format!("cannot use context `{name}` of the kubeconfig: {}", chain(&err)))
        })?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        let client = Client::try_from(config).map_err(|err| {
            K8sError::Other(format!("cannot build a client for context `{name}` ({server}): {}", chain(&err)))
        })?;
        Ok(KubeCluster { client, target: ClusterTarget { context: name, server } })
    }

    /// The one place where kube errors become [`K8sError`]s. Async because a 404 is
    /// ambiguous: a missing object and a missing namespace look the same on a namespaced
    /// call, and only asking for the Namespace tells them apart.
    async fn error(&self, op: Op<'_>, err: kube::Error) -> K8sError {
        let context = self.target.context.clone();
        match err {
            kube::Error::Api(status) if status.code == 403 => K8sError::Forbidden {
                verb: op.verb.to_owned(),
                resource: op.resource.to_owned(),
                namespace: op.namespace.to_owned(),
                context,
                message: status.message,
            },
            kube::Error::Api(status) if status.code == 404 => {
                if op.resource == "namespaces" || self.namespace_missing(op.namespace).await {
                    K8sError::NamespaceNotFound { namespace: op.namespace.to_owned(), context }
                } else {
                    K8sError::NotFound {
                        kind: op.kind.to_owned(),
                        name: op.name.unwrap_or_default().to_owned(),
                        namespace: op.namespace.to_owned(),
                    }
                }
            }
            kube::Error::Api(status) => K8sError::Other(format!(
                "cannot {} (context `{context}`): {} ({}, HTTP {})",
                op.describe(),
                status.message,
                if status.reason.is_empty() { "no reason given" } else { status.reason.as_str() },
                status.code
            )),
            // The transport: refused, reset, timed out, TLS, DNS. All mean "not reachable
            // as configured", which is what the operator must fix.
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
                K8sError::Unreachable { server: self.target.server.clone(), context, reason: chain(&err) }
            }
            other => K8sError::Other(format!("cannot {} (context `{context}`): {}", op.describe(), chain(&other))),
        }
    }

    /// Whether the server says, clearly, that the namespace does not exist (any other
    /// answer, such as forbidden, leaves the question open: no).
    async fn namespace_missing(&self, namespace: &str) -> bool {
        let api: Api<Namespace> = Api::all(self.client.clone());
        matches!(
            tokio::time::timeout(REQUEST_TIMEOUT, api.get(namespace)).await,
            Ok(Err(kube::Error::Api(status))) if status.code == 404
        )
    }

    /// Runs a one-shot request with [`REQUEST_TIMEOUT`] and maps its error.
    async fn call<T>(&self, op: Op<'_>, request: impl Future<Output = Result<T, kube::Error>>) -> Result<T, K8sError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.error(op, err).await),
            Err(_) => Err(K8sError::Unreachable {
                server: self.target.server.clone(),
                context: self.target.context.clone(),
                reason: format!("no answer within {} s to: {}", REQUEST_TIMEOUT.as_secs(), op.describe()),
            }),
        }
    }

    /// The API server answers 200 and an empty list for a namespace that does not exist,
    /// so an empty answer is checked: a typo in a runbook's namespace must not read as
    /// "nothing running there".
    async fn empty_list_check(&self, namespace: &str) -> Result<(), K8sError> {
        match self.check_namespace_inner(namespace).await {
            Err(err @ K8sError::NamespaceNotFound { .. }) => Err(err),
            // Forbidden to read Namespaces (common for namespace-scoped roles) or a glitch:
            // the list itself succeeded, so trust it.
            _ => Ok(()),
        }
    }

    async fn check_namespace_inner(&self, namespace: &str) -> Result<(), K8sError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let op = Op::new("get", "namespaces", "namespace", namespace).named(namespace);
        self.call(op, api.get(namespace)).await.map(|_| ())
    }

    async fn list_workloads(&self, namespace: &str, kind: WorkloadKind) -> Result<Vec<Workload>, K8sError> {
        let op = Op::new("list", kind.resource(), kind.name(), namespace);
        let params = ListParams::default();
        let mut workloads: Vec<Workload> = match kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                self.call(op, api.list(&params)).await?.items.iter().map(deployment_workload).collect()
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
                self.call(op, api.list(&params)).await?.items.iter().map(statefulset_workload).collect()
            }
        };
        if workloads.is_empty() {
            self.empty_list_check(namespace).await?;
        }
        workloads.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(workloads)
    }

    async fn list_revisions(&self, namespace: &str) -> Result<Vec<RevisionInfo>, K8sError> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let op = Op::new("list", "replicasets", "replicaset", namespace);
        let list = self.call(op, api.list(&ListParams::default())).await?;
        let mut revisions: Vec<RevisionInfo> = list.items.iter().map(revision_info).collect();
        if revisions.is_empty() {
            self.empty_list_check(namespace).await?;
        }
        revisions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(revisions)
    }

    async fn list_pods(&self, namespace: &str) -> Result<Vec<PodInfo>, K8sError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let op = Op::new("list", "pods", "pod", namespace);
        let list = self.call(op, api.list(&ListParams::default())).await?;
        let mut pods: Vec<PodInfo> = list.items.iter().map(pod_info).collect();
        if pods.is_empty() {
            self.empty_list_check(namespace).await?;
        }
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    async fn scale_workload(
        &self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        replicas: u32,
    ) -> Result<u32, K8sError> {
        let wanted = i32::try_from(replicas)
            .map_err(|_| K8sError::Other(format!("cannot scale {} `{name}` to {replicas} replicas", kind.name())))?;
        match kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                self.scale_via(api, "deployments/scale", kind, namespace, name, wanted).await
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
                self.scale_via(api, "statefulsets/scale", kind, namespace, name, wanted).await
            }
        }
    }

    /// Through the Scale subresource, as `kubectl scale` does: it needs only the
    /// `deployments/scale` permission, not the right to rewrite the whole object, and a
    /// merge patch of `spec.replicas` cannot clobber a concurrent change to the template.
    async fn scale_via<K: Clone + DeserializeOwned>(
        &self,
        api: Api<K>,
        resource: &'static str,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i32,
    ) -> Result<u32, K8sError> {
        let current =
            self.call(Op::new("get", resource, kind.name(), namespace).named(name), api.get_scale(name)).await?;
        let previous = current.spec.and_then(|spec| spec.replicas).map_or(0, count);
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        let op = Op::new("patch", resource, kind.name(), namespace).named(name);
        self.call(op, api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))).await?;
        tracing::info!(context = %self.target.context, namespace, name, previous, replicas, "scaled {}", kind.name());
        Ok(previous)
    }

    /// Opens the log stream; the lines are read by [`LogLines`].
    async fn open_logs(
        &self,
        namespace: &str,
        pod: &str,
        options: &LogOptions,
    ) -> Result<Pin<Box<dyn AsyncBufRead + Send>>, K8sError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: options.container.clone(),
            follow: options.follow,
            tail_lines: options.tail_lines.map(i64::from),
            previous: options.previous,
            ..LogParams::default()
        };
        let op = Op::new("get", "pods/log", "pod", namespace).named(pod);
        let reader = self.call(op, api.log_stream(pod, &params)).await?;
        Ok(Box::pin(reader))
    }

    /// Maps an error of the watcher of `resource` (`deployments`, `pods`).
    async fn watcher_error(&self, namespace: &str, resource: &'static str, err: watcher::Error) -> K8sError {
        let kind = resource.trim_end_matches('s');
        match err {
            watcher::Error::InitialListFailed(err) => self.error(Op::new("list", resource, kind, namespace), err).await,
            watcher::Error::WatchStartFailed(err) | watcher::Error::WatchFailed(err) => {
                self.error(Op::new("watch", resource, kind, namespace), err).await
            }
            watcher::Error::WatchError(status) => {
                self.error(Op::new("watch", resource, kind, namespace), kube::Error::Api(status)).await
            }
            watcher::Error::NoResourceVersion => K8sError::Other(format!(
                "cannot watch {resource} in namespace `{namespace}` (context `{}`): the server sent no resourceVersion",
                self.target.context
            )),
        }
    }
}

impl Cluster for KubeCluster {
    fn target(&self) -> &ClusterTarget {
        &self.target
    }

    fn check_namespace<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<(), K8sError>> {
        self.check_namespace_inner(namespace).boxed()
    }

    fn workloads<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
    ) -> BoxFuture<'a, Result<Vec<Workload>, K8sError>> {
        self.list_workloads(namespace, kind).boxed()
    }

    fn revisions<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<RevisionInfo>, K8sError>> {
        self.list_revisions(namespace).boxed()
    }

    fn pods<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<PodInfo>, K8sError>> {
        self.list_pods(namespace).boxed()
    }

    fn watch(&self, namespace: &str) -> BoxStream<'static, Result<WatchEvent, K8sError>> {
        // Everything runs inside the stream, nothing is spawned: dropping the stream drops
        // the watch connections and timers with it.
        let watch = NamespaceWatch::new(self.clone(), namespace.to_owned());
        futures::stream::unfold(watch, |mut watch| async move {
            let item = watch.next().await?;
            Some((item, watch))
        })
        .boxed()
    }

    fn logs(&self, namespace: &str, pod: &str, options: LogOptions) -> BoxStream<'static, Result<String, K8sError>> {
        let lines = LogLines {
            cluster: self.clone(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            options,
            reader: None,
            done: false,
        };
        futures::stream::unfold(lines, |mut lines| async move {
            let item = lines.next().await?;
            Some((item, lines))
        })
        .boxed()
    }

    fn scale<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
        name: &'a str,
        replicas: u32,
    ) -> BoxFuture<'a, Result<u32, K8sError>> {
        self.scale_workload(namespace, kind, name, replicas).boxed()
    }
}

/// What a request was doing, for its error.
#[derive(Debug, Clone, Copy)]
struct Op<'a> {
    /// kubectl's (and RBAC's) verb: get, list, watch, patch, update.
    verb: &'static str,
    /// As RBAC names it: `deployments`, `deployments/scale`, `pods/log`.
    resource: &'static str,
    /// The singular kind, for "deployment `web` not found".
    kind: &'static str,
    namespace: &'a str,
    name: Option<&'a str>,
}

impl<'a> Op<'a> {
    fn new(verb: &'static str, resource: &'static str, kind: &'static str, namespace: &'a str) -> Op<'a> {
        Op { verb, resource, kind, namespace, name: None }
    }

    fn named(self, name: &'a str) -> Op<'a> {
        Op { name: Some(name), ..self }
    }

    fn describe(&self) -> String {
        let what = match self.name {
            Some(name) if self.resource == "namespaces" => return format!("{} namespace `{name}`", self.verb),
            Some(name) => format!("{} `{name}`", self.resource),
            None => self.resource.to_owned(),
        };
        format!("{} {what} in namespace `{}`", self.verb, self.namespace)
    }
}

/// An error and its sources as one line: "client error (Connect): tcp connect error:
/// Connection refused (os error 111)". Skips a source whose text its parent already shows.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}

fn kubeconfig_error(err: KubeconfigError) -> K8sError {
    match &err {
        KubeconfigError::ReadConfig(io, path) if io.kind() == std::io::ErrorKind::NotFound => {
            K8sError::NoKubeconfig(format!("{} does not exist", path.display()))
        }
        KubeconfigError::FindPath => K8sError::NoKubeconfig("no home directory to find ~/.kube/config in".into()),
        _ => K8sError::Other(format!("cannot read the kubeconfig: {}", chain(&err))),
    }
}

// --- the namespace watch -----------------------------------------------------------------------

type Events<K> = BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;

/// The objects of one kind, as the watcher reported them, kept only as the
/// few fields a wait looks at (`T`): a full Pod object is many times larger,
/// and a namespace may hold thousands.
struct Objects<T> {
    live: BTreeMap<String, T>,
    /// Filled during a (re)list, swapped in at `InitDone`: objects missing from a re-list
    /// (deleted while the watch was down) disappear then.
    relisting: Option<BTreeMap<String, T>>,
    /// A complete list arrived since the watch was (re)opened.
    listed: bool,
}

impl<T> Objects<T> {
    fn new() -> Objects<T> {
        Objects { live: BTreeMap::new(), relisting: None, listed: false }
    }

    /// Applies an event, keeping `keep(object)`; true when what is visible changed.
    fn apply<K: ResourceExt>(&mut self, event: watcher::Event<K>, keep: fn(&K) -> T) -> bool {
        match event {
            watcher::Event::Init => {
                self.relisting = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(object) => {
                self.relisting.get_or_insert_with(BTreeMap::new).insert(object.name_any(), keep(&object));
                false
            }
            watcher::Event::InitDone => {
                self.live = self.relisting.take().unwrap_or_default();
                self.listed = true;
                true
            }
            watcher::Event::Apply(object) => {
                self.live.insert(object.name_any(), keep(&object));
                true
            }
            watcher::Event::Delete(object) => self.live.remove(&object.name_any()).is_some(),
        }
    }
}

struct Watchers {
    deployments: Events<Deployment>,
    pods: Events<Pod>,
}

/// What woke the watch up. Lives for one loop turn on the stack, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Deployment(Option<Result<watcher::Event<Deployment>, watcher::Error>>),
    Pod(Option<Result<watcher::Event<Pod>, watcher::Error>>),
    Flush,
}

/// The state behind [`Cluster::watch`]: two kube watchers (Deployments, Pods), the
/// objects they reported, and the reconnect bookkeeping.
struct NamespaceWatch {
    cluster: KubeCluster,
    namespace: String,
    deployments: Objects<Workload>,
    pods: Objects<PodInfo>,
    /// `None` while waiting to retry after a failure.
    watchers: Option<Watchers>,
    /// Items ready to hand out, oldest first.
    outbox: VecDeque<Result<WatchEvent, K8sError>>,
    /// When the pending (coalesced) snapshot is due.
    flush_at: Option<Instant>,
    /// When to reopen the watchers after a failure.
    retry_at: Option<Instant>,
    /// Failures in a row; 0 while healthy.
    failures: u32,
    /// The watchers were (re)opened and have not both listed yet.
    fresh: bool,
    /// A snapshot went out: from then on every failure is retried, none ends the stream.
    started: bool,
    last: Option<Snapshot>,
    finished: bool,
}

impl NamespaceWatch {
    fn new(cluster: KubeCluster, namespace: String) -> NamespaceWatch {
        NamespaceWatch {
            cluster,
            namespace,
            deployments: Objects::new(),
            pods: Objects::new(),
            watchers: None,
            outbox: VecDeque::new(),
            flush_at: None,
            retry_at: None,
            failures: 0,
            fresh: false,
            started: false,
            last: None,
            finished: false,
        }
    }

    async fn next(&mut self) -> Option<Result<WatchEvent, K8sError>> {
        loop {
            if let Some(item) = self.outbox.pop_front() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            let Some(watchers) = self.watchers.as_mut() else {
                if let Some(at) = self.retry_at.take() {
                    tokio::time::sleep_until(at).await;
                }
                if let Err(err) = self.open().await {
                    self.broken(err);
                }
                continue;
            };
            let flush_at = self.flush_at;
            let wake = tokio::select! {
                event = watchers.deployments.next() => Wake::Deployment(event),
                event = watchers.pods.next() => Wake::Pod(event),
                () = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => Wake::Flush,
            };
            match wake {
                Wake::Deployment(Some(Ok(event))) => {
                    let changed = self.deployments.apply(event, deployment_workload);
                    self.changed(changed);
                }
                Wake::Pod(Some(Ok(event))) => {
                    let changed = self.pods.apply(event, pod_info);
                    self.changed(changed);
                }
                Wake::Deployment(Some(Err(err))) => self.watcher_failed("deployments", err).await,
                Wake::Pod(Some(Err(err))) => self.watcher_failed("pods", err).await,
                Wake::Deployment(None) | Wake::Pod(None) => {
                    // kube's watcher never ends on its own; treat it as a break all the same.
                    self.broken(K8sError::Other(format!("the watch of namespace `{}` ended", self.namespace)));
                }
                Wake::Flush => self.flush(false),
            }
        }
    }

    /// (Re)opens both watchers; each starts with a full list.
    async fn open(&mut self) -> Result<(), K8sError> {
        if !self.started {
            // Listing a namespace that does not exist succeeds (empty), so ask for it
            // first. Forbidden to read Namespaces is no reason not to watch.
            match self.cluster.check_namespace_inner(&self.namespace).await {
                Ok(()) | Err(K8sError::Forbidden { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        // Lists in pages of 100 (kube's default is 500): a page of full Pod
        // objects is parsed at once, and it is most of a wait's peak memory.
        let config = watcher::Config::default().timeout(WATCH_TIMEOUT_SECS).page_size(LIST_PAGE_SIZE);
        let client = self.cluster.client.clone();
        self.watchers = Some(Watchers {
            deployments: watcher(Api::namespaced(client.clone(), &self.namespace), config.clone()).boxed(),
            pods: watcher(Api::namespaced(client, &self.namespace), config).boxed(),
        });
        self.deployments.listed = false;
        self.pods.listed = false;
        self.fresh = true;
        Ok(())
    }

    fn changed(&mut self, changed: bool) {
        if !(self.deployments.listed && self.pods.listed) {
            return;
        }
        if self.fresh {
            self.fresh = false;
            if self.failures > 0 {
                self.failures = 0;
                tracing::info!(context = %self.cluster.target.context, namespace = %self.namespace, "watch reconnected");
                self.outbox.push_back(Ok(WatchEvent::Reconnected));
            }
            self.flush(true);
        } else if changed {
            self.flush_at.get_or_insert_with(|| Instant::now() + COALESCE);
        }
    }

    /// Queues a snapshot unless it shows nothing new (`force`: queue it anyway).
    fn flush(&mut self, force: bool) {
        self.flush_at = None;
        let snapshot = Snapshot {
            deployments: self.deployments.live.values().cloned().collect(),
            pods: self.pods.live.values().cloned().collect(),
        };
        if force || self.last.as_ref() != Some(&snapshot) {
            self.started = true;
            self.last = Some(snapshot.clone());
            self.outbox.push_back(Ok(WatchEvent::Snapshot(snapshot)));
        }
    }

    async fn watcher_failed(&mut self, resource: &'static str, err: watcher::Error) {
        if let watcher::Error::WatchError(status) = &err
            && status.code == 410
        {
            // The resourceVersion expired (compaction, a restarted server): the watcher
            // lists again by itself and reports it as Init…InitDone. Not a break.
            tracing::debug!(namespace = %self.namespace, resource, "watch expired, relisting");
            return;
        }
        let err = self.cluster.watcher_error(&self.namespace, resource, err).await;
        self.broken(err);
    }

    /// A failure: ends the stream when the watch never worked and cannot (forbidden,
    /// namespace missing); otherwise drops the watchers and schedules a retry.
    fn broken(&mut self, err: K8sError) {
        self.watchers = None;
        self.flush_at = None;
        if !self.started && matches!(err, K8sError::Forbidden { .. } | K8sError::NamespaceNotFound { .. }) {
            self.outbox.push_back(Err(err));
            self.finished = true;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let retry_in = backoff(self.failures);
        self.retry_at = Some(Instant::now() + retry_in);
        tracing::warn!(
            context = %self.cluster.target.context, namespace = %self.namespace, attempt = self.failures,
            ?retry_in, "watch broken: {err}"
        );
        self.outbox.push_back(Ok(WatchEvent::Reconnecting {
            reason: err.to_string(),
            attempt: self.failures,
            retry_in,
        }));
    }
}

/// 250 ms, 500 ms, 1 s… up to 8 s: quick after a blip, gentle on a server that is down.
fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    BACKOFF_FIRST.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

// --- logs ----------------------------------------------------------------------------------------

/// The state behind [`Cluster::logs`]: the request is sent on the first poll.
struct LogLines {
    cluster: KubeCluster,
    namespace: String,
    pod: String,
    options: LogOptions,
    reader: Option<Pin<Box<dyn AsyncBufRead + Send>>>,
    done: bool,
}

impl LogLines {
    async fn next(&mut self) -> Option<Result<String, K8sError>> {
        if self.done {
            return None;
        }
        if self.reader.is_none() {
            match self.cluster.open_logs(&self.namespace, &self.pod, &self.options).await {
                Ok(reader) => self.reader = Some(reader),
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        let reader = self.reader.as_mut()?;
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                // A log is whatever the program wrote; a stray byte must not end the stream.
                Some(Ok(String::from_utf8_lossy(&line).into_owned()))
            }
            Err(err) => {
                self.done = true;
                Some(Err(K8sError::Unreachable {
                    server: self.cluster.target.server.clone(),
                    context: self.cluster.target.context.clone(),
                    reason: format!("the log stream of pod `{}` broke: {}", self.pod, chain(&err)),
                }))
            }
        }
    }
}

// --- conversions -----------------------------------------------------------------------------------

/// A count from the API (`int32`, never negative in practice) as the `u32` the UI uses.
fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn count_opt(value: Option<i32>) -> u32 {
    value.map_or(0, count)
}

fn timestamp(time: &Time) -> Option<jiff::Timestamp> {
    // k8s-openapi has its own jiff; the nanosecond count is the common ground.
    jiff::Timestamp::from_nanosecond(time.0.as_nanosecond()).ok()
}

fn created(meta: &ObjectMeta) -> Option<jiff::Timestamp> {
    meta.creation_timestamp.as_ref().and_then(timestamp)
}

fn revision(meta: &ObjectMeta) -> Option<u64> {
    meta.annotations.as_ref()?.get(REVISION_ANNOTATION)?.parse().ok()
}

/// `status.observedGeneration` has caught up with `metadata.generation`: the status
/// describes the current spec, not the one before the last change.
fn observed(generation: Option<i64>, observed_generation: Option<i64>) -> bool {
    match (generation, observed_generation) {
        (None, _) => true,
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
    }
}

fn template_containers(template: Option<&PodTemplateSpec>) -> Vec<(String, String)> {
    template
        .and_then(|template| template.spec.as_ref())
        .map(|spec| {
            spec.containers
                .iter()
                .map(|container| (container.name.clone(), container.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn deployment_workload(deployment: &Deployment) -> Workload {
    let spec = deployment.spec.as_ref();
    let status = deployment.status.as_ref();
    Workload {
        kind: WorkloadKind::Deployment,
        name: deployment.name_any(),
        desired: count(spec.and_then(|spec| spec.replicas).unwrap_or(1)),
        current: count_opt(status.and_then(|status| status.replicas)),
        updated: count_opt(status.and_then(|status| status.updated_replicas)),
        ready: count_opt(status.and_then(|status| status.ready_replicas)),
        available: count_opt(status.and_then(|status| status.available_replicas)),
        observed: status.is_some()
            && observed(deployment.metadata.generation, status.and_then(|status| status.observed_generation)),
        containers: template_containers(spec.map(|spec| &spec.template)),
        revision: revision(&deployment.metadata),
        selector: spec.and_then(|spec| spec.selector.match_labels.clone()).unwrap_or_default(),
        created: created(&deployment.metadata),
    }
}

fn statefulset_workload(statefulset: &StatefulSet) -> Workload {
    let spec = statefulset.spec.as_ref();
    let status = statefulset.status.as_ref();
    Workload {
        kind: WorkloadKind::StatefulSet,
        name: statefulset.name_any(),
        desired: count(spec.and_then(|spec| spec.replicas).unwrap_or(1)),
        current: status.map_or(0, |status| count(status.replicas)),
        updated: count_opt(status.and_then(|status| status.updated_replicas)),
        ready: count_opt(status.and_then(|status| status.ready_replicas)),
        available: count_opt(status.and_then(|status| status.available_replicas)),
        observed: status.is_some()
            && observed(statefulset.metadata.generation, status.and_then(|status| status.observed_generation)),
        containers: template_containers(spec.map(|spec| &spec.template)),
        revision: revision(&statefulset.metadata),
        selector: spec.and_then(|spec| spec.selector.match_labels.clone()).unwrap_or_default(),
        created: created(&statefulset.metadata),
    }
}

fn revision_info(replicaset: &ReplicaSet) -> RevisionInfo {
    let deployment = replicaset
        .metadata
        .owner_references
        .as_ref()
        .and_then(|owners| owners.iter().find(|owner| owner.controller == Some(true) && owner.kind == "Deployment"))
        .map(|owner| owner.name.clone());
    RevisionInfo {
        name: replicaset.name_any(),
        deployment,
        revision: revision(&replicaset.metadata),
        containers: template_containers(replicaset.spec.as_ref().and_then(|spec| spec.template.as_ref())),
        created: created(&replicaset.metadata),
        replicas: replicaset.status.as_ref().map_or(0, |status| count(status.replicas)),
    }
}

/// A terminated container's reason as kubectl prints it: the reason, else the signal or
/// exit code.
fn terminated_reason(terminated: &ContainerStateTerminated) -> String {
    match terminated.reason.as_deref().filter(|reason| !reason.is_empty()) {
        Some(reason) => reason.to_owned(),
        None => match terminated.signal.filter(|signal| *signal != 0) {
            Some(signal) => format!("Signal:{signal}"),
            None => format!("ExitCode:{}", terminated.exit_code),
        },
    }
}

fn non_empty(text: Option<&String>) -> Option<String> {
    text.filter(|text| !text.is_empty()).cloned()
}

/// Why an init container keeps the pod from starting (`Init:CrashLoopBackOff`,
/// `Init:0/2`), as kubectl shows it; `None` when they all finished.
fn init_reason(pod: &Pod, statuses: &[ContainerStatus]) -> Option<(String, Option<String>)> {
    let specs = pod.spec.as_ref().and_then(|spec| spec.init_containers.as_deref()).unwrap_or_default();
    for (index, status) in statuses.iter().enumerate() {
        let state = status.state.as_ref();
        let terminated = state.and_then(|state| state.terminated.as_ref());
        let waiting = state.and_then(|state| state.waiting.as_ref());
        if terminated.is_some_and(|terminated| terminated.exit_code == 0) {
            continue;
        }
        // A sidecar (restartPolicy Always) keeps running alongside the app once started.
        let sidecar =
            specs.iter().any(|spec| spec.name == status.name && spec.restart_policy.as_deref() == Some("Always"));
        if sidecar && status.started == Some(true) {
            continue;
        }
        if let Some(terminated) = terminated {
            return Some((format!("Init:{}", terminated_reason(terminated)), non_empty(terminated.message.as_ref())));
        }
        if let Some(waiting) = waiting
            && let Some(reason) = waiting.reason.as_deref().filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            return Some((format!("Init:{reason}"), non_empty(waiting.message.as_ref())));
        }
        return Some((format!("Init:{index}/{}", specs.len()), None));
    }
    None
}

/// A pod as `kubectl get pods` shows it: the STATUS reason from the container states
/// (the first container's wins), READY counts and RESTARTS.
fn pod_info(pod: &Pod) -> PodInfo {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let phase = status.and_then(|status| status.phase.clone()).unwrap_or_else(|| "Pending".to_owned());
    let init_statuses = status.and_then(|status| status.init_container_statuses.as_deref()).unwrap_or_default();
    let statuses = status.and_then(|status| status.container_statuses.as_deref()).unwrap_or_default();
    let ready = status
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));

    let mut reason = non_empty(status.and_then(|status| status.reason.as_ref()));
    let mut message = non_empty(status.and_then(|status| status.message.as_ref()));
    let mut ready_containers = 0;
    if let Some((init_reason, init_message)) = init_reason(pod, init_statuses) {
        reason = Some(init_reason);
        message = init_message;
    } else {
        let mut running = false;
        // Last to first, so that the first container's trouble is what shows, as in kubectl.
        for container in statuses.iter().rev() {
            let state = container.state.as_ref();
            let waiting = state
                .and_then(|state| state.waiting.as_ref())
                .filter(|waiting| waiting.reason.as_deref().is_some_and(|reason| !reason.is_empty()));
            let terminated = state.and_then(|state| state.terminated.as_ref());
            if let Some(waiting) = waiting {
                let waiting_reason = waiting.reason.clone().unwrap_or_default();
                let last_exit = container.last_state.as_ref().and_then(|last| last.terminated.as_ref());
                message = match last_exit {
                    // Crash-looping because it runs out of memory: the back-off message
                    // says nothing, the last exit says what to fix.
                    Some(last)
                        if waiting_reason == "CrashLoopBackOff" && last.reason.as_deref() == Some("OOMKilled") =>
                    {
                        Some(format!("last exit: OOMKilled (exit {})", last.exit_code))
                    }
                    _ => non_empty(waiting.message.as_ref()),
                };
                reason = Some(waiting_reason);
            } else if let Some(terminated) = terminated {
                reason = Some(terminated_reason(terminated));
                message = non_empty(terminated.message.as_ref());
            } else if container.ready && state.is_some_and(|state| state.running.is_some()) {
                running = true;
                ready_containers += 1;
            }
        }
        // One container finished, another still runs: the pod is not "Completed".
        if reason.as_deref() == Some("Completed") && running {
            reason = if ready { None } else { Some("NotReady".to_owned()) };
            message = None;
        }
    }
    if reason.as_deref() == Some(phase.as_str()) {
        reason = None;
    }
    PodInfo {
        name: pod.name_any(),
        phase,
        ready,
        ready_containers,
        containers: spec.map_or(0, |spec| u32::try_from(spec.containers.len()).unwrap_or(u32::MAX)),
        reason,
        message,
        restarts: init_statuses
            .iter()
            .chain(statuses)
            .fold(0u32, |sum, container| sum.saturating_add(count(container.restart_count))),
        created: created(&pod.metadata),
        images: spec
            .map(|spec| spec.containers.iter().map(|c| c.image.clone().unwrap_or_default()).collect())
            .unwrap_or_default(),
        node: spec.and_then(|spec| spec.node_name.clone()),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        controller: pod
            .metadata
            .owner_references
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|owner| owner.controller == Some(true))
            .map(|owner| owner.kind.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1", "labels": {"app": "web"}, "creationTimestamp": "2025-01-02T03:04:05Z"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "web", "image": "web:1"}, {"name": "proxy", "image": "envoy:1"}]},
            "status": status,
        }))
        .expect("a pod")
    }

    fn running(name: &str, ready: bool, restarts: i32) -> Value {
        json!({"name": name, "image": "x", "imageID": "", "ready": ready, "restartCount": restarts,
               "state": {"running": {"startedAt": "2025-01-02T03:04:06Z"}}})
    }

    #[test]
    fn a_healthy_pod_is_running_with_its_counts() {
        let info = pod_info(&pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [running("web", true, 2), running("proxy", true, 1)],
        })));
        assert_eq!((info.status(), info.reason, info.message), ("Running".into(), None, None));
        assert_eq!((info.ready, info.ready_containers, info.containers, info.restarts), (true, 2, 2, 3));
        assert_eq!(info.images, ["web:1", "envoy:1"]);
        assert_eq!(info.node.as_deref(), Some("node-a"));
        assert_eq!(info.created, Some("2025-01-02T03:04:05Z".parse().expect("timestamp")));
    }

    #[test]
    fn the_first_containers_trouble_shows_and_an_oom_loop_says_so() {
        let oom = json!({"name": "web", "image": "x", "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}});
        let pull = json!({"name": "proxy", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}});
        let info = pod_info(&pod(json!({"phase": "Running", "containerStatuses": [oom.clone(), pull.clone()]})));
        assert_eq!(info.status(), "CrashLoopBackOff");
        assert_eq!(info.message.as_deref(), Some("last exit: OOMKilled (exit 137)"));
        assert_eq!((info.ready, info.ready_containers, info.restarts), (false, 0, 4));

        // A crash loop for another reason keeps the kubelet's message.
        let mut error = oom;
        error["lastState"]["terminated"]["reason"] = json!("Error");
        let info = pod_info(&pod(json!({"phase": "Running", "containerStatuses": [error, pull]})));
        assert_eq!(info.message.as_deref(), Some("back-off 40s restarting failed container"));
    }

    #[test]
    fn terminated_containers_init_containers_and_deletion() {
        let killed = json!({"name": "web", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 143, "signal": 15}}});
        let info = pod_info(&pod(json!({"phase": "Failed", "containerStatuses": [killed]})));
        assert_eq!(info.status(), "Signal:15");

        // One container completed while the other still runs: not "Completed".
        let done = json!({"name": "web", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let info = pod_info(&pod(json!({"phase": "Running", "containerStatuses": [done, running("proxy", true, 0)]})));
        assert_eq!(info.status(), "NotReady");

        let mut waiting_init = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "migrate", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}));
        if let Some(spec) = waiting_init.spec.as_mut() {
            spec.init_containers =
                Some(vec![k8s_openapi::api::core::v1::Container { name: "migrate".into(), ..Default::default() }]);
        }
        let info = pod_info(&waiting_init);
        assert_eq!((info.status(), info.restarts), ("Init:CrashLoopBackOff".into(), 3));

        let mut deleted = pod(json!({"phase": "Running", "containerStatuses": [running("web", true, 0)]}));
        deleted.metadata.deletion_timestamp = deleted.metadata.creation_timestamp.clone();
        let info = pod_info(&deleted);
        assert!(info.terminating);
        assert_eq!(info.status(), "Terminating");

        let evicted = pod_info(&pod(json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"})));
        assert_eq!((evicted.status(), evicted.message.as_deref()), ("Evicted".into(), Some("low on memory")));
    }

    #[test]
    fn a_deployment_is_observed_only_when_its_status_caught_up() {
        let deployment = |generation: i64, observed: i64| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "web", "generation": generation,
                             "annotations": {"deployment.kubernetes.io/revision": "7"}},
                "spec": {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}},
                "status": {"observedGeneration": observed, "replicas": 1, "updatedReplicas": 1,
                           "readyReplicas": 1, "availableReplicas": 1},
            }))
            .expect("a deployment")
        };
        let current = deployment_workload(&deployment(3, 3));
        assert_eq!((current.desired, current.revision, current.observed), (1, Some(7), true));
        assert!(current.is_rolled_out());
        assert!(!deployment_workload(&deployment(4, 3)).is_rolled_out());
    }

    #[test]
    fn the_backoff_doubles_up_to_eight_seconds() {
        let pauses: Vec<u128> = (1..=8).map(|attempt| backoff(attempt).as_millis()).collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn relisting_drops_what_vanished() {
        let named = |name: &str| -> Pod { serde_json::from_value(json!({"metadata": {"name": name}})).expect("pod") };
        let mut objects: Objects<String> = Objects::new();
        let keep: fn(&Pod) -> String = |pod| pod.name_any();
        for event in
            [watcher::Event::Init, watcher::Event::InitApply(named("a")), watcher::Event::InitApply(named("b"))]
        {
            assert!(!objects.apply(event, keep), "nothing is visible before the list is complete");
        }
        assert!(objects.apply(watcher::Event::InitDone, keep));
        assert!(objects.apply(watcher::Event::Apply(named("c")), keep));
        // A re-list (after a 410 or a reconnect) without b: b is gone, c is kept.
        objects.apply(watcher::Event::Init, keep);
        objects.apply(watcher::Event::InitApply(named("a")), keep);
        objects.apply(watcher::Event::InitApply(named("c")), keep);
        assert_eq!(objects.live.keys().collect::<Vec<_>>(), ["a", "b", "c"], "the old state shows until InitDone");
        objects.apply(watcher::Event::InitDone, keep);
        assert_eq!(objects.live.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert!(!objects.apply(watcher::Event::Delete(named("b")), keep), "deleting the unknown changes nothing");
    }
}
