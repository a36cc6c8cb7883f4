//! Executor for `command` steps: runs `sh -c SCRIPT` in its own process
//! group, streams both pipes line by line to the event channel and to two log
//! files, redacts secrets, applies an optional capture rule, and enforces the
//! timeout and cancellation by killing the whole group.
//!
//! Design notes, because they are easy to break by accident:
//! - Both pipes are read concurrently in the calling task (no spawned tasks),
//!   in chunks into a fixed-size buffer per stream, so memory stays bounded
//!   whatever the command prints: about 320 KiB of read buffer per stream,
//!   1.25 MiB of log buffers, and event batches of at most 256 lines or
//!   256 KiB (times the capacity of the caller's channel). Work is done per chunk wherever possible
//!   (one redaction search, one log write, one hash update per chunk) so that
//!   throughput stays close to writing the output straight to a file.
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

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{EngineEvent, KILL_GRACE, OutputStream, leftover};

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

/// Bytes asked of a pipe per read: big reads mean few wake-ups and few
/// per-chunk costs (hash update, log write, redaction scan).
const READ_CHUNK: usize = 256 * 1024;
/// Pipe capacity asked for (Linux `F_SETPIPE_SZ`; 1 MiB is the unprivileged
/// maximum by default). A fast writer then blocks, and wakes us, 16x less
/// often than with the default 64 KiB, which is most of the per-chunk cost.
#[cfg(any(target_os = "linux", target_os = "android"))]
const PIPE_SIZE: libc::c_int = 1 << 20;
/// Lines per `EngineEvent::Output`: big enough to amortise channel overhead,
/// small enough that a UI sees output promptly.
const BATCH_LINES: usize = 256;
/// Bytes per `EngineEvent::Output` at most (give or take one line), so that
/// a batch of long lines stays small too.
const BATCH_BYTES: usize = 256 * 1024;
/// Buffer size of the combined log writer.
const COMBINED_BUF: usize = 1 << 20;
/// Buffer size of the stderr log writer (stderr is usually small).
const STDERR_BUF: usize = 256 * 1024;
/// Once we stop waiting for EOF, at most this many more reads are taken
/// (enough for a full pipe), each waiting at most [`DRAIN_IDLE`], so that a
/// chatty leftover process cannot keep us reading forever.
const DRAIN_READS: usize = 16;
/// See [`DRAIN_READS`]: covers the lag between data arriving in a pipe and
/// the reactor noticing it.
const DRAIN_IDLE: Duration = Duration::from_millis(100);
/// How often to look whether a signalled process group is gone.
const GROUP_POLL: Duration = Duration::from_millis(20);
/// Replacement for redacted secrets.
const REDACTED: &[u8] = b"***";

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
        let _ =
            events.send(EngineEvent::Output { step_id: step_id.clone(), stream: OutputStream::Stderr, lines }).await;
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

    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own group, so that timeout/cancel can reach grandchildren too.
        .process_group(0)
        .kill_on_drop(true)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(dir) = &cwd {
        cmd.current_dir(dir);
    }
    let mut child =
        cmd.spawn().map_err(|source| CommandError::Spawn { step_id: step_id.clone(), cwd: cwd.clone(), source })?;
    // process_group(0) makes the child's pid its pgid. Never 0 or 1: kill(0)
    // and kill(-1) would hit our own group or everything.
    let group = GroupGuard::new(child.id().and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 1));
    if let Some(pgid) = group.pgid {
        leftover::record(&pid_log_path, pgid);
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    enlarge_pipe(stdout.as_ref());
    enlarge_pipe(stderr.as_ref());
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Cancelled,
    TimedOut,
}

/// Kills the process group if `run_command` is dropped while the child is
/// still unreaped (`kill_on_drop` alone would only reach the shell). Disarmed
/// once the child is reaped: after that the pgid may be reused.
struct GroupGuard {
    pgid: Option<i32>,
    armed: AtomicBool,
}

impl GroupGuard {
    fn new(pgid: Option<i32>) -> Self {
        Self { pgid, armed: AtomicBool::new(true) }
    }

    fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    fn kill_if_armed(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.signal(libc::SIGKILL);
        }
    }

    fn signal(&self, sig: i32) {
        if let Some(pgid) = self.pgid {
            // SAFETY: kill(2) has no memory-safety preconditions; pgid > 1
            // so -pgid addresses exactly the child's group.
            unsafe {
                libc::kill(-pgid, sig);
            }
        }
    }

    /// Whether any process (zombies included) is left in the group.
    fn alive(&self) -> bool {
        let Some(pgid) = self.pgid else {
            return false;
        };
        // SAFETY: as above; signal 0 only checks for existence.
        let rc = unsafe { libc::kill(-pgid, 0) };
        rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed.load(Ordering::SeqCst) {
            self.signal(libc::SIGKILL);
        }
    }
}

struct Supervise<'a> {
    child: &'a mut Child,
    group: &'a GroupGuard,
    cancel: &'a CancellationToken,
    deadline: Option<Instant>,
    kill_grace: Duration,
    soft_stop: &'a CancellationToken,
    hard_stop: &'a CancellationToken,
    pumps_done: &'a CancellationToken,
}

impl Supervise<'_> {
    /// Kills what is left of the group and tells the pumps to wind down
    /// without blocking on the event channel.
    async fn tear_down(&mut self, child: bool) -> io::Result<Option<ExitStatus>> {
        let child = if child { Some(&mut *self.child) } else { None };
        let status = terminate(child, self.group, self.kill_grace).await;
        self.soft_stop.cancel();
        self.hard_stop.cancel();
        status
    }
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Waits for the child, kills its group on cancel/timeout, then waits for
/// the pumps to reach EOF, giving up on EOF [`EXIT_DRAIN`] after the exit.
async fn supervise(mut s: Supervise<'_>) -> io::Result<(ExitStatus, Option<Interrupt>)> {
    let mut interrupted = None;
    let exited = tokio::select! {
        biased;
        () = s.cancel.cancelled() => {
            interrupted = Some(Interrupt::Cancelled);
            None
        }
        () = sleep_opt(s.deadline) => {
            interrupted = Some(Interrupt::TimedOut);
            None
        }
        status = s.child.wait() => Some(status?),
    };
    let status = match exited {
        Some(status) => Some(status),
        None => s.tear_down(true).await?,
    };
    s.group.disarm();
    let status = match status {
        Some(status) => status,
        // Only when terminate got no child, which cannot happen here.
        None => s.child.wait().await?,
    };

    let drain_until = Instant::now() + EXIT_DRAIN;
    loop {
        tokio::select! {
            biased;
            () = s.pumps_done.cancelled() => break,
            () = s.cancel.cancelled(), if interrupted.is_none() => {
                // The shell is gone but something it started holds a pipe,
                // or the receiver is slow: the user does not want to wait.
                interrupted = Some(Interrupt::Cancelled);
                s.tear_down(false).await?;
            }
            () = sleep_opt(s.deadline), if interrupted.is_none() => {
                interrupted = Some(Interrupt::TimedOut);
                s.tear_down(false).await?;
            }
            () = tokio::time::sleep_until(drain_until), if !s.soft_stop.is_cancelled() => {
                s.soft_stop.cancel();
            }
        }
    }
    Ok((status, interrupted))
}

/// SIGTERM to the group, wait up to `grace` for the child to exit and the
/// group to empty, then SIGKILL to the group. Returns the child's status
/// when a child was given.
async fn terminate(
    mut child: Option<&mut Child>,
    group: &GroupGuard,
    grace: Duration,
) -> io::Result<Option<ExitStatus>> {
    if child.is_none() && !group.alive() {
        // Leader reaped and group empty: the pgid may already be reused.
        return Ok(None);
    }
    group.signal(libc::SIGTERM);
    if group.pgid.is_none()
        && let Some(child) = child.as_deref_mut()
    {
        // No group to signal (cannot happen on Linux): at least the shell.
        let _ = child.start_kill();
    }
    let until = Instant::now() + grace;
    let mut status = None;
    loop {
        let reaped = status.is_some() || child.is_none();
        if reaped && !group.alive() {
            return Ok(status);
        }
        let now = Instant::now();
        if now >= until {
            break;
        }
        let nap = tokio::time::sleep(GROUP_POLL.min(until - now));
        match child.as_deref_mut() {
            Some(c) if status.is_none() => {
                tokio::select! {
                    s = c.wait() => status = Some(s?),
                    () = nap => {}
                }
            }
            _ => nap.await,
        }
    }
    group.signal(libc::SIGKILL);
    if status.is_none()
        && let Some(c) = child
    {
        let _ = c.start_kill();
        status = Some(c.wait().await?);
    }
    Ok(status)
}

/// A buffered log file that remembers its first write error instead of
/// failing mid-stream: the command keeps running (its pipes must be drained)
/// and the error is reported when it is done.
struct LogSink {
    path: PathBuf,
    writer: BufWriter<File>,
    error: Option<io::Error>,
}

impl LogSink {
    fn create(path: PathBuf, capacity: usize) -> Result<Self, CommandError> {
        match File::create(&path) {
            Ok(file) => Ok(Self { path, writer: BufWriter::with_capacity(capacity, file), error: None }),
            Err(source) => Err(CommandError::Log { path, source }),
        }
    }

    fn write(&mut self, data: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.writer.write_all(data)
        {
            self.error = Some(e);
        }
    }

    /// Writes out what is buffered (keeping the first error for `finish`).
    fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.writer.flush()
        {
            self.error = Some(e);
        }
    }

    fn finish(mut self) -> Result<(), CommandError> {
        let result = match self.error.take() {
            Some(e) => Err(e),
            None => self.writer.flush(),
        };
        result.map_err(|source| CommandError::Log { path: self.path, source })
    }
}

/// The combined log, its running hash and the tail, shared by both pumps.
struct Combined {
    log: LogSink,
    hasher: Sha256,
    tail: VecDeque<String>,
}

impl Combined {
    fn append(&mut self, data: &[u8]) {
        self.log.write(data);
        self.hasher.update(data);
    }
}

fn finish_combined(combined: Mutex<Combined>) -> Result<(String, Vec<String>), CommandError> {
    let combined = combined.into_inner().unwrap_or_else(PoisonError::into_inner);
    let digest = combined.hasher.finalize();
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    let tail = combined.tail.into_iter().collect();
    combined.log.finish()?;
    Ok((hex, tail))
}

/// Replaces secrets in output. One regex (literal alternation, longest
/// secret first) finds any of them in a whole chunk with a single scan.
struct Redactor {
    matcher: Option<regex::bytes::Regex>,
    /// Fallback when the regex cannot be built (size limits): plain search.
    needles: Vec<Vec<u8>>,
    longest: usize,
}

impl Redactor {
    fn new(secrets: &[String]) -> Self {
        let mut pieces: Vec<&str> = secrets
            .iter()
            .flat_map(|s| s.split('\n'))
            .map(|p| p.strip_suffix('\r').unwrap_or(p))
            .filter(|p| !p.is_empty())
            .collect();
        pieces.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        pieces.dedup();
        let longest = pieces.first().map_or(0, |p| p.len());
        let matcher = if pieces.is_empty() {
            None
        } else {
            let pattern = pieces.iter().map(|p| regex::escape(p)).collect::<Vec<_>>().join("|");
            regex::bytes::RegexBuilder::new(&pattern).size_limit(64 << 20).build().ok()
        };
        Self { matcher, needles: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(), longest }
    }

    /// First secret occurrence at or after `from`, as a byte range.
    fn find(&self, hay: &[u8], from: usize) -> Option<(usize, usize)> {
        if self.needles.is_empty() {
            return None;
        }
        if let Some(re) = &self.matcher {
            return re.find_at(hay, from).map(|m| (m.start(), m.end()));
        }
        (from..hay.len()).find_map(|i| {
            let rest = hay.get(i..)?;
            self.needles.iter().find(|n| rest.starts_with(n)).map(|n| (i, i + n.len()))
        })
    }

    fn redact<'h>(&self, hay: &'h [u8]) -> Cow<'h, [u8]> {
        let Some(mut found) = self.find(hay, 0) else {
            return Cow::Borrowed(hay);
        };
        let mut out = Vec::with_capacity(hay.len());
        let mut last = 0;
        loop {
            let (start, end) = found;
            out.extend_from_slice(hay.get(last..start).unwrap_or_default());
            out.extend_from_slice(REDACTED);
            last = end;
            match self.find(hay, end.max(start + 1)) {
                Some(next) => found = next,
                None => break,
            }
        }
        out.extend_from_slice(hay.get(last..).unwrap_or_default());
        Cow::Owned(out)
    }

    /// Where to cut a line that is too long: at `max`, or earlier so that no
    /// secret straddles the cut (it would escape redaction in both halves).
    /// `hay` must extend at least `longest` bytes past `max` (or to EOF).
    fn safe_cut(&self, hay: &[u8], max: usize) -> usize {
        let cut = max.min(hay.len());
        let mut from = 0;
        let window = hay.get(..cut.saturating_add(self.longest).min(hay.len())).unwrap_or(hay);
        while let Some((start, end)) = self.find(window, from) {
            if start >= cut {
                break;
            }
            if end > cut {
                // A secret longer than the whole line limit is kept whole.
                return if start > 0 { start } else { end };
            }
            from = end.max(start + 1);
        }
        cut.max(1)
    }
}

/// Replaces every secret in `lines` (output that did not come through a
/// command: pod logs, server messages) before it is shown or logged.
pub fn redact_lines(secrets: &[String], lines: &mut [String]) {
    if secrets.iter().all(|s| s.is_empty()) {
        return;
    }
    let redactor = Redactor::new(secrets);
    for line in lines {
        if let Cow::Owned(redacted) = redactor.redact(line.as_bytes()) {
            *line = String::from_utf8_lossy(&redacted).into_owned();
        }
    }
}

/// What a pump hands to [`Sink::emit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// One or more complete lines, the last one ending in `\n`.
    Lines,
    /// A piece of an overlong line (no `\n`; a `\r` at its end is data).
    Piece,
    /// The last line of the stream, which had no `\n`.
    Final,
}

/// State both pumps share.
struct Shared<'a> {
    step_id: &'a str,
    events: &'a mpsc::Sender<EngineEvent>,
    redactor: &'a Redactor,
    capture: Option<&'a CaptureRule>,
    captured: &'a OnceLock<String>,
    combined: &'a Mutex<Combined>,
    /// Stop waiting for EOF: take what is in the pipes and finish.
    soft_stop: &'a CancellationToken,
    /// Tearing down (cancel/timeout): never block on the event channel.
    hard_stop: &'a CancellationToken,
}

/// Per-stream consumer of chunks: redacts, logs, counts, captures, sends.
struct Sink<'a> {
    shared: &'a Shared<'a>,
    stream: OutputStream,
    own_log: Option<LogSink>,
    capture: Option<&'a CaptureRule>,
    sending: bool,
    batch: Vec<String>,
    batch_bytes: usize,
    lines: u64,
    read_error: Option<io::Error>,
}

impl<'a> Sink<'a> {
    fn new(shared: &'a Shared<'a>, stream: OutputStream, own_log: Option<LogSink>) -> Self {
        Self {
            shared,
            stream,
            own_log,
            capture: shared.capture.filter(|r| r.stream.covers(stream)),
            sending: true,
            batch: Vec::with_capacity(BATCH_LINES),
            batch_bytes: 0,
            lines: 0,
            read_error: None,
        }
    }

    /// Makes the logs on disk current, for a reader following them
    /// (`drillbook watch`).
    fn flush_logs(&mut self) {
        self.shared.combined.lock().unwrap_or_else(PoisonError::into_inner).log.flush();
        if let Some(log) = &mut self.own_log {
            log.flush();
        }
    }

    async fn emit(&mut self, raw: &[u8], kind: Chunk) {
        let data = self.shared.redactor.redact(raw);
        let body: &[u8] = match kind {
            Chunk::Lines => data.strip_suffix(b"\n").unwrap_or(&data),
            Chunk::Piece | Chunk::Final => &data,
        };
        let newline: &[u8] = if kind == Chunk::Lines { b"" } else { b"\n" };

        let mut tail: Vec<String> = body
            .rsplit(|&b| b == b'\n')
            .take(TAIL_LINES)
            .map(|l| String::from_utf8_lossy(line_text(l, kind)).into_owned())
            .collect();
        tail.reverse();
        {
            let mut combined = self.shared.combined.lock().unwrap_or_else(PoisonError::into_inner);
            combined.append(&data);
            combined.append(newline);
            let overflow = (combined.tail.len() + tail.len()).saturating_sub(TAIL_LINES);
            let keep_from = overflow.min(combined.tail.len());
            combined.tail.drain(..keep_from);
            combined.tail.extend(tail);
        }
        if let Some(log) = &mut self.own_log {
            log.write(&data);
            log.write(newline);
        }

        let mut capture = self.capture.filter(|_| self.shared.captured.get().is_none());
        if !self.sending && capture.is_none() {
            let newlines = body.iter().filter(|&&b| b == b'\n').count();
            self.lines += newlines as u64 + 1;
            return;
        }
        for line in body.split(|&b| b == b'\n') {
            self.lines += 1;
            let text = String::from_utf8_lossy(line_text(line, kind));
            if let Some(rule) = capture
                && let Some(value) = rule.value(&text)
            {
                // With `Both`, the other stream may have been first.
                let _ = self.shared.captured.set(value);
                capture = None;
            }
            if self.sending {
                self.batch_bytes += text.len();
                self.batch.push(text.into_owned());
                if self.batch.len() >= BATCH_LINES || self.batch_bytes >= BATCH_BYTES {
                    self.flush().await;
                }
            }
        }
        self.flush().await;
    }

    /// Sends the pending batch. When tearing down, a full channel drops the
    /// batch rather than wait on a receiver that may be stuck (logs stay
    /// complete).
    async fn flush(&mut self) {
        self.batch_bytes = 0;
        if self.batch.is_empty() {
            return;
        }
        if !self.sending {
            self.batch.clear();
            return;
        }
        let lines = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_LINES));
        let event = EngineEvent::Output { step_id: self.shared.step_id.to_owned(), stream: self.stream, lines };
        if self.shared.hard_stop.is_cancelled() {
            if let Err(mpsc::error::TrySendError::Closed(_)) = self.shared.events.try_send(event) {
                self.sending = false;
            }
            return;
        }
        tokio::select! {
            biased;
            sent = self.shared.events.send(event) => {
                if sent.is_err() {
                    self.sending = false;
                }
            }
            () = self.shared.hard_stop.cancelled() => {}
        }
    }
}

/// The text of a line for events/captures: without its trailing `\r`, unless
/// it is a piece of a longer line.
fn line_text(line: &[u8], kind: Chunk) -> &[u8] {
    match (kind, line.split_last()) {
        (Chunk::Lines | Chunk::Final, Some((b'\r', rest))) => rest,
        _ => line,
    }
}

/// Best effort: a failure only costs throughput.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn enlarge_pipe(pipe: Option<&impl AsRawFd>) {
    if let Some(pipe) = pipe {
        // SAFETY: fcntl on an fd we own; F_SETPIPE_SZ takes an int argument
        // and touches no memory of ours.
        unsafe {
            libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn enlarge_pipe(_pipe: Option<&impl AsRawFd>) {}

/// Reads one pipe to EOF (or until told to stop) into a fixed buffer, handing
/// complete lines and overlong pieces to the sink.
async fn pump<'a, R: AsyncRead + Unpin>(reader: Option<R>, mut sink: Sink<'a>) -> Sink<'a> {
    let Some(mut reader) = reader else {
        return sink;
    };
    let soft_stop = sink.shared.soft_stop;
    // Keep `longest` bytes past a cut in view so no secret straddles it.
    let force_at = MAX_LINE + sink.shared.redactor.longest;
    let mut buf = vec![0u8; force_at + READ_CHUNK];
    let mut filled = 0;
    let mut drain_reads = 0;
    loop {
        let free = buf.get_mut(filled..).unwrap_or_default();
        let free_len = free.len();
        let read = if soft_stop.is_cancelled() {
            // No more waiting for EOF: only what arrives promptly.
            if drain_reads >= DRAIN_READS {
                break;
            }
            drain_reads += 1;
            match tokio::time::timeout(DRAIN_IDLE, reader.read(free)).await {
                Ok(read) => read,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                biased;
                () = soft_stop.cancelled() => continue,
                read = reader.read(free) => read,
            }
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                sink.read_error = Some(e);
                break;
            }
        };
        // A read that did not fill the buffer drained the pipe: the output
        // trickles, so the logs are flushed for whoever follows them. A flood
        // fills every read and keeps writing a MiB at a time.
        let drained = n < free_len;
        let end = (filled + n).min(buf.len());
        let mut start = 0;
        let fresh = buf.get(filled..end).unwrap_or_default();
        if let Some(pos) = fresh.iter().rposition(|&b| b == b'\n') {
            let upto = filled + pos + 1;
            sink.emit(buf.get(..upto).unwrap_or_default(), Chunk::Lines).await;
            start = upto;
        }
        while end - start > force_at {
            let rest = buf.get(start..end).unwrap_or_default();
            let cut = sink.shared.redactor.safe_cut(rest, MAX_LINE);
            sink.emit(rest.get(..cut).unwrap_or(rest), Chunk::Piece).await;
            start += cut;
        }
        if start > 0 {
            buf.copy_within(start..end, 0);
        }
        filled = end - start;
        if drained {
            sink.flush_logs();
        }
    }
    // What is left is the final line, without a newline.
    let mut start = 0;
    while filled - start > MAX_LINE {
        let rest = buf.get(start..filled).unwrap_or_default();
        let cut = sink.shared.redactor.safe_cut(rest, MAX_LINE);
        sink.emit(rest.get(..cut).unwrap_or(rest), Chunk::Piece).await;
        start += cut;
    }
    if filled > start {
        sink.emit(buf.get(start..filled).unwrap_or_default(), Chunk::Final).await;
    }
    sink
}
