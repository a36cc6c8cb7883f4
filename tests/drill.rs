//! Drills run end to end through the real binary in plain mode: run,
//! pause, resume, report, list, verify, torn journals. (Secrets, injection,
//! locks and storage faults are in the reliability suite, `reliability_*.rs`.)

use crate::support;

use std::io::Write;
use std::process::Stdio;

use support::{Home, fixture, stderr_of, stdout_of};

const SIMPLE: &str = r#"
[runbook]
id = "simple"
title = "Simple drill"
rto_target = "1h"

[vars.project]
default = "acme"

[[step]]
id = "hello"
kind = "command"
run = "echo hello {{ project }}; echo oops >&2"
capture = { name = "greeting", regex = "^hello (.*)$" }

[[step]]
id = "use-it"
kind = "command"
run = "echo got {{ greeting }}"

[[step]]
id = "look"
kind = "manual"

[[step]]
id = "tick"
kind = "checklist"
items = ["one", "two"]
"#;

#[test]
fn a_headless_drill_runs_and_reports() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("  | hello acme"), "{stdout}");
    assert!(stdout.contains("  ! oops"), "stderr is marked apart: {stdout}");
    assert!(stdout.contains("captured greeting = acme"), "{stdout}");
    assert!(stdout.contains("  | got acme"), "{stdout}");
    // Nobody did the manual step and the checklist: the drill passed with
    // those deviations, and no recovery time is claimed.
    assert!(stdout.contains("Drill passed with deviations"), "{stdout}");
    assert!(stdout.contains("`look` not performed (unattended)"), "{stdout}");

    let drill = home.only_drill();
    assert!(drill.join("runbook.toml").is_file());
    let combined = std::fs::read_to_string(drill.join("logs/hello.1.log")).unwrap();
    assert!(
        combined.lines().count() == 2 && combined.contains("hello acme\n") && combined.contains("oops\n"),
        "{combined}"
    );
    assert_eq!(std::fs::read_to_string(drill.join("logs/hello.1.stderr.log")).unwrap(), "oops\n");

    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    let report = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["outcome"], "passed with deviations");
    assert_eq!(report["rto"]["verdict"], "not achieved");
    assert_eq!(report["findings"][0]["kind"], "not performed (unattended)");
    assert_eq!(report["steps"][0]["captures"]["greeting"]["value"], "acme");
    assert_eq!(report["steps"][0]["attempts"][0]["exit_code"], 0);
    assert_eq!(report["steps"][2]["status"], "skipped");
    assert_eq!(report["vars"]["project"], "acme");

    let markdown = home.cmd().args(["report", &id[..8]]).output().unwrap();
    let markdown = stdout_of(&markdown);
    assert!(markdown.contains("# Drill report: Simple drill"), "{markdown}");
    assert!(markdown.contains("> **Verdict: PASSED WITH DEVIATIONS**"), "{markdown}");
    assert!(markdown.contains("| RTO | **not achieved**: `look` was not performed (unattended)"), "{markdown}");
    assert!(markdown.contains("captured `greeting` = `acme`"), "{markdown}");

    home.cmd().args(["verify", &id]).assert().success();
    let list = home.cmd().args(["list", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["status"], "passed with deviations");
}

#[test]
fn a_failing_step_fails_the_drill_and_teardown_still_runs() {
    let home = Home::new();
    let runbook = home.runbook(
        "fail.toml",
        r#"[runbook]
id = "fail"
title = "Fail"
[[step]]
id = "boom"
kind = "command"
run = "echo about to fail; exit 3"
[[step]]
id = "never"
kind = "command"
run = "echo should not run"
[[step]]
id = "teardown"
kind = "command"
always = true
run = "echo tearing down"
"#,
    );
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("failed after") && stdout.contains("exit code 3 (expected 0)"), "{stdout}");
    assert!(!stdout.contains("should not run"), "{stdout}");
    assert!(stdout.contains("tearing down"), "{stdout}");
    assert!(stdout.contains("Drill failed"), "{stdout}");
}

#[test]
fn missing_values_and_bad_input_get_one_line_errors() {
    let home = Home::new();
    let runbook = home.runbook("v.toml", "[runbook]\nid = \"v\"\ntitle = \"V\"\n[vars.project]\nprompt = \"Project\"\n[[step]]\nid = \"a\"\nkind = \"command\"\nrun = \"echo {{ project }}\"\n");
    let output = home.cmd_std().args(["run", "--plain"]).arg(&runbook).stdin(Stdio::null()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("variable `project` has no value: pass --var project=VALUE"),
        "{}",
        stderr_of(&output)
    );
    assert!(home.drills().is_empty(), "no drill is created before its variables are known");

    let output = home.cmd().args(["run", "--plain", "--var", "projet=x"]).arg(&runbook).output().unwrap();
    assert!(stderr_of(&output).contains("did you mean `project`?"), "{}", stderr_of(&output));

    let output = home.cmd().args(["run", "--plain", "/no/such/runbook.toml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("cannot read runbook /no/such/runbook.toml"), "{}", stderr_of(&output));

    let output = home.cmd().args(["resume", "0000dead"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("no drill `0000dead`"), "{}", stderr_of(&output));

    let output = home.cmd().args(["report", "nope"]).output().unwrap();
    assert!(stderr_of(&output).contains("no drill `nope`"));
}

/// Runs `drillbook` with the given stdin lines, closing stdin afterwards.
fn run_with_input(home: &Home, args: &[&str], input: &str) -> std::process::Output {
    let mut child =
        home.cmd_std().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn answers_ticks_and_notes_survive_a_pause_and_resume() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    // Answer the manual step with a note, then tick one item and run out of input.
    let first = run_with_input(
        &home,
        &["run", "--plain", runbook.to_str().unwrap()],
        "y looked at the dashboards\ny first is fine\n",
    );
    assert_eq!(first.status.code(), Some(2), "{}", stdout_of(&first));
    assert!(
        stderr_of(&first).contains("needs an answer but standard input is closed; the drill is paused"),
        "{}",
        stderr_of(&first)
    );

    // The runbook file changes meanwhile: the resume says so and keeps the snapshot.
    std::fs::write(&runbook, SIMPLE.replace("echo got", "echo now")).unwrap();
    let second = run_with_input(&home, &["resume", "--plain"], "y second done\n");
    let stdout = stdout_of(&second);
    assert!(second.status.success(), "{stdout}\n{}", stderr_of(&second));
    assert!(stdout.contains("changed since this drill started (changed: use-it)"), "{stdout}");
    assert!(stdout.contains("[x] one"), "the tick was kept: {stdout}");
    assert!(!stdout.contains("| got acme") && !stdout.contains("| now acme"), "done steps do not run again: {stdout}");

    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    let report = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    // Notes and an interruption (the pause) are deviations, not failures.
    assert_eq!(report["outcome"], "passed with deviations");
    let notes: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["notes"].as_array().unwrap())
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["looked at the dashboards", "one: first is fine", "two: second done"]);
    assert_eq!(report["steps"][3]["checklist"][0]["ticked"], true);
    assert_eq!(report["steps"][3]["checklist"][1]["ticked"], true);
    assert_eq!(report["sessions"].as_array().unwrap().len(), 2);
}

#[test]
fn a_torn_last_journal_line_is_reported_and_ignored() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    let first = run_with_input(&home, &["run", "--plain", runbook.to_str().unwrap()], "");
    assert_eq!(first.status.code(), Some(2));
    let journal = home.only_drill().join("journal.jsonl");
    let mut file = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
    file.write_all(br#"{"seq":99,"ts":"2026-11-27T00:00:00Z","prev":"ab"#).unwrap();
    drop(file);
    let second = run_with_input(&home, &["resume", "--plain"], "y\ny\ny\n");
    let stdout = stdout_of(&second);
    assert!(second.status.success(), "{stdout}\n{}", stderr_of(&second));
    assert!(stdout.contains("the journal's last line was incomplete"), "{stdout}");
    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    home.cmd().args(["verify", &id]).assert().success();
}

#[test]
fn a_corrupt_journal_is_a_clear_error() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    run_with_input(&home, &["run", "--plain", runbook.to_str().unwrap()], "");
    let journal = home.only_drill().join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "{not json";
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let output = home.cmd().args(["resume", "--plain"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("journal.jsonl") && stderr.contains("line 2"), "{stderr}");
    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    let output = home.cmd().args(["verify", &id]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_completed_drill_cannot_be_resumed_and_demo_runs_headless() {
    let home = Home::new();
    let output = home.cmd().args(["demo", "--plain", "--yes"]).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("[training]"), "{stdout}");
    assert!(stdout.contains("captured tag = main-4f2a9c1"), "{stdout}");
    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    let output = home.cmd().args(["resume", &id]).output().unwrap();
    assert!(stderr_of(&output).contains("is already completed"), "{}", stderr_of(&output));
    let output = home.cmd().args(["resume"]).output().unwrap();
    assert!(stderr_of(&output).contains("there is no unfinished drill"), "{}", stderr_of(&output));
}

#[test]
fn completions_and_help_work() {
    let home = Home::new();
    let output = home.cmd().args(["completions", "bash"]).output().unwrap();
    assert!(stdout_of(&output).contains("drillbook"));
    for sub in ["run", "resume", "list", "check", "report", "demo", "schema", "verify"] {
        home.cmd().args([sub, "--help"]).assert().success();
    }
}

#[test]
fn check_fixture_is_reused_by_run() {
    let home = Home::new();
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(fixture("unknown_key.toml")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("unknown key `titel`"), "{}", stderr_of(&output));
}

#[test]
fn participants_and_action_items_reach_the_report_in_every_format() {
    let home = Home::new();
    let runbook = home.runbook("simple.toml", SIMPLE);
    let bad = home.cmd().args(["run", "--plain", "--yes", "--participant", "Alice"]).arg(&runbook).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr_of(&bad).contains("is not NAME:ROLE"), "{}", stderr_of(&bad));
    assert!(home.drills().is_empty(), "no drill starts on a bad --participant");

    let output = home
        .cmd()
        .args([
            "run",
            "--plain",
            "--yes",
            "--participant",
            "Alice Martin:incident commander",
            "--participant",
            "Bob:observer",
        ])
        .arg(&runbook)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();

    let added = home
        .cmd()
        .args(["action", &id[..8], "Automate the restore", "--owner", "Bob", "--step", "hello"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", stderr_of(&added));
    let unknown = home.cmd().args(["action", &id, "x", "--step", "nope"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr_of(&unknown).contains("has no step `nope` (its steps: hello, use-it, look, tick)"),
        "{}",
        stderr_of(&unknown)
    );
    let verify = home.cmd().args(["verify", &id]).output().unwrap();
    assert!(verify.status.success(), "the action item is chained like every event: {}", stderr_of(&verify));

    let report = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["participants"][0]["name"], "Alice Martin");
    assert_eq!(report["participants"][1]["role"], "observer");
    assert_eq!(report["action_items"][0]["owner"], "Bob");
    assert_eq!(report["action_items"][0]["step"], "hello");
    assert_eq!(report["outcome"], "passed with deviations", "an action item does not reopen the drill");

    let html = home.path().join("report.html");
    let written = home.cmd().args(["report", &id, "--format", "html", "-o"]).arg(&html).output().unwrap();
    assert!(written.status.success(), "{}", stderr_of(&written));
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("Automate the restore") && html.contains("Alice Martin"), "{html}");
    let junit = home.cmd().args(["report", &id, "--format", "junit"]).output().unwrap();
    let junit = stdout_of(&junit);
    assert!(junit.contains("<testsuite name=\"simple\"") && junit.contains("name=\"RTO\""), "{junit}");
}

#[test]
fn an_action_item_is_refused_while_the_drill_is_open_elsewhere() {
    let home = Home::new();
    let runbook =
        home.runbook("wait.toml", "[runbook]\nid = \"w\"\ntitle = \"W\"\n[[step]]\nid = \"wait\"\nkind = \"manual\"\n");
    // The first process holds the lock and waits for an answer on the manual step.
    let (mut first, _drill, id) = home.spawn_holder(&runbook, "\"step_started\"");
    let before = home.journal();
    let output = home.cmd().args(["action", &id, "Follow up"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("drill is open in another drillbook process")
            && stderr.contains(&format!("pid {}", first.id())),
        "{stderr}"
    );
    assert_eq!(home.journal(), before, "nothing was appended");
    first.kill().unwrap();
    first.wait().unwrap();
    let output = home.cmd().args(["action", &id, "Follow up"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
}
