//! `manifest.json`: what the pack holds and where it came from.

use serde::{Deserialize, Serialize};

/// The `format` value of every manifest.
pub const FORMAT: &str = "drillbook-evidence-pack";

/// The manifest version this build writes and reads. A later version may add
/// fields (ignored here) but a higher number means the rules changed.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub drill_id: String,
    pub runbook: RunbookRef,
    /// When the pack was made (RFC 3339, UTC).
    pub created_at: String,
    /// The drillbook that made the pack.
    pub drillbook_version: String,
    pub journal: JournalRef,
    /// Every file of the pack but the manifest and its signature, sorted by path.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookRef {
    pub id: String,
    pub title: String,
    /// SHA-256 of the runbook as the drill started it (from the journal).
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRef {
    /// SHA-256 of the journal's last line: what `drillbook verify` prints.
    pub head: String,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the pack's top directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

impl Manifest {
    /// The bytes written into the pack (and signed): pretty JSON and a newline,
    /// so `cat manifest.json` reads well and `ssh-keygen -Y verify < manifest.json`
    /// sees exactly what was signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Whether `path` is a plain relative path inside the pack: no leading `/`,
/// no `.` or `..`, no empty component. Paths in manifests and journals are
/// data, never trusted to stay inside a directory.
pub fn is_inside(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_pack_are_not_inside() {
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(!is_inside(bad), "{bad}");
        }
        assert!(is_inside("evidence/smoke/login.png"));
    }

    #[test]
    fn manifest_round_trips_and_ends_in_a_newline() {
        let manifest = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            drill_id: "d".into(),
            runbook: RunbookRef { id: "r".into(), title: "T".into(), sha256: "0".repeat(64) },
            created_at: "2026-01-01T00:00:00Z".into(),
            drillbook_version: "0.1.0".into(),
            journal: JournalRef { head: "a".repeat(64), events: 3 },
            files: vec![FileEntry { path: "journal.jsonl".into(), sha256: "b".repeat(64), bytes: 10 }],
        };
        let bytes = manifest.to_bytes();
        assert_eq!(bytes.last(), Some(&b'\n'));
        let back: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, manifest);
    }
}
