//! What a drill demonstrated, decided from its journal alone: its verdict
//! (passed, passed with deviations, failed, aborted, incomplete), the
//! findings that decided it, whether the recovery time was achieved and
//! whether the restored backup's age (RPO) was demonstrated.
//!
//! The rules, as an auditor reads them: a required step (every step not
//! `optional`) that was skipped, declined or marked done, a step that failed
//! and was skipped past or failed for good, or a teardown that did not run
//! (DR left running) fails the drill. Skipped optional steps, steps an
//! unattended drill could not perform, retries, interruptions and notes make
//! it pass with deviations. The recovery time counts only when every required
//! step before the teardown succeeded; the backup's age counts only for a
//! backup that was restored.

use super::event::{DrillOutcome, SkipCause};
use super::state::{DeviationKind, DrillState, StepState, StepStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    PassedWithDeviations,
    Failed,
    Aborted,
    /// Not finished (paused, or still running).
    Incomplete,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::PassedWithDeviations => "passed with deviations",
            Outcome::Failed => "failed",
            Outcome::Aborted => "aborted",
            Outcome::Incomplete => "incomplete",
        }
    }

    /// Whether the drill demonstrated what it set out to (the exit code of
    /// `run --plain` is 0 only then).
    pub fn passed(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::PassedWithDeviations)
    }
}

/// One thing that departs from the runbook, and how much it weighs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The step it is about (none for the drill as a whole).
    pub step: Option<String>,
    pub kind: FindingKind,
    /// What happened and why, in words (the operator's reason included).
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Manual steps and checklists an unattended drill cannot perform; listed first.
    NotPerformedUnattended,
    TeardownNotRun,
    RequiredFailed,
    FailedSkippedPast,
    RequiredSkipped,
    Declined,
    MarkedDone,
    Aborted,
    OptionalSkipped,
    OptionalFailed,
    Retried,
    Interrupted,
    Note,
}

impl FindingKind {
    /// Whether it fails the drill.
    pub fn fails_the_drill(self) -> bool {
        matches!(
            self,
            FindingKind::TeardownNotRun
                | FindingKind::RequiredFailed
                | FindingKind::FailedSkippedPast
                | FindingKind::RequiredSkipped
                | FindingKind::Declined
                | FindingKind::MarkedDone
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            FindingKind::NotPerformedUnattended => "not performed (unattended)",
            FindingKind::TeardownNotRun => "teardown did not run",
            FindingKind::RequiredFailed => "required step failed",
            FindingKind::FailedSkippedPast => "failed, then skipped",
            FindingKind::RequiredSkipped => "required step skipped",
            FindingKind::Declined => "confirmation declined",
            FindingKind::MarkedDone => "marked done",
            FindingKind::Aborted => "aborted",
            FindingKind::OptionalSkipped => "optional step skipped",
            FindingKind::OptionalFailed => "optional step failed",
            FindingKind::Retried => "retried",
            FindingKind::Interrupted => "interrupted",
            FindingKind::Note => "note",
        }
    }
}

/// Whether the recovery it measures was demonstrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Demonstrated {
    Yes,
    /// Why not (never a PASS).
    No(String),
    /// Nothing to measure yet (no step ran).
    NothingYet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Most serious first; the first ones decided the outcome.
    pub findings: Vec<Finding>,
    /// The recovery time counts (every required step before teardown succeeded).
    pub rto: Demonstrated,
    /// The backup's age counts (its restore succeeded).
    pub rpo: Demonstrated,
}

impl Verdict {
    /// The findings that decided a failed drill (or all, when it passed with deviations).
    pub fn deciding(&self) -> impl Iterator<Item = &Finding> {
        let failed = self.outcome == Outcome::Failed;
        self.findings.iter().filter(move |f| !failed || f.kind.fails_the_drill())
    }
}

pub fn verdict(state: &DrillState) -> Verdict {
    let mut findings = Vec::new();
    for step in &state.steps {
        step_findings(state, step, &mut findings);
    }
    for deviation in &state.deviations {
        let kind = match &deviation.kind {
            DeviationKind::Retried { .. } => FindingKind::Retried,
            DeviationKind::Interrupted { .. } => FindingKind::Interrupted,
            _ => continue,
        };
        let text = match &deviation.kind {
            DeviationKind::Retried { reason } => format!("run again: {reason}"),
            DeviationKind::Interrupted { attempt, reason } => format!("attempt {attempt} interrupted: {reason}"),
            _ => String::new(),
        };
        findings.push(Finding { step: Some(deviation.step.clone()), kind, text });
    }
    for note in &state.notes {
        findings.push(Finding { step: note.step.clone(), kind: FindingKind::Note, text: note.text.clone() });
    }
    let finished = state.finished.as_ref().map(|f| f.outcome);
    if finished == Some(DrillOutcome::Aborted) {
        let text = state.finished.as_ref().and_then(|f| f.reason.clone()).unwrap_or_else(|| "aborted".into());
        findings.push(Finding { step: None, kind: FindingKind::Aborted, text });
    }
    findings.sort_by_key(|f| f.kind);
    let outcome = match finished {
        None => Outcome::Incomplete,
        Some(DrillOutcome::Aborted) => Outcome::Aborted,
        Some(_) if findings.iter().any(|f| f.kind.fails_the_drill()) => Outcome::Failed,
        Some(_) if !findings.is_empty() => Outcome::PassedWithDeviations,
        Some(_) => Outcome::Passed,
    };
    Verdict { outcome, rto: rto(state, finished), rpo: backup_restored(state), findings }
}

fn step_findings(state: &DrillState, step: &StepState, findings: &mut Vec<Finding>) {
    let id = &step.outline.id;
    let optional = step.outline.optional;
    let failed_before =
        step.attempts.iter().any(|a| a.result.is_some_and(|r| r != super::event::AttemptResult::Succeeded));
    let mut push = |kind, text: String| findings.push(Finding { step: Some(id.clone()), kind, text });
    if step.outline.always {
        match &step.status {
            StepStatus::Succeeded | StepStatus::Skipped { cause: SkipCause::Condition, .. } => {}
            status => push(FindingKind::TeardownNotRun, format!("{}: DR left running", teardown_status(status))),
        }
        return;
    }
    match &step.status {
        StepStatus::Skipped { cause: SkipCause::Condition, .. } | StepStatus::Succeeded => {}
        StepStatus::Skipped { cause: SkipCause::NonInteractive, reason } => {
            push(FindingKind::NotPerformedUnattended, reason.clone());
        }
        StepStatus::Skipped { cause, reason } => {
            let declined = *cause == SkipCause::Declined || reason == "not confirmed";
            let kind = match (optional, failed_before, declined) {
                (true, _, _) => FindingKind::OptionalSkipped,
                (false, true, _) => FindingKind::FailedSkippedPast,
                (false, false, true) => FindingKind::Declined,
                (false, false, false) => FindingKind::RequiredSkipped,
            };
            push(kind, reason.clone());
        }
        StepStatus::MarkedDone { note } if optional => {
            push(FindingKind::OptionalSkipped, format!("marked done: {note}"))
        }
        StepStatus::MarkedDone { note } => push(FindingKind::MarkedDone, note.clone()),
        StepStatus::Failed { reason } if optional => push(FindingKind::OptionalFailed, reason.clone()),
        StepStatus::Failed { reason } => push(FindingKind::RequiredFailed, reason.clone()),
        // Not reached: the drill stopped or was aborted before it (said by
        // the outcome and the failed step), or it is still to come.
        StepStatus::Pending | StepStatus::Running { .. } | StepStatus::Interrupted { .. } => {
            let _ = state;
        }
    }
}

fn teardown_status(status: &StepStatus) -> String {
    match status {
        StepStatus::Skipped { reason, .. } => format!("skipped ({reason})"),
        StepStatus::Failed { reason } => format!("failed ({reason})"),
        StepStatus::MarkedDone { note } => format!("marked done ({note})"),
        StepStatus::Pending => "never ran".into(),
        other => other.label().to_string(),
    }
}

/// The recovery counts only when every required step before the teardown
/// succeeded (a `when` that was false is not a gap).
fn rto(state: &DrillState, finished: Option<DrillOutcome>) -> Demonstrated {
    if state.rto_window().is_none() {
        return Demonstrated::NothingYet;
    }
    if finished == Some(DrillOutcome::Aborted) {
        return Demonstrated::No("the drill was aborted".into());
    }
    let gap =
        state.steps.iter().filter(|s| !s.outline.always && !s.outline.optional).find(|s| {
            !matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped { cause: SkipCause::Condition, .. })
        });
    match gap {
        None if finished.is_some() => Demonstrated::Yes,
        None => Demonstrated::No("the drill has not finished".into()),
        Some(step) => Demonstrated::No(format!("`{}` {}", step.outline.id, gap_words(&step.status))),
    }
}

fn gap_words(status: &StepStatus) -> String {
    match status {
        StepStatus::Skipped { cause: SkipCause::NonInteractive, .. } => "was not performed (unattended)".into(),
        StepStatus::Skipped { reason, .. } => format!("was skipped: {reason}"),
        StepStatus::MarkedDone { note } => format!("was marked done without running: {note}"),
        StepStatus::Failed { reason } => format!("failed: {reason}"),
        StepStatus::Pending => "never ran".into(),
        StepStatus::Running { .. } => "is still running".into(),
        StepStatus::Interrupted { .. } => "was interrupted".into(),
        StepStatus::Succeeded => "succeeded".into(),
    }
}

/// The backup's age counts only for a backup that was restored: a step that
/// uses the backup's capture succeeded. (Journals from before steps recorded
/// what they use: the first command step after the backup's.) Also asked
/// while the drill runs, so that nothing shows an RPO verdict too early.
pub fn backup_restored(state: &DrillState) -> Demonstrated {
    let backup = state.captures.iter().find(|(_, (_, capture))| capture.fields.contains_key("age_secs"));
    let Some((name, (from, _))) = backup else { return Demonstrated::NothingYet };
    let recorded_uses = state.steps.iter().any(|s| !s.outline.uses.is_empty());
    let after = state.steps.iter().skip_while(|s| &s.outline.id != from).skip(1);
    let restores: Vec<&StepState> = if recorded_uses {
        after.filter(|s| s.outline.uses.iter().any(|u| u == name)).collect()
    } else {
        after.filter(|s| s.outline.kind == "command").take(1).collect()
    };
    match restores.iter().find(|s| s.status == StepStatus::Succeeded) {
        Some(_) => Demonstrated::Yes,
        None => match restores.first() {
            Some(step) => Demonstrated::No(format!(
                "the backup was not restored: `{}` {}",
                step.outline.id,
                gap_words(&step.status)
            )),
            None => Demonstrated::No(format!("no step restored the backup `{name}` captured")),
        },
    }
}
