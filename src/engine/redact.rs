//! Masks secret values in output before anyone sees it: a command's pipes
//! (chunk by chunk, see [`crate::engine::command`]) and output that comes from
//! elsewhere, such as pod logs and panic messages ([`redact_lines`]).

use std::borrow::Cow;

/// Replacement for redacted secrets.
const REDACTED: &[u8] = b"***";

/// Replaces secrets in output. One regex (literal alternation, longest
/// secret first) finds any of them in a whole chunk with a single scan.
pub(super) struct Redactor {
    matcher: Option<regex::bytes::Regex>,
    /// Fallback when the regex cannot be built (size limits): plain search.
    needles: Vec<Vec<u8>>,
    /// Length of the longest secret piece: how far past a cut a reader must
    /// look so that no secret straddles it.
    pub(super) longest: usize,
}

impl Redactor {
    pub(super) fn new(secrets: &[String]) -> Self {
        let mut pieces: Vec<&str> = secrets
            .iter()
            .flat_map(|s| s.split('\n'))
            .map(|p| p.strip_suffix('\r').unwrap_or(p))
            .filter(|p| !p.is_empty())
            .collect();
        pieces.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        pieces.dedup();
        let longest = pieces.first().map_or(0, |p| p.len());
        let matcher = if pieces.is_empty() {
            None
        } else {
            let pattern = pieces.iter().map(|p| regex::escape(p)).collect::<Vec<_>>().join("|");
            regex::bytes::RegexBuilder::new(&pattern).size_limit(64 << 20).build().ok()
        };
        Self { matcher, needles: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(), longest }
    }

    /// First secret occurrence at or after `from`, as a byte range.
    fn find(&self, hay: &[u8], from: usize) -> Option<(usize, usize)> {
        if self.needles.is_empty() {
            return None;
        }
        if let Some(re) = &self.matcher {
            return re.find_at(hay, from).map(|m| (m.start(), m.end()));
        }
        (from..hay.len()).find_map(|i| {
            let rest = hay.get(i..)?;
            self.needles.iter().find(|n| rest.starts_with(n)).map(|n| (i, i + n.len()))
        })
    }

    pub(super) fn redact<'h>(&self, hay: &'h [u8]) -> Cow<'h, [u8]> {
        let Some(mut found) = self.find(hay, 0) else {
            return Cow::Borrowed(hay);
        };
        let mut out = Vec::with_capacity(hay.len());
        let mut last = 0;
        loop {
            let (start, end) = found;
            out.extend_from_slice(hay.get(last..start).unwrap_or_default());
            out.extend_from_slice(REDACTED);
            last = end;
            match self.find(hay, end.max(start + 1)) {
                Some(next) => found = next,
                None => break,
            }
        }
        out.extend_from_slice(hay.get(last..).unwrap_or_default());
        Cow::Owned(out)
    }

    /// Where to cut a line that is too long: at `max`, or earlier so that no
    /// secret straddles the cut (it would escape redaction in both halves).
    /// `hay` must extend at least `longest` bytes past `max` (or to EOF).
    pub(super) fn safe_cut(&self, hay: &[u8], max: usize) -> usize {
        let cut = max.min(hay.len());
        let mut from = 0;
        let window = hay.get(..cut.saturating_add(self.longest).min(hay.len())).unwrap_or(hay);
        while let Some((start, end)) = self.find(window, from) {
            if start >= cut {
                break;
            }
            if end > cut {
                // A secret longer than the whole line limit is kept whole.
                return if start > 0 { start } else { end };
            }
            from = end.max(start + 1);
        }
        cut.max(1)
    }
}

/// Replaces every secret in `lines` (output that did not come through a
/// command: pod logs, server messages) before it is shown or logged.
pub fn redact_lines(secrets: &[String], lines: &mut [String]) {
    if secrets.iter().all(|s| s.is_empty()) {
        return;
    }
    let redactor = Redactor::new(secrets);
    for line in lines {
        if let Cow::Owned(redacted) = redactor.redact(line.as_bytes()) {
            *line = String::from_utf8_lossy(&redacted).into_owned();
        }
    }
}
