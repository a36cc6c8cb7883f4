//! Files attached to a step as evidence (`drillbook attach`, `A` in the
//! TUI): copied into `evidence/STEP/` of the drill directory, hashed while
//! they are copied, then journaled as `file_attached`.
//!
//! Only one process writes a journal: the one holding the drill's lock (the
//! hash chain has one writer). So an attachment made while the drill runs in
//! another terminal is not appended by `drillbook attach` itself: it copies
//! the file, then leaves the event it wants journaled as a request in
//! `inbox/` (written whole, then renamed into place). The running conductor
//! journals each request and then removes it; a drill that is not running
//! journals what its inbox holds when it next runs, and `drillbook attach`
//! appends itself when it can take the lock. A request journaled but not yet
//! removed (a crash between the two) is recognised by its path, which is
//! unique, and removed without being journaled twice.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::event::{Event, FileOrigin};
use crate::digest::hex;

/// Where evidence files live in a drill directory.
pub const EVIDENCE_DIR: &str = "evidence";
/// Where attachment requests wait for the drill's writer.
pub const INBOX_DIR: &str = "inbox";

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("cannot attach {}: {source}", .path.display())]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot attach {}: it is a directory (attach the files in it)", .0.display())]
    Directory(PathBuf),
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A file name safe in any file system and in a Markdown link: letters,
/// digits, `.`, `-`, `_`; anything else becomes `-`. Never empty, never a
/// dot file.
pub fn safe_name(name: &str) -> String {
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' }).collect();
    let trimmed = cleaned.trim_start_matches('.');
    let shortened: String = trimmed.chars().take(120).collect();
    if shortened.is_empty() { "file".to_string() } else { shortened }
}

/// `name.ext`, `name.2.ext`, `name.3.ext`...: the n-th file of that name.
fn numbered(name: &str, n: u32) -> String {
    if n == 1 {
        return name.to_string();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{n}.{ext}"),
        _ => format!("{name}.{n}"),
    }
}

/// Creates a new file `evidence/STEP/NAME` (numbered when the name is
/// taken: nothing already kept is ever overwritten) and returns it with its
/// path relative to the drill directory.
pub fn create_evidence_file(drill_dir: &Path, step: &str, name: &str) -> Result<(fs::File, String), AttachError> {
    let dir = drill_dir.join(EVIDENCE_DIR).join(safe_name(step));
    fs::create_dir_all(&dir).map_err(|source| AttachError::Write { path: dir.clone(), source })?;
    let name = safe_name(name);
    for n in 1..10_000 {
        let candidate = numbered(&name, n);
        let path = dir.join(&candidate);
        match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, format!("{EVIDENCE_DIR}/{}/{candidate}", safe_name(step)))),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(AttachError::Write { path, source }),
        }
    }
    let source = io::Error::other("10,000 files of that name already");
    Err(AttachError::Write { path: dir.join(name), source })
}

/// Copies `source` into the drill's evidence (hashing it on the way, synced
/// before anything refers to it) and returns the event that journals it.
pub fn copy_in(
    drill_dir: &Path,
    step: &str,
    source: &Path,
    note: Option<String>,
    by: Option<String>,
) -> Result<Event, AttachError> {
    let failed = |e: io::Error| AttachError::Source { path: source.to_path_buf(), source: e };
    let metadata = fs::metadata(source).map_err(failed)?;
    if metadata.is_dir() {
        return Err(AttachError::Directory(source.to_path_buf()));
    }
    let mut input = fs::File::open(source).map_err(failed)?;
    let label = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let (mut output, path) = create_evidence_file(drill_dir, step, &label)?;
    let target = drill_dir.join(&path);
    let written = (|| {
        let mut hashing = HashingWriter { inner: &mut output, hasher: Sha256::new(), bytes: 0 };
        io::copy(&mut input, &mut hashing)?;
        let (sha256, bytes) = (hex(&hashing.hasher.finalize()), hashing.bytes);
        output.sync_all()?;
        Ok::<_, io::Error>((sha256, bytes))
    })();
    let (sha256, bytes) = written.map_err(|source| {
        let _ = fs::remove_file(&target);
        AttachError::Write { path: target.clone(), source }
    })?;
    sync_dir(target.parent());
    Ok(Event::FileAttached {
        step: step.to_string(),
        path,
        sha256,
        bytes,
        origin: FileOrigin::Attachment,
        label,
        note,
        by,
    })
}

struct HashingWriter<'a> {
    inner: &'a mut fs::File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn sync_dir(dir: Option<&Path>) {
    // The new name must survive a crash as well as the bytes: best effort
    // (a file system without directory fsync still has the file).
    if let Some(dir) = dir
        && let Ok(dir) = fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

/// Leaves `event` for the drill's writer: `inbox/NAME.json`, written whole
/// and synced under a temporary name, then renamed into place.
pub fn queue(drill_dir: &Path, event: &Event) -> Result<PathBuf, AttachError> {
    let inbox = drill_dir.join(INBOX_DIR);
    fs::create_dir_all(&inbox).map_err(|source| AttachError::Write { path: inbox.clone(), source })?;
    let name = format!("{}.json", uuid::Uuid::now_v7());
    let path = inbox.join(&name);
    let temp = inbox.join(format!(".{name}.tmp"));
    let text = serde_json::to_string(event).map_err(io::Error::other);
    let written = text.and_then(|text| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, &path)
    });
    written.map_err(|source| {
        let _ = fs::remove_file(&temp);
        AttachError::Write { path: path.clone(), source }
    })?;
    sync_dir(Some(&inbox));
    Ok(path)
}

/// A request found in the inbox.
#[derive(Debug)]
pub struct Request {
    pub file: PathBuf,
    /// The event to journal, or why the file is not one (it is left where
    /// it is, for a person to look at, and said once).
    pub event: Result<Event, String>,
}

/// The inbox's requests, oldest first (names are time-ordered UUIDs).
pub fn pending(drill_dir: &Path) -> Vec<Request> {
    let Ok(entries) = fs::read_dir(drill_dir.join(INBOX_DIR)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "json")
                && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let event = fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<Event>(&bytes).map_err(|e| e.to_string()))
                .and_then(|event| match event {
                    Event::FileAttached { .. } => Ok(event),
                    _ => Err("not a file_attached event".to_string()),
                });
            Request { file, event }
        })
        .collect()
}

/// A request is done: journaled (or found journaled already).
pub fn done(request: &Path) {
    let _ = fs::remove_file(request);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_and_never_overwrite() {
        assert_eq!(safe_name("Screen Shot 2026-12-07 at 10.14.png"), "Screen-Shot-2026-12-07-at-10.14.png");
        assert_eq!(safe_name("../../etc/passwd"), "-..-etc-passwd");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name("été.log"), "-t-.log");
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("grafana.png");
        fs::write(&source, b"first").unwrap();
        let first = copy_in(dir.path(), "smoke", &source, None, Some("dana".into())).unwrap();
        fs::write(&source, b"second").unwrap();
        let second = copy_in(dir.path(), "smoke", &source, Some("after".into()), None).unwrap();
        let (Event::FileAttached { path: one, sha256, bytes, .. }, Event::FileAttached { path: two, .. }) =
            (&first, &second)
        else {
            panic!("{first:?}")
        };
        assert_eq!(one, "evidence/smoke/grafana.png");
        assert_eq!(two, "evidence/smoke/grafana.2.png");
        assert_eq!(*bytes, 5);
        assert_eq!(sha256, &hex(&Sha256::digest(b"first")));
        assert_eq!(fs::read(dir.path().join(one)).unwrap(), b"first", "the first copy is kept as it was");
        assert!(matches!(copy_in(dir.path(), "smoke", dir.path(), None, None), Err(AttachError::Directory(_))));
        let missing = copy_in(dir.path(), "smoke", &dir.path().join("nope.png"), None, None).unwrap_err();
        assert!(missing.to_string().starts_with("cannot attach "), "{missing}");
    }

    #[test]
    fn the_inbox_keeps_requests_in_order_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a.txt");
        fs::write(&source, b"a").unwrap();
        let first = copy_in(dir.path(), "s", &source, None, None).unwrap();
        let second = copy_in(dir.path(), "s", &source, None, None).unwrap();
        let one = queue(dir.path(), &first).unwrap();
        queue(dir.path(), &second).unwrap();
        fs::write(dir.path().join(INBOX_DIR).join("junk.json"), b"{").unwrap();
        let requests = pending(dir.path());
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].event.as_ref().unwrap(), &first);
        assert_eq!(requests[1].event.as_ref().unwrap(), &second);
        assert!(requests[2].event.is_err(), "a broken request is reported, not journaled");
        done(&one);
        assert_eq!(pending(dir.path()).len(), 2);
    }
}
