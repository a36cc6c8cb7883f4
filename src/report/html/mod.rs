//! The report as one self-contained HTML file: inline CSS (light, prints
//! well), an inline SVG timeline, no scripts, no fonts, nothing fetched from
//! anywhere. Every piece of journal text is escaped.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Objective, Report, StepReport, escape_markup as esc, human_time, short};
use crate::runbook::duration::format_duration;

mod evidence;
mod files;
mod timeline;

use evidence::{evidence_lines, evidence_title};
use files::{FILES_STYLE, files_html};
use timeline::timeline;

pub(crate) const STYLE: &str = r#"
:root {
  --fg: #1d2330; --muted: #5b6475; --line: #dde2ea; --bg: #ffffff; --soft: #f5f7fa;
  --ok: #17693a; --ok-bg: #e2f3e8; --ok-bar: #2f9e5b;
  --bad: #b42318; --bad-bg: #fdeceb; --bad-bar: #d64545;
  --warn: #8a5300; --warn-bg: #fff3df; --warn-bar: #e8a33d;
  --info: #1e4fc2; --info-bg: #e7eeff; --info-bar: #4c7ce0;
  --skip: #5f6673; --skip-bg: #eef0f3; --skip-bar: #a3a9b4;
}
* { box-sizing: border-box; }
html { background: var(--soft); }
body { margin: 0; color: var(--fg); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 36px 48px; background: var(--bg); min-height: 100vh; }
h1 { font-size: 26px; line-height: 1.25; margin: 4px 0 8px; }
h2 { font-size: 19px; margin: 34px 0 12px; padding-bottom: 5px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 0; display: inline; }
p { margin: 6px 0; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 13px; }
code { background: var(--soft); border-radius: 3px; padding: 0 3px; overflow-wrap: anywhere; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px; margin: 6px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid var(--line); }
thead th { background: var(--soft); font-size: 13px; font-weight: 600; color: var(--muted); }
table.attempts { table-layout: fixed; }
table.kv > tbody > tr > th { width: 210px; background: var(--soft); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
td.when { white-space: nowrap; }
.eyebrow { color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: .08em; }
.meta { color: var(--muted); }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 10px; border-radius: 999px; border: 1px solid currentColor; font-size: 12px; font-weight: 700; letter-spacing: .05em; text-transform: uppercase; vertical-align: middle; white-space: nowrap; }
.ok { color: var(--ok); background: var(--ok-bg); }
.bad { color: var(--bad); background: var(--bad-bg); }
.warn { color: var(--warn); background: var(--warn-bg); }
.info { color: var(--info); background: var(--info-bg); }
.verdict { border: 2px solid currentColor; border-radius: 8px; padding: 8px 16px; margin: 12px 0; }
.verdict-line { font-size: 18px; margin: 4px 0; }
.verdict .findings { color: var(--fg); margin: 4px 0; }
.verdict .findings li.fails { font-weight: 600; }
tr.decided td { background: var(--bad-bg); }
svg .bar-skipped { fill: var(--skip-bg); stroke: var(--skip); stroke-width: 1.5; stroke-dasharray: 2 2; }
svg .bar-marked { fill: #fff; stroke: var(--ok-bar); stroke-width: 2; stroke-dasharray: 3 2; }
.skip { color: var(--skip); background: var(--skip-bg); }
.training { color: #6b21a8; background: #f3e8ff; }
.step { border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin: 14px 0; }
.step > header { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; margin-bottom: 6px; }
.step .index { color: var(--muted); font-weight: 600; }
.step h4 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 12px 0 2px; }
ul { margin: 4px 0; padding-left: 22px; }
ul.checklist { list-style: none; padding-left: 2px; }
.tick { display: inline-block; width: 1.3em; font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 13px; color: var(--muted); margin: 4px 0 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.swatch.offline { background: #e4e7ec; border: 1px solid #c9ced8; }
svg.timeline { width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
svg .label { font-size: 12px; fill: var(--fg); }
svg .label.teardown { font-style: italic; fill: var(--muted); }
svg .axis { font-size: 11px; fill: var(--muted); }
svg .grid { stroke: #e6e9ef; stroke-width: 1; }
svg .rowline { stroke: #f0f2f5; stroke-width: 1; }
svg .note { font-size: 11px; fill: var(--muted); font-style: italic; }
svg .bar-succeeded { fill: var(--ok-bar); }
svg .bar-failed { fill: var(--bad-bar); }
svg .bar-timedout { fill: #a61b1b; }
svg .bar-cancelled { fill: var(--skip-bar); }
svg .bar-interrupted { fill: var(--warn-bar); }
svg .bar-running { fill: var(--info-bar); }
svg .offline { fill: #e4e7ec; opacity: .8; }
svg .mark { fill: #fff; stroke: var(--skip-bar); stroke-width: 1.5; }
svg .rto { stroke: var(--info); stroke-width: 2; }
svg .rto-text { font-size: 11px; fill: var(--info); font-weight: 600; }
svg .deadline { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 4 3; }
svg .deadline-text { font-size: 11px; fill: var(--bad); font-weight: 600; }
.debrief { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.debrief > div { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.debrief h3 { display: block; font-size: 14px; margin-bottom: 4px; }
.pre-line { white-space: pre-line; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  html, body { background: #fff; }
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; min-height: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .step, tr, svg.timeline, .debrief > div { break-inside: avoid; page-break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { margin: 14mm; }
}
"#;

pub fn to_html(report: &Report) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let title = format!("Drill report: {}", report.runbook.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}{FILES_STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    );
    header(&mut out, report);
    summary(&mut out, report);
    timeline(&mut out, report);
    steps(&mut out, report);
    since_last(&mut out, report);
    deviations(&mut out, report);
    teardown(&mut out, report);
    people(&mut out, report);
    variables_and_notes(&mut out, report);
    sessions(&mut out, report);
    evidence(&mut out, report);
    let _ = write!(
        out,
        "<footer>Built by drillbook {} from the journal of drill <code>{}</code> alone.</footer>\n</main>\n</body>\n</html>\n",
        esc(&report.drillbook_version),
        esc(&report.drill_id)
    );
    out
}

fn header(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<header>\n<div class=\"eyebrow\">Disaster-recovery drill report</div>");
    let _ = write!(out, "<h1>{}", esc(&report.runbook.title));
    if report.training {
        let _ = write!(out, " <span class=\"badge training\">TRAINING</span>");
    }
    let _ = writeln!(out, " {}</h1>", badge(outcome_class(&report.outcome), &report.outcome));
    let finished = report.finished_at.as_deref().map_or_else(|| "not finished".to_string(), human_time);
    let _ = writeln!(
        out,
        "<p class=\"meta\">Drill <code>{}</code> · runbook <code>{}</code> · {} on {} · {} → {}</p>",
        esc(&report.drill_id),
        esc(&report.runbook.id),
        esc(&report.operator),
        esc(&report.host),
        esc(&human_time(&report.started_at)),
        esc(&finished)
    );
    verdict(out, report);
    let _ = writeln!(out, "</header>");
}

/// The verdict first, with what decided it, highlighted: a reader who stops
/// here is not misled.
fn verdict(out: &mut String, report: &Report) {
    let class = outcome_class(&report.outcome);
    let _ = writeln!(
        out,
        "<div class=\"verdict {class}\" id=\"verdict\"><p class=\"verdict-line\">Verdict: <strong>{}</strong> · RTO {} · RPO {}{}</p>",
        esc(&report.outcome),
        badge(verdict_class(&report.rto.verdict), &report.rto.verdict),
        badge(verdict_class(&report.rpo.verdict), &report.rpo.verdict),
        report
            .rpo_data
            .as_ref()
            .map(|o| format!(" · RPO by data {}", badge(verdict_class(&o.verdict), &o.verdict)))
            .unwrap_or_default()
    );
    let deciding: Vec<_> = report.findings.iter().filter(|f| f.fails || report.outcome != "failed").collect();
    if !deciding.is_empty() {
        let _ = writeln!(out, "<ul class=\"findings\">");
        for finding in deciding {
            let step = finding.step.as_ref().map(|s| format!("<code>{}</code>: ", esc(s))).unwrap_or_default();
            let weight = if finding.fails { " class=\"fails\"" } else { "" };
            let _ = writeln!(
                out,
                "<li{weight}>{step}<strong>{}</strong>: {}</li>",
                esc(&finding.kind),
                rich(&finding.text)
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    if let Some(reason) = &report.outcome_reason {
        let _ = writeln!(out, "<p class=\"muted\">The drill ended: {}</p>", esc(reason));
    }
    let _ = writeln!(out, "</div>");
}

fn summary(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"kv\"><tbody>");
    let objective = |name: &str, o: &Objective| {
        format!(
            "<tr><th>{name}</th><td>{} {}</td></tr>\n",
            badge(verdict_class(&o.verdict), &o.verdict),
            rich(&o.detail)
        )
    };
    out.push_str(&objective("RTO", &report.rto));
    out.push_str(&objective("RPO", &report.rpo));
    if let Some(rpo_data) = &report.rpo_data {
        out.push_str(&objective("RPO by data", rpo_data));
    }
    let _ = writeln!(
        out,
        "<tr><th>Production vs DR tag</th><td>{} {}{}</td></tr>",
        badge(verdict_class(&report.tags.verdict), &report.tags.verdict),
        rich(&report.tags.detail),
        tag_sides(report)
    );
    let env = &report.environment;
    let kube = if env.kubernetes.is_empty() {
        "<span class=\"muted\">none recorded</span>".to_string()
    } else {
        env.kubernetes
            .iter()
            .map(|t| {
                let server = t.server.as_ref().map(|s| format!(" <span class=\"muted\">({})</span>", esc(s))).unwrap_or_default();
                format!(
                    "context <code>{}</code>{server}, namespace <code>{}</code> <span class=\"muted\">(steps {})</span>",
                    esc(&t.context),
                    esc(&t.namespace),
                    code_list(&t.steps)
                )
            })
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let _ = writeln!(out, "<tr><th>Kubernetes</th><td>{kube}</td></tr>");
    let s3 = if env.s3.is_empty() {
        "<span class=\"muted\">none recorded</span>".to_string()
    } else {
        env.s3
            .iter()
            .map(|t| {
                format!(
                    "bucket <code>{}</code> at <code>{}</code> <span class=\"muted\">(steps {})</span>",
                    esc(&t.bucket),
                    esc(t.endpoint.as_deref().unwrap_or("the AWS default endpoint")),
                    code_list(&t.steps)
                )
            })
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let _ = writeln!(out, "<tr><th>S3</th><td>{s3}</td></tr>");
    let rows = [
        (
            "Runbook",
            format!(
                "<code>{}</code> · {} · sha256 <code>{}</code>",
                esc(&report.runbook.id),
                esc(&report.runbook.path),
                esc(short(&report.runbook.sha256))
            ),
        ),
        ("Operator", format!("{} on {}", esc(&report.operator), esc(&report.host))),
        (
            "Participants",
            if report.participants.is_empty() {
                "<span class=\"muted\">none recorded</span>".into()
            } else {
                report
                    .participants
                    .iter()
                    .map(|p| format!("{} <span class=\"muted\">({})</span>", esc(&p.name), esc(&p.role)))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("Started", esc(&human_time(&report.started_at))),
        ("Finished", report.finished_at.as_deref().map_or_else(|| "not yet".into(), |f| esc(&human_time(f)))),
        ("Duration", esc(&format_duration(Duration::from_secs(report.elapsed_secs)))),
        ("Deviations", report.deviations.len().to_string()),
        ("drillbook", esc(&report.drillbook_version)),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    let _ = writeln!(out, "</tbody></table>\n</section>");
}

fn tag_sides(report: &Report) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &report.tags.production {
        let place = place(p.context.as_deref(), p.namespace.as_deref());
        parts.push(format!("production: <code>{}</code>{place}", esc(&p.tag)));
    }
    if let Some(dr) = &report.tags.dr {
        let place = place(dr.context.as_deref(), dr.namespace.as_deref());
        let running: Vec<String> =
            dr.running.iter().map(|(w, t)| format!("{} <code>{}</code>", esc(w), esc(t))).collect();
        parts.push(format!("DR: {}{place}", running.join(", ")));
    }
    if parts.is_empty() { String::new() } else { format!("<br><span class=\"muted\">{}</span>", parts.join("; ")) }
}

fn place(context: Option<&str>, namespace: Option<&str>) -> String {
    match (context, namespace) {
        (Some(c), Some(n)) => format!(" in {}/{}", esc(c), esc(n)),
        (None, Some(n)) => format!(" in {}", esc(n)),
        _ => String::new(),
    }
}

fn steps(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"steps\">\n<h2>Steps</h2>");
    let _ = writeln!(
        out,
        "<table><thead><tr><th>#</th><th>Step</th><th>Kind</th><th>Status</th><th>Attempts</th><th>Duration</th><th>Exit</th></tr></thead><tbody>"
    );
    for (index, step) in report.steps.iter().enumerate() {
        let last = step.attempts.last();
        let duration =
            last.and_then(|a| a.duration_ms).map(|ms| format_duration(Duration::from_millis(ms))).unwrap_or_default();
        let exit = last.and_then(|a| a.exit_code).map(|c| c.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}{} <code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            index + 1,
            esc(&step.title),
            if step.always { " <span class=\"muted\">↺ teardown</span>" } else { "" },
            esc(&step.id),
            esc(&step.kind),
            badge(status_class(&step.status), &step.status),
            step.attempts.len(),
            esc(&duration),
            esc(&exit)
        );
    }
    let _ = writeln!(out, "</tbody></table>");
    for (index, step) in report.steps.iter().enumerate() {
        step_section(out, index, step);
    }
    let _ = writeln!(out, "</section>");
}

fn step_section(out: &mut String, index: usize, step: &StepReport) {
    let _ = writeln!(
        out,
        "<section class=\"step\">\n<header><span class=\"index\">{}.</span><h3>{}</h3><code>{}</code><span class=\"muted\">{}{}{}</span>{}</header>",
        index + 1,
        esc(&step.title),
        esc(&step.id),
        esc(&step.kind),
        if step.always { " · teardown" } else { "" },
        if step.optional { " · optional" } else { "" },
        badge(status_class(&step.status), &step.status)
    );
    if let Some(detail) = &step.detail {
        let _ = writeln!(out, "<p class=\"pre-line\">{}</p>", rich(detail));
    }
    if !step.attempts.is_empty() {
        let _ = writeln!(
            out,
            "<h4>Attempts</h4>\n<table class=\"attempts\"><colgroup><col style=\"width: 5%\"><col style=\"width: 24%\"><col style=\"width: 20%\"><col style=\"width: 10%\"><col style=\"width: 6%\"><col></colgroup>\n<thead><tr><th>#</th><th>Result</th><th>Started</th><th>Duration</th><th>Exit</th><th>Log</th></tr></thead><tbody>"
        );
        for attempt in &step.attempts {
            let log = match (&attempt.log, &attempt.log_sha256) {
                (Some(log), Some(hash)) => {
                    format!(
                        "<code>{}</code><br><span class=\"muted\">sha256 <code>{}</code></span>",
                        esc(log),
                        esc(hash)
                    )
                }
                (Some(log), None) => format!("<code>{}</code>", esc(log)),
                (None, Some(hash)) => format!("sha256 <code>{}</code>", esc(hash)),
                (None, None) => String::new(),
            };
            // "interrupted: WHY" is a short badge and the why under it.
            let (result, why) = match attempt.result.split_once(": ") {
                Some((result, why)) => (result, Some(why)),
                None => (attempt.result.as_str(), attempt.reason.as_deref().filter(|_| attempt.result != "succeeded")),
            };
            let reason = why.map(|r| format!("<br><span class=\"pre-line\">{}</span>", rich(r))).unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}{reason}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{log}</td></tr>",
                attempt.number,
                badge(result_class(&attempt.result), result),
                esc(&human_time(&attempt.started_at)),
                attempt.duration_ms.map(|ms| esc(&format_duration(Duration::from_millis(ms)))).unwrap_or_default(),
                attempt.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            );
            if let Some(command) = &attempt.command {
                let _ = writeln!(out, "<tr><td></td><td colspan=\"5\"><pre>{}</pre></td></tr>", esc(command));
            }
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    if !step.captures.is_empty() {
        let _ = writeln!(out, "<h4>Captures</h4>\n<ul>");
        for (name, value) in &step.captures {
            let _ = write!(out, "<li><code>{}</code> = <code>{}</code>", esc(name), esc(&value.value));
            if !value.fields.is_empty() {
                let _ = write!(out, "<ul>");
                for (field, field_value) in &value.fields {
                    let shown = field_value.as_str().map_or_else(|| field_value.to_string(), str::to_string);
                    let _ = write!(
                        out,
                        "<li><code>{}.{}</code> = <code>{}</code></li>",
                        esc(name),
                        esc(field),
                        esc(&shown)
                    );
                }
                let _ = write!(out, "</ul>");
            }
            let _ = writeln!(out, "</li>");
        }
        let _ = writeln!(out, "</ul>");
    }
    if let Some(evidence) = &step.evidence {
        let _ = writeln!(out, "<h4 class=\"evidence\">{}</h4>\n<ul>", evidence_title(evidence));
        for line in evidence_lines(evidence) {
            let _ = writeln!(out, "<li>{line}</li>");
        }
        let _ = writeln!(out, "</ul>");
    }
    files_html(out, &step.files);
    if !step.checklist.is_empty() {
        let _ = writeln!(out, "<h4>Checklist</h4>\n<ul class=\"checklist\">");
        for item in &step.checklist {
            let (tick, class) = if item.ticked { ("☑", "ok") } else { ("☐", "muted") };
            let _ = writeln!(out, "<li><span class=\"tick {class}\">{tick}</span>{}</li>", esc(&item.item));
        }
        let _ = writeln!(out, "</ul>");
    }
    if !step.operators.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">Driven by {}</p>", esc(&step.operators.join(", ")));
    }
    if !step.confirmations.is_empty() {
        let _ = writeln!(out, "<h4>Confirmations</h4>\n<ul>");
        for confirmation in &step.confirmations {
            let _ = writeln!(out, "<li>{}</li>", rich(confirmation));
        }
        let _ = writeln!(out, "</ul>");
    }
    if !step.notes.is_empty() {
        let _ = writeln!(out, "<h4>Notes</h4>\n<ul>");
        for note in &step.notes {
            let _ = writeln!(
                out,
                "<li><span class=\"muted\">{}</span> <span class=\"pre-line\">{}</span></li>",
                esc(&human_time(&note.at)),
                esc(&note.text)
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "</section>");
}

/// This drill against the project's last drills: a slower step is marked.
fn since_last(out: &mut String, report: &Report) {
    if !report.removed_steps.is_empty() {
        let _ = writeln!(out, "<section id=\"removed\">\n<h2>Steps the project does without</h2>\n<ul>");
        for removed in &report.removed_steps {
            let _ = writeln!(out, "<li><code>{}</code>: {}</li>", esc(&removed.step), esc(&removed.reason));
        }
        let _ = writeln!(out, "</ul>\n</section>");
    }
    let Some(since) = &report.since_last else { return };
    let _ = writeln!(out, "<section id=\"since-last\">\n<h2>Since the last drill</h2>\n<ul>");
    for line in crate::report::history::lines(since) {
        let class = if line.contains("SLOWER") { " class=\"bad\"" } else { "" };
        let _ = writeln!(out, "<li{class}>{}</li>", esc(&line));
    }
    let _ = writeln!(out, "</ul>\n</section>");
}

fn deviations(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"deviations\">\n<h2>Deviations</h2>");
    if report.deviations.is_empty() {
        let _ = writeln!(out, "<p>None: every step ran once and succeeded.</p>\n</section>");
        return;
    }
    let _ = writeln!(
        out,
        "<table><thead><tr><th>Time</th><th>Step</th><th>Deviation</th><th>Detail</th></tr></thead><tbody>"
    );
    for deviation in &report.deviations {
        let kind = match &deviation.cause {
            Some(cause) if deviation.kind == "skipped" => format!("skipped ({})", cause.replace('_', "-")),
            _ => deviation.kind.clone(),
        };
        // A deviation that decided the verdict stands out.
        let decided = report.findings.iter().any(|f| f.fails && f.step.as_deref() == Some(deviation.step.as_str()));
        let class = match deviation.kind.as_str() {
            "failed attempt" => "bad",
            _ if decided => "bad",
            "interrupted" | "confirmation declined" | "marked done" | "skipped" => "warn",
            "retry" => "info",
            _ => "skip",
        };
        let row = if decided { " class=\"decided\"" } else { "" };
        let _ = writeln!(
            out,
            "<tr{row}><td class=\"when\">{}</td><td>{} <code>{}</code></td><td>{}</td><td class=\"pre-line\">{}</td></tr>",
            esc(&human_time(&deviation.at)),
            esc(&deviation.step_title),
            esc(&deviation.step),
            badge(class, &kind),
            rich(&deviation.detail)
        );
    }
    let _ = writeln!(out, "</tbody></table>\n</section>");
}

fn teardown(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"teardown\">\n<h2>Teardown</h2>");
    if report.teardown.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">The runbook has no teardown (<code>always</code>) steps.</p>\n</section>"
        );
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">Steps that run even when the drill stops early; their time does not count against the RTO.</p>\n\
         <table><thead><tr><th>Step</th><th>Ran</th><th>Ended</th><th>Attempts</th><th>Started</th><th>Finished</th></tr></thead><tbody>"
    );
    for step in &report.teardown {
        let detail = step.detail.as_ref().map(|d| format!(" {}", rich(d))).unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td>{} <code>{}</code></td><td>{}</td><td>{}{detail}</td><td class=\"num\">{}</td><td class=\"when\">{}</td><td class=\"when\">{}</td></tr>",
            esc(&step.title),
            esc(&step.step),
            if step.ran { "yes" } else { "no" },
            badge(status_class(&step.status), &step.status),
            step.attempts,
            step.started_at.as_deref().map(|t| esc(&human_time(t))).unwrap_or_default(),
            step.finished_at.as_deref().map(|t| esc(&human_time(t))).unwrap_or_default()
        );
    }
    let _ = writeln!(out, "</tbody></table>\n</section>");
}

fn people(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"participants\">\n<h2>Participants</h2>");
    let _ = writeln!(out, "<table><thead><tr><th>Name</th><th>Role</th></tr></thead><tbody>");
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td>operator <span class=\"muted\">(ran drillbook on {})</span></td></tr>",
        esc(&report.operator),
        esc(&report.host)
    );
    for participant in &report.participants {
        let _ = writeln!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(&participant.name), esc(&participant.role));
    }
    let _ = writeln!(out, "</tbody></table>");
    if !report.handoffs.is_empty() {
        let _ = writeln!(out, "<h3>Hand-offs</h3>\n<ul>");
        for handoff in &report.handoffs {
            let how = if handoff.taken_over { " (expired lease taken over, confirmed by name)" } else { "" };
            let _ = writeln!(
                out,
                "<li>{}: {} → {}{how}</li>",
                esc(&human_time(&handoff.at)),
                esc(&handoff.from),
                esc(&handoff.to)
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "</section>");

    let _ = writeln!(out, "<section id=\"action-items\">\n<h2>Action items</h2>");
    if report.action_items.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">None recorded.</p>");
    } else {
        let _ = writeln!(
            out,
            "<table><thead><tr><th>Action</th><th>Owner</th><th>Step</th><th>Added</th></tr></thead><tbody>"
        );
        for item in &report.action_items {
            let _ = writeln!(
                out,
                "<tr><td class=\"pre-line\">{}</td><td>{}</td><td>{}</td><td class=\"when\">{}</td></tr>",
                esc(&item.text),
                item.owner.as_deref().map_or_else(|| "<span class=\"muted\">no owner</span>".into(), esc),
                item.step.as_deref().map(|s| format!("<code>{}</code>", esc(s))).unwrap_or_default(),
                esc(&human_time(&item.at))
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    let _ = writeln!(out, "</section>\n<section id=\"debrief\">\n<h2>Debrief</h2>");
    match &report.debrief {
        Some(debrief) => {
            let _ = writeln!(
                out,
                "<div class=\"debrief\"><div><h3>What went well</h3><p class=\"pre-line\">{}</p></div><div><h3>What to improve</h3><p class=\"pre-line\">{}</p></div></div>\n<p class=\"muted\">Recorded {}.</p>",
                esc(debrief.went_well.trim()),
                esc(debrief.to_improve.trim()),
                esc(&human_time(&debrief.at))
            );
        }
        None => {
            let _ = writeln!(out, "<p class=\"muted\">Not recorded.</p>");
        }
    }
    let _ = writeln!(out, "</section>");
}

fn variables_and_notes(out: &mut String, report: &Report) {
    if !report.vars.is_empty() || !report.secret_vars.is_empty() {
        let _ = writeln!(out, "<section id=\"variables\">\n<h2>Variables</h2>\n<table class=\"kv\"><tbody>");
        for (name, value) in &report.vars {
            let _ = writeln!(out, "<tr><th><code>{}</code></th><td><code>{}</code></td></tr>", esc(name), esc(value));
        }
        for name in &report.secret_vars {
            let _ = writeln!(
                out,
                "<tr><th><code>{}</code></th><td class=\"muted\">secret, not recorded</td></tr>",
                esc(name)
            );
        }
        let _ = writeln!(out, "</tbody></table>\n</section>");
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "<section id=\"notes\">\n<h2>Notes</h2>\n<ul>");
        for note in &report.notes {
            let _ = writeln!(
                out,
                "<li><span class=\"muted\">{}</span> <span class=\"pre-line\">{}</span></li>",
                esc(&human_time(&note.at)),
                esc(&note.text)
            );
        }
        let _ = writeln!(out, "</ul>\n</section>");
    }
}

fn sessions(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<section id=\"sessions\">\n<h2>Sessions</h2>\n<table><thead><tr><th>pid</th><th>Host</th><th>Mode</th><th>From</th><th>To</th><th>Ended</th></tr></thead><tbody>"
    );
    for session in &report.sessions {
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            session.pid,
            esc(&session.host),
            esc(&session.mode),
            esc(&human_time(&session.started_at)),
            esc(&human_time(&session.last_event_at)),
            session.end_reason.as_deref().map_or_else(
                || "<span class=\"muted\">not recorded: the process stopped without ending it</span>".to_string(),
                esc
            )
        );
    }
    let _ = writeln!(out, "</tbody></table>");
    if let Some(offline) = report.rto.offline_ms {
        let _ = writeln!(
            out,
            "<p>Within the RTO span, no drillbook process ran for {}.</p>",
            esc(&format_duration(Duration::from_millis(offline)))
        );
    }
    let _ = writeln!(out, "</section>");
}

fn evidence(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<section id=\"evidence\">\n<h2>Evidence</h2>\n<table class=\"kv\"><tbody>\
         <tr><th>Journal</th><td>{} events</td></tr>\
         <tr><th>Evidence chain head</th><td><code>{}</code></td></tr>\
         <tr><th>Runbook sha256</th><td><code>{}</code></td></tr>\
         </tbody></table>\n<p>Check the chain with <code>drillbook verify {}</code>: any changed, inserted or removed journal line breaks it.</p>\n</section>",
        report.journal.events,
        esc(report.journal.head_sha256.as_deref().unwrap_or("unknown")),
        esc(&report.runbook.sha256),
        esc(&report.drill_id)
    );
}

/// Escaped text where `backquoted` words become code, as in the Markdown.
fn rich(text: &str) -> String {
    let escaped = esc(text);
    let parts: Vec<&str> = escaped.split('`').collect();
    if parts.len() < 3 {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 16);
    for (index, part) in parts.iter().enumerate() {
        match (index % 2 == 1, index + 1 == parts.len()) {
            // An unpaired backquote at the end stays as it was.
            (true, true) => {
                out.push('`');
                out.push_str(part);
            }
            (true, false) => {
                let _ = write!(out, "<code>{part}</code>");
            }
            (false, _) => out.push_str(part),
        }
    }
    out
}

fn badge(class: &str, text: &str) -> String {
    format!("<span class=\"badge {class}\">{}</span>", esc(text))
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "passed" => "ok",
        "passed with deviations" => "warn",
        "failed" | "aborted" => "bad",
        _ => "info",
    }
}

fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "PASS" | "match" => "ok",
        "FAIL" | "mismatch" | "not achieved" | "not demonstrated" => "bad",
        _ => "skip",
    }
}

fn status_class(status: &str) -> &'static str {
    match status {
        "done" => "ok",
        "marked done" => "warn",
        "failed" => "bad",
        "interrupted" => "warn",
        "running" => "info",
        _ => "skip",
    }
}

fn result_class(result: &str) -> &'static str {
    match result {
        "succeeded" => "ok",
        "failed" | "timedout" => "bad",
        "running" => "info",
        "cancelled" => "skip",
        _ => "warn",
    }
}

fn code_list(items: &[String]) -> String {
    items.iter().map(|s| format!("<code>{}</code>", esc(s))).collect::<Vec<_>>().join(", ")
}
