//! `KubeCluster` (the real kube client) against the Kubernetes API emulator: the shared cases
//! of `support/k8s_cases.rs`, with a fixture that writes through `kubectl` and the emulator's
//! hooks (so what kubectl wrote is what drillbook must read), then the faults only a real
//! server can have: RBAC denials, unknown contexts, a dead server, a missing namespace, a
//! server restart and dropped watches.
//!
//! Every test starts its own emulator. Waits poll against generous deadlines.

use crate::k8s;
use crate::k8s_cases;
use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use drillbook::engine::k8s::kube_cluster::KubeCluster;
use drillbook::engine::k8s::{Cluster, ClusterTarget, K8sError, LogOptions, Snapshot, WatchEvent, WorkloadKind};
use futures::StreamExt;
use k8s::K8sEmulator;
use k8s_cases::{DeploymentRow, Fixture, PATIENCE, Watch, next_event, ok, watch_until};
use serde_json::json;
use support::{wait_for, wait_for_async};

/// An emulator with a kubeconfig for it.
struct Setup {
    emulator: K8sEmulator,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Setup {
        let emulator = K8sEmulator::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = emulator.kubeconfig(dir.path());
        Setup { emulator, kubeconfig, _dir: dir }
    }

    async fn cluster(&self) -> KubeCluster {
        self.cluster_in(Some("emulator")).await
    }

    async fn cluster_in(&self, context: Option<&str>) -> KubeCluster {
        ok(KubeCluster::from_kubeconfig(&self.kubeconfig, context).await)
    }

    fn fixture(&self) -> EmulatorFixture<'_> {
        EmulatorFixture { emulator: &self.emulator, kubeconfig: &self.kubeconfig }
    }
}

/// Changes the emulator with kubectl and the emulator's hooks, never with drillbook's client.
struct EmulatorFixture<'a> {
    emulator: &'a K8sEmulator,
    kubeconfig: &'a Path,
}

impl EmulatorFixture<'_> {
    fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.emulator.kubectl(self.kubeconfig, args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{}\nemulator log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.emulator.log_tail()
        );
        stdout
    }
}

impl Fixture for EmulatorFixture<'_> {
    fn create_namespace(&self, ns: &str) {
        self.emulator.create_namespace(ns);
    }

    fn apply_deployment(&self, ns: &str, name: &str, image: &str, replicas: u32) {
        self.emulator.apply_deployment(ns, name, image, replicas);
    }

    fn apply_statefulset(&self, ns: &str, name: &str, image: &str, replicas: u32) {
        self.emulator.apply_statefulset(ns, name, image, replicas);
    }

    fn set_image(&self, ns: &str, deployment: &str, image: &str) {
        let out = self.kubectl_ok(&[
            "set",
            "image",
            &format!("deployment/{deployment}"),
            &format!("{deployment}={image}"),
            "-n",
            ns,
        ]);
        assert_eq!(out.trim(), format!("deployment.apps/{deployment} image updated"));
    }

    fn fail_image(&self, image_contains: &str, reason: &str) {
        if reason == "OOMKilled" {
            // What the kernel's OOM killer leaves: SIGKILL, exit code 128 + 9.
            self.emulator
                .hook("image-failure", json!({"image_contains": image_contains, "reason": reason, "exit_code": 137}));
        } else {
            self.emulator.fail_image(image_contains, Some(reason));
        }
    }

    fn append_log(&self, ns: &str, pod: &str, lines: &[&str]) {
        self.emulator.append_log(ns, pod, lines);
    }

    fn deployments_table(&self, ns: &str) -> Option<Vec<DeploymentRow>> {
        let table = self.kubectl_ok(&["get", "deployments", "-o", "wide", "-n", ns]);
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
            "{table}"
        );
        let rows = lines
            .map(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(cells.len(), 8, "{table}");
                let number = |cell: &str| cell.parse::<u32>().unwrap_or_else(|_| panic!("{cell}: {table}"));
                DeploymentRow {
                    name: cells[0].to_owned(),
                    ready: cells[1].to_owned(),
                    up_to_date: number(cells[2]),
                    available: number(cells[3]),
                    images: cells[6].split(',').map(str::to_owned).collect(),
                    selector: cells[7].to_owned(),
                }
            })
            .collect();
        Some(rows)
    }
}

// --- the shared cases ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_workloads_and_revisions_as_kubectl_wrote_them() {
    let setup = Setup::start();
    k8s_cases::case_reads_workloads_and_revisions(&setup.cluster().await, &setup.fixture()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_rollout_complete() {
    let setup = Setup::start();
    k8s_cases::case_watch_sees_a_rollout_complete(&setup.cluster().await, &setup.fixture()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_pods_and_their_logs() {
    let setup = Setup::start();
    // Restarts every 0.3 s instead of every second, so "restarts climb" is seen sooner.
    setup.emulator.hook("settings", json!({"crash_restart_seconds": 0.3}));
    k8s_cases::case_crash_looping_pods_and_logs(&setup.cluster().await, &setup.fixture()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_to_zero_returns_the_previous_count_and_the_pods_go() {
    let setup = Setup::start();
    k8s_cases::case_scale_to_zero(&setup.cluster().await, &setup.fixture()).await;
    // Through the Scale subresource with a merge patch, as kubectl scale does.
    let patches: Vec<serde_json::Value> = setup
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "PATCH" && r["path"].as_str().is_some_and(|p| p.ends_with("/scale")))
        .collect();
    assert_eq!(patches.len(), 3, "{patches:#?}");
    assert!(patches.iter().all(|r| r["contentType"] == "application/merge-patch+json"), "{patches:#?}");
}

// --- emulator-only faults --------------------------------------------------------------------------

#[tokio::test]
async fn the_target_names_the_context_and_its_server() {
    let setup = Setup::start();
    let current = setup.cluster_in(None).await;
    let expected = ClusterTarget { context: "emulator".into(), server: setup.emulator.url.clone() };
    assert_eq!(current.target(), &expected);
    let other = setup.cluster_in(Some("other")).await;
    assert_eq!(other.target(), &ClusterTarget { context: "other".into(), server: "http://127.0.0.1:9".into() });
}

#[tokio::test]
async fn a_forbidden_scale_names_the_verb_the_resource_and_the_namespace() {
    let setup = Setup::start();
    setup.emulator.apply_deployment("locked", "web", "example.com/web:1", 2);
    setup.emulator.forbid("patch", "deployments/scale", "locked");
    let cluster = setup.cluster().await;

    let err = cluster.scale("locked", WorkloadKind::Deployment, "web", 0).await.expect_err("forbidden");
    let K8sError::Forbidden { verb, resource, namespace, context, message } = &err else {
        panic!("expected Forbidden, got {err:?}");
    };
    assert_eq!((verb.as_str(), resource.as_str()), ("patch", "deployments/scale"));
    assert_eq!((namespace.as_str(), context.as_str()), ("locked", "emulator"));
    assert!(message.contains("User \"test\" cannot patch resource \"deployments/scale\""), "{message}");
    let shown = err.to_string();
    for part in ["patch", "deployments/scale", "`locked`", "`emulator`"] {
        assert!(shown.contains(part), "{part} missing from: {shown}");
    }
    let spec = setup.emulator.get("/apis/apps/v1/namespaces/locked/deployments/web")["spec"].clone();
    assert_eq!(spec["replicas"], 2, "nothing changed");
}

#[tokio::test]
async fn forbidden_reads_fail_with_their_verb_and_a_forbidden_watch_ends_at_once() {
    let setup = Setup::start();
    setup.emulator.apply_deployment("locked", "web", "example.com/web:1", 1);
    let pod = wait_for("a pod", PATIENCE, || {
        let pods = setup.emulator.pods("locked", Some("app=web"));
        pods.first().and_then(|pod| pod["metadata"]["name"].as_str().map(str::to_owned))
    });
    setup.emulator.forbid("list", "deployments", "locked");
    setup.emulator.forbid("list", "pods", "locked");
    setup.emulator.forbid("get", "pods/log", "locked");
    let cluster = setup.cluster().await;

    let forbidden = |verb: &str, resource: &str, err: &K8sError| {
        matches!(err, K8sError::Forbidden { verb: v, resource: r, namespace, .. }
            if v == verb && r == resource && namespace == "locked")
    };
    let err = cluster.workloads("locked", WorkloadKind::Deployment).await.expect_err("forbidden");
    assert!(forbidden("list", "deployments", &err), "{err:?}");
    let err = cluster.pods("locked").await.expect_err("forbidden");
    assert!(forbidden("list", "pods", &err), "{err:?}");

    let mut logs = cluster.logs("locked", &pod, LogOptions::default());
    let first = tokio::time::timeout(PATIENCE, logs.next()).await.expect("in time");
    assert!(matches!(&first, Some(Err(err)) if forbidden("get", "pods/log", err)), "{first:?}");

    // A watch that cannot even list ends with that error as its first and only item.
    let mut watch = cluster.watch("locked");
    let first = tokio::time::timeout(PATIENCE, watch.next()).await.expect("in time");
    assert!(
        matches!(&first, Some(Err(err)) if forbidden("list", "deployments", err) || forbidden("list", "pods", err)),
        "{first:?}"
    );
    let end = tokio::time::timeout(PATIENCE, watch.next()).await.expect("in time");
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn an_unknown_context_lists_the_known_ones() {
    let setup = Setup::start();
    let err = KubeCluster::from_kubeconfig(&setup.kubeconfig, Some("prod")).await.expect_err("unknown");
    assert_eq!(
        err,
        K8sError::UnknownContext { context: "prod".into(), known: vec!["emulator".into(), "other".into()] }
    );
    assert!(err.to_string().contains("emulator, other"), "{err}");
}

#[tokio::test]
async fn a_missing_kubeconfig_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nothing-here");
    let err = KubeCluster::from_kubeconfig(&path, None).await.expect_err("missing");
    let K8sError::NoKubeconfig(reason) = &err else { panic!("expected NoKubeconfig, got {err:?}") };
    assert!(reason.contains("nothing-here"), "{reason}");

    std::fs::write(&path, "apiVersion: v1\nkind: Config\nclusters: [\n").expect("write");
    let err = KubeCluster::from_kubeconfig(&path, None).await.expect_err("unparsable");
    assert!(matches!(&err, K8sError::Other(message) if message.contains("kubeconfig")), "{err:?}");
}

#[tokio::test]
async fn a_dead_server_is_unreachable_at_once() {
    let setup = Setup::start();
    let cluster = setup.cluster_in(Some("other")).await;
    // An upper bound only: connection refused comes back at once, and the 5 s connect
    // timeout bounds a server that does not answer at all.
    let err = tokio::time::timeout(Duration::from_secs(20), cluster.check_namespace("default"))
        .await
        .expect("the failure within 20 s")
        .expect_err("unreachable");
    let K8sError::Unreachable { server, context, reason } = &err else { panic!("expected Unreachable, got {err:?}") };
    assert_eq!((server.as_str(), context.as_str()), ("http://127.0.0.1:9", "other"));
    assert!(reason.to_lowercase().contains("connection refused"), "{reason}");
    let err = cluster.workloads("default", WorkloadKind::Deployment).await.expect_err("unreachable");
    assert!(matches!(err, K8sError::Unreachable { .. }), "{err:?}");

    // A watch keeps trying, saying so, with a growing pause.
    let mut watch = cluster.watch("default");
    for (attempt, pause) in [(1, 250), (2, 500)] {
        match next_event(&mut watch, "a reconnect notice").await {
            WatchEvent::Reconnecting { reason, attempt: a, retry_in } => {
                assert_eq!((a, retry_in), (attempt, Duration::from_millis(pause)));
                assert!(reason.contains("http://127.0.0.1:9"), "{reason}");
            }
            other => panic!("expected Reconnecting, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_missing_namespace_is_not_an_empty_one() {
    let setup = Setup::start();
    let cluster = setup.cluster().await;
    let missing = K8sError::NamespaceNotFound { namespace: "nowhere".into(), context: "emulator".into() };
    assert_eq!(cluster.check_namespace("nowhere").await, Err(missing.clone()));
    assert_eq!(cluster.workloads("nowhere", WorkloadKind::Deployment).await, Err(missing.clone()));
    assert_eq!(cluster.workloads("nowhere", WorkloadKind::StatefulSet).await, Err(missing.clone()));
    assert_eq!(cluster.revisions("nowhere").await, Err(missing.clone()));
    assert_eq!(cluster.pods("nowhere").await, Err(missing.clone()));
    assert_eq!(cluster.scale("nowhere", WorkloadKind::Deployment, "web", 0).await, Err(missing.clone()));
    let logs: Vec<_> = cluster.logs("nowhere", "web-1", LogOptions::default()).collect().await;
    assert_eq!(logs, [Err(missing.clone())]);
    let events: Vec<_> = tokio::time::timeout(PATIENCE, cluster.watch("nowhere").collect::<Vec<_>>())
        .await
        .expect("the watch ends at once");
    assert_eq!(events, [Err(missing)]);
}

#[tokio::test]
async fn an_empty_namespace_lists_nothing() {
    let setup = Setup::start();
    setup.emulator.create_namespace("empty");
    // Something elsewhere, which must not leak in.
    setup.emulator.apply_deployment("busy", "web", "example.com/web:1", 1);
    let cluster = setup.cluster().await;
    ok(cluster.check_namespace("empty").await);
    assert!(ok(cluster.workloads("empty", WorkloadKind::Deployment).await).is_empty());
    assert!(ok(cluster.workloads("empty", WorkloadKind::StatefulSet).await).is_empty());
    assert!(ok(cluster.revisions("empty").await).is_empty());
    assert!(ok(cluster.pods("empty").await).is_empty());
    let mut watch = cluster.watch("empty");
    assert_eq!(next_event(&mut watch, "the first snapshot").await, WatchEvent::Snapshot(Snapshot::default()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_reconnects_after_a_server_restart_and_shows_what_changed_meanwhile() {
    let mut setup = Setup::start();
    setup.emulator.apply_deployment("dr", "web", "example.com/web:1", 2);
    setup.emulator.apply_deployment("dr", "old", "example.com/old:1", 1);
    setup.emulator.wait_deployment_ready("dr", "web", PATIENCE);
    let cluster = setup.cluster().await;
    let mut watch = cluster.watch("dr");
    watch_until(&mut watch, "web rolled out and old there", |s| {
        s.deployments.iter().any(|w| w.name == "web" && w.is_rolled_out())
            && s.deployments.iter().any(|w| w.name == "old")
    })
    .await;

    // Listing is refused after the restart (the rules survive it), which holds the watch
    // disconnected until the change below is made: "meanwhile" is then certain.
    setup.emulator.forbid("list", "deployments", "dr");
    setup.emulator.forbid("list", "pods", "dr");
    setup.emulator.restart();
    // Snapshots of changes from before the restart may still come first.
    let first = loop {
        match next_event(&mut watch, "the break").await {
            WatchEvent::Snapshot(_) => continue,
            event => break event,
        }
    };
    let WatchEvent::Reconnecting { attempt: 1, retry_in, .. } = first else {
        panic!("expected the first Reconnecting, got {first:?}");
    };
    assert_eq!(retry_in, Duration::from_millis(250));
    setup.emulator.apply_deployment("dr", "late", "example.com/late:1", 1);
    let (status, body) = setup.emulator.request("DELETE", "/apis/apps/v1/namespaces/dr/deployments/old", None);
    assert_eq!(status, 200, "{body}");
    setup.emulator.allow_all();

    let mut attempts = vec![1];
    loop {
        match next_event(&mut watch, "the reconnection").await {
            WatchEvent::Reconnecting { attempt, .. } => attempts.push(attempt),
            WatchEvent::Reconnected => break,
            WatchEvent::Snapshot(snapshot) => panic!("a snapshot before Reconnected: {snapshot:#?}"),
        }
    }
    assert!(attempts.windows(2).all(|pair| pair[1] == pair[0] + 1), "{attempts:?}");
    let WatchEvent::Snapshot(fresh) = next_event(&mut watch, "the fresh snapshot").await else {
        panic!("Reconnected is followed by a snapshot");
    };
    // The new one is there, and the one deleted meanwhile is gone: the re-list replaced
    // what the watch knew instead of adding to it.
    let names: Vec<&str> = fresh.deployments.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["late", "web"], "{fresh:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_recovers_from_dropped_watches() {
    let setup = Setup::start();
    setup.emulator.apply_deployment("dr", "web", "example.com/web:1", 1);
    let cluster = setup.cluster().await;
    let mut watch = cluster.watch("dr");
    watch_until(&mut watch, "web", |s| s.deployments.iter().any(|w| w.name == "web")).await;

    for (abrupt, name) in [(false, "after-clean-drop"), (true, "after-abrupt-drop")] {
        wait_watching(&setup.emulator, "dr", &mut watch).await;
        setup.emulator.drop_watches(abrupt);
        setup.emulator.apply_deployment("dr", name, "example.com/x:1", 1);
        let (_, events) = watch_until(&mut watch, name, |s| s.deployments.iter().any(|w| w.name == name)).await;
        // A break may or may not be noticed (a clean end is resumed silently), but one that
        // was is closed by Reconnected before the news arrives.
        let last_break = events.iter().rposition(|e| matches!(e, WatchEvent::Reconnecting { .. }));
        let last_reconnect = events.iter().rposition(|e| matches!(e, WatchEvent::Reconnected));
        assert!(last_break.is_none_or(|b| last_reconnect.is_some_and(|r| r > b)), "abrupt={abrupt}: {events:#?}");
    }
}

#[tokio::test]
async fn dropping_a_watch_closes_its_connections() {
    let setup = Setup::start();
    setup.emulator.create_namespace("dr");
    let cluster = setup.cluster().await;
    let mut watch: Watch = cluster.watch("dr");
    next_event(&mut watch, "the first snapshot").await;
    wait_watching(&setup.emulator, "dr", &mut watch).await;
    drop(watch);
    // Polled with an async sleep: the runtime must keep running for hyper to close the
    // connections of the dropped responses.
    wait_for_async("the dropped watch's connections to close", PATIENCE, async || {
        let still = watches(&setup.emulator, "dr");
        if still.is_empty() { Ok(()) } else { Err(format!("still watched: {still:?}")) }
    })
    .await;
}

/// The resources watched in `ns` right now.
fn watches(emulator: &K8sEmulator, ns: &str) -> Vec<String> {
    let mut resources: Vec<String> = emulator
        .open_streams()
        .iter()
        .filter(|s| s["type"] == "watch" && s["namespace"] == ns)
        .filter_map(|s| s["resource"].as_str().map(str::to_owned))
        .collect();
    resources.sort();
    resources
}

/// Waits until both watches of the namespace are open (so that a drop hits them), reading
/// the watch meanwhile: kube's watcher opens its watch calls only when polled.
async fn wait_watching(emulator: &K8sEmulator, ns: &str, watch: &mut Watch) {
    wait_for_async("deployments and pods to be watched", PATIENCE, async || {
        let resources = watches(emulator, ns);
        if resources.contains(&"deployments".to_owned()) && resources.contains(&"pods".to_owned()) {
            return Ok(());
        }
        if let Ok(Some(Err(err))) = tokio::time::timeout(Duration::from_millis(100), watch.next()).await {
            panic!("the watch failed: {err}");
        }
        Err(format!("watched: {resources:?}"))
    })
    .await
}
