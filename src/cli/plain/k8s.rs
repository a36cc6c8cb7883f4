//! Plain mode for the Kubernetes steps: the tag list and question, the pod
//! table printed when it changes, the typed confirmation before a scale.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Driver, Halt};
use crate::drill::event::{Event, SkipCause};
use crate::engine::k8s::scale::{self, ScalePlan, ScaleStep};
use crate::engine::k8s::tag::{self, TagStep};
use crate::engine::k8s::wait::{self, StepDone, WaitError, WaitStep};
use crate::engine::k8s::{self, Cluster};
use crate::engine::steps::StepLog;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::{Confirm, K8sImageTagSpec, K8sScaleSpec, K8sWaitSpec, Step, TagSelect};

/// The pod table is printed at most this often (and always at the end).
const TABLE_EVERY: Duration = Duration::from_secs(3);

impl Driver {
    /// Logs and prints lines of a running Kubernetes step.
    /// Pod logs and server messages may hold a secret (a crashing app
    /// printing its database URL): redacted like command output.
    fn k8s_say(&self, log: &mut StepLog, lines: &[String]) {
        let mut lines = lines.to_vec();
        crate::engine::redact::redact_lines(&self.session.template_context().secret_values(), &mut lines);
        for line in &lines {
            log.line(line);
        }
        self.out.output(OutputStream::Stdout, &lines);
    }

    /// The step's cluster; in training always the sandbox's.
    async fn cluster(&self, context: Option<&str>) -> Result<Arc<dyn Cluster>, String> {
        let sandbox = self.session.k8s_context_override();
        k8s::connect(sandbox.as_deref().or(context)).await.map_err(|e| e.to_string())
    }

    pub(super) async fn k8s_image_tag(&mut self, step: &Step, spec: &K8sImageTagSpec) -> Result<(), Halt> {
        let rendered = match TagStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let started = Instant::now();
        let cluster = match self.cluster(rendered.target.context.as_deref()).await {
            Ok(cluster) => cluster,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let (attempt, mut log) = self.start_logged(
            step,
            format!("k8s-image-tag namespace {} in context {}", rendered.target.namespace, cluster.target().context),
        )?;
        let listing = match tag::list(cluster.as_ref(), &rendered).await {
            Ok(listing) => listing,
            Err(error) => {
                log.line(&error.to_string());
                return self.end_logged(step, attempt, started, Some(error.to_string()));
            }
        };
        let now = jiff::Timestamp::now();
        let mut lines = tag::summary(&listing);
        lines.push("tags:".into());
        for (index, option) in listing.options.iter().enumerate() {
            let [tag, running, revision, age, current] = tag::describe(option, now);
            lines.push(format!(
                "{:>2}. {tag}  running: {running}  revision {revision}  age {age}  {current}",
                index + 1
            ));
        }
        self.k8s_say(&mut log, &lines);
        let previous = self
            .session
            .state
            .step(&step.id)
            .and_then(|s| s.resumable_choice(Some(attempt)).cloned())
            .and_then(|choice| tag::find_choice(&listing, &choice).cloned());
        let chosen = match (previous, listing.current().cloned()) {
            (Some(previous), _) => {
                self.k8s_say(&mut log, &[format!("continuing with the tag chosen before: {}", previous.tag)]);
                previous
            }
            (None, current) if rendered.select == TagSelect::Choose && !self.yes => {
                let default = current.as_ref().and_then(|c| listing.options.iter().position(|o| o == c));
                loop {
                    let question = match default {
                        Some(index) => format!("  Which tag? number [{}]: ", index + 1),
                        None => "  Which tag? number: ".to_string(),
                    };
                    let (answer, _) = self.ask_choice(&step.id, &question).await?;
                    let index = if answer.is_empty() { default.map(|i| i + 1) } else { answer.parse::<usize>().ok() };
                    match index.and_then(|i| listing.options.get(i.wrapping_sub(1))) {
                        Some(option) => break option.clone(),
                        None => self.out.line(&format!("  choose 1 to {}", listing.options.len())),
                    }
                }
            }
            (None, Some(current)) => current,
            (None, None) => {
                let how = if self.yes {
                    "--yes cannot pick one: run without --yes to choose"
                } else {
                    "use `select = \"choose\"` (or the TUI) to pick one, or list the `deployments` that matter"
                };
                let reason = format!("the deployments do not run one tag ({}); {how}", listing.disagreement());
                log.line(&reason);
                return self.end_logged(step, attempt, started, Some(reason));
            }
        };
        self.session.record(Event::Chosen { step: step.id.clone(), choice: tag::choice_json(&listing, &chosen) })?;
        let capture = tag::capture(&listing, &chosen);
        match &step.capture {
            Some(name) => {
                self.session.record(Event::CaptureSet {
                    step: step.id.clone(),
                    name: name.clone(),
                    value: capture.clone(),
                })?;
                self.k8s_say(&mut log, &[format!("captured {name} = {} ({})", capture.value, chosen.image)]);
            }
            None => self.k8s_say(&mut log, &[format!("tag: {} ({})", chosen.tag, chosen.image)]),
        }
        self.end_logged(step, attempt, started, None)
    }

    pub(super) async fn k8s_wait(&mut self, step: &Step, spec: &K8sWaitSpec) -> Result<(), Halt> {
        let rendered = match WaitStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let cluster = match self.cluster(rendered.target.context.as_deref()).await {
            Ok(cluster) => cluster,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let started = Instant::now();
        let (attempt, mut log) = self.start_logged(
            step,
            format!("k8s-wait namespace {} in context {}", rendered.target.namespace, cluster.target().context),
        )?;
        let (sender, events) = mpsc::channel(64);
        let cancel = self.stop.child_token();
        let (task_cluster, task_step, id) = (cluster.clone(), rendered.clone(), step.id.clone());
        let task =
            tokio::spawn(async move { wait::run(task_cluster.as_ref(), &task_step, &id, &sender, &cancel).await });
        self.k8s_events(&mut log, events).await;
        let result = task.await.map_err(|e| Halt::Stopped(format!("internal error in the step runner: {e}")))?;
        self.k8s_end(step, attempt, started, &mut log, result)
    }

    /// Prints what a Kubernetes task reports until it ends.
    async fn k8s_events(&self, log: &mut StepLog, mut events: mpsc::Receiver<EngineEvent>) {
        let mut last_table: Option<(Instant, Vec<String>)> = None;
        let mut pending: Option<(Vec<String>, Vec<String>)> = None;
        while let Some(event) = events.recv().await {
            match event {
                EngineEvent::Output { lines, .. } => {
                    // The table first: it is what the line that follows is about.
                    if let Some((table, key)) = pending.take() {
                        self.k8s_say(log, &table);
                        last_table = Some((Instant::now(), key));
                    }
                    self.k8s_say(log, &lines);
                }
                EngineEvent::Progress { .. } => {}
                EngineEvent::Pods { table, .. } => {
                    // Ages alone changing is not worth a new table in a log.
                    let mut ageless = table.clone();
                    ageless.rows.iter_mut().for_each(|r| r.age.clear());
                    let key = wait::table_lines(&ageless);
                    if last_table.as_ref().is_some_and(|(_, last)| *last == key) {
                        continue;
                    }
                    let lines = wait::table_lines(&table);
                    let due = last_table.as_ref().is_none_or(|(at, _)| at.elapsed() >= TABLE_EVERY);
                    if due {
                        self.k8s_say(log, &lines);
                        last_table = Some((Instant::now(), key));
                        pending = None;
                    } else {
                        pending = Some((lines, key));
                    }
                }
            }
        }
        if let Some((lines, _)) = pending {
            self.k8s_say(log, &lines);
        }
    }

    fn k8s_end(
        &mut self,
        step: &Step,
        attempt: u32,
        started: Instant,
        log: &mut StepLog,
        result: Result<StepDone, WaitError>,
    ) -> Result<(), Halt> {
        match result {
            Ok(done) => {
                if let Some(evidence) = done.evidence {
                    self.session.record(Event::Chosen { step: step.id.clone(), choice: evidence })?;
                }
                self.end_logged(step, attempt, started, None)
            }
            Err(WaitError::Cancelled) if self.stop.is_cancelled() => {
                let line = format!("stopped by {}; `drillbook resume` re-attaches to the cluster", self.stop_reason());
                self.k8s_say(log, &[line]);
                self.stopped_attempt(step, attempt)
            }
            Err(error) => {
                log.line(&error.to_string());
                self.end_logged(step, attempt, started, Some(error.to_string()))
            }
        }
    }

    pub(super) async fn k8s_scale(&mut self, step: &Step, spec: &K8sScaleSpec) -> Result<(), Halt> {
        let context = self.session.template_context();
        let rendered = match ScaleStep::render(spec, &context, self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let refused = k8s::protected_namespaces(&self.session.runbook, &context, self.session.templater())
            .and_then(|protected| rendered.refuse_protected(&protected));
        if let Err(reason) = refused {
            return self.fail_without_running(step, reason);
        }
        let cluster = match self.cluster(rendered.target.context.as_deref()).await {
            Ok(cluster) => cluster,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let same = k8s::require_same_context(&self.session.runbook, &self.session.state, step, cluster.target());
        if let Err(reason) = same {
            return self.fail_without_running(step, reason);
        }
        let (mut plan, workloads) = match scale::plan(cluster.as_ref(), &rendered).await {
            Ok(planned) => planned,
            Err(error) => return self.fail_without_running(step, error.to_string()),
        };
        // A retried or resumed scale acts on the workloads there are now, and
        // reports the replica counts from before its first attempt.
        let earlier =
            self.session.state.step(&step.id).and_then(|s| s.choice.as_ref()).and_then(ScalePlan::from_choice);
        let resumed = earlier.is_some();
        if let Some(earlier) = &earlier {
            plan.keep_earlier_counts(earlier);
        }
        let description = plan.describe();
        if resumed {
            self.out.line("  replica counts from before the first attempt are kept for the report");
        }
        let confirmed = self.confirm_target(step, &description.join("\n"), &plan.namespace).await?;
        if !confirmed {
            self.out.line("  not confirmed: skipped");
            return Ok(self.session.record(Event::StepSkipped {
                step: step.id.clone(),
                cause: SkipCause::Operator,
                reason: "not confirmed".into(),
            })?);
        }
        // Journaled before anything changes: the report keeps what there was.
        self.session.record(Event::Chosen { step: step.id.clone(), choice: plan.choice_json() })?;
        let started = Instant::now();
        let (attempt, mut log) = self.start_logged(
            step,
            format!("k8s-scale namespace {} in context {} to {}", plan.namespace, plan.context, plan.to),
        )?;
        self.k8s_say(&mut log, &description);
        let (sender, events) = mpsc::channel(64);
        let cancel = self.stop.child_token();
        let (task_cluster, task_step, task_plan, id) =
            (cluster.clone(), rendered.clone(), plan.clone(), step.id.clone());
        let task = tokio::spawn(async move {
            scale::apply(task_cluster.as_ref(), &task_step, &task_plan, &workloads, &id, &sender, &cancel).await
        });
        self.k8s_events(&mut log, events).await;
        let result = task.await.map_err(|e| Halt::Stopped(format!("internal error in the step runner: {e}")))?;
        self.k8s_end(step, attempt, started, &mut log, result)
    }

    /// Confirmation that names the target: the operator types `expected`
    /// (the namespace) unless the runbook asks only yes/no. A destructive
    /// step always asks, even with `confirm = false`.
    async fn confirm_target(&mut self, step: &Step, display: &str, expected: &str) -> Result<bool, Halt> {
        let confirm = if step.confirm == Confirm::No { Confirm::YesNo } else { step.confirm };
        self.confirm_as(step, display, confirm, expected).await
    }
}
