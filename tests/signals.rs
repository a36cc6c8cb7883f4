//! SIGTERM, SIGINT and SIGHUP stop a running step cleanly: the whole process
//! group is killed, the attempt is journaled as interrupted, and `resume`
//! runs it again. Also: unbounded output streams through in bounded memory.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use support::{Home, stderr_of, stdout_of, wait_for};

/// How long the drill may take to get where a test waits for it.
const PATIENCE: Duration = Duration::from_secs(30);

const SLOW: &str = r#"[runbook]
id = "slow"
title = "Slow"
[[step]]
id = "slow"
kind = "command"
run = "echo started; if [ -e {{ drill.dir }}/second ]; then echo second run; else touch {{ drill.dir }}/second; sleep 600 & wait; fi"
"#;

fn stop_with(signal: i32, name: &str) {
    let home = Home::new();
    let runbook = home.runbook("slow.toml", SLOW);
    let child = home.spawn_run(&runbook);
    // Wait until the step runs.
    let log = wait_for("the step to start", PATIENCE, || {
        let drill = home.drills().into_iter().next()?;
        let journal = std::fs::read_to_string(drill.join("journal.jsonl")).unwrap_or_default();
        journal.contains("step_started").then(|| drill.join("logs/slow.1.log"))
    });
    // Until the first run sleeps (its log is flushed as it goes, so
    // "started" may show before the marker file is made).
    wait_for("the first run to sleep", PATIENCE, || {
        let started = std::fs::read_to_string(&log).unwrap_or_default().contains("started");
        (started && home.only_drill().join("second").exists()).then_some(())
    });
    // SAFETY: sending a signal to our own child.
    unsafe { kill(child.id() as i32, signal) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{name}: {}\n{}", stdout_of(&output), stderr_of(&output));
    assert!(stdout_of(&output).contains(&format!("stopped by {name}: the drill is paused")), "{}", stdout_of(&output));
    let journal = home.journal();
    assert!(
        journal.contains(&format!(
            "\"type\":\"step_interrupted\",\"step\":\"slow\",\"attempt\":1,\"reason\":\"stopped by {name}\""
        )),
        "{journal}"
    );
    assert!(journal.contains("\"type\":\"session_ended\""), "{journal}");

    let resumed = home.cmd().args(["resume", "--plain", "--yes"]).output().unwrap();
    assert!(resumed.status.success(), "{}\n{}", stdout_of(&resumed), stderr_of(&resumed));
    assert!(stdout_of(&resumed).contains("  | second run"), "{}", stdout_of(&resumed));
}

unsafe extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn sigterm_interrupts_and_resume_reruns() {
    stop_with(15, "SIGTERM");
}

#[test]
fn sigint_interrupts_and_resume_reruns() {
    stop_with(2, "SIGINT");
}

#[test]
fn sighup_interrupts_and_resume_reruns() {
    stop_with(1, "SIGHUP");
}

#[test]
fn unbounded_output_streams_in_bounded_memory() {
    // What a drill of one quiet command peaks at is the baseline: most of it
    // is the binary's own pages (about 37 MiB of a debug build's code), which
    // no amount of output changes. The flood may add a bounded amount on top.
    let quiet = Home::new();
    let quiet_runbook = quiet.runbook("quiet.toml", &one_command_runbook("true"));
    assert!(plain_run(&quiet, &quiet_runbook).success());
    let baseline_kib = children_peak_rss_kib();

    let home = Home::new();
    let runbook =
        home.runbook("flood.toml", &one_command_runbook("yes 'a line of output that repeats' | head -c 150000000"));
    assert!(plain_run(&home, &runbook).success());
    let log = home.only_drill().join("logs/flood.1.log");
    // 150 MB of 30-byte lines: exactly 5,000,000 whole lines.
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 150_000_000, "the whole output is logged");
    // The largest child so far is the flooding drill (it runs the same code
    // as the quiet one, and more of it).
    let added_kib = children_peak_rss_kib() - baseline_kib;
    assert!(
        added_kib < 32 * 1024,
        "streaming 150 MB added {} MiB to the {} MiB of a quiet drill",
        added_kib / 1024,
        baseline_kib / 1024
    );
}

fn one_command_runbook(run: &str) -> String {
    format!(
        "[runbook]\nid = \"flood\"\ntitle = \"Flood\"\n[[step]]\nid = \"flood\"\nkind = \"command\"\nrun = {}\n",
        toml::Value::String(run.to_owned())
    )
}

fn plain_run(home: &Home, runbook: &std::path::Path) -> std::process::ExitStatus {
    home.cmd_std()
        .args(["run", "--plain", "--yes"])
        .arg(runbook)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

/// Peak resident set of the largest waited-for child, from getrusage.
fn children_peak_rss_kib() -> i64 {
    #[repr(C)]
    struct Rusage {
        utime: [i64; 2],
        stime: [i64; 2],
        maxrss: i64,
        rest: [i64; 13],
    }
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut usage = Rusage { utime: [0; 2], stime: [0; 2], maxrss: 0, rest: [0; 13] };
    // SAFETY: RUSAGE_CHILDREN (-1) with a struct laid out as on Linux x86_64/aarch64.
    unsafe { getrusage(-1, &mut usage) };
    usage.maxrss
}
