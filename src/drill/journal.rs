//! Append-only JSONL journal with a SHA-256 hash chain.
//!
//! A drill's state lives nowhere but in its journal: one JSON [`Record`] per
//! line, each carrying the hex SHA-256 of the previous line's bytes (without
//! the `'\n'`) so that any change, insertion or removal of a line is detected
//! on replay. Every [`Journal::append`] is a single `write_all` of the line
//! plus `'\n'` followed by `sync_data()`, so a record is durable before the
//! caller continues and a `kill -9` can at worst leave one incomplete last
//! line. Such a torn tail is not an error: [`Journal::open`] copies its bytes
//! to `<journal>.torn-<seq>` and cuts it off; [`read`] and [`verify`] only
//! report it.
//!
//! Sequence numbers start at 1, so in an intact journal line *n* holds seq *n*.
//!
//! Reading is streamed: the file is read a block at a time, decoded in
//! rounds on every core, and each record is handed on as soon as its link
//! is checked ([`Journal::open_each`], [`read_each`]), so a resume of a long
//! journal never holds it whole, raw or decoded.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` value of the first record: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Seq of the first record of a journal.
pub const FIRST_SEQ: u64 = 1;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record<E> {
    /// Position in the journal, starting at [`FIRST_SEQ`] and increasing by one per line.
    pub seq: u64,
    /// When the record was appended.
    pub ts: jiff::Timestamp,
    /// Hex SHA-256 of the previous line's bytes (without `'\n'`); [`GENESIS_PREV`] for the first.
    pub prev: String,
    /// The payload.
    pub event: E,
}

/// Serialisation view of a [`Record`] that borrows the event (same field order).
#[derive(Serialize)]
struct RecordRef<'a, E> {
    seq: u64,
    ts: jiff::Timestamp,
    prev: &'a str,
    event: &'a E,
}

/// A record with its event left unparsed: enough to check structure and chain.
#[derive(Deserialize)]
struct RecordHeader {
    seq: u64,
    #[allow(dead_code)]
    ts: jiff::Timestamp,
    prev: String,
    #[allow(dead_code)]
    event: IgnoredAny,
}

/// What was read from a journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay<E> {
    /// Every complete, valid record, in order.
    pub records: Vec<Record<E>>,
    /// An incomplete last line left by a crash mid-append, if any.
    pub torn: Option<TornTail>,
}

/// An incomplete last line (a crash during an append).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// 1-based line number of the torn line.
    pub line_number: usize,
    /// Offset of the first byte of the torn line; the journal's valid length.
    pub byte_offset: u64,
    /// Length of the torn line in bytes (including its `'\n'` if it had one).
    pub bytes: usize,
    /// Where [`Journal::open`] saved the bytes before cutting them off; `None` from [`read`]/[`verify`].
    pub saved_to: Option<PathBuf>,
}

/// Result of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of valid records.
    pub records: u64,
    /// Hex SHA-256 of the last valid line ([`GENESIS_PREV`] for an empty journal).
    pub head: String,
    /// An incomplete last line, if any (not a break).
    pub torn: Option<TornTail>,
}

/// Which link of the chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// `seq` is not the previous line's seq + 1 (or not [`FIRST_SEQ`] on line 1).
    Seq,
    /// `prev` is not the hash of the previous line (or not [`GENESIS_PREV`] on line 1).
    PrevHash,
}

/// The first place where a journal's chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// 1-based line number of the line whose link is wrong.
    pub line: usize,
    /// What is wrong.
    pub kind: BreakKind,
    /// The value the chain requires.
    pub expected: String,
    /// The value on the line.
    pub found: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        match (self.kind, line) {
            (BreakKind::Seq, 1) => write!(
                f,
                "line 1: seq is {} but a journal starts at {} (its beginning is missing)",
                self.found, self.expected
            ),
            (BreakKind::Seq, _) => write!(
                f,
                "line {line}: seq is {} but line {} has seq {} so {} was expected \
                 (a line was removed, inserted or reordered)",
                self.found,
                line.saturating_sub(1),
                seq_before(&self.expected),
                self.expected
            ),
            (BreakKind::PrevHash, 1) => write!(
                f,
                "line 1: prev hash of the first record must be all zeros (its beginning was \
                 changed or removed); found {}",
                self.found
            ),
            (BreakKind::PrevHash, _) => write!(
                f,
                "line {line}: prev hash does not match line {} (a line was changed, inserted \
                 or removed); expected {}, found {}",
                line.saturating_sub(1),
                self.expected,
                self.found
            ),
        }
    }
}

fn seq_before(expected: &str) -> String {
    match expected.parse::<u64>() {
        Ok(n) => n.saturating_sub(1).to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// Everything that can go wrong with a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A filesystem operation failed (disk full, read-only filesystem, permissions, ...).
    #[error("{}", io_message(.path, .op, .source))]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done: "create", "open", "read", "append", "sync" (after an append),
        /// "truncate", "save torn tail", "sync directory".
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// [`Journal::create`] found a file already there.
    #[error(
        "journal {} already exists; open it (e.g. `drillbook resume`) instead of creating a new one",
        .path.display()
    )]
    AlreadyExists {
        /// The existing journal.
        path: PathBuf,
    },
    /// A line other than the last one is not a valid record.
    #[error(
        "journal {} is corrupt at line {line}: {problem}; this is not a line torn by a crash \
         (more lines follow it), so restore the journal from a backup or repair that line",
        .path.display()
    )]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        problem: Corruption,
    },
    /// The hash chain or the seq numbering is broken: the journal was edited.
    #[error("journal {} was modified after it was written: {brk}", .path.display())]
    Modified {
        /// The journal.
        path: PathBuf,
        /// The first break.
        brk: ChainBreak,
    },
    /// A complete record whose event does not decode into the expected type.
    #[error(
        "journal {} line {line} (seq {seq}): event cannot be read: {message}; was it written by \
         another drillbook version?",
        .path.display()
    )]
    Event {
        /// The journal.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// serde's message.
        message: String,
    },
    /// An earlier append failed midway; this writer refuses further appends.
    #[error(
        "journal {} cannot be appended to after an earlier write failed (a partial line may be \
         on disk): the drill is paused; fix the cause and run `drillbook resume`, which sets the \
         partial line aside",
        .path.display()
    )]
    Poisoned {
        /// The journal.
        path: PathBuf,
    },
    /// The event could not be serialised (nothing was written).
    #[error("journal {}: event cannot be serialised: {source}", .path.display())]
    Encode {
        /// The journal.
        path: PathBuf,
        /// `serde_json`'s error.
        source: serde_json::Error,
    },
}

/// What is wrong with a line of a journal (or with the journal as it is being followed).
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    #[error("empty line")]
    EmptyLine,
    /// The line is not JSON with a record's header.
    #[error("not a journal record: {}", serde_message(.0))]
    NotRecord(#[source] serde_json::Error),
    #[error("line is not terminated by a newline")]
    Unterminated,
    /// A followed journal got shorter than what was already read of it.
    #[error(
        "the journal shrank to {length} bytes while {read} bytes of it had been read: it was \
         truncated or replaced"
    )]
    Shrank { length: u64, read: u64 },
}

impl JournalError {
    fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        JournalError::Io { path: path.to_path_buf(), op, source }
    }
}

/// Operations whose failure interrupts a running drill (an append and its sync).
fn is_write_op(op: &str) -> bool {
    matches!(op, "append" | "sync")
}

/// serde_json's message with its position given as a column only: the line it would
/// name is always 1 (one record per line) and would be confused with the journal's line.
fn serde_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(head) if e.column() > 0 => format!("{head} (column {})", e.column()),
        Some(head) => head.to_owned(),
        None => msg,
    }
}

fn io_message(path: &Path, op: &str, source: &io::Error) -> String {
    let shown = path.display();
    let pause = if is_write_op(op) { "the drill is paused and everything recorded so far is safe; " } else { "" };
    let resume = if is_write_op(op) { ", then run `drillbook resume`" } else { ", then try again" };
    let advice = match source.kind() {
        ErrorKind::StorageFull => format!("{pause}free space on that filesystem{resume}"),
        ErrorKind::QuotaExceeded => format!("{pause}free space or raise the disk quota{resume}"),
        ErrorKind::FileTooLarge => {
            format!("{pause}the file size limit (ulimit -f) was reached; raise it{resume}")
        }
        ErrorKind::ReadOnlyFilesystem => format!(
            "{pause}the filesystem is read-only; remount it read-write or move the drill \
             directory to a writable place{resume}"
        ),
        ErrorKind::PermissionDenied => format!(
            "{pause}check the permissions of {shown} and its directory, or run drillbook as the \
             user who owns the drill{resume}"
        ),
        ErrorKind::NotFound => format!("{pause}check that {shown} and its directory exist{resume}"),
        _ => format!("{pause}fix the cause{resume}"),
    };
    format!("journal {op} failed for {shown} ({source}): {advice}")
}

/// SHA-256 of a line's bytes: what the next line's `prev` names.
type LineDigest = [u8; 32];

/// The `prev` of [`GENESIS_PREV`], as a digest.
const GENESIS_DIGEST: LineDigest = [0; 32];

fn line_digest(line: &[u8]) -> LineDigest {
    Sha256::digest(line).into()
}

/// Lower-case hex of a line digest, by table, not by `format!` per byte.
fn digest_hex(digest: &LineDigest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Hex SHA-256 of a line's bytes.
fn line_hash(line: &[u8]) -> String {
    digest_hex(&line_digest(line))
}

/// A record's `prev` as read: a digest when it is 64 lower-case hex digits
/// (as drillbook writes it), else kept as text for the error message. Decoded
/// on the worker so the chain check compares 32 bytes and allocates nothing.
#[derive(Debug)]
enum Prev {
    Digest(LineDigest),
    Other(String),
}

impl Prev {
    fn of(text: &str) -> Prev {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            }
        }
        let bytes = text.as_bytes();
        let mut digest = [0u8; 32];
        if bytes.len() == 64 {
            let decoded = digest.iter_mut().zip(bytes.chunks_exact(2)).all(|(out, pair)| {
                match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(high), Some(low)) => {
                        *out = (high << 4) | low;
                        true
                    }
                    _ => false,
                }
            });
            if decoded {
                return Prev::Digest(digest);
            }
        }
        Prev::Other(text.to_owned())
    }
}

/// Structure and chain of a whole journal (its records went to the visitor).
struct Scan {
    /// Valid records.
    records: u64,
    head: String,
    next_seq: u64,
    /// Length of the valid part (where a torn tail starts).
    valid_len: u64,
    torn: Option<TornTail>,
}

/// What one line turned out to be. Computed a round of lines at a time, on
/// every core (parsing and hashing are most of a replay's time); the chain
/// is then checked in order.
enum Parsed<T> {
    Record {
        seq: u64,
        prev: Prev,
        value: T,
    },
    /// A journal record whose event does not decode (say, written by a newer
    /// drillbook): reported only when the chain itself is fine.
    BadEvent {
        seq: u64,
        prev: Prev,
        message: String,
    },
    NotRecord(Corruption),
}

fn header(content: &[u8]) -> Result<RecordHeader, Corruption> {
    serde_json::from_slice::<RecordHeader>(content).map_err(Corruption::NotRecord)
}

/// The line's record header only (`verify`: the events are not needed).
fn parse_header(content: &[u8]) -> Parsed<()> {
    match header(content) {
        Ok(header) => Parsed::Record { seq: header.seq, prev: Prev::of(&header.prev), value: () },
        Err(problem) => Parsed::NotRecord(problem),
    }
}

/// The whole record, falling back to the header to tell a bad event from a bad line.
fn parse_record<E: DeserializeOwned>(content: &[u8]) -> Parsed<Record<E>> {
    match serde_json::from_slice::<Record<E>>(content) {
        Ok(record) => Parsed::Record { seq: record.seq, prev: Prev::of(&record.prev), value: record },
        Err(event_error) => match header(content) {
            Ok(header) => {
                Parsed::BadEvent { seq: header.seq, prev: Prev::of(&header.prev), message: serde_message(&event_error) }
            }
            Err(problem) => Parsed::NotRecord(problem),
        },
    }
}

/// The line at `line` continues the chain: the expected seq, and the hash of
/// the line before it.
fn check_link(
    path: &Path,
    line: usize,
    seq: u64,
    prev: Prev,
    next_seq: u64,
    head: &LineDigest,
) -> Result<(), JournalError> {
    if seq != next_seq {
        return Err(JournalError::Modified {
            path: path.to_path_buf(),
            brk: ChainBreak { line, kind: BreakKind::Seq, expected: next_seq.to_string(), found: seq.to_string() },
        });
    }
    let found = match prev {
        Prev::Digest(digest) if digest == *head => return Ok(()),
        Prev::Digest(digest) => digest_hex(&digest),
        Prev::Other(text) => text,
    };
    Err(JournalError::Modified {
        path: path.to_path_buf(),
        brk: ChainBreak { line, kind: BreakKind::PrevHash, expected: digest_hex(head), found },
    })
}

/// What a worker learnt of one line, apart from its decoded value: enough
/// to check the chain in order afterwards.
enum LineCheck {
    /// A record; its value is the next one in its part's `values`.
    Record {
        seq: u64,
        prev: Prev,
        hash: LineDigest,
    },
    BadEvent {
        seq: u64,
        prev: Prev,
        hash: LineDigest,
        message: String,
    },
    NotRecord(Corruption),
}

/// One line as decoded: its length with the `'\n'`, whether it has one, and
/// what it is.
struct Checked {
    bytes: usize,
    terminated: bool,
    check: LineCheck,
}

/// A round of lines as decoded: a check per line and the values
/// of the records among them, in order. Values are kept apart from the
/// checks so that each is written once; the vectors are reused round after
/// round, so a long journal is decoded into the same few megabytes instead
/// of fresh memory for every record (whose page faults cost more than the
/// decoding did).
struct Part<T> {
    checks: Vec<Checked>,
    values: Vec<T>,
}

impl<T> Part<T> {
    fn new() -> Self {
        Part { checks: Vec::new(), values: Vec::new() }
    }
}

/// Bytes of whole lines decoded at a time by one worker (about 2,400 records
/// of a typical journal): big enough that handing a round over is noise,
/// small enough that a round's records are still in cache when the chain is
/// followed through them, and that every core has rounds to take.
#[cfg(not(test))]
const ROUND_BYTES: usize = 512 << 10;
#[cfg(test)]
const ROUND_BYTES: usize = 100;

/// Bytes read from the journal at a time. Blocks are reused once every
/// round cut from them is decoded ([`crate::buffers::LentBuffers`]): reading a long journal whole into fresh
/// memory cost more in page faults than decoding it. The unit tests read a
/// few hundred bytes at a time, so that their journals cross block and
/// round boundaries everywhere.
#[cfg(not(test))]
const BLOCK_BYTES: usize = 4 << 20;
#[cfg(test)]
const BLOCK_BYTES: usize = 300;

type Parse<'a, T> = &'a (dyn Fn(&[u8]) -> Parsed<T> + Sync);

/// Decodes every line of `lines` (whole lines, the last possibly without a
/// `'\n'`) into `part`.
fn check_lines<T>(lines: &[u8], parse: Parse<'_, T>, part: &mut Part<T>) {
    part.checks.clear();
    part.values.clear();
    for line in lines_of(lines) {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let parsed = if content.is_empty() { Parsed::NotRecord(Corruption::EmptyLine) } else { parse(content) };
        let check = match parsed {
            Parsed::Record { seq, prev, value } => {
                part.values.push(value);
                LineCheck::Record { seq, prev, hash: line_digest(content) }
            }
            Parsed::BadEvent { seq, prev, message } => {
                LineCheck::BadEvent { seq, prev, hash: line_digest(content), message }
            }
            Parsed::NotRecord(problem) => LineCheck::NotRecord(problem),
        };
        part.checks.push(Checked { bytes: line.len(), terminated: content.len() < line.len(), check });
    }
}

/// A round to decode: the bytes `lines` of `block` (whole lines), the
/// `index`-th of the journal, with an emptied [`Part`] to decode it into.
struct Job<T> {
    index: usize,
    block: std::sync::Arc<Vec<u8>>,
    lines: std::ops::Range<usize>,
    /// The round holds the journal's last line.
    ends: bool,
    part: Part<T>,
}

/// The `index`-th round, decoded, or the read error met instead of it.
struct Decoded<T> {
    index: usize,
    round: Result<(Part<T>, bool), JournalError>,
}

/// Reads the journal a block at a time and cuts each block into rounds for
/// the workers, each with a part that came back through `recycled` (so at
/// most as many rounds are in flight as there are parts). Stops when the
/// follower is gone (the chain broke, or the journal ended).
fn cut_rounds<T>(
    path: &Path,
    file: &mut File,
    jobs: &std::sync::mpsc::Sender<Job<T>>,
    recycled: &std::sync::mpsc::Receiver<Part<T>>,
    decoded: &std::sync::mpsc::Sender<Decoded<T>>,
) {
    // Blocks lent to the workers; in flight rounds are bounded by the parts.
    let mut blocks = crate::buffers::LentBuffers::new(usize::MAX);
    let mut carried: Vec<u8> = Vec::new();
    let mut index = 0;
    let mut at_end = false;
    while !at_end {
        let mut buf = blocks.spare(BLOCK_BYTES);
        buf.append(&mut carried);
        let mut want = BLOCK_BYTES.max(buf.len().saturating_add(BLOCK_BYTES / 2));
        // Before the end, the last complete line is held back with what
        // follows it: only at the end is it known to be the last line
        // (where a line that is not a record is a torn tail, not corruption).
        let ready = loop {
            while !at_end && buf.len() < want {
                let asked = want - buf.len();
                match Read::by_ref(file).take(asked as u64).read_to_end(&mut buf) {
                    Ok(got) => at_end = got < asked,
                    Err(error) => {
                        let _ = decoded.send(Decoded { index, round: Err(JournalError::io(path, "read", error)) });
                        return;
                    }
                }
            }
            if at_end {
                break buf.len();
            }
            match memchr::memrchr(b'\n', &buf).and_then(|last| memchr::memrchr(b'\n', &buf[..last])) {
                Some(end) => break end + 1,
                // A line longer than a block: read on.
                None => want = buf.len().saturating_add(BLOCK_BYTES),
            }
        };
        carried.extend_from_slice(&buf[ready..]);
        let block = blocks.lend(buf);
        let mut start = 0;
        while start < ready {
            let end = match (start + ROUND_BYTES).checked_sub(1).filter(|from| *from < ready) {
                Some(from) => memchr::memchr(b'\n', &block[from..ready]).map_or(ready, |at| from + at + 1),
                None => ready,
            };
            let Ok(part) = recycled.recv() else { return };
            let ends = at_end && end == ready;
            if jobs.send(Job { index, block: std::sync::Arc::clone(&block), lines: start..end, ends, part }).is_err() {
                return;
            }
            index += 1;
            start = end;
        }
    }
}

/// Decodes rounds as they come, on one core; several run at once, each
/// taking the next round (no round waits for another to be decoded).
fn decode_jobs<T>(
    jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<Job<T>>>,
    parse: Parse<'_, T>,
    decoded: &std::sync::mpsc::Sender<Decoded<T>>,
) {
    loop {
        // The lock is held only to take a job; a poisoned lock means a
        // sibling panicked, which the scope reports.
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(Job { index, block, lines, ends, mut part }) = job else { return };
        check_lines(&block[lines], parse, &mut part);
        drop(block);
        if decoded.send(Decoded { index, round: Ok((part, ends)) }).is_err() {
            return;
        }
    }
}

/// Checks structure and chain of the journal in `file` (read from its
/// start), decoding each line with `parse` and handing each valid record's
/// value to `visit`, in order. One thread reads and cuts the journal into
/// rounds, one worker per core decodes them (each round whole, as soon as a
/// worker is free), and this thread follows the chain through the rounds
/// in order and visits their records.
/// The first structural problem or chain break is the error; a torn last
/// line is reported, not an error (and not visited); a bad event is an
/// error only when everything else holds. On an error, what was visited
/// must be thrown away.
fn scan<T: Send>(
    path: &Path,
    file: &mut File,
    parse: Parse<'_, T>,
    visit: &mut dyn FnMut(T),
) -> Result<Scan, JournalError> {
    use std::sync::mpsc;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let mut chain =
        Chain { path, head: GENESIS_DIGEST, next_seq: FIRST_SEQ, offset: 0, lines: 0, records: 0, bad_event: None };
    let (job_tx, job_rx) = mpsc::channel();
    let job_rx = std::sync::Mutex::new(job_rx);
    std::thread::scope(|scope| {
        let (decoded_tx, decoded) = mpsc::channel();
        let (recycle, recycled) = mpsc::channel();
        // A round for each worker, one being followed, and one cut ahead.
        for _ in 0..workers + 2 {
            let _ = recycle.send(Part::new());
        }
        for _ in 0..workers {
            let decoded_tx = decoded_tx.clone();
            let job_rx = &job_rx;
            scope.spawn(move || decode_jobs(job_rx, parse, &decoded_tx));
        }
        // When this thread returns, `recycle` is dropped: the reader stops
        // and drops `job_tx`, and then the workers stop.
        scope.spawn(move || cut_rounds(path, file, &job_tx, &recycled, &decoded_tx));
        // Rounds decoded ahead of the one the chain is at, by index.
        let mut ahead = std::collections::BTreeMap::new();
        let mut next = 0;
        for round in decoded {
            ahead.insert(round.index, round.round);
            while let Some(round) = ahead.remove(&next) {
                next += 1;
                let (mut part, ends) = round?;
                if let Some(torn) = chain.follow(&mut part, ends, visit)? {
                    return chain.finish(Some(torn));
                }
                let _ = recycle.send(part);
            }
        }
        chain.finish(None)
    })
}

/// The hash chain as followed so far through a journal.
struct Chain<'a> {
    path: &'a Path,
    head: LineDigest,
    next_seq: u64,
    /// Bytes of valid lines so far.
    offset: u64,
    /// Lines seen so far.
    lines: usize,
    records: u64,
    /// The first record whose event did not decode: line, seq, why.
    bad_event: Option<(usize, u64, String)>,
}

impl Chain<'_> {
    /// Follows one round (`part` holds its checks and values, in order),
    /// visiting each valid record. `ends`: the round holds the journal's
    /// last line. Returns the torn tail if there is one.
    fn follow<T>(
        &mut self,
        part: &mut Part<T>,
        ends: bool,
        visit: &mut dyn FnMut(T),
    ) -> Result<Option<TornTail>, JournalError> {
        let path = self.path;
        let mut left = part.checks.len();
        let mut values = part.values.drain(..);
        for Checked { bytes, terminated, check } in part.checks.drain(..) {
            left = left.saturating_sub(1);
            let line_number = self.lines.saturating_add(1);
            let is_last = ends && left == 0;
            let (seq, prev, hash, value) = match check {
                LineCheck::Record { seq, prev, hash } if terminated => (seq, prev, hash, values.next()),
                LineCheck::BadEvent { seq, prev, hash, message } if terminated => {
                    self.bad_event.get_or_insert((line_number, seq, message));
                    (seq, prev, hash, None)
                }
                // No '\n' at the end, or the last line is not a record: a crash mid-append.
                _ if is_last => {
                    return Ok(Some(TornTail { line_number, byte_offset: self.offset, bytes, saved_to: None }));
                }
                LineCheck::NotRecord(problem) => {
                    return Err(JournalError::Corrupt { path: path.to_path_buf(), line: line_number, problem });
                }
                LineCheck::Record { .. } | LineCheck::BadEvent { .. } => unreachable_unterminated(path, line_number)?,
            };
            check_link(path, line_number, seq, prev, self.next_seq, &self.head)?;
            if let Some(value) = value {
                visit(value);
                self.records = self.records.saturating_add(1);
            }
            self.lines = line_number;
            self.head = hash;
            self.next_seq = self.next_seq.saturating_add(1);
            self.offset = self.offset.saturating_add(bytes as u64);
        }
        Ok(None)
    }

    fn finish(self, torn: Option<TornTail>) -> Result<Scan, JournalError> {
        if let Some((line, seq, message)) = self.bad_event {
            return Err(JournalError::Event { path: self.path.to_path_buf(), line, seq, message });
        }
        Ok(Scan {
            records: self.records,
            head: digest_hex(&self.head),
            next_seq: self.next_seq,
            valid_len: self.offset,
            torn,
        })
    }
}

/// `data` cut after each '\n' (the last piece may lack one), like
/// `split_inclusive` but with memchr: a journal has 100,000s of lines.
fn lines_of(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::with_capacity(data.len() / 128 + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        lines.push(&data[start..=end]);
        start = end + 1;
    }
    if start < data.len() {
        lines.push(&data[start..]);
    }
    lines
}

/// `lines_of` only yields a line without '\n' as the last one; kept as an
/// error rather than a panic should that ever not hold.
fn unreachable_unterminated<T>(path: &Path, line: usize) -> Result<T, JournalError> {
    Err(JournalError::Corrupt { path: path.to_path_buf(), line, problem: Corruption::Unterminated })
}

fn read_all(path: &Path, file: &mut File) -> Result<Vec<u8>, JournalError> {
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(|e| JournalError::io(path, "read", e))?;
    Ok(data)
}

/// Read-only replay (for `list`, `report`): same validation as [`Journal::open`], but the
/// file is never modified (a torn tail is reported, not truncated or copied).
pub fn read<E: DeserializeOwned + Send>(path: &Path) -> Result<Replay<E>, JournalError> {
    let mut records = Vec::new();
    let torn = read_each(path, &mut |record| records.push(record))?;
    Ok(Replay { records, torn })
}

/// [`read`] handing each record to `visit` in order as it is checked,
/// instead of collecting them. On an error, what was visited must be thrown
/// away.
pub fn read_each<E: DeserializeOwned + Send>(
    path: &Path,
    visit: &mut dyn FnMut(Record<E>),
) -> Result<Option<TornTail>, JournalError> {
    let mut file = File::open(path).map_err(|e| JournalError::io(path, "open", e))?;
    Ok(scan(path, &mut file, &parse_record::<E>, visit)?.torn)
}

/// Checks the hash chain and seq continuity line by line without decoding events.
///
/// Returns the head hash (hex SHA-256 of the last valid line) and the number of records;
/// the first break is a [`JournalError::Modified`] (which line, expected and found) and a
/// malformed middle line a [`JournalError::Corrupt`]. A torn last line is reported in
/// [`VerifyReport::torn`]. Never modifies the file.
pub fn verify(path: &Path) -> Result<VerifyReport, JournalError> {
    let mut file = File::open(path).map_err(|e| JournalError::io(path, "open", e))?;
    let scan = scan(path, &mut file, &parse_header, &mut |()| {})?;
    Ok(VerifyReport { records: scan.records, head: scan.head, torn: scan.torn })
}

/// An open journal writer.
#[derive(Debug)]
pub struct Journal<E> {
    file: File,
    path: PathBuf,
    next_seq: u64,
    head: String,
    poisoned: bool,
    _event: PhantomData<fn(&E)>,
}

impl<E: Serialize + DeserializeOwned + Send> Journal<E> {
    /// Creates a new, empty journal file (error if it exists). The parent directory must exist.
    pub fn create(path: &Path) -> Result<Self, JournalError> {
        let file = OpenOptions::new().append(true).create_new(true).open(path).map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                JournalError::AlreadyExists { path: path.to_path_buf() }
            } else {
                JournalError::io(path, "create", e)
            }
        })?;
        file.sync_all().map_err(|e| JournalError::io(path, "create", e))?;
        sync_parent_dir(path)?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            next_seq: FIRST_SEQ,
            head: GENESIS_PREV.to_owned(),
            poisoned: false,
            _event: PhantomData,
        })
    }

    /// Opens an existing journal for appending: reads and validates every line and returns
    /// the writer plus what was read.
    ///
    /// A torn last line (no trailing `'\n'`, or a last line that is not a valid record) is
    /// not an error: its bytes are first copied to `<journal>.torn-<seq>` next to the journal
    /// (`.torn-<seq>.<n>` if that exists), then cut off the journal (`set_len` + sync) so the
    /// next append starts on a clean line. It is returned in [`Replay::torn`].
    pub fn open(path: &Path) -> Result<(Self, Replay<E>), JournalError> {
        let mut records = Vec::new();
        let (journal, torn) = Self::open_each(path, &mut |record| records.push(record))?;
        Ok((journal, Replay { records, torn }))
    }

    /// [`Journal::open`] handing each record to `visit` in order as it is
    /// checked, instead of collecting them: a resume builds its state from a
    /// long journal without holding every record at once. On an error, what
    /// was visited must be thrown away.
    pub fn open_each(path: &Path, visit: &mut dyn FnMut(Record<E>)) -> Result<(Self, Option<TornTail>), JournalError> {
        let mut file =
            OpenOptions::new().read(true).append(true).open(path).map_err(|e| JournalError::io(path, "open", e))?;
        let scan = scan(path, &mut file, &parse_record::<E>, visit)?;
        let mut torn = scan.torn;
        if let Some(tail) = torn.as_mut() {
            use std::io::Seek;
            file.seek(io::SeekFrom::Start(tail.byte_offset)).map_err(|e| JournalError::io(path, "read", e))?;
            let bytes = read_all(path, &mut file)?;
            let saved = save_torn(path, scan.next_seq, &bytes)?;
            file.set_len(scan.valid_len).map_err(|e| JournalError::io(path, "truncate", e))?;
            file.sync_all().map_err(|e| JournalError::io(path, "truncate", e))?;
            tail.saved_to = Some(saved);
        }
        let journal = Journal {
            file,
            path: path.to_path_buf(),
            next_seq: scan.next_seq,
            head: scan.head,
            poisoned: false,
            _event: PhantomData,
        };
        Ok((journal, torn))
    }

    /// Appends `Record { seq: next, ts: now, prev, event }` as one line with a single
    /// `write_all` of line + `'\n'`, then `sync_data()`. Returns the record's seq.
    ///
    /// If the write or the sync fails, the writer is poisoned (a partial line may be on
    /// disk): this and every later append return an error; reopen the journal with
    /// [`Journal::open`], which sets the partial line aside as a torn tail.
    pub fn append(&mut self, event: &E) -> Result<u64, JournalError> {
        self.append_stamped(event).map(|(seq, _)| seq)
    }

    /// Like [`Journal::append`], also returning the timestamp written, so the
    /// caller's state carries exactly what a replay will see.
    pub fn append_stamped(&mut self, event: &E) -> Result<(u64, jiff::Timestamp), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned { path: self.path.clone() });
        }
        let seq = self.next_seq;
        let ts = jiff::Timestamp::now();
        let record = RecordRef { seq, ts, prev: &self.head, event };
        let mut buf =
            serde_json::to_vec(&record).map_err(|source| JournalError::Encode { path: self.path.clone(), source })?;
        let hash = line_hash(&buf);
        buf.push(b'\n');
        if let Err(e) = self.file.write_all(&buf) {
            self.poisoned = true;
            return Err(JournalError::io(&self.path, "append", e));
        }
        if let Err(e) = self.file.sync_data() {
            self.poisoned = true;
            return Err(JournalError::io(&self.path, "sync", e));
        }
        self.head = hash;
        self.next_seq = seq.saturating_add(1);
        Ok((seq, ts))
    }

    /// The seq the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Hex SHA-256 of the last line ([`GENESIS_PREV`] for an empty journal).
    pub fn head(&self) -> &str {
        &self.head
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an earlier append failed, so that no further append is allowed.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

/// Copies a torn tail to `<journal>.torn-<seq>` (or `.torn-<seq>.<n>`), durably.
fn save_torn(path: &Path, seq: u64, bytes: &[u8]) -> Result<PathBuf, JournalError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "journal.jsonl".to_owned());
    let base = format!("{name}.torn-{seq}");
    for attempt in 0u32..1000 {
        let file_name = if attempt == 0 { base.clone() } else { format!("{base}.{attempt}") };
        let target = path.with_file_name(file_name);
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&target) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(JournalError::io(&target, "save torn tail", e)),
        };
        file.write_all(bytes).map_err(|e| JournalError::io(&target, "save torn tail", e))?;
        file.sync_all().map_err(|e| JournalError::io(&target, "save torn tail", e))?;
        sync_parent_dir(&target)?;
        return Ok(target);
    }
    Err(JournalError::io(
        &path.with_file_name(base),
        "save torn tail",
        io::Error::new(ErrorKind::AlreadyExists, "too many saved torn tails with this seq"),
    ))
}

/// Makes a newly created directory entry durable.
fn sync_parent_dir(path: &Path) -> Result<(), JournalError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let result = File::open(dir).and_then(|d| d.sync_all());
    match result {
        Ok(()) => Ok(()),
        // Some filesystems cannot fsync a directory; the data itself is synced.
        Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => Ok(()),
        Err(e) => Err(JournalError::io(dir, "sync directory", e)),
    }
}

/// Reads a journal that another process is appending to, a few lines at a time, without
/// ever writing to it (`drillbook watch`).
///
/// Each [`Follower::poll`] returns the complete (`'\n'`-terminated) records appended since
/// the last one, checked against the chain like [`read`] does. A line still being written,
/// or a last line that is not (yet) a valid record, is simply not consumed: the writer either
/// completes it or, on resume, sets it aside. A break anywhere before the end is an error.
#[derive(Debug)]
pub struct Follower<E> {
    path: PathBuf,
    /// Bytes consumed so far (the start of the first unread line).
    offset: u64,
    /// Lines consumed so far.
    lines: usize,
    next_seq: u64,
    head: LineDigest,
    _event: PhantomData<fn() -> E>,
}

impl<E: DeserializeOwned> Follower<E> {
    /// A follower at the start of the journal: its first poll reads everything there is.
    pub fn new(path: &Path) -> Self {
        Follower {
            path: path.to_path_buf(),
            offset: 0,
            lines: 0,
            next_seq: FIRST_SEQ,
            head: GENESIS_DIGEST,
            _event: PhantomData,
        }
    }

    /// Records consumed so far.
    pub fn records(&self) -> u64 {
        self.next_seq.saturating_sub(FIRST_SEQ)
    }

    /// The complete records appended since the last poll.
    pub fn poll(&mut self) -> Result<Vec<Record<E>>, JournalError> {
        let path = self.path.clone();
        let mut file = File::open(&path).map_err(|e| JournalError::io(&path, "open", e))?;
        let length = file.metadata().map_err(|e| JournalError::io(&path, "read", e))?.len();
        if length < self.offset {
            return Err(JournalError::Corrupt {
                path,
                line: self.lines,
                problem: Corruption::Shrank { length, read: self.offset },
            });
        }
        if length == self.offset {
            return Ok(Vec::new());
        }
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(self.offset)).map_err(|e| JournalError::io(&path, "read", e))?;
        let data = read_all(&path, &mut file)?;
        // Only complete lines; what follows the last '\n' is being written.
        let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let complete = data.get(..complete).unwrap_or_default();
        let chunks = lines_of(complete);
        let mut records = Vec::new();
        for (index, chunk) in chunks.iter().enumerate() {
            let line_number = self.lines.saturating_add(1);
            let is_last = index + 1 == chunks.len();
            let content = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            let parsed =
                if content.is_empty() { Parsed::NotRecord(Corruption::EmptyLine) } else { parse_record::<E>(content) };
            let (seq, prev, record) = match parsed {
                // Maybe torn by a crash: a resume sets it aside, so wait and see.
                Parsed::NotRecord(_) if is_last => break,
                Parsed::NotRecord(problem) => return Err(JournalError::Corrupt { path, line: line_number, problem }),
                Parsed::BadEvent { seq, prev, message } => (seq, prev, Err(message)),
                Parsed::Record { seq, prev, value } => (seq, prev, Ok(value)),
            };
            check_link(&path, line_number, seq, prev, self.next_seq, &self.head)?;
            let record = record.map_err(|message| JournalError::Event {
                path: path.clone(),
                line: line_number,
                seq,
                message,
            })?;
            records.push(record);
            self.head = line_digest(content);
            self.next_seq = self.next_seq.saturating_add(1);
            self.lines = line_number;
            self.offset = self.offset.saturating_add(chunk.len() as u64);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod follower_tests {
    use std::io::Write;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Ev {
        n: u32,
    }

    fn journal() -> (tempfile::TempDir, PathBuf, Journal<Ev>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let journal = Journal::<Ev>::create(&path).unwrap();
        (dir, path, journal)
    }

    fn raw_append(path: &Path, bytes: &[u8]) {
        OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
    }

    #[test]
    fn follows_complete_lines_as_they_are_appended() {
        let (_dir, path, mut journal) = journal();
        let mut follower = Follower::<Ev>::new(&path);
        assert!(follower.poll().unwrap().is_empty());
        journal.append(&Ev { n: 1 }).unwrap();
        journal.append(&Ev { n: 2 }).unwrap();
        let got: Vec<u32> = follower.poll().unwrap().into_iter().map(|r| r.event.n).collect();
        assert_eq!(got, [1, 2]);
        assert!(follower.poll().unwrap().is_empty());
        journal.append(&Ev { n: 3 }).unwrap();
        let got: Vec<u64> = follower.poll().unwrap().into_iter().map(|r| r.seq).collect();
        assert_eq!(got, [3]);
        assert_eq!(follower.records(), 3);
    }

    #[test]
    fn a_line_being_written_is_not_consumed_and_the_file_is_untouched() {
        let (_dir, path, mut journal) = journal();
        journal.append(&Ev { n: 1 }).unwrap();
        let mut follower = Follower::<Ev>::new(&path);
        assert_eq!(follower.poll().unwrap().len(), 1);
        // What the next append will write, in two halves.
        let (_dir2, other_path, mut other) = journal_copy(&path);
        other.append(&Ev { n: 2 }).unwrap();
        let full = std::fs::read(&other_path).unwrap();
        let line = &full[std::fs::read(&path).unwrap().len()..];
        let (first, second) = line.split_at(line.len() / 2);
        raw_append(&path, first);
        let before = std::fs::read(&path).unwrap();
        assert!(follower.poll().unwrap().is_empty(), "half a line is not consumed");
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing is truncated");
        raw_append(&path, second);
        let got: Vec<u32> = follower.poll().unwrap().into_iter().map(|r| r.event.n).collect();
        assert_eq!(got, [2]);
    }

    fn journal_copy(path: &Path) -> (tempfile::TempDir, PathBuf, Journal<Ev>) {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("journal.jsonl");
        std::fs::copy(path, &copy).unwrap();
        let (journal, _) = Journal::<Ev>::open(&copy).unwrap();
        (dir, copy, journal)
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error_not_a_panic() {
        let (_dir, path, mut journal) = journal();
        journal.append(&Ev { n: 1 }).unwrap();
        let mut follower = Follower::<Ev>::new(&path);
        follower.poll().unwrap();
        raw_append(&path, b"{garbage}\n");
        assert!(follower.poll().unwrap().is_empty(), "a bad last line may be a torn write");
        raw_append(&path, b"{\"seq\":3}\n");
        let error = follower.poll().unwrap_err();
        assert!(matches!(error, JournalError::Corrupt { line: 2, .. }), "{error}");
    }

    #[test]
    fn an_edited_chain_or_a_shrunk_file_is_an_error() {
        let (_dir, path, mut journal) = journal();
        journal.append(&Ev { n: 1 }).unwrap();
        journal.append(&Ev { n: 2 }).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"n\":1", "\"n\":7", 1)).unwrap();
        let error = Follower::<Ev>::new(&path).poll().unwrap_err();
        assert!(matches!(error, JournalError::Modified { .. }), "{error}");

        std::fs::write(&path, &text).unwrap();
        let mut follower = Follower::<Ev>::new(&path);
        assert_eq!(follower.poll().unwrap().len(), 2);
        std::fs::write(&path, text.lines().next().unwrap()).unwrap();
        let error = follower.poll().unwrap_err();
        assert!(error.to_string().contains("shrank"), "{error}");
    }
}

/// The journal is read a block at a time (`BLOCK_BYTES`, a few hundred bytes
/// under test) and decoded in rounds: every outcome must be what reading it
/// whole would give, wherever the block and round boundaries fall.
#[cfg(test)]
mod block_tests {
    use std::io::Write;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Ev {
        n: u32,
        pad: String,
    }

    /// A journal of `count` events, some lines longer than a block.
    fn written(count: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::<Ev>::create(&path).unwrap();
        for n in 1..=count {
            let pad = "x".repeat(if n % 7 == 0 { 3 * BLOCK_BYTES } else { (n as usize * 13) % 90 });
            journal.append(&Ev { n, pad }).unwrap();
        }
        (dir, path)
    }

    #[test]
    fn every_record_is_read_in_order_across_blocks_and_rounds() {
        for count in [0, 1, 2, 3, 40, 300] {
            let (_dir, path) = written(count);
            let replay = read::<Ev>(&path).unwrap();
            let numbers: Vec<u32> = replay.records.iter().map(|r| r.event.n).collect();
            assert_eq!(numbers, (1..=count).collect::<Vec<_>>(), "{count} events");
            assert!(replay.torn.is_none());
            let report = verify(&path).unwrap();
            assert_eq!(report.records, u64::from(count));
            let (journal, _) = Journal::<Ev>::open(&path).unwrap();
            assert_eq!(journal.head(), report.head, "{count} events");
            let last = std::fs::read(&path).unwrap();
            let expected = last
                .strip_suffix(b"\n")
                .and_then(|body| body.rsplit(|b| *b == b'\n').next())
                .map_or_else(|| GENESIS_PREV.to_owned(), line_hash);
            assert_eq!(report.head, expected);
        }
    }

    #[test]
    fn a_torn_or_unreadable_last_line_is_a_tail_at_any_length() {
        let (_dir, path) = written(30);
        let whole = std::fs::read(&path).unwrap();
        let valid = whole.len();
        for tail in [&b"{\"seq\":31,\"ts\""[..], b"{garbage}\n", b"\n"] {
            std::fs::write(&path, &whole).unwrap();
            OpenOptions::new().append(true).open(&path).unwrap().write_all(tail).unwrap();
            let replay = read::<Ev>(&path).unwrap();
            assert_eq!(replay.records.len(), 30);
            let torn = replay.torn.expect("a torn tail");
            assert_eq!((torn.line_number, torn.byte_offset, torn.bytes), (31, valid as u64, tail.len()));
            let (_, replay) = Journal::<Ev>::open(&path).unwrap();
            assert_eq!(replay.records.len(), 30);
            assert_eq!(std::fs::read(&path).unwrap(), whole, "the tail is cut off");
            let saved = replay.torn.and_then(|torn| torn.saved_to).expect("the tail is saved");
            assert_eq!(std::fs::read(saved).unwrap(), tail);
        }
    }

    #[test]
    fn a_break_in_a_later_block_names_its_line() {
        let (_dir, path) = written(25);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen("\"n\":20,", "\"n\":21,", 1);
        std::fs::write(&path, edited).unwrap();
        match read::<Ev>(&path).unwrap_err() {
            JournalError::Modified { brk, .. } => assert_eq!(brk.line, 21, "the line after the edited one"),
            other => panic!("{other}"),
        }
        let lines: Vec<&str> = text.lines().collect();
        let mut without = lines.clone();
        without.remove(11);
        std::fs::write(&path, without.join("\n") + "\n").unwrap();
        match verify(&path).unwrap_err() {
            JournalError::Modified { brk, .. } => assert_eq!(brk.line, 12),
            other => panic!("{other}"),
        }
        let mut garbage = lines;
        garbage[5] = "{not a record";
        std::fs::write(&path, garbage.join("\n") + "\n").unwrap();
        assert!(matches!(read::<Ev>(&path).unwrap_err(), JournalError::Corrupt { line: 6, .. }));
    }
}
