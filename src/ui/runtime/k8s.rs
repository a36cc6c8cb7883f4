//! The TUI runtime's Kubernetes steps: list tags (and ask when it must),
//! watch pods, plan a scale for its typed confirmation, then scale. Cluster
//! calls run in tasks; their results come back as `Incoming` messages.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Incoming, Runtime};
use crate::drill::event::Event;
use crate::engine::k8s::scale::{self, ScalePlan, ScaleStep};
use crate::engine::k8s::tag::{self, TagListing, TagStep};
use crate::engine::k8s::wait::{self, StepDone, WaitError, WaitStep};
use crate::engine::k8s::{self, Cluster, LogOptions, Workload};
use crate::engine::steps;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::{Action, TagSelect};
use crate::ui::app::{App, Effect, Msg, PickRow};
use crate::ui::update::update;

/// Lines of a pod's log shown when the operator asks for it.
const POD_LOG_TAIL: u32 = 200;

/// Tags listed for a step that waits for the operator's pick.
pub(super) struct PendingTag {
    step: usize,
    attempt: u32,
    listing: TagListing,
}

/// A scale planned and shown for confirmation.
pub(super) struct PendingScale {
    step: usize,
    cluster: Arc<dyn Cluster>,
    rendered: ScaleStep,
    plan: ScalePlan,
    workloads: Vec<Workload>,
}

pub(super) enum K8sIncoming {
    Listed { step: usize, attempt: u32, result: Result<TagListing, String> },
    Planned { step: usize, result: Result<Box<PendingScale>, String> },
    Done { step: usize, attempt: u32, result: Result<StepDone, WaitError> },
}

impl Runtime {
    pub(super) async fn handle_k8s(&mut self, app: &mut App, incoming: K8sIncoming) {
        let effects = match incoming {
            K8sIncoming::Listed { step, attempt, result } => self.tags_listed(app, step, attempt, result),
            K8sIncoming::Planned { step, result } => self.scale_planned(app, step, result),
            K8sIncoming::Done { step, attempt, result } => {
                self.running = None;
                let outcome = match result {
                    Ok(done) => {
                        if let (Some(evidence), Some(session)) = (done.evidence, self.session.as_mut()) {
                            let id = session.runbook.steps[step].id.clone();
                            if let Err(error) = session.record(Event::Chosen { step: id, choice: evidence }) {
                                self.log_line(step, &format!("could not journal what the wait saw: {error}"));
                            }
                        }
                        Ok(())
                    }
                    Err(WaitError::Cancelled) if self.quit_after_command.is_some() => {
                        self.log_line(step, "stopped; `drillbook resume` re-attaches to the cluster");
                        Err(None)
                    }
                    Err(error) => {
                        self.log_line(step, &error.to_string());
                        Err(Some(error.to_string()))
                    }
                };
                self.end_s3(app, step, attempt, outcome).await;
                return;
            }
        };
        self.execute_all(app, effects).await;
    }

    /// `RunK8s`: starts a tag listing or a wait, or the scale confirmed.
    /// Answers with `EffectDone` (or `EffectFailed`) on every path.
    pub(super) fn run_k8s(&mut self, app: &mut App, step: usize) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return Vec::new() };
        let context = session.template_context();
        let attempt = steps::next_attempt(session, &runbook_step);
        let tx = self.tx.clone();
        // Training works on the sandbox cluster, whatever the context.
        let sandbox = session.k8s_context_override();
        let (description, task): (String, super::Task) = match &runbook_step.action {
            Action::K8sImageTag(spec) => match TagStep::render(spec, &context, session.templater()).map(|mut r| {
                r.target.context = sandbox.clone().or(r.target.context);
                r
            }) {
                Ok(rendered) => (
                    format!("k8s-image-tag {}", rendered.target.describe()),
                    Box::pin(async move {
                        let result = async {
                            let cluster =
                                k8s::connect(rendered.target.context.as_deref()).await.map_err(|e| e.to_string())?;
                            tag::list(cluster.as_ref(), &rendered).await.map_err(|e| e.to_string())
                        }
                        .await;
                        let _ = tx.send(Incoming::K8s(K8sIncoming::Listed { step, attempt, result })).await;
                    }),
                ),
                Err(reason) => return self.fail_unstarted(app, step, reason),
            },
            Action::K8sWait(spec) => match WaitStep::render(spec, &context, session.templater()).map(|mut r| {
                r.target.context = sandbox.clone().or(r.target.context);
                r
            }) {
                Ok(rendered) => {
                    let cancel = CancellationToken::new();
                    self.running = Some(cancel.clone());
                    let id = runbook_step.id.clone();
                    (
                        format!("k8s-wait {}", rendered.target.describe()),
                        Box::pin(async move {
                            let (events, forward) = forward_events(tx.clone(), step);
                            let result = match k8s::connect(rendered.target.context.as_deref()).await {
                                Ok(cluster) => wait::run(cluster.as_ref(), &rendered, &id, &events, &cancel).await,
                                Err(error) => Err(WaitError::Cluster(error)),
                            };
                            drop(events);
                            let _ = forward.await;
                            let _ = tx.send(Incoming::K8s(K8sIncoming::Done { step, attempt, result })).await;
                        }),
                    )
                }
                Err(reason) => return self.fail_unstarted(app, step, reason),
            },
            Action::K8sScale(_) => {
                let Some(pending) = self.pending_scale.take().filter(|p| p.step == step) else {
                    return self.fail_unstarted(app, step, "the scale was not planned and confirmed".into());
                };
                // Journaled before anything changes: the report keeps what there was.
                let choice = pending.plan.choice_json();
                if let Err(error) = session.record(Event::Chosen { step: runbook_step.id.clone(), choice }) {
                    return update(app, Msg::EffectFailed(error.to_string()));
                }
                let cancel = CancellationToken::new();
                self.running = Some(cancel.clone());
                let id = runbook_step.id.clone();
                let plan = pending.plan.clone();
                let description =
                    format!("k8s-scale namespace {} in context {} to {}", plan.namespace, plan.context, plan.to);
                (
                    description,
                    Box::pin(async move {
                        let (events, forward) = forward_events(tx.clone(), step);
                        wait::say(&events, &id, plan.describe()).await;
                        let result = scale::apply(
                            pending.cluster.as_ref(),
                            &pending.rendered,
                            &plan,
                            &pending.workloads,
                            &id,
                            &events,
                            &cancel,
                        )
                        .await;
                        drop(events);
                        let _ = forward.await;
                        let _ = tx.send(Incoming::K8s(K8sIncoming::Done { step, attempt, result })).await;
                    }),
                )
            }
            _ => return self.fail_unstarted(app, step, "not a Kubernetes step".into()),
        };
        self.start_task(app, step, attempt, description, task)
    }

    fn tags_listed(
        &mut self,
        app: &mut App,
        step: usize,
        attempt: u32,
        result: Result<TagListing, String>,
    ) -> Vec<Effect> {
        let listing = match result {
            Ok(listing) => listing,
            Err(reason) => {
                self.log_line(step, &reason);
                return self.fail_running(app, step, attempt, reason);
            }
        };
        let Some(session) = self.session.as_ref() else { return Vec::new() };
        let runbook_step = &session.runbook.steps[step];
        let select = match &runbook_step.action {
            Action::K8sImageTag(spec) => spec.select,
            _ => TagSelect::Current,
        };
        let previous = session.state.step(&runbook_step.id).and_then(|s| s.resumable_choice(Some(attempt)).cloned());
        let now = jiff::Timestamp::now();
        let mut lines = tag::summary(&listing);
        for option in &listing.options {
            let [tag, running, revision, age, current] = tag::describe(option, now);
            lines.push(format!("  {tag}  running: {running}  revision {revision}  age {age}  {current}"));
        }
        self.show(app, step, lines);
        if let Some(previous) = previous.as_ref().and_then(|p| tag::find_choice(&listing, p)).cloned() {
            self.show(app, step, vec![format!("continuing with the tag chosen before: {}", previous.tag)]);
            return self.tag_chosen(app, step, attempt, &listing, previous.tag);
        }
        match listing.current() {
            Some(current) if select == TagSelect::Current => {
                let tag = current.tag.clone();
                self.tag_chosen(app, step, attempt, &listing, tag)
            }
            current => {
                if current.is_none() {
                    self.show(app, step, vec![format!("the deployments disagree: {}", listing.disagreement())]);
                }
                let rows = listing
                    .options
                    .iter()
                    .map(|option| PickRow {
                        value: option.tag.clone(),
                        cells: tag::describe(option, now).to_vec(),
                        sort: Vec::new(),
                        marked: !option.running.is_empty(),
                    })
                    .collect();
                self.pending_tag = Some(PendingTag { step, attempt, listing });
                app.in_flight += 1; // PickTag answers like an effect.
                update(app, Msg::PickTag { step, rows })
            }
        }
    }

    /// `TagPicked`: the operator chose (or cancelled).
    pub(super) fn tag_picked(&mut self, app: &mut App, step: usize, tag: Option<String>) -> Vec<Effect> {
        let Some(pending) = self.pending_tag.take().filter(|p| p.step == step) else {
            return update(app, Msg::EffectFailed("no tag listing is waiting for a choice".into()));
        };
        let mut effects = update(app, Msg::EffectDone(Vec::new()));
        effects.extend(match tag {
            Some(tag) => self.tag_chosen(app, step, pending.attempt, &pending.listing, tag),
            None => self.fail_running(app, step, pending.attempt, "no tag was chosen".into()),
        });
        effects
    }

    /// Journals the choice and the capture, and ends the step.
    fn tag_chosen(
        &mut self,
        app: &mut App,
        step: usize,
        attempt: u32,
        listing: &TagListing,
        tag: String,
    ) -> Vec<Effect> {
        let Some(option) = listing.find(&tag).cloned() else {
            return self.fail_running(app, step, attempt, format!("tag {tag} is not in the listing"));
        };
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let runbook_step = session.runbook.steps[step].clone();
        let mut recorded =
            session.record(Event::Chosen { step: runbook_step.id.clone(), choice: tag::choice_json(listing, &option) });
        let capture = tag::capture(listing, &option);
        if recorded.is_ok()
            && let Some(name) = &runbook_step.capture
        {
            recorded =
                session.record(Event::CaptureSet { step: runbook_step.id.clone(), name: name.clone(), value: capture });
        }
        if let Err(error) = recorded {
            return update(app, Msg::EffectFailed(error.to_string()));
        }
        self.show(app, step, vec![format!("tag {} ({})", option.tag, option.image)]);
        self.step_logs.remove(&step);
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let _ = session.record(Event::finished_by_hand(
            &runbook_step.id,
            attempt,
            crate::drill::event::AttemptResult::Succeeded,
            None,
            0,
        ));
        let records = session.take_new_records();
        update(app, Msg::StepEnded(records))
    }

    /// `PlanScale`: refuses protected namespaces, then lists what would change.
    pub(super) fn plan_scale(&mut self, app: &mut App, step: usize) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return Vec::new() };
        let Action::K8sScale(spec) = &runbook_step.action else { return Vec::new() };
        let context = session.template_context();
        let sandbox = session.k8s_context_override();
        let rendered = ScaleStep::render(spec, &context, session.templater()).and_then(|mut rendered| {
            rendered.target.context = sandbox.or(rendered.target.context);
            let protected = k8s::protected_namespaces(&session.runbook, &context, session.templater())?;
            rendered.refuse_protected(&protected)?;
            Ok(rendered)
        });
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_unstarted(app, step, reason),
        };
        // A resumed scale keeps the counts from before its first attempt.
        let earlier =
            session.state.step(&runbook_step.id).and_then(|s| s.choice.as_ref()).and_then(ScalePlan::from_choice);
        let tx = self.tx.clone();
        let (runbook, state) = (session.runbook.clone(), session.state.clone());
        tokio::spawn(async move {
            let result = async {
                let cluster = k8s::connect(rendered.target.context.as_deref()).await.map_err(|e| e.to_string())?;
                k8s::require_same_context(&runbook, &state, &runbook_step, cluster.target())?;
                let (mut plan, workloads) =
                    scale::plan(cluster.as_ref(), &rendered).await.map_err(|e| e.to_string())?;
                // A retry acts on what there is now, reporting the counts from before.
                if let Some(earlier) = &earlier {
                    plan.keep_earlier_counts(earlier);
                }
                Ok(Box::new(PendingScale { step, cluster, rendered, plan, workloads }))
            }
            .await;
            let _ = tx.send(Incoming::K8s(K8sIncoming::Planned { step, result })).await;
        });
        Vec::new()
    }

    fn scale_planned(&mut self, app: &mut App, step: usize, result: Result<Box<PendingScale>, String>) -> Vec<Effect> {
        match result {
            Ok(pending) => {
                let lines = pending.plan.describe();
                let target = format!("context {}, namespace {}", pending.plan.context, pending.plan.namespace);
                let namespace = pending.plan.namespace.clone();
                self.pending_scale = Some(*pending);
                update(app, Msg::ScalePlanned { step, lines, target, namespace })
            }
            Err(reason) => self.fail_unstarted(app, step, reason),
        }
    }

    /// `PodLogs`: the last lines of a pod's log into the step's log pane.
    pub(super) fn pod_logs(&mut self, app: &mut App, step: usize, pod: String) -> Vec<Effect> {
        let Some(session) = self.session.as_ref() else { return Vec::new() };
        let Some(runbook_step) = session.runbook.steps.get(step) else { return Vec::new() };
        let target = match &runbook_step.action {
            Action::K8sWait(spec) => &spec.target,
            Action::K8sScale(spec) => &spec.target,
            Action::K8sImageTag(spec) => &spec.target,
            _ => return Vec::new(),
        };
        let rendered = match tag::RenderedTarget::render(target, &session.template_context(), session.templater()) {
            Ok(mut rendered) => {
                rendered.context = session.k8s_context_override().or(rendered.context);
                rendered
            }
            Err(reason) => return update(app, Msg::Notice(reason)),
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut lines = vec![format!("── logs of pod {pod} (last {POD_LOG_TAIL} lines) ──")];
            match k8s::connect(rendered.context.as_deref()).await {
                Ok(cluster) => {
                    let options = LogOptions { tail_lines: Some(POD_LOG_TAIL), ..LogOptions::default() };
                    let mut stream = cluster.logs(&rendered.namespace, &pod, options);
                    while let Some(line) = stream.next().await {
                        match line {
                            Ok(line) => lines.push(format!("[{pod}] {line}")),
                            Err(error) => lines.push(format!("[{pod}] cannot read the log: {error}")),
                        }
                    }
                }
                Err(error) => lines.push(format!("cannot reach the cluster: {error}")),
            }
            // Through the engine path: redacted and logged like any step output.
            let event = EngineEvent::Output { step_id: String::new(), stream: OutputStream::Stdout, lines };
            let _ = tx.send(Incoming::S3Event { step, event }).await;
        });
        Vec::new()
    }
}

/// A channel for an engine task whose events are logged and shown.
pub(super) fn forward_events(
    tx: mpsc::Sender<Incoming>,
    step: usize,
) -> (mpsc::Sender<EngineEvent>, tokio::task::JoinHandle<()>) {
    let (events_tx, mut events_rx) = mpsc::channel(64);
    let forward = tokio::spawn(async move {
        while let Some(event) = events_rx.recv().await {
            if tx.send(Incoming::S3Event { step, event }).await.is_err() {
                break;
            }
        }
    });
    (events_tx, forward)
}
