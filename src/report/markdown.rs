//! The report as Markdown, for humans and auditors (and for pasting into a
//! ticket or a wiki).

use std::fmt::Write as _;
use std::time::Duration;

use super::{Report, short};
use crate::drill::evidence::{Evidence, human_bytes};
use crate::runbook::duration::format_duration;

/// Markdown for humans and auditors.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    let training = if report.training { " (training)" } else { "" };
    let _ = writeln!(out, "# Drill report: {}{training}\n", report.runbook.title);
    verdict(&mut out, report);
    let _ = writeln!(out, "| | |\n|---|---|");
    let outcome = match &report.outcome_reason {
        Some(reason) => format!("**{}**: {reason}", report.outcome),
        None => format!("**{}**", report.outcome),
    };
    let rpo_data = report.rpo_data.as_ref().map(|o| ("RPO by data", format!("**{}**: {}", o.verdict, o.detail)));
    let rows = [
        Some(("Drill", format!("`{}`", report.drill_id))),
        Some((
            "Runbook",
            format!("`{}` ({}), sha256 `{}`", report.runbook.id, report.runbook.path, short(&report.runbook.sha256)),
        )),
        Some(("Operator", format!("{} on {}", report.operator, report.host))),
        Some(("Started", report.started_at.clone())),
        Some(("Finished", report.finished_at.clone().unwrap_or_else(|| "not yet".into()))),
        Some(("Outcome", outcome)),
        Some(("RTO", format!("**{}**: {}", report.rto.verdict, report.rto.detail))),
        Some(("RPO", format!("**{}**: {}", report.rpo.verdict, report.rpo.detail))),
        rpo_data,
        Some(("Production vs DR tag", format!("**{}**: {}", report.tags.verdict, report.tags.detail))),
        Some(("drillbook", report.drillbook_version.clone())),
    ];
    for (key, value) in rows.into_iter().flatten() {
        let _ = writeln!(out, "| {key} | {} |", escape_cell(&value));
    }
    environment(&mut out, report);
    if !report.participants.is_empty() {
        let _ = writeln!(out, "\n## Participants\n");
        for participant in &report.participants {
            let _ = writeln!(out, "- {} ({})", participant.name, participant.role);
        }
    }
    if !report.handoffs.is_empty() {
        let _ = writeln!(out, "\n## Hand-offs\n");
        for handoff in &report.handoffs {
            let how = if handoff.taken_over { " (expired lease taken over, confirmed by name)" } else { "" };
            let _ = writeln!(out, "- {}: {} → {}{how}", handoff.at, handoff.from, handoff.to);
        }
    }
    if !report.vars.is_empty() || !report.secret_vars.is_empty() {
        let _ = writeln!(out, "\n## Variables\n");
        for (name, value) in &report.vars {
            let _ = writeln!(out, "- `{name}` = `{value}`");
        }
        for name in &report.secret_vars {
            let _ = writeln!(out, "- `{name}` = *(secret, not recorded)*");
        }
    }
    steps(&mut out, report);
    if !report.removed_steps.is_empty() {
        let _ = writeln!(out, "\n## Steps the project does without\n");
        for removed in &report.removed_steps {
            let _ = writeln!(out, "- `{}`: {}", removed.step, removed.reason);
        }
    }
    if let Some(since) = &report.since_last {
        let _ = writeln!(out, "\n## Since the last drill\n");
        for line in super::history::lines(since) {
            let _ = writeln!(out, "- {line}");
        }
    }
    deviations(&mut out, report);
    teardown(&mut out, report);
    follow_up(&mut out, report);
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\n## Notes\n");
        for note in &report.notes {
            let _ = writeln!(out, "- {}: {}", note.at, note.text);
        }
    }
    let _ = writeln!(out, "\n## Sessions\n");
    for session in &report.sessions {
        let _ = writeln!(
            out,
            "- pid {} on {} ({}): {} to {}{}",
            session.pid,
            session.host,
            session.mode,
            session.started_at,
            session.last_event_at,
            session.end_reason.as_ref().map(|r| format!(", ended: {r}")).unwrap_or_default()
        );
    }
    if let Some(offline) = report.rto.offline_ms {
        let _ = writeln!(
            out,
            "\nTime with no drillbook process running within the RTO span: {}.",
            format_duration(Duration::from_millis(offline))
        );
    }
    let _ = writeln!(
        out,
        "\n## Evidence\n\nJournal: {} events; head sha256 `{}`. Check it with `drillbook verify {}`.",
        report.journal.events,
        report.journal.head_sha256.as_deref().unwrap_or("unknown"),
        report.drill_id
    );
    out
}

fn environment(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n## Environment\n");
    if report.environment.is_empty() {
        let _ = writeln!(out, "No step recorded a cluster or a bucket.");
    }
    for target in &report.environment.kubernetes {
        let server = target.server.as_ref().map(|s| format!(" ({s})")).unwrap_or_default();
        let _ = writeln!(
            out,
            "- Kubernetes: context `{}`{server}, namespace `{}` (steps {})",
            target.context,
            target.namespace,
            code_list(&target.steps)
        );
    }
    for target in &report.environment.s3 {
        let _ = writeln!(
            out,
            "- S3: bucket `{}` at `{}` (steps {})",
            target.bucket,
            target.endpoint.as_deref().unwrap_or("the AWS default endpoint"),
            code_list(&target.steps)
        );
    }
    if let Some(production) = &report.tags.production {
        let image = production.image.as_ref().map(|i| format!(" (`{i}`)")).unwrap_or_default();
        let _ = writeln!(out, "- production tag: `{}`{image}, from step `{}`", production.tag, production.step);
    }
    if let Some(dr) = &report.tags.dr {
        let running: Vec<String> = dr.running.iter().map(|(w, t)| format!("{w} `{t}`")).collect();
        let _ = writeln!(out, "- DR runs: {}, from step `{}`", running.join(", "), dr.step);
    }
}

fn steps(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n## Steps\n");
    let _ = writeln!(out, "| # | Step | Kind | Status | Attempts | Duration | Exit |\n|---|---|---|---|---|---|---|");
    for (index, step) in report.steps.iter().enumerate() {
        let last = step.attempts.last();
        // Every attempt counts; the last is shown beside the sum when there were several.
        let took = |ms: u64| format_duration(Duration::from_millis(ms));
        let duration = match (step.attempts.len(), last.and_then(|a| a.duration_ms)) {
            (0, _) | (_, None) => String::new(),
            (1, Some(ms)) => took(ms),
            (_, Some(ms)) => format!("{} (last {})", took(step.duration_ms()), took(ms)),
        };
        let exit = last.and_then(|a| a.exit_code).map(|c| c.to_string()).unwrap_or_default();
        let teardown = if step.always { " (teardown)" } else { "" };
        let _ = writeln!(
            out,
            "| {} | {}{teardown} (`{}`) | {} | {} | {} | {} | {} |",
            index + 1,
            escape_cell(&step.title),
            step.id,
            step.kind,
            step.status,
            step.attempts.len(),
            duration,
            exit
        );
    }
    for step in &report.steps {
        let _ = writeln!(out, "\n### {} (`{}`): {}", step.title, step.id, step.status);
        if let Some(detail) = &step.detail {
            let _ = writeln!(out, "\n{detail}");
        }
        let listed = !step.attempts.is_empty()
            || !step.captures.is_empty()
            || step.evidence.is_some()
            || !step.files.is_empty()
            || !step.checklist.is_empty()
            || !step.confirmations.is_empty()
            || !step.notes.is_empty();
        if listed {
            let _ = writeln!(out);
        }
        if !step.operators.is_empty() {
            let _ = writeln!(out, "- driven by {}", step.operators.join(", "));
        }
        for attempt in &step.attempts {
            // When it ended (it ran from its start for its duration); one still
            // running or cut short says when it started.
            match (&attempt.finished_at, attempt.result.as_str()) {
                (Some(end), result) if !result.starts_with("interrupted") => {
                    let _ =
                        write!(out, "- attempt {}: {result} at {end} (started {})", attempt.number, attempt.started_at);
                }
                _ => {
                    let _ =
                        write!(out, "- attempt {}: {}, started {}", attempt.number, attempt.result, attempt.started_at);
                }
            }
            if let Some(code) = attempt.exit_code {
                let _ = write!(out, ", exit {code}");
            }
            if let Some(ms) = attempt.duration_ms {
                let _ = write!(out, ", {}", format_duration(Duration::from_millis(ms)));
            }
            if let (Some(log), Some(hash)) = (&attempt.log, &attempt.log_sha256) {
                let _ = write!(out, ", log `{log}` (sha256 `{}`)", short(hash));
            }
            if let Some(reason) = attempt.reason.as_ref().filter(|_| attempt.result != "succeeded") {
                let _ = write!(out, ": {reason}");
            }
            let _ = writeln!(out);
            if let Some(command) = &attempt.command {
                let _ = writeln!(out, "\n  ```sh\n  {}\n  ```\n", command.replace('\n', "\n  "));
            }
        }
        for (name, value) in &step.captures {
            let _ = writeln!(out, "- captured `{name}` = `{}`", value.value);
            for (field, field_value) in &value.fields {
                let shown = field_value.as_str().map_or_else(|| field_value.to_string(), str::to_string);
                let _ = writeln!(out, "  - `{name}.{field}` = `{shown}`");
            }
        }
        if let Some(evidence) = &step.evidence {
            evidence_markdown(out, evidence);
        }
        for file in &step.files {
            // Relative links: the reports live in the drill directory, beside `evidence/`.
            let by = file.by.as_deref().map(|by| format!(", by {by}")).unwrap_or_default();
            let note = file.note.as_deref().map(|note| format!(": {note}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "- {} [{}]({}){note} ({}{by}, sha256 `{}`, {})",
                file.origin,
                file.label,
                file.path,
                human_bytes(file.bytes),
                file.sha256,
                file.check.as_str()
            );
        }
        for item in &step.checklist {
            let _ = writeln!(out, "- [{}] {}", if item.ticked { "x" } else { " " }, item.item);
        }
        for confirmation in &step.confirmations {
            let _ = writeln!(out, "- confirmed: {confirmation}");
        }
        for note in &step.notes {
            let _ = writeln!(out, "- note ({}): {}", note.at, note.text);
        }
    }
}

/// The verdict first, with what decided it: a reader who stops here is not misled.
fn verdict(out: &mut String, report: &Report) {
    let _ = writeln!(out, "> **Verdict: {}**", report.outcome.to_uppercase());
    let deciding: Vec<_> = report.findings.iter().filter(|f| f.fails || report.outcome != "failed").collect();
    if deciding.is_empty() {
        let why = match report.outcome.as_str() {
            "passed" => "every step ran as the runbook says and succeeded",
            "incomplete" => "the drill has not finished",
            _ => "",
        };
        if !why.is_empty() {
            let _ = writeln!(out, ">\n> {why}.");
        }
    } else {
        let _ = writeln!(out, ">");
        for finding in deciding {
            let step = finding.step.as_ref().map(|s| format!("`{s}`: ")).unwrap_or_default();
            let _ = writeln!(out, "> - {step}**{}**: {}", finding.kind, finding.text.replace('\n', " "));
        }
    }
    let data = report.rpo_data.as_ref().map(|o| format!(" · RPO by data **{}**", o.verdict)).unwrap_or_default();
    let _ = writeln!(out, ">\n> RTO **{}** · RPO **{}**{data}\n", report.rto.verdict, report.rpo.verdict);
}

/// Journaled evidence in words: where a Kubernetes step acted, what a
/// scale changed (the previous replicas are what to restore), what DR ran,
/// the object chosen, how a URL answered.
fn evidence_markdown(out: &mut String, evidence: &Evidence) {
    if let Some((context, namespace, _)) = evidence.cluster() {
        let _ = writeln!(out, "- cluster: context `{context}`, namespace `{namespace}`");
    }
    match evidence {
        Evidence::Tag(tag) => {
            let _ = writeln!(out, "- chosen tag `{}` (`{}`)", tag.tag, tag.image);
        }
        Evidence::Scale(plan) => {
            let _ = writeln!(out, "- scaled to {} replica(s); previous replicas:", plan.to);
            for workload in &plan.workloads {
                let _ = writeln!(out, "  - {}/{}: {}", workload.kind, workload.name, workload.replicas);
            }
        }
        Evidence::Wait(wait) => {
            let running: Vec<String> =
                wait.running.iter().map(|(workload, tag)| format!("{workload} `{tag}`")).collect();
            let expected = wait.expect_tag.as_ref().map(|t| format!(" (expected `{t}`)")).unwrap_or_default();
            let _ = writeln!(out, "- running: {}{expected}", running.join(", "));
        }
        Evidence::Backup(backup) => {
            let version = backup.version_id.as_ref().map(|v| format!(" (version `{v}`)")).unwrap_or_default();
            let _ = writeln!(out, "- chosen object `{}`{version}", backup.key);
            if let Some(policy) = &backup.policy {
                let reason = backup.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                let _ = writeln!(out, "- restore target: {policy}{reason}");
            }
        }
        Evidence::Bucket(result) => {
            for line in result.lines() {
                let _ = writeln!(out, "- `{}`", line.trim_start());
            }
        }
        Evidence::Browser(result) => {
            for line in super::data::browser_lines(result) {
                let _ = writeln!(out, "- {}", line.trim_start());
            }
        }
        Evidence::Sql(result) => {
            for line in super::data::sql_lines(result) {
                let _ = writeln!(out, "- {}", line.trim_start());
            }
        }
        Evidence::Isolation(result) => {
            for line in result.lines() {
                let _ = writeln!(out, "- {}", line.trim_start());
            }
        }
        Evidence::Dns(result) => {
            for line in super::data::dns_lines(result) {
                let _ = writeln!(out, "- {line}");
            }
        }
        Evidence::Http(http) => {
            let attempts = match http.attempts {
                1 => String::new(),
                n => format!(" on attempt {n}"),
            };
            let _ = writeln!(out, "- `{}` answered {} in {} ms{attempts}", http.url, http.status, http.latency_ms);
            if let Some(expires) = &http.cert_expires {
                let days = http.cert_days_left.map(|d| format!(" ({d} days left at the check)")).unwrap_or_default();
                let _ = writeln!(out, "- TLS certificate expires {expires}{days}");
            }
        }
    }
}

fn deviations(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n## Deviations\n");
    if report.deviations.is_empty() {
        let _ = writeln!(out, "None: every step ran once and succeeded.");
        return;
    }
    let _ = writeln!(out, "| Time | Step | Deviation | Detail |\n|---|---|---|---|");
    for deviation in &report.deviations {
        let kind = match &deviation.cause {
            Some(cause) if deviation.kind == "skipped" => format!("skipped ({})", cause.replace('_', "-")),
            _ => deviation.kind.clone(),
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            deviation.at,
            deviation.step,
            kind,
            escape_cell(&deviation.detail)
        );
    }
}

fn teardown(out: &mut String, report: &Report) {
    if report.teardown.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Teardown\n");
    for step in &report.teardown {
        let how = match (&step.detail, step.ran) {
            (Some(detail), _) => format!("{}: {detail}", step.status),
            (None, true) => step.status.clone(),
            (None, false) => format!("{} (did not run)", step.status),
        };
        let attempts = if step.attempts > 1 { format!(", {} attempts", step.attempts) } else { String::new() };
        let _ = writeln!(out, "- {} (`{}`): {how}{attempts}", step.title, step.step);
    }
}

fn follow_up(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n## Action items\n");
    if report.action_items.is_empty() {
        let _ = writeln!(out, "None recorded.");
    }
    for item in &report.action_items {
        let owner = item.owner.as_deref().unwrap_or("no owner");
        let step = item.step.as_ref().map(|s| format!(" (step `{s}`)")).unwrap_or_default();
        let _ = writeln!(out, "- [ ] {} — **{owner}**{step}", item.text);
    }
    let _ = writeln!(out, "\n## Debrief\n");
    match &report.debrief {
        Some(debrief) => {
            let _ = writeln!(out, "What went well:\n\n{}\n", quote(&debrief.went_well));
            let _ = writeln!(out, "What to improve:\n\n{}", quote(&debrief.to_improve));
        }
        None => {
            let _ = writeln!(out, "Not recorded.");
        }
    }
}

fn quote(text: &str) -> String {
    text.trim().lines().map(|line| format!("> {line}").trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

fn code_list(items: &[String]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
