//! The Kubernetes part of a drill end to end, through the real binary in
//! plain mode, against the Kubernetes API emulator with the real kube client:
//! read the tag production runs, deploy it to DR with `kubectl set image`,
//! wait with a live pod table until DR runs that tag, scale DR to zero after
//! typing its namespace; every result cross-checked with kubectl. Then the
//! faults: an unknown context, a missing or empty namespace, a 403 on scale,
//! and the API server restarting during the wait.

#[path = "support/k8s.rs"]
mod k8s;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use k8s::{K8sEmulator, table_row};
use support::{Home, stderr_of, stdout_of};

const DRILL: &str = r#"
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

fn image(app: &str, tag: &str) -> String {
    format!("registry.acme.io:5000/acme/{app}:{tag}")
}

/// An emulator where production runs `main-9f8e7d6` (rolled out over
/// `main-1a2b3c4`) and DR an older build.
struct Cluster {
    emulator: K8sEmulator,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
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

    fn kubectl(&self, args: &[&str]) -> String {
        let output = self.emulator.kubectl(&self.kubeconfig, args);
        assert!(output.status.success(), "kubectl {args:?}: {}", stderr_of(&output));
        stdout_of(&output)
    }

    /// `drillbook ARGS` with the emulator's kubeconfig, and kubectl's private HOME and cache
    /// (for the drill's command steps).
    fn drillbook(&self, home: &Home, args: &[&str]) -> std::process::Command {
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

    fn run(&self, home: &Home, runbook: &Path, extra: &[&str], stdin: &str) -> Output {
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

#[test]
fn production_tag_deployed_to_dr_with_kubectl_waited_for_and_scaled_to_zero() {
    let cluster = Cluster::start();
    let home = Home::new();
    let runbook = home.runbook("k8s.toml", DRILL);
    let output = cluster.run(&home, &runbook, &["--context", "emulator"], "acme-dr\n");
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}\n{}", stderr_of(&output), cluster.emulator.log_tail());

    // What kubectl set image wrote, drillbook read.
    assert!(stdout.contains(&format!("captured tag = main-9f8e7d6 ({})", image("web", "main-9f8e7d6"))), "{stdout}");
    assert!(stdout.contains("main-1a2b3c4  running: -  revision 1"), "rollout history offered: {stdout}");
    assert!(stdout.contains("deployment.apps/web image updated"), "{stdout}");
    assert!(stdout.contains("NAME") && stdout.contains("STATUS") && stdout.contains("TAG"), "a pod table: {stdout}");
    assert!(stdout.contains("all Ready: web 1/1 ready · worker 1/1 ready"), "{stdout}");
    for expected in ["context:   emulator", "namespace: acme-dr", "deployment/web: 1 → 0", "deployment/worker: 1 → 0"]
    {
        assert!(stdout.contains(expected), "the confirmation names {expected}: {stdout}");
    }
    assert!(stdout.contains("all pods are gone"), "{stdout}");

    // What drillbook scaled, kubectl shows; production is untouched.
    let dr = cluster.kubectl(&["-n", "acme-dr", "get", "deployments", "-o", "wide"]);
    for app in ["web", "worker"] {
        let row = table_row(&dr, app).unwrap_or_else(|| panic!("{dr}"));
        assert_eq!(row[1], "0/0", "{dr}");
        assert!(row.iter().any(|cell| cell.ends_with(":main-9f8e7d6")), "DR runs production's tag: {dr}");
    }
    let production = cluster.kubectl(&["-n", "acme-production", "get", "deployments", "-o", "wide"]);
    for app in ["web", "worker"] {
        let row = table_row(&production, app).unwrap_or_else(|| panic!("{production}"));
        assert_eq!(row[1], "2/2", "production untouched: {production}");
    }
    let journal = home.journal();
    assert!(
        journal.contains(r#""running":{"web":"main-9f8e7d6","worker":"main-9f8e7d6"}"#),
        "what DR was seen running is journaled: {journal}"
    );
    let pods = cluster.kubectl(&["-n", "acme-dr", "get", "pods"]);
    assert!(!pods.contains("web-") && !pods.contains("worker-"), "DR pods gone: {pods}");

    let report = cluster.drillbook(&home, &["report"]).arg(home.only_drill().file_name().unwrap()).output().unwrap();
    let report = stdout_of(&report);
    assert!(report.contains("- cluster: context `emulator`, namespace `acme-dr`"), "{report}");
    assert!(report.contains("  - deployment/web: 1\n  - deployment/worker: 1"), "previous replicas: {report}");
    assert!(report.contains("k8s-wait namespace acme-dr in context emulator"), "{report}");
}

#[test]
fn cluster_faults_give_clear_errors_and_the_drill_stays_usable() {
    let cluster = Cluster::start();
    cluster.emulator.create_namespace("empty");
    let home = Home::new();
    let tag_only = |namespace: &str, context: &str| {
        format!(
            "[runbook]\nid = \"t\"\ntitle = \"T\"\n[[step]]\nid = \"pick-tag\"\nkind = \"k8s-image-tag\"\ncontext = \"{context}\"\nnamespace = \"{namespace}\"\n"
        )
    };
    let cases = [
        ("acme-production", "nope", "unknown context `nope` in the kubeconfig (it has: emulator, other)"),
        ("acme-staging", "emulator", "namespace `acme-staging` not found in context `emulator`"),
        ("empty", "emulator", "no deployments in namespace `empty` (context `emulator`)"),
        ("acme-production", "other", "cannot reach the API server http://127.0.0.1:9"),
    ];
    for (index, (namespace, context, expected)) in cases.iter().enumerate() {
        let runbook = home.runbook(&format!("t{index}.toml"), &tag_only(namespace, context));
        let output = cluster.run(&home, &runbook, &["--yes"], "");
        let stdout = stdout_of(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}\n{}", stderr_of(&output));
        assert!(stdout.contains(expected), "{expected}:\n{stdout}");
    }

    // A 403 on scale names verb, resource and namespace; nothing changes, and a retry
    // after RBAC is fixed (`drillbook resume`) scales.
    cluster.emulator.forbid("patch", "deployments/scale", "acme-dr");
    let scale_only = DRILL[..DRILL.find("[[step]]").unwrap()].to_string()
        + &DRILL[DRILL.find("[[step]]\nid = \"scale-down\"").unwrap()..];
    let runbook = home.runbook("scale.toml", &scale_only);
    let output = cluster.run(&home, &runbook, &["--yes"], "");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("forbidden: cannot patch deployments/scale in namespace `acme-dr` (context `emulator`)"),
        "{stdout}"
    );
    let dr = cluster.kubectl(&["-n", "acme-dr", "get", "deployments"]);
    assert!(table_row(&dr, "web").unwrap()[1].ends_with("/1"), "nothing scaled: {dr}");
    cluster.emulator.allow_all();
    let drill = home.drills().into_iter().last().unwrap();
    let resumed = cluster
        .drillbook(&home, &["resume", "--plain", "--yes"])
        .arg(drill.file_name().unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = stdout_of(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{}", stderr_of(&resumed));
    assert!(stdout.contains("scaled deployment/web from 1 to 0"), "{stdout}");
    let dr = cluster.kubectl(&["-n", "acme-dr", "get", "deployments"]);
    assert_eq!(table_row(&dr, "web").unwrap()[1], "0/0", "{dr}");
}

#[test]
fn the_wait_survives_an_api_server_restart() {
    let cluster = Cluster::start();
    // Slow pods, so the server restarts while the wait is watching.
    cluster.emulator.set_ready_delay(3.0);
    let home = Home::new();
    let wait_only = DRILL[..DRILL.find("[[step]]\nid = \"scale-down\"").unwrap()].to_string();
    let runbook = home.runbook("wait.toml", &wait_only);
    let out_path = home.path().join("stdout.txt");
    let mut child = cluster
        .drillbook(&home, &["run", "--plain", "--yes", "--context", "emulator"])
        .arg(&runbook)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&out_path).unwrap_or_default().contains("every pod must run tag") {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&out_path).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut emulator = cluster.emulator;
    emulator.restart();
    let status = child.wait().unwrap();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("watch lost"), "the break is reported: {stdout}");
    assert!(stdout.contains("watch re-established"), "{stdout}");
    assert!(stdout.contains("all Ready: web 1/1 ready · worker 1/1 ready"), "{stdout}");
}
