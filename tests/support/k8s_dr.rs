//! The Kubernetes drill shared by `k8s_drill.rs` and `reliability_faults_k8s.rs`:
//! a runbook (read production's tag, deploy it to DR, wait, scale DR to zero)
//! and an emulator seeded for it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::k8s::K8sEmulator;
use crate::support::{Home, stderr_of, stdout_of};

pub const DRILL: &str = r#"
[runbook]
id = "k8s-drill"
title = "Kubernetes drill"
protected = ["{{ prod_namespace }}"]

[vars.prod_namespace]
default = "acme-production"
[vars.dr_namespace]
default = "acme-dr"

[[step]]
id = "pick-tag"
kind = "k8s-image-tag"
namespace = "{{ prod_namespace }}"
capture = "tag"

[[step]]
id = "deploy"
kind = "command"
run = """
kubectl -n {{ dr_namespace }} set image deployment/web web={{ tag.image }}
kubectl -n {{ dr_namespace }} set image deployment/worker worker=registry.acme.io:5000/acme/worker:{{ tag }}
"""

[[step]]
id = "wait"
kind = "k8s-wait"
namespace = "{{ dr_namespace }}"
expect_tag = "{{ tag }}"
timeout = "60s"

[[step]]
id = "scale-down"
kind = "k8s-scale"
namespace = "{{ dr_namespace }}"
all = true
replicas = 0
confirm = "typed"
"#;

pub fn image(app: &str, tag: &str) -> String {
    format!("registry.acme.io:5000/acme/{app}:{tag}")
}

/// An emulator where production runs `main-9f8e7d6` (rolled out over
/// `main-1a2b3c4`) and DR an older build.
pub struct Cluster {
    pub emulator: K8sEmulator,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start() -> Cluster {
        let emulator = K8sEmulator::start();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = emulator.kubeconfig(dir.path());
        for app in ["web", "worker"] {
            emulator.apply_deployment("acme-production", app, &image(app, "main-1a2b3c4"), 2);
            emulator.apply_deployment("acme-dr", app, &image(app, "main-0000000"), 1);
        }
        for app in ["web", "worker"] {
            let set = format!("{app}={}", image(app, "main-9f8e7d6"));
            let output = emulator
                .kubectl(&kubeconfig, &["-n", "acme-production", "set", "image", &format!("deployment/{app}"), &set]);
            assert!(output.status.success(), "{}", stderr_of(&output));
        }
        Cluster { emulator, kubeconfig, _dir: dir }
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.emulator.kubectl(&self.kubeconfig, args);
        assert!(output.status.success(), "kubectl {args:?}: {}", stderr_of(&output));
        stdout_of(&output)
    }

    /// `drillbook ARGS` with the emulator's kubeconfig, and kubectl's private HOME and cache
    /// (for the drill's command steps).
    pub fn drillbook(&self, home: &Home, args: &[&str]) -> std::process::Command {
        let mut command = home.cmd_std();
        let kubectl = self.emulator.kubectl_command(&self.kubeconfig, &[]);
        for (name, value) in kubectl.get_envs() {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        command.args(args);
        command
    }

    pub fn run(&self, home: &Home, runbook: &Path, extra: &[&str], stdin: &str) -> Output {
        let mut child = self
            .drillbook(home, &["run", "--plain"])
            .args(extra)
            .arg(runbook)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}
