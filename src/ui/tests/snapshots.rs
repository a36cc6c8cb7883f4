//! Whole screens at 80x24 and 200x60, rendered into a `TestBackend`.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;

use super::*;
use crate::engine::OutputStream;
use crate::ui::render::render;

fn screen(h: &Harness, width: u16, height: u16) -> String {
    let mut app_size = h.app.size;
    app_size.0 = width;
    let _ = app_size;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(&h.app, frame)).unwrap();
    format!("{}", terminal.backend())
}

fn both(name: &str, h: &mut Harness) {
    for (width, height) in [(80, 24), (200, 60)] {
        h.app.size = (width, height);
        insta::assert_snapshot!(format!("{name}_{width}x{height}"), screen(h, width, height));
    }
}

fn at(h: &mut Harness, seconds: i64) {
    let now = t0().checked_add(jiff::SignedDuration::from_secs(seconds)).unwrap();
    h.send(Msg::Tick(now));
}

#[test]
fn start_screen() {
    let mut h = Harness::start(demo());
    both("start", &mut h);
}

#[test]
fn running_with_log() {
    let mut h = Harness::opened(demo());
    h.send(key(KeyCode::Enter));
    let lines = vec![
        "listing s3://acme-hosting-services/acme/".to_string(),
        "\x1b[32mdaily-acme-202611270300.pgdump\x1b[0m".to_string(),
        "downloaded: /drills/x/downloads/daily-acme-202611270300.pgdump".to_string(),
    ];
    h.send(Msg::Output { step: 1, stream: OutputStream::Stdout, lines });
    h.send(Msg::Output { step: 1, stream: OutputStream::Stderr, lines: vec!["warning: slow network".into()] });
    at(&mut h, 95);
    both("running", &mut h);
}

#[test]
fn failed_step() {
    let mut h = Harness::opened(demo());
    h.send(key(KeyCode::Enter));
    h.send(Msg::Output {
        step: 1,
        stream: OutputStream::Stderr,
        lines: vec!["An error occurred (AccessDenied)".into()],
    });
    h.command_ends(1);
    at(&mut h, 200);
    both("failed", &mut h);
}

/// The demo drill run up to its checklist (commands succeed, confirmations answered).
fn at_smoke_test() -> Harness {
    let mut h = Harness::opened(demo());
    h.send(key(KeyCode::Enter));
    for _ in 0..4 {
        h.command_ends(0);
        if h.app.modal.is_some() {
            h.send(ch('y'));
        }
    }
    h.command_ends(0);
    h
}

#[test]
fn checklist() {
    let mut h = at_smoke_test();
    h.send(ch(' '));
    at(&mut h, 600);
    assert_eq!(h.status_of("smoke"), "running");
    both("checklist", &mut h);
}

#[test]
fn typed_confirm() {
    let mut h = at_smoke_test();
    for _ in 0..4 {
        h.send(ch(' '));
    }
    for c in "scale".chars() {
        h.send(ch(c));
    }
    at(&mut h, 900);
    assert!(matches!(h.app.modal, Some(crate::ui::app::Modal::TypedConfirm { .. })));
    both("typed_confirm", &mut h);
}

#[test]
fn picker() {
    let mut h = Harness::start(runbook(
        "[runbook]\nid = \"p\"\ntitle = \"Pick\"\n[vars.env]\nchoices = [\"staging\", \"production\", \"dr\"]\n[[step]]\nid = \"a\"\nkind = \"manual\"\n",
    ));
    h.send(key(KeyCode::Enter));
    both("picker", &mut h);
}

#[test]
fn help() {
    let mut h = Harness::opened(demo());
    h.send(ch('?'));
    both("help", &mut h);
}

#[test]
fn too_small() {
    let h = Harness::opened(demo());
    insta::assert_snapshot!("too_small_50x12", screen(&h, 50, 12));
}

#[test]
fn colours_mark_status() {
    let mut h = Harness::opened(demo());
    h.send(key(KeyCode::Enter));
    h.command_ends(1);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|frame| render(&h.app, frame)).unwrap();
    let buffer = terminal.backend().buffer();
    // Row 2 of the step list is the failed fetch step: its ✗ is red.
    let cell = (0..40).map(|x| &buffer[(x, 2)]).find(|c| c.symbol() == "✗").expect("failed icon");
    assert_eq!(cell.fg, ratatui::style::Color::Red);
}
