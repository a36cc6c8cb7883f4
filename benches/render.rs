//! Frame time of the main screen with a huge drill against a small one, in
//! the same process: 1,000,000 log lines and 5,000 pod rows (in a drill of
//! 5,000 steps) vs 100 lines and 10 pod rows (10 steps). Target: the big
//! frame costs at most 1.5x the small one.
//!
//!     cargo bench --bench render

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drillbook::drill::event::{Event, SessionMode};
use drillbook::drill::journal::Record;
use drillbook::drill::state::DrillState;
use drillbook::drive::Update;
use drillbook::engine::OutputStream;
use drillbook::engine::k8s::wait::{Health, PodRow, PodTable};
use drillbook::ui::app::{App, Msg};
use drillbook::ui::render::render;
use drillbook::ui::theme::Theme;
use drillbook::ui::update::{start_form, update};
use drillbook::ui::widgets::log_pane::LogPane;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn runbook(steps: usize) -> drillbook::runbook::Runbook {
    let mut text = String::from("[runbook]\nid = \"bench\"\ntitle = \"Bench\"\nrto_target = \"4h\"\n");
    for i in 0..steps {
        text.push_str(&format!(
            "[[step]]\nid = \"step-{i}\"\ntitle = \"Step number {i}\"\nkind = \"command\"\nrun = \"echo {i}\"\n"
        ));
    }
    drillbook::runbook::parse("bench.toml", &text).expect("runbook")
}

/// A live pod table as `k8s-wait` shows it: mostly Ready, a few on their way, one failing.
fn pod_table(pods: usize) -> PodTable {
    let rows = (0..pods)
        .map(|i| {
            let health = match i % 500 {
                7 => Health::Failing,
                3 | 11 => Health::Progressing,
                _ => Health::Ready,
            };
            PodRow {
                name: format!("web-7d9f8c6b5-{i:05}"),
                ready: if health == Health::Ready { "1/1".into() } else { "0/1".into() },
                status: match health {
                    Health::Failing => "CrashLoopBackOff".into(),
                    Health::Progressing => "ContainerCreating".into(),
                    Health::Ready => "Running".into(),
                },
                restarts: if health == Health::Failing { 4 } else { 0 },
                age: "12m".into(),
                tag: "main-4f2a9c1".into(),
                node: format!("node-{}", i % 40),
                health,
                problem: (health == Health::Failing).then(|| "CrashLoopBackOff (exit code 1)".into()),
            }
        })
        .collect();
    PodTable::new(rows, format!("web {}/{pods} ready", pods - pods / 250))
}

fn app(steps: usize, lines: usize, pods: usize) -> App {
    let runbook = Arc::new(runbook(steps));
    let form = start_form(&runbook, &BTreeMap::new(), &BTreeMap::new(), &[]);
    let now = jiff::Timestamp::now();
    let mut app = App::new(runbook.clone(), form, now, Theme { color: true });
    app.size = (200, 60);
    let started = Event::DrillStarted {
        drill_id: "bench".into(),
        runbook_id: runbook.id.clone(),
        runbook_title: runbook.title.clone(),
        runbook_path: "bench.toml".into(),
        runbook_sha256: runbook.sha256.clone(),
        operator: "bench".into(),
        host: "bench".into(),
        drillbook_version: "bench".into(),
        training: false,
        rto_target_secs: Some(14_400),
        rpo_target_secs: None,
        project: None,
        cadence: None,
        vars: BTreeMap::new(),
        secret_vars: Vec::new(),
        steps: drillbook::drive::session::step_outlines(&runbook),
    };
    let record = |seq, event| Record { seq, ts: now, prev: String::new(), event };
    let mut state = DrillState::replay(&[record(1, started)]).expect("state");
    state
        .apply(&record(
            2,
            Event::SessionStarted {
                pid: 1,
                host: "b".into(),
                mode: SessionMode::Tui,
                resumed: false,
                previous_alive_at: None,
                operator: None,
            },
        ))
        .expect("apply");
    let opened = Update::Opened {
        id: "bench".into(),
        dir: "/drills/bench".into(),
        state: Box::new(state),
        notices: Vec::new(),
        resumed: false,
    };
    let _ = update(&mut app, Msg::Drive(opened));
    // The selected step (the one that runs) holds the whole log.
    let selected = app.selected;
    app.logs[selected] = LogPane::new(lines.max(1));
    app.pods.insert(selected, pod_table(pods));
    let batch: Vec<String> =
        (0..1000).map(|i| format!("\x1b[32m{i:>8}\x1b[0m restoring table public.pages: copied {i} rows")).collect();
    let mut pushed = 0;
    while pushed < lines {
        let take = batch.len().min(lines - pushed);
        app.logs[selected].push_lines(OutputStream::Stdout, &batch[..take]);
        pushed += take;
    }
    app
}

fn mean_frame(app: &App, frames: u32) -> Duration {
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    for _ in 0..20 {
        terminal.draw(|f| render(app, f)).expect("draw");
    }
    let started = Instant::now();
    for _ in 0..frames {
        terminal.draw(|f| render(app, f)).expect("draw");
    }
    started.elapsed() / frames
}

fn main() {
    let small = app(10, 100, 10);
    let big = app(5_000, 1_000_000, 5_000);
    let frames = 300;
    // Interleave the runs so machine noise hits both alike.
    let mut small_total = Duration::ZERO;
    let mut big_total = Duration::ZERO;
    for _ in 0..5 {
        small_total += mean_frame(&small, frames);
        big_total += mean_frame(&big, frames);
    }
    let (small_mean, big_mean) = (small_total / 5, big_total / 5);
    let ratio = big_mean.as_secs_f64() / small_mean.as_secs_f64();
    println!("render 200x60: 10 steps / 100 lines / 10 pods: {small_mean:?} per frame");
    println!("render 200x60: 5,000 steps / 1,000,000 lines / 5,000 pods: {big_mean:?} per frame");
    println!("ratio: {ratio:.2}x (target <= 1.5x) {}", if ratio <= 1.5 { "PASS" } else { "FAIL" });
    // Where the difference comes from, one dimension at a time.
    let many_steps = mean_frame(&app(5_000, 100, 10), frames);
    let many_lines = mean_frame(&app(10, 1_000_000, 10), frames);
    let many_pods = mean_frame(&app(10, 100, 5_000), frames);
    println!("  alone: 5,000 steps {many_steps:?}; 1,000,000 lines {many_lines:?}; 5,000 pods {many_pods:?}");
}
