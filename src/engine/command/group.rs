//! The process group a command runs in: spawning the shell as its leader,
//! signalling the whole group, and stopping it on cancel or timeout with a
//! grace period between SIGTERM and SIGKILL. The group, not the shell, is
//! what gets signalled, because a script's grandchildren must stop with it.

use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::EXIT_DRAIN;

/// How often to look whether a signalled process group is gone.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// Why a command was stopped before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interrupt {
    Cancelled,
    TimedOut,
}

/// Starts `sh -c script` with piped stdout/stderr as the leader of a process
/// group of its own, and the guard that kills that group if the caller is
/// dropped before reaping the child.
pub(super) fn spawn_in_group(
    script: &str,
    cwd: Option<&Path>,
    env: &[(String, String)],
) -> io::Result<(Child, GroupGuard)> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own group, so that timeout/cancel can reach grandchildren too.
        .process_group(0)
        .kill_on_drop(true)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let child = cmd.spawn()?;
    // process_group(0) makes the child's pid its pgid. Never 0 or 1: kill(0)
    // and kill(-1) would hit our own group or everything.
    let group = GroupGuard::new(child.id().and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 1));
    Ok((child, group))
}

/// Kills the process group if `run_command` is dropped while the child is
/// still unreaped (`kill_on_drop` alone would only reach the shell). Disarmed
/// once the child is reaped: after that the pgid may be reused.
pub(super) struct GroupGuard {
    pub(super) pgid: Option<i32>,
    armed: AtomicBool,
}

impl GroupGuard {
    fn new(pgid: Option<i32>) -> Self {
        Self { pgid, armed: AtomicBool::new(true) }
    }

    fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    pub(super) fn kill_if_armed(&self) {
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
    pub(super) fn alive(&self) -> bool {
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

pub(super) struct Supervise<'a> {
    pub(super) child: &'a mut Child,
    pub(super) group: &'a GroupGuard,
    pub(super) cancel: &'a CancellationToken,
    pub(super) deadline: Option<Instant>,
    pub(super) kill_grace: Duration,
    pub(super) soft_stop: &'a CancellationToken,
    pub(super) hard_stop: &'a CancellationToken,
    pub(super) pumps_done: &'a CancellationToken,
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
pub(super) async fn supervise(mut s: Supervise<'_>) -> io::Result<(ExitStatus, Option<Interrupt>)> {
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
