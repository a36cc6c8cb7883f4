//! What every interface does around a step: the events that start and end
//! an attempt, in one place, so the plain runner and the TUI journal the
//! same facts the same way.

use super::command::{CommandOutcome, CommandStatus};
use super::command_step::{self, PreparedCommand};
use super::session::{DrillSession, SessionError};
use crate::drill::event::{AttemptResult, Event};
use crate::runbook::template::CaptureValue;
use crate::runbook::{Action, Step};

/// The attempt number the next run of a step gets.
pub fn next_attempt(session: &DrillSession, step: &Step) -> u32 {
    session.state.step(&step.id).map_or(0, |s| s.attempt_count()) + 1
}

/// Renders a command step for its next attempt. `Err`: a template failed.
pub fn prepare_command(session: &DrillSession, step: &Step) -> Result<(u32, PreparedCommand), String> {
    let Action::Command(spec) = &step.action else {
        return Err(format!("step `{}` is not a command", step.id));
    };
    let attempt = next_attempt(session, step);
    let context = session.template_context();
    let training = session.state.training.then_some(session.dir.path.as_path());
    command_step::prepare(&step.id, spec, &context, session.templater(), &session.dir, attempt, training)
        .map(|prepared| (attempt, prepared))
}

/// Journals the start of a command attempt.
pub fn record_command_start(
    session: &mut DrillSession,
    step: &Step,
    attempt: u32,
    prepared: &PreparedCommand,
) -> Result<(), SessionError> {
    let log = prepared
        .request
        .log_path
        .strip_prefix(&session.dir.path)
        .unwrap_or(&prepared.request.log_path)
        .display()
        .to_string();
    session.record(Event::StepStarted {
        step: step.id.clone(),
        attempt,
        command: Some(prepared.display.clone()),
        log: Some(log),
    })
}

/// How a command attempt ended, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandEnd {
    Succeeded,
    Failed(String),
    /// Cut short by the operator stopping drillbook; resumable.
    Interrupted,
}

/// Journals the end of a command attempt: its capture, then how it ended.
/// `stopped_by`: the reason drillbook itself is stopping (signal, quit),
/// which turns a cancellation into an interruption.
pub fn record_command_end(
    session: &mut DrillSession,
    step: &Step,
    attempt: u32,
    outcome: &CommandOutcome,
    stopped_by: Option<&str>,
) -> Result<CommandEnd, SessionError> {
    if outcome.status == CommandStatus::Cancelled
        && let Some(reason) = stopped_by
    {
        session.record(Event::StepInterrupted { step: step.id.clone(), attempt, reason: reason.to_string() })?;
        return Ok(CommandEnd::Interrupted);
    }
    if let (Some(value), Action::Command(spec)) = (&outcome.captured, &step.action)
        && let Some(rule) = &spec.capture
        && outcome.status.is_success()
    {
        session.record(Event::CaptureSet {
            step: step.id.clone(),
            name: rule.name.clone(),
            value: CaptureValue::plain(value.clone()),
        })?;
    }
    let result = match &outcome.status {
        CommandStatus::Succeeded => AttemptResult::Succeeded,
        CommandStatus::Failed { .. } => AttemptResult::Failed,
        CommandStatus::TimedOut { .. } => AttemptResult::TimedOut,
        CommandStatus::Cancelled => AttemptResult::Cancelled,
    };
    let reason = (!outcome.status.is_success()).then(|| outcome.status.describe());
    session.record(Event::StepFinished {
        step: step.id.clone(),
        attempt,
        result,
        exit_code: outcome.exit_code,
        reason: reason.clone(),
        duration_ms: outcome.duration.as_millis() as u64,
        log_sha256: Some(outcome.log_sha256.clone()),
    })?;
    Ok(match reason {
        None => CommandEnd::Succeeded,
        Some(reason) => CommandEnd::Failed(reason),
    })
}

/// Journals a step that failed before anything could run (a template
/// error, an executor error, a kind this build cannot run).
pub fn record_failure_without_run(session: &mut DrillSession, step: &Step, reason: String) -> Result<(), SessionError> {
    let attempt = next_attempt(session, step);
    session.record(Event::StepStarted { step: step.id.clone(), attempt, command: None, log: None })?;
    session.record(Event::finished_by_hand(&step.id, attempt, AttemptResult::Failed, Some(reason), 0))
}

/// Journals the failure of an attempt that was already started (the
/// executor itself failed: spawn, log or pipe errors).
pub fn record_attempt_failed(
    session: &mut DrillSession,
    step: &Step,
    attempt: u32,
    reason: String,
) -> Result<(), SessionError> {
    session.record(Event::finished_by_hand(&step.id, attempt, AttemptResult::Failed, Some(reason), 0))
}

/// The log file of a step that is not a shell command (S3, Kubernetes):
/// what it reported, line by line, like a command's log.
pub struct StepLog {
    file: Option<std::io::BufWriter<std::fs::File>>,
    pub relative: String,
}

impl StepLog {
    pub fn create(session: &DrillSession, step: &Step, attempt: u32) -> StepLog {
        let path = session.dir.log_file(&step.id, attempt);
        let relative = path.strip_prefix(&session.dir.path).unwrap_or(&path).display().to_string();
        let file = std::fs::File::create(&path).ok().map(std::io::BufWriter::new);
        StepLog { file, relative }
    }

    pub fn line(&mut self, line: &str) {
        use std::io::Write;
        if let Some(file) = &mut self.file {
            let _ = writeln!(file, "{line}");
            let _ = file.flush();
        }
    }
}
