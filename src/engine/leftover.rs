//! Processes an interrupted command attempt left behind.
//!
//! A command runs in its own process group so that cancel and timeout reach
//! grandchildren. When drillbook itself dies (SIGKILL, power loss of the
//! terminal, OOM killer) nobody stops that group: a `pg_restore` keeps
//! writing into the DR database. Re-running the step on top of it would make
//! `dropdb` fail ("being accessed by other users") or, worse, restore twice
//! at once. So each attempt leaves a pid file beside its log
//! (`logs/STEP.N.pid`: process group id and the leader's start time), removed
//! when the group is gone; the next attempt of the step stops whatever of an
//! earlier attempt is still alive before it starts.
//!
//! The start time guards against pid reuse: a group whose leader is alive
//! with another start time is somebody else's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often to look whether a signalled group is gone.
const POLL: Duration = Duration::from_millis(50);

/// One live process of an earlier attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub pid: i32,
    /// The command line, as `ps` shows it (arguments joined by spaces).
    pub command: String,
}

/// What was found and done about an earlier attempt's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The pid file's attempt number (`STEP.N.pid`).
    pub attempt: u32,
    pub pgid: i32,
    pub processes: Vec<Leftover>,
    /// SIGTERM was not enough within the grace period.
    pub killed: bool,
}

impl Stopped {
    /// One line for the log, e.g. "drillbook: stopped 2 processes left running by
    /// attempt 1 (process group 4242): pid 4242 sh -c …; pid 4250 pg_restore …".
    pub fn describe(&self) -> String {
        format!("drillbook: {}", self.summary())
    }

    /// [`Stopped::describe`] without the "drillbook: " a log line needs (for a note).
    pub fn summary(&self) -> String {
        let processes: Vec<String> =
            self.processes.iter().map(|p| format!("pid {} {}", p.pid, shorten(&p.command))).collect();
        format!(
            "stopped {} process{} left running by attempt {} (process group {}){}: {}",
            self.processes.len(),
            if self.processes.len() == 1 { "" } else { "es" },
            self.attempt,
            self.pgid,
            if self.killed { " with SIGKILL after SIGTERM was ignored" } else { "" },
            processes.join("; ")
        )
    }
}

fn shorten(command: &str) -> String {
    const MAX: usize = 120;
    if command.chars().count() <= MAX {
        command.to_string()
    } else {
        command.chars().take(MAX).collect::<String>() + "…"
    }
}

/// The pid file of the attempt that logs to `log_path` (`STEP.N.log` → `STEP.N.pid`).
pub fn pid_file(log_path: &Path) -> PathBuf {
    log_path.with_extension("pid")
}

/// Records a started attempt's group. Best effort: without it only the
/// clean-up after a crash is lost, never the attempt itself.
pub fn record(log_path: &Path, pgid: i32) {
    let Some(start) = start_time(pgid) else { return };
    let boot = boot_id().unwrap_or_default();
    if let Err(error) = std::fs::write(pid_file(log_path), format!("{pgid} {start} {boot}\n")) {
        tracing::warn!(%error, "cannot write the pid file of {}", log_path.display());
    }
}

/// The attempt is over and its group gone: nothing to clean up later.
pub fn forget(log_path: &Path) {
    let _ = std::fs::remove_file(pid_file(log_path));
}

/// Stops the live processes of earlier attempts of `step_id` whose pid files
/// are in `log_dir`: SIGTERM to the group, then SIGKILL after `grace`.
/// Removes the pid files it has dealt with.
pub fn stop_earlier_attempts(log_dir: &Path, step_id: &str, grace: Duration) -> Vec<Stopped> {
    stop_where(log_dir, step_id, grace, |_| true)
}

/// [`stop_earlier_attempts`] for the listed attempts of `step_id` only (an
/// abort stops what attempts cut short left, not what finished ones left
/// running on purpose).
pub fn stop_attempts(log_dir: &Path, step_id: &str, attempts: &[u32], grace: Duration) -> Vec<Stopped> {
    stop_where(log_dir, step_id, grace, |attempt| attempts.contains(&attempt))
}

fn stop_where(log_dir: &Path, step_id: &str, grace: Duration, wanted: impl Fn(u32) -> bool) -> Vec<Stopped> {
    let mut stopped = Vec::new();
    for PidFile { attempt, path, group } in pid_files(log_dir, step_id).into_iter().filter(|file| wanted(file.attempt))
    {
        if let Some((pgid, start)) = group {
            let processes = members(pgid, start);
            if !processes.is_empty() {
                let killed = stop_group(pgid, start, grace);
                stopped.push(Stopped { attempt, pgid, processes, killed });
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    stopped
}

/// What earlier attempts of `step_id` left running, without touching it: for
/// the operator deciding what to do with an interrupted step. One line per
/// process, e.g. "pid 4250 pg_restore … (attempt 1)".
pub fn still_running(log_dir: &Path, step_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for PidFile { attempt, group, .. } in pid_files(log_dir, step_id) {
        let Some((pgid, start)) = group else { continue };
        found.extend(
            members(pgid, start)
                .into_iter()
                .map(|process| format!("pid {} {} (attempt {attempt})", process.pid, shorten(&process.command))),
        );
    }
    found
}

/// A pid file of an attempt of the step.
struct PidFile {
    attempt: u32,
    path: PathBuf,
    /// Process group id and leader start time; `None` when the file is unreadable.
    group: Option<(i32, u64)>,
}

/// The pid files of `step_id`'s attempts in `log_dir`, oldest attempt first.
fn pid_files(log_dir: &Path, step_id: &str) -> Vec<PidFile> {
    let Ok(entries) = std::fs::read_dir(log_dir) else { return Vec::new() };
    let boot = boot_id();
    let mut files: Vec<PidFile> = entries
        .flatten()
        .filter_map(|entry| {
            let attempt = attempt_of(&entry.file_name().to_string_lossy(), step_id)?;
            let path = entry.path();
            let group = std::fs::read_to_string(&path).ok().and_then(|text| parse_pid_file(&text, boot.as_deref()));
            Some(PidFile { attempt, path, group })
        })
        .collect();
    files.sort_by_key(|file| file.attempt);
    files
}

/// `STEP.N.pid` → N when STEP is `step_id`.
fn attempt_of(file_name: &str, step_id: &str) -> Option<u32> {
    let rest = file_name.strip_prefix(step_id)?.strip_prefix('.')?;
    rest.strip_suffix(".pid")?.parse().ok()
}

/// Group id and leader start time, unless the file was written on another
/// boot: start times count from boot, and a drill directory may have moved
/// to (or be shared with) another machine, where the ids are somebody else's.
fn parse_pid_file(text: &str, boot: Option<&str>) -> Option<(i32, u64)> {
    let mut words = text.split_whitespace();
    let pgid: i32 = words.next()?.parse().ok()?;
    let start: u64 = words.next()?.parse().ok()?;
    if let (Some(written_on), Some(now)) = (words.next(), boot)
        && written_on != now
    {
        return None;
    }
    // Never 0 or 1: kill(0) and kill(-1) would hit our group or everything.
    (pgid > 1).then_some((pgid, start))
}

/// This boot of this machine (a random id the kernel makes at boot).
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// The group's live processes, unless the group id now belongs to another
/// process (its leader alive with a different start time).
fn members(pgid: i32, leader_start: u64) -> Vec<Leftover> {
    if let Some(start) = start_time(pgid)
        && start != leader_start
    {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        let Some(stat) = Stat::read(pid) else { continue };
        // Zombies are dead already; a member started before the leader cannot be ours.
        if stat.pgrp == pgid && stat.state != 'Z' && stat.start >= leader_start {
            found.push(Leftover { pid, command: command_line(pid).unwrap_or(stat.comm) });
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// Returns whether SIGKILL was needed.
fn stop_group(pgid: i32, leader_start: u64, grace: Duration) -> bool {
    signal_group(pgid, libc::SIGTERM);
    // A stopped process (Ctrl-Z, SIGSTOP) only acts on SIGTERM once continued.
    signal_group(pgid, libc::SIGCONT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if members(pgid, leader_start).is_empty() {
            return false;
        }
        std::thread::sleep(POLL);
    }
    signal_group(pgid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !members(pgid, leader_start).is_empty() {
        std::thread::sleep(POLL);
    }
    true
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; pgid > 1 (checked
    // when the pid file was parsed) so -pgid addresses exactly that group.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

fn start_time(pid: i32) -> Option<u64> {
    Stat::read(pid).map(|stat| stat.start)
}

fn command_line(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> =
        raw.split(|&b| b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The fields of `/proc/PID/stat` this module needs.
struct Stat {
    comm: String,
    state: char,
    pgrp: i32,
    /// Start time in clock ticks after boot (field 22).
    start: u64,
}

impl Stat {
    fn read(pid: i32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    fn parse(text: &str) -> Option<Stat> {
        // `comm` is in parentheses and may itself hold spaces and parentheses.
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let comm = text.get(open + 1..close)?.to_string();
        let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
        // fields[0] is field 3 (state); field N is fields[N - 3].
        Some(Stat {
            comm,
            state: fields.first()?.chars().next()?,
            pgrp: fields.get(2)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (pg (re)store) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(stat.comm, "pg (re)store");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 4242);
        assert_eq!(stat.start, 987654);
        assert!(Stat::parse("garbage").is_none());
    }

    #[test]
    fn pid_file_names_belong_to_their_step_only() {
        assert_eq!(attempt_of("restore.2.pid", "restore"), Some(2));
        assert_eq!(attempt_of("restore-db.1.pid", "restore"), None);
        assert_eq!(attempt_of("restore.2.log", "restore"), None);
        assert_eq!(attempt_of("restore.x.pid", "restore"), None);
        assert_eq!(parse_pid_file("1 5 b1\n", Some("b1")), None, "never pid 1");
        assert_eq!(parse_pid_file("4242 77 b1\n", Some("b1")), Some((4242, 77)));
    }

    #[test]
    fn a_pid_file_from_another_boot_or_machine_names_nothing() {
        assert_eq!(parse_pid_file("4242 77 b0\n", Some("b1")), None);
        // Written before the boot id was recorded, or where it cannot be read.
        assert_eq!(parse_pid_file("4242 77\n", Some("b1")), Some((4242, 77)));
        assert_eq!(parse_pid_file("4242 77 b0\n", None), Some((4242, 77)));
        assert!(boot_id().is_some_and(|id| id.len() >= 32), "Linux has a boot id");
    }

    #[test]
    fn a_group_left_running_is_stopped_and_its_pid_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("restore.1.log");
        // A shell that ignores SIGTERM with a child: both must go.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("trap '' TERM; sleep 60 & wait")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = i32::try_from(child.id()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        record(&log, pgid);
        assert!(pid_file(&log).exists());
        let running = still_running(dir.path(), "restore");
        assert!(running.iter().any(|line| line.contains("sleep 60") && line.ends_with("(attempt 1)")), "{running:?}");
        assert!(still_running(dir.path(), "other-step").is_empty());
        assert!(pid_file(&log).exists(), "looking changes nothing");

        let stopped = stop_earlier_attempts(dir.path(), "restore", Duration::from_millis(300));
        let _ = child.wait();
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        assert_eq!(stopped[0].attempt, 1);
        assert!(stopped[0].killed, "SIGTERM was ignored");
        assert!(stopped[0].processes.iter().any(|p| p.command.contains("sleep 60")), "{stopped:?}");
        assert!(stopped[0].describe().contains("left running by attempt 1"), "{}", stopped[0].describe());
        assert!(!pid_file(&log).exists());
        assert!(members(pgid, 0).is_empty());
    }

    #[test]
    fn a_pid_file_of_a_finished_or_reused_group_stops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = std::process::Command::new("sleep").arg("60").process_group(0).spawn().unwrap();
        let pgid = i32::try_from(other.id()).unwrap();
        let start = start_time(pgid).unwrap();
        // The group id now belongs to a process started later than the attempt's leader.
        std::fs::write(dir.path().join("restore.3.pid"), format!("{pgid} {}\n", start + 1)).unwrap();
        std::fs::write(dir.path().join("restore.4.pid"), "not a pid file").unwrap();
        let stopped = stop_earlier_attempts(dir.path(), "restore", Duration::from_millis(100));
        let alive = other.try_wait().unwrap().is_none();
        let _ = other.kill();
        let _ = other.wait();
        assert!(stopped.is_empty(), "{stopped:?}");
        assert!(alive, "a process that is not the attempt's was left alone");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "pid files cleaned up");
    }
}
