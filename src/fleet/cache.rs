//! Summaries already read, kept on this machine by the object's ETag, so the
//! next register GETs only what is new or changed: an S3-compatible server
//! answers a few hundred GETs a second (moto: about 260), so 4,000 summaries
//! are seconds of GETs but one listing of four pages. The listing gives every
//! key's ETag; an entry whose ETag differs, or whose key is gone, is not used.
//! The cache is only ever a shortcut: unreadable, it is ignored and rebuilt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Archive;
use crate::report::summary::Summary;

/// Bumped when the file's shape or the meaning of an entry changes.
const VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SummaryCache {
    version: u32,
    /// `s3://BUCKET/PREFIX/ at ENDPOINT`: a file never answers for another archive.
    archive: String,
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    etag: String,
    summary: Summary,
}

/// `s3://BUCKET/PREFIX/ at ENDPOINT`.
fn identity(archive: &Archive) -> String {
    format!("{} at {}", archive.url(), archive.endpoint.as_deref().unwrap_or("AWS"))
}

/// The cache file of `archive` in `dir`: one per archive, named by a hash of it.
pub fn path(dir: &Path, archive: &Archive) -> PathBuf {
    let digest = Sha256::digest(identity(archive).as_bytes());
    let name = crate::digest::hex(&digest[..8]);
    dir.join(format!("summaries-{name}.json"))
}

impl SummaryCache {
    /// What `path` holds for `archive`; empty when there is nothing usable.
    pub fn load(path: &Path, archive: &Archive) -> SummaryCache {
        let empty = || SummaryCache { version: VERSION, archive: identity(archive), entries: BTreeMap::new() };
        let Ok(bytes) = std::fs::read(path) else { return empty() };
        match serde_json::from_slice::<SummaryCache>(&bytes) {
            Ok(cache) if cache.version == VERSION && cache.archive == identity(archive) => cache,
            _ => empty(),
        }
    }

    /// The summary kept for `key`, if it was read at this `etag`.
    pub fn get(&self, key: &str, etag: Option<&str>) -> Option<&Summary> {
        let entry = self.entries.get(key)?;
        (Some(entry.etag.as_str()) == etag).then_some(&entry.summary)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A cache of exactly these entries (what the archive holds now).
    pub fn rebuilt(archive: &Archive, entries: impl IntoIterator<Item = (String, String, Summary)>) -> SummaryCache {
        SummaryCache {
            version: VERSION,
            archive: identity(archive),
            entries: entries.into_iter().map(|(key, etag, summary)| (key, Entry { etag, summary })).collect(),
        }
    }

    /// Writes the cache atomically (a reader never sees half a file).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot write the summary cache {}: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
        }
        let text = serde_json::to_string(self).map_err(|e| failed(&e))?;
        crate::report::write_atomic(path, &text).map_err(|e| failed(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tests::drill;

    #[test]
    fn an_entry_answers_only_at_its_etag_and_only_for_its_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::parse("s3://acme-drills/fleet/").unwrap();
        let summary = drill("d1", "acme", "bv", 3, "passed", Some(60)).summary;
        let key = "fleet/drills/d1/summary.json".to_string();
        let file = path(dir.path(), &archive);
        SummaryCache::rebuilt(&archive, [(key.clone(), "\"e1\"".to_string(), summary.clone())]).save(&file).unwrap();

        let cache = SummaryCache::load(&file, &archive);
        assert_eq!(cache.get(&key, Some("\"e1\"")), Some(&summary));
        assert_eq!(cache.get(&key, Some("\"e2\"")), None, "changed since");
        assert_eq!(cache.get(&key, None), None);

        let mut elsewhere = archive.clone();
        elsewhere.endpoint = Some("http://127.0.0.1:9000".into());
        assert!(SummaryCache::load(&file, &elsewhere).is_empty(), "another archive's file is not used");
        assert_ne!(path(dir.path(), &elsewhere), file);

        std::fs::write(&file, "{ torn").unwrap();
        assert!(SummaryCache::load(&file, &archive).is_empty(), "an unreadable cache is ignored");
    }
}
