//! Downloads one object to disk with bounded memory, resumably, and proves
//! what arrived: size, the object's full-object checksum (SHA-256, CRC32C
//! or CRC64NVME) or else its single-part ETag (MD5), and always a SHA-256
//! of the file. The data goes to `NAME.partial`, with the byte ranges
//! already on disk recorded in `NAME.partial.json`; only a verified file is
//! renamed to `NAME`, so a corrupt download can never be handed on.
//!
//! Two strategies, chosen by measurement rather than habit: one stream
//! (what most S3-compatible servers, moto among them, serve fastest) or
//! concurrent ranged GETs written at their offsets (what AWS serves
//! fastest for large objects).

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{Checksum, ObjectHead, S3Error, Store};
use crate::buffers::LentBuffers;
use crate::digest::hex;

/// Bytes between two saves of the resume state.
const CHECKPOINT: u64 = 64 << 20;
/// Bytes between two requests to start writing the file back to disk.
const WRITEBACK: u64 = 8 << 20;
/// Smallest part for ranged downloads.
const MIN_PART: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct Target {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub head: ObjectHead,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where the verified file ends up.
    pub dest: PathBuf,
    /// 1: one stream; more: that many concurrent ranged GETs.
    pub parts: u32,
    /// Attempts per request when the server or network fails.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Bytes { done: u64, total: u64, bytes_per_sec: f64 },
    Retrying { attempt: u32, of: u32, reason: String },
    Resuming { from: u64 },
    Verifying,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// What was checked, e.g. ["size", "SHA-256 checksum"].
    pub checks: Vec<String>,
    /// "one stream" or "8 ranged parts".
    pub strategy: String,
    /// Bytes that were already on disk from an earlier attempt.
    pub resumed_from: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("verification failed: {check}: expected {expected}, got {actual}; the file was deleted")]
    Mismatch { check: String, expected: String, actual: String },
    #[error("download interrupted at {done} of {total} bytes (resumable)")]
    Cancelled { done: u64, total: u64 },
}

/// What is already on disk, saved next to the partial file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ResumeState {
    key: String,
    version_id: Option<String>,
    etag: Option<String>,
    size: u64,
    /// Half-open byte ranges written and flushed, merged and sorted.
    done: Vec<(u64, u64)>,
}

impl ResumeState {
    fn add(&mut self, start: u64, end: u64) {
        self.done.push((start, end));
        self.done.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (s, e) in self.done.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.done = merged;
    }

    fn contiguous(&self) -> u64 {
        match self.done.first() {
            Some((0, end)) => *end,
            _ => 0,
        }
    }

    fn bytes_done(&self) -> u64 {
        self.done.iter().map(|(s, e)| e - s).sum()
    }

    fn missing(&self, start: u64, end: u64) -> bool {
        !self.done.iter().any(|(s, e)| *s <= start && end <= *e)
    }
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn state_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial.json");
    PathBuf::from(name)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> S3Error + '_ {
    move |source| S3Error::Io { path: path.to_path_buf(), source }
}

fn save_state(dest: &Path, state: &ResumeState) -> Result<(), S3Error> {
    let path = state_path(dest);
    let temp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(state).map_err(|e| S3Error::Other(e.to_string()))?;
    let mut file = std::fs::File::create(&temp).map_err(io(&temp))?;
    file.write_all(&text).map_err(io(&temp))?;
    file.sync_data().map_err(io(&temp))?;
    std::fs::rename(&temp, &path).map_err(io(&path))
}

/// The resume state left by an earlier attempt, if it is for this very object.
fn load_state(dest: &Path, target: &Target) -> Option<ResumeState> {
    let text = std::fs::read(state_path(dest)).ok()?;
    let state: ResumeState = serde_json::from_slice(&text).ok()?;
    let same = state.key == target.key
        && state.version_id == target.version_id
        && state.etag == target.head.etag
        && state.size == target.head.size
        && partial_path(dest).is_file();
    same.then_some(state)
}

fn discard(dest: &Path) {
    let _ = std::fs::remove_file(partial_path(dest));
    let _ = std::fs::remove_file(state_path(dest));
}

/// Downloads, verifies and renames into place.
pub async fn download(
    store: &Store,
    target: &Target,
    options: &Options,
    progress: &(dyn Fn(Progress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Downloaded, DownloadError> {
    let dest = &options.dest;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let size = target.head.size;
    // A crash between the rename and the journal entry leaves a verified
    // file in place: check it again instead of downloading it again.
    if dest.is_file() && !partial_path(dest).exists() && std::fs::metadata(dest).map(|m| m.len()).ok() == Some(size) {
        progress(Progress::Verifying);
        let (path, head) = (dest.clone(), target.head.clone());
        let digests = tokio::task::spawn_blocking(move || hash_file(&path, &head))
            .await
            .map_err(|e| S3Error::Other(e.to_string()))??;
        if let Ok(checks) = verify(dest, &target.head, &digests) {
            return Ok(Downloaded {
                path: dest.clone(),
                size,
                sha256: digests.sha256_hex(),
                checks,
                strategy: "already on disk".into(),
                resumed_from: size,
            });
        }
        let _ = std::fs::remove_file(dest);
    }
    let mut state = match load_state(dest, target) {
        Some(state) => {
            progress(Progress::Resuming { from: state.bytes_done() });
            state
        }
        None => {
            discard(dest);
            ResumeState {
                key: target.key.clone(),
                version_id: target.version_id.clone(),
                etag: target.head.etag.clone(),
                size,
                done: Vec::new(),
            }
        }
    };
    let resumed_from = state.bytes_done();
    let partial = partial_path(dest);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(&partial)
        .map_err(io(&partial))?;
    file.set_len(size).map_err(io(&partial))?;
    save_state(dest, &state)?;

    let parts = options.parts.max(1);
    let strategy = if parts == 1 { "one stream".to_string() } else { format!("{parts} ranged parts") };
    let inline = if parts == 1 {
        Some(single_stream(store, target, options, &file, &mut state, progress, cancel).await?)
    } else {
        ranged(store, target, options, &file, &mut state, progress, cancel).await?;
        None
    };
    file.sync_all().map_err(io(&partial))?;
    drop(file);

    progress(Progress::Verifying);
    let digests = match inline {
        Some(digests) => digests,
        None => {
            let path = partial.clone();
            let head = target.head.clone();
            tokio::task::spawn_blocking(move || hash_file(&path, &head))
                .await
                .map_err(|e| S3Error::Other(e.to_string()))??
        }
    };
    let checks = match verify(&partial, &target.head, &digests) {
        Ok(checks) => checks,
        Err(error) => {
            discard(dest);
            return Err(error);
        }
    };
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    let _ = std::fs::remove_file(state_path(dest));
    Ok(Downloaded { path: dest.clone(), size, sha256: digests.sha256_hex(), checks, strategy, resumed_from })
}

/// Running hashes of the file, fed in order.
struct Digests {
    sha256: Sha256,
    md5: Option<Md5>,
    crc32c: Option<u32>,
    crc64: Option<crc64fast_nvme::Digest>,
}

impl Digests {
    fn new(head: &ObjectHead) -> Self {
        let single_part_etag = head.etag.as_deref().is_some_and(|e| !e.contains('-')) && !head.etag_is_not_md5;
        Digests {
            sha256: Sha256::new(),
            md5: (head.checksum.is_none() && single_part_etag).then(Md5::new),
            crc32c: matches!(head.checksum, Some(Checksum::Crc32c(_))).then_some(0),
            crc64: matches!(head.checksum, Some(Checksum::Crc64Nvme(_))).then(crc64fast_nvme::Digest::new),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.update_all_but_sha256(bytes);
    }

    fn update_all_but_sha256(&mut self, bytes: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(bytes);
        }
        if let Some(crc) = &mut self.crc32c {
            *crc = crc32c::crc32c_append(*crc, bytes);
        }
        if let Some(crc) = &mut self.crc64 {
            crc.write(bytes);
        }
    }

    fn sha256_hex(&self) -> String {
        hex(&self.sha256.clone().finalize())
    }
}

fn hash_file(path: &Path, head: &ObjectHead) -> Result<Digests, S3Error> {
    let mut digests = Digests::new(head);
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buf).map_err(io(path))?;
        if read == 0 {
            break;
        }
        digests.update(&buf[..read]);
    }
    Ok(digests)
}

/// Checks size, then the strongest thing S3 gave us to compare with.
fn verify(path: &Path, head: &ObjectHead, digests: &Digests) -> Result<Vec<String>, DownloadError> {
    let actual_size = std::fs::metadata(path).map_err(io(path))?.len();
    if actual_size != head.size {
        return Err(DownloadError::Mismatch {
            check: "size".into(),
            expected: head.size.to_string(),
            actual: actual_size.to_string(),
        });
    }
    let mut checks = vec!["size".to_string()];
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match &head.checksum {
        Some(checksum) => {
            let actual = match checksum {
                Checksum::Sha256(_) => b64(&digests.sha256.clone().finalize()),
                Checksum::Crc32c(_) => b64(&digests.crc32c.unwrap_or(0).to_be_bytes()),
                Checksum::Crc64Nvme(_) => b64(&digests.crc64.as_ref().map_or(0, |d| d.sum64()).to_be_bytes()),
            };
            if actual != checksum.expected() {
                return Err(DownloadError::Mismatch {
                    check: format!("{} checksum", checksum.name()),
                    expected: checksum.expected().to_string(),
                    actual,
                });
            }
            checks.push(format!("{} checksum", checksum.name()));
        }
        None if head.etag_is_not_md5 => {
            checks.push("no checksum to compare (SSE-KMS/SSE-C: the ETag is not an MD5)".to_string());
        }
        None => {
            if let (Some(md5), Some(etag)) = (&digests.md5, &head.etag) {
                let actual = hex(&md5.clone().finalize());
                let expected = etag.trim_matches('"').to_string();
                if actual != expected {
                    return Err(DownloadError::Mismatch { check: "ETag (MD5)".into(), expected, actual });
                }
                checks.push("ETag (MD5)".to_string());
            }
        }
    }
    Ok(checks)
}

struct Rate {
    started: Instant,
    base: u64,
    last_report: Instant,
}

impl Rate {
    fn new(base: u64) -> Self {
        Rate { started: Instant::now(), base, last_report: Instant::now() - Duration::from_secs(1) }
    }

    fn report(&mut self, done: u64, total: u64, progress: &(dyn Fn(Progress) + Send + Sync), force: bool) {
        if force || self.last_report.elapsed() >= Duration::from_millis(200) {
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            progress(Progress::Bytes { done, total, bytes_per_sec: (done - self.base.min(done)) as f64 / secs });
            self.last_report = Instant::now();
        }
    }
}

/// One GET (resumed from the first missing byte), hashed as it is written.
async fn single_stream(
    store: &Store,
    target: &Target,
    options: &Options,
    file: &std::fs::File,
    state: &mut ResumeState,
    progress: &(dyn Fn(Progress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Digests, DownloadError> {
    let size = target.head.size;
    let partial = partial_path(&options.dest);
    let mut offset = state.contiguous();
    state.done.retain(|(s, _)| *s == 0);
    let mut digests = Digests::new(&target.head);
    if offset > 0 {
        // Hash what is already there so verification covers the whole file.
        let mut buf = vec![0u8; 1 << 20];
        let mut position = 0;
        while position < offset {
            let want = (offset - position).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..want], position).map_err(io(&partial))?;
            digests.update(&buf[..want]);
            position += want as u64;
        }
    }
    let mut hasher = BackgroundHasher::new(digests);
    let mut rate = Rate::new(offset);
    let mut failures = 0u32;
    while offset < size {
        let disk = Disk::new(file, &options.dest, state)?;
        let result: Result<(), S3Error> = async {
            let request = store.get(
                &target.bucket,
                &target.key,
                target.version_id.as_deref(),
                target.head.etag.as_deref(),
                offset,
                None,
            );
            // The outer loop retries; here only cancellation may cut the wait.
            let mut body = tokio::select! {
                body = request => body?,
                () = cancel.cancelled() => return Err(S3Error::Other("cancelled".into())),
            };
            let mut pending: Vec<u8> = hasher.spare();
            let (mut since_checkpoint, mut written_back) = (0u64, offset);
            loop {
                let chunk = tokio::select! {
                    chunk = body.next_chunk() => chunk,
                    () = cancel.cancelled() => return Err(S3Error::Other("cancelled".into())),
                };
                let chunk = chunk.map_err(|source| S3Error::Body { endpoint: store.endpoint(), source })?;
                let Some(chunk) = chunk else { break };
                let mut chunk: &[u8] = &chunk;
                while !chunk.is_empty() {
                    // Exactly CHUNK bytes a piece: a buffer is never grown (and copied) past it.
                    let room = CHUNK.saturating_sub(pending.len()).min(chunk.len());
                    let (now, later) = chunk.split_at(room);
                    pending.extend_from_slice(now);
                    chunk = later;
                    if pending.len() < CHUNK {
                        continue;
                    }
                    let written = pending.len() as u64;
                    file.write_all_at(&pending, offset).map_err(io(&partial))?;
                    let spare = hasher.spare();
                    hasher.feed(std::mem::replace(&mut pending, spare));
                    offset += written;
                    since_checkpoint += written;
                    rate.report(offset, size, progress, false);
                    if since_checkpoint >= CHECKPOINT {
                        disk.offer(ToDisk::Checkpoint(offset));
                        since_checkpoint = 0;
                        written_back = offset;
                    } else if offset - written_back >= WRITEBACK {
                        disk.offer(ToDisk::WriteBack(written_back, offset));
                        written_back = offset;
                    }
                }
            }
            if !pending.is_empty() {
                file.write_all_at(&pending, offset).map_err(io(&partial))?;
                offset += pending.len() as u64;
                hasher.feed(pending);
            }
            Ok(())
        }
        .await;
        disk.finish()?;
        file.sync_data().map_err(io(&partial))?;
        state.done = if offset > 0 { vec![(0, offset)] } else { Vec::new() };
        save_state(&options.dest, state)?;
        match result {
            Ok(()) if offset >= size => break,
            Ok(()) => {
                // The stream ended early (connection dropped): continue from here.
                failures += 1;
                if failures >= options.attempts.max(1) {
                    return Err(S3Error::Unreachable {
                        endpoint: store.endpoint(),
                        detail: format!("the stream kept ending early (at {offset} of {size} bytes)"),
                    }
                    .into());
                }
                progress(Progress::Retrying {
                    attempt: failures + 1,
                    of: options.attempts,
                    reason: format!("stream ended at {offset} of {size} bytes"),
                });
            }
            Err(_) if cancel.is_cancelled() => return Err(DownloadError::Cancelled { done: offset, total: size }),
            Err(error) if error.is_transient() => {
                failures += 1;
                if failures >= options.attempts.max(1) {
                    return Err(error.into());
                }
                progress(Progress::Retrying { attempt: failures + 1, of: options.attempts, reason: error.to_string() });
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(failures.min(6)))) => {}
                    () = cancel.cancelled() => return Err(DownloadError::Cancelled { done: offset, total: size }),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    rate.report(offset, size, progress, true);
    Ok(hasher.finish()?)
}

/// Hashes beside the download, so checksumming overlaps the network instead
/// of adding to it: the SHA-256 on one thread, the ETag's MD5 (or a CRC) on
/// another, each fed the same chunks. On one thread an MD5 and a SHA-256
/// took longer than the transfer itself (MD5 runs at about 600 MB/s here,
/// SHA-256 with the CPU's SHA extensions at 1.5 GB/s). Chunks arrive in file
/// order; the bounded channels keep memory flat (a slow hasher slows the
/// download rather than buffering it).
struct BackgroundHasher {
    senders: Vec<std::sync::mpsc::SyncSender<Arc<Vec<u8>>>>,
    threads: Vec<std::thread::JoinHandle<Digests>>,
    /// Chunks lent to the hashers, each reused once every hasher is done
    /// with it. Fresh 1 MiB buffers for a 1 GiB download were a quarter of a
    /// million page faults, and freed ones stayed in the allocator's arenas
    /// (the download's peak went past 64 MiB).
    chunks: LentBuffers,
}

/// Bytes hashed (and written) per chunk.
const CHUNK: usize = 1 << 20;
/// Chunks a hasher's channel holds: with the one each hasher works on and
/// the one being filled, about this many MiB are in flight.
const CHUNKS_QUEUED: usize = 8;

impl BackgroundHasher {
    fn new(digests: Digests) -> Self {
        let Digests { sha256, md5, crc32c, crc64 } = digests;
        let others = (md5.is_some() || crc32c.is_some() || crc64.is_some()).then(|| Digests {
            sha256: Sha256::new(),
            md5,
            crc32c,
            crc64,
        });
        let sha256 = Digests { sha256, md5: None, crc32c: None, crc64: None };
        // Never more than the channels hold plus the chunks being hashed:
        // past that the oldest is left to its hasher to free.
        let chunks = LentBuffers::new(CHUNKS_QUEUED + 2);
        let mut hasher = BackgroundHasher { senders: Vec::new(), threads: Vec::new(), chunks };
        for (only_sha256, mut digests) in
            [(true, Some(sha256)), (false, others)].into_iter().filter_map(|(sha, digests)| Some((sha, digests?)))
        {
            let (sender, chunks) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(CHUNKS_QUEUED);
            hasher.threads.push(std::thread::spawn(move || {
                for chunk in chunks {
                    if only_sha256 {
                        digests.sha256.update(chunk.as_slice());
                    } else {
                        digests.update_all_but_sha256(&chunk);
                    }
                }
                digests
            }));
            hasher.senders.push(sender);
        }
        hasher
    }

    fn feed(&mut self, chunk: Vec<u8>) {
        let chunk = self.chunks.lend(chunk);
        for sender in &self.senders {
            let _ = sender.send(chunk.clone());
        }
    }

    /// An empty buffer for the next chunk.
    fn spare(&mut self) -> Vec<u8> {
        self.chunks.spare(CHUNK)
    }

    fn finish(mut self) -> Result<Digests, S3Error> {
        self.senders.clear();
        let mut joined = self
            .threads
            .drain(..)
            .map(|thread| thread.join().map_err(|_| S3Error::Other("a hashing thread failed".into())));
        let mut digests = joined.next().ok_or_else(|| S3Error::Other("no hashing thread".into()))??;
        if let Some(others) = joined.next() {
            let Digests { md5, crc32c, crc64, .. } = others?;
            (digests.md5, digests.crc32c, digests.crc64) = (md5, crc32c, crc64);
        }
        Ok(digests)
    }
}

/// What the download asks of the disk, off its receiving path.
enum ToDisk {
    /// Start writing these bytes back (not waiting for them), so that the
    /// syncs that follow find little left to write.
    WriteBack(u64, u64),
    /// Make the file durable up to here and record it in the resume state.
    Checkpoint(u64),
}

/// Syncs the partial file and saves the resume state on a thread of its
/// own: an `fdatasync` of 64 MiB takes a virtual disk a tenth of a second or
/// more, and done in line it stalled the connection every 64 MiB. A request
/// that finds the thread still busy is dropped (the next one covers it), so
/// a slow disk costs resume progress, never download speed. Its first error
/// fails the download at [`Disk::finish`].
struct Disk {
    sender: Option<std::sync::mpsc::SyncSender<ToDisk>>,
    thread: Option<std::thread::JoinHandle<Result<(), S3Error>>>,
}

impl Disk {
    fn new(file: &std::fs::File, dest: &Path, state: &ResumeState) -> Result<Self, S3Error> {
        let partial = partial_path(dest);
        let file = file.try_clone().map_err(io(&partial))?;
        let (dest, mut state) = (dest.to_path_buf(), state.clone());
        let (sender, requests) = std::sync::mpsc::sync_channel::<ToDisk>(2);
        let thread = std::thread::spawn(move || {
            for request in requests {
                match request {
                    ToDisk::WriteBack(start, end) => start_writeback(&file, start, end),
                    ToDisk::Checkpoint(offset) => {
                        file.sync_data().map_err(io(&partial))?;
                        state.done = vec![(0, offset)];
                        save_state(&dest, &state)?;
                    }
                }
            }
            Ok(())
        });
        Ok(Disk { sender: Some(sender), thread: Some(thread) })
    }

    fn offer(&self, request: ToDisk) {
        if let Some(sender) = &self.sender {
            let _ = sender.try_send(request);
        }
    }

    /// Waits for what is in hand; the first error it met.
    fn finish(mut self) -> Result<(), S3Error> {
        drop(self.sender.take());
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(S3Error::Other("the disk thread failed".into())),
            None => Ok(()),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn start_writeback(file: &std::fs::File, start: u64, end: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(start), Ok(len)) = (i64::try_from(start), i64::try_from(end.saturating_sub(start))) else { return };
    // SAFETY: sync_file_range on an fd we own, with plain integer arguments;
    // it touches no memory of ours. Best effort: the sync that follows is
    // what makes the data durable.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), start, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn start_writeback(_file: &std::fs::File, _start: u64, _end: u64) {}

/// Concurrent ranged GETs, each written at its offset.
async fn ranged(
    store: &Store,
    target: &Target,
    options: &Options,
    file: &std::fs::File,
    state: &mut ResumeState,
    progress: &(dyn Fn(Progress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<(), DownloadError> {
    let size = target.head.size;
    let parts = u64::from(options.parts.max(1));
    let part_size = size.div_ceil(parts).max(MIN_PART);
    let ranges: Vec<(u64, u64)> = (0..size.div_ceil(part_size))
        .map(|i| (i * part_size, ((i + 1) * part_size).min(size)))
        .filter(|(s, e)| state.missing(*s, *e))
        .collect();
    let done_bytes = Arc::new(AtomicU64::new(state.bytes_done()));
    let partial = partial_path(&options.dest);
    let (finished_tx, mut finished_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(u64, u64), S3Error>>();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parts as usize));
    let file = Arc::new(file.try_clone().map_err(io(&partial))?);
    let total = ranges.len();
    for (start, end) in ranges {
        let (store, target, options) = (store.clone(), target.clone(), options.clone());
        let (file, partial, done_bytes, semaphore, finished_tx, cancel) =
            (file.clone(), partial.clone(), done_bytes.clone(), semaphore.clone(), finished_tx.clone(), cancel.clone());
        tokio::spawn(async move {
            let Ok(_permit) = semaphore.acquire_owned().await else { return };
            let result =
                fetch_range(&store, &target, &options, &file, &partial, start, end, &done_bytes, &cancel).await;
            let _ = finished_tx.send(result.map(|()| (start, end)));
        });
    }
    drop(finished_tx);
    let mut rate = Rate::new(done_bytes.load(Ordering::Relaxed));
    let mut completed = 0;
    let mut failure = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    while completed < total {
        tokio::select! {
            finished = finished_rx.recv() => {
                let Some(finished) = finished else { break };
                completed += 1;
                match finished {
                    Ok((start, end)) => {
                        state.add(start, end);
                        let saved = file.sync_data().map_err(io(&partial)).and_then(|()| save_state(&options.dest, state));
                        if let Err(error) = saved {
                            // Stop the other parts before giving up.
                            cancel.cancel();
                            return Err(error.into());
                        }
                    }
                    Err(error) => {
                        cancel.cancel();
                        failure.get_or_insert(error);
                    }
                }
            }
            _ = ticker.tick() => rate.report(done_bytes.load(Ordering::Relaxed), size, progress, false),
        }
    }
    if let Some(error) = failure {
        if cancel.is_cancelled() && !error.is_transient() && matches!(error, S3Error::Other(_)) {
            return Err(DownloadError::Cancelled { done: state.bytes_done(), total: size });
        }
        return Err(error.into());
    }
    if cancel.is_cancelled() {
        return Err(DownloadError::Cancelled { done: state.bytes_done(), total: size });
    }
    rate.report(size, size, progress, true);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn fetch_range(
    store: &Store,
    target: &Target,
    options: &Options,
    file: &std::fs::File,
    partial: &Path,
    start: u64,
    end: u64,
    done_bytes: &AtomicU64,
    cancel: &CancellationToken,
) -> Result<(), S3Error> {
    let mut position = start;
    let mut attempt = 1;
    while position < end {
        let outcome: Result<(), S3Error> = async {
            let mut body = store
                .get(
                    &target.bucket,
                    &target.key,
                    target.version_id.as_deref(),
                    target.head.etag.as_deref(),
                    position,
                    Some(end - 1),
                )
                .await?;
            loop {
                let chunk = tokio::select! {
                    chunk = body.next_chunk() => chunk,
                    () = cancel.cancelled() => return Err(S3Error::Other("cancelled".into())),
                };
                let chunk = chunk.map_err(|source| S3Error::Body { endpoint: store.endpoint(), source })?;
                let Some(chunk) = chunk else { return Ok(()) };
                let room = (end - position) as usize;
                let bytes = &chunk[..chunk.len().min(room)];
                file.write_all_at(bytes, position).map_err(io(partial))?;
                position += bytes.len() as u64;
                done_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        }
        .await;
        let retry = match &outcome {
            Ok(()) => position < end,
            Err(error) => error.is_transient(),
        };
        match outcome {
            Ok(()) if position >= end => return Ok(()),
            _ if retry && attempt < options.attempts && !cancel.is_cancelled() => {
                attempt += 1;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt.min(6)))) => {}
                    () = cancel.cancelled() => return Err(S3Error::Other("cancelled".into())),
                }
            }
            Ok(()) => {
                return Err(S3Error::Unreachable {
                    endpoint: store.endpoint(),
                    detail: format!("range {start}-{end} kept ending early"),
                });
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_state_merges_ranges() {
        let mut state = ResumeState { key: "k".into(), version_id: None, etag: None, size: 100, done: Vec::new() };
        state.add(20, 30);
        state.add(0, 10);
        state.add(10, 20);
        state.add(50, 60);
        assert_eq!(state.done, vec![(0, 30), (50, 60)]);
        assert_eq!(state.contiguous(), 30);
        assert_eq!(state.bytes_done(), 40);
        assert!(!state.missing(5, 25));
        assert!(state.missing(25, 55));
    }
}
