//! `dns-check`: the DR site's name is asked of DNS (in training, of the
//! sandbox), the whole answer and the certificate served for the name are
//! journaled as evidence whatever the verdict, then the step fails with
//! one line if the answer is not what the runbook expects.

use std::time::Instant;

use tokio::sync::mpsc;

use super::super::{Conductor, Halt};
use crate::drill::event::Event;
use crate::engine::dns::{self, DnsCheckStep, DnsError};
use crate::runbook::{DnsCheckSpec, Step};

impl Conductor {
    pub(in crate::drive) async fn dns_check(
        &mut self,
        index: usize,
        step: &Step,
        spec: &DnsCheckSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let rendered = match DnsCheckStep::render(spec, &self.session.template_context(), self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        let training = self.session.state.training;
        let describe = if training {
            format!("{} (training: the sandbox answers)", rendered.describe())
        } else {
            rendered.describe()
        };
        let (attempt, mut log) = self.start_logged(step, describe).await?;
        let (sender, events) = mpsc::channel(64);
        let (cancel, id) = (self.attempt_token(), step.id.clone());
        let task = tokio::spawn(async move {
            if training {
                Ok(dns::sandbox::run(&rendered, &id, &sender).await)
            } else {
                dns::run(&rendered, &id, &sender, &cancel).await
            }
        });
        match self.follow(index, Some(&mut log), false, events, task).await? {
            Ok(outcome) => {
                // The answer first, whatever the verdict: what DNS said is kept.
                self.record(Event::Evidence { step: step.id.clone(), evidence: outcome.evidence() }).await?;
                self.end_logged(step, attempt, began, &mut log, outcome.failure).await
            }
            Err(DnsError::Cancelled) if self.leaving.is_some() => {
                self.say(index, &mut log, vec!["`drillbook resume` asks again".into()]).await;
                self.interrupted(step, attempt, None).await
            }
            Err(error) => self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
        }
    }
}
