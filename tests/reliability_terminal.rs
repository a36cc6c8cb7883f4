//! The TUI in a real terminal (tmux) stopped the hard ways: SIGTERM and
//! SIGHUP pause the drill and restore the terminal; a forced panic (the
//! debug-only `DRILLBOOK_DEBUG_PANIC_AFTER_MS` hook) restores it too; SIGKILL
//! cannot restore it, but the interrupted step is offered on resume.
//! "Restored" means: no alternate screen, cursor visible, no mouse
//! reporting, and `stty` in the same terminal shows `echo` afterwards.

use crate::support;

use std::process::Command;

use crate::tmux;

use support::reliability::{self, Counts};
use support::{Home, fixture};
use tmux::{Tmux, drillbook_in_shell, drillbook_in_shell_with};

/// Checks the terminal drillbook left behind; what is not restored.
fn broken_terminal(tmux: &Tmux, what: &str) -> Vec<String> {
    let mut broken = Vec::new();
    if tmux.alternate_screen() {
        broken.push(format!("{what}: still on the alternate screen"));
    }
    if !tmux.cursor_visible() {
        broken.push(format!("{what}: cursor hidden"));
    }
    if tmux.mouse_reporting() {
        broken.push(format!("{what}: mouse reporting still on"));
    }
    if !tmux.echo_on() {
        broken.push(format!("{what}: echo off (raw mode left on)"));
    }
    broken
}

/// Runs the fixture drill up to its long step; returns drillbook's pid.
fn start_long_step(tmux: &Tmux, home: &Home) -> String {
    tmux.start(&drillbook_in_shell(home.path(), &format!("run {}", fixture("tui.toml").display())));
    tmux.wait_for("New drill");
    tmux.keys(&["Enter"]);
    tmux.wait_for("space ticks");
    tmux.keys(&["Space", "Space", "Enter"]);
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
    tmux.wait_for("EXITED=137");
    // reset: a SIGKILLed TUI cannot restore the terminal itself.
    tmux.run(&["kill-server"]);
    let tmux = Tmux::new("kill-resume");
    tmux.start(&drillbook_in_shell(home.path(), "resume"));
    let screen = tmux.wait_for("Interrupted step");
    assert!(screen.contains("A long restore (long)"), "{screen}");
    tmux.keys(&["s"]);
    tmux.text("restored by hand");
    tmux.keys(&["Enter"]);
    // A required step skipped: the drill failed, and says so.
    tmux.wait_for("Verdict: failed");
    tmux.keys(&["q"]);
    tmux.wait_for("EXITED=1");
    assert!(home.journal().contains(r#""reason":"restored by hand""#));
    let broken = broken_terminal(&tmux, "after the resumed drill");
    assert!(broken.is_empty(), "{broken:?}");
    reliability::record(
        "sigkill_mid_step_then_resume_shows_it_interrupted",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
}

#[test]
fn sigterm_and_sighup_restore_the_terminal_and_keep_the_step_resumable() {
    let mut counts = Counts::default();
    for (signal, name) in [("-TERM", "SIGTERM"), ("-HUP", "SIGHUP")] {
        let home = Home::new();
        let tmux = Tmux::new(&format!("signal{signal}"));
        let pid = start_long_step(&tmux, &home);
        Command::new("kill").args([signal, &pid]).status().unwrap();
        counts.trials += 1;
        counts.faults += 1;
        let screen = tmux.wait_for("EXITED=130");
        assert!(screen.contains("paused. Continue with: drillbook resume"), "{name}: {screen}");
        let broken = broken_terminal(&tmux, name);
        assert!(broken.is_empty(), "{broken:?}\n{screen}");
        let journal = home.journal();
        assert!(
            journal.contains(&format!(
                r#""type":"step_interrupted","step":"long","attempt":1,"reason":"stopped by {name}""#
            )),
            "{journal}"
        );
    }
    reliability::record("sigterm_and_sighup_restore_the_terminal_and_keep_the_step_resumable", counts);
}

#[test]
fn a_panic_restores_the_terminal() {
    let home = Home::new();
    let tmux = Tmux::new("panic");
    let env = [("DRILLBOOK_DEBUG_PANIC_AFTER_MS".to_string(), "3000".to_string())];
    tmux.start(&drillbook_in_shell_with(home.path(), &env, &format!("run {}", fixture("tui.toml").display())));
    tmux.wait_for("New drill");
    assert!(tmux.alternate_screen(), "the TUI is on the alternate screen before the panic");
    tmux.wait_for("EXITED=101");
    let screen = tmux.history();
    assert!(screen.contains("forced panic for testing"), "the panic is reported: {screen}");
    let broken = broken_terminal(&tmux, "panic");
    reliability::record("a_panic_restores_the_terminal", Counts { trials: 1, faults: 1, ..Counts::default() });
    assert!(broken.is_empty(), "{broken:?}\n{screen}");
}
