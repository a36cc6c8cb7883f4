//! Variable values built to inject commands (`;`, `$(...)`, backticks,
//! both quotes, newlines) go into every templated field that reaches the
//! outside world: a command's `run`, an S3 `bucket`, a Kubernetes
//! `namespace` and an HTTP `url`. No command runs that the runbook did not
//! write: a `touch` of a marker file hidden in each value never happens, and
//! the command step prints the value back as one intact argument.

use crate::support;

use support::reliability::{self, Counts};
use support::{Home, stderr_of, stdout_of};

const RUNBOOK: &str = r#"[runbook]
id = "inject"
title = "Inject"
[vars.evil]
prompt = "anything"
[vars.store]
prompt = "sandbox store directory"
[vars.cluster]
prompt = "sandbox:DIR"

[[step]]
id = "run"
kind = "command"
run = "printf '[%s]\n' {{ evil }}"
on_failure = "continue"

[[step]]
id = "bucket"
kind = "s3-backup"
endpoint = "file://{{ store }}"
bucket = "{{ evil }}"
prefix = "db/"
capture = "backup"
on_failure = "continue"

[[step]]
id = "namespace"
kind = "k8s-wait"
context = "{{ cluster }}"
namespace = "{{ evil }}"
expect_tag = "v1"
timeout = "2s"
on_failure = "continue"

[[step]]
id = "url"
kind = "http-check"
url = "http://127.0.0.1:9/{{ evil }}"
retries = 0
timeout = "2s"
on_failure = "continue"
"#;

/// Values that would run `touch MARKER` if any field reached a shell unquoted.
fn evil_values(marker: &str) -> Vec<String> {
    vec![
        format!("x; touch {marker}"),
        format!("$(touch {marker})"),
        format!("`touch {marker}`"),
        format!("x' ; touch {marker} ; echo '"),
        format!("x\" ; touch {marker} ; echo \""),
        format!("x\ntouch {marker}"),
        format!("x && touch {marker} || touch {marker} | touch {marker} & touch {marker}"),
        format!("{{{{ '$(touch {marker})' }}}}"),
        // No spaces or quotes: a valid URL path, so the HTTP check really sends it.
        format!("x;touch$IFS{marker}"),
    ]
}

#[test]
fn values_cannot_inject_commands_in_any_templated_field() {
    let home = Home::new();
    let runbook = home.runbook("inject.toml", RUNBOOK);
    let store = home.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let cluster = home.path().join("cluster");
    let init = home.cmd().arg("sandbox").arg("init").arg(&cluster).output().unwrap();
    assert!(init.status.success(), "{}", stderr_of(&init));
    let mut counts = Counts::default();
    for index in 0..evil_values("MARKER").len() {
        let marker = home.path().join(format!("PWNED-{index}"));
        let evil = evil_values(&marker.display().to_string()).swap_remove(index);
        let output = home
            .cmd()
            .args(["run", "--plain", "--yes"])
            .arg("--var")
            .arg(format!("evil={evil}"))
            .arg("--var")
            .arg(format!("store={}", store.display()))
            .arg("--var")
            .arg(format!("cluster=sandbox:{}", cluster.display()))
            .arg(&runbook)
            .output()
            .unwrap();
        let all = format!("{}\n{}", stdout_of(&output), stderr_of(&output));
        counts.trials += 1;
        counts.faults += 4; // the value went into four fields
        counts.injections += u64::from(marker.exists());
        let drill = home.drills().last().cloned().unwrap_or_else(|| panic!("value {evil:?}: no drill\n{all}"));
        let journal = std::fs::read_to_string(drill.join("journal.jsonl")).unwrap();
        for step in ["run", "bucket", "namespace", "url"] {
            assert!(
                journal.contains(&format!("\"type\":\"step_finished\",\"step\":\"{step}\"")),
                "value {evil:?}: step {step} was not attempted\n{all}"
            );
        }
        let log = std::fs::read_to_string(drill.join("logs/run.1.log")).unwrap_or_default();
        assert_eq!(log, format!("[{evil}]\n"), "value {evil:?}: one intact argument\n{all}");
    }
    reliability::record("values_cannot_inject_commands_in_any_templated_field", counts);
    assert_eq!(counts.injections, 0, "a value ran as a command");
}
