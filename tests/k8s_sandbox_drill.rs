//! Kubernetes drills end to end through the real binary in plain mode,
//! against the simulated cluster (`context = "sandbox:DIR"`): read the
//! production tag, deploy it to DR with a command, wait until DR runs it,
//! scale DR to zero after a typed confirmation; and the faults: a protected
//! namespace refused at run time, a crash-looping image timing out with its
//! reason and logs, a forbidden scale.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use support::{Home, stderr_of, stdout_of, wait_for};

const DRILL: &str = r#"
[runbook]
id = "k8s-drill"
title = "Kubernetes drill"
protected = ["{{ prod_namespace }}"]

[vars.cluster]
prompt = "sandbox:DIR"
[vars.prod_namespace]
default = "acme-production"
[vars.dr_namespace]
default = "acme-dr"
[vars.wait_for]
default = "20s"

[[step]]
id = "pick-tag"
kind = "k8s-image-tag"
context = "{{ cluster }}"
namespace = "{{ prod_namespace }}"
deployments = ["web"]
capture = "tag"

[[step]]
id = "deploy"
kind = "command"
run = """
"$DRILLBOOK" sandbox set-image {{ cluster_dir }} -n {{ dr_namespace }} web {{ tag.image }}
"$DRILLBOOK" sandbox set-image {{ cluster_dir }} -n {{ dr_namespace }} worker acme/worker:{{ tag }}
"""

[[step]]
id = "wait"
kind = "k8s-wait"
context = "{{ cluster }}"
namespace = "{{ dr_namespace }}"
expect_tag = "{{ tag }}"
timeout = "20s"

[[step]]
id = "scale-down"
kind = "k8s-scale"
context = "{{ cluster }}"
namespace = "{{ dr_namespace }}"
all = true
replicas = 0
confirm = "typed"
"#;

fn sandbox(home: &Home, args: &[&str]) -> String {
    let output = home.cmd_std().arg("sandbox").args(args).output().unwrap();
    assert!(output.status.success(), "sandbox {args:?}: {}", stderr_of(&output));
    stdout_of(&output)
}

/// A cluster with production on `main-9f8e7d6` (revision 2) and DR on an old tag.
fn cluster(home: &Home) -> String {
    let dir = home.path().join("cluster");
    let dir_text = dir.display().to_string();
    sandbox(home, &["init", &dir_text, "--ready-delay", "400ms"]);
    let image = |tag: &str| format!("registry.acme.io:5000/acme/web:{tag}");
    sandbox(home, &["apply", &dir_text, "-n", "acme-production", "web", &image("main-1a2b3c4"), "--replicas", "2"]);
    sandbox(home, &["set-image", &dir_text, "-n", "acme-production", "web", &image("main-9f8e7d6")]);
    sandbox(home, &["apply", &dir_text, "-n", "acme-dr", "web", &image("main-0000000"), "--replicas", "2"]);
    sandbox(home, &["apply", &dir_text, "-n", "acme-dr", "worker", "acme/worker:main-0000000"]);
    dir_text
}

fn drill(home: &Home, runbook: &Path, dir: &str, extra: &[&str], stdin: &str) -> Output {
    let mut child = home
        .cmd_std()
        .args(["run", "--plain"])
        .args(extra)
        .arg(runbook)
        .args(["--var", &format!("cluster=sandbox:{dir}"), "--var", &format!("cluster_dir={dir}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn with_cluster_dir(text: &str) -> String {
    text.replace("[vars.wait_for]", "[vars.cluster_dir]\nprompt = \"DIR\"\n[vars.wait_for]")
}

#[test]
fn production_tag_deployed_to_dr_waited_for_and_scaled_to_zero() {
    let home = Home::new();
    let dir = cluster(&home);
    let runbook = home.runbook("k8s.toml", &with_cluster_dir(DRILL));
    let output = drill(&home, &runbook, &dir, &[], "acme-production\nacme-dr\n");
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("1. main-9f8e7d6  running: web  revision 2"), "{stdout}");
    assert!(stdout.contains("2. main-1a2b3c4  running: -  revision 1"), "history offered: {stdout}");
    assert!(stdout.contains("captured tag = main-9f8e7d6 (registry.acme.io:5000/acme/web:main-9f8e7d6)"), "{stdout}");
    assert!(stdout.contains("every pod must run tag main-9f8e7d6"), "{stdout}");
    assert!(stdout.contains("all Ready: web 2/2 ready · worker 1/1 ready"), "{stdout}");
    // The typed confirmation names context, namespace and each workload.
    for expected in ["context:   sandbox", "namespace: acme-dr", "deployment/web: 2 → 0", "deployment/worker: 1 → 0"]
    {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    assert!(stdout.contains("`acme-production` does not match `acme-dr`"), "{stdout}");
    assert!(stdout.contains("all pods are gone"), "{stdout}");

    let get = |ns: &str| sandbox(&home, &["get", &dir, "-n", ns]);
    let dr = get("acme-dr");
    assert!(dr.contains("web                      0/0") && dr.contains("main-9f8e7d6"), "{dr}");
    let production = get("acme-production");
    let web = production.lines().find(|l| l.starts_with("web ")).unwrap_or_default();
    assert!(web.split_whitespace().nth(1).is_some_and(|ready| ready.ends_with("/2")), "untouched: {production}");

    let report = home.cmd_std().args(["report"]).arg(home.only_drill().file_name().unwrap()).output().unwrap();
    let report = stdout_of(&report);
    assert!(report.contains("- chosen tag `main-9f8e7d6`"), "{report}");
    assert!(report.contains("- cluster: context `sandbox`, namespace `acme-dr`"), "{report}");
    assert!(report.contains("  - deployment/web: 2\n  - deployment/worker: 1"), "previous replicas: {report}");
    assert!(report.contains("confirmed: typed `acme-dr`"), "{report}");
    let journal = home.journal();
    let chosen = journal.find("\"choice\":{\"context\":\"sandbox\"").expect("scale plan journaled");
    let scaled = journal.find("\"step\":\"scale-down\",\"attempt\":1").expect("scale started");
    assert!(chosen < scaled, "the previous replicas are journaled before scaling");
}

#[test]
fn a_protected_namespace_is_refused_at_run_time_and_nothing_is_scaled() {
    let home = Home::new();
    let dir = cluster(&home);
    // Only the read and the scale: DR pointed at production by a variable,
    // which `check` cannot see and the run must refuse.
    let scale_only = DRILL.split("[[step]]\nid = \"deploy\"").next().unwrap().to_string()
        + &DRILL[DRILL.find("[[step]]\nid = \"scale-down\"").unwrap()..];
    let runbook = home.runbook("k8s.toml", &with_cluster_dir(&scale_only));
    let output = drill(&home, &runbook, &dir, &["--yes", "--var", "dr_namespace=acme-production"], "");
    let stdout = stdout_of(&output);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("refusing to scale namespace `acme-production`: it is protected by this runbook"),
        "{stdout}"
    );
    let production = sandbox(&home, &["get", &dir, "-n", "acme-production"]);
    let web = production.lines().find(|l| l.starts_with("web ")).unwrap_or_default();
    assert!(web.split_whitespace().nth(1).is_some_and(|ready| ready.ends_with("/2")), "still 2 wanted: {production}");
}

#[test]
fn a_crash_looping_image_times_out_naming_the_pod_and_showing_its_logs() {
    let home = Home::new();
    let dir = cluster(&home);
    sandbox(&home, &["fail-image", &dir, "main-9f8e7d6"]);
    let runbook = home.runbook("k8s.toml", &with_cluster_dir(&DRILL.replace("timeout = \"20s\"", "timeout = \"3s\"")));
    let output = drill(&home, &runbook, &dir, &["--yes"], "");
    let stdout = stdout_of(&output);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("CrashLoopBackOff"), "{stdout}");
    assert!(stdout.contains("FATAL: could not connect to the database"), "the failing pod's logs: {stdout}");
    let timeout =
        stdout.lines().find(|l| l.contains("failed: timed out after 3s")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(timeout.contains("pod web-") && timeout.contains("CrashLoopBackOff (restarts"), "{timeout}");
    // The old pods keep serving: a failed rollout does not take DR down.
    assert!(stdout.contains("main-0000000"), "{stdout}");
}

#[test]
fn a_forbidden_scale_names_verb_resource_and_namespace() {
    let home = Home::new();
    let dir = cluster(&home);
    let runbook = home.runbook("k8s.toml", &with_cluster_dir(DRILL));
    let cluster = drillbook::engine::k8s::sim::SimCluster::open(Path::new(&dir)).unwrap();
    cluster.forbid("patch", "deployments/scale", "acme-dr").unwrap();
    let output = drill(&home, &runbook, &dir, &["--yes"], "");
    let stdout = stdout_of(&output);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("forbidden: cannot patch deployments/scale in namespace `acme-dr` (context `sandbox`)"),
        "{stdout}"
    );
}

#[test]
fn an_interrupted_wait_re_attaches_on_resume() {
    let home = Home::new();
    let dir = home.path().join("cluster").display().to_string();
    sandbox(&home, &["init", &dir, "--ready-delay", "4s"]);
    sandbox(&home, &["apply", &dir, "-n", "acme-dr", "web", "acme/web:v2", "--replicas", "2"]);
    let wait_only = "[runbook]\nid = \"w\"\ntitle = \"W\"\n[[step]]\nid = \"wait\"\nkind = \"k8s-wait\"\ncontext = \"{{ cluster }}\"\nnamespace = \"acme-dr\"\nexpect_tag = \"v2\"\ntimeout = \"60s\"\n[vars.cluster]\nprompt = \"sandbox:DIR\"\n";
    let runbook = home.runbook("wait.toml", wait_only);
    let out_path = home.path().join("out.txt");
    let mut child = home
        .cmd_std()
        .args(["run", "--plain", "--yes", "--var", &format!("cluster=sandbox:{dir}")])
        .arg(&runbook)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    wait_for("the wait to see a pod ContainerCreating", std::time::Duration::from_secs(30), || {
        let stdout = std::fs::read_to_string(&out_path).unwrap();
        if stdout.contains("ContainerCreating") { Ok(()) } else { Err(stdout) }
    });
    let killed = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("`drillbook resume` re-attaches to the cluster"), "{stdout}");
    assert!(home.journal().contains(r#""type":"step_interrupted","step":"wait""#), "{}", home.journal());

    let resumed = home.cmd_std().args(["resume", "--plain", "--yes"]).stdin(Stdio::null()).output().unwrap();
    let stdout = stdout_of(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{}", stderr_of(&resumed));
    assert!(stdout.contains("watching namespace `acme-dr` in context `sandbox`"), "re-attached: {stdout}");
    assert!(stdout.contains("all Ready: web 2/2 ready"), "{stdout}");
}

#[test]
fn a_resume_without_the_drills_context_does_not_scale_another_cluster() {
    let home = Home::new();
    let dr = home.path().join("dr-cluster").display().to_string();
    let prod = home.path().join("prod-cluster").display().to_string();
    for dir in [&dr, &prod] {
        sandbox(&home, &["init", dir, "--ready-delay", "200ms"]);
        sandbox(&home, &["apply", dir, "-n", "acme-dr", "web", "acme/web:v2", "--replicas", "2"]);
    }
    let runbook = home.runbook(
        "scale.toml",
        "[runbook]\nid = \"s\"\ntitle = \"S\"\n[[step]]\nid = \"tag\"\nkind = \"k8s-image-tag\"\nnamespace = \"acme-dr\"\n\
         [[step]]\nid = \"scale-down\"\nkind = \"k8s-scale\"\nnamespace = \"acme-dr\"\nall = true\nreplicas = 0\nconfirm = \"typed\"\n",
    );
    // The first session reads the DR cluster, then stops at the typed confirmation.
    let first = home
        .cmd_std()
        .args(["run", "--plain", "--context", &format!("sandbox:{dr}")])
        .arg(&runbook)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(stdout_of(&first).contains("Type `acme-dr` to run it"), "{}", stdout_of(&first));
    // Resumed without --context (here: another cluster): refused, nothing scaled anywhere.
    let resumed = home
        .cmd_std()
        .args(["resume", "--plain", "--yes", "--context", &format!("sandbox:{prod}")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = stdout_of(&resumed);
    assert!(!resumed.status.success(), "{stdout}");
    let refusal = format!("refusing to write to context `sandbox` (sandbox:{prod}): this drill's earlier");
    assert!(stdout.contains(&refusal), "{stdout}");
    assert!(stdout.contains(&format!("used `sandbox` (sandbox:{dr})")), "{stdout}");
    for dir in [&dr, &prod] {
        let get = sandbox(&home, &["get", dir, "-n", "acme-dr"]);
        let web = get.lines().find(|l| l.starts_with("web ")).unwrap_or_default();
        assert!(web.split_whitespace().nth(1).is_some_and(|r| r.ends_with("/2")), "{get}");
    }
}

#[test]
fn check_refuses_statefulsets_with_a_deployment_list() {
    let home = Home::new();
    let runbook = home.runbook(
        "bad.toml",
        "[runbook]\nid = \"b\"\ntitle = \"B\"\n[[step]]\nid = \"down\"\nkind = \"k8s-scale\"\nnamespace = \"dr\"\n\
         deployments = [\"web\"]\nstatefulsets = true\nreplicas = 0\n",
    );
    let output = home.cmd_std().arg("check").arg(&runbook).output().unwrap();
    let stderr = stderr_of(&output) + &stdout_of(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("bad.toml:9:16: error: `statefulsets = true` scales every StatefulSet"), "{stderr}");
}
