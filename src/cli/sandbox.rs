//! `drillbook sandbox`: a small kubectl for the simulated cluster, so the
//! sandbox drill (and training) can deploy, break and inspect it the way
//! the real drill does with kubectl.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::engine::k8s::image::ImageRef;
use crate::engine::k8s::sim::SimCluster;
use crate::engine::k8s::wait::{PodTable, pod_rows, table_lines};
use crate::engine::k8s::{Cluster, WorkloadKind};

#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// Create (or empty) a simulated cluster in DIR.
    Init {
        dir: PathBuf,
        /// How long a new pod takes to become Ready (e.g. 3s, 500ms).
        #[arg(long, default_value = "3s", value_parser = parse_delay)]
        ready_delay: Duration,
    },
    /// Create a Deployment (or StatefulSet), or roll it out with a new image and replica count.
    Apply {
        dir: PathBuf,
        #[arg(short, long)]
        namespace: String,
        name: String,
        image: String,
        #[arg(long, default_value_t = 1)]
        replicas: u32,
        #[arg(long)]
        statefulset: bool,
    },
    /// What `kubectl set image deployment/NAME NAME=IMAGE` does.
    SetImage {
        dir: PathBuf,
        #[arg(short, long)]
        namespace: String,
        deployment: String,
        image: String,
    },
    /// Deploy TAG to every Deployment of a namespace (each keeps its repository), like `inv dr deploy --tag`.
    Deploy {
        dir: PathBuf,
        #[arg(short, long)]
        namespace: String,
        #[arg(long)]
        tag: String,
    },
    /// Images containing MARKER never become Ready.
    FailImage {
        dir: PathBuf,
        marker: String,
        #[arg(long, default_value = "CrashLoopBackOff", value_parser = ["CrashLoopBackOff", "OOMKilled", "ImagePullBackOff"])]
        reason: String,
    },
    /// Deployments and pods of a namespace, like `kubectl get deployments,pods`.
    Get {
        dir: PathBuf,
        #[arg(short, long)]
        namespace: String,
    },
}

fn parse_delay(text: &str) -> Result<Duration, String> {
    crate::runbook::duration::parse_duration(text).map_err(|e| e.to_string())
}

fn open(dir: &Path) -> Result<SimCluster, String> {
    SimCluster::open(dir).map_err(|e| e.to_string())
}

pub fn run(command: SandboxCommand) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        match command {
            SandboxCommand::Init { dir, ready_delay } => {
                SimCluster::create(&dir, ready_delay).map_err(|e| e.to_string())?;
                println!("simulated cluster ready in {} (context `sandbox:{}`)", dir.display(), dir.display());
            }
            SandboxCommand::Apply { dir, namespace, name, image, replicas, statefulset } => {
                let kind = if statefulset { WorkloadKind::StatefulSet } else { WorkloadKind::Deployment };
                open(&dir)?.apply(&namespace, kind, &name, &image, replicas).map_err(|e| e.to_string())?;
                println!("{}/{name} in {namespace}: {image}, {replicas} replica(s)", kind.name());
            }
            SandboxCommand::SetImage { dir, namespace, deployment, image } => {
                open(&dir)?.set_image(&namespace, &deployment, &image).map_err(|e| e.to_string())?;
                println!("deployment.apps/{deployment} image updated to {image}");
            }
            SandboxCommand::Deploy { dir, namespace, tag } => {
                let cluster = open(&dir)?;
                let deployments =
                    cluster.workloads(&namespace, WorkloadKind::Deployment).await.map_err(|e| e.to_string())?;
                if deployments.is_empty() {
                    return Err(format!("no deployments in namespace `{namespace}` of the sandbox cluster"));
                }
                for deployment in &deployments {
                    let Some((_, image)) = deployment.containers.first() else { continue };
                    let image = ImageRef::parse(image).map_err(|e| e.to_string())?;
                    let new = format!("{}:{tag}", image.repository());
                    cluster.set_image(&namespace, &deployment.name, &new).map_err(|e| e.to_string())?;
                    println!("deployment.apps/{} image updated to {new}", deployment.name);
                }
            }
            SandboxCommand::FailImage { dir, marker, reason } => {
                open(&dir)?.fail_image(&marker, &reason).map_err(|e| e.to_string())?;
                println!("images containing `{marker}` will fail with {reason}");
            }
            SandboxCommand::Get { dir, namespace } => {
                let cluster = open(&dir)?;
                let deployments =
                    cluster.workloads(&namespace, WorkloadKind::Deployment).await.map_err(|e| e.to_string())?;
                println!("{:<24} {:<7} {:<10} {:<9} IMAGES", "NAME", "READY", "UP-TO-DATE", "AVAILABLE");
                for d in &deployments {
                    let images: Vec<&str> = d.containers.iter().map(|(_, i)| i.as_str()).collect();
                    println!(
                        "{:<24} {:<7} {:<10} {:<9} {}",
                        d.name,
                        format!("{}/{}", d.ready, d.desired),
                        d.updated,
                        d.available,
                        images.join(",")
                    );
                }
                let pods = cluster.pods(&namespace).await.map_err(|e| e.to_string())?;
                let refs: Vec<_> = pods.iter().collect();
                let table = PodTable::new(pod_rows(&refs, None, jiff::Timestamp::now()), String::new());
                for line in table_lines(&table).iter().skip(1) {
                    println!("{line}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
