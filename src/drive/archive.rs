//! Shipping a drill to the shared archive (`archive = "s3://BUCKET/PREFIX/"`
//! in the configuration): its journal lines, batched, under
//! `PREFIX/drills/ID/journal/FIRST-LAST.jsonl`; the runbook snapshot, step
//! logs, reports and `summary.json` under `PREFIX/drills/ID/`.
//!
//! The outbox is the drill directory itself: `archive.json` records how
//! much of the journal and which versions of the files have arrived, so
//! whatever has not (S3 down, the laptop offline, drillbook killed) is found
//! again and shipped on the next pass or the next run. A background task
//! ships; the conductor only pokes it, so no step ever waits for S3.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::lease::{self, Lease, LeaseError};
use crate::config::Archive;
use crate::drill::store::DrillDir;
use crate::engine::s3::{S3Error, Store, StoreConfig};

/// The outbox state, beside the journal.
const OUTBOX: &str = "archive.json";
/// At most this much journal goes in one object.
const BATCH_BYTES: usize = 4 << 20;
/// The journal is shipped at least this often while records arrive.
const EVERY: Duration = Duration::from_secs(2);
/// Waiting between passes after a failure grows to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Files shipped beside the journal (relative to the drill directory), when
/// they exist: logs are shipped once their step has ended.
const FILES: [&str; 6] =
    ["runbook.toml", "summary.json", "report.md", "report.html", "report.json", "report.junit.xml"];

/// What has arrived in the archive.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    /// The archive it was shipped to (a drill re-pointed at another archive starts again).
    pub archive: String,
    /// Bytes of the journal shipped (whole lines only).
    pub journal_bytes: u64,
    /// The last seq shipped.
    pub journal_seq: u64,
    /// Relative path → `size:mtime_ns` of the version shipped.
    pub files: BTreeMap<String, String>,
}

/// Why a pass could not ship everything.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// Another operator holds the drill's lease now: nothing more is shipped
    /// from here (it would fork the archive's journal).
    #[error("this drillbook no longer holds the drill's lease: {0}")]
    LeaseLost(String),
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the outbox {}: {source}", .path.display())]
    Outbox {
        path: PathBuf,
        #[source]
        source: crate::report::WriteError,
    },
}

/// Where a drill's objects live in the archive.
pub fn drill_prefix(archive: &Archive, id: &str) -> String {
    format!("{}drills/{id}/", archive.prefix)
}

pub fn store_config(archive: &Archive) -> StoreConfig {
    StoreConfig { endpoint: archive.endpoint.clone(), profile: archive.profile.clone(), region: archive.region.clone() }
}

/// What one pass shipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    pub journal_lines: u64,
    pub files: usize,
}

/// One pass: the journal lines not yet shipped, then the files that changed
/// (logs only when `with_logs`). The outbox is saved after every object, so
/// a crash re-ships at most one batch (with the same content).
pub async fn ship_once(
    store: &Store,
    archive: &Archive,
    dir: &DrillDir,
    with_logs: bool,
) -> Result<Shipped, ShipError> {
    let outbox_path = dir.path.join(OUTBOX);
    let mut outbox = load_outbox(&outbox_path, archive);
    let prefix = drill_prefix(archive, &dir.id);
    let mut shipped = Shipped::default();

    // Only what is new: the journal is append-only, the outbox says how much has gone.
    let journal = dir.journal();
    let read_error = |source| ShipError::Read { path: journal.clone(), source };
    let mut file = std::fs::File::open(&journal).map_err(read_error)?;
    let length = file.metadata().map_err(read_error)?.len();
    let offset = if outbox.journal_bytes > length { 0 } else { outbox.journal_bytes };
    if offset == 0 {
        outbox.journal_bytes = 0;
    }
    let mut data = Vec::new();
    {
        use std::io::{Read, Seek, SeekFrom};
        file.seek(SeekFrom::Start(offset)).map_err(read_error)?;
        file.read_to_end(&mut data).map_err(read_error)?;
    }
    let mut start = 0;
    while start < data.len() {
        // Whole lines only: the last one may still be being written. A line
        // longer than a batch goes whole, alone.
        let window_end = data.len().min(start + BATCH_BYTES);
        let end = match memchr::memrchr(b'\n', &data[start..window_end]) {
            Some(i) => start + i + 1,
            None => match memchr::memchr(b'\n', &data[window_end..]) {
                Some(i) => window_end + i + 1,
                None => break,
            },
        };
        let shipped_to = offset + end as u64;
        ship_lines(store, archive, &prefix, &data[start..end], shipped_to, &mut outbox, &outbox_path, &mut shipped)
            .await?;
        start = end;
    }

    let mut files: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    if with_logs {
        for entry in std::fs::read_dir(dir.logs()).into_iter().flatten().flatten() {
            if let Some(name) = entry.file_name().to_str() {
                files.push(format!("logs/{name}"));
            }
        }
        // Screenshots and attachments: `evidence/STEP/NAME`, never rewritten once kept.
        let evidence = dir.path.join(crate::drill::attach::EVIDENCE_DIR);
        for step in std::fs::read_dir(&evidence).into_iter().flatten().flatten() {
            let Some(step_name) = step.file_name().to_str().map(str::to_string) else { continue };
            for entry in std::fs::read_dir(step.path()).into_iter().flatten().flatten() {
                if let Some(name) = entry.file_name().to_str() {
                    files.push(format!("{}/{step_name}/{name}", crate::drill::attach::EVIDENCE_DIR));
                }
            }
        }
    }
    for relative in files {
        let path = dir.path.join(&relative);
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let modified = meta.modified().ok().and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok());
        let version = format!("{}:{}", meta.len(), modified.map_or(0, |m| m.as_nanos()));
        if outbox.files.get(&relative) == Some(&version) {
            continue;
        }
        store.put_file(&archive.bucket, &format!("{prefix}{relative}"), &path, content_type(&relative)).await?;
        outbox.files.insert(relative, version);
        save_outbox(&outbox_path, &outbox)?;
        shipped.files += 1;
    }
    Ok(shipped)
}

/// One batch of whole journal lines, ending at byte `end` of the journal.
#[allow(clippy::too_many_arguments)]
async fn ship_lines(
    store: &Store,
    archive: &Archive,
    prefix: &str,
    chunk: &[u8],
    end: u64,
    outbox: &mut Outbox,
    outbox_path: &Path,
    shipped: &mut Shipped,
) -> Result<(), ShipError> {
    let seqs: Vec<u64> = chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()).filter_map(line_seq).collect();
    let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else { return Ok(()) };
    let key = format!("{prefix}journal/{first:010}-{last:010}.jsonl");
    store.put(&archive.bucket, &key, chunk.to_vec(), "application/x-ndjson").await?;
    outbox.journal_bytes = end;
    outbox.journal_seq = *last;
    save_outbox(outbox_path, outbox)?;
    shipped.journal_lines += seqs.len() as u64;
    Ok(())
}

/// The `seq` of a journal line (always its first key).
pub fn line_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn content_type(relative: &str) -> &'static str {
    match relative.rsplit('.').next() {
        Some("json") => "application/json",
        Some("md") => "text/markdown; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("xml") => "application/xml",
        Some("toml") => "application/toml",
        Some("log" | "jsonl" | "txt") => "text/plain; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        // An attachment may be anything: its bytes, not a guess at text.
        _ if relative.starts_with("evidence/") => "application/octet-stream",
        _ => "text/plain; charset=utf-8",
    }
}

fn load_outbox(path: &Path, archive: &Archive) -> Outbox {
    let outbox: Option<Outbox> = std::fs::read_to_string(path).ok().and_then(|text| serde_json::from_str(&text).ok());
    match outbox {
        Some(outbox) if outbox.archive == archive.url() => outbox,
        // None yet, unreadable, or for another archive: ship everything (the same keys again).
        _ => Outbox { archive: archive.url(), ..Outbox::default() },
    }
}

fn save_outbox(path: &Path, outbox: &Outbox) -> Result<(), ShipError> {
    let text = serde_json::to_string(outbox).unwrap_or_default();
    crate::report::write_atomic(path, &text).map_err(|source| ShipError::Outbox { path: path.to_path_buf(), source })
}

/// Told once why this session lost the drill's lease (see [`Shipper::start`]).
pub type OnLeaseLost = Box<dyn FnOnce(String) + Send>;

/// The background shipper of one running drill.
pub struct Shipper {
    poke: Arc<Notify>,
    /// Set when the lease was lost (see [`Shipper::start`]).
    lost: Arc<std::sync::atomic::AtomicBool>,
    logs: Arc<std::sync::atomic::AtomicBool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Option<String>>,
}

impl Shipper {
    /// Ships `dir` to `archive` as `holder` (`operator@host`), holding the drill's lease
    /// (taken now when `lease` is `None`: a new drill nobody else knows), renewing it,
    /// and giving it back at the end. Should another operator take the lease over (this
    /// drillbook could not renew it in time), `lost` is told who, once, and nothing more
    /// is shipped: the drill goes on elsewhere, and what is journaled here from then on
    /// would fork the archive's journal.
    pub fn start(
        archive: Archive,
        dir: DrillDir,
        holder: String,
        mut lease: Option<Lease>,
        lost: OnLeaseLost,
    ) -> Shipper {
        let poke = Arc::new(Notify::new());
        let logs = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (stop, mut stopping) = watch::channel(false);
        let (task_poke, task_logs) = (poke.clone(), logs.clone());
        let lost_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task_lost = lost_flag.clone();
        let task = tokio::spawn(async move {
            let mut store: Option<Store> = None;
            let mut backoff = Duration::ZERO;
            let mut lost = Some(lost);
            let mut lost_to: Option<String> = None;
            loop {
                let last = *stopping.borrow();
                if !last {
                    tokio::select! {
                        () = task_poke.notified() => {}
                        () = tokio::time::sleep(EVERY.max(backoff)) => {}
                        _ = stopping.changed() => {}
                    }
                }
                let last = last || *stopping.borrow();
                let with_logs = task_logs.swap(false, std::sync::atomic::Ordering::SeqCst) || last;
                let pass = async {
                    if let Some(why) = &lost_to {
                        return Err(ShipError::LeaseLost(why.clone()));
                    }
                    if store.is_none() {
                        store = Some(Store::connect(&store_config(&archive)).await?);
                    }
                    let Some(store) = &store else { return Ok(Shipped::default()) };
                    lease = match lease.take() {
                        None => Some(lease::take(store, &archive, &dir.id, &holder).await?),
                        Some(held) if last => {
                            lease::release(store, &archive, &held).await?;
                            None
                        }
                        Some(held) if lease::due(&held) => Some(lease::renew(store, &archive, &held).await?),
                        Some(held) => Some(held),
                    };
                    ship_once(store, &archive, &dir, with_logs).await
                };
                let failed = match pass.await {
                    Err(ShipError::Lease(
                        LeaseError::Lost { .. } | LeaseError::Held { .. } | LeaseError::Expired { .. },
                    )) if lost_to.is_none() => {
                        let now = match &store {
                            Some(store) => lease::holder(store, &archive, &dir.id).await,
                            None => None,
                        };
                        let why = match now {
                            Some(now) => format!("{now} took drill {} over", dir.id),
                            None => format!("someone else took drill {} over", dir.id),
                        };
                        task_lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        if let Some(lost) = lost.take() {
                            lost(why.clone());
                        }
                        lost_to = Some(why.clone());
                        Some(ShipError::LeaseLost(why).to_string())
                    }
                    outcome => outcome.err().map(|error| error.to_string()),
                };
                if last {
                    return failed;
                }
                if failed.is_some() {
                    // What this pass could not ship is still in the outbox; logs are tried again too.
                    if with_logs {
                        task_logs.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                } else {
                    backoff = Duration::ZERO;
                }
            }
        });
        Shipper { poke, lost: lost_flag, logs, stop, task }
    }

    /// New journal records: shipped with the next pass.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// A step ended (or the drill did): its log and the reports go too.
    pub fn poke_files(&self) {
        self.logs.store(true, std::sync::atomic::Ordering::SeqCst);
        self.poke.notify_one();
    }

    /// One last pass, waiting at most `within`; `Err` says what is still in
    /// the outbox (it is shipped by the next run or `drillbook archive push`),
    /// or that the lease was lost ([`Unshipped::lease_lost`]: nothing more
    /// is shipped from here).
    pub async fn finish(self, within: Duration) -> Result<(), Unshipped> {
        let _ = self.stop.send(true);
        let failed = match tokio::time::timeout(within, self.task).await {
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(error))) => error,
            Ok(Err(join)) => format!("the archive shipper stopped: {join}"),
            Err(_) => format!("the archive did not answer within {} s", within.as_secs()),
        };
        Err(Unshipped { message: failed, lease_lost: self.lost.load(std::sync::atomic::Ordering::SeqCst) })
    }
}

/// What a shipper's last pass could not ship, and why.
#[derive(Debug)]
pub struct Unshipped {
    pub message: String,
    /// Another operator took the drill's lease over.
    pub lease_lost: bool,
}

/// The journal as the archive holds it: every batch, in seq order, each
/// line once (a batch re-shipped after a crash overlaps the one before).
pub async fn pull_journal(store: &Store, archive: &Archive, id: &str) -> Result<Vec<u8>, S3Error> {
    let prefix = format!("{}journal/", drill_prefix(archive, id));
    let mut batches = store.list(&archive.bucket, &prefix, false).await?;
    batches.sort_by(|a, b| a.key.cmp(&b.key));
    let mut journal = Vec::new();
    let mut next = 1u64;
    for batch in batches {
        let bytes = get_bytes(store, &archive.bucket, &batch.key).await?;
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            match line_seq(line) {
                Some(seq) if seq == next && line.ends_with(b"\n") => {
                    journal.extend_from_slice(line);
                    next += 1;
                }
                // Already taken from an earlier batch.
                Some(seq) if seq < next => {}
                // A gap, or a line that is not a record: kept, so verification names it.
                _ => {
                    journal.extend_from_slice(line);
                    next += 1;
                }
            }
        }
    }
    Ok(journal)
}

/// A whole (small) object.
pub async fn get_bytes(store: &Store, bucket: &str, key: &str) -> Result<Vec<u8>, S3Error> {
    let mut body = store.get(bucket, key, None, None, 0, None).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next_chunk().await.map_err(|e| S3Error::Other(format!("reading {key}: {e}")))? {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Copies a drill from the archive into `local` (a new drill directory of
/// the local store): the runbook snapshot, the journal, the logs and
/// reports, and an outbox saying all of it is there already.
pub async fn pull_drill(store: &Store, archive: &Archive, id: &str, local: &DrillDir) -> Result<usize, ShipError> {
    let prefix = drill_prefix(archive, id);
    let objects = store.list(&archive.bucket, &prefix, false).await?;
    if objects.is_empty() {
        return Err(ShipError::S3(S3Error::Other(format!(
            "no drill `{id}` in the archive {} (drillbook archive push ships one)",
            archive.url()
        ))));
    }
    let write = |path: &Path, bytes: &[u8]| -> Result<(), ShipError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ShipError::Read { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(path, bytes).map_err(|source| ShipError::Read { path: path.to_path_buf(), source })
    };
    let journal = pull_journal(store, archive, id).await?;
    write(&local.journal(), &journal)?;
    let mut outbox = Outbox { archive: archive.url(), journal_bytes: journal.len() as u64, ..Outbox::default() };
    outbox.journal_seq = journal.split(|b| *b == b'\n').rev().find_map(line_seq).unwrap_or(0);
    let mut files = 1;
    for object in objects.iter().filter(|o| !o.key[prefix.len()..].starts_with("journal/")) {
        let relative = &object.key[prefix.len()..];
        if relative.is_empty() || relative.contains("..") || relative == "lease.json" {
            continue;
        }
        let bytes = get_bytes(store, &archive.bucket, &object.key).await?;
        let path = local.path.join(relative);
        write(&path, &bytes)?;
        if let Ok(meta) = std::fs::metadata(&path) {
            let modified = meta.modified().ok().and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok());
            outbox
                .files
                .insert(relative.to_string(), format!("{}:{}", meta.len(), modified.map_or(0, |m| m.as_nanos())));
        }
        files += 1;
    }
    save_outbox(&local.path.join(OUTBOX), &outbox)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seq_of_a_line_is_its_first_key() {
        assert_eq!(line_seq(br#"{"seq":42,"ts":"x"}"#), Some(42));
        assert_eq!(line_seq(br#"{"ts":"x","seq":42}"#), None);
        assert_eq!(line_seq(b"garbage"), None);
    }
}
