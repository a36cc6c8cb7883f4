//! `drillbook check` and `drillbook schema` on fixture runbooks.

use crate::support;

use support::{Home, fixture, stderr_of, stdout_of};

#[test]
fn a_valid_runbook_with_every_step_kind_passes() {
    let home = Home::new();
    let output = home.cmd().arg("check").arg(fixture("valid.toml")).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains("ok: "), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("8 steps"));
}

#[test]
fn the_bundled_runbooks_pass() {
    let home = Home::new();
    let runbooks: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!runbooks.is_empty());
    home.cmd().arg("check").args(&runbooks).assert().success();
    // Each step explains itself: the help is what a first-time operator reads.
    for path in &runbooks {
        let runbook = drillbook::runbook::load(path).unwrap();
        for step in &runbook.steps {
            let help = step.help.as_deref().unwrap_or_default();
            assert!(help.trim().len() > 40, "{}: step `{}` needs help text", path.display(), step.id);
        }
    }
}

#[test]
fn every_mistake_is_reported_with_line_and_column() {
    let home = Home::new();
    let output = home.cmd().arg("check").arg(fixture("broken.toml")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    let path = fixture("broken.toml").display().to_string();
    let expect = [
        (format!("{path}:4:14: error: `rto_target`: bad duration `4 weeks`: unknown unit `weeks`"), "bad duration"),
        (
            format!(
                "{path}:13:22: error: `backup` is used before it is captured: it is captured by step `fetch` at line 16, which runs later"
            ),
            "capture used early",
        ),
        (format!("{path}:13:45: error: undefined variable `projct`; did you mean `project`?"), "undefined variable"),
        (format!("{path}:14:11: error: `timeout`: bad duration `30`: `30` has no unit"), "duration without unit"),
        (format!("{path}:21:7: error: `run` does not apply to a `s3-backup` step"), "key of another kind"),
        (
            format!("{path}:24:6: error: duplicate step id `restore`: already used by the step at line 10"),
            "duplicate id",
        ),
        (format!("{path}:30:13: error: namespace `acme-production` is protected"), "protected namespace"),
    ];
    for (line, what) in expect {
        assert!(stderr.contains(&line), "missing {what}: {line}\n---\n{stderr}");
    }
    assert!(stderr.contains("7 errors"), "{stderr}");
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let home = Home::new();
    let output = home.cmd().arg("check").arg(fixture("unknown_key.toml")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("unknown_key.toml:8:1: error: unknown key `titel`; did you mean `title`?"), "{stderr}");
    assert!(stderr.contains("8 | titel = \"Oops\""), "snippet shown: {stderr}");
}

#[test]
fn wrong_types_and_unknown_kinds_are_explained() {
    let home = Home::new();
    let wrong_type =
        home.runbook("t.toml", "[runbook]\nid = \"t\"\ntitle = 3\n[[step]]\nid = \"a\"\nkind = \"manual\"\n");
    let output = home.cmd().arg("check").arg(&wrong_type).output().unwrap();
    assert!(
        stderr_of(&output).contains("t.toml:3:9: error: invalid type: integer `3`, expected a string"),
        "{}",
        stderr_of(&output)
    );
    let bad_kind =
        home.runbook("k.toml", "[runbook]\nid = \"t\"\ntitle = \"T\"\n[[step]]\nid = \"a\"\nkind = \"comand\"\n");
    let output = home.cmd().arg("check").arg(&bad_kind).output().unwrap();
    assert!(
        stderr_of(&output).contains("k.toml:6:8: error: unknown value `comand`; did you mean `command`?"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn secrets_may_not_leak_into_plain_fields() {
    let home = Home::new();
    let path = home.runbook(
        "s.toml",
        r#"[runbook]
id = "s"
title = "S"
[vars.token]
secret = true
[[step]]
id = "a"
kind = "checklist"
url = "https://x/?t={{ token }}"
items = ["x"]
[[step]]
id = "b"
kind = "command"
run = "curl -H {{ token }} https://x"
"#,
    );
    let output = home.cmd().arg("check").arg(&path).output().unwrap();
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("s.toml:9:24: error: secret `token` can only be used in a command's `run` or `env`"),
        "{stderr}"
    );
    assert!(stderr.contains("1 error"), "a secret in `run` is fine: {stderr}");
}

#[test]
fn quoting_a_template_in_run_is_refused() {
    let home = Home::new();
    let path = home.runbook(
        "q.toml",
        "[runbook]\nid = \"q\"\ntitle = \"Q\"\n[vars.f]\ndefault = \"x\"\n[[step]]\nid = \"a\"\nkind = \"command\"\nrun = \"restore --file='{{ f }}'\"\n",
    );
    let output = home.cmd().arg("check").arg(&path).output().unwrap();
    assert!(stderr_of(&output).contains("q.toml:9:24: error: don't put quotes around"), "{}", stderr_of(&output));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let home = Home::new();
    let output = home.cmd().args(["check", "/nonexistent/runbook.toml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("cannot read runbook /nonexistent/runbook.toml: No such file"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn schema_is_json_describing_steps() {
    let home = Home::new();
    let output = home.cmd().arg("schema").output().unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(schema["title"], "drillbook runbook");
    let text = schema.to_string();
    for key in ["rto_target", "expect_exit", "s3-backup", "k8s-scale", "on_failure", "expect_status", "ca_file"] {
        assert!(text.contains(key), "schema lacks {key}");
    }
}

#[test]
fn the_committed_schema_is_current() {
    let home = Home::new();
    let output = home.cmd().arg("schema").output().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/drillbook.schema.json")).unwrap();
    assert_eq!(
        committed,
        stdout_of(&output),
        "assets/drillbook.schema.json is stale: run `cargo run -- schema > assets/drillbook.schema.json`"
    );
}

#[test]
fn http_check_keys_are_checked_where_they_are_written() {
    let home = Home::new();
    let path = home.runbook(
        "h.toml",
        r#"[runbook]
id = "h"
title = "H"
[[step]]
id = "a"
kind = "http-check"
url = "dr.example.com/healthz"
status = 200
expect_status = 200
[[step]]
id = "b"
kind = "http-check"
url = "https://dr.example.com/"
method = "HEAD"
contains = "ok"
expect_status = 700
capture = { name = "x", regex = "y" }
[[step]]
id = "c"
kind = "http-check"
url = "https://dr.example.com/"
capture = "up"
ca_file = "{{ nope }}/ca.pem"
[[step]]
id = "d"
kind = "command"
run = "echo {{ up.cert_days_left }} {{ up.latency }}"
"#,
    );
    let output = home.cmd().arg("check").arg(&path).output().unwrap();
    let stderr = stderr_of(&output);
    for line in [
        "h.toml:7:7: error: `url`: `dr.example.com/healthz` is not an absolute URL: start it with https:// or http://",
        "h.toml:8:10: error: `status` is the older spelling of `expect_status`: give one of them, not both",
        "h.toml:15:12: error: a HEAD response has no body: `contains` needs another `method`",
        "h.toml:16:17: error: `expect_status` = 700 is out of range 100..=599",
        "h.toml:17:11: error: a `http-check` step captures an object: use capture = \"name\"",
        "h.toml:23:15: error: undefined variable `nope`",
        "h.toml:27:16: error: capture `up` has no field `latency`; did you mean `latency_ms`?",
    ] {
        assert!(stderr.contains(line), "missing: {line}\n---\n{stderr}");
    }
    assert!(stderr.contains("7 errors"), "{stderr}");

    let good = home.runbook(
        "g.toml",
        r#"[runbook]
id = "g"
title = "G"
[[step]]
id = "up"
kind = "http-check"
url = "https://dr.example.com/healthz"
expect_status = 204
ca_file = "{{ drill.dir }}/ca.pem"
capture = "site"
[[step]]
id = "show"
kind = "command"
run = "echo {{ site }} {{ site.cert_days_left }} {{ site.cert_expires }}"
"#,
    );
    let output = home.cmd().arg("check").arg(&good).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
}

#[test]
fn a_cadence_that_is_no_period_is_reported_at_its_line() {
    let home = Home::new();
    let path = home.runbook(
        "cadence.toml",
        "[runbook]\nid = \"c\"\ntitle = \"C\"\nproject = \"{{ nope }}\"\ncadence = \"fortnightly-ish\"\n[[step]]\nid = \"a\"\nkind = \"manual\"\n",
    );
    let output = home.cmd().arg("check").arg(path).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cadence.toml:5:11: error: `cadence` = `fortnightly-ish`: expected quarterly"), "{stderr}");
    assert!(stderr.contains("cadence.toml:4:"), "the project template names an unknown variable: {stderr}");
}

#[test]
fn s3_check_probe_and_replica_keys_are_checked_where_they_are_written() {
    let home = Home::new();
    let path = home.runbook(
        "p.toml",
        r#"[runbook]
id = "p"
title = "P"
[[step]]
id = "a"
kind = "s3-check"
bucket = "b"
as = { access_key_id = "AKIA" }
can = ["list", "delte"]
cannot = ["list"]
[[step]]
id = "b"
kind = "s3-check"
bucket = "b"
expect = { object_ownership = "Owner", versioning = "yes" }
max_lag = "1h"
[[step]]
id = "c"
kind = "s3-check"
bucket = "b"
cannot = ["delete"]
"#,
    );
    let output = home.cmd().arg("check").arg(&path).output().unwrap();
    let stderr = stderr_of(&output);
    for line in [
        "p.toml:8:6: error: `as` takes `access_key_id` and `secret_access_key` (from secret variables), or `profile`",
        "p.toml:9:16: error: unknown permission `delte` in `can`; did you mean `delete`?",
        "p.toml:10:10: error: `list` is in both `can` and `cannot`",
        "p.toml:15:10: error: `expect.object_ownership` takes one of \"BucketOwnerEnforced\", \"BucketOwnerPreferred\", \"ObjectWriter\"",
        "p.toml:15:10: error: `expect.versioning` takes true or false",
        "p.toml:16:11: error: `max_lag` applies to a replica check: add `replica_of = \"SOURCE-BUCKET\"`",
        "p.toml:21:10: error: `can` and `cannot` need `as`: the identity to probe, e.g. as = { profile = \"shop-backup\" }",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    assert_eq!(output.status.code(), Some(1), "{stderr}");
}
