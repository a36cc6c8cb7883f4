//! The real binary in a real terminal (tmux): start a drill, watch live
//! output, tick a checklist, quit, check the terminal was restored, resume
//! and see the same state. (Signals, SIGKILL and panics in the terminal are
//! in `reliability_terminal.rs`.)

use crate::support;

use crate::tmux;

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
    // Arrows stay inside the checklist; `[` and `]` move between steps.
    tmux.keys(&["[", "["]);
    let screen = tmux.wait_for("acme line 5");
    assert!(screen.contains("Log · stream"), "the log is restored from disk: {screen}");
    // Back on the checklist, cursor on its first item: tick the second and finish.
    tmux.keys(&["]"]);
    tmux.wait_for("[x] Log in");
    tmux.keys(&["Down", "Space", "Enter"]);
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
    // The plan on the start screen names the step too: wait for the drill screen.
    tmux.wait_for("running · `brief`");
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
    // Every item ticked, then the checklist is finished with Enter.
    for key in ["Space", "Space", "Space", "Space", "Enter"] {
        tmux.keys(&[key]);
    }
    let confirm = tmux.wait_for("type to confirm");
    assert!(confirm.contains("deployment/web: 2 → 0") && confirm.contains("deployment/worker: 1 → 0"), "{confirm}");
    tmux.text("acme-dr");
    tmux.keys(&["Enter"]);
    let done = tmux.wait_for("Verdict: passed");
    assert!(done.contains("✓ Scale DR to zero"), "{done}");
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("EXITED=0");
    // The sandbox plants one finding of each set-up check (an identity that can delete, a
    // replica missing two objects): optional steps that continue, so the drill passes with
    // those deviations.
    assert!(screen.contains("passed with deviations. Report: drillbook report"), "{screen}");
    let journal = home.journal();
    assert!(
        journal.contains("can delete backups: DeleteObject is allowed on acme-hosting-services/acme/"),
        "{journal}"
    );
    assert!(journal.contains("the replica acme-assets-dr misses 2 object(s) of acme-assets"), "{journal}");
    assert!(journal.contains(r#""how":"typed `acme-dr`""#), "{journal}");
    assert!(journal.contains(r#""name":"tag","value":{"value":"main-4f2a9c1""#), "{journal}");
}
