//! A step's evidence files in the HTML report: screenshots as thumbnails
//! that open full size (a checkbox and CSS: the report stays one file with
//! no script), every file with its SHA-256 and what the drill directory holds.

use std::fmt::Write as _;

use super::esc;
use crate::drill::evidence::human_bytes;
use crate::report::files::{FileCheck, FileReport};

pub(super) const FILES_STYLE: &str = r#"
.files { display: flex; flex-wrap: wrap; gap: 12px; list-style: none; padding-left: 0; }
.files > li { border: 1px solid var(--line); border-radius: 6px; padding: 8px; max-width: 100%; }
.files .shot input { display: none; }
.files .shot img { display: block; max-width: 260px; max-height: 180px; cursor: zoom-in; border: 1px solid var(--line); }
.files .shot input:checked + img { max-width: 100%; max-height: none; cursor: zoom-out; }
.files .shot:has(input:checked) { flex-basis: 100%; }
.files .hash { font-size: 11px; color: var(--muted); overflow-wrap: anywhere; }
"#;

pub(super) fn files_html(out: &mut String, files: &[FileReport]) {
    if files.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h4>Screenshots and attachments</h4>\n<ul class=\"files\">");
    for file in files {
        let class = if file.embedded.is_some() { "shot" } else { "file" };
        let _ = write!(out, "<li class=\"{class}\">");
        if let Some(uri) = &file.embedded {
            let _ = write!(
                out,
                "<label title=\"click for full size\"><input type=\"checkbox\"><img src=\"{uri}\" alt=\"{}\"></label>",
                esc(&file.label)
            );
        }
        let by = file.by.as_deref().map(|by| format!(", by {}", esc(by))).unwrap_or_default();
        let _ = write!(
            out,
            "<div><strong>{}</strong> <span class=\"muted\">({}, {}{by}, {})</span></div>",
            esc(&file.label),
            file.origin,
            human_bytes(file.bytes),
            esc(&file.at)
        );
        if let Some(note) = &file.note {
            let _ = write!(out, "<div>{}</div>", esc(note));
        }
        let _ = write!(out, "<div class=\"mono\"><code>{}</code></div>", esc(&file.path));
        let (class, check) = match file.check {
            FileCheck::Ok => ("ok", "matches the journal"),
            FileCheck::Unchecked => ("muted", "not checked"),
            FileCheck::Missing => ("bad", "missing from the drill directory"),
            FileCheck::Altered => ("bad", "ALTERED since it was journaled"),
        };
        let _ = writeln!(
            out,
            "<div class=\"hash\">SHA-256 <code>{}</code> <span class=\"badge {class}\">{check}</span></div></li>",
            esc(&file.sha256)
        );
    }
    let _ = writeln!(out, "</ul>");
}
