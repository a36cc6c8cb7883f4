//! Where the register's drills come from: the shared archive's summaries
//! (one listing of `PREFIX/drills/`, then concurrent GETs of each
//! `summary.json` not already cached at its ETag, never a journal) and this
//! machine's drill store (each journal replayed and summarised here).

use std::path::Path;

use futures::StreamExt;
use jiff::Timestamp;

use super::Drill;
use super::cache::{self, SummaryCache};
use crate::config::Archive;
use crate::drill::event::Event;
use crate::drill::journal;
use crate::drill::state::DrillState;
use crate::drill::store::DrillStore;
use crate::engine::s3::{S3Error, Store, StoreConfig};
use crate::report::summary::{Summary, summary};

/// Summaries fetched at once: enough to hide each request's latency, few
/// enough not to swamp an S3-compatible server (or the 2 cores here).
pub const CONCURRENT_GETS: usize = 32;
/// A summary is a few hundred bytes; anything this big is not one.
const MAX_SUMMARY_BYTES: usize = 1024 * 1024;

/// Drills read, and what was wrong with those that could not be.
#[derive(Debug, Default)]
pub struct Read {
    pub drills: Vec<Drill>,
    pub warnings: Vec<String>,
    /// Summaries fetched from the archive.
    pub fetched: usize,
    /// Summaries the cache had at their current ETag.
    pub cached: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The archive cannot be listed or read: the register would be incomplete.
    #[error("archive {url}: {source}")]
    Archive {
        url: String,
        #[source]
        source: S3Error,
    },
    #[error("local drills: {0}")]
    Local(String),
}

/// `PREFIX/drills/`: where the archive keeps one folder per drill.
pub fn drills_prefix(archive: &Archive) -> String {
    format!("{}drills/", archive.prefix)
}

/// Every `PREFIX/drills/<ID>/summary.json` of the archive. With `cache_dir`,
/// summaries read before at the same ETag come from there (see [`cache`](super::cache)).
pub async fn archived(archive: &Archive, cache_dir: Option<&Path>) -> Result<Read, SourceError> {
    let failed = |source| SourceError::Archive { url: archive.url(), source };
    let config = StoreConfig {
        endpoint: archive.endpoint.clone(),
        profile: archive.profile.clone(),
        region: archive.region.clone(),
    };
    let store = Store::connect(&config).await.map_err(failed)?;
    let prefix = drills_prefix(archive);
    let listed = store.list(&archive.bucket, &prefix, false).await.map_err(failed)?;
    let cache_file = cache_dir.map(|dir| cache::path(dir, archive));
    let cache = cache_file.as_deref().map(|file| SummaryCache::load(file, archive)).unwrap_or_default();

    let mut read = Read::default();
    // What the cache will hold next time: key, ETag and summary of every drill read now.
    let mut kept: Vec<(String, String, Summary)> = Vec::new();
    let mut to_fetch: Vec<(String, Option<String>)> = Vec::new();
    for object in listed.into_iter().filter(|o| is_summary_key(&prefix, &o.key)) {
        let cached = cache.get(&object.key, object.etag.as_deref()).and_then(|summary| drill_of(summary.clone()).ok());
        match (cached, object.etag) {
            (Some(drill), Some(etag)) => {
                kept.push((object.key, etag, drill.summary.clone()));
                read.drills.push(drill);
                read.cached += 1;
            }
            (_, etag) => to_fetch.push((object.key, etag)),
        }
    }
    let mut fetched = futures::stream::iter(to_fetch)
        .map(|(key, etag)| {
            let store = store.clone();
            let bucket = archive.bucket.clone();
            async move {
                let body = fetch(&store, &bucket, &key).await;
                (key, etag, body)
            }
        })
        .buffer_unordered(CONCURRENT_GETS);
    // The first failure ends the read (dropping the stream cancels the GETs in flight):
    // a register missing some drills would claim rows are overdue that are not.
    while let Some((key, etag, body)) = fetched.next().await {
        let body = match body.map_err(failed)? {
            Some(body) => body,
            // Deleted between the listing and the GET: gone is gone.
            None => continue,
        };
        read.fetched += 1;
        match parse_summary(&body) {
            Ok((summary, started_at)) => {
                if let Some(etag) = etag {
                    kept.push((key, etag, summary.clone()));
                }
                read.drills.push(Drill { summary, started_at, local_dir: None, archived: true });
            }
            Err(why) => read.warnings.push(format!("s3://{}/{key}: {why}; left out", archive.bucket)),
        }
    }
    if let Some(file) = cache_file
        && (read.fetched > 0 || kept.len() != cache.len())
        && let Err(why) = SummaryCache::rebuilt(archive, kept).save(&file)
    {
        read.warnings.push(format!("{why} (the next register reads every summary again)"));
    }
    Ok(read)
}

/// `PREFIX/drills/<ID>/summary.json`, one level deep.
fn is_summary_key(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix("/summary.json"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The whole object, or `None` when it no longer exists.
async fn fetch(store: &Store, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
    let mut body = match store.get(bucket, key, None, None, 0, None).await {
        Ok(body) => body,
        Err(S3Error::NoSuchKey { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut bytes = Vec::new();
    while let Some(chunk) =
        body.next_chunk().await.map_err(|source| S3Error::Body { endpoint: store.endpoint(), source })?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_SUMMARY_BYTES {
            return Err(S3Error::Other(format!(
                "s3://{bucket}/{key} is over {} KiB: not a drill summary",
                MAX_SUMMARY_BYTES / 1024
            )));
        }
    }
    Ok(Some(bytes))
}

/// A `summary.json` and its parsed start.
pub fn parse_summary(body: &[u8]) -> Result<(Summary, Timestamp), String> {
    let summary: Summary = serde_json::from_slice(body).map_err(|e| format!("not a drill summary ({e})"))?;
    let drill = drill_of(summary)?;
    Ok((drill.summary, drill.started_at))
}

/// An archived drill from its summary.
fn drill_of(summary: Summary) -> Result<Drill, String> {
    let started_at = summary
        .started_at
        .parse::<Timestamp>()
        .map_err(|e| format!("drill {}: started_at `{}` is not a time ({e})", summary.drill_id, summary.started_at))?;
    Ok(Drill { summary, started_at, local_dir: None, archived: true })
}

/// Every drill of this machine's store that started, summarised from its journal.
pub fn local(store: &DrillStore) -> Result<Read, SourceError> {
    let mut read = Read::default();
    for dir in store.list().map_err(|e| SourceError::Local(e.to_string()))? {
        let replay = match journal::read::<Event>(&dir.journal()) {
            Ok(replay) => replay,
            Err(error) => {
                read.warnings.push(format!("local drill {}: {error}; left out", dir.id));
                continue;
            }
        };
        // Killed before its first event was written: it never started.
        if replay.records.is_empty() {
            continue;
        }
        match DrillState::replay(&replay.records) {
            Ok(state) => read.drills.push(Drill {
                started_at: state.started_at,
                summary: summary(&state),
                local_dir: Some(dir.path.clone()),
                archived: false,
            }),
            Err(error) => read.warnings.push(format!("local drill {}: {error}; left out", dir.id)),
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_summaries_one_level_under_drills_are_read() {
        let prefix = "fleet/drills/";
        assert!(is_summary_key(prefix, "fleet/drills/01a2/summary.json"));
        assert!(!is_summary_key(prefix, "fleet/drills/01a2/journal.jsonl"));
        assert!(!is_summary_key(prefix, "fleet/drills/summary.json"));
        assert!(!is_summary_key(prefix, "fleet/drills/01a2/old/summary.json"));
        assert!(!is_summary_key(prefix, "other/drills/01a2/summary.json"));
    }

    #[test]
    fn a_summary_without_a_readable_start_is_refused_with_its_id() {
        let error = parse_summary(br#"{"drill_id": "d1"}"#).unwrap_err();
        assert!(error.starts_with("not a drill summary"), "{error}");
        let body = serde_json::json!({
            "drill_id": "d1", "runbook_id": "r", "runbook_title": "R", "operator": "o",
            "started_at": "yesterday", "ended_at": null, "outcome": "passed",
            "rto": {"target_secs": null, "achieved_secs": null, "verdict": "n/a"},
            "rpo": {"target_secs": null, "achieved_secs": null, "verdict": "n/a"}
        });
        let error = parse_summary(body.to_string().as_bytes()).unwrap_err();
        assert!(error.contains("drill d1: started_at `yesterday`"), "{error}");
    }
}
