//! The TUI runtime's `http-check`: the check runs in a task, its attempt
//! lines go to the step's log, and the result is journaled for the report.

use tokio_util::sync::CancellationToken;

use super::{Incoming, Runtime};
use crate::drill::event::Event;
use crate::engine::http::{self, HttpCheckStep, HttpError, HttpOutcome};
use crate::engine::steps;
use crate::runbook::Action;
use crate::ui::app::{App, Effect, Msg};
use crate::ui::update::update;

impl Runtime {
    /// `RunHttp`: journals the start and runs the check in a task. Answers
    /// with `EffectDone` (or `EffectFailed`) on every path.
    pub(super) fn run_http(&mut self, app: &mut App, step: usize) -> Vec<Effect> {
        let Some(session) = self.session.as_mut() else { return update(app, Msg::EffectFailed("no drill".into())) };
        let Some(runbook_step) = session.runbook.steps.get(step).cloned() else {
            return update(app, Msg::EffectFailed(format!("no step #{step}")));
        };
        let Action::HttpCheck(spec) = &runbook_step.action else {
            return update(app, Msg::EffectFailed(format!("step `{}` is not an http-check", runbook_step.id)));
        };
        let rendered = match HttpCheckStep::render(spec, &session.template_context(), session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_unstarted(app, step, reason),
        };
        let attempt = steps::next_attempt(session, &runbook_step);
        let description = rendered.describe();
        let cancel = CancellationToken::new();
        self.running = Some(cancel.clone());
        let tx = self.tx.clone();
        let id = runbook_step.id.clone();
        let task = Box::pin(async move {
            let (events, forward) = super::k8s::forward_events(tx.clone(), step);
            let result =
                http::run(&rendered, &id, &events, &cancel).await.map(|outcome| (rendered.url.clone(), outcome));
            drop(events);
            let _ = forward.await;
            let _ = tx.send(Incoming::HttpDone { step, attempt, result }).await;
        });
        self.start_task(app, step, attempt, description, task)
    }

    pub(super) async fn http_done(
        &mut self,
        app: &mut App,
        step: usize,
        attempt: u32,
        result: Result<(String, HttpOutcome), HttpError>,
    ) {
        self.running = None;
        let outcome = match result {
            Ok((url, outcome)) => {
                if let Some(session) = self.session.as_mut() {
                    let runbook_step = session.runbook.steps[step].clone();
                    let mut recorded = session
                        .record(Event::Chosen { step: runbook_step.id.clone(), choice: outcome.choice_json(&url) });
                    if recorded.is_ok()
                        && let Some(name) = &runbook_step.capture
                    {
                        recorded = session.record(Event::CaptureSet {
                            step: runbook_step.id.clone(),
                            name: name.clone(),
                            value: outcome.capture(&url),
                        });
                    }
                    if let Err(error) = recorded {
                        let _ = update(app, Msg::EffectFailed(error.to_string()));
                    }
                }
                Ok(())
            }
            Err(HttpError::Cancelled) if self.quit_after_command.is_some() => {
                self.log_line(step, "stopped; `drillbook resume` checks again");
                Err(None)
            }
            Err(error) => {
                self.log_line(step, &error.to_string());
                Err(Some(error.to_string()))
            }
        };
        self.end_s3(app, step, attempt, outcome).await;
    }
}
