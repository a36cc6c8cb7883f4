//! `http-check`: the URL is asked (with retries) until it answers as
//! expected; each attempt is a line of the log, and the answer (status,
//! latency, the certificate's expiry) is journaled as evidence.

use std::time::Instant;

use tokio::sync::mpsc;

use super::super::{Conductor, Halt};
use crate::drill::event::Event;
use crate::engine::http::{self, HttpCheckStep, HttpError};
use crate::runbook::{HttpCheckSpec, Step};

impl Conductor {
    pub(in crate::drive) async fn http_check(
        &mut self,
        index: usize,
        step: &Step,
        spec: &HttpCheckSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let rendered = match HttpCheckStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        let (attempt, mut log) = self.start_logged(step, rendered.describe()).await?;
        let (sender, events) = mpsc::channel(64);
        let (cancel, id, task_step) = (self.attempt_token(), step.id.clone(), rendered.clone());
        let task = tokio::spawn(async move { http::run(&task_step, &id, &sender, &cancel).await });
        match self.follow(index, Some(&mut log), false, events, task).await? {
            Ok(outcome) => {
                let evidence = outcome.evidence(&rendered.url);
                self.record(Event::Evidence { step: step.id.clone(), evidence }).await?;
                if let Some(name) = &step.capture {
                    let value = outcome.capture(&rendered.url);
                    self.record(Event::CaptureSet { step: step.id.clone(), name: name.clone(), value }).await?;
                }
                self.end_logged(step, attempt, began, &mut log, None).await
            }
            Err(HttpError::Cancelled) if self.leaving.is_some() => {
                self.say(index, &mut log, vec!["`drillbook resume` checks again".into()]).await;
                self.interrupted(step, attempt, None).await
            }
            Err(error) => self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
        }
    }
}
