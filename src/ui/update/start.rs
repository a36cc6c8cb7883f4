//! The start screen: a field per runbook variable (prefilled from `--var`,
//! the environment and defaults that follow other fields), the
//! participants, and the checks before a drill is opened.

use std::collections::BTreeMap;

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::quit;
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{Runbook, VarDef};
use crate::ui::app::{App, Effect, Field, Modal, PickerPurpose, StartForm};
use crate::ui::keymap::{self, Action, Context};
use crate::ui::widgets::picker::{Column, Picker, Row, SortKey};

/// The start screen's fields, prefilled from `--var`, the environment and
/// defaults. `env` holds the values of the variables' environment variables;
/// `participants` come from `--participant`.
pub fn start_form(
    runbook: &Runbook,
    given: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    participants: &[(String, String)],
) -> StartForm {
    let mut form = StartForm {
        participants: Input::new(crate::drill::participants::format_list(participants)),
        participants_error: None,
        training: false,
        since_last: None,
        fields: runbook
            .vars
            .iter()
            .map(|var| {
                let value = given.get(&var.name).or_else(|| env.get(&var.name)).cloned();
                Field {
                    var: var.clone(),
                    edited: value.is_some(),
                    input: Input::new(value.unwrap_or_default()),
                    error: None,
                }
            })
            .collect(),
        focused: 0,
        error: None,
    };
    refresh_defaults(runbook, &Templater::new(), &mut form);
    form.focused = form.fields.iter().position(|f| f.input.value().is_empty()).unwrap_or(0);
    form
}

/// Re-renders template defaults of fields the operator has not typed in,
/// so `{{ project }}-dr` follows the project field.
pub(super) fn refresh_defaults(runbook: &Runbook, templater: &Templater, form: &mut StartForm) {
    for _ in 0..runbook.vars.len() {
        let mut context = TemplateContext::new();
        for field in &form.fields {
            if !field.var.secret && !field.input.value().is_empty() {
                context.set_var(&field.var.name, field.input.value());
            }
        }
        for field in form.fields.iter_mut().filter(|f| !f.edited) {
            if let Some(default) = &field.var.default {
                let value = templater.render_plain(&default.text, &context).unwrap_or_default();
                if field.input.value() != value {
                    field.input = Input::new(value);
                }
            }
        }
    }
}

pub(super) fn on_start_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    // The variables, then the participants.
    let count = app.start.fields.len() + 1;
    match keymap::resolve(&[Context::Start], key) {
        Some(Action::NextField) => {
            app.start.focused = (app.start.focused + 1) % count;
            Vec::new()
        }
        Some(Action::PrevField) => {
            app.start.focused = (app.start.focused + count - 1) % count;
            Vec::new()
        }
        Some(Action::Quit) => quit(app, None),
        Some(Action::StartDrill) => {
            if let Some(field) = app.start.fields.get(app.start.focused)
                && !field.var.choices.is_empty()
                && !field.edited
            {
                app.modal = Some(choices_picker(app.start.focused, &field.var, field.input.value()));
                return Vec::new();
            }
            submit_start(app)
        }
        _ if app.start.participants_focused() => {
            if app.start.participants.handle_event(&ratatui::crossterm::event::Event::Key(key)).is_some() {
                app.start.participants_error = None;
            }
            Vec::new()
        }
        _ => {
            if let Some(field) = app.start.fields.get_mut(app.start.focused) {
                if !field.var.choices.is_empty() && key.code == KeyCode::Char(' ') {
                    let modal = choices_picker(app.start.focused, &field.var, field.input.value());
                    app.modal = Some(modal);
                    return Vec::new();
                }
                if field.input.handle_event(&ratatui::crossterm::event::Event::Key(key)).is_some() {
                    field.edited = true;
                    field.error = None;
                }
            }
            refresh_defaults(&app.runbook, &app.templater, &mut app.start);
            Vec::new()
        }
    }
}

/// A variable's value was picked from its `choices`.
pub(super) fn choice_taken(app: &mut App, field: usize, value: String) {
    if let Some(f) = app.start.fields.get_mut(field) {
        f.input = Input::new(value);
        f.edited = true;
        f.error = None;
    }
    refresh_defaults(&app.runbook, &app.templater, &mut app.start);
}

fn choices_picker(field: usize, var: &VarDef, current: &str) -> Modal {
    let rows = var
        .choices
        .iter()
        .map(|choice| Row {
            cells: vec![choice.clone()],
            sort_keys: vec![SortKey::Text(choice.clone())],
            value: choice.clone(),
            marked: choice == current,
        })
        .collect();
    let title = var.prompt.clone().unwrap_or_else(|| format!("Choose {}", var.name));
    let columns =
        vec![Column { title: var.name.clone(), width: ratatui::layout::Constraint::Min(10), align_right: false }];
    Modal::Picker {
        purpose: PickerPurpose::Var(field),
        picker: Picker::new(title, columns, rows).with_default(current),
    }
}

fn submit_start(app: &mut App) -> Vec<Effect> {
    let mut values = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let mut first_error = None;
    for (index, field) in app.start.fields.iter_mut().enumerate() {
        let value = field.input.value().to_string();
        field.error = if value.is_empty() {
            Some(if field.var.secret {
                format!("needed (or set {})", field.var.secret_env_name())
            } else {
                "needed".to_string()
            })
        } else if !field.var.choices.is_empty() && !field.var.choices.contains(&value) {
            Some(format!("must be one of: {}", field.var.choices.join(", ")))
        } else {
            None
        };
        if field.error.is_some() {
            first_error.get_or_insert(index);
        } else if field.var.secret {
            secrets.insert(field.var.name.clone(), value);
        } else {
            values.insert(field.var.name.clone(), value);
        }
    }
    let participants = match crate::drill::participants::parse_list(app.start.participants.value()) {
        Ok(participants) => {
            app.start.participants_error = None;
            participants
        }
        Err(error) => {
            app.start.participants_error = Some(error.to_string());
            first_error.get_or_insert(app.start.fields.len());
            Vec::new()
        }
    };
    if let Some(index) = first_error {
        app.start.focused = index;
        app.start.error = Some("fill in the highlighted fields".into());
        return Vec::new();
    }
    app.start.error = None;
    vec![Effect::StartDrill { values, secrets, participants }]
}
