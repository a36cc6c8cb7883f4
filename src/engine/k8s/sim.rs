//! A simulated cluster for the sandbox (`demo`, training mode): a directory
//! holding `cluster.json` with namespaces, workloads and their revisions.
//! Pods are not stored: they are derived from the time of the last rollout
//! or scale, so a pod goes `ContainerCreating` → `Running` → Ready after the
//! ready delay without any process ticking, the state survives a restart
//! of drillbook (resume re-attaches to the same pods), and a `kubectl`-like
//! command (`drillbook sandbox …`) can change it from another process.
//!
//! An image whose reference contains a "failing" marker never becomes Ready:
//! it crash-loops (`CrashLoopBackOff`, restarts counting up) or cannot be
//! pulled (`ErrImagePull` → `ImagePullBackOff`). Like a real rollout with
//! maxUnavailable, the previous revision's pods keep serving meanwhile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvFromSource, EnvVar, PodSpec, PodTemplateSpec, Secret};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::isolation::config::NamespaceConfig;
use super::{
    Cluster, ClusterTarget, K8sError, LogOptions, PodInfo, RevisionInfo, Snapshot, WatchEvent, Workload, WorkloadKind,
};

const STATE_FILE: &str = "cluster.json";
/// How often a watch or a followed log looks at the state file again.
const POLL: Duration = Duration::from_millis(200);
const DEFAULT_READY_DELAY_MS: u64 = 3000;
/// The least time a deleted pod stays `Terminating`.
const TERMINATION: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct SimCluster {
    dir: PathBuf,
    target: ClusterTarget,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    ready_delay_ms: u64,
    /// Image substring → `CrashLoopBackOff` or `ImagePullBackOff`.
    failing: BTreeMap<String, String>,
    namespaces: BTreeMap<String, Namespace>,
    /// `verb resource namespace` triples refused with 403.
    forbidden: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Namespace {
    workloads: Vec<SimWorkload>,
    /// Lines appended to pods' logs, by pod name.
    logs: BTreeMap<String, Vec<String>>,
    /// What an isolation check reads besides the workloads.
    #[serde(default)]
    objects: SimObjects,
}

/// The namespace's configuration objects, as the API would list them (a
/// sandbox journal never holds them: they stay in cluster.json).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimObjects {
    #[serde(default)]
    pub config_maps: Vec<ConfigMap>,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub network_policies: Vec<NetworkPolicy>,
    #[serde(default)]
    pub ingresses: Vec<Ingress>,
    #[serde(default)]
    pub cron_jobs: Vec<CronJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimWorkload {
    kind: WorkloadKind,
    name: String,
    container: String,
    replicas: u32,
    /// Oldest first; the last is current.
    revisions: Vec<SimRevision>,
    /// When the pods of the current revision were started.
    rolled_at: Timestamp,
    /// Replicas before the last scale, and when it happened.
    scaled_from: u32,
    scaled_at: Timestamp,
    created: Timestamp,
    /// The container's `env` and `envFrom`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env_from: Vec<EnvFromSource>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimRevision {
    revision: u64,
    image: String,
    created: Timestamp,
    /// Replicas the previous revision had when this one rolled out.
    replaced: u32,
}

impl Serialize for WorkloadKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for WorkloadKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "deployment" => Ok(WorkloadKind::Deployment),
            "statefulset" => Ok(WorkloadKind::StatefulSet),
            other => Err(serde::de::Error::custom(format!("unknown workload kind `{other}`"))),
        }
    }
}

impl SimCluster {
    /// Opens the sandbox cluster in `dir`; it must have been created.
    pub fn open(dir: &Path) -> Result<SimCluster, K8sError> {
        let cluster = SimCluster::at(dir);
        if !cluster.state_path().exists() {
            return Err(K8sError::Unreachable {
                server: dir.display().to_string(),
                context: "sandbox".into(),
                reason: format!("no simulated cluster in {} (it holds no {STATE_FILE})", dir.display()),
            });
        }
        cluster.load()?;
        Ok(cluster)
    }

    /// Creates (or empties) a sandbox cluster in `dir`.
    pub fn create(dir: &Path, ready_delay: Duration) -> Result<SimCluster, K8sError> {
        std::fs::create_dir_all(dir).map_err(|e| other(format!("cannot create {}: {e}", dir.display())))?;
        let cluster = SimCluster::at(dir);
        cluster.save(&State { ready_delay_ms: ready_delay.as_millis() as u64, ..State::default() })?;
        Ok(cluster)
    }

    fn at(dir: &Path) -> SimCluster {
        SimCluster {
            dir: dir.to_path_buf(),
            target: ClusterTarget { context: "sandbox".into(), server: format!("sandbox:{}", dir.display()) },
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    fn load(&self) -> Result<State, K8sError> {
        let path = self.state_path();
        let text = std::fs::read_to_string(&path).map_err(|e| K8sError::Unreachable {
            server: self.target.server.clone(),
            context: self.target.context.clone(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let mut state: State = serde_json::from_str(&text)
            .map_err(|e| other(format!("{} is not a sandbox cluster: {e}", path.display())))?;
        if state.ready_delay_ms == 0 {
            state.ready_delay_ms = DEFAULT_READY_DELAY_MS;
        }
        Ok(state)
    }

    /// Written to a temporary file and renamed: a reader never sees half a state.
    fn save(&self, state: &State) -> Result<(), K8sError> {
        let text = serde_json::to_string_pretty(state).map_err(|e| other(e.to_string()))?;
        let temp = self.dir.join(format!(".{STATE_FILE}.{}", std::process::id()));
        std::fs::write(&temp, text)
            .and_then(|()| std::fs::rename(&temp, self.state_path()))
            .map_err(|e| other(format!("cannot write {}: {e}", self.state_path().display())))
    }

    fn change(&self, edit: impl FnOnce(&mut State) -> Result<(), K8sError>) -> Result<(), K8sError> {
        let mut state = self.load()?;
        edit(&mut state)?;
        self.save(&state)
    }

    pub fn create_namespace(&self, namespace: &str) -> Result<(), K8sError> {
        self.change(|state| {
            state.namespaces.entry(namespace.to_string()).or_default();
            Ok(())
        })
    }

    /// Creates the workload, or rolls it out with `image` and `replicas`.
    pub fn apply(
        &self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        image: &str,
        replicas: u32,
    ) -> Result<(), K8sError> {
        let now = Timestamp::now();
        self.change(|state| {
            let ns = state.namespaces.entry(namespace.to_string()).or_default();
            match ns.workloads.iter_mut().find(|w| w.kind == kind && w.name == name) {
                Some(workload) => {
                    // The rollout replaces the pods there were; the scale then applies.
                    roll_out(workload, image, now);
                    rescale(workload, replicas, now);
                }
                None => {
                    let container = name.to_string();
                    ns.workloads.push(SimWorkload {
                        kind,
                        name: name.to_string(),
                        container,
                        replicas,
                        revisions: vec![SimRevision { revision: 1, image: image.into(), created: now, replaced: 0 }],
                        rolled_at: now,
                        scaled_from: 0,
                        scaled_at: now,
                        created: now,
                        env: Vec::new(),
                        env_from: Vec::new(),
                    });
                    ns.workloads.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
                }
            }
            Ok(())
        })
    }

    /// What `kubectl set image deployment/NAME CONTAINER=IMAGE` does.
    pub fn set_image(&self, namespace: &str, deployment: &str, image: &str) -> Result<(), K8sError> {
        let now = Timestamp::now();
        self.change(|state| {
            let workload = find_workload(state, namespace, WorkloadKind::Deployment, deployment)?;
            roll_out(workload, image, now);
            Ok(())
        })
    }

    /// Images containing `marker` never become Ready: `reason` is
    /// `CrashLoopBackOff`, `OOMKilled` (crash-looping, killed for memory)
    /// or `ImagePullBackOff`.
    pub fn fail_image(&self, marker: &str, reason: &str) -> Result<(), K8sError> {
        if !matches!(reason, "CrashLoopBackOff" | "OOMKilled" | "ImagePullBackOff") {
            return Err(other(format!(
                "a failing image crash-loops (CrashLoopBackOff), runs out of memory (OOMKilled) or cannot be pulled \
                 (ImagePullBackOff), not `{reason}`"
            )));
        }
        self.change(|state| {
            state.failing.insert(marker.to_string(), reason.to_string());
            Ok(())
        })
    }

    pub fn append_log(&self, namespace: &str, pod: &str, lines: &[&str]) -> Result<(), K8sError> {
        self.change(|state| {
            let ns = state.namespaces.entry(namespace.to_string()).or_default();
            ns.logs.entry(pod.to_string()).or_default().extend(lines.iter().map(|l| l.to_string()));
            Ok(())
        })
    }

    /// Sets a workload's container environment (`env`, `envFrom`).
    pub fn set_env(
        &self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        env: Vec<EnvVar>,
        env_from: Vec<EnvFromSource>,
    ) -> Result<(), K8sError> {
        self.change(|state| {
            let workload = find_workload(state, namespace, kind, name)?;
            workload.env = env;
            workload.env_from = env_from;
            Ok(())
        })
    }

    /// The names of the namespace's Deployments.
    pub fn workloads_in(&self, namespace: &str) -> Result<Vec<String>, K8sError> {
        let state = self.load()?;
        Ok(self
            .namespace(&state, namespace)?
            .workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::Deployment)
            .map(|w| w.name.clone())
            .collect())
    }

    /// Adds configuration objects to a namespace (creating it).
    pub fn add_objects(&self, namespace: &str, objects: SimObjects) -> Result<(), K8sError> {
        self.change(|state| {
            let ns = &mut state.namespaces.entry(namespace.to_string()).or_default().objects;
            ns.config_maps.extend(objects.config_maps);
            ns.secrets.extend(objects.secrets);
            ns.network_policies.extend(objects.network_policies);
            ns.ingresses.extend(objects.ingresses);
            ns.cron_jobs.extend(objects.cron_jobs);
            Ok(())
        })
    }

    /// Refuses `verb` on `resource` in `namespace` with 403, as RBAC would.
    pub fn forbid(&self, verb: &str, resource: &str, namespace: &str) -> Result<(), K8sError> {
        self.change(|state| {
            state.forbidden.push((verb.into(), resource.into(), namespace.into()));
            Ok(())
        })
    }

    fn namespace<'a>(&self, state: &'a State, namespace: &str) -> Result<&'a Namespace, K8sError> {
        state.namespaces.get(namespace).ok_or_else(|| K8sError::NamespaceNotFound {
            namespace: namespace.into(),
            context: self.target.context.clone(),
        })
    }

    fn allow(&self, state: &State, verb: &str, resource: &str, namespace: &str) -> Result<(), K8sError> {
        if state.forbidden.iter().any(|(v, r, n)| v == verb && r == resource && n == namespace) {
            return Err(K8sError::Forbidden {
                verb: verb.into(),
                resource: resource.into(),
                namespace: namespace.into(),
                context: self.target.context.clone(),
                message: format!("the sandbox refuses {verb} on {resource}"),
            });
        }
        Ok(())
    }

    fn snapshot(&self, namespace: &str, now: Timestamp) -> Result<Snapshot, K8sError> {
        let state = self.load()?;
        self.allow(&state, "watch", "pods", namespace)?;
        let ns = self.namespace(&state, namespace)?;
        let deployments = ns
            .workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::Deployment)
            .map(|w| workload_status(&state, w, now))
            .collect();
        Ok(Snapshot { deployments, pods: pods_at(&state, ns, now) })
    }

    fn log_lines(&self, namespace: &str, pod: &str, previous: bool) -> Result<Vec<String>, K8sError> {
        let state = self.load()?;
        self.allow(&state, "get", "pods/log", namespace)?;
        let ns = self.namespace(&state, namespace)?;
        let now = Timestamp::now();
        let Some(info) = pods_at(&state, ns, now).into_iter().find(|p| p.name == pod) else {
            return Err(K8sError::NotFound { kind: "pod".into(), name: pod.into(), namespace: namespace.into() });
        };
        let image = info.images.first().cloned().unwrap_or_default();
        if let Some(reason @ ("ErrImagePull" | "ImagePullBackOff" | "ContainerCreating")) = info.reason.as_deref() {
            // Like the API server: a container that never started has no log.
            return Err(K8sError::Other(format!("pod \"{pod}\" is waiting to start: {reason}")));
        }
        let mut lines = match info.reason.as_deref() {
            Some("CrashLoopBackOff") => vec![
                format!("starting {image}"),
                "connecting to the database…".to_string(),
                "FATAL: could not connect to the database: connection refused".to_string(),
                format!("process exited with status 1 (restart {})", info.restarts),
            ],
            _ if !previous => {
                let mut lines = vec![format!("starting {image}")];
                if info.ready {
                    lines.push("listening on :8000".into());
                    lines.push("GET /healthz 200".into());
                }
                lines
            }
            _ => Vec::new(),
        };
        lines.extend(ns.logs.get(pod).into_iter().flatten().cloned());
        Ok(lines)
    }
}

fn other(message: String) -> K8sError {
    K8sError::Other(message)
}

fn find_workload<'a>(
    state: &'a mut State,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
) -> Result<&'a mut SimWorkload, K8sError> {
    state
        .namespaces
        .get_mut(namespace)
        .and_then(|ns| ns.workloads.iter_mut().find(|w| w.kind == kind && w.name == name))
        .ok_or_else(|| K8sError::NotFound { kind: kind.name().into(), name: name.into(), namespace: namespace.into() })
}

fn roll_out(workload: &mut SimWorkload, image: &str, now: Timestamp) {
    if workload.revisions.last().is_some_and(|r| r.image == image) {
        return;
    }
    let revision = workload.revisions.last().map_or(1, |r| r.revision + 1);
    workload.revisions.push(SimRevision { revision, image: image.into(), created: now, replaced: workload.replicas });
    workload.rolled_at = now;
}

fn rescale(workload: &mut SimWorkload, replicas: u32, now: Timestamp) {
    if workload.replicas == replicas {
        return;
    }
    workload.scaled_from = workload.replicas;
    workload.scaled_at = now;
    workload.replicas = replicas;
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or_default()
}

fn failing<'a>(state: &'a State, image: &str) -> Option<&'a str> {
    state.failing.iter().find(|(marker, _)| image.contains(marker.as_str())).map(|(_, reason)| reason.as_str())
}

/// A short stable hash, like a ReplicaSet's pod-template-hash.
fn template_hash(name: &str, revision: u64) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{name}/{revision}"));
    digest.iter().take(5).map(|b| char::from(b"bcdfghjklmnpqrstvwxz2456789"[*b as usize % 27])).collect()
}

/// The pods of every workload at `now`.
fn pods_at(state: &State, ns: &Namespace, now: Timestamp) -> Vec<PodInfo> {
    let mut pods: Vec<PodInfo> = ns.workloads.iter().flat_map(|w| workload_pods(state, w, now)).collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods
}

fn workload_pods(state: &State, workload: &SimWorkload, now: Timestamp) -> Vec<PodInfo> {
    let delay = Duration::from_millis(state.ready_delay_ms);
    // Long enough that a watch (polling every 200 ms) always sees pods terminate.
    let grace = (delay / 2).max(TERMINATION);
    let Some(current) = workload.revisions.last() else { return Vec::new() };
    let mut pods = Vec::new();
    let pod_name = |revision: &SimRevision, index: u32| match workload.kind {
        WorkloadKind::Deployment => {
            let hash = template_hash(&workload.name, revision.revision);
            let suffix = template_hash(&format!("{hash}-{index}"), revision.revision);
            format!("{}-{hash}-{suffix}", workload.name)
        }
        WorkloadKind::StatefulSet => format!("{}-{index}", workload.name),
    };
    // Pods of the current revision: those that exist now, and those a
    // scale-down is still terminating.
    let kept = workload.replicas.max(if elapsed(workload.scaled_at, now) < grace { workload.scaled_from } else { 0 });
    for index in 0..kept {
        // Pods added by a scale-up start at the scale; the others at the rollout.
        let started = if index >= workload.scaled_from && workload.scaled_at > workload.rolled_at {
            workload.scaled_at
        } else {
            workload.rolled_at
        };
        let mut pod = pod_at(state, workload, &current.image, pod_name(current, index), started, now, delay);
        if index >= workload.replicas {
            pod.terminating = true;
        }
        pods.push(pod);
    }
    // The previous revision serves until the new pods are Ready, then terminates.
    if workload.revisions.len() >= 2 {
        let previous = &workload.revisions[workload.revisions.len() - 2];
        // Whether the rollout's own pods came up: a later scale-up adds
        // pods of the current revision and brings nothing old back.
        let rolled_out = failing(state, &current.image).is_none() && elapsed(workload.rolled_at, now) >= delay;
        let old_needed = !rolled_out || elapsed(workload.rolled_at, now) < delay + grace;
        // Scaled to zero mid-rollout: the old pods go too.
        let count = match workload.replicas {
            0 if elapsed(workload.scaled_at, now) < grace => current.replaced.min(workload.scaled_from),
            0 => 0,
            replicas => current.replaced.min(replicas),
        };
        if old_needed && count > 0 {
            let terminating = rolled_out || workload.replicas == 0;
            for index in 0..count {
                let mut pod = pod_at(
                    state,
                    workload,
                    &previous.image,
                    pod_name(previous, index),
                    previous.created.min(workload.rolled_at),
                    now,
                    delay,
                );
                pod.terminating = terminating;
                if workload.kind == WorkloadKind::Deployment {
                    pods.push(pod);
                }
            }
        }
    }
    pods
}

fn pod_at(
    state: &State,
    workload: &SimWorkload,
    image: &str,
    name: String,
    started: Timestamp,
    now: Timestamp,
    delay: Duration,
) -> PodInfo {
    let age = elapsed(started, now);
    let half = delay / 2;
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), workload.name.clone());
    let mut pod = PodInfo {
        name,
        phase: "Pending".into(),
        ready: false,
        ready_containers: 0,
        containers: 1,
        reason: Some("ContainerCreating".into()),
        message: None,
        restarts: 0,
        created: Some(started),
        images: vec![image.to_string()],
        node: None,
        labels,
        terminating: false,
        controller: Some(
            match workload.kind {
                WorkloadKind::Deployment => "ReplicaSet",
                WorkloadKind::StatefulSet => "StatefulSet",
            }
            .into(),
        ),
    };
    if age < half {
        return pod;
    }
    pod.node = Some("sandbox-node-1".into());
    match failing(state, image) {
        Some("ImagePullBackOff") => {
            pod.reason = Some(if age < delay { "ErrImagePull" } else { "ImagePullBackOff" }.into());
            pod.message = Some(format!("Back-off pulling image \"{image}\": not found"));
        }
        Some(reason) => {
            pod.phase = "Running".into();
            let period = delay.max(Duration::from_millis(200));
            pod.restarts = ((age - half).as_millis() / period.as_millis()) as u32 + 1;
            pod.reason = Some("CrashLoopBackOff".into());
            pod.message = Some(if reason == "OOMKilled" {
                "last exit: OOMKilled (exit 137)".to_string()
            } else {
                format!("back-off restarting failed container {}", workload.container)
            });
        }
        None => {
            pod.phase = "Running".into();
            pod.reason = None;
            if age >= delay {
                pod.ready = true;
                pod.ready_containers = 1;
            }
        }
    }
    pod
}

fn workload_status(state: &State, workload: &SimWorkload, now: Timestamp) -> Workload {
    let pods = workload_pods(state, workload, now);
    let image = workload.revisions.last().map(|r| r.image.clone()).unwrap_or_default();
    let live: Vec<&PodInfo> = pods.iter().filter(|p| !p.terminating).collect();
    let updated = live.iter().filter(|p| p.images.first() == Some(&image)).count() as u32;
    let ready = live.iter().filter(|p| p.ready).count() as u32;
    let mut selector = BTreeMap::new();
    selector.insert("app".to_string(), workload.name.clone());
    Workload {
        kind: workload.kind,
        name: workload.name.clone(),
        desired: workload.replicas,
        current: pods.len() as u32,
        updated,
        ready,
        available: ready,
        observed: true,
        containers: vec![(workload.container.clone(), image)],
        revision: workload.revisions.last().map(|r| r.revision).filter(|_| workload.kind == WorkloadKind::Deployment),
        selector,
        created: Some(workload.created),
    }
}

/// The workload as the API would list it: its pod template (labels
/// `app=NAME`, one container with its image and environment).
fn sim_template(workload: &SimWorkload) -> PodTemplateSpec {
    let image = workload.revisions.last().map(|r| r.image.clone());
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some([("app".to_string(), workload.name.clone())].into()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: workload.container.clone(),
                image,
                env: Some(workload.env.clone()).filter(|e| !e.is_empty()),
                env_from: Some(workload.env_from.clone()).filter(|e| !e.is_empty()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

impl Cluster for SimCluster {
    fn target(&self) -> &ClusterTarget {
        &self.target
    }

    fn config<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<NamespaceConfig, K8sError>> {
        Box::pin(async move {
            let state = self.load()?;
            for resource in
                ["deployments", "statefulsets", "cronjobs", "configmaps", "secrets", "networkpolicies", "ingresses"]
            {
                self.allow(&state, "list", resource, namespace)?;
            }
            let ns = self.namespace(&state, namespace)?;
            let meta = |name: &str| ObjectMeta { name: Some(name.to_string()), ..ObjectMeta::default() };
            let deployments: Vec<Deployment> = ns
                .workloads
                .iter()
                .filter(|w| w.kind == WorkloadKind::Deployment)
                .map(|w| Deployment {
                    metadata: meta(&w.name),
                    spec: Some(DeploymentSpec { template: sim_template(w), ..DeploymentSpec::default() }),
                    status: None,
                })
                .collect();
            let statefulsets: Vec<StatefulSet> = ns
                .workloads
                .iter()
                .filter(|w| w.kind == WorkloadKind::StatefulSet)
                .map(|w| StatefulSet {
                    metadata: meta(&w.name),
                    spec: Some(StatefulSetSpec { template: sim_template(w), ..StatefulSetSpec::default() }),
                    status: None,
                })
                .collect();
            let objects = &ns.objects;
            Ok(NamespaceConfig::from_objects(
                namespace,
                &deployments,
                &statefulsets,
                &objects.cron_jobs,
                &objects.config_maps,
                &objects.secrets,
                &objects.network_policies,
                &objects.ingresses,
            ))
        })
    }

    fn check_namespace<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<(), K8sError>> {
        Box::pin(async move { self.namespace(&self.load()?, namespace).map(|_| ()) })
    }

    fn workloads<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
    ) -> BoxFuture<'a, Result<Vec<Workload>, K8sError>> {
        Box::pin(async move {
            let state = self.load()?;
            self.allow(&state, "list", kind.resource(), namespace)?;
            let now = Timestamp::now();
            Ok(self
                .namespace(&state, namespace)?
                .workloads
                .iter()
                .filter(|w| w.kind == kind)
                .map(|w| workload_status(&state, w, now))
                .collect())
        })
    }

    fn revisions<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<RevisionInfo>, K8sError>> {
        Box::pin(async move {
            let state = self.load()?;
            self.allow(&state, "list", "replicasets", namespace)?;
            let ns = self.namespace(&state, namespace)?;
            let mut revisions: Vec<RevisionInfo> = ns
                .workloads
                .iter()
                .filter(|w| w.kind == WorkloadKind::Deployment)
                .flat_map(|w| {
                    let last = w.revisions.len().saturating_sub(1);
                    w.revisions.iter().enumerate().map(move |(i, r)| RevisionInfo {
                        name: format!("{}-{}", w.name, template_hash(&w.name, r.revision)),
                        deployment: Some(w.name.clone()),
                        revision: Some(r.revision),
                        containers: vec![(w.container.clone(), r.image.clone())],
                        created: Some(r.created),
                        replicas: if i == last { w.replicas } else { 0 },
                    })
                })
                .collect();
            revisions.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(revisions)
        })
    }

    fn pods<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<PodInfo>, K8sError>> {
        Box::pin(async move {
            let state = self.load()?;
            self.allow(&state, "list", "pods", namespace)?;
            Ok(pods_at(&state, self.namespace(&state, namespace)?, Timestamp::now()))
        })
    }

    fn watch(&self, namespace: &str) -> BoxStream<'static, Result<WatchEvent, K8sError>> {
        let cluster = self.clone();
        let namespace = namespace.to_string();
        // Polls the state file: the simulated pods change with time alone.
        let stream = futures::stream::unfold((cluster, namespace, None::<Snapshot>, true, 0u32), |mut s| async move {
            loop {
                let (cluster, namespace, last, first, broken) = &mut s;
                if !*first {
                    tokio::time::sleep(POLL).await;
                }
                match cluster.snapshot(namespace, Timestamp::now()) {
                    Ok(_) if *broken > 0 => {
                        // The snapshot follows on the next poll, as after a real re-list.
                        *broken = 0;
                        *last = None;
                        *first = false;
                        return Some((Ok(WatchEvent::Reconnected), s));
                    }
                    Ok(snapshot) if last.as_ref() != Some(&snapshot) => {
                        *last = Some(snapshot.clone());
                        *first = false;
                        return Some((Ok(WatchEvent::Snapshot(snapshot)), s));
                    }
                    Ok(_) => *first = false,
                    Err(error) if *first => {
                        *first = false;
                        return Some((Err(error), s));
                    }
                    Err(error) => {
                        *broken += 1;
                        *last = None;
                        let attempt = *broken;
                        return Some((
                            Ok(WatchEvent::Reconnecting { reason: error.to_string(), attempt, retry_in: POLL }),
                            s,
                        ));
                    }
                }
            }
        });
        // After a failed start the stream ends: nothing to watch.
        let mut failed = false;
        stream
            .take_while(move |item| {
                let keep = !failed;
                failed = item.is_err();
                futures::future::ready(keep)
            })
            .boxed()
    }

    fn logs(&self, namespace: &str, pod: &str, options: LogOptions) -> BoxStream<'static, Result<String, K8sError>> {
        let cluster = self.clone();
        let (namespace, pod) = (namespace.to_string(), pod.to_string());
        futures::stream::unfold((0usize, true), move |(sent, first)| {
            let (cluster, namespace, pod, options) = (cluster.clone(), namespace.clone(), pod.clone(), options.clone());
            async move {
                if !first && !options.follow {
                    return None;
                }
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                match cluster.log_lines(&namespace, &pod, options.previous) {
                    Ok(lines) => {
                        let start = if first {
                            options.tail_lines.map_or(0, |tail| lines.len().saturating_sub(tail as usize))
                        } else {
                            sent.min(lines.len())
                        };
                        let new: Vec<Result<String, K8sError>> = lines[start..].iter().cloned().map(Ok).collect();
                        Some((futures::stream::iter(new), (lines.len(), false)))
                    }
                    Err(K8sError::NotFound { .. }) if !first => None,
                    Err(error) => Some((futures::stream::iter(vec![Err(error)]), (usize::MAX, false))),
                }
            }
        })
        .flatten()
        .take_while({
            let mut failed = false;
            move |item| {
                let keep = !failed;
                failed = item.is_err();
                futures::future::ready(keep)
            }
        })
        .boxed()
    }

    fn scale<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
        name: &'a str,
        replicas: u32,
    ) -> BoxFuture<'a, Result<u32, K8sError>> {
        Box::pin(async move {
            let mut previous = 0;
            let resource = format!("{}/scale", kind.resource());
            let now = Timestamp::now();
            self.change(|state| {
                self.allow(state, "patch", &resource, namespace)?;
                self.namespace(state, namespace)?;
                let workload = find_workload(state, namespace, kind, name)?;
                previous = workload.replicas;
                rescale(workload, replicas, now);
                Ok(())
            })?;
            Ok(previous)
        })
    }
}
