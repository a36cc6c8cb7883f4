//! A batch of output lines in one buffer. A command printing two million
//! short lines used to cost two million `String`s (allocated, copied, sent
//! through two channels, freed): more CPU than reading, hashing and logging
//! the bytes together. A batch is now one text buffer and the offsets where
//! its lines end, so the cost per line is a memchr hit and an offset.

use std::fmt;

/// Lines in order, in one buffer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// Every line followed by a `'\n'`: a command's output arrives that way,
    /// so a chunk of it is copied in whole rather than a line at a time.
    text: String,
    /// End of each line's `'\n'` in `text` (exclusive); line `i` starts
    /// where `i - 1` ends.
    ends: Vec<usize>,
}

impl Lines {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `lines` lines of `bytes` bytes in all.
    pub fn with_capacity(lines: usize, bytes: usize) -> Self {
        Lines { text: String::with_capacity(bytes), ends: Vec::with_capacity(lines) }
    }

    pub fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
        self.ends.push(self.text.len());
    }

    /// Appends the lines of `text` (each ended by a `'\n'`, the last one
    /// possibly not) until this holds `max_lines` lines or `max_bytes` bytes;
    /// returns how much of `text` was taken (whole lines). The lines are
    /// copied in one piece.
    pub fn push_split(&mut self, text: &str, max_lines: usize, max_bytes: usize) -> usize {
        let base = self.text.len();
        let mut taken = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
            taken = end + 1;
            self.ends.push(base + taken);
            if self.ends.len() >= max_lines || base + taken >= max_bytes {
                break;
            }
        }
        // `taken` is just past a '\n' (or 0): a character boundary.
        self.text.push_str(text.get(..taken).unwrap_or_default());
        let full = self.ends.len() >= max_lines || self.text.len() >= max_bytes;
        if !full && taken < text.len() {
            self.push(text.get(taken..).unwrap_or_default());
            taken = text.len();
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of text held, a `'\n'` after each line included.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        self.text.get(start..end.saturating_sub(1))
    }

    pub fn last(&self) -> Option<&str> {
        self.get(self.len().checked_sub(1)?)
    }

    /// Each line with its `'\n'`.
    pub fn terminated(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| self.text.get(start..end).unwrap_or_default())
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { lines: self, index: 0 }
    }

    /// One `String` per line, for whoever keeps lines apart (the TUI's log pane).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl fmt::Debug for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl std::ops::Index<usize> for Lines {
    type Output = str;

    fn index(&self, index: usize) -> &str {
        match self.get(index) {
            Some(line) => line,
            None => panic!("line {index} of {}", self.len()),
        }
    }
}

impl From<Vec<String>> for Lines {
    fn from(lines: Vec<String>) -> Self {
        lines.iter().map(String::as_str).collect()
    }
}

impl<'a> FromIterator<&'a str> for Lines {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut lines = Lines::new();
        for line in iter {
            lines.push(line);
        }
        lines
    }
}

impl FromIterator<String> for Lines {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut lines = Lines::new();
        for line in iter {
            lines.push(&line);
        }
        lines
    }
}

pub struct Iter<'a> {
    lines: &'a Lines,
    index: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.index)?;
        self.index += 1;
        Some(line)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.lines.len() - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Lines {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Owned lines, one `String` each.
impl IntoIterator for Lines {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;

    fn into_iter(self) -> Self::IntoIter {
        self.to_vec().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_order_and_empty_lines() {
        let mut lines = Lines::with_capacity(4, 16);
        for line in ["one", "", "thrée", ""] {
            lines.push(line);
        }
        assert_eq!(lines.len(), 4);
        assert_eq!(lines.iter().collect::<Vec<_>>(), ["one", "", "thrée", ""]);
        assert_eq!(&lines[2], "thrée");
        assert_eq!(lines.last(), Some(""));
        assert_eq!(lines.get(4), None);
        assert_eq!(lines.text_len(), 13);
        assert_eq!(lines.terminated().collect::<String>(), "one\n\nthrée\n\n");
        assert_eq!(Lines::from(lines.to_vec()), lines);
        assert_eq!(lines.clone().into_iter().collect::<Vec<_>>(), ["one", "", "thrée", ""]);
        assert!(Lines::new().is_empty());
        assert_eq!(format!("{:?}", Lines::from(vec!["a".to_owned()])), r#"["a"]"#);
    }

    #[test]
    fn split_text_is_taken_in_whole_lines_up_to_the_limits() {
        let mut lines = Lines::new();
        assert_eq!(lines.push_split("a\nbb\n\nccc", 10, 100), 9);
        assert_eq!(lines.iter().collect::<Vec<_>>(), ["a", "bb", "", "ccc"]);
        assert_eq!(lines, Lines::from(vec!["a".to_owned(), "bb".into(), String::new(), "ccc".into()]));

        // Stops at the line that fills it, by count or by bytes.
        let mut lines = Lines::new();
        assert_eq!(lines.push_split("a\nbb\nccc\n", 2, 100), 5);
        assert_eq!(lines.iter().collect::<Vec<_>>(), ["a", "bb"]);
        assert_eq!(lines.push_split("ccc\n", 3, 100), 4);
        assert_eq!(lines.iter().collect::<Vec<_>>(), ["a", "bb", "ccc"]);
        let mut lines = Lines::new();
        assert_eq!(lines.push_split("a\nbb\nccc\n", 10, 4), 5);
        assert_eq!(lines.iter().collect::<Vec<_>>(), ["a", "bb"]);
        let mut lines = Lines::new();
        assert_eq!(lines.push_split("abc", 10, 2), 3, "a last line without '\\n' is taken whole");
        assert_eq!(lines.iter().collect::<Vec<_>>(), ["abc"]);
        assert_eq!(Lines::new().push_split("", 10, 10), 0);
    }
}
