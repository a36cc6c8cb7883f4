//! Dialogs over the main screen: confirmations (yes/no and typed), what to
//! do with an interrupted or failed step, text input (notes, reasons,
//! search), and quitting while a step runs. Destructive steps always show
//! where they act.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget, Wrap};

use crate::drill::state::StepStatus;
use crate::ui::app::{App, Modal};
use crate::ui::keymap;
use crate::ui::layout::{at_top, centered};

const WIDTH: u16 = 72;

pub fn render(app: &App, modal: &Modal, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let (title, mut lines, input): (String, Vec<Line>, Option<(String, bool)>) = match modal {
        Modal::Confirm { step, command, target } => {
            let mut lines = intro(app, *step, target);
            lines.extend(command_lines(app, *step, command));
            (" Run this step? ".into(), lines, None)
        }
        Modal::TypedConfirm { step, command, target, expected, input, mismatch } => {
            let mut lines = intro(app, *step, target);
            lines.extend(command_lines(app, *step, command));
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::raw("Type "),
                Span::styled(expected.clone(), theme.key()),
                Span::raw(" to run it. Esc closes this; `s` on the step skips it (with a reason)."),
            ]));
            if *mismatch {
                lines.push(Line::from(Span::styled(format!("`{}` does not match", input.value()), theme.bad())));
            }
            (" Destructive step: type to confirm ".into(), lines, Some((input.value().to_string(), true)))
        }
        Modal::Interrupted { step } => {
            let name = step_name(app, *step);
            let attempt = match app.drill.as_ref().and_then(|d| d.steps.get(*step)).map(|s| &s.status) {
                Some(StepStatus::Interrupted { attempt }) => format!(" (attempt {attempt})"),
                _ => String::new(),
            };
            let mut lines = vec![
                Line::from(format!("`{name}`{attempt} was running when drillbook stopped.")),
                Line::from("Its command may or may not have finished its work: check the log before choosing."),
            ];
            if let Some(processes) = app.still_running.get(step) {
                lines.push(Line::from(Span::styled(
                    "Still running (r stops them before running the step again):",
                    theme.warn(),
                )));
                lines.extend(processes.iter().map(|p| Line::from(Span::styled(format!("  {p}"), theme.warn()))));
            }
            (" Interrupted step ".into(), lines, None)
        }
        Modal::Failure { step } => {
            let reason = match app.drill.as_ref().and_then(|d| d.steps.get(*step)).map(|s| &s.status) {
                Some(StepStatus::Failed { reason }) => reason.clone(),
                _ => String::new(),
            };
            let lines = vec![
                Line::from(vec![
                    Span::raw(format!("`{}` failed: ", step_name(app, *step))),
                    Span::styled(reason, theme.bad()),
                ]),
                Line::from(Span::styled("The log pane shows its last lines.", theme.dim())),
            ];
            (" Step failed ".into(), lines, None)
        }
        Modal::Text { purpose, input } => {
            (format!(" {} ", purpose.title()), Vec::new(), Some((input.value().to_string(), false)))
        }
        Modal::StopConfirm { step } => {
            let lines = vec![
                Line::from(format!(
                    "Stop `{}` now? Its process group (or its watch) is stopped.",
                    step_name(app, *step)
                )),
                Line::from("The step then counts as failed: retry it, skip it (with a reason) or abort."),
            ];
            (" Stop the step? ".into(), lines, None)
        }
        Modal::QuitConfirm => {
            let running = app.running_command().map(|i| step_name(app, i)).unwrap_or_default();
            let lines = vec![
                Line::from(format!("`{running}` is running. Quitting stops it; it is kept as interrupted.")),
                Line::from("`drillbook resume` continues the drill later. Quit now?"),
            ];
            (" Quit? ".into(), lines, None)
        }
        Modal::Help { .. } | Modal::Picker { .. } => return,
    };
    let mut hints = Vec::new();
    let hint_list = match modal {
        Modal::Text { .. } => vec![("enter".to_string(), "accept"), ("esc".to_string(), "back")],
        Modal::TypedConfirm { .. } => vec![("enter".to_string(), "run it"), ("esc".to_string(), "close")],
        Modal::QuitConfirm => vec![("y".to_string(), "quit"), ("n".to_string(), "stay")],
        Modal::StopConfirm { .. } => vec![("y".to_string(), "stop it"), ("n".to_string(), "let it run")],
        other => keymap::hints(&[other.context()]),
    };
    for (key, description) in hint_list {
        hints.push(Span::styled(format!(" {key}"), theme.key()));
        hints.push(Span::styled(format!(" {description} "), theme.dim()));
    }
    // Long lines wrap: count the rows they take, so nothing falls off the bottom.
    let inner_width = usize::from(WIDTH.min(area.width).saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|line| wrapped_rows(line, inner_width)).sum();
    let rows = u16::try_from(rows).unwrap_or(u16::MAX);
    let height = (rows + if input.is_some() { 2 } else { 0 } + 2).min(area.height);
    // The log shows what happened to an interrupted or failed step: keep it in view.
    let dialog = match modal {
        Modal::Interrupted { .. } | Modal::Failure { .. } => at_top(area, WIDTH, height),
        _ => centered(area, WIDTH, height),
    };
    Clear.render(dialog, buf);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(theme.border(true))
        .title(Span::styled(title, theme.title()))
        .title_bottom(Line::from(hints));
    let inner = block.inner(dialog);
    block.render(dialog, buf);
    if let Some((value, _)) = &input {
        lines.push(Line::raw(""));
        let line_y = inner.y + lines.len() as u16 - 1;
        let _ = line_y;
        lines.push(Line::from(vec![Span::styled("> ", theme.key()), Span::raw(value.clone())]));
    }
    Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
}

/// Rows `line` takes when word-wrapped at `width` (as the dialog's paragraph wraps it).
fn wrapped_rows(line: &Line<'_>, width: usize) -> usize {
    let text: String = line.spans.iter().map(|span| span.content.as_ref()).collect();
    let mut rows = 1;
    let mut column = 0;
    for word in text.split(' ') {
        let length = word.chars().count();
        if column == 0 {
            column = length;
        } else if column + 1 + length <= width {
            column += 1 + length;
        } else {
            rows += 1;
            column = length;
        }
        while column > width {
            rows += 1;
            column -= width;
        }
    }
    rows
}

fn intro<'a>(app: &App, step: usize, target: &str) -> Vec<Line<'a>> {
    let theme = app.theme;
    vec![
        Line::from(vec![Span::raw("Step "), Span::styled(step_name(app, step), theme.title())]),
        Line::from(vec![Span::raw("Where: "), Span::styled(target.to_string(), theme.warn())]),
        Line::raw(""),
    ]
}

/// The command a step will run (with a `$` prompt), or for other steps
/// what they will change, as they are.
fn command_lines<'a>(app: &App, step: usize, command: &str) -> Vec<Line<'a>> {
    let theme = app.theme;
    let shell = app.runbook.steps.get(step).is_some_and(|s| matches!(s.action, crate::runbook::Action::Command(_)));
    const SHOWN: usize = 14;
    let total = command.lines().count();
    let mut lines: Vec<Line<'a>> = command
        .lines()
        .take(SHOWN)
        .enumerate()
        .map(|(i, line)| {
            let prompt = match (shell, i) {
                (true, 0) => "$ ",
                (true, _) => "  ",
                (false, _) => "",
            };
            Line::from(vec![Span::styled(prompt, theme.dim()), Span::styled(line.to_string(), theme.code())])
        })
        .collect();
    if total > SHOWN {
        // Never let the operator confirm without knowing there is more.
        let more = format!("… and {} more lines (all of them are in the step's log)", total - SHOWN);
        lines.push(Line::from(Span::styled(more, theme.warn())));
    }
    lines
}

fn step_name(app: &App, step: usize) -> String {
    app.runbook.steps.get(step).map_or_else(String::new, |s| format!("{} ({})", s.title, s.id))
}

/// Where the terminal cursor goes when a dialog has a text input.
pub fn cursor(modal: &Modal, area: Rect) -> Option<(u16, u16)> {
    let (input, lines_before) = match modal {
        Modal::Text { input, .. } => (input, 1u16),
        Modal::TypedConfirm { .. } => return None,
        _ => return None,
    };
    let dialog = centered(area, WIDTH, lines_before + 2 + 2);
    let x = dialog.x + 1 + 2 + input.visual_cursor() as u16;
    let y = dialog.y + 1 + lines_before;
    Some((x.min(dialog.x + dialog.width.saturating_sub(2)), y))
}
