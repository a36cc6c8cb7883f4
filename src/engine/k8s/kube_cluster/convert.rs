//! Conversions from k8s-openapi objects to drillbook's [`Workload`], [`RevisionInfo`]
//! and [`PodInfo`], computed the way `kubectl` computes its columns (a pod's STATUS in
//! particular), so that what a drill prints matches what an operator sees in kubectl.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::ResourceExt;

use crate::engine::k8s::{PodInfo, RevisionInfo, Workload, WorkloadKind};

const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// A count from the API (`int32`, never negative in practice) as the `u32` the UI uses.
pub(super) fn count(value: i32) -> u32 {
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

pub(super) fn deployment_workload(deployment: &Deployment) -> Workload {
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

pub(super) fn statefulset_workload(statefulset: &StatefulSet) -> Workload {
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

pub(super) fn revision_info(replicaset: &ReplicaSet) -> RevisionInfo {
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
pub(super) fn pod_info(pod: &Pod) -> PodInfo {
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
}
