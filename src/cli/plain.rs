//! The line-oriented interface: one step after another, output streamed
//! with a gutter, questions answered with a line of input. Used in pipes,
//! for scheduled drills (`--plain --yes`) and by the tests.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod http;
mod k8s;

use super::UiArgs;
use super::input::Input;
use crate::drill::event::{AttemptResult, DrillOutcome, Event, SkipCause};
use crate::drill::state::StepStatus;
use crate::engine::command::run_command;
use crate::engine::session::{DrillSession, ResumeNotice, SessionError};
use crate::engine::steps::{self, CommandEnd, StepLog};
use crate::engine::{EngineEvent, KILL_GRACE, OutputStream, plan};
use crate::report;
use crate::runbook::duration::format_duration;
use crate::runbook::{Action, ChecklistSpec, Confirm, Step};

/// Runs the drill to its end, a stop signal, or missing input.
pub fn drive(
    session: DrillSession,
    input: Input,
    ui: UiArgs,
    notice: Option<ResumeNotice>,
    abort: bool,
) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let stop = CancellationToken::new();
        let stop_reason = Arc::new(Mutex::new(None));
        listen_for_signals(stop.clone(), stop_reason.clone())?;
        let mut driver = Driver {
            session,
            input,
            yes: ui.yes,
            out: Printer::new(),
            stop,
            stop_reason,
            aborting: abort,
            report_to: ui.report_to.clone(),
        };
        driver.run(notice).await
    })
}

/// SIGINT, SIGTERM and SIGHUP stop the drill cleanly: the running step is
/// killed and journaled as interrupted, and the drill can be resumed. A
/// second signal exits at once (the journal is durable at every line).
fn listen_for_signals(stop: CancellationToken, reason: Arc<Mutex<Option<String>>>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut streams = Vec::new();
    for (kind, name) in
        [(SignalKind::interrupt(), "SIGINT"), (SignalKind::terminate(), "SIGTERM"), (SignalKind::hangup(), "SIGHUP")]
    {
        streams.push((signal(kind).map_err(|e| format!("cannot listen for {name}: {e}"))?, name));
    }
    for (mut stream, name) in streams {
        let stop = stop.clone();
        let reason = reason.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if stop.is_cancelled() {
                    std::process::exit(130);
                }
                if let Ok(mut reason) = reason.lock() {
                    *reason = Some(name.to_string());
                }
                stop.cancel();
            }
        });
    }
    Ok(())
}

enum Answer {
    Line(String),
    Eof,
    Stopped,
}

/// How the drive ended early.
enum Halt {
    Stopped(String),
    NoInput(String),
    Journal(SessionError),
}

impl From<SessionError> for Halt {
    fn from(error: SessionError) -> Self {
        Halt::Journal(error)
    }
}

struct Driver {
    session: DrillSession,
    input: Input,
    yes: bool,
    out: Printer,
    stop: CancellationToken,
    stop_reason: Arc<Mutex<Option<String>>>,
    aborting: bool,
    /// Upload the reports here when the drill ends.
    report_to: Option<super::ReportTo>,
}

impl Driver {
    /// From here on only the teardown steps run. What interrupted attempts left
    /// running is stopped first: the drill is abandoned, and a teardown must not
    /// race, say, a `pg_restore` still writing. (Steps that finished keep what
    /// they left running on purpose.)
    fn begin_abort(&mut self) -> Result<(), SessionError> {
        self.aborting = true;
        self.out.line("Aborting: only the teardown steps (`always = true`) still run, with their confirmations.");
        // Blocking (polls, and up to KILL_GRACE for a group that ignores SIGTERM):
        // the signal listener runs on another worker meanwhile.
        let notes = tokio::task::block_in_place(|| self.session.stop_leftovers(KILL_GRACE))?;
        for note in notes {
            self.out.line(&format!("  {note}"));
        }
        Ok(())
    }

    async fn run(&mut self, notice: Option<ResumeNotice>) -> Result<ExitCode, String> {
        self.header(notice.as_ref());
        match self.session.prepare_sandbox() {
            Ok(made) => {
                for line in made {
                    self.out.line(&format!("  training: {line}"));
                }
            }
            Err(error) => {
                let _ = self.session.record(Event::SessionEnded { reason: format!("sandbox: {error}") });
                return Err(format!("cannot prepare the training sandbox: {error}"));
            }
        }
        if self.aborting {
            self.begin_abort().map_err(|error| format!("cannot abort the drill: {error}"))?;
        }
        match self.steps(notice.is_some()).await {
            Ok(outcome) => {
                let code = self.finish(outcome);
                // A scheduled drill whose evidence did not arrive has failed its job.
                match self.upload_reports().await {
                    Ok(()) => Ok(code),
                    Err(error) => {
                        self.out.line(&format!("  could not upload the reports: {error}"));
                        Ok(ExitCode::from(1))
                    }
                }
            }
            Err(Halt::Stopped(reason)) => {
                let _ = self.session.record(Event::SessionEnded { reason: format!("stopped by {reason}") });
                self.out.line(&format!(
                    "\nstopped by {reason}: the drill is paused. Resume it with `drillbook resume {}`.",
                    self.session.dir.id
                ));
                Ok(ExitCode::from(130))
            }
            Err(Halt::NoInput(step)) => {
                let _ = self.session.record(Event::SessionEnded { reason: "no more input".into() });
                Err(format!(
                    "step `{step}` needs an answer but standard input is closed; the drill is paused (resume with `drillbook resume {}`, or run with --yes)",
                    self.session.dir.id
                ))
            }
            Err(Halt::Journal(error)) => Err(format!(
                "{error}. The drill is paused; fix this and run `drillbook resume {}`",
                self.session.dir.id
            )),
        }
    }

    fn header(&mut self, notice: Option<&ResumeNotice>) {
        let state = &self.session.state;
        let verb = if notice.is_some() { "Resuming" } else { "Starting" };
        let training = if state.training { " [training]" } else { "" };
        self.out.line(&format!("{verb} drill {}{training}", self.session.dir.id));
        self.out.line(&format!(
            "  runbook: {} ({}), {} steps",
            state.runbook_title,
            state.runbook_id,
            state.steps.len()
        ));
        if let Some(target) = state.rto_target {
            self.out.line(&format!("  RTO target: {}", format_duration(target)));
        }
        for (name, value) in &state.vars {
            self.out.line(&format!("  {name} = {value}"));
        }
        for name in &state.secret_vars {
            self.out.line(&format!("  {name} = *** (secret)"));
        }
        self.out.line(&format!("  journal: {}", self.session.dir.journal().display()));
        if let Some(notice) = notice {
            if let Some(torn) = &notice.torn {
                self.out.line(&format!(
                    "  note: the journal's last line was incomplete (a crash mid-write, line {}); it was set aside{}",
                    torn.line_number,
                    torn.saved_to.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
                ));
            }
            if let Some(change) = &notice.runbook_changed {
                let mut what = Vec::new();
                if !change.changed_steps.is_empty() {
                    what.push(format!("changed: {}", change.changed_steps.join(", ")));
                }
                if !change.added_steps.is_empty() {
                    what.push(format!("added: {}", change.added_steps.join(", ")));
                }
                if !change.removed_steps.is_empty() {
                    what.push(format!("removed: {}", change.removed_steps.join(", ")));
                }
                self.out.line(&format!(
                    "  note: {} changed since this drill started ({}); continuing with the runbook as it was when the drill started",
                    change.path,
                    if what.is_empty() { "whitespace or metadata".to_string() } else { what.join("; ") }
                ));
            }
            for (index, step) in self.session.state.steps.iter().enumerate() {
                self.out.line(&format!("  [{}] {:<12} {}", index + 1, step.status.label(), step.outline.id));
            }
        }
    }

    async fn steps(&mut self, resumed: bool) -> Result<DrillOutcome, Halt> {
        if resumed
            && !self.aborting
            && let Some(index) = plan::blocking_failure(&self.session.runbook, &self.session.state)
        {
            self.after_failure(index).await?;
        }
        loop {
            if self.stop.is_cancelled() {
                return Err(Halt::Stopped(self.stop_reason()));
            }
            match plan::next(&self.session.runbook, &self.session.state, self.aborting) {
                plan::Next::Finish(outcome) => return Ok(outcome),
                plan::Next::Decide(index) => self.decide_interrupted(index).await?,
                plan::Next::Run(index) => {
                    self.run_step(index).await?;
                    let failed = matches!(self.session.state.steps[index].status, StepStatus::Failed { .. });
                    if failed && plan::blocking_failure(&self.session.runbook, &self.session.state) == Some(index) {
                        self.after_failure(index).await?;
                    }
                }
            }
        }
    }

    fn stop_reason(&self) -> String {
        self.stop_reason.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| "a signal".into())
    }

    async fn ask(&mut self, question: &str) -> Answer {
        self.out.prompt(question);
        tokio::select! {
            line = self.input.line() => match line {
                Some(line) => {
                    if !self.input.is_terminal {
                        self.out.line(&line);
                    }
                    Answer::Line(line)
                }
                None => {
                    self.out.line("");
                    Answer::Eof
                }
            },
            () = self.stop.cancelled() => Answer::Stopped,
        }
    }

    /// Asks and splits the answer into its first word (lowercased) and the rest (a note).
    async fn ask_choice(&mut self, step: &str, question: &str) -> Result<(String, String), Halt> {
        match self.ask(question).await {
            Answer::Line(line) => {
                let line = line.trim();
                let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                Ok((word.to_lowercase(), rest.trim().to_string()))
            }
            Answer::Eof => Err(Halt::NoInput(step.to_string())),
            Answer::Stopped => Err(Halt::Stopped(self.stop_reason())),
        }
    }

    async fn decide_interrupted(&mut self, index: usize) -> Result<(), Halt> {
        let step = self.session.runbook.steps[index].clone();
        if matches!(step.action, Action::Manual | Action::Checklist(_)) {
            // Nothing ran: carry on where the operator was (ticks are kept).
            self.session
                .record(Event::StepReset { step: step.id.clone(), reason: "continue after interruption".into() })?;
            return Ok(());
        }
        self.out.line(&format!("\nStep `{}` ({}) was interrupted before it finished.", step.id, step.title));
        let running = crate::engine::leftover::still_running(&self.session.dir.logs(), &step.id);
        if !running.is_empty() {
            self.out.line("  Still running from the interrupted attempt (running the step again stops them first):");
            for process in &running {
                self.out.line(&format!("    {process}"));
            }
        }
        loop {
            let (choice, note) = if self.yes {
                self.out.line("  --yes: running it again");
                ("y".to_string(), String::new())
            } else {
                self.ask_choice(&step.id, "  Run it again? [Y]es / mark [d]one / [s]kip: ").await?
            };
            let event = match choice.as_str() {
                "" | "y" | "yes" | "r" => {
                    Event::StepReset { step: step.id.clone(), reason: "re-run after interruption".into() }
                }
                "d" | "done" => Event::StepMarkedDone {
                    step: step.id.clone(),
                    note: if note.is_empty() { "marked done after interruption".into() } else { note },
                },
                "s" | "skip" => Event::StepSkipped {
                    step: step.id.clone(),
                    cause: SkipCause::Operator,
                    reason: if note.is_empty() { "skipped after interruption".into() } else { note },
                },
                _ => continue,
            };
            self.session.record(event)?;
            return Ok(());
        }
    }

    /// A step failed and stops the drill: retry, skip, or stop (teardown runs).
    async fn after_failure(&mut self, index: usize) -> Result<(), Halt> {
        if self.yes {
            let resumed_retry = self.session.state.sessions.len() > 1
                && self.session.state.steps[index].attempts.last().is_some_and(|a| {
                    a.started_at < self.session.state.sessions.last().map_or(a.started_at, |s| s.started_at)
                });
            if resumed_retry {
                self.out.line("  --yes: retrying the failed step");
                self.session.record(Event::StepReset {
                    step: self.session.runbook.steps[index].id.clone(),
                    reason: "retry on resume (--yes)".into(),
                })?;
            }
            return Ok(());
        }
        let id = self.session.runbook.steps[index].id.clone();
        loop {
            let (choice, note) =
                self.ask_choice(&id, "  [r]etry / [s]kip / [a]bort the drill (teardown steps still run): ").await?;
            match choice.as_str() {
                "r" | "retry" | "y" | "yes" => {
                    self.session.record(Event::StepReset { step: id, reason: "retry after failure".into() })?;
                }
                "s" | "skip" => {
                    let reason = if note.is_empty() { "skipped after failure".to_string() } else { note };
                    self.session.record(Event::StepSkipped { step: id, cause: SkipCause::Operator, reason })?;
                }
                "a" | "abort" => self.begin_abort()?,
                _ => continue,
            }
            return Ok(());
        }
    }

    async fn run_step(&mut self, index: usize) -> Result<(), Halt> {
        let step = self.session.runbook.steps[index].clone();
        let total = self.session.runbook.steps.len();
        self.out.heading(&format!("[{}/{total}] {} ({})", index + 1, step.title, step.id));
        if let Some(when) = &step.when {
            let context = self.session.template_context();
            match self.session.templater().eval_condition(&when.text, &context) {
                Ok(true) => {}
                Ok(false) => {
                    self.out.line(&format!("  skipped: `when = \"{}\"` is false", when.text));
                    return Ok(self.session.record(Event::StepSkipped {
                        step: step.id.clone(),
                        cause: SkipCause::Condition,
                        reason: format!("when `{}` is false", when.text),
                    })?);
                }
                Err(error) => {
                    return self.fail_without_running(&step, format!("cannot evaluate `when`: {error}"));
                }
            }
        }
        if let Some(help) = &step.help {
            let context = self.session.template_context();
            let help = self.session.templater().render_plain(help, &context).unwrap_or_else(|_| help.clone());
            for line in help.trim().lines() {
                self.out.line(&format!("  {line}"));
            }
        }
        match &step.action {
            Action::Manual => self.manual(&step).await,
            Action::Checklist(list) => self.checklist(&step, list).await,
            Action::Command(_) => self.command(&step).await,
            Action::S3Backup(spec) => self.s3_backup(&step, spec).await,
            Action::S3Check(spec) => self.s3_check(&step, spec).await,
            Action::K8sImageTag(spec) => self.k8s_image_tag(&step, spec).await,
            Action::K8sWait(spec) => self.k8s_wait(&step, spec).await,
            Action::K8sScale(spec) => self.k8s_scale(&step, spec).await,
            Action::HttpCheck(spec) => self.http_check(&step, spec).await,
        }
    }

    fn fail_without_running(&mut self, step: &Step, reason: String) -> Result<(), Halt> {
        self.out.line(&format!("  ✗ failed: {reason}"));
        Ok(steps::record_failure_without_run(&mut self.session, step, reason)?)
    }

    fn next_attempt(&self, step: &Step) -> u32 {
        steps::next_attempt(&self.session, step)
    }

    fn url(&self, step: &Step) -> Option<String> {
        let url = step.url.as_ref()?;
        self.session.templater().render_plain(&url.text, &self.session.template_context()).ok()
    }

    async fn manual(&mut self, step: &Step) -> Result<(), Halt> {
        if let Some(url) = self.url(step) {
            self.out.line(&format!("  open: {url}"));
        }
        if self.yes {
            self.out.line("  skipped: --yes cannot do a manual step; recorded as skipped");
            return Ok(self.session.record(Event::StepSkipped {
                step: step.id.clone(),
                cause: SkipCause::NonInteractive,
                reason: "non-interactive run (--yes): a manual step needs a person".into(),
            })?);
        }
        let attempt = self.next_attempt(step);
        let started = Instant::now();
        self.session.record(Event::StepStarted { step: step.id.clone(), attempt, command: None, log: None })?;
        loop {
            let (choice, note) = self
                .ask_choice(&step.id, "  Done? [y]es / [s]kip / [a]bort (words after the answer are kept as a note): ")
                .await?;
            if !note.is_empty() && matches!(choice.as_str(), "y" | "yes" | "s" | "skip" | "a" | "abort") {
                self.session.record(Event::NoteAdded { step: Some(step.id.clone()), text: note.clone() })?;
            }
            match choice.as_str() {
                "y" | "yes" => {
                    self.session.record(Event::finished_by_hand(
                        &step.id,
                        attempt,
                        AttemptResult::Succeeded,
                        None,
                        started.elapsed().as_millis() as u64,
                    ))?;
                    self.out.line("  ✓ done");
                }
                "s" | "skip" => {
                    self.session.record(Event::StepSkipped {
                        step: step.id.clone(),
                        cause: SkipCause::Operator,
                        reason: if note.is_empty() { "skipped by the operator".into() } else { note },
                    })?;
                }
                "a" | "abort" => {
                    self.session.record(Event::StepInterrupted {
                        step: step.id.clone(),
                        attempt,
                        reason: "drill aborted".into(),
                    })?;
                    self.session.record(Event::StepSkipped {
                        step: step.id.clone(),
                        cause: SkipCause::Operator,
                        reason: "drill aborted".into(),
                    })?;
                    self.begin_abort()?;
                }
                _ => continue,
            }
            return Ok(());
        }
    }

    async fn checklist(&mut self, step: &Step, list: &ChecklistSpec) -> Result<(), Halt> {
        if let Some(url) = self.url(step) {
            self.out.line(&format!("  open: {url}"));
        }
        if self.yes {
            self.out.line("  skipped: --yes cannot tick a checklist; recorded as skipped");
            return Ok(self.session.record(Event::StepSkipped {
                step: step.id.clone(),
                cause: SkipCause::NonInteractive,
                reason: "non-interactive run (--yes): a checklist needs a person".into(),
            })?);
        }
        let attempt = self.next_attempt(step);
        let started = Instant::now();
        self.session.record(Event::StepStarted { step: step.id.clone(), attempt, command: None, log: None })?;
        let mut not_done = Vec::new();
        for (index, item) in list.items.iter().enumerate() {
            let ticked = self.session.state.step(&step.id).is_some_and(|s| s.ticked(index));
            if ticked {
                self.out.line(&format!("  [x] {}", item.text));
                continue;
            }
            let optional = if item.required { "" } else { " (optional)" };
            let question = format!("  [ ] {}{optional}: done? [y]es / [n]o / [s]kip step: ", item.text);
            loop {
                let (choice, note) = self.ask_choice(&step.id, &question).await?;
                match choice.as_str() {
                    "y" | "yes" => {
                        self.session.record(Event::ChecklistTicked {
                            step: step.id.clone(),
                            item: index,
                            text: item.text.clone(),
                            ticked: true,
                        })?;
                    }
                    "n" | "no" if item.required => not_done.push(item.text.clone()),
                    "n" | "no" => {}
                    "s" | "skip" => {
                        return Ok(self.session.record(Event::StepSkipped {
                            step: step.id.clone(),
                            cause: SkipCause::Operator,
                            reason: if note.is_empty() { "checklist skipped by the operator".into() } else { note },
                        })?);
                    }
                    _ => continue,
                }
                if !note.is_empty() {
                    self.session.record(Event::NoteAdded {
                        step: Some(step.id.clone()),
                        text: format!("{}: {note}", item.text),
                    })?;
                }
                break;
            }
        }
        let (result, reason) = if not_done.is_empty() {
            self.out.line("  ✓ all required items done");
            (AttemptResult::Succeeded, None)
        } else {
            let reason = format!("not done: {}", not_done.join("; "));
            self.out.line(&format!("  ✗ {reason}"));
            (AttemptResult::Failed, Some(reason))
        };
        self.session.record(Event::finished_by_hand(
            &step.id,
            attempt,
            result,
            reason,
            started.elapsed().as_millis() as u64,
        ))?;
        Ok(())
    }

    /// Asks for confirmation where the step wants it. `false`: not confirmed.
    async fn confirm(&mut self, step: &Step, display: &str) -> Result<bool, Halt> {
        let expected = step.id.clone();
        self.confirm_as(step, display, step.confirm, &expected).await
    }

    /// `Typed`: the operator types `expected` (a step id, a namespace).
    async fn confirm_as(&mut self, step: &Step, display: &str, confirm: Confirm, expected: &str) -> Result<bool, Halt> {
        if confirm == Confirm::No {
            return Ok(true);
        }
        self.out.line(&format!("  will run:\n    {}", display.replace('\n', "\n    ")));
        if self.yes {
            self.session.record(Event::StepConfirmed { step: step.id.clone(), how: "--yes".into() })?;
            return Ok(true);
        }
        loop {
            if confirm == Confirm::Typed {
                let question = format!("  Type `{expected}` to run it (empty to skip): ");
                let (answer, _) = self.ask_choice(&step.id, &question).await?;
                if answer == expected {
                    self.session
                        .record(Event::StepConfirmed { step: step.id.clone(), how: format!("typed `{expected}`") })?;
                    return Ok(true);
                }
                if answer.is_empty() {
                    return Ok(false);
                }
                self.out.line(&format!("  `{answer}` does not match `{expected}`"));
            } else {
                let (answer, _) = self.ask_choice(&step.id, "  Run it? [y/N]: ").await?;
                match answer.as_str() {
                    "y" | "yes" => {
                        self.session
                            .record(Event::StepConfirmed { step: step.id.clone(), how: "answered yes".into() })?;
                        return Ok(true);
                    }
                    "" | "n" | "no" => return Ok(false),
                    _ => {}
                }
            }
        }
    }

    async fn command(&mut self, step: &Step) -> Result<(), Halt> {
        let (attempt, prepared) = match steps::prepare_command(&self.session, step) {
            Ok(prepared) => prepared,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        if !self.confirm(step, &prepared.display).await? {
            self.out.line("  not confirmed: skipped");
            return Ok(self.session.record(Event::StepSkipped {
                step: step.id.clone(),
                cause: SkipCause::Operator,
                reason: "not confirmed".into(),
            })?);
        }
        if step.confirm == Confirm::No {
            self.out.line(&format!("  $ {}", prepared.display.replace('\n', "\n    ")));
        }
        steps::record_command_start(&mut self.session, step, attempt, &prepared)?;

        let (sender, mut events) = mpsc::channel(64);
        let cancel = self.stop.child_token();
        let task = tokio::spawn(run_command(prepared.request, sender, cancel));
        while let Some(event) = events.recv().await {
            if let EngineEvent::Output { stream, lines, .. } = event {
                self.out.output(stream, &lines);
            }
        }
        let outcome = match task.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                self.out.line(&format!("  ✗ failed: {error}"));
                return Ok(steps::record_attempt_failed(&mut self.session, step, attempt, error.to_string())?);
            }
            Err(join) => return Err(Halt::Stopped(format!("internal error in the step runner: {join}"))),
        };
        let stopped_by = self.stop.is_cancelled().then(|| format!("stopped by {}", self.stop_reason()));
        match steps::record_command_end(&mut self.session, step, attempt, &outcome, stopped_by.as_deref())? {
            CommandEnd::Interrupted => return Err(Halt::Stopped(self.stop_reason())),
            CommandEnd::Succeeded => {
                if let (Some(value), Action::Command(spec)) = (&outcome.captured, &step.action)
                    && let Some(rule) = &spec.capture
                {
                    self.out.line(&format!("  captured {} = {value}", rule.name));
                }
                self.out.line(&format!("  ✓ done in {}", format_duration(outcome.duration)));
            }
            CommandEnd::Failed(reason) => {
                self.out.line(&format!("  ✗ failed after {}: {reason}", format_duration(outcome.duration)));
            }
        }
        Ok(())
    }

    /// Journals an attempt cut short by a stop signal (resumable) and halts.
    fn stopped_attempt(&mut self, step: &Step, attempt: u32) -> Result<(), Halt> {
        let reason = self.stop_reason();
        self.session.record(Event::StepInterrupted {
            step: step.id.clone(),
            attempt,
            reason: format!("stopped by {reason}"),
        })?;
        Err(Halt::Stopped(reason))
    }

    /// Starts a non-command attempt with its log file.
    fn start_logged(&mut self, step: &Step, command: String) -> Result<(u32, StepLog), Halt> {
        let attempt = self.next_attempt(step);
        let log = StepLog::create(&self.session, step, attempt);
        self.session.record(Event::StepStarted {
            step: step.id.clone(),
            attempt,
            command: Some(command),
            log: Some(log.relative.clone()),
        })?;
        Ok((attempt, log))
    }

    fn end_logged(&mut self, step: &Step, attempt: u32, started: Instant, error: Option<String>) -> Result<(), Halt> {
        let duration_ms = started.elapsed().as_millis() as u64;
        match error {
            None => {
                self.out.line(&format!("  ✓ done in {}", format_duration(started.elapsed())));
                self.session.record(Event::finished_by_hand(
                    &step.id,
                    attempt,
                    AttemptResult::Succeeded,
                    None,
                    duration_ms,
                ))?;
            }
            Some(reason) => {
                self.out.line(&format!("  ✗ failed: {reason}"));
                self.session.record(Event::finished_by_hand(
                    &step.id,
                    attempt,
                    AttemptResult::Failed,
                    Some(reason),
                    duration_ms,
                ))?;
            }
        }
        Ok(())
    }

    async fn s3_backup(&mut self, step: &Step, spec: &crate::runbook::S3BackupSpec) -> Result<(), Halt> {
        use crate::engine::s3::{Store, backup};
        let context = self.session.template_context();
        let rendered = match backup::BackupStep::render(spec, &context, self.session.templater()) {
            Ok(mut rendered) => {
                // Training reads the sandbox bucket, whatever the endpoint.
                rendered.store.endpoint = self.session.s3_endpoint_override().or(rendered.store.endpoint);
                rendered
            }
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let store = match Store::connect(&rendered.store).await {
            Ok(store) => store,
            Err(error) => return self.fail_without_running(step, error.to_string()),
        };
        self.out.line(&format!("  listing {} on {}", rendered.location(), store.endpoint()));
        let objects = match backup::candidates(&store, &rendered).await {
            Ok(objects) => objects,
            Err(error) => return self.fail_without_running(step, error.to_string()),
        };
        let now = jiff::Timestamp::now();
        let previous = self
            .session
            .state
            .step(&step.id)
            .and_then(|s| s.resumable_choice(None).cloned())
            .and_then(|choice| backup::find_choice(&objects, &choice).cloned());
        for (index, object) in objects.iter().take(10).enumerate() {
            let [key, size, modified, age, version] = backup::describe(object, now);
            self.out.line(&format!("  {:>2}. {key}  {size}  {modified}  ({age} old)  {version}", index + 1));
        }
        if objects.len() > 10 {
            self.out.line(&format!("      … and {} more", objects.len() - 10));
        }
        let chosen = match previous {
            Some(previous) => {
                self.out.line(&format!("  continuing with the backup chosen before: {}", previous.key));
                previous
            }
            None if rendered.choose && !self.yes => loop {
                let (answer, _) = self.ask_choice(&step.id, "  Which backup? number [1]: ").await?;
                let index = if answer.is_empty() { Some(1) } else { answer.parse::<usize>().ok() };
                match index.and_then(|i| objects.get(i.wrapping_sub(1))) {
                    Some(object) => break object.clone(),
                    None => self.out.line(&format!("  choose 1 to {}", objects.len())),
                }
            },
            None => objects[0].clone(),
        };
        self.session.record(Event::Chosen { step: step.id.clone(), choice: backup::choice_json(&chosen) })?;
        let version = chosen.version_id.as_deref().map(|v| format!("?versionId={v}")).unwrap_or_default();
        let started = Instant::now();
        let (attempt, mut log) =
            self.start_logged(step, format!("s3-backup s3://{}/{}{version}", rendered.bucket, chosen.key))?;
        let (sender, mut events) = mpsc::channel(64);
        let cancel = self.stop.child_token();
        let downloads = self.session.dir.downloads();
        let (task_store, task_step, task_object, task_id, task_cancel) =
            (store.clone(), rendered.clone(), chosen.clone(), step.id.clone(), cancel.clone());
        let task = tokio::spawn(async move {
            backup::fetch(&task_store, &task_step, &task_object, &downloads, &task_id, &sender, &task_cancel).await
        });
        let mut last_progress = Instant::now() - std::time::Duration::from_secs(10);
        while let Some(event) = events.recv().await {
            match event {
                EngineEvent::Output { stream, lines, .. } => {
                    for line in &lines {
                        log.line(line);
                    }
                    self.out.output(stream, &lines);
                }
                EngineEvent::Progress { message, .. } => {
                    // Line-oriented progress: at most one line every 2 s.
                    if last_progress.elapsed() >= std::time::Duration::from_secs(2) || !message.contains('%') {
                        log.line(&message);
                        self.out.output(OutputStream::Stdout, std::slice::from_ref(&message));
                        last_progress = Instant::now();
                    }
                }
                EngineEvent::Pods { .. } => {}
            }
        }
        let result = task.await.map_err(|e| Halt::Stopped(format!("internal error in the step runner: {e}")))?;
        match result {
            Ok((_, capture)) => {
                if let Some(name) = &step.capture {
                    self.session.record(Event::CaptureSet {
                        step: step.id.clone(),
                        name: name.clone(),
                        value: capture.clone(),
                    })?;
                    self.out.line(&format!("  captured {name} = {}", capture.value));
                }
                self.end_logged(step, attempt, started, None)
            }
            Err(crate::engine::s3::download::DownloadError::Cancelled { done, total }) if self.stop.is_cancelled() => {
                log.line(&format!("interrupted at {done} of {total} bytes; `drillbook resume` continues from there"));
                self.stopped_attempt(step, attempt)
            }
            Err(error) => {
                log.line(&error.to_string());
                self.end_logged(step, attempt, started, Some(error.to_string()))
            }
        }
    }

    async fn s3_check(&mut self, step: &Step, spec: &crate::runbook::S3CheckSpec) -> Result<(), Halt> {
        use crate::engine::s3::{Store, check};
        let context = self.session.template_context();
        let rendered = match check::CheckStep::render(spec, &context, self.session.templater()) {
            Ok(mut rendered) => {
                rendered.store.endpoint = self.session.s3_endpoint_override().or(rendered.store.endpoint);
                rendered
            }
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let store = match Store::connect(&rendered.store).await {
            Ok(store) => store,
            Err(error) => return self.fail_without_running(step, error.to_string()),
        };
        let started = Instant::now();
        let (attempt, mut log) =
            self.start_logged(step, format!("s3-check s3://{} on {}", rendered.bucket, store.endpoint()))?;
        let result = check::run(&store, &rendered).await;
        let error = match result {
            Ok(rows) => {
                let lines = check::table(&rows);
                for line in &lines {
                    log.line(line);
                }
                self.out.output(OutputStream::Stdout, &lines);
                check::failures(&rows)
            }
            Err(error) => Some(error.to_string()),
        };
        self.end_logged(step, attempt, started, error)
    }

    /// `--report-to`: the report files of this drill, to s3://BUCKET/PREFIX/DRILL_ID/.
    async fn upload_reports(&self) -> Result<(), String> {
        let Some(target) = &self.report_to else { return Ok(()) };
        let store = crate::engine::s3::Store::connect(&crate::engine::s3::StoreConfig::default())
            .await
            .map_err(|e| e.to_string())?;
        for (name, content_type) in [
            ("report.md", "text/markdown; charset=utf-8"),
            ("report.html", "text/html; charset=utf-8"),
            ("report.json", "application/json"),
            ("report.junit.xml", "application/xml"),
        ] {
            let path = self.session.dir.path.join(name);
            let body = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let key = format!("{}{}/{name}", target.prefix, self.session.dir.id);
            store.put(&target.bucket, &key, body, content_type).await.map_err(|e| e.to_string())?;
            self.out.line(&format!("  uploaded s3://{}/{key}", target.bucket));
        }
        Ok(())
    }

    fn finish(&mut self, outcome: DrillOutcome) -> ExitCode {
        let reason = match outcome {
            DrillOutcome::Completed => None,
            DrillOutcome::Aborted => Some("aborted by the operator".to_string()),
            DrillOutcome::Failed => self.session.state.steps.iter().find_map(|s| match &s.status {
                StepStatus::Failed { reason } => Some(format!("step `{}` failed: {reason}", s.outline.id)),
                _ => None,
            }),
        };
        if let Err(error) = self.session.record(Event::DrillFinished { outcome, reason: reason.clone() }) {
            eprintln!("drillbook: error: {error}");
            return ExitCode::from(2);
        }
        let built = report::build(&self.session.state, None);
        self.out.heading(&format!(
            "Drill {}: {}",
            format!("{outcome:?}").to_lowercase(),
            self.session.state.runbook_title
        ));
        for step in &built.steps {
            let detail = step.detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
            self.out.line(&format!("  {:<12} {}{detail}", step.status, step.id));
        }
        self.out.line(&format!("  RTO {}: {}", built.rto.verdict, built.rto.detail));
        self.out.line(&format!("  RPO {}: {}", built.rpo.verdict, built.rpo.detail));
        match self.session.write_reports() {
            Ok(paths) => {
                let names: Vec<String> =
                    paths.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
                self.out.line(&format!("  reports: {} in {}", names.join(", "), self.session.dir.path.display()));
            }
            Err(error) => self.out.line(&format!("  could not write the reports: {error}")),
        }
        self.out.line(&format!("  report: drillbook report {}", self.session.dir.id));
        let objectives_missed = built.rto.verdict == "FAIL" || built.rpo.verdict == "FAIL";
        if outcome == DrillOutcome::Completed && !objectives_missed { ExitCode::SUCCESS } else { ExitCode::from(1) }
    }
}

/// Writes to stdout, never panicking when it is gone (SIGHUP, closed pipe).
struct Printer {
    color: bool,
}

impl Printer {
    fn new() -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Printer { color }
    }

    fn write(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    fn line(&self, text: &str) {
        self.write(&format!("{text}\n"));
    }

    fn prompt(&self, text: &str) {
        self.write(text);
    }

    fn heading(&self, text: &str) {
        if self.color {
            self.write(&format!("\n\x1b[1m{text}\x1b[0m\n"));
        } else {
            self.write(&format!("\n{text}\n"));
        }
    }

    fn output(&self, stream: OutputStream, lines: &[String]) {
        let gutter = match (stream, self.color) {
            (OutputStream::Stdout, false) => "  | ",
            (OutputStream::Stderr, false) => "  ! ",
            (OutputStream::Stdout, true) => "  \x1b[2m│\x1b[0m ",
            (OutputStream::Stderr, true) => "  \x1b[31m│\x1b[0m ",
        };
        let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 8).sum());
        for line in lines {
            text.push_str(gutter);
            text.push_str(line);
            if self.color {
                text.push_str("\x1b[0m");
            }
            text.push('\n');
        }
        self.write(&text);
    }
}
