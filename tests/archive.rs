//! The shared drill archive against moto on loopback: a drill ships its
//! journal, logs, reports and summary while it runs; with S3 down it
//! finishes anyway and `archive push` ships the rest once S3 is back, with
//! nothing lost or duplicated; `verify --archive` checks the copy; and a
//! drill paused on one machine is resumed on another (another
//! DRILLBOOK_HOME), pulled from the archive, on the same hash chain.

use crate::support;

use crate::moto;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use moto::Moto;
use support::{Home, stderr_of, stdout_of};

const BUCKET: &str = "acme-drills";

const RUNBOOK: &str = r#"[runbook]
id = "archived"
title = "An archived drill"
project = "acme"
cadence = "quarterly"
[[step]]
id = "restore"
kind = "command"
run = "for i in 1 2 3; do echo restoring part $i; done"
[[step]]
id = "check"
kind = "manual"
help = "Look at the restored site."
[[step]]
id = "done"
kind = "command"
run = "echo done"
"#;

fn drillbook(home: &Home, moto: &Moto, config: &Path) -> Command {
    let mut command = home.cmd_std();
    command.env("DRILLBOOK_CONFIG", config).env_remove("DRILLBOOK_ARCHIVE");
    for (name, value) in moto::aws_env(&moto.endpoint) {
        command.env(name, value);
    }
    command
}

fn config(dir: &Path, moto: &Moto) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!("archive = \"s3://{BUCKET}/fleet/\"\narchive_endpoint = \"{}\"\n", moto.endpoint);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `drillbook ARGS`, feeding `input` on stdin.
fn run(mut command: Command, args: &[&str], input: &str) -> Output {
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

fn keys(moto: &Moto, prefix: &str) -> Vec<String> {
    moto.list_keys(BUCKET, prefix)
}

#[test]
fn a_drill_ships_as_it_runs_and_the_archive_copy_verifies() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let home = Home::new();
    let config = config(home.path(), &moto);
    let runbook = home.runbook("rb.toml", RUNBOOK);
    let output = run(drillbook(&home, &moto, &config), &["run", "--plain", runbook.to_str().unwrap()], "y\n");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains(&format!("archive: the drill is in s3://{BUCKET}/fleet/")), "{stdout}");
    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    let shipped = keys(&moto, &format!("fleet/drills/{id}/"));
    for name in ["runbook.toml", "summary.json", "report.md", "report.html", "report.json", "report.junit.xml"] {
        assert!(shipped.contains(&format!("fleet/drills/{id}/{name}")), "{name} shipped: {shipped:?}");
    }
    assert!(shipped.iter().any(|k| k.contains("/logs/restore.1.log")), "the step's log: {shipped:?}");
    assert!(shipped.iter().any(|k| k.contains("/journal/0000000001-")), "journal batches: {shipped:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&moto.get_object(BUCKET, &format!("fleet/drills/{id}/summary.json"))).unwrap();
    assert_eq!(summary["project"], "acme");
    assert_eq!(summary["cadence"], "quarterly");
    assert_eq!(summary["outcome"], "passed");

    let verified = run(drillbook(&home, &moto, &config), &["verify", "--archive", &id], "");
    let stdout = stdout_of(&verified);
    assert!(verified.status.success(), "{stdout}{}", stderr_of(&verified));
    assert!(stdout.contains("chain intact") && stdout.contains("it is this machine's journal"), "{stdout}");
}

#[test]
fn with_s3_down_the_drill_finishes_and_push_ships_the_rest_once_it_is_back() {
    let mut moto = Moto::start();
    moto.create_bucket(BUCKET);
    let home = Home::new();
    let config = config(home.path(), &moto);
    let runbook = home.runbook("rb.toml", RUNBOOK);
    moto.stop();
    let started = std::time::Instant::now();
    let output = run(drillbook(&home, &moto, &config), &["run", "--plain", runbook.to_str().unwrap()], "y\n");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "the drill passes without its archive: {stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("archive: not all shipped"), "{stdout}");
    assert!(stdout.contains("drillbook archive push"), "{stdout}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "S3 down never stalls the drill");
    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().to_string();

    moto.restart();
    moto.create_bucket(BUCKET);
    let pushed = run(drillbook(&home, &moto, &config), &["archive", "push", &id], "");
    assert!(pushed.status.success(), "{}{}", stdout_of(&pushed), stderr_of(&pushed));
    // Again: nothing left, nothing shipped twice.
    let again = run(drillbook(&home, &moto, &config), &["archive", "push", &id], "");
    assert!(stdout_of(&again).contains("0 journal line(s), 0 file(s)"), "{}", stdout_of(&again));

    let verified = run(drillbook(&home, &moto, &config), &["verify", "--archive", &id], "");
    assert!(
        stdout_of(&verified).contains("it is this machine's journal"),
        "{}{}",
        stdout_of(&verified),
        stderr_of(&verified)
    );
    let journal = std::fs::read_to_string(drill.join("journal.jsonl")).unwrap();
    let batches = keys(&moto, &format!("fleet/drills/{id}/journal/"));
    let lines: usize =
        batches.iter().map(|key| String::from_utf8(moto.get_object(BUCKET, key)).unwrap().lines().count()).sum();
    assert_eq!(lines, journal.lines().count(), "every record once: {batches:?}");
}

#[test]
fn a_drill_paused_on_one_machine_is_finished_on_another_from_the_archive() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let (first, second) = (Home::new(), Home::new());
    let runbook = first.runbook("rb.toml", RUNBOOK);
    let config_first = config(first.path(), &moto);
    // Standard input ends at the manual step: the drill pauses (exit 2), shipped.
    let paused = run(drillbook(&first, &moto, &config_first), &["run", "--plain", runbook.to_str().unwrap()], "");
    assert_eq!(paused.status.code(), Some(2), "{}{}", stdout_of(&paused), stderr_of(&paused));
    let id = first.only_drill().file_name().unwrap().to_string_lossy().to_string();

    // The second machine has no such drill: resume pulls it and continues the chain.
    let config_second = config(second.path(), &moto);
    let mut resume = drillbook(&second, &moto, &config_second);
    resume.env("DRILLBOOK_OPERATOR", "lee");
    let resumed = run(resume, &["resume", &id[..13], "--plain"], "y\n");
    let (stdout, stderr) = (stdout_of(&resumed), stderr_of(&resumed));
    assert_eq!(resumed.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("pulling drill {id}")), "{stderr}");
    let journal = std::fs::read_to_string(second.only_drill().join("journal.jsonl")).unwrap();
    let original = std::fs::read_to_string(first.only_drill().join("journal.jsonl")).unwrap();
    assert!(journal.starts_with(&original), "the second machine continues the first one's journal");
    assert!(journal.contains("\"drill_finished\""), "{journal}");

    let handed = journal.lines().find(|l| l.contains("\"handed_off\"")).expect("the hand-off is journaled");
    assert!(handed.contains("\"to\":\"lee@"), "{handed}");
    let report = run(drillbook(&second, &moto, &config_second), &["report", &id], "");
    let report = stdout_of(&report);
    assert!(report.contains("## Hand-offs") && report.contains("→ lee@"), "{report}");
    assert!(report.contains("- driven by lee@"), "the steps say who drove them: {report}");

    // The archive holds the whole drill, one chain; the first machine's copy is its prefix.
    let verified = run(drillbook(&second, &moto, &config_second), &["verify", "--archive", &id], "");
    assert!(
        stdout_of(&verified).contains("it is this machine's journal"),
        "{}{}",
        stdout_of(&verified),
        stderr_of(&verified)
    );
    let behind = run(drillbook(&first, &moto, &config_first), &["verify", "--archive", &id], "");
    assert!(behind.status.success(), "{}{}", stdout_of(&behind), stderr_of(&behind));
    assert!(stdout_of(&behind).contains("the drill went on elsewhere"), "{}", stdout_of(&behind));
}

fn as_lee(mut command: Command) -> Command {
    command.env("DRILLBOOK_OPERATOR", "lee");
    command
}

/// A lease as a holder that died would leave it: not released, expired a minute ago.
fn expired_lease(moto: &Moto, id: &str, holder: &str) {
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let lease = format!(
        r#"{{"holder":"{holder}","pid":1,"renewed_at":"{}","expires_at":"{past}","released":false}}"#,
        past - jiff::SignedDuration::from_secs(60)
    );
    moto.put_object(BUCKET, &format!("fleet/drills/{id}/lease.json"), lease.as_bytes());
}

#[test]
fn one_operator_drives_at_a_time_and_an_expired_lease_is_taken_over_by_name() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let (first, second) = (Home::new(), Home::new());
    let runbook = first.runbook("rb.toml", RUNBOOK);
    let config_first = config(first.path(), &moto);
    let config_second = config(second.path(), &moto);

    // The first machine holds the drill open at its manual step.
    let mut holder = drillbook(&first, &moto, &config_first);
    holder.args(["run", "--plain"]).arg(&runbook).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut holder = holder.spawn().unwrap();
    let id = support::wait_for("the drill to ship its lease", std::time::Duration::from_secs(30), || {
        let drill = first.drills().into_iter().next()?;
        let id = drill.file_name()?.to_string_lossy().to_string();
        keys(&moto, &format!("fleet/drills/{id}/lease.json")).first().map(|_| id.clone())
    });
    let refused = run(as_lee(drillbook(&second, &moto, &config_second)), &["resume", &id, "--plain"], "y\n");
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("only one operator drives a drill at a time"), "{stderr}");
    holder.kill().unwrap();
    holder.wait().unwrap();

    // Its drillbook died; its lease expired. Taking over needs the holder's name typed.
    expired_lease(&moto, &id, "dana@laptop");
    let wrong = run(as_lee(drillbook(&second, &moto, &config_second)), &["resume", &id, "--plain"], "lee\n");
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr_of(&wrong));
    assert!(stderr_of(&wrong).contains("not taken over: `lee` is not `dana@laptop`"), "{}", stderr_of(&wrong));
    let unattended = run(as_lee(drillbook(&second, &moto, &config_second)), &["resume", &id, "--plain", "--yes"], "");
    assert!(stderr_of(&unattended).contains("needs a person to confirm it"), "{}", stderr_of(&unattended));

    let taken = run(as_lee(drillbook(&second, &moto, &config_second)), &["resume", &id, "--plain"], "dana@laptop\ny\n");
    let (stdout, stderr) = (stdout_of(&taken), stderr_of(&taken));
    assert_eq!(taken.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("Type `dana@laptop` to take the drill over"), "{stderr}");
    let journal = std::fs::read_to_string(second.drills()[0].join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"taken_over\":true"), "the takeover is journaled: {journal}");
    let lease: serde_json::Value =
        serde_json::from_slice(&moto.get_object(BUCKET, &format!("fleet/drills/{id}/lease.json"))).unwrap();
    assert_eq!(lease["released"], true, "given back at the end: {lease}");
}

/// The lease of another operator who took the drill over: live for a minute.
fn taken_over_lease(moto: &Moto, id: &str, holder: &str) {
    let now = jiff::Timestamp::now();
    let lease = format!(
        r#"{{"holder":"{holder}","pid":1,"renewed_at":"{now}","expires_at":"{}","released":false}}"#,
        now + jiff::SignedDuration::from_secs(60)
    );
    moto.put_object(BUCKET, &format!("fleet/drills/{id}/lease.json"), lease.as_bytes());
}

#[test]
fn a_drill_taken_over_elsewhere_stops_here_and_is_not_pushed_from_here() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let home = Home::new();
    let runbook = home.runbook("rb.toml", RUNBOOK);
    let config = config(home.path(), &moto);

    // The drill waits at its manual step, renewing its lease every second.
    let mut command = drillbook(&home, &moto, &config);
    command
        .env("DRILLBOOK_DEBUG_LEASE_RENEW_SECS", "1")
        .args(["run", "--plain"])
        .arg(&runbook)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let _stdin = child.stdin.take();
    let id = support::wait_for("the drill to ship its lease", std::time::Duration::from_secs(30), || {
        let drill = home.drills().into_iter().next()?;
        let id = drill.file_name()?.to_string_lossy().to_string();
        keys(&moto, &format!("fleet/drills/{id}/lease.json")).first().map(|_| id.clone())
    });
    support::wait_for("the manual step's question", std::time::Duration::from_secs(30), || {
        Some(()).filter(|()| home.journal().contains("\"step\":\"check\""))
    });

    // Its laptop slept past the lease's minute and lee took the drill over:
    // the next renewal finds the lease changed, and this drillbook stops.
    taken_over_lease(&moto, &id, "lee@elsewhere");
    let stopped = support::wait_for("drillbook to stop driving", std::time::Duration::from_secs(30), || {
        child.try_wait().unwrap()
    });
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
    assert_eq!(stopped.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("archive: lee@elsewhere took drill {id} over")), "{stdout}");
    assert!(stderr.contains("the archive lease was lost") && stderr.contains("no longer the drill's"), "{stderr}");
    assert!(!stdout.contains("drillbook resume"), "not offered for resuming here: {stdout}");
    let journal = home.journal();
    let last = journal.lines().last().unwrap();
    assert!(last.contains("\"session_ended\"") && last.contains("lease was lost"), "{last}");
    assert!(!journal.contains("\"drill_finished\""), "the drill goes on elsewhere: {journal}");
    let lease: serde_json::Value =
        serde_json::from_slice(&moto.get_object(BUCKET, &format!("fleet/drills/{id}/lease.json"))).unwrap();
    assert_eq!(lease["holder"], "lee@elsewhere", "another operator's lease is left alone: {lease}");

    // What this machine journaled after the takeover is not pushed into lee's drill.
    let pushed = run(drillbook(&home, &moto, &config), &["archive", "push", &id], "");
    assert_eq!(pushed.status.code(), Some(1), "{}", stderr_of(&pushed));
    assert!(
        stderr_of(&pushed).contains("not pushed") && stderr_of(&pushed).contains("lee@elsewhere"),
        "{}",
        stderr_of(&pushed)
    );
}

#[test]
fn kill_9_while_shipping_loses_nothing_push_ships_the_rest() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let home = Home::new();
    let config = config(home.path(), &moto);
    let runbook = home.runbook(
        "slow.toml",
        "[runbook]\nid = \"slow\"\ntitle = \"Slow\"\n[[step]]\nid = \"first\"\nkind = \"command\"\nrun = \"echo one\"\n\
         [[step]]\nid = \"long\"\nkind = \"command\"\nrun = \"for i in $(seq 1 200); do echo line $i; sleep 0.05; done\"\n",
    );
    let mut command = drillbook(&home, &moto, &config);
    command
        .args(["run", "--plain", "--yes"])
        .arg(&runbook)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    // Killed once the journal has begun to arrive and while the long step runs.
    let id = support::wait_for("the first journal batch", std::time::Duration::from_secs(30), || {
        let drill = home.drills().into_iter().next()?;
        let id = drill.file_name()?.to_string_lossy().to_string();
        let journal = std::fs::read_to_string(drill.join("journal.jsonl")).ok()?;
        let running = journal.contains("\"step\":\"long\"");
        (running && !keys(&moto, &format!("fleet/drills/{id}/journal/")).is_empty()).then_some(id)
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let pushed = run(drillbook(&home, &moto, &config), &["archive", "push", &id], "");
    assert!(pushed.status.success(), "{}{}", stdout_of(&pushed), stderr_of(&pushed));
    let verified = run(drillbook(&home, &moto, &config), &["verify", "--archive", &id], "");
    let stdout = stdout_of(&verified);
    assert!(
        stdout.contains("chain intact") && stdout.contains("it is this machine's journal"),
        "{stdout}{}",
        stderr_of(&verified)
    );
}
