//! The register's computation: drills in, rows out, at a given "now". No I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Cadence, CadenceSource, Drill, LastDrill, Register, Roster, Row, Status, TREND_LEN};
use crate::runbook::duration::parse_cadence;

/// What the roster falls back to when neither it nor the runbook has a cadence.
pub const DEFAULT_CADENCE: &str = "quarterly";

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub now: Timestamp,
    /// Count training drills (`--training`).
    pub training: bool,
    /// A due date closer than this is DUE SOON.
    pub due_soon: Duration,
}

impl Options {
    /// Training drills left out, DUE SOON within 14 days.
    pub fn at(now: Timestamp) -> Options {
        Options { now, training: false, due_soon: Duration::from_secs(14 * 86_400) }
    }
}

/// One drill per id: the local copy wins over the archived one (its summary is
/// computed from the journal here and now, the archived one was shipped when
/// the drill ended), and remembers that the archive has it too.
pub fn merge(local: Vec<Drill>, archived: Vec<Drill>) -> Vec<Drill> {
    let mut by_id: BTreeMap<String, Drill> = BTreeMap::new();
    for drill in archived {
        by_id.insert(drill.summary.drill_id.clone(), drill);
    }
    for mut drill in local {
        if let Some(archived) = by_id.get(&drill.summary.drill_id) {
            drill.archived |= archived.archived;
        }
        by_id.insert(drill.summary.drill_id.clone(), drill);
    }
    by_id.into_values().collect()
}

/// The register of `drills` (already de-duplicated: see [`merge`]).
pub fn register(drills: Vec<Drill>, roster: Option<&Roster>, options: &Options) -> Register {
    let drills_read = drills.len();
    let mut training_excluded = 0;
    let mut warnings = Vec::new();
    let mut groups: BTreeMap<(Option<String>, String), Vec<Drill>> = BTreeMap::new();
    for drill in drills {
        if drill.summary.training && !options.training {
            training_excluded += 1;
            continue;
        }
        let key = (drill.summary.project.clone(), drill.summary.runbook_id.clone());
        groups.entry(key).or_default().push(drill);
    }
    if let Some(roster) = roster {
        for (project, runbook) in roster.expected() {
            groups.entry((Some(project.to_string()), runbook.to_string())).or_default();
        }
    }
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(|((project, runbook_id), mut drills)| {
            drills.sort_by(|a, b| (a.started_at, &a.summary.drill_id).cmp(&(b.started_at, &b.summary.drill_id)));
            let expected = roster.and_then(|r| r.expects(project.as_deref(), &runbook_id));
            let retired = project.is_some() && expected.is_none() && roster.is_some_and(|r| r.complete);
            let mut row = row(project, runbook_id, &drills, expected, options, &mut warnings);
            if retired {
                row.status = Status::Retired;
                row.reason = "no project file any more: retired".into();
                row.next_due = None;
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| urgency(a).cmp(&urgency(b)));
    Register { generated_at: options.now, rows, drills_read, training_excluded, warnings }
}

/// Most urgent first: status, then the earliest due, then by name.
fn urgency(row: &Row) -> (Status, Option<Timestamp>, Option<&str>, &str) {
    (row.status, row.next_due, row.project.as_deref(), row.runbook_id.as_str())
}

fn row(
    project: Option<String>,
    runbook_id: String,
    drills: &[Drill],
    expected: Option<Option<&str>>,
    options: &Options,
    warnings: &mut Vec<String>,
) -> Row {
    let ended: Vec<&Drill> = drills.iter().filter(|d| d.summary.outcome != "incomplete").collect();
    let last_ended = ended.last().copied();
    // Aborted and incomplete drills demonstrated nothing: the clock runs from the last real one.
    let last_counted = ended.iter().rev().find(|d| d.summary.outcome != "aborted").copied();
    let cadence = cadence(&project, &runbook_id, drills, expected, warnings);
    let next_due = match (last_counted, &cadence) {
        (Some(drill), Some(cadence)) => {
            drill.started_at.checked_add(SignedDuration::from_secs(cadence.secs.min(i64::MAX as u64) as i64)).ok()
        }
        _ => None,
    };
    let (status, reason) = status(drills, last_ended, cadence.is_some(), next_due, options);
    let rto_trend =
        ended[ended.len().saturating_sub(TREND_LEN)..].iter().map(|d| d.summary.rto.achieved_secs).collect();
    Row {
        project,
        runbook_id,
        runbook_title: drills.last().map(|d| d.summary.runbook_title.clone()),
        status,
        reason,
        last: drills.last().map(last_drill),
        cadence,
        next_due,
        rto_trend,
        drills: drills.len(),
        in_roster: expected.is_some(),
    }
}

fn last_drill(drill: &Drill) -> LastDrill {
    let summary = &drill.summary;
    LastDrill {
        id: summary.drill_id.clone(),
        started_at: drill.started_at,
        operator: summary.operator.clone(),
        outcome: summary.outcome.clone(),
        training: summary.training,
        rto: summary.rto.clone(),
        rpo: summary.rpo.clone(),
        rpo_data: summary.rpo_data.clone(),
        local_dir: drill.local_dir.clone(),
        archived: drill.archived,
    }
}

/// The roster's cadence, else the runbook's (the newest drill that records
/// one), else quarterly for a roster entry; a row outside the roster whose
/// runbook has none has no cadence.
fn cadence(
    project: &Option<String>,
    runbook_id: &str,
    drills: &[Drill],
    expected: Option<Option<&str>>,
    warnings: &mut Vec<String>,
) -> Option<Cadence> {
    let from_runbook = drills.iter().rev().find_map(|d| d.summary.cadence.as_deref().map(|c| (c, &d.summary.drill_id)));
    let (text, from) = match (expected, from_runbook) {
        (Some(Some(text)), _) => (text, CadenceSource::Roster),
        (_, Some((text, drill_id))) => match parse_cadence(text) {
            Ok(_) => (text, CadenceSource::Runbook),
            Err(error) => {
                warnings.push(format!(
                    "{}/{runbook_id}: drill {drill_id} records cadence `{text}`, which is not one: {error}",
                    project.as_deref().unwrap_or("—")
                ));
                match expected {
                    Some(None) => (DEFAULT_CADENCE, CadenceSource::Default),
                    _ => return None,
                }
            }
        },
        (Some(None), None) => (DEFAULT_CADENCE, CadenceSource::Default),
        (None, None) => return None,
    };
    // The roster's cadence was checked when it was read; the others just now.
    let secs = parse_cadence(text).ok()?.as_secs();
    Some(Cadence { text: text.to_string(), secs, from })
}

fn status(
    drills: &[Drill],
    last_ended: Option<&Drill>,
    has_cadence: bool,
    next_due: Option<Timestamp>,
    options: &Options,
) -> (Status, String) {
    if let Some(drill) = last_ended
        && matches!(drill.summary.outcome.as_str(), "failed" | "aborted")
    {
        return (Status::Failed, format!("last drill {} on {}", drill.summary.outcome, day(drill.started_at)));
    }
    if !has_cadence {
        let reason = match last_ended {
            Some(drill) => format!("no cadence; last drill {}", drill.summary.outcome),
            None => "no cadence; no drill has ended".to_string(),
        };
        return (Status::Ok, reason);
    }
    let Some(due) = next_due else {
        let reason = if drills.is_empty() { "never drilled" } else { "no drill has ended yet" };
        return (Status::Overdue, reason.to_string());
    };
    let left = due.duration_since(options.now);
    if left.is_negative() {
        return (Status::Overdue, format!("overdue by {}", days(left.abs())));
    }
    let soon = SignedDuration::try_from(options.due_soon).unwrap_or(SignedDuration::MAX);
    if left <= soon {
        return (Status::DueSoon, format!("due in {}", days(left)));
    }
    (Status::Ok, format!("next due in {}", days(left)))
}

/// `3 days`, `1 day`, `less than a day`.
fn days(span: SignedDuration) -> String {
    match span.as_secs() / 86_400 {
        0 => "less than a day".to_string(),
        1 => "1 day".to_string(),
        n => format!("{n} days"),
    }
}

/// `2026-04-01`.
pub fn day(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d").to_string()
}
