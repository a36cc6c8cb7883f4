//! Kubernetes steps. `k8s-image-tag`: list the tags deployments run (and
//! their history), take the one production runs or ask, journal and
//! capture it. `k8s-wait`: watch pods until every deployment is ready.
//! `k8s-scale`: plan, confirm naming the target, journal the plan, scale.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::super::protocol::{Answer, PickRow, PickWhat, Question};
use super::super::session::DrillSession;
use super::super::{Conductor, Halt};
use crate::drill::event::Event;
use crate::engine::k8s::scale::{self, ScalePlan, ScaleStep};
use crate::engine::k8s::tag::{self, RenderedTarget, TagListing, TagOption, TagStep};
use crate::engine::k8s::wait::{self, PodTable, StepDone, WaitError, WaitStep};
use crate::engine::k8s::{self, Cluster, LogOptions};
use crate::runbook::{Action, Confirm, K8sImageTagSpec, K8sScaleSpec, K8sWaitSpec, Step, TagSelect};

/// A pod table goes into a step's log at most this often (and always at the end).
const TABLE_EVERY: Duration = Duration::from_secs(3);
/// Lines of a pod's log shown when the operator asks for it.
const POD_LOG_TAIL: u32 = 200;

impl Conductor {
    /// The step's cluster; in training always the sandbox's.
    pub(super) fn cluster_context(&self, context: Option<String>) -> Option<String> {
        self.session.k8s_context_override().or(context)
    }

    pub(in crate::drive) async fn k8s_image_tag(
        &mut self,
        index: usize,
        step: &Step,
        spec: &K8sImageTagSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let mut rendered = match TagStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        rendered.target.context = self.cluster_context(rendered.target.context);
        let (attempt, mut log) =
            self.start_logged(step, format!("k8s-image-tag {}", rendered.target.describe())).await?;
        let listed = async {
            let cluster = k8s::connect(rendered.target.context.as_deref()).await?;
            tag::list(cluster.as_ref(), &rendered).await
        };
        let listing = match self.hearing(listed).await? {
            Some(Ok(listing)) => listing,
            Some(Err(error)) => return self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
            None => return self.cut_short(step, attempt, began, &mut log).await,
        };
        let now = jiff::Timestamp::now();
        let mut lines = tag::summary(&listing);
        lines.push("tags:".into());
        for (number, option) in listing.options.iter().enumerate() {
            let [tag, running, revision, age, current] = tag::describe(option, now);
            lines.push(format!(
                "{:>2}. {tag}  running: {running}  revision {revision}  age {age}  {current}",
                number + 1
            ));
        }
        self.say(index, &mut log, lines).await;
        let previous = self.chosen_before(step, attempt, |choice| tag::find_choice(&listing, choice));
        let chosen = match (previous, listing.current().cloned()) {
            (Some(previous), _) => {
                self.say(index, &mut log, vec![format!("continuing with the tag chosen before: {}", previous.tag)])
                    .await;
                Ok(previous)
            }
            (None, Some(current)) if rendered.select == TagSelect::Current => Ok(current),
            (None, current) => {
                if current.is_none() {
                    let line = format!("the deployments disagree: {}", listing.disagreement());
                    self.say(index, &mut log, vec![line]).await;
                }
                self.pick_tag(index, &listing, current.as_ref(), now).await?
            }
        };
        let chosen = match chosen {
            Ok(chosen) => chosen,
            Err(reason) => return self.end_logged(step, attempt, began, &mut log, Some(reason)).await,
        };
        self.record(Event::Evidence { step: step.id.clone(), evidence: tag::choice(&listing, &chosen) }).await?;
        match &step.capture {
            Some(name) => {
                let value = tag::capture(&listing, &chosen);
                self.record(Event::CaptureSet { step: step.id.clone(), name: name.clone(), value }).await?;
            }
            None => self.say(index, &mut log, vec![format!("tag: {} ({})", chosen.tag, chosen.image)]).await,
        }
        self.end_logged(step, attempt, began, &mut log, None).await
    }

    /// The operator picks a tag: `select = "choose"`, or the deployments do
    /// not run one tag. `Err`: none was picked, and why.
    async fn pick_tag(
        &mut self,
        index: usize,
        listing: &TagListing,
        current: Option<&TagOption>,
        now: jiff::Timestamp,
    ) -> Result<Result<TagOption, String>, Halt> {
        let rows = listing
            .options
            .iter()
            .map(|option| PickRow {
                cells: tag::describe(option, now).to_vec(),
                sort: Vec::new(),
                marked: !option.running.is_empty(),
            })
            .collect();
        let default = current.and_then(|c| listing.options.iter().position(|o| o == c));
        let question = Question::Pick { step: index, what: PickWhat::Tag, rows, default };
        loop {
            let (answer, by) = self.decide(question.clone()).await?;
            match answer {
                Answer::Pick(row) => match listing.options.get(row) {
                    Some(option) => return Ok(Ok(option.clone())),
                    None => continue,
                },
                Answer::NoPick if by == super::super::By::Policy => {
                    let why = format!(
                        "the deployments do not run one tag ({}); --yes cannot pick one: run without --yes to choose",
                        listing.disagreement()
                    );
                    return Ok(Err(why));
                }
                Answer::NoPick => return Ok(Err("no tag was chosen".into())),
                _ => continue,
            }
        }
    }

    pub(in crate::drive) async fn k8s_wait(
        &mut self,
        index: usize,
        step: &Step,
        spec: &K8sWaitSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let mut rendered = match WaitStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        rendered.target.context = self.cluster_context(rendered.target.context);
        let (attempt, mut log) = self.start_logged(step, format!("k8s-wait {}", rendered.target.describe())).await?;
        let (sender, events) = mpsc::channel(64);
        let (cancel, id) = (self.attempt_token(), step.id.clone());
        let task = tokio::spawn(async move {
            match k8s::connect(rendered.target.context.as_deref()).await {
                Ok(cluster) => wait::run(cluster.as_ref(), &rendered, &id, &sender, &cancel).await,
                Err(error) => Err(WaitError::Cluster(error)),
            }
        });
        let result = self.follow(index, Some(&mut log), false, events, task).await?;
        self.k8s_end(index, step, attempt, began, &mut log, result).await
    }

    async fn k8s_end(
        &mut self,
        index: usize,
        step: &Step,
        attempt: u32,
        began: Instant,
        log: &mut super::super::attempt::StepLog,
        result: Result<StepDone, WaitError>,
    ) -> Result<(), Halt> {
        match result {
            Ok(done) => {
                if let Some(evidence) = done.evidence {
                    self.record(Event::Evidence { step: step.id.clone(), evidence }).await?;
                }
                self.end_logged(step, attempt, began, log, None).await
            }
            Err(WaitError::Cancelled) if self.leaving.is_some() => {
                let why = self.leaving.as_ref().map(|l| l.reason.clone()).unwrap_or_default();
                self.say(index, log, vec![format!("{why}; `drillbook resume` re-attaches to the cluster")]).await;
                self.interrupted(step, attempt, None).await
            }
            Err(error) => self.end_logged(step, attempt, began, log, Some(error.to_string())).await,
        }
    }

    pub(in crate::drive) async fn k8s_scale(
        &mut self,
        index: usize,
        step: &Step,
        spec: &K8sScaleSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let context = self.session.template_context();
        let rendered = ScaleStep::render(spec, &context, self.session.templater());
        let rendered = rendered.map_err(|e| e.to_string()).and_then(|mut rendered| {
            rendered.target.context = self.cluster_context(rendered.target.context.take());
            let protected = k8s::protected_namespaces(&self.session.runbook, &context, self.session.templater())
                .map_err(|e| e.to_string())?;
            rendered.refuse_protected(&protected).map_err(|e| e.to_string())?;
            Ok(rendered)
        });
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason).await,
        };
        let (runbook, state) = (&self.session.runbook, &self.session.state);
        let planned = async {
            let cluster = k8s::connect(rendered.target.context.as_deref()).await.map_err(|e| e.to_string())?;
            k8s::require_same_context(runbook, state, step, cluster.target()).map_err(|e| e.to_string())?;
            let (plan, workloads) = scale::plan(cluster.as_ref(), &rendered).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((cluster, plan, workloads))
        };
        // Planned before the attempt starts: the confirmation shows the plan.
        let planned = planned.await;
        let (cluster, mut plan, workloads) = match planned {
            Ok(planned) => planned,
            Err(reason) => return self.fail_without_running(step, began, reason).await,
        };
        // A retried or resumed scale acts on the workloads there are now, and
        // reports the replica counts from before its first attempt.
        let earlier = match self.session.state.step(&step.id).and_then(|s| s.evidence.as_ref()) {
            Some(crate::drill::evidence::Evidence::Scale(earlier)) => Some(earlier.clone()),
            _ => None,
        };
        if let Some(earlier) = &earlier {
            plan.keep_earlier_counts(earlier);
            self.notice("  replica counts from before the first attempt are kept for the report").await;
        }
        let description = plan.describe();
        // Scaling is destructive: it is confirmed even with `confirm = false`.
        let confirm = if step.confirm == Confirm::No { Confirm::YesNo } else { step.confirm };
        let target = format!("context {}, namespace {}", plan.context, plan.namespace);
        if !self.confirm(index, step, confirm, &description.join("\n"), Some(target)).await? {
            return Ok(());
        }
        // Journaled before anything changes: the report keeps what there was.
        self.record(Event::Evidence { step: step.id.clone(), evidence: scale_evidence(&plan) }).await?;
        let command = format!("k8s-scale namespace {} in context {} to {}", plan.namespace, plan.context, plan.to);
        let (attempt, mut log) = self.start_logged(step, command).await?;
        self.say(index, &mut log, description).await;
        let (sender, events) = mpsc::channel(64);
        let (cancel, id) = (self.attempt_token(), step.id.clone());
        let task = tokio::spawn(async move {
            scale::apply(cluster.as_ref(), &rendered, &plan, &workloads, &id, &sender, &cancel).await
        });
        let result = self.follow(index, Some(&mut log), false, events, task).await?;
        self.k8s_end(index, step, attempt, began, &mut log, result).await
    }
}

fn scale_evidence(plan: &ScalePlan) -> crate::drill::evidence::Evidence {
    crate::drill::evidence::Evidence::Scale(plan.clone())
}

/// Decides when a pod table is worth a line in a log: when more than its
/// pods' ages changed, at most every few seconds, and the last one at the
/// end. Plain mode prints pod tables by the same rule.
#[derive(Default)]
pub struct PodTableLines {
    last: Option<(Instant, Vec<String>)>,
    pending: Option<(Vec<String>, Vec<String>)>,
}

impl PodTableLines {
    /// The table's lines if they are due now.
    pub fn offer(&mut self, table: &PodTable) -> Option<Vec<String>> {
        let mut ageless = table.clone();
        ageless.rows.iter_mut().for_each(|r| r.age.clear());
        let key = wait::table_lines(&ageless);
        if self.last.as_ref().is_some_and(|(_, last)| *last == key) {
            return None;
        }
        let lines = wait::table_lines(table);
        if self.last.as_ref().is_none_or(|(at, _)| at.elapsed() >= TABLE_EVERY) {
            self.last = Some((Instant::now(), key));
            self.pending = None;
            Some(lines)
        } else {
            self.pending = Some((lines, key));
            None
        }
    }

    /// A table held back, to show before a line about it (or at the end).
    pub fn flush(&mut self) -> Option<Vec<String>> {
        let (lines, key) = self.pending.take()?;
        self.last = Some((Instant::now(), key));
        Some(lines)
    }
}

/// The cluster and namespace whose pods step `index` shows, rendered.
pub fn pod_log_target(session: &DrillSession, index: usize) -> Option<RenderedTarget> {
    let target = match &session.runbook.steps.get(index)?.action {
        Action::K8sWait(spec) => &spec.target,
        Action::K8sScale(spec) => &spec.target,
        Action::K8sImageTag(spec) => &spec.target,
        _ => return None,
    };
    let mut rendered = RenderedTarget::render(target, &session.template_context(), session.templater()).ok()?;
    rendered.context = session.k8s_context_override().or(rendered.context);
    Some(rendered)
}

/// The last lines of a pod's log, each marked with the pod, or why not.
pub async fn fetch_pod_log(target: RenderedTarget, pod: &str) -> Vec<String> {
    use futures::StreamExt;
    let mut lines = vec![format!("── logs of pod {pod} (last {POD_LOG_TAIL} lines) ──")];
    let cluster: Arc<dyn Cluster> = match k8s::connect(target.context.as_deref()).await {
        Ok(cluster) => cluster,
        Err(error) => {
            lines.push(format!("cannot reach the cluster: {error}"));
            return lines;
        }
    };
    let options = LogOptions { tail_lines: Some(POD_LOG_TAIL), ..LogOptions::default() };
    let mut stream = cluster.logs(&target.namespace, pod, options);
    while let Some(line) = stream.next().await {
        match line {
            Ok(line) => lines.push(format!("[{pod}] {line}")),
            Err(error) => lines.push(format!("[{pod}] cannot read the log: {error}")),
        }
    }
    lines
}
