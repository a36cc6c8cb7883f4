//! A batch of output lines in one buffer. A command printing two million
//! short lines used to cost two million `String`s (allocated, copied, sent
//! through two channels, freed): more CPU than reading, hashing and logging
//! the bytes together. A batch is now one text buffer and the offsets where
//! its lines end, so the cost per line is a memchr hit and an offset.

use std::fmt;

/// Lines without their terminators, in order, in one buffer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Lines {
    text: String,
    /// End of each line in `text` (exclusive); line `i` starts where `i - 1` ends.
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
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of text held (terminators not counted).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        self.text.get(start..end)
    }

    pub fn last(&self) -> Option<&str> {
        self.get(self.len().checked_sub(1)?)
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
        assert_eq!(lines.text_len(), 9);
        assert_eq!(Lines::from(lines.to_vec()), lines);
        assert_eq!(lines.clone().into_iter().collect::<Vec<_>>(), ["one", "", "thrée", ""]);
        assert!(Lines::new().is_empty());
        assert_eq!(format!("{:?}", Lines::from(vec!["a".to_owned()])), r#"["a"]"#);
    }
}
