//! Tests of the TUI without a terminal: `update` driven by messages (with a
//! fake runtime that journals in memory and answers effects the way the
//! real one does), and insta snapshots of whole screens rendered into a
//! `TestBackend` at 80x24 and 200x60. Times and ids are fixed, so the
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
use crate::drill::event::{Event, SessionMode};
use crate::drill::journal::Record;
use crate::drill::state::DrillState;
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

/// What the harness reports it was asked to run for a step.
fn effect_for(app: &App, step: usize) -> Effect {
    match app.runbook.steps[step].action {
        crate::runbook::Action::S3Backup(_) | crate::runbook::Action::S3Check(_) => Effect::RunS3 { step },
        crate::runbook::Action::K8sImageTag(_)
        | crate::runbook::Action::K8sWait(_)
        | crate::runbook::Action::K8sScale(_) => Effect::RunK8s { step },
        crate::runbook::Action::HttpCheck(_) => Effect::RunHttp { step },
        _ => Effect::RunCommand { step },
    }
}

/// The app and a journal kept in memory, answering effects like the runtime.
pub struct Harness {
    pub app: App,
    pub journal: Vec<Record<Event>>,
    /// Effects the fake runtime did not carry out itself (RunCommand, Quit, OpenUrl...).
    pub pending: Vec<Effect>,
    pub clock: Timestamp,
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
        Harness { app, journal: Vec::new(), pending: Vec::new(), clock: t0() }
    }

    /// A harness with the drill already started (variables from defaults).
    pub fn opened(runbook: Arc<Runbook>) -> Self {
        Self::open(runbook, false)
    }

    /// A harness watching a drill another process drives (`drillbook
    /// watch`): read-only, records arrive with [`Harness::follow`].
    pub fn watching(runbook: Arc<Runbook>) -> Self {
        Self::open(runbook, true)
    }

    /// Another process journals an event; the watcher follows it.
    pub fn follow(&mut self, event: Event) -> Vec<Effect> {
        let record = self.journal_event(event);
        self.send(Msg::Followed(vec![record]))
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
            vars,
            secret_vars: Vec::new(),
            steps: crate::engine::session::step_outlines(&runbook),
        };
        let first = harness.stamp(started);
        let session = harness.stamp(Event::SessionStarted {
            pid: 1,
            host: "dr-laptop".into(),
            mode: SessionMode::Tui,
            resumed: false,
        });
        let mut state = DrillState::replay(std::slice::from_ref(&first)).unwrap();
        state.apply(&session).unwrap();
        harness.journal = vec![first, session];
        harness.app.in_flight = 1;
        harness.send(Msg::DrillOpened { id: DRILL_ID.into(), state: Box::new(state), notices: Vec::new() });
        harness
    }

    fn stamp(&mut self, event: Event) -> Record<Event> {
        self.clock = self.clock.checked_add(jiff::SignedDuration::from_secs(7)).unwrap();
        Record { seq: self.journal.len() as u64 + 1, ts: self.clock, prev: String::new(), event }
    }

    /// Journals an event as the runtime would and returns the record.
    pub fn journal_event(&mut self, event: Event) -> Record<Event> {
        let record = self.stamp(event);
        self.journal.push(record.clone());
        record
    }

    /// Sends a message and carries out journal effects until things settle.
    pub fn send(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = update(&mut self.app, msg);
        let mut seen = Vec::new();
        while !effects.is_empty() {
            let mut next = Vec::new();
            for effect in effects {
                seen.push(effect.clone());
                match effect {
                    Effect::Record(event) => {
                        let record = self.journal_event(event);
                        next.extend(update(&mut self.app, Msg::EffectDone(vec![record])));
                    }
                    Effect::FailStep { step, reason } => {
                        let id = self.app.runbook.steps[step].id.clone();
                        let a = self.journal_event(Event::StepStarted {
                            step: id.clone(),
                            attempt: 1,
                            command: None,
                            log: None,
                        });
                        let b = self.journal_event(Event::StepFinished {
                            step: id,
                            attempt: 1,
                            result: crate::drill::event::AttemptResult::Failed,
                            exit_code: None,
                            reason: Some(reason),
                            duration_ms: 0,
                            log_sha256: None,
                        });
                        next.extend(update(&mut self.app, Msg::EffectDone(vec![a, b])));
                    }
                    Effect::RunCommand { step }
                    | Effect::RunS3 { step }
                    | Effect::RunK8s { step }
                    | Effect::RunHttp { step } => {
                        let id = self.app.runbook.steps[step].id.clone();
                        let attempt = self.app.drill.as_ref().unwrap().steps[step].attempt_count() + 1;
                        let record = self.journal_event(Event::StepStarted {
                            step: id.clone(),
                            attempt,
                            command: Some(format!("run {id}")),
                            log: Some(format!("logs/{id}.{attempt}.log")),
                        });
                        self.pending.push(effect_for(&self.app, step));
                        next.extend(update(&mut self.app, Msg::EffectDone(vec![record])));
                    }
                    // As the runtime does when nothing was left running.
                    Effect::StopLeftovers => next.extend(update(&mut self.app, Msg::EffectDone(Vec::new()))),
                    other => self.pending.push(other),
                }
            }
            effects = next;
        }
        seen
    }

    /// The running command ends (as the runtime reports it).
    pub fn command_ends(&mut self, exit_code: i32) -> Vec<Effect> {
        let step = self.app.running_command().expect("a command runs");
        let state = &self.app.drill.as_ref().unwrap().steps[step];
        let (id, attempt) = (state.outline.id.clone(), state.attempt_count());
        let result = if exit_code == 0 {
            crate::drill::event::AttemptResult::Succeeded
        } else {
            crate::drill::event::AttemptResult::Failed
        };
        let record = self.journal_event(Event::StepFinished {
            step: id,
            attempt,
            result,
            exit_code: Some(exit_code),
            reason: (exit_code != 0).then(|| format!("exit code {exit_code} (expected 0)")),
            duration_ms: 1500,
            log_sha256: Some("ab".repeat(32)),
        });
        self.send(Msg::StepEnded(vec![record]))
    }

    pub fn status_of(&self, id: &str) -> String {
        self.app.drill.as_ref().unwrap().step(id).unwrap().status.label().to_string()
    }

    pub fn events(&self) -> Vec<String> {
        self.journal
            .iter()
            .map(|r| serde_json::to_value(&r.event).unwrap()["type"].as_str().unwrap().to_string())
            .collect()
    }
}
