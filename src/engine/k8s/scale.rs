//! `k8s-scale`: set the replicas of the workloads of a namespace (DR down
//! to zero at the end of a drill) through the Scale subresource. The plan
//! (every workload with its current replicas) is shown in the typed
//! confirmation and journaled before anything changes, so the report says
//! what there was and a resumed step restores the same counts.

use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::tag::RenderedTarget;
use super::wait::{PodTable, StepDone, WaitError, pod_rows, say, watch_trouble};
use super::{Cluster, ClusterTarget, GuardError, K8sError, WatchEvent, Workload, WorkloadKind};
pub use crate::drill::evidence::{Planned, ScalePlan};
use crate::engine::EngineEvent;
use crate::engine::render::RenderError;
use crate::runbook::K8sScaleSpec;
use crate::runbook::duration::format_duration;
use crate::runbook::template::{TemplateContext, Templater};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleStep {
    pub target: RenderedTarget,
    pub deployments: Vec<String>,
    pub statefulsets: bool,
    pub replicas: u32,
    pub wait: bool,
    pub timeout: Duration,
}

impl ScaleStep {
    pub fn render(spec: &K8sScaleSpec, context: &TemplateContext, templater: &Templater) -> Result<Self, RenderError> {
        Ok(ScaleStep {
            target: RenderedTarget::render(&spec.target, context, templater)?,
            deployments: if spec.all { Vec::new() } else { spec.deployments.clone() },
            statefulsets: spec.statefulsets,
            replicas: spec.replicas,
            wait: spec.wait,
            timeout: spec.timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// `Err` naming the protected namespace this step would write to.
    pub fn refuse_protected(&self, protected: &[String]) -> Result<(), GuardError> {
        if protected.iter().any(|p| p == &self.target.namespace) {
            return Err(GuardError::Protected { namespace: self.target.namespace.clone() });
        }
        Ok(())
    }
}

/// How a scale plan's workload kind is addressed in the cluster.
fn workload_kind(planned: &Planned) -> WorkloadKind {
    if planned.kind == WorkloadKind::StatefulSet.name() { WorkloadKind::StatefulSet } else { WorkloadKind::Deployment }
}

/// Lists what the step would scale.
pub async fn plan(cluster: &dyn Cluster, step: &ScaleStep) -> Result<(ScalePlan, Vec<Workload>), K8sError> {
    let namespace = step.target.namespace.as_str();
    super::require_namespace(cluster, namespace).await?;
    let mut workloads = cluster.workloads(namespace, WorkloadKind::Deployment).await?;
    let names: Vec<String> = workloads.iter().map(|w| w.name.clone()).collect();
    for wanted in &step.deployments {
        if !names.contains(wanted) {
            return Err(K8sError::Other(format!(
                "deployment `{wanted}` not found in namespace `{namespace}` (context `{}`; it has: {})",
                cluster.target().context,
                if names.is_empty() { "none".into() } else { names.join(", ") }
            )));
        }
    }
    workloads.retain(|w| step.deployments.is_empty() || step.deployments.contains(&w.name));
    if step.statefulsets {
        workloads.extend(cluster.workloads(namespace, WorkloadKind::StatefulSet).await?);
    }
    if workloads.is_empty() {
        return Err(K8sError::Other(format!(
            "nothing to scale: no deployments{} in namespace `{namespace}` (context `{}`)",
            if step.statefulsets { " or statefulsets" } else { "" },
            cluster.target().context
        )));
    }
    let target: &ClusterTarget = cluster.target();
    let plan = ScalePlan {
        context: target.context.clone(),
        server: target.server.clone(),
        namespace: namespace.to_string(),
        to: step.replicas,
        workloads: workloads
            .iter()
            .map(|w| Planned { kind: w.kind.name().into(), name: w.name.clone(), replicas: w.desired })
            .collect(),
    };
    Ok((plan, workloads))
}

/// Scales every planned workload, then (with `wait`) watches until each has
/// exactly the new replicas and nothing is left terminating.
pub async fn apply(
    cluster: &dyn Cluster,
    step: &ScaleStep,
    plan: &ScalePlan,
    workloads: &[Workload],
    step_id: &str,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
) -> Result<StepDone, WaitError> {
    for planned in &plan.workloads {
        if cancel.is_cancelled() {
            return Err(WaitError::Cancelled);
        }
        let previous = cluster.scale(&plan.namespace, workload_kind(planned), &planned.name, plan.to).await?;
        say(events, step_id, vec![format!("scaled {}/{} from {previous} to {}", planned.kind, planned.name, plan.to)])
            .await;
    }
    if !step.wait {
        let summary = format!("scaled {} workload(s) to {}", plan.workloads.len(), plan.to);
        return Ok(StepDone { summary, evidence: None });
    }
    say(events, step_id, vec![format!("waiting for the pods (up to {})", format_duration(step.timeout))]).await;
    let deadline = tokio::time::Instant::now() + step.timeout;
    let mut watch = cluster.watch(&plan.namespace);
    let mut last_table: Option<PodTable> = None;
    let mut problems = vec!["the watch never delivered the namespace".to_string()];
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return Err(WaitError::Cancelled),
            () = tokio::time::sleep_until(deadline) => {
                return Err(WaitError::TimedOut { waited: step.timeout, problems });
            }
            event = watch.next() => event,
        };
        let snapshot = match event {
            None => return Err(WaitError::Cluster(K8sError::Other("the watch ended".into()))),
            Some(Err(error)) => return Err(WaitError::Cluster(error)),
            Some(Ok(WatchEvent::Snapshot(snapshot))) => snapshot,
            Some(Ok(trouble @ (WatchEvent::Reconnecting { .. } | WatchEvent::Reconnected))) => {
                let started = last_table.is_some();
                watch_trouble(events, step_id, &trouble, started, &plan.namespace, &plan.context).await?;
                continue;
            }
        };
        let pods: Vec<_> =
            snapshot.pods.iter().filter(|p| !p.is_finished() && workloads.iter().any(|w| w.owns(p))).collect();
        let live = pods.iter().filter(|p| !p.terminating).count();
        let terminating = pods.len() - live;
        let expected = plan.to as usize * plan.workloads.len();
        let summary = format!("{live} pod(s) running, {terminating} terminating, {expected} wanted");
        let table = PodTable::new(pod_rows(&pods, None, Timestamp::now()), summary.clone());
        if last_table.as_ref() != Some(&table) {
            let _ = events.send(EngineEvent::Pods { step_id: step_id.into(), table: table.clone() }).await;
            let _ = events.send(EngineEvent::Progress { step_id: step_id.into(), message: summary.clone() }).await;
            last_table = Some(table);
        }
        // Settled: nothing terminating, and exactly the wanted pods, all
        // Ready (for a scale up), or none (for a scale to zero).
        let ready = pods.iter().filter(|p| !p.terminating && p.ready).count();
        let settled = terminating == 0
            && live == expected
            && ready == expected
            && snapshot
                .deployments
                .iter()
                .filter(|d| plan.workloads.iter().any(|p| p.kind == "deployment" && p.name == d.name))
                .all(|d| d.desired == plan.to);
        if settled {
            let done = if plan.to == 0 { "all pods are gone".to_string() } else { format!("{live} pod(s) Ready") };
            say(events, step_id, vec![done.clone()]).await;
            return Ok(StepDone { summary: done, evidence: None });
        }
        problems = vec![summary];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(context: &str, workloads: &[(&str, u32)]) -> ScalePlan {
        ScalePlan {
            context: context.into(),
            server: "https://k8s.example.com".into(),
            namespace: "acme-dr".into(),
            to: 0,
            workloads: workloads
                .iter()
                .map(|(name, replicas)| Planned {
                    kind: "deployment".into(),
                    name: name.to_string(),
                    replicas: *replicas,
                })
                .collect(),
        }
    }

    #[test]
    fn a_retry_acts_on_todays_workloads_with_the_first_attempts_counts() {
        let earlier = plan("prod", &[("web", 3), ("gone", 1)]);
        let mut now = plan("prod", &[("web", 0), ("new", 2)]);
        now.keep_earlier_counts(&earlier);
        assert_eq!(now.workloads, plan("prod", &[("web", 3), ("new", 2)]).workloads);
        let mut elsewhere = plan("other", &[("web", 0)]);
        elsewhere.keep_earlier_counts(&earlier);
        assert_eq!(elsewhere.workloads[0].replicas, 0, "another cluster's counts are not borrowed");
    }
}
