//! The steps of the drill with their status and time.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, List, ListItem, ListState, StatefulWidget};

use super::{clock, since, spinner};
use crate::drill::state::{StepState, StepStatus};
use crate::ui::app::{App, Focus};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let focused = app.focus == Focus::Steps && app.modal.is_none();
    let title = format!(" Steps {} ", app.drill.as_ref().map(done_count).unwrap_or_default());
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.border(focused))
        .title(Span::styled(title, theme.title()));
    let inner_width = usize::from(area.width.saturating_sub(2));
    // Only the visible window is built, so a 5,000-step runbook draws as
    // fast as a short one.
    let rows = usize::from(area.height.saturating_sub(2)).max(1);
    let offset = app.selected.saturating_sub(rows - 1);
    let items: Vec<ListItem> = app
        .runbook
        .steps
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(index, step)| {
            let state = app.drill.as_ref().and_then(|d| d.steps.get(index));
            let (icon, style) = match state.map(|s| &s.status) {
                None | Some(StepStatus::Pending) => ("○".to_string(), theme.dim()),
                Some(StepStatus::Running { .. }) => (spinner(app.now).to_string(), theme.running()),
                Some(StepStatus::Succeeded) => ("✓".to_string(), theme.ok()),
                Some(StepStatus::MarkedDone { .. }) => ("☑".to_string(), theme.ok()),
                Some(StepStatus::Failed { .. }) => ("✗".to_string(), theme.bad()),
                Some(StepStatus::Skipped { .. }) => ("↷".to_string(), theme.dim()),
                Some(StepStatus::Interrupted { .. }) => ("⏸".to_string(), theme.warn()),
            };
            let elapsed = state.and_then(|s| elapsed(app, s)).unwrap_or_default();
            let number = format!("{:>2} ", index + 1);
            let room = inner_width.saturating_sub(number.len() + 2 + elapsed.chars().count() + 1);
            let title: String = truncate(&step.title, room);
            let pad = room.saturating_sub(title.chars().count());
            let mut title_style = Style::new();
            if step.always {
                title_style = title_style.add_modifier(Modifier::ITALIC);
            }
            ListItem::new(Line::from(vec![
                Span::styled(number, theme.dim()),
                Span::styled(format!("{icon} "), style),
                Span::styled(title, title_style),
                Span::raw(" ".repeat(pad + 1)),
                Span::styled(elapsed, theme.dim()),
            ]))
        })
        .collect();
    let list = List::new(items).block(block).highlight_style(theme.selected());
    let mut state = ListState::default().with_selected(Some(app.selected - offset));
    StatefulWidget::render(list, area, buf, &mut state);
}

fn done_count(drill: &crate::drill::state::DrillState) -> String {
    let settled = drill
        .steps
        .iter()
        .filter(|s| {
            matches!(s.status, StepStatus::Succeeded | StepStatus::MarkedDone { .. } | StepStatus::Skipped { .. })
        })
        .count();
    format!("{settled}/{}", drill.steps.len())
}

/// The running time of the current attempt, or how long the last one took.
fn elapsed(app: &App, step: &StepState) -> Option<String> {
    let attempt = step.attempts.last()?;
    let duration = match step.status {
        StepStatus::Running { .. } => since(attempt.started_at, app.now),
        _ => match (attempt.duration_ms, attempt.finished_at) {
            (Some(ms), _) => std::time::Duration::from_millis(ms),
            (None, Some(end)) => since(attempt.started_at, end),
            (None, None) => return None,
        },
    };
    Some(clock(duration))
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}
