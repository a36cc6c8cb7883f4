//! The namespace watch behind [`KubeCluster`]'s `Cluster::watch`: two kube watchers
//! (Deployments, Pods) whose events are folded into coalesced [`Snapshot`]s, with
//! reconnection and back-off when the connection breaks.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::time::Instant;

use super::KubeCluster;
use super::convert::{deployment_workload, pod_info};
use crate::engine::k8s::{K8sError, PodInfo, Snapshot, WatchEvent, Workload};

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

/// The state behind [`Cluster::watch`](crate::engine::k8s::Cluster::watch): two kube
/// watchers (Deployments, Pods), the objects they reported, and the reconnect bookkeeping.
pub(super) struct NamespaceWatch {
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
    pub(super) fn new(cluster: KubeCluster, namespace: String) -> NamespaceWatch {
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

    pub(super) async fn next(&mut self) -> Option<Result<WatchEvent, K8sError>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
