//! Drill notifications (`[[notify]]` in the configuration) received by a
//! webhook server this test starts on loopback: what Slack and a generic
//! webhook get and in which order, that the secret URL never reaches the
//! drill's files or output, that a server answering 500 is retried and then
//! journaled as failed while the drill passes, that a hanging server never
//! holds the drill up, the "waiting" notification (with the debug-build
//! knob `DRILLBOOK_DEBUG_NOTIFY_WAITING_SECS`), training drills marked as
//! such, the `--report-to` location (uploaded to moto, or not), and the
//! notifier's own time limit and retries through the library.

use crate::support;

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drillbook::config::NotifyKind;
use drillbook::engine::notify::{Delivery, DeliveryFailure, DrillInfo, Notification, Notifier, Target, What};
use serde_json::Value;
use support::http::read_head;
use support::server::{Serving, serve};
use support::{Home, stderr_of, stdout_of, wait_for};

const SLACK_SECRET: &str = "T0SECRET/B0SECRET/slack-hook-secret-4f2a";
const WEBHOOK_SECRET: &str = "webhook-secret-9c1e";

/// How the test server answers.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Status(u16, &'static str),
    /// Reads the request and never answers (until the server is dropped).
    Hang,
}

/// One request the server received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    content_type: Option<String>,
    body: Value,
}

/// A webhook receiver on 127.0.0.1; stops when dropped.
struct Hook {
    serving: Serving,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Hook {
    fn start(answer: Answer) -> Hook {
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        let serving = serve(move |stream, connection| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(reading) = stream.try_clone() else { return };
            let mut reader = BufReader::new(reading);
            let Ok(Some(head)) = read_head(&mut reader) else { return };
            let mut body = vec![0; usize::try_from(head.content_length().unwrap_or(0)).unwrap()];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let path = head.start.split_whitespace().nth(1).unwrap_or_default().to_string();
            let body = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(format!("not JSON: {body:?}")));
            let content_type = head.header("content-type").map(str::to_string);
            seen.lock().unwrap().push(Received { path, content_type, body });
            let mut stream = stream;
            match answer {
                Answer::Ok => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                }
                Answer::Status(status, reason) => {
                    let answer =
                        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    let _ = stream.write_all(answer.as_bytes());
                }
                Answer::Hang => {
                    while !connection.stopping() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        });
        Hook { serving, received }
    }

    /// The secret URL of a target on this server.
    fn url(&self, secret: &str) -> String {
        format!("http://127.0.0.1:{}/{secret}", self.serving.port())
    }

    /// The URL as drillbook may show it.
    fn shown(&self) -> String {
        format!("http://127.0.0.1:{}/…", self.serving.port())
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Bodies received on `/SECRET`, in order.
    fn bodies(&self, secret: &str) -> Vec<Value> {
        let path = format!("/{secret}");
        self.received().into_iter().filter(|r| r.path == path).map(|r| r.body).collect()
    }
}

/// The configuration file, in a directory of its own (not DRILLBOOK_HOME).
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn config(targets: &[(&str, &str)]) -> ConfigFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let mut text = String::from("operator = \"dana\"\n");
    for (kind, env) in targets {
        text.push_str(&format!("[[notify]]\nkind = \"{kind}\"\nurl_env = \"{env}\"\n"));
    }
    std::fs::write(&path, text).unwrap();
    ConfigFile { _dir: dir, path }
}

/// `drillbook` with the configuration and its hooks' URLs in the environment.
fn drillbook(home: &Home, config: &ConfigFile, hooks: &[(&str, String)]) -> std::process::Command {
    let mut command = home.cmd_std();
    command.env("DRILLBOOK_CONFIG", &config.path).env_remove("DRILLBOOK_OPERATOR");
    for (name, url) in hooks {
        command.env(name, url);
    }
    command
}

const DRILL: &str = r#"
[runbook]
id = "notify-drill"
title = "Notification drill"
project = "acme"
rto_target = "1h"
rpo_target = "24h"

[[step]]
id = "restore"
title = "Restore the backup"
kind = "command"
run = "echo restored"

[[step]]
id = "flaky"
title = "Warm the cache"
kind = "command"
run = "echo cold >&2; exit 3"
optional = true
on_failure = "continue"

[[step]]
id = "scale-down"
kind = "command"
run = "echo scaled down"
always = true
"#;

/// One step: two notifications (started, finished).
const ONE_STEP: &str = r#"
[runbook]
id = "one-step"
title = "One step"

[[step]]
id = "restore"
kind = "command"
run = "echo restored"
"#;

/// `drillbook run --plain --yes`, timed; its output.
fn run_unattended(mut command: std::process::Command, runbook: &Path) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let output =
        command.args(["run", "--plain", "--yes"]).arg(runbook).stdin(Stdio::null()).output().expect("run drillbook");
    (output, started.elapsed())
}

/// The journal's events, parsed.
fn events(home: &Home) -> Vec<Value> {
    home.journal().lines().map(|line| serde_json::from_str::<Value>(line).unwrap()["event"].clone()).collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Seconds between two journaled events (their records' `ts`).
fn seconds_between(home: &Home, from: &str, to: &str) -> f64 {
    let stamp = |kind: &str| -> jiff::Timestamp {
        let line = home.journal().lines().find(|l| l.contains(&format!("\"type\":\"{kind}\""))).unwrap().to_string();
        let record: Value = serde_json::from_str(&line).unwrap();
        record["ts"].as_str().unwrap().parse().unwrap()
    };
    stamp(to).duration_since(stamp(from)).as_secs_f64()
}

fn assert_secret_nowhere(home: &Home, output: &std::process::Output, secrets: &[&str]) {
    let mut texts: Vec<(String, String)> = home
        .all_files()
        .iter()
        .map(|file| (file.display().to_string(), String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned()))
        .collect();
    assert!(texts.iter().any(|(name, _)| name.ends_with("journal.jsonl")), "the home's files are read");
    texts.push(("stdout".into(), stdout_of(output)));
    texts.push(("stderr".into(), stderr_of(output)));
    for secret in secrets {
        // The last part of the path alone would let someone post too.
        let tail = secret.rsplit('/').next().unwrap();
        for (name, text) in &texts {
            assert!(!text.contains(tail), "the webhook URL's secret path is in {name}:\n{text}");
        }
    }
}

#[test]
fn slack_and_webhook_hear_the_drill_in_order_and_the_url_stays_secret() {
    let hook = Hook::start(Answer::Ok);
    let home = Home::new();
    let config = config(&[("slack", "TEST_SLACK_HOOK"), ("webhook", "TEST_WEBHOOK"), ("slack", "TEST_UNSET_HOOK")]);
    let runbook = home.runbook("drill.toml", DRILL);
    let command = drillbook(
        &home,
        &config,
        &[("TEST_SLACK_HOOK", hook.url(SLACK_SECRET)), ("TEST_WEBHOOK", hook.url(WEBHOOK_SECRET))],
    );
    let (output, _) = run_unattended(command, &runbook);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr_of(&output));
    assert!(stdout.contains("notify: $TEST_UNSET_HOOK is unset, so that slack target hears nothing"), "{stdout}");

    // Everything arrived before the process exited: no waiting here.
    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    let slack: Vec<String> =
        hook.bodies(SLACK_SECRET).iter().map(|b| b["text"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(slack.len(), 3, "started, the failed step, finished: {slack:#?}");
    assert_eq!(slack[0], format!("Drill started: Notification drill (project acme, drill {id}), operator dana"));
    assert!(
        slack[1].starts_with(&format!(
            "Notification drill (project acme, drill {id}): step `flaky` (Warm the cache) failed (attempt 1): "
        )),
        "{}",
        slack[1]
    );
    assert!(slack[1].contains('3'), "the reason names the exit code: {}", slack[1]);
    let lines: Vec<&str> = slack[2].lines().collect();
    assert_eq!(lines[0], format!("Notification drill (project acme, drill {id}) passed with deviations."));
    assert!(lines[1].starts_with("RTO ") && lines[1].contains("(target 1h): PASS"), "{}", lines[1]);
    assert!(lines[1].contains(" · RPO not measured (target 1d): n/a"), "{}", lines[1]);
    assert_eq!(lines[2], format!("Reports: {}", drill.display()));

    let webhook = hook.bodies(WEBHOOK_SECRET);
    let kinds: Vec<&str> = webhook.iter().map(|b| b["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["drill_started", "step_failed", "drill_finished"]);
    for body in &webhook {
        assert_eq!(body["drill_id"], id.as_str());
        assert_eq!(body["runbook_id"], "notify-drill");
        assert_eq!(body["project"], "acme");
        assert_eq!(body["operator"], "dana");
        assert_eq!(body["training"], false);
    }
    assert_eq!((webhook[1]["step"].as_str(), webhook[1]["attempt"].as_u64()), (Some("flaky"), Some(1)));
    assert_eq!(webhook[1]["step_title"], "Warm the cache");
    let finished = &webhook[2];
    assert_eq!(finished["outcome"], "passed with deviations");
    assert_eq!(finished["rto"]["verdict"], "PASS");
    assert_eq!(finished["rto"]["target_secs"], 3600);
    assert!(finished["rto"]["achieved_secs"].is_u64(), "{finished}");
    assert_eq!(finished["rpo"]["verdict"], "n/a");
    assert!(finished.get("rpo_data").is_none(), "no sql-check measured the data: {finished}");
    assert_eq!(finished["reports_dir"], drill.display().to_string().as_str());
    assert_eq!(finished["report_to"], Value::Null);
    for received in hook.received() {
        assert_eq!(received.content_type.as_deref(), Some("application/json"), "{received:?}");
    }

    assert!(of_type(&events(&home), "notification_failed").is_empty(), "{}", home.journal());
    assert_secret_nowhere(&home, &output, &[SLACK_SECRET, WEBHOOK_SECRET]);
}

#[test]
fn a_server_answering_500_is_retried_then_journaled_and_the_drill_still_passes() {
    let hook = Hook::start(Answer::Status(500, "Internal Server Error"));
    let home = Home::new();
    let config = config(&[("slack", "TEST_SLACK_HOOK")]);
    let runbook = home.runbook("drill.toml", ONE_STEP);
    let command = drillbook(&home, &config, &[("TEST_SLACK_HOOK", hook.url(SLACK_SECRET))]);
    let (output, took) = run_unattended(command, &runbook);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr_of(&output));

    // Three attempts for each of the two notifications.
    let texts: Vec<String> = hook.bodies(SLACK_SECRET).iter().map(|b| b["text"].to_string()).collect();
    assert_eq!(texts.len(), 6, "{texts:#?}");
    for (n, text) in texts.iter().enumerate() {
        assert_eq!(text, &texts[n / 3 * 3], "attempts of one notification are the same request");
    }

    let events = events(&home);
    let failed = of_type(&events, "notification_failed");
    let what: Vec<&str> = failed.iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert_eq!(what, ["drill_started", "drill_finished"], "{}", home.journal());
    for event in &failed {
        assert_eq!(event["target"], hook.shown().as_str());
        assert_eq!(event["error"], "the server answered 500 Internal Server Error (3 attempts)");
    }
    assert!(
        stdout.contains(&format!(
            "notification `drill_finished` to {} failed: the server answered 500 Internal Server Error (3 attempts)",
            hook.shown()
        )),
        "{stdout}"
    );
    // Not a deviation: the verdict is what the steps made it.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(home.only_drill().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "passed");
    assert_eq!(report["findings"], serde_json::json!([]));
    // The steps did not wait for any of it, and the end waited only for the
    // retries: 2 × (0.5 s + 1 s) of pauses, within its 5 s.
    assert!(seconds_between(&home, "drill_started", "drill_finished") < 3.0, "{}", home.journal());
    assert!(took < Duration::from_secs(15), "the run took {took:?}");
    assert_secret_nowhere(&home, &output, &[SLACK_SECRET]);
}

#[test]
fn a_hanging_server_never_holds_the_drill_up() {
    let hook = Hook::start(Answer::Hang);
    let home = Home::new();
    let config = config(&[("webhook", "TEST_WEBHOOK")]);
    let runbook = home.runbook("drill.toml", DRILL);
    let command = drillbook(&home, &config, &[("TEST_WEBHOOK", hook.url(WEBHOOK_SECRET))]);
    let (output, took) = run_unattended(command, &runbook);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout_of(&output), stderr_of(&output));

    // A request waits up to 10 s for its answer; the drill waits for none:
    // its steps run at once, and the end waits 5 s at most.
    assert!(seconds_between(&home, "drill_started", "drill_finished") < 3.0, "{}", home.journal());
    assert!(took < Duration::from_secs(9), "the run took {took:?}: it waited on the hanging server");
    assert!(!hook.received().is_empty(), "the first notification reached the server");

    let events = events(&home);
    let failed = of_type(&events, "notification_failed");
    let mut what: Vec<&str> = failed.iter().map(|e| e["what"].as_str().unwrap()).collect();
    what.sort_unstable();
    assert_eq!(what, ["drill_finished", "drill_started", "step_failed"], "{}", home.journal());
    for event in &failed {
        assert_eq!(event["error"], "not delivered yet 5s after the drill ended, when drillbook exited");
    }
    assert_secret_nowhere(&home, &output, &[WEBHOOK_SECRET]);
}

const WAITING_DRILL: &str = r#"
[runbook]
id = "waiting-drill"
title = "Waiting drill"

[[step]]
id = "restore"
title = "Restore the backup"
kind = "command"
run = "echo restored"
confirm = true

[[step]]
id = "smoke"
title = "Smoke test"
kind = "manual"
"#;

#[test]
fn a_question_left_waiting_is_notified_once() {
    let hook = Hook::start(Answer::Ok);
    let home = Home::new();
    let config = config(&[("webhook", "TEST_WEBHOOK")]);
    let runbook = home.runbook("drill.toml", WAITING_DRILL);
    let mut drill = drillbook(&home, &config, &[("TEST_WEBHOOK", hook.url(WEBHOOK_SECRET))])
        .env("DRILLBOOK_DEBUG_NOTIFY_WAITING_SECS", "1")
        .args(["run", "--plain"])
        .arg(&runbook)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events = || hook.bodies(WEBHOOK_SECRET).iter().map(|b| b["event"].as_str().unwrap().to_string()).collect();
    let waiting = |n: usize| {
        wait_for(&format!("waiting notification #{n}"), Duration::from_secs(20), || {
            let bodies = hook.bodies(WEBHOOK_SECRET);
            let waiting: Vec<Value> = bodies.into_iter().filter(|b| b["event"] == "waiting").collect();
            waiting.get(n - 1).cloned()
        })
    };
    let confirm = waiting(1);
    assert_eq!((confirm["step"].as_str(), confirm["question"].as_str()), (Some("restore"), Some("confirm")));
    assert!(confirm["waited_secs"].as_u64() >= Some(1), "{confirm}");
    // Still unanswered three of its waits later: still notified only once.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(events(), vec!["drill_started".to_string(), "waiting".into()]);

    let stdin = drill.stdin.as_mut().unwrap();
    stdin.write_all(b"y\n").unwrap();
    let manual = waiting(2);
    assert_eq!((manual["step"].as_str(), manual["question"].as_str()), (Some("smoke"), Some("manual")));
    assert!(manual["text"].as_str().unwrap().contains("has waited 1s for the manual step to be done"), "{manual}");
    stdin.write_all(b"y checked by hand\n").unwrap();
    drop(drill.stdin.take());
    let output = drill.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout_of(&output), stderr_of(&output));
    let events: Vec<String> = events();
    assert_eq!(events, ["drill_started", "waiting", "waiting", "drill_finished"]);
}

#[test]
fn training_drills_are_notified_as_training() {
    let hook = Hook::start(Answer::Ok);
    let home = Home::new();
    let config = config(&[("slack", "TEST_SLACK_HOOK"), ("webhook", "TEST_WEBHOOK")]);
    let runbook = home.runbook("drill.toml", DRILL);
    let mut command = drillbook(
        &home,
        &config,
        &[("TEST_SLACK_HOOK", hook.url(SLACK_SECRET)), ("TEST_WEBHOOK", hook.url(WEBHOOK_SECRET))],
    );
    command.args(["run", "--plain", "--yes", "--training"]).arg(&runbook).stdin(Stdio::null());
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout_of(&output), stderr_of(&output));
    let slack = hook.bodies(SLACK_SECRET);
    assert!(!slack.is_empty());
    for body in &slack {
        assert!(body["text"].as_str().unwrap().starts_with("[TRAINING] "), "{body}");
    }
    assert!(slack[0]["text"].as_str().unwrap().starts_with("[TRAINING] Training drill started: "), "{}", slack[0]);
    let webhook = hook.bodies(WEBHOOK_SECRET);
    assert!(webhook.iter().all(|b| b["training"] == true), "{webhook:#?}");
    assert_eq!(webhook.last().unwrap()["event"], "drill_finished");
}

// --- the notifier through the library ---------------------------------------------------------

fn notification() -> Notification {
    let drill = Arc::new(DrillInfo {
        drill_id: "d1".into(),
        runbook_id: "r1".into(),
        runbook_title: "R".into(),
        project: None,
        operator: "dana".into(),
        training: false,
    });
    Notification { drill, what: What::Started }
}

/// Starts a notifier with one slack target and quick attempts; failures arrive on the receiver.
fn start_notifier(url: &str, delivery: Delivery) -> (Notifier, std::sync::mpsc::Receiver<DeliveryFailure>) {
    let (failures, failed) = std::sync::mpsc::channel();
    let failures = Mutex::new(failures);
    let target = Target::new(NotifyKind::Slack, url, Duration::from_secs(60)).unwrap();
    let on_failure = Arc::new(move |failure| {
        let _ = failures.lock().unwrap().send(failure);
    });
    (Notifier::start(vec![target], delivery, on_failure), failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_has_a_time_limit_and_the_sender_never_waits() {
    let hook = Hook::start(Answer::Hang);
    let delivery = Delivery { attempts: 2, timeout: Duration::from_millis(300), backoff: Duration::from_millis(100) };
    let (notifier, failed) = start_notifier(&hook.url(SLACK_SECRET), delivery);
    let sent = Instant::now();
    notifier.send(notification());
    assert!(sent.elapsed() < Duration::from_millis(50), "sending waited {:?}", sent.elapsed());
    let failure = tokio::task::spawn_blocking(move || failed.recv_timeout(Duration::from_secs(20))).await.unwrap();
    let failure = failure.expect("the failure is reported");
    assert_eq!(failure.error, "no answer within 300ms (2 attempts)");
    assert_eq!((failure.what, failure.target.as_str()), ("drill_started", hook.shown().as_str()));
    assert!(sent.elapsed() >= Duration::from_millis(700), "two attempts of 300 ms and a pause: {:?}", sent.elapsed());
    assert_eq!(hook.received().len(), 2);
    assert!(notifier.settle(Duration::from_secs(1)).await.is_empty(), "nothing is left on its way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_url_is_not_retried_and_settle_gives_up_on_what_is_still_on_its_way() {
    let hook = Hook::start(Answer::Status(404, "Not Found"));
    let (notifier, failed) = start_notifier(&hook.url(SLACK_SECRET), Delivery::default());
    notifier.send(notification());
    let failure = tokio::task::spawn_blocking(move || failed.recv_timeout(Duration::from_secs(20))).await.unwrap();
    assert_eq!(failure.unwrap().error, "the server answered 404 Not Found (not retried)");
    assert_eq!(hook.received().len(), 1);

    let hanging = Hook::start(Answer::Hang);
    let (notifier, failed) = start_notifier(&hanging.url(SLACK_SECRET), Delivery::default());
    notifier.send(notification());
    let settling = Instant::now();
    let undelivered = notifier.settle(Duration::from_millis(500)).await;
    assert!(settling.elapsed() < Duration::from_secs(3), "settle took {:?}", settling.elapsed());
    assert_eq!(undelivered.len(), 1, "{undelivered:?}");
    assert_eq!(undelivered[0].what, "drill_started");
    assert!(failed.try_recv().is_err(), "what settle gave up on is not reported again");
}

#[test]
fn a_target_url_that_cannot_be_used_is_refused_without_showing_it() {
    for url in
        ["ftp://hooks.example.com/secret-a", "hooks.example.com/secret-b", "https://user:pw@hooks.example.com/secret-c"]
    {
        let error = Target::new(NotifyKind::Webhook, url, Duration::from_secs(60)).unwrap_err().to_string();
        assert!(!error.contains("secret"), "{error}");
        assert!(error.contains("is not a URL drillbook can post to"), "{error}");
    }
}

use crate::moto;

#[test]
fn the_end_says_where_the_reports_were_uploaded_or_that_the_upload_failed() {
    let moto = moto::Moto::start();
    moto.create_bucket("drill-reports");
    for (bucket, uploaded) in [("drill-reports", true), ("no-such-bucket", false)] {
        let hook = Hook::start(Answer::Ok);
        let home = Home::new();
        let config = config(&[("slack", "TEST_SLACK_HOOK"), ("webhook", "TEST_WEBHOOK")]);
        let runbook = home.runbook("drill.toml", ONE_STEP);
        let mut command = drillbook(
            &home,
            &config,
            &[("TEST_SLACK_HOOK", hook.url(SLACK_SECRET)), ("TEST_WEBHOOK", hook.url(WEBHOOK_SECRET))],
        );
        command.envs(moto.env()).args(["run", "--plain", "--yes", "--report-to", &format!("s3://{bucket}/team")]);
        let output = command.arg(&runbook).stdin(Stdio::null()).output().unwrap();
        let stdout = stdout_of(&output);
        assert_eq!(output.status.code(), Some(if uploaded { 0 } else { 1 }), "{stdout}{}", stderr_of(&output));
        let drill = home.only_drill();
        let location = format!("s3://{bucket}/team/{}/", drill.file_name().unwrap().to_string_lossy());
        let finished = hook.bodies(WEBHOOK_SECRET).pop().unwrap();
        assert_eq!(finished["event"], "drill_finished");
        assert_eq!(finished["report_to"], location.as_str());
        assert_eq!(finished["report_uploaded"], uploaded);
        let text = hook.bodies(SLACK_SECRET).pop().unwrap()["text"].as_str().unwrap().to_string();
        let said = if uploaded {
            format!("Reports: {} and {location}", drill.display())
        } else {
            format!("Reports: {}; the upload to {location} failed", drill.display())
        };
        assert!(text.ends_with(&said), "{text}");
    }
}
