//! The steps of the drill with their status and time.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders, Widget};

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
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    // Only the visible window is drawn, straight into the buffer, so a
    // 5,000-step runbook draws as fast as a short one.
    let rows = usize::from(inner.height);
    let offset = app.selected.saturating_sub(rows - 1);
    let width = usize::from(inner.width);
    for (row, (index, step)) in app.runbook.steps.iter().enumerate().skip(offset).take(rows).enumerate() {
        let y = inner.y + row as u16;
        let state = app.drill.as_ref().and_then(|d| d.steps.get(index));
        let (icon, style) = match state.map(|s| &s.status) {
            None | Some(StepStatus::Pending) => ("○", theme.dim()),
            Some(StepStatus::Running { .. }) => (spinner(app.now), theme.running()),
            Some(StepStatus::Succeeded) => ("✓", theme.ok()),
            Some(StepStatus::MarkedDone { .. }) => ("☑", theme.ok()),
            Some(StepStatus::Failed { .. }) => ("✗", theme.bad()),
            Some(StepStatus::Skipped { .. }) => ("↷", theme.dim()),
            Some(StepStatus::Interrupted { .. }) => ("⏸", theme.warn()),
        };
        let elapsed = state.and_then(|s| elapsed(app, s)).unwrap_or_default();
        let number = format!("{:>2} ", index + 1);
        let mut x = inner.x;
        let right = inner.x + inner.width;
        x = buf.set_stringn(x, y, &number, width, theme.dim()).0;
        x = buf.set_stringn(x, y, icon, usize::from(right.saturating_sub(x)), style).0;
        x = buf.set_stringn(x, y, " ", usize::from(right.saturating_sub(x)), Style::new()).0;
        let room = usize::from(right.saturating_sub(x)).saturating_sub(elapsed.chars().count() + 1);
        let title_style = if step.always { Style::new().add_modifier(Modifier::ITALIC) } else { Style::new() };
        buf.set_stringn(x, y, crate::ui::widgets::fit::fit(&step.title, room), room, title_style);
        let elapsed_x = right.saturating_sub(elapsed.chars().count() as u16);
        buf.set_stringn(elapsed_x, y, &elapsed, usize::from(right - elapsed_x), theme.dim());
        if index == app.selected {
            buf.set_style(Rect::new(inner.x, y, inner.width, 1), theme.selected());
        }
    }
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

/// How long the step took: every attempt (a running one so far). The
/// detail pane shows the last attempt beside it.
fn elapsed(app: &App, step: &StepState) -> Option<String> {
    step.attempts.last()?;
    Some(clock(step_time(app, step).0))
}

/// (all attempts, the last one) of a step, a running attempt up to now.
pub fn step_time(app: &App, step: &StepState) -> (std::time::Duration, std::time::Duration) {
    let running = matches!(step.status, StepStatus::Running { .. });
    let took = |attempt: &crate::drill::state::Attempt| match (attempt.duration_ms, attempt.finished_at) {
        (Some(ms), _) => std::time::Duration::from_millis(ms),
        (None, Some(end)) => since(attempt.started_at, end),
        (None, None) if running => since(attempt.started_at, app.now),
        (None, None) => std::time::Duration::ZERO,
    };
    let total = step.attempts.iter().map(took).sum();
    (total, step.attempts.last().map(took).unwrap_or_default())
}
