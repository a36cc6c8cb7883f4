//! The start screen: what the drill is, its targets, the variables to fill
//! in (defaults filled, secrets masked, problems shown inline), and its plan:
//! every step with its kind and where it acts (with the variables as typed),
//! destructive steps and teardown marked, so the operator sees what pressing
//! enter will set going.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget, Wrap};

use crate::runbook::Confirm;
use crate::runbook::duration::format_duration;
use crate::ui::app::App;
use crate::ui::keymap::{self, Context};
use crate::ui::widgets::fit::{Part, fit, fit_line};

/// Rows each field takes (label + input + error/help).
const FIELD_ROWS: u16 = 2;

/// The about box without the description: its border, the title and the targets line.
const ABOUT_MIN_ROWS: u16 = 4;

/// The plan comes before the description: on a small terminal the operator
/// must still see what the drill will do, and the description shrinks first.
fn areas(app: &App, area: Rect) -> [Rect; 4] {
    // The variables and the participants line.
    let fields = ((app.start.fields.len() as u16 + 1) * FIELD_ROWS + 2).clamp(3, area.height / 2);
    let description_rows = app.runbook.description.as_deref().map_or(0, |d| {
        let width = usize::from(area.width.saturating_sub(2)).max(1);
        d.lines().map(|l| l.chars().count().div_ceil(width).max(1)).sum::<usize>()
    }) as u16;
    // Below the variables and above the key hints: the about box, then the plan.
    let room = area.height.saturating_sub(fields + 1);
    let plan_wanted = app.runbook.steps.len() as u16 + 2;
    // The last drill's line is part of what the about box must show.
    let since_rows = u16::from(app.start.since_last.is_some());
    let plan = plan_wanted.min(room.saturating_sub(ABOUT_MIN_ROWS + since_rows));
    let about = (description_rows + 5 + since_rows).min(room.saturating_sub(plan)).max(3);
    let [about, vars, plan, _, footer] = Layout::vertical([
        Constraint::Length(about),
        Constraint::Length(fields),
        Constraint::Length(plan.max(room.saturating_sub(about)).min(plan_wanted.max(3))),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    [about, vars, plan, footer]
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let [about, vars, plan_area, footer] = areas(app, area);
    let runbook = &app.runbook;
    let mut lines = vec![
        Line::from(Span::styled(runbook.title.clone(), theme.title())),
        Line::from(vec![
            Span::styled(
                format!(
                    "{} · {} step{}",
                    runbook.id,
                    runbook.steps.len(),
                    if runbook.steps.len() == 1 { "" } else { "s" }
                ),
                theme.dim(),
            ),
            Span::raw("   "),
            Span::raw(
                runbook
                    .rto_target
                    .map_or_else(|| "no RTO target".into(), |t| format!("RTO target {}", format_duration(t))),
            ),
            Span::raw("   "),
            Span::raw(
                runbook
                    .rpo_target
                    .map_or_else(|| "no RPO target".into(), |t| format!("RPO target {}", format_duration(t))),
            ),
        ]),
    ];
    if let Some(since) = &app.start.since_last {
        let line = match &since.previous {
            Some(previous) => format!("last drill {}: {}", previous.date(), previous.result()),
            None => "the project's first drill of this runbook: no baseline yet".to_string(),
        };
        lines.push(Line::from(Span::styled(line, theme.dim())));
    }
    lines.push(Line::raw(""));
    if let Some(description) = &runbook.description {
        let markdown: Text = tui_markdown::from_str(description);
        for line in markdown.lines {
            let spans: Vec<Span<'static>> =
                line.spans.into_iter().map(|s| Span::styled(s.content.into_owned(), s.style)).collect();
            lines.push(Line::from(spans).style(line.style));
        }
    }
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(" New drill ");
    Paragraph::new(lines).block(block).wrap(Wrap { trim: false }).render(about, buf);

    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.border(true))
        .title(Span::styled(" Variables ", theme.title()));
    let inner = block.inner(vars);
    block.render(vars, buf);
    let label_width = label_width(app);
    for (index, field) in app.start.fields.iter().enumerate() {
        let value = if field.var.secret {
            "•".repeat(field.input.value().chars().count())
        } else {
            field.input.value().to_string()
        };
        let note = match (&field.error, &field.var.prompt, field.var.choices.is_empty()) {
            (Some(error), _, _) => Span::styled(format!("✗ {error}"), theme.bad()),
            (None, _, false) => {
                Span::styled(format!("enter or space: choose from {}", field.var.choices.join(", ")), theme.dim())
            }
            (None, Some(prompt), _) => Span::styled(prompt.clone(), theme.dim()),
            (None, None, _) if field.var.secret => {
                Span::styled(format!("secret · from ${}", field.var.secret_env_name()), theme.dim())
            }
            _ => Span::raw(""),
        };
        let row = Row { index, label: &field.var.name, value, input: &field.input, note };
        draw_row(app, row, inner, label_width, buf);
    }
    let participants = &app.start.participants;
    let note = match &app.start.participants_error {
        Some(error) => Span::styled(format!("✗ {error}"), theme.bad()),
        None => Span::styled("who takes part: Name:role, Name:role (optional)", theme.dim()),
    };
    let row = Row {
        index: app.start.fields.len(),
        label: PARTICIPANTS,
        value: participants.value().to_string(),
        input: participants,
        note,
    };
    draw_row(app, row, inner, label_width, buf);
    plan(app, plan_area, buf);

    let mut hints: Vec<Span> = Vec::new();
    if let Some(error) = &app.start.error {
        hints.push(Span::styled(format!(" {error} "), theme.bad()));
    }
    for (key, description) in keymap::hints(&[Context::Start]) {
        hints.push(Span::styled(format!(" {key}"), theme.key()));
        hints.push(Span::styled(format!(" {description} "), theme.dim()));
    }
    Paragraph::new(Line::from(hints)).render(footer, buf);
}

/// The steps in order: kind, where each acts, and what it will ask.
fn plan(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let steps = &app.runbook.steps;
    let typed = steps.iter().filter(|s| s.confirm == Confirm::Typed).count();
    let mut title = format!(" Plan: {} step{}", steps.len(), if steps.len() == 1 { "" } else { "s" });
    if typed > 0 {
        title.push_str(&format!(" · {typed} destructive (typed confirmation)"));
    }
    if app.start.training {
        title.push_str(" · training: the sandbox, no cloud");
    }
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(Span::styled(fit(&format!("{title} "), usize::from(area.width.saturating_sub(2))), theme.title()));
    let inner = block.inner(area);
    block.render(area, buf);
    let rows = usize::from(inner.height);
    let shown = shown_steps(&app.runbook.steps, rows);
    let mut lines: Vec<Line> = Vec::new();
    for (index, step) in steps.iter().enumerate().filter(|(index, _)| shown.contains(index)) {
        let marker = match step.confirm {
            Confirm::Typed => Span::styled("⚠ ", theme.bad()),
            Confirm::YesNo => Span::styled("? ", theme.warn()),
            Confirm::No => Span::raw("  "),
        };
        // What gives way when the line is too wide: the last duration first,
        // then the tags (the marker already says what asks), the change since
        // the last drill, the kind; the target goes last, and then the title
        // is shortened.
        let mut parts: Vec<Part> = vec![
            (Span::styled(format!("{:>2} ", index + 1), theme.dim()), 0),
            (marker, 0),
            (Span::raw(step.title.clone()), 0),
            (Span::styled(format!(" · {}", step.kind.name()), theme.dim()), 2),
        ];
        if let Some(target) = app.planned_target(index) {
            parts.push((Span::styled(format!(" → {target}"), theme.warn()), 1));
        }
        let tags: Vec<&str> = [
            (step.confirm == Confirm::Typed).then_some("typed confirmation"),
            (step.confirm == Confirm::YesNo).then_some("asks first"),
            step.always.then_some("teardown: always runs"),
            step.optional.then_some("optional"),
            step.when.is_some().then_some("conditional"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !tags.is_empty() {
            parts.push((Span::styled(format!("  [{}]", tags.join(", ")), theme.dim()), 4));
        }
        if let Some(trend) = app.start.since_last.as_ref().and_then(|s| s.steps.iter().find(|t| t.id == step.id)) {
            let then = trend
                .then_ms
                .map(|ms| format!("{} last time", crate::report::history::human_ms(ms)))
                .unwrap_or_default();
            match trend.change.as_deref() {
                Some(change) => parts.push((
                    Span::styled(
                        format!(
                            "  {} since the last drill{}",
                            change,
                            if then.is_empty() { String::new() } else { format!(", {then}") }
                        ),
                        theme.warn(),
                    ),
                    3,
                )),
                None if !then.is_empty() => parts.push((Span::styled(format!("  {then}"), theme.dim()), 5)),
                None => {}
            }
        }
        lines.push(fit_line(parts, usize::from(inner.width)));
    }
    if shown.len() < steps.len() {
        let hidden: Vec<String> =
            (0..steps.len()).filter(|index| !shown.contains(index)).map(|index| (index + 1).to_string()).collect();
        let more = format!("    … {} more: {} (shown once the drill starts)", hidden.len(), hidden.join(", "));
        lines.push(Line::styled(fit(&more, usize::from(inner.width)), theme.dim()));
    }
    Paragraph::new(lines).render(inner, buf);
}

/// Which steps the plan shows in `rows` lines: all when they fit; else the
/// ones that ask first, destroy or tear down (what the operator must see
/// before starting), then the others in order, leaving a line to say what
/// is not shown.
fn shown_steps(steps: &[crate::runbook::Step], rows: usize) -> Vec<usize> {
    if steps.len() <= rows {
        return (0..steps.len()).collect();
    }
    let room = rows.saturating_sub(1);
    let marked = |step: &crate::runbook::Step| step.confirm != Confirm::No || step.always;
    let mut shown: Vec<usize> = (0..steps.len()).filter(|&i| marked(&steps[i])).take(room).collect();
    let others = (0..steps.len()).filter(|&i| !marked(&steps[i]));
    let left = room - shown.len();
    shown.extend(others.take(left));
    shown.sort_unstable();
    shown
}

const PARTICIPANTS: &str = "participants";

/// Room for the longest label (variable names, "participants").
fn label_width(app: &App) -> u16 {
    app.start.fields.iter().map(|f| f.var.name.len()).chain([PARTICIPANTS.len()]).max().unwrap_or(0).min(24) as u16 + 2
}

/// One line of the form: label, value, and a note under it.
struct Row<'a> {
    index: usize,
    label: &'a str,
    /// As shown (secrets masked).
    value: String,
    input: &'a tui_input::Input,
    note: Span<'a>,
}

fn draw_row(app: &App, row: Row<'_>, inner: Rect, label_width: u16, buf: &mut Buffer) {
    let theme = app.theme;
    let y = inner.y + row.index as u16 * FIELD_ROWS;
    if y + 1 >= inner.y + inner.height {
        return;
    }
    let focused = row.index == app.start.focused && app.modal.is_none();
    let label_style = if focused { theme.key() } else { theme.dim() };
    buf.set_stringn(
        inner.x,
        y,
        format!("{:>w$}", row.label, w = usize::from(label_width - 2)),
        usize::from(label_width),
        label_style,
    );
    let value_x = inner.x + label_width;
    let width = usize::from(inner.width.saturating_sub(label_width));
    let scroll = row.input.visual_scroll(width.saturating_sub(1));
    let shown: String = row.value.chars().skip(scroll).collect();
    let style = if focused { theme.selected() } else { ratatui::style::Style::new() };
    let padded = format!("{shown:<width$}");
    buf.set_stringn(value_x, y, padded, width, style);
    buf.set_span(value_x, y + 1, &row.note, inner.width.saturating_sub(label_width));
}

/// The terminal cursor in the focused field.
pub fn cursor(app: &App, area: Rect) -> Option<(u16, u16)> {
    let [_, vars, _, _] = areas(app, area);
    let input = match app.start.fields.get(app.start.focused) {
        Some(field) => &field.input,
        None if app.start.participants_focused() => &app.start.participants,
        None => return None,
    };
    let label_width = label_width(app);
    let width = usize::from(vars.width.saturating_sub(2 + label_width));
    let scroll = input.visual_scroll(width.saturating_sub(1));
    let x = vars.x + 1 + label_width + (input.visual_cursor().saturating_sub(scroll)) as u16;
    let y = vars.y + 1 + app.start.focused as u16 * FIELD_ROWS;
    (y < vars.y + vars.height.saturating_sub(1)).then_some((x.min(vars.x + vars.width.saturating_sub(2)), y))
}
