//! The fleet screen: keys through `update`, and whole screens at 80x24 and
//! 200x60 rendered into a `TestBackend`.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::fleet::tests::{drill, now};
use crate::fleet::{Options, Roster, Status, register};

/// Five projects, one of each status and one never drilled, with a trend.
fn app() -> FleetApp {
    let mut drills = vec![
        drill("01a00000-0000-7000-8000-00000000000a", "acme", "backup-verification", 30, "passed", Some(3720)),
        drill("01a00000-0000-7000-8000-00000000000b", "beta", "backup-verification", 85, "passed", Some(5400)),
        drill("01a00000-0000-7000-8000-00000000000c", "gamma", "postgres-restore", 120, "passed", Some(1800)),
        drill("01a00000-0000-7000-8000-00000000000d", "delta", "backup-verification", 10, "failed", None),
    ];
    for (i, rto) in [4000, 3900, 4200, 3720].iter().enumerate() {
        let id = format!("01a00000-0000-7000-8000-0000000001{i:02}");
        drills.push(drill(&id, "acme", "backup-verification", 400 - 90 * i as i64, "passed", Some(*rto)));
    }
    drills[0].local_dir = Some("/home/dana/.local/share/drillbook/drills/01a00000".into());
    let roster = Roster::parse("[[project]]\nname = \"newco\"\nrunbooks = [\"backup-verification\"]\n").unwrap();
    let register = register(drills, Some(&roster), &Options::at(now()));
    FleetApp::new(register, "s3://acme-drills/fleet/ + this machine".into(), Theme { color: false })
}

fn key(app: &mut FleetApp, code: KeyCode) -> Vec<Effect> {
    update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn shown(app: &FleetApp) -> Vec<String> {
    app.order.iter().map(|i| app.register.rows[*i].project_label().to_string()).collect()
}

#[test]
fn it_opens_on_the_most_urgent_row() {
    let app = app();
    assert_eq!(shown(&app), ["delta", "newco", "gamma", "beta", "acme"]);
    assert_eq!(app.selected_row().map(|r| r.status), Some(Status::Failed));
}

#[test]
fn tab_sorts_by_the_next_column_and_r_reverses_keeping_the_selection() {
    let mut app = app();
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected_row().unwrap().project_label(), "newco");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.sort, SortBy::Project);
    assert_eq!(shown(&app), ["acme", "beta", "delta", "gamma", "newco"]);
    assert_eq!(app.selected_row().unwrap().project_label(), "newco", "the selection follows its row");
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(shown(&app), ["newco", "gamma", "delta", "beta", "acme"]);
    assert_eq!(app.selected, 0);
    // Sorting by RTO: never drilled and not achieved (no value) first.
    key(&mut app, KeyCode::BackTab);
    assert_eq!((app.sort, app.descending), (SortBy::Status, false));
    for _ in 0..5 {
        key(&mut app, KeyCode::Tab);
    }
    assert_eq!(app.sort, SortBy::Rto);
    assert_eq!(shown(&app), ["delta", "newco", "gamma", "acme", "beta"]);
}

#[test]
fn moving_stops_at_the_ends() {
    let mut app = app();
    key(&mut app, KeyCode::Up);
    assert_eq!(app.selected, 0);
    key(&mut app, KeyCode::End);
    assert_eq!(app.selected, 4);
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selected, 4);
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.selected, 0);
}

#[test]
fn enter_asks_for_the_selected_drills_report_and_q_quits() {
    let mut app = app();
    key(&mut app, KeyCode::End);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        [Effect::OpenReport {
            drill_id: "01a00000-0000-7000-8000-00000000000a".into(),
            local_dir: Some("/home/dana/.local/share/drillbook/drills/01a00000".into()),
        }]
    );
    // A row never drilled has no report: said on the screen, nothing to do.
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Down);
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.notice.as_deref(), Some("never drilled: there is no report to open"));
    key(&mut app, KeyCode::Down);
    assert_eq!(app.notice, None, "a notice lasts until the next key");
    assert_eq!(key(&mut app, KeyCode::Char('q')), [Effect::Quit]);
    assert_eq!(update(&mut app, Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))), [Effect::Quit]);
}

#[test]
fn the_report_of_a_drill_only_in_the_archive_is_a_command_to_run() {
    let notice = runtime::report_notice("01a2", None);
    assert_eq!(notice, "drill 01a2 is only in the archive: `drillbook report 01a2`");
    let dir = tempfile::tempdir().unwrap();
    let notice = runtime::report_notice("01a2", Some(dir.path()));
    assert!(notice.contains("has not ended"), "{notice}");
    std::fs::write(dir.path().join("report.md"), "# report").unwrap();
    let notice = runtime::report_notice("01a2", Some(dir.path()));
    assert_eq!(notice, format!("report: {}", dir.path().join("report.md").display()));
}

fn screen(app: &mut FleetApp, width: u16, height: u16) -> String {
    update(app, Msg::Resize(width, height));
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(app, frame)).unwrap();
    format!("{}", terminal.backend())
}

#[test]
fn register_screens() {
    let mut app = app();
    key(&mut app, KeyCode::End);
    for (width, height) in [(80, 24), (200, 60)] {
        insta::assert_snapshot!(format!("fleet_{width}x{height}"), screen(&mut app, width, height));
    }
}

#[test]
fn sorted_by_a_hidden_column_with_a_notice() {
    let mut app = app();
    for _ in 0..5 {
        key(&mut app, KeyCode::Tab);
    }
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::Notice("drill 01a2 is only in the archive: `drillbook report 01a2`".into()));
    insta::assert_snapshot!("fleet_sorted_by_rto_80x24", screen(&mut app, 80, 24));
}

#[test]
fn an_empty_register_says_what_would_fill_it() {
    let register = register(vec![], None, &Options::at(now()));
    let mut app = FleetApp::new(register, "this machine".into(), Theme { color: false });
    insta::assert_snapshot!("fleet_empty_80x24", screen(&mut app, 80, 24));
}
