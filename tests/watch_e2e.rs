//! `drillbook watch`: a drill driven in one terminal (tmux server) and
//! watched from another on the same DRILLBOOK_HOME. The watcher follows
//! the journal and the logs live, refuses every key that would change the
//! drill, and never writes into the drill directory.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::tmux;

use support::{Home, fixture, stderr_of};
use tmux::{Tmux, drillbook_in_shell};

const READ_ONLY: &str = "read-only: this drill is driven elsewhere";

/// Every file under a drill directory with its size and modification time.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, SystemTime)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            out.insert(path.clone(), (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn events(journal: &str) -> usize {
    journal.lines().count()
}

#[test]
fn a_drill_driven_in_one_terminal_and_watched_in_another() {
    let home = Home::new();
    let gate = home.path().join("gate");
    let driver = Tmux::new("watch-driver");
    driver.start(&drillbook_in_shell(
        home.path(),
        &format!(
            "run {} --var gate={} --participant 'Alice Martin:incident commander'",
            fixture("watch.toml").display(),
            gate.display()
        ),
    ));
    let start = driver.wait_for("New drill");
    assert!(start.contains("Alice Martin:incident commander"), "participants are prefilled: {start}");
    // The participants line follows the one variable: add someone there.
    driver.keys(&["Tab"]);
    driver.text(", Bob:scribe");
    driver.keys(&["Enter"]);
    driver.wait_for("tick 3");

    let watcher = Tmux::new("watch-watcher");
    watcher.start(&drillbook_in_shell(home.path(), "watch"));
    let screen = watcher.wait_for("WATCHING (read-only)");
    let id = home.only_drill().file_name().unwrap().to_string_lossy().into_owned();
    // At 120 columns the id is shortened to a prefix `watch` and `resume` take.
    assert!(
        screen.contains(&format!("WATCHING (read-only) {}…", &id[..13])),
        "the status bar names the drill: {screen}"
    );
    let screen = watcher.wait_for("tick 3");
    assert!(!screen.contains("gate passed"), "{screen}");
    watcher.wait_for("driver running");

    // The step finishes in the driver: the watcher sees the new log line and the step done.
    std::fs::write(&gate, "").unwrap();
    // Like the driver, the view moves on to the next running step...
    let screen = watcher.wait_for("[ ] Log in");
    assert!(screen.contains("✓ Stream until the gate opens"), "{screen}");
    // ...and the finished step's log got the line written meanwhile.
    watcher.keys(&["["]);
    let screen = watcher.wait_for("gate passed");
    assert!(screen.contains("tick 3"), "{screen}");
    watcher.keys(&["]"]);
    watcher.wait_for("[ ] Log in");

    // Keys that would change the drill change nothing in the watcher.
    driver.wait_for("space ticks");
    let before = home.journal();
    watcher.keys(&["Space", "Enter", "n", "a"]);
    let screen = watcher.wait_for(READ_ONLY);
    assert!(screen.contains("[ ] Log in"), "{screen}");
    std::thread::sleep(Duration::from_millis(600));
    let after = home.journal();
    assert_eq!(before, after, "the watcher journaled nothing ({} events)", events(&after));
    assert!(driver.screen().contains("[ ] Log in"), "the driver still owns the drill");

    // The driver ticks the checklist; the drill completes; the watcher says so.
    driver.keys(&["Space", "Enter"]);
    driver.wait_for("Verdict: passed");
    let screen = watcher.wait_for("drill passed");
    assert!(screen.contains("WATCHING (read-only)"), "{screen}");
    assert!(screen.contains("✓ Wrap up"), "{screen}");
    driver.keys(&["q"]);
    driver.wait_for("EXITED=0");
    watcher.wait_for("driver not running");
    watcher.keys(&["q"]);
    let screen = watcher.wait_for("EXITED=0");
    assert!(screen.contains(&format!("Stopped watching drill {id} (completed)")), "{screen}");
    assert!(!watcher.alternate_screen(), "the terminal left the alternate screen");

    let journal = home.journal();
    assert!(
        journal.contains(r#""type":"participant_added","name":"Alice Martin","role":"incident commander""#),
        "{journal}"
    );
    assert!(journal.contains(r#""type":"participant_added","name":"Bob","role":"scribe""#), "{journal}");
    assert_eq!(journal.matches(r#""type":"session_started""#).count(), 1, "only the driver's session: {journal}");
}

#[test]
fn watching_a_finished_drill_writes_nothing_into_its_directory() {
    let home = Home::new();
    let runbook = home.runbook(
        "done.toml",
        "[runbook]\nid = \"done\"\ntitle = \"Done\"\n[[step]]\nid = \"hello\"\ntitle = \"Say hello\"\nkind = \"command\"\nrun = \"echo hello from the log\"\n",
    );
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().into_owned();
    let before = listing(&drill);
    // Listed times must be able to change within the test.
    std::thread::sleep(Duration::from_millis(50));

    let watcher = Tmux::new("watch-finished");
    watcher.start(&drillbook_in_shell(home.path(), &format!("watch {}", &id[..13])));
    let screen = watcher.wait_for("drill passed");
    assert!(screen.contains("WATCHING (read-only)"), "{screen}");
    watcher.wait_for("hello from the log");
    watcher.wait_for("driver not running");
    watcher.keys(&["Space", "Enter", "d", "Up", "Tab", "End"]);
    watcher.wait_for(READ_ONLY);
    watcher.keys(&["q"]);
    watcher.wait_for("EXITED=0");
    assert_eq!(listing(&drill), before, "nothing in the drill directory was created or changed");
}

#[test]
fn watching_an_unknown_drill_is_a_clear_error() {
    let home = Home::new();
    let output = home.cmd().args(["watch", "nosuchdrill"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("no drill `nosuchdrill`"), "{stderr}");
    let output = home.cmd().arg("watch").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("no unfinished drill to watch"), "{}", stderr_of(&output));
}

#[test]
fn plain_watch_prints_the_events_and_ends_with_the_drill() {
    let home = Home::new();
    let runbook = home.runbook(
        "done.toml",
        "[runbook]\nid = \"done\"\ntitle = \"Done\"\n[[step]]\nid = \"hello\"\nkind = \"command\"\nrun = \"echo hello\"\n",
    );
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let drill = home.only_drill();
    let before = listing(&drill);
    let output = home.cmd().args(["watch", "--plain"]).arg(drill.file_name().unwrap()).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = support::stdout_of(&output);
    assert!(stdout.contains("drill_started"), "{stdout}");
    assert!(stdout.contains("step_finished step=hello attempt=1 result=succeeded"), "{stdout}");
    assert!(stdout.trim_end().ends_with("drill passed"), "{stdout}");
    assert_eq!(listing(&drill), before, "nothing in the drill directory was created or changed");
}
