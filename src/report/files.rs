//! Evidence files in the report: screenshots a `browser-check` took and
//! files attached to steps. The journal holds each file's SHA-256; before a
//! report is written, each file in the drill directory is checked against it,
//! so a report never shows (or embeds) a file that is not the one journaled.

use std::path::Path;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Report;
use crate::digest::{hex, sha256_file};
use crate::drill::state::EvidenceFile;

/// Images at most this big are embedded in the HTML report; a bigger one is
/// listed with its hash (the evidence pack carries it).
const MAX_EMBEDDED_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Relative to the drill directory.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// `screenshot` or `attachment`.
    pub origin: &'static str,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub at: String,
    /// What the drill directory holds: `ok` (the journaled hash), `missing`,
    /// `altered`, or `unchecked` (the report was built from the journal alone).
    pub check: FileCheck,
    /// An image's `data:` URI, for the HTML report only.
    #[serde(skip)]
    pub embedded: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileCheck {
    Unchecked,
    Ok,
    Missing,
    Altered,
}

impl FileCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            FileCheck::Unchecked => "unchecked",
            FileCheck::Ok => "ok",
            FileCheck::Missing => "missing",
            FileCheck::Altered => "altered since it was journaled",
        }
    }
}

impl FileReport {
    pub fn of(file: &EvidenceFile) -> FileReport {
        FileReport {
            path: file.path.clone(),
            sha256: file.sha256.clone(),
            bytes: file.bytes,
            origin: file.origin.as_str(),
            label: file.label.clone(),
            note: file.note.clone(),
            by: file.by.clone(),
            at: file.at.to_string(),
            check: FileCheck::Unchecked,
            embedded: None,
        }
    }

    /// The image type the HTML report can show, by the file's extension.
    fn image_type(&self) -> Option<&'static str> {
        let extension = self.path.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "png" => Some("image/png"),
            "jpg" | "jpeg" => Some("image/jpeg"),
            "gif" => Some("image/gif"),
            "webp" => Some("image/webp"),
            _ => None,
        }
    }
}

/// Checks every evidence file of `report` against the drill directory `dir`
/// and loads the images the HTML report embeds. A path that would leave the
/// drill directory is never read (the journal is data, not trusted paths).
pub fn check_files(report: &mut Report, dir: &Path) {
    for file in report.steps.iter_mut().flat_map(|step| step.files.iter_mut()) {
        let inside = !file.path.is_empty()
            && !file.path.starts_with('/')
            && file.path.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
        if !inside {
            file.check = FileCheck::Missing;
            continue;
        }
        let path = dir.join(&file.path);
        let embed = file.image_type().filter(|_| file.bytes <= MAX_EMBEDDED_BYTES);
        // An image to embed is read whole (it is small); anything else is hashed as it streams.
        let read = match embed {
            Some(_) => std::fs::read(&path).map(|bytes| (hex(&Sha256::digest(&bytes)), Some(bytes))),
            None => sha256_file(&path).map(|digest| (digest, None)),
        };
        let Ok((digest, bytes)) = read else {
            file.check = FileCheck::Missing;
            continue;
        };
        if digest != file.sha256 {
            file.check = FileCheck::Altered;
            continue;
        }
        file.check = FileCheck::Ok;
        if let (Some(mime), Some(bytes)) = (embed, bytes) {
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            file.embedded = Some(format!("data:{mime};base64,{data}"));
        }
    }
}
