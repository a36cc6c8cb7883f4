//! `s3-check` re-proves the DR set-up: the backup user's least privilege by probe (moto with
//! IAM enforced: real signatures, real policies) and a replica's completeness, through the
//! binary, with the evidence in the journal and the reports and no secret on disk.

use crate::fault_proxy;
use crate::moto;
use crate::support;

use std::process::Command;

use moto::{Moto, aws_env};
use support::{Home, stderr_of, stdout_of};

const BUCKET: &str = "shop-hosting-services";
const PREFIX: &str = "shop/";
const BACKUP: &str = "shop/daily-shop-202612060300.pgdump";

struct Keys {
    admin: (String, String),
    backup: (String, String),
    wide: (String, String),
}

/// moto with IAM enforced after the three requests that create the admin (see
/// tests/servers/iam_setup.py), seeded with the backup user, a user with `s3:*`, the
/// versioned backups bucket and a real backup with two versions.
fn iam_moto() -> (Moto, Keys) {
    let moto = Moto::start_with_iam(3);
    let venv = support::server::test_venv();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/iam_setup.py");
    let output = Command::new(venv.join("bin/python"))
        .arg(script)
        .args([&moto.endpoint, BUCKET, PREFIX])
        .output()
        .expect("run iam_setup.py from the test venv");
    assert!(output.status.success(), "iam_setup.py: {}\n{}", stderr_of(&output), moto.log_tail());
    let users: serde_json::Value = serde_json::from_slice(&output.stdout).expect("iam_setup.py prints JSON");
    let pair =
        |name: &str| (users[name][0].as_str().unwrap().to_string(), users[name][1].as_str().unwrap().to_string());
    let keys = Keys { admin: pair("admin"), backup: pair("backup"), wide: pair("wide") };
    (moto, keys)
}

/// Every version and delete marker under the prefix, as the admin sees them: (key, version, is marker).
fn versions(moto: &Moto, admin: &(String, String)) -> Vec<(String, String, bool)> {
    let code = format!(
        "import boto3, json\n\
         s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{}', aws_secret_access_key='{}')\n\
         out = s3.list_object_versions(Bucket='{BUCKET}', Prefix='{PREFIX}')\n\
         print(json.dumps([[v['Key'], v['VersionId'], False] for v in out.get('Versions', [])] + \
         [[m['Key'], m['VersionId'], True] for m in out.get('DeleteMarkers', [])]))",
        moto.endpoint, admin.0, admin.1
    );
    let output = Command::new(support::server::test_venv().join("bin/python"))
        .args(["-c", &code])
        .output()
        .expect("list versions with boto3");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let mut listed: Vec<(String, String, bool)> = serde_json::from_slice(&output.stdout).unwrap();
    listed.sort();
    listed
}

fn runbook(can: &str, cannot: &str) -> String {
    format!(
        r#"[runbook]
id = "least-privilege"
title = "Least privilege"
[vars.backup_key_id]
secret = true
env = "TEST_BACKUP_KEY_ID"
[vars.backup_secret]
secret = true
env = "TEST_BACKUP_SECRET"
[[step]]
id = "check-backup-user"
kind = "s3-check"
bucket = "{BUCKET}"
prefix = "{PREFIX}"
as = {{ access_key_id = "{{{{ backup_key_id }}}}", secret_access_key = "{{{{ backup_secret }}}}" }}
can = {can}
cannot = {cannot}
expect = {{ object_ownership = "BucketOwnerEnforced", versioning = true }}
"#
    )
}

fn run(
    home: &Home,
    moto: &Moto,
    runbook: &str,
    owner: &(String, String),
    probed: &(String, String),
) -> std::process::Output {
    let path = home.runbook("access.toml", runbook);
    let mut command = home.cmd_std();
    command.args(["run", "--plain", "--yes"]).arg(path);
    for (name, value) in aws_env(&moto.endpoint) {
        command.env(name, value);
    }
    command
        .env("AWS_ACCESS_KEY_ID", &owner.0)
        .env("AWS_SECRET_ACCESS_KEY", &owner.1)
        .env("TEST_BACKUP_KEY_ID", &probed.0)
        .env("TEST_BACKUP_SECRET", &probed.1)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run drillbook")
}

fn evidence(home: &Home) -> serde_json::Value {
    home.journal()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|record| {
            let event = record.get("event").cloned().unwrap_or(record);
            (event["type"] == "chosen").then(|| event["choice"].clone())
        })
        .expect("the step journaled its evidence")
}

fn assert_no_secret_anywhere(home: &Home, output: &std::process::Output, secret: &str) {
    assert!(
        !stdout_of(output).contains(secret) && !stderr_of(output).contains(secret),
        "the secret reached the output"
    );
    for file in home.all_files() {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret), "the secret key reached {}", file.display());
    }
}

#[test]
fn the_provisioning_pages_backup_user_passes_and_leaves_no_probe() {
    let (moto, keys) = iam_moto();
    let before = versions(&moto, &keys.admin);
    let home = Home::new();
    let output = run(
        &home,
        &moto,
        &runbook(r#"["list", "put"]"#, r#"["get", "delete", "delete-version"]"#),
        &keys.admin,
        &keys.backup,
    );
    let out = stdout_of(&output);
    assert!(output.status.success(), "{out}\n{}", stderr_of(&output));
    let evidence = evidence(&home);
    assert_eq!(evidence["kind"], "bucket");
    let probes = evidence["probes"].as_array().unwrap();
    let summary: Vec<(String, String)> = probes
        .iter()
        .map(|p| (p["permission"].as_str().unwrap().to_string(), p["outcome"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            ("list".to_string(), "allowed".to_string()),
            ("put".into(), "allowed".into()),
            ("get".into(), "denied (AccessDenied)".into()),
            ("delete-version".into(), "denied (AccessDenied)".into()),
            ("delete".into(), "denied (AccessDenied)".into()),
        ]
    );
    let last4 = &keys.backup.0[keys.backup.0.len() - 4..];
    assert!(probes.iter().all(|p| p["identity"] == format!("key …{last4}")), "{probes:?}");
    assert!(evidence["rows"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{evidence}");
    // The probe and every version of it are gone; the real backup keeps both versions.
    assert_eq!(versions(&moto, &keys.admin), before);
    assert_eq!(before.iter().filter(|(key, _, marker)| key == BACKUP && !marker).count(), 2);
    // The reports show the probes.
    let report = std::fs::read_to_string(home.only_drill().join("report.md")).unwrap();
    assert!(report.contains("DeleteObject s3://shop-hosting-services/shop/.drillbook-probe/"), "{report}");
    assert_no_secret_anywhere(&home, &output, &keys.backup.1);
}

#[test]
fn a_user_with_s3_star_fails_naming_delete_and_the_backup_survives() {
    let (moto, keys) = iam_moto();
    let before = versions(&moto, &keys.admin);
    let home = Home::new();
    let output = run(
        &home,
        &moto,
        &runbook(r#"["list", "put"]"#, r#"["get", "delete", "delete-version"]"#),
        &keys.admin,
        &keys.wide,
    );
    let text = format!("{}{}", stdout_of(&output), stderr_of(&output));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "can delete backups: DeleteObject is allowed on shop-hosting-services/shop/ — a leaked key can destroy them"
        ),
        "{text}"
    );
    assert!(text.contains("can read backups"), "{text}");
    let evidence = evidence(&home);
    assert!(evidence["probes"].as_array().unwrap().iter().filter(|p| p["ok"] == false).count() == 3, "{evidence}");
    assert!(evidence.get("probes_left").is_none(), "{evidence}");
    assert_eq!(versions(&moto, &keys.admin), before, "the probes touched only their own object");
    let html = std::fs::read_to_string(home.only_drill().join("report.html")).unwrap();
    assert!(html.contains("can delete backups"), "the HTML report names the finding");
    assert_no_secret_anywhere(&home, &output, &keys.wide.1);
}

#[test]
fn a_can_that_is_denied_names_the_permission_and_s3s_code() {
    let (moto, keys) = iam_moto();
    let home = Home::new();
    let output = run(&home, &moto, &runbook(r#"["list", "get"]"#, "[]"), &keys.admin, &keys.backup);
    let text = format!("{}{}", stdout_of(&output), stderr_of(&output));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("cannot get: GetObject on s3://shop-hosting-services/shop/.drillbook-probe/"), "{text}");
    assert!(text.contains("was denied (AccessDenied)"), "{text}");
}

#[test]
fn wrong_keys_are_an_error_not_a_denial() {
    let (moto, keys) = iam_moto();
    let home = Home::new();
    let wrong = (keys.backup.0.clone(), "not-the-secret".to_string());
    let output = run(&home, &moto, &runbook(r#"["list"]"#, r#"["delete"]"#), &keys.admin, &wrong);
    let text = format!("{}{}", stdout_of(&output), stderr_of(&output));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("S3 does not accept the probed identity's keys (SignatureDoesNotMatch)"), "{text}");
}

fn replica_runbook(extra: &str) -> String {
    format!(
        r#"[runbook]
id = "replica"
title = "Replica"
[[step]]
id = "check-replica"
kind = "s3-check"
bucket = "shop-assets-dr"
replica_of = "shop-assets"
{extra}
"#
    )
}

fn run_replica(home: &Home, moto: &Moto, runbook: &str) -> std::process::Output {
    let path = home.runbook("replica.toml", runbook);
    let mut command = home.cmd_std();
    command.args(["run", "--plain", "--yes"]).arg(path).stdin(std::process::Stdio::null());
    for (name, value) in aws_env(&moto.endpoint) {
        command.env(name, value);
    }
    command.output().expect("run drillbook")
}

#[test]
fn equal_buckets_pass_and_every_difference_is_named() {
    let moto = Moto::start();
    moto.create_bucket("shop-assets");
    moto.create_bucket("shop-assets-dr");
    for i in 0..12 {
        let key = format!("images/{i:03}.png");
        moto.put_object("shop-assets", &key, format!("image {i}").as_bytes());
        moto.put_object("shop-assets-dr", &key, format!("image {i}").as_bytes());
    }
    let home = Home::new();
    let output = run_replica(&home, &moto, &replica_runbook(""));
    assert!(output.status.success(), "{}\n{}", stdout_of(&output), stderr_of(&output));
    let replica = &evidence(&home)["replica"];
    assert_eq!((replica["source_objects"].as_u64(), replica["missing"].as_u64()), (Some(12), Some(0)), "{replica}");
    assert_eq!(replica["sampled"], 12);

    // 3 missing, 1 different, 1 only in the replica.
    for i in [2, 5, 9] {
        moto.delete_object("shop-assets-dr", &format!("images/{i:03}.png"));
    }
    moto.put_object("shop-assets-dr", "images/004.png", b"another image");
    moto.put_object("shop-assets-dr", "images/stale.png", b"left over");
    let home = Home::new();
    let output = run_replica(&home, &moto, &replica_runbook(""));
    let text = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{text}\n{}", stderr_of(&output));
    let replica = &evidence(&home)["replica"];
    assert_eq!(replica["missing_examples"], serde_json::json!(["images/002.png", "images/005.png", "images/009.png"]));
    assert_eq!(replica["differ_examples"], serde_json::json!(["images/004.png"]));
    assert_eq!(replica["extra_examples"], serde_json::json!(["images/stale.png"]));
    assert!(text.contains("the replica shop-assets-dr misses 3 object(s) of shop-assets (allowed 0)"), "{text}");
    assert!(text.contains("1 object(s) differ in size or ETag"), "{text}");

    // Objects newer than max_lag are in flight, not missing.
    let home = Home::new();
    let output = run_replica(&home, &moto, &replica_runbook("max_lag = \"1h\"\nsample = 0"));
    let replica = &evidence(&home)["replica"];
    assert_eq!((replica["missing"].as_u64(), replica["in_flight"].as_u64()), (Some(0), Some(3)), "{replica}");
    // Still failing: one object differs.
    assert_eq!(output.status.code(), Some(1));
}

/// moto sets no `x-amz-replication-status`; the fault proxy adds S3's FAILED to one object's HEAD.
#[test]
fn a_failed_replication_status_fails_the_step_naming_the_key() {
    let moto = Moto::start();
    moto.create_bucket("shop-assets");
    moto.create_bucket("shop-assets-dr");
    for i in 0..5 {
        let key = format!("images/{i:03}.png");
        moto.put_object("shop-assets", &key, b"image");
        moto.put_object("shop-assets-dr", &key, b"image");
    }
    let proxy = fault_proxy::FaultProxy::start(&moto.endpoint);
    proxy.set_fault(fault_proxy::Fault::HeadHeader {
        path_contains: "/shop-assets/images/003.png".into(),
        header: "x-amz-replication-status".into(),
        value: "FAILED".into(),
    });
    let home = Home::new();
    let path = home.runbook("replica.toml", &replica_runbook(""));
    let mut command = home.cmd_std();
    command.args(["run", "--plain", "--yes"]).arg(path).stdin(std::process::Stdio::null());
    for (name, value) in aws_env(&proxy.endpoint) {
        command.env(name, value);
    }
    let output = command.output().expect("run drillbook");
    let text = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{text}\n{}", stderr_of(&output));
    assert!(text.contains("replication FAILED for: images/003.png"), "{text}");
    let replica = &evidence(&home)["replica"];
    assert_eq!(replica["failed"], serde_json::json!(["images/003.png"]), "{replica}");
    assert_eq!((replica["missing"].as_u64(), replica["sampled"].as_u64()), (Some(0), Some(5)));
    assert!(proxy.faults_injected() >= 1);
}
