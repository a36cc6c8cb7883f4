//! `drillbook verify-pack`: an evidence pack checked offline, as it streams
//! (each entry hashed while it is decompressed; nothing extracted to disk).
//!
//! The checks, in order; the first that fails is the answer:
//! the signature of the manifest (when there is one), the manifest itself,
//! every file against the manifest (hash and size, missing either way), the
//! journal's hash chain and its head against the manifest, and every
//! journaled evidence file against the file in the pack.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use super::chain::{Chain, ChainCheck};
use super::manifest::{FORMAT, Manifest, VERSION, is_inside};
use super::sshsig::{self, AllowedSigners, SignedBy};
use super::{JOURNAL, MANIFEST, SIGNATURE, top_dir};
use crate::digest::hex;

/// A manifest bigger than this (about a million files) is not one export wrote.
const MAX_MANIFEST: u64 = 256 << 20;
/// An armored signature is well under a kilobyte.
const MAX_SIGNATURE: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The pack does not match its manifest, journal or signature (exit 1).
    #[error("{0}")]
    Mismatch(String),
    /// The file cannot be read as a pack at all (exit 2).
    #[error("{0}")]
    Unreadable(String),
}

/// What a pack that holds together holds.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub files: usize,
    pub bytes: u64,
    /// Evidence files whose journaled hash was checked.
    pub evidence: usize,
    pub signature: Signature,
}

#[derive(Debug)]
pub enum Signature {
    Unsigned,
    /// Signed and the signature verifies, by the key it names (not checked against anyone).
    Unchecked(SignedBy),
    /// Signed by a key the allowed_signers file lists.
    Allowed(SignedBy),
}

/// A file of the pack as it streamed past.
struct Seen {
    sha256: String,
    bytes: u64,
}

/// Checks the pack at `path`. `signers`: the allowed_signers a signature
/// must come from. `progress(done, total)` in compressed bytes.
pub fn verify_pack(
    path: &Path,
    signers: Option<&AllowedSigners>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verified, VerifyError> {
    let shown = path.display().to_string();
    let unreadable = |what: String| VerifyError::Unreadable(format!("{shown}: {what}"));
    let file = std::fs::File::open(path).map_err(|e| unreadable(format!("cannot open: {e}")))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let counted = Counting { inner: file, done: 0, total, progress };
    let decoder = zstd::Decoder::new(counted).map_err(|e| unreadable(format!("cannot read: {e}")))?;
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .map_err(|e| unreadable(format!("not a zstd-compressed tar (an evidence pack is one): {e}")))?;

    let mut top: Option<String> = None;
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut signature_bytes: Option<Vec<u8>> = None;
    let mut chain: Option<Result<Chain, String>> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&shown, &e))?;
        let raw_path = entry.path().map_err(|e| damaged(&shown, &e))?.into_owned();
        let (entry_top, relative) = split_path(&raw_path)?;
        match &top {
            None => top = Some(entry_top),
            Some(top) if *top != entry_top => {
                return Err(VerifyError::Mismatch(format!(
                    "{} is outside the pack's directory {top}/: a pack holds one drill",
                    raw_path.display()
                )));
            }
            Some(_) => {}
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let Some(relative) = relative else {
            return Err(VerifyError::Mismatch(format!(
                "{} is a file where the pack's directory should be",
                raw_path.display()
            )));
        };
        if !kind.is_file() {
            return Err(VerifyError::Mismatch(format!(
                "{relative} is not a regular file (a link?): a pack holds regular files only"
            )));
        }
        if seen.contains_key(&relative)
            || (relative == MANIFEST && manifest_bytes.is_some())
            || (relative == SIGNATURE && signature_bytes.is_some())
        {
            return Err(VerifyError::Mismatch(format!(
                "{relative} is in the pack twice: extracting it would keep the second copy"
            )));
        }
        if relative == MANIFEST || relative == SIGNATURE {
            let limit = if relative == MANIFEST { MAX_MANIFEST } else { MAX_SIGNATURE };
            if entry.header().size().unwrap_or(u64::MAX) > limit {
                return Err(VerifyError::Mismatch(format!("{relative} is implausibly big for what export writes")));
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| damaged(&shown, &e))?;
            if relative == MANIFEST {
                manifest_bytes = Some(bytes);
            } else {
                signature_bytes = Some(bytes);
            }
            continue;
        }
        let mut sink = Sink { hasher: Sha256::new(), bytes: 0, chain: None };
        if relative == JOURNAL {
            sink.chain = Some(ChainCheck::default());
        }
        io::copy(&mut entry, &mut sink).map_err(|e| damaged(&shown, &e))?;
        if let Some(check) = sink.chain.take() {
            chain = Some(check.finish());
        }
        seen.insert(relative, Seen { sha256: hex(&sink.hasher.finalize()), bytes: sink.bytes });
    }
    // Whatever follows the tar's end must still be valid zstd (the checksum is read at the end).
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| damaged(&shown, &e))?;

    let Some(manifest_bytes) = manifest_bytes else {
        return Err(unreadable(format!("no {MANIFEST} in it: not a drillbook evidence pack")));
    };

    // 1. The signature covers the manifest's bytes exactly as they are.
    let signature = match (signature_bytes, signers) {
        (Some(armored), signers) => {
            let by = sshsig::verify(&manifest_bytes, &armored, signers)
                .map_err(|why| VerifyError::Mismatch(format!("{SIGNATURE}: {why}")))?;
            if signers.is_some() { Signature::Allowed(by) } else { Signature::Unchecked(by) }
        }
        (None, Some(_)) => {
            return Err(VerifyError::Mismatch(format!(
                "the pack is not signed (no {SIGNATURE}), but --signer asks for a signature"
            )));
        }
        (None, None) => Signature::Unsigned,
    };

    // 2. The manifest.
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| VerifyError::Mismatch(format!("{MANIFEST} is not a valid manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(VerifyError::Mismatch(format!("{MANIFEST}: format is `{}`, not `{FORMAT}`", manifest.format)));
    }
    if manifest.version > VERSION {
        return Err(VerifyError::Unreadable(format!(
            "{shown}: manifest version {} is newer than this drillbook reads ({VERSION}): upgrade drillbook",
            manifest.version
        )));
    }
    let expected_top = top_dir(&manifest.drill_id);
    if top.as_deref() != Some(expected_top.as_str()) {
        return Err(VerifyError::Mismatch(format!(
            "the pack's directory is {}/ but the manifest is of drill {} ({expected_top}/)",
            top.unwrap_or_default(),
            manifest.drill_id
        )));
    }

    // 3. Every file against the manifest, then what the manifest does not list.
    let mut listed = BTreeMap::new();
    for entry in &manifest.files {
        if !is_inside(&entry.path) || listed.insert(entry.path.as_str(), entry).is_some() {
            return Err(VerifyError::Mismatch(format!(
                "{MANIFEST} lists `{}` twice or as a path outside the pack",
                entry.path
            )));
        }
        let Some(found) = seen.get(&entry.path) else {
            return Err(VerifyError::Mismatch(format!(
                "{}: listed in the manifest, missing from the pack",
                entry.path
            )));
        };
        if found.sha256 != entry.sha256 {
            return Err(VerifyError::Mismatch(format!(
                "{}: sha256 in the manifest {}, in the pack {}",
                entry.path, entry.sha256, found.sha256
            )));
        }
        if found.bytes != entry.bytes {
            return Err(VerifyError::Mismatch(format!(
                "{}: {} bytes in the manifest, {} in the pack",
                entry.path, entry.bytes, found.bytes
            )));
        }
    }
    if let Some(extra) = seen.keys().find(|path| !listed.contains_key(path.as_str())) {
        return Err(VerifyError::Mismatch(format!("{extra}: in the pack but not in the manifest")));
    }

    // 4. The journal's chain, and its head against the manifest's.
    let chain = match chain {
        None => return Err(VerifyError::Mismatch(format!("{JOURNAL}: missing from the pack"))),
        Some(Err(problem)) => return Err(VerifyError::Mismatch(format!("{JOURNAL}: {problem}"))),
        Some(Ok(chain)) => chain,
    };
    if chain.head != manifest.journal.head || chain.events != manifest.journal.events {
        return Err(VerifyError::Mismatch(format!(
            "{JOURNAL}: the chain ends at {} after {} events, the manifest says {} after {}",
            chain.head, chain.events, manifest.journal.head, manifest.journal.events
        )));
    }

    // 5. Every journaled evidence file against the file in the pack.
    for (path, attached) in &chain.attached {
        let Some(found) = seen.get(path) else {
            return Err(VerifyError::Mismatch(format!(
                "{path}: journaled (journal line {}) but missing from the pack",
                attached.line
            )));
        };
        if found.sha256 != attached.sha256 {
            return Err(VerifyError::Mismatch(format!(
                "{path}: journaled sha256 {} (journal line {}), in the pack {}",
                attached.sha256, attached.line, found.sha256
            )));
        }
    }

    Ok(Verified {
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.bytes).sum(),
        evidence: chain.attached.len(),
        manifest,
        signature,
    })
}

/// `drill-ID/REST` into its top directory and the rest (none for the directory itself).
fn split_path(path: &Path) -> Result<(String, Option<String>), VerifyError> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(
                part.to_str()
                    .map(str::to_string)
                    .ok_or_else(|| VerifyError::Mismatch(format!("{} has a name that is not UTF-8", path.display())))?,
            ),
            Component::CurDir => {}
            _ => {
                return Err(VerifyError::Mismatch(format!(
                    "{} would be extracted outside the pack's directory",
                    path.display()
                )));
            }
        }
    }
    let Some((top, rest)) = parts.split_first() else {
        return Err(VerifyError::Mismatch("an entry with an empty name".into()));
    };
    Ok((top.clone(), if rest.is_empty() { None } else { Some(rest.join("/")) }))
}

fn damaged(shown: &str, error: &io::Error) -> VerifyError {
    VerifyError::Unreadable(format!("{shown}: the pack cannot be read to its end (damaged or truncated?): {error}"))
}

/// Hashes (and, for the journal, chain-checks) an entry as it streams.
struct Sink {
    hasher: Sha256,
    bytes: u64,
    chain: Option<ChainCheck>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        if let Some(chain) = self.chain.as_mut() {
            chain.feed(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the compressed bytes read, for progress.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done, self.total);
        Ok(n)
    }
}
