//! "Since the last drill": this drill against the same project's earlier
//! drills of the same runbook, read from the store beside it (each drill's
//! summary.json, report.json and runbook snapshot; never a journal). Per
//! step: duration then and now, what changed in the step, and a flag when
//! it took at least 1.5x the median of the project's last drills; the RTO
//! of the last drills. The first drill of a project says it has no baseline.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Report;
use super::summary::Summary;
use crate::runbook::Runbook;

/// Drills the median and the trend look back over.
const LOOKBACK: usize = 5;
/// A step this much slower than the median is flagged…
const SLOWER: f64 = 1.5;
/// …when it also lost at least this much (milliseconds): 40 ms against 20 ms is noise.
const SLOWER_MIN_MS: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinceLast {
    /// `None`: the project's first drill of this runbook (no baseline).
    pub previous: Option<PreviousDrill>,
    pub steps: Vec<StepTrend>,
    /// RTO achieved (seconds) of the last drills and this one, oldest first.
    pub rto_trend: Vec<RtoPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousDrill {
    pub drill_id: String,
    pub started_at: String,
    pub outcome: String,
    pub rto: String,
    pub rpo: String,
}

impl PreviousDrill {
    /// The first 8 characters of the drill id, as lists show it.
    pub fn short_id(&self) -> &str {
        self.drill_id.get(..8).unwrap_or(&self.drill_id)
    }

    /// The day it started (`YYYY-MM-DD`).
    pub fn date(&self) -> &str {
        self.started_at.get(..10).unwrap_or(&self.started_at)
    }

    /// `outcome; RTO …; RPO …`.
    pub fn result(&self) -> String {
        format!("{}; RTO {}; RPO {}", self.outcome, self.rto, self.rpo)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTrend {
    pub id: String,
    /// `added`, `changed`, `removed` since the last drill; `None` unchanged.
    pub change: Option<String>,
    pub then_ms: Option<u64>,
    pub now_ms: Option<u64>,
    /// The median over the project's last drills that ran the step.
    pub median_ms: Option<u64>,
    pub slower: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtoPoint {
    pub drill_id: String,
    pub started_at: String,
    pub achieved_secs: Option<u64>,
}

/// What an earlier drill's report.json holds that the comparison needs.
#[derive(Deserialize)]
struct EarlierReport {
    steps: Vec<EarlierStep>,
}

#[derive(Deserialize)]
struct EarlierStep {
    id: String,
    #[serde(default)]
    attempts: Vec<EarlierAttempt>,
}

#[derive(Deserialize)]
struct EarlierAttempt {
    duration_ms: Option<u64>,
}

fn step_ms(attempts: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    let durations: Vec<u64> = attempts.flatten().collect();
    (!durations.is_empty()).then(|| durations.iter().sum())
}

/// The project a runbook's drill belongs to: its `project`, literal or a
/// `{{ var }}` looked up with `var`; `None` when it names none.
pub fn project_name(runbook: &Runbook, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let text = runbook.project.as_ref()?.text.trim();
    let name = match text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
        Some(name) => var(name.trim())?.trim().to_string(),
        None => text.to_string(),
    };
    (!name.is_empty()).then_some(name)
}

/// A drill's runbook snapshot.
fn snapshot(dir: &Path) -> Option<Runbook> {
    let text = std::fs::read_to_string(dir.join("runbook.toml")).ok()?;
    crate::runbook::parse("runbook.toml", &text).ok()
}

/// Each step's table as written, by id.
fn step_sources(runbook: &Runbook) -> BTreeMap<String, String> {
    runbook.steps.iter().map(|s| (s.id.clone(), s.source.clone())).collect()
}

/// `1.2s` under a minute, else `3m`, `2h 10m`.
pub fn human_ms(ms: u64) -> String {
    if ms < 60_000 { format!("{:.1}s", ms as f64 / 1000.0) } else { crate::drill::evidence::human_seconds(ms / 1000) }
}

/// The drill being compared: a finished one (its report) or one about to start (its plan).
struct Current<'a> {
    project: String,
    runbook_id: &'a str,
    training: bool,
    /// RFC 3339; earlier drills started before it.
    started_at: String,
    /// `None` for a drill not started yet: it has no point in the RTO trend.
    trend_point: Option<RtoPoint>,
    /// Each step's id and duration so far.
    steps: Vec<(String, Option<u64>)>,
    sources: BTreeMap<String, String>,
    store: &'a Path,
    exclude: Option<&'a Path>,
}

/// Computes the section for the drill in `dir`; `None` when it names no project.
pub fn since_last(report: &Report, dir: &Path) -> Option<SinceLast> {
    let snapshot = snapshot(dir)?;
    let current = Current {
        project: project_name(&snapshot, |var| report.vars.get(var).cloned())?,
        runbook_id: &report.runbook.id,
        training: report.training,
        started_at: report.started_at.clone(),
        trend_point: Some(RtoPoint {
            drill_id: report.drill_id.clone(),
            started_at: report.started_at.clone(),
            achieved_secs: report.rto.achieved_secs,
        }),
        steps: report.steps.iter().map(|s| (s.id.clone(), step_ms(s.attempts.iter().map(|a| a.duration_ms)))).collect(),
        sources: step_sources(&snapshot),
        store: dir.parent()?,
        exclude: Some(dir),
    };
    Some(compare(current))
}

/// The same comparison before a drill starts (the start screen): `runbook`
/// as it would run for `project`, against the store under `drills`.
pub fn for_plan(runbook: &Runbook, project: &str, training: bool, drills: &Path) -> SinceLast {
    compare(Current {
        project: project.to_string(),
        runbook_id: &runbook.id,
        training,
        started_at: jiff::Timestamp::now().to_string(),
        trend_point: None,
        steps: runbook.steps.iter().map(|s| (s.id.clone(), None)).collect(),
        sources: step_sources(runbook),
        store: drills,
        exclude: None,
    })
}

fn compare(current: Current<'_>) -> SinceLast {
    let mut earlier: Vec<(Summary, std::path::PathBuf)> = std::fs::read_dir(current.store)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| Some(p.as_path()) != current.exclude)
        .filter_map(|p| {
            let summary: Summary = serde_json::from_slice(&std::fs::read(p.join("summary.json")).ok()?).ok()?;
            Some((summary, p))
        })
        .filter(|(s, _)| {
            s.project.as_deref() == Some(current.project.as_str())
                && s.runbook_id == current.runbook_id
                && s.training == current.training
                && s.started_at < current.started_at
                && !matches!(s.outcome.as_str(), "aborted" | "incomplete")
        })
        .collect();
    earlier.sort_by(|a, b| a.0.started_at.cmp(&b.0.started_at));
    let earlier = &earlier[earlier.len().saturating_sub(LOOKBACK)..];
    let mut rto_trend: Vec<RtoPoint> = earlier
        .iter()
        .map(|(s, _)| RtoPoint {
            drill_id: s.drill_id.clone(),
            started_at: s.started_at.clone(),
            achieved_secs: s.rto.achieved_secs,
        })
        .collect();
    rto_trend.extend(current.trend_point);
    let Some((last, last_dir)) = earlier.last() else {
        return SinceLast { previous: None, steps: Vec::new(), rto_trend };
    };
    // Durations of every step in the earlier drills, oldest first.
    let history: Vec<BTreeMap<String, Option<u64>>> = earlier
        .iter()
        .map(|(_, path)| {
            std::fs::read(path.join("report.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<EarlierReport>(&bytes).ok())
                .map(|r| {
                    r.steps
                        .into_iter()
                        .map(|s| (s.id, step_ms(s.attempts.into_iter().map(|a| a.duration_ms))))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let then_sources = snapshot(last_dir).map(|r| step_sources(&r)).unwrap_or_default();
    let now_sources = &current.sources;
    let mut steps: Vec<StepTrend> = current
        .steps
        .iter()
        .map(|(id, now_ms)| {
            let id = id.as_str();
            let change = match (then_sources.get(id), now_sources.get(id)) {
                (None, _) => Some("added".to_string()),
                (Some(then), Some(now)) if then != now => Some("changed".to_string()),
                _ => None,
            };
            let mut past: Vec<u64> = history.iter().filter_map(|h| h.get(id).copied().flatten()).collect();
            past.sort_unstable();
            let median_ms = (!past.is_empty()).then(|| past[past.len() / 2]);
            let now_ms = *now_ms;
            let slower = matches!((now_ms, median_ms), (Some(now), Some(median))
                if now as f64 >= SLOWER * median as f64 && now.saturating_sub(median) >= SLOWER_MIN_MS);
            let then_ms = history.last().and_then(|h| h.get(id).copied().flatten());
            StepTrend { id: id.to_string(), change, then_ms, now_ms, median_ms, slower }
        })
        .collect();
    steps.extend(then_sources.keys().filter(|id| !now_sources.contains_key(*id)).map(|id| StepTrend {
        id: id.clone(),
        change: Some("removed".into()),
        then_ms: history.last().and_then(|h| h.get(id).copied().flatten()),
        now_ms: None,
        median_ms: None,
        slower: false,
    }));
    let previous = PreviousDrill {
        drill_id: last.drill_id.clone(),
        started_at: last.started_at.clone(),
        outcome: last.outcome.clone(),
        rto: objective(&last.rto),
        rpo: objective(&last.rpo),
    };
    SinceLast { previous: Some(previous), steps, rto_trend }
}

fn objective(o: &super::summary::ObjectiveSummary) -> String {
    match o.achieved_secs {
        Some(secs) => format!("{} ({})", o.verdict, crate::drill::evidence::human_seconds(secs)),
        None => o.verdict.clone(),
    }
}

/// The section in lines, for Markdown, HTML and the plain front-end.
pub fn lines(since: &SinceLast) -> Vec<String> {
    let Some(previous) = &since.previous else {
        return vec!["the first drill of this project with this runbook: no baseline yet".into()];
    };
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_string(), human_ms);
    let mut lines = vec![format!("last drill {} on {}: {}", previous.short_id(), previous.date(), previous.result())];
    for step in &since.steps {
        let change = step.change.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
        let flag = if step.slower {
            format!("  SLOWER: at least 1.5x the median of the last drills ({})", ms(step.median_ms))
        } else {
            String::new()
        };
        lines.push(format!("{}{change}: {} → {}{flag}", step.id, ms(step.then_ms), ms(step.now_ms)));
    }
    let trend: Vec<String> = since
        .rto_trend
        .iter()
        .map(|p| p.achieved_secs.map_or("not achieved".into(), crate::drill::evidence::human_seconds))
        .collect();
    lines.push(format!("RTO trend (oldest first): {}", trend.join(" → ")));
    lines
}

/// Before the drill: the last drill's outcome, RTO and RPO, each step
/// changed, added or removed since, and how long each step took then.
pub fn preview(since: &SinceLast) -> Vec<String> {
    let Some(previous) = &since.previous else {
        return vec!["since the last drill: this is the project's first drill of this runbook (no baseline)".into()];
    };
    let mut lines =
        vec![format!("since the last drill ({}, {}): {}", previous.date(), previous.short_id(), previous.result())];
    let took =
        |ms: Option<u64>| ms.map_or_else(|| "did not run then".to_string(), |ms| format!("took {} then", human_ms(ms)));
    for step in &since.steps {
        match &step.change {
            Some(change) if change == "added" => lines.push(format!("  step `{}` is new", step.id)),
            Some(change) => lines.push(format!("  step `{}` {change} ({})", step.id, took(step.then_ms))),
            None => lines.push(format!("  step `{}` {}", step.id, took(step.then_ms))),
        }
    }
    lines
}
