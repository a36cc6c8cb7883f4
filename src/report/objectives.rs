//! The recovery objectives as the drill measured them: RTO (the recovery's
//! wall clock) and RPO (the restored backup's age), each against its target
//! and never PASS for a recovery the drill did not demonstrate.

use std::time::Duration;

use serde::Serialize;

use crate::drill::state::DrillState;
use crate::drill::verdict::Demonstrated;
use crate::runbook::duration::format_duration;

/// An objective (RTO or RPO) and how the drill measured against it.
#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    pub target_secs: Option<u64>,
    pub achieved_secs: Option<u64>,
    /// `PASS`, `FAIL` or `n/a` (no target or nothing measured).
    pub verdict: String,
    pub detail: String,
    /// RTO only: the measured span (first step start to the end of the last
    /// step that is not teardown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_to: Option<String>,
    /// RTO only: how much of the measured span no drillbook process ran
    /// (crash, closed laptop, paused drill). It counts against the RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_ms: Option<u64>,
}

impl Objective {
    pub(super) fn not_measured(target: Option<Duration>, detail: String) -> Self {
        Objective {
            target_secs: target.map(|t| t.as_secs()),
            achieved_secs: None,
            verdict: "n/a".into(),
            detail,
            measured_from: None,
            measured_to: None,
            offline_ms: None,
        }
    }
}

/// RTO: wall clock from the first step start to the end of the last step
/// that is not teardown. Time no drillbook process ran counts (the outage
/// went on), and is shown apart.
pub(super) fn rto(state: &DrillState, demonstrated: &Demonstrated) -> Objective {
    let Some((from, to)) = state.rto_window() else {
        return Objective::not_measured(
            state.rto_target,
            "no step has started, so there is no recovery time yet".into(),
        );
    };
    let achieved = Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO);
    let offline = state.offline_within(from, to);
    let teardown = state.steps.iter().filter(|s| s.outline.always).count();
    let mut how = format!(
        "from the first step start to the end of the last step{}: {} with drillbook running, {} with no drillbook process",
        if teardown > 0 { " before teardown" } else { "" },
        format_duration(achieved.saturating_sub(offline)),
        format_duration(offline)
    );
    if state.finished.is_none() {
        how.push_str("; the drill is still in progress");
    }
    let target = state.rto_target.map(|t| format!(" against a target of {}", format_duration(t))).unwrap_or_default();
    let (verdict, detail) = match (demonstrated, state.rto_target) {
        (Demonstrated::No(why), _) => (
            NOT_ACHIEVED,
            format!("{why}, so no recovery time is claimed ({} measured{target}; {how})", format_duration(achieved)),
        ),
        (_, Some(target)) => (
            if achieved <= target { "PASS" } else { "FAIL" },
            format!("{} against a target of {} ({how})", format_duration(achieved), format_duration(target)),
        ),
        (_, None) => ("n/a", format!("{} (no rto_target in the runbook; {how})", format_duration(achieved))),
    };
    Objective {
        target_secs: state.rto_target.map(|t| t.as_secs()),
        achieved_secs: Some(achieved.as_secs()),
        verdict: verdict.into(),
        detail,
        measured_from: Some(from.to_string()),
        measured_to: Some(to.to_string()),
        offline_ms: Some(u64::try_from(offline.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// RTO when the recovery was not demonstrated (never PASS).
pub const NOT_ACHIEVED: &str = "not achieved";
/// RPO when the backup was not restored.
pub const NOT_DEMONSTRATED: &str = "not demonstrated";

/// RPO is the age of the restored backup: a capture with an `age_secs`
/// field (made by a backup step) measures it, once a step restored it.
pub(super) fn rpo(state: &DrillState, restored: &Demonstrated) -> Objective {
    let age = state.captures.values().find_map(|(_, capture)| capture.fields.get("age_secs").and_then(|v| v.as_u64()));
    let measured = |target: Option<Duration>, age: u64, verdict: &str, detail: String| Objective {
        target_secs: target.map(|t| t.as_secs()),
        achieved_secs: Some(age),
        verdict: verdict.into(),
        detail,
        measured_from: None,
        measured_to: None,
        offline_ms: None,
    };
    if let (Demonstrated::No(why), Some(age)) = (restored, age) {
        let old = format_duration(Duration::from_secs(age));
        return Objective {
            verdict: NOT_DEMONSTRATED.into(),
            detail: format!("{why}; the backup chosen was {old} old"),
            ..Objective::not_measured(state.rpo_target, String::new())
        };
    }
    match (state.rpo_target, age) {
        (Some(target), Some(age)) => measured(
            Some(target),
            age,
            if age <= target.as_secs() { "PASS" } else { "FAIL" },
            format!(
                "backup was {} old against a target of {}",
                format_duration(Duration::from_secs(age)),
                format_duration(target)
            ),
        ),
        (target, None) => {
            Objective::not_measured(target, "no backup was captured by this drill, so its age is unknown".into())
        }
        (None, Some(age)) => measured(
            None,
            age,
            "n/a",
            format!("backup was {} old (no rpo_target in the runbook)", format_duration(Duration::from_secs(age))),
        ),
    }
}

/// RPO by data: the drill's start minus the newest data a `sql-check`'s
/// `freshness` query found in the restored database: the data a real
/// disaster at the drill's start would have lost. Only a `sql-check` that
/// succeeded measures it.
pub(super) fn rpo_data(state: &DrillState) -> Option<Objective> {
    use crate::drill::evidence::Evidence;
    use crate::drill::state::StepStatus;
    let mut newest: Option<jiff::Timestamp> = None;
    let mut unproven: Option<String> = None;
    for step in &state.steps {
        let Some(Evidence::Sql(result)) = &step.evidence else { continue };
        if !result.checks.iter().any(|c| c.freshness) {
            continue;
        }
        if !matches!(step.status, StepStatus::Succeeded) {
            unproven.get_or_insert_with(|| format!("the data check `{}` did not succeed", step.outline.id));
            continue;
        }
        let found = result.newest_data.as_deref().and_then(|n| n.parse::<jiff::Timestamp>().ok());
        if let Some(found) = found
            && newest.is_none_or(|n| found > n)
        {
            newest = Some(found);
        }
    }
    let Some(newest) = newest else {
        let why = unproven?;
        return Some(Objective {
            verdict: NOT_DEMONSTRATED.into(),
            detail: format!("{why}, so the newest data restored is not known"),
            ..Objective::not_measured(state.rpo_target, String::new())
        });
    };
    let window = Duration::try_from(state.started_at.duration_since(newest)).unwrap_or(Duration::ZERO);
    let newest_text = newest.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let lost =
        format!("newest data restored is from {newest_text}, {} before the drill started", format_duration(window));
    let (verdict, detail) = match state.rpo_target {
        Some(target) => (
            if window <= target { "PASS" } else { "FAIL" },
            format!("{lost}, against a target of {}", format_duration(target)),
        ),
        None => ("n/a", format!("{lost} (no rpo_target in the runbook)")),
    };
    Some(Objective {
        target_secs: state.rpo_target.map(|t| t.as_secs()),
        achieved_secs: Some(window.as_secs()),
        verdict: verdict.into(),
        detail,
        measured_from: Some(newest.to_string()),
        measured_to: Some(state.started_at.to_string()),
        offline_ms: None,
    })
}
