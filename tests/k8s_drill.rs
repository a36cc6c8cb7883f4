//! The Kubernetes part of a drill end to end, through the real binary in
//! plain mode, against the Kubernetes API emulator with the real kube client:
//! read the tag production runs, deploy it to DR with `kubectl set image`,
//! wait with a live pod table until DR runs that tag, scale DR to zero after
//! typing its namespace; every result cross-checked with kubectl. (The
//! faults, an unknown context, a missing or empty namespace, a 403 on scale
//! and the API server restarting during the wait, are in
//! `reliability_faults_k8s.rs`.)

use crate::k8s;
use crate::k8s_dr;
use crate::support;

use k8s::table_row;
use k8s_dr::{Cluster, DRILL, image};
use support::{Home, stderr_of, stdout_of};

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
