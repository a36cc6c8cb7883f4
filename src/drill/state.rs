//! The drill's state, rebuilt only by replaying the journal. `apply` is the
//! one place that gives events their meaning; the live process uses it too,
//! so what is on screen is always what a resume would see.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::event::{AttemptResult, DrillOutcome, Event, FileOrigin, SessionMode, SkipCause, StepOutline};
use super::evidence::Evidence;
use super::journal::Record;
use crate::runbook::template::CaptureValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running {
        attempt: u32,
    },
    Succeeded,
    Failed {
        reason: String,
    },
    Skipped {
        cause: SkipCause,
        reason: String,
    },
    MarkedDone {
        note: String,
    },
    /// The attempt was cut short (the process died or was stopped).
    Interrupted {
        attempt: u32,
    },
}

impl StepStatus {
    pub fn label(&self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running { .. } => "running",
            StepStatus::Succeeded => "done",
            StepStatus::Failed { .. } => "failed",
            StepStatus::Skipped { .. } => "skipped",
            StepStatus::MarkedDone { .. } => "marked done",
            StepStatus::Interrupted { .. } => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub number: u32,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub result: Option<AttemptResult>,
    pub interrupted: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub duration_ms: Option<u64>,
    pub command: Option<String>,
    pub log: Option<String>,
    pub log_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepState {
    pub outline: StepOutline,
    pub status: StepStatus,
    pub attempts: Vec<Attempt>,
    /// Checklist item index → ticked.
    pub ticks: BTreeMap<usize, bool>,
    /// Checklist item index → why it failed (a tick clears it).
    pub failed_items: BTreeMap<usize, String>,
    pub confirmations: Vec<String>,
    pub settled_at: Option<Timestamp>,
    /// The latest journaled evidence (backup object, image tag, scale plan,
    /// what a wait saw, how a URL answered).
    pub evidence: Option<Evidence>,
    /// Screenshots the step took and files attached to it, in journal order.
    pub files: Vec<EvidenceFile>,
}

/// A file kept as evidence (see [`Event::FileAttached`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceFile {
    /// Relative to the drill directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub origin: FileOrigin,
    pub label: String,
    pub note: Option<String>,
    pub by: Option<String>,
    pub at: Timestamp,
}

impl StepState {
    pub fn attempt_count(&self) -> u32 {
        self.attempts.last().map_or(0, |a| a.number)
    }

    /// The journaled choice (backup object, tag), if the attempt before
    /// `current` was interrupted: a resumed step continues with the same
    /// object. After a failure the operator gets to choose afresh.
    pub fn resumable_choice(&self, current: Option<u32>) -> Option<&Evidence> {
        let previous = self.attempts.iter().rev().find(|a| current.is_none_or(|c| a.number < c))?;
        previous.interrupted.as_ref().and(self.evidence.as_ref())
    }

    pub fn ticked(&self, item: usize) -> bool {
        self.ticks.get(&item).copied().unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub step: Option<String>,
    pub text: String,
    pub at: Timestamp,
}

/// The drill changed hands (through the shared archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    pub at: Timestamp,
    pub from: String,
    pub to: String,
    pub taken_over: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub pid: u32,
    pub host: String,
    /// Who drove in this session.
    pub operator: String,
    pub mode: SessionMode,
    pub resumed: bool,
    pub started_at: Timestamp,
    /// Time of the last event this session wrote.
    pub last_event_at: Timestamp,
    /// The last moment the process was known to run: its last event, or a
    /// later heartbeat the next session found.
    pub alive_until: Timestamp,
    pub end_reason: Option<String>,
}

/// Someone who took part in the drill, with their role.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    pub name: String,
    pub role: String,
    pub at: Timestamp,
}

/// Follow-up work the drill revealed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionItem {
    pub text: String,
    pub owner: Option<String>,
    pub step: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Debrief {
    pub went_well: String,
    pub to_improve: String,
    pub at: Timestamp,
}

/// A departure from the straight path through the runbook, when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Deviation {
    pub at: Timestamp,
    pub step: String,
    pub kind: DeviationKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviationKind {
    /// An attempt that ended in anything but success.
    Failed {
        attempt: u32,
        result: AttemptResult,
        exit_code: Option<i32>,
        reason: Option<String>,
    },
    /// An attempt cut short (drillbook stopped or died while it ran).
    Interrupted {
        attempt: u32,
        reason: String,
    },
    /// The operator ran a failed or interrupted step again.
    Retried {
        reason: String,
    },
    Skipped {
        cause: SkipCause,
        reason: String,
    },
    /// The operator declared the step done without (re-)running it.
    MarkedDone {
        note: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub outcome: DrillOutcome,
    pub reason: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrillState {
    pub drill_id: String,
    pub runbook_id: String,
    pub runbook_title: String,
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub operator: String,
    pub host: String,
    pub drillbook_version: String,
    pub training: bool,
    pub rto_target: Option<Duration>,
    pub rpo_target: Option<Duration>,
    pub project: Option<String>,
    pub cadence: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub secret_vars: Vec<String>,
    pub started_at: Timestamp,
    pub last_event_at: Timestamp,
    pub steps: Vec<StepState>,
    /// Capture name → (step that made it, value).
    pub captures: BTreeMap<String, (String, CaptureValue)>,
    /// Shared, not copied, when a front-end takes its copy of the state: a
    /// long drill holds many (100,000 notes cost 11 ms to copy as strings).
    pub notes: Vec<Arc<Note>>,
    pub sessions: Vec<Session>,
    pub finished: Option<Finish>,
    /// Every failed attempt, interruption, retry, skip and step marked done, in journal order.
    pub deviations: Vec<Deviation>,
    pub participants: Vec<Participant>,
    /// Every hand-off to another operator or machine, in order.
    pub handoffs: Vec<HandOff>,
    pub action_items: Vec<ActionItem>,
    /// The latest debrief.
    pub debrief: Option<Debrief>,
    pub event_count: usize,
    pub last_seq: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplayError {
    #[error("the journal is empty")]
    Empty,
    #[error("journal record {seq}: the first event must be drill_started")]
    NotStarted { seq: u64 },
    #[error("journal record {seq}: a second drill_started event")]
    StartedTwice { seq: u64 },
    #[error("journal record {seq}: unknown step `{step}` (the journal does not match its runbook)")]
    UnknownStep { seq: u64, step: String },
}

/// Rebuilds a [`DrillState`] one record at a time, as a journal is read
/// (`Journal::open_each`): the first error is kept and the rest ignored.
#[derive(Debug, Default)]
pub struct Replayer {
    built: Option<Result<DrillState, ReplayError>>,
}

impl Replayer {
    /// Applies the next record of the journal.
    pub fn feed(&mut self, record: Record<Event>) {
        match &mut self.built {
            None => self.built = Some(DrillState::start(&record)),
            Some(Ok(state)) => {
                if let Err(error) = state.apply_owned(record) {
                    self.built = Some(Err(error));
                }
            }
            Some(Err(_)) => {}
        }
    }

    /// The state after every record fed, or the first error.
    pub fn finish(self) -> Result<DrillState, ReplayError> {
        self.built.unwrap_or(Err(ReplayError::Empty))
    }
}

impl DrillState {
    /// Rebuilds the state from every record of a journal.
    pub fn replay(records: &[Record<Event>]) -> Result<Self, ReplayError> {
        let (first, rest) = records.split_first().ok_or(ReplayError::Empty)?;
        let mut state = Self::start(first)?;
        for record in rest {
            state.apply(record)?;
        }
        Ok(state)
    }

    fn start(record: &Record<Event>) -> Result<Self, ReplayError> {
        let Event::DrillStarted {
            drill_id,
            runbook_id,
            runbook_title,
            runbook_path,
            runbook_sha256,
            operator,
            host,
            drillbook_version,
            training,
            rto_target_secs,
            rpo_target_secs,
            project,
            cadence,
            vars,
            secret_vars,
            steps,
        } = &record.event
        else {
            return Err(ReplayError::NotStarted { seq: record.seq });
        };
        Ok(DrillState {
            drill_id: drill_id.clone(),
            runbook_id: runbook_id.clone(),
            runbook_title: runbook_title.clone(),
            runbook_path: runbook_path.clone(),
            runbook_sha256: runbook_sha256.clone(),
            operator: operator.clone(),
            host: host.clone(),
            drillbook_version: drillbook_version.clone(),
            training: *training,
            rto_target: rto_target_secs.map(Duration::from_secs),
            rpo_target: rpo_target_secs.map(Duration::from_secs),
            project: project.clone(),
            cadence: cadence.clone(),
            vars: vars.clone(),
            secret_vars: secret_vars.clone(),
            started_at: record.ts,
            last_event_at: record.ts,
            steps: steps
                .iter()
                .map(|outline| StepState {
                    outline: outline.clone(),
                    status: StepStatus::Pending,
                    attempts: Vec::new(),
                    ticks: BTreeMap::new(),
                    failed_items: BTreeMap::new(),
                    confirmations: Vec::new(),
                    settled_at: None,
                    evidence: None,
                    files: Vec::new(),
                })
                .collect(),
            captures: BTreeMap::new(),
            notes: Vec::new(),
            sessions: Vec::new(),
            finished: None,
            deviations: Vec::new(),
            participants: Vec::new(),
            handoffs: Vec::new(),
            action_items: Vec::new(),
            debrief: None,
            event_count: 1,
            last_seq: record.seq,
        })
    }

    pub fn step(&self, id: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.outline.id == id)
    }

    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.outline.id == id)
    }

    fn step_mut(&mut self, seq: u64, id: &str) -> Result<&mut StepState, ReplayError> {
        self.steps
            .iter_mut()
            .find(|s| s.outline.id == id)
            .ok_or_else(|| ReplayError::UnknownStep { seq, step: id.to_string() })
    }

    /// [`DrillState::apply`] for a record the caller no longer needs (a
    /// replay): a note, what a long journal is mostly made of, is moved into
    /// the state instead of copied.
    pub fn apply_owned(&mut self, record: Record<Event>) -> Result<(), ReplayError> {
        let (seq, at) = (record.seq, record.ts);
        self.advance_clock(seq, at, &record.event);
        match record.event {
            Event::NoteAdded { step, text } => self.add_note(seq, Note { step, text, at }),
            event => self.apply_event(seq, at, &event),
        }
    }

    /// A note, on the drill or on a step the runbook has.
    fn add_note(&mut self, seq: u64, note: Note) -> Result<(), ReplayError> {
        if let Some(step) = &note.step {
            self.step_mut(seq, step)?;
        }
        self.notes.push(Arc::new(note));
        Ok(())
    }

    /// The counters and clocks every record moves.
    fn advance_clock(&mut self, seq: u64, at: Timestamp, event: &Event) {
        self.event_count += 1;
        self.last_seq = seq;
        // Annotations may come long after the drill (`drillbook action`): they
        // move no clock. A new session does not extend the previous one: the
        // time between them is time no drillbook process ran.
        if !event.is_annotation() {
            self.last_event_at = at;
            if let Some(session) = self.sessions.last_mut()
                && !matches!(event, Event::SessionStarted { .. })
            {
                session.last_event_at = at;
                session.alive_until = session.alive_until.max(at);
            }
        }
    }

    /// Applies one more record.
    pub fn apply(&mut self, record: &Record<Event>) -> Result<(), ReplayError> {
        self.advance_clock(record.seq, record.ts, &record.event);
        self.apply_event(record.seq, record.ts, &record.event)
    }

    /// What the event itself changes.
    fn apply_event(&mut self, seq: u64, at: Timestamp, event: &Event) -> Result<(), ReplayError> {
        match event {
            Event::DrillStarted { .. } => return Err(ReplayError::StartedTwice { seq }),
            Event::HandedOff { from, to, taken_over } => {
                self.handoffs.push(HandOff { at, from: from.clone(), to: to.clone(), taken_over: *taken_over });
            }
            Event::SessionStarted { pid, host, mode, resumed, previous_alive_at, operator } => {
                // A new process: whatever the previous one was running died
                // with it, when it was last known alive.
                if let (Some(previous), Some(alive)) = (self.sessions.last_mut(), previous_alive_at) {
                    previous.alive_until = previous.alive_until.max(*alive).min(at);
                }
                let last_alive = self.sessions.last().map_or(at, |s| s.alive_until);
                self.interrupt_running("drillbook stopped while the step ran", last_alive);
                self.finished = None;
                self.sessions.push(Session {
                    pid: *pid,
                    host: host.clone(),
                    operator: operator.clone().unwrap_or_else(|| self.operator.clone()),
                    mode: *mode,
                    resumed: *resumed,
                    started_at: at,
                    last_event_at: at,
                    alive_until: at,
                    end_reason: None,
                });
            }
            Event::SessionEnded { reason } => {
                if let Some(session) = self.sessions.last_mut() {
                    session.end_reason = Some(reason.clone());
                }
            }
            Event::StepStarted { step, attempt, command, log } => {
                let state = self.step_mut(seq, step)?;
                state.status = StepStatus::Running { attempt: *attempt };
                state.settled_at = None;
                state.attempts.push(Attempt {
                    number: *attempt,
                    started_at: at,
                    finished_at: None,
                    result: None,
                    interrupted: None,
                    exit_code: None,
                    reason: None,
                    duration_ms: None,
                    command: command.clone(),
                    log: log.clone(),
                    log_sha256: None,
                });
            }
            Event::StepConfirmed { step, how } => {
                self.step_mut(seq, step)?.confirmations.push(how.clone());
            }
            Event::Evidence { step, evidence } => {
                self.step_mut(seq, step)?.evidence = Some(evidence.clone());
            }
            Event::CaptureSet { step, name, value } => {
                self.step_mut(seq, step)?;
                self.captures.insert(name.clone(), (step.clone(), value.clone()));
            }
            Event::ChecklistTicked { step, item, ticked, .. } => {
                let state = self.step_mut(seq, step)?;
                state.ticks.insert(*item, *ticked);
                state.failed_items.remove(item);
            }
            Event::ChecklistItemFailed { step, item, note, .. } => {
                let state = self.step_mut(seq, step)?;
                state.ticks.insert(*item, false);
                state.failed_items.insert(*item, note.clone());
            }
            Event::NoteAdded { step, text } => {
                self.add_note(seq, Note { step: step.clone(), text: text.clone(), at })?
            }
            Event::StepFinished { step, attempt, result, exit_code, reason, duration_ms, log_sha256 } => {
                let state = self.step_mut(seq, step)?;
                state.status = match result {
                    AttemptResult::Succeeded => StepStatus::Succeeded,
                    _ => StepStatus::Failed {
                        reason: reason.clone().unwrap_or_else(|| format!("{result:?}").to_lowercase()),
                    },
                };
                state.settled_at = Some(at);
                if let Some(last) = state.attempts.iter_mut().rev().find(|a| a.number == *attempt) {
                    last.finished_at = Some(at);
                    last.result = Some(*result);
                    last.exit_code = *exit_code;
                    last.reason = reason.clone();
                    last.duration_ms = Some(*duration_ms);
                    last.log_sha256 = log_sha256.clone();
                }
                if *result != AttemptResult::Succeeded {
                    self.deviate(
                        at,
                        step,
                        DeviationKind::Failed {
                            attempt: *attempt,
                            result: *result,
                            exit_code: *exit_code,
                            reason: reason.clone(),
                        },
                    );
                }
            }
            Event::StepInterrupted { step, attempt, reason } => {
                let state = self.step_mut(seq, step)?;
                state.status = StepStatus::Interrupted { attempt: *attempt };
                if let Some(last) = state.attempts.iter_mut().rev().find(|a| a.number == *attempt) {
                    last.finished_at = Some(at);
                    last.interrupted = Some(reason.clone());
                }
                self.deviate(at, step, DeviationKind::Interrupted { attempt: *attempt, reason: reason.clone() });
            }
            Event::StepSkipped { step, cause, reason } => {
                let state = self.step_mut(seq, step)?;
                state.status = StepStatus::Skipped { cause: *cause, reason: reason.clone() };
                state.settled_at = Some(at);
                self.deviate(at, step, DeviationKind::Skipped { cause: *cause, reason: reason.clone() });
            }
            Event::StepReset { step, reason } => {
                let state = self.step_mut(seq, step)?;
                state.status = StepStatus::Pending;
                state.settled_at = None;
                self.deviate(at, step, DeviationKind::Retried { reason: reason.clone() });
            }
            Event::StepMarkedDone { step, note } => {
                let state = self.step_mut(seq, step)?;
                state.status = StepStatus::MarkedDone { note: note.clone() };
                state.settled_at = Some(at);
                self.deviate(at, step, DeviationKind::MarkedDone { note: note.clone() });
            }
            Event::DrillFinished { outcome, reason } => {
                self.finished = Some(Finish { outcome: *outcome, reason: reason.clone(), at });
            }
            Event::ParticipantAdded { name, role } => {
                self.participants.push(Participant { name: name.clone(), role: role.clone(), at });
            }
            Event::ActionItemAdded { text, owner, step } => {
                if let Some(step) = step {
                    self.step_mut(seq, step)?;
                }
                self.action_items.push(ActionItem { text: text.clone(), owner: owner.clone(), step: step.clone(), at });
            }
            Event::DebriefRecorded { went_well, to_improve } => {
                self.debrief = Some(Debrief { went_well: went_well.clone(), to_improve: to_improve.clone(), at });
            }
            // Journaled for the record; the drill's state and verdict do not depend on it.
            Event::NotificationFailed { .. } => {}
            Event::FileAttached { step, path, sha256, bytes, origin, label, note, by } => {
                let file = EvidenceFile {
                    path: path.clone(),
                    sha256: sha256.clone(),
                    bytes: *bytes,
                    origin: *origin,
                    label: label.clone(),
                    note: note.clone(),
                    by: by.clone(),
                    at,
                };
                self.step_mut(seq, step)?.files.push(file);
            }
        }
        Ok(())
    }

    fn deviate(&mut self, at: Timestamp, step: &str, kind: DeviationKind) {
        self.deviations.push(Deviation { at, step: step.to_string(), kind });
    }

    /// `at`: the last moment the process that ran them was known alive.
    fn interrupt_running(&mut self, why: &str, at: Timestamp) {
        let mut interrupted = Vec::new();
        for step in &mut self.steps {
            if let StepStatus::Running { attempt } = step.status {
                step.status = StepStatus::Interrupted { attempt };
                if let Some(last) = step.attempts.last_mut()
                    && last.finished_at.is_none()
                {
                    last.interrupted = Some(why.to_string());
                }
                interrupted.push((step.outline.id.clone(), attempt));
            }
        }
        for (step, attempt) in interrupted {
            self.deviate(at, &step, DeviationKind::Interrupted { attempt, reason: why.to_string() });
        }
    }

    /// Called by the process that now holds the drill's lock: a step still
    /// "running" in the journal cannot be running anywhere.
    pub fn mark_orphans_interrupted(&mut self) {
        let at = self.sessions.last().map_or(self.last_event_at, |s| s.alive_until);
        self.interrupt_running("drillbook stopped while the step ran", at);
    }

    /// Wall-clock time from start to finish (or to the last event).
    pub fn elapsed(&self) -> Duration {
        let end = self.finished.as_ref().map_or(self.last_event_at, |f| f.at);
        span(self.started_at, end)
    }

    /// Time some drillbook process was working on the drill: the sum of each
    /// session's span. `elapsed() - active_time()` is time nobody ran it.
    pub fn active_time(&self) -> Duration {
        self.sessions.iter().map(|s| span(s.started_at, s.alive_until)).sum()
    }

    /// What RTO measures: from the start of the first step to the end of the
    /// last step that is not teardown (`always` steps do not count against
    /// it). While such a step runs, up to the last event. `None` before any
    /// non-teardown step started.
    pub fn rto_window(&self) -> Option<(Timestamp, Timestamp)> {
        let main = || self.steps.iter().filter(|s| !s.outline.always);
        let from = main().flat_map(|s| s.attempts.iter().map(|a| a.started_at)).min()?;
        let running = main().any(|s| matches!(s.status, StepStatus::Running { .. }));
        let to = if running && self.finished.is_none() {
            self.last_event_at
        } else {
            main()
                .flat_map(|s| s.settled_at.into_iter().chain(s.attempts.iter().filter_map(|a| a.finished_at)))
                .max()
                .unwrap_or(from)
        };
        Some((from, to.max(from)))
    }

    /// Time within `from..to` when no drillbook process was working on the
    /// drill (between one session's last event and the next one's start).
    pub fn offline_within(&self, from: Timestamp, to: Timestamp) -> Duration {
        let mut spans: Vec<(Timestamp, Timestamp)> = self
            .sessions
            .iter()
            .map(|s| (s.started_at.max(from), s.alive_until.min(to)))
            .filter(|(start, end)| start < end)
            .collect();
        spans.sort();
        let mut covered = Duration::ZERO;
        let mut reached = from;
        for (start, end) in spans {
            let start = start.max(reached);
            if end > start {
                covered += span(start, end);
                reached = end;
            }
        }
        span(from, to).saturating_sub(covered)
    }

    pub fn capture(&self, name: &str) -> Option<&CaptureValue> {
        self.captures.get(name).map(|(_, value)| value)
    }

    /// The step currently running, if any.
    pub fn running_step(&self) -> Option<&StepState> {
        self.steps.iter().find(|s| matches!(s.status, StepStatus::Running { .. }))
    }
}

fn span(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}
