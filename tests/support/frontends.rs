//! The two front-ends driven in the test process over the real conductor:
//! the TUI's `update` answering with keys (a headless TUI: no terminal, the
//! same keys and dialogs), and the plain front-end answering lines of
//! scripted input. Journals are compared after setting aside what differs
//! between two runs of one drill (times, ids, hashes, durations, the drill's
//! directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drillbook::cli::UiArgs;
use drillbook::cli::input::Input;
use drillbook::drill::event::SessionMode;
use drillbook::drill::store::DrillStore;
use drillbook::drive::session::DrillSession;
use drillbook::drive::{self, Ending, Question, Request, Update};
use drillbook::engine::vars::{NoPrompt, resolve_vars};
use drillbook::runbook::{Action, Runbook};
use drillbook::ui::app::{App, Effect, Msg};
use drillbook::ui::theme::Theme;
use drillbook::ui::update::update;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;

/// One answer as the operator gives it in each front-end.
pub struct Scripted {
    pub keys: Vec<Msg>,
    pub lines: Vec<String>,
    /// How long the operator thinks before answering.
    pub pause: Duration,
}

impl Scripted {
    pub fn new(keys: Vec<Msg>, line: &str) -> Self {
        Scripted { keys, lines: vec![line.to_string()], pause: Duration::ZERO }
    }
}

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn typed(text: &str) -> Vec<Msg> {
    text.chars().map(|c| key(KeyCode::Char(c))).collect()
}

/// The usual answer: yes, the default pick (else the first row), done,
/// every required checklist item, run again after an interruption, skip a
/// failed step with a reason.
pub fn usual_answer(question: &Question, app: &App) -> Scripted {
    match question {
        Question::Confirm { typed: Some(expected), .. } => {
            let mut keys = typed(expected);
            keys.push(key(KeyCode::Enter));
            Scripted::new(keys, expected)
        }
        Question::Confirm { typed: None, .. } => Scripted::new(vec![key(KeyCode::Char('y'))], "y"),
        Question::Pick { default, .. } => {
            Scripted::new(vec![key(KeyCode::Enter)], if default.is_some() { "" } else { "1" })
        }
        Question::Manual { .. } => Scripted::new(vec![key(KeyCode::Enter)], "y"),
        Question::Checklist { step } => {
            let Action::Checklist(list) = &app.runbook.steps[*step].action else { panic!("not a checklist") };
            let drill = app.drill.as_ref().expect("an open drill");
            let mut scripted = Scripted { keys: Vec::new(), lines: Vec::new(), pause: Duration::ZERO };
            for (index, item) in list.items.iter().enumerate() {
                if drill.steps[*step].ticked(index) {
                    scripted.keys.push(key(KeyCode::Char('j')));
                    continue;
                }
                // Required items are ticked; optional ones are left.
                let (tui, plain) = if item.required { (' ', "y") } else { ('j', "n") };
                scripted.keys.push(key(KeyCode::Char(tui)));
                scripted.lines.push(plain.into());
            }
            // Finished with its own key, not by the last tick.
            scripted.keys.push(key(KeyCode::Enter));
            scripted
        }
        Question::Interrupted { .. } => Scripted::new(vec![key(KeyCode::Char('r'))], "y"),
        Question::Failed { .. } => {
            let mut keys = vec![key(KeyCode::Char('s'))];
            keys.extend(typed("parity skip"));
            keys.push(key(KeyCode::Enter));
            Scripted::new(keys, "s parity skip")
        }
    }
}

pub fn load(path: &Path) -> Runbook {
    drillbook::runbook::load(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

/// Starts a training drill (`training`) or a real one in `home`.
pub fn open(home: &Path, runbook: Runbook, vars: &[(&str, String)], mode: SessionMode, training: bool) -> DrillSession {
    let given: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    // Secrets come from their environment variable.
    let env = |name: &str| (name == "DR_DB_PASSWORD").then(|| "pw-parity".to_string());
    let resolved = resolve_vars(&runbook, &given, &env, &mut NoPrompt).expect("variables");
    DrillSession::start(&DrillStore::at(home.to_path_buf()), runbook, resolved, mode, training).expect("start")
}

/// What a drill driven through a front-end left.
pub struct Run {
    /// The plain lines for the answers the TUI gave.
    pub lines: Vec<String>,
    pub journal: PathBuf,
    pub ending: Option<Ending>,
    /// The questions asked, in order.
    pub questions: Vec<Question>,
}

/// Drives `session` through the TUI's `update`, answering each question
/// with the keys `answer` gives.
pub fn through_the_tui(session: DrillSession, mut answer: impl FnMut(&Question, &App) -> Scripted) -> Run {
    let journal = session.dir.journal();
    let runbook = session.runbook.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (lines, ending, questions) = runtime.block_on(async move {
        let options = drive::Options {
            unattended: false,
            abort: false,
            report_to: None,
            on_second_signal: || std::process::exit(130),
            interrupt_stops_the_step: false,
            archive: None,
        };
        let mut link = drive::start(session, None, options).expect("conductor");
        let mut app = App::new(Arc::new(runbook), Default::default(), jiff::Timestamp::now(), Theme { color: false });
        app.size = (120, 40);
        let (mut lines, mut questions, mut ending) = (Vec::new(), Vec::new(), None);
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
            if let Update::Ended(end) = &message {
                ending = Some(end.clone());
            }
            send(update(&mut app, Msg::Drive(message)), &link);
            if let Some(question) = asked {
                let scripted = answer(&question, &app);
                questions.push(question);
                lines.extend(scripted.lines);
                tokio::time::sleep(scripted.pause).await;
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
            if ending.is_some() {
                break;
            }
        }
        (lines, ending, questions)
    });
    Run { lines, journal, ending, questions }
}

/// The same drill through the plain front-end, answering `lines`.
pub fn through_plain(session: DrillSession, lines: Vec<String>) -> (Result<std::process::ExitCode, String>, PathBuf) {
    let journal = session.dir.journal();
    let ui = UiArgs { plain: true, yes: false, endpoint_url: None, profile: None, context: None, report_to: None };
    (drillbook::cli::plain::drive(session, Input::scripted(lines), ui, None, false), journal)
}

/// A journal's events without what differs between two runs of a drill.
pub fn normalized(journal: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(journal).unwrap();
    let dir = journal.parent().unwrap().display().to_string();
    let id = journal.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
    let numbers = regex::Regex::new(r"\d+(\.\d+)?\s?(ms|s|m|h|KiB|MiB|GiB|B)\b").unwrap();
    let times = regex::Regex::new(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(\+00|Z)?").unwrap();
    text.lines()
        .map(|line| {
            let line = line.replace(&dir, "<DRILL>").replace(&id, "<ID>");
            // Times a sandbox answered (a freshness check's newest data).
            let line = times.replace_all(&line, "<TIME>");
            let record: Value = serde_json::from_str(&line).unwrap();
            let mut event = record["event"].clone();
            strip(&mut event, &numbers);
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
    "elapsed_ms",
];

fn strip(value: &mut Value, numbers: &regex::Regex) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !VOLATILE.contains(&key.as_str()));
            map.values_mut().for_each(|v| strip(v, numbers));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, numbers)),
        // Timings and sizes inside reasons and output: "after 3s", "2.0 MiB".
        Value::String(text) => *text = numbers.replace_all(text, "<N>").into_owned(),
        _ => {}
    }
}

pub fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_string()).collect()
}

/// A DR site on loopback whose every page answers 200.
pub fn healthy_site() -> super::server::Serving {
    super::server::serve(|mut stream, _| {
        use std::io::{Read, Write};
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    })
}

/// Points `"$DRILLBOOK" sandbox …` in training steps at the built binary, not
/// the test: call first in a test, before it starts threads of its own.
pub fn sandbox_commands_reach(binary: &str) {
    // SAFETY: called at the start of the test, before its threads exist.
    unsafe { std::env::set_var("DRILLBOOK", binary) };
}
