//! The fleet screen's I/O: the terminal, its keys, and where a report is.
//! The register is read before the screen opens; nothing here reads S3.

use std::path::Path;

use ratatui::crossterm::event::{self, Event as TermEvent};

use super::{Effect, FleetApp, Msg, render, update};

/// Runs the screen until `q`. Returns where the last report asked for is (a
/// path, or a command to run), for the caller to print once the terminal is
/// restored, so it can be copied.
pub fn run(mut app: FleetApp) -> Result<Option<String>, String> {
    // ratatui's panic hook restores the terminal before a panic prints.
    let mut terminal = ratatui::init();
    if let Ok(size) = terminal.size() {
        update(&mut app, Msg::Resize(size.width, size.height));
    }
    let mut last_report = None;
    let result = (|| loop {
        terminal.draw(|frame| render(&app, frame)).map_err(|e| format!("cannot draw: {e}"))?;
        let msg = match event::read().map_err(|e| format!("cannot read the terminal: {e}"))? {
            TermEvent::Key(key) => Msg::Key(key),
            TermEvent::Resize(width, height) => Msg::Resize(width, height),
            _ => continue,
        };
        for effect in update(&mut app, msg) {
            match effect {
                Effect::Quit => return Ok(last_report.take()),
                Effect::OpenReport { drill_id, local_dir } => {
                    let notice = report_notice(&drill_id, local_dir.as_deref());
                    last_report = Some(notice.clone());
                    update(&mut app, Msg::Notice(notice));
                }
            }
        }
    })();
    ratatui::restore();
    result
}

/// Where the drill's report is. A local drill wrote `report.html` and
/// `report.md` when it ended (opened in the desktop's browser when there is
/// one); a drill only in the archive is reported by `drillbook report`.
pub fn report_notice(drill_id: &str, local_dir: Option<&Path>) -> String {
    let Some(dir) = local_dir else {
        return format!("drill {drill_id} is only in the archive: `drillbook report {drill_id}`");
    };
    let html = dir.join("report.html");
    let markdown = dir.join("report.md");
    match (html.is_file(), markdown.is_file()) {
        (true, _) if open_in_desktop(&html) => format!("opened {} (also {})", html.display(), markdown.display()),
        (true, true) => format!("report: {} (also {})", html.display(), markdown.display()),
        (true, false) => format!("report: {}", html.display()),
        (false, true) => format!("report: {}", markdown.display()),
        (false, false) => format!(
            "drill {drill_id} has not ended, so it has no report yet: `drillbook report {drill_id} --format html -o report.html`"
        ),
    }
}

/// Hands the file to the desktop's opener, when there is a desktop: over SSH
/// or in a container there is none, and the path is what helps.
fn open_in_desktop(path: &Path) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        "xdg-open"
    } else {
        return false;
    };
    std::process::Command::new(opener)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        // Reaped in the background: the opener returns at once, the browser lives on.
        .map(|mut child| std::thread::spawn(move || child.wait()))
        .is_ok()
}
