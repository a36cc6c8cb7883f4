//! Following a log file that another process writes (`drillbook watch`):
//! complete lines only, read-only, from where the last read stopped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this much of a log is read when following starts (the pane keeps
/// far fewer lines anyway).
const MAX_START_BYTES: u64 = 4 << 20;

#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    /// Bytes after the last '\n' read so far: a line still being written.
    partial: Vec<u8>,
    /// The first line read starts mid-file (the start was skipped): drop it.
    skip_first: bool,
}

impl LogTail {
    /// Follows `path` from its start (or its last few MiB). The file need not exist yet.
    pub fn new(path: &Path) -> Self {
        let length = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let offset = length.saturating_sub(MAX_START_BYTES);
        LogTail { path: path.to_path_buf(), offset, partial: Vec::new(), skip_first: offset > 0 }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Complete lines written since the last call. A missing or unreadable
    /// file has no lines (yet); a file that shrank is followed from its start.
    pub fn poll(&mut self) -> Vec<String> {
        let Ok(mut file) = File::open(&self.path) else { return Vec::new() };
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        if length < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if length == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset = self.offset.saturating_add(bytes.len() as u64);
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
        let rest = self.partial.split_off(end + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        let text = String::from_utf8_lossy(&complete);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if std::mem::take(&mut self.skip_first) && !lines.is_empty() {
            lines.remove(0);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn only_complete_lines_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step.1.log");
        let mut tail = LogTail::new(&path);
        assert!(tail.poll().is_empty(), "no file yet");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        file.write_all(b"one\ntw").unwrap();
        assert_eq!(tail.poll(), ["one"]);
        assert!(tail.poll().is_empty());
        file.write_all(b"o\r\nthree\n").unwrap();
        assert_eq!(tail.poll(), ["two", "three"]);
        let mut late = LogTail::new(&path);
        assert_eq!(late.poll(), ["one", "two", "three"], "a new tail reads what is there");
    }
}
