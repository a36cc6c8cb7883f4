//! The selected step: what it is, where it acts, its help, the command as
//! it will run (secrets as `${ENV}` references), and for manual and
//! checklist steps what the operator has to do.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget, Wrap};

use crate::drill::state::StepStatus;
use crate::runbook::Action;
use crate::ui::app::App;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let Some(step) = app.runbook.steps.get(app.selected) else { return };
    let state = app.drill.as_ref().and_then(|d| d.steps.get(app.selected));
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(Span::styled(format!(" {} ", step.title), theme.title()));
    let mut lines: Vec<Line> = Vec::new();

    if let Some(drill) = app.drill.as_ref().filter(|d| d.finished.is_some()) {
        verdict_lines(app, drill, &mut lines);
    }

    let status = state.map_or("pending", |s| s.status.label());
    let mut meta = vec![
        Span::styled(step.kind.name(), theme.code()),
        Span::raw(" · "),
        Span::raw(status),
        Span::styled(format!(" · `{}`", step.id), theme.dim()),
    ];
    if let Some(state) = state
        && state.attempt_count() > 1
    {
        let (total, last) = super::step_list::step_time(app, state);
        let took = |d| crate::runbook::duration::format_duration(d);
        let time = format!(" · attempt {} · {} in all, last {}", state.attempt_count(), took(total), took(last));
        meta.push(Span::styled(time, theme.dim()));
    }
    if step.always {
        meta.push(Span::styled(" · teardown (always runs)", theme.warn()));
    }
    if step.optional {
        meta.push(Span::styled(" · optional", theme.dim()));
    }
    lines.push(Line::from(meta));
    if let Some(target) = app.step_target(app.selected) {
        let mut spans = vec![Span::styled("target: ", theme.dim()), Span::styled(target, theme.warn())];
        if is_protected_target(app, app.selected) {
            spans.push(Span::styled("  protected: read-only", theme.ok().add_modifier(Modifier::BOLD)));
        }
        lines.push(Line::from(spans));
    }
    if let Some(StepStatus::Failed { reason }) = state.map(|s| &s.status) {
        let code = state.and_then(|s| s.attempts.last()).and_then(|a| a.exit_code);
        let code =
            code.filter(|_| !reason.contains("exit code")).map(|c| format!(" (exit code {c})")).unwrap_or_default();
        lines.push(Line::from(Span::styled(format!("✗ {reason}{code}"), theme.bad())));
    }
    if let Some(StepStatus::Skipped { reason, .. } | StepStatus::MarkedDone { note: reason }) = state.map(|s| &s.status)
    {
        lines.push(Line::from(Span::styled(format!("↷ {reason}"), theme.dim())));
    }
    let running = matches!(state.map(|s| &s.status), Some(StepStatus::Running { .. }));
    let table = app.pods.get(&app.selected);
    if running
        && let Some(progress) = app.progress.get(&app.selected)
        && table.is_none_or(|t| &t.summary != progress)
    {
        lines.push(progress_line(app, progress));
    }
    if let Some(table) = table {
        // Rows below the pane would not be seen: leave room for the header
        // lines, the "more" line and the failing pod's line.
        let inner = area.height.saturating_sub(2) as usize;
        let max_rows = inner.saturating_sub(lines.len() + 4).max(3);
        pod_table(app, table, area.width.saturating_sub(2) as usize, max_rows, &mut lines);
    }
    match &step.action {
        Action::Manual if running => {
            lines.push(Line::from(vec![
                Span::styled("Do this, then press ", theme.warn()),
                Span::styled("enter", theme.key()),
                Span::styled(" (or ", theme.warn()),
                Span::styled("s", theme.key()),
                Span::styled(" to skip it, with a reason).", theme.warn()),
            ]));
        }
        Action::Checklist(list) => {
            for (index, item) in list.items.iter().enumerate() {
                let ticked = state.is_some_and(|s| s.ticked(index));
                let failed = state.and_then(|s| s.failed_items.get(&index));
                let cursor = running && index == app.checklist_cursor;
                let mark = match (ticked, failed) {
                    (_, Some(_)) => "[!]",
                    (true, None) => "[x]",
                    (false, None) => "[ ]",
                };
                let optional = if item.required { "" } else { " (optional)" };
                let style = match (ticked, failed) {
                    (_, Some(_)) => theme.bad(),
                    (true, None) => theme.ok(),
                    (false, None) => ratatui::style::Style::new(),
                };
                let mut spans = vec![
                    Span::raw(if cursor { "▶ " } else { "  " }),
                    Span::styled(format!("{mark} {}{optional}", item.text), style),
                ];
                if let Some(note) = failed {
                    spans.push(Span::styled(format!(" — failed: {note}"), theme.bad()));
                }
                let line = Line::from(spans);
                lines.push(if cursor { line.patch_style(theme.selected()) } else { line });
            }
            if running {
                lines.push(Line::from(Span::styled(
                    "space ticks · f: it failed · enter finishes · n adds a note · o opens the link",
                    theme.dim(),
                )));
            }
        }
        Action::Command(spec) => {
            let context = app.template_context();
            let command = match (&state.and_then(|s| s.attempts.last()).and_then(|a| a.command.clone()), running) {
                (Some(command), _) => command.clone(),
                (None, _) => {
                    let script =
                        app.templater.render_shell(&spec.run.text, &context).unwrap_or_else(|_| spec.run.text.clone());
                    crate::engine::command_step::shown_as_run(&script)
                }
            };
            for (index, line) in command.lines().enumerate() {
                let prompt = if index == 0 { "$ " } else { "  " };
                lines.push(Line::from(vec![
                    Span::styled(prompt, theme.dim()),
                    Span::styled(line.to_string(), theme.code()),
                ]));
            }
        }
        Action::SqlCheck(spec) => {
            let result = match state.and_then(|s| s.evidence.as_ref()) {
                Some(crate::drill::evidence::Evidence::Sql(result)) => Some(result),
                _ => None,
            };
            sql_table(app, spec, result, running, area.width.saturating_sub(2) as usize, &mut lines);
        }
        Action::DnsCheck(_) => match state.and_then(|s| s.evidence.as_ref()) {
            // The whole answer, as the reports give it.
            Some(crate::drill::evidence::Evidence::Dns(result)) => {
                for line in crate::report::data::dns_lines(result) {
                    let style = if line.contains("FAILED") { theme.bad() } else { theme.code() };
                    lines.push(Line::from(Span::styled(line, style)));
                }
            }
            _ if running => lines.push(Line::from(Span::styled("asking DNS…", theme.warn()))),
            _ => {}
        },
        Action::K8sIsolation(_) => match state.and_then(|s| s.evidence.as_ref()) {
            Some(crate::drill::evidence::Evidence::Isolation(result)) => isolation_table(result, &theme, &mut lines),
            _ if running => lines.push(Line::from(Span::styled("reading DR and production…", theme.warn()))),
            _ => {}
        },
        Action::BrowserCheck(spec) => {
            let attempt = state.map_or(0, |s| s.attempt_count());
            let result = match state.and_then(|s| s.evidence.as_ref()) {
                // Only the current attempt's results: a retry starts the list afresh.
                Some(crate::drill::evidence::Evidence::Browser(result)) if result.attempt == attempt => Some(result),
                _ => None,
            };
            browser_actions(app, spec, result, running, &mut lines);
        }
        _ => {}
    }
    // Screenshots and attachments kept for the step (`A` attaches one).
    for file in state.iter().flat_map(|s| s.files.iter()) {
        lines.push(Line::from(vec![
            Span::styled(format!("{}: ", file.origin.as_str()), theme.dim()),
            Span::raw(file.label.clone()),
            Span::styled(
                format!(
                    "  {} · sha256 {}",
                    crate::drill::evidence::human_bytes(file.bytes),
                    file.sha256.get(..12).unwrap_or(&file.sha256)
                ),
                theme.dim(),
            ),
        ]));
    }
    // The step's notes, newest last.
    for note in app.drill.iter().flat_map(|d| d.notes.iter()).filter(|n| n.step.as_deref() == Some(step.id.as_str())) {
        lines.push(Line::from(vec![Span::styled("note: ", theme.dim()), Span::raw(note.text.clone())]));
    }
    if let Some(url) = &step.url {
        let rendered = app.templater.render_plain(&url.text, &app.template_context()).unwrap_or(url.text.clone());
        lines.push(Line::from(vec![Span::styled("link: ", theme.dim()), Span::raw(rendered)]));
    }
    if let Some(help) = &step.help {
        let rendered = app.templater.render_plain(help, &app.template_context()).unwrap_or_else(|_| help.clone());
        lines.push(Line::raw(""));
        let markdown: Text = tui_markdown::from_str(&rendered);
        for line in markdown.lines {
            let owned: Vec<Span<'static>> =
                line.spans.into_iter().map(|s| Span::styled(s.content.into_owned(), s.style)).collect();
            lines.push(Line::from(owned).style(line.style));
        }
    }
    Paragraph::new(lines).block(block).wrap(Wrap { trim: false }).render(area, buf);
}

/// A data check's queries as a table that fills in as they answer: name,
/// what is expected, the answer and its verdict; then the fingerprint and
/// what its comparison found.
fn sql_table(
    app: &App,
    spec: &crate::runbook::SqlCheckSpec,
    result: Option<&crate::drill::evidence::SqlResult>,
    running: bool,
    width: usize,
    lines: &mut Vec<Line<'static>>,
) {
    let theme = app.theme;
    let fit = |text: &str, room: usize| -> String {
        let text: String = text.chars().take(room.saturating_sub(1)).collect();
        format!("{text:<room$}")
    };
    let (name_w, expect_w) = (24.min(width / 3), 16);
    let answer_w = width.saturating_sub(name_w + expect_w + 8).clamp(8, 28);
    if !spec.checks.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("{}{}{}verdict", fit("check", name_w), fit("expected", expect_w), fit("answer", answer_w)),
            theme.dim(),
        )));
    }
    let answered = result.map_or(0, |r| r.checks.len());
    for (index, check) in spec.checks.iter().enumerate() {
        let expected = if check.freshness {
            "newest data".to_string()
        } else {
            check.expect.as_ref().map_or("-".into(), |e| e.to_string())
        };
        let row = |answer: &str, verdict: Span<'static>| {
            Line::from(vec![
                Span::raw(fit(&check.name, name_w)),
                Span::styled(fit(&expected, expect_w), theme.dim()),
                Span::styled(fit(answer, answer_w), theme.code()),
                verdict,
            ])
        };
        match result.and_then(|r| r.checks.get(index)) {
            Some(done) => {
                let answer = done.answer.as_deref().unwrap_or("(no value)");
                let verdict = match (&done.problem, done.passed) {
                    (_, true) => Span::styled("✓", theme.ok()),
                    (Some(problem), false) => Span::styled(format!("✗ {problem}"), theme.bad()),
                    (None, false) => Span::styled("✗", theme.bad()),
                };
                lines.push(row(answer, verdict));
            }
            None if running && index == answered => lines.push(row("…", Span::styled("asking", theme.warn()))),
            None => lines.push(row("", Span::styled("·", theme.dim()))),
        }
    }
    let Some(result) = result else { return };
    if let Some(print) = &result.fingerprint {
        let estimated = print.tables.values().filter(|t| !t.exact).count();
        lines.push(Line::from(Span::styled(
            format!(
                "fingerprint: {} tables ({} estimated), schema {}",
                print.tables.len(),
                estimated,
                &print.schema_hash[..12.min(print.schema_hash.len())]
            ),
            theme.dim(),
        )));
    }
    if let Some(comparison) = &result.comparison {
        let text = match &comparison.baseline {
            None => "no earlier completed drill to compare with: this is the baseline".to_string(),
            Some(baseline) => format!("vs drill {}: {} table(s) changed", short(baseline), comparison.changes.len()),
        };
        lines.push(Line::from(Span::styled(text, theme.dim())));
        for problem in &comparison.problems {
            lines.push(Line::from(Span::styled(format!("! {problem}"), theme.bad())));
        }
    }
}

/// A browser check's actions, each with its result once it ran (live, as
/// the evidence is journaled after every action): ✓ with the time taken and
/// where the page was, ✗ with why, `…` for the one running. Never a value
/// typed into a field: only the selectors.
fn browser_actions(
    app: &App,
    spec: &crate::runbook::BrowserCheckSpec,
    result: Option<&crate::drill::evidence::BrowserResult>,
    running: bool,
    lines: &mut Vec<Line<'static>>,
) {
    let theme = app.theme;
    if let Some(result) = result {
        let sandbox = if result.sandbox { " (training sandbox)" } else { "" };
        lines.push(Line::from(Span::styled(format!("site {}{sandbox} · {}", result.url, result.browser), theme.dim())));
    }
    let done = result.map_or(0, |r| r.actions.len());
    for (index, action) in spec.actions.iter().enumerate() {
        let what = format!("{:>2}. {} {}", index + 1, action.verb.name(), action.verb.target_template());
        let mut spans = Vec::new();
        match result.and_then(|r| r.actions.get(index)) {
            Some(ran) if ran.ok => {
                spans.push(Span::styled("✓ ", theme.ok()));
                spans.push(Span::raw(what));
                let status = ran.status.map(|s| format!(" {s}")).unwrap_or_default();
                spans.push(Span::styled(format!("  {} ms{status}", ran.duration_ms), theme.dim()));
                if let Some(shot) = &ran.screenshot {
                    spans.push(Span::styled(format!(" → {shot}"), theme.dim()));
                }
            }
            Some(ran) => {
                spans.push(Span::styled("✗ ", theme.bad()));
                spans.push(Span::styled(what, theme.bad()));
                if let Some(problem) = &ran.problem {
                    spans.push(Span::styled(format!(" — {problem}"), theme.bad()));
                }
            }
            None if running && index == done => {
                spans.push(Span::styled("… ", theme.warn()));
                spans.push(Span::raw(what));
            }
            None => {
                spans.push(Span::styled("· ", theme.dim()));
                spans.push(Span::styled(what, theme.dim()));
            }
        }
        lines.push(Line::from(spans));
    }
}

/// The verdict of a finished drill and what decided it, highlighted first.
fn verdict_lines(app: &App, drill: &crate::drill::state::DrillState, lines: &mut Vec<Line<'static>>) {
    use crate::drill::verdict::{Demonstrated, Outcome};
    let theme = app.theme;
    let verdict = crate::drill::verdict::verdict(drill);
    let style = match verdict.outcome {
        Outcome::Passed => theme.ok(),
        Outcome::PassedWithDeviations => theme.warn(),
        _ => theme.bad(),
    };
    lines.push(Line::from(vec![
        Span::styled(format!("Verdict: {}", verdict.outcome.label()), style.add_modifier(Modifier::BOLD)),
        Span::styled(format!("  · report: drillbook report {}", short(&app.drill_id)), theme.dim()),
        Span::styled("  · d to debrief · q to quit", theme.dim()),
    ]));
    for finding in verdict.deciding().take(4) {
        let step = finding.step.as_ref().map(|s| format!("{s}: ")).unwrap_or_default();
        let style = if finding.kind.fails_the_drill() { theme.bad() } else { theme.warn() };
        lines.push(Line::from(Span::styled(format!("  {step}{} — {}", finding.kind.label(), finding.text), style)));
    }
    if let Demonstrated::No(why) = &verdict.rto {
        lines.push(Line::from(Span::styled(format!("  RTO not achieved: {why}"), theme.bad())));
    }
    if let Demonstrated::No(why) = &verdict.rpo {
        lines.push(Line::from(Span::styled(format!("  RPO not demonstrated: {why}"), theme.bad())));
    }
    lines.push(Line::raw(""));
}

/// `[██████░░░░░░] 42% 430 MiB of 1.0 GiB · …` from a progress message
/// that starts with a percentage; other messages as they are.
fn progress_line(app: &App, message: &str) -> Line<'static> {
    let theme = app.theme;
    let percent = message.trim_start().split('%').next().and_then(|p| p.trim().parse::<u64>().ok());
    match percent {
        Some(percent) => {
            let width = 24u64;
            let filled = (percent.min(100) * width / 100) as usize;
            Line::from(vec![
                Span::styled("█".repeat(filled), theme.ok()),
                Span::styled("░".repeat(width as usize - filled), theme.dim()),
                Span::raw(format!(" {}", message.trim_start())),
            ])
        }
        None => Line::from(Span::styled(message.to_string(), theme.warn())),
    }
}

/// Whether the step reads a namespace the runbook protects.
fn is_protected_target(app: &App, index: usize) -> bool {
    let Some(step) = app.runbook.steps.get(index) else { return false };
    let namespace = match &step.action {
        Action::K8sImageTag(s) => &s.target.namespace,
        Action::K8sWait(s) => &s.target.namespace,
        Action::K8sScale(s) => &s.target.namespace,
        _ => return false,
    };
    let context = app.template_context();
    let Ok(namespace) = app.templater.render_plain(&namespace.text, &context) else { return false };
    crate::engine::k8s::protected_namespaces(&app.runbook, &context, &app.templater)
        .is_ok_and(|protected| protected.contains(&namespace))
}

/// The live pod table: failing rows in red, rows on their way in yellow.
fn pod_table(
    app: &App,
    table: &crate::engine::k8s::wait::PodTable,
    width: usize,
    max_rows: usize,
    lines: &mut Vec<Line<'static>>,
) {
    use crate::engine::k8s::wait::{Health, table_fitted};
    let theme = app.theme;
    let fitted = table_fitted(table, width, max_rows);
    lines.push(Line::from(Span::styled(fitted.summary, theme.title())));
    lines.push(Line::from(Span::styled(fitted.header, theme.dim())));
    for (index, text) in fitted.rows {
        let style = match table.rows[index].health {
            Health::Failing => theme.bad().add_modifier(Modifier::BOLD),
            Health::Progressing => theme.warn(),
            Health::Ready => theme.ok(),
        };
        lines.push(Line::from(Span::styled(text, style)));
    }
    if table.rows.is_empty() {
        lines.push(Line::from(Span::styled("(no pods)", theme.dim())));
    }
    if let Some(more) = fitted.more {
        lines.push(Line::from(Span::styled(more, theme.dim())));
    }
    if let Some(row) = table.rows.iter().find(|r| r.health == Health::Failing) {
        let why = row.problem.clone().unwrap_or_default();
        lines.push(Line::from(Span::styled(format!("✗ {}: {why} · l shows its logs", row.name), theme.bad())));
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A `k8s-isolation` result: what was compared, then one row per finding
/// (mark, area, what in DR) with what it is and the fix beneath.
fn isolation_table(
    result: &crate::drill::evidence::IsolationResult,
    theme: &crate::ui::theme::Theme,
    lines: &mut Vec<Line<'static>>,
) {
    let summary = result.lines();
    // The summary lines come first in `lines()`; the findings follow.
    let compared = summary.len() - 2 * result.findings.len();
    for line in summary.into_iter().take(compared) {
        lines.push(Line::from(Span::styled(line, theme.dim())));
    }
    let area_width = result.findings.iter().map(|f| f.area.len()).max().unwrap_or(0);
    for finding in &result.findings {
        let (mark, style) = if finding.severity == "fail" { ("FAIL", theme.bad()) } else { ("WARN", theme.warn()) };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), style),
            Span::styled(format!("{:<area_width$}  ", finding.area), theme.dim()),
            Span::raw(finding.subject.clone()),
        ]));
        lines.push(Line::from(Span::raw(format!("     {}", finding.finding))));
        lines.push(Line::from(Span::styled(format!("     fix: {}", finding.fix), theme.dim())));
    }
}
