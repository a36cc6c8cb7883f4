//! What the team hears of a drill while it runs: the conductor's side of
//! [`crate::engine::notify`]. The targets come from the configuration
//! (`[[notify]]`); the conductor hands each notification over and goes on
//! (delivery happens in the background and never blocks or fails a step).
//! A notification that could not be delivered comes back as
//! [`Internal::NotificationFailed`] and is journaled here, by the
//! conductor, which alone writes the journal. At the end the drill waits
//! up to [`SETTLE`] for what is still on its way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::protocol::{PickWhat, Question};
use super::{Conductor, Halt, Internal};
use crate::config::{Config, NotifyKind};
use crate::drill::event::{AttemptResult, Event};
use crate::drill::journal::Record;
use crate::drill::state::DrillState;
use crate::engine::notify::{
    Delivery, DeliveryFailure, DrillInfo, Notification, Notifier, ObjectiveLine, Target, What,
};
use crate::report::{Objective, Report};

/// The longest the end of a drill waits for its notifications to go out:
/// enough for the last one to a server that answers, never long enough for
/// a hanging one to keep drillbook from exiting.
const SETTLE: Duration = Duration::from_secs(5);

/// The conductor's notifier, and what it needs to say.
pub(super) struct Notifications {
    /// `None`: no target is configured (or none can be notified).
    notifier: Option<Notifier>,
    drill: Arc<DrillInfo>,
    /// The open question and what its targets hear if it waits too long.
    question: Option<(u64, Notification)>,
    /// Targets that cannot be notified, said when the drill opens.
    warnings: Vec<String>,
}

impl Notifications {
    /// Reads the targets from the configuration and starts the notifier;
    /// what it cannot deliver is sent to the conductor on `internal`.
    pub(super) fn start(state: &DrillState, internal: mpsc::UnboundedSender<Internal>) -> Self {
        let drill = Arc::new(DrillInfo {
            drill_id: state.drill_id.clone(),
            runbook_id: state.runbook_id.clone(),
            runbook_title: state.runbook_title.clone(),
            project: state.project.clone(),
            operator: state.operator.clone(),
            training: state.training,
        });
        let (targets, warnings) = configured_targets();
        let notifier = (!targets.is_empty()).then(|| {
            let on_failure = Arc::new(move |failure| {
                // A conductor that is gone journals nothing more anyway.
                let _ = internal.send(Internal::NotificationFailed(failure));
            });
            Notifier::start(targets, Delivery::default(), on_failure)
        });
        Notifications { notifier, drill, question: None, warnings }
    }

    /// Why some configured targets will hear nothing (said once, on opening).
    pub(super) fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// The targets of `[[notify]]`, and a line for each one that cannot be used.
fn configured_targets() -> (Vec<Target>, Vec<String>) {
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => return (Vec::new(), vec![format!("notifications are off: configuration: {error}")]),
    };
    let (mut targets, mut warnings) = (Vec::new(), Vec::new());
    for target in config.notify {
        let kind = match target.kind {
            NotifyKind::Slack => "slack",
            NotifyKind::Webhook => "webhook",
        };
        let Some(url) = &target.url else {
            warnings.push(format!("notify: {} is unset, so that {kind} target hears nothing", target.url_from));
            continue;
        };
        let waiting = waiting_override().unwrap_or(Duration::from_secs(target.waiting_minutes.saturating_mul(60)));
        match Target::new(target.kind, url, waiting) {
            Ok(target) => targets.push(target),
            Err(error) => warnings.push(format!("notify: {error} (from {}); it hears nothing", target.url_from)),
        }
    }
    (targets, warnings)
}

/// Debug builds only: `DRILLBOOK_DEBUG_NOTIFY_WAITING_SECS=N` replaces every
/// target's `waiting_minutes` with N seconds, so tests of the "waiting"
/// notification need not wait minutes. Release builds never read it.
#[cfg(debug_assertions)]
fn waiting_override() -> Option<Duration> {
    let seconds = std::env::var("DRILLBOOK_DEBUG_NOTIFY_WAITING_SECS").ok()?;
    seconds.trim().parse().ok().map(Duration::from_secs)
}

#[cfg(not(debug_assertions))]
fn waiting_override() -> Option<Duration> {
    None
}

impl Conductor {
    fn notify(&self, what: What) {
        if let Some(notifier) = &self.notifications.notifier {
            notifier.send(Notification { drill: self.notifications.drill.clone(), what });
        }
    }

    /// A new drill started (a resumed one started before).
    pub(super) fn notify_started(&self) {
        self.notify(What::Started);
    }

    /// Tells the team what was just journaled that they should hear of: a
    /// failed attempt (whatever the drill does next about it).
    pub(super) fn notify_journaled(&self, records: &[Record<Event>]) {
        for record in records {
            let Event::StepFinished { step, attempt, result, reason, .. } = &record.event else { continue };
            if *result == AttemptResult::Succeeded {
                continue;
            }
            let title = self.session.runbook.step(step).map(|s| s.title.clone()).unwrap_or_default();
            // Reasons are journaled with secrets already masked.
            let reason = reason.clone().unwrap_or_else(|| format!("{result:?}").to_lowercase());
            self.notify(What::StepFailed { step: step.clone(), title, attempt: *attempt, reason });
        }
    }

    /// Question `id` was asked: remembered, so that its waiting clock can start.
    pub(super) fn notify_question(&mut self, id: u64, question: &Question) {
        if self.notifications.notifier.is_none() {
            return;
        }
        let Some(step) = self.session.runbook.steps.get(question.step()) else { return };
        let (kind, asking) = match question {
            Question::Confirm { typed: Some(text), .. } => ("confirm", format!("`{text}` to be typed to run it")),
            Question::Confirm { .. } => ("confirm", "a confirmation to run it".to_string()),
            Question::Pick { what: PickWhat::Backup, .. } => ("pick", "the backup to restore to be chosen".into()),
            Question::Pick { what: PickWhat::Tag, .. } => ("pick", "the tag to deploy to be chosen".into()),
            Question::Manual { .. } => ("manual", "the manual step to be done".into()),
            Question::Checklist { .. } => ("checklist", "its checklist to be finished".into()),
            Question::Interrupted { .. } => ("interrupted", "a decision: it was interrupted".into()),
            Question::Failed { .. } => ("failed", "a decision: it failed (retry, skip or abort)".into()),
        };
        let what = What::Waiting {
            step: step.id.clone(),
            title: step.title.clone(),
            question: kind,
            asking,
            waited: Duration::ZERO,
        };
        self.notifications.question = Some((id, Notification { drill: self.notifications.drill.clone(), what }));
    }

    /// The conductor waits for an answer to question `id` from now on.
    pub(super) fn notify_waiting(&self, id: u64) {
        if let (Some(notifier), Some((open, notification))) =
            (&self.notifications.notifier, &self.notifications.question)
            && *open == id
        {
            notifier.waiting(id, notification.clone());
        }
    }

    /// Question `id` got an answer (a checklist's may be one tick of many).
    pub(super) fn notify_answered(&self, id: u64) {
        if let Some(notifier) = &self.notifications.notifier {
            notifier.answered(id);
        }
    }

    /// The end of the drill, as its report has it; sent by [`Self::notify_finished`].
    pub(super) fn finished_notification(&self, report: &Report) -> What {
        let line = |key, label, objective: &Objective| ObjectiveLine {
            key,
            label,
            achieved_secs: objective.achieved_secs,
            target_secs: objective.target_secs,
            verdict: objective.verdict.clone(),
        };
        let mut objectives = vec![line("rto", "RTO", &report.rto), line("rpo", "RPO", &report.rpo)];
        objectives.extend(report.rpo_data.as_ref().map(|o| line("rpo_data", "RPO by data", o)));
        let report_to = self
            .options
            .report_to
            .as_ref()
            .map(|to| format!("s3://{}/{}{}/", to.bucket, to.prefix, self.session.dir.id));
        What::Finished {
            outcome: report.outcome.clone(),
            reason: report.outcome_reason.clone(),
            objectives,
            reports_dir: self.session.dir.path.display().to_string(),
            report_to,
            uploaded: None,
        }
    }

    /// Sends the end of the drill; `uploaded`: how `--report-to` went.
    pub(super) fn notify_finished(&self, mut finished: What, uploaded: Option<bool>) {
        if let What::Finished { uploaded: how, .. } = &mut finished {
            *how = uploaded;
        }
        self.notify(finished);
    }

    /// Journals a notification that was not delivered, and says so.
    pub(super) async fn notification_failed(&mut self, failure: DeliveryFailure) -> Result<(), Halt> {
        let DeliveryFailure { target, what, error } = failure;
        self.notice(format!("  notification `{what}` to {target} failed: {error}")).await;
        self.record(Event::NotificationFailed { target, what: what.to_string(), error }).await
    }

    /// The drill is over (ended or paused): what is still being sent gets up
    /// to [`SETTLE`] to go out, then what failed or is still on its way is
    /// journaled, and the reports are written again to end with it.
    pub(super) async fn settle_notifications(&mut self) {
        let Some(notifier) = self.notifications.notifier.clone() else { return };
        let undelivered = notifier.settle(SETTLE).await;
        let mut failures = Vec::new();
        // Failures are sent before the notifier reports its queues empty, so
        // all of them are here now; anything else heard (a pod's log, a late
        // signal) no longer matters: the drill is over.
        while let Ok(internal) = self.internal.try_recv() {
            if let Internal::NotificationFailed(failure) = internal {
                failures.push(failure);
            }
        }
        failures.extend(undelivered);
        if failures.is_empty() {
            return;
        }
        for failure in failures {
            // A journal that cannot be written was already said to stop the drill.
            let _ = self.notification_failed(failure).await;
        }
        if self.session.state.finished.is_some()
            && let Err(error) = self.session.write_reports()
        {
            self.notice(format!("error: could not rewrite the reports: {error}")).await;
        }
    }
}
