//! S3 steps. `s3-backup`: list the backups, continue with the object an
//! interrupted attempt chose or pick one (the newest, or the operator's
//! choice), journal the choice before downloading, download and verify,
//! capture. `s3-check`: the bucket's settings against the runbook's, an
//! identity's permissions by probe, a replica's completeness.

use std::time::Instant;

use tokio::sync::mpsc;

use super::super::protocol::{Answer, PickRow, PickWhat, Question};
use super::super::{Conductor, Halt};
use crate::drill::event::Event;
use crate::drill::evidence::{BucketResult, Evidence};
use crate::engine::s3::download::DownloadError;
use crate::engine::s3::{ObjectInfo, Store, backup, check, probe, replica};
use crate::runbook::{S3BackupSpec, S3CheckSpec, Step};

/// Backups listed in the step's log before the choice.
const LISTED: usize = 10;

impl Conductor {
    pub(in crate::drive) async fn s3_backup(
        &mut self,
        index: usize,
        step: &Step,
        spec: &S3BackupSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let context = self.session.template_context();
        let mut rendered = match backup::BackupStep::render(spec, &context, self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        // Training reads the sandbox bucket, whatever the endpoint.
        rendered.store.endpoint = self.session.s3_endpoint_override().or(rendered.store.endpoint);
        let (attempt, mut log) = self.start_logged(step, format!("s3-backup {}", rendered.location())).await?;
        let listed = async {
            let store = Store::connect(&rendered.store).await?;
            let objects = backup::candidates(&store, &rendered).await?;
            Ok::<_, crate::engine::s3::S3Error>((store, objects))
        };
        let (store, objects) = match self.hearing(listed).await? {
            Some(Ok(listed)) => listed,
            Some(Err(error)) => return self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
            None => return self.cut_short(step, attempt, began, &mut log).await,
        };
        let now = jiff::Timestamp::now();
        let mut lines =
            vec![format!("found {} backups under {} on {}", objects.len(), rendered.location(), store.endpoint())];
        for (number, object) in objects.iter().take(LISTED).enumerate() {
            let [key, size, modified, age, version] = backup::describe(object, now);
            lines.push(format!("{:>2}. {key}  {size}  {modified}  ({age} old)  {version}", number + 1));
        }
        if objects.len() > LISTED {
            lines.push(format!("    … and {} more", objects.len() - LISTED));
        }
        self.say(index, &mut log, lines).await;
        let previous = self.chosen_before(step, attempt, |choice| backup::find_choice(&objects, choice));
        let policy = &rendered.policy;
        let chosen = match previous {
            Some(previous) => {
                self.say(index, &mut log, vec![format!("continuing with the backup chosen before: {}", previous.key)])
                    .await;
                Some((previous, "chosen by an earlier attempt of this step".to_string()))
            }
            None if *policy == backup::Policy::Choose => {
                self.pick_backup(index, &objects, now).await?.map(|o| (o, "picked by the operator".to_string()))
            }
            None => match backup::pick(policy, &objects, &self.session.dir.id, now) {
                Ok(picked) => Some(picked),
                Err(why) => {
                    let why = format!("restore target ({}): {why}", policy.describe());
                    return self.end_logged(step, attempt, began, &mut log, Some(why)).await;
                }
            },
        };
        let Some((chosen, reason)) = chosen else {
            return self.end_logged(step, attempt, began, &mut log, Some("no backup was chosen".into())).await;
        };
        self.say(index, &mut log, vec![format!("restore target ({}): {} — {reason}", policy.describe(), chosen.key)])
            .await;
        let evidence = backup::choice(&chosen, policy, Some(reason));
        self.record(Event::Evidence { step: step.id.clone(), evidence }).await?;
        let (sender, events) = mpsc::channel(64);
        let (cancel, downloads, id) = (self.attempt_token(), self.session.dir.downloads(), step.id.clone());
        let (task_rendered, task_object) = (rendered.clone(), chosen.clone());
        let task = tokio::spawn(async move {
            backup::fetch(&store, &task_rendered, &task_object, &downloads, &id, &sender, &cancel).await
        });
        match self.follow(index, Some(&mut log), true, events, task).await? {
            Ok((_, capture)) => {
                if let Some(name) = &step.capture {
                    let set = Event::CaptureSet { step: step.id.clone(), name: name.clone(), value: capture };
                    self.record(set).await?;
                }
                self.end_logged(step, attempt, began, &mut log, None).await
            }
            Err(DownloadError::Cancelled { done, total }) if self.leaving.is_some() => {
                let line = format!("interrupted at {done} of {total} bytes; `drillbook resume` continues from there");
                self.say(index, &mut log, vec![line]).await;
                self.interrupted(step, attempt, None).await
            }
            Err(error) => self.end_logged(step, attempt, began, &mut log, Some(error.to_string())).await,
        }
    }

    /// `select = "choose"`: the operator picks (the newest is the default).
    async fn pick_backup(
        &mut self,
        index: usize,
        objects: &[ObjectInfo],
        now: jiff::Timestamp,
    ) -> Result<Option<ObjectInfo>, Halt> {
        let rows = objects
            .iter()
            .enumerate()
            .map(|(number, object)| {
                let age = now.duration_since(object.last_modified).as_secs() as i128;
                PickRow {
                    cells: backup::describe(object, now).to_vec(),
                    sort: vec![0, object.size as i128, -age, age],
                    marked: number == 0,
                }
            })
            .collect();
        let question = Question::Pick { step: index, what: PickWhat::Backup, rows, default: Some(0) };
        loop {
            match self.decide(question.clone()).await?.0 {
                Answer::Pick(row) => match objects.get(row) {
                    Some(object) => return Ok(Some(object.clone())),
                    None => continue,
                },
                Answer::NoPick => return Ok(None),
                _ => continue,
            }
        }
    }

    pub(in crate::drive) async fn s3_check(
        &mut self,
        index: usize,
        step: &Step,
        spec: &S3CheckSpec,
        began: Instant,
    ) -> Result<(), Halt> {
        let context = self.session.template_context();
        let mut rendered = match check::CheckStep::render(spec, &context, self.session.templater()) {
            Ok(rendered) => rendered,
            Err(reason) => return self.fail_without_running(step, began, reason.to_string()).await,
        };
        rendered.store.endpoint = self.session.s3_endpoint_override().or(rendered.store.endpoint);
        let (attempt, mut log) = self.start_logged(step, format!("s3-check s3://{}", rendered.bucket)).await?;
        let drill_id = self.session.dir.id.clone();
        let checked = async {
            let store = Store::connect(&rendered.store).await?;
            let rows = check::settings(&store, &rendered).await?;
            let (probes, probes_left) = match &rendered.access {
                Some(access) => {
                    probe::run(&store, &rendered.store, &rendered.bucket, &rendered.prefix, &drill_id, access).await?
                }
                None => (Vec::new(), Vec::new()),
            };
            let replica = match &rendered.replica {
                Some(spec) => Some(
                    replica::compare(&store, &rendered.bucket, &rendered.prefix, spec, jiff::Timestamp::now()).await?,
                ),
                None => None,
            };
            Ok::<_, crate::engine::s3::S3Error>(BucketResult {
                bucket: rendered.bucket.clone(),
                rows,
                probes,
                probes_left,
                replica: replica.map(Box::new),
            })
        };
        let failure = match self.hearing(checked).await? {
            Some(Ok(result)) => {
                self.say(index, &mut log, result.lines()).await;
                let failure = check::failures(&result);
                self.record(Event::Evidence { step: step.id.clone(), evidence: Evidence::Bucket(result) }).await?;
                failure
            }
            Some(Err(error)) => Some(error.to_string()),
            None => return self.cut_short(step, attempt, began, &mut log).await,
        };
        self.end_logged(step, attempt, began, &mut log, failure).await
    }
}
