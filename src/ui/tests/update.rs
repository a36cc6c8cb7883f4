//! `update` for every key action and every report of the conductor: the
//! conductor's questions open dialogs, keys answer them, and requests go
//! back; `update` itself never decides what runs next.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::*;
use crate::drive::{Answer, PickRow, PickWhat, Request};
use crate::engine::OutputStream;
use crate::ui::app::{Focus, Modal, PickerPurpose, Screen, TextPurpose};

fn type_text(h: &mut Harness, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| h.send(ch(c))).collect()
}

fn output(step: usize, lines: Vec<String>) -> Msg {
    Msg::Drive(Update::Output { step, stream: OutputStream::Stdout, lines: lines.into() })
}

const FAILING: &str = r#"
[runbook]
id = "f"
title = "Failing"
[[step]]
id = "boom"
kind = "command"
run = "exit 3"
[[step]]
id = "after"
kind = "command"
run = "echo after"
[[step]]
id = "teardown"
kind = "command"
always = true
run = "echo teardown"
"#;

#[test]
fn start_screen_fills_defaults_and_follows_edits() {
    let mut h = Harness::start(walkthrough());
    let value = |h: &Harness, name: &str| {
        h.app.start.fields.iter().find(|f| f.var.name == name).unwrap().input.value().to_string()
    };
    assert_eq!(value(&h, "dr_namespace"), "acme-dr");
    // Focus is on `project` (first field); replace its value.
    for _ in 0..4 {
        h.send(key(KeyCode::Backspace));
    }
    type_text(&mut h, "globex");
    assert_eq!(value(&h, "project"), "globex");
    assert_eq!(value(&h, "prod_namespace"), "globex-production", "untouched defaults follow");
    let effects = h.send(key(KeyCode::Enter));
    match &effects[..] {
        [Effect::StartDrill { values, secrets, .. }] => {
            assert_eq!(values["dr_namespace"], "globex-dr");
            assert!(secrets.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn start_screen_refuses_empty_required_values() {
    let mut h = Harness::start(runbook(
        "[runbook]\nid = \"p\"\ntitle = \"P\"\n[vars.project]\nprompt = \"Project\"\n[vars.token]\nsecret = true\n[[step]]\nid = \"a\"\nkind = \"manual\"\n",
    ));
    assert!(h.send(key(KeyCode::Enter)).is_empty());
    assert_eq!(h.app.start.fields[0].error.as_deref(), Some("needed"));
    assert!(h.app.start.fields[1].error.as_deref().unwrap().contains("DRILLBOOK_SECRET_TOKEN"));
    type_text(&mut h, "acme");
    h.send(key(KeyCode::Tab));
    type_text(&mut h, "s3cret");
    match &h.send(key(KeyCode::Enter))[..] {
        [Effect::StartDrill { values, secrets, .. }] => {
            assert_eq!(values["project"], "acme");
            assert_eq!(secrets["token"], "s3cret");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn choices_open_the_picker_and_the_choice_is_taken() {
    let mut h = Harness::start(runbook(
        "[runbook]\nid = \"p\"\ntitle = \"P\"\n[vars.env]\nchoices = [\"staging\", \"production\"]\n[[step]]\nid = \"a\"\nkind = \"manual\"\n",
    ));
    h.send(key(KeyCode::Enter));
    assert!(matches!(h.app.modal, Some(Modal::Picker { .. })));
    h.send(key(KeyCode::Down));
    h.send(key(KeyCode::Enter));
    assert!(h.app.modal.is_none());
    assert_eq!(h.app.start.fields[0].input.value(), "production");
    assert!(matches!(&h.send(key(KeyCode::Enter))[..], [Effect::StartDrill { .. }]));
}

#[test]
fn opening_a_drill_shows_it_and_enter_answers_a_manual_step() {
    let mut h = Harness::opened(walkthrough());
    assert_eq!(h.app.screen, Screen::Main);
    assert!(h.send(key(KeyCode::Enter)).is_empty(), "nothing is asked yet: Enter does nothing");
    h.starts("brief", false);
    let id = h.ask(Question::Manual { step: 0 });
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Done { note: None } }]);
    assert!(h.send(key(KeyCode::Enter)).is_empty(), "an answered question is not answered twice");
    assert_eq!(h.status_of("brief"), "running", "the state changes only with what the conductor journals");
    h.done_by_hand("brief");
    h.starts("prepare-sandbox", true);
    assert_eq!(h.app.selected, 1, "the view follows the step that starts");
}

#[test]
fn output_goes_to_its_steps_log() {
    let mut h = Harness::opened(walkthrough());
    h.starts("prepare-sandbox", true);
    h.send(output(1, vec!["listing".into()]));
    assert!(h.app.logs[1].len() >= 2, "marker + line");
    h.ends("prepare-sandbox", 0);
    assert_eq!(h.status_of("prepare-sandbox"), "done");
}

#[test]
fn ticks_and_other_messages_decide_nothing() {
    let mut h = Harness::opened(walkthrough());
    for msg in [Msg::Tick(t0()), Msg::Resize(100, 30), Msg::Notice("hello".into())] {
        assert!(h.send(msg).is_empty());
    }
    assert_eq!(h.status_of("brief"), "pending");
}

fn confirm(step: usize, typed: Option<&str>) -> Question {
    Question::Confirm {
        step,
        command: "dropdb --if-exists acme_dr && pg_restore backup.pgdump".into(),
        target: "training: simulated, not run".into(),
        typed: typed.map(str::to_string),
        mismatch: None,
    }
}

#[test]
fn a_confirmation_names_the_command_and_yes_runs_it() {
    let mut h = Harness::opened(walkthrough());
    let id = h.ask(confirm(3, None));
    match &h.app.modal {
        Some(Modal::Confirm { step: 3, command, target }) => {
            assert!(command.contains("dropdb --if-exists acme_dr"));
            assert_eq!(target, "training: simulated, not run");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.app.selected, 3);
    assert_eq!(h.send(ch('y')), vec![Effect::Answer { id, answer: Answer::Yes }]);
    assert!(h.app.modal.is_none());
}

#[test]
fn declining_a_confirmation_asks_why_and_an_empty_reason_is_refused() {
    let mut h = Harness::opened(walkthrough());
    let id = h.ask(confirm(3, None));
    assert!(h.send(ch('n')).is_empty());
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::SkipReason { step: 3 }, .. })));
    assert!(h.send(key(KeyCode::Enter)).is_empty(), "no decline without a reason");
    assert!(h.app.status.as_deref().unwrap().contains("a reason is needed"));
    assert!(matches!(h.app.modal, Some(Modal::Text { .. })), "the prompt stays open");
    type_text(&mut h, "DR database still in use");
    let reason = "DR database still in use".to_string();
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Decline { reason } }]);
}

#[test]
fn esc_closes_a_confirmation_and_the_step_waits_for_its_answer() {
    let mut h = Harness::opened(walkthrough());
    let id = h.ask(confirm(3, Some("restore")));
    assert!(h.send(key(KeyCode::Esc)).is_empty(), "Esc answers nothing");
    assert!(h.app.modal.is_none());
    assert_eq!(h.app.contexts()[0], crate::ui::keymap::Context::Asked);
    assert!(h.app.status.as_deref().is_some_and(|s| s.starts_with("closed: the step waits")));
    // Enter opens it again; `s` skips, with a reason.
    h.send(key(KeyCode::Enter));
    assert!(matches!(h.app.modal, Some(Modal::TypedConfirm { .. })));
    h.send(key(KeyCode::Esc));
    h.send(ch('s'));
    type_text(&mut h, "restored by the DBA");
    let reason = "restored by the DBA".to_string();
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Decline { reason } }]);
    assert_eq!(h.app.status, None, "answered: the step no longer waits");
}

#[test]
fn a_typed_confirmation_needs_the_exact_target() {
    let mut h = Harness::opened(runbook(
        "[runbook]\nid = \"t\"\ntitle = \"T\"\n[[step]]\nid = \"drop\"\nkind = \"command\"\nconfirm = \"typed\"\nrun = \"echo drop\"\n",
    ));
    let id = h.ask(confirm(0, Some("drop")));
    assert!(matches!(h.app.modal, Some(Modal::TypedConfirm { .. })));
    type_text(&mut h, "dro");
    assert!(h.send(key(KeyCode::Enter)).is_empty());
    assert!(matches!(h.app.modal, Some(Modal::TypedConfirm { mismatch: true, .. })));
    type_text(&mut h, "p");
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Typed("drop".into()) }]);
}

#[test]
fn a_failure_offers_retry_skip_and_abort() {
    let mut h = Harness::opened(runbook(FAILING));
    h.starts("boom", true);
    h.ends("boom", 3);
    let failed = || Question::Failed { step: 0, reason: "exit code 3 (expected 0)".into() };
    let id = h.ask(failed());
    assert!(matches!(h.app.modal, Some(Modal::Failure { step: 0 })));
    assert_eq!(h.send(ch('r')), vec![Effect::Answer { id, answer: Answer::Again }]);
    // skip with a reason
    let id = h.ask(failed());
    assert!(h.send(ch('s')).is_empty());
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::SkipReason { step: 0 }, .. })));
    type_text(&mut h, "known flake");
    let reason = "known flake".to_string();
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Skip { reason } }]);
    // abort
    let id = h.ask(failed());
    assert_eq!(h.send(ch('a')), vec![Effect::Answer { id, answer: Answer::Abort { note: None } }]);
}

#[test]
fn backing_out_of_a_reason_returns_to_the_decision() {
    let mut h = Harness::opened(runbook(FAILING));
    h.starts("boom", true);
    h.ends("boom", 3);
    h.ask(Question::Failed { step: 0, reason: "exit code 3".into() });
    h.send(ch('s'));
    assert!(h.send(key(KeyCode::Esc)).is_empty());
    assert!(matches!(h.app.modal, Some(Modal::Failure { step: 0 })));
}

#[test]
fn an_interrupted_command_asks_and_mark_done_takes_a_note() {
    let mut h = Harness::opened(runbook(FAILING));
    h.starts("boom", true);
    // The process died while `boom` ran: a new session marks it interrupted.
    h.record(Event::SessionStarted {
        pid: 2,
        host: "h".into(),
        mode: SessionMode::Tui,
        resumed: true,
        previous_alive_at: None,
        operator: None,
    });
    let id = h.ask(Question::Interrupted { step: 0, still_running: Vec::new() });
    assert!(matches!(h.app.modal, Some(Modal::Interrupted { step: 0 })), "{:?}", h.app.modal);
    h.send(ch('d'));
    type_text(&mut h, "ran it by hand");
    let note = "ran it by hand".to_string();
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::MarkDone { note } }]);
}

#[test]
fn an_interrupted_step_shows_what_its_attempt_left_running() {
    let mut h = Harness::opened(runbook(FAILING));
    h.starts("boom", true);
    h.record(Event::SessionStarted {
        pid: 2,
        host: "h".into(),
        mode: SessionMode::Tui,
        resumed: true,
        previous_alive_at: None,
        operator: None,
    });
    let processes = vec!["pid 4250 pg_restore -d acme_dr (attempt 1)".to_string()];
    h.ask(Question::Interrupted { step: 0, still_running: processes });
    assert!(matches!(h.app.modal, Some(Modal::Interrupted { step: 0 })), "{:?}", h.app.modal);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    terminal.draw(|frame| crate::ui::render::render(&h.app, frame)).unwrap();
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Still running (r stops them before running the step again):"), "{screen}");
    assert!(screen.contains("pid 4250 pg_restore -d acme_dr (attempt 1)"), "{screen}");
    // Nothing left running: nothing shown.
    h.app.modal = None;
    h.ask(Question::Interrupted { step: 0, still_running: Vec::new() });
    assert!(h.app.still_running.is_empty());
}

#[test]
fn a_checklist_ticks_notes_and_completes() {
    let mut h = Harness::opened(runbook(
        "[runbook]\nid = \"c\"\ntitle = \"C\"\n[[step]]\nid = \"smoke\"\nkind = \"checklist\"\nurl = \"https://dr.example.com\"\nitems = [\"Log in\", { text = \"Optional\", required = false }, \"Upload\"]\n",
    ));
    h.starts("smoke", false);
    assert!(h.send(ch(' ')).is_empty(), "nothing to tick before the conductor asks");
    let id = h.ask(Question::Checklist { step: 0 });
    assert_eq!(h.send(ch(' ')), vec![Effect::Answer { id, answer: Answer::Tick { item: 0, ticked: true } }]);
    assert_eq!(h.app.checklist_cursor, 1, "the cursor moves on after a tick");
    h.record(Event::ChecklistTicked { step: "smoke".into(), item: 0, text: "Log in".into(), ticked: true });
    h.send(ch('n'));
    type_text(&mut h, "slow");
    let note = Request::Note { step: Some(0), item: Some(1), text: "slow".into() };
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Request(note)]);
    // Enter before the required items are ticked says what is missing.
    assert!(h.send(key(KeyCode::Enter)).is_empty());
    assert!(h.app.status.as_deref().unwrap().contains("Upload"));
    h.send(ch('j'));
    // Ticking the last required item does not finish the checklist: Enter does.
    assert_eq!(h.send(ch(' ')), vec![Effect::Answer { id, answer: Answer::Tick { item: 2, ticked: true } }]);
    h.record(Event::ChecklistTicked { step: "smoke".into(), item: 2, text: "Upload".into(), ticked: true });
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Done { note: None } }]);
    assert_eq!(h.send(ch('o')), vec![Effect::OpenUrl("https://dr.example.com".into())]);
}

#[test]
fn a_checklist_item_can_fail_with_a_note_and_arrows_stay_in_the_list() {
    let mut h = Harness::opened(runbook(
        "[runbook]\nid = \"c\"\ntitle = \"C\"\n[[step]]\nid = \"before\"\nkind = \"manual\"\n[[step]]\nid = \"smoke\"\nkind = \"checklist\"\nitems = [\"Log in\", \"Upload\"]\n[[step]]\nid = \"after\"\nkind = \"manual\"\n",
    ));
    h.starts("smoke", false);
    let id = h.ask(Question::Checklist { step: 1 });
    for _ in 0..5 {
        h.send(key(KeyCode::Down));
    }
    assert_eq!((h.app.selected, h.app.checklist_cursor), (1, 1), "down stops at the last item");
    for _ in 0..5 {
        h.send(key(KeyCode::Up));
    }
    assert_eq!((h.app.selected, h.app.checklist_cursor), (1, 0), "up stops at the first item");
    h.send(ch('f'));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::ItemFailed { step: 1, item: 0 }, .. })));
    assert!(h.send(key(KeyCode::Enter)).is_empty(), "what failed must be said");
    type_text(&mut h, "login page 500s");
    let failed = Answer::ItemFailed { item: 0, note: "login page 500s".into() };
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: failed }]);
    h.record(Event::ChecklistItemFailed {
        step: "smoke".into(),
        item: 0,
        text: "Log in".into(),
        note: "login page 500s".into(),
    });
    h.send(key(KeyCode::Down));
    h.send(ch(' '));
    h.record(Event::ChecklistTicked { step: "smoke".into(), item: 1, text: "Upload".into(), ticked: true });
    // A failed item counts as answered: Enter finishes, and the conductor fails the step.
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Done { note: None } }]);
}

#[test]
fn skipping_a_manual_step_asks_for_the_reason() {
    let mut h =
        Harness::opened(runbook("[runbook]\nid = \"m\"\ntitle = \"M\"\n[[step]]\nid = \"only\"\nkind = \"manual\"\n"));
    h.starts("only", false);
    let id = h.ask(Question::Manual { step: 0 });
    h.send(ch('s'));
    type_text(&mut h, "not today");
    let reason = "not today".to_string();
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Skip { reason } }]);
}

#[test]
fn quitting_asks_while_a_command_runs() {
    let mut h = Harness::opened(walkthrough());
    h.starts("prepare-sandbox", true);
    assert!(h.send(ch('q')).is_empty());
    assert!(matches!(h.app.modal, Some(Modal::QuitConfirm)));
    assert!(h.send(ch('n')).is_empty());
    assert!(h.app.modal.is_none());
    h.send(ch('q'));
    let quit = Request::Quit { reason: "quit by the operator".into() };
    assert_eq!(h.send(ch('y')), vec![Effect::Request(quit)]);
}

#[test]
fn quitting_without_a_running_command_asks_the_conductor_at_once() {
    let mut h = Harness::opened(walkthrough());
    let quit = Request::Quit { reason: "quit by the operator".into() };
    assert_eq!(h.send(ch('q')), vec![Effect::Request(quit)]);
    // Before a drill is open there is nothing to ask.
    let mut h = Harness::start(walkthrough());
    assert_eq!(h.send(key(KeyCode::Esc)), vec![Effect::Exit]);
}

#[test]
fn ctrl_c_twice_quits_and_signals_are_the_conductors() {
    let mut h = Harness::opened(walkthrough());
    h.starts("prepare-sandbox", true);
    let ctrl_c = || Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(h.send(ctrl_c()).is_empty());
    assert!(h.app.status.as_deref().unwrap().contains("Ctrl-C again"));
    let quit = Request::Quit { reason: "quit with Ctrl-C".into() };
    assert_eq!(h.send(ctrl_c()), vec![Effect::Request(quit)]);
    // Once a drill is open its conductor hears signals; before, the app leaves.
    assert!(h.send(Msg::Signal("SIGHUP")).is_empty());
    let mut h = Harness::start(walkthrough());
    assert_eq!(h.send(Msg::Signal("SIGHUP")), vec![Effect::Exit]);
}

#[test]
fn focus_search_and_log_keys() {
    let mut h = Harness::opened(walkthrough());
    h.starts("prepare-sandbox", true);
    let lines: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
    h.send(output(1, lines));
    h.send(key(KeyCode::Tab));
    assert_eq!(h.app.focus, Focus::Log);
    h.send(ch('/'));
    type_text(&mut h, "line 1");
    h.send(key(KeyCode::Enter));
    assert!(h.app.logs[1].search_status().is_some(), "search set");
    h.send(ch('f'));
    h.send(key(KeyCode::PageUp));
    h.send(key(KeyCode::End));
    h.send(key(KeyCode::Tab));
    assert_eq!(h.app.focus, Focus::Steps);
    h.send(key(KeyCode::Down));
    assert_eq!(h.app.selected, 2);
    h.send(key(KeyCode::Up));
    assert_eq!(h.app.selected, 1);
}

#[test]
fn help_opens_and_closes() {
    let mut h = Harness::opened(walkthrough());
    h.send(ch('?'));
    assert!(matches!(h.app.modal, Some(Modal::Help { .. })));
    h.send(key(KeyCode::Down));
    assert!(matches!(h.app.modal, Some(Modal::Help { scroll: 1 })));
    h.send(key(KeyCode::Esc));
    assert!(h.app.modal.is_none());
}

#[test]
fn a_click_selects_a_step_and_the_wheel_scrolls_the_log() {
    let mut h = Harness::opened(walkthrough());
    let click = |row| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 3,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    h.send(click(5));
    assert_eq!(h.app.selected, 4);
    h.send(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: 80,
        row: 30,
        modifiers: KeyModifiers::NONE,
    }));
}

#[test]
fn the_finished_drill_says_where_its_reports_are() {
    let mut h =
        Harness::opened(runbook("[runbook]\nid = \"m\"\ntitle = \"M\"\n[[step]]\nid = \"only\"\nkind = \"manual\"\n"));
    h.record(Event::DrillFinished { outcome: crate::drill::event::DrillOutcome::Completed, reason: None });
    let state = h.app.drill.clone().unwrap();
    let summary = crate::drive::Summary {
        report: crate::report::build(&state, None),
        written: Ok(vec!["/drills/x/report.md".into()]),
    };
    h.send(Msg::Drive(Update::Finished(Box::new(summary))));
    assert_eq!(h.app.status.as_deref(), Some("reports written to /drills/x"));
    assert_eq!(h.app.contexts()[0], crate::ui::keymap::Context::Finished);
    let quit = Request::Quit { reason: "quit by the operator".into() };
    assert_eq!(h.send(ch('q')), vec![Effect::Request(quit)]);
}

#[test]
fn the_conductors_errors_are_shown() {
    let mut h = Harness::opened(walkthrough());
    let ending = crate::drive::Ending {
        code: 2,
        message: None,
        paused: None,
        error: Some("journal append failed: No space left on device".into()),
    };
    h.send(Msg::Drive(Update::Ended(ending)));
    assert!(h.app.status.as_deref().unwrap().starts_with("error: journal append failed"));
}

fn backup_rows() -> Vec<PickRow> {
    vec![
        PickRow {
            cells: vec!["acme/daily-2.pgdump".into(), "1 B".into(), "now".into(), "0s".into(), "-".into()],
            sort: vec![0, 1, 0, 0],
            marked: true,
        },
        PickRow {
            cells: vec!["acme/daily-1.pgdump".into(), "1 B".into(), "now".into(), "1d".into(), "-".into()],
            sort: vec![0, 1, -86_400, 86_400],
            marked: false,
        },
    ]
}

#[test]
fn a_backup_picker_waits_for_an_open_dialog() {
    let mut h = Harness::opened(walkthrough());
    h.send(ch('?'));
    let id = h.ask(Question::Pick { step: 2, what: PickWhat::Backup, rows: backup_rows(), default: Some(0) });
    assert!(matches!(h.app.modal, Some(Modal::Help { .. })), "the help stays open");
    h.send(key(KeyCode::Esc));
    assert!(matches!(h.app.modal, Some(Modal::Picker { purpose: PickerPurpose::Backup(2), .. })));
    h.send(key(KeyCode::Down));
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Pick(1) }]);
}

#[test]
fn a_cancelled_pick_says_so() {
    let mut h = Harness::opened(walkthrough());
    let id = h.ask(Question::Pick { step: 2, what: PickWhat::Backup, rows: backup_rows(), default: Some(0) });
    assert_eq!(h.send(key(KeyCode::Esc)), vec![Effect::Answer { id, answer: Answer::NoPick }]);
}

const K8S_RUNBOOK: &str = r#"
[runbook]
id = "k"
title = "K"
protected = ["acme-production"]
[[step]]
id = "pick-tag"
kind = "k8s-image-tag"
namespace = "acme-production"
select = "choose"
capture = "tag"
[[step]]
id = "wait"
kind = "k8s-wait"
namespace = "acme-dr"
[[step]]
id = "scale-down"
kind = "k8s-scale"
namespace = "acme-dr"
all = true
replicas = 0
confirm = "typed"
"#;

fn pod_row(name: &str, health: crate::engine::k8s::wait::Health) -> crate::engine::k8s::wait::PodRow {
    crate::engine::k8s::wait::PodRow {
        name: name.into(),
        ready: "0/1".into(),
        status: if health == crate::engine::k8s::wait::Health::Failing { "CrashLoopBackOff" } else { "Running" }.into(),
        restarts: 3,
        age: "2m".into(),
        tag: "v2".into(),
        node: "node-1".into(),
        health,
        problem: None,
    }
}

#[test]
fn a_tag_pick_is_asked_and_its_answer_sent_to_the_conductor() {
    let mut h = Harness::opened(runbook(K8S_RUNBOOK));
    h.starts("pick-tag", true);
    let rows = ["v2", "v1"]
        .iter()
        .map(|tag| PickRow {
            cells: vec![tag.to_string(), "web".into(), "2".into(), "1d".into(), "current".into()],
            sort: Vec::new(),
            marked: *tag == "v2",
        })
        .collect();
    let id = h.ask(Question::Pick { step: 0, what: PickWhat::Tag, rows, default: Some(0) });
    assert!(matches!(h.app.modal, Some(Modal::Picker { purpose: PickerPurpose::Tag(0), .. })));
    h.send(key(KeyCode::Down));
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Pick(1) }]);
}

#[test]
fn a_scale_is_confirmed_by_typing_the_namespace() {
    let mut h = Harness::opened(runbook(K8S_RUNBOOK));
    let id = h.ask(Question::Confirm {
        step: 2,
        command: "context:   prod-cluster\nnamespace: acme-dr\n  deployment/web: 2 → 0".into(),
        target: "context prod-cluster, namespace acme-dr".into(),
        typed: Some("acme-dr".into()),
        mismatch: None,
    });
    let Some(Modal::TypedConfirm { expected, target, command, .. }) = &h.app.modal else {
        panic!("a typed confirmation: {:?}", h.app.modal)
    };
    assert_eq!(expected, "acme-dr");
    assert!(target.contains("prod-cluster") && command.contains("deployment/web: 2 → 0"));
    type_text(&mut h, "acme-production");
    assert!(h.send(key(KeyCode::Enter)).is_empty());
    assert!(matches!(h.app.modal, Some(Modal::TypedConfirm { mismatch: true, .. })), "a wrong namespace is refused");
    for _ in 0.."acme-production".len() {
        h.send(key(KeyCode::Backspace));
    }
    type_text(&mut h, "acme-dr");
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Answer { id, answer: Answer::Typed("acme-dr".into()) }]);
}

#[test]
fn l_on_a_step_with_pods_shows_the_logs_of_the_failing_pod_first() {
    use crate::engine::k8s::wait::{Health, PodTable};
    let mut h = Harness::opened(runbook(K8S_RUNBOOK));
    h.app.selected = 1;
    assert!(!h.app.contexts().contains(&crate::ui::keymap::Context::Pods));
    let table =
        PodTable::new(vec![pod_row("web-a", Health::Ready), pod_row("web-b", Health::Failing)], "web 1/2 ready".into());
    h.send(Msg::Drive(Update::Pods { step: 1, table }));
    assert!(h.app.contexts().contains(&crate::ui::keymap::Context::Pods));
    h.send(ch('l'));
    assert!(matches!(h.app.modal, Some(Modal::Picker { purpose: PickerPurpose::Pod(1), .. })));
    let logs = Request::PodLogs { step: 1, pod: "web-b".into() };
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Request(logs)]);
}

#[test]
fn a_adds_an_action_item_with_its_owner() {
    let mut h = Harness::opened(walkthrough());
    h.send(ch('a'));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::ActionItem { step: 0 }, .. })));
    type_text(&mut h, "Rotate the backup user's key @dana");
    let item =
        Request::ActionItem { text: "Rotate the backup user's key".into(), owner: Some("dana".into()), step: Some(0) };
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Request(item)]);
    assert_eq!(h.app.status.as_deref(), Some("action item saved for dana"));
}

#[test]
fn shift_a_attaches_a_dropped_file_to_the_selected_step() {
    let mut h = Harness::opened(walkthrough());
    h.send(ch('A'));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::Attach { step: 0 }, .. })));
    // What a terminal inserts for a dropped file: quoted, or with escaped spaces.
    type_text(&mut h, "'/tmp/Screen Shot 1.png'");
    let attach = Request::Attach { step: 0, paths: vec!["/tmp/Screen Shot 1.png".into()] };
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Request(attach)]);
    h.send(ch('A'));
    type_text(&mut h, "/tmp/Screen\\ Shot\\ 2.png ");
    let attach = Request::Attach { step: 0, paths: vec!["/tmp/Screen Shot 2.png".into()] };
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Request(attach)]);
    h.send(ch('A'));
    type_text(&mut h, "   ");
    assert_eq!(h.send(key(KeyCode::Enter)), vec![], "nothing typed, nothing attached");
}

#[test]
fn d_on_a_finished_drill_records_the_debrief() {
    let mut h =
        Harness::opened(runbook("[runbook]\nid = \"m\"\ntitle = \"M\"\n[[step]]\nid = \"only\"\nkind = \"manual\"\n"));
    h.record(Event::DrillFinished { outcome: crate::drill::event::DrillOutcome::Completed, reason: None });
    h.send(ch('d'));
    type_text(&mut h, "the restore took 12 minutes");
    h.send(key(KeyCode::Enter));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::DebriefToImprove { .. }, .. })));
    type_text(&mut h, "scale DR down before dropdb");
    let debrief = Request::Debrief {
        went_well: "the restore took 12 minutes".into(),
        to_improve: "scale DR down before dropdb".into(),
    };
    assert_eq!(h.send(key(KeyCode::Enter)), vec![Effect::Request(debrief)]);
    assert!(h.app.modal.is_none());
}

// ---- watching a drill driven elsewhere (`drillbook watch`) ----

#[test]
fn watching_follows_the_journal_like_the_driver() {
    let mut h = Harness::watching(walkthrough());
    assert!(h.app.read_only());
    assert_eq!(h.status_of("brief"), "pending");
    h.starts("brief", false);
    assert_eq!(h.status_of("brief"), "running");
    h.done_by_hand("brief");
    assert_eq!(h.status_of("brief"), "done");
    assert!(h.starts("prepare-sandbox", true).is_empty());
    assert_eq!(h.app.selected, 1, "the view follows the running step");
    h.send(output(1, vec!["preparing".into()]));
    assert!(h.app.logs[1].len() >= 2, "marker + line");
    h.ends("prepare-sandbox", 3);
    assert_eq!(h.status_of("prepare-sandbox"), "failed");
    assert!(h.app.modal.is_none(), "the failure dialog is the driver's");
    h.record(Event::DrillFinished { outcome: crate::drill::event::DrillOutcome::Failed, reason: None });
    assert!(h.app.drill.as_ref().unwrap().finished.is_some());
}

#[test]
fn watching_refuses_every_key_that_would_change_the_drill() {
    let mut h = Harness::watching(walkthrough());
    h.starts("brief", false);
    // Enter (mark done), d, s (skip), n (note), a (action item): a manual step.
    for key_msg in [key(KeyCode::Enter), ch('d'), ch('s'), ch('n'), ch('a'), ch(' ')] {
        h.app.status = None;
        let effects = h.send(key_msg);
        assert!(effects.is_empty(), "{effects:?}");
        assert!(h.app.modal.is_none(), "{:?}", h.app.modal);
        assert_eq!(h.app.status.as_deref(), Some(crate::ui::app::READ_ONLY_NOTICE));
    }
    // A checklist: space would tick.
    h.done_by_hand("brief");
    h.starts("smoke", false);
    assert!(h.send(ch(' ')).is_empty());
    // The debrief of a finished drill.
    h.record(Event::DrillFinished { outcome: crate::drill::event::DrillOutcome::Aborted, reason: None });
    assert!(h.send(ch('d')).is_empty());
    assert!(h.app.modal.is_none());
}

#[test]
fn watching_moves_scrolls_searches_and_shows_help() {
    let mut h = Harness::watching(walkthrough());
    h.starts("prepare-sandbox", true);
    assert_eq!(h.app.selected, 1);
    h.send(key(KeyCode::Down));
    assert_eq!(h.app.selected, 2);
    h.send(key(KeyCode::Up));
    h.send(key(KeyCode::Tab));
    assert_eq!(h.app.focus, Focus::Log);
    h.send(ch('?'));
    assert!(matches!(h.app.modal, Some(Modal::Help { .. })));
    h.send(key(KeyCode::Esc));
    h.send(ch('/'));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::Search, .. })));
    type_text(&mut h, "x");
    h.send(key(KeyCode::Enter));
    assert!(h.app.modal.is_none());
    assert!(h.app.status.is_none(), "nothing was refused");
}

#[test]
fn watching_quits_at_once_while_a_step_runs_and_interrupts_nothing() {
    let mut h = Harness::watching(walkthrough());
    h.starts("prepare-sandbox", true);
    assert!(h.app.running_command().is_some());
    assert_eq!(h.send(ch('q')), vec![Effect::Exit]);
    assert!(h.app.modal.is_none(), "no quit question: nothing is interrupted");

    let mut h = Harness::watching(walkthrough());
    h.starts("prepare-sandbox", true);
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(h.send(ctrl_c), vec![Effect::Exit]);
    let mut h = Harness::watching(walkthrough());
    assert_eq!(h.send(Msg::Signal("SIGTERM")), vec![Effect::Exit]);
}

#[test]
fn watching_records_the_driver_and_a_broken_journal() {
    let mut h = Harness::watching(walkthrough());
    assert_eq!(h.app.watch.as_ref().unwrap().driver, crate::ui::app::Driver::Unknown);
    h.send(Msg::Driver(crate::ui::app::Driver::NotRunning));
    assert_eq!(h.app.watch.as_ref().unwrap().driver, crate::ui::app::Driver::NotRunning);
    h.send(Msg::WatchFailed("journal x is corrupt at line 3".into()));
    assert_eq!(h.app.watch.as_ref().unwrap().error.as_deref(), Some("journal x is corrupt at line 3"));
}

// ---- participants on the start screen ----

#[test]
fn participants_are_prefilled_editable_and_started_with() {
    let runbook = walkthrough();
    let form = crate::ui::update::start_form(
        &runbook,
        &Default::default(),
        &Default::default(),
        &[("Alice Martin".to_string(), "incident commander".to_string())],
    );
    assert_eq!(form.participants.value(), "Alice Martin:incident commander");
    let mut h = Harness::start(runbook);
    h.app.start = form;
    // The participants line follows the variables.
    while !h.app.start.participants_focused() {
        h.send(key(KeyCode::Tab));
    }
    type_text(&mut h, ", Bob:scribe, Carol");
    match &h.send(key(KeyCode::Enter))[..] {
        [Effect::StartDrill { participants, .. }] => assert_eq!(
            participants,
            &[
                ("Alice Martin".to_string(), "incident commander".to_string()),
                ("Bob".to_string(), "scribe".to_string()),
                ("Carol".to_string(), "participant".to_string()),
            ]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_participant_without_a_name_is_refused_on_the_start_screen() {
    let mut h = Harness::start(walkthrough());
    h.send(key(KeyCode::BackTab));
    assert!(h.app.start.participants_focused(), "shift-tab from the first field wraps to the participants");
    type_text(&mut h, "Alice, :scribe");
    assert!(h.send(key(KeyCode::Enter)).is_empty());
    assert!(h.app.start.participants_error.as_deref().unwrap().contains("no name"));
    assert!(h.app.start.participants_focused());
    for _ in 0..":scribe".len() {
        h.send(key(KeyCode::Backspace));
    }
    assert!(h.app.start.participants_error.is_none(), "typing clears the error");
    match &h.send(key(KeyCode::Enter))[..] {
        [Effect::StartDrill { participants, .. }] => {
            assert_eq!(participants, &[("Alice".to_string(), "participant".to_string())])
        }
        other => panic!("{other:?}"),
    }
}
