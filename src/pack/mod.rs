//! The evidence pack: one `drill-ID.tar.zst` an auditor can check offline,
//! without drillbook's store and without trusting the machine it came from.
//!
//! It holds the journal, the runbook snapshot, the step logs, the evidence
//! files (screenshots, attachments), the four reports freshly written, and
//! `manifest.json`: every other file with its SHA-256 and size, the journal's
//! chain head and event count, who and what made it. `--sign` adds
//! `manifest.json.sig`, an OpenSSH `sshsig` signature of the manifest that
//! `ssh-keygen -Y verify` checks, so the chain of trust is: the signature
//! covers the manifest, the manifest covers every file by hash, and the
//! journal's own hash chain ends in the head the manifest names.
//!
//! Never in a pack: `downloads/` (the restored backups: production data,
//! big and sensitive), the lock, the archive outbox, torn journal tails,
//! temporary files and drillbook's own trace log.
//!
//! Both directions stream: files are hashed while they are written into the
//! tar (one read each, never whole in memory), and `verify-pack` hashes each
//! entry as it is decompressed.

pub mod agent;
mod chain;
pub mod export;
pub mod manifest;
pub mod sshsig;
pub mod verify;

/// The sshsig namespace of a pack's signature: a signature made for a git
/// commit or an SSH login can never be passed off as one of a manifest.
pub const NAMESPACE: &str = "drillbook-evidence";

/// The manifest's name inside the pack (under the pack's top directory).
pub const MANIFEST: &str = "manifest.json";

/// The armored signature of [`MANIFEST`].
pub const SIGNATURE: &str = "manifest.json.sig";

/// The journal's name inside the pack.
pub const JOURNAL: &str = "journal.jsonl";

/// The top directory of every entry: extracting a pack never spills files
/// into the current directory.
pub fn top_dir(drill_id: &str) -> String {
    format!("drill-{drill_id}")
}

/// The default file name of a drill's pack.
pub fn default_file_name(drill_id: &str) -> String {
    format!("drill-{drill_id}.tar.zst")
}

/// Human-readable size, for summaries and progress.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
