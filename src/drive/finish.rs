//! The end of a drill: the outcome journaled with its reason, the report
//! files written into the drill's directory, `--report-to` uploads, and
//! the exit code a scheduled drill reports.

use super::protocol::{Summary, Update};
use super::session::ResumeNotice;
use super::{Conductor, ReportTo};
use crate::drill::event::{DrillOutcome, Event};
use crate::drill::state::StepStatus;
use crate::engine::s3::{Store, StoreConfig};

impl Conductor {
    /// Journals the outcome, writes and uploads the reports; returns the
    /// exit code: 0 only for a drill that passed (with deviations or not),
    /// met the objectives it measured, and whose reports arrived where they
    /// were sent.
    pub(super) async fn finish(&mut self, outcome: DrillOutcome) -> u8 {
        let reason = match outcome {
            DrillOutcome::Completed => None,
            DrillOutcome::Aborted => Some("aborted by the operator".to_string()),
            DrillOutcome::Failed => self.session.state.steps.iter().find_map(|s| match &s.status {
                StepStatus::Failed { reason } => Some(format!("step `{}` failed: {reason}", s.outline.id)),
                _ => None,
            }),
        };
        if let Err(error) = self.record(Event::DrillFinished { outcome, reason }).await {
            self.notice(format!("error: {error:?}")).await;
            return 2;
        }
        let report = self.session.report();
        let written = crate::report::write_all(&self.session.dir.path, &report).map_err(|e| e.to_string());
        self.write_summary(&report);
        // The verdict decides, never the flow alone: a drill that ran to its
        // end with a required step skipped failed.
        let passed = crate::drill::verdict::verdict(&self.session.state).outcome.passed();
        let objectives_missed = report.rto.verdict == "FAIL"
            || report.rpo.verdict == "FAIL"
            || report.rpo_data.as_ref().is_some_and(|o| o.verdict == "FAIL");
        let finished = self.finished_notification(&report);
        self.send(Update::Finished(Box::new(Summary { report, written }))).await;
        let mut code = if passed && !objectives_missed { 0 } else { 1 };
        let mut uploaded = None;
        if let Some(target) = self.options.report_to.clone() {
            // A scheduled drill whose evidence did not arrive has failed its job.
            let upload = self.upload_reports(&target).await;
            if let Err(error) = &upload {
                self.notice(format!("  could not upload the reports: {error}")).await;
                code = 1;
            }
            uploaded = Some(upload.is_ok());
        }
        self.notify_finished(finished, uploaded);
        code
    }

    /// `summary.json`: the drill in a few fields, for the archive's register
    /// (written at the start and at the end; a failure to write it loses no
    /// evidence: the journal has it all).
    pub(super) fn write_summary(&self, report: &crate::report::Report) {
        let state = &self.session.state;
        let summary = crate::report::summary::Summary::of(report, state.project.clone(), state.cadence.clone());
        if let Ok(text) = serde_json::to_string_pretty(&summary) {
            let _ = crate::report::write_atomic(&self.session.dir.path.join("summary.json"), &text);
        }
    }

    /// `--report-to`: the report files of this drill, to s3://BUCKET/PREFIX/DRILL_ID/.
    async fn upload_reports(&self, target: &ReportTo) -> Result<(), UploadError> {
        let store = Store::connect(&StoreConfig::default()).await?;
        for (name, content_type) in [
            ("report.md", "text/markdown; charset=utf-8"),
            ("report.html", "text/html; charset=utf-8"),
            ("report.json", "application/json"),
            ("report.junit.xml", "application/xml"),
        ] {
            let path = self.session.dir.path.join(name);
            let body = std::fs::read(&path).map_err(|source| UploadError::Read { path: path.clone(), source })?;
            let key = format!("{}{}/{name}", target.prefix, self.session.dir.id);
            store.put(&target.bucket, &key, body, content_type).await?;
            self.notice(format!("  uploaded s3://{}/{key}", target.bucket)).await;
        }
        Ok(())
    }
}

/// Why `--report-to` could not upload the reports.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error(transparent)]
    S3(#[from] crate::engine::s3::S3Error),
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a resumed drill's operator should know, one line each.
pub(super) fn resume_notices(notice: &ResumeNotice) -> Vec<String> {
    let mut notices = Vec::new();
    if let Some(torn) = &notice.torn {
        notices.push(format!(
            "the journal's last line was incomplete (a crash mid-write, line {}); it was set aside{}",
            torn.line_number,
            torn.saved_to.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
        ));
    }
    if let Some(change) = &notice.runbook_changed {
        let mut what = Vec::new();
        if !change.changed_steps.is_empty() {
            what.push(format!("changed: {}", change.changed_steps.join(", ")));
        }
        if !change.added_steps.is_empty() {
            what.push(format!("added: {}", change.added_steps.join(", ")));
        }
        if !change.removed_steps.is_empty() {
            what.push(format!("removed: {}", change.removed_steps.join(", ")));
        }
        notices.push(format!(
            "{} changed since this drill started ({}); continuing with the runbook as it was when the drill started",
            change.path,
            if what.is_empty() { "whitespace or metadata".to_string() } else { what.join("; ") }
        ));
    }
    notices
}
