//! The behaviour every [`Cluster`] must show, as cases that take the cluster and a
//! [`Fixture`] that changes it from the outside: `tests/k8s_cluster.rs` runs them against the
//! real kube client and the Kubernetes API emulator (its fixture writes with `kubectl` and the
//! emulator's hooks), and a simulated cluster can run the very same cases with a fixture of
//! its own. Each case uses its own namespace.
//!
//! Include it with `#[path = "support/k8s_cases.rs"] mod k8s_cases;` next to `mod support;`.
//! It depends on the crate, `support`, `futures` and `tokio`. Waits are polls against a generous deadline, never fixed
//! sleeps: a loaded machine makes a case slower, not flaky.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use drillbook::engine::k8s::{
    Cluster, K8sError, LogOptions, PodInfo, RevisionInfo, Snapshot, WatchEvent, Workload, WorkloadKind,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::Instant;

use crate::support::wait_for_async;

/// Long enough for anything on a loaded 2-core machine; a pass takes a fraction of it.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub type Watch = BoxStream<'static, Result<WatchEvent, K8sError>>;

/// Changes the cluster the way an operator or a controller would, without going through the
/// [`Cluster`] under test.
pub trait Fixture {
    fn create_namespace(&self, ns: &str);
    /// A one-container Deployment (container NAME, labels and selector `app=NAME`); an
    /// update rolls out like `kubectl set image`.
    fn apply_deployment(&self, ns: &str, name: &str, image: &str, replicas: u32);
    /// The same shape as a StatefulSet (pods NAME-0, NAME-1…).
    fn apply_statefulset(&self, ns: &str, name: &str, image: &str, replicas: u32);
    /// Changes the image of the deployment's container (named like the deployment).
    fn set_image(&self, ns: &str, deployment: &str, image: &str);
    /// Pods whose image contains `image_contains` fail: "CrashLoopBackOff" (restarts
    /// climbing), "OOMKilled" (crash-looping, the last exit OOMKilled with code 137) or
    /// "ImagePullBackOff".
    fn fail_image(&self, image_contains: &str, reason: &str);
    /// Appends lines to the log of the pod's first container.
    fn append_log(&self, ns: &str, pod: &str, lines: &[&str]);
    /// The namespace's deployments as an independent client prints them (`kubectl get
    /// deployments -o wide`), to cross-check what the cluster under test reads; `None` when
    /// the fixture has no such client.
    fn deployments_table(&self, _ns: &str) -> Option<Vec<DeploymentRow>> {
        None
    }
}

/// One row of `kubectl get deployments -o wide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRow {
    pub name: String,
    /// READY: "ready/desired".
    pub ready: String,
    pub up_to_date: u32,
    pub available: u32,
    pub images: Vec<String>,
    /// SELECTOR: `app=web`.
    pub selector: String,
}

// --- the cases ---------------------------------------------------------------------------------

/// Two `set image` calls later, the deployment shows the third image and revision 3, and the
/// revision history holds every ReplicaSet with its image; another client agrees.
pub async fn case_reads_workloads_and_revisions(cluster: &dyn Cluster, fx: &dyn Fixture) {
    let ns = "case-revisions";
    let image = |tag: &str| format!("registry.example.com:5000/acme/web:{tag}");
    fx.create_namespace(ns);
    fx.apply_deployment(ns, "web", &image("v1"), 2);
    let first = wait_rolled_out(cluster, ns, "web", &image("v1")).await;
    assert_eq!(first.revision, Some(1), "{first:?}");
    fx.set_image(ns, "web", &image("v2"));
    let second = wait_rolled_out(cluster, ns, "web", &image("v2")).await;
    assert_eq!(second.revision, Some(2), "{second:?}");
    fx.set_image(ns, "web", &image("v3"));
    let web = wait_rolled_out(cluster, ns, "web", &image("v3")).await;

    let workloads = ok(cluster.workloads(ns, WorkloadKind::Deployment).await);
    assert_eq!(workloads.len(), 1, "{workloads:?}");
    assert_eq!(workloads[0], web);
    assert_eq!((web.kind, web.name.as_str()), (WorkloadKind::Deployment, "web"));
    assert_eq!(web.containers, [("web".to_owned(), image("v3"))]);
    assert_eq!(web.revision, Some(3), "{web:?}");
    assert_eq!((web.desired, web.current, web.updated, web.ready, web.available), (2, 2, 2, 2, 2), "{web:?}");
    assert_eq!(web.selector, BTreeMap::from([("app".to_owned(), "web".to_owned())]));
    assert!(web.observed && web.created.is_some(), "{web:?}");
    assert!(ok(cluster.workloads(ns, WorkloadKind::StatefulSet).await).is_empty());

    // The old ReplicaSets stay, scaled to nothing, for rollbacks.
    let mut revisions = wait_for_async("the old ReplicaSets to drain", PATIENCE, || async move {
        let revisions: Vec<RevisionInfo> = ok(cluster.revisions(ns).await);
        let drained = revisions.len() == 3
            && revisions.iter().all(|rs| rs.replicas == if rs.revision == Some(3) { 2 } else { 0 });
        if drained { Ok(revisions) } else { Err(format!("{revisions:#?}")) }
    })
    .await;
    let sorted = revisions.windows(2).all(|pair| pair[0].name < pair[1].name);
    assert!(sorted, "revisions come sorted by name: {revisions:#?}");
    revisions.sort_by_key(|rs| rs.revision);
    let numbers: Vec<Option<u64>> = revisions.iter().map(|rs| rs.revision).collect();
    assert_eq!(numbers, [Some(1), Some(2), Some(3)], "{revisions:#?}");
    for (rs, tag) in revisions.iter().zip(["v1", "v2", "v3"]) {
        assert_eq!(rs.deployment.as_deref(), Some("web"), "{rs:?}");
        assert_eq!(rs.containers, [("web".to_owned(), image(tag))], "{rs:?}");
        assert!(rs.name.starts_with("web-") && rs.created.is_some(), "{rs:?}");
    }

    if let Some(rows) = fx.deployments_table(ns) {
        let expected = DeploymentRow {
            name: "web".into(),
            ready: "2/2".into(),
            up_to_date: 2,
            available: 2,
            images: vec![image("v3")],
            selector: "app=web".into(),
        };
        assert_eq!(rows, [expected], "kubectl disagrees with {web:?}");
    }
}

/// A watch started before `set image` reaches the snapshot where the rollout is complete:
/// every pod Ready and on the new image, none left terminating.
pub async fn case_watch_sees_a_rollout_complete(cluster: &dyn Cluster, fx: &dyn Fixture) {
    let ns = "case-watch";
    fx.create_namespace(ns);
    fx.apply_deployment(ns, "api", "example.com/api:1", 3);
    wait_rolled_out(cluster, ns, "api", "example.com/api:1").await;

    let mut watch = cluster.watch(ns);
    let first = match next_event(&mut watch, "the first snapshot").await {
        WatchEvent::Snapshot(snapshot) => snapshot,
        other => panic!("a watch starts with a snapshot, not {other:?}"),
    };
    let api = workload(&first, "api");
    assert_eq!(api.containers, [("api".to_owned(), "example.com/api:1".to_owned())], "{first:#?}");
    assert_eq!(owned_pods(&first, &api).len(), 3, "{first:#?}");

    fx.set_image(ns, "api", "example.com/api:2");
    let (done, events) = watch_until(&mut watch, "api:2 rolled out", |snapshot| {
        let Some(api) = snapshot.deployments.iter().find(|w| w.name == "api") else { return false };
        let pods = owned_pods(snapshot, api);
        api.is_rolled_out()
            && api.containers[0].1 == "example.com/api:2"
            && pods.len() == 3
            && pods.iter().all(|pod| pod.ready && !pod.terminating && pod.images == ["example.com/api:2"])
    })
    .await;
    assert!(
        events.iter().all(|event| matches!(event, WatchEvent::Snapshot(_))),
        "a healthy watch only sends snapshots: {events:#?}"
    );
    let names: Vec<&str> = done.pods.iter().map(|pod| pod.name.as_str()).collect();
    assert!(names.windows(2).all(|pair| pair[0] < pair[1]), "pods come sorted by name: {names:?}");
    for pod in owned_pods(&done, &workload(&done, "api")) {
        assert_eq!((pod.phase.as_str(), pod.status().as_str(), pod.reason.as_ref()), ("Running", "Running", None));
        assert_eq!((pod.ready_containers, pod.containers, pod.restarts), (1, 1, 0), "{pod:?}");
        assert!(pod.node.is_some() && pod.created.is_some(), "{pod:?}");
    }
}

/// Crash-looping, OOM-killed and unpullable images show as kubectl shows them, and the crashed
/// container's log is readable: the last run's, a tail of it, and followed as it grows.
pub async fn case_crash_looping_pods_and_logs(cluster: &dyn Cluster, fx: &dyn Fixture) {
    let ns = "case-crash";
    fx.create_namespace(ns);
    fx.fail_image("crashy", "CrashLoopBackOff");
    fx.fail_image("nopull", "ImagePullBackOff");
    fx.fail_image("oomy", "OOMKilled");
    fx.apply_deployment(ns, "crash", "example.com/app:crashy-1", 1);
    fx.apply_deployment(ns, "pull", "example.com/app:nopull-1", 1);
    fx.apply_deployment(ns, "oom", "example.com/app:oomy-1", 1);

    let pods = wait_for_async("the pods to fail as configured", PATIENCE, || async move {
        let pods = ok(cluster.pods(ns).await);
        let status = |prefix: &str| pods.iter().find(|p| p.name.starts_with(prefix)).map(PodInfo::status);
        let settled = status("crash-").as_deref() == Some("CrashLoopBackOff")
            && status("pull-").as_deref() == Some("ImagePullBackOff")
            && status("oom-").as_deref() == Some("CrashLoopBackOff");
        if settled { Ok(pods) } else { Err(format!("{pods:#?}")) }
    })
    .await;
    let pod = |prefix: &str| pods.iter().find(|p| p.name.starts_with(prefix)).cloned().expect("found above");
    let crash = pod("crash-");
    assert_eq!(crash.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!((crash.phase.as_str(), crash.ready, crash.terminating), ("Running", false, false), "{crash:?}");
    assert_eq!((crash.ready_containers, crash.containers), (0, 1), "{crash:?}");
    assert!(crash.restarts >= 1, "{crash:?}");
    assert_eq!(crash.images, ["example.com/app:crashy-1"]);
    assert_eq!(crash.labels.get("app").map(String::as_str), Some("crash"), "{crash:?}");

    let pull = pod("pull-");
    assert_eq!((pull.phase.as_str(), pull.ready, pull.restarts), ("Pending", false, 0), "{pull:?}");
    assert!(pull.message.as_deref().is_some_and(|m| m.contains("example.com/app:nopull-1")), "{pull:?}");

    let oom = pod("oom-");
    assert_eq!(oom.message.as_deref(), Some("last exit: OOMKilled (exit 137)"), "{oom:?}");

    // The restart count is read afresh, not remembered.
    let (before, crash_name) = (crash.restarts, crash.name.as_str());
    wait_for_async("the crash-looping pod to restart again", PATIENCE, || async move {
        let pods = ok(cluster.pods(ns).await);
        let now = pods.iter().find(|p| p.name == crash_name).map(|p| p.restarts);
        if now.is_some_and(|restarts| restarts > before) { Ok(()) } else { Err(format!("{now:?}")) }
    })
    .await;

    let crashed = named(&ok(cluster.workloads(ns, WorkloadKind::Deployment).await), "crash");
    assert_eq!((crashed.desired, crashed.ready, crashed.available), (1, 0, 0), "{crashed:?}");
    assert!(!crashed.is_rolled_out(), "{crashed:?}");

    // The log of the last (crashed) run, then its tail.
    fx.append_log(ns, &crash.name, &["drill: line one", "drill: line two"]);
    let previous = LogOptions { previous: true, ..LogOptions::default() };
    let lines = read_logs(cluster, ns, &crash.name, previous.clone()).await;
    let ours: Vec<&str> = lines.iter().map(String::as_str).filter(|l| l.starts_with("drill:")).collect();
    assert_eq!(ours, ["drill: line one", "drill: line two"], "{lines:?}");
    assert!(lines.iter().all(|line| !line.contains('\n') && !line.contains('\r')), "{lines:?}");
    let tail = read_logs(cluster, ns, &crash.name, LogOptions { tail_lines: Some(1), ..previous }).await;
    assert_eq!(tail, ["drill: line two"]);

    // Followed: what is there, then what comes.
    let follow = LogOptions { follow: true, ..LogOptions::default() };
    let mut followed = cluster.logs(ns, &crash.name, follow);
    loop {
        if next_line(&mut followed, "the existing log lines").await == "drill: line two" {
            break;
        }
    }
    fx.append_log(ns, &crash.name, &["drill: line three"]);
    assert_eq!(next_line(&mut followed, "the appended line").await, "drill: line three");
    drop(followed);

    // A container that never started has no log to give.
    let mut never = cluster.logs(ns, &pull.name, LogOptions::default());
    let first = tokio::time::timeout(PATIENCE, never.next()).await.expect("an answer in time");
    assert!(matches!(first, Some(Err(_))), "{first:?}");
    let mut missing = cluster.logs(ns, "no-such-pod", LogOptions::default());
    let first = tokio::time::timeout(PATIENCE, missing.next()).await.expect("an answer in time");
    let expected = K8sError::NotFound { kind: "pod".into(), name: "no-such-pod".into(), namespace: ns.into() };
    assert_eq!(first, Some(Err(expected)));
    assert!(missing.next().await.is_none(), "an error ends the log stream");
}

/// Scaling returns the previous count; the deployment then wants 0, another client agrees,
/// and the watch shows the pods terminating, then gone. StatefulSets scale the same way.
pub async fn case_scale_to_zero(cluster: &dyn Cluster, fx: &dyn Fixture) {
    let ns = "case-scale";
    fx.create_namespace(ns);
    fx.apply_deployment(ns, "web", "example.com/web:1", 2);
    fx.apply_statefulset(ns, "db", "example.com/db:1", 2);
    wait_rolled_out(cluster, ns, "web", "example.com/web:1").await;
    wait_for_async("the statefulset to be ready", PATIENCE, || async move {
        let sets = ok(cluster.workloads(ns, WorkloadKind::StatefulSet).await);
        let ready = sets.len() == 1 && sets[0].ready == 2;
        if ready { Ok(()) } else { Err(format!("{sets:#?}")) }
    })
    .await;

    let mut watch = cluster.watch(ns);
    watch_until(&mut watch, "web's two pods Ready", |snapshot| {
        snapshot.deployments.iter().find(|w| w.name == "web").is_some_and(|web| {
            let pods = owned_pods(snapshot, web);
            pods.len() == 2 && pods.iter().all(|pod| pod.ready)
        })
    })
    .await;

    assert_eq!(ok(cluster.scale(ns, WorkloadKind::Deployment, "web", 0).await), 2);
    let web = named(&ok(cluster.workloads(ns, WorkloadKind::Deployment).await), "web");
    assert_eq!(web.desired, 0, "{web:?}");

    let (terminating, _) = watch_until(&mut watch, "web's pods terminating", |snapshot| {
        web_pods(snapshot).iter().any(|pod| pod.terminating)
    })
    .await;
    let pod = web_pods(&terminating).into_iter().find(|pod| pod.terminating).expect("found above");
    assert_eq!(pod.status(), "Terminating", "{pod:?}");
    watch_until(&mut watch, "web's pods gone", |snapshot| web_pods(snapshot).is_empty()).await;
    drop(watch);

    if fx.deployments_table(ns).is_some() {
        wait_for_async("kubectl to show web at 0/0", PATIENCE, || async move {
            let rows = fx.deployments_table(ns).unwrap_or_default();
            let web = rows.iter().find(|row| row.name == "web");
            if web.is_some_and(|row| row.ready == "0/0") { Ok(()) } else { Err(format!("{rows:#?}")) }
        })
        .await;
    }
    // Scaling again reports the new baseline.
    assert_eq!(ok(cluster.scale(ns, WorkloadKind::Deployment, "web", 1).await), 0);

    assert_eq!(ok(cluster.scale(ns, WorkloadKind::StatefulSet, "db", 0).await), 2);
    let sets = ok(cluster.workloads(ns, WorkloadKind::StatefulSet).await);
    assert_eq!((sets.len(), sets[0].name.as_str(), sets[0].desired), (1, "db", 0), "{sets:#?}");
    wait_for_async("db's pods gone", PATIENCE, || async move {
        let pods = ok(cluster.pods(ns).await);
        let left: Vec<&str> = pods.iter().map(|p| p.name.as_str()).filter(|n| n.starts_with("db-")).collect();
        if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
    })
    .await;

    let missing = cluster.scale(ns, WorkloadKind::Deployment, "nope", 1).await;
    let expected = K8sError::NotFound { kind: "deployment".into(), name: "nope".into(), namespace: ns.into() };
    assert_eq!(missing, Err(expected));
}

// --- helpers -----------------------------------------------------------------------------------

/// The value, or a panic that shows the error's message (not just its Debug form).
pub fn ok<T>(result: Result<T, K8sError>) -> T {
    result.unwrap_or_else(|err| panic!("unexpected error: {err}\n{err:?}"))
}

/// Waits until the deployment runs `image` everywhere, rolled out, and returns it.
pub async fn wait_rolled_out(cluster: &dyn Cluster, ns: &str, name: &str, image: &str) -> Workload {
    wait_for_async(&format!("{ns}/{name} to roll out {image}"), PATIENCE, || async move {
        let workloads = ok(cluster.workloads(ns, WorkloadKind::Deployment).await);
        match workloads.iter().find(|w| w.name == name) {
            Some(w) if w.is_rolled_out() && w.containers.iter().all(|(_, i)| i == image) => Ok(w.clone()),
            _ => Err(format!("{workloads:#?}")),
        }
    })
    .await
}

/// The next watch event; panics on an error, the end of the stream or after [`PATIENCE`].
pub async fn next_event(watch: &mut Watch, what: &str) -> WatchEvent {
    match tokio::time::timeout(PATIENCE, watch.next()).await {
        Err(_) => panic!("no watch event within {PATIENCE:?} while waiting for {what}"),
        Ok(None) => panic!("the watch ended while waiting for {what}"),
        Ok(Some(Err(err))) => panic!("the watch failed while waiting for {what}: {err}"),
        Ok(Some(Ok(event))) => event,
    }
}

/// Reads events until a snapshot satisfies `done`; returns it and every event read, itself
/// included. Panics on an error or after [`PATIENCE`], showing the last events.
pub async fn watch_until(
    watch: &mut Watch,
    what: &str,
    mut done: impl FnMut(&Snapshot) -> bool,
) -> (Snapshot, Vec<WatchEvent>) {
    let deadline = Instant::now() + PATIENCE;
    let mut seen: Vec<WatchEvent> = Vec::new();
    loop {
        let last = || format!("{:#?}", &seen[seen.len().saturating_sub(3)..]);
        let event = match tokio::time::timeout_at(deadline, watch.next()).await {
            Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}; last events:\n{}", last()),
            Ok(None) => panic!("the watch ended while waiting for {what}; last events:\n{}", last()),
            Ok(Some(Err(err))) => panic!("the watch failed while waiting for {what}: {err}; before:\n{}", last()),
            Ok(Some(Ok(event))) => event,
        };
        seen.push(event.clone());
        if let WatchEvent::Snapshot(snapshot) = event
            && done(&snapshot)
        {
            return (snapshot, seen);
        }
    }
}

/// A whole (not followed) log, line by line.
pub async fn read_logs(cluster: &dyn Cluster, ns: &str, pod: &str, options: LogOptions) -> Vec<String> {
    let stream = cluster.logs(ns, pod, options);
    let lines: Vec<Result<String, K8sError>> =
        tokio::time::timeout(PATIENCE, stream.collect()).await.expect("the log within the deadline");
    lines.into_iter().map(ok).collect()
}

pub async fn next_line(stream: &mut BoxStream<'static, Result<String, K8sError>>, what: &str) -> String {
    match tokio::time::timeout(PATIENCE, stream.next()).await {
        Err(_) => panic!("no log line within {PATIENCE:?} while waiting for {what}"),
        Ok(None) => panic!("the log ended while waiting for {what}"),
        Ok(Some(line)) => ok(line),
    }
}

/// The named deployment of a snapshot; panics listing them when it is missing.
pub fn workload(snapshot: &Snapshot, name: &str) -> Workload {
    named(&snapshot.deployments, name)
}

/// The named workload of a list; panics showing the list when it is missing.
pub fn named(workloads: &[Workload], name: &str) -> Workload {
    workloads.iter().find(|w| w.name == name).cloned().unwrap_or_else(|| panic!("no workload {name} in {workloads:#?}"))
}

pub fn owned_pods(snapshot: &Snapshot, workload: &Workload) -> Vec<PodInfo> {
    snapshot.pods.iter().filter(|pod| workload.owns(pod)).cloned().collect()
}

/// Pods labelled `app=web`, whether or not the deployment is still in the snapshot.
fn web_pods(snapshot: &Snapshot) -> Vec<PodInfo> {
    snapshot.pods.iter().filter(|pod| pod.labels.get("app").is_some_and(|app| app == "web")).cloned().collect()
}
