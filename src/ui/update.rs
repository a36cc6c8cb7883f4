//! `update(&mut App, Msg) -> Vec<Effect>`: every change to the UI state and
//! every decision about what runs next. Pure: no I/O, no clock reads (time
//! arrives as `Msg::Tick`), no terminal.

use std::collections::BTreeMap;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::app::{App, Effect, Field, Focus, Modal, Msg, PickerPurpose, Screen, StartForm, TextPurpose};
use super::keymap::{self, Action};
use super::layout;
use super::widgets::picker::{Column, Picker, PickerOutcome, Row, SortKey};
use crate::drill::event::{DrillOutcome, Event, SkipCause};
use crate::drill::state::StepStatus;
use crate::engine::plan::{self, Next};
use crate::runbook::{Action as StepAction, Confirm, Runbook, VarDef};

pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    let mut effects = match msg {
        Msg::Key(key) if key.kind != KeyEventKind::Release => on_key(app, key),
        Msg::Key(_) => Vec::new(),
        Msg::Mouse(mouse) => on_mouse(app, mouse),
        Msg::Resize(width, height) => {
            app.size = (width, height);
            sync_viewports(app);
            Vec::new()
        }
        Msg::Tick(now) => {
            app.now = now;
            Vec::new()
        }
        Msg::DrillOpened { id, state, notices } => {
            app.drill_id = id;
            app.selected = plan_cursor(&app.runbook, &state);
            app.drill = Some(*state);
            app.screen = Screen::Main;
            sync_viewports(app);
            if !notices.is_empty() {
                app.status = Some(notices.join(" · "));
            }
            app.in_flight = app.in_flight.saturating_sub(1);
            Vec::new()
        }
        Msg::EffectDone(records) => {
            app.in_flight = app.in_flight.saturating_sub(1);
            apply_records(app, records);
            Vec::new()
        }
        Msg::StepEnded(records) => {
            apply_records(app, records);
            Vec::new()
        }
        Msg::Output { step, stream, lines } => {
            if let Some(log) = app.logs.get_mut(step) {
                log.push_lines(stream, &lines);
            }
            Vec::new()
        }
        Msg::Progress { step, message } => {
            app.progress.insert(step, message);
            Vec::new()
        }
        Msg::Pods { step, table } => {
            app.pod_cursor = app.pod_cursor.min(table.rows.len().saturating_sub(1));
            app.pods.insert(step, table);
            Vec::new()
        }
        Msg::PickBackup { step, rows } => {
            app.in_flight = app.in_flight.saturating_sub(1);
            app.selected = step;
            let picker = backup_picker(step, rows);
            if app.modal.is_some() {
                app.queued_modal = Some(picker);
            } else {
                app.modal = Some(picker);
            }
            Vec::new()
        }
        Msg::PickTag { step, rows } => {
            app.in_flight = app.in_flight.saturating_sub(1);
            app.selected = step;
            let picker = tag_picker(step, rows);
            if app.modal.is_some() {
                app.queued_modal = Some(picker);
            } else {
                app.modal = Some(picker);
            }
            Vec::new()
        }
        Msg::ScalePlanned { step, lines, target, namespace } => {
            app.in_flight = app.in_flight.saturating_sub(1);
            app.selected = step;
            let command = lines.join("\n");
            let typed = app.runbook.steps.get(step).is_some_and(|s| s.confirm == Confirm::Typed);
            let dialog = if typed {
                Modal::TypedConfirm {
                    step,
                    command,
                    target,
                    expected: namespace,
                    input: Input::default(),
                    mismatch: false,
                }
            } else {
                // Scaling is destructive: it is confirmed even with `confirm = false`.
                Modal::Confirm { step, command, target }
            };
            if app.modal.is_some() {
                app.queued_modal = Some(dialog);
            } else {
                app.modal = Some(dialog);
            }
            Vec::new()
        }
        Msg::StillRunning { step, processes } => {
            if processes.is_empty() {
                app.still_running.remove(&step);
            } else {
                app.still_running.insert(step, processes);
            }
            Vec::new()
        }
        Msg::RestoredLog { step, lines } => {
            if let Some(log) = app.logs.get_mut(step) {
                log.push_lines(crate::engine::OutputStream::Stdout, &lines);
            }
            Vec::new()
        }
        Msg::EffectFailed(error) => {
            app.in_flight = app.in_flight.saturating_sub(1);
            app.status = Some(format!("error: {error}"));
            Vec::new()
        }
        Msg::Notice(text) => {
            app.status = Some(text);
            Vec::new()
        }
        Msg::Signal(_) if app.read_only() => quit(app, None),
        Msg::Signal(name) => quit(app, Some(format!("stopped by {name}"))),
        Msg::Followed(records) => {
            apply_records(app, records);
            Vec::new()
        }
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
    // Count what is in flight before deciding anything else, so the same
    // step is never started twice.
    app.in_flight += effects.iter().filter(|e| expects_reply(e)).count();
    if !app.quitting {
        let next = advance(app);
        app.in_flight += next.iter().filter(|e| expects_reply(e)).count();
        effects.extend(next);
    }
    effects
}

/// Tells every log pane how big it is drawn, so paging and search
/// scrolling match the screen.
fn sync_viewports(app: &mut App) {
    let areas = layout::main_areas(ratatui::layout::Rect::new(0, 0, app.size.0, app.size.1));
    for log in &mut app.logs {
        log.set_viewport(areas.log);
    }
}

/// Effects the runtime answers with `EffectDone` or `EffectFailed`.
fn expects_reply(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::StartDrill { .. }
            | Effect::Record(_)
            | Effect::RunCommand { .. }
            | Effect::FailStep { .. }
            | Effect::PlanScale { .. }
            | Effect::RunK8s { .. }
            | Effect::RunHttp { .. }
            | Effect::StopLeftovers
    )
}

fn apply_records(app: &mut App, records: Vec<crate::drill::journal::Record<Event>>) {
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

/// Decides what happens next when nothing is pending: start the next
/// step, ask about an interrupted or failed one, or finish the drill.
fn advance(app: &mut App) -> Vec<Effect> {
    // A watcher only shows what the driving process decides.
    if app.read_only() || app.screen != Screen::Main || app.in_flight > 0 || app.modal.is_some() {
        return Vec::new();
    }
    let Some(drill) = &app.drill else { return Vec::new() };
    if drill.finished.is_some() || drill.running_step().is_some() {
        return Vec::new();
    }
    if !app.aborting
        && let Some(index) = plan::blocking_failure(&app.runbook, drill)
    {
        app.selected = index;
        app.modal = Some(Modal::Failure { step: index });
        return Vec::new();
    }
    match plan::next(&app.runbook, drill, app.aborting) {
        Next::Finish(outcome) => {
            let reason = match outcome {
                DrillOutcome::Completed => None,
                DrillOutcome::Aborted => Some("aborted by the operator".to_string()),
                DrillOutcome::Failed => drill.steps.iter().find_map(|s| match &s.status {
                    StepStatus::Failed { reason } => Some(format!("step `{}` failed: {reason}", s.outline.id)),
                    _ => None,
                }),
            };
            vec![Effect::Record(Event::DrillFinished { outcome, reason })]
        }
        Next::Decide(index) => {
            app.selected = index;
            let step = &app.runbook.steps[index];
            if matches!(step.action, StepAction::Manual | StepAction::Checklist(_)) {
                // Nothing ran: carry on where the operator was (ticks are kept).
                vec![Effect::Record(Event::StepReset {
                    step: step.id.clone(),
                    reason: "continue after interruption".into(),
                })]
            } else {
                app.modal = Some(Modal::Interrupted { step: index });
                Vec::new()
            }
        }
        Next::Run(index) => start_step(app, index),
    }
}

fn start_step(app: &mut App, index: usize) -> Vec<Effect> {
    let runbook = app.runbook.clone();
    let step = &runbook.steps[index];
    app.selected = index;
    let context = app.template_context();
    if let Some(when) = &step.when {
        match app.templater.eval_condition(&when.text, &context) {
            Ok(true) => {}
            Ok(false) => {
                return vec![Effect::Record(Event::StepSkipped {
                    step: step.id.clone(),
                    cause: SkipCause::Condition,
                    reason: format!("when `{}` is false", when.text),
                })];
            }
            Err(error) => {
                return vec![Effect::FailStep { step: index, reason: format!("cannot evaluate `when`: {error}") }];
            }
        }
    }
    let attempt = app.drill.as_ref().and_then(|d| d.steps.get(index)).map_or(0, |s| s.attempt_count()) + 1;
    match &step.action {
        StepAction::Manual | StepAction::Checklist(_) => {
            app.checklist_cursor = 0;
            app.focus = Focus::Steps;
            vec![Effect::Record(Event::StepStarted { step: step.id.clone(), attempt, command: None, log: None })]
        }
        StepAction::Command(spec) => {
            if step.confirm == Confirm::No {
                return vec![Effect::RunCommand { step: index }];
            }
            let command = match app.templater.render_shell(&spec.run.text, &context) {
                Ok(command) => command,
                Err(error) => return vec![Effect::FailStep { step: index, reason: format!("`run`: {error}") }],
            };
            let training = app.drill.as_ref().is_some_and(|d| d.training);
            let target = match step_target(app, index) {
                Some(target) => target,
                None if training => "training: simulated, not run".to_string(),
                None => "this machine".to_string(),
            };
            app.modal = Some(if step.confirm == Confirm::Typed {
                Modal::TypedConfirm {
                    step: index,
                    command,
                    target,
                    expected: typed_target(app, index),
                    input: Input::default(),
                    mismatch: false,
                }
            } else {
                Modal::Confirm { step: index, command, target }
            });
            Vec::new()
        }
        StepAction::S3Backup(_) | StepAction::S3Check(_) => vec![Effect::RunS3 { step: index }],
        StepAction::K8sImageTag(_) | StepAction::K8sWait(_) => vec![Effect::RunK8s { step: index }],
        StepAction::K8sScale(_) => vec![Effect::PlanScale { step: index }],
        StepAction::HttpCheck(_) => vec![Effect::RunHttp { step: index }],
    }
}

/// Where a step acts ("context ctx, namespace ns", "bucket b"), rendered.
pub fn step_target(app: &App, index: usize) -> Option<String> {
    use crate::runbook::Action as A;
    let step = app.runbook.steps.get(index)?;
    let context = app.template_context();
    let render = |t: &crate::runbook::Template| app.templater.render_plain(&t.text, &context).unwrap_or(t.text.clone());
    let training = app.drill.as_ref().is_some_and(|d| d.training);
    let k8s = |target: &crate::runbook::K8sTarget| {
        if training {
            // Training works on the sandbox whatever the runbook says.
            let namespace = render(&target.namespace);
            format!("context sandbox (training), namespace {namespace}")
        } else {
            k8s_target(target, render)
        }
    };
    match &step.action {
        A::K8sImageTag(s) => Some(k8s(&s.target)),
        A::K8sWait(s) => Some(k8s(&s.target)),
        A::K8sScale(s) => Some(k8s(&s.target)),
        A::S3Backup(s) => Some(format!("bucket {}", render(&s.bucket))),
        A::S3Check(s) => Some(format!("bucket {}", render(&s.bucket))),
        A::HttpCheck(s) => Some(render(&s.url)),
        A::Command(_) | A::Manual | A::Checklist(_) => None,
    }
}

fn k8s_target(target: &crate::runbook::K8sTarget, render: impl Fn(&crate::runbook::Template) -> String) -> String {
    let context = target.context.as_ref().map_or_else(
        || match std::env::var(crate::engine::k8s::CONTEXT_ENV) {
            Ok(context) if !context.is_empty() => format!("context {context}"),
            _ => "current context".to_string(),
        },
        |c| {
            let context = render(c);
            // The sandbox's directory says nothing to the operator.
            if context.starts_with(crate::engine::k8s::SANDBOX_PREFIX) {
                "context sandbox (simulated)".to_string()
            } else {
                format!("context {context}")
            }
        },
    );
    format!("{context}, namespace {}", render(&target.namespace))
}

/// What the operator types to confirm: the namespace where there is one,
/// else the step id.
fn typed_target(app: &App, index: usize) -> String {
    use crate::runbook::Action as A;
    let step = &app.runbook.steps[index];
    let context = app.template_context();
    let namespace = match &step.action {
        A::K8sScale(s) => Some(&s.target.namespace),
        A::K8sWait(s) => Some(&s.target.namespace),
        A::K8sImageTag(s) => Some(&s.target.namespace),
        _ => None,
    };
    namespace.and_then(|ns| app.templater.render_plain(&ns.text, &context).ok()).unwrap_or_else(|| step.id.clone())
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

fn quit(app: &mut App, interrupt: Option<String>) -> Vec<Effect> {
    app.quitting = true;
    vec![Effect::Quit { interrupt }]
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
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
        return on_modal_key(app, key);
    }
    if app.screen == Screen::Start {
        return on_start_key(app, key);
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
        return on_modal_key(app, key);
    }
    match keymap::resolve(&app.contexts(), key) {
        Some(Action::Quit | Action::ForceQuit) => quit(app, None),
        Some(action) if action.changes_the_drill() => {
            app.status = Some(super::app::READ_ONLY_NOTICE.into());
            Vec::new()
        }
        Some(action) => on_action(app, action),
        // Keys that run or tick something in the driving process.
        None if matches!(key.code, KeyCode::Enter | KeyCode::Char(' ')) => {
            app.status = Some(super::app::READ_ONLY_NOTICE.into());
            Vec::new()
        }
        None => Vec::new(),
    }
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
            app.modal =
                Some(Modal::Text { purpose: TextPurpose::Note { step: selected, item }, input: Input::default() });
            Vec::new()
        }
        Action::Debrief => {
            app.modal = Some(Modal::Text { purpose: TextPurpose::DebriefWentWell, input: Input::default() });
            Vec::new()
        }
        Action::AddActionItem => {
            app.modal =
                Some(Modal::Text { purpose: TextPurpose::ActionItem { step: selected }, input: Input::default() });
            Vec::new()
        }
        Action::MarkDone => finish_interactive_step(app, selected),
        Action::Skip => {
            app.modal =
                Some(Modal::Text { purpose: TextPurpose::SkipReason { step: selected }, input: Input::default() });
            Vec::new()
        }
        Action::OpenUrl => match step_url(app, selected) {
            Some(url) => vec![Effect::OpenUrl(url)],
            None => {
                app.status = Some("this step has no link".into());
                Vec::new()
            }
        },
        Action::ToggleItem => toggle_item(app, selected),
        Action::PodLogs => {
            app.modal = pod_picker(app);
            Vec::new()
        }
        // Past either end of the checklist, the arrows move between steps.
        Action::NextItem => {
            let count = checklist_len(app, selected);
            if app.checklist_cursor + 1 >= count {
                return on_action(app, Action::NextStep);
            }
            app.checklist_cursor += 1;
            Vec::new()
        }
        Action::PrevItem => {
            if app.checklist_cursor == 0 {
                return on_action(app, Action::PrevStep);
            }
            app.checklist_cursor -= 1;
            Vec::new()
        }
        Action::Search => {
            app.modal = Some(Modal::Text { purpose: TextPurpose::Search, input: Input::default() });
            Vec::new()
        }
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

fn is_running(app: &App, index: usize) -> bool {
    app.drill.as_ref().and_then(|d| d.steps.get(index)).is_some_and(|s| matches!(s.status, StepStatus::Running { .. }))
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

fn toggle_item(app: &mut App, index: usize) -> Vec<Effect> {
    let (Some(drill), Some(StepAction::Checklist(list))) =
        (&app.drill, app.runbook.steps.get(index).map(|s| &s.action))
    else {
        return Vec::new();
    };
    if !is_running(app, index) {
        return Vec::new();
    }
    let item = app.checklist_cursor;
    let Some(entry) = list.items.get(item) else { return Vec::new() };
    let ticked = drill.steps.get(index).is_some_and(|s| s.ticked(item));
    let step = app.runbook.steps[index].id.clone();
    let mut effects =
        vec![Effect::Record(Event::ChecklistTicked { step, item, text: entry.text.clone(), ticked: !ticked })];
    // The step completes when every required item is ticked.
    let all_done = list
        .items
        .iter()
        .enumerate()
        .all(|(i, it)| !it.required || if i == item { !ticked } else { drill.steps[index].ticked(i) });
    if all_done {
        effects.extend(record_step_done(app, index));
    } else if !ticked {
        app.checklist_cursor = (item + 1).min(list.items.len().saturating_sub(1));
    }
    effects
}

fn finish_interactive_step(app: &mut App, index: usize) -> Vec<Effect> {
    if !is_running(app, index) {
        return Vec::new();
    }
    if let (Some(StepAction::Checklist(list)), Some(state)) =
        (app.runbook.steps.get(index).map(|s| &s.action), app.drill.as_ref().and_then(|d| d.steps.get(index)))
    {
        let pending: Vec<&str> = list
            .items
            .iter()
            .enumerate()
            .filter(|(i, it)| it.required && !state.ticked(*i))
            .map(|(_, it)| it.text.as_str())
            .collect();
        if !pending.is_empty() {
            app.status = Some(format!("still to tick: {}", pending.join(", ")));
            return Vec::new();
        }
    }
    record_step_done(app, index)
}

/// Journals a manual or checklist step as done.
fn record_step_done(app: &App, index: usize) -> Vec<Effect> {
    let Some(state) = app.drill.as_ref().and_then(|d| d.steps.get(index)) else { return Vec::new() };
    let started = state.attempts.last().map(|a| a.started_at);
    let duration_ms = started
        .and_then(|s| std::time::Duration::try_from(app.now.duration_since(s)).ok())
        .map_or(0, |d| d.as_millis() as u64);
    vec![Effect::Record(Event::finished_by_hand(
        &state.outline.id,
        state.attempt_count(),
        crate::drill::event::AttemptResult::Succeeded,
        None,
        duration_ms,
    ))]
}

fn on_mouse(app: &mut App, mouse: ratatui::crossterm::event::MouseEvent) -> Vec<Effect> {
    if app.screen != Screen::Main || app.modal.is_some() {
        return Vec::new();
    }
    let areas = layout::main_areas(ratatui::layout::Rect::new(0, 0, app.size.0, app.size.1));
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

fn on_modal_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
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
            Some(Action::Yes | Action::Accept) => confirmed(app, step, "answered yes".into()),
            Some(Action::No | Action::Cancel) => not_confirmed(app, step),
            _ => {
                app.modal = Some(Modal::Confirm { step, command, target });
                Vec::new()
            }
        },
        Modal::TypedConfirm { step, command, target, expected, mut input, .. } => match key.code {
            KeyCode::Enter if input.value() == expected => confirmed(app, step, format!("typed `{expected}`")),
            KeyCode::Enter => {
                app.modal = Some(Modal::TypedConfirm { step, command, target, expected, input, mismatch: true });
                Vec::new()
            }
            KeyCode::Esc => not_confirmed(app, step),
            _ => {
                input.handle_event(&ratatui::crossterm::event::Event::Key(key));
                app.modal = Some(Modal::TypedConfirm { step, command, target, expected, input, mismatch: false });
                Vec::new()
            }
        },
        Modal::Interrupted { step } => {
            let id = app.runbook.steps[step].id.clone();
            match action {
                Some(Action::Retry) => {
                    vec![Effect::Record(Event::StepReset { step: id, reason: "re-run after interruption".into() })]
                }
                Some(Action::MarkDone) => {
                    app.modal =
                        Some(Modal::Text { purpose: TextPurpose::MarkDoneNote { step }, input: Input::default() });
                    Vec::new()
                }
                Some(Action::Skip) => {
                    app.modal =
                        Some(Modal::Text { purpose: TextPurpose::SkipReason { step }, input: Input::default() });
                    Vec::new()
                }
                _ => {
                    app.modal = Some(Modal::Interrupted { step });
                    Vec::new()
                }
            }
        }
        Modal::Failure { step } => {
            let id = app.runbook.steps[step].id.clone();
            match action {
                Some(Action::Retry) => {
                    vec![Effect::Record(Event::StepReset { step: id, reason: "retry after failure".into() })]
                }
                Some(Action::Skip) => {
                    app.modal =
                        Some(Modal::Text { purpose: TextPurpose::SkipReason { step }, input: Input::default() });
                    Vec::new()
                }
                Some(Action::Abort) => {
                    app.aborting = true;
                    vec![Effect::StopLeftovers]
                }
                _ => {
                    app.modal = Some(Modal::Failure { step });
                    Vec::new()
                }
            }
        }
        Modal::QuitConfirm => match action {
            Some(Action::Yes | Action::Accept) => quit(app, Some("quit by the operator".into())),
            Some(Action::No | Action::Cancel) => Vec::new(),
            _ => {
                app.modal = Some(Modal::QuitConfirm);
                Vec::new()
            }
        },
        Modal::Text { purpose, mut input } => match key.code {
            KeyCode::Enter => text_entered(app, purpose, input.value().trim().to_string()),
            KeyCode::Esc => {
                // Backing out of a decision dialog returns to it.
                app.modal = match purpose {
                    TextPurpose::SkipReason { step } | TextPurpose::MarkDoneNote { step } => {
                        back_to_decision(app, step)
                    }
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
        Modal::Picker { purpose: PickerPurpose::Backup(step), mut picker } => match picker.handle_key(key) {
            PickerOutcome::Accepted(value) => vec![Effect::BackupPicked { step, key: Some(value) }],
            PickerOutcome::Cancelled => vec![Effect::BackupPicked { step, key: None }],
            PickerOutcome::Continue => {
                app.modal = Some(Modal::Picker { purpose: PickerPurpose::Backup(step), picker });
                Vec::new()
            }
        },
        Modal::Picker { purpose: PickerPurpose::Tag(step), mut picker } => match picker.handle_key(key) {
            PickerOutcome::Accepted(value) => vec![Effect::TagPicked { step, tag: Some(value) }],
            PickerOutcome::Cancelled => vec![Effect::TagPicked { step, tag: None }],
            PickerOutcome::Continue => {
                app.modal = Some(Modal::Picker { purpose: PickerPurpose::Tag(step), picker });
                Vec::new()
            }
        },
        Modal::Picker { purpose: PickerPurpose::Pod(step), mut picker } => match picker.handle_key(key) {
            PickerOutcome::Accepted(pod) => vec![Effect::PodLogs { step, pod }],
            PickerOutcome::Cancelled => Vec::new(),
            PickerOutcome::Continue => {
                app.modal = Some(Modal::Picker { purpose: PickerPurpose::Pod(step), picker });
                Vec::new()
            }
        },
        Modal::Picker { purpose: PickerPurpose::Var(field), mut picker } => match picker.handle_key(key) {
            PickerOutcome::Accepted(value) => {
                if let Some(f) = app.start.fields.get_mut(field) {
                    f.input = Input::new(value);
                    f.edited = true;
                    f.error = None;
                }
                refresh_defaults(&app.runbook, &app.templater, &mut app.start);
                Vec::new()
            }
            PickerOutcome::Cancelled => Vec::new(),
            PickerOutcome::Continue => {
                app.modal = Some(Modal::Picker { purpose: PickerPurpose::Var(field), picker });
                Vec::new()
            }
        },
    }
}

fn back_to_decision(app: &App, step: usize) -> Option<Modal> {
    let status = app.drill.as_ref().and_then(|d| d.steps.get(step)).map(|s| s.status.clone());
    match status {
        Some(StepStatus::Interrupted { .. }) => Some(Modal::Interrupted { step }),
        Some(StepStatus::Failed { .. }) => Some(Modal::Failure { step }),
        _ => None,
    }
}

fn confirmed(app: &mut App, step: usize, how: String) -> Vec<Effect> {
    let id = app.runbook.steps[step].id.clone();
    let run = match app.runbook.steps[step].action {
        StepAction::K8sScale(_) => Effect::RunK8s { step },
        _ => Effect::RunCommand { step },
    };
    vec![Effect::Record(Event::StepConfirmed { step: id, how }), run]
}

fn not_confirmed(app: &mut App, step: usize) -> Vec<Effect> {
    let id = app.runbook.steps[step].id.clone();
    vec![Effect::Record(Event::StepSkipped { step: id, cause: SkipCause::Operator, reason: "not confirmed".into() })]
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
            let id = app.runbook.steps[step].id.clone();
            let text = match (item, app.runbook.steps[step].action.clone()) {
                (Some(item), StepAction::Checklist(list)) => match list.items.get(item) {
                    Some(entry) => format!("{}: {text}", entry.text),
                    None => text,
                },
                _ => text,
            };
            app.status = Some("note saved".into());
            vec![Effect::Record(Event::NoteAdded { step: Some(id), text })]
        }
        TextPurpose::Note { .. } => Vec::new(),
        TextPurpose::ActionItem { step } if !text.trim().is_empty() => {
            let (text, owner) = split_owner(&text);
            app.status = Some(match &owner {
                Some(owner) => format!("action item saved for {owner}"),
                None => "action item saved".into(),
            });
            let step = app.runbook.steps.get(step).map(|s| s.id.clone());
            vec![Effect::Record(Event::ActionItemAdded { text, owner, step })]
        }
        TextPurpose::ActionItem { .. } => Vec::new(),
        TextPurpose::DebriefWentWell => {
            app.modal = Some(Modal::Text {
                purpose: TextPurpose::DebriefToImprove { went_well: text },
                input: Input::default(),
            });
            Vec::new()
        }
        TextPurpose::DebriefToImprove { went_well } => {
            app.status = Some("debrief saved: it is in the report".into());
            vec![Effect::Record(Event::DebriefRecorded { went_well, to_improve: text })]
        }
        TextPurpose::SkipReason { step } => {
            let id = app.runbook.steps[step].id.clone();
            let reason = if text.is_empty() { "skipped by the operator".to_string() } else { text };
            vec![Effect::Record(Event::StepSkipped { step: id, cause: SkipCause::Operator, reason })]
        }
        TextPurpose::MarkDoneNote { step } => {
            let id = app.runbook.steps[step].id.clone();
            let note = if text.is_empty() { "marked done by the operator".to_string() } else { text };
            vec![Effect::Record(Event::StepMarkedDone { step: id, note })]
        }
    }
}

// ---- start screen ----

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
    refresh_defaults(runbook, &crate::runbook::template::Templater::new(), &mut form);
    form.focused = form.fields.iter().position(|f| f.input.value().is_empty()).unwrap_or(0);
    form
}

/// Re-renders template defaults of fields the operator has not typed in,
/// so `{{ project }}-dr` follows the project field.
fn refresh_defaults(runbook: &Runbook, templater: &crate::runbook::template::Templater, form: &mut StartForm) {
    for _ in 0..runbook.vars.len() {
        let mut context = crate::runbook::template::TemplateContext::new();
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

fn on_start_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    // The variables, then the participants.
    let count = app.start.fields.len() + 1;
    match keymap::resolve(&[super::keymap::Context::Start], key) {
        Some(Action::NextField) if count > 0 => {
            app.start.focused = (app.start.focused + 1) % count;
            Vec::new()
        }
        Some(Action::PrevField) if count > 0 => {
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

/// The backup picker: key, size, last modified, age, version; the newest
/// (first) row preselected.
fn backup_picker(step: usize, rows: Vec<super::app::PickRow>) -> Modal {
    use ratatui::layout::Constraint::{Length, Min};
    let columns = [
        ("key", false, Min(24)),
        ("size", true, Length(10)),
        ("last modified", false, Length(20)),
        ("age", true, Length(12)),
        ("version", false, Length(24)),
    ];
    table_picker(PickerPurpose::Backup(step), "Choose the backup to restore", &columns, rows)
}

fn tag_picker(step: usize, rows: Vec<super::app::PickRow>) -> Modal {
    use ratatui::layout::Constraint::{Length, Min};
    let columns = [
        ("tag", false, Min(20)),
        ("running in", false, Min(16)),
        ("revision", true, Length(9)),
        ("age", true, Length(10)),
        ("", false, Length(8)),
    ];
    table_picker(PickerPurpose::Tag(step), "Choose the image tag to deploy", &columns, rows)
}

/// The pods of the selected step's table, to show one's logs.
fn pod_picker(app: &App) -> Option<Modal> {
    use ratatui::layout::Constraint::{Length, Min};
    let table = app.pods.get(&app.selected)?;
    let columns = [
        ("pod", false, Min(24)),
        ("ready", false, Length(6)),
        ("status", false, Length(18)),
        ("restarts", true, Length(9)),
    ];
    let rows = table
        .rows
        .iter()
        .map(|row| super::app::PickRow {
            value: row.name.clone(),
            cells: vec![row.name.clone(), row.ready.clone(), row.status.clone(), row.restarts.to_string()],
            sort: Vec::new(),
            marked: row.health == crate::engine::k8s::wait::Health::Failing,
        })
        .collect::<Vec<_>>();
    let default =
        table.rows.iter().find(|r| r.health == crate::engine::k8s::wait::Health::Failing).or(table.rows.first())?;
    let default = default.name.clone();
    match table_picker(PickerPurpose::Pod(app.selected), "Show the logs of a pod", &columns, rows) {
        Modal::Picker { purpose, picker } => Some(Modal::Picker { purpose, picker: picker.with_default(&default) }),
        other => Some(other),
    }
}

/// A picker over rows the runtime filled; the first row is the default.
fn table_picker(
    purpose: PickerPurpose,
    title: &str,
    titles: &[(&str, bool, ratatui::layout::Constraint)],
    rows: Vec<super::app::PickRow>,
) -> Modal {
    let default = rows.first().map(|r| r.value.clone()).unwrap_or_default();
    let columns = titles
        .iter()
        .map(|(title, right, width)| Column { title: title.to_string(), width: *width, align_right: *right })
        .collect();
    let rows = rows
        .into_iter()
        .map(|row| Row {
            sort_keys: row
                .cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match row.sort.get(i) {
                    Some(number) => SortKey::Number(*number),
                    None => SortKey::Text(cell.clone()),
                })
                .collect(),
            cells: row.cells,
            value: row.value,
            marked: row.marked,
        })
        .collect();
    Modal::Picker { purpose, picker: Picker::new(title, columns, rows).with_default(&default) }
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
            app.start.participants_error = Some(error);
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
