//! Keys and the mouse on the main screen: the keymap resolves a key to an
//! action in the contexts that apply now; actions move around, scroll,
//! search, open dialogs, and answer the conductor's question about a
//! manual step or a checklist.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use tui_input::Input;

use super::{Answer, answer, asked, dialogs, pickers, quit, start};
use crate::drive::Question;
use crate::runbook::Action as StepAction;
use crate::ui::app::{App, Effect, Focus, Modal, Screen, TextPurpose};
use crate::ui::keymap::{self, Action};
use crate::ui::layout;

pub(super) fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if app.read_only() {
        return on_read_only_key(app, key);
    }
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        if app.quit_armed || app.running_command().is_none() && app.screen == Screen::Start {
            return quit(app, Some("quit with Ctrl-C".into()));
        }
        app.quit_armed = true;
        app.status = Some("press Ctrl-C again to quit (a running step is interrupted and can be resumed)".into());
        return Vec::new();
    }
    app.quit_armed = false;
    if app.modal.is_some() {
        return dialogs::on_modal_key(app, key);
    }
    if app.screen == Screen::Start {
        return start::on_start_key(app, key);
    }
    let Some(action) = keymap::resolve(&app.contexts(), key) else { return Vec::new() };
    on_action(app, action)
}

/// Keys when watching a drill driven elsewhere: moving around, scrolling,
/// searching and help work; whatever would change the drill only says so.
fn on_read_only_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl_c {
        return quit(app, None);
    }
    if app.modal.is_some() {
        // Only dialogs that change nothing open here (help, search).
        return dialogs::on_modal_key(app, key);
    }
    match keymap::resolve(&app.contexts(), key) {
        Some(Action::Quit | Action::ForceQuit) => quit(app, None),
        Some(action) if action.changes_the_drill() => {
            app.status = Some(crate::ui::app::READ_ONLY_NOTICE.into());
            Vec::new()
        }
        Some(action) => on_action(app, action),
        // Keys that run or tick something in the driving process.
        None if matches!(key.code, KeyCode::Enter | KeyCode::Char(' ')) => {
            app.status = Some(crate::ui::app::READ_ONLY_NOTICE.into());
            Vec::new()
        }
        None => Vec::new(),
    }
}

fn text(app: &mut App, purpose: TextPurpose) -> Vec<Effect> {
    app.modal = Some(Modal::Text { purpose, input: Input::default() });
    Vec::new()
}

fn on_action(app: &mut App, action: Action) -> Vec<Effect> {
    let page = usize::from(app.size.1.saturating_sub(8)).max(1);
    let selected = app.selected;
    match action {
        Action::Quit => {
            if app.running_command().is_some() {
                app.modal = Some(Modal::QuitConfirm);
                Vec::new()
            } else {
                quit(app, None)
            }
        }
        Action::ForceQuit => quit(app, Some("quit with Ctrl-C".into())),
        Action::Help => {
            app.modal = Some(Modal::Help { scroll: 0 });
            Vec::new()
        }
        Action::NextStep => {
            app.selected = (app.selected + 1).min(app.runbook.steps.len().saturating_sub(1));
            app.checklist_cursor = 0;
            Vec::new()
        }
        Action::PrevStep => {
            app.selected = app.selected.saturating_sub(1);
            app.checklist_cursor = 0;
            Vec::new()
        }
        Action::SwitchFocus => {
            app.focus = if app.focus == Focus::Steps { Focus::Log } else { Focus::Steps };
            Vec::new()
        }
        Action::AddNote => {
            let item = is_checklist(app, selected).then_some(app.checklist_cursor);
            text(app, TextPurpose::Note { step: selected, item })
        }
        Action::Debrief => text(app, TextPurpose::DebriefWentWell),
        Action::AddActionItem => text(app, TextPurpose::ActionItem { step: selected }),
        Action::Attach => text(app, TextPurpose::Attach { step: selected }),
        Action::MarkDone => finish_interactive_step(app, selected),
        // Any question about the step: skipping asks for its reason.
        Action::Skip if asked(app, selected, |_| true) => text(app, TextPurpose::SkipReason { step: selected }),
        Action::Skip => Vec::new(),
        Action::Answer => {
            app.modal = super::question_dialog(app);
            Vec::new()
        }
        Action::StopStep => {
            if let Some(step) = app.running_command() {
                app.selected = step;
                app.modal = Some(Modal::StopConfirm { step });
            }
            Vec::new()
        }
        Action::FailItem if asked(app, selected, |q| matches!(q, Question::Checklist { .. })) => {
            text(app, TextPurpose::ItemFailed { step: selected, item: app.checklist_cursor })
        }
        Action::FailItem => Vec::new(),
        Action::OpenUrl => match step_url(app, selected) {
            Some(url) => vec![Effect::OpenUrl(url)],
            None => {
                app.status = Some("this step has no link".into());
                Vec::new()
            }
        },
        Action::ToggleItem => toggle_item(app, selected),
        Action::PodLogs => {
            app.modal = pickers::pod_picker(app);
            Vec::new()
        }
        // Inside a checklist the arrows stay on its items (tab leaves for the log).
        Action::NextItem => {
            app.checklist_cursor = (app.checklist_cursor + 1).min(checklist_len(app, selected).saturating_sub(1));
            Vec::new()
        }
        Action::PrevItem => {
            app.checklist_cursor = app.checklist_cursor.saturating_sub(1);
            Vec::new()
        }
        Action::Search => text(app, TextPurpose::Search),
        Action::Cancel => {
            if let Some(log) = app.logs.get_mut(selected) {
                log.set_search(None);
            }
            Vec::new()
        }
        log_action => {
            if let Some(log) = app.logs.get_mut(selected) {
                match log_action {
                    Action::ToggleFollow => log.toggle_follow(),
                    Action::ToggleWrap => log.toggle_wrap(),
                    Action::ScrollUp => log.scroll_up(1),
                    Action::ScrollDown => log.scroll_down(1),
                    Action::PageUp => log.page_up(page),
                    Action::PageDown => log.page_down(page),
                    Action::Top => log.home(),
                    Action::Bottom => log.end(),
                    Action::ScrollLeft => log.scroll_left(8),
                    Action::ScrollRight => log.scroll_right(8),
                    Action::SearchNext => log.search_next(),
                    Action::SearchPrev => log.search_prev(),
                    _ => {}
                }
            }
            Vec::new()
        }
    }
}

fn is_checklist(app: &App, index: usize) -> bool {
    matches!(app.runbook.steps.get(index).map(|s| &s.action), Some(StepAction::Checklist(_)))
}

fn checklist_len(app: &App, index: usize) -> usize {
    match app.runbook.steps.get(index).map(|s| &s.action) {
        Some(StepAction::Checklist(list)) => list.items.len(),
        _ => 0,
    }
}

fn step_url(app: &App, index: usize) -> Option<String> {
    let url = app.runbook.steps.get(index)?.url.as_ref()?;
    app.templater.render_plain(&url.text, &app.template_context()).ok()
}

/// Space on a checklist item: ticks or unticks it (finishing the
/// checklist is its own key: Enter).
fn toggle_item(app: &mut App, index: usize) -> Vec<Effect> {
    if !asked(app, index, |q| matches!(q, Question::Checklist { .. })) {
        return Vec::new();
    }
    let item = app.checklist_cursor;
    if app.runbook.steps.get(index).and_then(|s| s.checklist_item(item)).is_none() {
        return Vec::new();
    }
    let ticked = app.drill.as_ref().and_then(|d| d.steps.get(index)).is_some_and(|s| s.ticked(item));
    if !ticked {
        app.checklist_cursor = (item + 1).min(checklist_len(app, index).saturating_sub(1));
    }
    answer(app, Answer::Tick { item, ticked: !ticked })
}

/// Enter on a manual step or a checklist: done (a checklist only when its
/// required items are ticked or marked failed: a failed item fails it).
fn finish_interactive_step(app: &mut App, index: usize) -> Vec<Effect> {
    if !asked(app, index, |q| matches!(q, Question::Manual { .. } | Question::Checklist { .. })) {
        return Vec::new();
    }
    if let (Some(StepAction::Checklist(list)), Some(state)) =
        (app.runbook.steps.get(index).map(|s| &s.action), app.drill.as_ref().and_then(|d| d.steps.get(index)))
    {
        let pending: Vec<&str> = list
            .items
            .iter()
            .enumerate()
            .filter(|(i, it)| it.required && !state.ticked(*i) && !state.failed_items.contains_key(i))
            .map(|(_, it)| it.text.as_str())
            .collect();
        if !pending.is_empty() {
            app.status = Some(format!("still to tick (or mark failed with f): {}", pending.join(", ")));
            return Vec::new();
        }
    }
    answer(app, Answer::Done { note: None })
}

pub(super) fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Effect> {
    if app.screen != Screen::Main || app.modal.is_some() {
        return Vec::new();
    }
    let areas = layout::main_areas(ratatui::layout::Rect::new(0, 0, app.size.0, app.size.1), app.selected_log_lines());
    let inside = |r: ratatui::layout::Rect| {
        mouse.column >= r.x && mouse.column < r.x + r.width && mouse.row >= r.y && mouse.row < r.y + r.height
    };
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) if inside(areas.steps) => {
            // Row 0 is the border; each step takes one row; the list
            // scrolls so the selection stays visible.
            let rows = usize::from(areas.steps.height.saturating_sub(2)).max(1);
            let offset = app.selected.saturating_sub(rows - 1);
            let row = usize::from(mouse.row.saturating_sub(areas.steps.y + 1)) + offset;
            if row < app.runbook.steps.len() && row < offset + rows {
                app.selected = row;
                app.focus = Focus::Steps;
            }
        }
        MouseEventKind::Down(MouseButton::Left) if inside(areas.log) => app.focus = Focus::Log,
        MouseEventKind::ScrollUp if inside(areas.log) => {
            if let Some(log) = app.logs.get_mut(app.selected) {
                log.scroll_up(3);
            }
        }
        MouseEventKind::ScrollDown if inside(areas.log) => {
            if let Some(log) = app.logs.get_mut(app.selected) {
                log.scroll_down(3);
            }
        }
        _ => {}
    }
    Vec::new()
}
