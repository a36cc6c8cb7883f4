//! The drill report, built from the journal alone (via the replayed
//! state): what ran, when, how it ended, what it captured, what the
//! operator ticked and noted, RTO/RPO against their targets, where the drill
//! acted (clusters, buckets), whether DR runs what production runs, every
//! deviation from the runbook, the teardown, who took part, the action
//! items and the debrief.
//!
//! One model ([`Report`]), four renderings: Markdown ([`to_markdown`]),
//! self-contained HTML ([`to_html`]), JSON ([`to_json`]) and JUnit XML
//! ([`to_junit`]); [`write_all`] puts the four into a drill directory.

pub(crate) mod data;
mod environment;
pub mod files;
pub mod history;
mod html;
mod junit;
mod markdown;
mod objectives;
pub mod summary;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use environment::{DrTags, Environment, KubeTarget, ProductionTag, S3Target, TagComparison};
/// The report's stylesheet, which the fleet dashboard shares.
pub(crate) use html::STYLE as HTML_STYLE;
pub use html::to_html;
pub use junit::to_junit;
pub use markdown::to_markdown;
pub use objectives::{NOT_ACHIEVED, NOT_DEMONSTRATED, Objective};

use crate::drill::event::{AttemptResult, SkipCause};
use crate::drill::evidence::Evidence;
use crate::drill::state::{DeviationKind, DrillState, StepState, StepStatus};
use crate::runbook::template::CaptureValue;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub drill_id: String,
    pub runbook: RunbookInfo,
    pub training: bool,
    pub operator: String,
    pub host: String,
    pub drillbook_version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Wall clock from the drill's start to its end (or its last event).
    pub elapsed_secs: u64,
    /// The verdict: `passed`, `passed with deviations`, `failed`, `aborted`
    /// or `incomplete` (see [`crate::drill::verdict`]).
    pub outcome: String,
    /// Why the drill ended as it did, as journaled.
    pub outcome_reason: Option<String>,
    /// What decided the verdict, most serious first.
    pub findings: Vec<FindingReport>,
    pub rto: Objective,
    pub rpo: Objective,
    /// RPO by data: the drill's start minus the newest data a `sql-check`
    /// found restored (absent when no check measured it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_data: Option<Objective>,
    pub environment: Environment,
    pub tags: TagComparison,
    pub vars: BTreeMap<String, String>,
    /// Names only: values are never recorded.
    pub secret_vars: Vec<String>,
    pub steps: Vec<StepReport>,
    pub deviations: Vec<DeviationReport>,
    /// The `always` steps (teardown), whether they ran and how they ended.
    pub teardown: Vec<TeardownReport>,
    pub participants: Vec<ParticipantReport>,
    /// Every time the drill changed hands (through the shared archive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handoffs: Vec<HandOffReport>,
    pub action_items: Vec<ActionItemReport>,
    pub debrief: Option<DebriefReport>,
    /// Notes not attached to a step.
    pub notes: Vec<NoteReport>,
    pub sessions: Vec<SessionReport>,
    pub journal: JournalInfo,
    /// This drill against the project's earlier drills (filled in where the
    /// drill's directory is known: the reports written beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_last: Option<history::SinceLast>,
    /// Steps of the pattern the project file removed, with its reasons (read
    /// from the drill's snapshot of the project file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_steps: Vec<RemovedStep>,
}

/// A pattern's step a project does without, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedStep {
    pub step: String,
    pub reason: String,
}

/// Something that departs from the runbook and weighs on the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct FindingReport {
    pub step: Option<String>,
    /// `not performed (unattended)`, `required step skipped`, `teardown did not run`, ...
    pub kind: String,
    pub text: String,
    /// Whether it failed the drill.
    pub fails: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookInfo {
    pub id: String,
    pub title: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandOffReport {
    pub at: String,
    pub from: String,
    pub to: String,
    /// The previous holder's lease had expired and was taken over.
    pub taken_over: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub status: String,
    pub detail: Option<String>,
    /// Why a skipped step was skipped: `condition`, `operator`, `declined` or
    /// `non_interactive` (not performed by an unattended drill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_cause: Option<String>,
    /// Teardown: runs even when the drill stops early; not counted in the RTO.
    pub always: bool,
    pub optional: bool,
    pub attempts: Vec<AttemptReport>,
    pub captures: BTreeMap<String, CaptureValue>,
    pub checklist: Vec<ChecklistReport>,
    pub notes: Vec<NoteReport>,
    pub confirmations: Vec<String>,
    /// What the step decided to act on or saw (backup object, image tag, the
    /// workloads a scale changed with their previous replicas, DR's tags, a
    /// URL's answer), as journaled. In JSON under `choice`, with the fields it
    /// always had.
    #[serde(rename = "choice", serialize_with = "crate::drill::evidence::serialize_untagged")]
    pub evidence: Option<Evidence>,
    /// Who drove its attempts (`operator@host`), when the drill changed hands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<String>,
    /// Screenshots the step took and files attached to it, each with its hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<files::FileReport>,
}

impl StepReport {
    /// Sum of the attempts' durations.
    pub fn duration_ms(&self) -> u64 {
        self.attempts.iter().filter_map(|a| a.duration_ms).sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    pub number: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `succeeded`, `failed`, `timedout`, `cancelled`, `interrupted: WHY` or `running`.
    pub result: String,
    /// Why the attempt failed, when it did.
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<u64>,
    pub command: Option<String>,
    pub log: Option<String>,
    pub log_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChecklistReport {
    pub item: String,
    pub ticked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoteReport {
    pub at: String,
    pub text: String,
}

/// A departure from the straight path through the runbook.
#[derive(Debug, Clone, Serialize)]
pub struct DeviationReport {
    pub at: String,
    pub step: String,
    pub step_title: String,
    /// `failed attempt`, `interrupted`, `retry`, `skipped`, `confirmation declined` or `marked done`.
    pub kind: String,
    /// Skips only: `condition`, `operator` or `non_interactive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeardownReport {
    pub step: String,
    pub title: String,
    pub ran: bool,
    pub status: String,
    pub detail: Option<String>,
    pub attempts: usize,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParticipantReport {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionItemReport {
    pub text: String,
    pub owner: Option<String>,
    pub step: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DebriefReport {
    pub went_well: String,
    pub to_improve: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub pid: u32,
    pub host: String,
    pub mode: String,
    pub started_at: String,
    pub last_event_at: String,
    pub end_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalInfo {
    pub events: usize,
    /// SHA-256 of the last journal line: the head of the evidence chain.
    pub head_sha256: Option<String>,
}

pub fn build(state: &DrillState, head_sha256: Option<String>) -> Report {
    let steps: Vec<StepReport> = state.steps.iter().map(|step| step_report(state, step)).collect();
    let verdict = crate::drill::verdict::verdict(state);
    Report {
        drill_id: state.drill_id.clone(),
        runbook: RunbookInfo {
            id: state.runbook_id.clone(),
            title: state.runbook_title.clone(),
            path: state.runbook_path.clone(),
            sha256: state.runbook_sha256.clone(),
        },
        training: state.training,
        operator: state.operator.clone(),
        host: state.host.clone(),
        drillbook_version: state.drillbook_version.clone(),
        started_at: state.started_at.to_string(),
        finished_at: state.finished.as_ref().map(|f| f.at.to_string()),
        elapsed_secs: state.elapsed().as_secs(),
        outcome: verdict.outcome.label().to_string(),
        outcome_reason: state.finished.as_ref().and_then(|f| f.reason.clone()),
        findings: verdict
            .findings
            .iter()
            .map(|f| FindingReport {
                step: f.step.clone(),
                kind: f.kind.label().to_string(),
                text: f.text.clone(),
                fails: f.kind.fails_the_drill(),
            })
            .collect(),
        rto: objectives::rto(state, &verdict.rto),
        rpo: objectives::rpo(state, &verdict.rpo),
        rpo_data: objectives::rpo_data(state),
        environment: environment::environment(state),
        tags: environment::tags(state),
        vars: state.vars.clone(),
        secret_vars: state.secret_vars.clone(),
        deviations: deviations(state),
        teardown: steps
            .iter()
            .filter(|s| s.always)
            .map(|s| TeardownReport {
                step: s.id.clone(),
                title: s.title.clone(),
                ran: !s.attempts.is_empty(),
                status: s.status.clone(),
                detail: s.detail.clone(),
                attempts: s.attempts.len(),
                started_at: s.attempts.first().map(|a| a.started_at.clone()),
                finished_at: s.attempts.last().and_then(|a| a.finished_at.clone()),
            })
            .collect(),
        steps,
        participants: state
            .participants
            .iter()
            .map(|p| ParticipantReport { name: p.name.clone(), role: p.role.clone() })
            .collect(),
        handoffs: state
            .handoffs
            .iter()
            .map(|h| HandOffReport {
                at: h.at.to_string(),
                from: h.from.clone(),
                to: h.to.clone(),
                taken_over: h.taken_over,
            })
            .collect(),
        action_items: state
            .action_items
            .iter()
            .map(|a| ActionItemReport {
                text: a.text.clone(),
                owner: a.owner.clone(),
                step: a.step.clone(),
                at: a.at.to_string(),
            })
            .collect(),
        debrief: state.debrief.as_ref().map(|d| DebriefReport {
            went_well: d.went_well.clone(),
            to_improve: d.to_improve.clone(),
            at: d.at.to_string(),
        }),
        notes: state
            .notes
            .iter()
            .filter(|n| n.step.is_none())
            .map(|n| NoteReport { at: n.at.to_string(), text: n.text.clone() })
            .collect(),
        sessions: state
            .sessions
            .iter()
            .map(|s| SessionReport {
                pid: s.pid,
                host: s.host.clone(),
                mode: format!("{:?}", s.mode).to_lowercase(),
                started_at: s.started_at.to_string(),
                last_event_at: s.last_event_at.to_string(),
                end_reason: s.end_reason.clone(),
            })
            .collect(),
        journal: JournalInfo { events: state.event_count, head_sha256 },
        since_last: None,
        removed_steps: Vec::new(),
    }
}

/// Who drove each attempt of a step: listed only for a drill that changed hands.
fn step_operators(state: &DrillState, step: &StepState) -> Vec<String> {
    if state.handoffs.is_empty() {
        return Vec::new();
    }
    let mut operators: Vec<String> = Vec::new();
    for attempt in &step.attempts {
        let session = state.sessions.iter().rev().find(|s| s.started_at <= attempt.started_at);
        if let Some(session) = session {
            let who = format!("{}@{}", session.operator, session.host);
            if !operators.contains(&who) {
                operators.push(who);
            }
        }
    }
    operators
}

fn step_report(state: &DrillState, step: &StepState) -> StepReport {
    let id = &step.outline.id;
    StepReport {
        operators: step_operators(state, step),
        id: id.clone(),
        title: step.outline.title.clone(),
        kind: step.outline.kind.clone(),
        status: step.status.label().to_string(),
        detail: match &step.status {
            StepStatus::Failed { reason } => Some(reason.clone()),
            StepStatus::Skipped { reason, .. } => Some(reason.clone()),
            StepStatus::MarkedDone { note } => Some(note.clone()),
            _ => None,
        },
        skip_cause: match &step.status {
            StepStatus::Skipped { cause, .. } => Some(skip_cause_name(*cause).to_string()),
            _ => None,
        },
        always: step.outline.always,
        optional: step.outline.optional,
        attempts: step
            .attempts
            .iter()
            .map(|a| AttemptReport {
                number: a.number,
                started_at: a.started_at.to_string(),
                finished_at: a.finished_at.map(|t| t.to_string()),
                result: match (&a.result, &a.interrupted, &step.status) {
                    (Some(result), _, _) => format!("{result:?}").to_lowercase(),
                    (None, Some(why), _) => format!("interrupted: {why}"),
                    // An attempt a person had open (a checklist) that was then
                    // skipped or marked done: it ended so, it is not running.
                    (None, None, StepStatus::Skipped { .. }) if is_last(step, a) => "skipped".into(),
                    (None, None, StepStatus::MarkedDone { .. }) if is_last(step, a) => "marked done".into(),
                    (None, None, _) => "running".into(),
                },
                reason: a.reason.clone(),
                exit_code: a.exit_code,
                duration_ms: a.duration_ms,
                command: a.command.clone(),
                log: a.log.clone(),
                log_sha256: a.log_sha256.clone(),
            })
            .collect(),
        captures: state
            .captures
            .iter()
            .filter(|(_, (from, _))| from == id)
            .map(|(name, (_, value))| (name.clone(), value.clone()))
            .collect(),
        checklist: step
            .outline
            .checklist
            .iter()
            .enumerate()
            .map(|(index, item)| ChecklistReport { item: item.clone(), ticked: step.ticked(index) })
            .collect(),
        notes: state
            .notes
            .iter()
            .filter(|n| n.step.as_deref() == Some(id))
            .map(|n| NoteReport { at: n.at.to_string(), text: n.text.clone() })
            .collect(),
        confirmations: step.confirmations.clone(),
        evidence: step.evidence.clone(),
        files: step.files.iter().map(files::FileReport::of).collect(),
    }
}

fn deviations(state: &DrillState) -> Vec<DeviationReport> {
    state
        .deviations
        .iter()
        .map(|deviation| {
            let (kind, cause, detail) = match &deviation.kind {
                DeviationKind::Failed { attempt, result, exit_code, reason } => {
                    let how = match result {
                        AttemptResult::TimedOut => "timed out",
                        AttemptResult::Cancelled => "was cancelled",
                        _ => "failed",
                    };
                    let exit = exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
                    let reason = reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                    ("failed attempt", None, format!("attempt {attempt} {how}{exit}{reason}"))
                }
                DeviationKind::Interrupted { attempt, reason } => {
                    ("interrupted", None, format!("attempt {attempt} interrupted: {reason}"))
                }
                DeviationKind::Retried { reason } => ("retry", None, reason.clone()),
                DeviationKind::Skipped { cause: SkipCause::Operator, reason } if reason == "not confirmed" => (
                    "confirmation declined",
                    Some("operator"),
                    "the operator did not confirm the step, so it was skipped".to_string(),
                ),
                DeviationKind::Skipped { cause: SkipCause::Declined, reason } => {
                    ("confirmation declined", Some("operator"), reason.clone())
                }
                DeviationKind::Skipped { cause, reason } => ("skipped", Some(skip_cause_name(*cause)), reason.clone()),
                DeviationKind::MarkedDone { note } => ("marked done", None, note.clone()),
            };
            DeviationReport {
                at: deviation.at.to_string(),
                step: deviation.step.clone(),
                step_title: state.step(&deviation.step).map(|s| s.outline.title.clone()).unwrap_or_default(),
                kind: kind.into(),
                cause: cause.map(str::to_string),
                detail,
            }
        })
        .collect()
}

fn is_last(step: &StepState, attempt: &crate::drill::state::Attempt) -> bool {
    step.attempts.last().is_some_and(|last| std::ptr::eq(last, attempt))
}

fn skip_cause_name(cause: SkipCause) -> &'static str {
    match cause {
        SkipCause::Condition => "condition",
        SkipCause::Operator => "operator",
        SkipCause::NonInteractive => "non_interactive",
        SkipCause::Declined => "declined",
    }
}

pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Renders a report in one format.
pub type Render = fn(&Report) -> String;

/// The report files [`write_all`] writes, with their renderers.
pub const FILES: [(&str, Render); 4] =
    [("report.md", to_markdown), ("report.html", to_html), ("report.json", to_json), ("report.junit.xml", to_junit)];

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", .path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes the report in every format into `dir` (a drill directory):
/// `report.md`, `report.html`, `report.json`, `report.junit.xml`. Each file
/// is written whole to a temporary file, synced, then renamed into place, so
/// a reader never sees half a report.
/// The `[[remove]]` entries of the drill's snapshot of its project file.
pub fn removed_steps(dir: &Path) -> Vec<RemovedStep> {
    let Ok(text) = std::fs::read_to_string(dir.join(crate::project::PROJECT_SNAPSHOT)) else { return Vec::new() };
    let Ok(table) = toml::from_str::<toml::Table>(&text) else { return Vec::new() };
    table
        .get("remove")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some(RemovedStep {
                step: entry.get("step")?.as_str()?.to_string(),
                reason: entry.get("reason").and_then(|r| r.as_str()).unwrap_or_default().to_string(),
            })
        })
        .collect()
}

pub fn write_all(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, WriteError> {
    let mut report = report.clone();
    files::check_files(&mut report, dir);
    report.since_last = history::since_last(&report, dir);
    report.removed_steps = removed_steps(dir);
    let report = &report;
    FILES
        .iter()
        .map(|(name, render)| {
            let path = dir.join(name);
            write_atomic(&path, &render(report))?;
            Ok(path)
        })
        .collect()
}

/// Writes `text` to `path` through a temporary file in the same directory
/// and a rename.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), WriteError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temp, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        WriteError { path: path.to_path_buf(), source }
    })
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

/// Text safe inside HTML or XML content and quoted attributes. Control
/// characters (a terminal's escape sequences in a failure reason) are not
/// allowed in XML 1.0 and mean nothing in HTML: they become U+FFFD.
pub(crate) fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A report time (RFC 3339) shown shorter: `2026-11-27 03:00:07 UTC`.
fn human_time(at: &str) -> String {
    at.parse::<jiff::Timestamp>().map_or_else(|_| at.to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

#[cfg(test)]
mod tests;
