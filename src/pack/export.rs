//! `drillbook export`: a drill directory into one `drill-ID.tar.zst`.
//!
//! Each file is hashed while it is written into the tar (one read, a fixed
//! buffer), so what the manifest says is what the pack holds even for
//! gigabytes of logs. The pack is written to a temporary file beside the
//! destination and renamed into place when complete: a half-written pack
//! never exists under the final name.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{FORMAT, FileEntry, JournalRef, Manifest, RunbookRef, VERSION, is_inside};
use super::sshsig::Signer;
use super::{JOURNAL, MANIFEST, SIGNATURE, top_dir};
use crate::digest::{hex, sha256_file};
use crate::drill::event::Event;
use crate::drill::journal::{self, JournalError};
use crate::drill::lock::DrillLock;
use crate::drill::state::DrillState;
use crate::drill::store::DrillDir;
use crate::report;

/// zstd's default level: what `tar --zstd` uses, fast enough to keep up with
/// the disk, and logs compress well at it.
const ZSTD_LEVEL: i32 = 3;

/// The directories of a drill that go into a pack, whole. `downloads/` is
/// deliberately not one of them: restored backups are production data.
const DIRECTORIES: [&str; 2] = ["logs", "evidence"];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The drill's record does not hold together (broken chain, altered
    /// evidence): a pack would vouch for it, so none is written.
    #[error("{0}")]
    Refused(String),
    /// The pack could not be made (unreadable drill, disk full, bad key...).
    #[error("{0}")]
    Failed(String),
}

/// What was written.
#[derive(Debug)]
pub struct Exported {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// Uncompressed bytes of every packed file.
    pub bytes: u64,
    /// Size of the pack.
    pub packed_bytes: u64,
    /// The signing key, when signed.
    pub signed_by: Option<String>,
    /// What was left out that someone might look for (a symlink, a torn line).
    pub warnings: Vec<String>,
}

/// A file to pack.
struct Source {
    /// Relative to the drill directory, `/`-separated.
    relative: String,
    path: PathBuf,
    /// How much of it to pack (the journal's valid part; the whole of anything else).
    bytes: u64,
    mtime: u64,
}

/// Packs the drill in `dir` into `output`, signed by `signer` if given.
/// `progress(done, total)` is called as bytes are packed.
pub fn export(
    dir: &DrillDir,
    output: &Path,
    signer: Option<&Signer>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Exported, ExportError> {
    let failed = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| ExportError::Failed(format!("{what}: {e}"))
    };
    // Nothing appends to the journal or rewrites a report while it is packed.
    let _lock = DrillLock::acquire(&dir.path)
        .map_err(|e| ExportError::Failed(format!("{e}; export the drill once it is paused or finished")))?;
    let journal_path = dir.journal();
    let verified = journal::verify(&journal_path).map_err(|e| match e {
        JournalError::Modified { .. } | JournalError::Corrupt { .. } => ExportError::Refused(format!(
            "{e}; no pack was written: a signed pack of an altered journal would vouch for it \
             (`drillbook verify {}` shows the same)",
            dir.id
        )),
        other => ExportError::Failed(other.to_string()),
    })?;
    let replay = journal::read::<Event>(&journal_path).map_err(|e| ExportError::Failed(e.to_string()))?;
    if replay.records.is_empty() {
        return Err(ExportError::Failed(format!("drill {} never started: there is nothing to export", dir.id)));
    }
    let state = DrillState::replay(&replay.records)
        .map_err(|e| ExportError::Failed(format!("{}: {e}", journal_path.display())))?;
    let mut warnings = Vec::new();
    if let Some(torn) = &verified.torn {
        warnings.push(format!(
            "the journal's line {} was torn by a crash and is not part of its chain; it is left out of the pack",
            torn.line_number
        ));
    }

    // Evidence first, before anything is written: an altered screenshot
    // refuses the export in a second rather than after a gigabyte of logs.
    let journaled = journaled_files(&state);
    for (path, sha256) in &journaled {
        check_evidence(dir, path, sha256)?;
    }

    // The reports say what the journal says now (action items added since the drill ended).
    let built = report::build(&state, Some(verified.head.clone()));
    report::write_all(&dir.path, &built).map_err(|e| ExportError::Failed(e.to_string()))?;

    let journal_bytes = verified.torn.as_ref().map(|t| t.byte_offset);
    let mut sources = vec![source(dir, JOURNAL, journal_bytes)?, source(dir, "runbook.toml", None)?];
    for (name, _) in report::FILES {
        sources.push(source(dir, name, None)?);
    }
    for directory in DIRECTORIES {
        walk(&dir.path.join(directory), directory, &mut sources, &mut warnings)
            .map_err(failed(&format!("cannot read {}", dir.path.join(directory).display())))?;
    }
    sources.sort_by(|a, b| a.relative.cmp(&b.relative));
    for path in journaled.keys() {
        if !sources.iter().any(|s| &s.relative == path) {
            return Err(ExportError::Refused(format!(
                "evidence file {path} is journaled but is not a regular file of the drill's logs/ or evidence/; \
                 no pack was written"
            )));
        }
    }
    let total: u64 = sources.iter().map(|s| s.bytes).sum();

    let temp = temp_path(output);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(failed(&format!("cannot create {}", temp.display())))?;
    let mut guard = TempFile(Some(temp.clone()));
    let mut encoder =
        zstd::Encoder::new(BufWriter::with_capacity(1 << 20, file), ZSTD_LEVEL).map_err(failed("cannot start zstd"))?;
    encoder.include_checksum(true).map_err(failed("cannot start zstd"))?;
    let mut tar = tar::Builder::new(encoder);
    let top = top_dir(&dir.id);
    let mut files = Vec::new();
    let mut done = 0u64;
    for source in &sources {
        let (sha256, bytes) = append_file(&mut tar, &top, source, &mut |n| {
            done += n;
            progress(done, total);
        })?;
        if let Some(journaled) = journaled.get(&source.relative)
            && journaled != &sha256
        {
            return Err(altered(&source.relative, journaled, &sha256));
        }
        files.push(FileEntry { path: source.relative.clone(), sha256, bytes });
    }

    // Whole seconds: what a reader of `created_at` wants, and what the tar headers hold.
    let now = jiff::Timestamp::now();
    let now = now.round(jiff::Unit::Second).unwrap_or(now);
    let manifest = Manifest {
        format: FORMAT.to_string(),
        version: VERSION,
        drill_id: state.drill_id.clone(),
        runbook: RunbookRef {
            id: state.runbook_id.clone(),
            title: state.runbook_title.clone(),
            sha256: state.runbook_sha256.clone(),
        },
        created_at: now.to_string(),
        drillbook_version: env!("CARGO_PKG_VERSION").to_string(),
        journal: JournalRef { head: verified.head.clone(), events: verified.records },
        files,
    };
    let manifest_bytes = manifest.to_bytes();
    let mtime = u64::try_from(now.as_second()).unwrap_or(0);
    append_bytes(&mut tar, &top, MANIFEST, &manifest_bytes, mtime)?;
    let signed_by = match signer {
        Some(signer) => {
            let armored = signer.sign(&manifest_bytes).map_err(ExportError::Failed)?;
            append_bytes(&mut tar, &top, SIGNATURE, armored.as_bytes(), mtime)?;
            Some(signer.describe())
        }
        None => None,
    };

    let encoder = tar.into_inner().map_err(failed("cannot finish the tar"))?;
    let buffered = encoder.finish().map_err(failed("cannot finish zstd"))?;
    let file =
        buffered.into_inner().map_err(|e| ExportError::Failed(format!("cannot write the pack: {}", e.error())))?;
    file.sync_all().map_err(failed(&format!("cannot sync {}", temp.display())))?;
    let packed_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    drop(file);
    std::fs::rename(&temp, output).map_err(failed(&format!("cannot rename the pack to {}", output.display())))?;
    guard.0 = None;
    sync_dir(output);
    Ok(Exported { path: output.to_path_buf(), manifest, bytes: total, packed_bytes, signed_by, warnings })
}

/// Every evidence file's journaled hash (the last `file_attached` of a path
/// wins: a file attached again is the newer one).
fn journaled_files(state: &DrillState) -> BTreeMap<String, String> {
    let mut files: Vec<_> = state.steps.iter().flat_map(|s| s.files.iter()).collect();
    files.sort_by_key(|f| f.at);
    files.into_iter().map(|f| (f.path.clone(), f.sha256.clone())).collect()
}

fn check_evidence(dir: &DrillDir, path: &str, journaled: &str) -> Result<(), ExportError> {
    if !is_inside(path) {
        return Err(ExportError::Refused(format!(
            "the journal names an evidence file `{path}` outside the drill directory; no pack was written"
        )));
    }
    match sha256_file(&dir.path.join(path)) {
        Ok(actual) if actual == journaled => Ok(()),
        Ok(actual) => Err(altered(path, journaled, &actual)),
        Err(e) => Err(ExportError::Refused(format!(
            "evidence file {path} is journaled but cannot be read ({e}); no pack was written: the pack must \
             hold every journaled file (restore it from a backup)"
        ))),
    }
}

fn altered(path: &str, journaled: &str, actual: &str) -> ExportError {
    ExportError::Refused(format!(
        "evidence file {path} no longer matches the journal: journaled sha256 {journaled}, now {actual}; no pack \
         was written: packing it would put the altered file under the manifest's (and the signature's) \
         guarantee, and verify-pack would reject the pack anyway. Restore the original from a backup"
    ))
}

fn source(dir: &DrillDir, relative: &str, bytes: Option<u64>) -> Result<Source, ExportError> {
    let path = dir.path.join(relative);
    let meta =
        std::fs::metadata(&path).map_err(|e| ExportError::Failed(format!("cannot read {}: {e}", path.display())))?;
    Ok(Source { relative: relative.to_string(), bytes: bytes.unwrap_or(meta.len()), mtime: mtime(&meta), path })
}

fn mtime(meta: &std::fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs())
}

/// Regular files under `dir`, recursively. Symlinks are never followed (a
/// link in evidence/ must not carry `/etc/shadow` into a pack); temporary
/// and hidden files are half-written or not the drill's.
fn walk(dir: &Path, relative: &str, out: &mut Vec<Source>, warnings: &mut Vec<String>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            warnings.push(format!("{} has a name that is not UTF-8: left out", path.display()));
            continue;
        };
        if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
            continue;
        }
        let child = format!("{relative}/{name}");
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            walk(&path, &child, out, warnings)?;
        } else if meta.is_file() {
            out.push(Source { relative: child, path, bytes: meta.len(), mtime: mtime(&meta) });
        } else {
            warnings.push(format!("{child} is not a regular file (a symlink?): left out"));
        }
    }
    Ok(())
}

/// Reads `inner`, hashing and counting what passes.
struct Hashing<'a, R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or_default();
        self.hasher.update(read);
        self.bytes += n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }
}

fn header(bytes: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(bytes);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    top: &str,
    source: &Source,
    progress: &mut dyn FnMut(u64),
) -> Result<(String, u64), ExportError> {
    let shown = source.path.display();
    let file = File::open(&source.path).map_err(|e| ExportError::Failed(format!("cannot read {shown}: {e}")))?;
    let mut reader = Hashing { inner: file.take(source.bytes), hasher: Sha256::new(), bytes: 0, progress };
    let mut header = header(source.bytes, source.mtime);
    tar.append_data(&mut header, format!("{top}/{}", source.relative), &mut reader)
        .map_err(|e| ExportError::Failed(format!("cannot pack {shown}: {e}")))?;
    if reader.bytes != source.bytes {
        return Err(ExportError::Failed(format!(
            "{shown} shrank from {} to {} bytes while it was packed; export again",
            source.bytes, reader.bytes
        )));
    }
    Ok((hex(&reader.hasher.finalize()), reader.bytes))
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    top: &str,
    name: &str,
    bytes: &[u8],
    mtime: u64,
) -> Result<(), ExportError> {
    let mut header = header(bytes.len() as u64, mtime);
    tar.append_data(&mut header, format!("{top}/{name}"), bytes)
        .map_err(|e| ExportError::Failed(format!("cannot write {name} into the pack: {e}")))
}

/// `.NAME.PID.tmp` beside the destination, so the rename stays on one filesystem.
fn temp_path(output: &Path) -> PathBuf {
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "pack".into());
    output.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Removes the temporary pack unless it was renamed into place.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Makes the rename durable; a filesystem that cannot sync a directory still has the data.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let _ = File::open(dir).and_then(|d| d.sync_all());
}
