//! Plain mode for `http-check`: one line per attempt, the certificate's
//! expiry, and the result journaled for the report (and the capture).

use std::time::Instant;

use tokio::sync::mpsc;

use super::{Driver, Halt};
use crate::drill::event::Event;
use crate::engine::EngineEvent;
use crate::engine::http::{self, HttpCheckStep, HttpError};
use crate::runbook::{HttpCheckSpec, Step};

impl Driver {
    pub(super) async fn http_check(&mut self, step: &Step, spec: &HttpCheckSpec) -> Result<(), Halt> {
        let rendered = match HttpCheckStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, reason),
        };
        let started = Instant::now();
        let (attempt, mut log) = self.start_logged(step, rendered.describe())?;
        let (sender, mut events) = mpsc::channel(64);
        let cancel = self.stop.child_token();
        let (task_step, id) = (rendered.clone(), step.id.clone());
        let task = tokio::spawn(async move { http::run(&task_step, &id, &sender, &cancel).await });
        while let Some(event) = events.recv().await {
            // Progress repeats the attempt lines: a line-oriented log needs them once.
            if let EngineEvent::Output { stream, lines, .. } = event {
                for line in &lines {
                    log.line(line);
                }
                self.out.output(stream, &lines);
            }
        }
        let result = task.await.map_err(|e| Halt::Stopped(format!("internal error in the step runner: {e}")))?;
        match result {
            Ok(outcome) => {
                self.session
                    .record(Event::Chosen { step: step.id.clone(), choice: outcome.choice_json(&rendered.url) })?;
                if let Some(name) = &step.capture {
                    self.session.record(Event::CaptureSet {
                        step: step.id.clone(),
                        name: name.clone(),
                        value: outcome.capture(&rendered.url),
                    })?;
                    self.out.line(&format!("  captured {name} = {}", outcome.status));
                }
                self.end_logged(step, attempt, started, None)
            }
            Err(HttpError::Cancelled) if self.stop.is_cancelled() => {
                log.line(&format!("stopped by {}; `drillbook resume` checks again", self.stop_reason()));
                self.stopped_attempt(step, attempt)
            }
            Err(error) => {
                log.line(&error.to_string());
                self.end_logged(step, attempt, started, Some(error.to_string()))
            }
        }
    }
}
