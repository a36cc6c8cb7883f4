//! Kubernetes faults through the real binary in plain mode, against the
//! Kubernetes API emulator: an unknown context, a missing or empty
//! namespace, an unreachable API server, a 403 on scale (resume scales once
//! RBAC allows it), and the API server restarted mid-watch.

use crate::k8s;
use crate::k8s_dr;
use crate::support;

use std::process::Stdio;
use std::time::Duration;

use k8s::table_row;
use k8s_dr::{Cluster, DRILL};
use support::reliability::{self, Counts};
use support::{Home, stderr_of, stdout_of, wait_for};

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
    reliability::record(
        "cluster_faults_give_clear_errors_and_the_drill_stays_usable",
        Counts { trials: cases.len() as u64 + 2, faults: cases.len() as u64 + 1, ..Counts::default() },
    );
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
    wait_for("the wait to watch the pods", Duration::from_secs(60), || {
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        if stdout.contains("every pod must run tag") { Ok(()) } else { Err(stdout) }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut emulator = cluster.emulator;
    emulator.restart();
    let status = child.wait().unwrap();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("watch lost"), "the break is reported: {stdout}");
    assert!(stdout.contains("watch re-established"), "{stdout}");
    assert!(stdout.contains("all Ready: web 1/1 ready · worker 1/1 ready"), "{stdout}");
    reliability::record(
        "the_wait_survives_an_api_server_restart",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
}
