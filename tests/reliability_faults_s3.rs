//! S3 faults through the real binary in plain mode, against moto behind a
//! fault proxy: 503s and cut connections are retried, a 403 fails the step
//! naming the bucket without retrying for ever (and resume retries it), the
//! server killed and restarted mid-download is survived, kill -9
//! mid-download resumes from the bytes on disk.

use crate::support;

use crate::fault_proxy;
use crate::moto;
use crate::s3_drill;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy};
use moto::Moto;
use s3_drill::{BUCKET, backup_runbook, run};
use support::reliability::{self, Counts};
use support::{Home, stderr_of, stdout_of, wait_for};

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
    wait_for("the download to checkpoint", Duration::from_secs(60), || {
        let drill = home.drills().into_iter().next()?;
        let state = drill.join("downloads/fetch-backup/daily-acme-big.pgdump.partial.json");
        std::fs::read_to_string(&state).is_ok_and(|s| s.contains("[[0,")).then_some(state)
    })
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
