//! The one place the TUI does I/O: it owns the terminal, the drill session
//! (journal, lock) and the running command, turns terminal input, engine
//! events, the clock and signals into `Msg`s on one channel, carries out
//! the `Effect`s that `update` returns, and redraws at most every 16 ms.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod http;
mod k8s;
mod watch;

use super::app::PickRow;
use super::app::{App, Effect, LOG_CAPACITY, Msg};
use super::theme::Theme;
use super::update::{start_form, update};
use super::{render, tracing_to};
use crate::drill::event::{AttemptResult, DrillOutcome, Event, SessionMode};
use crate::drill::store::DrillStore;
use crate::engine::command::{CommandError, CommandOutcome, run_command};
use crate::engine::s3::download::DownloadError;
use crate::engine::s3::{ObjectInfo, Store, backup, check};
use crate::engine::session::{DrillSession, ResumeNotice};
use crate::engine::steps;
use crate::engine::steps::StepLog;
use crate::engine::vars::ResolvedVars;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::Action;
use crate::runbook::Runbook;
use crate::runbook::template::CaptureValue;

/// How the TUI opens: on the start screen of a new drill, or on a resumed one.
pub enum Opening {
    New {
        runbook: Runbook,
        given: BTreeMap<String, String>,
        env: BTreeMap<String, String>,
        training: bool,
        store: DrillStore,
        /// `--participant` name and role: prefilled on the start screen, journaled right after the start.
        participants: Vec<(String, String)>,
    },
    Resume {
        session: Box<DrillSession>,
        notice: ResumeNotice,
    },
}

/// The work of a running non-command step, spawned once its start is journaled.
type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Frames are drawn at most this often, however fast messages arrive.
const FRAME: Duration = Duration::from_millis(16);
const TICK: Duration = Duration::from_millis(200);

enum Incoming {
    Ui(Msg),
    CommandDone {
        step: usize,
        attempt: u32,
        result: Result<CommandOutcome, CommandError>,
    },
    /// Output or progress of an S3 step (logged to its file, then shown).
    S3Event {
        step: usize,
        event: EngineEvent,
    },
    S3Listed {
        step: usize,
        attempt: u32,
        result: Result<Listed, String>,
    },
    S3Fetched {
        step: usize,
        attempt: u32,
        result: Result<CaptureValue, DownloadError>,
    },
    S3Checked {
        step: usize,
        attempt: u32,
        result: Result<Vec<check::CheckRow>, String>,
    },
    K8s(k8s::K8sIncoming),
    HttpDone {
        step: usize,
        attempt: u32,
        result: Result<(String, crate::engine::http::HttpOutcome), crate::engine::http::HttpError>,
    },
}

/// A finished listing of an `s3-backup` step.
struct Listed {
    store: Store,
    rendered: backup::BackupStep,
    objects: Vec<ObjectInfo>,
}

struct Runtime {
    tx: mpsc::Sender<Incoming>,
    session: Option<DrillSession>,
    store: Option<DrillStore>,
    runbook: Option<Runbook>,
    training: bool,
    running: Option<CancellationToken>,
    /// Logs of non-command steps that are running, by step index.
    step_logs: BTreeMap<usize, StepLog>,
    /// A listing waiting for the operator to pick a backup.
    pending_pick: Option<(usize, u32, Listed)>,
    /// Tags waiting for the operator to pick one.
    pending_tag: Option<k8s::PendingTag>,
    /// A scale shown for confirmation.
    pending_scale: Option<k8s::PendingScale>,
    /// Quit once the running command has ended, journaling this reason.
    quit_after_command: Option<String>,
    exit: Option<ExitCode>,
}

pub fn run(opening: Opening) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(run_async(opening))
}

/// `drillbook watch`: a read-only live view of a drill another process
/// drives (or of a finished one). Nothing is written into its directory.
/// Returns the line to print once the terminal is restored.
pub fn watch(dir: crate::drill::store::DrillDir) -> Result<String, String> {
    let (app, followed) = watch::open(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(watch::run(app, followed))
}

async fn run_async(opening: Opening) -> Result<ExitCode, String> {
    let (tx, mut rx) = mpsc::channel::<Incoming>(1024);
    let now = jiff::Timestamp::now();
    let theme = Theme::from_env();
    let mut resume_notice = Vec::new();
    let (mut app, mut runtime) = match opening {
        Opening::New { runbook, given, env, training, store, participants } => {
            let form = start_form(&runbook, &given, &env, &participants);
            let app = App::new(Arc::new(runbook.clone()), form, now, theme);
            let mut runtime = Runtime::new(tx.clone(), None);
            (runtime.store, runtime.runbook, runtime.training) = (Some(store), Some(runbook), training);
            (app, runtime)
        }
        Opening::Resume { session, notice } => {
            let session = *session;
            let app = App::new(Arc::new(session.runbook.clone()), Default::default(), now, theme);
            let runtime = Runtime::new(tx.clone(), Some(session));
            resume_notice = resume_notices(&notice);
            (app, runtime)
        }
    };

    spawn_input_thread(tx.clone());
    spawn_ticker(tx.clone());
    spawn_signals(tx.clone())?;

    // color-eyre's hooks first: ratatui's panic hook chains onto them and
    // restores the terminal before the report prints.
    let _ = color_eyre::install();
    let mut terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    // Last in the chain, so it runs first: mouse reporting off, then ratatui
    // restores the terminal, then color-eyre prints the report.
    let restore_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        restore_hook(info);
    }));
    // Outermost: a message holding a secret is masked and printed by it
    // instead of the chain above, so it restores the terminal itself.
    crate::engine::panic_redaction::install(|| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        ratatui::restore();
    });
    #[cfg(debug_assertions)]
    let forced_panic = forced_panic_deadline();
    if let Ok(size) = terminal.size() {
        update(&mut app, Msg::Resize(size.width, size.height));
    }
    if let Some(session) = runtime.session.as_mut() {
        tracing_to(&session.dir.trace_log());
        let state = Box::new(session.state.clone());
        session.take_new_records();
        app.in_flight += 1; // DrillOpened answers like an effect.
        let restored = restore_logs(session);
        let mut notices = std::mem::take(&mut resume_notice);
        match session.prepare_sandbox() {
            Ok(made) => notices.extend(made.into_iter().map(|line| format!("training: {line}"))),
            Err(error) => notices.push(format!("error: cannot prepare the training sandbox: {error}")),
        }
        let interrupted: Vec<(usize, String)> = state
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.status, crate::drill::state::StepStatus::Interrupted { .. }))
            .filter_map(|(index, _)| Some((index, app.runbook.steps.get(index)?.id.clone())))
            .collect();
        for (step, id) in interrupted {
            let processes = crate::engine::leftover::still_running(&session.dir.logs(), &id);
            update(&mut app, Msg::StillRunning { step, processes });
        }
        let effects = update(&mut app, Msg::DrillOpened { id: session.dir.id.clone(), state, notices });
        for (step, lines) in restored {
            update(&mut app, Msg::RestoredLog { step, lines });
        }
        runtime.execute_all(&mut app, effects).await;
    }

    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            draw(&mut terminal, &app);
            last_draw = Some(Instant::now());
            dirty = false;
        }
        if let Some(code) = runtime.exit {
            let _ = execute!(std::io::stdout(), DisableMouseCapture);
            ratatui::restore();
            runtime.farewell();
            return Ok(code);
        }
        let deadline = last_draw.map_or_else(tokio::time::Instant::now, |t| tokio::time::Instant::from_std(t + FRAME));
        let incoming = tokio::select! {
            incoming = rx.recv() => incoming,
            () = tokio::time::sleep_until(deadline), if dirty => continue,
        };
        let Some(first) = incoming else { break };
        runtime.handle(&mut app, first).await;
        // Drain what is queued before drawing, so a flood of output costs one frame.
        for _ in 0..512 {
            match rx.try_recv() {
                Ok(next) => runtime.handle(&mut app, next).await,
                Err(_) => break,
            }
        }
        dirty = true;
        #[cfg(debug_assertions)]
        if forced_panic.is_some_and(|at| Instant::now() >= at) {
            // As a bug that formats a secret into a panic message would.
            let held = runtime.session.as_ref().map(|s| s.secret_values().join(", ")).unwrap_or_default();
            panic!("forced panic for testing (DRILLBOOK_DEBUG_PANIC_AFTER_MS), secrets held: [{held}]");
        }
    }
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    Ok(runtime.exit.unwrap_or(ExitCode::SUCCESS))
}

/// Debug builds only: with `DRILLBOOK_DEBUG_PANIC_AFTER_MS=N` the TUI panics
/// on the first message handled N ms after it started (the clock ticks every
/// 200 ms) with the drill's secrets in its message, so the tests can check
/// that a panic restores the terminal and that its message is masked. Release builds never read the variable.
#[cfg(debug_assertions)]
fn forced_panic_deadline() -> Option<Instant> {
    let ms = std::env::var("DRILLBOOK_DEBUG_PANIC_AFTER_MS").ok()?.trim().parse().ok()?;
    Some(Instant::now() + Duration::from_millis(ms))
}

impl Runtime {
    fn new(tx: mpsc::Sender<Incoming>, session: Option<DrillSession>) -> Self {
        Runtime {
            tx,
            session,
            store: None,
            runbook: None,
            training: false,
            running: None,
            step_logs: BTreeMap::new(),
            pending_pick: None,
            pending_tag: None,
            pending_scale: None,
            quit_after_command: None,
            exit: None,
        }
    }

    async fn handle(&mut self, app: &mut App, incoming: Incoming) {
        match incoming {
            Incoming::Ui(msg) => {
                let effects = update(app, msg);
                self.execute_all(app, effects).await;
            }
            Incoming::S3Event { step, event } => {
                let msg = match event {
                    EngineEvent::Output { stream, mut lines, .. } => {
                        // Pod logs may hold a secret, as command output may.
                        if let Some(session) = &self.session {
                            let secrets = session.template_context().secret_values();
                            crate::engine::redact::redact_lines(&secrets, &mut lines);
                        }
                        if let Some(log) = self.step_logs.get_mut(&step) {
                            for line in &lines {
                                log.line(line);
                            }
                        }
                        Msg::Output { step, stream, lines }
                    }
                    EngineEvent::Progress { message, .. } => Msg::Progress { step, message },
                    EngineEvent::Pods { table, .. } => Msg::Pods { step, table },
                };
                let effects = update(app, msg);
                self.execute_all(app, effects).await;
            }
            Incoming::S3Listed { step, attempt, result } => {
                let effects = self.s3_listed(app, step, attempt, result);
                self.execute_all(app, effects).await;
            }
            Incoming::S3Fetched { step, attempt, result } => {
                self.running = None;
                let stopped = self.quit_after_command.clone();
                let outcome = match result {
                    Ok(capture) => {
                        let name = self
                            .session
                            .as_ref()
                            .and_then(|s| s.runbook.steps.get(step))
                            .and_then(|s| s.capture.clone());
                        if let (Some(name), Some(session)) = (name, self.session.as_mut()) {
                            let id = session.runbook.steps[step].id.clone();
                            let _ = session.record(Event::CaptureSet { step: id, name, value: capture });
                        }
                        Ok(())
                    }
                    Err(DownloadError::Cancelled { done, total }) if stopped.is_some() => {
                        self.log_line(
                            step,
                            &format!("interrupted at {done} of {total} bytes; `drillbook resume` continues from there"),
                        );
                        Err(None)
                    }
                    Err(error) => Err(Some(error.to_string())),
                };
                self.end_s3(app, step, attempt, outcome).await;
            }
            Incoming::S3Checked { step, attempt, result } => {
                let outcome = match result {
                    Ok(rows) => {
                        let lines = check::table(&rows);
                        for line in &lines {
                            self.log_line(step, line);
                        }
                        let _ = update(app, Msg::Output { step, stream: OutputStream::Stdout, lines });
                        match check::failures(&rows) {
                            None => Ok(()),
                            Some(reason) => Err(Some(reason)),
                        }
                    }
                    Err(error) => Err(Some(error)),
                };
                self.end_s3(app, step, attempt, outcome).await;
            }
            Incoming::K8s(incoming) => self.handle_k8s(app, incoming).await,
            Incoming::HttpDone { step, attempt, result } => self.http_done(app, step, attempt, result).await,
            Incoming::CommandDone { step, attempt, result } => {
                self.running = None;
                let Some(session) = self.session.as_mut() else { return };
                let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return };
                let stopped_by = self.quit_after_command.clone();
                let recorded = match &result {
                    Ok(outcome) => {
                        steps::record_command_end(session, &runbook_step, attempt, outcome, stopped_by.as_deref())
                            .map(|_| ())
                    }
                    Err(error) => steps::record_attempt_failed(session, &runbook_step, attempt, error.to_string()),
                };
                let records = session.take_new_records();
                let effects = update(app, Msg::StepEnded(records));
                if let Err(error) = recorded {
                    let effects = update(app, Msg::EffectFailed(error.to_string()));
                    self.execute_all(app, effects).await;
                }
                if let Some(reason) = self.quit_after_command.take() {
                    self.leave(reason);
                    return;
                }
                self.execute_all(app, effects).await;
            }
        }
    }

    async fn execute_all(&mut self, app: &mut App, effects: Vec<Effect>) {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let follow_up = self.execute(app, effect).await;
            queue.extend(follow_up);
        }
    }

    /// Carries out one effect; returns what `update` asked for in reply.
    async fn execute(&mut self, app: &mut App, effect: Effect) -> Vec<Effect> {
        tracing::debug!(?effect, "effect");
        match effect {
            Effect::StartDrill { values, secrets, participants } => {
                let (Some(store), Some(runbook)) = (self.store.as_ref(), self.runbook.take()) else {
                    return update(app, Msg::EffectFailed("the drill was already started".into()));
                };
                let vars = ResolvedVars { values, secrets };
                match DrillSession::start(store, runbook, vars, SessionMode::Tui, self.training) {
                    Ok(mut session) => {
                        tracing_to(&session.dir.trace_log());
                        tracing::info!(drill = %session.dir.id, "drill started");
                        let participants = session.record_participants(&participants);
                        session.take_new_records();
                        let notices = match session.prepare_sandbox() {
                            Ok(made) => made.into_iter().map(|line| format!("training: {line}")).collect(),
                            Err(error) => vec![format!("error: cannot prepare the training sandbox: {error}")],
                        };
                        let msg = Msg::DrillOpened {
                            id: session.dir.id.clone(),
                            state: Box::new(session.state.clone()),
                            notices,
                        };
                        self.session = Some(session);
                        let mut effects = update(app, msg);
                        if let Err(error) = participants {
                            effects.extend(update(app, Msg::EffectFailed(error.to_string())));
                        }
                        effects
                    }
                    Err(error) => update(app, Msg::EffectFailed(error.to_string())),
                }
            }
            Effect::Record(event) => {
                let Some(session) = self.session.as_mut() else { return Vec::new() };
                let finishing = matches!(event, Event::DrillFinished { .. });
                match session.record(event) {
                    Ok(()) => {
                        let records = session.take_new_records();
                        // The evidence is written the moment the drill ends.
                        let notice = finishing.then(|| match session.write_reports() {
                            Ok(_) => format!("reports written to {}", session.dir.path.display()),
                            Err(error) => format!("error: could not write the reports: {error}"),
                        });
                        let mut effects = update(app, Msg::EffectDone(records));
                        if let Some(notice) = notice {
                            effects.extend(update(app, Msg::Notice(notice)));
                        }
                        effects
                    }
                    Err(error) => update(app, Msg::EffectFailed(format!("{error}"))),
                }
            }
            Effect::StopLeftovers => {
                let Some(session) = self.session.as_mut() else { return Vec::new() };
                // The teardown waits for this anyway. It takes a 50 ms poll per group,
                // up to KILL_GRACE + 2 s for one that ignores SIGTERM; the frame is not
                // redrawn meanwhile, but the runtime's other tasks (signals) go on.
                let stopped = tokio::task::block_in_place(|| session.stop_leftovers(crate::engine::KILL_GRACE));
                match stopped {
                    Ok(notes) => {
                        let records = session.take_new_records();
                        let mut effects = update(app, Msg::EffectDone(records));
                        if !notes.is_empty() {
                            effects.extend(update(app, Msg::Notice(notes.join(" · "))));
                        }
                        effects
                    }
                    Err(error) => update(app, Msg::EffectFailed(format!("{error}"))),
                }
            }
            Effect::FailStep { step, reason } => self.fail_unstarted(app, step, reason),
            Effect::RunCommand { step } => self.run_command(app, step),
            Effect::RunS3 { step } => self.run_s3(app, step),
            Effect::BackupPicked { step, key } => self.backup_picked(app, step, key),
            Effect::RunK8s { step } => self.run_k8s(app, step),
            Effect::RunHttp { step } => self.run_http(app, step),
            Effect::PlanScale { step } => self.plan_scale(app, step),
            Effect::TagPicked { step, tag } => self.tag_picked(app, step, tag),
            Effect::PodLogs { step, pod } => self.pod_logs(app, step, pod),
            Effect::OpenUrl(url) => {
                let notice = open_url(&url);
                update(app, Msg::Notice(notice))
            }
            Effect::Quit { interrupt } => {
                match (&self.running, interrupt) {
                    (Some(cancel), reason) => {
                        // Stop the command; quit once its end is journaled.
                        self.quit_after_command = Some(reason.unwrap_or_else(|| "quit by the operator".into()));
                        cancel.cancel();
                    }
                    (None, reason) => self.leave(reason.unwrap_or_else(|| "quit by the operator".into())),
                }
                Vec::new()
            }
        }
    }

    /// Journals a step as failed without an attempt having run (it could
    /// not be prepared); answers a counted effect.
    fn fail_unstarted(&mut self, app: &mut App, step: usize, reason: String) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return Vec::new() };
        match steps::record_failure_without_run(session, &runbook_step, reason) {
            Ok(()) => {
                let records = session.take_new_records();
                update(app, Msg::EffectDone(records))
            }
            Err(error) => update(app, Msg::EffectFailed(error.to_string())),
        }
    }

    fn run_command(&mut self, app: &mut App, step: usize) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return Vec::new() };
        let (attempt, prepared) = match steps::prepare_command(session, &runbook_step) {
            Ok(prepared) => prepared,
            Err(reason) => return self.fail_unstarted(app, step, reason),
        };
        if let Err(error) = steps::record_command_start(session, &runbook_step, attempt, &prepared) {
            return update(app, Msg::EffectFailed(error.to_string()));
        }
        let records = session.take_new_records();
        let cancel = CancellationToken::new();
        self.running = Some(cancel.clone());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let (engine_tx, mut engine_rx) = mpsc::channel(64);
            let task = tokio::spawn(run_command(prepared.request, engine_tx, cancel));
            while let Some(event) = engine_rx.recv().await {
                if let EngineEvent::Output { stream, lines, .. } = event
                    && tx.send(Incoming::Ui(Msg::Output { step, stream, lines })).await.is_err()
                {
                    break;
                }
            }
            let result = match task.await {
                Ok(result) => result,
                Err(join) => Err(CommandError::Wait {
                    step_id: format!("#{step}"),
                    source: std::io::Error::other(join.to_string()),
                }),
            };
            let _ = tx.send(Incoming::CommandDone { step, attempt, result }).await;
        });
        update(app, Msg::EffectDone(records))
    }

    fn log_line(&mut self, step: usize, line: &str) {
        if let Some(log) = self.step_logs.get_mut(&step) {
            log.line(line);
        }
    }

    /// Journals the end of an S3 step: done, failed (with a reason) or,
    /// when drillbook is quitting, interrupted (`Err(None)`).
    async fn end_s3(&mut self, app: &mut App, step: usize, attempt: u32, outcome: Result<(), Option<String>>) {
        self.step_logs.remove(&step);
        let Some(session) = self.session.as_mut() else { return };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return };
        let started = session.state.step(&runbook_step.id).and_then(|s| s.attempts.last().map(|a| a.started_at));
        let duration_ms = started
            .and_then(|s| std::time::Duration::try_from(jiff::Timestamp::now().duration_since(s)).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let recorded = match outcome {
            Ok(()) => session.record(Event::finished_by_hand(
                &runbook_step.id,
                attempt,
                AttemptResult::Succeeded,
                None,
                duration_ms,
            )),
            Err(Some(reason)) => session.record(Event::finished_by_hand(
                &runbook_step.id,
                attempt,
                AttemptResult::Failed,
                Some(reason),
                duration_ms,
            )),
            Err(None) => session.record(Event::StepInterrupted {
                step: runbook_step.id.clone(),
                attempt,
                reason: self.quit_after_command.clone().unwrap_or_else(|| "stopped".into()),
            }),
        };
        let records = session.take_new_records();
        let effects = update(app, Msg::StepEnded(records));
        if let Err(error) = recorded {
            let _ = update(app, Msg::EffectFailed(error.to_string()));
        }
        if let Some(reason) = self.quit_after_command.take() {
            self.leave(reason);
            return;
        }
        self.execute_all(app, effects).await;
    }

    /// Starts an S3 step: journals its start, then lists or checks in a task.
    fn run_s3(&mut self, app: &mut App, step: usize) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return Vec::new() };
        let context = session.template_context();
        let attempt = steps::next_attempt(session, &runbook_step);
        let tx = self.tx.clone();
        // Training reads the sandbox bucket, whatever the endpoint.
        let sandbox = session.s3_endpoint_override();
        let (description, task): (String, Task) = match &runbook_step.action {
            Action::S3Backup(spec) => {
                match backup::BackupStep::render(spec, &context, session.templater()).map(|mut rendered| {
                    rendered.store.endpoint = sandbox.clone().or(rendered.store.endpoint);
                    rendered
                }) {
                    Ok(rendered) => (
                        format!("s3-backup {}", rendered.location()),
                        Box::pin(async move {
                            let result = async {
                                let store = Store::connect(&rendered.store).await.map_err(|e| e.to_string())?;
                                let objects = backup::candidates(&store, &rendered).await.map_err(|e| e.to_string())?;
                                Ok(Listed { store, rendered, objects })
                            }
                            .await;
                            let _ = tx.send(Incoming::S3Listed { step, attempt, result }).await;
                        }),
                    ),
                    Err(reason) => return vec![Effect::FailStep { step, reason }],
                }
            }
            Action::S3Check(spec) => {
                match check::CheckStep::render(spec, &context, session.templater()).map(|mut rendered| {
                    rendered.store.endpoint = sandbox.clone().or(rendered.store.endpoint);
                    rendered
                }) {
                    Ok(rendered) => (
                        format!("s3-check s3://{}", rendered.bucket),
                        Box::pin(async move {
                            let result = async {
                                let store = Store::connect(&rendered.store).await.map_err(|e| e.to_string())?;
                                check::run(&store, &rendered).await.map_err(|e| e.to_string())
                            }
                            .await;
                            let _ = tx.send(Incoming::S3Checked { step, attempt, result }).await;
                        }),
                    ),
                    Err(reason) => return vec![Effect::FailStep { step, reason }],
                }
            }
            _ => return vec![Effect::FailStep { step, reason: "not an S3 step".into() }],
        };
        self.start_task(app, step, attempt, description, task)
    }

    /// Journals the start of a non-command attempt (with its log file) and
    /// spawns the task doing it; answers the effect.
    fn start_task(&mut self, app: &mut App, step: usize, attempt: u32, description: String, task: Task) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else { return Vec::new() };
        let log = StepLog::create(session, &runbook_step, attempt);
        let started = session.record(Event::StepStarted {
            step: runbook_step.id.clone(),
            attempt,
            command: Some(description),
            log: Some(log.relative.clone()),
        });
        if let Err(error) = started {
            self.running = None;
            return update(app, Msg::EffectFailed(error.to_string()));
        }
        self.step_logs.insert(step, log);
        let records = session.take_new_records();
        tokio::spawn(task);
        update(app, Msg::EffectDone(records))
    }

    /// A listing arrived: continue with the journaled choice, take the
    /// newest, or ask the operator.
    fn s3_listed(&mut self, app: &mut App, step: usize, attempt: u32, result: Result<Listed, String>) -> Vec<Effect> {
        let listed = match result {
            Ok(listed) => listed,
            Err(reason) => {
                self.log_line(step, &reason);
                return self.fail_running(app, step, attempt, reason);
            }
        };
        let Some(session) = self.session.as_ref() else { return Vec::new() };
        let id = session.runbook.steps[step].id.clone();
        let previous = session.state.step(&id).and_then(|s| s.resumable_choice(Some(attempt)).cloned());
        let now = jiff::Timestamp::now();
        let lines: Vec<String> = listed
            .objects
            .iter()
            .take(10)
            .map(|o| {
                let [key, size, modified, age, version] = backup::describe(o, now);
                format!("{key}  {size}  {modified}  ({age} old)  {version}")
            })
            .collect();
        let mut lines =
            std::iter::once(format!("found {} backups under {}", listed.objects.len(), listed.rendered.location()))
                .chain(lines)
                .collect::<Vec<_>>();
        if let Some(previous) = previous.as_ref().and_then(|p| backup::find_choice(&listed.objects, p)).cloned() {
            lines.push(format!("continuing with the backup chosen before: {}", previous.key));
            self.show(app, step, lines);
            return self.fetch(app, step, attempt, listed, previous);
        }
        self.show(app, step, lines);
        if listed.rendered.choose {
            let rows = listed
                .objects
                .iter()
                .enumerate()
                .map(|(index, o)| {
                    let cells = backup::describe(o, now).to_vec();
                    let age = now.duration_since(o.last_modified).as_secs() as i128;
                    PickRow {
                        value: index.to_string(),
                        sort: vec![0, o.size as i128, -age, age],
                        cells,
                        marked: index == 0,
                    }
                })
                .collect();
            self.pending_pick = Some((step, attempt, listed));
            app.in_flight += 1; // PickBackup answers like an effect.
            return update(app, Msg::PickBackup { step, rows });
        }
        let newest = listed.objects[0].clone();
        self.fetch(app, step, attempt, listed, newest)
    }

    fn backup_picked(&mut self, app: &mut App, step: usize, key: Option<String>) -> Vec<Effect> {
        let Some((pending_step, attempt, listed)) = self.pending_pick.take() else {
            return update(app, Msg::EffectFailed("no backup listing is waiting for a choice".into()));
        };
        let chosen = key.and_then(|k| k.parse::<usize>().ok()).and_then(|i| listed.objects.get(i).cloned());
        match chosen {
            Some(object) if pending_step == step => {
                let effects = self.fetch(app, step, attempt, listed, object);
                let mut all = update(app, Msg::EffectDone(Vec::new()));
                all.extend(effects);
                all
            }
            _ => {
                let effects = self.fail_running(app, step, attempt, "no backup was chosen".into());
                let mut all = update(app, Msg::EffectDone(Vec::new()));
                all.extend(effects);
                all
            }
        }
    }

    fn show(&mut self, app: &mut App, step: usize, lines: Vec<String>) {
        for line in &lines {
            self.log_line(step, line);
        }
        let _ = update(app, Msg::Output { step, stream: OutputStream::Stdout, lines });
    }

    /// Journals the choice and starts the download task.
    fn fetch(&mut self, app: &mut App, step: usize, attempt: u32, listed: Listed, object: ObjectInfo) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let id = session.runbook.steps[step].id.clone();
        if let Err(error) = session.record(Event::Chosen { step: id.clone(), choice: backup::choice_json(&object) }) {
            return update(app, Msg::EffectFailed(error.to_string()));
        }
        let records = session.take_new_records();
        let downloads = session.dir.downloads();
        let cancel = CancellationToken::new();
        self.running = Some(cancel.clone());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let (events_tx, mut events_rx) = mpsc::channel(64);
            let forward_tx = tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(event) = events_rx.recv().await {
                    if forward_tx.send(Incoming::S3Event { step, event }).await.is_err() {
                        break;
                    }
                }
            });
            let result = backup::fetch(&listed.store, &listed.rendered, &object, &downloads, &id, &events_tx, &cancel)
                .await
                .map(|(_, capture)| capture);
            drop(events_tx);
            let _ = forward.await;
            let _ = tx.send(Incoming::S3Fetched { step, attempt, result }).await;
        });
        update(app, Msg::StepEnded(records))
    }

    fn fail_running(&mut self, app: &mut App, step: usize, attempt: u32, reason: String) -> Vec<Effect> {
        self.step_logs.remove(&step);
        let Some(session) = self.session.as_mut() else { return Vec::new() };
        let id = session.runbook.steps[step].id.clone();
        let _ = session.record(Event::finished_by_hand(&id, attempt, AttemptResult::Failed, Some(reason), 0));
        let records = session.take_new_records();
        update(app, Msg::StepEnded(records))
    }

    fn leave(&mut self, reason: String) {
        if let Some(session) = self.session.as_mut()
            && session.state.finished.is_none()
        {
            let _ = session.record(Event::SessionEnded { reason: reason.clone() });
        }
        self.exit = Some(if reason.starts_with("stopped by") {
            ExitCode::from(130)
        } else {
            match self.session.as_ref().and_then(|s| s.state.finished.as_ref()).map(|f| f.outcome) {
                Some(DrillOutcome::Completed) | None => ExitCode::SUCCESS,
                Some(_) => ExitCode::from(1),
            }
        });
    }

    /// One line on the restored terminal saying where things stand.
    fn farewell(&self) {
        let Some(session) = &self.session else { return };
        let id = &session.dir.id;
        let text = match session.state.finished.as_ref().map(|f| f.outcome) {
            Some(outcome) => {
                format!("Drill {id} {}. Report: drillbook report {id}", format!("{outcome:?}").to_lowercase())
            }
            None => format!("Drill {id} paused. Continue with: drillbook resume {id}"),
        };
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{text}");
    }
}

/// One frame: the screen, and the cursor where a text field wants it.
fn draw(terminal: &mut ratatui::DefaultTerminal, app: &App) {
    let _ = terminal.draw(|frame| {
        render::render(app, frame);
        if let Some(position) = render::cursor(app, frame.area()) {
            frame.set_cursor_position(position);
        }
    });
}

fn spawn_input_thread(tx: mpsc::Sender<Incoming>) {
    std::thread::spawn(move || {
        loop {
            if tx.is_closed() {
                return;
            }
            match event::poll(Duration::from_millis(250)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let msg = match event::read() {
                Ok(TermEvent::Key(key)) => Msg::Key(key),
                Ok(TermEvent::Mouse(mouse)) => Msg::Mouse(mouse),
                Ok(TermEvent::Resize(width, height)) => Msg::Resize(width, height),
                Ok(_) => continue,
                Err(_) => return,
            };
            if tx.blocking_send(Incoming::Ui(msg)).is_err() {
                return;
            }
        }
    });
}

fn spawn_ticker(tx: mpsc::Sender<Incoming>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        loop {
            interval.tick().await;
            if tx.send(Incoming::Ui(Msg::Tick(jiff::Timestamp::now()))).await.is_err() {
                return;
            }
        }
    });
}

fn spawn_signals(tx: mpsc::Sender<Incoming>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in
        [(SignalKind::terminate(), "SIGTERM"), (SignalKind::hangup(), "SIGHUP"), (SignalKind::interrupt(), "SIGINT")]
    {
        let mut stream = signal(kind).map_err(|e| format!("cannot listen for {name}: {e}"))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if tx.send(Incoming::Ui(Msg::Signal(name))).await.is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}

/// What the operator should know about a resumed drill, one line each.
fn resume_notices(notice: &ResumeNotice) -> Vec<String> {
    let mut notices = Vec::new();
    if let Some(torn) = &notice.torn {
        notices.push(format!(
            "the journal's last line was incomplete (crash mid-write, line {}); it was set aside",
            torn.line_number
        ));
    }
    if let Some(change) = &notice.runbook_changed {
        let mut steps: Vec<&str> = change.changed_steps.iter().map(String::as_str).collect();
        steps.extend(change.added_steps.iter().map(String::as_str));
        steps.extend(change.removed_steps.iter().map(String::as_str));
        notices.push(format!(
            "{} changed since the drill started ({}); using the runbook as it was",
            change.path,
            if steps.is_empty() { "metadata".to_string() } else { format!("steps: {}", steps.join(", ")) }
        ));
    }
    notices
}

/// The last lines of each step's latest log, to show on resume.
fn restore_logs(session: &DrillSession) -> Vec<(usize, Vec<String>)> {
    let mut restored = Vec::new();
    for (index, step) in session.state.steps.iter().enumerate() {
        let Some(log) = step.attempts.iter().rev().find_map(|a| a.log.clone()) else { continue };
        let lines = tail_lines(&session.dir.path.join(log), LOG_CAPACITY);
        if !lines.is_empty() {
            restored.push((index, lines));
        }
    }
    restored
}

/// Up to `count` last lines of a file, reading at most a few MiB of it.
fn tail_lines(path: &Path, count: usize) -> Vec<String> {
    const MAX_BYTES: u64 = 4 << 20;
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = length.saturating_sub(MAX_BYTES);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let skip = lines.len().saturating_sub(count);
    lines.split_off(skip)
}

/// Opens a link in the browser, or says where to copy it from.
fn open_url(url: &str) -> String {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    match std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => format!("opened {url}"),
        Err(_) => format!("no browser opener ({opener}) here: copy the link {url}"),
    }
}
