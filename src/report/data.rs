//! The evidence of a `sql-check` (and a `dns-check`) in words, the same for every report
//! The evidence of a `sql-check` (and a `browser-check`) in words, the same for every report
//! format (each escapes it its own way): what each query answered against
//! what was expected, the newest data restored, the fingerprint and how it
//! compares with the previous completed drill.

use crate::drill::evidence::SqlResult;

/// Lines of plain text; the formats add their own markup.
pub fn sql_lines(result: &SqlResult) -> Vec<String> {
    let mut lines = vec![if result.server.is_empty() {
        format!("database {}", result.database)
    } else {
        format!("database {} ({})", result.database, result.server.split(" on ").next().unwrap_or(&result.server))
    }];
    for check in &result.checks {
        let answer = check.answer.as_deref().unwrap_or("no value");
        let expected = match (&check.expect, check.freshness) {
            (_, true) => " (newest data)".to_string(),
            (Some(expect), false) => format!(" (expected {expect})"),
            (None, false) => String::new(),
        };
        let verdict = match (&check.problem, check.passed) {
            (_, true) => "ok".to_string(),
            (Some(problem), false) => format!("FAILED: {problem}"),
            (None, false) => "FAILED".to_string(),
        };
        lines.push(format!("check {}: {answer}{expected}: {verdict}", check.name));
    }
    if let Some(newest) = &result.newest_data {
        lines.push(format!("newest data restored: {newest}"));
    }
    if let Some(print) = &result.fingerprint {
        let estimated = print.tables.values().filter(|t| !t.exact).count();
        let how = match estimated {
            0 => "every row count exact".to_string(),
            n if n == print.tables.len() => "row counts estimated by the planner after ANALYZE".to_string(),
            n => format!("{n} row count(s) estimated by the planner after ANALYZE, the others exact"),
        };
        let short = &print.schema_hash[..12.min(print.schema_hash.len())];
        lines.push(format!("fingerprint: {} tables, schema hash {short}, {how}", print.tables.len()));
    }
    if let Some(comparison) = &result.comparison {
        match &comparison.baseline {
            None => lines.push("no earlier completed drill to compare with: this is the first baseline".to_string()),
            Some(baseline) => {
                lines.push(format!(
                    "compared with drill {baseline}: schema {}, {} table(s) changed",
                    if comparison.schema_changed { "changed" } else { "unchanged" },
                    comparison.changes.len()
                ));
                let count = |n: Option<i64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
                for change in &comparison.changes {
                    lines.push(format!(
                        "  {}: {} → {} ({})",
                        change.table,
                        count(change.before),
                        count(change.now),
                        change.change
                    ));
                }
                lines.extend(comparison.problems.iter().map(|p| format!("problem: {p}")));
            }
        }
    }
    lines
}

/// The evidence of a `dns-check` in words, for every report format and
/// the TUI: the server and its response, the CNAME chain and addresses with
/// their TTLs, then the certificate served for the name.
pub fn dns_lines(result: &crate::drill::evidence::DnsResult) -> Vec<String> {
    let mut lines = vec![format!(
        "{} asked of {}: {} in {} ms (expected {})",
        result.name, result.server, result.response, result.elapsed_ms, result.expected
    )];
    for cname in &result.cnames {
        lines.push(format!("{} CNAME {} (TTL {} s)", cname.name, cname.target, cname.ttl));
    }
    if !result.addresses.is_empty() {
        let addresses: Vec<String> =
            result.addresses.iter().map(|a| format!("{} (TTL {} s)", a.address, a.ttl)).collect();
        lines.push(format!("addresses: {}", addresses.join(", ")));
    }
    if let Some(certificate) = &result.certificate {
        let names = if certificate.names.is_empty() { "-".to_string() } else { certificate.names.join(", ") };
        lines.push(format!("TLS certificate at {}: {names}", certificate.address));
        if !certificate.issuer.is_empty() {
            lines.push(format!("issued by {}", certificate.issuer));
        }
        if let Some(expires) = &certificate.not_after {
            let days = certificate.days_left.map(|d| format!(", {d} days left at the check")).unwrap_or_default();
            lines.push(format!("expires {expires}{days} (at least {} wanted)", certificate.min_days));
        }
        match &certificate.problem {
            Some(problem) => lines.push(format!("certificate FAILED: {problem}")),
            None if certificate.trusted => lines.push("certificate trusted and valid for the name".to_string()),
            None => {}
        }
    }
    lines
}

/// The evidence of a `browser-check` in words: where it ran (saying so when
/// it was the training sandbox), then each action with its verdict.
pub fn browser_lines(result: &crate::drill::evidence::BrowserResult) -> Vec<String> {
    let browser = if result.browser.is_empty() { String::new() } else { format!(" with {}", result.browser) };
    let sandbox = if result.sandbox { " (training: drillbook's sandbox site, not the runbook's)" } else { "" };
    let mut lines = vec![format!("site {}{sandbox}{browser}", result.url)];
    lines.extend(result.actions.iter().map(|action| action.line()));
    lines
}
