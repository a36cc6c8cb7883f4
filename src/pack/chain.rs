//! The journal's hash chain, checked as the journal streams out of a pack
//! (the same rules as `drill::journal::verify`, which needs the file on
//! disk), collecting the `file_attached` events on the way.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::drill::journal::{BreakKind, ChainBreak, FIRST_SEQ, GENESIS_PREV};

/// A journal line longer than this is not one drillbook wrote: refusing it
/// keeps a hostile pack from making the checker buffer without bound.
const MAX_LINE: usize = 64 << 20;

/// What a journal line is made of, the event left as JSON.
#[derive(Deserialize)]
struct Line {
    seq: u64,
    prev: String,
    event: serde_json::Value,
}

/// An evidence file as the journal recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub sha256: String,
    pub bytes: u64,
    /// The journal line (1-based) of the `file_attached` event.
    pub line: usize,
}

#[derive(Debug)]
pub struct ChainCheck {
    partial: Vec<u8>,
    lines: usize,
    next_seq: u64,
    head: String,
    problem: Option<String>,
    /// The last `file_attached` of each path (a path attached again is the newer file).
    attached: BTreeMap<String, Attached>,
}

/// A chain that holds.
#[derive(Debug)]
pub struct Chain {
    pub head: String,
    pub events: u64,
    pub attached: BTreeMap<String, Attached>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            partial: Vec::new(),
            lines: 0,
            next_seq: FIRST_SEQ,
            head: GENESIS_PREV.to_owned(),
            problem: None,
            attached: BTreeMap::new(),
        }
    }
}

impl ChainCheck {
    /// The next bytes of the journal, in any pieces.
    pub fn feed(&mut self, mut data: &[u8]) {
        while self.problem.is_none() && !data.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(end) => {
                    let line = data.get(..end).unwrap_or_default();
                    data = data.get(end + 1..).unwrap_or_default();
                    if self.partial.is_empty() {
                        self.line(line);
                    } else {
                        let mut whole = std::mem::take(&mut self.partial);
                        whole.extend_from_slice(line);
                        self.line(&whole);
                    }
                }
                None => {
                    self.partial.extend_from_slice(data);
                    if self.partial.len() > MAX_LINE {
                        self.problem = Some(format!(
                            "line {} is longer than {} MiB: not a journal drillbook wrote",
                            self.lines + 1,
                            MAX_LINE >> 20
                        ));
                    }
                    return;
                }
            }
        }
    }

    fn line(&mut self, content: &[u8]) {
        self.lines += 1;
        let number = self.lines;
        let parsed: Line = match serde_json::from_slice(content) {
            Ok(line) => line,
            Err(e) => {
                self.problem = Some(format!("line {number} is not a journal record: {e}"));
                return;
            }
        };
        let brk = if parsed.seq != self.next_seq {
            Some((BreakKind::Seq, self.next_seq.to_string(), parsed.seq.to_string()))
        } else if parsed.prev != self.head {
            Some((BreakKind::PrevHash, self.head.clone(), parsed.prev.clone()))
        } else {
            None
        };
        if let Some((kind, expected, found)) = brk {
            self.problem = Some(ChainBreak { line: number, kind, expected, found }.to_string());
            return;
        }
        self.head = hex(&Sha256::digest(content));
        self.next_seq = self.next_seq.saturating_add(1);
        let event = &parsed.event;
        if event["type"] == "file_attached" {
            let (Some(path), Some(sha256)) = (event["path"].as_str(), event["sha256"].as_str()) else {
                self.problem = Some(format!("line {number}: a file_attached event without path or sha256"));
                return;
            };
            let bytes = event["bytes"].as_u64().unwrap_or(0);
            self.attached.insert(path.to_owned(), Attached { sha256: sha256.to_owned(), bytes, line: number });
        }
    }

    /// The chain once the whole journal was fed, or its first problem.
    pub fn finish(self) -> Result<Chain, String> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        if !self.partial.is_empty() {
            // Export packs only the complete lines: an incomplete one was added later.
            return Err(format!("line {} is incomplete (no newline at the end of the journal)", self.lines + 1));
        }
        Ok(Chain { head: self.head, events: self.next_seq.saturating_sub(FIRST_SEQ), attached: self.attached })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::journal::{self, Journal};

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Ev {
        Note { n: u32 },
        FileAttached { path: String, sha256: String, bytes: u64 },
    }

    fn sample() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::<Ev>::create(&path).unwrap();
        journal.append(&Ev::Note { n: 1 }).unwrap();
        journal.append(&Ev::FileAttached { path: "evidence/a/x.png".into(), sha256: "ab".into(), bytes: 2 }).unwrap();
        journal.append(&Ev::Note { n: 3 }).unwrap();
        (dir, path)
    }

    #[test]
    fn agrees_with_journal_verify_whatever_the_pieces() {
        let (_dir, path) = sample();
        let data = std::fs::read(&path).unwrap();
        let verified = journal::verify(&path).unwrap();
        for piece in [1, 7, 64, data.len()] {
            let mut check = ChainCheck::default();
            for chunk in data.chunks(piece) {
                check.feed(chunk);
            }
            let chain = check.finish().unwrap();
            assert_eq!(chain.head, verified.head);
            assert_eq!(chain.events, 3);
            assert_eq!(chain.attached["evidence/a/x.png"].line, 2);
        }
    }

    #[test]
    fn an_edited_line_is_named() {
        let (_dir, path) = sample();
        let text = std::fs::read_to_string(&path).unwrap().replacen("\"n\":1", "\"n\":9", 1);
        let mut check = ChainCheck::default();
        check.feed(text.as_bytes());
        let problem = check.finish().unwrap_err();
        assert!(problem.starts_with("line 2: prev hash does not match line 1"), "{problem}");
    }

    #[test]
    fn an_incomplete_last_line_is_a_problem() {
        let mut check = ChainCheck::default();
        check.feed(b"{\"seq\":1");
        assert!(check.finish().unwrap_err().contains("incomplete"));
    }
}
