//! `drillbook attach`: files attached to a step while the drill runs in
//! another process (journaled by that process, through the drill's inbox),
//! after it ended (journaled here, reports refreshed), and refused with a
//! clear error for a step or a file that does not exist, copying nothing.

use crate::support;

use std::io::Write;
use std::path::Path;

use serde_json::Value;
use support::{Home, stderr_of, stdout_of};

const DRILL: &str = r#"
[runbook]
id = "attach-drill"
title = "Attach drill"

[[step]]
id = "restore"
title = "Restore"
kind = "command"
run = "echo restored"

[[step]]
id = "smoke"
title = "Smoke-test the site by hand"
kind = "manual"
"#;

fn events(drill: &Path) -> Vec<Value> {
    std::fs::read_to_string(drill.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn attached(drill: &Path) -> Vec<Value> {
    events(drill).into_iter().map(|e| e["event"].clone()).filter(|e| e["type"] == "file_attached").collect()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_file_attached_from_another_terminal_is_journaled_by_the_running_drill() {
    let home = Home::new();
    let runbook = home.runbook("drill.toml", DRILL);
    let (mut holder, drill, id) = home.spawn_holder(&runbook, "\"smoke\"");
    let shot = home.path().join("Screen Shot 10.14.png");
    std::fs::write(&shot, b"\x89PNG pretend screenshot").unwrap();

    let output = home
        .cmd()
        .args(["attach", &id, "smoke"])
        .arg(&shot)
        .args(["--note", "the admin after login"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout_of(&output), stderr_of(&output));
    assert!(stdout_of(&output).contains("journaled by the running drill, pid"), "{}", stdout_of(&output));
    let files = attached(&drill);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    assert_eq!(file["step"], "smoke");
    assert_eq!(file["path"], "evidence/smoke/Screen-Shot-10.14.png");
    assert_eq!(file["label"], "Screen Shot 10.14.png");
    assert_eq!(file["note"], "the admin after login");
    assert_eq!(file["origin"], "attachment");
    assert_eq!(file["sha256"], sha256(b"\x89PNG pretend screenshot"));
    assert!(std::fs::read_dir(drill.join("inbox")).unwrap().next().is_none(), "the request was taken");

    // The drill goes on and ends; its chain holds one writer's lines.
    let stdin = holder.stdin.as_mut().unwrap();
    stdin.write_all(b"y checked by hand\n").unwrap();
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    let verify = home.cmd().args(["verify", &id]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", stderr_of(&verify));
    let report: Value = serde_json::from_slice(&std::fs::read(drill.join("report.json")).unwrap()).unwrap();
    let step = report["steps"].as_array().unwrap().iter().find(|s| s["id"] == "smoke").unwrap();
    assert_eq!(step["files"][0]["check"], "ok");
    let html = std::fs::read_to_string(drill.join("report.html")).unwrap();
    assert!(html.contains("Screen Shot 10.14.png") && html.contains("matches the journal"));
}

#[test]
fn after_the_drill_ended_attach_journals_itself_and_refreshes_the_reports() {
    let home = Home::new();
    let runbook = home.runbook("drill.toml", DRILL);
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let drill = home.only_drill();
    let log = home.path().join("export.log");
    std::fs::write(&log, "exported by hand\n").unwrap();

    // No drill named: the latest one.
    let output = home.cmd().args(["attach", "smoke"]).arg(&log).arg(&log).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("as evidence/smoke/export.log") && stdout.contains("as evidence/smoke/export.2.log"),
        "{stdout}"
    );
    assert!(stdout.contains("reports in"), "{stdout}");
    assert_eq!(attached(&drill).len(), 2);
    let markdown = std::fs::read_to_string(drill.join("report.md")).unwrap();
    assert!(markdown.contains("[export.log](evidence/smoke/export.2.log)"), "{markdown}");

    // An attachment after the end moves no clock: the verdict and RTO stay.
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    let verify = home.cmd().args(["verify", &id]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", stderr_of(&verify));
    // Someone altering the evidence later shows in the next report.
    std::fs::write(drill.join("evidence/smoke/export.log"), "edited afterwards\n").unwrap();
    let report = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    let step = report["steps"].as_array().unwrap().iter().find(|s| s["id"] == "smoke").unwrap();
    assert_eq!(step["files"][0]["check"], "altered");
    assert_eq!(step["files"][1]["check"], "ok");
}

#[test]
fn a_wrong_step_or_a_missing_file_is_refused_and_nothing_is_copied() {
    let home = Home::new();
    let runbook = home.runbook("drill.toml", DRILL);
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    let file = home.path().join("shot.png");
    std::fs::write(&file, b"png").unwrap();

    let output = home.cmd().args(["attach", &id, "smoke-test"]).arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("has no step `smoke-test`; its steps: restore, smoke"),
        "{}",
        stderr_of(&output)
    );

    let output =
        home.cmd().args(["attach", &id, "smoke"]).arg(&file).arg(home.path().join("nope.png")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("nope.png"), "{}", stderr_of(&output));
    assert!(!drill.join("evidence").exists(), "the first file was not copied either");
    assert!(attached(&drill).is_empty());
}

/// In the TUI, `A` then a path: the file is copied in the background and
/// journaled by the conductor, even when the step is answered (and the drill
/// ends) right after.
#[test]
fn a_file_attached_in_the_tui_just_before_the_last_answer_is_journaled_with_the_drill() {
    use crossterm::event::KeyCode;
    use drillbook::drill::event::SessionMode;
    use drillbook::drive::Question;
    use support::frontends::{Scripted, key, load, open, through_the_tui, typed, usual_answer};

    let home = Home::new();
    let runbook = home.runbook("drill.toml", DRILL);
    let shot = home.path().join("after login.png");
    std::fs::write(&shot, vec![7u8; 3 * 1024 * 1024]).unwrap();
    let dropped = format!("'{}'", shot.display());
    let run =
        through_the_tui(
            open(home.path(), load(&runbook), &[], SessionMode::Tui, false),
            |question, app| match question {
                Question::Manual { .. } => {
                    let mut keys = vec![key(KeyCode::Char('A'))];
                    keys.extend(typed(&dropped));
                    keys.push(key(KeyCode::Enter));
                    keys.push(key(KeyCode::Enter));
                    Scripted::new(keys, "y")
                }
                _ => usual_answer(question, app),
            },
        );
    let drill = run.journal.parent().unwrap().to_path_buf();
    let kinds: Vec<String> = events(&drill).iter().map(|e| e["event"]["type"].as_str().unwrap().to_string()).collect();
    let files = attached(&drill);
    assert_eq!(files.len(), 1, "{kinds:?}");
    assert_eq!(files[0]["path"], "evidence/smoke/after-login.png");
    assert_eq!(files[0]["sha256"], sha256(&vec![7u8; 3 * 1024 * 1024]));
    let attached_at = kinds.iter().position(|k| k == "file_attached").unwrap();
    let finished_at = kinds.iter().position(|k| k == "drill_finished").unwrap();
    assert!(attached_at < finished_at, "journaled before the drill's end: {kinds:?}");
    assert!(std::fs::read_dir(drill.join("inbox")).unwrap().next().is_none(), "the inbox is empty");
}
