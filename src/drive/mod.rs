//! The one conductor of a drill. It alone decides what runs next and
//! journals the drill's flow: it owns the session (journal, lock, runbook
//! snapshot), runs each step through one runner per kind, asks the
//! front-end what only the operator can decide (or lets the unattended
//! policy decide), handles interrupted and failed steps, the teardown and
//! what an abort leaves running, and writes the reports when the drill ends.
//!
//! A front-end (plain lines or the TUI) only renders [`Update`]s and answers
//! [`Question`]s through a [`Link`]; both give the same journal for the same
//! answers.
//!
//! ```text
//!   front-end ──Input (answers, requests)──▶ Conductor ──▶ engine (commands, S3, k8s, HTTP)
//!   front-end ◀──Update (records, output, questions)──┘       │
//!                                                              └──▶ DrillSession ──▶ journal
//! ```

pub mod archive;
pub mod attempt;
pub mod lease;
pub mod plan;
pub mod policy;
pub mod protocol;
pub mod session;
pub mod target;

mod finish;
mod inbox;
mod notify;
pub mod signals;
mod steps;

use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use protocol::{Answer, Ending, Input, PickRow, PickWhat, Question, Request, Summary, Update};
pub use steps::PodTableLines;

use self::attempt::StepLog;
use self::session::{DrillSession, ResumeNotice, SessionError};
use crate::drill::event::Event;
use crate::engine::{KILL_GRACE, OutputStream};
use crate::runbook::Step;

/// How often the lock file says this process is alive: the time no drillbook
/// process ran (after a crash) is known to within this.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// Updates queued for the front-end at most. An output batch can be 64 KiB
/// (see `engine::command::pump`), so this and the step's own event channel
/// (64) bound what a command flooding a slow front-end holds queued to about
/// 6 MiB; past that, the front-end slows the command down through its pipe.
/// (With 1,024 here a debug build in CI once peaked at 64 MiB; measured now:
/// 150 MB streamed adds 14 MiB to a quiet drill's peak, see tests/signals.rs.)
const UPDATES_QUEUED: usize = 16;

/// How long a drill's end waits for the archive to take what is left.
const ARCHIVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// How the conductor runs a drill.
pub struct Options {
    /// `--yes`: nobody answers; the policy in [`policy`] decides.
    pub unattended: bool,
    /// `drillbook abort`: only the teardown runs.
    pub abort: bool,
    /// Upload the reports here when the drill ends.
    pub report_to: Option<ReportTo>,
    /// What a second stop signal does (the first stops the drill cleanly):
    /// the front-end restores what it must and exits at once.
    pub on_second_signal: fn(),
    /// A first SIGINT (Ctrl-C in plain mode) stops the running step, not the
    /// drill: the step fails and the operator decides; the next one stops the drill.
    pub interrupt_stops_the_step: bool,
    /// The shared archive the drill is shipped to, as it runs (the configuration's `archive`).
    pub archive: Option<crate::config::Archive>,
}

/// Where `--report-to` uploads the reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTo {
    pub bucket: String,
    /// Empty or ending in `/`.
    pub prefix: String,
}

impl std::str::FromStr for ReportTo {
    type Err = String;

    /// `s3://BUCKET/PREFIX/`.
    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix("s3://").ok_or("expected s3://BUCKET/PREFIX/")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(char::is_whitespace) {
            return Err("expected s3://BUCKET/PREFIX/ with a bucket name".into());
        }
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        Ok(ReportTo { bucket: bucket.to_string(), prefix })
    }
}

/// A front-end's end of the conversation.
pub struct Link {
    pub updates: mpsc::Receiver<Update>,
    pub inputs: mpsc::UnboundedSender<Input>,
}

/// Starts conducting a drill (a new one, or a resumed one with its notice)
/// on the current tokio runtime.
pub fn start(
    session: DrillSession,
    notice: Option<ResumeNotice>,
    options: Options,
) -> Result<Link, signals::SignalError> {
    let (updates_tx, updates) = mpsc::channel(UPDATES_QUEUED);
    let (inputs, inputs_rx) = mpsc::unbounded_channel();
    let (internal_tx, internal) = mpsc::unbounded_channel();
    if let Ok(mut heartbeat) = session.heartbeat() {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT);
            loop {
                every.tick().await;
                if heartbeat.beat().is_err() {
                    return;
                }
            }
        });
    }
    let hard_exit_after = if options.interrupt_stops_the_step { 3 } else { 2 };
    signals::listen(internal_tx.clone(), options.on_second_signal, hard_exit_after)?;
    let mut session = session;
    let lease = session.take_lease();
    let lease_lost = internal_tx.clone();
    let shipper = options.archive.clone().map(|archive| {
        let lost: archive::OnLeaseLost = Box::new(move |why| {
            let _ = lease_lost.send(Internal::LeaseLost(why));
        });
        archive::Shipper::start(archive, session.dir.clone(), session.holder(), lease, lost)
    });
    let notifications = notify::Notifications::start(&session.state, internal_tx.clone());
    inbox::watch(session.dir.path.clone(), internal_tx.clone());
    let conductor = Conductor {
        shipper,
        attaching: Default::default(),
        session,
        notifications,
        aborting: options.abort,
        options,
        updates: updates_tx,
        inputs: inputs_rx,
        internal,
        internal_tx,
        questions: 0,
        leaving: None,
        running: None,
        stopping_step: false,
    };
    tokio::spawn(conductor.run(notice));
    Ok(Link { updates, inputs })
}

/// How the drive stopped before the drill ended.
#[derive(Debug)]
enum Halt {
    /// The operator quit or a signal stopped drillbook: paused, resumable.
    Left(Leave),
    /// A question had no answer: standard input is closed.
    NoInput { step: String },
    /// The journal could not be written: nothing may go on unrecorded.
    Journal(SessionError),
}

impl From<SessionError> for Halt {
    fn from(error: SessionError) -> Self {
        Halt::Journal(error)
    }
}

/// Why the drive is being left, and the exit code that says so.
#[derive(Debug, Clone)]
struct Leave {
    reason: String,
    code: u8,
    /// The drill is paused and may be resumed here; not when another
    /// operator took it over.
    resumable: bool,
}

impl Leave {
    fn paused(reason: impl Into<String>, code: u8) -> Self {
        Leave { reason: reason.into(), code, resumable: true }
    }
}

/// What the conductor hears besides the front-end.
enum Internal {
    /// SIGINT, SIGTERM or SIGHUP.
    Signal(&'static str),
    /// A pod's log lines, asked for with [`Request::PodLogs`].
    PodLog { step: usize, lines: Vec<String> },
    /// A notification could not be delivered (see [`notify`]).
    NotificationFailed(crate::engine::notify::DeliveryFailure),
    /// A file attached to a step, to journal: from the inbox (`request`,
    /// removed once journaled) or copied for the TUI (see [`inbox`]).
    Attach { request: Option<std::path::PathBuf>, event: Box<Result<Event, String>> },
    /// Another operator took the drill's archive lease over (this drillbook
    /// could not renew it in time): the drill goes on there, not here.
    LeaseLost(String),
}

enum Incoming {
    Input(Input),
    Internal(Internal),
    /// The front-end is gone.
    Closed,
}

struct Conductor {
    session: DrillSession,
    /// Ships the drill to the shared archive in the background (when configured).
    shipper: Option<archive::Shipper>,
    /// Files attached in the TUI still being copied into the inbox.
    attaching: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    options: Options,
    updates: mpsc::Sender<Update>,
    inputs: mpsc::UnboundedReceiver<Input>,
    internal: mpsc::UnboundedReceiver<Internal>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    aborting: bool,
    /// Ids of questions asked, so a late answer to an earlier one is ignored.
    questions: u64,
    /// Set when the operator quits or a signal arrives while an attempt
    /// runs: the attempt is cancelled and journaled as interrupted.
    leaving: Option<Leave>,
    /// Cancels the running attempt.
    running: Option<CancellationToken>,
    /// The operator stopped the running attempt (not the drill).
    stopping_step: bool,
    notifications: notify::Notifications,
}

/// Who answered a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Operator,
    /// The unattended policy (`--yes`).
    Policy,
}

impl Conductor {
    async fn run(mut self, notice: Option<ResumeNotice>) {
        let resumed = notice.is_some();
        let mut notices = notice.as_ref().map(finish::resume_notices).unwrap_or_default();
        let sandbox = self.session.prepare_sandbox();
        if let Ok(made) = &sandbox {
            notices.extend(made.iter().map(|line| format!("training: {line}")));
        }
        notices.extend(self.notifications.take_warnings());
        // Before a new drill starts: what changed since the project's last one.
        if !resumed
            && let Some(since) = crate::report::history::since_last(&self.session.report(), &self.session.dir.path)
        {
            notices.extend(crate::report::history::preview(&since));
        }
        self.session.take_new_records();
        let opened = Update::Opened {
            id: self.session.dir.id.clone(),
            dir: self.session.dir.path.clone(),
            state: Box::new(self.session.state.clone()),
            notices,
            resumed,
        };
        self.send(opened).await;
        if self.shipper.is_some() {
            self.write_summary(&self.session.report());
        }
        if let Err(error) = sandbox {
            let _ = self.session.record(Event::SessionEnded { reason: format!("sandbox: {error}") });
            let error = format!("cannot prepare the training sandbox: {error}");
            return self.end(Ending { code: 2, message: None, paused: None, error: Some(error) }).await;
        }
        if !resumed {
            self.notify_started();
        }
        let driven = self.drive(resumed).await;
        // Attachments made up to now belong to this drill's record, before its end.
        self.drain_inbox().await;
        let ending = match driven {
            Ok(outcome) => {
                let code = self.finish(outcome).await;
                self.after_the_end().await;
                Ending { code, message: Some(self.farewell()), paused: None, error: None }
            }
            Err(halt) => self.halted(halt).await,
        };
        // Notifications first: one that fails is journaled, and that line ships too.
        self.settle_notifications().await;
        if let Some(shipper) = self.shipper.take() {
            let archive = self.options.archive.as_ref().map(|a| a.url()).unwrap_or_default();
            self.notice(format!("archive: shipping to {archive}…")).await;
            match shipper.finish(ARCHIVE_PATIENCE).await {
                Err(unshipped) if unshipped.lease_lost => {
                    self.notice(format!("archive: nothing more shipped from here ({})", unshipped.message)).await;
                }
                Ok(()) => self.notice(format!("archive: the drill is in {archive}")).await,
                Err(unshipped) => {
                    let (id, error) = (&self.session.dir.id, unshipped.message);
                    let text =
                        format!("archive: not all shipped ({error}); `drillbook archive push {id}` ships the rest");
                    self.notice(text).await;
                }
            }
        }
        self.end(ending).await;
    }

    /// Runs steps until nothing is left to run.
    async fn drive(&mut self, resumed: bool) -> Result<crate::drill::event::DrillOutcome, Halt> {
        if self.aborting {
            self.begin_abort().await?;
        }
        if resumed
            && !self.aborting
            && let Some(index) = plan::blocking_failure(&self.session.runbook, &self.session.state)
        {
            self.after_failure(index).await?;
        }
        loop {
            // What arrived while the last step ran to its end (a signal, a lost
            // lease) is heard before the next one starts, not at its first wait.
            while let Ok(internal) = self.internal.try_recv() {
                self.internal(internal, None).await?;
            }
            match plan::next(&self.session.runbook, &self.session.state, self.aborting) {
                plan::Next::Finish(outcome) => return Ok(outcome),
                plan::Next::Decide(index) => self.decide_interrupted(index).await?,
                plan::Next::Run(index) => {
                    self.run_step(index).await?;
                    if plan::blocking_failure(&self.session.runbook, &self.session.state) == Some(index) {
                        self.after_failure(index).await?;
                    }
                }
            }
        }
    }

    /// Journals how the drive stopped early and says what to do next.
    async fn halted(&mut self, halt: Halt) -> Ending {
        let id = self.session.dir.id.clone();
        match halt {
            Halt::Left(leave) => {
                if self.session.state.finished.is_none() {
                    let _ = self.record(Event::SessionEnded { reason: leave.reason.clone() }).await;
                }
                if !leave.resumable {
                    // Resuming here would be refused (the lease is held elsewhere), and
                    // what this machine journaled since the takeover is not the drill's.
                    let error = format!(
                        "{}. Drill {id} goes on with its new holder; this machine's copy of its journal is \
                         no longer the drill's (`drillbook verify --archive {id}` compares them)",
                        leave.reason
                    );
                    return Ending { code: leave.code, message: None, paused: None, error: Some(error) };
                }
                Ending { code: leave.code, message: Some(self.farewell()), paused: Some(leave.reason), error: None }
            }
            Halt::NoInput { step } => {
                let _ = self.record(Event::SessionEnded { reason: "no more input".into() }).await;
                let error = format!(
                    "step `{step}` needs an answer but standard input is closed; the drill is paused (resume with `drillbook resume {id}`, or run with --yes)"
                );
                Ending { code: 2, message: None, paused: None, error: Some(error) }
            }
            Halt::Journal(error) => {
                let error = format!("{error}. The drill is paused; fix this and run `drillbook resume {id}`");
                Ending { code: 2, message: None, paused: None, error: Some(error) }
            }
        }
    }

    /// One line on where things stand, for when the interface is gone.
    fn farewell(&self) -> String {
        let id = &self.session.dir.id;
        match self.session.state.finished {
            Some(_) => {
                let outcome = crate::drill::verdict::verdict(&self.session.state).outcome;
                format!("Drill {id} {}. Report: drillbook report {id}", outcome.label())
            }
            None => format!("Drill {id} paused. Continue with: drillbook resume {id}"),
        }
    }

    async fn end(&mut self, ending: Ending) {
        self.send(Update::Ended(ending)).await;
    }

    async fn send(&self, update: Update) {
        // A front-end that is gone hears nothing; the journal still has it all.
        let _ = self.updates.send(update).await;
    }

    async fn notice(&self, text: impl Into<String>) {
        self.send(Update::Notice(text.into())).await;
    }

    /// Journals an event (durably, before anything else happens) and tells
    /// the front-end.
    async fn record(&mut self, event: Event) -> Result<(), Halt> {
        let ends_something =
            matches!(event, Event::StepFinished { .. } | Event::DrillFinished { .. } | Event::FileAttached { .. });
        self.session.record(event)?;
        if let Some(shipper) = &self.shipper {
            if ends_something { shipper.poke_files() } else { shipper.poke() }
        }
        let records = self.session.take_new_records();
        self.notify_journaled(&records);
        self.send(Update::Recorded(records)).await;
        Ok(())
    }

    fn step(&self, index: usize) -> Step {
        self.session.runbook.steps[index].clone()
    }

    async fn next_incoming(&mut self) -> Incoming {
        tokio::select! {
            input = self.inputs.recv() => input.map_or(Incoming::Closed, Incoming::Input),
            Some(internal) = self.internal.recv() => Incoming::Internal(internal),
        }
    }

    /// Asks the operator, or lets the unattended policy answer.
    async fn decide(&mut self, question: Question) -> Result<(Answer, By), Halt> {
        if self.options.unattended {
            let answer = policy::answer(&question, &self.session);
            return Ok((answer, By::Policy));
        }
        self.ask(question).await.map(|answer| (answer, By::Operator))
    }

    /// Sends a question and waits for its answer, hearing requests meanwhile.
    async fn ask(&mut self, question: Question) -> Result<Answer, Halt> {
        let step = self.session.runbook.steps[question.step()].id.clone();
        let id = self.open_question(question).await;
        self.answer_to(id, &step).await
    }

    /// Sends a question; its answers come with the id returned.
    async fn open_question(&mut self, question: Question) -> u64 {
        self.questions += 1;
        let id = self.questions;
        self.notify_question(id, &question);
        self.send(Update::Ask { id, question }).await;
        id
    }

    /// The next answer to question `id` (a checklist hears several); the
    /// team hears of a question left waiting too long.
    async fn answer_to(&mut self, id: u64, step: &str) -> Result<Answer, Halt> {
        self.notify_waiting(id);
        let answer = self.next_answer_to(id, step).await;
        self.notify_answered(id);
        answer
    }

    async fn next_answer_to(&mut self, id: u64, step: &str) -> Result<Answer, Halt> {
        loop {
            match self.next_incoming().await {
                Incoming::Input(Input::Answer { id: answered, answer }) if answered == id => {
                    if answer == Answer::Unanswerable {
                        return Err(Halt::NoInput { step: step.to_string() });
                    }
                    return Ok(answer);
                }
                // An answer to a question no longer open.
                Incoming::Input(Input::Answer { .. }) => {}
                Incoming::Input(Input::Request(request)) => self.request(request, None).await?,
                Incoming::Internal(internal) => self.internal(internal, None).await?,
                Incoming::Closed => {
                    return Err(Halt::Left(Leave::paused("the interface closed", 0)));
                }
            }
        }
    }

    /// Carries out what the operator asked for; `log`: the running step's log.
    async fn request(&mut self, request: Request, log: Option<&mut StepLog>) -> Result<(), Halt> {
        match request {
            Request::Note { step, item, text } => {
                let text = text.trim().to_string();
                if text.is_empty() {
                    return Ok(());
                }
                let id = step.and_then(|s| self.session.runbook.steps.get(s)).map(|s| s.id.clone());
                let item = step.zip(item).and_then(|(s, i)| self.session.runbook.steps[s].checklist_item(i));
                let text = match item {
                    Some(item) => format!("{item}: {text}"),
                    None => text,
                };
                self.record(Event::NoteAdded { step: id, text }).await
            }
            Request::ActionItem { text, owner, step } => {
                let step = step.and_then(|s| self.session.runbook.steps.get(s)).map(|s| s.id.clone());
                self.record(Event::ActionItemAdded { text, owner, step }).await
            }
            Request::Debrief { went_well, to_improve } => {
                self.record(Event::DebriefRecorded { went_well, to_improve }).await
            }
            Request::PodLogs { step, pod } => {
                self.pod_logs(step, pod);
                Ok(())
            }
            Request::Attach { step, paths } => {
                let Some(step) = self.session.runbook.steps.get(step).map(|s| s.id.clone()) else { return Ok(()) };
                let (dir, by) = (self.session.dir.path.clone(), session::operator());
                inbox::copy(dir, step, paths, by, self.attaching.clone(), self.internal_tx.clone());
                Ok(())
            }
            Request::Quit { reason } => self.leave(Leave::paused(reason, 0), log),
            Request::StopStep => {
                self.stop_step(log);
                Ok(())
            }
        }
    }

    async fn internal(&mut self, internal: Internal, log: Option<&mut StepLog>) -> Result<(), Halt> {
        match internal {
            Internal::Signal("SIGINT")
                if self.options.interrupt_stops_the_step && self.running.is_some() && !self.stopping_step =>
            {
                self.notice("  Ctrl-C: stopping the step (Ctrl-C again stops the drill; it can be resumed)").await;
                self.stop_step(log);
                Ok(())
            }
            Internal::Signal(name) => self.leave(Leave::paused(format!("stopped by {name}"), 130), log),
            Internal::PodLog { step, mut lines } => {
                crate::engine::redact::redact_lines(&self.session.template_context().secret_values(), &mut lines);
                if let Some(log) = log {
                    log.lines(&lines);
                }
                self.send(Update::Output { step, stream: OutputStream::Stdout, lines: lines.into() }).await;
                Ok(())
            }
            Internal::NotificationFailed(failure) => self.notification_failed(failure).await,
            Internal::Attach { request, event } => self.attached(request, *event).await,
            Internal::LeaseLost(why) => {
                self.notice(format!("archive: {why}; this drillbook stops driving it")).await;
                let reason = format!("the archive lease was lost: {why}");
                self.leave(Leave { reason, code: 2, resumable: false }, log)
            }
        }
    }

    /// Leaving: a running attempt is cancelled (and journaled interrupted
    /// when it returns); with nothing running the drive stops now.
    fn leave(&mut self, leave: Leave, log: Option<&mut StepLog>) -> Result<(), Halt> {
        let Some(cancel) = &self.running else { return Err(Halt::Left(leave)) };
        if let Some(log) = log {
            log.line(&format!("{}: stopping the step", leave.reason));
        }
        cancel.cancel();
        self.leaving.get_or_insert(leave);
        Ok(())
    }

    /// The operator stops the running attempt: it is cancelled and ends as
    /// stopped (a failure the operator then decides about); the drill goes on.
    fn stop_step(&mut self, log: Option<&mut StepLog>) {
        let Some(cancel) = &self.running else { return };
        if let Some(log) = log {
            log.line("stopped by the operator");
        }
        self.stopping_step = true;
        cancel.cancel();
    }

    /// From here on only the teardown steps run. What interrupted attempts
    /// left running is stopped first: the drill is abandoned, and a teardown
    /// must not race, say, a `pg_restore` still writing. (Steps that finished
    /// keep what they left running on purpose.)
    async fn begin_abort(&mut self) -> Result<(), Halt> {
        self.aborting = true;
        self.notice("Aborting: only the teardown steps (`always = true`) still run, with their confirmations.").await;
        // Blocking (polls, and up to KILL_GRACE for a group that ignores
        // SIGTERM); signals are heard on another worker meanwhile.
        let notes = tokio::task::block_in_place(|| self.session.stop_leftovers(KILL_GRACE))?;
        let records = self.session.take_new_records();
        self.send(Update::Recorded(records)).await;
        for note in notes {
            self.notice(format!("  {note}")).await;
        }
        Ok(())
    }

    /// Serves what may come after the end (a debrief, action items, notes)
    /// until the front-end quits; the report files follow the journal.
    async fn after_the_end(&mut self) {
        loop {
            let handled = match self.next_incoming().await {
                Incoming::Input(Input::Request(Request::Quit { .. })) | Incoming::Closed => return,
                Incoming::Input(Input::Request(request)) => self.request(request, None).await,
                Incoming::Input(Input::Answer { .. }) => Ok(()),
                Incoming::Internal(Internal::Signal(_)) => return,
                Incoming::Internal(internal) => self.internal(internal, None).await,
            };
            match handled {
                Ok(()) => {
                    if let Err(error) = self.session.write_reports() {
                        self.notice(format!("error: could not rewrite the reports: {error}")).await;
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Starts fetching the last lines of a pod's log; they arrive as
    /// [`Internal::PodLog`] and are shown (and logged) like step output.
    fn pod_logs(&self, step: usize, pod: String) {
        let Some(target) = steps::pod_log_target(&self.session, step) else { return };
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let lines = steps::fetch_pod_log(target, &pod).await;
            let _ = internal.send(Internal::PodLog { step, lines });
        });
    }
}

/// Milliseconds since `started`, for a journaled duration.
fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The drill directory's report files, for a front-end to name.
pub fn report_names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect()
}
