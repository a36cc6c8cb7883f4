//! A shell command step: rendered, confirmed where the runbook asks, run in
//! its own process group with output streamed (the engine logs and masks
//! it), its capture and its end journaled.

use std::time::Instant;

use tokio::sync::mpsc;

use super::super::attempt::{command_finished, prepare_command};
use super::super::{Conductor, Halt};
use crate::drill::event::Event;
use crate::engine::command::{CommandStatus, run_command};
use crate::runbook::template::CaptureValue;
use crate::runbook::{Action, Step};

impl Conductor {
    pub(in crate::drive) async fn command(&mut self, index: usize, step: &Step, began: Instant) -> Result<(), Halt> {
        let (attempt, prepared) = match prepare_command(&self.session, step) {
            Ok(prepared) => prepared,
            Err(reason) => return self.fail_without_running(step, began, reason).await,
        };
        if !self.confirm(index, step, step.confirm, &prepared.display, None).await? {
            return Ok(());
        }
        let log = prepared.request.log_path.strip_prefix(&self.session.dir.path).unwrap_or(&prepared.request.log_path);
        let started = Event::StepStarted {
            step: step.id.clone(),
            attempt,
            command: Some(prepared.display.clone()),
            log: Some(log.display().to_string()),
        };
        self.record(started).await?;
        let (sender, events) = mpsc::channel(64);
        let task = tokio::spawn(run_command(prepared.request, sender, self.attempt_token()));
        let outcome = match self.follow(index, None, false, events, task).await? {
            Ok(outcome) => outcome,
            Err(error) => {
                let failed = Event::finished_by_hand(
                    &step.id,
                    attempt,
                    crate::drill::event::AttemptResult::Failed,
                    Some(error.to_string()),
                    super::super::elapsed_ms(began),
                );
                return self.record(failed).await;
            }
        };
        if outcome.status == CommandStatus::Cancelled && self.leaving.is_some() {
            return self.interrupted(step, attempt, None).await;
        }
        let mut finished = command_finished(step, attempt, &outcome);
        if let Event::StepFinished { reason, .. } = &mut finished
            && outcome.status == CommandStatus::Cancelled
            && self.stopping_step
        {
            *reason = Some(super::STOPPED.into());
        }
        if let (Some(value), Action::Command(spec)) = (&outcome.captured, &step.action)
            && let Some(rule) = &spec.capture
            && outcome.status.is_success()
        {
            let capture = Event::CaptureSet {
                step: step.id.clone(),
                name: rule.name.clone(),
                value: CaptureValue::plain(value.clone()),
            };
            self.record(capture).await?;
        }
        self.record(finished).await
    }
}
