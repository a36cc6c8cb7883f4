//! Executor for `command` steps: runs `sh -c SCRIPT` in its own process
//! group, streams both pipes line by line to the event channel and to two log
//! files, redacts secrets, applies an optional capture rule, and enforces the
//! timeout and cancellation by killing the whole group.
//!
//! Design notes, because they are easy to break by accident:
//! - Both pipes are read concurrently in the calling task (no spawned tasks),
//!   in chunks into a fixed-size buffer per stream, so memory stays bounded
//!   whatever the command prints: about 320 KiB of read buffer per stream,
//!   1.25 MiB of log buffers, and event batches of at most 4,096 lines or
//!   64 KiB (times the capacity of the caller's channel). Work is done per
//!   chunk wherever possible (one redaction search, one log write, one hash
//!   update per chunk) so that throughput stays close to writing the output
//!   straight to a file.
//! - A line is at most [`MAX_LINE`] bytes: a longer one is cut into pieces and
//!   every piece is treated as a line of its own everywhere (events, counts,
//!   logs), so no consumer ever has to hold an unbounded line.
//! - The log files get raw bytes (ANSI escapes, `\r`, invalid UTF-8 kept) after
//!   redaction; events, captures and `last_lines` get lossy UTF-8 with the
//!   trailing `\r` removed.
//! - Log writes are synchronous `std::fs` writes through a large `BufWriter`:
//!   one write syscall per MiB of output to the page cache is cheaper than a
//!   thread hop per write, and keeps the hash and the file in lock-step. When
//!   a read drains the pipe (output trickles) the logs are flushed, so that
//!   `drillbook watch` in another terminal follows them live.
//!
//! This module holds the request and outcome types and [`run_command`], which
//! ties the parts together: `group` (the process group), `pump` (reading the
//! pipes), `logs` (the log files and their hash) and
//! [`crate::engine::redact`] (masking secrets).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::group::{Interrupt, Supervise, supervise};
use self::logs::{COMBINED_BUF, Combined, LogSink, STDERR_BUF, finish_combined};
use self::pump::{Pipe, Shared, Sink, pump};
use super::redact::Redactor;
use super::{EngineEvent, KILL_GRACE, OutputStream, leftover};

mod group;
mod logs;
mod pump;

/// Longest line handed to consumers; longer lines are cut into pieces of this
/// size so that memory stays bounded on output without newlines.
pub const MAX_LINE: usize = 64 * 1024;

/// How long to keep waiting for EOF on the pipes after the command itself
/// has exited. A background process that inherited stdout/stderr can keep
/// the pipes open forever; after this long we stop waiting for it, take what
/// is already in the pipes, and return. Output it writes later is lost (and
/// it may get SIGPIPE). Output already written is never dropped for this.
pub const EXIT_DRAIN: Duration = Duration::from_secs(2);

/// Number of lines kept for [`CommandOutcome::last_lines`].
pub const TAIL_LINES: usize = 20;

/// A value to extract from the output of a command, for later steps.
#[derive(Debug, Clone)]
pub struct CaptureRule {
    /// Name of the captured variable (used in messages).
    pub name: String,
    /// Applied to each (redacted, lossy UTF-8) line; the first group if the
    /// regex has one, else the whole match, becomes the value.
    pub regex: regex::Regex,
    /// Which stream(s) to look at.
    pub stream: CaptureStream,
}

impl CaptureRule {
    /// A rule on stdout, the usual case: stderr tends to carry warnings that
    /// must not be mistaken for data.
    pub fn new(name: impl Into<String>, regex: regex::Regex) -> Self {
        Self { name: name.into(), regex, stream: CaptureStream::Stdout }
    }

    /// The captured value for `line`, if it matches: group 1 when the regex
    /// has groups and it took part in the match, else the whole match.
    fn value(&self, line: &str) -> Option<String> {
        let caps = self.regex.captures(line)?;
        let m = caps.get(1).or_else(|| caps.get(0))?;
        Some(m.as_str().to_owned())
    }
}

/// Which stream a [`CaptureRule`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureStream {
    #[default]
    Stdout,
    Stderr,
    Both,
}

impl CaptureStream {
    fn covers(self, stream: OutputStream) -> bool {
        matches!(
            (self, stream),
            (CaptureStream::Both, _)
                | (CaptureStream::Stdout, OutputStream::Stdout)
                | (CaptureStream::Stderr, OutputStream::Stderr)
        )
    }

    fn describe(self) -> &'static str {
        match self {
            CaptureStream::Stdout => "stdout",
            CaptureStream::Stderr => "stderr",
            CaptureStream::Both => "stdout or stderr",
        }
    }
}

/// Everything needed to run one `command` step.
#[derive(Clone)]
pub struct CommandRequest {
    pub step_id: String,
    /// A shell script, already rendered and quoted; run as `sh -c script`.
    pub script: String,
    pub cwd: Option<PathBuf>,
    /// Added to the inherited environment (secrets arrive here).
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    /// Accepted exit codes; empty means `[0]`.
    pub expect_exit: Vec<i32>,
    pub capture: Option<CaptureRule>,
    /// Combined log: every line of both streams in arrival order, raw bytes,
    /// each line terminated by `\n` (also a final line that had none, and
    /// each piece of a line longer than [`MAX_LINE`]).
    pub log_path: PathBuf,
    /// Stderr only, same format as the combined log.
    pub stderr_log_path: PathBuf,
    /// Secret values: every occurrence in any output line is replaced by
    /// `***` before it is logged, sent or captured. Empty strings are
    /// ignored; a multi-line secret is redacted line by line (output is
    /// handled per line, so that is the unit a secret can be recognised in).
    pub redact: Vec<String>,
    /// SIGTERM -> wait this long -> SIGKILL.
    pub kill_grace: Duration,
}

impl CommandRequest {
    /// A request with no cwd, env, timeout, capture or secrets, expecting
    /// exit 0 and using the default [`KILL_GRACE`].
    pub fn new(
        step_id: impl Into<String>,
        script: impl Into<String>,
        log_path: impl Into<PathBuf>,
        stderr_log_path: impl Into<PathBuf>,
    ) -> Self {
        Self {
            step_id: step_id.into(),
            script: script.into(),
            cwd: None,
            env: Vec::new(),
            timeout: None,
            expect_exit: Vec::new(),
            capture: None,
            log_path: log_path.into(),
            stderr_log_path: stderr_log_path.into(),
            redact: Vec::new(),
            kill_grace: KILL_GRACE,
        }
    }
}

/// Hand-written so that env values and secrets never end up in a debug log.
impl fmt::Debug for CommandRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("CommandRequest")
            .field("step_id", &self.step_id)
            .field("script", &self.script)
            .field("cwd", &self.cwd)
            .field("env_keys", &env_keys)
            .field("timeout", &self.timeout)
            .field("expect_exit", &self.expect_exit)
            .field("capture", &self.capture)
            .field("log_path", &self.log_path)
            .field("stderr_log_path", &self.stderr_log_path)
            .field("redact", &format_args!("<{} secrets>", self.redact.len()))
            .field("kill_grace", &self.kill_grace)
            .finish()
    }
}

/// How a command step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandStatus {
    Succeeded,
    /// Unexpected exit code, death by a signal we did not send, or a capture
    /// rule that matched nothing.
    Failed {
        reason: String,
    },
    /// The timeout elapsed and the process group was killed. `after` is the
    /// configured timeout, kept so the status can describe itself.
    TimedOut {
        after: Duration,
    },
    /// The cancellation token fired and the process group was killed.
    Cancelled,
}

impl CommandStatus {
    /// One line for the user, e.g. "exit code 3 (expected 0)" or
    /// "timed out after 30s".
    pub fn describe(&self) -> String {
        match self {
            CommandStatus::Succeeded => "succeeded".to_owned(),
            CommandStatus::Failed { reason } => reason.clone(),
            CommandStatus::TimedOut { after } => {
                format!("timed out after {}", human_duration(*after))
            }
            CommandStatus::Cancelled => "cancelled".to_owned(),
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self, CommandStatus::Succeeded)
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What a finished command step produced, for the journal and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration: Duration,
    pub status: CommandStatus,
    /// Value of the capture from the first matching line (redacted).
    pub captured: Option<String>,
    /// Hex sha256 of the combined log file's bytes.
    pub log_sha256: String,
    /// Last [`TAIL_LINES`] lines of combined output, for failure display.
    pub last_lines: Vec<String>,
    pub stdout_lines: u64,
    pub stderr_lines: u64,
}

/// Why a command step could not be run or recorded at all (as opposed to
/// running and failing, which is a [`CommandStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("working directory {}: {source}", path.display())]
    Cwd { path: PathBuf, source: io::Error },
    #[error("cannot start `sh -c` for step `{step_id}`{}: {source}", in_dir(cwd.as_deref()))]
    Spawn { step_id: String, cwd: Option<PathBuf>, source: io::Error },
    #[error("log file {}: {source}", path.display())]
    Log { path: PathBuf, source: io::Error },
    #[error("reading {stream} of step `{step_id}`: {source}")]
    Pipe { step_id: String, stream: &'static str, source: io::Error },
    #[error("waiting for step `{step_id}`: {source}")]
    Wait { step_id: String, source: io::Error },
}

fn in_dir(cwd: Option<&Path>) -> String {
    cwd.map(|p| format!(" in {}", p.display())).unwrap_or_default()
}

/// Runs one command step to completion, cancellation or timeout.
///
/// Output lines are sent to `events` as [`EngineEvent::Output`] batches with
/// `send().await`, so a slow receiver slows the command down instead of
/// growing memory; a dropped receiver just stops the events. The log files are
/// complete and flushed when this returns.
pub async fn run_command(
    req: CommandRequest,
    events: mpsc::Sender<EngineEvent>,
    cancel: CancellationToken,
) -> Result<CommandOutcome, CommandError> {
    let CommandRequest {
        step_id,
        script,
        cwd,
        env,
        timeout,
        expect_exit,
        capture,
        log_path,
        stderr_log_path,
        redact,
        kill_grace,
    } = req;
    let expect = if expect_exit.is_empty() { vec![0] } else { expect_exit };
    let redactor = Redactor::new(&redact);

    if let Some(dir) = &cwd {
        // Checked up front: the spawn error alone (ENOENT) would not tell a
        // missing directory from a missing shell.
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(CommandError::Cwd { path: dir.clone(), source: io::Error::other("not a directory") });
            }
            Err(source) => {
                return Err(CommandError::Cwd { path: dir.clone(), source });
            }
        }
    }

    // An earlier attempt of this step that drillbook could not stop (it was
    // killed itself) may still be running: stop it before running again.
    let leftovers = match log_path.parent() {
        Some(dir) => {
            let (dir, id) = (dir.to_path_buf(), step_id.clone());
            tokio::task::spawn_blocking(move || leftover::stop_earlier_attempts(&dir, &id, kill_grace))
                .await
                .unwrap_or_default()
        }
        None => Vec::new(),
    };

    // Logs first: failing here must not leave a process behind.
    let pid_log_path = log_path.clone();
    let combined = Mutex::new(Combined {
        log: LogSink::create(log_path, COMBINED_BUF)?,
        hasher: Sha256::new(),
        tail: VecDeque::with_capacity(TAIL_LINES),
    });
    let stderr_log = LogSink::create(stderr_log_path, STDERR_BUF)?;

    if !leftovers.is_empty() {
        let lines: Vec<String> = leftovers.iter().map(leftover::Stopped::describe).collect();
        {
            let mut combined = combined.lock().unwrap_or_else(PoisonError::into_inner);
            for line in &lines {
                combined.append(line.as_bytes());
                combined.append(b"\n");
                combined.tail.push_back(line.clone());
            }
        }
        let _ = events
            .send(EngineEvent::Output { step_id: step_id.clone(), stream: OutputStream::Stderr, lines: lines.into() })
            .await;
    }

    let started = Instant::now();
    if cancel.is_cancelled() {
        // Nothing to kill: do not start what we would stop at once.
        let combined = finish_combined(combined)?;
        stderr_log.finish()?;
        return Ok(CommandOutcome {
            exit_code: None,
            signal: None,
            duration: started.elapsed(),
            status: CommandStatus::Cancelled,
            captured: None,
            log_sha256: combined.0,
            last_lines: combined.1,
            stdout_lines: 0,
            stderr_lines: 0,
        });
    }

    let (mut child, group) = group::spawn_in_group(&script, cwd.as_deref(), &env)
        .map_err(|source| CommandError::Spawn { step_id: step_id.clone(), cwd: cwd.clone(), source })?;
    if let Some(pgid) = group.pgid {
        leftover::record(&pid_log_path, pgid);
    }
    let pipes = Pipe::of(child.stdout.take()).and_then(|stdout| Ok((stdout, Pipe::of(child.stderr.take())?)));
    let (stdout, stderr) =
        pipes.map_err(|source| CommandError::Spawn { step_id: step_id.clone(), cwd: cwd.clone(), source })?;
    let deadline = timeout.map(|t| started + t);

    let soft_stop = CancellationToken::new();
    let hard_stop = CancellationToken::new();
    let pumps_done = CancellationToken::new();
    let captured = OnceLock::new();
    let shared = Shared {
        step_id: &step_id,
        events: &events,
        redactor: &redactor,
        capture: capture.as_ref(),
        captured: &captured,
        combined: &combined,
        soft_stop: &soft_stop,
        hard_stop: &hard_stop,
    };
    let pumps = async {
        let result = tokio::join!(
            pump(stdout, Sink::new(&shared, OutputStream::Stdout, None)),
            pump(stderr, Sink::new(&shared, OutputStream::Stderr, Some(stderr_log))),
        );
        pumps_done.cancel();
        result
    };
    let control = async {
        let result = supervise(Supervise {
            child: &mut child,
            group: &group,
            cancel: &cancel,
            deadline,
            kill_grace,
            soft_stop: &soft_stop,
            hard_stop: &hard_stop,
            pumps_done: &pumps_done,
        })
        .await;
        if result.is_err() {
            // Cannot happen in practice (wait(2) failing), but must not
            // leave the pumps waiting on pipes of a live group.
            group.kill_if_armed();
            hard_stop.cancel();
            soft_stop.cancel();
        }
        result
    };
    let ((out, err), control) = tokio::join!(pumps, control);
    let duration = started.elapsed();
    if !group.alive() {
        leftover::forget(&pid_log_path);
    }
    let (exit, interrupted) = control.map_err(|source| CommandError::Wait { step_id: step_id.clone(), source })?;

    let stdout_lines = out.lines;
    let stderr_lines = err.lines;
    let read_errors = [(out.read_error, "stdout"), (err.read_error, "stderr")];
    let stderr_log = err.own_log;
    let (log_sha256, last_lines) = finish_combined(combined)?;
    if let Some(log) = stderr_log {
        log.finish()?;
    }
    for (sink_err, stream) in read_errors {
        if let Some(source) = sink_err {
            return Err(CommandError::Pipe { step_id, stream, source });
        }
    }

    let captured = captured.into_inner();
    let status = match interrupted {
        Some(Interrupt::Cancelled) => CommandStatus::Cancelled,
        Some(Interrupt::TimedOut) => CommandStatus::TimedOut { after: timeout.unwrap_or_default() },
        None => judge(exit, &expect, capture.as_ref(), captured.is_some()),
    };
    Ok(CommandOutcome {
        exit_code: exit.code(),
        signal: exit.signal(),
        duration,
        status,
        captured,
        log_sha256,
        last_lines,
        stdout_lines,
        stderr_lines,
    })
}

/// Status of a command that ran to its own end.
fn judge(exit: ExitStatus, expect: &[i32], capture: Option<&CaptureRule>, captured: bool) -> CommandStatus {
    match exit.code() {
        Some(code) if expect.contains(&code) => {}
        Some(code) => {
            let wanted = expect.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
            let wanted = if expect.len() == 1 { wanted } else { format!("one of {wanted}") };
            return CommandStatus::Failed { reason: format!("exit code {code} (expected {wanted})") };
        }
        None => {
            let reason = match exit.signal() {
                Some(sig) => format!("killed by signal {sig}{}", signal_name(sig)),
                None => "ended without exit code or signal".to_owned(),
            };
            return CommandStatus::Failed { reason };
        }
    }
    if let Some(rule) = capture
        && !captured
    {
        return CommandStatus::Failed {
            reason: format!(
                "capture `{}`: /{}/ matched no line of {}",
                rule.name,
                rule.regex.as_str(),
                rule.stream.describe()
            ),
        };
    }
    CommandStatus::Succeeded
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => " (SIGHUP)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGQUIT => " (SIGQUIT)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGPIPE => " (SIGPIPE)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGBUS => " (SIGBUS)",
        _ => "",
    }
}

/// "30s", "1.5s", "250ms", "2m30s", "1h": short, for status lines.
fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}
