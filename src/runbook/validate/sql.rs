//! The checks of a `sql-check` step and of the restore-target policy of an
//! `s3-backup` step: what the queries expect, how much a table may shrink,
//! which backup a drill restores.

use std::time::Duration;

use super::{Validator, template};
use crate::runbook::expect::Expectation;
use crate::runbook::model::{RawExpect, RawStep, Sp};
use crate::runbook::types::*;

/// A statement's limit when the step gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Validator<'_> {
    pub(super) fn sql_check(&mut self, raw: &Sp<RawStep>) -> Option<SqlCheckSpec> {
        let Some(database) = raw.database.as_ref() else {
            self.error(raw.kind.span(), format!("a `sql-check` step needs `database` (step `{}`)", raw.id.as_str()));
            return None;
        };
        if !database.contains("{{") {
            let scheme = database.split("://").next().unwrap_or_default();
            if !database.contains("://") || !matches!(scheme, "postgresql" | "postgres") {
                self.error(database.span(), "`database` must be a URL: postgresql://user@host:port/database");
            } else if database
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split('@').next())
                .is_some_and(|user| database.contains('@') && user.contains(':'))
            {
                self.error(
                    database.span(),
                    "`database` has a password in it: it would be journaled. Give it in `password` from a secret \
                     variable",
                );
            }
        }
        let fingerprint = raw.fingerprint.as_ref().is_some_and(|f| **f);
        let mut checks = Vec::new();
        if let Some(raw_checks) = &raw.check {
            let mut names = std::collections::HashSet::new();
            for check in raw_checks.iter() {
                if !names.insert(check.name.as_str()) {
                    self.error(check.name.span(), format!("two checks are named `{}`", check.name.as_str()));
                }
                if check.query.trim().is_empty() {
                    self.error(check.query.span(), "`query` is empty");
                }
                let expect = check.expect.as_ref().and_then(|expect| self.expectation(expect));
                if check.freshness && expect.is_some() {
                    let span = check.expect.as_ref().map_or(check.span(), |e| e.span());
                    self.error(
                        span,
                        "a `freshness` check answers a timestamp, compared with `rpo_target`: it takes no `expect`",
                    );
                }
                checks.push(SqlQuery {
                    name: check.name.to_string(),
                    query: check.query.to_string(),
                    expect,
                    capture: check.capture.as_ref().map(|c| c.to_string()),
                    freshness: check.freshness,
                });
            }
        }
        if checks.is_empty() && !fingerprint {
            self.error(
                raw.kind.span(),
                "a `sql-check` step needs `[[step.check]]` queries or `fingerprint = true`: otherwise it checks nothing",
            );
        }
        let max_shrink = raw.max_shrink.as_ref().and_then(|shrink| {
            let fraction = parse_percent(shrink);
            if fraction.is_none() {
                self.error(
                    shrink.span(),
                    format!("`max_shrink` = `{}`: expected a percentage such as \"20%\"", shrink.as_str()),
                );
            }
            if !fingerprint {
                self.error(shrink.span(), "`max_shrink` compares fingerprints: it needs `fingerprint = true`");
            }
            fraction
        });
        let on_shrink = match raw.on_shrink.as_ref().map(|o| o.as_str()) {
            None | Some("fail") => OnShrink::Fail,
            Some("warn") => OnShrink::Warn,
            Some(other) => {
                let span = raw.on_shrink.as_ref().map_or(0..0, |o| o.span());
                self.error(span, format!("`on_shrink` = `{other}`: expected \"fail\" or \"warn\""));
                OnShrink::Fail
            }
        };
        if let Some(exact) = &raw.exact
            && !fingerprint
        {
            self.error(exact.span(), "`exact` is how a fingerprint counts rows: it needs `fingerprint = true`");
        }
        Some(SqlCheckSpec {
            database: template(database),
            password: raw.password.as_ref().map(template),
            fingerprint,
            exact: raw.exact.as_ref().is_some_and(|e| **e),
            max_shrink,
            on_shrink,
            timeout: self.duration(&raw.timeout, "timeout").unwrap_or(DEFAULT_TIMEOUT),
            checks,
        })
    }

    fn expectation(&mut self, raw: &Sp<RawExpect>) -> Option<Expectation> {
        let text = match raw.get_ref() {
            RawExpect::Number(number) => format!("= {number}"),
            RawExpect::Text(text) => text.clone(),
        };
        match Expectation::parse(&text) {
            Ok(expectation) => Some(expectation),
            Err(error) => {
                let span = raw.span();
                // Point inside the quoted string, at the character that is wrong.
                let quoted = matches!(raw.get_ref(), RawExpect::Text(_))
                    && self.source.text.as_bytes().get(span.start).is_some_and(|b| matches!(b, b'"' | b'\''));
                let start = if quoted { (span.start + 1 + error.offset).min(span.end) } else { span.start };
                self.error(start..span.end, format!("`expect`: {}", error.message));
                None
            }
        }
    }

    /// `select` of an `s3-backup` step, with `window` / `before` where it needs them.
    pub(super) fn backup_select(&mut self, raw: &Sp<RawStep>) -> BackupSelect {
        let select_span = raw.select.as_ref().map_or(raw.kind.span(), |s| s.span());
        let select = match raw.select.as_ref().map(|s| s.as_str()) {
            None | Some("latest") => BackupSelect::Latest,
            Some("choose") => BackupSelect::Choose,
            Some("random") => match self.duration(&raw.window, "window") {
                Some(window) => BackupSelect::Random { window },
                None => {
                    if raw.window.is_none() {
                        self.error(select_span.clone(), "`select = \"random\"` needs `window`, e.g. window = \"30d\"");
                    }
                    BackupSelect::Latest
                }
            },
            Some("before") => match &raw.before {
                Some(before) => {
                    if !before.contains("{{")
                        && let Err(message) = parse_point_in_time(before)
                    {
                        self.error(before.span(), format!("`before`: {message}"));
                    }
                    BackupSelect::Before(template(before))
                }
                None => {
                    self.error(
                        select_span.clone(),
                        "`select = \"before\"` needs `before`, e.g. before = \"2026-11-20T03:00:00Z\"",
                    );
                    BackupSelect::Latest
                }
            },
            Some(other) => {
                self.error(
                    select_span.clone(),
                    format!("`select` = `{other}`: expected \"latest\", \"choose\", \"random\" or \"before\""),
                );
                BackupSelect::Latest
            }
        };
        if let Some(window) = &raw.window
            && !matches!(select, BackupSelect::Random { .. })
        {
            self.error(window.span(), "`window` goes with `select = \"random\"`");
        }
        if let Some(before) = &raw.before
            && !matches!(select, BackupSelect::Before(_))
        {
            self.error(before.span(), "`before` goes with `select = \"before\"`");
        }
        select
    }
}

/// `"20%"` → 0.2.
fn parse_percent(text: &str) -> Option<f64> {
    let number: f64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
    (0.0..=100.0).contains(&number).then_some(number / 100.0)
}

/// A point in time of `before`: RFC 3339 (`2026-11-20T03:00:00Z`, seconds
/// optional), or a date and time without an offset, taken as UTC.
pub fn parse_point_in_time(text: &str) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(at);
    }
    if let Ok(civil) = text.parse::<jiff::civil::DateTime>()
        && let Ok(at) = jiff::tz::TimeZone::UTC.to_timestamp(civil)
    {
        return Ok(at);
    }
    Err(format!("`{text}` is not a point in time: write it as 2026-11-20T03:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_points_in_time() {
        assert_eq!(parse_percent("20%"), Some(0.2));
        assert_eq!(parse_percent(" 5 %"), Some(0.05));
        assert_eq!(parse_percent("20"), None);
        assert_eq!(parse_percent("120%"), None);
        let at = parse_point_in_time("2026-11-20T03:00Z").unwrap();
        assert_eq!(at.to_string(), "2026-11-20T03:00:00Z");
        assert_eq!(parse_point_in_time("2026-11-20T03:00:00").unwrap(), at);
        assert_eq!(parse_point_in_time("2026-11-20T04:00:00+01:00").unwrap(), at);
        assert!(parse_point_in_time("last tuesday").unwrap_err().contains("not a point in time"));
    }
}
