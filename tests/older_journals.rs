//! A drill journaled by drillbook before its evidence was typed (commit
//! b3f0fa5, in `tests/fixtures/main-b3f0fa5/`: a training drill with every
//! kind of evidence, a skipped failure, a checklist note, participants and an
//! action item) still verifies, replays into typed evidence, and reports its
//! steps, evidence, environment and objectives as that version did. The
//! expected reports are what b3f0fa5's `drillbook report` printed for it;
//! the verdict at their top is new (that version called the drill
//! "completed" though a required step failed and was skipped past).

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drillbook::drill::event::Event;
use drillbook::drill::evidence::Evidence;
use drillbook::drill::journal;
use drillbook::drill::state::{DrillState, Replayer};
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
    let mut replayer = Replayer::default();
    let streamed = journal::read_each::<Event>(&path, &mut |record| replayer.feed(record));
    assert!(streamed.is_ok_and(|torn| torn.is_none()));
    assert_eq!(replayer.finish().unwrap(), state, "a resume's record-by-record replay builds the same state");
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

/// A Markdown section, from its `## ` heading to the next.
fn section(markdown: &str, heading: &str) -> String {
    let start = markdown.find(&format!("\n## {heading}\n")).unwrap_or_else(|| panic!("no {heading}"));
    let rest = &markdown[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |at| at + 3);
    rest[..end].to_string()
}

#[test]
fn an_older_journal_reports_its_steps_and_evidence_as_it_did() {
    let home = home_with_the_old_drill();
    let (now, then) = (report(&home, "md"), expected("md"));
    // Attempt lines now say when an attempt ended (they said when it started).
    let without_attempts = |text: String| {
        text.lines().filter(|l| !l.starts_with("- attempt ")).map(|l| format!("{l}\n")).collect::<String>()
    };
    for heading in ["Environment", "Participants", "Variables", "Steps", "Deviations", "Teardown", "Action items"] {
        assert_eq!(without_attempts(section(&now, heading)), without_attempts(section(&then, heading)), "{heading}");
    }
    let now: serde_json::Value = serde_json::from_str(&report(&home, "json")).unwrap();
    let then: serde_json::Value = serde_json::from_str(&expected("json")).unwrap();
    for key in ["environment", "tags", "rpo", "deviations", "participants", "action_items", "sessions", "vars"] {
        assert_eq!(now[key], then[key], "{key}");
    }
    let steps = |report: &serde_json::Value| {
        let mut steps = report["steps"].clone();
        // New: why a skipped step was skipped.
        steps.as_array_mut().unwrap().iter_mut().for_each(|s| drop(s.as_object_mut().unwrap().remove("skip_cause")));
        steps
    };
    assert_eq!(steps(&now), steps(&then));
    // The verdict that version did not have: a required step failed and was skipped past.
    assert_eq!(now["outcome"], "failed");
    assert_eq!(now["findings"][0]["step"], "check-bucket");
    assert_eq!(now["rto"]["verdict"], "not achieved");
}

/// The HTML report's evidence is the same but for the http-check's, which
/// b3f0fa5 printed as raw JSON and is now in words like the Markdown's.
#[test]
fn an_older_journal_reports_in_html_with_the_same_evidence_and_http_in_words() {
    let home = home_with_the_old_drill();
    let choices = |html: &str| -> Vec<String> {
        // This version heads each item with what it is; b3f0fa5 called them all "Choice".
        let items = if html.contains("<h4>Choice</h4>") { "<h4>Choice</h4>" } else { "<h4 class=\"evidence\">" };
        html.split(items)
            .skip(1)
            .map(|rest| {
                rest.split_once("<ul>").map_or(rest, |(_, list)| list).split("</ul>").next().unwrap().to_string()
            })
            .collect()
    };
    let (now, then) = (choices(&report(&home, "html")), choices(&expected("html")));
    assert_eq!(now.len(), 5);
    assert_eq!(now.len(), then.len());
    for (now, then) in now.iter().zip(&then) {
        if then.contains("&quot;url&quot;") {
            assert!(then.contains("&quot;url&quot;:&quot;http://127.0.0.1:18093/healthz&quot;"), "{then}");
            assert!(now.contains("<li><code>http://127.0.0.1:18093/healthz</code> answered 200 in 1 ms</li>"), "{now}");
        } else {
            assert_eq!(now, then);
        }
    }
}
