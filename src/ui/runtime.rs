//! The one place the TUI does I/O: it owns the terminal, turns terminal
//! input, the clock and what the drill's conductor reports into `Msg`s,
//! carries out the `Effect`s that `update` returns (answers and requests go
//! to the conductor), and redraws at most every 16 ms. It runs no step and
//! journals nothing itself.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

mod watch;

use super::app::{App, Effect, LOG_CAPACITY, Msg};
use super::theme::Theme;
use super::update::{start_form, update};
use super::{render, tracing_to};
use crate::drill::event::SessionMode;
use crate::drill::state::DrillState;
use crate::drill::store::DrillStore;
use crate::drive::session::{DrillSession, ResumeNotice};
use crate::drive::{self, Ending, Link, Update};
use crate::engine::vars::ResolvedVars;
use crate::runbook::Runbook;

/// How the TUI opens: on the start screen of a new drill, or on a resumed one.
pub enum Opening {
    New {
        runbook: Box<Runbook>,
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

/// How the conductor runs drills opened here.
pub struct Conducting {
    /// `--yes`: the unattended policy answers; the screen shows the drill.
    pub unattended: bool,
    pub report_to: Option<drive::ReportTo>,
}

/// Frames are drawn at most this often, however fast messages arrive.
const FRAME: Duration = Duration::from_millis(16);
const TICK: Duration = Duration::from_millis(200);

/// What the loop hears.
enum Incoming {
    Ui(Msg),
}

/// A drill not opened yet: what the start screen's answers open.
struct Pending {
    store: DrillStore,
    runbook: Runbook,
    training: bool,
}

struct Runtime {
    pending: Option<Pending>,
    conducting: Conducting,
    link: Option<Link>,
    exit: Option<Ending>,
}

pub fn run(opening: Opening, conducting: Conducting) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(run_async(opening, conducting))
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

/// A second stop signal leaves at once: the terminal is restored first.
fn leave_at_once() {
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    std::process::exit(130);
}

async fn run_async(opening: Opening, conducting: Conducting) -> Result<ExitCode, String> {
    let (tx, mut rx) = mpsc::channel::<Incoming>(1024);
    let now = jiff::Timestamp::now();
    let theme = Theme::from_env();
    let mut runtime = Runtime { pending: None, conducting, link: None, exit: None };
    let mut app = match opening {
        Opening::New { runbook, given, env, training, store, participants } => {
            let mut form = start_form(&runbook, &given, &env, &participants);
            form.training = training;
            // The project a new drill belongs to, its var filled from the form as it opens.
            let var = |name: &str| form.fields.iter().find(|f| f.var.name == name).map(|f| f.input.value().to_string());
            form.since_last = crate::report::history::project_name(&runbook, var)
                .map(|project| crate::report::history::for_plan(&runbook, &project, training, store.root()));
            let app = App::new(Arc::new((*runbook).clone()), form, now, theme);
            runtime.pending = Some(Pending { store, runbook: *runbook, training });
            app
        }
        Opening::Resume { session, notice } => {
            let session = *session;
            let app = App::new(Arc::new(session.runbook.clone()), Default::default(), now, theme);
            tracing_to(&session.dir.trace_log());
            let restored = restore_logs(&session.dir.path, &session.state);
            runtime.conduct(session, Some(notice))?;
            let mut app = app;
            for (step, lines) in restored {
                update(&mut app, Msg::RestoredLog { step, lines });
            }
            app
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

    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            draw(&mut terminal, &app);
            last_draw = Some(Instant::now());
            dirty = false;
        }
        if let Some(ending) = runtime.exit.take() {
            let _ = execute!(std::io::stdout(), DisableMouseCapture);
            ratatui::restore();
            return farewell(ending);
        }
        let deadline = last_draw.map_or_else(tokio::time::Instant::now, |t| tokio::time::Instant::from_std(t + FRAME));
        let first = tokio::select! {
            incoming = rx.recv() => match incoming {
                Some(Incoming::Ui(msg)) => msg,
                None => break,
            },
            update = runtime.next_update() => Msg::Drive(update),
            () = tokio::time::sleep_until(deadline), if dirty => continue,
        };
        runtime.handle(&mut app, first);
        // Drain what is queued before drawing, so a flood of output costs one frame.
        for _ in 0..512 {
            let next = match rx.try_recv() {
                Ok(Incoming::Ui(msg)) => Some(msg),
                Err(_) => runtime.try_update().map(Msg::Drive),
            };
            match next {
                Some(msg) => runtime.handle(&mut app, msg),
                None => break,
            }
        }
        dirty = true;
        #[cfg(debug_assertions)]
        if forced_panic.is_some_and(|at| Instant::now() >= at) {
            // As a bug that formats a secret into a panic message would.
            let held = crate::engine::panic_redaction::held().join(", ");
            panic!("forced panic for testing (DRILLBOOK_DEBUG_PANIC_AFTER_MS), secrets held: [{held}]");
        }
    }
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    Ok(ExitCode::SUCCESS)
}

/// Prints the conductor's last word on the restored terminal.
fn farewell(ending: Ending) -> Result<ExitCode, String> {
    if let Some(error) = ending.error {
        return Err(error);
    }
    if let Some(message) = ending.message {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{message}");
    }
    Ok(ExitCode::from(ending.code))
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
    /// Hands an open drill to its conductor.
    fn conduct(&mut self, session: DrillSession, notice: Option<ResumeNotice>) -> Result<(), String> {
        let options = drive::Options {
            unattended: self.conducting.unattended,
            abort: false,
            report_to: self.conducting.report_to.clone(),
            on_second_signal: leave_at_once,
            // Ctrl-C is a key here; a SIGINT comes from elsewhere and stops the drill.
            interrupt_stops_the_step: false,
            archive: crate::config::archive(),
        };
        self.link = Some(drive::start(session, notice, options).map_err(|e| e.to_string())?);
        Ok(())
    }

    async fn next_update(&mut self) -> Update {
        match self.link.as_mut() {
            Some(link) => match link.updates.recv().await {
                Some(update) => update,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    fn try_update(&mut self) -> Option<Update> {
        self.link.as_mut()?.updates.try_recv().ok()
    }

    fn handle(&mut self, app: &mut App, msg: Msg) {
        if let Msg::Drive(Update::Ended(ending)) = &msg {
            self.exit = Some(ending.clone());
        }
        let effects = update(app, msg);
        for effect in effects {
            self.execute(app, effect);
        }
    }

    /// Carries out one effect.
    fn execute(&mut self, app: &mut App, effect: Effect) {
        tracing::debug!(?effect, "effect");
        match effect {
            Effect::StartDrill { values, secrets, participants } => {
                let Some(pending) = self.pending.take() else {
                    let _ = update(app, Msg::Notice("error: the drill was already started".into()));
                    return;
                };
                let vars = ResolvedVars { values, secrets };
                let started =
                    DrillSession::start(&pending.store, pending.runbook, vars, SessionMode::Tui, pending.training)
                        .map_err(|e| e.to_string())
                        .and_then(|mut session| {
                            tracing_to(&session.dir.trace_log());
                            tracing::info!(drill = %session.dir.id, "drill started");
                            session.record_participants(&participants).map_err(|e| e.to_string())?;
                            self.conduct(session, None)
                        });
                if let Err(error) = started {
                    let _ = update(app, Msg::Notice(format!("error: {error}")));
                }
            }
            Effect::Answer { id, answer } => self.send(drive::Input::Answer { id, answer }),
            Effect::Request(request) => self.send(drive::Input::Request(request)),
            Effect::OpenUrl(url) => {
                let notice = open_url(&url);
                let _ = update(app, Msg::Notice(notice));
            }
            Effect::Exit => self.exit = Some(Ending { code: 0, message: None, paused: None, error: None }),
        }
    }

    fn send(&self, input: drive::Input) {
        if let Some(link) = &self.link {
            let _ = link.inputs.send(input);
        }
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

/// Signals before a drill is open (the start screen) or while watching;
/// once a drill is open its conductor hears them.
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

/// The last lines of each step's latest log, to show on resume.
fn restore_logs(dir: &Path, state: &DrillState) -> Vec<(usize, Vec<String>)> {
    let mut restored = Vec::new();
    for (index, step) in state.steps.iter().enumerate() {
        let Some(log) = step.attempts.iter().rev().find_map(|a| a.log.clone()) else { continue };
        let lines = tail_lines(&dir.join(log), LOG_CAPACITY);
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
