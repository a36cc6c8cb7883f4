//! The verdict never claims what a drill did not demonstrate. One table of
//! drills, each run through both front-ends (the TUI's keys and plain
//! lines) and checked in all four reports, the exit code and JUnit: all
//! steps done; an optional step skipped; a required step skipped with a
//! reason; the teardown skipped; a failed step skipped past; an unattended
//! drill with a manual step; and, through the binary, a drill killed during
//! its restore then aborted, and one aborted before any step ran.

use crate::support;

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use drillbook::drill::event::SessionMode;
use drillbook::drive::Question;
use drillbook::ui::app::App;
use ratatui::crossterm::event::KeyCode;
use serde_json::Value;
use support::frontends::{Scripted, key, load, open, through_plain, through_the_tui, typed, usual_answer};
use support::{Home, stderr_of, stdout_of};

const DRILL: &str = r#"
[runbook]
id = "verdicts"
title = "Verdicts"
rto_target = "1h"
[[step]]
id = "restore"
kind = "command"
run = "echo restored"
confirm = true
[[step]]
id = "extra"
kind = "command"
run = "echo extra"
optional = true
confirm = true
[[step]]
id = "flaky"
kind = "command"
run = "test -e {{ drill.dir }}/ok || exit 3"
[[step]]
id = "scale-down"
kind = "command"
run = "echo scaled down"
always = true
confirm = true
"#;

/// How the operator answers the drill's questions in one case.
#[derive(Clone, Copy)]
enum Case {
    AllDone,
    OptionalSkipped,
    RequiredSkipped,
    TeardownSkipped,
    FailedSkippedPast,
}

const REASON: &str = "the DBA restored it by hand";

fn answer(case: Case, question: &Question, app: &App) -> Scripted {
    let skip = |line: &str| {
        // Skipping is its own key and a reason: `n` (or `s`) in a confirmation, `s` on a failure.
        let mut keys = vec![key(KeyCode::Char(if line.starts_with('n') { 'n' } else { 's' }))];
        keys.extend(typed(REASON));
        keys.push(key(KeyCode::Enter));
        Scripted { keys, lines: vec![format!("{line} {REASON}")], pause: Duration::ZERO }
    };
    match (case, question) {
        (Case::OptionalSkipped, Question::Confirm { step: 1, .. })
        | (Case::RequiredSkipped, Question::Confirm { step: 0, .. })
        | (Case::TeardownSkipped, Question::Confirm { step: 3, .. }) => skip("n"),
        (Case::FailedSkippedPast, Question::Failed { .. }) => skip("s"),
        _ => usual_answer(question, app),
    }
}

/// The drill through one front-end: its report in every format and its exit code.
struct Outcome {
    json: Value,
    texts: Vec<String>,
    code: u8,
}

/// The same answers as plain lines, question by question.
fn lines(case: Case) -> Vec<String> {
    let skip = |word: &str| format!("{word} {REASON}");
    match case {
        Case::AllDone => vec!["y".into(), "y".into(), "y".into()],
        Case::OptionalSkipped => vec!["y".into(), skip("n"), "y".into()],
        Case::RequiredSkipped => vec![skip("n"), "y".into(), "y".into()],
        Case::TeardownSkipped => vec!["y".into(), "y".into(), skip("n")],
        Case::FailedSkippedPast => vec!["y".into(), "y".into(), skip("s"), "y".into()],
    }
}

fn run_case(case: Case, tui: bool) -> Outcome {
    let home = tempfile::tempdir().unwrap();
    let runbook = home.path().join("verdicts.toml");
    std::fs::write(&runbook, DRILL).unwrap();
    let session =
        open(home.path(), load(&runbook), &[], if tui { SessionMode::Tui } else { SessionMode::Plain }, false);
    let drill = session.dir.path.clone();
    if !matches!(case, Case::FailedSkippedPast) {
        // `flaky` passes once the drill's directory has `ok`.
        std::fs::write(drill.join("ok"), "").unwrap();
    }
    let code = if tui {
        through_the_tui(session, |question, app| answer(case, question, app)).ending.expect("ended").code
    } else {
        let code = through_plain(session, lines(case)).0.expect("ran");
        [0u8, 1, 2].into_iter().find(|c| ExitCode::from(*c) == code).expect("0, 1 or 2")
    };
    let texts = ["report.md", "report.html", "report.json", "report.junit.xml"]
        .map(|name| std::fs::read_to_string(drill.join(name)).unwrap())
        .to_vec();
    let json = serde_json::from_str(&texts[2]).unwrap();
    Outcome { json, texts, code }
}

fn junit_case<'a>(junit: &'a str, name: &str) -> &'a str {
    junit.split(&format!("name=\"{name}")).nth(1).and_then(|c| c.split("</testcase>").next()).unwrap_or("")
}

#[test]
fn a_drill_where_every_step_succeeded_passed() {
    for tui in [true, false] {
        let outcome = run_case(Case::AllDone, tui);
        assert_eq!(outcome.json["outcome"], "passed", "tui={tui}");
        assert_eq!(outcome.code, 0);
        assert_eq!(outcome.json["rto"]["verdict"], "PASS");
        assert!(outcome.texts[0].contains("> **Verdict: PASSED**"), "{}", outcome.texts[0]);
        assert!(outcome.texts[3].contains("failures=\"0\""), "{}", outcome.texts[3]);
    }
}

#[test]
fn an_optional_step_skipped_passes_with_deviations() {
    for tui in [true, false] {
        let outcome = run_case(Case::OptionalSkipped, tui);
        assert_eq!(outcome.json["outcome"], "passed with deviations", "tui={tui}");
        assert_eq!(outcome.code, 0);
        assert_eq!(outcome.json["rto"]["verdict"], "PASS", "optional steps are not part of the recovery");
        assert_eq!(outcome.json["findings"][0]["kind"], "optional step skipped");
        assert!(outcome.texts.iter().all(|text| text.contains(REASON)), "the reason is in every report");
        assert!(outcome.texts[3].contains("failures=\"0\""));
    }
}

#[test]
fn a_required_step_skipped_with_a_reason_fails_and_claims_no_recovery_time() {
    for tui in [true, false] {
        let outcome = run_case(Case::RequiredSkipped, tui);
        assert_eq!(outcome.json["outcome"], "failed", "tui={tui}");
        assert_eq!(outcome.code, 1);
        assert_eq!(outcome.json["rto"]["verdict"], "not achieved");
        assert!(outcome.json["rto"]["detail"].as_str().unwrap().starts_with("`restore` was skipped: "));
        assert_eq!(outcome.json["findings"][0]["kind"], "confirmation declined");
        for text in &outcome.texts {
            assert!(text.contains(REASON), "the reason is in every report: {text}");
            assert!(!text.contains("RTO **PASS**") && !text.contains(">PASS<"), "no PASS: {text}");
        }
        let junit = &outcome.texts[3];
        assert!(junit_case(junit, "restore").contains("<failure message=\"required step skipped"), "{junit}");
        assert!(junit_case(junit, "RTO").contains("<failure message=\"not achieved"), "{junit}");
        assert!(outcome.texts[0].contains("> - `restore`: **confirmation declined**"), "{}", outcome.texts[0]);
    }
}

#[test]
fn a_skipped_teardown_fails_the_drill_because_dr_was_left_running() {
    for tui in [true, false] {
        let outcome = run_case(Case::TeardownSkipped, tui);
        assert_eq!(outcome.json["outcome"], "failed", "tui={tui}");
        assert_eq!(outcome.code, 1);
        assert_eq!(outcome.json["findings"][0]["kind"], "teardown did not run");
        assert!(outcome.json["findings"][0]["text"].as_str().unwrap().contains("DR left running"));
        // The recovery itself was demonstrated: only the teardown is missing.
        assert_eq!(outcome.json["rto"]["verdict"], "PASS");
        assert!(junit_case(&outcome.texts[3], "scale-down").contains("<failure message=\"teardown did not run"));
    }
}

#[test]
fn a_failed_step_skipped_past_fails_the_drill() {
    for tui in [true, false] {
        let outcome = run_case(Case::FailedSkippedPast, tui);
        assert_eq!(outcome.json["outcome"], "failed", "tui={tui}");
        assert_eq!(outcome.code, 1);
        assert_eq!(outcome.json["findings"][0]["kind"], "failed, then skipped");
        assert!(outcome.json["findings"][0]["text"].as_str().unwrap().contains(REASON));
        assert_eq!(outcome.json["rto"]["verdict"], "not achieved");
        assert!(junit_case(&outcome.texts[3], "flaky").contains("<failure"), "{}", outcome.texts[3]);
    }
}

const UNATTENDED: &str = r#"
[runbook]
id = "unattended"
title = "Unattended"
rto_target = "1h"
[[step]]
id = "restore"
kind = "command"
run = "echo restored"
[[step]]
id = "smoke"
kind = "manual"
[[step]]
id = "scale-down"
kind = "command"
run = "echo scaled down"
always = true
"#;

/// A scheduled drill (`--yes`) cannot do a manual smoke test: it passes with
/// that deviation, listed first and never counted as done.
#[test]
fn an_unattended_drill_lists_the_manual_step_as_not_performed() {
    let home = Home::new();
    let runbook = home.runbook("unattended.toml", UNATTENDED);
    let output = home.cmd_std().args(["run", "--plain", "--yes"]).arg(&runbook).stdin(Stdio::null()).output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Drill passed with deviations"), "{stdout}");
    let drill = home.only_drill();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(drill.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["findings"][0]["kind"], "not performed (unattended)");
    assert_eq!(json["findings"][0]["step"], "smoke");
    assert_eq!(json["steps"][1]["skip_cause"], "non_interactive");
    assert_eq!(json["rto"]["verdict"], "not achieved", "the smoke test was never done");
    let junit = std::fs::read_to_string(drill.join("report.junit.xml")).unwrap();
    assert!(junit_case(&junit, "smoke").contains("<skipped"), "not performed is not a failure of the drill: {junit}");
}

const LONG_RESTORE: &str = r#"
[runbook]
id = "long"
title = "Long restore"
rto_target = "1h"
[[step]]
id = "restore"
kind = "command"
run = "echo restoring; sleep 60"
[[step]]
id = "scale-down"
kind = "command"
run = "echo scaled down"
always = true
"#;

/// Killed during its restore, then aborted: the drill is aborted, no
/// recovery time is claimed, and `abort` prints no PASS.
#[test]
fn a_drill_killed_during_its_restore_then_aborted_claims_nothing() {
    let home = Home::new();
    let runbook = home.runbook("long.toml", LONG_RESTORE);
    let mut child = home.spawn_run(&runbook);
    support::wait_for("the restore to start", Duration::from_secs(20), || {
        home.drills()
            .first()
            .and_then(|d| std::fs::read_to_string(d.join("logs/restore.1.log")).ok())
            .filter(|l| l.contains("restoring"))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let abort = home.cmd_std().args(["abort", "--plain", "--yes"]).stdin(Stdio::null()).output().unwrap();
    let stdout = stdout_of(&abort);
    assert_eq!(abort.status.code(), Some(1), "{stdout}\n{}", stderr_of(&abort));
    assert!(stdout.contains("Drill aborted"), "{stdout}");
    assert!(!stdout.contains("PASS"), "{stdout}");
    assert!(stdout.contains("RTO not achieved: the drill was aborted"), "{stdout}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(home.only_drill().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["outcome"], "aborted");
    assert_eq!(json["rto"]["verdict"], "not achieved");
}

const CONFIRM_FIRST: &str = r#"
[runbook]
id = "first"
title = "Confirm first"
rto_target = "1h"
[[step]]
id = "restore"
kind = "command"
run = "echo restored"
confirm = true
"#;

/// Aborted before any step ran: aborted, and there is no recovery time at all.
#[test]
fn a_drill_aborted_before_any_step_has_no_recovery_time() {
    let home = Home::new();
    let runbook = home.runbook("first.toml", CONFIRM_FIRST);
    // No answer to the confirmation: the drill pauses before anything ran.
    let first = home.cmd_std().args(["run", "--plain"]).arg(&runbook).stdin(Stdio::null()).output().unwrap();
    assert_eq!(first.status.code(), Some(2), "{}", stdout_of(&first));
    let abort = home.cmd_std().args(["abort", "--plain", "--yes"]).stdin(Stdio::null()).output().unwrap();
    let stdout = stdout_of(&abort);
    assert!(stdout.contains("Drill aborted"), "{stdout}");
    assert!(stdout.contains("RTO n/a"), "{stdout}");
    assert!(!stdout.contains("PASS"), "{stdout}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(home.only_drill().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["outcome"], "aborted");
    assert_eq!(json["rto"]["verdict"], "n/a");
}
