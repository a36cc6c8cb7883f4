//! `k8s-isolation`: read DR's and production's namespaces, compare them,
//! journal what was compared and every finding (never a value), then fail
//! the step on a finding that must fail it. Read-only: nothing to confirm.

use std::time::{Duration, Instant};

use super::super::{Conductor, Halt};
use crate::drill::event::Event;
use crate::drill::evidence::Evidence;
use crate::engine::k8s::isolation::{self, IsolationError, IsolationStep};
use crate::engine::k8s::{self};
use crate::runbook::{K8sIsolationSpec, Step};

/// Two namespaces' objects, one list per kind: a minute is generous.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Conductor {
    pub(in crate::drive) async fn k8s_isolation(
        &mut self,
        index: usize,
        step: &Step,
        spec: &K8sIsolationSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let mut rendered = match IsolationStep::render(spec, &self.session.template_context(), self.session.templater())
        {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        rendered.dr.context = self.cluster_context(rendered.dr.context);
        rendered.production.context = self.cluster_context(rendered.production.context);
        let (attempt, mut log) = self.start_logged(step, rendered.describe()).await?;
        let timeout = spec.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let checked = async {
            let connect = |context: Option<String>, side: &'static str| async move {
                k8s::connect(context.as_deref())
                    .await
                    .map_err(|source| IsolationError::Cluster { side, source: Box::new(source) })
            };
            let dr = connect(rendered.dr.context.clone(), "DR").await?;
            let production = if rendered.production.context == rendered.dr.context {
                dr.clone()
            } else {
                connect(rendered.production.context.clone(), "production").await?
            };
            isolation::run(&rendered, dr.as_ref(), production.as_ref()).await
        };
        let checked = async {
            tokio::time::timeout(timeout, checked).await.unwrap_or_else(|_| {
                Err(IsolationError::Cluster {
                    side: "DR or production",
                    source: Box::new(k8s::K8sError::Other(format!(
                        "the namespaces were not read within {} s",
                        timeout.as_secs()
                    ))),
                })
            })
        };
        let result = match self.hearing(checked).await? {
            Some(Ok(result)) => result,
            Some(Err(error)) => return self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
            None => return self.cut_short(step, attempt, began, &mut log).await,
        };
        self.say(index, &mut log, result.lines()).await;
        let failures: Vec<String> = result.failures().map(|f| format!("{}: {}", f.subject, f.finding)).collect();
        // What was compared and found first, whatever the verdict.
        self.record(Event::Evidence { step: step.id.clone(), evidence: Evidence::Isolation(Box::new(result)) }).await?;
        let failure = match failures.as_slice() {
            [] => None,
            [one] => Some(format!("1 isolation finding: {one}")),
            [first, ..] => Some(format!("{} isolation findings, the first: {first}", failures.len())),
        };
        self.end_logged(step, attempt, began, &mut log, failure).await
    }
}
