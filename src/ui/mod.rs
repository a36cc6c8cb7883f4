//! The terminal wizard: The Elm Architecture. `app` holds the state,
//! `update` changes it (pure, unit-tested), `render` draws it (one module
//! per panel), `runtime` does the I/O, and `keymap` is the single table of
//! key bindings.

pub mod app;
pub mod fleet;
pub mod keymap;
pub mod layout;
pub mod panels;
pub mod render;
pub mod runtime;
pub mod theme;
pub mod update;
pub mod widgets;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::OnceLock;

/// Sends tracing to a file in the drill directory (never to the terminal
/// the TUI draws on). The first drill opened in a process wins.
pub fn tracing_to(path: &Path) {
    static GUARD: OnceLock<tracing_appender::non_blocking::WorkerGuard> = OnceLock::new();
    if GUARD.get().is_some() {
        return;
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let (writer, guard) = tracing_appender::non_blocking(tracing_appender::rolling::never(dir, name));
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("DRILLBOOK_LOG").unwrap_or_else(|_| "drillbook=info".into());
    if tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter(filter).try_init().is_ok() {
        let _ = GUARD.set(guard);
    }
}
