//! One process's hold on one drill: the lock, the open journal, the runbook
//! snapshot and the replayed state. Every decision goes through
//! [`DrillSession::record`], which journals it durably *before* the state
//! changes, so what the process believes is always what a resume would see.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::drill::event::{Event, SessionMode, StepOutline};
use crate::drill::journal::{Journal, JournalError, Record, TornTail};
use crate::drill::lock::{DrillLock, LockError};
use crate::drill::state::{DrillState, ReplayError, Replayer};
use crate::drill::store::{DrillDir, DrillStore, StoreError};
use crate::engine::vars::ResolvedVars;
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{self, Action, Runbook};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{journal}: {source}")]
    Replay { journal: PathBuf, source: ReplayError },
    #[error(
        "the drill's runbook snapshot {path} is unreadable or was modified (its SHA-256 no longer matches the journal): {why}"
    )]
    Snapshot { path: PathBuf, why: String },
    #[error("drill {id} is already {state}: nothing to resume (`drillbook report {id}` shows it)")]
    AlreadyFinished { id: String, state: &'static str },
}

/// What a resume found that the operator should be told.
#[derive(Debug, Default)]
pub struct ResumeNotice {
    /// A torn last journal line (crash mid-write), already set aside.
    pub torn: Option<TornTail>,
    /// The runbook file changed since the drill started; the snapshot is used.
    pub runbook_changed: Option<RunbookChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookChange {
    pub path: String,
    /// Step ids whose definition differs, or that were added or removed.
    pub changed_steps: Vec<String>,
    pub added_steps: Vec<String>,
    pub removed_steps: Vec<String>,
}

pub struct DrillSession {
    pub dir: DrillDir,
    pub runbook: Runbook,
    pub state: DrillState,
    journal: Journal<Event>,
    _lock: DrillLock,
    secrets: BTreeMap<String, String>,
    templater: Templater,
    /// Records appended since the last `take_new_records`, for an interface
    /// that mirrors the state (the TUI applies them to its own copy).
    new_records: Vec<Record<Event>>,
    /// The archive lease taken for this session (resume), handed to the shipper.
    lease: Option<crate::drive::lease::Lease>,
}

impl DrillSession {
    /// Starts a new drill: creates its directory, takes the lock and
    /// journals the start with the resolved (non-secret) variables.
    pub fn start(
        store: &DrillStore,
        runbook: Runbook,
        vars: ResolvedVars,
        mode: SessionMode,
        training: bool,
    ) -> Result<Self, SessionError> {
        let dir = store.create(&runbook.text, &runbook.sources)?;
        let lock = DrillLock::acquire(&dir.path)?;
        let journal = Journal::create(&dir.journal())?;
        let started = Event::DrillStarted {
            drill_id: dir.id.clone(),
            runbook_id: runbook.id.clone(),
            runbook_title: runbook.title.clone(),
            runbook_path: absolute(&runbook.path),
            runbook_sha256: runbook.sha256.clone(),
            operator: operator(),
            host: host(),
            drillbook_version: env!("CARGO_PKG_VERSION").to_string(),
            training,
            rto_target_secs: runbook.rto_target.map(|d| d.as_secs()),
            rpo_target_secs: runbook.rpo_target.map(|d| d.as_secs()),
            project: runbook.project.as_ref().map(|project| {
                let mut context = crate::runbook::template::TemplateContext::default();
                for (name, value) in &vars.values {
                    context.set_var(name, value);
                }
                Templater::new().render_plain(&project.text, &context).unwrap_or_else(|_| project.text.clone())
            }),
            cadence: runbook.cadence.as_ref().map(|(label, _)| label.clone()),
            vars: vars.values.clone(),
            secret_vars: vars.secrets.keys().cloned().collect(),
            steps: step_outlines(&runbook),
        };
        let mut journal = journal;
        let (seq, ts) = journal.append_stamped(&started)?;
        let record = Record { seq, ts, prev: String::new(), event: started };
        let state = DrillState::replay(std::slice::from_ref(&record))
            .map_err(|source| SessionError::Replay { journal: dir.journal(), source })?;
        let mut session = DrillSession::assemble(dir, runbook, state, journal, lock);
        session.set_secrets(vars.secrets);
        let started = Event::SessionStarted {
            pid: std::process::id(),
            host: host(),
            mode,
            resumed: false,
            previous_alive_at: None,
            operator: Some(operator()),
        };
        session.record(started)?;
        Ok(session)
    }

    /// Reopens a drill: lock, journal replay, runbook snapshot. Secrets are
    /// not journaled, so the caller supplies them again.
    pub fn resume(dir: DrillDir, mode: SessionMode) -> Result<(Self, ResumeNotice), SessionError> {
        Self::resume_handing_off(dir, mode, false)
    }

    /// [`DrillSession::resume`]; when the previous session was another operator's or
    /// machine's, the hand-off is journaled (`taken_over`: its expired lease was taken over).
    pub fn resume_handing_off(
        dir: DrillDir,
        mode: SessionMode,
        taken_over: bool,
    ) -> Result<(Self, ResumeNotice), SessionError> {
        // Read before taking the lock, which rewrites the file: when the last
        // holder was last alive (a crash journals nothing).
        let previous_alive_at = crate::drill::lock::last_alive(&dir.path);
        let lock = DrillLock::acquire(&dir.path)?;
        // Each record goes into the state as it is checked: a long journal is
        // never held decoded all at once.
        let mut replayer = Replayer::default();
        let (journal, torn) = Journal::<Event>::open_each(&dir.journal(), &mut |record| replayer.feed(record))?;
        let mut state = replayer.finish().map_err(|source| SessionError::Replay { journal: dir.journal(), source })?;
        if let Some(finish) = &state.finished {
            use crate::drill::event::DrillOutcome;
            match finish.outcome {
                DrillOutcome::Completed => {
                    return Err(SessionError::AlreadyFinished { id: dir.id, state: "completed" });
                }
                DrillOutcome::Aborted => return Err(SessionError::AlreadyFinished { id: dir.id, state: "aborted" }),
                DrillOutcome::Failed => {}
            }
        }
        state.mark_orphans_interrupted();
        let snapshot_path = dir.runbook_snapshot();
        let runbook = load_snapshot(&snapshot_path, &state)?;
        let runbook_changed = detect_change(&runbook, &state.runbook_path);
        let mut session = DrillSession::assemble(dir, runbook, state, journal, lock);
        let me = operator();
        let started = Event::SessionStarted {
            pid: std::process::id(),
            host: host(),
            mode,
            resumed: true,
            previous_alive_at,
            operator: Some(me.clone()),
        };
        let previous = session.state.sessions.last().map(|s| format!("{}@{}", s.operator, s.host));
        session.record(started)?;
        let to = format!("{me}@{}", host());
        if let Some(from) = previous.filter(|from| *from != to) {
            session.record(Event::HandedOff { from, to, taken_over })?;
        }
        Ok((session, ResumeNotice { torn, runbook_changed }))
    }

    fn assemble(dir: DrillDir, runbook: Runbook, state: DrillState, journal: Journal<Event>, lock: DrillLock) -> Self {
        DrillSession {
            dir,
            runbook,
            state,
            journal,
            _lock: lock,
            secrets: BTreeMap::new(),
            templater: Templater::new(),
            new_records: Vec::new(),
            lease: None,
        }
    }

    /// `operator@host`: who holds the drill's lease in the shared archive.
    pub fn holder(&self) -> String {
        holder()
    }

    /// The archive lease the command took before opening the drill, for its shipper.
    pub fn set_lease(&mut self, lease: crate::drive::lease::Lease) {
        self.lease = Some(lease);
    }

    pub fn take_lease(&mut self) -> Option<crate::drive::lease::Lease> {
        self.lease.take()
    }

    /// Journals who takes part (`--participant`), right after the start.
    pub fn record_participants(&mut self, participants: &[(String, String)]) -> Result<(), SessionError> {
        for (name, role) in participants {
            self.record(Event::ParticipantAdded { name: name.clone(), role: role.clone() })?;
        }
        Ok(())
    }

    /// Journals an event (durably) and then applies it to the state.
    pub fn record(&mut self, event: Event) -> Result<(), SessionError> {
        #[cfg(debug_assertions)]
        refuse_when_asked(&self.dir.journal(), &event)?;
        let (seq, ts) = self.journal.append_stamped(&event)?;
        let record = Record { seq, ts, prev: String::new(), event };
        self.state.apply(&record).map_err(|source| SessionError::Replay { journal: self.dir.journal(), source })?;
        self.new_records.push(record);
        Ok(())
    }

    /// Stops what attempts cut short (drillbook died or was stopped while they
    /// ran) left running, for an abort: the drill is abandoned, and its
    /// teardown must not race a restore that is still writing. What finished
    /// attempts left running on purpose (a port-forward for a later step) is
    /// left alone. Everything is stopped first, then what was stopped is
    /// journaled as a note on its step, so the report shows it; the notes are
    /// returned for the operator. Waits up to `grace` for a group that ignores
    /// SIGTERM before SIGKILL.
    pub fn stop_leftovers(&mut self, grace: std::time::Duration) -> Result<Vec<String>, SessionError> {
        let logs = self.dir.logs();
        let mut stopped = Vec::new();
        for step in &self.state.steps {
            let cut_short: Vec<u32> = step
                .attempts
                .iter()
                .filter(|attempt| attempt.result.is_none() || attempt.interrupted.is_some())
                .map(|attempt| attempt.number)
                .collect();
            if cut_short.is_empty() {
                continue;
            }
            for group in crate::engine::leftover::stop_attempts(&logs, &step.outline.id, &cut_short, grace) {
                stopped.push((step.outline.id.clone(), format!("drill aborted: {}", group.summary())));
            }
        }
        let mut notes = Vec::new();
        for (step, text) in stopped {
            self.record(Event::NoteAdded { step: Some(step.clone()), text: text.clone() })?;
            notes.push(format!("{step}: {text}"));
        }
        Ok(notes)
    }

    /// Keeps the lock file saying this process is alive (see [`crate::drill::lock::Heartbeat`]).
    pub fn heartbeat(&self) -> std::io::Result<crate::drill::lock::Heartbeat> {
        self._lock.heartbeat()
    }

    /// Records appended since the last call (including the session start).
    pub fn take_new_records(&mut self) -> Vec<Record<Event>> {
        std::mem::take(&mut self.new_records)
    }

    pub fn set_secrets(&mut self, secrets: BTreeMap<String, String>) {
        crate::engine::panic_redaction::remember(secrets.values());
        self.secrets = secrets;
    }

    /// The secret values this session holds (debug builds' forced panic shows
    /// them, to prove panic messages are masked).
    #[cfg(debug_assertions)]
    pub fn secret_values(&self) -> Vec<&str> {
        self.secrets.values().map(String::as_str).collect()
    }

    /// Secret variables that still need a value (after a resume).
    pub fn missing_secrets(&self) -> Vec<&runbook::VarDef> {
        self.runbook.vars.iter().filter(|v| v.secret && !self.secrets.contains_key(&v.name)).collect()
    }

    pub fn templater(&self) -> &Templater {
        &self.templater
    }

    /// The drill's report as of now, with the head of the journal's chain as
    /// this process wrote it.
    pub fn report(&self) -> crate::report::Report {
        crate::report::build(&self.state, Some(self.journal.head().to_string()))
    }

    /// Writes the drill's reports (Markdown, HTML, JSON, JUnit) into its
    /// directory; returns their paths.
    pub fn write_reports(&self) -> Result<Vec<std::path::PathBuf>, crate::report::WriteError> {
        crate::report::write_all(&self.dir.path, &self.report())
    }

    /// In training: creates the sandbox bucket and cluster the runbook
    /// needs (what is missing of them); says what it made.
    pub fn prepare_sandbox(&self) -> Result<Vec<String>, crate::engine::training::TrainingError> {
        if !self.state.training {
            return Ok(Vec::new());
        }
        crate::engine::training::prepare(&self.runbook, &self.template_context(), &self.templater, &self.dir.path)
    }

    /// The cluster every Kubernetes step uses in training (the sandbox's).
    pub fn k8s_context_override(&self) -> Option<String> {
        self.state.training.then(|| crate::engine::training::cluster_context(&self.dir.path))
    }

    /// The store every S3 step uses in training (the sandbox bucket).
    pub fn s3_endpoint_override(&self) -> Option<String> {
        self.state.training.then(|| crate::engine::training::s3_endpoint(&self.dir.path))
    }

    /// Variables, secrets and captures as templates see them now.
    pub fn template_context(&self) -> TemplateContext {
        let mut context = TemplateContext::new();
        for (name, value) in &self.state.vars {
            context.set_var(name, value);
        }
        for var in &self.runbook.vars {
            if let Some(value) = self.secrets.get(&var.name) {
                context.set_secret(&var.name, &var.secret_env_name(), value);
            }
        }
        for (name, (_, value)) in &self.state.captures {
            context.set_capture(name, value);
        }
        let mut fields = BTreeMap::new();
        fields.insert("id".to_string(), serde_json::Value::from(self.dir.id.clone()));
        fields.insert("dir".to_string(), serde_json::Value::from(self.dir.path.display().to_string()));
        fields.insert("downloads".to_string(), serde_json::Value::from(self.dir.downloads().display().to_string()));
        context.set_capture("drill", &crate::runbook::template::CaptureValue { value: self.dir.id.clone(), fields });
        context
    }
}

/// Debug builds only: with `DRILLBOOK_DEBUG_FAIL_JOURNAL=TYPE` (an event
/// type such as `capture_set`) the journal refuses that event as a full disk
/// would, so the tests can check that nothing goes on unrecorded. Release
/// builds never read the variable.
#[cfg(debug_assertions)]
fn refuse_when_asked(journal: &Path, event: &Event) -> Result<(), SessionError> {
    let Ok(refused) = std::env::var("DRILLBOOK_DEBUG_FAIL_JOURNAL") else { return Ok(()) };
    let kind = serde_json::to_value(event).ok().and_then(|v| v["type"].as_str().map(str::to_string));
    if kind.as_deref() != Some(refused.as_str()) {
        return Ok(());
    }
    let source = std::io::Error::from_raw_os_error(libc::ENOSPC);
    Err(SessionError::Journal(JournalError::Io { path: journal.to_path_buf(), op: "append", source }))
}

/// What the journal keeps of each step, so reports need no runbook.
pub fn step_outlines(runbook: &Runbook) -> Vec<StepOutline> {
    runbook.steps.iter().map(outline).collect()
}

fn outline(step: &runbook::Step) -> StepOutline {
    StepOutline {
        id: step.id.clone(),
        title: step.title.clone(),
        kind: step.kind.name().to_string(),
        always: step.always,
        optional: step.optional,
        checklist: match &step.action {
            Action::Checklist(list) => list.items.iter().map(|i| i.text.clone()).collect(),
            _ => Vec::new(),
        },
        uses: step.uses.clone(),
    }
}

/// The runbook snapshot of a drill, checked against its journal (read-only).
pub fn load_snapshot(path: &Path, state: &DrillState) -> Result<Runbook, SessionError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SessionError::Snapshot { path: path.to_path_buf(), why: e.to_string() })?;
    let runbook = runbook::parse(&state.runbook_path, &text)
        .map_err(|d| SessionError::Snapshot { path: path.to_path_buf(), why: d.to_string() })?;
    if runbook.sha256 != state.runbook_sha256 {
        return Err(SessionError::Snapshot { path: path.to_path_buf(), why: "hash mismatch".into() });
    }
    if runbook.steps.iter().map(|s| s.id.as_str()).ne(state.steps.iter().map(|s| s.outline.id.as_str())) {
        return Err(SessionError::Snapshot {
            path: path.to_path_buf(),
            why: "its steps differ from the journal's".into(),
        });
    }
    Ok(runbook)
}

/// Compares the runbook file on disk (if still there) with the snapshot.
fn detect_change(snapshot: &Runbook, path: &str) -> Option<RunbookChange> {
    let text = std::fs::read_to_string(path).ok()?;
    // A project file is compared as what it resolves to now.
    let text = if crate::project::is_project(&text) {
        crate::project::resolve(std::path::Path::new(path), &text).ok()?.runbook.text
    } else {
        text
    };
    if text == snapshot.text {
        return None;
    }
    let mut change = RunbookChange {
        path: path.to_string(),
        changed_steps: Vec::new(),
        added_steps: Vec::new(),
        removed_steps: Vec::new(),
    };
    match runbook::parse(path, &text) {
        Ok(current) => {
            for step in &snapshot.steps {
                match current.step(&step.id) {
                    None => change.removed_steps.push(step.id.clone()),
                    Some(other) if other.source != step.source => change.changed_steps.push(step.id.clone()),
                    Some(_) => {}
                }
            }
            for step in &current.steps {
                if snapshot.step(&step.id).is_none() {
                    change.added_steps.push(step.id.clone());
                }
            }
        }
        Err(_) => change.changed_steps.push("(the file on disk no longer validates)".to_string()),
    }
    Some(change)
}

/// The runbook's path as the report shows it; a bundled runbook (`(bundled) …`) is no file.
fn absolute(path: &Path) -> String {
    if path.to_string_lossy().starts_with("(bundled)") {
        return path.display().to_string();
    }
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

pub fn operator() -> String {
    // The configuration's operator ($DRILLBOOK_OPERATOR, the file, the login name); a
    // configuration that cannot be read was reported when the command started.
    crate::config::Config::load().map_or_else(
        |_| std::env::var("DRILLBOOK_OPERATOR").ok().filter(|s| !s.is_empty()).unwrap_or_else(whoami::username),
        |config| config.operator.value,
    )
}

/// `operator@host` of this process.
pub fn holder() -> String {
    format!("{}@{}", operator(), host())
}

pub fn host() -> String {
    whoami::fallible::hostname().unwrap_or_else(|_| "unknown".to_string())
}
