//! Runs steps. One executor per step kind; each reports progress as
//! [`EngineEvent`]s over an mpsc channel and obeys a cancellation token.
//! Nothing here touches the journal or the terminal: the caller decides what
//! to record and what to show.

pub mod browser;
pub mod certificate;
pub mod command;
pub mod command_step;
pub mod dns;
pub mod http;
pub mod k8s;
pub mod leftover;
pub mod lines;
pub mod notify;
pub mod panic_redaction;
pub mod redact;
pub mod render;
pub mod s3;
pub mod sql;
pub mod training;
mod training_isolation;
mod training_s3check;
pub mod vars;

use std::time::Duration;

pub use self::lines::Lines;

/// Which stream of a process a line came from. Kept apart all the way to the
/// log files, because a warning on stderr must never end up in a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// What a running step reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// A batch of complete lines (without their line terminator, ANSI escapes
    /// kept, secrets already redacted) from one stream, in order.
    Output { step_id: String, stream: OutputStream, lines: Lines },
    /// Free-form progress for long work (a download, a wait).
    Progress { step_id: String, message: String },
    /// The pods a Kubernetes step watches, as of now.
    Pods { step_id: String, table: k8s::wait::PodTable },
    /// What the step found so far, journaled at once (a data check's
    /// answers as they come, so a crash keeps those already given).
    Evidence { step_id: String, evidence: crate::drill::evidence::Evidence },
    /// A file the step wrote and synced under `evidence/STEP/` (a
    /// screenshot), journaled at once as a `file_attached`.
    FileSaved { step_id: String, file: SavedFile },
}

/// A file a step saved as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFile {
    /// Relative to the drill directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// What it shows (a screenshot's name).
    pub label: String,
}

/// Default grace period between SIGTERM and SIGKILL when a step is cancelled
/// or times out.
pub const KILL_GRACE: Duration = Duration::from_secs(3);
