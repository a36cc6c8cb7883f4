//! Replica completeness: both buckets are listed a page at a time (ListObjectsV2 returns
//! keys in order), the two streams are merged like sorted files, so memory does not grow with
//! the number of objects. Objects missing from the replica, different in size or ETag, or
//! only in the replica are counted with up to [`EXAMPLES`] keys each; a sample of the source's
//! objects is HEADed for `x-amz-replication-status`.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::{ObjectInfo, S3Error, Store};
use crate::drill::evidence::ReplicaResult;

/// Keys named per finding.
pub const EXAMPLES: usize = 20;
/// Pages a listing may run ahead of the comparison (each at most 1,000 keys).
const PAGES_AHEAD: usize = 2;

/// `replica_of` and its limits, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub source: String,
    pub max_missing: u64,
    pub max_lag: Option<Duration>,
    pub sample: u32,
}

/// One bucket's listing, a page at a time, fetched ahead on a task of its own.
struct Listing {
    pages: mpsc::Receiver<Result<Vec<ObjectInfo>, S3Error>>,
    page: VecDeque<ObjectInfo>,
    done: bool,
}

impl Listing {
    fn start(store: &Store, bucket: &str, prefix: &str) -> Listing {
        let (sender, pages) = mpsc::channel(PAGES_AHEAD);
        let (store, bucket, prefix) = (store.clone(), bucket.to_string(), prefix.to_string());
        tokio::spawn(async move {
            let mut token = None;
            loop {
                match store.list_page(&bucket, &prefix, token.take()).await {
                    Ok((objects, next)) => {
                        if sender.send(Ok(objects)).await.is_err() {
                            return;
                        }
                        match next {
                            Some(next) => token = Some(next),
                            None => return,
                        }
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                }
            }
        });
        Listing { pages, page: VecDeque::new(), done: false }
    }

    /// The next object in key order, or `None` at the end.
    async fn peek(&mut self) -> Result<Option<&ObjectInfo>, S3Error> {
        while self.page.is_empty() && !self.done {
            match self.pages.recv().await {
                Some(page) => self.page = page?.into(),
                None => self.done = true,
            }
        }
        Ok(self.page.front())
    }

    fn pop(&mut self) -> Option<ObjectInfo> {
        self.page.pop_front()
    }
}

/// What the merge keeps: counts, a few examples, the oldest missing object, a sample.
struct Tally {
    result: ReplicaResult,
    oldest_missing: Option<Timestamp>,
    sample: Vec<String>,
    seen: u64,
    rng: u64,
}

impl Tally {
    fn example(list: &mut Vec<String>, key: &str) {
        if list.len() < EXAMPLES {
            list.push(key.to_string());
        }
    }

    /// Reservoir sampling: every source object has the same chance to be HEADed.
    fn offer(&mut self, key: &str, size: usize) {
        self.seen += 1;
        if self.sample.len() < size {
            self.sample.push(key.to_string());
            return;
        }
        // xorshift64: enough to spread a sample, no crate needed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = self.rng % self.seen;
        if (slot as usize) < size {
            self.sample[slot as usize] = key.to_string();
        }
    }
}

fn same_content(a: &ObjectInfo, b: &ObjectInfo) -> bool {
    let etags_agree = match (&a.etag, &b.etag) {
        (Some(x), Some(y)) => x.trim_matches('"') == y.trim_matches('"'),
        // A store without ETags (the sandbox) is compared by size alone.
        _ => true,
    };
    a.size == b.size && etags_agree
}

/// Compares `replica` (under `prefix`) with `spec.source` object by object.
pub async fn compare(
    store: &Store,
    replica: &str,
    prefix: &str,
    spec: &Replica,
    now: Timestamp,
) -> Result<ReplicaResult, S3Error> {
    let mut source_listing = Listing::start(store, &spec.source, prefix);
    let mut replica_listing = Listing::start(store, replica, prefix);
    let in_flight_after = spec.max_lag.and_then(|lag| now.checked_sub(lag).ok());
    let seed = now.as_nanosecond() as u64 | 1;
    let mut tally = Tally {
        result: ReplicaResult {
            source: spec.source.clone(),
            replica: replica.to_string(),
            source_objects: 0,
            source_bytes: 0,
            replica_objects: 0,
            replica_bytes: 0,
            missing: 0,
            in_flight: 0,
            differ: 0,
            extra: 0,
            missing_examples: Vec::new(),
            differ_examples: Vec::new(),
            extra_examples: Vec::new(),
            lag_seconds: None,
            sampled: 0,
            failed: Vec::new(),
            max_missing: spec.max_missing,
            max_lag: spec.max_lag.map(crate::runbook::duration::format_duration),
        },
        oldest_missing: None,
        sample: Vec::new(),
        seen: 0,
        rng: seed,
    };
    loop {
        let order = match (source_listing.peek().await?, replica_listing.peek().await?) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(s), Some(r)) => s.key.cmp(&r.key),
        };
        match order {
            std::cmp::Ordering::Less => {
                let Some(object) = source_listing.pop() else { break };
                count_source(&mut tally, &object, spec.sample as usize);
                if in_flight_after.is_some_and(|after| object.last_modified > after) {
                    tally.result.in_flight += 1;
                } else {
                    tally.result.missing += 1;
                    Tally::example(&mut tally.result.missing_examples, &object.key);
                }
                tally.oldest_missing =
                    Some(tally.oldest_missing.map_or(object.last_modified, |t| t.min(object.last_modified)));
            }
            std::cmp::Ordering::Greater => {
                let Some(object) = replica_listing.pop() else { break };
                count_replica(&mut tally, &object);
                tally.result.extra += 1;
                Tally::example(&mut tally.result.extra_examples, &object.key);
            }
            std::cmp::Ordering::Equal => {
                let (Some(source), Some(copy)) = (source_listing.pop(), replica_listing.pop()) else { break };
                count_source(&mut tally, &source, spec.sample as usize);
                count_replica(&mut tally, &copy);
                if !same_content(&source, &copy) {
                    tally.result.differ += 1;
                    Tally::example(&mut tally.result.differ_examples, &source.key);
                }
            }
        }
    }
    tally.result.lag_seconds = tally.oldest_missing.map(|t| now.duration_since(t).as_secs().max(0) as u64);
    for key in &tally.sample {
        tally.result.sampled += 1;
        if store.replication_status(&spec.source, key).await?.as_deref() == Some("FAILED") {
            tally.result.failed.push(key.clone());
        }
    }
    Ok(tally.result)
}

fn count_source(tally: &mut Tally, object: &ObjectInfo, sample: usize) {
    tally.result.source_objects += 1;
    tally.result.source_bytes += object.size;
    tally.offer(&object.key, sample);
}

fn count_replica(tally: &mut Tally, object: &ObjectInfo) {
    tally.result.replica_objects += 1;
    tally.result.replica_bytes += object.size;
}

/// What fails the step, each in one sentence.
pub fn failures(result: &ReplicaResult) -> Vec<String> {
    let mut found = Vec::new();
    if result.missing > result.max_missing {
        let lag = result
            .lag_seconds
            .map(|s| format!("; the oldest is {} old", crate::drill::evidence::human_seconds(s)))
            .unwrap_or_default();
        found.push(format!(
            "the replica {} misses {} object(s) of {} (allowed {}), e.g. {}{lag}",
            result.replica,
            result.missing,
            result.source,
            result.max_missing,
            result.missing_examples.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if result.differ > 0 {
        found.push(format!(
            "{} object(s) differ in size or ETag between {} and {}, e.g. {}",
            result.differ,
            result.source,
            result.replica,
            result.differ_examples.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !result.failed.is_empty() {
        found.push(format!("replication FAILED for: {}", result.failed.join(", ")));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(root: &std::path::Path, name: &str, objects: &[(&str, &[u8])]) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (key, body) in objects {
            let path = dir.join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
    }

    #[tokio::test]
    async fn the_merge_names_missing_different_and_extra_objects() {
        let root = tempfile::tempdir().unwrap();
        bucket(root.path(), "src", &[("a", b"1"), ("b", b"22"), ("c", b"3"), ("d", b"4")]);
        bucket(root.path(), "dst", &[("a", b"1"), ("b", b"2"), ("d", b"4"), ("e", b"5")]);
        let store = Store::Dir(super::super::dir::DirStore::new(root.path().to_path_buf()));
        let spec = Replica { source: "src".into(), max_missing: 0, max_lag: None, sample: 2 };
        let result = compare(&store, "dst", "", &spec, Timestamp::now()).await.unwrap();
        assert_eq!((result.source_objects, result.replica_objects), (4, 4));
        assert_eq!((result.missing, result.differ, result.extra, result.in_flight), (1, 1, 1, 0));
        assert_eq!(result.missing_examples, ["c"]);
        assert_eq!(result.differ_examples, ["b"]);
        assert_eq!(result.extra_examples, ["e"]);
        assert_eq!(result.sampled, 2);
        let failures = failures(&result);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].starts_with("the replica dst misses 1 object(s) of src (allowed 0), e.g. c"));
    }

    #[tokio::test]
    async fn objects_newer_than_max_lag_are_in_flight() {
        let root = tempfile::tempdir().unwrap();
        bucket(root.path(), "src", &[("a", b"1"), ("new", b"2")]);
        bucket(root.path(), "dst", &[("a", b"1")]);
        let store = Store::Dir(super::super::dir::DirStore::new(root.path().to_path_buf()));
        let spec =
            Replica { source: "src".into(), max_missing: 0, max_lag: Some(Duration::from_secs(3600)), sample: 0 };
        let result = compare(&store, "dst", "", &spec, Timestamp::now()).await.unwrap();
        assert_eq!((result.missing, result.in_flight), (0, 1));
        assert!(failures(&result).is_empty());
    }
}
