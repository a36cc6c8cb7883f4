//! The fleet register (`drillbook fleet`): for every project and runbook, the
//! last drill, how it went, its objectives, and when the next one is due.
//!
//! It reads only drill summaries (`summary.json` in the shared archive, or a
//! local drill's journal summarised on the spot), never an archived journal,
//! so a register of thousands of drills is a listing and a few thousand small
//! GETs. [`sources`] does that I/O; [`register`] is the pure computation
//! (given a fixed "now"); [`export`] and [`html`] render it as text, CSV,
//! JSON and one HTML dashboard; the TUI is `ui::fleet`.

pub mod cache;
pub mod export;
pub mod html;
pub mod register;
pub mod roster;
pub mod sources;

/// Shared with the screen's tests (`ui::fleet`): drills at a fixed "now".
#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;

use crate::report::summary::{ObjectiveSummary, Summary};

pub use register::{Options, register};
pub use roster::Roster;

/// One drill as the register sees it: its summary, and where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    pub summary: Summary,
    /// `summary.started_at`, parsed.
    pub started_at: Timestamp,
    /// This machine's drill directory, when the drill is in the local store.
    pub local_dir: Option<PathBuf>,
    /// Whether the shared archive holds its summary.
    pub archived: bool,
}

/// How a row stands, most urgent first (the order the register sorts by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Status {
    /// The last drill that ended failed or was aborted.
    #[serde(rename = "FAILED")]
    Failed,
    /// The next drill was due before now, or the project was never drilled.
    #[serde(rename = "OVERDUE")]
    Overdue,
    /// The next drill is due within [`Options::due_soon`].
    #[serde(rename = "DUE SOON")]
    DueSoon,
    #[serde(rename = "OK")]
    Ok,
    /// Its project file was deleted from the drill repository: kept in the
    /// register with its history, never due.
    #[serde(rename = "RETIRED")]
    Retired,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Failed => "FAILED",
            Status::Overdue => "OVERDUE",
            Status::DueSoon => "DUE SOON",
            Status::Ok => "OK",
            Status::Retired => "RETIRED",
        }
    }

    /// What a monitoring job alerts on (`--plain` exits 1).
    pub fn needs_attention(self) -> bool {
        matches!(self, Status::Failed | Status::Overdue)
    }

    pub const ALL: [Status; 5] = [Status::Failed, Status::Overdue, Status::DueSoon, Status::Ok, Status::Retired];
}

/// Where a row's cadence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CadenceSource {
    /// `cadence` of the roster entry.
    Roster,
    /// The runbook's `cadence`, as the newest summary that has one records it.
    Runbook,
    /// A roster entry with no cadence anywhere: quarterly.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cadence {
    /// As written: `quarterly`, `30d`.
    pub text: String,
    pub secs: u64,
    pub from: CadenceSource,
}

/// The newest drill of a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastDrill {
    pub id: String,
    pub started_at: Timestamp,
    pub operator: String,
    /// `passed`, `passed with deviations`, `failed`, `aborted` or `incomplete`.
    pub outcome: String,
    pub training: bool,
    pub rto: ObjectiveSummary,
    pub rpo: ObjectiveSummary,
    pub rpo_data: Option<ObjectiveSummary>,
    pub local_dir: Option<PathBuf>,
    pub archived: bool,
}

/// One (project, runbook) of the register.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `None`: the runbook names no project.
    pub project: Option<String>,
    pub runbook_id: String,
    /// From the newest drill; `None` when it was never drilled.
    pub runbook_title: Option<String>,
    pub status: Status,
    /// Why the status, in a few words: `never drilled`, `overdue by 12 days`.
    pub reason: String,
    pub last: Option<LastDrill>,
    pub cadence: Option<Cadence>,
    /// Start of the last drill that was neither aborted nor incomplete, plus the cadence.
    pub next_due: Option<Timestamp>,
    /// RTO achieved (seconds) of the last drills that ended, oldest first, at most
    /// [`TREND_LEN`]; `None` where a drill did not achieve its RTO.
    pub rto_trend: Vec<Option<u64>>,
    /// Drills counted in this row.
    pub drills: usize,
    /// Whether the roster expects this row.
    pub in_roster: bool,
}

impl Row {
    /// `acme` (or `—` for a runbook without a project).
    pub fn project_label(&self) -> &str {
        self.project.as_deref().unwrap_or("—")
    }
}

/// How many drills a row's RTO trend shows.
pub const TREND_LEN: usize = 8;

/// The register: rows, most urgent first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Register {
    pub generated_at: Timestamp,
    pub rows: Vec<Row>,
    /// Drills read (after de-duplication), training ones included.
    pub drills_read: usize,
    /// Training drills left out (0 with `--training`).
    pub training_excluded: usize,
    /// Summaries that could not be used, and why.
    pub warnings: Vec<String>,
}

impl Register {
    pub fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|row| row.status == status).count()
    }

    /// Whether any row is OVERDUE or FAILED.
    pub fn needs_attention(&self) -> bool {
        self.rows.iter().any(|row| row.status.needs_attention())
    }

    /// `3 FAILED · 2 OVERDUE · 1 DUE SOON · 6 OK`, the statuses present.
    pub fn counts_line(&self) -> String {
        let parts: Vec<String> = Status::ALL
            .iter()
            .map(|status| (status, self.count(*status)))
            .filter(|(_, n)| *n > 0)
            .map(|(status, n)| format!("{n} {}", status.label()))
            .collect();
        if parts.is_empty() { "no drills".to_string() } else { parts.join(" · ") }
    }
}
