//! Journaled evidence in words, for the HTML report: where a Kubernetes
//! step acted, what it chose or scaled, what DR ran, how a URL answered.

use std::fmt::Write as _;

use super::esc;
use crate::drill::evidence::{Evidence, human_bytes};
use crate::report::human_time;

/// The heading of an evidence item: what it is the evidence of.
pub(super) fn evidence_title(evidence: &Evidence) -> &'static str {
    match evidence {
        Evidence::Backup(_) => "Backup chosen",
        Evidence::Tag(_) => "Tag chosen",
        Evidence::Scale(_) => "What the scale changed",
        Evidence::Wait(_) => "What DR ran",
        Evidence::Http(_) => "How the URL answered",
        Evidence::Sql(_) => "What the database answered",
        Evidence::Bucket(_) => "What the bucket check found",
        Evidence::Dns(_) => "What DNS answered",
        Evidence::Browser(_) => "What the browser did",
        Evidence::Isolation(_) => "What the isolation check compared and found",
    }
}

/// Journaled evidence as readable lines (HTML, escaped).
pub(super) fn evidence_lines(evidence: &Evidence) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some((context, namespace, server)) = evidence.cluster()
        && !context.is_empty()
        && !namespace.is_empty()
    {
        let server = if server.is_empty() { String::new() } else { format!(" ({})", esc(server)) };
        lines.push(format!(
            "cluster: context <code>{}</code>{server}, namespace <code>{}</code>",
            esc(context),
            esc(namespace)
        ));
    }
    match evidence {
        Evidence::Tag(tag) => {
            let image =
                if tag.image.is_empty() { String::new() } else { format!(" (<code>{}</code>)", esc(&tag.image)) };
            lines.push(format!("chosen tag <code>{}</code>{image}", esc(&tag.tag)));
        }
        Evidence::Scale(plan) => {
            let previous: Vec<String> =
                plan.workloads.iter().map(|w| format!("{}/{}: {}", esc(&w.kind), esc(&w.name), w.replicas)).collect();
            lines.push(format!("scaled to {} replica(s); previous replicas: {}", plan.to, previous.join(", ")));
        }
        Evidence::Wait(wait) => {
            let running: Vec<String> =
                wait.running.iter().map(|(w, t)| format!("{} <code>{}</code>", esc(w), esc(t))).collect();
            let expected = wait
                .expect_tag
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(|t| format!(" (expected <code>{}</code>)", esc(t)))
                .unwrap_or_default();
            lines.push(format!("running: {}{expected}", running.join(", ")));
        }
        Evidence::Backup(backup) => {
            let mut line = format!("object <code>{}</code>", esc(&backup.key));
            if let Some(version) = backup.version_id.as_ref().filter(|v| !v.is_empty()) {
                let _ = write!(line, ", version <code>{}</code>", esc(version));
            }
            let _ = write!(line, ", {}", esc(&human_bytes(backup.size)));
            if !backup.last_modified.is_empty() {
                let _ = write!(line, ", last modified {}", esc(&human_time(&backup.last_modified)));
            }
            if let Some(etag) = backup.etag.as_ref().filter(|e| !e.is_empty()) {
                let _ = write!(line, ", ETag <code>{}</code>", esc(etag));
            }
            lines.push(line);
            if let Some(policy) = &backup.policy {
                let reason = backup.reason.as_ref().map(|r| format!(": {}", esc(r))).unwrap_or_default();
                lines.push(format!("restore target: {}{reason}", esc(policy)));
            }
        }
        Evidence::Http(http) => {
            let attempts = match http.attempts {
                1 => String::new(),
                n => format!(" on attempt {n}"),
            };
            lines.push(format!(
                "<code>{}</code> answered {} in {} ms{attempts}",
                esc(&http.url),
                http.status,
                http.latency_ms
            ));
            if let Some(expires) = &http.cert_expires {
                let days = http.cert_days_left.map(|d| format!(" ({d} days left at the check)")).unwrap_or_default();
                lines.push(format!("TLS certificate expires {}{days}", esc(&human_time(expires))));
            }
        }
        Evidence::Sql(result) => lines.extend(crate::report::data::sql_lines(result).iter().map(|line| esc(line))),
        Evidence::Bucket(result) => {
            lines.extend(result.lines().iter().map(|line| format!("<code>{}</code>", esc(line.trim_start()))))
        }
        Evidence::Dns(result) => lines.extend(crate::report::data::dns_lines(result).iter().map(|line| esc(line))),
        Evidence::Isolation(result) => lines.extend(result.lines().iter().map(|line| esc(line))),
        Evidence::Browser(result) => {
            lines.extend(crate::report::data::browser_lines(result).iter().map(|line| esc(line)))
        }
    }
    lines
}
