//! Parity of the two front-ends: the same drill, answered the same way
//! through the plain front-end (lines of input) and through the TUI's
//! `update` (keys), journals the same events in the same order with the
//! same payloads (times, ids, hashes, durations and the drill's own
//! directory set aside). Both only answer the one conductor's questions, so
//! a front-end that decided something itself would show here.
//!
//! Every bundled runbook and the fixtures with several step kinds run in
//! training mode (no cloud). The answers are scripted per question: yes,
//! the default pick, done, every required checklist item, run again after
//! an interruption, skip a failed step with a reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drillbook::cli::UiArgs;
use drillbook::cli::input::Input;
use drillbook::drill::event::SessionMode;
use drillbook::drill::store::DrillStore;
use drillbook::drive::session::DrillSession;
use drillbook::drive::{self, Question, Request, Update};
use drillbook::engine::vars::{NoPrompt, resolve_vars};
use drillbook::runbook::{Action, Runbook};
use drillbook::ui::app::{App, Effect, Msg};
use drillbook::ui::theme::Theme;
use drillbook::ui::update::update;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;

/// A DR site on loopback whose every page answers 200.
fn healthy_site() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    format!("http://{address}")
}

/// One answer, as the operator gives it in each front-end.
struct Scripted {
    keys: Vec<Msg>,
    lines: Vec<String>,
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(text: &str) -> Vec<Msg> {
    text.chars().map(|c| key(KeyCode::Char(c))).collect()
}

/// The scripted answer to a question, in keys (TUI) and lines (plain).
fn answer(question: &Question, runbook: &Runbook, ticked: &dyn Fn(usize, usize) -> bool) -> Scripted {
    match question {
        Question::Confirm { typed: Some(expected), .. } => {
            let mut keys = typed(expected);
            keys.push(key(KeyCode::Enter));
            Scripted { keys, lines: vec![expected.clone()] }
        }
        Question::Confirm { typed: None, .. } => {
            Scripted { keys: vec![key(KeyCode::Char('y'))], lines: vec!["y".into()] }
        }
        Question::Pick { default, .. } => {
            let line = default.map(|_| String::new()).unwrap_or_else(|| "1".into());
            Scripted { keys: vec![key(KeyCode::Enter)], lines: vec![line] }
        }
        Question::Manual { .. } => Scripted { keys: vec![key(KeyCode::Enter)], lines: vec!["y".into()] },
        Question::Checklist { step } => {
            let Action::Checklist(list) = &runbook.steps[*step].action else { panic!("not a checklist") };
            let mut scripted = Scripted { keys: Vec::new(), lines: Vec::new() };
            for (index, item) in list.items.iter().enumerate() {
                if ticked(*step, index) {
                    scripted.keys.push(key(KeyCode::Char('j')));
                    continue;
                }
                // Required items are ticked (the last one finishes the list in the
                // TUI); optional ones are left.
                let (tui, plain) = if item.required { (' ', "y") } else { ('j', "n") };
                scripted.keys.push(key(KeyCode::Char(tui)));
                scripted.lines.push(plain.into());
            }
            scripted
        }
        Question::Interrupted { .. } => Scripted { keys: vec![key(KeyCode::Char('r'))], lines: vec!["y".into()] },
        Question::Failed { .. } => {
            let mut keys = vec![key(KeyCode::Char('s'))];
            keys.extend(typed("parity skip"));
            keys.push(key(KeyCode::Enter));
            Scripted { keys, lines: vec!["s parity skip".into()] }
        }
    }
}

fn load(path: &Path) -> Runbook {
    drillbook::runbook::load(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

fn open(home: &Path, runbook: Runbook, vars: &[(&str, String)], mode: SessionMode) -> DrillSession {
    let given: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    // Secrets come from their environment variable.
    let env = |name: &str| (name == "DR_DB_PASSWORD").then(|| "pw-parity".to_string());
    let resolved = resolve_vars(&runbook, &given, &env, &mut NoPrompt).expect("variables");
    DrillSession::start(&DrillStore::at(home.to_path_buf()), runbook, resolved, mode, true).expect("start")
}

/// Drives a drill through the TUI's `update`, answering each question with
/// keys; returns the plain lines for the same answers, and the journal.
fn through_the_tui(home: &Path, path: &Path, vars: &[(&str, String)]) -> (Vec<String>, PathBuf) {
    let runbook = load(path);
    let session = open(home, runbook.clone(), vars, SessionMode::Tui);
    let journal = session.dir.journal();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let lines = runtime.block_on(async move {
        let options = drive::Options {
            unattended: false,
            abort: false,
            report_to: None,
            on_second_signal: || std::process::exit(130),
        };
        let mut link = drive::start(session, None, options).expect("conductor");
        let mut app =
            App::new(Arc::new(runbook.clone()), Default::default(), jiff::Timestamp::now(), Theme { color: false });
        app.size = (120, 40);
        let mut lines = Vec::new();
        let send = |effects: Vec<Effect>, link: &drive::Link| {
            for effect in effects {
                match effect {
                    Effect::Answer { id, answer } => link.inputs.send(drive::Input::Answer { id, answer }).unwrap(),
                    Effect::Request(request) => link.inputs.send(drive::Input::Request(request)).unwrap(),
                    Effect::OpenUrl(_) | Effect::StartDrill { .. } | Effect::Exit => {}
                }
            }
        };
        while let Some(message) = link.updates.recv().await {
            let asked = match &message {
                Update::Ask { question, .. } => Some(question.clone()),
                _ => None,
            };
            let finished = matches!(message, Update::Finished(_));
            let ended = matches!(message, Update::Ended(_));
            send(update(&mut app, Msg::Drive(message)), &link);
            if let Some(question) = asked {
                let drill = app.drill.clone().expect("open");
                let ticked = |step: usize, item: usize| drill.steps[step].ticked(item);
                let scripted = answer(&question, &runbook, &ticked);
                lines.extend(scripted.lines);
                for key in scripted.keys {
                    let effects = update(&mut app, key);
                    let ticks = effects
                        .iter()
                        .filter(|e| matches!(e, Effect::Answer { answer: drive::Answer::Tick { .. }, .. }))
                        .count();
                    send(effects, &link);
                    // As an operator's next key comes after the screen showed the tick.
                    let mut journaled = 0;
                    while journaled < ticks {
                        let Some(message) = link.updates.recv().await else { break };
                        journaled += usize::from(matches!(message, Update::Recorded(_)));
                        send(update(&mut app, Msg::Drive(message)), &link);
                    }
                }
            }
            if finished {
                link.inputs.send(drive::Input::Request(Request::Quit { reason: "finished".into() })).unwrap();
            }
            if ended {
                break;
            }
        }
        lines
    });
    (lines, journal)
}

/// The same drill through the plain front-end, with the same answers as lines.
fn through_plain(home: &Path, path: &Path, vars: &[(&str, String)], lines: Vec<String>) -> PathBuf {
    let session = open(home, load(path), vars, SessionMode::Plain);
    let journal = session.dir.journal();
    let ui = UiArgs { plain: true, yes: false, endpoint_url: None, profile: None, context: None, report_to: None };
    let code = drillbook::cli::plain::drive(session, Input::scripted(lines), ui, None, false);
    assert!(code.is_ok(), "{code:?}");
    journal
}

/// A journal's events without what differs between two runs of a drill.
fn normalized(journal: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(journal).unwrap();
    let dir = journal.parent().unwrap().display().to_string();
    let id = journal.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
    text.lines()
        .map(|line| {
            let line = line.replace(&dir, "<DRILL>").replace(&id, "<ID>");
            let record: Value = serde_json::from_str(&line).unwrap();
            let mut event = record["event"].clone();
            strip(&mut event);
            event
        })
        .collect()
}

/// Fields that are times, hashes, process details or sizes of random sandbox data.
const VOLATILE: &[&str] = &[
    "duration_ms",
    "log_sha256",
    "sha256",
    "age_secs",
    "age",
    "last_modified",
    "etag",
    "latency_ms",
    "version_id",
    "pid",
    "host",
    "mode",
    "operator",
    "cert_days_left",
    "drillbook_version",
];

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !VOLATILE.contains(&key.as_str()));
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        Value::String(text) => {
            // Timings inside reasons: "after 3s", "in 12 ms".
            *text = regex_like_numbers(text);
        }
        _ => {}
    }
}

/// Replaces runs of digits in durations and byte counts, which vary between runs.
fn regex_like_numbers(text: &str) -> String {
    let re = regex::Regex::new(r"\d+(\.\d+)?\s?(ms|s|m|h|KiB|MiB|GiB|B)\b").unwrap();
    re.replace_all(text, "<N>").into_owned()
}

/// Runs `runbook` (relative to the repository) through both front-ends and
/// compares their journals.
fn same_journal(runbook: &str, vars: &[(&'static str, &str)]) {
    // `"$DRILLBOOK" sandbox …` in a training step reaches the built binary,
    // not this test.
    // SAFETY: set before this test starts any thread of its own.
    unsafe { std::env::set_var("DRILLBOOK", env!("CARGO_BIN_EXE_drillbook")) };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(runbook);
    let site = healthy_site();
    let mut vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
    vars.push(("site", site.clone()));
    vars.push(("dr_url", site));
    // Only what the runbook declares.
    let declared = load(&path).vars.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
    vars.retain(|(name, _)| declared.iter().any(|d| d == name));
    let home = tempfile::tempdir().unwrap();
    let (lines, tui_journal) = through_the_tui(home.path(), &path, &vars);
    let plain_journal = through_plain(home.path(), &path, &vars, lines.clone());
    let (tui, plain) = (normalized(&tui_journal), normalized(&plain_journal));
    let kinds =
        |events: &[Value]| events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_string()).collect::<Vec<_>>();
    assert_eq!(kinds(&tui), kinds(&plain), "{runbook}: event kinds differ (answers: {lines:?})");
    for (index, (a, b)) in tui.iter().zip(&plain).enumerate() {
        assert_eq!(a, b, "{runbook}: event {} differs", index + 1);
    }
    assert_eq!(kinds(&tui).last().map(String::as_str), Some("drill_finished"), "{runbook}: {:?}", kinds(&tui));
}

#[test]
fn the_bundled_quarterly_drill() {
    same_journal("runbooks/backup-verification.toml", &[("project", "acme")]);
}

#[test]
fn the_bundled_postgres_restore_drill() {
    same_journal("runbooks/postgres-restore-drill.toml", &[("project", "acme")]);
}

#[test]
fn the_bundled_provisioning_runbook() {
    same_journal("runbooks/dr-provisioning.toml", &[("project", "acme")]);
}

/// Every step kind and every question: picks, typed and yes/no
/// confirmations, a failure skipped with a reason, a `when` skip, a
/// checklist with an optional item, a manual step, a teardown.
#[test]
fn every_step_kind_and_question() {
    same_journal("tests/fixtures/parity.toml", &[("project", "acme")]);
}

/// Captures that later steps use, a confirmed command, a checklist, a manual step.
#[test]
fn the_crash_test_drill() {
    same_journal("tests/fixtures/crash.toml", &[]);
}
