//! Whole screens at 80x24 and 200x60, rendered into a `TestBackend`.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;

use super::*;
use crate::engine::OutputStream;

fn output(step: usize, stream: OutputStream, lines: Vec<String>) -> Msg {
    Msg::Drive(Update::Output { step, stream, lines: lines.into() })
}

/// The demo's brief done, its download running.
fn downloading() -> Harness {
    let mut h = Harness::opened(demo());
    h.starts("brief", false);
    h.done_by_hand("brief");
    // The set-up checks passed: the drill is at its backup.
    for check in ["check-backup-user", "check-assets-replica"] {
        h.starts(check, true);
        h.ends(check, 0);
    }
    h.starts("fetch-backup", true);
    h
}
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

/// A manual step waiting for the operator: what to do, and the keys (at
/// 80x24 the footer keeps `?` and `q`).
#[test]
fn manual_step() {
    let mut h = Harness::opened(demo());
    h.starts("brief", false);
    h.ask(crate::drive::Question::Manual { step: 0 });
    at(&mut h, 40);
    both("manual", &mut h);
}

#[test]
fn running_with_log() {
    let mut h = downloading();
    let lines = vec![
        "listing s3://acme-hosting-services/acme/".to_string(),
        "\x1b[32mdaily-acme-202611270300.pgdump\x1b[0m".to_string(),
        "downloaded: /drills/x/downloads/daily-acme-202611270300.pgdump".to_string(),
    ];
    h.send(output(1, OutputStream::Stdout, lines));
    h.send(output(1, OutputStream::Stderr, vec!["warning: slow network".into()]));
    at(&mut h, 95);
    both("running", &mut h);
}

#[test]
fn failed_step() {
    let mut h = downloading();
    h.send(output(1, OutputStream::Stderr, vec!["An error occurred (AccessDenied)".into()]));
    h.ends("fetch-backup", 1);
    h.ask(crate::drive::Question::Failed { step: 1, reason: "exit code 1 (expected 0)".into() });
    at(&mut h, 200);
    both("failed", &mut h);
}

fn capture(value: &str, age: u64) -> crate::runbook::template::CaptureValue {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert("age_secs".to_string(), serde_json::Value::from(age));
    fields.insert("image".to_string(), format!("registry.example.com/acme/web:{value}").into());
    crate::runbook::template::CaptureValue { value: value.into(), fields }
}

/// The demo's backup downloaded (23h 53m 20s old), not restored yet.
fn downloaded() -> Harness {
    let mut h = downloading();
    let backup = capture("/drills/x/downloads/fetch-backup/daily-acme-202611270300.pgdump", 86_000);
    h.record(Event::CaptureSet { step: "fetch-backup".into(), name: "backup".into(), value: backup });
    h.ends("fetch-backup", 0);
    h
}

/// The backup's age is no RPO verdict until a step restored the backup.
#[test]
fn the_status_bar_gives_no_rpo_verdict_before_the_restore() {
    let mut h = downloaded();
    h.starts("restore", true);
    let before = screen(&h, 200, 60);
    assert!(before.contains("RPO: backup 23h 53m 20s old / 1d, not restored yet"), "{before}");
    assert!(!before.contains("RPO PASS"), "{before}");
    h.ends("restore", 0);
    let after = screen(&h, 200, 60);
    assert!(after.contains("RPO PASS: backup 23h 53m 20s old / 1d"), "{after}");
}

/// A drill that ended without its restore shows neither objective as met,
/// whatever the clock and the backup's age say.
#[test]
fn the_status_bar_of_a_drill_that_skipped_its_restore_claims_no_objective() {
    use crate::drill::event::{DrillOutcome, SkipCause};
    let mut h = downloaded();
    let reason = "the DBA restores by hand".to_string();
    h.record(Event::StepSkipped { step: "restore".into(), cause: SkipCause::Declined, reason });
    h.record(Event::DrillFinished { outcome: DrillOutcome::Completed, reason: None });
    at(&mut h, 600);
    let screen = screen(&h, 200, 60);
    assert!(screen.contains(" · RTO 4h not achieved"), "{screen}");
    assert!(screen.contains("RPO not demonstrated: the 23h 53m 20s old backup was not restored"), "{screen}");
    assert!(!screen.contains("PASS"), "{screen}");
}

/// The demo drill journaled up to its checklist: confirmations given,
/// every step ended well, the typed steps captured what later steps use.
/// The demo up to its production tag, picked.
fn tag_picked() -> Harness {
    let mut h = downloaded();
    h.record(Event::StepConfirmed { step: "restore".into(), how: "typed `restore`".into() });
    h.starts("restore", true);
    h.ends("restore", 0);
    data_checked(&mut h, 3);
    h.ends("verify-data", 0);
    h.starts("pick-tag", true);
    let tag = capture("main-4f2a9c1", 0);
    h.record(Event::CaptureSet { step: "pick-tag".into(), name: "tag".into(), value: tag });
    h.ends("pick-tag", 0);
    h
}

fn at_smoke_test() -> Harness {
    let mut h = tag_picked();
    h.starts("check-isolation", true);
    h.ends("check-isolation", 0);
    h.record(Event::StepConfirmed { step: "deploy".into(), how: "answered yes".into() });
    h.starts("deploy", true);
    h.ends("deploy", 0);
    h.starts("wait", true);
    h.ends("wait", 0);
    h.starts("smoke", false);
    h.ask(crate::drive::Question::Checklist { step: 10 });
    h
}

/// The demo's data check running, `answered` of its three checks answered
/// (the third, the newest page edit, failing when it answers).
fn data_checked(h: &mut Harness, answered: usize) {
    use crate::drill::evidence::{Evidence, SqlAnswer, SqlResult};
    h.starts("verify-data", true);
    let answers = [
        ("users", "57", ">= 1", None),
        ("site settings", "1", "= 1", None),
        ("newest page edit", "2026-12-07 01:10:00+00", "", Some("x")),
    ];
    let checks = answers
        .iter()
        .take(answered)
        .map(|(name, answer, expect, _)| SqlAnswer {
            name: name.to_string(),
            query: format!("SELECT {name}"),
            answer: Some(answer.to_string()),
            expect: (!expect.is_empty()).then(|| expect.to_string()),
            freshness: expect.is_empty(),
            passed: true,
            problem: None,
            elapsed_ms: 2,
        })
        .collect();
    let result = SqlResult {
        database: "postgresql://acme@localhost:5432/acme_dr".into(),
        server: "PostgreSQL 15.18".into(),
        checks,
        newest_data: None,
        fingerprint: None,
        comparison: None,
    };
    h.record(Event::Evidence { step: "verify-data".into(), evidence: Evidence::Sql(result) });
}

/// A data check's table fills in as its queries answer.
#[test]
fn data_check() {
    let mut h = downloaded();
    h.starts("restore", true);
    h.ends("restore", 0);
    data_checked(&mut h, 2);
    at(&mut h, 300);
    let screen = screen(&h, 200, 60);
    assert!(screen.contains("newest page edit"), "every check is listed before it answers: {screen}");
    assert!(screen.contains("asking"), "the check being asked is marked: {screen}");
    both("data_check", &mut h);
}

fn tick(h: &mut Harness, item: usize) {
    let smoke = h.app.runbook.steps.iter().find(|s| s.id == "smoke").expect("the demo has a smoke checklist");
    let text = smoke.checklist_item(item).unwrap().to_string();
    h.record(Event::ChecklistTicked { step: "smoke".into(), item, text, ticked: true });
}

#[test]
fn checklist() {
    let mut h = at_smoke_test();
    h.send(ch(' '));
    tick(&mut h, 0);
    at(&mut h, 600);
    assert_eq!(h.status_of("smoke"), "running");
    both("checklist", &mut h);
}

#[test]
fn typed_confirm() {
    let mut h = at_smoke_test();
    for item in 0..4 {
        h.send(ch(' '));
        tick(&mut h, item);
    }
    h.done_by_hand("smoke");
    h.ask(crate::drive::Question::Confirm {
        step: 11,
        command: [
            "context:   sandbox",
            "namespace: acme-dr",
            "scale to 0 replica(s):",
            "  deployment/web: 2 → 0",
            "  deployment/worker: 1 → 0",
        ]
        .join("\n"),
        target: "context sandbox, namespace acme-dr".into(),
        typed: Some("acme-dr".into()),
        mismatch: None,
    });
    for c in "acme".chars() {
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
    h.starts("brief", false);
    h.send(ch('?'));
    both("help", &mut h);
}

#[test]
fn too_small() {
    let mut h = Harness::opened(demo());
    h.starts("brief", false);
    insta::assert_snapshot!("too_small_50x12", screen(&h, 50, 12));
}

#[test]
fn colours_mark_status() {
    let mut h = downloading();
    h.ends("fetch-backup", 1);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|frame| render(&h.app, frame)).unwrap();
    let buffer = terminal.backend().buffer();
    // The failed fetch step's ✗ in the step list is red.
    let cell = (1..24)
        .flat_map(|y| (0..40).map(move |x| (x, y)))
        .map(|at| &buffer[at])
        .find(|c| c.symbol() == "✗")
        .expect("failed icon");
    assert_eq!(cell.fg, ratatui::style::Color::Red);
}

#[test]
fn k8s_wait_with_a_crash_looping_pod() {
    use crate::engine::k8s::wait::{Health, PodRow, PodTable};
    let mut h = Harness::opened(runbook(
        "[runbook]\nid = \"k\"\ntitle = \"K\"\nprotected = [\"acme-production\"]\n[[step]]\nid = \"wait\"\nkind = \"k8s-wait\"\ncontext = \"prod-cluster\"\nnamespace = \"acme-dr\"\nexpect_tag = \"main-9f8e7d6\"\n",
    ));
    let row = |name: &str, ready: &str, status: &str, restarts: u32, health: Health| PodRow {
        name: name.into(),
        ready: ready.into(),
        status: status.into(),
        restarts,
        age: "3m".into(),
        tag: "main-9f8e7d6".into(),
        node: "node-a".into(),
        health,
        problem: (health == Health::Failing).then(|| "CrashLoopBackOff (restarts 5)".to_string()),
    };
    let table = PodTable::new(
        vec![
            row("web-7d4b9-2kx8q", "1/1", "Running", 0, Health::Ready),
            row("web-7d4b9-9zq4m", "0/1", "CrashLoopBackOff", 5, Health::Failing),
            row("worker-5c8f-h2j7k", "0/1", "ContainerCreating", 0, Health::Progressing),
        ],
        "web 1/2 ready · worker 0/1 ready".into(),
    );
    h.starts("wait", true);
    h.send(Msg::Drive(Update::Pods { step: 0, table }));
    h.send(Msg::Drive(Update::Progress { step: 0, message: "web 1/2 ready · worker 0/1 ready".into() }));
    h.send(output(
        0,
        OutputStream::Stdout,
        vec![
            "pod web-7d4b9-9zq4m is failing: CrashLoopBackOff (restarts 5)".into(),
            "[web-7d4b9-9zq4m] FATAL: could not connect to the database".into(),
        ],
    ));
    at(&mut h, 200);
    both("k8s_wait", &mut h);
}

/// `drillbook watch`: the status bar says read-only, which drill, whether
/// its driver runs and how it ended; hints offer nothing that changes it.
#[test]
fn watching() {
    use crate::drill::event::{AttemptResult, DrillOutcome, Event};
    use crate::ui::app::Driver;
    let mut h = Harness::watching(demo());
    h.send(Msg::Driver(Driver::Running("pid 4242 on dr-laptop".into())));
    h.record(Event::StepStarted { step: "brief".into(), attempt: 1, command: None, log: None });
    h.record(Event::finished_by_hand("brief", 1, AttemptResult::Succeeded, None, 60_000));
    h.record(Event::StepStarted {
        step: "fetch-backup".into(),
        attempt: 1,
        command: Some("s3-backup".into()),
        log: Some("logs/fetch-backup.1.log".into()),
    });
    h.send(output(1, OutputStream::Stdout, vec!["listing s3://acme-hosting-services/acme/".into()]));
    h.send(key(KeyCode::Enter));
    at(&mut h, 95);
    both("watching", &mut h);

    // The status bar alone once the drill has ended and its driver left.
    h.record(Event::DrillFinished { outcome: DrillOutcome::Completed, reason: None });
    h.send(Msg::Driver(Driver::NotRunning));
    h.app.status = None;
    let full = screen(&h, 120, 30);
    let status: Vec<&str> = full.lines().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
    insta::assert_snapshot!("watching_status_bar_finished", status.join("\n"));
}

/// The isolation check's findings in the detail pane: what was compared,
/// then one row per finding with what it is and the fix.
#[test]
fn isolation_findings() {
    use crate::drill::evidence::{Evidence, IsolationCompared, IsolationFinding, IsolationResult};
    let mut h = tag_picked();
    h.starts("check-isolation", true);
    let result = IsolationResult {
        context: "sandbox".into(),
        server: "sandbox:/drills/x/sandbox/cluster".into(),
        namespace: "acme-dr".into(),
        production_context: "sandbox".into(),
        production_namespace: "acme-production".into(),
        findings: vec![
            IsolationFinding {
                area: "configuration".into(),
                severity: "fail".into(),
                subject: "deployment/web container web: DB_HOST".into(),
                finding: "DB_HOST from ConfigMap acme-config (envFrom) key DB_HOST points at what production uses: \
                          deployment/web (DATABASE_URL)"
                    .into(),
                fix: "point DB_HOST at DR's own service in ConfigMap acme-config".into(),
            },
            IsolationFinding {
                area: "schedule".into(),
                severity: "warn".into(),
                subject: "cronjob/backup-job-daily".into(),
                finding: "runs in DR on `0 3 * * *`".into(),
                fix: "kubectl -n acme-dr patch cronjob backup-job-daily -p '{\"spec\":{\"suspend\":true}}'".into(),
            },
        ],
        compared: IsolationCompared {
            keys: vec!["*_HOST".into()],
            workloads: vec!["deployment/web".into(), "cronjob/backup-job-daily".into()],
            containers: 2,
            variables: 3,
            production_workloads: 2,
            production_variables: 3,
            policies: vec!["default-deny-egress (egress; (all pods))".into()],
            network_policy: "require".into(),
            cronjobs: vec!["backup-job-daily (NOT suspended)".into()],
            cronjobs_rule: "warn".into(),
            ..IsolationCompared::default()
        },
    };
    h.record(Event::Evidence { step: "check-isolation".into(), evidence: Evidence::Isolation(Box::new(result)) });
    h.ends("check-isolation", 1);
    at(&mut h, 300);
    both("isolation", &mut h);
}

/// The start screen of a project drilled before: the last drill's outcome
/// in the about box, each step's change and duration then in the plan.
#[test]
fn start_screen_since_the_last_drill() {
    use crate::report::history::{PreviousDrill, SinceLast, StepTrend};
    let mut h = Harness::start(demo());
    let trend = |id: &str, change: Option<&str>, then_ms: Option<u64>| StepTrend {
        id: id.into(),
        change: change.map(str::to_string),
        then_ms,
        now_ms: None,
        median_ms: then_ms,
        slower: false,
    };
    h.app.start.since_last = Some(SinceLast {
        previous: Some(PreviousDrill {
            drill_id: "01a2b3c4-0000".into(),
            started_at: "2026-09-02T09:00:00Z".into(),
            outcome: "passed with deviations".into(),
            rto: "PASS (2h 10m)".into(),
            rpo: "PASS (9h 0m)".into(),
        }),
        steps: vec![
            trend("fetch-backup", None, Some(41_000)),
            trend("restore", Some("changed"), Some(1_980_000)),
            trend("check-isolation", Some("added"), None),
        ],
        rto_trend: Vec::new(),
    });
    both("start_since_last", &mut h);
}
