//! Training's answer to a `sql-check`: no database is reachable in the
//! sandbox, so each check is answered with a value its expectation accepts
//! (a freshness check with a time shortly before now), and the fingerprint
//! is that of a small sandbox schema. The log says it is the sandbox; the
//! evidence names the sandbox database, so no report can pass it off as a
//! real restore.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;

use super::{Baseline, Outcome, SqlStep, fingerprint};
use crate::drill::evidence::{Fingerprint, SqlAnswer, SqlResult, TableFingerprint};
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::expect::{Expectation, Op};

/// What the sandbox database is called in the log and the evidence.
pub const SANDBOX_DATABASE: &str = "sandbox database (training)";

/// The tables of the sandbox database: name, rows, columns.
const TABLES: [(&str, i64, &[&str]); 4] = [
    ("public.pages", 1_284, &["id integer", "title text", "body text", "updated_at timestamp with time zone"]),
    ("public.images", 3_911, &["id integer", "page_id integer", "path text"]),
    ("public.site", 1, &["id integer", "name text", "domain text"]),
    ("public.users", 57, &["id integer", "email text", "last_login timestamp with time zone"]),
];

pub async fn run(
    step: &SqlStep,
    step_id: &str,
    baseline: Option<&Baseline>,
    events: &mpsc::Sender<EngineEvent>,
) -> Outcome {
    let say = |lines: Vec<String>| {
        let events = events.clone();
        let step_id = step_id.to_string();
        async move {
            let _ =
                events.send(EngineEvent::Output { step_id, stream: OutputStream::Stdout, lines: lines.into() }).await;
        }
    };
    say(vec![format!("training: the sandbox database answers instead of {}", step.target.display)]).await;
    let newest = Timestamp::now() - SignedDuration::from_mins(95);
    let mut result = SqlResult {
        database: SANDBOX_DATABASE.to_string(),
        server: "drillbook training sandbox".to_string(),
        checks: Vec::new(),
        newest_data: None,
        fingerprint: None,
        comparison: None,
    };
    let mut captures = Vec::new();
    if !step.checks.is_empty() {
        say(vec![format!("{:<24} {:<24} {:<22} {}", "check", "answer", "expected", "verdict")]).await;
    }
    for check in &step.checks {
        let answer = if check.freshness {
            result.newest_data = Some(newest.to_string());
            newest.strftime("%Y-%m-%d %H:%M:%S+00").to_string()
        } else {
            check.expect.as_ref().map_or_else(|| "1".to_string(), accepted)
        };
        let answered = SqlAnswer {
            name: check.name.clone(),
            query: check.query.clone(),
            answer: Some(answer.clone()),
            expect: check.expect.as_ref().map(ToString::to_string),
            freshness: check.freshness,
            passed: true,
            problem: None,
            elapsed_ms: 3,
        };
        say(vec![answered.row()]).await;
        if let Some(name) = &check.capture {
            captures.push((name.clone(), answer));
        }
        result.checks.push(answered);
        let evidence = crate::drill::evidence::Evidence::Sql(result.clone());
        let _ = events.send(EngineEvent::Evidence { step_id: step_id.to_string(), evidence }).await;
    }
    if step.fingerprint {
        let print = Fingerprint {
            schema_hash: "5a4db0c5e7f1d6a3b2c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7".to_string(),
            tables: TABLES
                .iter()
                .map(|(name, rows, columns)| {
                    let columns = columns.iter().map(|c| c.to_string()).collect();
                    (name.to_string(), TableFingerprint { rows: *rows, exact: true, columns })
                })
                .collect::<BTreeMap<_, _>>(),
        };
        say(vec![format!("fingerprint: {} tables of the sandbox database", print.tables.len())]).await;
        let comparison = fingerprint::compare(baseline, &print, step.max_shrink);
        say(fingerprint::describe(&comparison)).await;
        result.fingerprint = Some(print);
        result.comparison = Some(comparison);
    }
    Outcome { result, captures, failures: Vec::new(), warnings: Vec::new() }
}

/// An answer the expectation accepts.
fn accepted(expect: &Expectation) -> String {
    match expect {
        Expectation::Equals(text) => text.clone(),
        Expectation::Between(low, _) => low.text.clone(),
        Expectation::Compare(op, number) => {
            let base: f64 = number.text.parse().unwrap_or(0.0);
            let value = match op {
                Op::Eq | Op::Ge | Op::Le => return number.text.clone(),
                Op::Gt | Op::Ne => base + 1.0,
                Op::Lt => base - 1.0,
            };
            if value.fract() == 0.0 { format!("{value:.0}") } else { value.to_string() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sandbox_answer_meets_its_expectation() {
        for text in [">= 1000", "= 0", "!= 0", "> 5", "< 3", "<= 2.5", "between 4 and 9", "'ok'"] {
            let expect = Expectation::parse(text).unwrap();
            assert!(expect.check(Some(&accepted(&expect))).is_ok(), "{text}");
        }
    }
}
