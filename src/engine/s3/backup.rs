//! `s3-backup`: list every object under the prefix (paginated), keep those
//! matching the pattern, newest first by LastModified; download the chosen
//! one into the drill's `downloads/` and verify it. The listing is read
//! through the API, never by parsing a CLI's text output.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::download::{self, DownloadError, Downloaded, Progress};
use super::{ObjectInfo, S3Error, Store, StoreConfig};
use crate::drill::evidence::{BackupChoice, Evidence, human_bytes};
use crate::engine::render::RenderError;
use crate::engine::{EngineEvent, OutputStream};
use crate::runbook::duration::format_duration;
use crate::runbook::template::{CaptureValue, TemplateContext, Templater};
use crate::runbook::{BackupSelect, S3BackupSpec, parse_point_in_time};

/// An `s3-backup` step with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStep {
    pub bucket: String,
    pub prefix: String,
    pub pattern: Option<String>,
    pub versions: bool,
    pub policy: Policy,
    pub parts: Option<u32>,
    pub store: StoreConfig,
}

impl BackupStep {
    pub fn render(
        spec: &S3BackupSpec,
        context: &TemplateContext,
        templater: &Templater,
    ) -> Result<BackupStep, RenderError> {
        let render = |t: &crate::runbook::Template, what: &str| {
            templater.render_plain(&t.text, context).map_err(RenderError::at(what))
        };
        let optional =
            |t: &Option<crate::runbook::Template>, what: &str| t.as_ref().map(|t| render(t, what)).transpose();
        let pattern = optional(&spec.pattern, "pattern")?;
        if let Some(pattern) = &pattern {
            regex::Regex::new(pattern).map_err(RenderError::Pattern)?;
        }
        let policy = match &spec.select {
            BackupSelect::Latest => Policy::Latest,
            BackupSelect::Choose => Policy::Choose,
            BackupSelect::Random { window } => Policy::Random { window: *window },
            BackupSelect::Before(at) => {
                let text = render(at, "before")?;
                let at = parse_point_in_time(&text).map_err(RenderError::PointInTime)?;
                Policy::Before(at)
            }
        };
        Ok(BackupStep {
            bucket: render(&spec.bucket, "bucket")?,
            prefix: optional(&spec.prefix, "prefix")?.unwrap_or_default(),
            pattern,
            versions: spec.versions,
            policy,
            parts: spec.parts,
            store: StoreConfig {
                endpoint: optional(&spec.endpoint, "endpoint")?,
                profile: optional(&spec.profile, "profile")?,
                region: optional(&spec.region, "region")?,
            },
        })
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Which backup the step restores (the runbook's `select`, rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    Latest,
    Choose,
    Random { window: std::time::Duration },
    Before(Timestamp),
}

impl Policy {
    /// As journaled with the choice.
    pub fn describe(&self) -> String {
        match self {
            Policy::Latest => "latest".into(),
            Policy::Choose => "chosen by the operator".into(),
            Policy::Random { window } => format!("random within {}", format_duration(*window)),
            Policy::Before(at) => format!("newest at or before {at}"),
        }
    }
}

/// The object the policy picks from `objects` (newest first), and why;
/// `Err` says why none qualifies. `Random` is reproducible: the same drill
/// id picks the same backup from the same listing.
pub fn pick(
    policy: &Policy,
    objects: &[ObjectInfo],
    drill_id: &str,
    now: Timestamp,
) -> Result<(ObjectInfo, String), String> {
    match policy {
        Policy::Latest | Policy::Choose => {
            let newest = objects.first().ok_or("no backup listed")?;
            Ok((newest.clone(), format!("the newest of {} backups", objects.len())))
        }
        Policy::Random { window } => {
            let since = now - jiff::SignedDuration::try_from(*window).unwrap_or(jiff::SignedDuration::MAX);
            let within: Vec<&ObjectInfo> = objects.iter().filter(|o| o.last_modified >= since).collect();
            if within.is_empty() {
                return Err(format!(
                    "no backup was modified within {} of now ({since} or later)",
                    format_duration(*window)
                ));
            }
            use sha2::Digest;
            let digest = sha2::Sha256::digest(drill_id.as_bytes());
            let seed = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default());
            let index = (seed % within.len() as u64) as usize;
            let object = within[index];
            Ok((
                object.clone(),
                format!(
                    "number {} (newest first) of the {} backups modified since {since}, picked from the drill id",
                    index + 1,
                    within.len()
                ),
            ))
        }
        Policy::Before(at) => {
            let object = objects
                .iter()
                .find(|o| o.last_modified <= *at)
                .ok_or_else(|| format!("no backup was modified at or before {at}"))?;
            let newer = objects.iter().filter(|o| o.last_modified > *at).count();
            Ok((object.clone(), format!("the newest at or before {at}; {newer} newer backup(s) passed over")))
        }
    }
}

/// Every matching object (and older versions when asked), newest first.
pub async fn candidates(store: &Store, step: &BackupStep) -> Result<Vec<ObjectInfo>, S3Error> {
    let pattern = match &step.pattern {
        Some(pattern) => Some(regex::Regex::new(pattern).map_err(|e| S3Error::Other(e.to_string()))?),
        None => None,
    };
    let mut objects: Vec<ObjectInfo> = store
        .list(&step.bucket, &step.prefix, step.versions)
        .await?
        .into_iter()
        .filter(|o| !o.key.ends_with('/'))
        .filter(|o| pattern.as_ref().is_none_or(|p| p.is_match(&o.key)))
        .collect();
    objects.sort_by(|a, b| b.last_modified.cmp(&a.last_modified).then_with(|| b.is_latest.cmp(&a.is_latest)));
    if objects.is_empty() {
        let matching = step.pattern.as_ref().map(|p| format!(" matching {p}")).unwrap_or_default();
        return Err(S3Error::Other(format!("no backup under {}{matching}", step.location())));
    }
    Ok(objects)
}

/// How many ranged parts to use: one stream for custom endpoints (moto and
/// most S3-compatible servers serve ranges slowly), 8 on AWS for objects
/// big enough to split; `parts = N` in the runbook wins.
pub fn parts_for(store: &Store, step: &BackupStep, size: u64) -> u32 {
    match step.parts {
        Some(parts) => parts.max(1),
        None if store.is_custom_endpoint() || size < (64 << 20) => 1,
        None => 8,
    }
}

/// The object a decision picked, as journaled, with the policy that picked it and why.
pub fn choice(object: &ObjectInfo, policy: &Policy, reason: Option<String>) -> Evidence {
    Evidence::Backup(BackupChoice {
        key: object.key.clone(),
        version_id: object.version_id.clone(),
        size: object.size,
        last_modified: object.last_modified.to_string(),
        etag: object.etag.clone(),
        policy: Some(policy.describe()),
        reason,
    })
}

/// The object a journaled choice names, if it is still listed.
pub fn find_choice<'a>(objects: &'a [ObjectInfo], choice: &Evidence) -> Option<&'a ObjectInfo> {
    let Evidence::Backup(choice) = choice else { return None };
    objects.iter().find(|o| o.key == choice.key && o.version_id == choice.version_id)
}

/// Downloads and verifies `object` into `downloads`, telling the log how
/// it goes; returns the capture (`{{ backup }}` is the local path).
pub async fn fetch(
    store: &Store,
    step: &BackupStep,
    object: &ObjectInfo,
    downloads: &Path,
    step_id: &str,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
) -> Result<(Downloaded, CaptureValue), DownloadError> {
    let say = |line: String| {
        let events = events.clone();
        let step_id = step_id.to_string();
        async move {
            let _ = events
                .send(EngineEvent::Output { step_id, stream: OutputStream::Stdout, lines: vec![line].into() })
                .await;
        }
    };
    let head = store.head(&step.bucket, &object.key, object.version_id.as_deref()).await?;
    let parts = parts_for(store, step, head.size);
    let name = object.key.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("backup");
    // One directory per step: two steps may fetch objects with the same name.
    let dest = downloads.join(step_id).join(name);
    let version = object.version_id.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default();
    say(format!(
        "downloading s3://{}/{}{version}: {} from {}",
        step.bucket,
        object.key,
        human_bytes(head.size),
        store.endpoint()
    ))
    .await;
    say(format!(
        "strategy: {} ({})",
        if parts == 1 { "one stream".to_string() } else { format!("{parts} concurrent ranged parts") },
        if step.parts.is_some() {
            "parts set by the runbook"
        } else if store.is_custom_endpoint() {
            "custom endpoint"
        } else {
            "AWS"
        }
    ))
    .await;
    let target = download::Target {
        bucket: step.bucket.clone(),
        key: object.key.clone(),
        version_id: object.version_id.clone(),
        head,
    };
    let options = download::Options { dest, parts, attempts: 8 };
    let progress_events = events.clone();
    let progress_step = step_id.to_string();
    let progress = move |progress: Progress| {
        let message = match progress {
            Progress::Bytes { done, total, bytes_per_sec } => {
                let eta =
                    if bytes_per_sec > 0.0 { ((total - done.min(total)) as f64 / bytes_per_sec) as u64 } else { 0 };
                format!(
                    "{:>3}% {} of {} · {}/s · ETA {}",
                    (done * 100).checked_div(total).unwrap_or(100),
                    human_bytes(done),
                    human_bytes(total),
                    human_bytes(bytes_per_sec as u64),
                    format_duration(std::time::Duration::from_secs(eta))
                )
            }
            Progress::Retrying { attempt, of, reason } => format!("retrying (attempt {attempt} of {of}): {reason}"),
            Progress::Resuming { from } => format!("resuming: {} already on disk", human_bytes(from)),
            Progress::Verifying => "verifying…".to_string(),
        };
        let _ = progress_events.try_send(EngineEvent::Progress { step_id: progress_step.clone(), message });
    };
    let downloaded = download::download(store, &target, &options, &progress, cancel).await?;
    say(format!("verified: {}; sha256 {}", downloaded.checks.join(", "), downloaded.sha256)).await;
    say(format!("saved to {}", downloaded.path.display())).await;
    let age = Timestamp::now().duration_since(object.last_modified).as_secs().max(0) as u64;
    let mut fields = BTreeMap::new();
    let mut put = |name: &str, value: serde_json::Value| {
        fields.insert(name.to_string(), value);
    };
    put("key", object.key.clone().into());
    put("version_id", object.version_id.clone().map_or(serde_json::Value::Null, Into::into));
    put("path", downloaded.path.display().to_string().into());
    put("size", downloaded.size.into());
    put("last_modified", object.last_modified.to_string().into());
    put("age", format_duration(std::time::Duration::from_secs(age)).into());
    put("age_secs", age.into());
    put("sha256", downloaded.sha256.clone().into());
    put("bucket", step.bucket.clone().into());
    put("endpoint", store.endpoint().into());
    put("verified", downloaded.checks.join(", ").into());
    put("strategy", downloaded.strategy.clone().into());
    let capture = CaptureValue { value: downloaded.path.display().to_string(), fields };
    Ok((downloaded, capture))
}

/// Rows for a picker or a plain-mode list: key, size, last modified, age, version.
pub fn describe(object: &ObjectInfo, now: Timestamp) -> [String; 5] {
    let age = now.duration_since(object.last_modified).as_secs().max(0) as u64;
    [
        object.key.clone(),
        human_bytes(object.size),
        object.last_modified.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        format_duration(std::time::Duration::from_secs(age)),
        match (&object.version_id, object.is_latest) {
            (Some(v), true) => format!("{v} (current)"),
            (Some(v), false) => v.clone(),
            (None, _) => "-".into(),
        },
    ]
}
