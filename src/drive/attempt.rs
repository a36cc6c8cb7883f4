//! One attempt of a step: its number, its log file (for steps that are not
//! shell commands), and the events that end it, so every runner ends its
//! attempts the same way.

use std::io::Write;

use super::session::DrillSession;
use crate::drill::event::{AttemptResult, Event};
use crate::engine::command::{CommandOutcome, CommandStatus};
use crate::engine::command_step::{self, PreparedCommand};
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
        .map_err(|e| e.to_string())
}

/// The journaled end of a command attempt that ran to its end (not one
/// cut short by drillbook stopping).
pub fn command_finished(step: &Step, attempt: u32, outcome: &CommandOutcome) -> Event {
    let result = match &outcome.status {
        CommandStatus::Succeeded => AttemptResult::Succeeded,
        CommandStatus::Failed { .. } => AttemptResult::Failed,
        CommandStatus::TimedOut { .. } => AttemptResult::TimedOut,
        CommandStatus::Cancelled => AttemptResult::Cancelled,
    };
    Event::StepFinished {
        step: step.id.clone(),
        attempt,
        result,
        exit_code: outcome.exit_code,
        reason: (!outcome.status.is_success()).then(|| outcome.status.describe()),
        duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        log_sha256: Some(outcome.log_sha256.clone()),
    }
}

/// The log file of a step that is not a shell command (S3, Kubernetes,
/// HTTP): what it reported, line by line, like a command's log.
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
        self.lines(std::slice::from_ref(&line));
    }

    pub fn lines<S: AsRef<str>>(&mut self, lines: &[S]) {
        if let Some(file) = &mut self.file {
            for line in lines {
                let _ = writeln!(file, "{}", line.as_ref());
            }
            let _ = file.flush();
        }
    }
}
