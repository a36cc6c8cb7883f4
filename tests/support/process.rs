//! Whether a process still exists, for tests that check a process group was
//! killed. Included with `#[path = "support/process.rs"] mod process;`.
#![allow(dead_code)]

/// True when `pid` no longer exists, or is a zombie waiting to be reaped
/// (reaping by init is asynchronous).
pub fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false);
    !alive || zombie
}
