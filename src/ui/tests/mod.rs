//! Tests of the TUI without a terminal: `update` driven by messages, and
//! insta snapshots of whole screens rendered into a `TestBackend` at 80x24
//! and 200x60. The test plays the conductor's part by hand: it journals
//! records (stamped in memory) and asks questions, and checks the answers
//! and requests `update` sends back. Times and ids are fixed, so the
//! snapshots need no redaction.

mod snapshots;
mod update;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Effect, Msg};
use super::theme::Theme;
use super::update::{start_form, update};
use crate::drill::event::{AttemptResult, Event, SessionMode};
use crate::drill::journal::Record;
use crate::drill::state::DrillState;
use crate::drive::{Question, Update};
use crate::runbook::{self, Runbook};

pub const DRILL_ID: &str = "01900000-0000-7000-8000-000000000001";

pub fn t0() -> Timestamp {
    "2026-11-27T03:00:00Z".parse().unwrap()
}

pub fn demo() -> Arc<Runbook> {
    Arc::new(
        runbook::parse("runbooks/backup-verification.toml", include_str!("../../../runbooks/backup-verification.toml"))
            .unwrap(),
    )
}

/// Every step kind in a fixed order, for the update tests: a manual brief,
/// commands with and without confirmation, S3, Kubernetes, a checklist.
pub fn walkthrough() -> Arc<Runbook> {
    Arc::new(runbook::parse("walkthrough.toml", include_str!("walkthrough.toml")).unwrap())
}

pub fn runbook(text: &str) -> Arc<Runbook> {
    Arc::new(runbook::parse("test.toml", text).unwrap())
}

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ch(c: char) -> Msg {
    key(KeyCode::Char(c))
}

/// The app, and a journal kept in memory for what the test journals in the
/// conductor's place.
pub struct Harness {
    pub app: App,
    pub journal: Vec<Record<Event>>,
    pub clock: Timestamp,
    questions: u64,
}

impl Harness {
    /// A harness on the start screen.
    pub fn start(runbook: Arc<Runbook>) -> Self {
        // The demo's project, as `drillbook demo` gives it.
        let given = if runbook.id == "backup-verification" {
            BTreeMap::from([("project".to_string(), "acme".to_string())])
        } else {
            BTreeMap::new()
        };
        let form = start_form(&runbook, &given, &BTreeMap::new(), &[]);
        let mut app = App::new(runbook, form, t0(), Theme { color: true });
        app.size = (120, 40);
        Harness { app, journal: Vec::new(), clock: t0(), questions: 0 }
    }

    /// A harness with the drill opened (variables from defaults).
    pub fn opened(runbook: Arc<Runbook>) -> Self {
        Self::open(runbook, false)
    }

    /// A harness watching a drill another process drives (`drillbook
    /// watch`): read-only, records arrive with [`Harness::record`].
    pub fn watching(runbook: Arc<Runbook>) -> Self {
        Self::open(runbook, true)
    }

    fn open(runbook: Arc<Runbook>, watching: bool) -> Self {
        let mut harness = Self::start(runbook.clone());
        if watching {
            harness.app.watch = Some(crate::ui::app::Watch::default());
        }
        let vars: BTreeMap<String, String> =
            harness.app.start.fields.iter().map(|f| (f.var.name.clone(), f.input.value().to_string())).collect();
        let started = Event::DrillStarted {
            drill_id: DRILL_ID.into(),
            runbook_id: runbook.id.clone(),
            runbook_title: runbook.title.clone(),
            runbook_path: "runbooks/backup-verification.toml".into(),
            runbook_sha256: runbook.sha256.clone(),
            operator: "alice".into(),
            host: "dr-laptop".into(),
            drillbook_version: "test".into(),
            training: true,
            rto_target_secs: runbook.rto_target.map(|d| d.as_secs()),
            rpo_target_secs: runbook.rpo_target.map(|d| d.as_secs()),
            project: None,
            cadence: None,
            vars,
            secret_vars: Vec::new(),
            steps: crate::drive::session::step_outlines(&runbook),
        };
        let first = harness.stamp(started);
        let session = harness.stamp(Event::SessionStarted {
            pid: 1,
            host: "dr-laptop".into(),
            mode: SessionMode::Tui,
            resumed: false,
            previous_alive_at: None,
            operator: None,
        });
        let mut state = DrillState::replay(std::slice::from_ref(&first)).unwrap();
        state.apply(&session).unwrap();
        harness.journal = vec![first, session];
        let opened = Update::Opened {
            id: DRILL_ID.into(),
            dir: "/drills/x".into(),
            state: Box::new(state),
            notices: Vec::new(),
            resumed: false,
        };
        harness.send(Msg::Drive(opened));
        harness
    }

    fn stamp(&mut self, event: Event) -> Record<Event> {
        self.clock = self.clock.checked_add(jiff::SignedDuration::from_secs(7)).unwrap();
        Record { seq: self.journal.len() as u64 + 1, ts: self.clock, prev: String::new(), event }
    }

    /// Journals an event in the conductor's place and shows it to the app.
    pub fn record(&mut self, event: Event) -> Vec<Effect> {
        let record = self.stamp(event);
        self.journal.push(record.clone());
        self.send(Msg::Drive(Update::Recorded(vec![record])))
    }

    /// Asks a question in the conductor's place; returns its id.
    pub fn ask(&mut self, question: Question) -> u64 {
        self.questions += 1;
        let id = self.questions;
        self.send(Msg::Drive(Update::Ask { id, question }));
        id
    }

    pub fn send(&mut self, msg: Msg) -> Vec<Effect> {
        update(&mut self.app, msg)
    }

    /// The step with this id starts an attempt (a command's, with a log, when `logged`).
    pub fn starts(&mut self, id: &str, logged: bool) -> Vec<Effect> {
        let attempt = self.app.drill.as_ref().unwrap().step(id).unwrap().attempt_count() + 1;
        self.record(Event::StepStarted {
            step: id.into(),
            attempt,
            command: logged.then(|| format!("run {id}")),
            log: logged.then(|| format!("logs/{id}.{attempt}.log")),
        })
    }

    /// The running attempt of step `id` ends: a command with its exit code.
    pub fn ends(&mut self, id: &str, exit_code: i32) -> Vec<Effect> {
        let attempt = self.app.drill.as_ref().unwrap().step(id).unwrap().attempt_count();
        let result = if exit_code == 0 { AttemptResult::Succeeded } else { AttemptResult::Failed };
        self.record(Event::StepFinished {
            step: id.into(),
            attempt,
            result,
            exit_code: Some(exit_code),
            reason: (exit_code != 0).then(|| format!("exit code {exit_code} (expected 0)")),
            duration_ms: 1500,
            log_sha256: Some("ab".repeat(32)),
        })
    }

    /// A step done by hand ends well.
    pub fn done_by_hand(&mut self, id: &str) -> Vec<Effect> {
        let attempt = self.app.drill.as_ref().unwrap().step(id).unwrap().attempt_count();
        self.record(Event::finished_by_hand(id, attempt, AttemptResult::Succeeded, None, 0))
    }

    pub fn status_of(&self, id: &str) -> String {
        self.app.drill.as_ref().unwrap().step(id).unwrap().status.label().to_string()
    }
}
