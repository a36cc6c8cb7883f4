//! What a notification says, in the two shapes a target takes: a Slack
//! incoming webhook's `{"text": ...}` (a few readable lines) and a generic
//! webhook's JSON object (`event`, the drill's identity, then the event's
//! own fields). Both are built from the same [`Notification`], so they never
//! disagree.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::config::NotifyKind;
use crate::runbook::duration::format_duration;

/// Which drill a notification is about: the same for all of a drill's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillInfo {
    pub drill_id: String,
    pub runbook_id: String,
    pub runbook_title: String,
    pub project: Option<String>,
    pub operator: String,
    /// Training drills say so in every message: nobody should mistake one
    /// for a real recovery.
    pub training: bool,
}

/// One objective as the drill measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectiveLine {
    /// The webhook's key: `rto`, `rpo`, `rpo_data`.
    pub key: &'static str,
    /// What people read: `RTO`, `RPO`, `RPO by data`.
    pub label: &'static str,
    pub achieved_secs: Option<u64>,
    pub target_secs: Option<u64>,
    /// `PASS`, `FAIL`, `n/a`, `not achieved`, `not demonstrated`.
    pub verdict: String,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Started,
    StepFailed {
        step: String,
        title: String,
        attempt: u32,
        reason: String,
    },
    /// A question has had no answer for `waited`.
    Waiting {
        step: String,
        title: String,
        /// `confirm`, `pick`, `manual`, `checklist`, `interrupted`, `failed`.
        question: &'static str,
        /// What the operator is asked, in words (`a confirmation to run it`).
        asking: String,
        waited: Duration,
    },
    Finished {
        /// The verdict: `passed`, `passed with deviations`, `failed`, `aborted`.
        outcome: String,
        reason: Option<String>,
        objectives: Vec<ObjectiveLine>,
        /// The drill's directory, where its report files are.
        reports_dir: String,
        /// `--report-to`: `s3://BUCKET/PREFIX/DRILL_ID/`.
        report_to: Option<String>,
        /// Whether that upload succeeded (`None`: no `--report-to`).
        uploaded: Option<bool>,
    },
}

/// A notification about a drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub drill: Arc<DrillInfo>,
    pub what: What,
}

impl Notification {
    /// The webhook's `event`, also what a failed delivery is journaled as.
    pub fn event(&self) -> &'static str {
        match self.what {
            What::Started => "drill_started",
            What::StepFailed { .. } => "step_failed",
            What::Waiting { .. } => "waiting",
            What::Finished { .. } => "drill_finished",
        }
    }

    /// The request body for a target of this kind (JSON either way).
    pub fn body(&self, kind: NotifyKind) -> Vec<u8> {
        let value = match kind {
            NotifyKind::Slack => json!({ "text": self.text() }),
            NotifyKind::Webhook => self.webhook(),
        };
        // A `Value` always serializes.
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// The Slack message: one line, or three for the end of a drill.
    pub fn text(&self) -> String {
        let drill = &self.drill;
        let marker = if drill.training { "[TRAINING] " } else { "" };
        let about = self.about();
        match &self.what {
            What::Started => {
                let kind = if drill.training { "Training drill" } else { "Drill" };
                format!("{marker}{kind} started: {about}, operator {}", drill.operator)
            }
            What::StepFailed { step, title, attempt, reason } => {
                format!("{marker}{about}: step `{step}` ({title}) failed (attempt {attempt}): {reason}")
            }
            What::Waiting { step, title, asking, waited, .. } => format!(
                "{marker}{about}: step `{step}` ({title}) has waited {} for {asking}",
                format_duration(Duration::from_secs(waited.as_secs()))
            ),
            What::Finished { outcome, reason, objectives, reports_dir, report_to, uploaded } => {
                let reason = reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                let objectives: Vec<String> = objectives.iter().map(ObjectiveLine::text).collect();
                let uploaded = match (report_to, uploaded) {
                    (Some(url), Some(false)) => format!("; the upload to {url} failed"),
                    (Some(url), _) => format!(" and {url}"),
                    (None, _) => String::new(),
                };
                format!(
                    "{marker}{about} {outcome}{reason}.\n{}\nReports: {reports_dir}{uploaded}",
                    objectives.join(" · ")
                )
            }
        }
    }

    /// `Quarterly backup verification (project acme, drill ID)`.
    fn about(&self) -> String {
        let drill = &self.drill;
        let project = drill.project.as_ref().map(|p| format!("project {p}, ")).unwrap_or_default();
        format!("{} ({project}drill {})", drill.runbook_title, drill.drill_id)
    }

    fn webhook(&self) -> Value {
        let drill = &self.drill;
        let mut object = Map::new();
        object.insert("event".into(), self.event().into());
        object.insert("drill_id".into(), drill.drill_id.clone().into());
        object.insert("runbook_id".into(), drill.runbook_id.clone().into());
        object.insert("runbook_title".into(), drill.runbook_title.clone().into());
        object.insert("project".into(), drill.project.clone().into());
        object.insert("operator".into(), drill.operator.clone().into());
        object.insert("training".into(), drill.training.into());
        object.insert("text".into(), self.text().into());
        let fields = match &self.what {
            What::Started => json!({}),
            What::StepFailed { step, title, attempt, reason } => {
                json!({ "step": step, "step_title": title, "attempt": attempt, "reason": reason })
            }
            What::Waiting { step, title, question, waited, .. } => {
                json!({ "step": step, "step_title": title, "question": question, "waited_secs": waited.as_secs() })
            }
            What::Finished { outcome, reason, objectives, reports_dir, report_to, uploaded } => {
                let mut fields = json!({
                    "outcome": outcome,
                    "reason": reason,
                    "reports_dir": reports_dir,
                    "report_to": report_to,
                    "report_uploaded": uploaded,
                });
                for objective in objectives {
                    fields[objective.key] = json!({
                        "achieved_secs": objective.achieved_secs,
                        "target_secs": objective.target_secs,
                        "verdict": objective.verdict,
                    });
                }
                fields
            }
        };
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        Value::Object(object)
    }
}

impl ObjectiveLine {
    /// `RTO 12m 5s (target 4h): PASS`.
    fn text(&self) -> String {
        let achieved =
            self.achieved_secs.map_or("not measured".to_string(), |s| format_duration(Duration::from_secs(s)));
        let target = self
            .target_secs
            .map_or("no target".to_string(), |s| format!("target {}", format_duration(Duration::from_secs(s))));
        format!("{} {achieved} ({target}): {}", self.label, self.verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drill(training: bool) -> Arc<DrillInfo> {
        Arc::new(DrillInfo {
            drill_id: "20261207-0900-ab12".into(),
            runbook_id: "backup-verification".into(),
            runbook_title: "Quarterly backup verification".into(),
            project: Some("acme".into()),
            operator: "dana".into(),
            training,
        })
    }

    fn finished() -> What {
        What::Finished {
            outcome: "passed with deviations".into(),
            reason: None,
            objectives: vec![
                ObjectiveLine {
                    key: "rto",
                    label: "RTO",
                    achieved_secs: Some(725),
                    target_secs: Some(4 * 3600),
                    verdict: "PASS".into(),
                },
                ObjectiveLine {
                    key: "rpo",
                    label: "RPO",
                    achieved_secs: None,
                    target_secs: None,
                    verdict: "n/a".into(),
                },
            ],
            reports_dir: "/srv/drills/20261207-0900-ab12".into(),
            report_to: Some("s3://acme-drills/reports/20261207-0900-ab12/".into()),
            uploaded: Some(true),
        }
    }

    #[test]
    fn slack_text_is_a_few_readable_lines_marked_when_training() {
        let started = Notification { drill: drill(true), what: What::Started };
        assert_eq!(
            started.text(),
            "[TRAINING] Training drill started: Quarterly backup verification (project acme, drill 20261207-0900-ab12), operator dana"
        );
        let end = Notification { drill: drill(false), what: finished() };
        assert_eq!(
            end.text(),
            "Quarterly backup verification (project acme, drill 20261207-0900-ab12) passed with deviations.\n\
             RTO 12m 5s (target 4h): PASS · RPO not measured (no target): n/a\n\
             Reports: /srv/drills/20261207-0900-ab12 and s3://acme-drills/reports/20261207-0900-ab12/"
        );
        let body: Value = serde_json::from_slice(&end.body(NotifyKind::Slack)).unwrap();
        assert_eq!(body, json!({ "text": end.text() }));
    }

    #[test]
    fn the_webhook_gets_the_event_the_drill_and_its_fields() {
        let end = Notification { drill: drill(false), what: finished() };
        let body: Value = serde_json::from_slice(&end.body(NotifyKind::Webhook)).unwrap();
        assert_eq!(body["event"], "drill_finished");
        assert_eq!(body["drill_id"], "20261207-0900-ab12");
        assert_eq!(body["runbook_id"], "backup-verification");
        assert_eq!(body["project"], "acme");
        assert_eq!(body["training"], false);
        assert_eq!(body["outcome"], "passed with deviations");
        assert_eq!(body["rto"], json!({ "achieved_secs": 725, "target_secs": 14400, "verdict": "PASS" }));
        assert_eq!(body["rpo"]["verdict"], "n/a");
        assert!(body.get("rpo_data").is_none(), "no data RPO was measured: {body}");
        assert_eq!(body["report_uploaded"], true);

        let waiting = Notification {
            drill: drill(false),
            what: What::Waiting {
                step: "restore".into(),
                title: "Restore the backup".into(),
                question: "confirm",
                asking: "a confirmation to run it".into(),
                waited: Duration::from_millis(900_400),
            },
        };
        let body: Value = serde_json::from_slice(&waiting.body(NotifyKind::Webhook)).unwrap();
        assert_eq!((body["event"].as_str(), body["question"].as_str()), (Some("waiting"), Some("confirm")));
        assert_eq!(body["waited_secs"], 900);
        assert!(
            waiting.text().ends_with("step `restore` (Restore the backup) has waited 15m for a confirmation to run it")
        );
    }

    #[test]
    fn a_failed_upload_is_said_so() {
        let mut what = finished();
        if let What::Finished { uploaded, reason, outcome, .. } = &mut what {
            *uploaded = Some(false);
            *reason = Some("step `restore` failed: exit code 3".into());
            *outcome = "failed".into();
        }
        let text = Notification { drill: drill(false), what }.text();
        assert!(text.contains(" failed (step `restore` failed: exit code 3).\n"), "{text}");
        assert!(text.ends_with("; the upload to s3://acme-drills/reports/20261207-0900-ab12/ failed"), "{text}");
    }
}
