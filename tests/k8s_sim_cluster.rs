//! The simulated cluster of the sandbox (`demo`, training mode) against the
//! same cases as the real kube client on the Kubernetes API emulator
//! (`support/k8s_cases.rs`): what an operator learns in training behaves
//! like the real thing. The fixture changes the simulated cluster through
//! its own API, as `drillbook sandbox` does.

use crate::k8s_cases;
use crate::support;

use std::time::Duration;

use drillbook::engine::k8s::sim::SimCluster;
use drillbook::engine::k8s::{Cluster, K8sError, WorkloadKind};
use k8s_cases::{Fixture, PATIENCE};
use support::wait_for_async;

/// Pods become Ready this long after a rollout: short, so the cases run fast.
const READY_DELAY: Duration = Duration::from_millis(300);

struct SimFixture<'a>(&'a SimCluster);

impl Fixture for SimFixture<'_> {
    fn create_namespace(&self, ns: &str) {
        self.0.create_namespace(ns).unwrap();
    }

    fn apply_deployment(&self, ns: &str, name: &str, image: &str, replicas: u32) {
        self.0.apply(ns, WorkloadKind::Deployment, name, image, replicas).unwrap();
    }

    fn apply_statefulset(&self, ns: &str, name: &str, image: &str, replicas: u32) {
        self.0.apply(ns, WorkloadKind::StatefulSet, name, image, replicas).unwrap();
    }

    fn set_image(&self, ns: &str, deployment: &str, image: &str) {
        self.0.set_image(ns, deployment, image).unwrap();
    }

    fn fail_image(&self, image_contains: &str, reason: &str) {
        self.0.fail_image(image_contains, reason).unwrap();
    }

    fn append_log(&self, ns: &str, pod: &str, lines: &[&str]) {
        self.0.append_log(ns, pod, lines).unwrap();
    }
}

fn sandbox() -> (tempfile::TempDir, SimCluster) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = SimCluster::create(dir.path(), READY_DELAY).unwrap();
    (dir, cluster)
}

#[tokio::test]
async fn reads_workloads_and_revisions() {
    let (_dir, cluster) = sandbox();
    k8s_cases::case_reads_workloads_and_revisions(&cluster, &SimFixture(&cluster)).await;
}

#[tokio::test]
async fn watch_sees_a_rollout_complete() {
    let (_dir, cluster) = sandbox();
    k8s_cases::case_watch_sees_a_rollout_complete(&cluster, &SimFixture(&cluster)).await;
}

#[tokio::test]
async fn crash_looping_pods_and_logs() {
    let (_dir, cluster) = sandbox();
    k8s_cases::case_crash_looping_pods_and_logs(&cluster, &SimFixture(&cluster)).await;
}

#[tokio::test]
async fn scale_to_zero() {
    let (_dir, cluster) = sandbox();
    k8s_cases::case_scale_to_zero(&cluster, &SimFixture(&cluster)).await;
}

#[tokio::test]
async fn faults_are_named_like_the_real_ones() {
    let (dir, cluster) = sandbox();
    cluster.create_namespace("dr").unwrap();
    assert_eq!(
        cluster.pods("nope").await,
        Err(K8sError::NamespaceNotFound { namespace: "nope".into(), context: "sandbox".into() })
    );
    assert_eq!(cluster.workloads("dr", WorkloadKind::Deployment).await, Ok(Vec::new()));
    cluster.forbid("patch", "deployments/scale", "dr").unwrap();
    cluster.apply("dr", WorkloadKind::Deployment, "web", "acme/web:v1", 1).unwrap();
    let refused = cluster.scale("dr", WorkloadKind::Deployment, "web", 0).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("forbidden: cannot patch deployments/scale in namespace `dr` (context `sandbox`)"),
        "{refused}"
    );
    let missing = SimCluster::open(&dir.path().join("elsewhere")).unwrap_err();
    assert!(missing.to_string().contains("no simulated cluster in"), "{missing}");
    // A watch whose namespace is gone ends with the reason.
    use futures::StreamExt;
    let mut watch = cluster.watch("nope");
    assert!(matches!(watch.next().await, Some(Err(K8sError::NamespaceNotFound { .. }))));
    assert!(watch.next().await.is_none());
}

#[tokio::test]
async fn a_watch_reconnects_when_the_state_file_vanishes_and_returns() {
    use drillbook::engine::k8s::WatchEvent;
    use futures::StreamExt;
    let (dir, cluster) = sandbox();
    cluster.apply("dr", WorkloadKind::Deployment, "web", "acme/web:v1", 1).unwrap();
    let mut watch = cluster.watch("dr");
    assert!(matches!(watch.next().await, Some(Ok(WatchEvent::Snapshot(_)))));
    let state = dir.path().join("cluster.json");
    let saved = std::fs::read(&state).unwrap();
    std::fs::remove_file(&state).unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next()).await.unwrap();
    assert!(matches!(next, Some(Ok(WatchEvent::Reconnecting { attempt: 1, .. }))), "{next:?}");
    std::fs::write(&state, saved).unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await.unwrap() {
            Some(Ok(WatchEvent::Reconnecting { .. })) => continue,
            Some(Ok(WatchEvent::Reconnected)) => break,
            other => panic!("expected a reconnection: {other:?}"),
        }
    }
}

#[tokio::test]
async fn scaling_up_after_a_rollout_brings_back_nothing_old() {
    let (_dir, cluster) = sandbox();
    cluster.apply("dr", WorkloadKind::Deployment, "web", "acme/web:v1", 2).unwrap();
    cluster.set_image("dr", "web", "acme/web:v2").unwrap();
    k8s_cases::wait_rolled_out(&cluster, "dr", "web", "acme/web:v2").await;
    wait_for_async("the old pods to go", PATIENCE, || async {
        let pods = cluster.pods("dr").await.unwrap();
        if pods.iter().all(|p| p.images == ["acme/web:v2"]) { Ok(()) } else { Err(format!("{pods:#?}")) }
    })
    .await;
    assert_eq!(cluster.scale("dr", WorkloadKind::Deployment, "web", 0).await, Ok(2));
    wait_for_async("the pods to go", PATIENCE, || async {
        let pods = cluster.pods("dr").await.unwrap();
        if pods.is_empty() { Ok(()) } else { Err(format!("{pods:#?}")) }
    })
    .await;
    assert_eq!(cluster.scale("dr", WorkloadKind::Deployment, "web", 3).await, Ok(0));
    let pods = cluster.pods("dr").await.unwrap();
    assert_eq!(pods.len(), 3, "{pods:#?}");
    assert!(pods.iter().all(|p| p.images == ["acme/web:v2"] && !p.terminating), "{pods:#?}");
    // A new image applied at zero replicas starts no pod of the old one either.
    cluster.scale("dr", WorkloadKind::Deployment, "web", 0).await.unwrap();
    cluster.apply("dr", WorkloadKind::Deployment, "web", "acme/web:v3", 2).unwrap();
    let pods = cluster.pods("dr").await.unwrap();
    assert!(pods.iter().filter(|p| !p.terminating).all(|p| p.images == ["acme/web:v3"]), "{pods:#?}");
}
