//! `sql-check`: run the queries against the restored database (in training,
//! against the sandbox's), compare the fingerprint with the previous
//! completed drill of the runbook, journal everything as evidence, then
//! fail the step if a check or the comparison says so.

use std::time::Instant;

use tokio::sync::mpsc;

use super::super::{Conductor, Halt};
use crate::drill::event::{DrillOutcome, Event};
use crate::drill::evidence::Evidence;
use crate::drill::state::DrillState;
use crate::drill::store::DrillStore;
use crate::engine::sql::{self, Baseline, SqlError, SqlStep};
use crate::runbook::template::CaptureValue;
use crate::runbook::{SqlCheckSpec, Step};

impl Conductor {
    pub(in crate::drive) async fn sql_check(
        &mut self,
        index: usize,
        step: &Step,
        spec: &SqlCheckSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let rendered = match SqlStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        let training = self.session.state.training;
        let describe = if training {
            format!("{} (training: the sandbox database)", rendered.describe())
        } else {
            rendered.describe()
        };
        let (attempt, mut log) = self.start_logged(step, describe).await?;
        let baseline = if rendered.fingerprint { self.baseline(&step.id) } else { None };
        let (sender, events) = mpsc::channel(64);
        let (cancel, id) = (self.attempt_token(), step.id.clone());
        let task = tokio::spawn(async move {
            if training {
                Ok(sql::sandbox::run(&rendered, &id, baseline.as_ref(), &sender).await)
            } else {
                sql::run(&rendered, &id, baseline.as_ref(), &sender, &cancel).await
            }
        });
        match self.follow(index, Some(&mut log), false, events, task).await? {
            Ok(outcome) => {
                // The evidence first, whatever the verdict: what was found is kept.
                self.record(Event::Evidence { step: step.id.clone(), evidence: sql::evidence(&outcome) }).await?;
                for (name, value) in &outcome.captures {
                    let value = CaptureValue::plain(value.clone());
                    self.record(Event::CaptureSet { step: step.id.clone(), name: name.clone(), value }).await?;
                }
                if !outcome.warnings.is_empty() {
                    let lines =
                        outcome.warnings.iter().map(|w| format!("warning (on_shrink = \"warn\"): {w}")).collect();
                    self.say(index, &mut log, lines).await;
                }
                let failure = match outcome.failures.as_slice() {
                    [] => None,
                    [one] => Some(one.clone()),
                    [first, rest @ ..] => Some(format!("{first} (and {} more)", rest.len())),
                };
                self.end_logged(step, attempt, began, &mut log, failure).await
            }
            Err(SqlError::Cancelled) if self.leaving.is_some() => {
                self.say(index, &mut log, vec!["`drillbook resume` runs the checks again".into()]).await;
                self.interrupted(step, attempt, None).await
            }
            Err(error) => self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
        }
    }

    /// The fingerprint this step recorded in the newest earlier completed
    /// drill of the same runbook (training compares with training only).
    fn baseline(&self, step_id: &str) -> Option<Baseline> {
        let here = &self.session.dir;
        let store = DrillStore::at(here.path.parent()?.parent()?.to_path_buf());
        let state = &self.session.state;
        let earlier = store.list().ok()?.into_iter().rev().filter(|drill| drill.id < here.id);
        for drill in earlier {
            let Ok(replay) = crate::drill::journal::read::<Event>(&drill.journal()) else { continue };
            let Ok(past) = DrillState::replay(&replay.records) else { continue };
            if past.runbook_id != state.runbook_id
                || past.training != state.training
                || past.finished.as_ref().is_none_or(|f| f.outcome != DrillOutcome::Completed)
            {
                continue;
            }
            let fingerprint = past.steps.iter().find(|s| s.outline.id == step_id).and_then(|s| match &s.evidence {
                Some(Evidence::Sql(result)) => result.fingerprint.clone(),
                _ => None,
            });
            if let Some(fingerprint) = fingerprint {
                return Some(Baseline { drill: past.drill_id, started: past.started_at, fingerprint });
            }
        }
        None
    }
}
