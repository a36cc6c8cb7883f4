//! The real binary in a real terminal (tmux): start a drill, watch live
//! output, tick a checklist, quit, check the terminal was restored, resume
//! and see the same state; SIGKILL mid-step and see it interrupted.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{Home, fixture};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Self {
        let tmux = Command::new("tmux").arg("-V").output();
        assert!(
            tmux.is_ok_and(|o| o.status.success()),
            "these tests need tmux: install it with `apt-get install tmux` (./scripts/test does this when run as root)"
        );
        Tmux { socket: format!("drillbook-test-{name}-{}", std::process::id()) }
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn start(&self, command: &str) {
        self.run(&["new-session", "-d", "-s", "main", "-x", "120", "-y", "40", command]);
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.run(&["send-keys", "-t", "main", key]);
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
        std::thread::sleep(Duration::from_millis(120));
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    fn wait_for(&self, what: &str) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for {what:?}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alternate_screen(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "main", "#{alternate_on}"]).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

fn shell_command(home: &Home, args: &str) -> String {
    format!(
        "env -u CI DRILLBOOK_HOME={} TERM=xterm-256color {} {args}; echo EXITED=$?; sleep 600",
        home.path().display(),
        assert_cmd::cargo::cargo_bin("drillbook").display()
    )
}

#[test]
fn a_drill_in_the_terminal_quit_and_resume() {
    let home = Home::new();
    let tmux = Tmux::new("walk");
    tmux.start(&shell_command(&home, &format!("run {}", fixture("tui.toml").display())));
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
    tmux.start(&shell_command(&home, "resume"));
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
    tmux.start(&shell_command(home, &format!("run {}", fixture("tui.toml").display())));
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
    tmux.wait_for("EXITED=137");
    // reset: a SIGKILLed TUI cannot restore the terminal itself.
    tmux.run(&["kill-server"]);
    let tmux = Tmux::new("kill-resume");
    tmux.start(&shell_command(&home, "resume"));
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
    tmux.start(&shell_command(&home, "demo"));
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
