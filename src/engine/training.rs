//! Training mode: any runbook runs on sandbox backends. S3 steps read a
//! local directory bucket seeded with plausible backups, Kubernetes steps a
//! simulated cluster seeded with the namespaces the runbook names, and
//! command steps run their `simulate` script (or are shown, not run). The
//! sandbox lives in the drill's own directory, is created when the drill
//! starts (and again on resume if it went missing), and nothing leaves it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jiff::{Timestamp, ToSpan};

use super::k8s::sim::SimCluster;
use super::k8s::{K8sError, SANDBOX_PREFIX, WorkloadKind};
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{Action, Runbook, Template};

/// Pods of the sandbox cluster take this long to become Ready.
const READY_DELAY: Duration = Duration::from_secs(3);
/// Days of nightly backups in the sandbox bucket.
const NIGHTLY_BACKUPS: i64 = 7;
const BACKUP_SIZE: usize = 2 << 20;
/// Production runs this tag in the sandbox, rolled out over the older one;
/// DR starts on an older build.
pub const PRODUCTION_TAG: &str = "main-4f2a9c1";
const PREVIOUS_TAG: &str = "main-1d0e7b3";
const DR_TAG: &str = "main-0c3b2a1";

/// Why the sandbox could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("cannot seed the sandbox bucket {}: {source}", .dir.display())]
    SeedBucket {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The simulated cluster could not be created or seeded.
    #[error(transparent)]
    Cluster(#[from] K8sError),
}

/// The sandbox bucket's root (an `endpoint = "file://…"` store).
pub fn s3_dir(drill_dir: &Path) -> PathBuf {
    drill_dir.join("sandbox-s3")
}

/// The simulated cluster's directory.
pub fn cluster_dir(drill_dir: &Path) -> PathBuf {
    drill_dir.join("sandbox-cluster")
}

/// The context every Kubernetes step uses in training.
pub fn cluster_context(drill_dir: &Path) -> String {
    format!("{SANDBOX_PREFIX}{}", cluster_dir(drill_dir).display())
}

/// The endpoint every S3 step uses in training.
pub fn s3_endpoint(drill_dir: &Path) -> String {
    format!("file://{}", s3_dir(drill_dir).display())
}

/// Environment for command steps in training: `simulate` scripts drive the
/// sandbox with `"$DRILLBOOK" sandbox … "$DRILLBOOK_SANDBOX_CLUSTER"`.
pub fn command_env(drill_dir: &Path) -> Vec<(String, String)> {
    vec![
        ("DRILLBOOK_TRAINING".into(), "1".into()),
        ("DRILLBOOK_SANDBOX_CLUSTER".into(), cluster_dir(drill_dir).display().to_string()),
        ("DRILLBOOK_SANDBOX_S3".into(), s3_dir(drill_dir).display().to_string()),
    ]
}

/// Creates what is missing of the sandbox for `runbook`; returns what it did.
pub fn prepare(
    runbook: &Runbook,
    context: &TemplateContext,
    templater: &Templater,
    drill_dir: &Path,
) -> Result<Vec<String>, TrainingError> {
    let render = |t: &Template| templater.render_plain(&t.text, context).ok();
    let project = templater
        .render_plain("{{ project }}", context)
        .ok()
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or_else(|| "app".into());
    let mut done = Vec::new();
    let s3 = s3_dir(drill_dir);
    for step in &runbook.steps {
        let Action::S3Backup(spec) = &step.action else { continue };
        let (Some(bucket), prefix) = (render(&spec.bucket), spec.prefix.as_ref().and_then(render).unwrap_or_default())
        else {
            continue;
        };
        let bucket_dir = s3.join(&bucket);
        if bucket_dir.exists() {
            continue;
        }
        let pattern = spec.pattern.as_ref().and_then(render).and_then(|p| regex::Regex::new(&p).ok());
        let count = seed_backups(&bucket_dir, &prefix, &project, pattern.as_ref())
            .map_err(|source| TrainingError::SeedBucket { dir: bucket_dir.clone(), source })?;
        done.push(format!("sandbox bucket `{bucket}`: {count} backups under `{prefix}`"));
    }
    for step in &runbook.steps {
        let Action::S3Check(spec) = &step.action else { continue };
        let made = super::training_s3check::seed(spec, &render, &s3)
            .map_err(|source| TrainingError::SeedBucket { dir: s3.clone(), source })?;
        done.extend(made);
    }
    let cluster_path = cluster_dir(drill_dir);
    if !cluster_path.join("cluster.json").exists() && runbook.steps.iter().any(|s| is_k8s(&s.action)) {
        let seeded = seed_cluster(runbook, &render, &project, &cluster_path)?;
        done.push(format!("sandbox cluster in {}", cluster_path.display()));
        done.extend(seeded);
    }
    Ok(done)
}

fn is_k8s(action: &Action) -> bool {
    matches!(action, Action::K8sImageTag(_) | Action::K8sWait(_) | Action::K8sScale(_) | Action::K8sIsolation(_))
}

/// Nightly backups for the last week plus a weekly one, named the way
/// backup CronJobs name them (`PROJECT/daily-PROJECT-YYYYMMDDHHMM.pgdump`),
/// or another usual shape when the step's `pattern` wants one.
fn seed_backups(dir: &Path, prefix: &str, project: &str, pattern: Option<&regex::Regex>) -> std::io::Result<usize> {
    let now = Timestamp::now();
    // The newest backup ran at 03:00 UTC today (yesterday before 03:00).
    let today = now.strftime("%Y-%m-%dT03:00:00Z").to_string().parse::<Timestamp>().unwrap_or(now);
    let newest = if today > now { today.checked_sub(24.hours()).unwrap_or(today) } else { today };
    let shapes: [fn(&str, &str, &str) -> String; 4] = [
        |prefix, project, stamp| format!("{prefix}daily-{project}-{stamp}.pgdump"),
        |prefix, project, stamp| format!("{prefix}{project}-{stamp}.pgdump"),
        |prefix, _, stamp| format!("{prefix}daily-{stamp}.pgdump"),
        |prefix, _, stamp| format!("{prefix}backup-{stamp}.dump"),
    ];
    let stamp_of = |t: Timestamp| t.strftime("%Y%m%d%H%M").to_string();
    let shape = shapes
        .iter()
        .find(|shape| pattern.is_none_or(|p| p.is_match(&shape(prefix, project, &stamp_of(newest)))))
        .unwrap_or(&shapes[0]);
    let mut count = 0;
    for day in 0..NIGHTLY_BACKUPS {
        let at = newest.checked_sub((24 * day).hours()).unwrap_or(newest);
        write_backup(&dir.join(shape(prefix, project, &stamp_of(at))), at, day as u8)?;
        count += 1;
    }
    let weekly_at = newest.checked_sub((24 * 5).hours()).unwrap_or(newest);
    let weekly = format!("{prefix}weekly-{project}-{}.pgdump", stamp_of(weekly_at));
    write_backup(&dir.join(weekly), weekly_at, 99)?;
    Ok(count + 1)
}

/// A file that starts like a custom-format dump, modified at `at` (the
/// sandbox bucket's LastModified), with content unique to `seed`.
fn write_backup(path: &Path, at: Timestamp, seed: u8) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::File::create(path)?;
    file.write_all(b"PGDMP\x01\x0e\x00\x04\x08\x01\x01sandbox backup\n")?;
    // Cheap pseudo-random filler: backups of different days differ.
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed).wrapping_mul(0x1000_0001);
    let mut chunk = vec![0u8; 64 << 10];
    let mut written = 0;
    while written < BACKUP_SIZE {
        for byte in chunk.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        file.write_all(&chunk)?;
        written += chunk.len();
    }
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(at.as_second().max(0) as u64);
    file.set_modified(modified)?;
    file.sync_all()
}

/// An isolation check names no deployments: DR gets what production runs.
static NO_DEPLOYMENTS: Vec<String> = Vec::new();

/// Production namespaces (read by `k8s-image-tag`) run the current tag over
/// an older revision; the others (DR: waited for, scaled) an older build.
fn seed_cluster(
    runbook: &Runbook,
    render: &dyn Fn(&Template) -> Option<String>,
    project: &str,
    dir: &Path,
) -> Result<Vec<String>, K8sError> {
    let mut sources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut targets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut statefulsets: BTreeSet<String> = BTreeSet::new();
    for step in &runbook.steps {
        let (target, deployments, into) = match &step.action {
            Action::K8sImageTag(spec) => (&spec.target, &spec.deployments, &mut sources),
            Action::K8sIsolation(spec) => {
                if let Some(production) = render(&spec.production.namespace) {
                    sources.entry(production).or_default();
                }
                (&spec.target, &NO_DEPLOYMENTS, &mut targets)
            }
            Action::K8sWait(spec) => (&spec.target, &spec.deployments, &mut targets),
            Action::K8sScale(spec) => {
                let Some(namespace) = render(&spec.target.namespace) else { continue };
                if spec.statefulsets {
                    statefulsets.insert(namespace);
                }
                (&spec.target, &spec.deployments, &mut targets)
            }
            _ => continue,
        };
        let Some(namespace) = render(&target.namespace) else { continue };
        into.entry(namespace).or_default().extend(deployments.iter().cloned());
    }
    let names = |listed: &BTreeSet<String>| -> Vec<String> {
        if listed.is_empty() { vec!["web".into(), "worker".into()] } else { listed.iter().cloned().collect() }
    };
    // DR runs what production has, by name.
    let all_names: BTreeSet<String> = sources.values().chain(targets.values()).flat_map(names).collect();
    let cluster = SimCluster::create(dir, READY_DELAY)?;
    let image = |name: &str, tag: &str| format!("registry.example.com/{project}/{name}:{tag}");
    let apply = |namespace: &str, name: &str, tag: &str, replicas: u32| {
        cluster.apply(namespace, WorkloadKind::Deployment, name, &image(name, tag), replicas)
    };
    for (namespace, listed) in &sources {
        for name in names(listed) {
            let replicas = if name == "web" { 3 } else { 2 };
            apply(namespace, &name, PREVIOUS_TAG, replicas)?;
            cluster.set_image(namespace, &name, &image(&name, PRODUCTION_TAG))?;
        }
    }
    for (namespace, listed) in targets.iter().filter(|(namespace, _)| !sources.contains_key(*namespace)) {
        let wanted: Vec<String> = if listed.is_empty() { all_names.iter().cloned().collect() } else { names(listed) };
        for name in wanted {
            apply(namespace, &name, DR_TAG, if name == "web" { 2 } else { 1 })?;
        }
        if statefulsets.contains(namespace) {
            cluster.apply(namespace, WorkloadKind::StatefulSet, "db", &format!("postgres:{}", 15), 1)?;
        }
    }
    let mut seeded = Vec::new();
    for step in &runbook.steps {
        let Action::K8sIsolation(spec) = &step.action else { continue };
        if let (Some(dr), Some(production)) = (render(&spec.target.namespace), render(&spec.production.namespace)) {
            seeded.extend(super::training_isolation::seed(&cluster, project, &dr, &production)?);
        }
    }
    Ok(seeded)
}
