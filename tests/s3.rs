//! `s3-backup` and `s3-check` end to end through the real binary, against
//! moto on loopback (started here) and against the sandbox directory store,
//! with the same cases; plus a checksum that does not match. (503s, 403s, cut
//! connections, the server killed and restarted mid-download and kill -9
//! mid-download are in `reliability_faults_s3.rs`.)

use crate::support;

use crate::moto;
use crate::s3_drill;

use std::time::Duration;

use moto::Moto;
use s3_drill::{BUCKET, backup_runbook, run};
use serde_json::Value;
use support::{Home, stderr_of, stdout_of};

/// Where the test objects live: moto (the real S3 API) or the sandbox directory.
enum Backend {
    Moto(Moto),
    Dir(tempfile::TempDir),
}

impl Backend {
    fn endpoint(&self) -> String {
        match self {
            Backend::Moto(moto) => moto.endpoint.clone(),
            Backend::Dir(dir) => format!("file://{}", dir.path().display()),
        }
    }

    fn create_bucket(&self, bucket: &str, versioned: bool) {
        match self {
            Backend::Moto(moto) => {
                moto.create_bucket(bucket);
                if versioned {
                    moto.put_bucket_versioning(bucket, true);
                }
            }
            Backend::Dir(dir) => {
                std::fs::create_dir_all(dir.path().join(bucket)).unwrap();
                if versioned {
                    std::fs::create_dir_all(dir.path().join(bucket).join(".versions")).unwrap();
                }
            }
        }
    }

    /// Uploads; on a versioned bucket an existing key keeps its old version.
    fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        match self {
            Backend::Moto(moto) => {
                moto.put_object_with_sha256_checksum(bucket, key, body);
            }
            Backend::Dir(dir) => {
                let path = dir.path().join(bucket).join(key);
                let versions = dir.path().join(bucket).join(".versions");
                if path.is_file() && versions.is_dir() {
                    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                    let id = modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos().to_string();
                    let old = versions.join(key).join(id);
                    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
                    std::fs::rename(&path, &old).unwrap();
                }
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, body).unwrap();
            }
        }
        // LastModified has one-second resolution on S3: keep uploads apart.
        std::thread::sleep(Duration::from_millis(1100));
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = moto::aws_env(&self.endpoint());
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), self.endpoint()));
        env
    }
}

fn backends() -> Vec<Backend> {
    vec![Backend::Moto(Moto::start()), Backend::Dir(tempfile::tempdir().unwrap())]
}

fn report(home: &Home) -> Value {
    let id = home.only_drill().file_name().unwrap().to_string_lossy().to_string();
    let output = home.cmd().args(["report", &id, "--format", "json"]).output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn seed(backend: &Backend) -> (Vec<u8>, Vec<u8>) {
    backend.create_bucket(BUCKET, true);
    backend.put(BUCKET, "acme/daily-acme-202611250300.pgdump", b"PGDMP old daily");
    backend.put(BUCKET, "acme/weekly-acme-202611260300.pgdump", b"PGDMP weekly (newer, but not daily)");
    let older_version = b"PGDMP newest key, first upload".to_vec();
    backend.put(BUCKET, "acme/daily-acme-202611270300.pgdump", &older_version);
    let newest = b"PGDMP newest key, second upload: the current version".to_vec();
    backend.put(BUCKET, "acme/daily-acme-202611270300.pgdump", &newest);
    backend.put(BUCKET, "other/daily-acme-202611280300.pgdump", b"outside the prefix");
    (newest, older_version)
}

#[test]
fn the_newest_matching_backup_is_downloaded_verified_and_reported() {
    for backend in backends() {
        let home = Home::new();
        let (newest, _) = seed(&backend);
        let runbook = home.runbook("rb.toml", &backup_runbook(""));
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain", "--yes"], "");
        let stdout = stdout_of(&output);
        assert!(output.status.success(), "{}: {stdout}\n{}", backend.endpoint(), stderr_of(&output));
        assert!(stdout.contains("verified: size, SHA-256 checksum"), "{stdout}");
        assert!(
            stdout.contains(&format!("key=acme/daily-acme-202611270300.pgdump sha={}", sha256_hex(&newest))),
            "{stdout}"
        );
        let drill = home.only_drill();
        let file = drill.join("downloads/fetch-backup/daily-acme-202611270300.pgdump");
        assert_eq!(std::fs::read(&file).unwrap(), newest);
        let leftovers: Vec<_> =
            std::fs::read_dir(drill.join("downloads")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "no .partial files left: {leftovers:?}");
        let report = report(&home);
        let capture = &report["steps"][0]["captures"]["backup"];
        assert_eq!(capture["fields"]["key"], "acme/daily-acme-202611270300.pgdump");
        assert_eq!(capture["fields"]["size"], newest.len());
        assert_eq!(capture["fields"]["sha256"], sha256_hex(&newest));
        assert_eq!(capture["fields"]["bucket"], BUCKET);
        assert_eq!(report["rpo"]["verdict"], "PASS", "{}", report["rpo"]);
    }
}

#[test]
fn choose_offers_older_versions_and_downloads_the_pick() {
    for backend in backends() {
        let home = Home::new();
        let (_, older) = seed(&backend);
        let runbook = home.runbook("rb.toml", &backup_runbook("select = \"choose\"\nversions = true"));
        // Listing newest first: 1 = current version, 2 = the older version of the same key.
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain"], "2\n");
        let stdout = stdout_of(&output);
        assert!(output.status.success(), "{}: {stdout}\n{}", backend.endpoint(), stderr_of(&output));
        assert!(stdout.contains(&format!("sha={}", sha256_hex(&older))), "{stdout}");
        let journal = home.journal();
        assert!(journal.contains(r#""type":"chosen""#), "the choice is journaled: {journal}");
    }
}

#[test]
fn clear_errors_for_missing_buckets_and_no_match() {
    for backend in backends() {
        let home = Home::new();
        backend.create_bucket(BUCKET, false);
        backend.put(BUCKET, "acme/weekly-acme-1.pgdump", b"x");
        let runbook = home.runbook("rb.toml", &backup_runbook(""));
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain", "--yes"], "");
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stdout_of(&output).contains("no backup under s3://acme-hosting-services/acme/ matching ^acme/daily-"),
            "{}",
            stdout_of(&output)
        );
        let home = Home::new();
        let runbook =
            home.runbook("rb.toml", &backup_runbook("").replace("{{ project }}-hosting-services", "missing-bucket"));
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain", "--yes"], "");
        assert!(stdout_of(&output).contains("no such bucket: s3://missing-bucket"), "{}", stdout_of(&output));
    }
}

#[test]
fn more_than_a_thousand_keys_are_paginated() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    for i in 0..1050 {
        moto.put_object(BUCKET, &format!("acme/daily-acme-2026010{:04}.pgdump", i), b"x");
    }
    std::thread::sleep(Duration::from_millis(1100));
    moto.put_object(BUCKET, "acme/daily-acme-zzzz-newest.pgdump", b"the newest of 1051");
    let home = Home::new();
    let runbook = home.runbook("rb.toml", &backup_runbook(""));
    let output = run(&home, &moto.env(), &runbook, &["run", "--plain", "--yes"], "");
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("… and 1041 more"), "all 1,051 keys listed: {stdout}");
    assert!(stdout.contains("key=acme/daily-acme-zzzz-newest.pgdump"), "{stdout}");
}

#[test]
fn a_big_object_downloads_in_ranged_parts_and_one_stream_alike() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let size = 64 << 20;
    moto.put_large_object_with_sha256_checksum(BUCKET, "acme/daily-acme-big.pgdump", size, 7);
    let expected: String = moto::deterministic_sha256(size, 7).iter().map(|b| format!("{b:02x}")).collect();
    for (extra, strategy) in [("parts = 4", "4 concurrent ranged parts"), ("", "one stream (custom endpoint)")] {
        let home = Home::new();
        let runbook = home.runbook("rb.toml", &backup_runbook(extra));
        let output = run(&home, &moto.env(), &runbook, &["run", "--plain", "--yes"], "");
        let stdout = stdout_of(&output);
        assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
        assert!(stdout.contains(&format!("strategy: {strategy}")), "{stdout}");
        assert!(stdout.contains(&format!("sha={expected}")), "{stdout}");
    }
}

#[test]
fn a_wrong_checksum_fails_the_step_and_deletes_the_file() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.put_object_claiming_sha256(
        BUCKET,
        "acme/daily-acme-1.pgdump",
        b"corrupted data",
        &moto::base64_encode(&[0u8; 32]),
    );
    let home = Home::new();
    let runbook = home.runbook("rb.toml", &backup_runbook(""));
    let output = run(&home, &moto.env(), &runbook, &["run", "--plain", "--yes"], "");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("verification failed: SHA-256 checksum: expected AAAA"), "{stdout}");
    assert!(stdout.contains("the file was deleted"), "{stdout}");
    assert!(!stdout.contains("| key="), "the next step never got the file: {stdout}");
    let downloads: Vec<_> = std::fs::read_dir(home.only_drill().join("downloads/fetch-backup")).unwrap().collect();
    assert!(downloads.is_empty(), "{downloads:?}");
}

#[test]
fn s3_check_reports_property_by_property() {
    let moto = Moto::start();
    moto.create_bucket("acme-assets");
    moto.put_bucket_versioning("acme-assets", true);
    moto.create_bucket(BUCKET);
    let home = Home::new();
    let runbook = home.runbook(
        "check.toml",
        r#"[runbook]
id = "check"
title = "Provisioning"
[[step]]
id = "backups-bucket"
kind = "s3-check"
bucket = "acme-hosting-services"
expect = { versioning = true, encryption = false, replication = false }
on_failure = "continue"
[[step]]
id = "assets-like"
kind = "s3-check"
bucket = "acme-hosting-services"
same_as = "acme-assets"
on_failure = "continue"
[[step]]
id = "assets"
kind = "s3-check"
bucket = "acme-assets"
expect = { versioning = true }
"#,
    );
    let output = run(&home, &moto.env(), &runbook, &["run", "--plain", "--yes"], "");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("bucket differs: versioning (expected yes, actual no)"), "{stdout}");
    assert!(stdout.contains("bucket differs: versioning (expected yes (same as acme-assets), actual no)"), "{stdout}");
    let report = report(&home);
    assert_eq!(report["steps"][0]["status"], "failed");
    assert_eq!(report["steps"][2]["status"], "done", "{}", report["steps"][2]);
    // Fix the bucket: the same check now passes.
    moto.put_bucket_versioning(BUCKET, true);
    let home = Home::new();
    let runbook = home.runbook("check.toml", &std::fs::read_to_string(&runbook).unwrap());
    let output = run(&home, &moto.env(), &runbook, &["run", "--plain", "--yes"], "");
    assert!(output.status.success(), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("versioning   yes       yes     ok"), "{}", stdout_of(&output));
}

#[test]
fn unreachable_endpoints_and_missing_credentials_are_named() {
    let home = Home::new();
    let runbook = home.runbook("rb.toml", &backup_runbook(""));
    // Nothing listens on port 9 of loopback.
    let env = moto::aws_env("http://127.0.0.1:9");
    let output = run(&home, &env, &runbook, &["run", "--plain", "--yes"], "");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("cannot reach http://127.0.0.1:9"), "{stdout}");

    let home = Home::new();
    let runbook = home.runbook("rb.toml", &backup_runbook(""));
    let moto = Moto::start();
    let mut command = home.cmd_std();
    command.args(["run", "--plain", "--yes"]).arg(&runbook);
    for (k, v) in moto.env() {
        if !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET_ACCESS_KEY") {
            command.env(k, v);
        }
    }
    for name in moto::AWS_ENV_TO_REMOVE {
        command.env_remove(name);
    }
    command.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").env("HOME", home.path());
    let output = command.output().unwrap();
    let stdout = stdout_of(&output);
    assert!(stdout.contains("no AWS credentials found"), "{stdout}");
}

/// Three uploads of one key in a versioned bucket, and the whole second
/// (before the third upload, after the second) that separates them.
fn dated_versions(backend: &Backend) -> jiff::Timestamp {
    backend.create_bucket(BUCKET, true);
    backend.put(BUCKET, "acme/daily-acme.pgdump", b"PGDMP monday");
    backend.put(BUCKET, "acme/daily-acme.pgdump", b"PGDMP tuesday");
    // The second upload is at least 1.1 s old (`put` waits); S3 keeps whole seconds, so the
    // third, made after this, is dated at or after the start of this second.
    let now = jiff::Timestamp::now();
    let between = jiff::Timestamp::from_second(now.as_second()).unwrap() - jiff::SignedDuration::from_millis(50);
    backend.put(BUCKET, "acme/daily-acme.pgdump", b"PGDMP wednesday");
    between
}

#[test]
fn select_before_restores_the_newest_version_at_or_before_a_point_in_time() {
    for backend in backends() {
        let home = Home::new();
        let between = dated_versions(&backend);
        let extra = format!("select = \"before\"\nbefore = \"{between}\"\nversions = true");
        let runbook = home.runbook("rb.toml", &backup_runbook(&extra));
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain", "--yes"], "");
        let stdout = stdout_of(&output);
        assert!(output.status.success(), "{}: {stdout}\n{}", backend.endpoint(), stderr_of(&output));
        let drill = home.only_drill();
        let file = drill.join("downloads/fetch-backup/daily-acme.pgdump");
        assert_eq!(std::fs::read(&file).unwrap(), b"PGDMP tuesday", "{stdout}");
        let choice = &report(&home)["steps"][0]["choice"];
        assert_eq!(choice["policy"], format!("newest at or before {between}"), "{choice}");
        let reason = choice["reason"].as_str().unwrap();
        assert!(reason.contains("1 newer backup(s) passed over"), "{reason}");

        // A point before every backup: the step fails, saying so.
        let home = Home::new();
        let extra = "select = \"before\"\nbefore = \"2001-01-01T00:00:00Z\"\nversions = true";
        let runbook = home.runbook("rb.toml", &backup_runbook(extra));
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain", "--yes"], "");
        let stdout = stdout_of(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("no backup was modified at or before 2001-01-01T00:00:00Z"), "{stdout}");
    }
}

#[test]
fn select_random_picks_within_the_window_reproducibly_from_the_drill_id() {
    for backend in backends() {
        backend.create_bucket(BUCKET, false);
        for day in ["25", "26", "27"] {
            backend.put(BUCKET, &format!("acme/daily-acme-202611{day}0300.pgdump"), format!("PGDMP {day}").as_bytes());
        }
        let home = Home::new();
        let runbook = home.runbook("rb.toml", &backup_runbook("select = \"random\"\nwindow = \"1h\""));
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain", "--yes"], "");
        let stdout = stdout_of(&output);
        assert!(output.status.success(), "{}: {stdout}\n{}", backend.endpoint(), stderr_of(&output));
        let json = report(&home);
        let choice = &json["steps"][0]["choice"];
        assert_eq!(choice["policy"], "random within 1h", "{choice}");
        let reason = choice["reason"].as_str().unwrap();
        assert!(
            reason.contains("of the 3 backups modified since") && reason.contains("picked from the drill id"),
            "{reason}"
        );
        // Reproducible: the drill id decides, as `pick` computes it.
        let id = json["drill_id"].as_str().unwrap();
        let digest = {
            use sha2::Digest;
            sha2::Sha256::digest(id.as_bytes())
        };
        let index = (u64::from_be_bytes(digest[..8].try_into().unwrap()) % 3) as usize;
        let newest_first = ["27", "26", "25"];
        let expected = format!("acme/daily-acme-202611{}0300.pgdump", newest_first[index]);
        assert_eq!(choice["key"], expected.as_str(), "{choice}");

        // A window no backup falls in: the step fails, saying so.
        let home = Home::new();
        let runbook = home.runbook("rb.toml", &backup_runbook("select = \"random\"\nwindow = \"1s\""));
        let output = run(&home, &backend.env(), &runbook, &["run", "--plain", "--yes"], "");
        let stdout = stdout_of(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("no backup was modified within 1s of now"), "{stdout}");
    }
}
