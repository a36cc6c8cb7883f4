//! The evidence pack, through the real binary: `drillbook export` of a drill
//! with logs and evidence files, `verify-pack` of the pack as written and of
//! packs altered one byte at a time, SSH signatures made from a key file and
//! by ssh-agent and checked by `ssh-keygen -Y verify`.

use crate::support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use drillbook::drill::event::{Event, FileOrigin};
use drillbook::drill::journal::Journal;
use sha2::{Digest, Sha256};
use support::{Home, stderr_of, stdout_of};

const RUNBOOK: &str = r#"
[runbook]
id = "pack-drill"
title = "Evidence pack drill"

[[step]]
id = "restore"
kind = "command"
run = "echo restored 42 rows; echo 'a warning' >&2"

[[step]]
id = "smoke"
kind = "command"
run = "echo smoke ok"
"#;

/// A finished plain drill with a screenshot and an attachment journaled,
/// a backup in downloads/ and a temporary file in logs/.
struct Drill {
    home: Home,
    dir: PathBuf,
    id: String,
    work: tempfile::TempDir,
}

fn drill() -> Drill {
    let home = Home::new();
    let runbook = home.runbook("pack.toml", RUNBOOK);
    let output = home.cmd().args(["run", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    assert!(output.status.success(), "the drill failed: {}", stderr_of(&output));
    let dir = home.only_drill();
    let id = dir.file_name().unwrap().to_string_lossy().to_string();
    attach(&dir, "smoke", "login.png", &png_bytes(), FileOrigin::Screenshot);
    attach(&dir, "restore", "row-counts.txt", b"pages 42\nimages 7\n", FileOrigin::Attachment);
    std::fs::write(dir.join("downloads/backup.pgdump"), b"production data").unwrap();
    std::fs::write(dir.join("logs/.restore.1.log.123.tmp"), b"half written").unwrap();
    Drill { home, dir, id, work: tempfile::tempdir().unwrap() }
}

/// Writes `evidence/STEP/NAME` and journals it as the drill's process would,
/// with no drill process holding the journal.
fn attach(dir: &Path, step: &str, name: &str, bytes: &[u8], origin: FileOrigin) {
    let relative = format!("evidence/{step}/{name}");
    std::fs::create_dir_all(dir.join("evidence").join(step)).unwrap();
    std::fs::write(dir.join(&relative), bytes).unwrap();
    let _lock = drillbook::drill::lock::DrillLock::acquire(dir).unwrap();
    let (mut journal, _) = Journal::<Event>::open(&dir.join("journal.jsonl")).unwrap();
    journal
        .append(&Event::FileAttached {
            step: step.to_string(),
            path: relative,
            sha256: format!("{:x}", Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
            origin,
            label: name.to_string(),
            note: None,
            by: Some("tester".to_string()),
        })
        .unwrap();
}

fn png_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 4, 4);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[200u8; 48]).unwrap();
    writer.finish().unwrap();
    out
}

impl Drill {
    fn work(&self) -> &Path {
        self.work.path()
    }

    fn export(&self, extra: &[&str]) -> (Output, PathBuf) {
        let pack = self.work().join(format!("pack-{}.tar.zst", extra.len()));
        let output = self.home.cmd().arg("export").arg(&self.id).arg("-o").arg(&pack).args(extra).output().unwrap();
        (output, pack)
    }

    fn exported(&self, extra: &[&str]) -> PathBuf {
        let (output, pack) = self.export(extra);
        assert!(output.status.success(), "export failed: {}{}", stdout_of(&output), stderr_of(&output));
        pack
    }

    fn verify_pack(&self, pack: &Path, signers: Option<&Path>) -> Output {
        let mut cmd = self.home.cmd();
        cmd.arg("verify-pack").arg(pack);
        if let Some(signers) = signers {
            cmd.arg("--signer").arg(signers);
        }
        cmd.output().unwrap()
    }

    /// An ed25519 key pair made by ssh-keygen, and an allowed_signers file naming `principal`.
    fn key(&self, name: &str, principal: &str, passphrase: &str) -> (PathBuf, PathBuf) {
        let key = self.work().join(name);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", principal, "-N", passphrase, "-f"])
            .arg(&key));
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let allowed = self.work().join(format!("{name}.allowed_signers"));
        std::fs::write(&allowed, format!("{principal} {public}")).unwrap();
        (key, allowed)
    }
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{cmd:?}: {}{}", stdout_of(&output), stderr_of(&output));
    output
}

/// Extracts a pack into a fresh directory; returns the pack's top directory in it.
fn extract(pack: &Path, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    run(Command::new("tar").arg("--zstd").arg("-xf").arg(pack).arg("-C").arg(into));
    let mut tops: Vec<PathBuf> = std::fs::read_dir(into).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(tops.len(), 1, "{tops:?}");
    tops.remove(0)
}

/// The pack with `change` applied to its extracted files, packed again with
/// the tar and zstd crates.
fn altered(pack: &Path, name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let scratch = pack.with_file_name(format!("{name}.d"));
    let top = extract(pack, &scratch);
    change(&top);
    let out = pack.with_file_name(format!("{name}.tar.zst"));
    let encoder = zstd::Encoder::new(std::fs::File::create(&out).unwrap(), 3).unwrap();
    let mut tar = tar::Builder::new(encoder);
    tar.append_dir_all(top.file_name().unwrap(), &top).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    out
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Rewrites the manifest's entry for `path` to the file's current hash and
/// size, as someone covering their tracks in an unsigned pack would.
fn fix_manifest(top: &Path, path: &str) {
    let manifest_path = top.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let bytes = std::fs::read(top.join(path)).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["path"] == path {
            file["sha256"] = format!("{:x}", Sha256::digest(&bytes)).into();
            file["bytes"] = bytes.len().into();
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

fn assert_mismatch(output: &Output, names: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(1), "exit 1 expected: {}{stderr}", stdout_of(output));
    assert!(stderr.contains("pack verification failed"), "{stderr}");
    for name in names {
        assert!(stderr.contains(name), "{name:?} not named in: {stderr}");
    }
}

fn manifest_of(top: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(top.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn pack_holds_the_drill_and_verifies() {
    let drill = drill();
    let pack = drill.exported(&[]);
    let output = drill.verify_pack(&pack, None);
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}{}", stderr_of(&output));
    assert!(stdout.contains(&format!("drill    {}", drill.id)), "{stdout}");
    assert!(stdout.contains("runbook  pack-drill (Evidence pack drill)"), "{stdout}");
    assert!(stdout.contains("2 evidence files matching the journal"), "{stdout}");
    assert!(stdout.contains("signer   none: the pack is not signed"), "{stdout}");

    let top = extract(&pack, &drill.work().join("x"));
    assert_eq!(top.file_name().unwrap().to_string_lossy(), format!("drill-{}", drill.id));
    let manifest = manifest_of(&top);
    let paths: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "the manifest's files are sorted");
    for expected in [
        "journal.jsonl",
        "runbook.toml",
        "logs/restore.1.log",
        "logs/restore.1.stderr.log",
        "evidence/smoke/login.png",
        "evidence/restore/row-counts.txt",
        "report.md",
        "report.html",
        "report.json",
        "report.junit.xml",
    ] {
        assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
    }
    for left_out in ["downloads", "lock", ".tmp"] {
        assert!(!paths.iter().any(|p| p.contains(left_out)), "{left_out} packed: {paths:?}");
    }
    assert!(!top.join("downloads").exists() && !top.join("lock").exists());
    // Each manifest entry is the file's hash; the head is what `drillbook verify` prints.
    for file in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(top.join(file["path"].as_str().unwrap())).unwrap();
        assert_eq!(file["sha256"], format!("{:x}", Sha256::digest(&bytes)));
        assert_eq!(file["bytes"], bytes.len());
    }
    let verify = stdout_of(&drill.home.cmd().args(["verify", &drill.id]).output().unwrap());
    assert!(verify.contains(manifest["journal"]["head"].as_str().unwrap()), "{verify}");
    assert_eq!(manifest["runbook"]["id"], "pack-drill");
    assert_eq!(manifest["format"], "drillbook-evidence-pack");
    // The reports were written afresh: they list the evidence attached after the drill ended.
    let report = std::fs::read_to_string(top.join("report.md")).unwrap();
    assert!(report.contains("login.png"), "{report}");
    // No temporary pack left behind next to the pack.
    let leftovers: Vec<_> = std::fs::read_dir(drill.work())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn default_pack_name_is_in_the_current_directory() {
    let drill = drill();
    let output = drill.home.cmd().current_dir(drill.work()).args(["export", &drill.id]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(drill.work().join(format!("drill-{}.tar.zst", drill.id)).is_file());
}

#[test]
fn pack_signed_with_a_key_file_verifies_with_ssh_keygen_and_verify_pack() {
    let drill = drill();
    let (key, allowed) = drill.key("id_ed25519", "alice@example.com", "");
    let pack = drill.exported(&["--sign", key.to_str().unwrap()]);
    let top = extract(&pack, &drill.work().join("x"));
    let signature = std::fs::read_to_string(top.join("manifest.json.sig")).unwrap();
    assert!(signature.starts_with("-----BEGIN SSH SIGNATURE-----"), "{signature}");
    let output = run(Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "alice@example.com", "-n", "drillbook-evidence", "-s"])
        .arg(top.join("manifest.json.sig"))
        .stdin(std::fs::File::open(top.join("manifest.json")).unwrap()));
    assert!(stdout_of(&output).contains("Good \"drillbook-evidence\" signature for alice@example.com"));

    let output = drill.verify_pack(&pack, Some(&allowed));
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}{}", stderr_of(&output));
    assert!(stdout.contains("signer   alice@example.com (ED25519 SHA256:"), "{stdout}");
    let output = drill.verify_pack(&pack, None);
    assert!(output.status.success());
    assert!(stdout_of(&output).contains("NOT CHECKED: signed by ED25519"), "{}", stdout_of(&output));

    // A bad allowed_signers file is an error naming its line, before the pack is read.
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let bad = drill.work().join("bad_signers");
    std::fs::write(&bad, format!("# auditors\nalice@example.com valid-after=\"20241399Z\" {public}")).unwrap();
    let output = drill.verify_pack(&pack, Some(&bad));
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("bad_signers:2: valid-after=\"20241399Z\" is not a time"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn every_alteration_is_detected_and_named() {
    let drill = drill();
    let (key, allowed) = drill.key("id_ed25519", "alice@example.com", "");
    let (other_key, _) = drill.key("other", "mallory@example.com", "");
    let signed = drill.exported(&["--sign", key.to_str().unwrap()]);
    let unsigned = drill.exported(&[]);

    let pack = altered(&signed, "log", |top| flip_byte(&top.join("logs/restore.1.log"), 3));
    assert_mismatch(&drill.verify_pack(&pack, Some(&allowed)), &["logs/restore.1.log", "sha256 in the manifest"]);

    let pack = altered(&signed, "screenshot", |top| flip_byte(&top.join("evidence/smoke/login.png"), 40));
    assert_mismatch(&drill.verify_pack(&pack, Some(&allowed)), &["evidence/smoke/login.png", "in the pack"]);

    let pack = altered(&signed, "journal", |top| flip_byte(&top.join("journal.jsonl"), 30));
    assert_mismatch(&drill.verify_pack(&pack, Some(&allowed)), &["journal.jsonl: sha256 in the manifest"]);

    let pack = altered(&signed, "manifest", |top| flip_byte(&top.join("manifest.json"), 200));
    assert_mismatch(&drill.verify_pack(&pack, Some(&allowed)), &["manifest.json.sig", "does not verify"]);

    // Someone else's signature of the very same manifest: valid, but not an allowed signer.
    let pack = altered(&signed, "swapped", |top| {
        let output = run(Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "drillbook-evidence", "-f"])
            .arg(&other_key)
            .stdin(std::fs::File::open(top.join("manifest.json")).unwrap()));
        std::fs::write(top.join("manifest.json.sig"), output.stdout).unwrap();
    });
    assert_mismatch(
        &drill.verify_pack(&pack, Some(&allowed)),
        &["manifest.json.sig", "not one of the allowed signers"],
    );

    // Signature removed: --signer asks for one.
    let pack = altered(&signed, "unsigned", |top| std::fs::remove_file(top.join("manifest.json.sig")).unwrap());
    assert_mismatch(&drill.verify_pack(&pack, Some(&allowed)), &["not signed"]);

    // An unsigned pack whose manifest was rewritten to match: the journal still holds the truth.
    let pack = altered(&unsigned, "covered-screenshot", |top| {
        flip_byte(&top.join("evidence/smoke/login.png"), 40);
        fix_manifest(top, "evidence/smoke/login.png");
    });
    assert_mismatch(&drill.verify_pack(&pack, None), &["evidence/smoke/login.png: journaled sha256", "journal line"]);
    let pack = altered(&unsigned, "covered-journal", |top| {
        let text = std::fs::read_to_string(top.join("journal.jsonl")).unwrap();
        let edited = text.replacen("\"step\":\"restore\"", "\"step\":\"restorf\"", 1);
        std::fs::write(top.join("journal.jsonl"), edited).unwrap();
        fix_manifest(top, "journal.jsonl");
    });
    assert_mismatch(&drill.verify_pack(&pack, None), &["journal.jsonl: line", "prev hash does not match"]);

    let pack = altered(&unsigned, "extra", |top| std::fs::write(top.join("logs/extra.log"), "added").unwrap());
    assert_mismatch(&drill.verify_pack(&pack, None), &["logs/extra.log: in the pack but not in the manifest"]);
    let pack = altered(&unsigned, "removed", |top| std::fs::remove_file(top.join("report.md")).unwrap());
    assert_mismatch(&drill.verify_pack(&pack, None), &["report.md: listed in the manifest, missing from the pack"]);
    let pack = altered(&unsigned, "unsigned-manifest", |top| flip_byte(&top.join("manifest.json"), 0));
    assert_mismatch(&drill.verify_pack(&pack, None), &["manifest.json is not a valid manifest"]);
}

#[test]
fn unreadable_input_exits_2() {
    let drill = drill();
    let not_a_pack = drill.work().join("not-a-pack.tar.zst");
    std::fs::write(&not_a_pack, "hello").unwrap();
    let output = drill.verify_pack(&not_a_pack, None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("not-a-pack.tar.zst"), "{}", stderr_of(&output));
    let output = drill.verify_pack(&drill.work().join("missing.tar.zst"), None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("cannot open"), "{}", stderr_of(&output));
    // A truncated pack: its end cannot be read.
    let pack = drill.exported(&[]);
    let bytes = std::fs::read(&pack).unwrap();
    let cut = drill.work().join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let output = drill.verify_pack(&cut, None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("cannot be read to its end"), "{}", stderr_of(&output));
    // Empty, and a tar that is not compressed.
    let empty = drill.work().join("empty.tar.zst");
    std::fs::write(&empty, b"").unwrap();
    let output = drill.verify_pack(&empty, None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("empty.tar.zst"), "{}", stderr_of(&output));
    let plain = drill.work().join("plain.tar.zst");
    run(Command::new("tar").arg("-cf").arg(&plain).arg("-C").arg(&drill.dir).arg("journal.jsonl"));
    let output = drill.verify_pack(&plain, None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    // A well-formed tar.zst without a manifest: said so, not a panic.
    let no_manifest = altered(&pack, "no-manifest", |top| std::fs::remove_file(top.join("manifest.json")).unwrap());
    let output = drill.verify_pack(&no_manifest, None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("no manifest.json in it"), "{}", stderr_of(&output));
    // An entry that would land outside the pack's directory.
    let escaping = drill.work().join("escaping.tar.zst");
    let mut tar = tar::Builder::new(zstd::Encoder::new(std::fs::File::create(&escaping).unwrap(), 3).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    // Written raw: the tar crate refuses `..` in set_path.
    header.as_old_mut().name[..13].copy_from_slice(b"drill-x/../..");
    header.set_cksum();
    tar.append(&header, &b"hello"[..]).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let output = drill.verify_pack(&escaping, None);
    assert_mismatch(&output, &["would be extracted outside the pack's directory"]);
}

#[test]
fn a_tampered_journal_or_altered_evidence_is_not_exported() {
    let drill = drill();
    let journal = drill.dir.join("journal.jsonl");
    let original = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, original.replacen("\"step\":\"smoke\"", "\"step\":\"smokf\"", 1)).unwrap();
    let (output, pack) = drill.export(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("export refused") && stderr.contains("line "), "{stderr}");
    assert!(!pack.exists(), "no pack for a tampered journal");

    std::fs::write(&journal, &original).unwrap();
    flip_byte(&drill.dir.join("evidence/smoke/login.png"), 40);
    let (output, pack) = drill.export(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("evidence/smoke/login.png no longer matches the journal"), "{stderr}");
    assert!(!pack.exists());
    assert!(std::fs::read_dir(drill.work()).unwrap().next().is_none(), "nothing left behind");
}

#[test]
fn an_encrypted_key_without_a_terminal_fails_clearly() {
    let drill = drill();
    let (key, _) = drill.key("locked", "alice@example.com", "correct horse battery");
    let pack = drill.work().join("locked.tar.zst");
    let mut cmd = drill.home.cmd_std();
    cmd.args(["export", &drill.id, "--sign"]).arg(&key).arg("-o").arg(&pack).stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe; it detaches the child from any controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("is encrypted and there is no terminal to ask for its passphrase"), "{stderr}");
    assert!(stderr.contains("ssh-add"), "{stderr}");
    assert!(!pack.exists());
}

/// `ssh-agent -D` on a socket of the test's own, killed (by its pid) when dropped.
struct SshAgent {
    child: Child,
    socket: PathBuf,
}

impl SshAgent {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) is needed for the agent test");
        support::wait_for("ssh-agent's socket", std::time::Duration::from_secs(10), || {
            Some(()).filter(|()| socket.exists())
        });
        SshAgent { child, socket }
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_agent_signs_with_a_public_key_named() {
    let drill = drill();
    let (key, allowed) = drill.key("agent_key", "ops@example.com", "");
    let (stranger, _) = drill.key("stranger", "x@example.com", "");
    let agent = SshAgent::start(drill.work());
    run(Command::new("ssh-add").arg("-q").arg(&key).env("SSH_AUTH_SOCK", &agent.socket));
    let public = key.with_extension("pub");
    let pack = drill.work().join("agent.tar.zst");
    let output = drill
        .home
        .cmd()
        .env("SSH_AUTH_SOCK", &agent.socket)
        .args(["export", &drill.id, "--sign"])
        .arg(&public)
        .arg("-o")
        .arg(&pack)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let output = drill.verify_pack(&pack, Some(&allowed));
    assert!(output.status.success(), "{}{}", stdout_of(&output), stderr_of(&output));
    assert!(stdout_of(&output).contains("signer   ops@example.com"), "{}", stdout_of(&output));
    let top = extract(&pack, &drill.work().join("x"));
    run(Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "ops@example.com", "-n", "drillbook-evidence", "-s"])
        .arg(top.join("manifest.json.sig"))
        .stdin(std::fs::File::open(top.join("manifest.json")).unwrap()));

    // A key the agent does not hold, and no agent at all: said before anything is packed.
    let output = drill
        .home
        .cmd()
        .env("SSH_AUTH_SOCK", &agent.socket)
        .args(["export", &drill.id, "--sign"])
        .arg(stranger.with_extension("pub"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("does not hold the key"), "{}", stderr_of(&output));
    let output = drill
        .home
        .cmd()
        .env_remove("SSH_AUTH_SOCK")
        .args(["export", &drill.id, "--sign"])
        .arg(&public)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("SSH_AUTH_SOCK is not set"), "{}", stderr_of(&output));
}

#[test]
fn verify_pack_streams_the_journal_check_like_drillbook_verify() {
    // The pack's journal is byte for byte the drill's.
    let drill = drill();
    let pack = drill.exported(&[]);
    let top = extract(&pack, &drill.work().join("x"));
    let mut packed = Vec::new();
    std::fs::File::open(top.join("journal.jsonl")).unwrap().read_to_end(&mut packed).unwrap();
    assert_eq!(packed, std::fs::read(drill.dir.join("journal.jsonl")).unwrap());
}
