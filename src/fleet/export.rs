//! The register as text: the `--plain` table, CSV and JSON, and the small
//! formatters the TUI and the HTML dashboard share.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;

use super::register::day;
use super::{Register, Row};
use crate::report::summary::ObjectiveSummary;
use crate::runbook::duration::format_duration;

/// `1h 2m / 4h PASS`, `— / 4h not achieved`, `—` when there is nothing to say.
pub fn objective(objective: &ObjectiveSummary) -> String {
    let secs = |s: Option<u64>| s.map(|s| format_duration(Duration::from_secs(s)));
    match (secs(objective.achieved_secs), secs(objective.target_secs)) {
        (None, None) if objective.verdict == "n/a" => "—".to_string(),
        (achieved, target) => {
            let achieved = achieved.unwrap_or_else(|| "—".into());
            match target {
                Some(target) => format!("{achieved} / {target} {}", objective.verdict),
                None => format!("{achieved} {}", objective.verdict),
            }
        }
    }
}

/// Eight levels, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The RTO trend as a one-line sparkline from its own minimum to its maximum
/// (as `spark` draws them: what matters is whether drills got slower), `·`
/// for a drill that did not achieve its RTO. Equal values sit mid-height.
pub fn sparkline(values: &[Option<u64>]) -> String {
    let min = values.iter().flatten().copied().min().unwrap_or(0);
    let max = values.iter().flatten().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|value| match value {
            None => '·',
            Some(_) if max == min => BARS[3],
            Some(v) => {
                let (above, range) = (u128::from(v - min), u128::from(max - min));
                BARS[((above * 7 + range / 2) / range).min(7) as usize]
            }
        })
        .collect()
}

/// `2026-04-01 10:00 UTC`.
pub fn minute(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Enough of a drill id to name it (`drillbook report` takes a unique prefix):
/// a UUIDv7's first 12 digits are the millisecond it was made.
pub fn short_id(id: &str) -> &str {
    id.get(..13).unwrap_or(id)
}

/// `as of 2026-05-01 10:00 UTC: 4000 drills, 12 training left out`.
pub fn provenance(register: &Register) -> String {
    let training = match register.training_excluded {
        0 => String::new(),
        n => format!(", {n} training left out (--training counts them)"),
    };
    format!("as of {}: {} drills read{training}", minute(register.generated_at), register.drills_read)
}

/// The cells of a row, as the `--plain` table and the TUI show them.
pub struct Cells {
    pub status: &'static str,
    pub project: String,
    pub runbook: String,
    pub last_drill: String,
    pub started: String,
    pub operator: String,
    pub outcome: String,
    pub rto: String,
    pub rpo: String,
    pub rpo_data: String,
    pub next_due: String,
    pub trend: String,
    pub reason: String,
}

impl Cells {
    pub fn of(row: &Row) -> Cells {
        let last = row.last.as_ref();
        let dash = || "—".to_string();
        Cells {
            status: row.status.label(),
            project: row.project_label().to_string(),
            runbook: row.runbook_id.clone(),
            last_drill: last.map_or_else(dash, |l| short_id(&l.id).to_string()),
            started: last.map_or_else(dash, |l| day(l.started_at)),
            operator: last.map_or_else(dash, |l| l.operator.clone()),
            outcome: last.map_or_else(dash, |l| {
                if l.training { format!("{} (training)", l.outcome) } else { l.outcome.clone() }
            }),
            rto: last.map_or_else(dash, |l| objective(&l.rto)),
            rpo: last.map_or_else(dash, |l| objective(&l.rpo)),
            rpo_data: last.and_then(|l| l.rpo_data.as_ref()).map_or_else(dash, objective),
            next_due: row.next_due.map_or_else(dash, day),
            trend: sparkline(&row.rto_trend),
            reason: row.reason.clone(),
        }
    }
}

/// `--plain`: a heading line, then one aligned line per row.
pub fn plain(register: &Register) -> String {
    let with_data = register.rows.iter().any(|r| r.last.as_ref().is_some_and(|l| l.rpo_data.is_some()));
    let mut table: Vec<Vec<String>> = vec![
        [
            "STATUS",
            "PROJECT",
            "RUNBOOK",
            "LAST DRILL",
            "STARTED",
            "OPERATOR",
            "OUTCOME",
            "RTO",
            "RPO",
            "DATA RPO",
            "NEXT DUE",
            "RTO TREND",
            "WHY",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for row in &register.rows {
        let c = Cells::of(row);
        table.push(vec![
            c.status.to_string(),
            c.project,
            c.runbook,
            c.last_drill,
            c.started,
            c.operator,
            c.outcome,
            c.rto,
            c.rpo,
            c.rpo_data,
            c.next_due,
            c.trend,
            c.reason,
        ]);
    }
    if !with_data {
        table.iter_mut().for_each(|line| drop(line.remove(9)));
    }
    let columns = table[0].len();
    let widths: Vec<usize> =
        (0..columns).map(|i| table.iter().map(|line| line[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!("drillbook fleet: {} ({})\n", register.counts_line(), provenance(register));
    if register.rows.is_empty() {
        out.push_str("no drills found, and no roster to say which are expected (--roster FILE)\n");
        return out;
    }
    for line in &table {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == columns {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell}{}  ", " ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `--json`: the register as it is, rows most urgent first.
pub fn json(register: &Register) -> String {
    // Serialising plain data (strings, numbers, options) cannot fail.
    serde_json::to_string_pretty(register).unwrap_or_default()
}

/// `--csv`: one line per row, times in RFC 3339, durations in seconds.
pub fn csv(register: &Register) -> String {
    const HEADER: &[&str] = &[
        "status",
        "project",
        "runbook_id",
        "runbook_title",
        "reason",
        "last_drill_id",
        "last_started_at",
        "last_operator",
        "last_outcome",
        "last_training",
        "rto_target_secs",
        "rto_achieved_secs",
        "rto_verdict",
        "rpo_target_secs",
        "rpo_achieved_secs",
        "rpo_verdict",
        "rpo_data_target_secs",
        "rpo_data_achieved_secs",
        "rpo_data_verdict",
        "cadence",
        "next_due",
        "rto_trend_secs",
        "drills",
        "in_roster",
        "local_dir",
    ];
    let mut out = HEADER.join(",");
    out.push_str("\r\n");
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    for row in &register.rows {
        let last = row.last.as_ref();
        let objective_fields = |o: Option<&ObjectiveSummary>| {
            [
                number(o.and_then(|o| o.target_secs)),
                number(o.and_then(|o| o.achieved_secs)),
                o.map(|o| o.verdict.clone()).unwrap_or_default(),
            ]
        };
        let mut fields = vec![
            row.status.label().to_string(),
            row.project.clone().unwrap_or_default(),
            row.runbook_id.clone(),
            row.runbook_title.clone().unwrap_or_default(),
            row.reason.clone(),
            last.map(|l| l.id.clone()).unwrap_or_default(),
            last.map(|l| l.started_at.to_string()).unwrap_or_default(),
            last.map(|l| l.operator.clone()).unwrap_or_default(),
            last.map(|l| l.outcome.clone()).unwrap_or_default(),
            last.map(|l| l.training.to_string()).unwrap_or_default(),
        ];
        fields.extend(objective_fields(last.map(|l| &l.rto)));
        fields.extend(objective_fields(last.map(|l| &l.rpo)));
        fields.extend(objective_fields(last.and_then(|l| l.rpo_data.as_ref())));
        fields.push(row.cadence.as_ref().map(|c| c.text.clone()).unwrap_or_default());
        fields.push(row.next_due.map(|t| t.to_string()).unwrap_or_default());
        fields.push(row.rto_trend.iter().map(|v| number(*v)).collect::<Vec<_>>().join(";"));
        fields.push(row.drills.to_string());
        fields.push(row.in_roster.to_string());
        fields.push(last.and_then(|l| l.local_dir.as_ref()).map(|d| d.display().to_string()).unwrap_or_default());
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// RFC 4180: quoted when it holds a comma, quote or line break. A leading
/// `=`, `+`, `-` or `@` is quoted too and prefixed with `'`, so a spreadsheet
/// never runs an operator's name as a formula.
fn csv_field(field: &str) -> String {
    let formula = field.starts_with(['=', '+', '-', '@']);
    if formula || field.contains([',', '"', '\n', '\r']) {
        let escaped = field.replace('"', "\"\"");
        if formula { format!("\"'{escaped}\"") } else { format!("\"{escaped}\"") }
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_their_maximum_and_mark_missing_drills() {
        assert_eq!(sparkline(&[Some(10), Some(20), None, Some(40), Some(0)]), "▃▅·█▁");
        assert_eq!(sparkline(&[Some(100), Some(100)]), "▄▄");
        assert_eq!(sparkline(&[Some(3900), Some(4200), Some(3720)]), "▄█▁");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn objectives_read_achieved_over_target() {
        let o = |target, achieved, verdict: &str| ObjectiveSummary {
            target_secs: target,
            achieved_secs: achieved,
            verdict: verdict.into(),
        };
        assert_eq!(objective(&o(Some(14_400), Some(3720), "PASS")), "1h 2m / 4h PASS");
        assert_eq!(objective(&o(Some(14_400), None, "not achieved")), "— / 4h not achieved");
        assert_eq!(objective(&o(None, Some(60), "n/a")), "1m n/a");
        assert_eq!(objective(&o(None, None, "n/a")), "—");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }
}
