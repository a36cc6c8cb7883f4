//! `k8s-wait`: watch a namespace until every Deployment (or the listed ones)
//! has its desired replicas updated, available and Ready, and, with
//! `expect_tag`, every one of their pods runs that tag. Watches, never
//! polls; a broken watch reconnects with backoff. The logs of a pod that is
//! failing (crash loop, image pull, OOM) are fetched into the log once.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::image::ImageRef;
use super::tag::RenderedTarget;
use super::{Cluster, K8sError, LogOptions, PodInfo, Snapshot, WatchEvent, Workload};
use crate::drill::evidence::{Evidence, WaitResult};
use crate::engine::render::RenderError;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::K8sWaitSpec;
use crate::runbook::duration::format_duration;
use crate::runbook::template::{TemplateContext, Templater};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A pod Pending for longer than this is flagged.
pub const LONG_PENDING: Duration = Duration::from_secs(120);
/// Lines of a failing pod's log shown in the log pane.
const FAILING_LOG_TAIL: u32 = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitStep {
    pub target: RenderedTarget,
    pub deployments: Vec<String>,
    pub expect_tag: Option<String>,
    pub timeout: Duration,
}

impl WaitStep {
    pub fn render(spec: &K8sWaitSpec, context: &TemplateContext, templater: &Templater) -> Result<Self, RenderError> {
        let expect_tag = match &spec.expect_tag {
            Some(t) => Some(templater.render_plain(&t.text, context).map_err(RenderError::at("expect_tag"))?),
            None => None,
        };
        Ok(WaitStep {
            target: RenderedTarget::render(&spec.target, context, templater)?,
            deployments: spec.deployments.clone(),
            expect_tag: expect_tag.filter(|t| !t.is_empty()),
            timeout: spec.timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }
}

/// How bad a pod row looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Ready,
    /// On its way (creating, starting, terminating).
    Progressing,
    /// Crash loop, image pull failure, OOM, long Pending, wrong tag.
    Failing,
}

/// One row of the live pod table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub name: String,
    pub ready: String,
    pub status: String,
    pub restarts: u32,
    pub age: String,
    pub tag: String,
    pub node: String,
    pub health: Health,
    /// Why it is failing, for the timeout message.
    pub problem: Option<String>,
}

/// The pod table at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTable {
    pub rows: Vec<PodRow>,
    /// One line: how far the wait got ("web 2/3 ready · worker 1/1").
    pub summary: String,
    /// The widest cell of each column, header included: computed once, not
    /// on every frame.
    widths: [usize; 7],
}

impl Default for PodTable {
    fn default() -> Self {
        PodTable::new(Vec::new(), String::new())
    }
}

impl PodTable {
    pub fn new(rows: Vec<PodRow>, summary: String) -> PodTable {
        let widths = column_widths(&rows);
        PodTable { rows, summary, widths }
    }
}

/// What the wait concludes from one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub done: bool,
    pub table: PodTable,
    /// Why it is not done: one reason per deployment or pod.
    pub problems: Vec<String>,
}

fn failing_reason(pod: &PodInfo, now: Timestamp) -> Option<String> {
    let age = pod.created.map(|c| now.duration_since(c).as_secs().max(0) as u64).unwrap_or(0);
    match pod.reason.as_deref() {
        Some(
            reason @ ("CrashLoopBackOff"
            | "ImagePullBackOff"
            | "ErrImagePull"
            | "OOMKilled"
            | "Error"
            | "CreateContainerConfigError"
            | "InvalidImageName"
            | "RunContainerError"),
        ) => {
            let restarts = if pod.restarts > 0 { format!(" (restarts {})", pod.restarts) } else { String::new() };
            let message = pod.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            Some(format!("{reason}{restarts}{message}"))
        }
        _ if pod.phase == "Pending" && !pod.terminating && age >= LONG_PENDING.as_secs() => Some(format!(
            "Pending for {}{}",
            format_duration(Duration::from_secs(age)),
            pod.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        )),
        _ if pod.phase == "Failed" => {
            Some(format!("Failed{}", pod.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()))
        }
        _ => None,
    }
}

fn pod_tag(pod: &PodInfo) -> String {
    pod.images
        .first()
        .map_or_else(|| "-".into(), |i| ImageRef::parse(i).map_or_else(|_| i.clone(), |r| r.tag_or_digest()))
}

/// The table of `pods`, for any Kubernetes step.
pub fn pod_rows(pods: &[&PodInfo], expect_tag: Option<&str>, now: Timestamp) -> Vec<PodRow> {
    pods.iter()
        .map(|pod| {
            let tag = pod_tag(pod);
            let failing = failing_reason(pod, now);
            // A pod on another tag is on its way out during a rollout:
            // not done, but not failing either.
            let wrong_tag = match expect_tag {
                Some(expected) if !pod.terminating && tag != expected => {
                    Some(format!("runs {tag}, expected {expected}"))
                }
                _ => None,
            };
            let health = if failing.is_some() {
                Health::Failing
            } else if pod.ready && !pod.terminating && wrong_tag.is_none() {
                Health::Ready
            } else {
                Health::Progressing
            };
            let problem = failing.or(wrong_tag);
            PodRow {
                name: pod.name.clone(),
                ready: format!("{}/{}", pod.ready_containers, pod.containers),
                status: pod.status(),
                restarts: pod.restarts,
                age: pod.created.map_or_else(
                    || "-".into(),
                    |c| format_duration(Duration::from_secs(now.duration_since(c).as_secs().max(0) as u64)),
                ),
                tag,
                node: pod.node.clone().unwrap_or_else(|| "-".into()),
                health,
                problem,
            }
        })
        .collect()
}

pub fn evaluate(step: &WaitStep, snapshot: &Snapshot, now: Timestamp) -> Verdict {
    let mut problems = Vec::new();
    let listed = |name: &str| step.deployments.is_empty() || step.deployments.iter().any(|d| d == name);
    let watched: Vec<&Workload> = snapshot.deployments.iter().filter(|d| listed(&d.name)).collect();
    for wanted in &step.deployments {
        if !snapshot.deployments.iter().any(|d| &d.name == wanted) {
            problems.push(format!("deployment {wanted} does not exist"));
        }
    }
    if snapshot.deployments.is_empty() {
        problems.push(format!("no deployments in namespace `{}`", step.target.namespace));
    }
    // Only the watched Deployments' pods, and not those finished for good
    // (a Completed or evicted pod takes no part in a rollout).
    let pods: Vec<&PodInfo> =
        snapshot.pods.iter().filter(|p| !p.is_finished() && watched.iter().any(|d| d.owns(p))).collect();
    let rows = pod_rows(&pods, step.expect_tag.as_deref(), now);
    let mut summary = Vec::new();
    for deployment in &watched {
        // During a rollout the old pods are Ready too: say so, or "2/2 ready" misleads.
        let rolling = if deployment.is_rolled_out() || deployment.desired == 0 {
            String::new()
        } else {
            format!(
                " (rolling out: {}/{} updated, {} pods)",
                deployment.updated.min(deployment.desired),
                deployment.desired,
                deployment.current
            )
        };
        summary.push(format!("{} {}/{} ready{rolling}", deployment.name, deployment.ready, deployment.desired));
        if deployment.desired == 0 {
            problems.push(format!("deployment {} is scaled to 0 replicas", deployment.name));
        } else if !deployment.is_rolled_out() {
            problems.push(format!(
                "deployment {}: {}/{} updated, {}/{} ready, {} available",
                deployment.name,
                deployment.updated,
                deployment.desired,
                deployment.ready,
                deployment.desired,
                deployment.available
            ));
        }
        if let Some(expected) = &step.expect_tag
            && let Some((_, image)) = deployment.containers.first()
        {
            let tag = ImageRef::parse(image).map_or_else(|_| image.clone(), |r| r.tag_or_digest());
            if &tag != expected {
                problems.push(format!("deployment {} is set to {tag}, expected {expected}", deployment.name));
            }
        }
    }
    for row in &rows {
        if let Some(problem) = &row.problem {
            problems.push(format!("pod {}: {problem}", row.name));
        } else if row.health != Health::Ready && row.status != "Terminating" {
            problems.push(format!("pod {}: {} ({} ready)", row.name, row.status, row.ready));
        }
    }
    // Old pods still terminating count against a rollout being finished.
    if rows.iter().any(|r| r.status == "Terminating") {
        let terminating = rows.iter().filter(|r| r.status == "Terminating").count();
        problems.push(format!("{terminating} old pod(s) still terminating"));
    }
    let summary = if summary.is_empty() { "no deployments".to_string() } else { summary.join(" · ") };
    Verdict { done: problems.is_empty(), table: PodTable::new(rows, summary), problems }
}

/// How a Kubernetes step that watched the cluster ended well.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDone {
    pub summary: String,
    /// What the cluster was seen running, journaled for the report
    /// (DR's tag against production's).
    pub evidence: Option<Evidence>,
}

/// What a successful wait saw: each watched deployment's tag.
fn evidence(step: &WaitStep, snapshot: &Snapshot, target: &super::ClusterTarget) -> Evidence {
    let listed = |name: &str| step.deployments.is_empty() || step.deployments.iter().any(|d| d == name);
    let running = snapshot
        .deployments
        .iter()
        .filter(|d| listed(&d.name))
        .filter_map(|d| {
            let image = &d.containers.first()?.1;
            let tag = ImageRef::parse(image).map_or_else(|_| image.clone(), |r| r.tag_or_digest());
            Some((d.name.clone(), tag))
        })
        .collect();
    Evidence::Wait(WaitResult {
        context: target.context.clone(),
        server: target.server.clone(),
        namespace: step.target.namespace.clone(),
        expect_tag: step.expect_tag.clone(),
        running,
    })
}

/// How a wait ended other than in success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("{0}")]
    Cluster(#[from] K8sError),
    #[error("timed out after {}: {}", format_duration(*.waited), .problems.join("; "))]
    TimedOut { waited: Duration, problems: Vec<String> },
    #[error("stopped while waiting")]
    Cancelled,
}

/// Reconnection attempts after which a watch that never delivered the
/// namespace is given up: the server is unreachable or refuses us, it is
/// not a flapping connection worth waiting the whole timeout for.
const GIVE_UP_BEFORE_START: u32 = 4;

/// Reports a broken or restored watch (log line and status bar); `Err`
/// when a watch that never started keeps failing.
pub async fn watch_trouble(
    events: &mpsc::Sender<EngineEvent>,
    step_id: &str,
    event: &WatchEvent,
    started: bool,
    namespace: &str,
    context: &str,
) -> Result<(), WaitError> {
    let message = match event {
        WatchEvent::Reconnecting { reason, attempt, .. } if !started && *attempt >= GIVE_UP_BEFORE_START => {
            return Err(WaitError::Cluster(K8sError::Other(format!(
                "cannot watch namespace `{namespace}` in context `{context}` ({attempt} attempts): {reason}"
            ))));
        }
        WatchEvent::Reconnecting { reason, attempt, retry_in } => {
            format!("watch lost ({reason}); reconnecting in {} (attempt {attempt})", format_duration(*retry_in))
        }
        WatchEvent::Reconnected => "watch re-established".to_string(),
        WatchEvent::Snapshot(_) => return Ok(()),
    };
    say(events, step_id, vec![message.clone()]).await;
    let status = if matches!(event, WatchEvent::Reconnected) { "watching".to_string() } else { message };
    let _ = events.send(EngineEvent::Progress { step_id: step_id.into(), message: status }).await;
    Ok(())
}

/// Sends one batch of log lines.
pub async fn say(events: &mpsc::Sender<EngineEvent>, step_id: &str, lines: Vec<String>) {
    let _ = events
        .send(EngineEvent::Output { step_id: step_id.into(), stream: OutputStream::Stdout, lines: lines.into() })
        .await;
}

/// Watches until done, timed out or cancelled. Sends the pod table on every
/// change, reconnects as progress, and the logs of each pod that starts failing.
pub async fn run(
    cluster: &dyn Cluster,
    step: &WaitStep,
    step_id: &str,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
) -> Result<StepDone, WaitError> {
    let namespace = step.target.namespace.as_str();
    let context = cluster.target().context.clone();
    let mut intro = vec![format!(
        "watching namespace `{namespace}` in context `{context}` for up to {}",
        format_duration(step.timeout)
    )];
    if let Some(tag) = &step.expect_tag {
        intro.push(format!("every pod must run tag {tag}"));
    }
    say(events, step_id, intro).await;
    let deadline = tokio::time::Instant::now() + step.timeout;
    let mut watch = cluster.watch(namespace);
    let mut last: Option<Verdict> = None;
    let mut logged: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut snapshot: Option<Snapshot> = None;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return Err(WaitError::Cancelled),
            () = tokio::time::sleep_until(deadline) => {
                let problems = match (&snapshot, &last) {
                    (Some(snapshot), _) => evaluate(step, snapshot, Timestamp::now()).problems,
                    (None, _) => vec!["the watch never delivered the namespace".into()],
                };
                return Err(WaitError::TimedOut { waited: step.timeout, problems });
            }
            // Ages and long-Pending flags change with time alone.
            _ = tick.tick() => None,
            event = watch.next() => match event {
                Some(event) => Some(event),
                None => return Err(WaitError::Cluster(K8sError::Other("the watch ended".into()))),
            },
        };
        match event {
            None => {}
            Some(Err(error)) => return Err(WaitError::Cluster(error)),
            Some(Ok(WatchEvent::Snapshot(next))) => snapshot = Some(next),
            Some(Ok(trouble @ (WatchEvent::Reconnecting { .. } | WatchEvent::Reconnected))) => {
                watch_trouble(events, step_id, &trouble, snapshot.is_some(), namespace, &context).await?;
                continue;
            }
        }
        let Some(current) = &snapshot else { continue };
        let verdict = evaluate(step, current, Timestamp::now());
        if last.as_ref().is_none_or(|l| l.table != verdict.table) {
            let _ = events.send(EngineEvent::Pods { step_id: step_id.into(), table: verdict.table.clone() }).await;
            let _ = events
                .send(EngineEvent::Progress { step_id: step_id.into(), message: verdict.table.summary.clone() })
                .await;
        }
        for row in verdict.table.rows.iter().filter(|r| r.health == Health::Failing) {
            if logged.insert(row.name.clone()) {
                let mut lines =
                    vec![format!("pod {} is failing: {}", row.name, row.problem.clone().unwrap_or_default())];
                lines.extend(failing_pod_logs(cluster, namespace, &row.name, row.restarts > 0).await);
                say(events, step_id, lines).await;
            }
        }
        if verdict.done {
            let summary = format!("all Ready: {}", verdict.table.summary);
            say(events, step_id, vec![summary.clone()]).await;
            let evidence = evidence(step, current, cluster.target());
            return Ok(StepDone { summary, evidence: Some(evidence) });
        }
        last = Some(verdict);
    }
}

/// The last lines a failing pod wrote: its previous run when it restarted
/// (a crash-looping container's current run is often empty).
pub async fn failing_pod_logs(cluster: &dyn Cluster, namespace: &str, pod: &str, restarted: bool) -> Vec<String> {
    let mut attempts = vec![restarted, false];
    attempts.dedup();
    for previous in attempts {
        let options = LogOptions { tail_lines: Some(FAILING_LOG_TAIL), previous, ..LogOptions::default() };
        let lines: Vec<Result<String, K8sError>> = cluster.logs(namespace, pod, options).collect().await;
        let ok: Vec<String> = lines.iter().filter_map(|l| l.as_ref().ok()).map(|l| format!("[{pod}] {l}")).collect();
        if !ok.is_empty() {
            return ok;
        }
        if let Some(Err(error)) = lines.last()
            && !previous
        {
            return vec![format!("[{pod}] (no logs: {error})")];
        }
    }
    vec![format!("[{pod}] (no logs yet)")]
}

const HEADERS: [&str; 7] = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "TAG", "NODE"];

/// The pod table as text: for plain mode and the log files.
pub fn table_lines(table: &PodTable) -> Vec<String> {
    let widths = table.widths;
    let mut lines = vec![table.summary.clone(), table_line(HEADERS.map(Cow::Borrowed), &widths, &ALL)];
    lines.extend(table.rows.iter().map(|row| table_line(cells(row), &widths, &ALL)));
    if table.rows.is_empty() {
        lines.push("(no pods)".into());
    }
    lines
}

/// The pod table fitted to a screen area, formatting only what is shown (a
/// frame must not cost more with 5,000 pods than with 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FittedTable {
    pub summary: String,
    pub header: String,
    /// Index into `PodTable::rows`, and the row's text.
    pub rows: Vec<(usize, String)>,
    /// "… and 4,990 more pods (4,980 Ready, 10 starting)" when rows were left out.
    pub more: Option<String>,
}

/// The pod table in at most `width` columns: NAME, READY, STATUS and TAG
/// always (what DR runs is the point of the table), then RESTARTS, AGE and
/// NODE while they fit; NAME is cut short (`…`) before a column goes. At
/// most `max_rows` pod rows: when rows must go, failing pods are kept first,
/// then the ones on their way: the Ready ones are the least interesting.
pub fn table_fitted(table: &PodTable, width: usize, max_rows: usize) -> FittedTable {
    let full = table.widths;
    let total = |columns: &[usize], name: usize| {
        columns.iter().map(|&c| if c == NAME { name } else { full[c] }).sum::<usize>() + 2 * (columns.len() - 1)
    };
    let mut columns = vec![NAME, READY, STATUS, TAG];
    for optional in [RESTARTS, AGE, NODE] {
        let mut with = columns.clone();
        with.push(optional);
        with.sort_unstable();
        if total(&with, full[NAME]) <= width {
            columns = with;
        }
    }
    columns.sort_unstable();
    let mut widths = full;
    let room = width.saturating_sub(total(&columns, 0));
    widths[NAME] = full[NAME].min(room.max(MIN_NAME));
    let keep: Vec<usize> = if table.rows.len() <= max_rows {
        (0..table.rows.len()).collect()
    } else {
        // One line goes to "… and N more".
        let budget = max_rows.saturating_sub(1);
        let mut keep = Vec::with_capacity(budget);
        for health in [Health::Failing, Health::Progressing, Health::Ready] {
            let room = budget - keep.len();
            keep.extend(table.rows.iter().enumerate().filter(|(_, r)| r.health == health).map(|(i, _)| i).take(room));
        }
        keep.sort_unstable();
        keep
    };
    let rows = keep.iter().map(|&i| (i, table_line(cells(&table.rows[i]), &widths, &columns))).collect();
    let left_out = table.rows.len() - keep.len();
    let more = (left_out > 0).then(|| {
        let ready = table.rows.iter().filter(|r| r.health == Health::Ready).count()
            - keep.iter().filter(|&&i| table.rows[i].health == Health::Ready).count();
        let other = left_out - ready;
        let starting = if other > 0 { format!(", {other} not Ready") } else { String::new() };
        format!("… and {left_out} more pods ({ready} Ready{starting})")
    });
    FittedTable {
        summary: table.summary.clone(),
        header: table_line(HEADERS.map(Cow::Borrowed), &widths, &columns),
        rows,
        more,
    }
}

/// Column indexes of the pod table.
const NAME: usize = 0;
const READY: usize = 1;
const STATUS: usize = 2;
const RESTARTS: usize = 3;
const AGE: usize = 4;
const TAG: usize = 5;
const NODE: usize = 6;
const ALL: [usize; 7] = [NAME, READY, STATUS, RESTARTS, AGE, TAG, NODE];
/// A pod name is not cut shorter than this (its deployment's name shows).
const MIN_NAME: usize = 10;

/// The widest cell of each column, header included.
fn column_widths(rows: &[PodRow]) -> [usize; 7] {
    let mut widths = HEADERS.map(str::len);
    for row in rows {
        let restarts = row.restarts.checked_ilog10().unwrap_or(0) as usize + 1;
        let failing = if row.health == Health::Failing { 2 } else { 0 };
        let row_widths = [
            row.name.chars().count(),
            row.ready.chars().count(),
            row.status.chars().count() + failing,
            restarts,
            row.age.chars().count(),
            row.tag.chars().count(),
            row.node.chars().count(),
        ];
        for (width, cell) in widths.iter_mut().zip(row_widths) {
            *width = (*width).max(cell);
        }
    }
    widths
}

fn cells(row: &PodRow) -> [Cow<'_, str>; 7] {
    [
        Cow::Borrowed(row.name.as_str()),
        Cow::Borrowed(row.ready.as_str()),
        if row.health == Health::Failing {
            Cow::Owned(format!("{} !", row.status))
        } else {
            Cow::Borrowed(&row.status)
        },
        Cow::Owned(row.restarts.to_string()),
        Cow::Borrowed(row.age.as_str()),
        Cow::Borrowed(row.tag.as_str()),
        Cow::Borrowed(row.node.as_str()),
    ]
}

/// One line of the table: `columns` (in order) padded to `widths`, a cell
/// too long for its column cut with `…`.
fn table_line(cells: [Cow<'_, str>; 7], widths: &[usize; 7], columns: &[usize]) -> String {
    let mut line = String::new();
    for (position, &column) in columns.iter().enumerate() {
        if position > 0 {
            line.push_str("  ");
        }
        let (cell, width) = (&cells[column], widths[column]);
        let length = cell.chars().count();
        if length > width {
            line.extend(cell.chars().take(width.saturating_sub(1)));
            line.push('…');
        } else {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - length));
        }
    }
    line.truncate(line.trim_end().len());
    line
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::k8s::WorkloadKind;

    fn at(secs_ago: i64) -> Option<Timestamp> {
        Some(Timestamp::now() - jiff::SignedDuration::from_secs(secs_ago))
    }

    fn deployment(name: &str, tag: &str, desired: u32, ready: u32) -> Workload {
        Workload {
            kind: WorkloadKind::Deployment,
            name: name.into(),
            desired,
            current: desired,
            updated: desired,
            ready,
            available: ready,
            observed: true,
            containers: vec![(name.into(), format!("reg.io:5000/acme/{name}:{tag}"))],
            revision: Some(1),
            selector: BTreeMap::from([("app".to_string(), name.to_string())]),
            created: at(600),
        }
    }

    fn pod(name: &str, app: &str, tag: &str, ready: bool) -> PodInfo {
        PodInfo {
            name: name.into(),
            phase: "Running".into(),
            ready,
            ready_containers: ready as u32,
            containers: 1,
            reason: None,
            message: None,
            restarts: 0,
            created: at(30),
            images: vec![format!("reg.io:5000/acme/{app}:{tag}")],
            node: Some("node-1".into()),
            labels: BTreeMap::from([("app".to_string(), app.to_string())]),
            terminating: false,
            controller: Some("ReplicaSet".into()),
        }
    }

    fn step(deployments: &[&str], tag: Option<&str>) -> WaitStep {
        WaitStep {
            target: RenderedTarget { context: None, namespace: "acme-dr".into() },
            deployments: deployments.iter().map(|d| d.to_string()).collect(),
            expect_tag: tag.map(str::to_string),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn done_when_every_replica_is_ready_on_the_expected_tag() {
        let snapshot = Snapshot {
            deployments: vec![deployment("web", "v2", 2, 2)],
            pods: vec![pod("web-a", "web", "v2", true), pod("web-b", "web", "v2", true)],
        };
        let verdict = evaluate(&step(&[], Some("v2")), &snapshot, Timestamp::now());
        assert!(verdict.done, "{:?}", verdict.problems);
        assert_eq!(verdict.table.summary, "web 2/2 ready");
        assert!(verdict.table.rows.iter().all(|r| r.health == Health::Ready && r.tag == "v2"));
    }

    #[test]
    fn a_crash_looping_pod_is_failing_and_named_with_its_reason() {
        let mut crashing = pod("web-b", "web", "v2", false);
        crashing.reason = Some("CrashLoopBackOff".into());
        crashing.restarts = 4;
        crashing.message = Some("last exit: OOMKilled (exit 137)".into());
        let snapshot = Snapshot {
            deployments: vec![deployment("web", "v2", 2, 1)],
            pods: vec![pod("web-a", "web", "v2", true), crashing],
        };
        let verdict = evaluate(&step(&[], None), &snapshot, Timestamp::now());
        assert!(!verdict.done);
        let row = verdict.table.rows.iter().find(|r| r.name == "web-b").unwrap();
        assert_eq!(row.health, Health::Failing);
        assert!(
            verdict
                .problems
                .iter()
                .any(|p| p == "pod web-b: CrashLoopBackOff (restarts 4): last exit: OOMKilled (exit 137)"),
            "{:?}",
            verdict.problems
        );
    }

    #[test]
    fn a_pod_on_the_old_tag_is_progress_not_failure() {
        let snapshot = Snapshot {
            deployments: vec![deployment("web", "v2", 1, 1)],
            pods: vec![pod("web-old", "web", "v1", true), pod("web-new", "web", "v2", false)],
        };
        let verdict = evaluate(&step(&[], Some("v2")), &snapshot, Timestamp::now());
        assert!(!verdict.done);
        let old = verdict.table.rows.iter().find(|r| r.name == "web-old").unwrap();
        assert_eq!(old.health, Health::Progressing);
        assert!(verdict.problems.iter().any(|p| p == "pod web-old: runs v1, expected v2"), "{:?}", verdict.problems);
    }

    #[test]
    fn the_deployment_spec_must_name_the_expected_tag_too() {
        let snapshot =
            Snapshot { deployments: vec![deployment("web", "v1", 1, 1)], pods: vec![pod("web-a", "web", "v1", true)] };
        let verdict = evaluate(&step(&[], Some("v2")), &snapshot, Timestamp::now());
        assert!(
            verdict.problems.iter().any(|p| p == "deployment web is set to v1, expected v2"),
            "{:?}",
            verdict.problems
        );
    }

    #[test]
    fn listed_deployments_must_exist_and_want_replicas() {
        let snapshot = Snapshot { deployments: vec![deployment("web", "v1", 0, 0)], pods: Vec::new() };
        let verdict = evaluate(&step(&["web", "worker"], None), &snapshot, Timestamp::now());
        assert!(!verdict.done);
        assert!(verdict.problems.contains(&"deployment worker does not exist".to_string()));
        assert!(verdict.problems.contains(&"deployment web is scaled to 0 replicas".to_string()));
        let empty = evaluate(&step(&[], None), &Snapshot::default(), Timestamp::now());
        assert!(!empty.done);
        assert!(empty.problems.contains(&"no deployments in namespace `acme-dr`".to_string()));
    }

    #[test]
    fn finished_pods_and_pods_of_other_controllers_do_not_count() {
        let mut migration = pod("db-migrate-x7k2p", "web", "v1", false);
        migration.phase = "Succeeded".into();
        migration.reason = Some("Completed".into());
        migration.controller = Some("Job".into());
        let mut evicted = pod("web-evicted", "web", "v2", false);
        evicted.phase = "Failed".into();
        evicted.reason = Some("Evicted".into());
        let mut hook = pod("web-hook", "web", "v1", false);
        hook.controller = Some("Job".into());
        let snapshot = Snapshot {
            deployments: vec![deployment("web", "v2", 1, 1)],
            pods: vec![pod("web-a", "web", "v2", true), migration, evicted, hook],
        };
        let verdict = evaluate(&step(&[], Some("v2")), &snapshot, Timestamp::now());
        assert!(verdict.done, "{:?}", verdict.problems);
        assert_eq!(verdict.table.rows.len(), 1, "{:?}", verdict.table.rows);
    }

    #[test]
    fn a_long_pending_pod_is_flagged() {
        let mut pending = pod("web-a", "web", "v1", false);
        pending.phase = "Pending".into();
        pending.created = at(300);
        let snapshot = Snapshot { deployments: vec![deployment("web", "v1", 1, 0)], pods: vec![pending.clone()] };
        let verdict = evaluate(&step(&[], None), &snapshot, Timestamp::now());
        assert_eq!(verdict.table.rows[0].health, Health::Failing);
        assert!(verdict.problems[1].starts_with("pod web-a: Pending for 5m"), "{:?}", verdict.problems);
        pending.created = at(10);
        let young = Snapshot { deployments: vec![deployment("web", "v1", 1, 0)], pods: vec![pending] };
        assert_eq!(evaluate(&step(&[], None), &young, Timestamp::now()).table.rows[0].health, Health::Progressing);
    }

    #[test]
    fn the_text_table_drops_the_node_column_when_narrow() {
        let snapshot =
            Snapshot { deployments: vec![deployment("web", "v1", 1, 1)], pods: vec![pod("web-a", "web", "v1", true)] };
        let table = evaluate(&step(&[], None), &snapshot, Timestamp::now()).table;
        let wide = table_lines(&table);
        assert!(wide[1].ends_with("NODE") && wide[2].ends_with("node-1"), "{wide:?}");
        let narrow = table_fitted(&table, 45, 10);
        assert!(narrow.header.ends_with("TAG") && narrow.rows[0].1.ends_with("v1"), "{narrow:?}");
        // Narrower still: RESTARTS and AGE go, the name is cut, TAG stays.
        let narrowest = table_fitted(&table, 30, 10);
        assert_eq!(narrowest.header, "NAME   READY  STATUS   TAG", "{narrowest:?}");
        assert_eq!(narrowest.more, None);
        let mut long = table.clone();
        long.rows[0].name = "web-7d4b9f8c6d-2kx8q".into();
        long.widths[0] = long.rows[0].name.len();
        let cut = table_fitted(&long, 36, 10);
        let row = &cut.rows[0].1;
        assert!(row.starts_with("web-7d4b9") && row.contains('…') && row.ends_with("v1"), "{cut:?}");
        assert!(row.chars().count() <= 36, "{row}");
    }

    #[test]
    fn a_table_too_long_for_the_screen_keeps_the_failing_pods_and_counts_the_rest() {
        let row = |name: &str, health: Health| PodRow {
            name: name.into(),
            ready: "1/1".into(),
            status: "Running".into(),
            restarts: 0,
            age: "1m".into(),
            tag: "v1".into(),
            node: "node-1".into(),
            health,
            problem: None,
        };
        let mut rows: Vec<PodRow> = (0..100).map(|i| row(&format!("web-{i:03}"), Health::Ready)).collect();
        rows[57].health = Health::Failing;
        rows[80].health = Health::Progressing;
        let table = PodTable::new(rows, "web 98/100 ready".into());
        let fitted = table_fitted(&table, 100, 5);
        let shown: Vec<usize> = fitted.rows.iter().map(|(i, _)| *i).collect();
        assert_eq!(shown, vec![0, 1, 57, 80], "failing and starting pods first, in table order");
        assert!(fitted.rows[2].1.contains("Running !"), "{fitted:?}");
        assert_eq!(fitted.more.as_deref(), Some("… and 96 more pods (96 Ready)"));
        // The same text as the full table, row for row.
        let full = table_lines(&table);
        assert_eq!(fitted.rows[2].1, full[2 + 57]);
        assert_eq!(fitted.header, full[1]);
    }
}
