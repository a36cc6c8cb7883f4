//! The fleet register on screen (`drillbook fleet` on a terminal): a sortable
//! table of the register's rows and, for the selected one, its last drill and
//! an RTO sparkline. Same architecture as the drill TUI: [`FleetApp`] is the
//! state, [`update`] changes it (pure, unit-tested) and returns [`Effect`]s,
//! `render` only draws, `runtime` owns the terminal. [`BINDINGS`] is the one
//! keymap: dispatch and the footer hints both read it.

mod render;
pub mod runtime;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

pub use render::render;

use super::theme::Theme;
use crate::fleet::{Register, Row};

/// What the table can be sorted by, in the order Tab goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// The register's own order: most urgent first, earliest due first.
    Status,
    Project,
    Runbook,
    LastDrill,
    Outcome,
    Rto,
    NextDue,
}

impl SortBy {
    pub const ALL: [SortBy; 7] = [
        SortBy::Status,
        SortBy::Project,
        SortBy::Runbook,
        SortBy::LastDrill,
        SortBy::Outcome,
        SortBy::Rto,
        SortBy::NextDue,
    ];

    fn step(self, by: isize) -> SortBy {
        let at = SortBy::ALL.iter().position(|s| *s == self).unwrap_or(0) as isize;
        SortBy::ALL[(at + by).rem_euclid(SortBy::ALL.len() as isize) as usize]
    }

    pub fn label(self) -> &'static str {
        match self {
            SortBy::Status => "status",
            SortBy::Project => "project",
            SortBy::Runbook => "runbook",
            SortBy::LastDrill => "last drill",
            SortBy::Outcome => "outcome",
            SortBy::Rto => "RTO",
            SortBy::NextDue => "next due",
        }
    }

    /// Rows compared by this column alone (ties are left to the caller).
    fn compare(self, a: &Row, b: &Row) -> Ordering {
        let last = |row: &Row| row.last.as_ref().map(|l| l.started_at);
        let rto = |row: &Row| row.last.as_ref().and_then(|l| l.rto.achieved_secs);
        let outcome = |row: &Row| row.last.as_ref().map(|l| l.outcome.clone());
        match self {
            SortBy::Status => a.status.cmp(&b.status),
            SortBy::Project => a.project.cmp(&b.project),
            SortBy::Runbook => a.runbook_id.cmp(&b.runbook_id),
            SortBy::LastDrill => last(a).cmp(&last(b)),
            SortBy::Outcome => outcome(a).cmp(&outcome(b)),
            SortBy::Rto => rto(a).cmp(&rto(b)),
            SortBy::NextDue => a.next_due.cmp(&b.next_due),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextSort,
    PrevSort,
    Reverse,
    OpenReport,
    Quit,
}

/// A key binding: the keys, how the footer names them, what they do.
pub struct Binding {
    pub keys: &'static [KeyCode],
    pub shown: &'static str,
    pub does: &'static str,
    pub action: Action,
}

/// The one keymap, in the order the footer shows it (hints that do not fit are dropped from the end).
pub const BINDINGS: &[Binding] = &[
    Binding { keys: &[KeyCode::Up, KeyCode::Char('k')], shown: "↑↓", does: "move", action: Action::Up },
    Binding { keys: &[KeyCode::Down, KeyCode::Char('j')], shown: "", does: "", action: Action::Down },
    Binding {
        keys: &[KeyCode::Tab, KeyCode::Right, KeyCode::Char('s')],
        shown: "Tab",
        does: "sort by",
        action: Action::NextSort,
    },
    Binding { keys: &[KeyCode::BackTab, KeyCode::Left], shown: "", does: "", action: Action::PrevSort },
    Binding { keys: &[KeyCode::Char('r')], shown: "r", does: "reverse", action: Action::Reverse },
    Binding { keys: &[KeyCode::Enter], shown: "Enter", does: "report", action: Action::OpenReport },
    Binding { keys: &[KeyCode::Char('q'), KeyCode::Esc], shown: "q", does: "quit", action: Action::Quit },
    Binding { keys: &[KeyCode::PageUp], shown: "PgUp/PgDn", does: "page", action: Action::PageUp },
    Binding { keys: &[KeyCode::PageDown], shown: "", does: "", action: Action::PageDown },
    Binding { keys: &[KeyCode::Home, KeyCode::Char('g')], shown: "g/G", does: "first/last", action: Action::Top },
    Binding { keys: &[KeyCode::End, KeyCode::Char('G')], shown: "", does: "", action: Action::Bottom },
];

fn action_for(key: &KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::Quit);
    }
    BINDINGS.iter().find(|b| b.keys.contains(&key.code)).map(|b| b.action)
}

pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    /// A line for the footer (where a report is, what to run).
    Notice(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    /// Show where the drill's report is (the runtime looks on disk).
    OpenReport {
        drill_id: String,
        local_dir: Option<PathBuf>,
    },
}

pub struct FleetApp {
    pub register: Register,
    /// Indices into `register.rows`, in the order shown.
    pub order: Vec<usize>,
    pub sort: SortBy,
    pub descending: bool,
    /// Position in `order`.
    pub selected: usize,
    pub size: (u16, u16),
    pub notice: Option<String>,
    /// Where the drills came from, for the title (`s3://acme-drills/fleet/ and this machine`).
    pub sources: String,
    pub theme: Theme,
}

/// Rows the table shows at once: the screen less the title, the table's borders
/// and header, the detail pane and the footer.
pub fn page_size(height: u16) -> usize {
    usize::from(height.saturating_sub(render::DETAIL_HEIGHT + 5)).max(1)
}

impl FleetApp {
    pub fn new(register: Register, sources: String, theme: Theme) -> FleetApp {
        let order = (0..register.rows.len()).collect();
        FleetApp {
            register,
            order,
            sort: SortBy::Status,
            descending: false,
            selected: 0,
            size: (80, 24),
            notice: None,
            sources,
            theme,
        }
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.order.get(self.selected).and_then(|i| self.register.rows.get(*i))
    }

    /// Re-sorts, keeping the selected row selected. Ties keep the register's
    /// order (most urgent first), whichever the direction.
    fn resort(&mut self) {
        let keep = self.order.get(self.selected).copied();
        let rows = &self.register.rows;
        let (sort, descending) = (self.sort, self.descending);
        self.order.sort_by(|a, b| {
            let by = sort.compare(&rows[*a], &rows[*b]);
            let by = if descending { by.reverse() } else { by };
            by.then(a.cmp(b))
        });
        self.selected = keep.and_then(|k| self.order.iter().position(|i| *i == k)).unwrap_or(0);
    }

    fn move_by(&mut self, by: isize) {
        let last = self.order.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + by).clamp(0, last) as usize;
    }
}

pub fn update(app: &mut FleetApp, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Resize(width, height) => app.size = (width, height),
        Msg::Notice(text) => app.notice = Some(text),
        Msg::Key(key) if key.kind != KeyEventKind::Release => {
            let Some(action) = action_for(&key) else { return vec![] };
            // A notice answers the last Enter; any other key makes it old news.
            if action != Action::OpenReport {
                app.notice = None;
            }
            let page = page_size(app.size.1) as isize;
            match action {
                Action::Up => app.move_by(-1),
                Action::Down => app.move_by(1),
                Action::PageUp => app.move_by(-page),
                Action::PageDown => app.move_by(page),
                Action::Top => app.selected = 0,
                Action::Bottom => app.selected = app.order.len().saturating_sub(1),
                Action::NextSort | Action::PrevSort => {
                    app.sort = app.sort.step(if action == Action::NextSort { 1 } else { -1 });
                    app.descending = false;
                    app.resort();
                }
                Action::Reverse => {
                    app.descending = !app.descending;
                    app.resort();
                }
                Action::OpenReport => {
                    return match app.selected_row().and_then(|row| row.last.as_ref()) {
                        Some(last) => {
                            vec![Effect::OpenReport { drill_id: last.id.clone(), local_dir: last.local_dir.clone() }]
                        }
                        None => {
                            app.notice = Some("never drilled: there is no report to open".to_string());
                            vec![]
                        }
                    };
                }
                Action::Quit => return vec![Effect::Quit],
            }
        }
        Msg::Key(_) => {}
    }
    vec![]
}
