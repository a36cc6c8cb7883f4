//! The drill report, built from the journal alone (via the replayed
//! state): what ran, when, how it ended, what it captured, what the
//! operator ticked and noted, and RTO/RPO against their targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::drill::state::{DrillState, StepStatus};
use crate::runbook::duration::format_duration;
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
    /// `completed`, `failed`, `aborted` or `in progress`.
    pub outcome: String,
    pub rto: Objective,
    pub rpo: Objective,
    pub vars: BTreeMap<String, String>,
    /// Names only: values are never recorded.
    pub secret_vars: Vec<String>,
    pub steps: Vec<StepReport>,
    /// Notes not attached to a step.
    pub notes: Vec<NoteReport>,
    pub sessions: Vec<SessionReport>,
    pub journal: JournalInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookInfo {
    pub id: String,
    pub title: String,
    pub path: String,
    pub sha256: String,
}

/// An objective (RTO or RPO) and how the drill measured against it.
#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    pub target_secs: Option<u64>,
    pub achieved_secs: Option<u64>,
    /// `PASS`, `FAIL` or `n/a` (no target or nothing measured).
    pub verdict: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub status: String,
    pub detail: Option<String>,
    pub attempts: Vec<AttemptReport>,
    pub captures: BTreeMap<String, CaptureValue>,
    pub checklist: Vec<ChecklistReport>,
    pub notes: Vec<NoteReport>,
    pub confirmations: Vec<String>,
    /// What the step decided to act on (backup object, image tag, the
    /// workloads a scale changed with their previous replicas), as journaled.
    pub choice: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    pub number: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub result: String,
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
    let elapsed = state.elapsed();
    let active = state.active_time();
    let rto = match state.rto_target {
        Some(target) => Objective {
            target_secs: Some(target.as_secs()),
            achieved_secs: Some(elapsed.as_secs()),
            verdict: if elapsed <= target { "PASS" } else { "FAIL" }.to_string(),
            detail: format!(
                "{} against a target of {} ({} with drillbook running, {} with no drillbook process)",
                format_duration(elapsed),
                format_duration(target),
                format_duration(active),
                format_duration(elapsed.saturating_sub(active))
            ),
        },
        None => Objective {
            target_secs: None,
            achieved_secs: Some(elapsed.as_secs()),
            verdict: "n/a".into(),
            detail: format!("{} (no rto_target in the runbook)", format_duration(elapsed)),
        },
    };
    let rpo = rpo(state);
    let steps = state
        .steps
        .iter()
        .map(|step| {
            let id = &step.outline.id;
            StepReport {
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
                attempts: step
                    .attempts
                    .iter()
                    .map(|a| AttemptReport {
                        number: a.number,
                        started_at: a.started_at.to_string(),
                        finished_at: a.finished_at.map(|t| t.to_string()),
                        result: match (&a.result, &a.interrupted) {
                            (Some(result), _) => format!("{result:?}").to_lowercase(),
                            (None, Some(why)) => format!("interrupted: {why}"),
                            (None, None) => "running".into(),
                        },
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
                choice: step.choice.clone(),
            }
        })
        .collect();
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
        outcome: state
            .finished
            .as_ref()
            .map_or_else(|| "in progress".to_string(), |f| format!("{:?}", f.outcome).to_lowercase()),
        rto,
        rpo,
        vars: state.vars.clone(),
        secret_vars: state.secret_vars.clone(),
        steps,
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
    }
}

/// RPO is the age of the restored backup: a capture with an `age_secs`
/// field (made by a backup step) measures it.
fn rpo(state: &DrillState) -> Objective {
    let age = state.captures.values().find_map(|(_, capture)| capture.fields.get("age_secs").and_then(|v| v.as_u64()));
    match (state.rpo_target, age) {
        (Some(target), Some(age)) => Objective {
            target_secs: Some(target.as_secs()),
            achieved_secs: Some(age),
            verdict: if age <= target.as_secs() { "PASS" } else { "FAIL" }.into(),
            detail: format!(
                "backup was {} old against a target of {}",
                format_duration(Duration::from_secs(age)),
                format_duration(target)
            ),
        },
        (target, None) => Objective {
            target_secs: target.map(|t| t.as_secs()),
            achieved_secs: None,
            verdict: "n/a".into(),
            detail: "no backup was captured by this drill, so its age is unknown".into(),
        },
        (None, Some(age)) => Objective {
            target_secs: None,
            achieved_secs: Some(age),
            verdict: "n/a".into(),
            detail: format!(
                "backup was {} old (no rpo_target in the runbook)",
                format_duration(Duration::from_secs(age))
            ),
        },
    }
}

pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Markdown for humans and auditors.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    let training = if report.training { " (training)" } else { "" };
    let _ = writeln!(out, "# Drill report: {}{training}\n", report.runbook.title);
    let _ = writeln!(out, "| | |\n|---|---|");
    let rows = [
        ("Drill", format!("`{}`", report.drill_id)),
        (
            "Runbook",
            format!("`{}` ({}), sha256 `{}`", report.runbook.id, report.runbook.path, short(&report.runbook.sha256)),
        ),
        ("Operator", format!("{} on {}", report.operator, report.host)),
        ("Started", report.started_at.clone()),
        ("Finished", report.finished_at.clone().unwrap_or_else(|| "not yet".into())),
        ("Outcome", format!("**{}**", report.outcome)),
        ("RTO", format!("**{}**: {}", report.rto.verdict, report.rto.detail)),
        ("RPO", format!("**{}**: {}", report.rpo.verdict, report.rpo.detail)),
        ("drillbook", report.drillbook_version.clone()),
    ];
    for (key, value) in rows {
        let _ = writeln!(out, "| {key} | {} |", escape_cell(&value));
    }
    if !report.vars.is_empty() || !report.secret_vars.is_empty() {
        let _ = writeln!(out, "\n## Variables\n");
        for (name, value) in &report.vars {
            let _ = writeln!(out, "- `{name}` = `{value}`");
        }
        for name in &report.secret_vars {
            let _ = writeln!(out, "- `{name}` = *(secret, not recorded)*");
        }
    }
    let _ = writeln!(out, "\n## Steps\n");
    let _ = writeln!(out, "| # | Step | Kind | Status | Attempts | Duration | Exit |\n|---|---|---|---|---|---|---|");
    for (index, step) in report.steps.iter().enumerate() {
        let last = step.attempts.last();
        let duration =
            last.and_then(|a| a.duration_ms).map(|ms| format_duration(Duration::from_millis(ms))).unwrap_or_default();
        let exit = last.and_then(|a| a.exit_code).map(|c| c.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} (`{}`) | {} | {} | {} | {} | {} |",
            index + 1,
            escape_cell(&step.title),
            step.id,
            step.kind,
            step.status,
            step.attempts.len(),
            duration,
            exit
        );
    }
    for step in &report.steps {
        let _ = writeln!(out, "\n### {} (`{}`): {}\n", step.title, step.id, step.status);
        if let Some(detail) = &step.detail {
            let _ = writeln!(out, "{detail}\n");
        }
        for attempt in &step.attempts {
            let _ = write!(out, "- attempt {}: {} at {}", attempt.number, attempt.result, attempt.started_at);
            if let Some(code) = attempt.exit_code {
                let _ = write!(out, ", exit {code}");
            }
            if let Some(ms) = attempt.duration_ms {
                let _ = write!(out, ", {}", format_duration(Duration::from_millis(ms)));
            }
            if let (Some(log), Some(hash)) = (&attempt.log, &attempt.log_sha256) {
                let _ = write!(out, ", log `{log}` (sha256 `{}`)", short(hash));
            }
            let _ = writeln!(out);
            if let Some(command) = &attempt.command {
                let _ = writeln!(out, "\n  ```sh\n  {}\n  ```\n", command.replace('\n', "\n  "));
            }
        }
        for (name, value) in &step.captures {
            let _ = writeln!(out, "- captured `{name}` = `{}`", value.value);
            for (field, field_value) in &value.fields {
                let _ = writeln!(out, "  - `{name}.{field}` = `{field_value}`");
            }
        }
        if let Some(choice) = &step.choice {
            choice_markdown(&mut out, choice);
        }
        for item in &step.checklist {
            let _ = writeln!(out, "- [{}] {}", if item.ticked { "x" } else { " " }, item.item);
        }
        for confirmation in &step.confirmations {
            let _ = writeln!(out, "- confirmed: {confirmation}");
        }
        for note in &step.notes {
            let _ = writeln!(out, "- note ({}): {}", note.at, note.text);
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\n## Notes\n");
        for note in &report.notes {
            let _ = writeln!(out, "- {}: {}", note.at, note.text);
        }
    }
    let _ = writeln!(out, "\n## Sessions\n");
    for session in &report.sessions {
        let _ = writeln!(
            out,
            "- pid {} on {} ({}): {} to {}{}",
            session.pid,
            session.host,
            session.mode,
            session.started_at,
            session.last_event_at,
            session.end_reason.as_ref().map(|r| format!(", ended: {r}")).unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "\n## Evidence\n\nJournal: {} events; head sha256 `{}`. Check it with `drillbook verify {}`.",
        report.journal.events,
        report.journal.head_sha256.as_deref().unwrap_or("unknown"),
        report.drill_id
    );
    out
}

/// A journaled choice in words: where a Kubernetes step acted and what a
/// scale changed (the previous replicas are what to restore).
fn choice_markdown(out: &mut String, choice: &serde_json::Value) {
    use std::fmt::Write as _;
    let text = |key: &str| choice.get(key).and_then(|v| v.as_str()).map(str::to_string);
    if let (Some(context), Some(namespace)) = (text("context"), text("namespace")) {
        let _ = writeln!(out, "- cluster: context `{context}`, namespace `{namespace}`");
    }
    if let (Some(tag), Some(image)) = (text("tag"), text("image")) {
        let _ = writeln!(out, "- chosen tag `{tag}` (`{image}`)");
    }
    if let Some(plan) = crate::engine::k8s::scale::ScalePlan::from_choice(choice) {
        let _ = writeln!(out, "- scaled to {} replica(s); previous replicas:", plan.to);
        for workload in &plan.workloads {
            let _ = writeln!(out, "  - {}/{}: {}", workload.kind, workload.name, workload.replicas);
        }
    }
    if let Some(key) = text("key") {
        let version = text("version_id").map(|v| format!(" (version `{v}`)")).unwrap_or_default();
        let _ = writeln!(out, "- chosen object `{key}`{version}");
    }
    let number = |key: &str| choice.get(key).and_then(|v| v.as_i64());
    if let (Some(url), Some(status)) = (text("url"), number("status")) {
        let latency = number("latency_ms").map(|ms| format!(" in {ms} ms")).unwrap_or_default();
        let attempts = match number("attempts") {
            Some(1) | None => String::new(),
            Some(n) => format!(" on attempt {n}"),
        };
        let _ = writeln!(out, "- `{url}` answered {status}{latency}{attempts}");
        if let Some(expires) = text("cert_expires") {
            let days = number("cert_days_left").map(|d| format!(" ({d} days left at the check)")).unwrap_or_default();
            let _ = writeln!(out, "- TLS certificate expires {expires}{days}");
        }
    }
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
