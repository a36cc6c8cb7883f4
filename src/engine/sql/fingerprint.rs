//! A database's fingerprint: every table's row count and columns, and one
//! hash of the schema, read from `pg_catalog` (what `information_schema`
//! shows, without its cost and without hiding tables the user cannot
//! read); compared with the previous completed drill's.
//!
//! Rows are counted exactly (`count(*)`) with `exact = true`. Otherwise the
//! planner's estimate is used where the table has statistics; a restored
//! table has none, so a small one (under [`COUNT_BELOW`]) is counted and a
//! larger one is `ANALYZE`d first. Each table says which it got.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{Baseline, SqlError};
use crate::drill::evidence::{Fingerprint, FingerprintComparison, TableChange, TableFingerprint};

/// Tables without statistics smaller than this are counted rather than analyzed.
const COUNT_BELOW: i64 = 8 << 20;

const TABLES: &str = "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.reltuples::bigint, \
     pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1";

const COLUMNS: &str = "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname, \
     format_type(a.atttypid, a.atttypmod) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, a.attnum";

struct Listed {
    name: String,
    estimate: i64,
    bytes: i64,
}

fn rows(messages: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

fn cell(row: &[Option<String>], index: usize) -> String {
    row.get(index).cloned().flatten().unwrap_or_default()
}

async fn list(client: &Client) -> Result<Vec<Listed>, SqlError> {
    let listed = client.simple_query(TABLES).await.map_err(|e| SqlError::query("listing the tables", &e))?;
    Ok(rows(listed)
        .into_iter()
        .map(|row| Listed {
            name: cell(&row, 0),
            estimate: cell(&row, 1).parse().unwrap_or(-1),
            bytes: cell(&row, 2).parse().unwrap_or(0),
        })
        .collect())
}

pub async fn collect(client: &Client, exact: bool, timeout: Duration) -> Result<Fingerprint, SqlError> {
    let mut tables = list(client).await?;
    // Statistics for the big restored tables first: ANALYZE writes them, so
    // it runs before the read-only transaction. A user who may not analyze
    // a table gets an exact count for it instead.
    let mut counted: BTreeSet<String> = BTreeSet::new();
    if !exact {
        let to_analyze: Vec<&Listed> = tables.iter().filter(|t| t.estimate < 0 && t.bytes >= COUNT_BELOW).collect();
        if !to_analyze.is_empty() {
            let names = to_analyze.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
            if client.batch_execute(&format!("ANALYZE {names}")).await.is_ok() {
                tables = list(client).await?;
            }
        }
    }
    for table in &tables {
        if exact || table.estimate < 0 {
            counted.insert(table.name.clone());
        }
    }

    let setup = format!(
        "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ; SET LOCAL statement_timeout = {}",
        timeout.as_millis().max(1)
    );
    client.batch_execute(&setup).await.map_err(|e| SqlError::query("starting the fingerprint", &e))?;
    let result = read(client, &tables, &counted).await;
    let _ = client.batch_execute("ROLLBACK").await;
    result
}

/// Columns and counts in one snapshot; the counts go out pipelined on the one connection.
async fn read(client: &Client, tables: &[Listed], counted: &BTreeSet<String>) -> Result<Fingerprint, SqlError> {
    let columns = client.simple_query(COLUMNS).await.map_err(|e| SqlError::query("reading the columns", &e))?;
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut hasher = Sha256::new();
    for row in rows(columns) {
        let (table, column, kind) = (cell(&row, 0), cell(&row, 1), cell(&row, 2));
        hasher.update(format!("{table}\t{column}\t{kind}\n"));
        by_table.entry(table).or_default().push(format!("{column} {kind}"));
    }
    let counts = join_all(tables.iter().filter(|t| counted.contains(&t.name)).map(|table| async move {
        let query = format!("SELECT count(*) FROM {}", table.name);
        let answer =
            client.simple_query(&query).await.map_err(|e| SqlError::query(format!("counting {}", table.name), &e))?;
        let count = rows(answer).first().map(|row| cell(row, 0)).and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        Ok::<_, SqlError>((table.name.clone(), count))
    }))
    .await
    .into_iter()
    .collect::<Result<BTreeMap<_, _>, _>>()?;
    let mut fingerprint = Fingerprint { schema_hash: String::new(), tables: BTreeMap::new() };
    for table in tables {
        // Tables without columns still count for the schema.
        hasher.update(format!("{}\n", table.name));
        let (rows, exact) = match counts.get(&table.name) {
            Some(count) => (*count, true),
            None => (table.estimate.max(0), false),
        };
        let columns = by_table.remove(&table.name).unwrap_or_default();
        fingerprint.tables.insert(table.name.clone(), TableFingerprint { rows, exact, columns });
    }
    fingerprint.schema_hash = format!("{:x}", hasher.finalize());
    Ok(fingerprint)
}

/// This fingerprint against the baseline's: per table before → now, and the problems.
pub fn compare(baseline: Option<&Baseline>, now: &Fingerprint, max_shrink: Option<f64>) -> FingerprintComparison {
    let Some(baseline) = baseline else {
        return FingerprintComparison {
            baseline: None,
            baseline_started: None,
            schema_changed: false,
            changes: Vec::new(),
            problems: Vec::new(),
        };
    };
    let before = &baseline.fingerprint;
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    let names: BTreeSet<&String> = before.tables.keys().chain(now.tables.keys()).collect();
    for name in names {
        match (before.tables.get(name), now.tables.get(name)) {
            (Some(old), None) => {
                problems.push(format!("table {name} vanished (it had {} rows)", old.rows));
                changes.push(TableChange {
                    table: name.clone(),
                    before: Some(old.rows),
                    now: None,
                    change: "vanished".into(),
                });
            }
            (None, Some(new)) => changes.push(TableChange {
                table: name.clone(),
                before: None,
                now: Some(new.rows),
                change: "new table".into(),
            }),
            (Some(old), Some(new)) => {
                let mut change = Vec::new();
                if old.columns != new.columns {
                    let text = column_change(&old.columns, &new.columns);
                    problems.push(format!("the columns of {name} changed: {text}"));
                    change.push(format!("columns changed: {text}"));
                }
                if old.rows != new.rows {
                    let delta = new.rows - old.rows;
                    let fraction = if old.rows > 0 { delta as f64 / old.rows as f64 } else { 0.0 };
                    change.push(if old.rows > 0 {
                        format!("{delta:+} ({:+.1}%)", fraction * 100.0)
                    } else {
                        format!("{delta:+}")
                    });
                    if let Some(limit) = max_shrink
                        && -fraction > limit
                    {
                        problems.push(format!(
                            "table {name} shrank by {:.1}% ({} → {} rows), more than max_shrink {}%",
                            -fraction * 100.0,
                            old.rows,
                            new.rows,
                            limit * 100.0
                        ));
                    }
                }
                if !change.is_empty() {
                    changes.push(TableChange {
                        table: name.clone(),
                        before: Some(old.rows),
                        now: Some(new.rows),
                        change: change.join("; "),
                    });
                }
            }
            (None, None) => {}
        }
    }
    FingerprintComparison {
        baseline: Some(baseline.drill.clone()),
        baseline_started: Some(baseline.started.to_string()),
        schema_changed: before.schema_hash != now.schema_hash,
        changes,
        problems,
    }
}

fn column_change(before: &[String], now: &[String]) -> String {
    let dropped: Vec<&String> = before.iter().filter(|c| !now.contains(c)).collect();
    let added: Vec<&String> = now.iter().filter(|c| !before.contains(c)).collect();
    let mut parts = Vec::new();
    if !dropped.is_empty() {
        parts.push(format!("dropped {}", dropped.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")));
    }
    if !added.is_empty() {
        parts.push(format!("added {}", added.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")));
    }
    if parts.is_empty() { "reordered".to_string() } else { parts.join("; ") }
}

/// The comparison as lines of the step's log.
pub fn describe(comparison: &FingerprintComparison) -> Vec<String> {
    let Some(baseline) = &comparison.baseline else {
        return vec![
            "no earlier completed drill of this runbook to compare with: this fingerprint is the baseline \
                     for the next one"
                .to_string(),
        ];
    };
    let mut lines = vec![format!(
        "compared with drill {baseline}{}: {} table(s) changed, schema {}",
        comparison.baseline_started.as_deref().map(|s| format!(" (started {s})")).unwrap_or_default(),
        comparison.changes.len(),
        if comparison.schema_changed { "changed" } else { "unchanged" }
    )];
    for change in &comparison.changes {
        let count = |n: Option<i64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
        lines.push(format!(
            "  {:<32} {:>12} → {:<12} {}",
            change.table,
            count(change.before),
            count(change.now),
            change.change
        ));
    }
    lines.extend(comparison.problems.iter().map(|p| format!("  ! {p}")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: i64, columns: &[&str]) -> TableFingerprint {
        TableFingerprint { rows, exact: true, columns: columns.iter().map(|c| c.to_string()).collect() }
    }

    fn print(tables: Vec<(&str, TableFingerprint)>, hash: &str) -> Fingerprint {
        Fingerprint { schema_hash: hash.into(), tables: tables.into_iter().map(|(n, t)| (n.to_string(), t)).collect() }
    }

    #[test]
    fn a_shrunk_table_a_dropped_column_and_a_vanished_table_are_problems() {
        let before = print(
            vec![
                ("public.orders", table(1000, &["id integer", "total numeric"])),
                ("public.pages", table(10, &["id integer", "title text"])),
                ("public.old", table(5, &["id integer"])),
            ],
            "a",
        );
        let now = print(
            vec![
                ("public.orders", table(700, &["id integer", "total numeric"])),
                ("public.pages", table(12, &["id integer"])),
                ("public.new", table(1, &["id integer"])),
            ],
            "b",
        );
        let baseline = Baseline { drill: "d1".into(), started: jiff::Timestamp::UNIX_EPOCH, fingerprint: before };
        let comparison = compare(Some(&baseline), &now, Some(0.2));
        assert!(comparison.schema_changed);
        let problems = comparison.problems.join("\n");
        assert!(
            problems.contains("public.orders shrank by 30.0% (1000 → 700 rows), more than max_shrink 20%"),
            "{problems}"
        );
        assert!(problems.contains("the columns of public.pages changed: dropped title text"), "{problems}");
        assert!(problems.contains("table public.old vanished"), "{problems}");
        assert_eq!(comparison.problems.len(), 3);
        let changes: Vec<_> = comparison.changes.iter().map(|c| (c.table.as_str(), c.change.as_str())).collect();
        assert!(changes.contains(&("public.new", "new table")));
        assert!(changes.contains(&("public.orders", "-300 (-30.0%)")));
        // Within the limit: no problem.
        let fine = compare(Some(&baseline), &now, Some(0.5));
        assert!(!fine.problems.iter().any(|p| p.contains("shrank")));
    }

    #[test]
    fn the_first_drill_has_no_baseline_and_says_so() {
        let now = print(vec![("public.t", table(1, &["id integer"]))], "a");
        let comparison = compare(None, &now, Some(0.2));
        assert!(comparison.baseline.is_none() && comparison.problems.is_empty());
        assert!(describe(&comparison)[0].contains("no earlier completed drill"));
    }
}
