//! The start screen: what the drill is, its targets, and the variables to
//! fill in (defaults filled, secrets masked, problems shown inline).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget, Wrap};

use crate::runbook::duration::format_duration;
use crate::ui::app::App;
use crate::ui::keymap::{self, Context};

/// Rows each field takes (label + input + error/help).
const FIELD_ROWS: u16 = 2;

fn areas(app: &App, area: Rect) -> [Rect; 3] {
    // The variables and the participants line.
    let fields = ((app.start.fields.len() as u16 + 1) * FIELD_ROWS + 2).clamp(3, area.height / 2);
    // The description box takes what it needs (roughly), the variables
    // follow right under it, and the key hints sit at the bottom.
    let description_rows = app.runbook.description.as_deref().map_or(0, |d| {
        let width = usize::from(area.width.saturating_sub(2)).max(1);
        d.lines().map(|l| l.chars().count().div_ceil(width).max(1)).sum::<usize>()
    }) as u16;
    let about = (description_rows + 5).min(area.height.saturating_sub(fields + 2));
    let [about, vars, _, footer] = Layout::vertical([
        Constraint::Length(about),
        Constraint::Length(fields),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    [about, vars, footer]
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let [about, vars, footer] = areas(app, area);
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
        Line::raw(""),
    ];
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
    let [_, vars, _] = areas(app, area);
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
