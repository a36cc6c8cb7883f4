//! One drill in a few fields: what the shared archive keeps beside each
//! drill (`summary.json`) and what the fleet register reads, so a register
//! of thousands of drills never reads a journal.

use serde::{Deserialize, Serialize};

use super::{Objective, Report};

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub drill_id: String,
    /// The runbook's `project`, rendered (`None`: the runbook names none).
    #[serde(default)]
    pub project: Option<String>,
    pub runbook_id: String,
    pub runbook_title: String,
    /// The runbook's `cadence` as written (`quarterly`, `30d`).
    #[serde(default)]
    pub cadence: Option<String>,
    #[serde(default)]
    pub training: bool,
    pub operator: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `passed`, `passed with deviations`, `failed`, `aborted` or `incomplete`.
    pub outcome: String,
    pub rto: ObjectiveSummary,
    pub rpo: ObjectiveSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_data: Option<ObjectiveSummary>,
}

/// An objective in three fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectiveSummary {
    pub target_secs: Option<u64>,
    pub achieved_secs: Option<u64>,
    /// `PASS`, `FAIL`, `n/a`, `not achieved`, `not demonstrated`.
    pub verdict: String,
}

impl From<&Objective> for ObjectiveSummary {
    fn from(objective: &Objective) -> Self {
        ObjectiveSummary {
            target_secs: objective.target_secs,
            achieved_secs: objective.achieved_secs,
            verdict: objective.verdict.clone(),
        }
    }
}

impl Summary {
    pub fn of(report: &Report, project: Option<String>, cadence: Option<String>) -> Summary {
        Summary {
            drill_id: report.drill_id.clone(),
            project,
            runbook_id: report.runbook.id.clone(),
            runbook_title: report.runbook.title.clone(),
            cadence,
            training: report.training,
            operator: report.operator.clone(),
            started_at: report.started_at.clone(),
            ended_at: report.finished_at.clone(),
            outcome: report.outcome.clone(),
            rto: (&report.rto).into(),
            rpo: (&report.rpo).into(),
            rpo_data: report.rpo_data.as_ref().map(Into::into),
        }
    }
}

/// The summary of a drill, from its state.
pub fn summary(state: &crate::drill::state::DrillState) -> Summary {
    let report = super::build(state, None);
    Summary::of(&report, state.project.clone(), state.cadence.clone())
}
