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

/// Hex SHA-256 of a line's bytes.
fn line_hash(line: &[u8]) -> String {
    // By table, not by `char` pushes: this runs once per line of every replay.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(line);
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// Structure and chain of a whole journal.
struct Scan<T> {
    /// The decoded payload of every valid line, in order.
    values: Vec<T>,
    head: String,
    next_seq: u64,
    /// Length of the valid part (where a torn tail starts).
    valid_len: u64,
    torn: Option<TornTail>,
}

/// What one line turned out to be. Computed for all lines at once, on
/// every core (parsing and hashing are most of a replay's time); the chain
/// is then checked in order.
enum Parsed<T> {
    Record {
        seq: u64,
        prev: String,
        value: T,
    },
    /// A journal record whose event does not decode (say, written by a newer
    /// drillbook): reported only when the chain itself is fine.
    BadEvent {
        seq: u64,
        prev: String,
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
        Ok(header) => Parsed::Record { seq: header.seq, prev: header.prev, value: () },
        Err(problem) => Parsed::NotRecord(problem),
    }
}

/// The whole record, falling back to the header to tell a bad event from a bad line.
fn parse_record<E: DeserializeOwned>(content: &[u8]) -> Parsed<Record<E>> {
    match serde_json::from_slice::<Record<E>>(content) {
        Ok(record) => Parsed::Record { seq: record.seq, prev: record.prev.clone(), value: record },
        Err(event_error) => match header(content) {
            Ok(header) => Parsed::BadEvent { seq: header.seq, prev: header.prev, message: serde_message(&event_error) },
            Err(problem) => Parsed::NotRecord(problem),
        },
    }
}

/// The line at `line` continues the chain: the expected seq, and the hash of
/// the line before it.
fn check_link(path: &Path, line: usize, seq: u64, prev: String, next_seq: u64, head: &str) -> Result<(), JournalError> {
    if seq != next_seq {
        return Err(JournalError::Modified {
            path: path.to_path_buf(),
            brk: ChainBreak { line, kind: BreakKind::Seq, expected: next_seq.to_string(), found: seq.to_string() },
        });
    }
    if prev != head {
        return Err(JournalError::Modified {
            path: path.to_path_buf(),
            brk: ChainBreak { line, kind: BreakKind::PrevHash, expected: head.to_owned(), found: prev },
        });
    }
    Ok(())
}

/// `f` over `items` on every core, results in order. Small inputs stay on
/// this thread: spawning costs more than it saves.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: &(dyn Fn(&T) -> R + Sync)) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads < 2 || items.len() < 4096 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>())).collect();
        let mut out = Vec::with_capacity(items.len());
        for part in parts {
            match part.join() {
                Ok(results) => out.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
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

/// Checks structure and chain of `data`, decoding each line with `parse`.
/// The first structural problem or chain break is the error; a torn last
/// line is reported, not an error; a bad event is an error only when
/// everything else holds.
fn scan<T: Send>(
    path: &Path,
    data: &[u8],
    parse: &(dyn Fn(&[u8]) -> Parsed<T> + Sync),
) -> Result<Scan<T>, JournalError> {
    let chunks = lines_of(data);
    let checked = parallel_map(&chunks, &|chunk: &&[u8]| {
        let content = chunk.strip_suffix(b"\n").unwrap_or(chunk);
        let parsed = if content.is_empty() { Parsed::NotRecord(Corruption::EmptyLine) } else { parse(content) };
        (parsed, line_hash(content))
    });

    let mut values = Vec::with_capacity(checked.len());
    let mut head = GENESIS_PREV.to_owned();
    let mut next_seq = FIRST_SEQ;
    let mut offset: u64 = 0;
    let mut torn = None;
    let mut bad_event = None;
    let count = checked.len();
    for (index, ((parsed, hash), chunk)) in checked.into_iter().zip(&chunks).enumerate() {
        let line_number = index.saturating_add(1);
        let is_last = index + 1 == count;
        let terminated = chunk.ends_with(b"\n");
        let (seq, prev, value) = match parsed {
            Parsed::Record { seq, prev, value } if terminated => (seq, prev, Some(value)),
            Parsed::BadEvent { seq, prev, message } if terminated => {
                bad_event.get_or_insert((line_number, seq, message));
                (seq, prev, None)
            }
            // No '\n' at the end, or the last line is not a record: a crash mid-append.
            _ if is_last => {
                torn = Some(TornTail { line_number, byte_offset: offset, bytes: chunk.len(), saved_to: None });
                break;
            }
            Parsed::NotRecord(problem) => {
                return Err(JournalError::Corrupt { path: path.to_path_buf(), line: line_number, problem });
            }
            Parsed::Record { .. } | Parsed::BadEvent { .. } => unreachable_unterminated(path, line_number)?,
        };
        check_link(path, line_number, seq, prev, next_seq, &head)?;
        head = hash;
        next_seq = next_seq.saturating_add(1);
        offset = offset.saturating_add(chunk.len() as u64);
        values.extend(value);
    }
    if let Some((line, seq, message)) = bad_event {
        return Err(JournalError::Event { path: path.to_path_buf(), line, seq, message });
    }
    Ok(Scan { values, head, next_seq, valid_len: offset, torn })
}

/// `split_inclusive` only yields a chunk without '\n' as the last one; kept as an
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
    let mut file = File::open(path).map_err(|e| JournalError::io(path, "open", e))?;
    let data = read_all(path, &mut file)?;
    let scan = scan(path, &data, &parse_record::<E>)?;
    Ok(Replay { records: scan.values, torn: scan.torn })
}

/// Checks the hash chain and seq continuity line by line without decoding events.
///
/// Returns the head hash (hex SHA-256 of the last valid line) and the number of records;
/// the first break is a [`JournalError::Modified`] (which line, expected and found) and a
/// malformed middle line a [`JournalError::Corrupt`]. A torn last line is reported in
/// [`VerifyReport::torn`]. Never modifies the file.
pub fn verify(path: &Path) -> Result<VerifyReport, JournalError> {
    let mut file = File::open(path).map_err(|e| JournalError::io(path, "open", e))?;
    let data = read_all(path, &mut file)?;
    let scan = scan(path, &data, &parse_header)?;
    Ok(VerifyReport { records: scan.values.len() as u64, head: scan.head, torn: scan.torn })
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
        let mut file =
            OpenOptions::new().read(true).append(true).open(path).map_err(|e| JournalError::io(path, "open", e))?;
        let data = read_all(path, &mut file)?;
        let scan = scan(path, &data, &parse_record::<E>)?;
        let records = scan.values;
        let mut torn = scan.torn;
        if let Some(tail) = torn.as_mut() {
            let start = usize::try_from(tail.byte_offset).unwrap_or(usize::MAX);
            let bytes = data.get(start..).unwrap_or_default();
            let saved = save_torn(path, scan.next_seq, bytes)?;
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
        Ok((journal, Replay { records, torn }))
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
    head: String,
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
            head: GENESIS_PREV.to_owned(),
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
            self.head = line_hash(content);
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
