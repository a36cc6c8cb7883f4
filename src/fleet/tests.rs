//! The register's computation at a fixed "now".

use jiff::{SignedDuration, Timestamp};

use super::register::{merge, register as compute};
use super::*;
use crate::report::summary::{ObjectiveSummary, Summary};

pub(crate) fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

pub(crate) fn days_ago(days: i64) -> Timestamp {
    now().checked_sub(SignedDuration::from_hours(24 * days)).unwrap()
}

/// A drill of `project`/`runbook` started `days` ago with `outcome` and an RTO of `rto` seconds.
pub(crate) fn drill(id: &str, project: &str, runbook: &str, days: i64, outcome: &str, rto: Option<u64>) -> Drill {
    let started_at = days_ago(days);
    Drill {
        summary: Summary {
            drill_id: id.to_string(),
            project: Some(project.to_string()).filter(|p| !p.is_empty()),
            runbook_id: runbook.to_string(),
            runbook_title: format!("{runbook} (title)"),
            cadence: Some("quarterly".to_string()),
            training: false,
            operator: "dana".to_string(),
            started_at: started_at.to_string(),
            ended_at: Some(started_at.checked_add(SignedDuration::from_hours(2)).unwrap().to_string()),
            outcome: outcome.to_string(),
            rto: ObjectiveSummary {
                target_secs: Some(4 * 3600),
                achieved_secs: rto,
                verdict: if rto.is_some() { "PASS" } else { "not achieved" }.to_string(),
            },
            rpo: ObjectiveSummary { target_secs: Some(86_400), achieved_secs: Some(3 * 3600), verdict: "PASS".into() },
            rpo_data: None,
        },
        started_at,
        local_dir: None,
        archived: true,
    }
}

fn row<'a>(register: &'a Register, project: &str, runbook: &str) -> &'a Row {
    register
        .rows
        .iter()
        .find(|r| r.project.as_deref() == Some(project) && r.runbook_id == runbook)
        .unwrap_or_else(|| panic!("no row {project}/{runbook} in {:#?}", register.rows))
}

#[test]
fn each_status_from_the_last_drill_and_the_cadence() {
    let drills = vec![
        drill("a1", "ok", "bv", 30, "passed", Some(3600)),
        drill("b1", "soon", "bv", 85, "passed with deviations", Some(3600)),
        drill("c1", "late", "bv", 120, "passed", Some(3600)),
        drill("d1", "broke", "bv", 10, "failed", None),
        drill("e1", "quit", "bv", 10, "aborted", None),
    ];
    let register = compute(drills, None, &Options::at(now()));
    let status = |p: &str| (row(&register, p, "bv").status, row(&register, p, "bv").reason.clone());
    assert_eq!(status("ok"), (Status::Ok, "next due in 62 days".into()));
    assert_eq!(status("soon"), (Status::DueSoon, "due in 7 days".into()));
    assert_eq!(status("late"), (Status::Overdue, "overdue by 28 days".into()));
    assert_eq!(status("broke"), (Status::Failed, "last drill failed on 2026-05-22".into()));
    assert_eq!(status("quit"), (Status::Failed, "last drill aborted on 2026-05-22".into()));
    // Most urgent first.
    let order: Vec<&str> = register.rows.iter().map(|r| r.project_label()).collect();
    // Within a status the earliest due first; an aborted-only row has no due date and leads.
    assert_eq!(order, ["quit", "broke", "late", "soon", "ok"]);
    assert!(register.needs_attention());
    assert_eq!(register.counts_line(), "2 FAILED · 1 OVERDUE · 1 DUE SOON · 1 OK");
}

#[test]
fn the_due_date_runs_from_the_last_drill_that_was_neither_aborted_nor_incomplete() {
    let drills = vec![
        drill("x1", "acme", "bv", 100, "passed", Some(3000)),
        drill("x2", "acme", "bv", 50, "failed", None),
        drill("x3", "acme", "bv", 20, "aborted", None),
        drill("x4", "acme", "bv", 5, "passed", Some(2000)),
        drill("x5", "acme", "bv", 1, "incomplete", None),
    ];
    let register = compute(drills.clone(), None, &Options::at(now()));
    let acme = row(&register, "acme", "bv");
    // The drill in progress neither fails the row nor moves its due date.
    assert_eq!(acme.status, Status::Ok);
    assert_eq!(acme.last.as_ref().unwrap().id, "x5");
    assert_eq!(acme.next_due, Some(days_ago(5).checked_add(SignedDuration::from_hours(24 * 92)).unwrap()));
    assert_eq!(acme.rto_trend, vec![Some(3000), None, None, Some(2000)]);
    assert_eq!(acme.drills, 5);

    // Without x4 the last drill that ended was aborted: FAILED, and the next
    // one is due from x2 (a failed drill still counts as a drill held).
    let without: Vec<Drill> = drills.into_iter().filter(|d| d.summary.drill_id != "x4").collect();
    let register = compute(without, None, &Options::at(now()));
    let acme = row(&register, "acme", "bv");
    assert_eq!(acme.status, Status::Failed);
    assert_eq!(acme.next_due, Some(days_ago(50).checked_add(SignedDuration::from_hours(24 * 92)).unwrap()));
}

#[test]
fn the_roster_adds_projects_never_drilled_and_its_cadence_wins() {
    let roster = Roster::parse(
        "[[project]]\nname = \"acme\"\nrunbooks = [\"bv\", \"dr\"]\ncadence = \"30d\"\n\
         [[project]]\nname = \"newco\"\nrunbooks = [\"bv\"]\n",
    )
    .unwrap();
    let drills = vec![drill("a1", "acme", "bv", 40, "passed", Some(60)), drill("o1", "other", "bv", 3, "passed", None)];
    let register = compute(drills, Some(&roster), &Options::at(now()));
    let acme = row(&register, "acme", "bv");
    assert_eq!((acme.status, acme.reason.as_str()), (Status::Overdue, "overdue by 10 days"));
    assert_eq!(acme.cadence.as_ref().map(|c| (c.text.as_str(), c.from)), Some(("30d", CadenceSource::Roster)));
    let never = row(&register, "acme", "dr");
    assert_eq!((never.status, never.reason.as_str(), never.drills), (Status::Overdue, "never drilled", 0));
    assert!(never.last.is_none() && never.in_roster);
    let newco = row(&register, "newco", "bv");
    assert_eq!(newco.cadence.as_ref().map(|c| c.from), Some(CadenceSource::Default));
    // Drills outside the roster still appear.
    assert!(!row(&register, "other", "bv").in_roster);
}

#[test]
fn a_row_without_any_cadence_has_no_due_date() {
    let mut old = drill("a1", "acme", "adhoc", 900, "passed", Some(60));
    old.summary.cadence = None;
    let mut failed = drill("b1", "beta", "adhoc", 900, "failed", None);
    failed.summary.cadence = None;
    let register = compute(vec![old, failed], None, &Options::at(now()));
    let acme = row(&register, "acme", "adhoc");
    assert_eq!((acme.status, acme.next_due, acme.reason.as_str()), (Status::Ok, None, "no cadence; last drill passed"));
    assert_eq!(row(&register, "beta", "adhoc").status, Status::Failed);
}

#[test]
fn a_cadence_that_is_not_one_is_a_warning_not_a_guess() {
    let mut odd = drill("a1", "acme", "bv", 10, "passed", Some(60));
    odd.summary.cadence = Some("fortnightly-ish".into());
    let register = compute(vec![odd], None, &Options::at(now()));
    assert_eq!(row(&register, "acme", "bv").cadence, None);
    assert!(register.warnings[0].contains("cadence `fortnightly-ish`"), "{:?}", register.warnings);
}

#[test]
fn training_drills_count_only_when_asked() {
    let real = drill("a1", "acme", "bv", 200, "passed", Some(60));
    let mut training = drill("a2", "acme", "bv", 2, "passed", Some(60));
    training.summary.training = true;
    let drills = vec![real, training];
    let register = compute(drills.clone(), None, &Options::at(now()));
    assert_eq!(row(&register, "acme", "bv").status, Status::Overdue);
    assert_eq!((register.training_excluded, register.drills_read), (1, 2));
    let options = Options { training: true, ..Options::at(now()) };
    let register = compute(drills, None, &options);
    let acme = row(&register, "acme", "bv");
    assert_eq!((acme.status, acme.last.as_ref().unwrap().training), (Status::Ok, true));
}

#[test]
fn the_trend_keeps_the_last_eight_drills_that_ended() {
    let drills: Vec<Drill> =
        (0..12).map(|i| drill(&format!("d{i:02}"), "acme", "bv", 120 - i * 10, "passed", Some(i as u64))).collect();
    let register = compute(drills, None, &Options::at(now()));
    let trend: Vec<u64> = row(&register, "acme", "bv").rto_trend.iter().flatten().copied().collect();
    assert_eq!(trend, (4..12).collect::<Vec<u64>>());
}

#[test]
fn a_drill_both_local_and_archived_is_counted_once_as_the_local_one() {
    let mut local = drill("same", "acme", "bv", 10, "passed", Some(60));
    local.local_dir = Some("/drills/same".into());
    local.archived = false;
    let archived_copy = drill("same", "acme", "bv", 10, "failed", None);
    let other = drill("other", "acme", "bv", 20, "passed", Some(60));
    let merged = merge(vec![local], vec![archived_copy, other]);
    assert_eq!(merged.len(), 2);
    let same = merged.iter().find(|d| d.summary.drill_id == "same").unwrap();
    assert_eq!((same.summary.outcome.as_str(), same.archived), ("passed", true));
    assert_eq!(same.local_dir.as_deref(), Some(std::path::Path::new("/drills/same")));
}

#[test]
fn the_plain_table_aligns_its_columns_and_says_why() {
    let drills = vec![drill("01a24e9d-dab8-7514", "acme", "bv", 120, "passed", Some(3720))];
    let register = compute(drills, None, &Options::at(now()));
    let text = export::plain(&register);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "drillbook fleet: 1 OVERDUE (as of 2026-06-01 12:00 UTC: 1 drills read)");
    assert!(lines[1].starts_with("STATUS   PROJECT  RUNBOOK  LAST DRILL     STARTED"), "{text}");
    assert!(lines[2].starts_with("OVERDUE  acme     bv       01a24e9d-dab8  2026-02-01"), "{text}");
    assert!(lines[2].contains("1h 2m / 4h PASS") && lines[2].ends_with("overdue by 28 days"), "{text}");
    assert!(!text.contains("DATA RPO"), "no drill measured it: {text}");
}

#[test]
fn csv_and_json_carry_every_field() {
    let register = compute(vec![drill("d1", "acme", "bv", 10, "passed", Some(60))], None, &Options::at(now()));
    let csv = export::csv(&register);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("status,project,runbook_id,"), "{csv}");
    assert!(lines[1].starts_with("OK,acme,bv,bv (title),next due in 82 days,d1,2026-05-22T12:00:00Z,dana,passed,"));
    assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
    let json: serde_json::Value = serde_json::from_str(&export::json(&register)).unwrap();
    assert_eq!(json["rows"][0]["status"], "OK");
    assert_eq!(json["rows"][0]["last"]["rto"]["achieved_secs"], 60);
    assert_eq!(json["rows"][0]["next_due"], "2026-08-22T12:00:00Z");
}

#[test]
fn the_dashboard_is_one_escaped_file_with_nothing_to_fetch() {
    let mut hostile = drill("d1", "<script>alert(1)</script>", "bv", 10, "passed", Some(60));
    hostile.summary.operator = "\"><img src=x>".into();
    let register = compute(vec![hostile], None, &Options::at(now()));
    let html = html::to_html(&register);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script") && !html.contains("<img"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("@import"));
    assert!(html.contains("<svg class=\"spark\""));
    assert!(html.contains("<span class=\"badge ok\">1 OK</span>"), "{html}");
}
