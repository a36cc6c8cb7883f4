//! The report's timeline: one row per step, one bar per attempt, an inline
//! SVG drawn to scale from the drill's start to its end, with the time no
//! drillbook process ran shaded.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;

use super::esc;
use crate::report::{AttemptReport, Report, StepReport};
use crate::runbook::duration::format_duration;

/// Left column (step names), plot area, and the geometry of one row.
const WIDTH: f64 = 1000.0;
const LABEL: f64 = 210.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 30.0;
const ROW: f64 = 24.0;
const BAR: f64 = 14.0;

pub(super) fn timeline(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"timeline\">\n<h2>Timeline</h2>");
    let Some(start) = parse(&report.started_at) else {
        let _ = writeln!(out, "<p class=\"muted\">No times to show.</p>\n</section>");
        return;
    };
    // Every attempt as (row, start, end, class, tooltip).
    let mut bars = Vec::new();
    let mut end = start;
    for (row, step) in report.steps.iter().enumerate() {
        for attempt in &step.attempts {
            let Some(from) = parse(&attempt.started_at) else { continue };
            let to = attempt_end(report, attempt, from);
            end = end.max(to);
            bars.push((row, from, to, bar_class(&attempt.result), attempt_tooltip(step, attempt, from, to)));
        }
    }
    // Steps that never ran are marked where they were settled (skipped, marked done).
    let mut marks = Vec::new();
    for (row, step) in report.steps.iter().enumerate() {
        let settled = report.deviations.iter().rev().find(|d| d.step == step.id && d.kind != "failed attempt");
        if let (true, Some(at)) = (step.attempts.is_empty(), settled.and_then(|d| parse(&d.at))) {
            end = end.max(at);
            marks.push((row, at));
        }
    }
    for time in [report.finished_at.as_deref(), report.rto.measured_to.as_deref()].into_iter().flatten() {
        end = end.max(parse(time).unwrap_or(start));
    }
    for session in &report.sessions {
        end = end.max(parse(&session.last_event_at).unwrap_or(start));
    }
    let span = secs_between(start, end).max(1.0);
    let plot = WIDTH - LABEL - RIGHT;
    let x = |t: Timestamp| LABEL + (secs_between(start, t).clamp(0.0, span) / span) * plot;
    let rows_height = ROW * report.steps.len().max(1) as f64;
    let height = TOP + rows_height + 44.0;
    let _ = writeln!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"Step timeline: one bar per attempt\">"
    );
    // Time no drillbook process ran: between one session's last event and the next one's start.
    for pair in report.sessions.windows(2) {
        if let [before, after] = pair
            && let (Some(from), Some(to)) = (parse(&before.last_event_at), parse(&after.started_at))
            && to > from
        {
            let (x1, x2) = (x(from), x(to).max(x(from) + 2.0));
            let (y1, y2) = (TOP - 4.0, TOP + rows_height);
            let _ = writeln!(
                out,
                "<polygon class=\"offline\" points=\"{x1:.1},{y1:.1} {x2:.1},{y1:.1} {x2:.1},{y2:.1} {x1:.1},{y2:.1}\"><title>no drillbook process ran for {}</title></polygon>",
                esc(&format_duration(dur(secs_between(from, to))))
            );
        }
    }
    // Time axis.
    let tick = tick_secs(span);
    let mut at = 0.0;
    while at <= span + 0.001 {
        let tx = LABEL + at / span * plot;
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/><text class=\"axis\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            TOP - 8.0,
            TOP + rows_height,
            TOP - 13.0,
            if at == 0.0 { "0".to_string() } else { format_duration(dur(at)) }
        );
        at += tick;
    }
    // Rows: step names, separators, and a word for steps that never ran.
    for (row, step) in report.steps.iter().enumerate() {
        let y = TOP + row as f64 * ROW;
        let class = if step.always { "label teardown" } else { "label" };
        let mut name = step.id.clone();
        if name.chars().count() > 28 {
            name = name.chars().take(27).collect::<String>() + "…";
        }
        let _ = writeln!(
            out,
            "<line class=\"rowline\" x1=\"0\" y1=\"{:.1}\" x2=\"{WIDTH}\" y2=\"{:.1}\"/><text class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{}{}</text>",
            y + ROW,
            y + ROW,
            LABEL - 10.0,
            y + ROW / 2.0 + 4.0,
            esc(&step.title),
            esc(&name),
            if step.always { " ↺" } else { "" }
        );
        if step.attempts.is_empty() {
            let mid = y + ROW / 2.0;
            let at = marks.iter().find(|(r, _)| *r == row).map(|(_, at)| x(*at));
            let (text_x, anchor) = match at {
                Some(mx) => {
                    let _ = writeln!(
                        out,
                        "<polygon class=\"mark\" points=\"{mx:.1},{:.1} {:.1},{mid:.1} {mx:.1},{:.1} {:.1},{mid:.1}\"/>",
                        mid - 5.0,
                        mx + 5.0,
                        mid + 5.0,
                        mx - 5.0
                    );
                    if mx > WIDTH - RIGHT - 110.0 { (mx - 9.0, "end") } else { (mx + 9.0, "start") }
                }
                None => (LABEL + 4.0, "start"),
            };
            let _ = writeln!(
                out,
                "<text class=\"note\" x=\"{text_x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                mid + 4.0,
                esc(&step.status)
            );
        }
    }
    // One bar per attempt.
    for (row, from, to, class, tooltip) in &bars {
        let y = TOP + *row as f64 * ROW + (ROW - BAR) / 2.0;
        let x1 = x(*from);
        let w = (x(*to) - x1).max(3.0);
        let _ = writeln!(
            out,
            "<rect class=\"{class}\" x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"2\"><title>{}</title></rect>",
            esc(tooltip)
        );
    }
    // The RTO span under the rows, and the target when it was passed.
    let base = TOP + rows_height + 14.0;
    if let (Some(from), Some(to)) =
        (report.rto.measured_from.as_deref().and_then(parse), report.rto.measured_to.as_deref().and_then(parse))
    {
        let (x1, x2) = (x(from), x(to));
        let label = format!(
            "RTO {}{}",
            format_duration(Duration::from_secs(report.rto.achieved_secs.unwrap_or(0))),
            if report.rto.verdict == "n/a" { String::new() } else { format!(" · {}", report.rto.verdict) }
        );
        let _ = writeln!(
            out,
            "<line class=\"rto\" x1=\"{x1:.1}\" y1=\"{base:.1}\" x2=\"{x2:.1}\" y2=\"{base:.1}\"/><line class=\"rto\" x1=\"{x1:.1}\" y1=\"{:.1}\" x2=\"{x1:.1}\" y2=\"{:.1}\"/><line class=\"rto\" x1=\"{x2:.1}\" y1=\"{:.1}\" x2=\"{x2:.1}\" y2=\"{:.1}\"/><text class=\"rto-text\" x=\"{x1:.1}\" y=\"{:.1}\">{}</text>",
            base - 5.0,
            base + 5.0,
            base - 5.0,
            base + 5.0,
            base + 18.0,
            esc(&label)
        );
        if let Some(target) = report.rto.target_secs
            && let Ok(deadline) = from.checked_add(jiff::SignedDuration::from_secs(target as i64))
            && deadline <= end
        {
            let dx = x(deadline);
            let _ = writeln!(
                out,
                "<line class=\"deadline\" x1=\"{dx:.1}\" y1=\"{:.1}\" x2=\"{dx:.1}\" y2=\"{:.1}\"/><text class=\"deadline-text\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">RTO target</text>",
                TOP - 4.0,
                base + 5.0,
                dx - 4.0,
                base + 18.0
            );
        }
    }
    let _ = writeln!(out, "</svg>");
    let _ = writeln!(
        out,
        "<div class=\"legend\"><span><span class=\"swatch\" style=\"background: var(--ok-bar)\"></span>succeeded</span>\
         <span><span class=\"swatch\" style=\"background: var(--bad-bar)\"></span>failed or timed out</span>\
         <span><span class=\"swatch\" style=\"background: var(--warn-bar)\"></span>interrupted</span>\
         <span><span class=\"swatch\" style=\"background: var(--skip-bar)\"></span>cancelled</span>\
         <span><span class=\"swatch\" style=\"background: var(--skip-bg); border: 1.5px dashed var(--skip)\"></span>skipped</span>\
         <span><span class=\"swatch\" style=\"border: 2px dashed var(--ok-bar)\"></span>marked done (not run)</span>\
         <span><span class=\"swatch\" style=\"background: var(--info-bar)\"></span>running</span>\
         <span><span class=\"swatch offline\"></span>no drillbook process running</span>\
         <span>↺ teardown (not counted in the RTO)</span></div>\n</section>"
    );
}

/// Where an attempt's bar ends: its end, else its start plus its duration,
/// else the last sign of life of the session it ran in.
fn attempt_end(report: &Report, attempt: &AttemptReport, from: Timestamp) -> Timestamp {
    if let Some(to) = attempt.finished_at.as_deref().and_then(parse) {
        return to.max(from);
    }
    if let Some(ms) = attempt.duration_ms
        && let Ok(to) = from.checked_add(jiff::SignedDuration::from_millis(ms as i64))
    {
        return to;
    }
    report
        .sessions
        .iter()
        .filter(|s| parse(&s.started_at).is_some_and(|t| t <= from))
        .filter_map(|s| parse(&s.last_event_at))
        .next_back()
        .unwrap_or(from)
        .max(from)
}

fn attempt_tooltip(step: &StepReport, attempt: &AttemptReport, from: Timestamp, to: Timestamp) -> String {
    let mut text = format!("{} · attempt {}: {}", step.id, attempt.number, attempt.result);
    if let Some(code) = attempt.exit_code {
        let _ = write!(text, ", exit {code}");
    }
    let _ = write!(
        text,
        " · {} → {} ({})",
        from.strftime("%H:%M:%S"),
        to.strftime("%H:%M:%S"),
        format_duration(dur(secs_between(from, to)))
    );
    text
}

fn bar_class(result: &str) -> &'static str {
    match result {
        "skipped" => "bar-skipped",
        "marked done" => "bar-marked",
        "succeeded" => "bar-succeeded",
        "failed" => "bar-failed",
        "timedout" => "bar-timedout",
        "cancelled" => "bar-cancelled",
        "running" => "bar-running",
        _ => "bar-interrupted",
    }
}

/// A round tick interval giving at most about eight ticks.
fn tick_secs(span: f64) -> f64 {
    const STEPS: [f64; 17] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
        43200.0,
    ];
    STEPS.iter().copied().find(|s| span / s <= 8.0).unwrap_or(86400.0 * (span / 86400.0 / 8.0).ceil().max(1.0))
}

fn parse(at: &str) -> Option<Timestamp> {
    at.parse().ok()
}

/// Seconds as a duration (never panics: negative or huge values saturate).
fn dur(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}

fn secs_between(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}
