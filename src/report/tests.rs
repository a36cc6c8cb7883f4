//! Reports built from hand-made journals replayed into a `DrillState`, with
//! fixed times: every section, the four renderings, and the rules HTML and
//! JUnit must keep (escaping, nothing external, one bar per attempt).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::*;
use crate::drill::event::{AttemptResult, DrillOutcome, Event, SessionMode, SkipCause, StepOutline};
use crate::drill::evidence::Evidence;
use crate::drill::journal::Record;

const DRILL: &str = "01900000-0000-7000-8000-000000000042";
const HEAD: &str = "9f2c1e0d4b3a29187766554433221100ffeeddccbbaa99887766554433221100";

/// Evidence as journals wrote it before it was typed: fields, no `kind`.
fn legacy(choice: serde_json::Value) -> Evidence {
    serde_json::from_value(choice).unwrap()
}

fn t0() -> Timestamp {
    "2026-11-27T03:00:00Z".parse().unwrap()
}

/// A journal written by hand: each event at a number of seconds after `t0`.
struct Journal {
    records: Vec<Record<Event>>,
}

impl Journal {
    fn new(steps: Vec<StepOutline>, rto: Option<u64>, rpo: Option<u64>) -> Self {
        let mut journal = Journal { records: Vec::new() };
        journal.at(
            0,
            Event::DrillStarted {
                drill_id: DRILL.into(),
                runbook_id: "quarterly-dr".into(),
                runbook_title: "Quarterly DR drill".into(),
                runbook_path: "/srv/runbooks/quarterly-dr.toml".into(),
                runbook_sha256: "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12".into(),
                operator: "alice".into(),
                host: "dr-laptop".into(),
                drillbook_version: "0.1.0".into(),
                training: true,
                rto_target_secs: rto,
                rpo_target_secs: rpo,
                project: None,
                cadence: None,
                vars: BTreeMap::from([("project".to_string(), "acme".to_string())]),
                secret_vars: vec!["db_password".into()],
                steps,
            },
        );
        journal
    }

    fn at(&mut self, secs: i64, event: Event) -> &mut Self {
        let seq = self.records.len() as u64 + 1;
        let ts = t0().checked_add(SignedDuration::from_secs(secs)).unwrap();
        self.records.push(Record { seq, ts, prev: String::new(), event });
        self
    }

    fn state(&self) -> DrillState {
        DrillState::replay(&self.records).unwrap()
    }

    fn report(&self) -> Report {
        build(&self.state(), Some(HEAD.into()))
    }
}

fn outline(id: &str, title: &str, kind: &str) -> StepOutline {
    StepOutline {
        id: id.into(),
        title: title.into(),
        kind: kind.into(),
        always: false,
        optional: false,
        checklist: Vec::new(),
        uses: Vec::new(),
    }
}

fn session(pid: u32, resumed: bool) -> Event {
    Event::SessionStarted {
        pid,
        host: "dr-laptop".into(),
        mode: SessionMode::Plain,
        resumed,
        previous_alive_at: None,
        operator: None,
    }
}

fn started(step: &str, attempt: u32, command: Option<&str>) -> Event {
    Event::StepStarted {
        step: step.into(),
        attempt,
        command: command.map(str::to_string),
        log: command.map(|_| format!("logs/{step}.{attempt}.log")),
    }
}

fn finished(
    step: &str,
    attempt: u32,
    result: AttemptResult,
    exit: Option<i32>,
    reason: Option<&str>,
    ms: u64,
) -> Event {
    Event::StepFinished {
        step: step.into(),
        attempt,
        result,
        exit_code: exit,
        reason: reason.map(str::to_string),
        duration_ms: ms,
        log_sha256: exit.map(|_| format!("{step}{attempt}").repeat(8).chars().take(64).collect()),
    }
}

fn ok(step: &str, attempt: u32, ms: u64) -> Event {
    finished(step, attempt, AttemptResult::Succeeded, Some(0), None, ms)
}

fn capture(step: &str, name: &str, value: &str, fields: serde_json::Value) -> Event {
    let fields = fields.as_object().map(|f| f.clone().into_iter().collect()).unwrap_or_default();
    Event::CaptureSet { step: step.into(), name: name.into(), value: CaptureValue { value: value.into(), fields } }
}

/// The drill every section is checked on: a backup, a restore that fails
/// once, the production tag, a deploy cut by a crash and resumed ten
/// minutes later, a wait that finds the production tag running, a checklist,
/// a declined confirmation, a condition skip, a step marked done, and a
/// teardown that scales DR down and a notification nobody sent.
fn full_drill() -> Journal {
    let mut smoke = outline("smoke", "Smoke-test <script>alert('title')</script> the site", "checklist");
    smoke.checklist = vec!["Log in".into(), "Upload an image".into()];
    let mut scale = outline("scale-down", "Scale DR back to zero", "k8s-scale");
    scale.always = true;
    let mut notify = outline("notify", "Tell the team the drill is over", "manual");
    notify.always = true;
    let mut extra = outline("extra-check", "Optional extra check", "command");
    extra.optional = true;
    let steps = vec![
        outline("brief", "Brief the participants", "manual"),
        outline("fetch-backup", "Obtain the latest backup", "s3-backup"),
        outline("restore", "Restore the backup", "command"),
        outline("pick-tag", "Find the production tag", "k8s-image-tag"),
        outline("deploy", "Deploy the tag to DR", "command"),
        outline("wait", "Wait for DR to run it", "k8s-wait"),
        smoke,
        extra,
        outline("only-on-fridays", "Friday extras", "manual"),
        outline("dns", "Switch DNS", "manual"),
        scale,
        notify,
    ];
    let mut j = Journal::new(steps, Some(4 * 3600), Some(24 * 3600));
    j.at(1, session(4242, false))
        .at(2, Event::ParticipantAdded { name: "Alice Martin".into(), role: "incident commander".into() })
        .at(2, Event::ParticipantAdded { name: "Bob <b>".into(), role: "observer".into() })
        .at(10, started("brief", 1, None))
        .at(70, Event::finished_by_hand("brief", 1, AttemptResult::Succeeded, None, 60_000))
        .at(71, started("fetch-backup", 1, None))
        .at(
            75,
            Event::Evidence {
                step: "fetch-backup".into(),
                evidence: legacy(
                    json!({"key": "acme/daily-acme-202611270300.pgdump", "version_id": "v7", "size": 3_000_000,
                    "last_modified": "2026-11-27T02:00:00Z", "etag": "\"e1\""}),
                ),
            },
        )
        .at(
            130,
            capture(
                "fetch-backup",
                "backup",
                "/drills/x/downloads/daily.pgdump",
                json!({"bucket": "acme-hosting-services", "endpoint": "https://s3.eu-west-1.amazonaws.com",
                    "age_secs": 3720, "sha256": "5e3a", "key": "acme/daily-acme-202611270300.pgdump"}),
            ),
        )
        .at(130, finished("fetch-backup", 1, AttemptResult::Succeeded, None, None, 59_000))
        .at(140, Event::StepConfirmed { step: "restore".into(), how: "answered yes".into() })
        .at(141, started("restore", 1, Some("pg_restore --dbname=acme_dr backup.pgdump")))
        .at(200, finished("restore", 1, AttemptResult::Failed, Some(1), Some("exit code 1 (expected 0)"), 59_000))
        .at(260, Event::StepReset { step: "restore".into(), reason: "retry after fixing the role".into() })
        .at(261, started("restore", 2, Some("pg_restore --dbname=acme_dr backup.pgdump")))
        .at(380, capture("restore", "rows", "1284", json!({})))
        .at(380, ok("restore", 2, 119_000))
        .at(381, started("pick-tag", 1, None))
        .at(
            385,
            Event::Evidence {
                step: "pick-tag".into(),
                evidence: legacy(json!({"tag": "v2", "image": "registry.example.com/acme/web:v2",
                    "context": "prod-eu", "namespace": "acme-production"})),
            },
        )
        .at(
            390,
            capture(
                "pick-tag",
                "tag",
                "v2",
                json!({"tag": "v2", "image": "registry.example.com/acme/web:v2",
                    "namespace": "acme-production", "context": "prod-eu"}),
            ),
        )
        .at(390, finished("pick-tag", 1, AttemptResult::Succeeded, None, None, 9_000))
        .at(
            400,
            started(
                "deploy",
                1,
                Some("kubectl -n acme-dr set image deployment/web web=registry.example.com/acme/web:v2"),
            ),
        )
        // The laptop died at 430; drillbook ran again at 1030.
        .at(430, Event::NoteAdded { step: Some("deploy".into()), text: "rollout slow".into() })
        .at(1030, session(5151, true))
        .at(1031, Event::StepReset { step: "deploy".into(), reason: "run again after the interruption".into() })
        .at(
            1032,
            started(
                "deploy",
                2,
                Some("kubectl -n acme-dr set image deployment/web web=registry.example.com/acme/web:v2"),
            ),
        )
        .at(1040, ok("deploy", 2, 8_000))
        .at(1041, started("wait", 1, None))
        .at(
            1100,
            Event::Evidence {
                step: "wait".into(),
                evidence: legacy(json!({"context": "dr-eu", "namespace": "acme-dr", "expect_tag": "v2",
                    "running": {"web": "v2", "worker": "v2"}})),
            },
        )
        .at(1100, finished("wait", 1, AttemptResult::Succeeded, None, None, 59_000))
        .at(1101, started("smoke", 1, None))
        .at(1110, Event::ChecklistTicked { step: "smoke".into(), item: 0, text: "Log in".into(), ticked: true })
        .at(
            1120,
            Event::NoteAdded { step: Some("smoke".into()), text: "login page showed <script>alert(1)</script>".into() },
        )
        .at(1200, Event::finished_by_hand("smoke", 1, AttemptResult::Succeeded, None, 99_000))
        .at(
            1201,
            Event::StepSkipped {
                step: "extra-check".into(),
                cause: SkipCause::Operator,
                reason: "not confirmed".into(),
            },
        )
        .at(
            1202,
            Event::StepSkipped {
                step: "only-on-fridays".into(),
                cause: SkipCause::Condition,
                reason: "when `is_friday` is false".into(),
            },
        )
        .at(1300, Event::StepMarkedDone { step: "dns".into(), note: "switched by the network team".into() })
        .at(1301, started("scale-down", 1, None))
        .at(
            1305,
            Event::Evidence {
                step: "scale-down".into(),
                evidence: legacy(
                    json!({"context": "dr-eu", "server": "https://10.0.0.1:6443", "namespace": "acme-dr", "to": 0,
                    "workloads": [{"kind": "deployment", "name": "web", "replicas": 2},
                                  {"kind": "deployment", "name": "worker", "replicas": 1}]}),
                ),
            },
        )
        .at(1320, Event::StepConfirmed { step: "scale-down".into(), how: "typed `acme-dr`".into() })
        .at(1500, finished("scale-down", 1, AttemptResult::Succeeded, None, None, 199_000))
        .at(
            1501,
            Event::StepSkipped {
                step: "notify".into(),
                cause: SkipCause::NonInteractive,
                reason: "non-interactive run (--yes): a manual step needs a person".into(),
            },
        )
        .at(1502, Event::NoteAdded { step: None, text: "DR cluster needed a node pool resize".into() })
        .at(1510, Event::DrillFinished { outcome: DrillOutcome::Completed, reason: None })
        .at(1520, Event::SessionEnded { reason: "drill finished".into() })
        // The debrief and action items come the next morning.
        .at(
            30_000,
            Event::ActionItemAdded {
                text: "Automate the restore role fix".into(),
                owner: Some("Bob".into()),
                step: Some("restore".into()),
            },
        )
        .at(30_010, Event::ActionItemAdded { text: "Document DNS switch".into(), owner: None, step: None })
        .at(
            30_020,
            Event::DebriefRecorded {
                went_well: "Backup restored first time after the role fix.\nTag matched.".into(),
                to_improve: "Deploy was interrupted by a laptop crash.".into(),
            },
        );
    j
}

#[test]
fn environment_lists_clusters_and_buckets_from_choices_and_captures() {
    let report = full_drill().report();
    let kube = &report.environment.kubernetes;
    assert_eq!(
        kube.iter().map(|t| (t.context.as_str(), t.namespace.as_str())).collect::<Vec<_>>(),
        [("prod-eu", "acme-production"), ("dr-eu", "acme-dr")]
    );
    assert_eq!(kube[0].steps, ["pick-tag"]);
    assert_eq!(kube[1].steps, ["wait", "scale-down"]);
    assert_eq!(kube[1].server.as_deref(), Some("https://10.0.0.1:6443"));
    assert_eq!(
        report.environment.s3,
        [S3Target {
            endpoint: Some("https://s3.eu-west-1.amazonaws.com".into()),
            bucket: "acme-hosting-services".into(),
            steps: vec!["fetch-backup".into()],
        }]
    );
}

#[test]
fn production_and_dr_tags_are_compared() {
    let report = full_drill().report();
    assert_eq!(report.tags.verdict, "match", "{}", report.tags.detail);
    assert_eq!(report.tags.production.as_ref().map(|p| p.tag.as_str()), Some("v2"));
    assert_eq!(report.tags.dr.as_ref().map(|d| d.running.len()), Some(2));

    let mut j = full_drill();
    for record in &mut j.records {
        if let Event::Evidence { step, evidence: Evidence::Wait(wait) } = &mut record.event
            && step == "wait"
        {
            wait.running.insert("worker".into(), "v1".into());
        }
    }
    let report = j.report();
    assert_eq!(report.tags.verdict, "mismatch");
    assert!(report.tags.detail.contains("worker runs `v1`"), "{}", report.tags.detail);
    assert!(!report.tags.detail.contains("web runs"), "{}", report.tags.detail);

    let bare = Journal::new(vec![outline("wait", "Wait", "k8s-wait")], None, None).report();
    assert_eq!(bare.tags.verdict, "n/a");
    assert!(bare.environment.is_empty());
}

#[test]
fn deviations_list_every_failure_retry_skip_interruption_and_hand_marked_step() {
    let report = full_drill().report();
    let seen: Vec<(&str, &str)> = report.deviations.iter().map(|d| (d.step.as_str(), d.kind.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("restore", "failed attempt"),
            ("restore", "retry"),
            ("deploy", "interrupted"),
            ("deploy", "retry"),
            ("extra-check", "confirmation declined"),
            ("only-on-fridays", "skipped"),
            ("dns", "marked done"),
            ("notify", "skipped"),
        ]
    );
    let failed = &report.deviations[0];
    assert_eq!(failed.detail, "attempt 1 failed (exit 1): exit code 1 (expected 0)");
    assert_eq!(failed.at, "2026-11-27T03:03:20Z");
    // The crash is dated by the last thing the dead process journaled.
    assert_eq!(report.deviations[2].at, "2026-11-27T03:07:10Z");
    assert_eq!(report.deviations[5].cause.as_deref(), Some("condition"));
    assert_eq!(report.deviations[7].cause.as_deref(), Some("non_interactive"));
    assert_eq!(report.deviations[6].detail, "switched by the network team");
}

#[test]
fn teardown_says_whether_each_always_step_ran_and_how_it_ended() {
    let report = full_drill().report();
    let teardown: Vec<(&str, bool, &str)> =
        report.teardown.iter().map(|t| (t.step.as_str(), t.ran, t.status.as_str())).collect();
    assert_eq!(teardown, [("scale-down", true, "done"), ("notify", false, "skipped")]);
    assert_eq!(report.teardown[0].finished_at.as_deref(), Some("2026-11-27T03:25:00Z"));
}

#[test]
fn participants_action_items_and_debrief_are_reported() {
    let report = full_drill().report();
    let people: Vec<(&str, &str)> = report.participants.iter().map(|p| (p.name.as_str(), p.role.as_str())).collect();
    assert_eq!(people, [("Alice Martin", "incident commander"), ("Bob <b>", "observer")]);
    assert_eq!(report.action_items.len(), 2);
    assert_eq!(report.action_items[0].owner.as_deref(), Some("Bob"));
    assert_eq!(report.action_items[0].step.as_deref(), Some("restore"));
    assert_eq!(report.action_items[1].owner, None);
    let debrief = report.debrief.as_ref().unwrap();
    assert!(debrief.went_well.starts_with("Backup restored"));
    assert!(debrief.to_improve.contains("laptop crash"));
}

#[test]
fn rto_runs_from_the_first_step_to_the_last_step_before_teardown() {
    let report = full_drill().report();
    // brief started at +10s; dns, the last step that is not teardown, was settled at +1300s.
    assert_eq!(report.rto.measured_from.as_deref(), Some("2026-11-27T03:00:10Z"));
    assert_eq!(report.rto.measured_to.as_deref(), Some("2026-11-27T03:21:40Z"));
    assert_eq!(report.rto.achieved_secs, Some(1290));
    // The process died after +430s and the next began at +1030s.
    assert_eq!(report.rto.offline_ms, Some(600_000));
    // `dns` was marked done, not run: the recovery was not demonstrated.
    assert_eq!(report.rto.verdict, "not achieved");
    assert!(report.rto.detail.starts_with("`dns` was marked done without running"), "{}", report.rto.detail);
    assert!(report.rto.detail.contains("21m 30s measured against a target of 4h"), "{}", report.rto.detail);
    assert!(report.rto.detail.contains("11m 30s with drillbook running, 10m with no drillbook process"));
    assert!(report.rto.detail.contains("before teardown"), "{}", report.rto.detail);
    assert_eq!(report.rpo.verdict, "PASS");
    assert_eq!(report.rpo.achieved_secs, Some(3720));

    let mut j = Journal::new(vec![outline("restore", "Restore", "command")], Some(60), None);
    j.at(1, session(1, false)).at(5, started("restore", 1, Some("sleep 90"))).at(95, ok("restore", 1, 90_000));
    assert_eq!(j.report().rto.verdict, "not achieved", "not finished: nothing is claimed yet");
    j.at(96, Event::DrillFinished { outcome: DrillOutcome::Completed, reason: None });
    let report = j.report();
    assert_eq!(report.rto.verdict, "FAIL");
    assert_eq!(report.rto.achieved_secs, Some(90));
    assert_eq!(report.outcome, "passed", "a missed objective is its own verdict");

    let nothing = Journal::new(vec![outline("restore", "Restore", "command")], Some(60), None).report();
    assert_eq!(nothing.rto.verdict, "n/a");
    assert_eq!(nothing.rto.achieved_secs, None);
}

#[test]
fn a_session_ends_with_its_own_last_event_and_annotations_move_no_clock() {
    let state = full_drill().state();
    assert_eq!(state.sessions.len(), 2);
    assert_eq!(state.sessions[0].last_event_at.to_string(), "2026-11-27T03:07:10Z");
    // The action items and debrief of the next morning are not drill time.
    assert_eq!(state.sessions[1].last_event_at.to_string(), "2026-11-27T03:25:20Z");
    assert_eq!(state.last_event_at.to_string(), "2026-11-27T03:25:20Z");
    assert_eq!(state.active_time().as_secs(), 1520 - 1 - 600);
}

#[test]
fn an_action_item_on_an_unknown_step_does_not_replay() {
    let mut j = Journal::new(vec![outline("restore", "Restore", "command")], None, None);
    j.at(5, Event::ActionItemAdded { text: "x".into(), owner: None, step: Some("nope".into()) });
    assert!(matches!(
        DrillState::replay(&j.records),
        Err(crate::drill::state::ReplayError::UnknownStep { step, .. }) if step == "nope"
    ));
}

#[test]
fn new_events_have_their_json_shape_and_old_journals_still_read() {
    let shapes = [
        (
            Event::ParticipantAdded { name: "Alice".into(), role: "observer".into() },
            json!({"type": "participant_added", "name": "Alice", "role": "observer"}),
        ),
        (
            Event::ActionItemAdded { text: "Fix it".into(), owner: Some("Bob".into()), step: Some("restore".into()) },
            json!({"type": "action_item_added", "text": "Fix it", "owner": "Bob", "step": "restore"}),
        ),
        (
            Event::ActionItemAdded { text: "Fix it".into(), owner: None, step: None },
            json!({"type": "action_item_added", "text": "Fix it"}),
        ),
        (
            Event::DebriefRecorded { went_well: "a".into(), to_improve: "b".into() },
            json!({"type": "debrief_recorded", "went_well": "a", "to_improve": "b"}),
        ),
    ];
    for (event, shape) in shapes {
        assert_eq!(serde_json::to_value(&event).unwrap(), shape);
        assert_eq!(serde_json::from_value::<Event>(shape).unwrap(), event);
    }
    // A journal from before these events: nothing of them in the report.
    let mut j = Journal::new(vec![outline("a", "A", "manual")], None, None);
    j.at(1, session(1, false))
        .at(2, started("a", 1, None))
        .at(3, Event::finished_by_hand("a", 1, AttemptResult::Succeeded, None, 1000));
    let report = j.report();
    assert!(report.participants.is_empty() && report.action_items.is_empty() && report.debrief.is_none());
    assert!(report.deviations.is_empty() && report.teardown.is_empty());
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("markdown", to_markdown(&full_drill().report()));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!("junit", to_junit(&full_drill().report()));
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn junit_counts_steps_and_objectives() {
    let xml = to_junit(&full_drill().report());
    // 12 steps + RTO + RPO; failed: dns (marked done), notify (a teardown
    // that did not run), RTO (not achieved); skipped: extra-check (optional),
    // only-on-fridays (its `when`).
    assert!(
        xml.contains("<testsuite name=\"quarterly-dr\" id=\"01900000-0000-7000-8000-000000000042\" tests=\"14\" failures=\"3\" errors=\"0\" skipped=\"2\""),
        "{xml}"
    );
    assert_eq!(count(&xml, "<testcase "), 14);
    assert!(xml.contains("timestamp=\"2026-11-27T03:00:00\""), "{xml}");
    assert!(xml.contains("name=\"smoke: Smoke-test &lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; the site\""));
    assert!(xml.contains(HEAD), "the evidence chain head is in system-out");
    assert!(!xml.contains("<script"));
}

#[test]
fn junit_fails_a_missed_rto_and_a_failed_step() {
    let mut j = Journal::new(
        vec![
            outline("restore", "Restore", "command"),
            outline("deploy", "Deploy", "command"),
            outline("smoke", "Smoke", "manual"),
        ],
        Some(60),
        None,
    );
    j.at(1, session(1, false))
        .at(5, started("restore", 1, Some("sleep 90")))
        .at(95, ok("restore", 1, 90_000))
        .at(96, started("deploy", 1, Some("deploy \"it\" & <go>")))
        .at(
            98,
            finished("deploy", 1, AttemptResult::Failed, Some(2), Some("exit code 2 \u{1b}[31m(red)\u{1b}[0m"), 2_000),
        )
        .at(99, Event::DrillFinished { outcome: DrillOutcome::Failed, reason: Some("step `deploy` failed".into()) });
    let xml = to_junit(&j.report());
    assert!(xml.contains("tests=\"5\" failures=\"2\" errors=\"0\" skipped=\"2\""), "{xml}");
    let rto = xml.split("name=\"RTO\"").nth(1).unwrap().split("</testcase>").next().unwrap();
    assert!(rto.contains("<failure message=\"not achieved: `deploy` failed: exit code 2"), "{rto}");
    assert!(rto.contains("1m 33s measured against a target of 1m"), "{rto}");
    let deploy = xml.split("name=\"deploy: Deploy\"").nth(1).unwrap().split("</testcase>").next().unwrap();
    assert!(deploy.contains("<failure message=\"exit code 2 \u{FFFD}[31m(red)\u{FFFD}[0m\">"), "{deploy}");
    assert!(deploy.contains("$ deploy &quot;it&quot; &amp; &lt;go&gt;"), "{deploy}");
    assert!(xml.contains("<testcase classname=\"drillbook.quarterly-dr\" name=\"smoke: Smoke\" time=\"0.000\">\n      <skipped message=\"not run\"/>"), "{xml}");
    assert!(!xml.contains('\u{1b}'), "no control characters in XML");
}

#[test]
fn html_is_self_contained() {
    let html = to_html(&full_drill().report());
    assert!(html.starts_with("<!DOCTYPE html>"));
    for forbidden in ["<script", "<link", "@import", "@font-face", "<iframe", "<img", "<object"] {
        assert!(!html.to_lowercase().contains(forbidden), "{forbidden} in the HTML");
    }
    // No reference to anything outside the file: no src or href at all, no url() in CSS.
    for attribute in ["src=", "href=", "url("] {
        assert!(!html.contains(attribute), "{attribute} in the HTML");
    }
    let re = regex::Regex::new(r#"(?i)(src|href)\s*=\s*["']?\s*https?://|url\(\s*["']?\s*https?://"#).unwrap();
    assert!(!re.is_match(&html));
    assert!(html.contains("@media print"));
}

#[test]
fn html_escapes_every_piece_of_journal_text() {
    let html = to_html(&full_drill().report());
    assert!(html.contains("Smoke-test &lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; the site"));
    assert!(html.contains("login page showed &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Bob &lt;b&gt;"));
    // Every tag in the document is one the renderer wrote.
    let allowed = [
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "div",
        "h1", "h2", "h3", "h4", "p", "span", "strong", "code", "pre", "br", "ul", "li", "table", "thead", "tbody",
        "tr", "th", "td", "colgroup", "col", "svg", "line", "text", "rect", "polygon",
    ];
    let tag = regex::Regex::new(r"<\s*/?\s*([!A-Za-z][A-Za-z0-9]*)").unwrap();
    for found in tag.captures_iter(&html) {
        assert!(allowed.contains(&&found[1]), "unexpected tag <{}>", &found[1]);
    }
}

#[test]
fn html_timeline_has_one_bar_per_attempt() {
    let report = full_drill().report();
    let html = to_html(&report);
    let attempts: usize = report.steps.iter().map(|s| s.attempts.len()).sum();
    assert_eq!(attempts, 10);
    let svg = html.split("<svg").nth(1).unwrap().split("</svg>").next().unwrap();
    assert_eq!(count(svg, "<rect"), attempts);
    assert_eq!(count(&html, "<rect"), attempts, "no rect outside the timeline");
    assert_eq!(count(svg, "class=\"bar-failed\""), 1);
    assert_eq!(count(svg, "class=\"bar-interrupted\""), 1);
    assert_eq!(count(svg, "<polygon class=\"offline\""), 1, "the ten minutes with no drillbook process");
}

#[test]
fn html_shows_every_section() {
    let html = to_html(&full_drill().report());
    for needle in [
        "<span class=\"badge training\">TRAINING</span>",
        "<span class=\"badge bad\">failed</span>",
        "<tr><th>RTO</th><td><span class=\"badge bad\">not achieved</span>",
        "<tr><th>RPO</th><td><span class=\"badge ok\">PASS</span>",
        "<tr><th>Production vs DR tag</th><td><span class=\"badge ok\">match</span>",
        "context <code>dr-eu</code>",
        "bucket <code>acme-hosting-services</code>",
        "id=\"deviations\"",
        "confirmation declined",
        "id=\"teardown\"",
        "Alice Martin",
        "Automate the restore role fix",
        "What went well",
        "Deploy was interrupted by a laptop crash.",
        "exit code 1 (expected 0)",
        "pg_restore --dbname=acme_dr backup.pgdump",
        "☑</span>Log in",
        "typed <code>acme-dr</code>",
        "deployment/web: 2",
        HEAD,
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
}

#[test]
fn markdown_has_the_new_sections() {
    let md = to_markdown(&full_drill().report());
    for needle in [
        "| Production vs DR tag | **match**: DR runs `v2` in web, worker, as production does |",
        "- Kubernetes: context `dr-eu` (https://10.0.0.1:6443), namespace `acme-dr` (steps `wait`, `scale-down`)",
        "- S3: bucket `acme-hosting-services` at `https://s3.eu-west-1.amazonaws.com` (steps `fetch-backup`)",
        "## Deviations",
        "## Teardown",
        "- Alice Martin (incident commander)",
        "- [ ] Automate the restore role fix — **Bob** (step `restore`)",
        "> Tag matched.",
    ] {
        assert!(md.contains(needle), "missing {needle}\n{md}");
    }
}

#[test]
fn write_all_writes_the_four_files() {
    let dir = tempfile::tempdir().unwrap();
    let report = full_drill().report();
    let written = write_all(dir.path(), &report).unwrap();
    let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["report.md", "report.html", "report.json", "report.junit.xml"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("report.html")).unwrap(), to_html(&report));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["tags"]["verdict"], "match");
    assert_eq!(json["deviations"].as_array().unwrap().len(), 8);
    // Nothing else is left behind (no temporary files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    assert!(write_all(&dir.path().join("missing"), &report).unwrap_err().to_string().contains("cannot write"));
}

/// An evidence file journaled for `step`: its hash is what the report checks the directory against.
fn attached(step: &str, path: &str, bytes: &[u8], origin: crate::drill::event::FileOrigin, label: &str) -> Event {
    use sha2::Digest as _;
    Event::FileAttached {
        step: step.into(),
        path: path.into(),
        sha256: crate::digest::hex(&sha2::Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
        origin,
        label: label.into(),
        note: Some("taken by hand <b>".into()),
        by: Some("alice".into()),
    }
}

#[test]
fn evidence_files_are_checked_against_the_journal_embedded_linked_and_listed() {
    use crate::drill::event::FileOrigin;
    // A 1x1 PNG.
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1,
        8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("evidence/smoke")).unwrap();
    std::fs::write(dir.path().join("evidence/smoke/login.png"), png).unwrap();
    std::fs::write(dir.path().join("evidence/smoke/export.log"), b"tampered").unwrap();
    let mut journal = Journal::new(vec![outline("smoke", "Smoke-test the site", "checklist")], None, None);
    journal
        .at(1, session(7, false))
        .at(2, started("smoke", 1, None))
        .at(3, attached("smoke", "evidence/smoke/login.png", png, FileOrigin::Screenshot, "after login"))
        .at(4, attached("smoke", "evidence/smoke/export.log", b"the log", FileOrigin::Attachment, "export.log"))
        .at(5, attached("smoke", "../../etc/passwd", b"x", FileOrigin::Attachment, "escape"))
        .at(6, ok("smoke", 1, 4000));
    let mut report = journal.report();
    let files = &report.steps[0].files;
    assert_eq!(files.len(), 3);
    assert!(files.iter().all(|f| f.check == files::FileCheck::Unchecked), "built from the journal alone");

    files::check_files(&mut report, dir.path());
    let files = &report.steps[0].files;
    assert_eq!(files[0].check, files::FileCheck::Ok);
    assert!(files[0].embedded.as_deref().unwrap().starts_with("data:image/png;base64,iVBORw0KGgo"));
    assert_eq!(files[1].check, files::FileCheck::Altered, "the file differs from its journaled hash");
    assert_eq!(files[1].embedded, None, "not an image");
    assert_eq!(files[2].check, files::FileCheck::Missing, "a path out of the drill directory is never read");

    let html = to_html(&report);
    assert!(html.contains("<img src=\"data:image/png;base64,"), "the screenshot is embedded");
    assert_eq!(html.matches("data:image/png").count(), 1, "embedded once");
    assert!(html.contains("ALTERED since it was journaled"));
    assert!(html.contains("taken by hand &lt;b&gt;"), "notes are escaped");
    let markdown = to_markdown(&report);
    assert!(
        markdown.contains("- screenshot [after login](evidence/smoke/login.png): taken by hand <b> (33 B, by alice")
    );
    let json: serde_json::Value = serde_json::from_str(&to_json(&report)).unwrap();
    let listed = &json["steps"][0]["files"];
    assert_eq!(listed[0]["check"], "ok");
    assert_eq!(listed[1]["check"], "altered");
    assert_eq!(listed[1]["origin"], "attachment");
    assert!(listed[0].get("embedded").is_none(), "the JSON lists, it does not embed");
}
