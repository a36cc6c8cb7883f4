//! The log pane's layout engine: how a line becomes glyphs (ANSI styles, tab
//! stops, display widths of wide characters), how glyphs wrap into screen rows,
//! and which lines, and which of their rows, fill the viewport.
//!
//! Only the lines that end up on screen are laid out, so the cost of a frame
//! does not depend on how many lines the pane holds.

use ansi_to_tui::IntoText as _;
use ratatui::buffer::CellWidth as _;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::Block;

use super::{Kind, LogPane, for_each_plain_run};

/// Tab stops, as in a terminal.
pub(super) const TAB_WIDTH: usize = 8;

/// The text area of the pane: rows, and columns right of the gutter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Viewport {
    pub(super) rows: usize,
    pub(super) cols: usize,
}

impl Viewport {
    /// The area inside the border of `area` (gutter column included).
    pub(super) fn inner(area: Rect) -> Rect {
        Block::bordered().inner(area)
    }

    pub(super) fn of(area: Rect) -> Self {
        let inner = Self::inner(area);
        Viewport { rows: usize::from(inner.height), cols: usize::from(inner.width.saturating_sub(1)) }
    }
}

impl LogPane {
    /// The lines on screen for a viewport, top to bottom: bottom-aligned on
    /// the anchor line, or top-aligned when the lines above it don't fill
    /// the view. Touches at most `vp.rows` lines (plus one).
    pub(super) fn window(&self, vp: Viewport, highlight: bool) -> Vec<Slot> {
        let mut slots = Vec::new();
        let Some(last) = self.last() else { return slots };
        if vp.rows == 0 {
            return slots;
        }
        let bottom = self.anchor.map_or(last, |a| a.clamp(self.first, last));
        let mut used = 0usize;
        let mut abs = bottom;
        loop {
            let slot = self.slot(abs, vp, highlight);
            used = used.saturating_add(slot.height);
            slots.push(slot);
            if used >= vp.rows || abs <= self.first {
                break;
            }
            abs -= 1;
        }
        slots.reverse();
        if used > vp.rows {
            if let Some(top) = slots.first_mut() {
                top.skip = used - vp.rows;
                top.take = top.height.saturating_sub(top.skip);
            }
        } else {
            let mut abs = bottom;
            while used < vp.rows && abs < last {
                abs += 1;
                let mut slot = self.slot(abs, vp, highlight);
                slot.take = slot.height.min(vp.rows - used);
                used = used.saturating_add(slot.height);
                slots.push(slot);
            }
        }
        slots
    }

    fn slot(&self, abs: u64, vp: Viewport, highlight: bool) -> Slot {
        let mut slot = Slot { abs, height: 1, skip: 0, take: 1, layout: None, rows: Vec::new() };
        if self.wrap
            && let Some(layout) = self.layout(abs, highlight)
        {
            slot.rows = layout.wrap_rows(vp.cols);
            slot.height = slot.rows.len().max(1);
            slot.take = slot.height;
            slot.layout = Some(layout);
        }
        slot
    }

    /// Glyphs of line `abs`: ANSI parsed, tabs expanded, control characters
    /// dropped, search matches highlighted (if asked).
    pub(super) fn layout(&self, abs: u64, highlight: bool) -> Option<Layout> {
        let entry = self.entry(abs)?;
        let mut layout = Layout::default();
        match entry.kind {
            Kind::Marker => {
                let style = Style::new().add_modifier(Modifier::DIM | Modifier::ITALIC);
                layout.push_piece(&entry.text, style);
            }
            Kind::Stdout | Kind::Stderr => {
                let bytes = entry.text.as_bytes();
                match bytes.to_text() {
                    Ok(text) => {
                        for line in &text.lines {
                            for span in &line.spans {
                                layout.push_piece(&span.content, line.style.patch(span.style));
                            }
                        }
                    }
                    Err(_) => for_each_plain_run(&entry.text, |run| layout.push_piece(run, Style::new())),
                }
            }
        }
        if highlight
            && let Some(search) = &self.search
            && search.matches.binary_search(&abs).is_ok()
        {
            let strong = search.current == Some(abs);
            layout.highlight(&search.needle, strong);
        }
        Some(layout)
    }
}

/// A line on screen: which of its rows are shown.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) abs: u64,
    /// Rows the line takes (1 unless wrapped).
    pub(super) height: usize,
    /// Rows hidden above the view (top line of a wrapped view).
    pub(super) skip: usize,
    /// Rows shown.
    pub(super) take: usize,
    /// Already built when wrapping needed it.
    pub(super) layout: Option<Layout>,
    /// Glyph ranges of the wrapped rows.
    pub(super) rows: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Glyph {
    start: usize,
    len: usize,
    pub(super) width: usize,
    pub(super) style: Style,
    /// Part of the searchable text (false for the 2nd.. spaces of a tab).
    searchable: bool,
}

/// A line broken into styled grapheme clusters with their display widths.
#[derive(Debug, Default)]
pub(super) struct Layout {
    text: String,
    pub(super) glyphs: Vec<Glyph>,
    pub(super) width: usize,
}

impl Layout {
    pub(super) fn symbol(&self, glyph: &Glyph) -> &str {
        self.text.get(glyph.start..glyph.start.saturating_add(glyph.len)).unwrap_or("")
    }

    fn push_glyph(&mut self, symbol: &str, width: usize, style: Style, searchable: bool) {
        let start = self.text.len();
        self.text.push_str(symbol);
        self.glyphs.push(Glyph { start, len: symbol.len(), width, style, searchable });
        self.width = self.width.saturating_add(width);
    }

    fn push_piece(&mut self, piece: &str, style: Style) {
        for (i, segment) in piece.split('\t').enumerate() {
            if i > 0 {
                let spaces = TAB_WIDTH - self.width % TAB_WIDTH;
                for k in 0..spaces {
                    self.push_glyph(" ", 1, style, k == 0);
                }
            }
            self.push_segment(segment, style);
        }
    }

    fn push_segment(&mut self, segment: &str, style: Style) {
        if segment.is_ascii() {
            for (i, byte) in segment.bytes().enumerate() {
                if !byte.is_ascii_control()
                    && let Some(symbol) = segment.get(i..i + 1)
                {
                    self.push_glyph(symbol, 1, style, true);
                }
            }
        } else {
            // Same segmentation and filtering (control characters) as the
            // buffer itself uses.
            let span = Span::raw(segment);
            for grapheme in span.styled_graphemes(Style::new()) {
                let width = usize::from(grapheme.symbol.cell_width());
                self.push_glyph(grapheme.symbol, width, style, true);
            }
        }
    }

    /// Glyph ranges of the rows when wrapped at `cols` columns (character
    /// wrap: logs are not prose). Always at least one row.
    fn wrap_rows(&self, cols: usize) -> Vec<(usize, usize)> {
        let mut rows = Vec::new();
        if cols == 0 {
            rows.push((0, self.glyphs.len()));
            return rows;
        }
        let (mut start, mut col) = (0, 0usize);
        for (i, glyph) in self.glyphs.iter().enumerate() {
            if glyph.width > 0 && col > 0 && col.saturating_add(glyph.width) > cols {
                rows.push((start, i));
                start = i;
                col = 0;
            }
            col = col.saturating_add(glyph.width);
        }
        rows.push((start, self.glyphs.len()));
        rows
    }

    /// Highlights the occurrences of `needle` (case-folded).
    fn highlight(&mut self, needle: &str, strong: bool) {
        if needle.is_empty() {
            return;
        }
        let mut hay = String::new();
        let mut owner = Vec::new();
        for (i, glyph) in self.glyphs.iter().enumerate() {
            if !glyph.searchable {
                continue;
            }
            for c in self.symbol(glyph).chars() {
                hay.extend(c.to_lowercase());
                owner.resize(hay.len(), i);
            }
        }
        let style = if strong {
            Style::new().fg(Color::Black).bg(Color::LightRed).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Black).bg(Color::Yellow)
        }
        .remove_modifier(Modifier::REVERSED | Modifier::HIDDEN | Modifier::DIM);
        for (at, found) in hay.match_indices(needle) {
            let from = owner.get(at).copied();
            let to = owner.get(at.saturating_add(found.len()).saturating_sub(1)).copied();
            if let (Some(from), Some(to)) = (from, to) {
                for glyph in self.glyphs.get_mut(from..=to).into_iter().flatten() {
                    glyph.style = glyph.style.patch(style);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, draw, lines, rows};
    use super::super::{DEFAULT_CAPACITY, LogPane};
    use crate::engine::OutputStream;

    #[test]
    fn wrap_toggles_and_long_lines_keep_the_layout() {
        let mut pane = LogPane::new(100);
        assert!(!pane.wrap());
        let long = format!("start {} end", "x".repeat(40));
        pane.push_lines(OutputStream::Stdout, lines(&["first", &long, "last"]));
        // 20 wide: 17 text columns, 6 rows.
        let off = body(&draw(&pane, 20, 8));
        assert_eq!(off, ["first", "start xxxxxxxxxxx", "last", "", "", ""]);
        pane.toggle_wrap();
        assert!(pane.wrap());
        let on = draw(&pane, 20, 8);
        assert_eq!(body(&on), ["first", "start xxxxxxxxxxx", "xxxxxxxxxxxxxxxxx", "xxxxxxxxxxxx end", "last", ""]);
        assert!(rows(&draw(&pane, 40, 8))[0].contains("wrap"));
        // Following with wrap: the bottom row is the last line even when the
        // top line is cut.
        let small = body(&draw(&pane, 20, 5));
        assert_eq!(small, ["xxxxxxxxxxxxxxxxx", "xxxxxxxxxxxx end", "last"]);
        // Every row keeps to the width: the right border is intact.
        for row in rows(&draw(&pane, 20, 5)).iter().skip(1).take(3) {
            assert!(row.ends_with('│'), "{row:?}");
        }
        pane.toggle_wrap();
        assert!(!pane.wrap());
    }

    #[test]
    fn wrapped_wide_characters_and_tabs() {
        let mut pane = LogPane::new(100);
        pane.toggle_wrap();
        pane.push_lines(OutputStream::Stdout, lines(&["日本語のログ出力", "a\tb\tc"]));
        // 9 wide: 6 text columns, i.e. three wide characters per row.
        let b = body(&draw(&pane, 9, 9));
        assert_eq!(b, ["日本語", "のログ", "出力", "a", "  b", "    c", ""]);
        let b = body(&draw(&pane, 30, 6));
        assert_eq!(b[..2], ["日本語のログ出力", "a       b       c"]);
    }

    #[test]
    fn snapshot_wrapped_long_line() {
        let mut pane = LogPane::new(DEFAULT_CAPACITY);
        pane.toggle_wrap();
        pane.push_lines(OutputStream::Stdout, lines(&["Checking backup manifest…"]));
        let long = format!(
            "\x1b[2mmanifest:\x1b[0m {}",
            (0..12)
                .map(|i| format!("s3://dr-backups/2024-06-0{}/chunk-{i:03}.tar.zst", i % 9 + 1))
                .collect::<Vec<_>>()
                .join(" ")
        );
        pane.push_lines(OutputStream::Stdout, &[long]);
        pane.push_lines(OutputStream::Stderr, lines(&["warning: 2 chunks older than the retention window"]));
        pane.push_lines(OutputStream::Stdout, lines(&["done"]));
        insta::assert_snapshot!("wrapped_long_line", format!("{:?}", draw(&pane, 80, 12)));
    }
}
