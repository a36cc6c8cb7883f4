//! Where each panel goes. One pure function shared by render and by mouse
//! handling in `update`, so a click always lands where the eye saw it.

use ratatui::layout::{Constraint, Layout, Rect};

/// The fewest rows the log pane gets (borders and three lines).
const MIN_LOG: u16 = 5;

/// The smallest terminal the layout works in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainAreas {
    pub steps: Rect,
    pub detail: Rect,
    pub log: Rect,
    pub status: Rect,
}

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

/// The panels. `log_lines`: lines in the selected step's log; a log that
/// holds little gives its rows to the step's detail (help, checklist, pods).
pub fn main_areas(area: Rect, log_lines: usize) -> MainAreas {
    let [body, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(area);
    let list_width = (area.width / 3).clamp(24, 44);
    let [steps, right] = Layout::horizontal([Constraint::Length(list_width), Constraint::Min(1)]).areas(body);
    let log_needs = u16::try_from(log_lines.saturating_add(2)).unwrap_or(u16::MAX).max(MIN_LOG);
    let detail_height = (body.height * 2 / 5).max(7).max(body.height.saturating_sub(log_needs));
    let [detail, log] = Layout::vertical([Constraint::Length(detail_height), Constraint::Min(3)]).areas(right);
    MainAreas { steps, detail, log, status }
}

/// A centred rectangle for dialogs, at most `width` x `height`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width.saturating_sub(2)).max(1);
    let height = height.min(area.height.saturating_sub(2)).max(1);
    Rect::new(
        area.x + (area.width.saturating_sub(width)) / 2,
        area.y + (area.height.saturating_sub(height)) / 2,
        width,
        height,
    )
}

/// A rectangle at the top of `area`, centred across it: for dialogs that ask
/// the operator to read the log below them (an interrupted or failed step).
pub fn at_top(area: Rect, width: u16, height: u16) -> Rect {
    let centred = centered(area, width, height);
    Rect { y: area.y + 1.min(area.height.saturating_sub(centred.height)), ..centred }
}
