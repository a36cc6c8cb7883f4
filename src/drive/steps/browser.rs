//! `browser-check`: drive a headless Chromium through the step's actions
//! (in training, against drillbook's sandbox site on 127.0.0.1 instead of
//! the runbook's URL), journaling each action's result as evidence and each
//! screenshot as a `file_attached` the moment it is on disk, then fail the
//! step if an action did.

use std::time::Instant;

use tokio::sync::mpsc;

use super::super::{Conductor, Halt};
use crate::engine::browser::site::{Site, SiteOptions};
use crate::engine::browser::{self, BrowserError, BrowserStep, StepPlace};
use crate::runbook::{BrowserCheckSpec, Step};

impl Conductor {
    pub(in crate::drive) async fn browser_check(
        &mut self,
        index: usize,
        step: &Step,
        spec: &BrowserCheckSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let training = self.session.state.training;
        // Training drives the sandbox site, served for this attempt only.
        let site = if training {
            match Site::start(SiteOptions::default()).await {
                Ok(site) => Some(site),
                Err(error) => {
                    let reason = format!("cannot serve the training sandbox site on 127.0.0.1: {error}");
                    return self.fail_without_running(step, began, reason).await;
                }
            }
        } else {
            None
        };
        let sandbox = site.as_ref().map(Site::url);
        let rendered = match BrowserStep::render(
            spec,
            &self.session.template_context(),
            self.session.templater(),
            sandbox.as_deref(),
        ) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        let describe = if training {
            format!("{} (training: the sandbox site, not {})", rendered.describe(), self.rendered_url(spec))
        } else {
            rendered.describe()
        };
        let (attempt, mut log) = self.start_logged(step, describe).await?;
        let (sender, events) = mpsc::channel(64);
        let (cancel, id, dir) = (self.attempt_token(), step.id.clone(), self.session.dir.path.clone());
        let task = tokio::spawn(async move {
            let place = StepPlace { step_id: &id, attempt, drill_dir: &dir };
            browser::run(&rendered, &place, &sender, &cancel).await
        });
        let outcome = self.follow(index, Some(&mut log), false, events, task).await?;
        drop(site);
        match outcome {
            // The evidence and the screenshots were journaled as they came.
            Ok(outcome) => self.end_logged(step, attempt, began, &mut log, outcome.failure).await,
            Err(BrowserError::Cancelled) if self.leaving.is_some() => {
                self.say(index, &mut log, vec!["`drillbook resume` runs the actions again".into()]).await;
                self.interrupted(step, attempt, None).await
            }
            Err(error) => self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
        }
    }

    /// The runbook's base URL, rendered (what training does not visit).
    fn rendered_url(&self, spec: &BrowserCheckSpec) -> String {
        let context = self.session.template_context();
        self.session.templater().render_plain(&spec.url.text, &context).unwrap_or_else(|_| spec.url.text.clone())
    }
}
