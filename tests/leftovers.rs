//! What a SIGKILLed drillbook leaves running (its step's process group lives
//! on): `resume` shows it and the re-run stops it before starting again;
//! `drillbook abort` stops it before the teardown runs and journals what it
//! stopped as a note, which the report shows.

use crate::support;

use std::process::Command;
use std::time::Duration;

use support::{Home, stderr_of, stdout_of, wait_for};

/// How long the drill may take to get where a test waits for it.
const PATIENCE: Duration = Duration::from_secs(10);

/// A step that leaves a process running on purpose and succeeds (as a
/// port-forward for later steps would), a restore that sleeps `seconds` on
/// its first run (the number tells this test's processes from another's), and
/// a teardown that says whether the restore is still running. `61[7]`: a
/// pattern that does not match its own shell.
fn runbook(seconds: u32) -> String {
    let pattern = format!("sleep {}[{}]", seconds / 10, seconds % 10);
    let tunnel = tunnel(seconds);
    format!(
        r#"[runbook]
id = "left"
title = "Left running"
[[step]]
id = "tunnel"
kind = "command"
run = "sleep {tunnel} >/dev/null 2>&1 &"
[[step]]
id = "restore"
kind = "command"
run = "echo started; if [ -e {{{{ drill.dir }}}}/second ]; then echo second run; else touch {{{{ drill.dir }}}}/second; sleep {seconds} & wait; fi"
[[step]]
id = "teardown"
kind = "command"
always = true
run = "if pgrep -f '{pattern}' >/dev/null; then echo restore still running; else echo nothing left running; fi"
"#
    )
}

/// How long the first step's process sleeps.
fn tunnel(seconds: u32) -> u32 {
    seconds + 100
}

fn sleepers(seconds: u32) -> Vec<String> {
    let output = Command::new("pgrep").args(["-f", &format!("^sleep {seconds}$")]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_string).collect()
}

/// Starts the drill, waits until the restore sleeps, and SIGKILLs drillbook.
fn killed_mid_restore(home: &Home, seconds: u32) {
    let runbook = home.runbook("left.toml", &runbook(seconds));
    let mut child = home.spawn_run(&runbook);
    // The restore sleeps and drillbook has recorded its process group.
    wait_for("the restore to sleep", PATIENCE, || Some(()).filter(|()| !sleepers(seconds).is_empty()));
    wait_for("the restore's pid file", PATIENCE, || {
        home.drills().first().map(|drill| drill.join("logs/restore.1.pid")).filter(|pid| pid.exists())
    });
    child.kill().unwrap(); // SIGKILL: drillbook cannot stop the step's group
    child.wait().unwrap();
    assert_eq!(sleepers(seconds).len(), 1, "the restore's sleep outlives drillbook");
}

#[test]
fn abort_stops_what_a_killed_attempt_left_running_before_the_teardown() {
    let home = Home::new();
    killed_mid_restore(&home, 617);

    let aborted = home.cmd().args(["abort", "--plain", "--yes"]).output().unwrap();
    let stdout = stdout_of(&aborted);
    assert_eq!(aborted.status.code(), Some(1), "an aborted drill is not a success: {stdout}\n{}", stderr_of(&aborted));
    assert!(
        stdout.contains("restore: drill aborted: stopped 2 processes left running by attempt 1"),
        "the operator is told: {stdout}"
    );
    assert!(stdout.contains("sleep 617"), "{stdout}");
    assert!(stdout.contains("  | nothing left running"), "stopped before the teardown ran: {stdout}");
    assert!(sleepers(617).is_empty(), "nothing left behind");
    let tunnel = sleepers(tunnel(617));
    stop(&tunnel);
    assert_eq!(tunnel.len(), 1, "what a finished step left running on purpose is left alone");
    assert!(!stdout.contains("tunnel: drill aborted"), "{stdout}");

    let journal = home.journal();
    assert!(
        journal.contains(r#""type":"note_added","step":"restore","text":"drill aborted: stopped 2 processes"#),
        "{journal}"
    );
    assert!(journal.contains(r#""outcome":"aborted""#), "{journal}");
    let id = home.only_drill().file_name().unwrap().to_string_lossy().into_owned();
    let report = home.cmd().args(["report", &id]).output().unwrap();
    assert!(
        stdout_of(&report).contains("drill aborted: stopped 2 processes left running by attempt 1"),
        "{}",
        stdout_of(&report)
    );
}

#[test]
fn resume_shows_what_is_left_running_and_the_rerun_stops_it_first() {
    let home = Home::new();
    killed_mid_restore(&home, 618);

    let resumed = home.cmd().args(["resume", "--plain", "--yes"]).timeout(Duration::from_secs(60)).output().unwrap();
    let stdout = stdout_of(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{}", stderr_of(&resumed));
    assert!(stdout.contains("Still running from the interrupted attempt"), "{stdout}");
    assert!(stdout.contains("sleep 618 (attempt 1)"), "{stdout}");
    assert!(stdout.contains("  | second run"), "{stdout}");
    assert!(sleepers(618).is_empty(), "nothing left behind");
    stop(&sleepers(tunnel(618)));
    let log = std::fs::read_to_string(home.only_drill().join("logs/restore.2.log")).unwrap();
    assert!(log.contains("drillbook: stopped 2 processes left running by attempt 1"), "{log}");
    assert!(!home.only_drill().join("logs/restore.1.pid").exists(), "the dealt-with pid file is gone");
}

/// Ends processes a test left running on purpose.
fn stop(pids: &[String]) {
    for pid in pids {
        let _ = Command::new("kill").arg(pid).status();
    }
}
