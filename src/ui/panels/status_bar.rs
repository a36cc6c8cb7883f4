//! Bottom two lines: the drill clock against the RTO target, the backup age
//! against the RPO target, where the current step acts, a message, and the
//! key hints of what can be pressed now (from the keymap).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{clock, since};
use crate::drill::verdict::Demonstrated;
use crate::runbook::duration::format_duration;
use crate::ui::app::{App, Driver, Modal, Watch};
use crate::ui::keymap;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let mut spans = Vec::new();
    if let Some(watch) = &app.watch {
        spans.extend(watching(app, watch, area.width));
        // What a refused key says goes first too: the line is cut at the right.
        if let Some(status) = &app.status {
            spans.push(Span::styled(format!("{status}  "), theme.warn()));
        }
    }
    if let Some(drill) = &app.drill {
        let end = drill.finished.as_ref().map_or(app.now, |f| f.at);
        let elapsed = since(drill.started_at, end);
        let clock_text = format!(" drill {}", clock(elapsed));
        // A finished drill whose recovery was not demonstrated shows no
        // clock against the target: the time it took is no RTO.
        let rto_missing =
            drill.finished.is_some() && matches!(crate::drill::verdict::verdict(drill).rto, Demonstrated::No(_));
        match drill.rto_target {
            Some(target) if rto_missing => spans.push(Span::styled(
                format!("{clock_text} · RTO {} not achieved", format_duration(target)),
                theme.bad(),
            )),
            Some(target) => {
                let used = elapsed.as_secs_f64() / target.as_secs_f64().max(1.0);
                let style = if used > 1.0 {
                    theme.bad()
                } else if used > 0.75 {
                    theme.warn()
                } else {
                    theme.ok()
                };
                spans.push(Span::styled(
                    format!("{clock_text} / RTO {} ({:.0}%)", format_duration(target), used * 100.0),
                    style,
                ));
            }
            None => spans.push(Span::raw(clock_text)),
        }
        spans.push(Span::raw("  "));
        let age = drill.captures.values().find_map(|(_, c)| c.fields.get("age_secs").and_then(|v| v.as_u64()));
        let restored = crate::drill::verdict::backup_restored(drill) == Demonstrated::Yes;
        match (age, drill.rpo_target) {
            // The age is only a verdict once the backup was restored.
            (Some(age), Some(target)) => {
                let within = age <= target.as_secs();
                let style = if within { theme.ok() } else { theme.bad() };
                let old = format_duration(std::time::Duration::from_secs(age));
                let target = format_duration(target);
                let text = match (restored, drill.finished.is_some(), within) {
                    (true, _, true) => format!("RPO PASS: backup {old} old / {target}"),
                    (true, _, false) => format!("RPO FAIL: backup {old} old / {target}"),
                    (false, true, _) => format!("RPO not demonstrated: the {old} old backup was not restored"),
                    (false, false, _) => format!("RPO: backup {old} old / {target}, not restored yet"),
                };
                let style = if !restored && drill.finished.is_some() { theme.bad() } else { style };
                spans.push(Span::styled(text, style));
            }
            (None, Some(target)) => spans
                .push(Span::styled(format!("RPO {} (backup age not known yet)", format_duration(target)), theme.dim())),
            _ => {}
        }
        if drill.training {
            spans.push(Span::styled("  TRAINING", theme.warn()));
        }
        // Where the running step acts, whichever step is selected.
        let running = app.running_command();
        if let Some(target) = app.step_target(running.unwrap_or(app.selected)) {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(target, theme.warn()));
        }
        if let Some(lost) = running.and_then(|step| app.progress.get(&step)).filter(|p| p.starts_with("watch lost")) {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(lost.clone(), theme.bad()));
        }
    } else {
        spans.push(Span::styled(format!(" {}", app.runbook.title), theme.title()));
    }
    if let Some(status) = app.status.as_ref().filter(|_| !app.read_only()) {
        spans.push(Span::raw("  "));
        let style = if status.starts_with("error") { theme.bad() } else { Style::new() };
        spans.push(Span::styled(status.clone(), style));
    }
    let mut hints = Vec::new();
    let active = if matches!(app.modal, Some(Modal::Picker { .. })) {
        vec![("enter".to_string(), "choose"), ("esc".to_string(), "cancel"), ("type".to_string(), "to filter")]
    } else if matches!(app.modal, Some(Modal::TypedConfirm { .. })) {
        vec![("enter".to_string(), "run it"), ("esc".to_string(), "close (the step waits)")]
    } else if matches!(app.modal, Some(Modal::Text { .. })) {
        vec![("enter".to_string(), "accept"), ("esc".to_string(), "back")]
    } else if app.read_only() {
        keymap::read_only_hints(&app.contexts())
    } else {
        keymap::hints(&app.contexts())
    };
    for (key, description) in keymap::fit_hints(active, usize::from(area.width)) {
        hints.push(Span::styled(format!(" {key}"), theme.key()));
        hints.push(Span::styled(format!(" {description} "), theme.dim()));
    }
    Paragraph::new(vec![Line::from(spans), Line::from(hints)]).render(area, buf);
}

/// "WATCHING (read-only) <id> · driver running · drill completed": first,
/// so that nobody takes the watcher for the driving terminal.
fn watching(app: &App, watch: &Watch, width: u16) -> Vec<Span<'static>> {
    let theme = app.theme;
    // A narrow terminal gets a prefix that `drillbook watch` and `resume` take.
    let id = match app.drill_id.get(..13) {
        Some(prefix) if width < 160 => format!("{prefix}…"),
        _ => app.drill_id.clone(),
    };
    let mut spans = vec![Span::styled(format!(" WATCHING (read-only) {id}"), theme.warn())];
    let driver = match &watch.driver {
        // Who it is (pid, host) is left out: the line is short at 80 columns.
        Driver::Running(_) => Span::styled(" · driver running", theme.dim()),
        Driver::NotRunning => Span::styled(" · driver not running", theme.warn()),
        Driver::Unknown => Span::styled(" · driver: cannot tell (another host?)", theme.dim()),
    };
    spans.push(driver);
    if let Some(drill) = app.drill.as_ref().filter(|d| d.finished.is_some()) {
        let outcome = crate::drill::verdict::verdict(drill).outcome;
        let style = if outcome.passed() { theme.ok() } else { theme.bad() };
        spans.push(Span::styled(format!(" · drill {}", outcome.label()), style));
    }
    if let Some(error) = &watch.error {
        spans.push(Span::styled(format!(" · error: {error}"), theme.bad()));
    }
    spans.push(Span::raw("  "));
    spans
}
