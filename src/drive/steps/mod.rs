//! One runner per step kind, and what every runner shares: the `when`
//! condition, starting and ending an attempt, following what a running
//! attempt reports (while still hearing the operator), confirmations, and
//! the decisions about interrupted and failed steps.

mod browser;
mod command;
mod dns;
mod http;
mod isolation;
mod k8s;
mod manual;
mod s3;
mod sql;

use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use k8s::{PodTableLines, fetch_pod_log, pod_log_target};

use super::attempt::{StepLog, next_attempt};
use super::protocol::{Answer, Question, Update};
use super::target::{step_target, typed_target};
use super::{By, Conductor, Halt, Incoming, Input, elapsed_ms};
use crate::drill::event::{AttemptResult, Event, FileOrigin, SkipCause};
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::{Action, Confirm, Step};

/// Why an attempt the operator stopped failed.
const STOPPED: &str = "stopped by the operator";

/// A progress line goes into a step's log at most this often (the
/// front-end shows every one).
const PROGRESS_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl Conductor {
    /// Runs the step at `index` once: its `when`, then its kind's runner.
    pub(super) async fn run_step(&mut self, index: usize) -> Result<(), Halt> {
        let step = self.step(index);
        let began = Instant::now();
        if let Some(when) = &step.when {
            let context = self.session.template_context();
            match self.session.templater().eval_condition(&when.text, &context) {
                Ok(true) => {}
                Ok(false) => {
                    return self
                        .record(Event::StepSkipped {
                            step: step.id.clone(),
                            cause: SkipCause::Condition,
                            reason: format!("when `{}` is false", when.text),
                        })
                        .await;
                }
                Err(error) => {
                    return self.fail_without_running(&step, began, format!("cannot evaluate `when`: {error}")).await;
                }
            }
        }
        let context = self.session.template_context();
        let render = |text: &str| self.session.templater().render_plain(text, &context).ok();
        let help = step.help.as_deref().map(|help| render(help).unwrap_or_else(|| help.to_string()));
        let url = step.url.as_ref().and_then(|url| render(&url.text));
        self.send(Update::StepBegins { step: index, help, url }).await;
        match &step.action {
            Action::Manual => self.manual(index, &step).await,
            Action::Checklist(_) => self.checklist(index, &step).await,
            Action::Command(_) => self.command(index, &step, began).await,
            Action::S3Backup(spec) => self.s3_backup(index, &step, spec, began).await,
            Action::S3Check(spec) => self.s3_check(index, &step, spec, began).await,
            Action::K8sImageTag(spec) => self.k8s_image_tag(index, &step, spec, began).await,
            Action::K8sWait(spec) => self.k8s_wait(index, &step, spec, began).await,
            Action::K8sScale(spec) => self.k8s_scale(index, &step, spec, began).await,
            Action::K8sIsolation(spec) => self.k8s_isolation(index, &step, spec, began).await,
            Action::HttpCheck(spec) => self.http_check(index, &step, spec, began).await,
            Action::SqlCheck(spec) => self.sql_check(index, &step, spec, began).await,
            Action::DnsCheck(spec) => self.dns_check(index, &step, spec, began).await,
            Action::BrowserCheck(spec) => self.browser_check(index, &step, spec, began).await,
        }
    }

    /// Journals a step that failed before anything could run (a template
    /// error, a cluster that cannot be reached): an attempt that started
    /// and failed at once, timed from when the step began.
    async fn fail_without_running(&mut self, step: &Step, began: Instant, reason: String) -> Result<(), Halt> {
        let attempt = next_attempt(&self.session, step);
        self.record(Event::StepStarted { step: step.id.clone(), attempt, command: None, log: None }).await?;
        let duration = elapsed_ms(began);
        self.record(Event::finished_by_hand(&step.id, attempt, AttemptResult::Failed, Some(reason), duration)).await
    }

    /// Starts an attempt of a step that is not a shell command, with its log.
    async fn start_logged(&mut self, step: &Step, command: String) -> Result<(u32, StepLog), Halt> {
        let attempt = next_attempt(&self.session, step);
        let log = StepLog::create(&self.session, step, attempt);
        let started = Event::StepStarted {
            step: step.id.clone(),
            attempt,
            command: Some(command),
            log: Some(log.relative.clone()),
        };
        self.record(started).await?;
        Ok((attempt, log))
    }

    /// Ends an attempt of a step that is not a shell command: done, or
    /// failed with a reason (which goes into its log too).
    async fn end_logged(
        &mut self,
        step: &Step,
        attempt: u32,
        began: Instant,
        log: &mut StepLog,
        failure: Option<String>,
    ) -> Result<(), Halt> {
        // An attempt the operator stopped failed for that reason, whatever the engine said.
        let failure = failure.map(|reason| if self.stopping_step { STOPPED.to_string() } else { reason });
        let result = match &failure {
            None => AttemptResult::Succeeded,
            Some(reason) => {
                log.line(reason);
                AttemptResult::Failed
            }
        };
        self.record(Event::finished_by_hand(&step.id, attempt, result, failure, elapsed_ms(began))).await
    }

    /// Work done in place was dropped: the operator stopped the step (it
    /// failed), or drillbook is leaving (interrupted).
    async fn cut_short(&mut self, step: &Step, attempt: u32, began: Instant, log: &mut StepLog) -> Result<(), Halt> {
        if self.stopping_step {
            return self.end_logged(step, attempt, began, log, Some(STOPPED.into())).await;
        }
        self.interrupted(step, attempt, Some(log)).await
    }

    /// Journals an attempt cut short because drillbook is leaving, and leaves.
    async fn interrupted(&mut self, step: &Step, attempt: u32, log: Option<&mut StepLog>) -> Result<(), Halt> {
        let leave = self.leaving.take().unwrap_or(super::Leave::paused("stopped", 0));
        if let Some(log) = log {
            log.line(&format!("{}: `drillbook resume` continues the step", leave.reason));
        }
        self.record(Event::StepInterrupted { step: step.id.clone(), attempt, reason: leave.reason.clone() }).await?;
        Err(Halt::Left(leave))
    }

    /// Shows lines of a running step and writes them to its log, secrets
    /// masked (pod logs and server messages may hold one).
    async fn say(&mut self, index: usize, log: &mut StepLog, mut lines: Vec<String>) {
        crate::engine::redact::redact_lines(&self.session.template_context().secret_values(), &mut lines);
        log.lines(&lines);
        self.send(Update::Output { step: index, stream: OutputStream::Stdout, lines: lines.into() }).await;
    }

    /// What an earlier attempt of this step chose (a backup, a tag) and a
    /// retry or resume keeps, found again in what is on offer now.
    fn chosen_before<'a, T: Clone + 'a>(
        &self,
        step: &Step,
        attempt: u32,
        find: impl FnOnce(&crate::drill::evidence::Evidence) -> Option<&'a T>,
    ) -> Option<T> {
        self.session.state.step(&step.id)?.resumable_choice(Some(attempt)).and_then(find).cloned()
    }

    /// A token that cancels the attempt about to run (the operator quits or
    /// stops the step, a signal).
    fn attempt_token(&mut self) -> CancellationToken {
        self.stopping_step = false;
        let token = CancellationToken::new();
        self.running = Some(token.clone());
        token
    }

    /// Passes on what a running attempt reports (logged unless the engine
    /// logs it itself, as commands do) until it is done, carrying out the
    /// operator's requests meanwhile. Returns the task's result.
    /// `log_progress`: progress is worth a line of the log now and then (a
    /// download's); other steps' progress repeats their output.
    async fn follow<T>(
        &mut self,
        index: usize,
        mut log: Option<&mut StepLog>,
        log_progress: bool,
        mut events: mpsc::Receiver<EngineEvent>,
        task: tokio::task::JoinHandle<T>,
    ) -> Result<T, Halt> {
        let secrets = self.session.template_context().secret_values();
        let mut last_progress_logged: Option<Instant> = None;
        let mut pods = PodTableLines::default();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    None => break,
                    Some(EngineEvent::Output { stream, mut lines, .. }) => {
                        if let Some(log) = log.as_deref_mut() {
                            // A table held back goes first: the line that follows is about it.
                            if let Some(table) = pods.flush() {
                                log.lines(&table);
                            }
                            // Steps that log here print little (commands log themselves).
                            let mut owned = lines.to_vec();
                            crate::engine::redact::redact_lines(&secrets, &mut owned);
                            log.lines(&owned);
                            lines = owned.into();
                        }
                        self.send(Update::Output { step: index, stream, lines }).await;
                    }
                    Some(EngineEvent::Progress { message, .. }) => {
                        let due = last_progress_logged.is_none_or(|at| at.elapsed() >= PROGRESS_LOG_EVERY);
                        if let Some(log) = log.as_deref_mut()
                            && log_progress
                            && (due || !message.contains('%'))
                        {
                            log.line(&message);
                            last_progress_logged = Some(Instant::now());
                        }
                        self.send(Update::Progress { step: index, message }).await;
                    }
                    Some(EngineEvent::Evidence { evidence, .. }) => {
                        let step = self.step(index).id.clone();
                        self.record(Event::Evidence { step, evidence }).await?;
                    }
                    Some(EngineEvent::FileSaved { file, .. }) => {
                        // Journaled right after the file was written and synced.
                        let step = self.step(index).id.clone();
                        if let Some(log) = log.as_deref_mut() {
                            log.line(&format!("saved {} (sha256 {})", file.path, &file.sha256[..12.min(file.sha256.len())]));
                        }
                        self.record(Event::FileAttached {
                            step,
                            path: file.path,
                            sha256: file.sha256,
                            bytes: file.bytes,
                            origin: FileOrigin::Screenshot,
                            label: file.label,
                            note: None,
                            by: None,
                        })
                        .await?;
                    }
                    Some(EngineEvent::Pods { table, .. }) => {
                        if let Some(log) = log.as_deref_mut()
                            && let Some(lines) = pods.offer(&table)
                        {
                            log.lines(&lines);
                        }
                        self.send(Update::Pods { step: index, table }).await;
                    }
                },
                incoming = self.next_incoming() => self.hear(incoming, log.as_deref_mut()).await?,
            }
        }
        if let (Some(log), Some(lines)) = (log, pods.flush()) {
            log.lines(&lines);
        }
        self.running = None;
        task.await
            .map_err(|join| Halt::Left(super::Leave::paused(format!("internal error in the step runner: {join}"), 2)))
    }

    /// Awaits work done in place (a listing, a plan) while hearing the
    /// operator. `None`: drillbook is leaving, the work was dropped.
    async fn hearing<F: std::future::Future>(&mut self, work: F) -> Result<Option<F::Output>, Halt> {
        let token = self.attempt_token();
        tokio::pin!(work);
        let done = loop {
            tokio::select! {
                output = &mut work => break Some(output),
                () = token.cancelled() => break None,
                incoming = self.next_incoming() => self.hear(incoming, None).await?,
            }
        };
        self.running = None;
        Ok(done)
    }

    /// What the operator or a signal says while an attempt runs.
    async fn hear(&mut self, incoming: Incoming, log: Option<&mut StepLog>) -> Result<(), Halt> {
        match incoming {
            Incoming::Input(Input::Request(request)) => self.request(request, log).await,
            Incoming::Input(Input::Answer { .. }) => Ok(()),
            Incoming::Internal(internal) => self.internal(internal, log).await,
            Incoming::Closed => self.leave(super::Leave::paused("the interface closed", 0), log),
        }
    }

    /// Asks to run the step (where it wants a confirmation). `Ok(true)`:
    /// confirmed and journaled; `Ok(false)`: not confirmed, and the step is
    /// journaled as skipped. `typed`: the text to type (a namespace).
    async fn confirm(
        &mut self,
        index: usize,
        step: &Step,
        confirm: Confirm,
        command: &str,
        target: Option<String>,
    ) -> Result<bool, Halt> {
        if confirm == Confirm::No {
            return Ok(true);
        }
        let context = self.session.template_context();
        let training = self.session.state.training;
        let target =
            target.or_else(|| step_target(step, &context, self.session.templater(), training)).unwrap_or_else(|| {
                match (training, command.contains("kubectl")) {
                    (true, _) => "training: simulated, not run".into(),
                    // A kubectl in the command acts on a cluster: say which.
                    (false, true) => match crate::engine::k8s::kubectl_context() {
                        Some(context) => format!("this machine; kubectl context {context}"),
                        None => "this machine; kubectl finds no kubeconfig context".into(),
                    },
                    (false, false) => "this machine".into(),
                }
            });
        let typed = (confirm == Confirm::Typed).then(|| typed_target(step, &context, self.session.templater()));
        let mut mismatch = None;
        loop {
            let question = Question::Confirm {
                step: index,
                command: command.to_string(),
                target: target.clone(),
                typed: typed.clone(),
                mismatch: mismatch.take(),
            };
            let (answer, by) = self.decide(question).await?;
            let how = match (&answer, &typed) {
                _ if by == By::Policy => "--yes".to_string(),
                (Answer::Yes, None) => "answered yes".to_string(),
                (Answer::Typed(text), Some(expected)) if text == expected => format!("typed `{expected}`"),
                (Answer::Decline { reason }, _) => {
                    let Some(reason) = self.reason_given(reason).await else { continue };
                    let skipped = Event::StepSkipped { step: step.id.clone(), cause: SkipCause::Declined, reason };
                    self.record(skipped).await?;
                    return Ok(false);
                }
                (Answer::Typed(text), Some(_)) => {
                    mismatch = Some(text.clone());
                    continue;
                }
                _ => continue,
            };
            self.record(Event::StepConfirmed { step: step.id.clone(), how }).await?;
            return Ok(true);
        }
    }

    /// A reason the operator gave, or `None` after saying one is needed: no
    /// step is skipped, declined or marked done without one.
    async fn reason_given(&self, text: &str) -> Option<String> {
        let text = text.trim();
        if text.is_empty() {
            self.notice("  a reason is needed: say why, so the report can").await;
            return None;
        }
        Some(text.to_string())
    }

    /// A step that was running when drillbook stopped: the operator
    /// chooses re-run, mark done or skip. Manual steps and checklists
    /// carry on where they were (nothing ran; ticks are kept).
    pub(super) async fn decide_interrupted(&mut self, index: usize) -> Result<(), Halt> {
        let step = self.step(index);
        if matches!(step.action, Action::Manual | Action::Checklist(_)) {
            // Nothing ran: carry on where the operator was, and say so.
            let kept = match &step.action {
                Action::Checklist(list) => {
                    let state = &self.session.state.steps[index];
                    let ticked = (0..list.items.len()).filter(|i| state.ticked(*i)).count();
                    let failed = state.failed_items.len();
                    let failed = if failed > 0 { format!(", {failed} marked failed") } else { String::new() };
                    format!("; its answers are kept ({ticked} of {} ticked{failed})", list.items.len())
                }
                _ => String::new(),
            };
            self.notice(format!("  `{}` was open when drillbook stopped: it carries on{kept}", step.id)).await;
            let reset = Event::StepReset { step: step.id.clone(), reason: "continue after interruption".into() };
            return self.record(reset).await;
        }
        let still_running = crate::engine::leftover::still_running(&self.session.dir.logs(), &step.id);
        if self.options.unattended && !still_running.is_empty() {
            // Nobody sees the question: say what its attempt left running.
            let mut lines =
                vec!["  Still running from the interrupted attempt (running the step again stops them first):".into()];
            lines.extend(still_running.iter().map(|process| format!("    {process}")));
            self.notice(lines.join("\n")).await;
        }
        loop {
            let question = Question::Interrupted { step: index, still_running: still_running.clone() };
            let (answer, by) = self.decide(question).await?;
            let event = match answer {
                Answer::Again => {
                    if by == By::Policy {
                        self.notice("  --yes: running it again").await;
                    }
                    Event::StepReset { step: step.id.clone(), reason: "re-run after interruption".into() }
                }
                Answer::MarkDone { note } => {
                    let Some(note) = self.reason_given(&note).await else { continue };
                    Event::StepMarkedDone { step: step.id.clone(), note }
                }
                Answer::Skip { reason } => {
                    let Some(reason) = self.reason_given(&reason).await else { continue };
                    Event::StepSkipped { step: step.id.clone(), cause: SkipCause::Operator, reason }
                }
                _ => continue,
            };
            return self.record(event).await;
        }
    }

    /// A step failed and stops the drill: retry, skip, or stop (teardown runs).
    pub(super) async fn after_failure(&mut self, index: usize) -> Result<(), Halt> {
        let step = self.step(index);
        let reason = match &self.session.state.steps[index].status {
            crate::drill::state::StepStatus::Failed { reason } => reason.clone(),
            _ => String::new(),
        };
        loop {
            let question = Question::Failed { step: index, reason: reason.clone() };
            let (answer, by) = self.decide(question).await?;
            match answer {
                Answer::Again if by == By::Policy => {
                    self.notice("  --yes: retrying the failed step").await;
                    let reset = Event::StepReset { step: step.id.clone(), reason: "retry on resume (--yes)".into() };
                    return self.record(reset).await;
                }
                Answer::Again => {
                    let reset = Event::StepReset { step: step.id.clone(), reason: "retry after failure".into() };
                    return self.record(reset).await;
                }
                Answer::Skip { reason } => {
                    let Some(reason) = self.reason_given(&reason).await else { continue };
                    let skipped = Event::StepSkipped { step: step.id.clone(), cause: SkipCause::Operator, reason };
                    return self.record(skipped).await;
                }
                Answer::Abort { .. } => return self.begin_abort().await,
                Answer::Stop => return Ok(()),
                _ => continue,
            }
        }
    }
}
