//! Command faults through the real binary in plain mode: a command that
//! ignores SIGTERM is killed with its whole process group when the drill is
//! stopped; invalid UTF-8 and a 1 MiB line are logged byte for byte and the
//! drill carries on.

use crate::process;
use crate::support;

use std::time::{Duration, Instant};

use support::reliability::{self, Counts};
use support::{Home, stderr_of, stdout_of, wait_for};

/// How long the drill or its processes may take to get where a test waits for them.
const PATIENCE: Duration = Duration::from_secs(10);

#[test]
fn a_command_that_ignores_sigterm_is_killed_with_its_group_when_the_drill_stops() {
    let home = Home::new();
    let runbook = home.runbook(
        "stubborn.toml",
        "[runbook]\nid = \"stubborn\"\ntitle = \"Stubborn\"\n[[step]]\nid = \"stubborn\"\nkind = \"command\"\nrun = \"trap '' TERM; sleep 1000 & echo $! > {{ drill.dir }}/grandchild; echo started; sleep 1000; wait\"\n",
    );
    let child = home.spawn_run(&runbook);
    let pid_file = wait_for("the grandchild's pid file", PATIENCE, || {
        home.drills().first().map(|d| d.join("grandchild")).filter(|p| p.exists())
    });
    let grandchild: i32 = wait_for("the grandchild's pid", PATIENCE, || {
        std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse().ok())
    });
    assert!(!process::gone(grandchild), "the TERM-immune grandchild runs");
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{}", stderr_of(&output));
    assert!(started.elapsed() < Duration::from_secs(60), "the stop did not wait for the command for ever");
    let gone = wait_for("the grandchild to be gone", PATIENCE, || Some(process::gone(grandchild)).filter(|gone| *gone));
    assert!(gone, "the TERM-immune grandchild {grandchild} survived");
    let journal = home.journal();
    assert!(journal.contains("\"reason\":\"stopped by SIGTERM\""), "{journal}");
    reliability::record(
        "a_command_that_ignores_sigterm_is_killed_with_its_group_when_the_drill_stops",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
}

#[test]
fn invalid_utf8_and_very_long_lines_are_logged_whole_and_the_drill_carries_on() {
    let home = Home::new();
    let runbook = home.runbook(
        "noisy.toml",
        r#"[runbook]
id = "noisy"
title = "Noisy"
[[step]]
id = "noisy"
kind = "command"
run = "printf '\\377\\376abc\\n'; head -c 1048576 /dev/zero | tr '\\0' x; echo; printf 'value=\\303(ok\\n'; echo value=ok"
capture = { name = "value", regex = "^value=(ok)$" }
[[step]]
id = "after"
kind = "command"
run = "echo after {{ value }}"
"#,
    );
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{}\n{}", &stdout[..stdout.len().min(4000)], stderr_of(&output));
    assert!(
        stdout.contains("  | after ok"),
        "the capture after the noise: {}",
        &stdout[stdout.len().saturating_sub(2000)..]
    );
    let drill = home.only_drill();
    let log = std::fs::read(drill.join("logs/noisy.1.log")).unwrap();
    assert!(log.starts_with(b"\xff\xfeabc\n"), "invalid UTF-8 is logged raw");
    assert_eq!(log.iter().filter(|&&b| b == b'x').count(), 1_048_576, "the long line is logged whole");
    assert!(log.windows(8).any(|w| w == b"value=\xc3("), "{:?}", String::from_utf8_lossy(&log[log.len() - 40..]));
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    home.cmd().args(["verify", &id]).assert().success();
    for format in ["md", "html", "json", "junit"] {
        home.cmd().args(["report", &id, "--format", format]).assert().success();
    }
    reliability::record(
        "invalid_utf8_and_very_long_lines_are_logged_whole_and_the_drill_carries_on",
        Counts { trials: 1, faults: 2, ..Counts::default() },
    );
}
