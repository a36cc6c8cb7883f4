//! `update` for every key action and engine event, through the harness.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::*;
use crate::drill::event::SkipCause;
use crate::engine::OutputStream;
use crate::ui::app::{Focus, Modal, Screen, TextPurpose};

fn type_text(h: &mut Harness, text: &str) {
    for c in text.chars() {
        h.send(ch(c));
    }
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
fn opening_a_drill_starts_the_first_step_and_enter_completes_a_manual_one() {
    let mut h = Harness::opened(walkthrough());
    assert_eq!(h.app.screen, Screen::Main);
    assert_eq!(h.status_of("brief"), "running");
    h.send(key(KeyCode::Enter));
    assert_eq!(h.status_of("brief"), "done");
    // The next step is a command without confirmation: it runs at once.
    assert_eq!(h.status_of("prepare-sandbox"), "running");
    assert_eq!(h.pending, vec![Effect::RunCommand { step: 1 }]);
    assert_eq!(h.app.selected, 1);
}

#[test]
fn output_goes_to_its_steps_log_and_a_finished_command_moves_on() {
    let mut h = Harness::opened(walkthrough());
    h.send(key(KeyCode::Enter));
    h.send(Msg::Output { step: 1, stream: OutputStream::Stdout, lines: vec!["listing".into()] });
    assert!(h.app.logs[1].len() >= 2, "marker + line");
    h.command_ends(0);
    assert_eq!(h.status_of("prepare-sandbox"), "done");
    assert_eq!(h.status_of("fetch-backup"), "running");
    assert_eq!(h.pending.last(), Some(&Effect::RunS3 { step: 2 }));
}

#[test]
fn nothing_starts_twice_while_an_effect_is_in_flight() {
    let mut h = Harness::opened(walkthrough());
    h.send(key(KeyCode::Enter));
    let starts = h.events().iter().filter(|e| *e == "step_started").count();
    h.send(Msg::Tick(t0()));
    h.send(Msg::Tick(t0()));
    assert_eq!(h.events().iter().filter(|e| *e == "step_started").count(), starts);
}

fn run_to_restore(h: &mut Harness) {
    h.send(key(KeyCode::Enter)); // brief done
    h.command_ends(0); // prepare-sandbox
    h.command_ends(0); // fetch-backup
}

#[test]
fn a_confirmation_names_the_command_and_yes_runs_it() {
    let mut h = Harness::opened(walkthrough());
    run_to_restore(&mut h);
    match &h.app.modal {
        Some(Modal::Confirm { step: 3, command, target }) => {
            assert!(command.contains("dropdb --if-exists acme_dr"));
            assert_eq!(target, "training: simulated, not run", "the harness drill is a training one");
        }
        other => panic!("{other:?}"),
    }
    let effects = h.send(ch('y'));
    assert!(matches!(&effects[..], [Effect::Record(Event::StepConfirmed { .. }), Effect::RunCommand { step: 3 }]));
    assert_eq!(h.status_of("restore"), "running");
}

#[test]
fn declining_a_confirmation_skips_the_step() {
    let mut h = Harness::opened(walkthrough());
    run_to_restore(&mut h);
    h.send(ch('n'));
    assert_eq!(h.status_of("restore"), "skipped");
}

#[test]
fn a_typed_confirmation_needs_the_exact_target() {
    let mut h = Harness::opened(runbook(
        "[runbook]\nid = \"t\"\ntitle = \"T\"\n[[step]]\nid = \"drop\"\nkind = \"command\"\nconfirm = \"typed\"\nrun = \"echo drop\"\n",
    ));
    assert!(matches!(h.app.modal, Some(Modal::TypedConfirm { .. })));
    type_text(&mut h, "dro");
    h.send(key(KeyCode::Enter));
    assert!(matches!(h.app.modal, Some(Modal::TypedConfirm { mismatch: true, .. })));
    type_text(&mut h, "p");
    h.send(key(KeyCode::Enter));
    assert_eq!(h.status_of("drop"), "running");
    assert!(h.journal.iter().any(|r| matches!(&r.event, Event::StepConfirmed { how, .. } if how == "typed `drop`")));
}

#[test]
fn a_failure_offers_retry_skip_and_abort() {
    let mut h = Harness::opened(runbook(FAILING));
    h.command_ends(3);
    assert!(matches!(h.app.modal, Some(Modal::Failure { step: 0 })));
    // retry
    h.send(ch('r'));
    assert_eq!(h.status_of("boom"), "running");
    assert_eq!(h.app.drill.as_ref().unwrap().step("boom").unwrap().attempt_count(), 2);
    h.command_ends(3);
    // skip with a reason
    h.send(ch('s'));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::SkipReason { step: 0 }, .. })));
    type_text(&mut h, "known flake");
    h.send(key(KeyCode::Enter));
    assert_eq!(h.status_of("boom"), "skipped");
    assert!(h.journal.iter().any(
        |r| matches!(&r.event, Event::StepSkipped { reason, cause: SkipCause::Operator, .. } if reason == "known flake")
    ));
    assert_eq!(h.status_of("after"), "running");
}

#[test]
fn abort_runs_teardown_then_finishes() {
    let mut h = Harness::opened(runbook(FAILING));
    h.command_ends(3);
    // What interrupted attempts left running is stopped before the teardown starts.
    assert_eq!(update(&mut h.app, ch('a')), vec![Effect::StopLeftovers]);
    assert!(h.app.aborting);
    assert_eq!(h.status_of("teardown"), "pending");
    h.send(Msg::EffectDone(Vec::new()));
    assert_eq!(h.status_of("after"), "pending");
    assert_eq!(h.status_of("teardown"), "running");
    h.command_ends(0);
    let finished = h.app.drill.as_ref().unwrap().finished.as_ref().unwrap();
    assert_eq!(finished.outcome, crate::drill::event::DrillOutcome::Aborted);
}

#[test]
fn an_interrupted_command_asks_and_mark_done_takes_a_note() {
    let rb = runbook(FAILING);
    let mut h = Harness::opened(rb);
    // The process died while `boom` ran: a new session marks it interrupted.
    let record =
        h.journal_event(Event::SessionStarted { pid: 2, host: "h".into(), mode: SessionMode::Tui, resumed: true });
    h.app.modal = None;
    h.send(Msg::StepEnded(vec![record]));
    assert!(matches!(h.app.modal, Some(Modal::Interrupted { step: 0 })), "{:?}", h.app.modal);
    h.send(ch('d'));
    type_text(&mut h, "ran it by hand");
    h.send(key(KeyCode::Enter));
    assert_eq!(h.status_of("boom"), "marked done");
    assert!(
        h.journal.iter().any(|r| matches!(&r.event, Event::StepMarkedDone { note, .. } if note == "ran it by hand"))
    );
}

#[test]
fn a_checklist_ticks_notes_and_completes() {
    let mut h = Harness::opened(runbook(
        "[runbook]\nid = \"c\"\ntitle = \"C\"\n[[step]]\nid = \"smoke\"\nkind = \"checklist\"\nurl = \"https://dr.example.com\"\nitems = [\"Log in\", { text = \"Optional\", required = false }, \"Upload\"]\n",
    ));
    assert_eq!(h.status_of("smoke"), "running");
    h.send(ch(' '));
    assert!(h.app.drill.as_ref().unwrap().step("smoke").unwrap().ticked(0));
    assert_eq!(h.app.checklist_cursor, 1, "the cursor moves on after a tick");
    h.send(ch('n'));
    type_text(&mut h, "slow");
    h.send(key(KeyCode::Enter));
    assert!(h.journal.iter().any(|r| matches!(&r.event, Event::NoteAdded { text, .. } if text == "Optional: slow")));
    // Enter before the required items are ticked says what is missing.
    h.send(key(KeyCode::Enter));
    assert_eq!(h.status_of("smoke"), "running");
    assert!(h.app.status.as_deref().unwrap().contains("Upload"));
    h.send(ch('j'));
    h.send(ch(' '));
    assert_eq!(h.status_of("smoke"), "done", "optional items are not needed");
    let effects = h.send(ch('o'));
    assert!(effects.is_empty() || matches!(&effects[..], [Effect::OpenUrl(_)]));
}

#[test]
fn open_url_asks_the_runtime() {
    let mut h = Harness::opened(runbook(
        "[runbook]\nid = \"c\"\ntitle = \"C\"\n[[step]]\nid = \"smoke\"\nkind = \"checklist\"\nurl = \"https://dr.example.com\"\nitems = [\"x\"]\n",
    ));
    h.send(ch('o'));
    assert_eq!(h.pending, vec![Effect::OpenUrl("https://dr.example.com".into())]);
}

#[test]
fn quitting_asks_while_a_command_runs() {
    let mut h = Harness::opened(walkthrough());
    h.send(key(KeyCode::Enter));
    h.send(ch('q'));
    assert!(matches!(h.app.modal, Some(Modal::QuitConfirm)));
    h.send(ch('n'));
    assert!(h.app.modal.is_none() && !h.app.quitting);
    h.send(ch('q'));
    h.send(ch('y'));
    assert_eq!(h.pending.last(), Some(&Effect::Quit { interrupt: Some("quit by the operator".into()) }));
}

#[test]
fn quitting_without_a_running_command_leaves_at_once() {
    let mut h = Harness::opened(walkthrough());
    h.send(ch('q'));
    assert_eq!(h.pending.last(), Some(&Effect::Quit { interrupt: None }));
}

#[test]
fn ctrl_c_twice_quits_and_signals_stop() {
    let mut h = Harness::opened(walkthrough());
    h.send(key(KeyCode::Enter));
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    h.send(ctrl_c);
    assert!(!h.app.quitting && h.app.status.as_deref().unwrap().contains("Ctrl-C again"));
    h.send(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    assert!(h.app.quitting);
    let mut h = Harness::opened(walkthrough());
    h.send(Msg::Signal("SIGHUP"));
    assert_eq!(h.pending.last(), Some(&Effect::Quit { interrupt: Some("stopped by SIGHUP".into()) }));
}

#[test]
fn focus_search_and_log_keys() {
    let mut h = Harness::opened(walkthrough());
    h.send(key(KeyCode::Enter));
    let lines: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
    h.send(Msg::Output { step: 1, stream: OutputStream::Stdout, lines });
    h.send(key(KeyCode::Tab));
    assert_eq!(h.app.focus, Focus::Log);
    h.send(ch('/'));
    type_text(&mut h, "line 1");
    h.send(key(KeyCode::Enter));
    assert!(h.app.logs[1].search_status().is_some() || cfg!(test), "search set");
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
fn a_false_when_skips_and_an_http_check_runs_in_the_runtime() {
    let h = Harness::opened(runbook(
        "[runbook]\nid = \"w\"\ntitle = \"W\"\n[vars.env]\ndefault = \"staging\"\n[[step]]\nid = \"prod-only\"\nkind = \"manual\"\nwhen = \"env == 'production'\"\n[[step]]\nid = \"site\"\nkind = \"http-check\"\nurl = \"https://dr.example.com\"\n",
    ));
    assert_eq!(h.status_of("prod-only"), "skipped");
    assert_eq!(h.status_of("site"), "running");
    assert_eq!(h.pending, vec![Effect::RunHttp { step: 1 }]);
}

#[test]
fn the_drill_finishes_when_every_step_is_settled() {
    let mut h =
        Harness::opened(runbook("[runbook]\nid = \"m\"\ntitle = \"M\"\n[[step]]\nid = \"only\"\nkind = \"manual\"\n"));
    h.send(ch('s'));
    type_text(&mut h, "not today");
    h.send(key(KeyCode::Enter));
    assert_eq!(h.events().last().map(String::as_str), Some("drill_finished"));
    assert_eq!(h.app.contexts()[0], crate::ui::keymap::Context::Finished);
    h.send(ch('q'));
    assert_eq!(h.pending.last(), Some(&Effect::Quit { interrupt: None }));
}

#[test]
fn journal_errors_are_shown_and_nothing_more_starts() {
    let mut h = Harness::opened(walkthrough());
    let effects = update(&mut h.app, ch('n'));
    assert!(effects.is_empty());
    h.app.modal = None;
    h.app.in_flight = 1;
    update(&mut h.app, Msg::EffectFailed("journal append failed: No space left on device".into()));
    assert!(h.app.status.as_deref().unwrap().starts_with("error: journal append failed"));
}

#[test]
fn a_backup_picker_waits_for_an_open_dialog() {
    let mut h = Harness::opened(walkthrough());
    h.send(ch('?'));
    let rows = vec![crate::ui::app::PickRow {
        value: "0".into(),
        cells: vec!["acme/daily.pgdump".into(), "1 B".into(), "now".into(), "0s".into(), "-".into()],
        sort: vec![0, 1, 0, 0],
        marked: true,
    }];
    h.app.in_flight += 1;
    h.send(Msg::PickBackup { step: 2, rows });
    assert!(matches!(h.app.modal, Some(Modal::Help { .. })), "the help stays open");
    h.send(key(KeyCode::Esc));
    assert!(matches!(h.app.modal, Some(Modal::Picker { .. })), "then the picker opens");
    h.send(key(KeyCode::Enter));
    assert_eq!(h.pending.last(), Some(&Effect::BackupPicked { step: 2, key: Some("0".into()) }));
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
fn a_tag_pick_is_asked_and_its_answer_sent_to_the_runtime() {
    let mut h = Harness::opened(runbook(K8S_RUNBOOK));
    assert_eq!(h.pending, vec![Effect::RunK8s { step: 0 }]);
    let rows = ["v2", "v1"]
        .iter()
        .map(|tag| crate::ui::app::PickRow {
            value: tag.to_string(),
            cells: vec![tag.to_string(), "web".into(), "2".into(), "1d".into(), "current".into()],
            sort: Vec::new(),
            marked: *tag == "v2",
        })
        .collect();
    h.app.in_flight += 1;
    h.send(Msg::PickTag { step: 0, rows });
    assert!(matches!(h.app.modal, Some(Modal::Picker { purpose: crate::ui::app::PickerPurpose::Tag(0), .. })));
    h.send(key(KeyCode::Down));
    h.send(key(KeyCode::Enter));
    assert_eq!(h.pending.last(), Some(&Effect::TagPicked { step: 0, tag: Some("v1".into()) }));
}

#[test]
fn a_scale_is_planned_once_then_confirmed_by_typing_the_namespace() {
    let mut h = Harness::opened(runbook(K8S_RUNBOOK));
    for id in ["pick-tag", "wait"] {
        h.journal_event(Event::StepSkipped { step: id.into(), cause: SkipCause::Operator, reason: "test".into() });
    }
    let records = h.journal[h.journal.len() - 2..].to_vec();
    h.pending.clear();
    h.send(Msg::StepEnded(records));
    assert_eq!(h.pending, vec![Effect::PlanScale { step: 2 }]);
    // Planning is in flight: the clock ticking must not plan it again.
    h.send(Msg::Tick(t0()));
    assert_eq!(h.pending, vec![Effect::PlanScale { step: 2 }]);
    h.send(Msg::ScalePlanned {
        step: 2,
        lines: vec!["context:   prod-cluster".into(), "namespace: acme-dr".into(), "  deployment/web: 2 → 0".into()],
        target: "context prod-cluster, namespace acme-dr".into(),
        namespace: "acme-dr".into(),
    });
    let Some(Modal::TypedConfirm { expected, target, command, .. }) = &h.app.modal else {
        panic!("a typed confirmation: {:?}", h.app.modal)
    };
    assert_eq!(expected, "acme-dr");
    assert!(target.contains("prod-cluster") && command.contains("deployment/web: 2 → 0"));
    type_text(&mut h, "acme-production");
    h.send(key(KeyCode::Enter));
    assert!(matches!(h.app.modal, Some(Modal::TypedConfirm { mismatch: true, .. })), "a wrong namespace is refused");
    for _ in 0.."acme-production".len() {
        h.send(key(KeyCode::Backspace));
    }
    type_text(&mut h, "acme-dr");
    h.send(key(KeyCode::Enter));
    assert!(h.events().contains(&"step_confirmed".to_string()));
    assert_eq!(h.pending.last(), Some(&Effect::RunK8s { step: 2 }));
    h.send(Msg::Tick(t0()));
    assert_eq!(h.pending.iter().filter(|e| matches!(e, Effect::PlanScale { .. })).count(), 1);
    assert_eq!(h.status_of("scale-down"), "running");
}

#[test]
fn l_on_a_step_with_pods_shows_the_logs_of_the_failing_pod_first() {
    use crate::engine::k8s::wait::{Health, PodTable};
    let mut h = Harness::opened(runbook(K8S_RUNBOOK));
    h.app.selected = 1;
    assert!(!h.app.contexts().contains(&crate::ui::keymap::Context::Pods));
    let table =
        PodTable::new(vec![pod_row("web-a", Health::Ready), pod_row("web-b", Health::Failing)], "web 1/2 ready".into());
    h.send(Msg::Pods { step: 1, table });
    assert!(h.app.contexts().contains(&crate::ui::keymap::Context::Pods));
    h.send(ch('l'));
    assert!(matches!(h.app.modal, Some(Modal::Picker { purpose: crate::ui::app::PickerPurpose::Pod(1), .. })));
    h.send(key(KeyCode::Enter));
    assert_eq!(h.pending.last(), Some(&Effect::PodLogs { step: 1, pod: "web-b".into() }));
}

#[test]
fn a_adds_an_action_item_with_its_owner() {
    let mut h = Harness::opened(walkthrough());
    h.send(ch('a'));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::ActionItem { step: 0 }, .. })));
    type_text(&mut h, "Rotate the backup user's key @dana");
    h.send(key(KeyCode::Enter));
    let last = h.journal.last().map(|r| serde_json::to_value(&r.event).unwrap()).unwrap();
    assert_eq!(last["type"], "action_item_added");
    assert_eq!(last["text"], "Rotate the backup user's key");
    assert_eq!(last["owner"], "dana");
    assert_eq!(last["step"], "brief");
    assert_eq!(h.app.status.as_deref(), Some("action item saved for dana"));
}

#[test]
fn d_on_a_finished_drill_records_the_debrief() {
    let mut h =
        Harness::opened(runbook("[runbook]\nid = \"m\"\ntitle = \"M\"\n[[step]]\nid = \"only\"\nkind = \"manual\"\n"));
    h.send(key(KeyCode::Enter));
    assert_eq!(h.events().last().map(String::as_str), Some("drill_finished"));
    h.send(ch('d'));
    type_text(&mut h, "the restore took 12 minutes");
    h.send(key(KeyCode::Enter));
    assert!(matches!(h.app.modal, Some(Modal::Text { purpose: TextPurpose::DebriefToImprove { .. }, .. })));
    type_text(&mut h, "scale DR down before dropdb");
    h.send(key(KeyCode::Enter));
    let last = h.journal.last().map(|r| serde_json::to_value(&r.event).unwrap()).unwrap();
    assert_eq!(last["type"], "debrief_recorded");
    assert_eq!(last["went_well"], "the restore took 12 minutes");
    assert_eq!(last["to_improve"], "scale DR down before dropdb");
    assert!(h.app.modal.is_none());
}

// ---- watching a drill driven elsewhere (`drillbook watch`) ----

fn started(step: &str, attempt: u32, command: bool) -> Event {
    Event::StepStarted {
        step: step.into(),
        attempt,
        command: command.then(|| format!("run {step}")),
        log: command.then(|| format!("logs/{step}.{attempt}.log")),
    }
}

#[test]
fn watching_starts_nothing_and_follows_the_journal_like_the_driver() {
    let mut h = Harness::watching(walkthrough());
    assert!(h.app.read_only());
    assert_eq!(h.status_of("brief"), "pending", "the watcher does not start the first step");
    assert!(h.pending.is_empty());
    h.follow(started("brief", 1, false));
    assert_eq!(h.status_of("brief"), "running");
    h.follow(Event::finished_by_hand("brief", 1, crate::drill::event::AttemptResult::Succeeded, None, 900));
    assert_eq!(h.status_of("brief"), "done");
    assert_eq!(h.status_of("prepare-sandbox"), "pending", "nor the next one");
    let effects = h.follow(started("prepare-sandbox", 1, true));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(h.app.selected, 1, "the view follows the running step");
    h.send(Msg::Output { step: 1, stream: OutputStream::Stdout, lines: vec!["preparing".into()] });
    assert!(h.app.logs[1].len() >= 2, "marker + line");
    h.follow(Event::StepFinished {
        step: "prepare-sandbox".into(),
        attempt: 1,
        result: crate::drill::event::AttemptResult::Failed,
        exit_code: Some(3),
        reason: Some("exit code 3 (expected 0)".into()),
        duration_ms: 10,
        log_sha256: None,
    });
    assert_eq!(h.status_of("prepare-sandbox"), "failed");
    assert!(h.app.modal.is_none(), "the failure dialog is the driver's");
    h.follow(Event::DrillFinished { outcome: crate::drill::event::DrillOutcome::Failed, reason: None });
    assert!(h.app.drill.as_ref().unwrap().finished.is_some());
    assert!(h.pending.is_empty(), "{:?}", h.pending);
}

#[test]
fn watching_refuses_every_key_that_would_change_the_drill() {
    let mut h = Harness::watching(walkthrough());
    h.follow(started("brief", 1, false));
    let journaled = h.journal.len();
    // Enter (mark done), d, s (skip), n (note), a (action item): a manual step.
    for key_msg in [key(KeyCode::Enter), ch('d'), ch('s'), ch('n'), ch('a'), ch(' ')] {
        h.app.status = None;
        let effects = h.send(key_msg);
        assert!(effects.is_empty(), "{effects:?}");
        assert!(h.app.modal.is_none(), "{:?}", h.app.modal);
        assert_eq!(h.app.status.as_deref(), Some(crate::ui::app::READ_ONLY_NOTICE));
    }
    // A checklist: space would tick.
    h.follow(Event::finished_by_hand("brief", 1, crate::drill::event::AttemptResult::Succeeded, None, 1));
    h.follow(started("smoke", 1, false));
    let journaled_now = h.journal.len();
    assert!(h.send(ch(' ')).is_empty());
    assert_eq!(h.status_of("smoke"), "running");
    assert!(!h.app.drill.as_ref().unwrap().step("smoke").unwrap().ticked(0));
    // The debrief of a finished drill.
    h.follow(Event::DrillFinished { outcome: crate::drill::event::DrillOutcome::Aborted, reason: None });
    assert!(h.send(ch('d')).is_empty());
    assert!(h.app.modal.is_none());
    assert_eq!(h.journal.len(), journaled_now + 1, "only what was followed is in the journal");
    assert!(journaled < journaled_now);
    assert!(h.pending.is_empty(), "{:?}", h.pending);
}

#[test]
fn watching_moves_scrolls_searches_and_shows_help() {
    let mut h = Harness::watching(walkthrough());
    h.follow(started("prepare-sandbox", 1, true));
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
    h.follow(started("prepare-sandbox", 1, true));
    assert!(h.app.running_command().is_some());
    assert_eq!(h.send(ch('q')), vec![Effect::Quit { interrupt: None }]);
    assert!(h.app.modal.is_none(), "no quit question: nothing is interrupted");

    let mut h = Harness::watching(walkthrough());
    h.follow(started("prepare-sandbox", 1, true));
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(h.send(ctrl_c), vec![Effect::Quit { interrupt: None }]);
    let mut h = Harness::watching(walkthrough());
    assert_eq!(h.send(Msg::Signal("SIGTERM")), vec![Effect::Quit { interrupt: None }]);
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

#[test]
fn an_interrupted_step_shows_what_its_attempt_left_running() {
    let mut h = Harness::opened(runbook(FAILING));
    let record =
        h.journal_event(Event::SessionStarted { pid: 2, host: "h".into(), mode: SessionMode::Tui, resumed: true });
    h.app.modal = None;
    h.send(Msg::StillRunning { step: 0, processes: vec!["pid 4250 pg_restore -d acme_dr (attempt 1)".into()] });
    h.send(Msg::StepEnded(vec![record]));
    assert!(matches!(h.app.modal, Some(Modal::Interrupted { step: 0 })), "{:?}", h.app.modal);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    terminal.draw(|frame| crate::ui::render::render(&h.app, frame)).unwrap();
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Still running (r stops them before running the step again):"), "{screen}");
    assert!(screen.contains("pid 4250 pg_restore -d acme_dr (attempt 1)"), "{screen}");
    // Nothing left running: nothing shown.
    h.send(Msg::StillRunning { step: 0, processes: Vec::new() });
    assert!(h.app.still_running.is_empty());
}
