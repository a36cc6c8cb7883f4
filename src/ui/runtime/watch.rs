//! `drillbook watch`: the same screens, read-only, on a drill another
//! process drives. Polls the journal for new complete lines and the logs of
//! its steps for new output; never writes into the drill directory (no
//! lock, no journal, no trace log, no torn-tail repair).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

use super::{Incoming, draw, open_url, spawn_input_thread, spawn_signals, spawn_ticker};
use crate::drill::event::Event;
use crate::drill::journal::{Follower, Record};
use crate::drill::lock;
use crate::drill::state::DrillState;
use crate::drill::store::DrillDir;
use crate::drill::tail::LogTail;
use crate::drive::Update;
use crate::engine::OutputStream;
use crate::ui::app::{App, Driver, Effect, Msg, Watch};
use crate::ui::theme::Theme;
use crate::ui::update::update;

/// How often the journal and the logs are read.
const POLL: Duration = Duration::from_millis(200);
/// How often the driving process is looked for (in polls).
const DRIVER_EVERY: u32 = 5;
const FRAME: Duration = Duration::from_millis(16);

/// What is being followed.
struct Followed {
    dir: DrillDir,
    journal: Option<Follower<Event>>,
    /// The latest attempt's log of each step, by step index.
    tails: BTreeMap<usize, LogTail>,
    driver: Driver,
    polls: u32,
}

/// Reads the drill as it is now; errors (a corrupt journal, a missing
/// snapshot) are reported before the terminal is taken over.
pub(super) fn open(dir: DrillDir) -> Result<(App, FollowedHandle), String> {
    let mut journal = Follower::<Event>::new(&dir.journal());
    let records = journal.poll().map_err(|e| e.to_string())?;
    if records.is_empty() {
        return Err(format!("drill {} has not started yet (its journal is empty): try again in a moment", dir.id));
    }
    let state = DrillState::replay(&records).map_err(|e| format!("{}: {e}", dir.journal().display()))?;
    let runbook = crate::drive::session::load_snapshot(&dir.runbook_snapshot(), &state).map_err(|e| e.to_string())?;
    let mut app = App::new(Arc::new(runbook), Default::default(), jiff::Timestamp::now(), Theme::from_env());
    app.watch = Some(Watch::default());
    let mut tails = BTreeMap::new();
    for (index, step) in state.steps.iter().enumerate() {
        if let Some(log) = step.attempts.iter().rev().find_map(|a| a.log.clone()) {
            tails.insert(index, LogTail::new(&dir.path.join(log)));
        }
    }
    let id = dir.id.clone();
    let followed = Followed { dir, journal: Some(journal), tails, driver: Driver::Unknown, polls: 0 };
    let opened = Update::Opened {
        id,
        dir: followed.dir.path.clone(),
        state: Box::new(state),
        notices: Vec::new(),
        resumed: false,
    };
    let _ = update(&mut app, Msg::Drive(opened));
    Ok((app, FollowedHandle(followed)))
}

/// [`open`]'s follower, for [`run`].
pub(super) struct FollowedHandle(Followed);

/// Runs the view until the watcher quits; returns the line to print on the
/// restored terminal.
pub(super) async fn run(mut app: App, followed: FollowedHandle) -> Result<String, String> {
    let mut followed = followed.0;
    let (tx, mut rx) = mpsc::channel::<Incoming>(1024);
    spawn_input_thread(tx.clone());
    spawn_ticker(tx.clone());
    spawn_signals(tx.clone())?;
    // What the logs hold already, then the driver.
    followed.poll_logs(&mut app, true);
    followed.check_driver(&mut app);

    let _ = color_eyre::install();
    let mut terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    if let Ok(size) = terminal.size() {
        update(&mut app, Msg::Resize(size.width, size.height));
    }
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let mut quit = false;
    loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            draw(&mut terminal, &app);
            last_draw = Some(Instant::now());
            dirty = false;
        }
        if quit {
            break;
        }
        let deadline = last_draw.map_or_else(tokio::time::Instant::now, |t| tokio::time::Instant::from_std(t + FRAME));
        tokio::select! {
            incoming = rx.recv() => {
                let Some(Incoming::Ui(msg)) = incoming else { break };
                quit |= followed.handle(&mut app, msg);
                for _ in 0..512 {
                    match rx.try_recv() {
                        Ok(Incoming::Ui(msg)) => quit |= followed.handle(&mut app, msg),
                        Err(_) => break,
                    }
                }
                dirty = true;
            }
            _ = poll.tick() => {
                followed.poll(&mut app);
                dirty = true;
            }
            () = tokio::time::sleep_until(deadline), if dirty => {}
        }
    }
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    let state = match app.drill.as_ref().and_then(|d| d.finished.as_ref()) {
        Some(finish) => format!("{:?}", finish.outcome).to_lowercase(),
        None => "not finished".into(),
    };
    Ok(format!("Stopped watching drill {} ({state}).", followed.dir.id))
}

impl Followed {
    /// A message from the terminal or the clock; `true` to quit.
    fn handle(&mut self, app: &mut App, msg: Msg) -> bool {
        let effects = update(app, msg);
        let mut quit = false;
        for effect in effects {
            match effect {
                Effect::Exit => quit = true,
                Effect::OpenUrl(url) => {
                    let notice = open_url(&url);
                    let _ = update(app, Msg::Notice(notice));
                }
                // A read-only app asks for nothing else; never carried out.
                other => tracing::debug!(?other, "ignored while watching"),
            }
        }
        quit
    }

    /// New output first (lines written before a step's end was journaled
    /// belong before its end marker), then new records, then the output of
    /// attempts those records started.
    fn poll(&mut self, app: &mut App) {
        self.poll_logs(app, false);
        let records = match self.journal.as_mut().map(Follower::poll) {
            Some(Ok(records)) => records,
            Some(Err(error)) => {
                self.journal = None;
                let _ = update(app, Msg::WatchFailed(format!("{error} (the view stopped following it)")));
                Vec::new()
            }
            None => Vec::new(),
        };
        if !records.is_empty() {
            let started = self.started_logs(app, &records);
            let _ = update(app, Msg::Drive(Update::Recorded(records)));
            for (index, tail) in started {
                self.tails.insert(index, tail);
            }
            self.poll_logs(app, false);
        }
        self.polls = self.polls.wrapping_add(1);
        if self.polls.is_multiple_of(DRIVER_EVERY) {
            self.check_driver(app);
        }
    }

    /// Logs of attempts the records start.
    fn started_logs(&self, app: &App, records: &[Record<Event>]) -> Vec<(usize, LogTail)> {
        let Some(drill) = &app.drill else { return Vec::new() };
        records
            .iter()
            .filter_map(|record| match &record.event {
                Event::StepStarted { step, log: Some(log), .. } => {
                    Some((drill.step_index(step)?, LogTail::new(&self.dir.path.join(log))))
                }
                _ => None,
            })
            .collect()
    }

    fn poll_logs(&mut self, app: &mut App, restoring: bool) {
        for (index, tail) in &mut self.tails {
            let lines = tail.poll();
            if lines.is_empty() {
                continue;
            }
            let msg = if restoring {
                Msg::RestoredLog { step: *index, lines }
            } else {
                Msg::Drive(Update::Output { step: *index, stream: OutputStream::Stdout, lines: lines.into() })
            };
            let _ = update(app, msg);
        }
    }

    fn check_driver(&mut self, app: &mut App) {
        let driver = match lock::holder(&self.dir.path) {
            Some(holder) if holder.holding == Some(true) => {
                let pid = holder.pid.map(|p| format!("pid {p}")).unwrap_or_default();
                let host = holder.host.map(|h| format!(" on {h}")).unwrap_or_default();
                Driver::Running(format!("{pid}{host}"))
            }
            Some(holder) if holder.holding == Some(false) => Driver::NotRunning,
            Some(_) => Driver::Unknown,
            None => Driver::NotRunning,
        };
        if driver != self.driver {
            self.driver = driver.clone();
            let _ = update(app, Msg::Driver(driver));
        }
    }
}
