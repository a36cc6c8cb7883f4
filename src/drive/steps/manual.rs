//! Steps a person does: a manual step (read, do, mark done) and a
//! checklist (tick each item, then finish). Nothing runs; the attempt is
//! open while the operator works, and its duration is how long they took.

use std::time::Instant;

use super::super::attempt::next_attempt;
use super::super::protocol::{Answer, Question};
use super::super::{Conductor, Halt, elapsed_ms};
use crate::drill::event::{AttemptResult, Event, SkipCause};
use crate::runbook::{Action, Step};

impl Conductor {
    pub(in crate::drive) async fn manual(&mut self, index: usize, step: &Step) -> Result<(), Halt> {
        let Some((attempt, started, id)) = self.open_by_hand(step, Question::Manual { step: index }).await? else {
            return Ok(());
        };
        loop {
            match self.answer_to(id, &step.id).await? {
                Answer::Done { note } => return self.done_by_hand(step, attempt, started, note, None).await,
                Answer::Skip { reason } => {
                    if let Some(reason) = self.reason_given(&reason).await {
                        return self.skipped_by_hand(step, reason).await;
                    }
                }
                Answer::Abort { note } => return self.abort_by_hand(step, attempt, note).await,
                _ => {}
            }
        }
    }

    pub(in crate::drive) async fn checklist(&mut self, index: usize, step: &Step) -> Result<(), Halt> {
        let Some((attempt, started, id)) = self.open_by_hand(step, Question::Checklist { step: index }).await? else {
            return Ok(());
        };
        loop {
            match self.answer_to(id, &step.id).await? {
                Answer::Tick { item, ticked } => {
                    let Some(text) = step.checklist_item(item) else { continue };
                    let tick = Event::ChecklistTicked { step: step.id.clone(), item, text: text.to_string(), ticked };
                    self.record(tick).await?;
                }
                Answer::ItemFailed { item, note } => {
                    let Some(text) = step.checklist_item(item) else { continue };
                    let Some(note) = self.reason_given(&note).await else { continue };
                    let failed =
                        Event::ChecklistItemFailed { step: step.id.clone(), item, text: text.to_string(), note };
                    self.record(failed).await?;
                }
                Answer::Done { note } => {
                    let failure = self.checklist_failure(step);
                    return self.done_by_hand(step, attempt, started, note, failure).await;
                }
                Answer::Skip { reason } => {
                    if let Some(reason) = self.reason_given(&reason).await {
                        return self.skipped_by_hand(step, reason).await;
                    }
                }
                Answer::Abort { note } => return self.abort_by_hand(step, attempt, note).await,
                _ => {}
            }
        }
    }

    /// Opens the attempt of a step done by hand and asks the question that
    /// stays open while the operator works. `None`: the unattended policy
    /// answered (the step is journaled as not performed).
    async fn open_by_hand(&mut self, step: &Step, question: Question) -> Result<Option<(u32, Instant, u64)>, Halt> {
        if self.options.unattended {
            let Answer::Skip { reason } = super::super::policy::answer(&question, &self.session) else {
                return Ok(None);
            };
            let kind =
                if matches!(step.action, Action::Checklist(_)) { "tick a checklist" } else { "do a manual step" };
            self.notice(format!("  skipped: --yes cannot {kind}; recorded as skipped")).await;
            let skipped = Event::StepSkipped { step: step.id.clone(), cause: SkipCause::NonInteractive, reason };
            self.record(skipped).await?;
            return Ok(None);
        }
        let attempt = next_attempt(&self.session, step);
        let started = Instant::now();
        self.record(Event::StepStarted { step: step.id.clone(), attempt, command: None, log: None }).await?;
        let id = self.open_question(question).await;
        Ok(Some((attempt, started, id)))
    }

    /// Why a finished checklist failed: items marked failed (with what
    /// happened), then required items left unticked; `None`: it passed.
    fn checklist_failure(&self, step: &Step) -> Option<String> {
        let Action::Checklist(list) = &step.action else { return None };
        let state = self.session.state.step(&step.id)?;
        let failed: Vec<String> = state
            .failed_items
            .iter()
            .filter_map(|(item, note)| Some(format!("`{}` failed: {note}", list.items.get(*item)?.text)))
            .collect();
        if !failed.is_empty() {
            return Some(failed.join("; "));
        }
        let not_done: Vec<&str> = list
            .items
            .iter()
            .enumerate()
            .filter(|(i, item)| item.required && !state.ticked(*i))
            .map(|(_, item)| item.text.as_str())
            .collect();
        (!not_done.is_empty()).then(|| format!("not done: {}", not_done.join("; ")))
    }

    async fn done_by_hand(
        &mut self,
        step: &Step,
        attempt: u32,
        started: Instant,
        note: Option<String>,
        failure: Option<String>,
    ) -> Result<(), Halt> {
        if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
            self.record(Event::NoteAdded { step: Some(step.id.clone()), text: note }).await?;
        }
        let result = if failure.is_some() { AttemptResult::Failed } else { AttemptResult::Succeeded };
        self.record(Event::finished_by_hand(&step.id, attempt, result, failure, elapsed_ms(started))).await
    }

    async fn skipped_by_hand(&mut self, step: &Step, reason: String) -> Result<(), Halt> {
        self.record(Event::StepSkipped { step: step.id.clone(), cause: SkipCause::Operator, reason }).await
    }

    /// The operator aborts the drill from a step done by hand: the step is
    /// cut short and skipped, then only the teardown runs.
    async fn abort_by_hand(&mut self, step: &Step, attempt: u32, note: Option<String>) -> Result<(), Halt> {
        if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
            self.record(Event::NoteAdded { step: Some(step.id.clone()), text: note }).await?;
        }
        let id = step.id.clone();
        self.record(Event::StepInterrupted { step: id.clone(), attempt, reason: "drill aborted".into() }).await?;
        self.record(Event::StepSkipped { step: id, cause: SkipCause::Operator, reason: "drill aborted".into() })
            .await?;
        self.begin_abort().await
    }
}
