//! A drill journaled by drillbook before its evidence was typed (commit
//! b3f0fa5, in `tests/fixtures/main-b3f0fa5/`: a training drill with every
//! kind of evidence, a skipped failure, a checklist note, participants and an
//! action item) still verifies, replays into typed evidence, and reports as
//! that version reported it. The expected reports are what b3f0fa5's
//! `drillbook report` printed for it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drillbook::drill::event::Event;
use drillbook::drill::evidence::Evidence;
use drillbook::drill::journal;
use drillbook::drill::state::DrillState;
use support::{Home, stdout_of};

const DRILL: &str = "01a24e9d-dab8-7514-b0b6-fb7339901687";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/main-b3f0fa5")
}

/// A home holding a copy of the old drill.
fn home_with_the_old_drill() -> Home {
    let home = Home::new();
    let to = home.path().join("drills").join(DRILL);
    std::fs::create_dir_all(&to).unwrap();
    for name in ["journal.jsonl", "runbook.toml"] {
        std::fs::copy(fixture().join("drills").join(DRILL).join(name), to.join(name)).unwrap();
    }
    home
}

fn report(home: &Home, format: &str) -> String {
    let output = home.cmd_std().args(["report", DRILL, "--format", format]).output().unwrap();
    assert!(output.status.success(), "{format}: {}", String::from_utf8_lossy(&output.stderr));
    stdout_of(&output)
}

fn expected(format: &str) -> String {
    std::fs::read_to_string(fixture().join("expected").join(format!("report.{format}"))).unwrap()
}

#[test]
fn an_older_journal_verifies_and_replays_into_typed_evidence() {
    let path = fixture().join("drills").join(DRILL).join("journal.jsonl");
    journal::verify(&path).expect("the chain written by b3f0fa5 verifies");
    let replay = journal::read::<Event>(&path).unwrap();
    let state = DrillState::replay(&replay.records).unwrap();
    let kinds: BTreeMap<&str, &str> = state
        .steps
        .iter()
        .filter_map(|step| Some((step.outline.id.as_str(), step.evidence.as_ref()?.kind())))
        .collect();
    let expected: BTreeMap<&str, &str> = [
        ("fetch-backup", "backup"),
        ("pick-tag", "tag"),
        ("wait", "wait"),
        ("site-up", "http"),
        ("scale-down", "scale"),
    ]
    .into();
    assert_eq!(kinds, expected);
    let Some(Evidence::Scale(plan)) = &state.step("scale-down").unwrap().evidence else { panic!("a scale plan") };
    assert_eq!(plan.namespace, "acme-dr");
    assert_eq!(plan.workloads.iter().map(|w| w.replicas).collect::<Vec<_>>(), vec![2, 1]);
}

#[test]
fn an_older_journal_reports_as_it_did_in_markdown_json_and_junit() {
    let home = home_with_the_old_drill();
    assert_eq!(report(&home, "md"), expected("md"));
    assert_eq!(report(&home, "junit"), expected("junit"));
    let now: serde_json::Value = serde_json::from_str(&report(&home, "json")).unwrap();
    let then: serde_json::Value = serde_json::from_str(&expected("json")).unwrap();
    assert_eq!(now, then);
}

/// The HTML report is the same but for the http-check's evidence, which
/// b3f0fa5 printed as raw JSON and is now in words like the Markdown's.
#[test]
fn an_older_journal_reports_in_html_as_it_did_with_http_evidence_in_words() {
    let home = home_with_the_old_drill();
    let now = report(&home, "html");
    let then = expected("html");
    let only = |a: &str, b: &str| {
        let mut lines: Vec<String> = a.lines().map(str::to_string).collect();
        for line in b.lines() {
            if let Some(at) = lines.iter().position(|l| l == line) {
                lines.remove(at);
            }
        }
        lines
    };
    let gone = only(&then, &now);
    let added = only(&now, &then);
    assert_eq!(gone.len(), 1, "{gone:#?}");
    assert!(gone[0].contains("&quot;url&quot;:&quot;http://127.0.0.1:18093/healthz&quot;"), "{gone:#?}");
    assert_eq!(added.len(), 1, "{added:#?}");
    assert_eq!(added[0], "<li><code>http://127.0.0.1:18093/healthz</code> answered 200 in 1 ms</li>");
}
