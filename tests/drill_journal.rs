//! Tests of the drill journal (`drillbook::drill::journal`) and the drill lock
//! (`drillbook::drill::lock`).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use drillbook::drill::journal::{self, BreakKind, GENESIS_PREV, Journal, JournalError, Record, Replay};
use drillbook::drill::lock::{DrillLock, LockError};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Ev {
    Started { drill: String },
    StepDone { step: u32, note: String },
    Finished,
}

fn sample_events(n: usize) -> Vec<Ev> {
    (0..n)
        .map(|i| match i {
            0 => Ev::Started { drill: "db-failover".to_owned() },
            i if i + 1 == n && n > 2 => Ev::Finished,
            i => Ev::StepDone { step: i as u32, note: format!("step {i} ok: \"quoted\" \u{e9}\nsecond line") },
        })
        .collect()
}

fn jpath(dir: &Path) -> PathBuf {
    dir.join("journal.jsonl")
}

/// Creates a journal with `events` and returns its path.
fn write_journal(dir: &Path, events: &[Ev]) -> PathBuf {
    let path = jpath(dir);
    let mut j = Journal::<Ev>::create(&path).unwrap();
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(j.append(ev).unwrap(), i as u64 + 1);
    }
    path
}

fn sha_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The file's lines without their '\n' (the last one may be unterminated).
fn raw_lines(path: &Path) -> Vec<Vec<u8>> {
    let data = fs::read(path).unwrap();
    data.split_inclusive(|b| *b == b'\n').map(|l| l.strip_suffix(b"\n").unwrap_or(l).to_vec()).collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut data = Vec::new();
    for line in lines {
        data.extend_from_slice(line);
        data.push(b'\n');
    }
    fs::write(path, data).unwrap();
}

fn events_of(replay: &Replay<Ev>) -> Vec<Ev> {
    replay.records.iter().map(|r| r.event.clone()).collect()
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

// ---------------------------------------------------------------------------
// Round trip and chain
// ---------------------------------------------------------------------------

#[test]
fn create_append_open_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample_events(3);
    let path = write_journal(dir.path(), &events);

    let (mut j, replay) = Journal::<Ev>::open(&path).unwrap();
    assert_eq!(events_of(&replay), events);
    assert!(replay.torn.is_none());
    assert_eq!(j.next_seq(), 4);
    assert_eq!(j.path(), path.as_path());
    assert!(!j.is_poisoned());

    assert_eq!(j.append(&Ev::Finished).unwrap(), 4);
    assert_eq!(j.next_seq(), 5);
    let (seq, ts) = j.append_stamped(&Ev::Finished).unwrap();
    assert_eq!(seq, 5);
    drop(j);

    let replay = journal::read::<Ev>(&path).unwrap();
    let mut expected = events.clone();
    expected.extend([Ev::Finished, Ev::Finished]);
    assert_eq!(events_of(&replay), expected);
    assert!(replay.torn.is_none());
    assert_eq!(replay.records[4].ts, ts, "append_stamped returns the timestamp written");
}

#[test]
fn empty_journal_opens_with_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = jpath(dir.path());
    let j = Journal::<Ev>::create(&path).unwrap();
    assert_eq!(j.next_seq(), 1);
    assert_eq!(j.head(), GENESIS_PREV);
    drop(j);
    assert_eq!(fs::read(&path).unwrap(), b"");

    let (mut j, replay) = Journal::<Ev>::open(&path).unwrap();
    assert!(replay.records.is_empty());
    assert!(replay.torn.is_none());
    assert_eq!(j.append(&Ev::Finished).unwrap(), 1);

    let report = journal::verify(&path).unwrap();
    assert_eq!(report.records, 1);
}

#[test]
fn seq_and_prev_hash_chain_are_correct() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample_events(5);
    let path = write_journal(dir.path(), &events);

    let lines = raw_lines(&path);
    assert_eq!(lines.len(), 5);
    assert!(fs::read(&path).unwrap().ends_with(b"\n"));
    let mut prev = GENESIS_PREV.to_owned();
    assert_eq!(prev.len(), 64);
    for (i, line) in lines.iter().enumerate() {
        let rec: Record<Ev> = serde_json::from_slice(line).unwrap();
        assert_eq!(rec.seq, i as u64 + 1);
        assert_eq!(rec.prev, prev, "prev of line {}", i + 1);
        assert_eq!(rec.event, events[i]);
        prev = sha_hex(line);
    }

    let replay = journal::read::<Ev>(&path).unwrap();
    for (i, rec) in replay.records.iter().enumerate() {
        assert_eq!(rec.seq, i as u64 + 1);
        if i > 0 {
            assert!(rec.ts >= replay.records[i - 1].ts);
        }
    }

    let report = journal::verify(&path).unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(report.head, prev);
    assert!(report.torn.is_none());

    let (j, _) = Journal::<Ev>::open(&path).unwrap();
    assert_eq!(j.head(), prev);
}

#[test]
fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(2));
    let before = fs::read(&path).unwrap();
    let err = Journal::<Ev>::create(&path).unwrap_err();
    assert!(matches!(err, JournalError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert_eq!(fs::read(&path).unwrap(), before);
}

// ---------------------------------------------------------------------------
// Torn tails
// ---------------------------------------------------------------------------

#[test]
fn torn_tail_is_saved_truncated_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample_events(3);
    let path = write_journal(dir.path(), &events);
    let good = fs::read(&path).unwrap();
    let partial = br#"{"seq":4,"ts":"2025-01-01T00:00:00Z","prev":"ab"#;
    append_raw(&path, partial);

    // read() reports it without touching anything.
    let replay = journal::read::<Ev>(&path).unwrap();
    assert_eq!(events_of(&replay), events);
    let torn = replay.torn.unwrap();
    assert_eq!(torn.line_number, 4);
    assert_eq!(torn.byte_offset, good.len() as u64);
    assert_eq!(torn.bytes, partial.len());
    assert_eq!(torn.saved_to, None);
    assert_eq!(fs::read(&path).unwrap().len(), good.len() + partial.len());

    let report = journal::verify(&path).unwrap();
    assert_eq!(report.records, 3);
    assert!(report.torn.is_some());

    // open() saves and cuts it.
    let (mut j, replay) = Journal::<Ev>::open(&path).unwrap();
    assert_eq!(events_of(&replay), events);
    let torn = replay.torn.unwrap();
    assert_eq!(torn.line_number, 4);
    assert_eq!(torn.byte_offset, good.len() as u64);
    assert_eq!(torn.bytes, partial.len());
    let saved = torn.saved_to.unwrap();
    assert_eq!(saved, dir.path().join("journal.jsonl.torn-4"));
    assert_eq!(fs::read(&saved).unwrap(), partial);
    assert_eq!(fs::read(&path).unwrap(), good);

    assert_eq!(j.next_seq(), 4);
    assert_eq!(j.append(&Ev::Finished).unwrap(), 4);
    drop(j);

    let replay = journal::read::<Ev>(&path).unwrap();
    assert_eq!(replay.records.len(), 4);
    assert!(replay.torn.is_none());
    assert_eq!(replay.records[3].event, Ev::Finished);
    let lines = raw_lines(&path);
    assert_eq!(replay.records[3].prev, sha_hex(&lines[2]));
    assert_eq!(journal::verify(&path).unwrap().records, 4);
}

#[test]
fn newline_terminated_invalid_last_line_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample_events(3);
    let path = write_journal(dir.path(), &events);
    let good = fs::read(&path).unwrap();
    append_raw(&path, b"{\"seq\":4,\"ts\":\0\0\0\n");

    let replay = journal::read::<Ev>(&path).unwrap();
    assert_eq!(events_of(&replay), events);
    let torn = replay.torn.unwrap();
    assert_eq!(torn.line_number, 4);
    assert_eq!(torn.bytes, 18);

    let (mut j, replay) = Journal::<Ev>::open(&path).unwrap();
    let torn = replay.torn.unwrap();
    assert_eq!(fs::read(torn.saved_to.unwrap()).unwrap(), b"{\"seq\":4,\"ts\":\0\0\0\n");
    assert_eq!(fs::read(&path).unwrap(), good);
    assert_eq!(j.append(&Ev::Finished).unwrap(), 4);
    assert_eq!(journal::verify(&path).unwrap().records, 4);
}

#[test]
fn last_line_missing_only_its_newline_is_torn() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample_events(3);
    let path = write_journal(dir.path(), &events);
    let mut data = fs::read(&path).unwrap();
    data.pop();
    fs::write(&path, &data).unwrap();

    let (mut j, replay) = Journal::<Ev>::open(&path).unwrap();
    assert_eq!(events_of(&replay), events[..2]);
    let torn = replay.torn.unwrap();
    assert_eq!(torn.line_number, 3);
    assert_eq!(j.next_seq(), 3);
    assert_eq!(j.append(&events[2]).unwrap(), 3);
    drop(j);
    assert_eq!(events_of(&journal::read(&path).unwrap()), events);
}

#[test]
fn repeated_torn_tails_at_the_same_seq_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(2));
    append_raw(&path, b"{\"first");
    let (_, r1) = Journal::<Ev>::open(&path).unwrap();
    append_raw(&path, b"{\"second");
    let (_, r2) = Journal::<Ev>::open(&path).unwrap();
    let s1 = r1.torn.unwrap().saved_to.unwrap();
    let s2 = r2.torn.unwrap().saved_to.unwrap();
    assert_eq!(s1, dir.path().join("journal.jsonl.torn-3"));
    assert_ne!(s1, s2);
    assert_eq!(fs::read(&s1).unwrap(), b"{\"first");
    assert_eq!(fs::read(&s2).unwrap(), b"{\"second");
}

// ---------------------------------------------------------------------------
// Corruption and tampering
// ---------------------------------------------------------------------------

fn assert_mentions(err: &JournalError, path: &Path, needles: &[&str]) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg:?} lacks the path");
    for needle in needles {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
}

#[test]
fn bad_json_in_a_middle_line_is_an_error_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(4));
    let mut lines = raw_lines(&path);
    lines[1] = b"{\"seq\":2,\"ts\":".to_vec();
    write_lines(&path, &lines);
    let before = fs::read(&path).unwrap();

    let err = journal::read::<Ev>(&path).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { line: 2, .. }), "{err:?}");
    assert_mentions(&err, &path, &["line 2"]);

    let err = Journal::<Ev>::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { line: 2, .. }), "{err:?}");
    let err = journal::verify(&path).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { line: 2, .. }), "{err:?}");
    // Nothing was truncated or saved.
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn empty_middle_line_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(3));
    let mut lines = raw_lines(&path);
    lines.insert(2, Vec::new());
    write_lines(&path, &lines);

    for err in [
        journal::read::<Ev>(&path).unwrap_err(),
        Journal::<Ev>::open(&path).unwrap_err(),
        journal::verify(&path).unwrap_err(),
    ] {
        assert!(matches!(err, JournalError::Corrupt { line: 3, .. }), "{err:?}");
        assert_mentions(&err, &path, &["line 3", "empty line"]);
    }
}

#[test]
fn changed_middle_line_breaks_the_hash_chain_at_the_next_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(5));
    let mut lines = raw_lines(&path);
    let original = String::from_utf8(lines[1].clone()).unwrap();
    let changed = original.replace("\"step\":1", "\"step\":7");
    assert_ne!(original, changed);
    lines[1] = changed.into_bytes();
    write_lines(&path, &lines);

    let err = journal::verify(&path).unwrap_err();
    match &err {
        JournalError::Modified { brk, .. } => {
            assert_eq!(brk.line, 3);
            assert_eq!(brk.kind, BreakKind::PrevHash);
            assert_eq!(brk.expected, sha_hex(&lines[1]));
            assert_eq!(brk.found, sha_hex(original.as_bytes()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_mentions(&err, &path, &["line 3: prev hash does not match line 2", "modified"]);

    let err = journal::read::<Ev>(&path).unwrap_err();
    assert!(matches!(err, JournalError::Modified { .. }), "{err:?}");
    assert_mentions(&err, &path, &["line 3", "modified"]);
    let err = Journal::<Ev>::open(&path).unwrap_err();
    assert_mentions(&err, &path, &["line 3", "modified"]);
}

#[test]
fn removed_middle_line_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(5));
    let mut lines = raw_lines(&path);
    lines.remove(2);
    write_lines(&path, &lines);

    let err = journal::verify(&path).unwrap_err();
    match &err {
        JournalError::Modified { brk, .. } => {
            assert_eq!(brk.line, 3);
            assert_eq!(brk.kind, BreakKind::Seq);
            assert_eq!(brk.expected, "3");
            assert_eq!(brk.found, "4");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_mentions(&err, &path, &["line 3", "removed"]);
    assert!(journal::read::<Ev>(&path).is_err());
    assert!(Journal::<Ev>::open(&path).is_err());
}

#[test]
fn removed_first_line_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(3));
    let mut lines = raw_lines(&path);
    lines.remove(0);
    write_lines(&path, &lines);
    let err = journal::verify(&path).unwrap_err();
    assert!(
        matches!(&err, JournalError::Modified { brk, .. } if brk.line == 1 && brk.kind == BreakKind::Seq),
        "{err:?}"
    );
}

#[test]
fn swapped_lines_and_duplicated_lines_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(4));
    let lines = raw_lines(&path);

    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    write_lines(&path, &swapped);
    let err = journal::verify(&path).unwrap_err();
    assert!(matches!(&err, JournalError::Modified { brk, .. } if brk.line == 2), "{err:?}");

    let mut duplicated = lines.clone();
    duplicated.insert(2, lines[1].clone());
    write_lines(&path, &duplicated);
    let err = journal::verify(&path).unwrap_err();
    assert!(matches!(&err, JournalError::Modified { brk, .. } if brk.line == 3), "{err:?}");
}

#[test]
fn rewritten_line_with_forged_seq_but_old_prev_is_detected() {
    // Replace line 2 by a record re-serialised with a different event but the same seq
    // and prev: the break shows at line 3.
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(3));
    let mut lines = raw_lines(&path);
    let mut rec: Record<Ev> = serde_json::from_slice(&lines[1]).unwrap();
    rec.event = Ev::Finished;
    lines[1] = serde_json::to_vec(&rec).unwrap();
    write_lines(&path, &lines);
    let err = journal::read::<Ev>(&path).unwrap_err();
    assert!(
        matches!(&err, JournalError::Modified { brk, .. } if brk.line == 3 && brk.kind == BreakKind::PrevHash),
        "{err:?}"
    );
}

#[test]
fn undecodable_event_is_an_error_with_line_and_serde_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = jpath(dir.path());
    let mut j = Journal::<serde_json::Value>::create(&path).unwrap();
    j.append(&serde_json::json!({"type": "started", "drill": "x"})).unwrap();
    j.append(&serde_json::json!({"type": "exploded", "how": "badly"})).unwrap();
    drop(j);
    let before = fs::read(&path).unwrap();

    let err = journal::read::<Ev>(&path).unwrap_err();
    assert!(matches!(err, JournalError::Event { line: 2, seq: 2, .. }), "{err:?}");
    assert_mentions(&err, &path, &["line 2", "unknown variant `exploded`"]);

    // A complete last line that does not decode is not a torn tail: open must not cut it.
    let err = Journal::<Ev>::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Event { line: 2, .. }), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
    // verify() does not decode events.
    assert_eq!(journal::verify(&path).unwrap().records, 2);
}

#[test]
fn read_and_verify_never_modify_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), &sample_events(3));
    let cases: Vec<Vec<u8>> = {
        let good = fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(b"{\"seq\":4");
        let mut torn_nl = good.clone();
        torn_nl.extend_from_slice(b"garbage\n");
        let mut corrupt = good.clone();
        corrupt.splice(3..10, b"XXXXXXX".iter().copied());
        vec![good, torn, torn_nl, corrupt]
    };
    for case in cases {
        fs::write(&path, &case).unwrap();
        let _ = journal::read::<Ev>(&path);
        let _ = journal::verify(&path);
        assert_eq!(fs::read(&path).unwrap(), case);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no .torn file may be written by read/verify");
    }
}

// ---------------------------------------------------------------------------
// I/O errors and poisoning
// ---------------------------------------------------------------------------

#[test]
fn create_in_a_missing_directory_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("journal.jsonl");
    let err = Journal::<Ev>::create(&path).unwrap_err();
    match &err {
        JournalError::Io { path: p, op, source } => {
            assert_eq!(p, &path);
            assert_eq!(*op, "create");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_mentions(&err, &path, &["journal create failed", "directory exist"]);
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn open_and_read_of_a_missing_journal_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = jpath(dir.path());
    for err in [
        Journal::<Ev>::open(&path).unwrap_err(),
        journal::read::<Ev>(&path).unwrap_err(),
        journal::verify(&path).unwrap_err(),
    ] {
        assert!(matches!(err, JournalError::Io { op: "open", .. }), "{err:?}");
        assert_mentions(&err, &path, &[]);
    }
}

#[test]
fn read_only_directory_gives_an_io_error_unless_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    // As root, permissions do not prevent writing: nothing to test then.
    let probe = ro.join("probe");
    if fs::write(&probe, b"x").is_ok() {
        eprintln!("skipped: permissions are not enforced for this user (root?)");
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    let path = jpath(&ro);
    let err = Journal::<Ev>::create(&path).unwrap_err();
    assert!(
        matches!(&err, JournalError::Io { op: "create", source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied),
        "{err:?}"
    );
    assert_mentions(&err, &path, &["permissions"]);
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
}

const POISON_CHILD_ENV: &str = "DRILLBOOK_TEST_POISON_CHILD_DIR";
const LOCK_CHILD_ENV: &str = "DRILLBOOK_TEST_LOCK_CHILD_DIR";
/// Printed on a line of its own by the lock helper once it holds the lock.
const LOCK_CHILD_MARKER: &str = "DRILLBOOK-TEST-LOCK-HELD";

/// Runs this test binary again, restricted to the helper test `name`, with `env_key=dir`.
fn helper_command(name: &str, env_key: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // Tests are named by their module in the one integration binary.
    let name = format!("drill_journal::{name}");
    cmd.args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"]).env(env_key, dir);
    cmd
}

/// Helper run in a child process by `append_failure_poisons_the_writer`: a file size
/// limit makes the third append fail after a partial write (EFBIG).
#[test]
fn helper_poison_child() {
    let Some(dir) = std::env::var_os(POISON_CHILD_ENV) else {
        return; // only meaningful as a child process
    };
    let path = jpath(Path::new(&dir));
    let mut j = Journal::<Ev>::create(&path).unwrap();
    let ev = Ev::StepDone { step: 1, note: "x".repeat(300) };
    // SAFETY: plain libc calls with valid arguments, in a process that only runs this test.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit { rlim_cur: 1000, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let mut appended = 0;
    let err = loop {
        match j.append(&ev) {
            Ok(_) => appended += 1,
            Err(e) => break e,
        }
        assert!(appended < 10, "file size limit not enforced");
    };
    assert!(matches!(err, JournalError::Io { op: "append", .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(err.to_string().contains("drillbook resume"), "{err}");
    assert!(j.is_poisoned());
    let again = j.append(&Ev::Finished).unwrap_err();
    assert!(matches!(again, JournalError::Poisoned { .. }), "{again:?}");
    assert!(again.to_string().contains(&path.display().to_string()));
    println!("POISON-CHILD-OK appended={appended}");
}

#[test]
fn append_failure_poisons_the_writer_and_open_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let out = helper_command("helper_poison_child", POISON_CHILD_ENV, dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("POISON-CHILD-OK appended=2"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let path = jpath(dir.path());
    // 2 full lines plus a partial third one are on disk.
    let size = fs::metadata(&path).unwrap().len();
    assert_eq!(size, 1000);

    let (mut j, replay) = Journal::<Ev>::open(&path).unwrap();
    assert_eq!(replay.records.len(), 2);
    let torn = replay.torn.unwrap();
    assert_eq!(torn.line_number, 3);
    assert_eq!(torn.byte_offset + torn.bytes as u64, 1000);
    assert!(torn.saved_to.unwrap().exists());
    assert_eq!(j.append(&Ev::Finished).unwrap(), 3);
    drop(j);
    let replay = journal::read::<Ev>(&path).unwrap();
    assert_eq!(replay.records.len(), 3);
    assert!(replay.torn.is_none());
}

// ---------------------------------------------------------------------------
// Truncation and corruption properties
// ---------------------------------------------------------------------------

/// A valid journal's bytes and its records.
fn original() -> &'static (Vec<u8>, Vec<Record<Ev>>) {
    static ORIGINAL: OnceLock<(Vec<u8>, Vec<Record<Ev>>)> = OnceLock::new();
    ORIGINAL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = write_journal(dir.path(), &sample_events(4));
        let bytes = fs::read(&path).unwrap();
        let records = journal::read::<Ev>(&path).unwrap().records;
        (bytes, records)
    })
}

/// Checks read() and open() on the original journal cut at `cut` bytes.
fn check_cut(cut: usize) {
    let (data, records) = original();
    let prefix = &data[..cut];
    let complete = prefix.iter().filter(|b| **b == b'\n').count();
    let boundary = prefix.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mid_line = boundary != cut;

    let dir = tempfile::tempdir().unwrap();
    let path = jpath(dir.path());
    fs::write(&path, prefix).unwrap();

    let replay = journal::read::<Ev>(&path).unwrap();
    assert_eq!(replay.records, records[..complete], "cut {cut}");
    assert_eq!(replay.torn.is_some(), mid_line, "cut {cut}");
    assert_eq!(fs::read(&path).unwrap(), prefix);

    let report = journal::verify(&path).unwrap();
    assert_eq!(report.records, complete as u64);

    let (mut j, replay) = Journal::<Ev>::open(&path).unwrap();
    assert_eq!(replay.records, records[..complete], "cut {cut}");
    match replay.torn {
        Some(torn) => {
            assert!(mid_line);
            assert_eq!(torn.line_number, complete + 1);
            assert_eq!(torn.byte_offset, boundary as u64);
            assert_eq!(torn.bytes, cut - boundary);
            assert_eq!(fs::read(torn.saved_to.unwrap()).unwrap(), &data[boundary..cut]);
        }
        None => assert!(!mid_line),
    }
    assert_eq!(fs::read(&path).unwrap(), &data[..boundary]);
    assert_eq!(j.append(&Ev::Finished).unwrap(), complete as u64 + 1);
    drop(j);
    let replay = journal::read::<Ev>(&path).unwrap();
    assert_eq!(replay.records.len(), complete + 1);
    assert_eq!(replay.records[..complete], records[..complete]);
    assert!(replay.torn.is_none());
}

#[test]
fn every_truncation_offset_replays_a_prefix() {
    let (data, _) = original();
    for cut in 0..=data.len() {
        check_cut(cut);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_truncation_replays_a_prefix(frac in 0.0f64..=1.0) {
        let (data, _) = original();
        let cut = ((data.len() as f64) * frac) as usize;
        check_cut(cut.min(data.len()));
    }

    #[test]
    fn damaged_bytes_never_panic(
        edits in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..4),
        cut_frac in 0.0f64..=1.0,
    ) {
        let (data, records) = original();
        let mut bytes = data.clone();
        for (pos, value) in edits {
            let i = ((bytes.len() as f64) * pos) as usize;
            if let Some(b) = bytes.get_mut(i) {
                *b = value;
            }
        }
        bytes.truncate(((bytes.len() as f64) * cut_frac) as usize);
        let dir = tempfile::tempdir().unwrap();
        let path = jpath(dir.path());
        fs::write(&path, &bytes).unwrap();

        let _ = journal::verify(&path);
        match journal::read::<Ev>(&path) {
            // Only the last returned record is not protected by a following hash.
            Ok(replay) => {
                let n = replay.records.len();
                prop_assert!(n <= records.len());
                if n > 0 {
                    prop_assert_eq!(&replay.records[..n - 1], &records[..n - 1]);
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        prop_assert_eq!(fs::read(&path).unwrap(), bytes);
        match Journal::<Ev>::open(&path) {
            Ok((mut j, replay)) => {
                let n = replay.records.len();
                prop_assert!(n <= records.len());
                if n > 0 {
                    prop_assert_eq!(&replay.records[..n - 1], &records[..n - 1]);
                }
                prop_assert_eq!(j.append(&Ev::Finished).unwrap(), n as u64 + 1);
                drop(j);
                prop_assert_eq!(journal::read::<Ev>(&path).unwrap().records.len(), n + 1);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

// ---------------------------------------------------------------------------
// Drill lock
// ---------------------------------------------------------------------------

#[test]
fn lock_writes_pid_host_and_since() {
    let dir = tempfile::tempdir().unwrap();
    let lock = DrillLock::acquire(dir.path()).unwrap();
    assert_eq!(lock.path(), dir.path().join("lock"));
    let text = fs::read_to_string(dir.path().join("lock")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert_eq!(lines[0], format!("pid {}", std::process::id()));
    assert!(lines[1].starts_with("host ") && lines[1].len() > 5, "{text:?}");
    let since = lines[2].strip_prefix("since ").unwrap();
    since.parse::<jiff::Timestamp>().unwrap();
    assert!(text.ends_with('\n'));
}

#[test]
fn second_acquire_is_held_and_names_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = DrillLock::acquire(dir.path()).unwrap();
    let before = fs::read(dir.path().join("lock")).unwrap();
    let err = DrillLock::acquire(dir.path()).unwrap_err();
    let pid = std::process::id();
    match &err {
        LockError::Held { pid: p, host, since } => {
            assert_eq!(*p, Some(pid));
            assert_eq!(host.as_deref(), Some(drillbook::drill::lock::hostname().as_str()));
            assert!(since.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");
    assert!(msg.contains("another drillbook process"), "{msg}");
    assert!(msg.contains("close it first"), "{msg}");
    // The failed attempt did not clobber the holder's details.
    assert_eq!(fs::read(dir.path().join("lock")).unwrap(), before);
    drop(first);
}

#[test]
fn lock_can_be_reacquired_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let first = DrillLock::acquire(dir.path()).unwrap();
    drop(first);
    let second = DrillLock::acquire(dir.path()).unwrap();
    assert!(DrillLock::acquire(dir.path()).is_err());
    drop(second);
    DrillLock::acquire(dir.path()).unwrap();
}

#[test]
fn lock_held_message_without_details() {
    let err = LockError::Held { pid: None, host: None, since: None };
    assert_eq!(err.to_string(), "drill is open in another drillbook process; close it first");
    let err = LockError::Held { pid: Some(4242), host: Some("x".into()), since: Some("2025-01-01T00:00:00Z".into()) };
    assert_eq!(
        err.to_string(),
        "drill is open in another drillbook process (pid 4242 on host x since \
         2025-01-01T00:00:00Z); close it first"
    );
}

#[test]
fn lock_in_a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = DrillLock::acquire(&missing).unwrap_err();
    assert!(matches!(err, LockError::Io { op: "open", .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()));
}

/// Helper run in a child process by `lock_held_by_another_process`: holds the lock until
/// its stdin is closed.
#[test]
fn helper_lock_child() {
    let Some(dir) = std::env::var_os(LOCK_CHILD_ENV) else {
        return; // only meaningful as a child process
    };
    let lock = DrillLock::acquire(Path::new(&dir)).unwrap();
    println!("\n{LOCK_CHILD_MARKER}");
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).unwrap() > 0 {}
    drop(lock);
}

#[test]
fn lock_held_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = helper_command("helper_lock_child", LOCK_CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "child exited before taking the lock");
        if line.trim_end().ends_with(LOCK_CHILD_MARKER) {
            break;
        }
    }

    let err = DrillLock::acquire(dir.path()).unwrap_err();
    assert!(matches!(err, LockError::Held { pid: Some(p), .. } if p == child_pid), "{err:?}");
    assert!(err.to_string().contains(&format!("pid {child_pid}")), "{err}");

    drop(child.stdin.take()); // EOF: the child releases the lock and exits
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    assert!(child.wait().unwrap().success());
    DrillLock::acquire(dir.path()).unwrap();
}

#[test]
fn lock_is_released_when_the_holder_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = helper_command("helper_lock_child", LOCK_CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.trim_end().ends_with(LOCK_CHILD_MARKER) {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0);
    }
    assert!(DrillLock::acquire(dir.path()).is_err());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    DrillLock::acquire(dir.path()).unwrap();
}
