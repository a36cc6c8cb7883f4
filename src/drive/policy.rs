//! How an unattended drill (`--yes`) answers each question, the same
//! whatever the front-end: confirmations are given, pickers take their
//! default, an interrupted step runs again, manual steps and checklists
//! are not performed (a machine cannot do them), and a failed step is
//! retried once when the drill resumes after it.

use super::protocol::{Answer, Question};
use super::session::DrillSession;

/// The reason an unattended drill gives for not doing a manual step.
pub const MANUAL_NEEDS_A_PERSON: &str = "non-interactive run (--yes): a manual step needs a person";
/// The reason an unattended drill gives for not ticking a checklist.
pub const CHECKLIST_NEEDS_A_PERSON: &str = "non-interactive run (--yes): a checklist needs a person";
pub fn answer(question: &Question, session: &DrillSession) -> Answer {
    match question {
        Question::Confirm { typed: Some(expected), .. } => Answer::Typed(expected.clone()),
        Question::Confirm { typed: None, .. } => Answer::Yes,
        Question::Pick { default, .. } => default.map_or(Answer::NoPick, Answer::Pick),
        Question::Manual { .. } => Answer::Skip { reason: MANUAL_NEEDS_A_PERSON.into() },
        Question::Checklist { .. } => Answer::Skip { reason: CHECKLIST_NEEDS_A_PERSON.into() },
        Question::Interrupted { .. } => Answer::Again,
        Question::Failed { step, .. } if failed_before_this_session(session, *step) => Answer::Again,
        Question::Failed { .. } => Answer::Stop,
    }
}

/// Whether the step's last attempt failed in an earlier session: a
/// scheduled drill resumed after a failure gets one more try.
fn failed_before_this_session(session: &DrillSession, step: usize) -> bool {
    let state = &session.state;
    let Some(current) = state.sessions.last() else { return false };
    state.sessions.len() > 1
        && state.steps.get(step).and_then(|s| s.attempts.last()).is_some_and(|a| a.started_at < current.started_at)
}
