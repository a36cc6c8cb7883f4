//! Draws the fleet register from `&FleetApp`; never changes anything.

use std::time::Duration;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Cell, HighlightSpacing, Paragraph, Row as TableRow, Sparkline, StatefulWidget, Table,
    TableState, Widget, Wrap,
};

use super::{BINDINGS, FleetApp, SortBy};
use crate::fleet::export::{Cells, minute, objective, short_id};
use crate::fleet::register::day;
use crate::fleet::{CadenceSource, Row, Status, TREND_LEN};
use crate::runbook::duration::format_duration;

/// Rows of the selected row's pane, borders included.
pub const DETAIL_HEIGHT: u16 = 8;
const MIN_WIDTH: u16 = 60;
const MIN_HEIGHT: u16 = 16;
/// Terminal columns per drill in the selected row's sparkline.
const SPARK_COLUMNS: usize = 2;

pub fn render(app: &FleetApp, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!("terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{})", area.width, area.height);
        frame.render_widget(Paragraph::new(text).alignment(Alignment::Center).wrap(Wrap { trim: true }), area);
        return;
    }
    let [title, table, detail, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(DETAIL_HEIGHT),
        Constraint::Length(1),
    ])
    .areas(area);
    let buf = frame.buffer_mut();
    title_line(app, title, buf);
    register_table(app, table, buf);
    selected_pane(app, detail, buf);
    footer_line(app, footer, buf);
}

fn status_style(app: &FleetApp, status: Status) -> Style {
    match status {
        Status::Failed | Status::Overdue => app.theme.bad(),
        Status::DueSoon => app.theme.warn(),
        Status::Ok => app.theme.ok(),
        Status::Retired => app.theme.dim(),
    }
}

fn title_line(app: &FleetApp, area: Rect, buf: &mut Buffer) {
    let register = &app.register;
    let mut spans = vec![Span::styled("drillbook fleet", app.theme.title()), Span::raw("  ")];
    for status in Status::ALL {
        let count = register.count(status);
        if count > 0 {
            spans.push(Span::styled(format!("{count} {}", status.label()), status_style(app, status)));
            spans.push(Span::raw("  "));
        }
    }
    if register.rows.is_empty() {
        spans.push(Span::raw("no drills"));
    }
    let left = Line::from(spans);
    let used = left.width();
    left.render(area, buf);
    let right = format!("{} · as of {}", app.sources, minute(register.generated_at));
    if usize::from(area.width) >= used + right.chars().count() + 2 {
        Line::styled(right, app.theme.dim()).alignment(Alignment::Right).render(area, buf);
    }
}

/// A column of the table: its title, how wide its cells are, what it shows.
struct Column {
    title: &'static str,
    sort: Option<SortBy>,
    /// Lower comes first when the screen is too narrow for every column.
    priority: u8,
    cap: usize,
    cell: fn(&Cells) -> String,
}

const COLUMNS: &[Column] = &[
    Column { title: "STATUS", sort: Some(SortBy::Status), priority: 0, cap: 8, cell: |c| c.status.to_string() },
    Column { title: "PROJECT", sort: Some(SortBy::Project), priority: 1, cap: 20, cell: |c| c.project.clone() },
    Column { title: "RUNBOOK", sort: Some(SortBy::Runbook), priority: 2, cap: 26, cell: |c| c.runbook.clone() },
    Column { title: "LAST DRILL", sort: Some(SortBy::LastDrill), priority: 6, cap: 10, cell: |c| c.started.clone() },
    Column { title: "OPERATOR", sort: None, priority: 9, cap: 14, cell: |c| c.operator.clone() },
    Column { title: "OUTCOME", sort: Some(SortBy::Outcome), priority: 4, cap: 22, cell: |c| c.outcome.clone() },
    Column { title: "RTO", sort: Some(SortBy::Rto), priority: 7, cap: 22, cell: |c| c.rto.clone() },
    Column { title: "RPO", sort: None, priority: 8, cap: 22, cell: |c| c.rpo.clone() },
    Column { title: "NEXT DUE", sort: Some(SortBy::NextDue), priority: 3, cap: 10, cell: |c| c.next_due.clone() },
    Column { title: "RTO TREND", sort: None, priority: 5, cap: TREND_LEN, cell: |c| c.trend.clone() },
    Column { title: "WHY", sort: None, priority: 10, cap: 40, cell: |c| c.reason.clone() },
];

/// The columns that fit `width`, most important first, shown in table order; with their widths.
fn fitting_columns(cells: &[Cells], width: u16) -> Vec<(&'static Column, u16)> {
    let content = |column: &Column| {
        let widest = cells.iter().map(|c| (column.cell)(c).chars().count()).max().unwrap_or(0);
        widest.min(column.cap).max(column.title.chars().count() + 1) as u16
    };
    let mut by_priority: Vec<&Column> = COLUMNS.iter().collect();
    by_priority.sort_by_key(|c| c.priority);
    // The selection symbol and the borders take 4; each column is followed by a space.
    let mut left = width.saturating_sub(4);
    let mut chosen = Vec::new();
    for column in by_priority {
        let wanted = content(column);
        if wanted < left {
            left -= wanted + 1;
            chosen.push(column.title);
        }
    }
    COLUMNS.iter().filter(|c| chosen.contains(&c.title)).map(|c| (c, content(c))).collect()
}

fn register_table(app: &FleetApp, area: Rect, buf: &mut Buffer) {
    let rows: Vec<&Row> = app.order.iter().filter_map(|i| app.register.rows.get(*i)).collect();
    let cells: Vec<Cells> = rows.iter().map(|row| Cells::of(row)).collect();
    let columns = fitting_columns(&cells, area.width);
    let arrow = if app.descending { "▼" } else { "▲" };
    let shown = columns.iter().any(|(c, _)| c.sort == Some(app.sort));
    let header = TableRow::new(columns.iter().map(|(column, _)| {
        if column.sort == Some(app.sort) {
            Cell::from(format!("{}{arrow}", column.title)).style(app.theme.title())
        } else {
            Cell::from(column.title)
        }
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let body = rows.iter().zip(&cells).map(|(row, cells)| {
        TableRow::new(columns.iter().map(|(column, _)| {
            let text = (column.cell)(cells);
            if column.title == "STATUS" {
                Cell::from(text).style(status_style(app, row.status))
            } else {
                Cell::from(text)
            }
        }))
    });
    let sorted = if shown { String::new() } else { format!(" sorted by {} {arrow} ", app.sort.label()) };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(app.theme.border(true))
        .title(format!(" Register: {} rows ", rows.len()))
        .title_bottom(Line::from(sorted).alignment(Alignment::Right));
    let table = Table::new(body, columns.iter().map(|(_, width)| Constraint::Length(*width)))
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(app.theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::new().with_selected((!rows.is_empty()).then_some(app.selected));
    StatefulWidget::render(table, area, buf, &mut state);
}

fn selected_pane(app: &FleetApp, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().border_type(BorderType::Rounded).border_style(app.theme.border(false));
    let Some(row) = app.selected_row() else {
        let text = "No drills found, and no roster to say which are expected (--roster FILE).";
        Paragraph::new(text).block(block).render(area, buf);
        return;
    };
    let title = match &row.runbook_title {
        Some(title) => format!(" {} / {}: {title} ", row.project_label(), row.runbook_id),
        None => format!(" {} / {} ", row.project_label(), row.runbook_id),
    };
    let block = block.title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    // Room for the caption, `RTO 1h 2m–1h 10m`.
    let spark_width = (TREND_LEN * SPARK_COLUMNS) as u16 + 4;
    let [text_area, spark_area] = if inner.width > spark_width + 40 {
        Layout::horizontal([Constraint::Min(1), Constraint::Length(spark_width)]).areas(inner)
    } else {
        [inner, Rect::default()]
    };
    Paragraph::new(detail_lines(app, row)).wrap(Wrap { trim: true }).render(text_area, buf);
    if !spark_area.is_empty() {
        sparkline(app, row, spark_area, buf);
    }
}

fn detail_lines(app: &FleetApp, row: &Row) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(vec![
        Span::styled(row.status.label(), status_style(app, row.status)),
        Span::raw(format!(": {}", row.reason)),
    ])];
    let cadence = match &row.cadence {
        Some(cadence) => {
            let from = match cadence.from {
                CadenceSource::Roster => "the roster's",
                CadenceSource::Runbook => "the runbook's",
                CadenceSource::Default => "the default",
            };
            let due = row.next_due.map(|d| format!(" · next due {}", day(d))).unwrap_or_default();
            format!("cadence {} ({from}){due}", cadence.text)
        }
        None => "no cadence: no due date".to_string(),
    };
    match &row.last {
        Some(last) => {
            lines.push(Line::raw(format!(
                "last drill {} on {} by {}: {}",
                short_id(&last.id),
                day(last.started_at),
                last.operator,
                last.outcome
            )));
            let mut objectives = format!("RTO {} · RPO {}", objective(&last.rto), objective(&last.rpo));
            if let Some(data) = &last.rpo_data {
                objectives.push_str(&format!(" · data RPO {}", objective(data)));
            }
            lines.push(Line::raw(objectives));
            lines.push(Line::raw(cadence));
            let place = match (&last.local_dir, last.archived) {
                (Some(_), true) => "on this machine and in the archive",
                (Some(_), false) => "on this machine",
                (None, _) => "in the archive",
            };
            let drills = if row.drills == 1 { "1 drill".to_string() } else { format!("{} drills", row.drills) };
            lines.push(Line::styled(format!("{drills} · the last {place}"), app.theme.dim()));
        }
        None => {
            lines.push(Line::raw("never drilled"));
            lines.push(Line::raw(cadence));
        }
    }
    lines
}

/// The selected row's RTO trend, each drill a few columns wide, scaled from
/// its fastest to its slowest drill like the table's trend column (the
/// fastest keeps a sliver, equal drills sit mid-height); `·` for a drill that
/// did not achieve its RTO.
fn sparkline(app: &FleetApp, row: &Row, area: Rect, buf: &mut Buffer) {
    let achieved = || row.rto_trend.iter().flatten().copied();
    let block = Block::bordered().border_type(BorderType::Plain).border_style(app.theme.dim());
    let (Some(min), Some(max)) = (achieved().min(), achieved().max()) else {
        let text = if row.rto_trend.is_empty() { "no drill ended" } else { "RTO never achieved" };
        Paragraph::new(text).wrap(Wrap { trim: true }).block(block.title(" RTO ")).render(area, buf);
        return;
    };
    let span = |secs: u64| format_duration(Duration::from_secs(secs));
    let caption =
        if min == max { format!(" RTO {} ", span(max)) } else { format!(" RTO {}–{} ", span(min), span(max)) };
    let (lift, top) = if min == max { (1, 2) } else { ((max - min).div_ceil(7), max - min + (max - min).div_ceil(7)) };
    let data: Vec<Option<u64>> =
        row.rto_trend.iter().flat_map(|v| std::iter::repeat_n(v.map(|v| v - min + lift), SPARK_COLUMNS)).collect();
    Sparkline::default()
        .block(block.title(caption))
        .data(&data)
        .max(top)
        .style(app.theme.running())
        .absent_value_symbol("·")
        .render(area, buf);
}

fn footer_line(app: &FleetApp, area: Rect, buf: &mut Buffer) {
    if let Some(notice) = &app.notice {
        Line::styled(notice.clone(), app.theme.warn()).render(area, buf);
        return;
    }
    let mut spans = Vec::new();
    let mut used = 0usize;
    for binding in BINDINGS.iter().filter(|b| !b.shown.is_empty()) {
        let hint = binding.shown.chars().count() + binding.does.chars().count() + 3;
        if used + hint > usize::from(area.width) {
            break;
        }
        used += hint;
        spans.push(Span::styled(binding.shown, app.theme.key()));
        spans.push(Span::raw(format!(" {}  ", binding.does)));
    }
    Line::from(spans).render(area, buf);
}
