//! Storage faults. The disk fills up mid-drill: drillbook stops with a
//! clear error, the journal still replays, and once space is freed the drill
//! resumes to the end. A disk already full, a read-only data dir (a real read-only mount: root
//! ignores permission bits) or one that cannot be created is a clear error
//! before the drill starts, and a paused drill on a disk remounted read-only
//! is refused on resume without losing a line. The mounts need root (CI runs
//! as root); without it those tests say SKIPPED.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::reliability::{self, Counts};
use support::{Home, stderr_of, stdout_of};

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_pauses_the_drill_and_loses_nothing() {
    let home = Home::new();
    let mount_point = home.path().join("small");
    let Some(_unmount) = mount_tmpfs(&mount_point, "size=256k", "a_full_disk_pauses_the_drill_and_loses_nothing")
    else {
        return;
    };
    let runbook = home.runbook(
        "full.toml",
        r#"[runbook]
id = "full"
title = "Full disk"
[vars.marker]
prompt = "A file outside the small disk that says it was filled once"
[[step]]
id = "before"
kind = "command"
run = "echo value=kept"
capture = { name = "kept", regex = "^value=(.*)$" }
[[step]]
id = "fill"
kind = "command"
run = "if [ ! -e {{ marker }} ]; then touch {{ marker }}; head -c 1000000 /dev/zero > {{ drill.dir }}/filler; fi; echo filled"
[[step]]
id = "after"
kind = "command"
run = "echo after {{ kept }}"
"#,
    );
    let first = home
        .cmd()
        .env("DRILLBOOK_HOME", &mount_point)
        .args(["run", "--plain", "--yes", "--var"])
        .arg(format!("marker={}", home.path().join("filled-once").display()))
        .arg(&runbook)
        .output()
        .unwrap();
    // Depending on which write hits the full disk first (the step's log or
    // the journal), the step fails (1) or the drill pauses (2); either way
    // the reason is named.
    let all = format!("{}\n{}", stdout_of(&first), stderr_of(&first));
    assert!(matches!(first.status.code(), Some(1 | 2)), "{all}");
    assert!(all.contains("No space left on device"), "{all}");

    let drills: Vec<_> = std::fs::read_dir(mount_point.join("drills")).unwrap().map(|e| e.unwrap().path()).collect();
    let drill = drills[0].clone();
    let before = complete_lines(&drill);
    std::fs::remove_file(drill.join("filler")).unwrap();
    let resumed = home.cmd().env("DRILLBOOK_HOME", &mount_point).args(["resume", "--plain", "--yes"]).output().unwrap();
    let lost = lost_lines(&before, &drill);
    reliability::record(
        "a_full_disk_pauses_the_drill_and_loses_nothing",
        Counts { trials: 1, faults: 1, lost, ..Counts::default() },
    );
    assert_eq!(lost, 0, "journal lines written before the disk filled were lost");
    let stdout = stdout_of(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{}", stderr_of(&resumed));
    assert!(stdout.contains("  | after kept"), "the capture made before the disk filled is kept: {stdout}");
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    home.cmd().env("DRILLBOOK_HOME", &mount_point).args(["verify", &id]).assert().success();
}

const SIMPLE: &str = r#"[runbook]
id = "simple"
title = "Simple"
[[step]]
id = "hello"
kind = "command"
run = "echo value=kept"
capture = { name = "kept", regex = "^value=(.*)$" }
[[step]]
id = "look"
kind = "manual"
[[step]]
id = "after"
kind = "command"
run = "echo after {{ kept }}"
"#;

#[test]
fn an_unwritable_data_dir_fails_before_the_drill_starts() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    let blocker = home.path().join("not-a-dir");
    std::fs::write(&blocker, "file").unwrap();
    let output =
        home.cmd().env("DRILLBOOK_HOME", &blocker).args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    reliability::record(
        "an_unwritable_data_dir_fails_before_the_drill_starts",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("cannot create") && stderr.contains("Set DRILLBOOK_HOME to a writable directory"),
        "{stderr}"
    );
}

#[test]
fn an_already_full_disk_fails_before_the_drill_starts() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    let mount_point = home.path().join("full");
    let Some(_unmount) = mount_tmpfs(&mount_point, "size=256k", "an_already_full_disk_fails_before_the_drill_starts")
    else {
        return;
    };
    let filler = mount_point.join("filler");
    let written = std::fs::write(&filler, vec![0u8; 1 << 20]);
    assert!(written.is_err(), "the 256 KiB disk is full");
    let drillbook = |args: &[&str]| {
        let mut command = home.cmd_std();
        command.env("DRILLBOOK_HOME", &mount_point).args(args).stdin(std::process::Stdio::null());
        command.output().unwrap()
    };
    let output = drillbook(&["run", "--plain", "--yes", runbook.to_str().unwrap()]);
    reliability::record(
        "an_already_full_disk_fails_before_the_drill_starts",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
    let stdout = stdout_of(&output);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("No space left on device"), "the reason is named: {stderr}");
    assert!(stderr.contains("Set DRILLBOOK_HOME to a writable directory"), "and what to do: {stderr}");
    assert!(!stdout.contains("value=kept"), "no step ran: {stdout}");

    // Space freed: the half-made drill is no obstacle to a new one.
    std::fs::remove_file(&filler).unwrap();
    let list = drillbook(&["list"]);
    assert!(list.status.success(), "{}", stderr_of(&list));
    let again = drillbook(&["run", "--plain", "--yes", runbook.to_str().unwrap()]);
    assert!(again.status.success(), "{}\n{}", stdout_of(&again), stderr_of(&again));
    assert!(stdout_of(&again).contains("  | after kept"), "{}", stdout_of(&again));
}

#[test]
fn a_read_only_data_dir_fails_before_the_drill_starts() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    let mount_point = home.path().join("ro");
    let Some(_unmount) =
        mount_tmpfs(&mount_point, "ro,size=256k", "a_read_only_data_dir_fails_before_the_drill_starts")
    else {
        return;
    };
    let output = home
        .cmd()
        .env("DRILLBOOK_HOME", &mount_point)
        .args(["run", "--plain", "--yes"])
        .arg(&runbook)
        .output()
        .unwrap();
    reliability::record(
        "a_read_only_data_dir_fails_before_the_drill_starts",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
    let stdout = stdout_of(&output);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("Read-only file system"), "the reason is named: {stderr}");
    assert!(stderr.contains("Set DRILLBOOK_HOME to a writable directory"), "and what to do: {stderr}");
    assert!(!stdout.contains("value=kept") && !stdout.contains("hello"), "no step ran: {stdout}");
    assert_eq!(std::fs::read_dir(&mount_point).unwrap().count(), 0, "nothing was written");
}

#[test]
fn a_paused_drill_on_a_disk_gone_read_only_is_refused_and_loses_nothing() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    let mount_point = home.path().join("data");
    let Some(_unmount) =
        mount_tmpfs(&mount_point, "size=1m", "a_paused_drill_on_a_disk_gone_read_only_is_refused_and_loses_nothing")
    else {
        return;
    };
    let drillbook = |args: &[&str]| {
        home.cmd_std()
            .env("DRILLBOOK_HOME", &mount_point)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    // The manual step waits for an answer; with stdin closed the drill pauses.
    let first = drillbook(&["run", "--plain", runbook.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(2), "{}\n{}", stdout_of(&first), stderr_of(&first));
    let drill = std::fs::read_dir(mount_point.join("drills")).unwrap().next().unwrap().unwrap().path();
    let before = complete_lines(&drill);
    assert!(before.iter().any(|l| l.contains("capture_set")), "{before:?}");

    remount(&mount_point, "remount,ro");
    let refused = drillbook(&["resume", "--plain", "--yes"]);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{}\n{stderr}", stdout_of(&refused));
    assert!(stderr.contains("Read-only file system"), "the reason is named: {stderr}");
    assert!(!stdout_of(&refused).contains("after kept"), "no step ran: {}", stdout_of(&refused));
    let lost_read_only = lost_lines(&before, &drill);

    remount(&mount_point, "remount,rw");
    let resumed = drillbook(&["resume", "--plain", "--yes"]);
    let lost = lost_read_only + lost_lines(&before, &drill);
    reliability::record(
        "a_paused_drill_on_a_disk_gone_read_only_is_refused_and_loses_nothing",
        Counts { trials: 2, faults: 1, lost, ..Counts::default() },
    );
    assert_eq!(lost, 0, "journal lines written before the disk went read-only were lost");
    assert!(resumed.status.success(), "{}\n{}", stdout_of(&resumed), stderr_of(&resumed));
    assert!(stdout_of(&resumed).contains("  | after kept"), "{}", stdout_of(&resumed));
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    home.cmd().env("DRILLBOOK_HOME", &mount_point).args(["verify", &id]).assert().success();
}

/// The journal's complete lines.
fn complete_lines(drill: &Path) -> Vec<String> {
    let journal = std::fs::read_to_string(drill.join("journal.jsonl")).unwrap_or_default();
    journal.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(str::to_string).collect()
}

/// How many of `before` are no longer at the start of the journal.
fn lost_lines(before: &[String], drill: &Path) -> u64 {
    let now = complete_lines(drill);
    before.iter().enumerate().filter(|(i, line)| now.get(*i) != Some(*line)).count() as u64
}

/// Mounts a tmpfs with `options` on `mount_point` (created here); `None`
/// (and a SKIPPED line) when not root.
fn mount_tmpfs(mount_point: &Path, options: &str, test: &str) -> Option<Tmpfs> {
    std::fs::create_dir_all(mount_point).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(mount_point).status();
    if !mounted.is_ok_and(|s| s.success()) {
        assert!(
            unsafe_euid() != 0,
            "mounting a tmpfs failed although running as root: this test needs `mount -t tmpfs`"
        );
        eprintln!("SKIPPED {test}: needs root to mount a tmpfs (CI runs it)");
        return None;
    }
    Some(Tmpfs(mount_point.to_path_buf()))
}

fn remount(mount_point: &Path, options: &str) {
    let status = Command::new("mount").args(["-o", options]).arg(mount_point).status().unwrap();
    assert!(status.success(), "mount -o {options} failed");
}

fn unsafe_euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
