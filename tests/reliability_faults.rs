//! Faults of the outside world, through the real binary in plain mode.
//! S3 (moto behind a fault proxy): 503s and cut connections are retried,
//! a 403 fails the step naming the bucket without retrying for ever, the
//! server killed and restarted mid-download is survived, kill -9
//! mid-download resumes from the bytes on disk. Kubernetes (the API
//! emulator): unknown contexts, missing namespaces, a 403 on scale, the API
//! server restarted mid-watch. Commands: one that ignores SIGTERM is killed
//! with its whole process group when the drill is stopped; invalid UTF-8 and
//! a 1 MiB line are logged byte for byte and the drill carries on.

mod support;

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "support/k8s_dr.rs"]
mod k8s_dr;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/s3_drill.rs"]
mod s3_drill;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy};
use k8s::table_row;
use k8s_dr::{Cluster, DRILL};
use moto::Moto;
use s3_drill::{BUCKET, backup_runbook, run};
use support::reliability::{self, Counts};
use support::{Home, stderr_of, stdout_of, wait_for};

// ---------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------

#[test]
fn throttling_and_cut_connections_are_retried() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let size = 16 << 20;
    moto.put_large_object_with_sha256_checksum(BUCKET, "acme/daily-acme-1.pgdump", size, 3);
    let expected: String = moto::deterministic_sha256(size, 3).iter().map(|b| format!("{b:02x}")).collect();
    let proxy = FaultProxy::start(&moto.endpoint);
    let mut env = moto::aws_env(&proxy.endpoint);
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    for fault in [Fault::ServiceUnavailable { times: 2 }, Fault::CutAfterBytes { bytes: 3 << 20, times: 2 }] {
        proxy.set_fault(fault);
        let home = Home::new();
        let runbook = home.runbook("rb.toml", &backup_runbook(""));
        let output = run(&home, &env, &runbook, &["run", "--plain", "--yes"], "");
        let stdout = stdout_of(&output);
        assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
        assert!(stdout.contains(&format!("sha={expected}")), "{stdout}");
    }
    assert!(proxy.requests() > 6, "the faults were retried ({} requests)", proxy.requests());
    reliability::record(
        "throttling_and_cut_connections_are_retried",
        Counts { trials: 2, faults: proxy.faults_injected() as u64, ..Counts::default() },
    );
}

#[test]
fn kill_9_mid_download_then_resume_continues_from_disk() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let size = 512 << 20;
    moto.put_large_object_with_sha256_checksum(BUCKET, "acme/daily-acme-big.pgdump", size, 9);
    let expected: String = moto::deterministic_sha256(size, 9).iter().map(|b| format!("{b:02x}")).collect();
    let home = Home::new();
    let runbook = home.runbook("rb.toml", &backup_runbook(""));
    let mut command = home.cmd_std();
    command.args(["run", "--plain", "--yes"]).arg(&runbook).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in moto.env() {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    wait_for_partial(&home);
    child.kill().unwrap();
    child.wait().unwrap();
    let output = run(&home, &moto.env(), Path::new(""), &["resume", "--plain", "--yes"], "");
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("continuing with the backup chosen before"), "{stdout}");
    assert!(stdout.contains("resuming: "), "{stdout}");
    assert!(stdout.contains(&format!("sha={expected}")), "verified as a whole: {stdout}");
    reliability::record(
        "kill_9_mid_download_then_resume_continues_from_disk",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
}

#[test]
fn the_server_killed_mid_download_and_restarted_is_survived() {
    let mut moto = Moto::start();
    moto.create_bucket(BUCKET);
    let size = 256 << 20;
    moto.put_large_object(BUCKET, "acme/daily-acme-big.pgdump", size, 5);
    let expected: String = moto::deterministic_sha256(size, 5).iter().map(|b| format!("{b:02x}")).collect();
    // The client talks through a proxy, so while moto restarts and is
    // re-seeded it sees a server that refuses connections, as a restarting
    // server does.
    let proxy = FaultProxy::start(&moto.endpoint);
    let home = Home::new();
    let runbook = home.runbook("rb.toml", &backup_runbook(""));
    let mut command = home.cmd_std();
    command.args(["run", "--plain", "--yes"]).arg(&runbook).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in moto::aws_env(&proxy.endpoint) {
        command.env(k, v);
    }
    let child = command.spawn().unwrap();
    wait_for_partial(&home);
    proxy.set_fault(Fault::Refuse);
    moto.stop();
    // moto forgets everything: bring it back with the same object (same
    // ETag), as a restarted S3-compatible server would still have it.
    moto.restart();
    moto.create_bucket(BUCKET);
    moto.put_large_object(BUCKET, "acme/daily-acme-big.pgdump", size, 5);
    proxy.set_fault(Fault::None);
    let output = child.wait_with_output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("retrying"), "{stdout}");
    assert!(stdout.contains(&format!("sha={expected}")), "{stdout}");
    // The restart, plus every connection refused while moto was down.
    reliability::record(
        "the_server_killed_mid_download_and_restarted_is_survived",
        Counts { trials: 1, faults: 1 + proxy.faults_injected() as u64, ..Counts::default() },
    );
}

/// Waits until the download has put some bytes on disk (a checkpoint).
fn wait_for_partial(home: &Home) -> PathBuf {
    let started = Instant::now();
    loop {
        if let Some(drill) = home.drills().first() {
            let state = drill.join("downloads/fetch-backup/daily-acme-big.pgdump.partial.json");
            if std::fs::read_to_string(&state).is_ok_and(|s| s.contains("[[0,")) {
                return state;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the download never checkpointed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_403_fails_the_step_naming_the_bucket_and_resume_retries() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.put_object_with_sha256_checksum(BUCKET, "acme/daily-acme-1.pgdump", b"PGDMP daily");
    let proxy = FaultProxy::start(&moto.endpoint);
    proxy.set_fault(Fault::Forbidden);
    let mut env = moto::aws_env(&proxy.endpoint);
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    let home = Home::new();
    let runbook = home.runbook("rb.toml", &backup_runbook(""));
    let started = Instant::now();
    let output = run(&home, &env, &runbook, &["run", "--plain", "--yes"], "");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains(BUCKET), "the bucket is named: {stdout}");
    assert!(stdout.contains("AccessDenied") || stdout.contains("403") || stdout.contains("access denied"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(60), "a 403 is not retried for ever");
    assert!(!stdout.contains("| key="), "the next step never ran: {stdout}");
    let faults = proxy.faults_injected() as u64;

    // Access granted: resume retries the step and downloads.
    proxy.set_fault(Fault::None);
    let resumed = run(&home, &env, Path::new(""), &["resume", "--plain", "--yes"], "");
    let stdout = stdout_of(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{}", stderr_of(&resumed));
    assert!(stdout.contains("| key=acme/daily-acme-1.pgdump"), "{stdout}");
    reliability::record(
        "a_403_fails_the_step_naming_the_bucket_and_resume_retries",
        Counts { trials: 2, faults, ..Counts::default() },
    );
}

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

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
    reliability::record(
        "the_wait_survives_an_api_server_restart",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/// True once `pid` is gone (or a zombie waiting to be reaped).
fn process_gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let alive = unsafe { libc_kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false);
    !alive || zombie
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_with_its_group_when_the_drill_stops() {
    let home = Home::new();
    let runbook = home.runbook(
        "stubborn.toml",
        "[runbook]\nid = \"stubborn\"\ntitle = \"Stubborn\"\n[[step]]\nid = \"stubborn\"\nkind = \"command\"\nrun = \"trap '' TERM; sleep 1000 & echo $! > {{ drill.dir }}/grandchild; echo started; sleep 1000; wait\"\n",
    );
    let child = home
        .cmd_std()
        .args(["run", "--plain", "--yes"])
        .arg(&runbook)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = wait_for(|| home.drills().first().map(|d| d.join("grandchild")).filter(|p| p.exists()));
    let grandchild: i32 = wait_for(|| std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse().ok()));
    assert!(!process_gone(grandchild), "the TERM-immune grandchild runs");
    // SAFETY: SIGTERM to our own child.
    unsafe { libc_kill(child.id() as i32, 15) };
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{}", stderr_of(&output));
    assert!(started.elapsed() < Duration::from_secs(60), "the stop did not wait for the command for ever");
    let gone = wait_for(|| Some(process_gone(grandchild)).filter(|gone| *gone));
    assert!(gone, "the TERM-immune grandchild {grandchild} survived");
    let journal = home.journal();
    assert!(journal.contains("\"reason\":\"stopped by SIGTERM\""), "{journal}");
    reliability::record(
        "a_command_that_ignores_sigterm_is_killed_with_its_group_when_the_drill_stops",
        Counts { trials: 1, faults: 1, ..Counts::default() },
    );
}

#[test]
fn invalid_utf8_and_very_long_lines_are_logged_whole_and_the_drill_carries_on() {
    let home = Home::new();
    let runbook = home.runbook(
        "noisy.toml",
        r#"[runbook]
id = "noisy"
title = "Noisy"
[[step]]
id = "noisy"
kind = "command"
run = "printf '\\377\\376abc\\n'; head -c 1048576 /dev/zero | tr '\\0' x; echo; printf 'value=\\303(ok\\n'; echo value=ok"
capture = { name = "value", regex = "^value=(ok)$" }
[[step]]
id = "after"
kind = "command"
run = "echo after {{ value }}"
"#,
    );
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{}\n{}", &stdout[..stdout.len().min(4000)], stderr_of(&output));
    assert!(
        stdout.contains("  | after ok"),
        "the capture after the noise: {}",
        &stdout[stdout.len().saturating_sub(2000)..]
    );
    let drill = home.only_drill();
    let log = std::fs::read(drill.join("logs/noisy.1.log")).unwrap();
    assert!(log.starts_with(b"\xff\xfeabc\n"), "invalid UTF-8 is logged raw");
    assert_eq!(log.iter().filter(|&&b| b == b'x').count(), 1_048_576, "the long line is logged whole");
    assert!(log.windows(8).any(|w| w == b"value=\xc3("), "{:?}", String::from_utf8_lossy(&log[log.len() - 40..]));
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    home.cmd().args(["verify", &id]).assert().success();
    for format in ["md", "html", "json", "junit"] {
        home.cmd().args(["report", &id, "--format", format]).assert().success();
    }
    reliability::record(
        "invalid_utf8_and_very_long_lines_are_logged_whole_and_the_drill_carries_on",
        Counts { trials: 1, faults: 2, ..Counts::default() },
    );
}
