//! Errors that point into a runbook file: `file:line:col: error: ...` plus
//! the offending source line, so a typo is found in seconds.

use std::fmt;
use std::ops::Range;

/// One problem found in a runbook, located by a byte span of its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    /// 1-based line and column (in characters) of the span's start.
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The source line the span starts on, for the snippet.
    pub source_line: String,
    /// Width (in characters) of the underline on `source_line`.
    pub underline: usize,
}

impl Diagnostic {
    pub fn new(source: &SourceText<'_>, span: Range<usize>, message: impl Into<String>) -> Self {
        let start = floor_char_boundary(source.text, span.start.min(source.text.len()));
        let end = floor_char_boundary(source.text, span.end.clamp(start, source.text.len()));
        let line_start = source.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source.text[start..].find('\n').map_or(source.text.len(), |i| start + i);
        let line = source.text[..start].matches('\n').count() + 1;
        let column = source.text[line_start..start].chars().count() + 1;
        let source_line = source.text[line_start..line_end].trim_end_matches('\r').to_string();
        let underline = source.text[start..end.min(line_end)].chars().count().max(1);
        Diagnostic { path: source.path.to_string(), line, column, message: message.into(), source_line, underline }
    }

    /// The one-line form used in logs and by tests: `file:line:col: message`.
    pub fn headline(&self) -> String {
        format!("{}:{}:{}: {}", self.path, self.line, self.column, self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}:{}: error: {}", self.path, self.line, self.column, self.message)?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        write!(f, "{:gutter$} | {}{}", "", " ".repeat(self.column.saturating_sub(1)), "^".repeat(self.underline))
    }
}

/// A runbook's text with the name it is reported under.
#[derive(Debug, Clone, Copy)]
pub struct SourceText<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Every problem found in one runbook; `check` prints them all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `word`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column() {
        let source = SourceText { path: "rb.toml", text: "a = 1\nbé = 2\n  titel = 3\n" };
        let offset = source.text.find("titel").unwrap();
        let diagnostic = Diagnostic::new(&source, offset..offset + 5, "unknown key");
        assert_eq!((diagnostic.line, diagnostic.column), (3, 3));
        assert_eq!(diagnostic.headline(), "rb.toml:3:3: unknown key");
        let shown = diagnostic.to_string();
        assert!(shown.contains("3 |   titel = 3"), "{shown}");
        assert!(shown.contains("^^^^^"), "{shown}");
    }

    #[test]
    fn survives_out_of_range_and_mid_char_spans() {
        let source = SourceText { path: "x", text: "é" };
        let diagnostic = Diagnostic::new(&source, 1..99, "m");
        assert_eq!(diagnostic.line, 1);
        #[allow(clippy::reversed_empty_ranges)]
        let diagnostic = Diagnostic::new(&source, 50..2, "m");
        assert_eq!(diagnostic.line, 1);
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(did_you_mean("titel", ["title", "timeout", "id"]), Some("title"));
        assert_eq!(did_you_mean("zzz", ["title", "timeout"]), None);
    }
}
