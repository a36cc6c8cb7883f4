//! Keys while a dialog is open: confirmations, what to do with an
//! interrupted or failed step, pickers, one-line text (notes, reasons,
//! the debrief, search), help, and quitting while a step runs. Dialogs that
//! answer the conductor's question send the answer; the rest send requests.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::{Answer, answer, question_dialog, quit, start};
use crate::drive::{Question, Request};
use crate::ui::app::{App, Effect, Focus, Modal, PickerPurpose, TextPurpose};
use crate::ui::keymap::{self, Action};
use crate::ui::widgets::picker::PickerOutcome;

pub(super) fn on_modal_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let Some(modal) = app.modal.take() else { return Vec::new() };
    let action = keymap::resolve(&[modal.context()], key);
    match modal {
        Modal::Help { scroll } => {
            app.modal = match action {
                Some(Action::Cancel) => None,
                Some(Action::ScrollUp) => Some(Modal::Help { scroll: scroll.saturating_sub(1) }),
                Some(Action::ScrollDown) => Some(Modal::Help { scroll: scroll.saturating_add(1) }),
                _ if key.code == KeyCode::Char('q') => None,
                _ => Some(Modal::Help { scroll }),
            };
            Vec::new()
        }
        Modal::Confirm { step, command, target } => match action {
            Some(Action::Yes | Action::Accept) => answer(app, Answer::Yes),
            Some(Action::No | Action::Skip) => text(app, TextPurpose::SkipReason { step }),
            // Closed, not declined: the step waits, Enter opens it again.
            Some(Action::Cancel) => closed(app),
            _ => {
                app.modal = Some(Modal::Confirm { step, command, target });
                Vec::new()
            }
        },
        Modal::TypedConfirm { step, command, target, expected, mut input, .. } => match key.code {
            KeyCode::Enter if input.value() == expected => answer(app, Answer::Typed(expected)),
            KeyCode::Enter => {
                app.modal = Some(Modal::TypedConfirm { step, command, target, expected, input, mismatch: true });
                Vec::new()
            }
            KeyCode::Esc => closed(app),
            _ => {
                input.handle_event(&ratatui::crossterm::event::Event::Key(key));
                app.modal = Some(Modal::TypedConfirm { step, command, target, expected, input, mismatch: false });
                Vec::new()
            }
        },
        Modal::Interrupted { step } => match action {
            Some(Action::Retry) => answer(app, Answer::Again),
            Some(Action::MarkDone) => text(app, TextPurpose::MarkDoneNote { step }),
            Some(Action::Skip) => text(app, TextPurpose::SkipReason { step }),
            Some(Action::Cancel) => closed(app),
            _ => {
                app.modal = Some(Modal::Interrupted { step });
                Vec::new()
            }
        },
        Modal::Failure { step } => match action {
            Some(Action::Retry) => answer(app, Answer::Again),
            Some(Action::Skip) => text(app, TextPurpose::SkipReason { step }),
            Some(Action::Abort) => answer(app, Answer::Abort { note: None }),
            Some(Action::Cancel) => closed(app),
            _ => {
                app.modal = Some(Modal::Failure { step });
                Vec::new()
            }
        },
        Modal::StopConfirm { step } => match action {
            Some(Action::Yes | Action::Accept) => {
                app.status = Some("stopping the step…".into());
                vec![Effect::Request(Request::StopStep)]
            }
            Some(Action::No | Action::Cancel) => Vec::new(),
            _ => {
                app.modal = Some(Modal::StopConfirm { step });
                Vec::new()
            }
        },
        Modal::QuitConfirm => match action {
            Some(Action::Yes | Action::Accept) => quit(app, Some("quit by the operator".into())),
            Some(Action::No | Action::Cancel) => Vec::new(),
            _ => {
                app.modal = Some(Modal::QuitConfirm);
                Vec::new()
            }
        },
        Modal::Text { purpose, input }
            if key.code == KeyCode::Enter && needs_text(&purpose) && input.value().trim().is_empty() =>
        {
            // No deviation without its reason.
            app.status = Some("a reason is needed: say why, so the report can".into());
            app.modal = Some(Modal::Text { purpose, input });
            Vec::new()
        }
        Modal::Text { purpose, mut input } => match key.code {
            KeyCode::Enter => text_entered(app, purpose, input.value().trim().to_string()),
            KeyCode::Esc => {
                // Backing out of a reason returns to the dialog it came from.
                app.modal = match purpose {
                    TextPurpose::SkipReason { .. } | TextPurpose::MarkDoneNote { .. } => question_dialog(app),
                    _ => None,
                };
                Vec::new()
            }
            _ => {
                input.handle_event(&ratatui::crossterm::event::Event::Key(key));
                app.modal = Some(Modal::Text { purpose, input });
                Vec::new()
            }
        },
        Modal::Picker { purpose, mut picker } => match (purpose, picker.handle_key(key)) {
            (_, PickerOutcome::Continue) => {
                app.modal = Some(Modal::Picker { purpose, picker });
                Vec::new()
            }
            (PickerPurpose::Backup(_) | PickerPurpose::Tag(_), PickerOutcome::Accepted(row)) => match row.parse() {
                Ok(row) => answer(app, Answer::Pick(row)),
                Err(_) => answer(app, Answer::NoPick),
            },
            (PickerPurpose::Backup(_) | PickerPurpose::Tag(_), PickerOutcome::Cancelled) => answer(app, Answer::NoPick),
            (PickerPurpose::Pod(step), PickerOutcome::Accepted(row)) => {
                let pod =
                    row.parse::<usize>().ok().and_then(|row| Some(app.pods.get(&step)?.rows.get(row)?.name.clone()));
                pod.map(|pod| vec![Effect::Request(Request::PodLogs { step, pod })]).unwrap_or_default()
            }
            (PickerPurpose::Var(field), PickerOutcome::Accepted(value)) => {
                start::choice_taken(app, field, value);
                Vec::new()
            }
            (PickerPurpose::Pod(_) | PickerPurpose::Var(_), PickerOutcome::Cancelled) => Vec::new(),
        },
    }
}

fn text(app: &mut App, purpose: TextPurpose) -> Vec<Effect> {
    app.modal = Some(Modal::Text { purpose, input: Input::default() });
    Vec::new()
}

/// Text that is a deviation's reason: it may not be empty.
fn needs_text(purpose: &TextPurpose) -> bool {
    matches!(
        purpose,
        TextPurpose::SkipReason { .. } | TextPurpose::MarkDoneNote { .. } | TextPurpose::ItemFailed { .. }
    )
}

/// What the status bar says while a question waits with its dialog closed.
pub(super) const CLOSED: &str = "closed: the step waits for an answer (enter opens it again)";

/// A question's dialog closed with Esc: nothing is answered; the step
/// waits, and Enter opens the dialog again.
fn closed(app: &mut App) -> Vec<Effect> {
    app.status = Some(CLOSED.into());
    Vec::new()
}

/// A path as typed or dropped into the terminal: surrounding quotes
/// removed, `\ ` unescaped (what a terminal inserts for a dropped file).
/// `None` for nothing typed. (`~/` is expanded by the conductor: `update`
/// reads no environment.)
pub(super) fn attached_path(text: &str) -> Option<std::path::PathBuf> {
    let text = text.trim();
    let unquoted = ['\'', '"']
        .iter()
        .find_map(|q| text.strip_prefix(*q).and_then(|t| t.strip_suffix(*q)))
        .map(str::to_string)
        .unwrap_or_else(|| text.replace("\\ ", " "));
    (!unquoted.is_empty()).then(|| std::path::PathBuf::from(unquoted))
}

/// "Rotate the backup key @dana" → ("Rotate the backup key", Some("dana")).
fn split_owner(text: &str) -> (String, Option<String>) {
    let text = text.trim();
    match text.rsplit_once(" @") {
        Some((item, owner)) if !owner.is_empty() && !owner.contains(char::is_whitespace) && !item.trim().is_empty() => {
            (item.trim().to_string(), Some(owner.to_string()))
        }
        _ => (text.to_string(), None),
    }
}

fn text_entered(app: &mut App, purpose: TextPurpose, text: String) -> Vec<Effect> {
    match purpose {
        TextPurpose::Search => {
            if let Some(log) = app.logs.get_mut(app.selected) {
                log.set_search((!text.is_empty()).then_some(text));
            }
            app.focus = Focus::Log;
            Vec::new()
        }
        TextPurpose::Note { step, item } if !text.is_empty() => {
            app.status = Some("note saved".into());
            vec![Effect::Request(Request::Note { step: Some(step), item, text })]
        }
        TextPurpose::Note { .. } => Vec::new(),
        TextPurpose::ActionItem { step } if !text.trim().is_empty() => {
            let (text, owner) = split_owner(&text);
            app.status = Some(match &owner {
                Some(owner) => format!("action item saved for {owner}"),
                None => "action item saved".into(),
            });
            vec![Effect::Request(Request::ActionItem { text, owner, step: Some(step) })]
        }
        TextPurpose::ActionItem { .. } => Vec::new(),
        TextPurpose::Attach { step } => match attached_path(&text) {
            Some(path) => {
                app.status = Some(format!("attaching {}…", path.display()));
                vec![Effect::Request(Request::Attach { step, paths: vec![path] })]
            }
            None => Vec::new(),
        },
        TextPurpose::DebriefWentWell => {
            app.modal = Some(Modal::Text {
                purpose: TextPurpose::DebriefToImprove { went_well: text },
                input: Input::default(),
            });
            Vec::new()
        }
        TextPurpose::DebriefToImprove { went_well } => {
            app.status = Some("debrief saved: it is in the report".into());
            vec![Effect::Request(Request::Debrief { went_well, to_improve: text })]
        }
        TextPurpose::SkipReason { .. } => {
            let declining = matches!(app.question, Some((_, Question::Confirm { .. })));
            answer(app, if declining { Answer::Decline { reason: text } } else { Answer::Skip { reason: text } })
        }
        TextPurpose::MarkDoneNote { .. } => answer(app, Answer::MarkDone { note: text }),
        TextPurpose::ItemFailed { item, .. } => {
            app.checklist_cursor = item;
            answer(app, Answer::ItemFailed { item, note: text })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_owner_is_split_from_the_end_of_an_action_item() {
        assert_eq!(super::split_owner("Rotate the key @dana"), ("Rotate the key".into(), Some("dana".into())));
        assert_eq!(super::split_owner("Email a@b.c"), ("Email a@b.c".into(), None));
        assert_eq!(super::split_owner("@dana"), ("@dana".into(), None));
    }
}
