//! `sql-check`: prove the restored data, not just the restore. Each query
//! runs on a real PostgreSQL connection (tokio-postgres, TLS as the URL's
//! `sslmode` asks) inside a `READ ONLY` transaction with a statement
//! timeout; its first column of its first row is compared with what the
//! runbook expects. `freshness` answers give the newest data restored (the
//! data RPO); `fingerprint = true` records every table's rows and columns.

pub mod connect;
pub mod fingerprint;
pub mod sandbox;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;

use crate::drill::evidence::{Evidence, Fingerprint, SqlAnswer, SqlResult};
use crate::engine::render::RenderError;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{OnShrink, SqlCheckSpec, SqlQuery};

pub use connect::{ConnectError, Target};

/// A `sql-check` step with its templates rendered.
#[derive(Clone)]
pub struct SqlStep {
    pub target: Target,
    /// Only ever sent to the server.
    pub password: Option<String>,
    pub checks: Vec<SqlQuery>,
    pub fingerprint: bool,
    pub exact: bool,
    pub max_shrink: Option<f64>,
    pub on_shrink: OnShrink,
    pub timeout: Duration,
}

impl std::fmt::Debug for SqlStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStep").field("target", &self.target).field("checks", &self.checks.len()).finish()
    }
}

impl SqlStep {
    pub fn render(spec: &SqlCheckSpec, context: &TemplateContext, templater: &Templater) -> Result<Self, SqlError> {
        let url = templater
            .render_plain(&spec.database.text, context)
            .map_err(RenderError::at("database"))
            .map_err(SqlError::Render)?;
        let password = match &spec.password {
            Some(template) => Some(
                templater
                    .render_env(&template.text, context)
                    .map_err(RenderError::at("password"))
                    .map_err(SqlError::Render)?,
            )
            .filter(|p| !p.is_empty()),
            None => None,
        };
        Ok(SqlStep {
            target: Target::parse(url.trim())?,
            password,
            checks: spec.checks.clone(),
            fingerprint: spec.fingerprint,
            exact: spec.exact,
            max_shrink: spec.max_shrink,
            on_shrink: spec.on_shrink,
            timeout: spec.timeout,
        })
    }

    /// What the step's log says it does.
    pub fn describe(&self) -> String {
        format!("sql-check {}", self.target.display)
    }
}

/// Why a `sql-check` could not do its work (a check that answered
/// otherwise than expected is not an error: it is in the evidence).
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Render(RenderError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{what}: {message}")]
    Query { what: String, message: String },
    #[error("cancelled")]
    Cancelled,
}

impl SqlError {
    fn query(what: impl Into<String>, error: &tokio_postgres::Error) -> SqlError {
        SqlError::Query { what: what.into(), message: connect::describe(error) }
    }
}

/// What a run found: the evidence, and what (if anything) fails the step.
pub struct Outcome {
    pub result: SqlResult,
    /// Check name → answer, for `capture`.
    pub captures: Vec<(String, String)>,
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
}

/// The previous completed drill's fingerprint of this step, if there is one.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub drill: String,
    pub started: Timestamp,
    pub fingerprint: Fingerprint,
}

/// Runs the checks (and the fingerprint), telling the log each answer as it comes.
pub async fn run(
    step: &SqlStep,
    step_id: &str,
    baseline: Option<&Baseline>,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
) -> Result<Outcome, SqlError> {
    let say = |lines: Vec<String>| {
        let events = events.clone();
        let step_id = step_id.to_string();
        async move {
            let _ =
                events.send(EngineEvent::Output { step_id, stream: OutputStream::Stdout, lines: lines.into() }).await;
        }
    };
    say(vec![format!("connecting to {} ({})", step.target.display, step.target.tls_mode.describe())]).await;
    let connected = tokio::select! {
        connected = connect::connect(&step.target, step.password.as_deref()) => connected?,
        () = cancel.cancelled() => return Err(SqlError::Cancelled),
    };
    let client = &connected.client;
    let server = first_text(client, "SELECT version()").await.unwrap_or_default().unwrap_or_default();
    say(vec![format!("connected: {}", server.split(" on ").next().unwrap_or(&server))]).await;

    let mut outcome = Outcome {
        result: SqlResult {
            database: step.target.display.clone(),
            server,
            checks: Vec::new(),
            newest_data: None,
            fingerprint: None,
            comparison: None,
        },
        captures: Vec::new(),
        failures: Vec::new(),
        warnings: Vec::new(),
    };
    if !step.checks.is_empty() {
        say(vec![format!("{:<24} {:<24} {:<22} {}", "check", "answer", "expected", "verdict")]).await;
    }
    for check in &step.checks {
        let answered = tokio::select! {
            answered = run_check(client, check, step.timeout) => answered,
            () = cancel.cancelled() => return Err(SqlError::Cancelled),
        };
        say(vec![answered.row()]).await;
        if let (Some(name), Some(answer)) = (&check.capture, &answered.answer) {
            outcome.captures.push((name.clone(), answer.clone()));
        }
        if !answered.passed {
            outcome.failures.push(format!(
                "check `{}`: {}",
                answered.name,
                answered.problem.clone().unwrap_or_default()
            ));
        }
        if answered.freshness
            && answered.passed
            && let Some(at) = answered.answer.as_deref().and_then(|a| parse_pg_timestamp(a).ok())
        {
            let newest = outcome.result.newest_data.as_deref().and_then(|n| n.parse::<Timestamp>().ok());
            if newest.is_none_or(|newest| at > newest) {
                outcome.result.newest_data = Some(at.to_string());
            }
        }
        outcome.result.checks.push(answered);
        let evidence = Evidence::Sql(outcome.result.clone());
        let _ = events.send(EngineEvent::Evidence { step_id: step_id.to_string(), evidence }).await;
    }
    if step.fingerprint {
        let started = Instant::now();
        let fingerprint = tokio::select! {
            fingerprint = fingerprint::collect(client, step.exact, step.timeout) => fingerprint?,
            () = cancel.cancelled() => return Err(SqlError::Cancelled),
        };
        let estimated = fingerprint.tables.values().filter(|t| !t.exact).count();
        say(vec![format!(
            "fingerprint: {} tables, schema {} ({} counted exactly, {} estimated after ANALYZE) in {} ms",
            fingerprint.tables.len(),
            &fingerprint.schema_hash[..12.min(fingerprint.schema_hash.len())],
            fingerprint.tables.len() - estimated,
            estimated,
            started.elapsed().as_millis()
        )])
        .await;
        let comparison = fingerprint::compare(baseline, &fingerprint, step.max_shrink);
        say(fingerprint::describe(&comparison)).await;
        match step.on_shrink {
            OnShrink::Fail => outcome.failures.extend(comparison.problems.iter().cloned()),
            OnShrink::Warn => outcome.warnings.extend(comparison.problems.iter().cloned()),
        }
        outcome.result.fingerprint = Some(fingerprint);
        outcome.result.comparison = Some(comparison);
    }
    Ok(outcome)
}

/// One check in its own read-only transaction, so one that fails or times
/// out does not stop the others from running.
async fn run_check(client: &Client, check: &SqlQuery, timeout: Duration) -> SqlAnswer {
    let started = Instant::now();
    let answer = read_only(client, &check.query, timeout).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let mut result = SqlAnswer {
        name: check.name.clone(),
        query: check.query.clone(),
        answer: None,
        expect: check.expect.as_ref().map(ToString::to_string),
        freshness: check.freshness,
        passed: true,
        problem: None,
        elapsed_ms,
    };
    match answer {
        Err(problem) => {
            result.passed = false;
            result.problem = Some(problem);
        }
        Ok(answer) => {
            result.answer = answer;
            let verdict = if check.freshness {
                match result.answer.as_deref() {
                    None => Err("a freshness check must answer a timestamp; it answered no value".to_string()),
                    Some(text) => parse_pg_timestamp(text).map(|_| ()),
                }
            } else {
                match &check.expect {
                    Some(expect) => expect.check(result.answer.as_deref()),
                    None => Ok(()),
                }
            };
            if let Err(problem) = verdict {
                result.passed = false;
                result.problem = Some(problem);
            }
        }
    }
    result
}

/// The query's first column of its first row, in a `READ ONLY` transaction
/// with `statement_timeout`; times are answered in UTC, ISO style.
async fn read_only(client: &Client, query: &str, timeout: Duration) -> Result<Option<String>, String> {
    let setup = format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'",
        timeout.as_millis().max(1)
    );
    client.batch_execute(&setup).await.map_err(|e| connect::describe(&e))?;
    let answered = first_text(client, query).await;
    // Always end the transaction, whatever the query did.
    let _ = client.batch_execute("ROLLBACK").await;
    answered.map_err(|e| {
        let message = connect::describe(&e);
        if message.contains("read-only transaction") {
            format!("{message} (checks run read-only: a query may not write)")
        } else if message.contains("statement timeout") {
            format!("{message} (after {})", crate::runbook::duration::format_duration(timeout))
        } else {
            message
        }
    })
}

/// The first column of the first row of the last statement, as text.
async fn first_text(client: &Client, query: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let messages = client.simple_query(query).await?;
    Ok(messages
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .flatten())
}

/// A timestamp as PostgreSQL writes it in ISO style: `2026-12-07 05:00:00.12+00`,
/// `2026-12-07 05:00:00` (no zone: UTC), or a date alone.
pub fn parse_pg_timestamp(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let not = || format!("`{text}` is not a timestamp");
    let iso = text.replacen(' ', "T", 1);
    // An offset of hours only (`+00`, `-05`) gets its minutes.
    let with_minutes = match iso.rfind(['+', '-']) {
        Some(at) if at > 10 && iso[at + 1..].len() == 2 && iso[at + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{iso}:00")
        }
        _ => iso.clone(),
    };
    if let Ok(at) = with_minutes.parse::<Timestamp>() {
        return Ok(at);
    }
    if let Ok(civil) = iso.parse::<jiff::civil::DateTime>() {
        return jiff::tz::TimeZone::UTC.to_timestamp(civil).map_err(|_| not());
    }
    if let Ok(date) = iso.parse::<jiff::civil::Date>() {
        return jiff::tz::TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|_| not());
    }
    Err(not())
}

impl SqlAnswer {
    /// The check's row of the log's table.
    pub fn row(&self) -> String {
        let answer = self.answer.as_deref().unwrap_or("(no value)");
        let expected =
            if self.freshness { "newest data".to_string() } else { self.expect.clone().unwrap_or_else(|| "-".into()) };
        let verdict = match (&self.problem, self.passed) {
            (_, true) => "ok".to_string(),
            (Some(problem), false) => format!("FAILED: {problem}"),
            (None, false) => "FAILED".to_string(),
        };
        format!("{:<24} {:<24} {:<22} {verdict}", clip(&self.name, 24), clip(answer, 24), clip(&expected, 22))
    }
}

fn clip(text: &str, width: usize) -> String {
    let text = text.replace('\n', " ");
    if text.chars().count() <= width {
        text
    } else {
        let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

/// The step's evidence.
pub fn evidence(outcome: &Outcome) -> Evidence {
    Evidence::Sql(outcome.result.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_timestamps_in_iso_style() {
        assert_eq!(parse_pg_timestamp("2026-12-07 05:00:00+00").unwrap().to_string(), "2026-12-07T05:00:00Z");
        assert_eq!(parse_pg_timestamp("2026-12-07 05:00:00.25+00").unwrap().to_string(), "2026-12-07T05:00:00.25Z");
        assert_eq!(parse_pg_timestamp("2026-12-07 06:00:00+01").unwrap().to_string(), "2026-12-07T05:00:00Z");
        assert_eq!(parse_pg_timestamp("2026-12-07 05:00:00+05:30").unwrap().to_string(), "2026-12-06T23:30:00Z");
        assert_eq!(parse_pg_timestamp("2026-12-07 05:00:00").unwrap().to_string(), "2026-12-07T05:00:00Z");
        assert_eq!(parse_pg_timestamp("2026-12-07").unwrap().to_string(), "2026-12-07T00:00:00Z");
        assert!(parse_pg_timestamp("1234").is_err());
    }
}
