//! The rules the one conductor applies the same way whatever the front-end,
//! each a place where the plain and TUI drivers had drifted apart before
//! they shared it: when an `s3-backup` attempt starts, how long an attempt
//! lasted, what happens when the journal refuses a capture, who decides
//! about deployments that run different tags, and `--report-to` with the TUI.

use crate::support;

use crate::moto;
use crate::tmux;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use drillbook::drill::event::SessionMode;
use drillbook::drive::Question;
use serde_json::Value;
use support::frontends::{Scripted, key, load, open, through_plain, through_the_tui, usual_answer};
use support::{Home, stderr_of, stdout_of};

fn events(journal: &Path) -> Vec<Value> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .collect()
}

fn position(events: &[Value], kind: &str, step: &str) -> Option<usize> {
    events.iter().position(|e| e["type"] == kind && e["step"] == step)
}

/// A directory bucket with one backup under `acme/` and nothing under `empty/`.
fn directory_bucket(root: &Path) -> String {
    let bucket = root.join("store/acme-backups/acme");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::create_dir_all(root.join("store/acme-backups/empty")).unwrap();
    std::fs::write(bucket.join("daily-acme-202611270300.pgdump"), b"PGDMP a backup").unwrap();
    format!("file://{}", root.join("store").display())
}

const BACKUPS: &str = r#"
[runbook]
id = "backups"
title = "Backups"
[vars.store]
prompt = "Store"
[[step]]
id = "fetch"
kind = "s3-backup"
endpoint = "{{ store }}"
bucket = "acme-backups"
prefix = "acme/"
capture = "backup"
[[step]]
id = "nothing"
kind = "s3-backup"
endpoint = "{{ store }}"
bucket = "acme-backups"
prefix = "empty/"
optional = true
"#;

/// Drift 1: plain journaled the chosen object before the attempt started and
/// a failed listing with no log; the TUI after. Now the attempt starts
/// first (with its log), in both.
#[test]
fn an_s3_backup_attempt_starts_before_its_choice_and_a_failed_listing_has_a_log() {
    let home = Home::new();
    let runbook = home.runbook("backups.toml", BACKUPS);
    let vars = [("store", directory_bucket(home.path()))];
    let tui = through_the_tui(open(home.path(), load(&runbook), &vars, SessionMode::Tui, false), usual_answer);
    let (plain, plain_journal) =
        through_plain(open(home.path(), load(&runbook), &vars, SessionMode::Plain, false), Vec::new());
    assert!(plain.is_ok(), "{plain:?}");
    for journal in [&tui.journal, &plain_journal] {
        let events = events(journal);
        let started = position(&events, "step_started", "fetch").expect("fetch started");
        let chosen = position(&events, "chosen", "fetch").expect("fetch chose");
        assert!(started < chosen, "the attempt starts, then lists and chooses: {events:#?}");
        let failed_start = &events[position(&events, "step_started", "nothing").expect("nothing started")];
        let log = failed_start["log"].as_str().expect("a failed listing is an attempt with a log");
        let finished = &events[position(&events, "step_finished", "nothing").unwrap()];
        assert_eq!(finished["result"], "failed");
        let reason = finished["reason"].as_str().unwrap();
        assert!(reason.starts_with("no backup under s3://acme-backups/empty/"), "{reason}");
        let logged = std::fs::read_to_string(journal.parent().unwrap().join(log)).unwrap();
        assert!(logged.contains(reason), "the log says why: {logged}");
    }
}

/// A sandbox cluster where production's deployments run different tags.
fn disagreeing_cluster(home: &Home) -> String {
    let dir = home.path().join("cluster");
    let sandbox = |args: &[&str]| {
        let output = home.cmd_std().arg("sandbox").args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr_of(&output));
    };
    let dir_text = dir.display().to_string();
    sandbox(&["init", &dir_text]);
    sandbox(&["apply", &dir_text, "-n", "acme-production", "web", "registry.example.com/acme/web:main-1111111"]);
    sandbox(&["apply", &dir_text, "-n", "acme-production", "worker", "registry.example.com/acme/worker:main-2222222"]);
    format!("sandbox:{dir_text}")
}

const CURRENT_TAG: &str = r#"
[runbook]
id = "tags"
title = "Tags"
[vars.cluster]
prompt = "Cluster"
[[step]]
id = "pick-tag"
kind = "k8s-image-tag"
context = "{{ cluster }}"
namespace = "acme-production"
select = "current"
capture = "tag"
"#;

/// Drift 4: with `select = "current"` and deployments that disagree, plain
/// failed the step and the TUI opened a picker. Now one rule: the operator
/// is asked (no default), in either front-end; an unattended drill fails
/// the step and says why.
#[test]
fn disagreeing_deployments_are_asked_of_the_operator_and_fail_an_unattended_drill() {
    let home = Home::new();
    let runbook = home.runbook("tags.toml", CURRENT_TAG);
    let vars = [("cluster", disagreeing_cluster(&home))];
    let tui = through_the_tui(open(home.path(), load(&runbook), &vars, SessionMode::Tui, false), usual_answer);
    assert!(
        matches!(tui.questions.as_slice(), [Question::Pick { default: None, .. }]),
        "the TUI is asked, with nothing chosen for the operator: {:?}",
        tui.questions
    );
    let (plain, plain_journal) =
        through_plain(open(home.path(), load(&runbook), &vars, SessionMode::Plain, false), tui.lines);
    assert!(plain.is_ok(), "{plain:?}");
    let chosen = [&tui.journal, &plain_journal].map(|journal| {
        let events = events(journal);
        events[position(&events, "chosen", "pick-tag").expect("a tag is chosen")]["choice"]["tag"].clone()
    });
    assert_eq!(chosen[0], chosen[1], "the same first row in both");
    assert!(chosen[0] == "main-1111111" || chosen[0] == "main-2222222", "{chosen:?}");

    let output = home
        .cmd_std()
        .args(["run", "--plain", "--yes", "--var", &format!("cluster={}", vars[0].1)])
        .arg(&runbook)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("the deployments do not run one tag"), "{stdout}");
    assert!(stdout.contains("--yes cannot pick one: run without --yes to choose"), "{stdout}");
}

/// Drift 2: the TUI journaled a chosen tag (and a step that failed before
/// it ran) with 0 ms. An attempt now lasts as long as it took, the
/// operator's thinking included, in both front-ends.
#[test]
fn an_attempt_lasts_as_long_as_the_operator_took_to_choose() {
    let home = Home::new();
    let runbook = home.runbook("tags.toml", &CURRENT_TAG.replace("\"current\"", "\"choose\""));
    let vars = [("cluster", disagreeing_cluster(&home))];
    let thinking = Duration::from_millis(600);
    let tui = through_the_tui(open(home.path(), load(&runbook), &vars, SessionMode::Tui, false), |_, _| Scripted {
        keys: vec![key(ratatui::crossterm::event::KeyCode::Enter)],
        lines: vec!["1".into()],
        pause: thinking,
    });
    // Plain: the answer arrives on standard input the same pause after the question.
    let out_path = home.path().join("plain.out");
    let mut child = home
        .cmd_std()
        .args(["run", "--plain", "--var", &format!("cluster={}", vars[0].1)])
        .arg(&runbook)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    support::wait_for("the tag question", Duration::from_secs(30), || {
        std::fs::read_to_string(&out_path).unwrap().contains("Which tag?").then_some(())
    });
    std::thread::sleep(thinking);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "{}", std::fs::read_to_string(&out_path).unwrap());
    let plain_journal = home.drills().into_iter().map(|d| d.join("journal.jsonl")).find(|j| *j != tui.journal).unwrap();
    for journal in [&tui.journal, &plain_journal] {
        let events = events(journal);
        let finished = &events[position(&events, "step_finished", "pick-tag").unwrap()];
        let took = finished["duration_ms"].as_u64().unwrap();
        assert!(took >= 600, "{took} ms in {}", journal.display());
    }
}

const CAPTURE: &str = r#"
[runbook]
id = "capture"
title = "Capture"
[[step]]
id = "count"
kind = "command"
run = "echo rows=42"
capture = { name = "rows", regex = "^rows=(\\d+)$" }
[[step]]
id = "after"
kind = "command"
run = "echo after {{ rows }}"
"#;

/// Drift 3: the TUI ignored a journal that refused a capture and then
/// journaled the step as succeeded. Now the drill pauses, in both
/// front-ends, and the step is not recorded as done.
#[test]
fn a_capture_the_journal_refuses_pauses_the_drill_and_nothing_is_reported_done() {
    // Debug builds' journal refuses `capture_set` events when asked to.
    // SAFETY: set before this test starts threads of its own.
    unsafe { std::env::set_var("DRILLBOOK_DEBUG_FAIL_JOURNAL", "capture_set") };
    let home = Home::new();
    let runbook = home.runbook("capture.toml", CAPTURE);
    let tui = through_the_tui(open(home.path(), load(&runbook), &[], SessionMode::Tui, false), usual_answer);
    let ending = tui.ending.expect("the conductor ended");
    assert_eq!(ending.code, 2);
    assert!(ending.error.as_deref().unwrap().contains("No space left on device"), "{ending:?}");

    let output = home
        .cmd_std()
        .env("DRILLBOOK_DEBUG_FAIL_JOURNAL", "capture_set")
        .args(["run", "--plain", "--yes"])
        .arg(&runbook)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stdout_of(&output));
    assert!(stderr_of(&output).contains("The drill is paused"), "{}", stderr_of(&output));
    for drill in home.drills() {
        let events = events(&drill.join("journal.jsonl"));
        assert!(position(&events, "step_finished", "count").is_none(), "not reported done: {events:#?}");
        assert!(position(&events, "step_started", "after").is_none(), "nothing went on: {events:#?}");
        assert!(events.iter().all(|e| e["type"] != "drill_finished"), "{events:#?}");
    }
}

const SHORT: &str = r#"
[runbook]
id = "short"
title = "Short drill"
rto_target = "1h"
[[step]]
id = "brief"
title = "Brief the team"
kind = "manual"
[[step]]
id = "restore"
title = "Restore"
kind = "command"
run = "echo restored"
confirm = true
[[step]]
id = "smoke"
title = "Smoke test"
kind = "checklist"
items = ["Log in", "Upload images"]
"#;

/// Drift 5: `--report-to` forced plain mode because only the plain driver
/// could upload. Now the conductor uploads, so a drill run in the TUI (in a
/// real terminal) uploads its reports, and its journal is the one the plain
/// front-end writes for the same answers.
#[test]
fn the_tui_in_a_terminal_uploads_its_reports_and_journals_what_plain_does() {
    let moto = moto::Moto::start();
    moto.create_bucket("drill-reports");
    let home = Home::new();
    let runbook = home.runbook("short.toml", SHORT);
    let tmux = tmux::Tmux::new("report-to");
    let args = format!("run {} --report-to s3://drill-reports/short/", runbook.display());
    tmux.start(&tmux::drillbook_in_shell_with(home.path(), &moto.env(), &args));
    tmux.wait_for("New drill");
    assert!(tmux.alternate_screen(), "the TUI, not plain mode");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Do this, then press enter");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Run this step?");
    tmux.keys(&["y"]);
    tmux.wait_for("tick / untick");
    tmux.keys(&["Space", "Space", "Enter"]);
    tmux.wait_for("uploaded s3://drill-reports/short/");
    tmux.keys(&["q"]);
    tmux.wait_for("EXITED=0");
    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().into_owned();
    for name in ["report.md", "report.html", "report.json", "report.junit.xml"] {
        let response = moto.request("GET", &format!("/drill-reports/short/{id}/{name}"), &[], b"");
        assert_eq!(response.status, 200, "{name} uploaded");
    }
    let tui_journal = drill.join("journal.jsonl");

    let plain = with_input(home.cmd_std().args(["run", "--plain"]).arg(&runbook), &["y", "y", "y", "y"]);
    assert!(plain.status.success(), "{}", stdout_of(&plain));
    let plain_journal = home.drills().into_iter().map(|d| d.join("journal.jsonl")).find(|j| *j != tui_journal).unwrap();
    let (tui, plain) = (support::frontends::normalized(&tui_journal), support::frontends::normalized(&plain_journal));
    assert_eq!(support::frontends::kinds(&tui), support::frontends::kinds(&plain));
    assert_eq!(tui, plain);
}

/// Runs a command with `lines` on its standard input.
fn with_input(command: &mut std::process::Command, lines: &[&str]) -> std::process::Output {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}
