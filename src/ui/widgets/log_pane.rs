//! The log pane: live output of the running step's command, in a ring buffer,
//! with follow mode, scrolling, wrapping and plain-text search.
//!
//! State and rendering are separate: every method that changes what is shown
//! takes `&mut self`, [`LogPane::render`] takes `&self` and only writes into
//! the [`Buffer`]. Nothing here does I/O.
//!
//! Cost model, so that a step printing millions of lines never slows the UI:
//! - pushing a line is amortised O(1) in the size of the buffer (a
//!   [`VecDeque`] ring that evicts from the front);
//! - rendering touches only the lines that end up on screen: ANSI escapes are
//!   parsed (with `ansi-to-tui`) for visible lines only, wrapped heights are
//!   computed for visible lines only;
//! - search scans the ring once when a query is set, then keeps its sorted
//!   list of matching line numbers up to date as lines arrive and are evicted.
//!
//! Lines are addressed by an absolute, monotonically increasing line number,
//! so a scrolled-up view and the search matches stay on the same lines while
//! new lines arrive (until those lines are evicted).
//!
//! The view is anchored at its bottom line. Scrolling needs the page size to
//! clamp at the top and to tell whether a search match is already on screen:
//! call [`LogPane::set_viewport`] with the area you render into (once per
//! frame or on resize). Without it everything still works and renders
//! correctly; only those two refinements are skipped.
//!
//! How lines become screen rows (glyphs, widths, wrapping, which lines fill
//! the viewport) is the `layout` module's job; this one keeps the lines, the
//! view and the search, and draws.

use std::collections::VecDeque;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Widget as _};

use self::layout::{Layout, TAB_WIDTH, Viewport};
use crate::engine::OutputStream;

mod layout;

/// The stream a line came from (the engine's own type, under the pane's name).
pub type LogStream = OutputStream;

/// The capacity the app uses by default.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Longer lines are cut when pushed, so that one runaway line (a minified
/// file, a progress bar without newlines) can't make every frame slow.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Upper bound for horizontal scrolling when the viewport is unknown.
const MAX_HSCROLL: usize = MAX_LINE_BYTES * TAB_WIDTH;
/// Gutter mark of stderr lines.
const STDERR_MARK: &str = "▌";
/// Shown in an empty pane.
const PLACEHOLDER: &str = "waiting for output…";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdout,
    Stderr,
    Marker,
}

impl From<OutputStream> for Kind {
    fn from(stream: OutputStream) -> Self {
        match stream {
            OutputStream::Stdout => Kind::Stdout,
            OutputStream::Stderr => Kind::Stderr,
        }
    }
}

/// One line of the ring, as pushed (sanitised: no CR/LF, bounded length).
#[derive(Debug)]
struct Entry {
    text: Box<str>,
    kind: Kind,
}

#[derive(Debug)]
struct Search {
    /// The query as typed (control characters removed), for the title.
    query: String,
    /// The case-folded query matched against case-folded plain text.
    needle: String,
    /// Absolute numbers of the matching lines still in the ring, ascending.
    matches: VecDeque<u64>,
    /// The current match (may have been evicted since: then it is older than
    /// every match left).
    current: Option<u64>,
}

/// The log pane: a bounded ring of output lines plus view and search state.
#[derive(Debug)]
pub struct LogPane {
    lines: VecDeque<Entry>,
    capacity: usize,
    /// Absolute number of `lines[0]` (= lines pushed before it, evicted or cleared).
    first: u64,
    dropped: u64,
    /// `None`: follow mode (the bottom of the view is the last line).
    /// `Some(n)`: line `n` is at the bottom of the view.
    anchor: Option<u64>,
    hscroll: usize,
    wrap: bool,
    search: Option<Search>,
    viewport: Option<Viewport>,
}

impl Default for LogPane {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl LogPane {
    /// A pane keeping at most `capacity` most recent lines (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        LogPane {
            // Grows on demand up to `capacity`, then stays flat.
            lines: VecDeque::new(),
            capacity,
            first: 0,
            dropped: 0,
            anchor: None,
            hscroll: 0,
            wrap: false,
            search: None,
            viewport: None,
        }
    }

    /// Appends output lines (without line terminator; ANSI escapes kept).
    /// A stray `\n` inside a line splits it; a `\r` keeps what a terminal
    /// would show (the text after the last carriage return).
    pub fn push_lines<S: AsRef<str>>(&mut self, stream: OutputStream, lines: impl IntoIterator<Item = S>) {
        let mut fold_buf = String::new();
        for line in lines {
            self.push_text(Kind::from(stream), line.as_ref(), &mut fold_buf);
        }
    }

    /// Appends a line of drillbook's own ("── attempt 2 ──", "exit code 3"),
    /// shown dim and italic, not ANSI-parsed.
    pub fn push_marker(&mut self, text: &str) {
        let mut fold_buf = String::new();
        self.push_text(Kind::Marker, text, &mut fold_buf);
    }

    /// Empties the pane as if new (same capacity, same wrap mode and search
    /// query): lines, dropped count and scroll position are reset, follow on.
    pub fn clear(&mut self) {
        self.first = self.first.saturating_add(self.lines.len() as u64);
        self.lines.clear();
        self.lines.shrink_to(self.capacity.min(4096));
        self.dropped = 0;
        self.anchor = None;
        self.hscroll = 0;
        if let Some(search) = &mut self.search {
            search.matches.clear();
            search.current = None;
        }
    }

    /// Number of lines held.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines evicted from the ring so far (they are still in the log file).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Tells the pane the area it is rendered into, so that scrolling clamps
    /// at the top and search knows whether a match is already on screen.
    pub fn set_viewport(&mut self, area: Rect) {
        self.viewport = Some(Viewport::of(area));
    }

    // ---- scrolling --------------------------------------------------------

    /// Whether the view sticks to the last line as lines arrive.
    pub fn follow(&self) -> bool {
        self.anchor.is_none()
    }

    pub fn set_follow(&mut self, on: bool) {
        if on {
            self.anchor = None;
        } else if self.anchor.is_none() {
            // Freeze the current view (or, when empty, the first page to come).
            self.anchor = Some(self.view_bottom().unwrap_or(self.first));
        }
    }

    pub fn toggle_follow(&mut self) {
        self.set_follow(!self.follow());
    }

    /// Scrolls `n` lines up; pauses follow mode.
    pub fn scroll_up(&mut self, n: usize) {
        let Some(bottom) = self.view_bottom() else {
            self.set_follow(false);
            return;
        };
        self.anchor = Some(bottom.saturating_sub(n as u64).max(self.first));
        self.normalize();
    }

    /// Scrolls `n` lines down; reaching the last line resumes follow mode.
    pub fn scroll_down(&mut self, n: usize) {
        if n == 0 || self.anchor.is_none() {
            return;
        }
        let (Some(bottom), Some(last)) = (self.view_bottom(), self.last()) else {
            return;
        };
        let target = bottom.saturating_add(n as u64);
        self.anchor = if target >= last { None } else { Some(target) };
    }

    /// Scrolls up by `page` lines (0: the known viewport height).
    pub fn page_up(&mut self, page: usize) {
        self.scroll_up(self.page(page));
    }

    /// Scrolls down by `page` lines (0: the known viewport height).
    pub fn page_down(&mut self, page: usize) {
        self.scroll_down(self.page(page));
    }

    /// Shows the first line held; pauses follow mode.
    pub fn home(&mut self) {
        self.anchor = Some(self.first);
        self.normalize();
    }

    /// Shows the last line and resumes follow mode.
    pub fn end(&mut self) {
        self.anchor = None;
    }

    /// Horizontal scroll (only with wrap off).
    pub fn scroll_left(&mut self, n: usize) {
        self.hscroll = self.hscroll.saturating_sub(n);
    }

    /// Horizontal scroll (only with wrap off), up to where the longest line
    /// on screen ends.
    pub fn scroll_right(&mut self, n: usize) {
        if self.wrap {
            return;
        }
        let limit = match self.viewport {
            Some(vp) if vp.rows > 0 => {
                let widest = self
                    .window(vp, false)
                    .iter()
                    .filter_map(|slot| self.layout(slot.abs, false))
                    .map(|layout| layout.width)
                    .max()
                    .unwrap_or(0);
                widest.saturating_sub(vp.cols)
            }
            _ => MAX_HSCROLL,
        };
        self.hscroll = self.hscroll.saturating_add(n).min(limit.max(self.hscroll));
    }

    /// Whether long lines wrap (default: off, they are cut and scroll sideways).
    pub fn wrap(&self) -> bool {
        self.wrap
    }

    pub fn toggle_wrap(&mut self) {
        self.wrap = !self.wrap;
        self.hscroll = 0;
        self.normalize();
    }

    // ---- search -----------------------------------------------------------

    /// Sets (`Some`) or clears (`None`, or an empty query) the search: plain
    /// text, case-insensitive, on the text with ANSI escapes stripped. Jumps
    /// to the nearest match at or above the bottom of the view (the first
    /// match if there is none above), scrolling to it if it isn't on screen
    /// (which pauses follow mode). Typing more of the same query only
    /// re-checks the previous matches.
    pub fn set_search(&mut self, query: Option<String>) {
        let Some(query) = query else {
            self.search = None;
            return;
        };
        let query: String =
            query.chars().map(|c| if c == '\t' { ' ' } else { c }).filter(|c| !c.is_control()).collect();
        let mut needle = String::new();
        fold_plain(&query, &mut needle);
        if needle.is_empty() {
            self.search = None;
            return;
        }
        let previous = match self.search.take() {
            // Same search (say, a different case while typing): keep its state.
            Some(mut same) if same.needle == needle => {
                same.query = query;
                self.search = Some(same);
                return;
            }
            other => other,
        };
        let mut buf = String::new();
        let matches: VecDeque<u64> = match previous {
            // Typing more of the query only narrows the previous matches.
            Some(previous) if needle.contains(&previous.needle) => previous
                .matches
                .into_iter()
                .filter(|&abs| self.entry(abs).is_some_and(|e| entry_matches(e, &needle, &mut buf)))
                .collect(),
            _ => (self.first..)
                .zip(&self.lines)
                .filter(|(_, e)| entry_matches(e, &needle, &mut buf))
                .map(|(abs, _)| abs)
                .collect(),
        };
        let current = self.view_bottom().and_then(|bottom| {
            let above = matches.partition_point(|&m| m <= bottom);
            above.checked_sub(1).and_then(|i| matches.get(i)).or(matches.front()).copied()
        });
        self.search = Some(Search { query, needle, matches, current });
        if let Some(current) = current {
            self.reveal(current);
        }
    }

    /// Moves to the next matching line (wrapping around) and scrolls it into
    /// view; pauses follow mode.
    pub fn search_next(&mut self) {
        let pivot = self.view_bottom();
        let Some(search) = &mut self.search else { return };
        let next = match search.current.or(pivot) {
            Some(c) => {
                let i = search.matches.partition_point(|&m| m <= c);
                search.matches.get(i).or(search.matches.front())
            }
            None => search.matches.front(),
        };
        let Some(&next) = next else { return };
        search.current = Some(next);
        self.set_follow(false);
        self.reveal(next);
    }

    /// Moves to the previous matching line (wrapping around) and scrolls it
    /// into view; pauses follow mode.
    pub fn search_prev(&mut self) {
        let pivot = self.view_bottom().map(|b| b.saturating_add(1));
        let Some(search) = &mut self.search else { return };
        let prev = match search.current.or(pivot) {
            Some(c) => {
                let i = search.matches.partition_point(|&m| m < c);
                i.checked_sub(1).and_then(|i| search.matches.get(i)).or(search.matches.back())
            }
            None => search.matches.back(),
        };
        let Some(&prev) = prev else { return };
        search.current = Some(prev);
        self.set_follow(false);
        self.reveal(prev);
    }

    /// `(current match, 1-based, or 0 if none; total matches)` while a search
    /// is active.
    pub fn search_status(&self) -> Option<(usize, usize)> {
        let search = self.search.as_ref()?;
        let index =
            search.current.and_then(|c| search.matches.binary_search(&c).ok()).map_or(0, |i| i.saturating_add(1));
        Some((index, search.matches.len()))
    }

    // ---- rendering --------------------------------------------------------

    /// Draws the pane into `area`: a rounded border with `title` and state
    /// badges, a 1-column gutter (stderr mark) and the visible lines.
    pub fn render(&self, area: Rect, buf: &mut Buffer, title: &str, focused: bool) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let inner = Viewport::inner(area);
        let vp = Viewport::of(area);
        let slots = self.window(vp, true);

        let border_style = if focused {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::DarkGray)
        };
        let below = match (self.last(), slots.last()) {
            (Some(last), Some(slot)) => last.saturating_sub(slot.abs),
            _ => 0,
        };
        Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(border_style)
            .title(self.title_line(title, focused, border_style, below))
            .render(area, buf);
        if inner.is_empty() {
            return;
        }

        let text_x = inner.x.saturating_add(1);
        let text_width = inner.width.saturating_sub(1);
        if self.lines.is_empty() {
            let style = Style::new().fg(Color::DarkGray).add_modifier(Modifier::ITALIC);
            buf.set_stringn(text_x, inner.y, PLACEHOLDER, usize::from(text_width), style);
            return;
        }

        let gutter_style = Style::new().fg(Color::Red);
        let mut y = inner.y;
        for slot in &slots {
            let Some(entry) = self.entry(slot.abs) else { continue };
            let built;
            let layout = match &slot.layout {
                Some(layout) => layout,
                None => match self.layout(slot.abs, true) {
                    Some(layout) => {
                        built = layout;
                        &built
                    }
                    None => continue,
                },
            };
            for row in slot.skip..slot.skip.saturating_add(slot.take) {
                if y >= inner.bottom() {
                    return;
                }
                if entry.kind == Kind::Stderr
                    && let Some(cell) = buf.cell_mut((inner.x, y))
                {
                    cell.set_symbol(STDERR_MARK).set_style(gutter_style);
                }
                if self.wrap {
                    if let Some(&(from, to)) = slot.rows.get(row) {
                        draw_glyphs(buf, layout, from, to, text_x, y, text_width, 0);
                    }
                } else {
                    draw_glyphs(buf, layout, 0, layout.glyphs.len(), text_x, y, text_width, self.hscroll);
                }
                y = y.saturating_add(1);
            }
        }
    }

    fn title_line(&self, title: &str, focused: bool, border_style: Style, below: u64) -> Line<'static> {
        let title_style = if focused {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        };
        let title = title.trim();
        let mut spans = Vec::new();
        if !title.is_empty() {
            spans.push(Span::styled(format!(" {title} "), title_style));
        }
        let mut badge = |text: String, style: Style| {
            spans.push(Span::styled("─", border_style));
            spans.push(Span::styled(format!(" {text} "), style));
        };
        if self.follow() {
            badge("follow".into(), Style::new().fg(Color::Green));
        } else if below > 0 {
            badge(format!("paused ↓{below}"), Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD));
        } else {
            badge("paused".into(), Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD));
        }
        if self.wrap {
            badge("wrap".into(), Style::new().fg(Color::Blue));
        } else if self.hscroll > 0 {
            badge(format!("→{}", self.hscroll), Style::new().fg(Color::Blue));
        }
        if let (Some(search), Some((index, total))) = (&self.search, self.search_status()) {
            let style = if total == 0 { Style::new().fg(Color::Red) } else { Style::new().fg(Color::Magenta) };
            badge(format!("/{} {index}/{total}", search.query), style);
        }
        if self.dropped > 0 {
            badge(format!("… {} earlier lines in the log file", self.dropped), Style::new().fg(Color::DarkGray));
        }
        Line::from(spans)
    }

    // ---- internals --------------------------------------------------------

    fn last(&self) -> Option<u64> {
        (self.lines.len() as u64).checked_sub(1).map(|n| self.first.saturating_add(n))
    }

    fn entry(&self, abs: u64) -> Option<&Entry> {
        let index = usize::try_from(abs.checked_sub(self.first)?).ok()?;
        self.lines.get(index)
    }

    fn page(&self, page: usize) -> usize {
        if page > 0 { page } else { self.viewport.map_or(1, |vp| vp.rows.max(1)) }
    }

    fn push_text(&mut self, kind: Kind, text: &str, fold_buf: &mut String) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        for part in text.split('\n') {
            let line = sanitize(part, kind);
            if self.lines.len() >= self.capacity {
                self.evict();
            }
            let abs = self.first.saturating_add(self.lines.len() as u64);
            let entry = Entry { text: line.into_boxed_str(), kind };
            if let Some(search) = &mut self.search
                && entry_matches(&entry, &search.needle, fold_buf)
            {
                search.matches.push_back(abs);
            }
            self.lines.push_back(entry);
        }
    }

    fn evict(&mut self) {
        if self.lines.pop_front().is_none() {
            return;
        }
        let abs = self.first;
        self.first = self.first.saturating_add(1);
        self.dropped = self.dropped.saturating_add(1);
        if let Some(search) = &mut self.search
            && search.matches.front() == Some(&abs)
        {
            search.matches.pop_front();
        }
    }

    /// The last line fully on screen, as the viewport (if known) shows it.
    fn view_bottom(&self) -> Option<u64> {
        let last = self.last()?;
        let anchor = self.anchor.map_or(last, |a| a.clamp(self.first, last));
        match self.viewport {
            Some(vp) if vp.rows > 0 => {
                let slots = self.window(vp, false);
                let full = slots.iter().rev().find(|s| s.skip == 0 && s.take == s.height);
                Some(full.or(slots.last()).map_or(anchor, |s| s.abs))
            }
            _ => Some(anchor),
        }
    }

    /// Re-anchors a paused view on the line actually at its bottom (near the
    /// top of the buffer the view is filled downwards).
    fn normalize(&mut self) {
        if self.anchor.is_some() {
            self.anchor = Some(self.view_bottom().unwrap_or(self.first));
        }
    }

    /// Scrolls so that line `abs` is on screen (about mid-view), unless it is
    /// already entirely visible.
    fn reveal(&mut self, abs: u64) {
        let Some(last) = self.last() else { return };
        let fully_visible = |pane: &Self| match pane.viewport {
            Some(vp) if vp.rows > 0 => {
                pane.window(vp, false).iter().any(|s| s.abs == abs && s.skip == 0 && s.take == s.height)
            }
            _ => pane.view_bottom() == Some(abs),
        };
        if fully_visible(self) {
            return;
        }
        if let Some(vp) = self.viewport {
            self.anchor = Some(abs.saturating_add(vp.rows as u64 / 2).min(last));
            if fully_visible(self) {
                self.normalize();
                return;
            }
        }
        self.anchor = Some(abs);
        self.normalize();
    }
}

/// Draws glyphs `from..to` of `layout` on row `y` from column `x`, at most
/// `width` columns, skipping the first `hscroll` columns of the line.
#[allow(clippy::too_many_arguments)]
fn draw_glyphs(buf: &mut Buffer, layout: &Layout, from: usize, to: usize, x: u16, y: u16, width: u16, hscroll: usize) {
    let width = usize::from(width);
    let mut col = 0usize;
    for glyph in layout.glyphs.get(from..to).into_iter().flatten() {
        if glyph.width == 0 {
            continue;
        }
        let start = col;
        col = col.saturating_add(glyph.width);
        if col <= hscroll {
            continue;
        }
        if start < hscroll {
            // A wide character cut by the left edge: blank its visible part.
            for c in 0..(col - hscroll).min(width) {
                put(buf, x, c, y, " ", glyph.style);
            }
            continue;
        }
        let rel = start - hscroll;
        if rel.saturating_add(glyph.width) > width {
            break;
        }
        put(buf, x, rel, y, layout.symbol(glyph), glyph.style);
        for c in rel + 1..rel + glyph.width {
            if let Some(cell) = cell_at(buf, x, c, y) {
                // Hidden behind the wide character, as Buffer::set_stringn does.
                cell.reset();
            }
        }
    }
}

fn cell_at(buf: &mut Buffer, x: u16, offset: usize, y: u16) -> Option<&mut ratatui::buffer::Cell> {
    let x = x.checked_add(u16::try_from(offset).ok()?)?;
    buf.cell_mut((x, y))
}

fn put(buf: &mut Buffer, x: u16, offset: usize, y: u16, symbol: &str, style: Style) {
    if let Some(cell) = cell_at(buf, x, offset, y) {
        cell.set_symbol(symbol).set_style(style);
    }
}

/// What a terminal would show of one line: the text after the last carriage
/// return (a trailing CR, as in CRLF, is ignored), cut at `MAX_LINE_BYTES`.
fn sanitize(line: &str, kind: Kind) -> String {
    let line = line.trim_end_matches('\r');
    let line = match line.rfind('\r') {
        Some(i) => line.get(i + 1..).unwrap_or(""),
        None => line,
    };
    if line.len() <= MAX_LINE_BYTES {
        return line.to_owned();
    }
    let mut cut = MAX_LINE_BYTES;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = line.get(..cut).unwrap_or("");
    let more = line.len() - head.len();
    match kind {
        // Reset, in case the cut fell inside an escape sequence or a colour.
        Kind::Stdout | Kind::Stderr => format!("{head}\x1b[0m … [{more} more bytes]"),
        Kind::Marker => format!("{head} … [{more} more bytes]"),
    }
}

/// Calls `f` with the runs of text between ANSI escape sequences, skipping
/// the sequences the same way `ansi-to-tui` does (CSI up to its final letter,
/// OSC up to BEL, a lone ESC).
fn for_each_plain_run(s: &str, mut f: impl FnMut(&str)) {
    let bytes = s.as_bytes();
    let (mut i, mut run) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            i += 1;
            continue;
        }
        if let Some(text) = s.get(run..i) {
            f(text);
        }
        i += 1;
        match bytes.get(i) {
            Some(b'[') => {
                i += 1;
                while i < bytes.len() && !bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
            }
            Some(b']') => {
                i += 1;
                while i < bytes.len() && bytes[i] != 0x07 {
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
            }
            _ => {}
        }
        run = i;
    }
    if let Some(text) = s.get(run..) {
        f(text);
    }
}

/// Appends the searchable form of plain text: tabs as one space, control
/// characters dropped, each character lowercased.
fn fold_plain(text: &str, out: &mut String) {
    if text.is_ascii() {
        // Fast path (most log output): byte by byte, same result.
        out.extend(text.bytes().filter_map(|b| match b {
            b'\t' => Some(' '),
            _ if b.is_ascii_control() => None,
            _ => Some(char::from(b.to_ascii_lowercase())),
        }));
        return;
    }
    for c in text.chars() {
        if c == '\t' {
            out.push(' ');
        } else if !c.is_control() {
            out.extend(c.to_lowercase());
        }
    }
}

fn entry_matches(entry: &Entry, needle: &str, buf: &mut String) -> bool {
    buf.clear();
    match entry.kind {
        Kind::Marker => fold_plain(&entry.text, buf),
        Kind::Stdout | Kind::Stderr => for_each_plain_run(&entry.text, |run| fold_plain(run, buf)),
    }
    buf.contains(needle)
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::CellWidth as _;

    use super::*;

    pub(super) fn lines(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|s| (*s).to_owned()).collect()
    }

    fn numbered(from: usize, to: usize) -> Vec<String> {
        (from..to).map(|i| format!("line {i}")).collect()
    }

    pub(super) fn draw(pane: &LogPane, width: u16, height: u16) -> Buffer {
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        pane.render(area, &mut buf, "Output", true);
        buf
    }

    fn draw_titled(pane: &LogPane, title: &str, width: u16, height: u16) -> Buffer {
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        pane.render(area, &mut buf, title, true);
        buf
    }

    /// The buffer's rows as text (cells hidden by wide characters skipped).
    pub(super) fn rows(buf: &Buffer) -> Vec<String> {
        let area = buf.area;
        (area.top()..area.bottom())
            .map(|y| {
                let mut row = String::new();
                let mut skip = 0u16;
                for x in area.left()..area.right() {
                    let cell = &buf[(x, y)];
                    if skip == 0 {
                        row.push_str(cell.symbol());
                    }
                    skip = skip.max(cell.symbol().cell_width()).saturating_sub(1);
                }
                row
            })
            .collect()
    }

    /// The text rows inside the border, right of the gutter, trailing blanks trimmed.
    pub(super) fn body(buf: &Buffer) -> Vec<String> {
        let rows = rows(buf);
        let n = rows.len();
        rows.into_iter()
            .skip(1)
            .take(n.saturating_sub(2))
            .map(|r| r.chars().skip(2).collect::<String>().trim_end_matches(['│', ' ']).to_owned())
            .collect()
    }

    fn viewport_pane(capacity: usize, width: u16, height: u16) -> LogPane {
        let mut pane = LogPane::new(capacity);
        pane.set_viewport(Rect::new(0, 0, width, height));
        pane
    }

    #[test]
    fn ring_keeps_capacity_and_counts_dropped() {
        let mut pane = LogPane::new(5);
        assert!(pane.is_empty());
        pane.push_lines(OutputStream::Stdout, numbered(0, 3));
        assert_eq!((pane.len(), pane.dropped()), (3, 0));
        pane.push_lines(OutputStream::Stderr, numbered(3, 12));
        pane.push_marker("exit code 3");
        assert_eq!((pane.len(), pane.dropped()), (5, 8));
        let held: Vec<&str> = pane.lines.iter().map(|e| &*e.text).collect();
        assert_eq!(held, ["line 8", "line 9", "line 10", "line 11", "exit code 3"]);
        assert_eq!(pane.first, 8);
        assert_eq!(LogPane::new(0).capacity, 1);

        pane.clear();
        assert!(pane.is_empty());
        assert_eq!(pane.dropped(), 0);
        assert!(pane.follow());
        pane.push_lines(OutputStream::Stdout, numbered(0, 1));
        assert_eq!(pane.first, 13, "line numbers keep increasing across clear");
    }

    #[test]
    fn push_sanitises_lines() {
        let mut pane = LogPane::new(100);
        pane.push_lines(
            OutputStream::Stdout,
            lines(&["crlf\r", "10%\r20%\r30%", "two\nlines", "trailing newline\n", ""]),
        );
        let held: Vec<&str> = pane.lines.iter().map(|e| &*e.text).collect();
        assert_eq!(held, ["crlf", "30%", "two", "lines", "trailing newline", ""]);

        let long = "é".repeat(MAX_LINE_BYTES);
        pane.push_lines(OutputStream::Stdout, &[long]);
        let last = pane.lines.back().map(|e| e.text.to_string()).unwrap_or_default();
        assert!(last.len() < MAX_LINE_BYTES + 40);
        assert!(last.ends_with(&format!("[{} more bytes]", MAX_LINE_BYTES)));
    }

    #[test]
    fn follow_sticks_to_bottom_while_lines_arrive() {
        let mut pane = LogPane::new(1000);
        assert!(pane.follow());
        pane.push_lines(OutputStream::Stdout, numbered(0, 50));
        let body1 = body(&draw(&pane, 30, 7));
        assert_eq!(body1, ["line 45", "line 46", "line 47", "line 48", "line 49"]);
        pane.push_lines(OutputStream::Stdout, numbered(50, 53));
        let body2 = body(&draw(&pane, 30, 7));
        assert_eq!(body2.last().map(String::as_str), Some("line 52"));
        assert!(pane.follow());
    }

    #[test]
    fn scroll_up_pauses_and_view_stays_put() {
        let mut pane = LogPane::new(1000);
        pane.push_lines(OutputStream::Stdout, numbered(0, 50));
        pane.scroll_up(10);
        assert!(!pane.follow());
        let before = body(&draw(&pane, 30, 7));
        assert_eq!(before.last().map(String::as_str), Some("line 39"));
        pane.push_lines(OutputStream::Stdout, numbered(50, 80));
        let after = draw(&pane, 30, 7);
        assert_eq!(body(&after), before);
        assert!(rows(&after)[0].contains("paused ↓40"), "{:?}", rows(&after)[0]);

        // When the lines shown are evicted, the view clamps to the oldest line.
        pane.push_lines(OutputStream::Stdout, numbered(80, 1100));
        assert_eq!(body(&draw(&pane, 30, 7))[0], "line 100");
        assert!(!pane.follow());
    }

    #[test]
    fn end_and_scrolling_down_to_the_bottom_resume_follow() {
        let mut pane = viewport_pane(1000, 30, 7);
        pane.push_lines(OutputStream::Stdout, numbered(0, 50));
        pane.scroll_up(3);
        pane.scroll_down(2);
        assert!(!pane.follow());
        pane.scroll_down(1);
        assert!(pane.follow());
        pane.scroll_up(20);
        pane.end();
        assert!(pane.follow());
        pane.push_lines(OutputStream::Stdout, numbered(50, 51));
        assert_eq!(body(&draw(&pane, 30, 7)).last().map(String::as_str), Some("line 50"));

        pane.toggle_follow();
        assert!(!pane.follow());
        pane.push_lines(OutputStream::Stdout, numbered(51, 60));
        assert_eq!(body(&draw(&pane, 30, 7)).last().map(String::as_str), Some("line 50"));
        pane.toggle_follow();
        assert_eq!(body(&draw(&pane, 30, 7)).last().map(String::as_str), Some("line 59"));
    }

    #[test]
    fn page_up_and_down_stay_in_bounds() {
        // 5 text rows.
        let mut pane = viewport_pane(1000, 30, 7);
        pane.push_lines(OutputStream::Stdout, numbered(0, 23));
        pane.page_up(5);
        assert_eq!(body(&draw(&pane, 30, 7))[0], "line 13");
        pane.page_up(0); // 0: the viewport height
        assert_eq!(body(&draw(&pane, 30, 7))[0], "line 8");
        pane.page_up(5);
        pane.page_up(5);
        pane.page_up(5);
        assert_eq!(body(&draw(&pane, 30, 7))[0], "line 0");
        // At the top, the first page down moves at once (no dead presses).
        pane.page_down(5);
        assert_eq!(body(&draw(&pane, 30, 7))[0], "line 5");
        pane.page_down(5);
        pane.page_down(5);
        assert!(!pane.follow());
        pane.page_down(5);
        assert!(pane.follow());
        assert_eq!(body(&draw(&pane, 30, 7))[4], "line 22");

        pane.home();
        assert!(!pane.follow());
        assert_eq!(body(&draw(&pane, 30, 7))[0], "line 0");
        pane.scroll_down(1);
        assert_eq!(body(&draw(&pane, 30, 7))[0], "line 1");

        // Fewer lines than rows: scrolling changes nothing visible.
        let mut short = viewport_pane(1000, 30, 7);
        short.push_lines(OutputStream::Stdout, numbered(0, 3));
        short.page_up(5);
        assert_eq!(body(&draw(&short, 30, 7))[..3], ["line 0", "line 1", "line 2"]);
        short.page_down(5);
        assert!(short.follow());
    }

    #[test]
    fn without_viewport_rendering_still_fills_from_the_top() {
        let mut pane = LogPane::new(1000);
        pane.push_lines(OutputStream::Stdout, numbered(0, 23));
        pane.home();
        assert_eq!(body(&draw(&pane, 30, 7))[..2], ["line 0", "line 1"]);
        pane.page_down(3);
        assert!(!pane.follow());
        pane.page_down(100);
        assert!(pane.follow());
    }

    #[test]
    fn search_is_case_insensitive_and_ignores_ansi() {
        let mut pane = LogPane::new(100);
        pane.push_lines(
            OutputStream::Stdout,
            lines(&["\x1b[31mERR\x1b[0mor: disk full", "all good", "no Errors here", "\x1b[1;31mbold red\x1b[0m"]),
        );
        pane.push_marker("── attempt 2 ── error again");
        pane.set_search(Some("error".into()));
        assert_eq!(pane.search.as_ref().map(|s| Vec::from(s.matches.clone())), Some(vec![0, 2, 4]));
        assert_eq!(pane.search_status(), Some((3, 3)), "nearest match at or above the bottom");

        pane.set_search(Some("31m".into()));
        assert_eq!(pane.search_status(), Some((0, 0)), "escape sequences are not text");
        pane.set_search(Some("BOLD RED".into()));
        assert_eq!(pane.search_status(), Some((1, 1)));
        pane.set_search(None);
        assert_eq!(pane.search_status(), None);
        pane.set_search(Some(String::new()));
        assert_eq!(pane.search_status(), None);
    }

    #[test]
    fn search_next_prev_wrap_around_and_count() {
        let mut pane = viewport_pane(1000, 30, 7);
        let mut input = numbered(0, 100);
        for i in [10, 40, 70] {
            input[i] = format!("line {i} FAILED");
        }
        pane.push_lines(OutputStream::Stdout, &input);
        pane.set_search(Some("failed".into()));
        // Following: the bottom is line 99, nearest match above is line 70,
        // not on screen, so the view moves and follow pauses.
        assert_eq!(pane.search_status(), Some((3, 3)));
        assert!(!pane.follow());
        assert!(body(&draw(&pane, 30, 7)).contains(&"line 70 FAILED".to_owned()));

        pane.search_next();
        assert_eq!(pane.search_status(), Some((1, 3)), "wraps to the first");
        assert!(body(&draw(&pane, 30, 7)).contains(&"line 10 FAILED".to_owned()));
        pane.search_next();
        assert_eq!(pane.search_status(), Some((2, 3)));
        pane.search_prev();
        pane.search_prev();
        assert_eq!(pane.search_status(), Some((3, 3)), "wraps to the last");
        assert!(body(&draw(&pane, 30, 7)).contains(&"line 70 FAILED".to_owned()));

        // A match already on screen doesn't move the view.
        pane.end();
        pane.set_search(Some("line 97".into()));
        assert!(pane.follow());
        pane.search_next();
        assert!(!pane.follow(), "n pauses follow");
        assert_eq!(body(&draw(&pane, 30, 7)).last().map(String::as_str), Some("line 99"));
    }

    #[test]
    fn search_matches_follow_arrivals_and_evictions() {
        let mut pane = LogPane::new(10);
        pane.push_lines(OutputStream::Stdout, lines(&["warn a", "ok", "WARN b"]));
        pane.set_search(Some("warn".into()));
        assert_eq!(pane.search_status(), Some((2, 2)));
        pane.push_lines(OutputStream::Stderr, lines(&["\x1b[33mwarn\x1b[0m c", "ok"]));
        assert_eq!(pane.search_status(), Some((2, 3)));
        // Evict "warn a" and "ok".
        pane.push_lines(OutputStream::Stdout, numbered(0, 7));
        assert_eq!(pane.search_status(), Some((1, 2)));
        // Evict the current match too: it counts as before the first left.
        pane.push_lines(OutputStream::Stdout, numbered(7, 8));
        assert_eq!(pane.search_status(), Some((0, 1)));
        pane.search_next();
        assert_eq!(pane.search_status(), Some((1, 1)));
        pane.push_lines(OutputStream::Stdout, numbered(0, 10));
        assert_eq!(pane.search_status(), Some((0, 0)));
        pane.search_next();
        pane.search_prev();
        assert_eq!(pane.search_status(), Some((0, 0)));

        // Narrowing the query reuses the matches; clear keeps the query.
        pane.push_lines(OutputStream::Stdout, lines(&["line 1", "line 12"]));
        pane.set_search(Some("line 1".into()));
        assert_eq!(pane.search_status().map(|s| s.1), Some(2));
        pane.set_search(Some("line 12".into()));
        assert_eq!(pane.search_status(), Some((1, 1)));
        pane.clear();
        assert_eq!(pane.search_status(), Some((0, 0)));
        pane.push_lines(OutputStream::Stdout, lines(&["line 12"]));
        assert_eq!(pane.search_status(), Some((0, 1)));
    }

    #[test]
    fn horizontal_scroll() {
        let mut pane = viewport_pane(100, 12, 5); // 9 text columns
        pane.push_lines(OutputStream::Stdout, lines(&["0123456789abcdef", "short"]));
        pane.scroll_right(4);
        let b = body(&draw(&pane, 12, 5));
        assert_eq!(b, ["456789abc", "t", ""]);
        assert!(rows(&draw(&pane, 40, 5))[0].contains("→4"));
        pane.scroll_right(100);
        assert_eq!(pane.hscroll, 7, "stops where the longest visible line ends");
        pane.scroll_left(3);
        pane.scroll_left(100);
        assert_eq!(pane.hscroll, 0);
        pane.toggle_wrap();
        pane.scroll_right(3);
        assert_eq!(pane.hscroll, 0, "no horizontal scroll while wrapping");

        // A wide character cut by the left edge is blanked, not shifted.
        let mut wide = viewport_pane(100, 8, 5); // 5 text columns
        wide.push_lines(OutputStream::Stdout, lines(&["a日本語b"]));
        wide.scroll_right(2);
        assert_eq!(body(&draw(&wide, 8, 5))[0], " 本語");
    }

    #[test]
    fn render_never_panics_on_any_size_or_content() {
        let mut pane = LogPane::new(50);
        pane.push_lines(
            OutputStream::Stderr,
            lines(&[
                "\x1b[38;5;300m\x1b[9999;2;1m\x1b]8;;http://x\x1b\\link\x1b[",
                "\x07\x08\x1b\x1b[\u{200d}\u{301}日\t本\x7f\u{85}",
                "😀\u{fe0f}👩‍👩‍👧 \x1b[1;4;38;2;1;2;3mrgb",
                "\x1b]0;title",
                "\x1b(B\x1b[m\x1b[38;5m",
            ]),
        );
        pane.push_marker("\x1b[31mmarker with escape\t!\x00");
        for wrap in [false, true] {
            assert_eq!(pane.wrap(), wrap);
            for search in [None, Some("日".to_owned()), Some("x".to_owned())] {
                pane.set_search(search);
                for h in 0..=6 {
                    for w in 0..=12 {
                        draw(&pane, w, h);
                        pane.set_viewport(Rect::new(0, 0, w, h));
                        pane.scroll_right(3);
                        pane.scroll_up(1);
                        pane.search_next();
                        draw(&pane, w, h);
                        pane.end();
                    }
                }
            }
            pane.toggle_wrap();
        }
        // An area outside the buffer, and the specified small sizes.
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 3));
        pane.render(Rect::new(5, 2, 40, 40), &mut buf, "Output", false);
        pane.render(Rect::new(50, 50, 4, 4), &mut buf, "Output", false);
        for (w, h) in [(0, 0), (1, 1), (10, 3)] {
            draw(&pane, w, h);
            draw(&LogPane::new(10), w, h);
        }
    }

    #[test]
    fn render_shows_text_gutter_highlight_and_badges() {
        let mut pane = viewport_pane(100, 60, 8);
        pane.push_lines(OutputStream::Stdout, lines(&["starting restore", "\x1b[32mrestored 12 tables\x1b[0m"]));
        pane.push_lines(OutputStream::Stderr, lines(&["warning: Index rebuild slow"]));
        pane.push_marker("exit code 0");
        pane.set_search(Some("index".into()));
        let buf = draw(&pane, 60, 8);
        let title = rows(&draw_titled(&pane, " Output ", 60, 8))[0].clone();
        assert!(title.starts_with("╭ Output ─ follow ─ /index 1/1 ─"), "{title:?}");
        assert_eq!(
            body(&buf)[..4],
            ["starting restore", "restored 12 tables", "warning: Index rebuild slow", "exit code 0"]
        );
        // Gutter: blank for stdout, red mark for stderr.
        assert_eq!(buf[(1, 2)].symbol(), " ");
        assert_eq!(buf[(1, 3)].symbol(), STDERR_MARK);
        assert_eq!(buf[(1, 3)].fg, Color::Red);
        // ANSI colour kept.
        assert_eq!(buf[(2, 2)].fg, Color::Green);
        // "Index" (columns 11..16 of row 3) highlighted as the current match.
        for x in 11..16 {
            assert_eq!(buf[(x, 3)].bg, Color::LightRed, "x={x}");
        }
        assert_eq!(buf[(10, 3)].bg, Color::Reset);
        assert_eq!(buf[(16, 3)].bg, Color::Reset);
        // Marker dim and italic.
        assert!(buf[(2, 4)].modifier.contains(Modifier::DIM | Modifier::ITALIC));
        // Focused border.
        assert_eq!(buf[(0, 1)].fg, Color::Cyan);

        // Other matches: the weaker highlight; dropped lines and paused in the title.
        let mut pane = viewport_pane(3, 70, 8);
        pane.push_lines(OutputStream::Stdout, lines(&["a index", "b index", "c index", "d index"]));
        pane.set_search(Some("INDEX".into()));
        pane.search_prev();
        let buf = draw(&pane, 70, 8);
        let top = &rows(&buf)[0];
        assert!(top.contains("paused ─ /INDEX 2/3 ─ … 1 earlier lines in the log file"), "{top:?}");
        assert_eq!(buf[(4, 1)].bg, Color::Yellow);
        assert_eq!(buf[(4, 2)].bg, Color::LightRed);

        assert!(rows(&draw_titled(&pane, "", 70, 8))[0].starts_with("╭─ paused ─"));

        let empty = draw(&LogPane::new(10), 40, 4);
        assert_eq!(body(&empty)[0], PLACEHOLDER);
        let unfocused = {
            let area = Rect::new(0, 0, 20, 3);
            let mut buf = Buffer::empty(area);
            LogPane::new(10).render(area, &mut buf, "Output", false);
            buf
        };
        assert_eq!(unfocused[(0, 1)].fg, Color::DarkGray);
    }

    /// Random lines and operations (a fixed-seed xorshift, no dependency):
    /// nothing panics, the ring and the match list stay exact, and the
    /// highlighting (on `ansi-to-tui`'s parse) agrees with the line-level
    /// matching (on our own escape stripping) on every line.
    #[test]
    fn random_input_keeps_invariants() {
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            }
            fn below(&mut self, n: usize) -> usize {
                (self.next() % n as u64) as usize
            }
        }
        const PIECES: &[&str] = &[
            "x",
            "X",
            "ab",
            " ",
            "\t",
            "\x1b",
            "\x1b[",
            "[",
            "]",
            "\x1b]",
            "31",
            ";",
            "m",
            "K",
            "\x07",
            "\r",
            "\n",
            "é",
            "É",
            "日",
            "\u{301}",
            "\u{200b}",
            "\u{85}",
            "\x00",
            "\x1b[1;31m",
            "\x1b[0m",
            "\x1b[38;5;300m",
            "İ",
            "ß",
        ];
        const NEEDLES: &[&str] = &["x", "ab", "x x", "é", "日", "31", "m", "i", "ß", "[", " ", "xé"];
        let entries = |text: &str| text.strip_suffix('\n').unwrap_or(text).split('\n').count() as u64;
        let mut matched = 0usize;
        for seed in [0x9E37_79B9_7F4A_7C15, 1, 0xDEAD_BEEF, 42_424_242] {
            let mut rng = Rng(seed);
            let mut pane = LogPane::new(40);
            let mut pushed = 0u64;
            for round in 0..400 {
                let batch: Vec<String> = (0..rng.below(6))
                    .map(|_| (0..rng.below(12)).map(|_| PIECES[rng.below(PIECES.len())]).collect())
                    .collect();
                match rng.below(4) {
                    0 => {
                        let text = batch.concat();
                        pushed += entries(&text);
                        pane.push_marker(&text);
                    }
                    n => {
                        pushed += batch.iter().map(|l| entries(l)).sum::<u64>();
                        let stream = if n == 1 { OutputStream::Stderr } else { OutputStream::Stdout };
                        pane.push_lines(stream, &batch);
                    }
                }
                match rng.below(12) {
                    0 => pane.set_search(Some(NEEDLES[rng.below(NEEDLES.len())].to_uppercase())),
                    1 => pane.set_search(Some(NEEDLES[rng.below(NEEDLES.len())].to_owned())),
                    2 => pane.search_next(),
                    3 => pane.search_prev(),
                    4 => pane.scroll_up(rng.below(30)),
                    5 => pane.scroll_down(rng.below(30)),
                    6 => pane.toggle_wrap(),
                    7 => pane.scroll_right(rng.below(10)),
                    8 => pane.set_viewport(Rect::new(0, 0, rng.below(30) as u16, rng.below(12) as u16)),
                    9 if round % 50 == 0 => pane.clear(),
                    _ => pane.home(),
                }
                draw(&pane, rng.below(40) as u16, rng.below(14) as u16);
                assert_eq!(pane.first + pane.len() as u64, pushed, "absolute line numbers");

                assert!(pane.len() <= 40);
                let mut buf = String::new();
                if let Some(search) = &pane.search {
                    let expected: Vec<u64> = (pane.first..)
                        .zip(&pane.lines)
                        .filter(|(_, e)| entry_matches(e, &search.needle, &mut buf))
                        .map(|(abs, _)| abs)
                        .collect();
                    assert_eq!(Vec::from(search.matches.clone()), expected, "seed {seed} round {round}");
                    matched += expected.len();
                    for (abs, entry) in (pane.first..).zip(&pane.lines) {
                        let layout = pane.layout(abs, true).map(|l| l.glyphs).unwrap_or_default();
                        let plain = pane.layout(abs, false).map(|l| l.glyphs).unwrap_or_default();
                        let highlighted = layout.iter().zip(&plain).any(|(a, b)| a.style != b.style);
                        assert_eq!(
                            highlighted,
                            expected.contains(&abs),
                            "seed {seed} round {round}: {:?} / {:?}",
                            entry.text,
                            search.needle
                        );
                    }
                }
            }
        }
        assert!(matched > 400, "the test exercises matching lines ({matched})");
    }

    #[test]
    fn snapshot_following_ansi_output() {
        let mut pane = LogPane::new(DEFAULT_CAPACITY);
        pane.push_marker("── attempt 1 ──");
        pane.push_lines(
            OutputStream::Stdout,
            lines(&[
                "$ pg_restore --dbname=orders /backups/orders.dump",
                "\x1b[32m✔\x1b[0m restored table \x1b[1mcustomers\x1b[0m (12,408 rows)",
                "\x1b[32m✔\x1b[0m restored table \x1b[1morders\x1b[0m (1,204,551 rows)",
                "\x1b[33m⚠\x1b[0m index \x1b[36morders_created_at_idx\x1b[0m rebuilt in 41s",
            ]),
        );
        pane.push_lines(OutputStream::Stderr, lines(&["\x1b[31merror:\x1b[0m relation \"audit_log\" does not exist"]));
        pane.push_lines(OutputStream::Stdout, lines(&["progress\t\x1b[7m 87% \x1b[0m\tETA 0:12"]));
        pane.push_marker("exit code 1");
        insta::assert_snapshot!("following_ansi_output", format!("{:?}", draw(&pane, 80, 12)));
    }

    #[test]
    fn snapshot_scrolled_with_search() {
        let mut pane = viewport_pane(DEFAULT_CAPACITY, 80, 12);
        let input: Vec<String> = (0..200)
            .map(|i| match i % 37 {
                0 => format!("{i:04} \x1b[31mERROR\x1b[0m replica lag {i}s exceeds threshold"),
                5 | 9 => format!("{i:04} checked replica \x1b[1mdb-{i}\x1b[0m: error budget ok"),
                _ => format!("{i:04} checked replica db-{i}: ok"),
            })
            .collect();
        pane.push_lines(OutputStream::Stdout, &input);
        pane.set_search(Some("error".into()));
        for _ in 0..4 {
            pane.search_prev();
        }
        assert_eq!(pane.search_status(), Some((14, 18)));
        insta::assert_snapshot!("scrolled_with_search", format!("{:?}", draw(&pane, 80, 12)));
    }
}
