//! Attachments reach the journal through the conductor, its one writer, by
//! one road: the drill's `inbox/` (see [`crate::drill::attach`] for the
//! protocol). `drillbook attach` in another terminal leaves its requests
//! there; files the operator attaches in the TUI (`A`) are copied in the
//! background and left there too. The inbox is watched while the drill runs
//! and drained before it ends, so an attachment made just before the last
//! answer is journaled with the drill, and one left by a drillbook that was
//! stopped is journaled when the drill runs again.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Conductor, Halt, Internal};
use crate::drill::attach;
use crate::drill::event::Event;

/// How often the inbox is looked at: `drillbook attach` waits for its
/// request to be taken, so this is what it waits at least.
const POLL: Duration = Duration::from_millis(250);

/// Watches the drill's inbox for as long as the conductor listens.
pub(super) fn watch(drill_dir: PathBuf, internal: mpsc::UnboundedSender<Internal>) {
    tokio::spawn(async move {
        // Each request is handed over once; the conductor removes it once journaled.
        let mut handed: HashSet<PathBuf> = HashSet::new();
        let mut every = tokio::time::interval(POLL);
        loop {
            every.tick().await;
            let dir = drill_dir.clone();
            let Ok(requests) = tokio::task::spawn_blocking(move || attach::pending(&dir)).await else { return };
            handed.retain(|file| requests.iter().any(|r| &r.file == file));
            for request in requests {
                if handed.insert(request.file.clone())
                    && internal
                        .send(Internal::Attach { request: Some(request.file), event: Box::new(request.event) })
                        .is_err()
                {
                    return;
                }
            }
        }
    });
}

/// How long the end of a drill waits for attachments still being copied.
const COPY_PATIENCE: Duration = Duration::from_secs(60);

/// Copies files the operator attached in the TUI, in the background (a big
/// file must not hold up a running step's output), into the inbox.
/// `copying` counts the copies under way, for [`Conductor::drain_inbox`].
pub(super) fn copy(
    drill_dir: PathBuf,
    step: String,
    paths: Vec<PathBuf>,
    by: String,
    copying: Arc<AtomicUsize>,
    internal: mpsc::UnboundedSender<Internal>,
) {
    copying.fetch_add(1, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || {
        for path in paths {
            let path = expand_home(path);
            let queued = attach::copy_in(&drill_dir, &step, &path, None, Some(by.clone()))
                .and_then(|event| attach::queue(&drill_dir, &event));
            if let Err(error) = queued {
                let _ = internal.send(Internal::Attach { request: None, event: Box::new(Err(error.to_string())) });
            }
        }
        copying.fetch_sub(1, Ordering::SeqCst);
    });
}

/// `~/x` → `$HOME/x`, as a shell would have done with the path typed in the TUI.
fn expand_home(path: PathBuf) -> PathBuf {
    match (path.strip_prefix("~"), std::env::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

impl Conductor {
    /// Journals what the inbox holds now, after waiting (a bounded while)
    /// for the TUI's copies under way: called before the drill ends.
    pub(super) async fn drain_inbox(&mut self) {
        let started = Instant::now();
        let mut said = false;
        while self.attaching.load(Ordering::SeqCst) > 0 && started.elapsed() < COPY_PATIENCE {
            if !said {
                self.notice("attach: waiting for a file still being copied…").await;
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dir = self.session.dir.path.clone();
        let requests = tokio::task::spawn_blocking(move || attach::pending(&dir)).await.unwrap_or_default();
        for request in requests {
            // A journal that cannot be written was already said to stop the drill.
            if self.attached(Some(request.file), request.event).await.is_err() {
                return;
            }
        }
    }

    /// Journals an attachment (once: a request journaled before a crash is
    /// recognised by its path) and removes its request from the inbox.
    pub(super) async fn attached(
        &mut self,
        request: Option<PathBuf>,
        event: Result<Event, String>,
    ) -> Result<(), Halt> {
        let from = request.as_ref().map(|file| format!(" ({})", file.display())).unwrap_or_default();
        let event = match event {
            Ok(event) => event,
            Err(why) => {
                self.notice(format!("attach: {why}{from}")).await;
                return Ok(());
            }
        };
        let Event::FileAttached { step, path, label, .. } = &event else { return Ok(()) };
        let Some(state) = self.session.state.step(step) else {
            // Journaling it would make the journal unreadable: a step that is not in the drill.
            self.notice(format!("attach: drill has no step `{step}`; {label} left in the inbox{from}")).await;
            return Ok(());
        };
        let (step, path, label) = (step.clone(), path.clone(), label.clone());
        if !state.files.iter().any(|file| file.path == path) {
            self.record(event).await?;
            self.notice(format!("attached {label} to {step} as {path}")).await;
        }
        if let Some(request) = request {
            attach::done(&request);
        }
        Ok(())
    }
}
