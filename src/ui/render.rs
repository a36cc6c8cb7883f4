//! `render(&App, &mut Frame)`: draws, never changes anything. Each panel
//! lives in its own module under `panels/`.

use ratatui::Frame;
use ratatui::layout::Alignment;
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, Modal, Screen};
use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use super::panels;

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if layout::too_small(area) {
        let text = format!("terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{})", area.width, area.height);
        frame.render_widget(Paragraph::new(text).alignment(Alignment::Center).wrap(Wrap { trim: true }), area);
        return;
    }
    match app.screen {
        Screen::Start => panels::start::render(app, area, frame.buffer_mut()),
        Screen::Main => {
            let areas = layout::main_areas(area, app.selected_log_lines());
            let buf = frame.buffer_mut();
            panels::step_list::render(app, areas.steps, buf);
            panels::detail::render(app, areas.detail, buf);
            panels::log::render(app, areas.log, buf);
            panels::status_bar::render(app, areas.status, buf);
        }
    }
    if let Some(modal) = &app.modal {
        let buf = frame.buffer_mut();
        match modal {
            Modal::Help { scroll } => panels::help::render(app, *scroll, area, buf),
            Modal::Picker { picker, purpose } => {
                let rows = picker.total_rows() as u16;
                let width = if matches!(purpose, super::app::PickerPurpose::Backup(_)) { 130 } else { 70 };
                let dialog = layout::centered(area, width, (rows + 7).clamp(9, 24));
                ratatui::widgets::Widget::render(ratatui::widgets::Clear, dialog, buf);
                picker.render(dialog, buf, true);
            }
            other => panels::dialog::render(app, other, area, buf),
        }
    }
}

/// The cursor position for a focused text input, if one is shown.
pub fn cursor(app: &App, area: ratatui::layout::Rect) -> Option<(u16, u16)> {
    if layout::too_small(area) {
        return None;
    }
    match &app.modal {
        Some(modal) => panels::dialog::cursor(modal, area),
        None if app.screen == Screen::Start => panels::start::cursor(app, area),
        None => None,
    }
}
