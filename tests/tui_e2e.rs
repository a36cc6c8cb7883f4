//! The real binary in a real terminal (tmux): start a drill, watch live
//! output, tick a checklist, quit, check the terminal was restored, resume
//! and see the same state; SIGKILL mid-step and see it interrupted.

mod support;

use std::process::Command;

#[path = "support/tmux.rs"]
mod tmux;

use support::{Home, fixture};
use tmux::{Tmux, drillbook_in_shell};

#[test]
fn a_drill_in_the_terminal_quit_and_resume() {
    let home = Home::new();
    let tmux = Tmux::new("walk");
    tmux.start(&drillbook_in_shell(home.path(), &format!("run {}", fixture("tui.toml").display())));
    tmux.wait_for("New drill");
    assert!(tmux.alternate_screen());
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("acme line 5");
    assert!(screen.contains("Stream some output"), "{screen}");
    tmux.wait_for("space ticks");
    tmux.keys(&["Space"]);
    tmux.keys(&["n"]);
    tmux.text("all good");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("[x] Log in");
    assert!(screen.contains("[ ] Upload images"), "{screen}");
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("EXITED=0");
    assert!(screen.contains("paused. Continue with: drillbook resume"), "{screen}");
    assert!(!tmux.alternate_screen(), "the terminal left the alternate screen");

    // Resume: the same state (first step done, one item ticked).
    tmux.run(&["kill-server"]);
    let tmux = Tmux::new("walk-resume");
    tmux.start(&drillbook_in_shell(home.path(), "resume"));
    let screen = tmux.wait_for("[x] Log in");
    assert!(screen.contains("✓ Stream some output"), "{screen}");
    tmux.keys(&["Up", "Up"]);
    let screen = tmux.wait_for("acme line 5");
    assert!(screen.contains("Log · stream"), "the log is restored from disk: {screen}");
    tmux.keys(&["Down", "Down"]);
    tmux.keys(&["Space"]);
    tmux.wait_for("restoring");
    tmux.keys(&["q"]);
    tmux.wait_for("Quit?");
    tmux.keys(&["y"]);
    tmux.wait_for("EXITED=0");
    let journal = home.journal();
    assert!(
        journal.contains(r#""type":"step_interrupted","step":"long","attempt":1,"reason":"quit by the operator""#),
        "{journal}"
    );
    assert!(journal.contains(r#""mode":"tui","resumed":true"#), "{journal}");
    assert!(journal.contains(r#""text":"Upload images: all good""#), "{journal}");
}

/// Runs the fixture drill up to its long step; returns drillbook's pid.
fn start_long_step(tmux: &Tmux, home: &Home) -> String {
    tmux.start(&drillbook_in_shell(home.path(), &format!("run {}", fixture("tui.toml").display())));
    tmux.wait_for("New drill");
    tmux.keys(&["Enter"]);
    tmux.wait_for("space ticks");
    tmux.keys(&["Space", "Space"]);
    tmux.wait_for("restoring");
    let lock = std::fs::read_to_string(home.only_drill().join("lock")).unwrap();
    lock.lines().next().unwrap().trim_start_matches("pid ").trim().to_string()
}

#[test]
fn sigkill_mid_step_then_resume_shows_it_interrupted() {
    let home = Home::new();
    let tmux = Tmux::new("kill");
    let pid = start_long_step(&tmux, &home);
    Command::new("kill").args(["-9", &pid]).status().unwrap();
    // The TUI died in raw mode: the shell's lines staircase and may wrap
    // ("EXIT" / "ED=137") depending on how long the binary's path is.
    tmux.wait_for("=137");
    // reset: a SIGKILLed TUI cannot restore the terminal itself.
    tmux.run(&["kill-server"]);
    let tmux = Tmux::new("kill-resume");
    tmux.start(&drillbook_in_shell(home.path(), "resume"));
    let screen = tmux.wait_for("Interrupted step");
    assert!(screen.contains("A long restore (long)"), "{screen}");
    tmux.keys(&["s"]);
    tmux.text("restored by hand");
    tmux.keys(&["Enter"]);
    tmux.wait_for("drill completed");
    tmux.keys(&["q"]);
    tmux.wait_for("EXITED=0");
    assert!(home.journal().contains(r#""reason":"restored by hand""#));
}

#[test]
fn sigterm_and_sighup_restore_the_terminal_and_keep_the_step_resumable() {
    for (signal, name) in [("-TERM", "SIGTERM"), ("-HUP", "SIGHUP")] {
        let home = Home::new();
        let tmux = Tmux::new(&format!("signal{signal}"));
        let pid = start_long_step(&tmux, &home);
        Command::new("kill").args([signal, &pid]).status().unwrap();
        let screen = tmux.wait_for("EXITED=130");
        assert!(screen.contains("paused. Continue with: drillbook resume"), "{name}: {screen}");
        assert!(!tmux.alternate_screen(), "{name}: the terminal left the alternate screen");
        let journal = home.journal();
        assert!(
            journal.contains(&format!(
                r#""type":"step_interrupted","step":"long","attempt":1,"reason":"stopped by {name}""#
            )),
            "{journal}"
        );
    }
}

/// The bundled demo (the quarterly drill in training mode) in a terminal
/// from start to finish: every step kind, typed confirmations, the live
/// pod table, and the typed scale-down.
#[test]
fn the_demo_drill_in_the_terminal_from_start_to_finish() {
    let home = Home::new();
    let tmux = Tmux::new("demo");
    tmux.start(&drillbook_in_shell(home.path(), "demo"));
    let start = tmux.wait_for("New drill");
    assert!(start.contains("acme"), "the demo's project is filled in: {start}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Brief the participants");
    tmux.keys(&["Enter"]);
    let restore = tmux.wait_for("type to confirm");
    assert!(restore.contains("inv dr deploy.db-restore"), "the real command is shown: {restore}");
    assert!(restore.contains("training: simulated, not run"), "{restore}");
    tmux.text("restore");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Run this step?");
    tmux.keys(&["y"]);
    let table = tmux.wait_for("READY  STATUS");
    assert!(table.contains("namespace acme-dr"), "the wait names its target: {table}");
    tmux.wait_for("space ticks");
    // Each tick moves to the next item; the last one finishes the checklist.
    for key in ["Space", "Space", "Space", "Space"] {
        tmux.keys(&[key]);
    }
    let confirm = tmux.wait_for("type to confirm");
    assert!(confirm.contains("deployment/web: 2 → 0") && confirm.contains("deployment/worker: 1 → 0"), "{confirm}");
    tmux.text("acme-dr");
    tmux.keys(&["Enter"]);
    let done = tmux.wait_for("drill completed");
    assert!(done.contains("✓ Scale DR to zero"), "{done}");
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("EXITED=0");
    assert!(screen.contains("completed. Report: drillbook report"), "{screen}");
    let journal = home.journal();
    assert!(journal.contains(r#""how":"typed `acme-dr`""#), "{journal}");
    assert!(journal.contains(r#""name":"tag","value":{"value":"main-4f2a9c1""#), "{journal}");
}
