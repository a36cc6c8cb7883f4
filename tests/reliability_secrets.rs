//! Secrets given by environment variable, by the hidden prompt of plain mode
//! and by the hidden field of the TUI's start form (both typed in a real
//! terminal, tmux) reach the command that needs them and nowhere else: every
//! file under the data dir (journal, runbook snapshot, step logs, the TUI's
//! tracing log `drillbook.log`), the four reports, the terminal and the
//! output hold 0 occurrences. A panic of the TUI (the debug-only
//! `DRILLBOOK_DEBUG_PANIC_AFTER_MS` hook) whose message holds the secret, as
//! a bug's could, prints it masked.

use crate::support;

use crate::tmux;

use support::reliability::{self, Counts, occurrences};
use support::{Home, stderr_of, stdout_of, wait_for};
use tmux::{Tmux, drillbook_in_shell, drillbook_in_shell_with};

const RUNBOOK: &str = r#"[runbook]
id = "secret"
title = "Secret"
[vars.db_password]
secret = true
env = "DR_DB_PASSWORD"
[[step]]
id = "use"
kind = "command"
run = "test \"$PGPASSWORD\" = {{ db_password }} && echo match; echo leaked={{ db_password }}; echo env=$DR_DB_PASSWORD >&2"
env = { PGPASSWORD = "{{ db_password }}" }
capture = { name = "leak", regex = "^leaked=(.*)$" }
[[step]]
id = "look"
kind = "manual"
"#;

/// Where `secret` occurs: every file under the home, the four reports of
/// the only drill, and `texts` (output, screens); one entry per place.
fn secret_findings(home: &Home, secret: &str, texts: &[(&str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    let files = home.all_files();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let count = occurrences(&std::fs::read(&file).unwrap(), secret.as_bytes());
        found.extend((0..count).map(|_| format!("file {}", file.display())));
    }
    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    for format in ["md", "html", "json", "junit"] {
        let report = home.cmd().args(["report", &id, "--format", format]).output().unwrap();
        assert!(report.status.success(), "report --format {format}: {}", stderr_of(&report));
        assert!(!report.stdout.is_empty(), "report --format {format} is empty");
        let count = occurrences(&report.stdout, secret.as_bytes()) + occurrences(&report.stderr, secret.as_bytes());
        found.extend((0..count).map(|_| format!("report --format {format}")));
    }
    for (name, text) in texts {
        let count = occurrences(text.as_bytes(), secret.as_bytes());
        found.extend((0..count).map(|_| (*name).to_string()));
    }
    found
}

fn check(test: &str, secret: &str, home: &Home, texts: &[(&str, &str)], faults: u64) {
    let found = secret_findings(home, secret, texts);
    reliability::record(test, Counts { trials: 1, faults, secrets: found.len() as u64, ..Counts::default() });
    assert!(found.is_empty(), "the secret was found in: {found:?}");
}

#[test]
fn a_secret_from_the_environment_never_reaches_disk_reports_or_output() {
    let home = Home::new();
    let secret = "hunter2-Sup3r-s3cret";
    let runbook = home.runbook("secret.toml", RUNBOOK);
    let output =
        home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).env("DR_DB_PASSWORD", secret).output().unwrap();
    let stdout = stdout_of(&output);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("  | match"), "the command received the secret: {stdout}");
    assert!(stdout.contains("\"${DR_DB_PASSWORD}\""), "shown as an env reference: {stdout}");
    check(
        "a_secret_from_the_environment_never_reaches_disk_reports_or_output",
        secret,
        &home,
        &[("stdout", &stdout), ("stderr", &stderr)],
        0,
    );
}

#[test]
fn a_secret_typed_at_the_hidden_prompt_is_not_echoed_or_stored() {
    let home = Home::new();
    let secret = "typed-Pr0mpt-s3cret";
    let runbook = home.runbook("secret.toml", RUNBOOK);
    let tmux = Tmux::new("secret-prompt");
    // Without --yes: with --yes drillbook never asks, it needs the variable.
    tmux.start(&drillbook_in_shell(home.path(), &format!("run --plain {}", runbook.display())));
    tmux.wait_for("(hidden):");
    tmux.text(secret);
    tmux.keys(&["Enter"]);
    tmux.wait_for("[2/2]");
    tmux.text("y done");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("EXITED=");
    assert!(screen.contains("EXITED=0"), "{screen}");
    let log = std::fs::read_to_string(home.only_drill().join("logs/use.1.log")).unwrap();
    assert!(log.contains("match\n"), "the command received the typed secret: {log}\n{screen}");
    assert!(screen.contains("leaked=***"), "its output was redacted: {screen}");
    assert!(tmux.echo_on(), "echo is back on after the prompt");
    let history = tmux.history();
    check("a_secret_typed_at_the_hidden_prompt_is_not_echoed_or_stored", secret, &home, &[("terminal", &history)], 0);
}

#[test]
fn a_secret_typed_in_the_tui_reaches_no_file_log_report_or_panic_message() {
    let home = Home::new();
    let secret = "tui-F0rm-s3cret";
    let runbook = home.runbook("secret.toml", RUNBOOK);
    let trace = ("DRILLBOOK_LOG".to_string(), "drillbook=trace".to_string());
    // Typed into the start form's hidden field.
    let tmux = Tmux::new("secret-tui");
    tmux.start(&drillbook_in_shell_with(
        home.path(),
        std::slice::from_ref(&trace),
        &format!("run {}", runbook.display()),
    ));
    tmux.wait_for("New drill");
    tmux.text(secret);
    let form = tmux.screen();
    tmux.keys(&["Enter"]);
    let ran = tmux.wait_for("manual · running");
    let log = std::fs::read_to_string(home.only_drill().join("logs/use.1.log")).unwrap();
    assert!(log.contains("match\n"), "the command received the typed secret: {log}");
    tmux.keys(&["q"]);
    wait_for("drillbook to quit", std::time::Duration::from_secs(30), || {
        let screen = tmux.screen();
        if screen.contains("Quit?") {
            tmux.keys(&["y"]);
        }
        screen.contains("EXITED=").then_some(())
    });
    let quit = tmux.wait_for("EXITED=0");
    let first_history = tmux.history();
    drop(tmux);
    assert!(home.only_drill().join("drillbook.log").exists(), "the TUI wrote its tracing log");

    // Resumed with the secret in the environment, then a forced panic.
    let tmux = Tmux::new("secret-panic");
    let env = [
        trace,
        ("DR_DB_PASSWORD".to_string(), secret.to_string()),
        ("DRILLBOOK_DEBUG_PANIC_AFTER_MS".to_string(), "2000".to_string()),
    ];
    tmux.start(&drillbook_in_shell_with(home.path(), &env, "resume"));
    tmux.wait_for("EXITED=101");
    let panic_history = tmux.history();
    assert!(panic_history.contains("forced panic for testing"), "{panic_history}");
    // The forced panic formats the drill's secrets into its message, as a bug could.
    let unwrapped = panic_history.replace('\n', "");
    assert!(unwrapped.contains("secrets held: [***]"), "the message is masked: {panic_history}");
    assert!(panic_history.contains("a secret in the message was replaced by ***"), "{panic_history}");
    drop(tmux);

    // Finish the drill so every report has the whole story.
    let finished = home.cmd().args(["resume", "--plain", "--yes"]).env("DR_DB_PASSWORD", secret).output().unwrap();
    assert!(finished.status.success(), "{}{}", stdout_of(&finished), stderr_of(&finished));
    let stdout = stdout_of(&finished);
    let stderr = stderr_of(&finished);
    check(
        "a_secret_typed_in_the_tui_reaches_no_file_log_report_or_panic_message",
        secret,
        &home,
        &[
            ("the start form", &form),
            ("the step's screen", &ran),
            ("the screen after quitting", &quit),
            ("the first session's terminal", &first_history),
            ("the panic message", &panic_history),
            ("stdout", &stdout),
            ("stderr", &stderr),
        ],
        1,
    );
}
