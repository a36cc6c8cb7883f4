//! One process per drill: an exclusive lock on `<drill_dir>/lock`.
//!
//! The lock is an advisory `flock`-style lock taken with [`File::try_lock`] on an open file
//! description; it is released when the [`DrillLock`] is dropped or the process dies
//! (including `kill -9`), so a crashed process never leaves a stale lock behind. The file's
//! content (`pid`, `host`, `since`) is informational only: it is shown to a second process
//! that finds the drill locked. The file is never deleted (deleting a lock file that
//! another process has open would let two processes hold "the" lock).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside a drill directory.
pub const LOCK_FILE_NAME: &str = "lock";

/// Held for as long as the process works on the drill; released on drop.
#[derive(Debug)]
pub struct DrillLock {
    file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another open handle in this process) holds the lock.
    #[error("{}", held_message(.pid, .host, .since))]
    Held {
        /// The holder's pid, as written in the lock file.
        pid: Option<u32>,
        /// The holder's host name, as written in the lock file.
        host: Option<String>,
        /// When the holder took the lock (RFC 3339), as written in the lock file.
        since: Option<String>,
    },
    /// The lock file could not be opened, locked or written.
    #[error(
        "drill lock {op} failed for {} ({source}): check that the drill directory exists and is \
         writable",
        .path.display()
    )]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What was being done: "open", "lock", "write", "sync".
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

fn held_message(pid: &Option<u32>, host: &Option<String>, since: &Option<String>) -> String {
    let mut who = Vec::new();
    if let Some(pid) = pid {
        who.push(format!("pid {pid}"));
    }
    if let Some(host) = host {
        who.push(format!("on host {host}"));
    }
    if let Some(since) = since {
        who.push(format!("since {since}"));
    }
    let detail = if who.is_empty() { String::new() } else { format!(" ({})", who.join(" ")) };
    format!("drill is open in another drillbook process{detail}; close it first")
}

impl DrillLock {
    /// Creates/opens `<drill_dir>/lock` and takes an exclusive lock without waiting, then
    /// replaces its content with `pid <pid>\nhost <hostname>\nsince <rfc3339>\n` and syncs.
    ///
    /// When the lock is held (by another process, or by another `DrillLock` in this one)
    /// returns [`LockError::Held`] with what the holder wrote in the file.
    pub fn acquire(drill_dir: &Path) -> Result<DrillLock, LockError> {
        let path = drill_dir.join(LOCK_FILE_NAME);
        let io_err = |op: &'static str| {
            let path = path.clone();
            move |source: io::Error| LockError::Io { path, op, source }
        };
        // Never truncate before holding the lock: the holder's details are in there.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(held_from(&mut file)),
            Err(TryLockError::Error(e)) => return Err(io_err("lock")(e)),
        }
        let content = format!("pid {}\nhost {}\nsince {}\n", std::process::id(), hostname(), jiff::Timestamp::now());
        file.set_len(0).map_err(io_err("write"))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err("write"))?;
        file.write_all(content.as_bytes()).map_err(io_err("write"))?;
        file.sync_all().map_err(io_err("sync"))?;
        Ok(DrillLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that keeps writing when this process was last alive into the
    /// lock file, so the next process knows when this one stopped (a crash
    /// writes no journal line).
    pub fn heartbeat(&self) -> io::Result<Heartbeat> {
        let mut file = self.file.try_clone()?;
        let mut head = String::new();
        file.seek(SeekFrom::Start(0))?;
        (&mut file).take(4096).read_to_string(&mut head)?;
        let head = head.lines().filter(|line| !line.starts_with("alive ")).map(|l| format!("{l}\n")).collect();
        Ok(Heartbeat { file, head })
    }
}

/// Writes `alive <rfc3339>` into the lock file on each beat.
#[derive(Debug)]
pub struct Heartbeat {
    file: File,
    /// The holder's lines (pid, host, since), kept as they are.
    head: String,
}

impl Heartbeat {
    pub fn beat(&mut self) -> io::Result<()> {
        let content = format!("{}alive {}\n", self.head, jiff::Timestamp::now());
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(content.as_bytes())?;
        self.file.sync_data()
    }
}

impl Drop for DrillLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}

/// Reads the holder's details from the lock file (best effort: missing fields are `None`).
fn held_from(file: &mut File) -> LockError {
    let mut text = String::new();
    let read = file.seek(SeekFrom::Start(0)).and_then(|_| file.take(4096).read_to_string(&mut text));
    if read.is_err() {
        text.clear();
    }
    let (pid, host, since, _) = parse_holder(&text);
    LockError::Held { pid, host, since }
}

/// Who holds (or last held) a drill's lock, found without taking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub host: Option<String>,
    pub since: Option<String>,
    /// When that process was last known alive (its heartbeat), RFC 3339.
    pub alive: Option<String>,
    /// Whether that process holds the lock now: `Some(true)` or `Some(false)`
    /// when that could be told (Linux, same host), `None` when not.
    pub holding: Option<bool>,
}

/// Who holds the drill's lock, without taking it and without writing
/// anything (for `drillbook watch`, which must leave the drill alone).
/// `None` when no process ever took it (no lock file).
///
/// Whether the lock is held now is read from `/proc/locks` (the lock file's
/// inode), and else judged from the recorded pid on this host.
pub fn holder(drill_dir: &Path) -> Option<Holder> {
    let path = drill_dir.join(LOCK_FILE_NAME);
    let text = std::fs::read_to_string(&path).ok()?;
    let (pid, host, since, alive) = parse_holder(&text);
    let in_proc_locks = proc_locks_hold(&path);
    let here = host.as_deref().is_some_and(|h| h == hostname());
    let holding = match (in_proc_locks, here, pid) {
        (Some(true), _, _) => Some(true),
        // The pid as well: /proc/locks may name another inode (overlayfs).
        (_, true, Some(pid)) => Some(pid_alive(pid) && has_open(pid, &path).unwrap_or(true)),
        (Some(false), true, None) => Some(false),
        // Another host (a shared drill directory): its locks are not seen here.
        _ => None,
    };
    Some(Holder { pid, host, since, alive, holding })
}

/// When the last holder was last known alive (its heartbeat), from the lock
/// file alone: what a resume journals, without asking who holds it now.
pub fn last_alive(drill_dir: &Path) -> Option<jiff::Timestamp> {
    let text = std::fs::read_to_string(drill_dir.join(LOCK_FILE_NAME)).ok()?;
    parse_holder(&text).3?.parse().ok()
}

/// Whether `/proc/locks` lists a lock on the file's inode (`None`: cannot tell).
fn proc_locks_hold(path: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(path).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    Some(locks.lines().any(|line| {
        // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF"
        line.split_whitespace().nth(5).and_then(|dev_inode| dev_inode.rsplit(':').next()).map(str::parse::<u64>)
            == Some(Ok(inode))
    }))
}

/// Whether the process has the file open (`None`: its fds cannot be read),
/// which tells a holder from a process that reuses its pid.
fn has_open(pid: u32, path: &Path) -> Option<bool> {
    let target = std::fs::canonicalize(path).ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link == target)))
}

/// Whether a process with this pid exists on this machine.
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

type HolderFields = (Option<u32>, Option<String>, Option<String>, Option<String>);

fn parse_holder(text: &str) -> HolderFields {
    let (mut pid, mut host, mut since, mut alive) = (None, None, None, None);
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("pid", v)) => pid = v.trim().parse::<u32>().ok(),
            Some(("host", v)) if !v.trim().is_empty() => host = Some(v.trim().to_owned()),
            Some(("since", v)) if !v.trim().is_empty() => since = Some(v.trim().to_owned()),
            Some(("alive", v)) if !v.trim().is_empty() => alive = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    (pid, host, since, alive)
}

/// This machine's host name, or "unknown".
pub fn hostname() -> String {
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim();
        if !name.is_empty() {
            return name.to_owned();
        }
    }
    gethostname().unwrap_or_else(|| "unknown".to_owned())
}

fn gethostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(buf.get(..len)?).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_found_without_taking_or_writing_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), None, "never locked");
        let lock = DrillLock::acquire(dir.path()).unwrap();
        let content = std::fs::read(lock.path()).unwrap();
        let found = holder(dir.path()).unwrap();
        assert_eq!(found.pid, Some(std::process::id()));
        assert_eq!(found.holding, Some(true));
        assert_eq!(std::fs::read(lock.path()).unwrap(), content, "the lock file is only read");
        assert!(DrillLock::acquire(dir.path()).is_err(), "and still held");
        drop(lock);
        // Same pid, still alive, but the lock file is closed: not holding.
        assert_eq!(holder(dir.path()).unwrap().holding, Some(false));
    }
}
