//! kill -9 at random moments of a drill, then `resume`: nothing that was
//! journaled before the kill (completed steps, captures, ticks, notes) may
//! be lost, and the resumed drill must finish with the right values.
//! Trials: 100 locally, 20 when `CI` is set, `DRILLBOOK_CRASH_TRIALS` to
//! choose; `DRILLBOOK_CRASH_SEED` picks the kill moments.

use crate::support;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::reliability::{self, Counts};
use support::{Home, fixture, stderr_of, stdout_of};

/// Enough "yes, with a note" answers for any prompt the drill may ask.
fn answers() -> String {
    (0..40).map(|i| format!("y note {i}\n")).collect()
}

fn spawn(home: &Home, args: &[&str]) -> Child {
    let mut child =
        home.cmd_std().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Ignore EPIPE: the process may be dead already.
    let _ = stdin.write_all(answers().as_bytes());
    child
}

/// Facts that must survive: every complete journal line's event, as JSON.
fn complete_events(journal: &str) -> Vec<Value> {
    journal
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|record| record["event"].clone())
        .collect()
}

fn is_fact(event: &Value) -> bool {
    let kind = event["type"].as_str().unwrap_or("");
    matches!(kind, "capture_set" | "checklist_ticked" | "note_added" | "drill_finished")
        || (kind == "step_finished" && event["result"] == "succeeded")
}

/// A tiny deterministic generator, so a failing trial can be reproduced.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    let trials = reliability::loop_size("DRILLBOOK_CRASH_TRIALS", 100, 20);
    let seed = std::env::var("DRILLBOOK_CRASH_SEED").ok().and_then(|t| t.parse().ok()).unwrap_or(0x5eed);
    let mut random = Lcg(seed);
    let runbook = fixture("crash.toml");
    // Calibrate: kill moments are spread over one whole uninterrupted run.
    let calibration = Home::new();
    let started = Instant::now();
    let full = spawn(&calibration, &["run", "--plain", runbook.to_str().unwrap()]).wait_with_output().unwrap();
    assert!(full.status.success(), "{}\n{}", stdout_of(&full), stderr_of(&full));
    let full_run_ms = started.elapsed().as_millis().max(50) as u64;
    let mut killed_mid_drill = 0;
    let mut counts = Counts::default();
    for trial in 0..trials {
        let home = Home::new();
        let delay = Duration::from_millis(random.next() % full_run_ms);
        let mut child = spawn(&home, &["run", "--plain", runbook.to_str().unwrap()]);
        let started = Instant::now();
        while started.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let sigkilled = child.kill().is_ok(); // SIGKILL
        let output = child.wait_with_output().unwrap();
        counts.trials += 1;
        // A fault only when the SIGKILL reached a drillbook still running.
        if sigkilled && output.status.code().is_none() {
            counts.faults += 1;
        }
        let context = format!("trial {trial} (seed {seed}, kill after {delay:?})");

        let Some(drill) = home.drills().into_iter().next() else {
            continue; // killed before the drill existed: nothing to lose
        };
        let journal_path = drill.join("journal.jsonl");
        let before = std::fs::read_to_string(&journal_path).unwrap_or_default();
        if !before.contains('\n') {
            // Killed before the first event was complete: the drill never
            // started, and `resume` must say so rather than fail oddly.
            let resumed = spawn(&home, &["resume", "--plain"]).wait_with_output().unwrap();
            assert!(stderr_of(&resumed).contains("there is no unfinished drill"), "{context}: {}", stderr_of(&resumed));
            continue;
        }
        let facts_before: Vec<Value> = complete_events(&before).into_iter().filter(is_fact).collect();
        let finished_before = facts_before.iter().any(|e| e["type"] == "drill_finished");
        if !finished_before {
            killed_mid_drill += 1;
        }

        if !finished_before {
            let resumed = spawn(&home, &["resume", "--plain"]).wait_with_output().unwrap();
            assert!(
                resumed.status.success(),
                "{context}: resume failed\n--- first run\n{}\n--- resume\n{}\n{}",
                stdout_of(&output),
                stdout_of(&resumed),
                stderr_of(&resumed)
            );
        }

        let after = std::fs::read_to_string(&journal_path).unwrap();
        let complete_before: String = before.split_inclusive('\n').filter(|l| l.ends_with('\n')).collect();
        let events_after = complete_events(&after);
        let lost: Vec<&Value> = facts_before.iter().filter(|fact| !events_after.contains(fact)).collect();
        // A complete line rewritten after the kill counts as lost too.
        let rewritten = !after.starts_with(&complete_before);
        counts.lost += lost.len() as u64 + u64::from(rewritten && lost.is_empty());
        if rewritten || !lost.is_empty() {
            reliability::record("kill_9_at_random_moments_loses_nothing", counts);
        }
        assert!(!rewritten, "{context}: journal lines before the kill were changed");
        assert!(lost.is_empty(), "{context}: lost {lost:?}");

        let id = drill.file_name().unwrap().to_string_lossy().to_string();
        let report = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
        let report: Value = serde_json::from_slice(&report.stdout).unwrap_or_else(|e| panic!("{context}: {e}"));
        // Killed and resumed: interruptions are deviations, nothing more.
        assert!(report["outcome"].as_str().unwrap_or("").starts_with("passed"), "{context}: {}", report["outcome"]);
        let capture = |step: usize, name: &str| {
            report["steps"][step]["captures"][name]["value"].as_str().unwrap_or("").to_string()
        };
        assert_eq!(capture(0, "first"), "first-acme", "{context}");
        assert_eq!(capture(1, "second"), "second-first-acme", "{context}");
        assert_eq!(capture(3, "third"), "third-second-first-acme", "{context}");
        assert_eq!(capture(5, "fourth"), "third-second-first-acme-done", "{context}");
        for item in 0..3 {
            assert_eq!(report["steps"][2]["checklist"][item]["ticked"], true, "{context}");
        }
        for step in report["steps"].as_array().unwrap() {
            assert_eq!(step["status"], "done", "{context}: {}", step["id"]);
        }
        home.cmd().args(["verify", &id]).assert().success();
    }
    reliability::record("kill_9_at_random_moments_loses_nothing", counts);
    eprintln!("{killed_mid_drill} of {trials} kills landed mid-drill (full run {full_run_ms} ms)");
    assert!(killed_mid_drill * 2 >= trials, "most kills should land mid-drill ({killed_mid_drill} of {trials})");
}
