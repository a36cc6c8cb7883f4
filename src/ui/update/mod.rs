//! `update(&mut App, Msg) -> Vec<Effect>`: every change to the UI state.
//! Pure: no I/O, no clock reads (time arrives as `Msg::Tick`), no terminal.
//! It decides nothing about the drill: the conductor's questions become
//! dialogs (or the keys of a manual step or a checklist), and keys become
//! answers and requests for the conductor.
//!
//! `keys` turns keys and the mouse into actions, `dialogs` handles keys
//! while a dialog is open, `start` is the start screen, `pickers` builds
//! the pickers.

mod dialogs;
mod keys;
mod pickers;
mod start;

pub use start::start_form;

use tui_input::Input;

use super::app::{App, Effect, Focus, Modal, Msg, Screen};
use super::layout;
use crate::drill::event::Event;
use crate::drill::journal::Record;
use crate::drive::plan::{self, Next};
use crate::drive::{Answer, Question, Request, Update};
use crate::runbook::Runbook;

pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    let effects = match msg {
        Msg::Key(key) if key.kind != ratatui::crossterm::event::KeyEventKind::Release => keys::on_key(app, key),
        Msg::Key(_) => Vec::new(),
        Msg::Mouse(mouse) => keys::on_mouse(app, mouse),
        Msg::Resize(width, height) => {
            app.size = (width, height);
            sync_viewports(app);
            Vec::new()
        }
        Msg::Tick(now) => {
            app.now = now;
            Vec::new()
        }
        Msg::Drive(update) => on_drive(app, update),
        Msg::RestoredLog { step, lines } => {
            if let Some(log) = app.logs.get_mut(step) {
                log.push_lines(crate::engine::OutputStream::Stdout, &lines);
            }
            Vec::new()
        }
        Msg::Notice(text) => {
            app.status = Some(text);
            Vec::new()
        }
        // Once a drill is open its conductor hears signals itself.
        Msg::Signal(_) if app.drill.is_none() || app.read_only() => vec![Effect::Exit],
        Msg::Signal(_) => Vec::new(),
        Msg::Driver(driver) => {
            if let Some(watch) = app.watch.as_mut() {
                watch.driver = driver;
            }
            Vec::new()
        }
        Msg::WatchFailed(error) => {
            if let Some(watch) = app.watch.as_mut() {
                watch.error = Some(error);
            }
            Vec::new()
        }
    };
    if app.modal.is_none() {
        app.modal = app.queued_modal.take();
    }
    // The log pane's size follows what the selected step's log holds.
    sync_viewports(app);
    effects
}

/// What the conductor (or, when watching, the followed journal) reports.
fn on_drive(app: &mut App, update: Update) -> Vec<Effect> {
    match update {
        Update::Opened { id, state, notices, .. } => {
            app.drill_id = id;
            app.selected = plan_cursor(&app.runbook, &state);
            app.drill = Some(*state);
            app.screen = Screen::Main;
            sync_viewports(app);
            if !notices.is_empty() {
                app.status = Some(notices.join(" · "));
            }
        }
        Update::Recorded(records) => apply_records(app, records),
        Update::StepBegins { .. } => {}
        Update::Output { step, stream, lines } => {
            if let Some(log) = app.logs.get_mut(step) {
                log.push_lines(stream, &lines);
            }
        }
        Update::Progress { step, message } => {
            app.progress.insert(step, message);
        }
        Update::Pods { step, table } => {
            app.pod_cursor = app.pod_cursor.min(table.rows.len().saturating_sub(1));
            app.pods.insert(step, table);
        }
        Update::Notice(text) => app.status = Some(text.trim().to_string()),
        Update::Ask { id, question } => open_question(app, id, question),
        Update::Finished(summary) => {
            app.status = Some(match &summary.written {
                Ok(paths) => {
                    let dir = paths.first().and_then(|p| p.parent()).map(|d| d.display().to_string());
                    format!("reports written to {}", dir.unwrap_or_default())
                }
                Err(error) => format!("error: could not write the reports: {error}"),
            });
        }
        Update::Ended(ending) => {
            if let Some(error) = ending.error {
                app.status = Some(format!("error: {error}"));
            }
        }
    }
    Vec::new()
}

/// Tells every log pane how big it is drawn, so paging and search
/// scrolling match the screen.
fn sync_viewports(app: &mut App) {
    let areas = layout::main_areas(ratatui::layout::Rect::new(0, 0, app.size.0, app.size.1), app.selected_log_lines());
    for log in &mut app.logs {
        log.set_viewport(areas.log);
    }
}

fn apply_records(app: &mut App, records: Vec<Record<Event>>) {
    let Some(drill) = app.drill.as_mut() else { return };
    for record in records {
        if let Event::StepStarted { step, attempt, .. } = &record.event
            && let Some(index) = drill.step_index(step)
        {
            if let Some(log) = app.logs.get_mut(index) {
                log.push_marker(&format!("── attempt {attempt} ──"));
            }
            app.selected = index;
            app.checklist_cursor = 0;
        }
        if let Event::StepFinished { step, reason: Some(reason), exit_code, .. } = &record.event
            && let Some(index) = drill.step_index(step)
            && let Some(log) = app.logs.get_mut(index)
        {
            let code = exit_code.map(|c| format!(" (exit code {c})")).unwrap_or_default();
            log.push_marker(&format!("✗ {reason}{code}"));
        }
        if let Err(error) = drill.apply(&record) {
            app.status = Some(format!("error: {error}"));
        }
    }
}

/// The step the cursor should start on: the first not settled one.
fn plan_cursor(runbook: &Runbook, state: &crate::drill::state::DrillState) -> usize {
    match plan::next(runbook, state, false) {
        Next::Run(index) | Next::Decide(index) => index,
        Next::Finish(_) => 0,
    }
}

/// The conductor asks: a dialog opens (after one already open), or, for
/// a manual step or a checklist, the step's keys answer.
fn open_question(app: &mut App, id: u64, question: Question) {
    app.selected = question.step();
    if let Question::Interrupted { step, still_running } = &question {
        if still_running.is_empty() {
            app.still_running.remove(step);
        } else {
            app.still_running.insert(*step, still_running.clone());
        }
    }
    if matches!(question, Question::Manual { .. } | Question::Checklist { .. }) {
        app.checklist_cursor = 0;
        app.focus = Focus::Steps;
    }
    app.question = Some((id, question));
    if let Some(modal) = question_dialog(app) {
        if app.modal.is_some() {
            app.queued_modal = Some(modal);
        } else {
            app.modal = Some(modal);
        }
    }
}

/// The dialog of the open question (none for a manual step or a checklist).
fn question_dialog(app: &App) -> Option<Modal> {
    let (_, question) = app.question.as_ref()?;
    match question {
        Question::Confirm { step, command, target, typed: Some(expected), mismatch } => Some(Modal::TypedConfirm {
            step: *step,
            command: command.clone(),
            target: target.clone(),
            expected: expected.clone(),
            input: Input::new(mismatch.clone().unwrap_or_default()),
            mismatch: mismatch.is_some(),
        }),
        Question::Confirm { step, command, target, typed: None, .. } => {
            Some(Modal::Confirm { step: *step, command: command.clone(), target: target.clone() })
        }
        Question::Pick { step, what, rows, default } => Some(pickers::question_picker(*step, *what, rows, *default)),
        Question::Manual { .. } | Question::Checklist { .. } => None,
        Question::Interrupted { step, .. } => Some(Modal::Interrupted { step: *step }),
        Question::Failed { step, .. } => Some(Modal::Failure { step: *step }),
    }
}

/// Answers the open question (kept open for a checklist's ticks).
fn answer(app: &mut App, answer: Answer) -> Vec<Effect> {
    let keep_open = matches!(answer, Answer::Tick { .. } | Answer::ItemFailed { .. });
    let Some((id, _)) = (if keep_open { app.question.clone() } else { app.question.take() }) else {
        return Vec::new();
    };
    // Answered: "closed, the step waits" no longer says anything true.
    if app.status.as_deref() == Some(dialogs::CLOSED) {
        app.status = None;
    }
    vec![Effect::Answer { id, answer }]
}

/// The open question, if it is about `step` and is of the kind `is`.
fn asked(app: &App, step: usize, is: fn(&Question) -> bool) -> bool {
    app.question.as_ref().is_some_and(|(_, q)| q.step() == step && is(q))
}

/// Leaving: before a drill is open (or when watching) at once; otherwise the
/// conductor is asked, stops a running step and says when it is done.
fn quit(app: &mut App, reason: Option<String>) -> Vec<Effect> {
    if app.drill.is_none() || app.read_only() {
        return vec![Effect::Exit];
    }
    app.question = None;
    let reason = reason.unwrap_or_else(|| "quit by the operator".into());
    vec![Effect::Request(Request::Quit { reason })]
}
