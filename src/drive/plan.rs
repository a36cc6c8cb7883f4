//! What happens next in a drill, decided from the runbook and the replayed
//! state alone, so a resumed drill continues exactly where it stopped.

use crate::drill::event::DrillOutcome;
use crate::drill::state::{DrillState, StepStatus};
use crate::runbook::{OnFailure, Runbook};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run the step at this index.
    Run(usize),
    /// The step at this index was interrupted: the operator chooses re-run,
    /// mark done or skip.
    Decide(usize),
    /// Nothing is left to run.
    Finish(DrillOutcome),
}

/// A failed step that stops the drill (not optional, `on_failure = "stop"`).
pub fn blocking_failure(runbook: &Runbook, state: &DrillState) -> Option<usize> {
    state.steps.iter().enumerate().position(|(index, step)| {
        matches!(step.status, StepStatus::Failed { .. })
            && runbook.steps.get(index).is_some_and(|s| !s.optional && s.on_failure == OnFailure::Stop)
    })
}

fn settled(status: &StepStatus) -> bool {
    matches!(
        status,
        StepStatus::Succeeded | StepStatus::Skipped { .. } | StepStatus::MarkedDone { .. } | StepStatus::Failed { .. }
    )
}

/// The next thing to do. `aborting`: the operator aborted the drill; only
/// teardown (`always = true`) steps still run.
pub fn next(runbook: &Runbook, state: &DrillState, aborting: bool) -> Next {
    let stopping = aborting || blocking_failure(runbook, state).is_some();
    for (index, step) in state.steps.iter().enumerate() {
        let always = runbook.steps.get(index).is_some_and(|s| s.always);
        if stopping && !always {
            continue;
        }
        match step.status {
            StepStatus::Pending | StepStatus::Running { .. } => return Next::Run(index),
            StepStatus::Interrupted { .. } => return Next::Decide(index),
            ref status if settled(status) => {}
            _ => {}
        }
    }
    if aborting {
        return Next::Finish(DrillOutcome::Aborted);
    }
    let failed = state.steps.iter().enumerate().any(|(index, step)| {
        matches!(step.status, StepStatus::Failed { .. }) && runbook.steps.get(index).is_some_and(|s| !s.optional)
    });
    Next::Finish(if failed { DrillOutcome::Failed } else { DrillOutcome::Completed })
}
