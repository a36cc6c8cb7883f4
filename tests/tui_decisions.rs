//! The real binary in a terminal (tmux), deciding a drill the way the
//! verdict rules want: `run` without `--var` asks on the start screen; Esc
//! on a typed confirmation answers nothing; a skip without a reason is
//! refused; a checklist item can fail with a note (and fails its step); a
//! running Kubernetes wait can be stopped and then retried, skipped or
//! aborted. And the same rules in plain mode: an empty line skips nothing.

use crate::support;

use crate::tmux;

use std::process::Stdio;
use std::time::Duration;

use support::{Home, stderr_of, stdout_of};
use tmux::{Tmux, drillbook_in_shell};

fn runbook(cluster: &str) -> String {
    format!(
        r#"
[runbook]
id = "decisions"
title = "Decisions"
[vars.project]
prompt = "Project name"
[[step]]
id = "restore"
title = "Restore the backup"
kind = "command"
run = "echo restored {{{{ project }}}}"
confirm = "typed"
[[step]]
id = "smoke"
title = "Smoke test"
kind = "checklist"
items = ["Log in", "Upload images"]
[[step]]
id = "wait"
title = "Wait for DR"
kind = "k8s-wait"
context = "{cluster}"
namespace = "acme-dr"
expect_tag = "v2"
timeout = "10m"
[[step]]
id = "scale-down"
title = "Scale DR to zero"
kind = "command"
run = "echo scaled down"
always = true
"#
    )
}

/// A sandbox cluster where DR runs `v1`: a wait for `v2` never ends by itself.
fn cluster(home: &Home) -> String {
    let dir = home.path().join("cluster").display().to_string();
    for args in [vec!["init", dir.as_str()], vec!["apply", &dir, "-n", "acme-dr", "web", "registry.example.com/web:v1"]]
    {
        let output = home.cmd_std().arg("sandbox").args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr_of(&output));
    }
    format!("sandbox:{dir}")
}

#[test]
fn deciding_a_drill_in_the_terminal() {
    let home = Home::new();
    let runbook = home.runbook("decisions.toml", &runbook(&cluster(&home)));
    let tmux = Tmux::new("decisions");
    // No --var: the start screen asks for the project.
    tmux.start(&drillbook_in_shell(home.path(), &format!("run {}", runbook.display())));
    tmux.wait_for("New drill");
    tmux.wait_for("Project name");
    tmux.text("acme");
    tmux.keys(&["Enter"]);

    // Esc on the typed confirmation closes it and journals nothing.
    tmux.wait_for("type to confirm");
    tmux.keys(&["Escape"]);
    let waiting = tmux.wait_for("enter opens it again");
    assert!(!waiting.contains("type to confirm"), "{waiting}");
    std::thread::sleep(Duration::from_millis(300));
    let journal = home.journal();
    assert!(!journal.contains("step_confirmed") && !journal.contains("step_skipped"), "{journal}");
    // A skip without a reason is refused.
    tmux.keys(&["s"]);
    tmux.wait_for("Why skip this step?");
    tmux.keys(&["Enter"]);
    tmux.wait_for("a reason is needed");
    tmux.keys(&["Escape"]);
    // Enter opens the confirmation again.
    tmux.keys(&["Escape", "Enter"]);
    tmux.wait_for("type to confirm");
    tmux.text("restore");
    tmux.keys(&["Enter"]);

    // A checklist item fails with a note; finishing the list fails the step.
    tmux.wait_for("tick / untick");
    tmux.keys(&["Space", "f"]);
    tmux.wait_for("What went wrong with this item?");
    tmux.text("upload returns 500");
    tmux.keys(&["Enter"]);
    tmux.wait_for("failed: upload returns 500");
    tmux.keys(&["Enter"]);
    let failed = tmux.wait_for("Step failed");
    assert!(failed.contains("`Upload images` failed: upload returns 500"), "{failed}");
    tmux.keys(&["s"]);
    tmux.text("upload bug filed as OPS-12");
    tmux.keys(&["Enter"]);

    // The wait runs; x stops it (after asking); then retry, skip or abort.
    tmux.wait_for("x stop step");
    tmux.keys(&["x"]);
    tmux.wait_for("Stop the step?");
    tmux.keys(&["y"]);
    let stopped = tmux.wait_for("Step failed");
    assert!(stopped.contains("stopped by the operator"), "{stopped}");
    assert!(stopped.contains("r retry") && stopped.contains("a abort"), "{stopped}");
    tmux.keys(&["a"]);
    tmux.wait_for("Verdict: aborted");
    tmux.keys(&["q"]);
    tmux.wait_for("EXITED=1");

    let journal = home.journal();
    assert!(journal.contains(r#""type":"checklist_item_failed","step":"smoke","item":1,"text":"Upload images","note":"upload returns 500""#), "{journal}");
    assert!(journal.contains(r#""reason":"stopped by the operator""#), "{journal}");
    assert!(journal.contains(r#""reason":"upload bug filed as OPS-12""#), "{journal}");
    assert!(journal.contains(r#""type":"drill_finished","outcome":"aborted""#), "{journal}");
}

const CONFIRM: &str = r#"
[runbook]
id = "confirm"
title = "Confirm"
[[step]]
id = "restore"
kind = "command"
run = "echo restored"
confirm = "typed"
"#;

/// Plain mode: empty lines at a confirmation skip nothing (the question
/// comes again), a skip needs its reason, and closed input pauses the drill.
#[test]
fn plain_empty_lines_skip_nothing_and_closed_input_pauses() {
    let home = Home::new();
    let runbook = home.runbook("confirm.toml", CONFIRM);
    let mut child = home
        .cmd_std()
        .args(["run", "--plain"])
        .arg(&runbook)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"\n\ns\n").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert_eq!(stdout.matches("Type `restore` to run it, or s REASON to skip it:").count(), 4, "{stdout}");
    assert!(stdout.contains("say why, after the answer: s REASON"), "{stdout}");
    assert!(stderr_of(&output).contains("standard input is closed; the drill is paused"), "{}", stderr_of(&output));
    let journal = home.journal();
    assert!(!journal.contains("step_skipped") && !journal.contains("step_started"), "{journal}");

    // Resumed with a reason: the step is declined, and the drill fails for it.
    let resumed = home.cmd_std().args(["resume", "--plain"]).write_lines(&["s the DBA restored it"]);
    let stdout = stdout_of(&resumed);
    assert_eq!(resumed.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Drill failed"), "{stdout}");
    assert!(home.journal().contains(r#""cause":"declined","reason":"the DBA restored it""#), "{}", home.journal());
}

trait WriteLines {
    fn write_lines(&mut self, lines: &[&str]) -> std::process::Output;
}

impl WriteLines for std::process::Command {
    fn write_lines(&mut self, lines: &[&str]) -> std::process::Output {
        use std::io::Write;
        let mut child = self.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    }
}
