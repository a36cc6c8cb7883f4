//! The report as JUnit XML, for CI systems that chart test results: one
//! test case per step, plus `RTO` and `RPO` cases that fail when the drill
//! missed its objective.

use std::fmt::Write as _;

use super::{Objective, Report, StepReport, escape_markup as esc};

/// What a test case became.
enum Verdict {
    /// With what CI should show next to it (a step marked done by hand, an objective's measure).
    Passed(Option<String>),
    Failed {
        message: String,
        body: String,
    },
    /// Interrupted: the step began but never ended.
    Error {
        message: String,
        body: String,
    },
    Skipped {
        message: String,
    },
}

pub fn to_junit(report: &Report) -> String {
    let classname = format!("drillbook.{}", report.runbook.id);
    let mut cases: Vec<(String, f64, Verdict)> = report
        .steps
        .iter()
        .map(|step| (format!("{}: {}", step.id, step.title), step.duration_ms() as f64 / 1000.0, step_verdict(step)))
        .collect();
    cases.push(("RTO".into(), secs(&report.rto), objective_verdict(&report.rto)));
    cases.push(("RPO".into(), 0.0, objective_verdict(&report.rpo)));
    if let Some(rpo_data) = &report.rpo_data {
        cases.push(("RPO by data".into(), 0.0, objective_verdict(rpo_data)));
    }
    let count = |f: fn(&Verdict) -> bool| cases.iter().filter(|(_, _, v)| f(v)).count();
    let failures = count(|v| matches!(v, Verdict::Failed { .. }));
    let errors = count(|v| matches!(v, Verdict::Error { .. }));
    let skipped = count(|v| matches!(v, Verdict::Skipped { .. }));
    let time = format!("{:.3}", report.elapsed_secs as f64);
    let timestamp = report
        .started_at
        .parse::<jiff::Timestamp>()
        .map_or_else(|_| report.started_at.clone(), |t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string());

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"drillbook\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" id=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time}\" timestamp=\"{}\" hostname=\"{}\">",
        esc(&report.runbook.id),
        esc(&report.drill_id),
        cases.len(),
        esc(&timestamp),
        esc(&report.host)
    );
    let _ = writeln!(out, "    <properties>");
    let properties = [
        ("drill_id", report.drill_id.clone()),
        ("runbook_title", report.runbook.title.clone()),
        ("runbook_sha256", report.runbook.sha256.clone()),
        ("training", report.training.to_string()),
        ("outcome", report.outcome.clone()),
        ("operator", report.operator.clone()),
        ("production_vs_dr_tag", report.tags.verdict.clone()),
    ];
    for (name, value) in properties {
        let _ = writeln!(out, "      <property name=\"{name}\" value=\"{}\"/>", esc(&value));
    }
    let _ = writeln!(out, "    </properties>");
    for (name, time, verdict) in &cases {
        let open = format!("    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"", esc(&classname), esc(name));
        match verdict {
            Verdict::Passed(None) => {
                let _ = writeln!(out, "{open}/>");
            }
            Verdict::Passed(Some(text)) => {
                let _ = writeln!(out, "{open}>\n      <system-out>{}</system-out>\n    </testcase>", esc(text));
            }
            Verdict::Skipped { message } => {
                let _ = writeln!(out, "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>", esc(message));
            }
            Verdict::Failed { message, body } | Verdict::Error { message, body } => {
                let tag = if matches!(verdict, Verdict::Failed { .. }) { "failure" } else { "error" };
                let _ = writeln!(
                    out,
                    "{open}>\n      <{tag} message=\"{}\">{}</{tag}>\n    </testcase>",
                    esc(message),
                    esc(body)
                );
            }
        }
    }
    let head = report.journal.head_sha256.as_deref().unwrap_or("unknown");
    let _ = writeln!(
        out,
        "    <system-out>evidence chain head: sha256 {} ({} journal events); check it with `drillbook verify {}`</system-out>",
        esc(head),
        report.journal.events,
        esc(&report.drill_id)
    );
    let _ = writeln!(out, "  </testsuite>\n</testsuites>");
    out
}

fn step_verdict(step: &StepReport) -> Verdict {
    let reason = || step.detail.clone().unwrap_or_else(|| step.status.clone());
    match step.status.as_str() {
        "done" => Verdict::Passed(None),
        // A required step that did not run as written demonstrated nothing.
        "marked done" if !step.optional => {
            Verdict::Failed { message: format!("marked done without running: {}", reason()), body: attempts(step) }
        }
        "marked done" => Verdict::Passed(Some(format!("marked done by hand: {}", reason()))),
        "failed" => Verdict::Failed { message: reason(), body: attempts(step) + &findings(step) },
        "skipped" | "pending" | "interrupted" if step.always && step.skip_cause.as_deref() != Some("condition") => {
            Verdict::Failed {
                message: format!("teardown did not run (DR left running): {}", reason()),
                body: attempts(step),
            }
        }
        "skipped" if required_skip(step) => {
            Verdict::Failed { message: format!("required step skipped: {}", reason()), body: attempts(step) }
        }
        "skipped" => Verdict::Skipped { message: reason() },
        "interrupted" => {
            let why = step.attempts.last().map_or_else(|| "interrupted".to_string(), |a| a.result.clone());
            Verdict::Error { message: why, body: attempts(step) }
        }
        // pending, running
        _ => Verdict::Skipped { message: "not run".into() },
    }
}

/// A required step the operator skipped or declined (a false `when` and
/// what an unattended drill cannot do are not failures).
fn required_skip(step: &StepReport) -> bool {
    !step.optional && matches!(step.skip_cause.as_deref(), Some("operator" | "declined"))
}

/// Every finding of a check that lists them (the failure message names
/// only the first), so CI shows them all.
fn findings(step: &StepReport) -> String {
    match &step.evidence {
        Some(crate::drill::evidence::Evidence::Isolation(result)) => format!("\n{}", result.lines().join("\n")),
        _ => String::new(),
    }
}

/// Each attempt on a line: how it ended, exit code, duration, command.
fn attempts(step: &StepReport) -> String {
    step.attempts
        .iter()
        .map(|a| {
            let mut line = format!("attempt {}: {}", a.number, a.result);
            if let Some(code) = a.exit_code {
                let _ = write!(line, ", exit {code}");
            }
            if let Some(reason) = &a.reason {
                let _ = write!(line, ": {reason}");
            }
            if let Some(command) = &a.command {
                let _ = write!(line, "\n  $ {}", command.replace('\n', "\n    "));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn objective_verdict(objective: &Objective) -> Verdict {
    match objective.verdict.as_str() {
        "PASS" => Verdict::Passed(Some(objective.detail.clone())),
        "FAIL" | super::NOT_ACHIEVED | super::NOT_DEMONSTRATED => Verdict::Failed {
            message: format!("{}: {}", objective.verdict, objective.detail),
            body: objective.detail.clone(),
        },
        _ => Verdict::Skipped { message: objective.detail.clone() },
    }
}

fn secs(objective: &Objective) -> f64 {
    objective.achieved_secs.unwrap_or(0) as f64
}
