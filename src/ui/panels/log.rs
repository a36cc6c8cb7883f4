//! The log pane of the selected step (the widget does the work).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::ui::app::{App, Focus};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(log) = app.logs.get(app.selected) else { return };
    let id = app.runbook.steps.get(app.selected).map_or("", |s| s.id.as_str());
    let focused = app.focus == Focus::Log && app.modal.is_none();
    log.render(area, buf, &format!(" Log · {id} "), focused);
}
