//! One process per drill: a second `drillbook resume` on a drill that is
//! running is refused and names the holder's pid; once the holder is killed
//! with SIGKILL, the lock it left behind (the file still names it) is taken
//! over by the next `resume`, which finishes the drill.

use crate::support;

use support::reliability::{self, Counts};
use support::{Home, stderr_of, stdout_of};

#[test]
fn a_second_process_on_the_same_drill_is_refused_with_the_holders_pid() {
    let home = Home::new();
    let runbook = home.runbook(
        "wait.toml",
        "[runbook]\nid = \"w\"\ntitle = \"W\"\n[[step]]\nid = \"first\"\nkind = \"command\"\nrun = \"echo value=kept\"\ncapture = { name = \"kept\", regex = \"^value=(.*)$\" }\n[[step]]\nid = \"wait\"\nkind = \"manual\"\n[[step]]\nid = \"after\"\nkind = \"command\"\nrun = \"echo after {{ kept }}\"\n",
    );
    // The first process holds the lock and waits for input.
    let (mut first, drill, id) = home.spawn_holder(&runbook, "\"capture_set\"");
    let mut counts = Counts::default();
    for args in [["resume", id.as_str(), "--plain"], ["resume", "--plain", "--yes"]] {
        let output = home.cmd().args(args).output().unwrap();
        counts.trials += 1;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stdout_of(&output));
        let stderr = stderr_of(&output);
        assert!(stderr.contains(&format!("pid {}", first.id())), "{args:?}: {stderr}");
        assert!(!stdout_of(&output).contains("after kept"), "{args:?}: the refused process ran nothing");
    }
    let lock_before_list = std::fs::read_to_string(drill.join("lock")).unwrap();
    let list = home.cmd().args(["list"]).output().unwrap();
    assert!(stdout_of(&list).contains("running"), "{}", stdout_of(&list));
    assert_eq!(std::fs::read_to_string(drill.join("lock")).unwrap(), lock_before_list, "list leaves the lock alone");

    // SIGKILL: the holder cannot unlock or rewrite the lock file.
    let before = home.journal();
    let stale_pid = first.id();
    first.kill().unwrap();
    first.wait().unwrap();
    counts.faults += 1;
    // `list` tells a dead holder from a live one without taking the lock (which would
    // rewrite the file and refuse a `resume` started at that moment).
    let list = home.cmd().args(["list"]).output().unwrap();
    assert!(stdout_of(&list).contains("paused"), "{}", stdout_of(&list));
    assert!(stdout_of(&list).contains("wait (interrupted)"), "its process died mid-step: {}", stdout_of(&list));
    let stale = std::fs::read_to_string(drill.join("lock")).unwrap();
    assert!(stale.contains(&format!("pid {stale_pid}")), "the stale lock names the dead holder: {stale}");

    let resumed = home.cmd().args(["resume", "--plain", "--yes"]).output().unwrap();
    counts.trials += 1;
    let after = home.journal();
    let complete_before: Vec<&str> = before.split_inclusive('\n').filter(|l| l.ends_with('\n')).collect();
    counts.lost = complete_before.iter().filter(|line| !after.contains(*line)).count() as u64;
    reliability::record("a_second_process_on_the_same_drill_is_refused_with_the_holders_pid", counts);
    assert_eq!(counts.lost, 0, "journal lines were lost: before\n{before}\nafter\n{after}");
    assert!(resumed.status.success(), "the stale lock is taken over: {}\n{}", stdout_of(&resumed), stderr_of(&resumed));
    assert!(stdout_of(&resumed).contains("  | after kept"), "{}", stdout_of(&resumed));
    let lock = std::fs::read_to_string(drill.join("lock")).unwrap();
    assert!(!lock.contains(&format!("pid {stale_pid}\n")), "the new holder wrote its own pid: {lock}");
    home.cmd().args(["verify", &id]).assert().success();
}
