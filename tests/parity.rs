//! Parity of the two front-ends: the same drill, answered the same way
//! through the plain front-end (lines of input) and through the TUI's
//! `update` (keys), journals the same events in the same order with the
//! same payloads (times, ids, hashes, durations and the drill's own
//! directory set aside). Both only answer the one conductor's questions, so
//! a front-end that decided something itself would show here.
//!
//! Every bundled runbook and the fixtures with several step kinds run in
//! training mode (no cloud). The answers are scripted per question
//! (`support::frontends::usual_answer`): yes, the default pick, done, every
//! required checklist item, run again after an interruption, skip a failed
//! step with a reason.

use crate::support;

use std::path::Path;

use drillbook::drill::event::SessionMode;
use support::frontends::{
    healthy_site, kinds, load, normalized, open, sandbox_commands_reach, through_plain, through_the_tui, usual_answer,
};

/// Runs `runbook` (relative to the repository) through both front-ends and
/// compares their journals.
fn same_journal(runbook: &str, vars: &[(&'static str, &str)]) {
    sandbox_commands_reach(env!("CARGO_BIN_EXE_drillbook"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(runbook);
    let site = healthy_site();
    let mut vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
    vars.push(("site", site.endpoint()));
    vars.push(("dr_url", site.endpoint()));
    // Only what the runbook declares.
    let declared = load(&path).vars.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
    vars.retain(|(name, _)| declared.iter().any(|d| d == name));
    // A home each: the second drill would otherwise compare its data with the first's.
    let (tui_home, plain_home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let tui = through_the_tui(open(tui_home.path(), load(&path), &vars, SessionMode::Tui, true), usual_answer);
    let (plain, plain_journal) =
        through_plain(open(plain_home.path(), load(&path), &vars, SessionMode::Plain, true), tui.lines.clone());
    assert!(plain.is_ok(), "{runbook}: {plain:?}");
    let (tui_events, plain_events) = (normalized(&tui.journal), normalized(&plain_journal));
    assert_eq!(kinds(&tui_events), kinds(&plain_events), "{runbook}: event kinds differ (answers: {:?})", tui.lines);
    for (index, (a, b)) in tui_events.iter().zip(&plain_events).enumerate() {
        assert_eq!(a, b, "{runbook}: event {} differs", index + 1);
    }
    assert_eq!(kinds(&tui_events).last().map(String::as_str), Some("drill_finished"), "{runbook}");
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
    same_journal("runbooks/dr-provisioning.toml", &[("project", "acme"), ("lb_hostname", "lb.acme.example")]);
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
