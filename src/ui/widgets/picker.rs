//! A filterable, sortable table for choosing one row.
//!
//! One widget serves every list in the TUI: a variable's `choices`, S3 backups (key, size, last modified,
//! age, version), image tags (tag, deployments, revision, age, current) and pods. Callers describe the
//! columns and rows once; [`Picker`] keeps the state (filter text, sort, selection, scroll) and
//! [`Picker::render`] draws it from `&self` without changing anything, so a panel can render the same
//! picker as often as it likes.
//!
//! Keys ([`Picker::handle_key`]):
//!
//! | key | effect |
//! |-----|--------|
//! | printable characters, Backspace, Ctrl-W, Ctrl-U, ←/→, Home/End | edit the filter (case-insensitive substring of any cell) |
//! | ↑/↓, Ctrl-P/Ctrl-N | move the selection over the rows that match |
//! | PgUp/PgDn, Ctrl-Home/Ctrl-End | move by a page, to the first/last row |
//! | Tab | sort by the next column (after the last one: back to the given order) |
//! | Shift-Tab | reverse the sort direction |
//! | Enter | [`PickerOutcome::Accepted`] with the selected row's value (nothing happens when no row matches) |
//! | Esc | [`PickerOutcome::Cancelled`] |
//!
//! Letters always go to the filter, which is why sorting lives on Tab and Shift-Tab.

use std::cmp::Ordering;

use super::fit::{char_width, clean, fit};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Cell, HighlightSpacing, Row as TableRow, StatefulWidget, Table, TableState, Widget,
};
use tui_input::Input;
use tui_input::backend::crossterm::to_input_request;

/// Drawn in front of the selected row.
const SELECT_SYMBOL: &str = "▶ ";
/// Display width of [`SELECT_SYMBOL`]; the table always reserves it so columns never shift.
const SELECT_WIDTH: u16 = 2;
/// Drawn in the narrow first column of [`Row::marked`] rows.
const MARK: &str = "●";
const COLUMN_SPACING: u16 = 1;
/// Rows moved by PgUp/PgDn until the owner calls [`Picker::set_page_size`].
const DEFAULT_PAGE_SIZE: usize = 10;
const PROMPT: &str = "/ ";
const PROMPT_WIDTH: u16 = 2;
const PLACEHOLDER: &str = "filter…";
/// Key hints, longest first; the longest that fits is shown.
const HINTS: [&str; 7] = [
    "type to filter · ↑↓ move · Tab sort · ⇧Tab reverse · Enter choose · Esc cancel",
    "type to filter · ↑↓ move · Tab sort · Enter choose · Esc cancel",
    "type to filter · ↑↓ · Tab sort · Enter choose · Esc cancel",
    "↑↓ move · Tab/⇧Tab sort · Enter choose · Esc cancel",
    "↑↓ · Tab sort · Enter choose · Esc cancel",
    "↑↓ · Enter choose · Esc cancel",
    "Enter · Esc",
];

/// The selected row when the picker has focus.
const HIGHLIGHT_FOCUSED: Style = Style::new().add_modifier(Modifier::REVERSED.union(Modifier::BOLD));
/// The selected row when another panel has focus: still findable, but quieter.
const HIGHLIGHT_UNFOCUSED: Style = Style::new().add_modifier(Modifier::BOLD);
const HEADER_STYLE: Style = Style::new().add_modifier(Modifier::BOLD);
const SORTED_HEADER_STYLE: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
const DIM: Style = Style::new().fg(Color::DarkGray);
const MARK_STYLE: Style = Style::new().fg(Color::Green);
const CURSOR_STYLE: Style = Style::new().add_modifier(Modifier::REVERSED);

/// One column of a [`Picker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub title: String,
    /// Passed to the table as is (`Length`, `Min`, `Fill`, …).
    pub width: Constraint,
    /// Right-align the header and the cells (sizes, counts, ages).
    pub align_right: bool,
}

impl Column {
    /// A left-aligned column.
    pub fn new(title: impl Into<String>, width: Constraint) -> Self {
        Self { title: title.into(), width, align_right: false }
    }

    /// The same column, right-aligned.
    #[must_use]
    pub fn right(mut self) -> Self {
        self.align_right = true;
        self
    }
}

/// One row of a [`Picker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Displayed text, one per column. Missing cells are blank; extra cells are ignored.
    pub cells: Vec<String>,
    /// How each column sorts. A column without an entry sorts by its cell text.
    pub sort_keys: Vec<SortKey>,
    /// What [`PickerOutcome::Accepted`] carries when this row is chosen.
    pub value: String,
    /// Drawn with a `●` (e.g. the current image tag, the newest backup).
    pub marked: bool,
}

impl Row {
    /// A row whose columns sort by their text.
    pub fn new(value: impl Into<String>, cells: Vec<String>) -> Self {
        Self { cells, sort_keys: Vec::new(), value: value.into(), marked: false }
    }

    /// Sets how each column sorts (by position).
    #[must_use]
    pub fn with_sort_keys(mut self, sort_keys: Vec<SortKey>) -> Self {
        self.sort_keys = sort_keys;
        self
    }

    /// Sets [`Row::marked`].
    #[must_use]
    pub fn with_marked(mut self, marked: bool) -> Self {
        self.marked = marked;
        self
    }
}

/// How one cell sorts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    /// Compared case-insensitively.
    Text(String),
    /// Compared numerically (bytes, seconds, counts); numbers sort before text.
    Number(i128),
    /// No value: sorts last in either direction.
    None,
}

/// What a key press did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickerOutcome {
    /// Enter on a row: its [`Row::value`].
    Accepted(String),
    /// Esc.
    Cancelled,
    /// Anything else, including Enter when no row matches the filter.
    Continue,
}

/// A filterable, sortable table; see the [module docs](self) for the keys.
#[derive(Debug, Clone)]
pub struct Picker {
    title: String,
    columns: Vec<Column>,
    rows: Vec<Row>,
    /// Per row: its cells, lowercased and joined by `\u{1f}`, so a filter matches within one cell.
    haystacks: Vec<String>,
    /// Whether any row is marked, i.e. whether the narrow mark column is drawn.
    has_marks: bool,
    filter: Input,
    /// Every row index, in display order (given order or sorted).
    order: Vec<usize>,
    /// The indices of `order` that match the filter: what the table shows.
    view: Vec<usize>,
    /// Position in `view`; `None` only when `view` is empty.
    selected: Option<usize>,
    /// First position in `view` shown, for a list of `page_size` rows; render adjusts it to the real height.
    offset: usize,
    sort_column: Option<usize>,
    descending: bool,
    page_size: usize,
}

impl Picker {
    /// A picker showing `rows` in the given order, with the first row selected.
    pub fn new(title: impl Into<String>, columns: Vec<Column>, rows: Vec<Row>) -> Self {
        let haystacks = rows.iter().map(|row| row.cells.join("\u{1f}").to_lowercase()).collect();
        let has_marks = rows.iter().any(|row| row.marked);
        let order: Vec<usize> = (0..rows.len()).collect();
        let mut picker = Self {
            title: title.into(),
            columns,
            rows,
            haystacks,
            has_marks,
            filter: Input::default(),
            view: order.clone(),
            order,
            selected: None,
            offset: 0,
            sort_column: None,
            descending: false,
            page_size: DEFAULT_PAGE_SIZE,
        };
        picker.select(0);
        picker
    }

    /// A one-column picker over plain values (a variable's `choices`).
    pub fn from_choices<S: Into<String>>(title: impl Into<String>, choices: impl IntoIterator<Item = S>) -> Self {
        let rows = choices
            .into_iter()
            .map(|choice| {
                let choice = choice.into();
                Row::new(choice.clone(), vec![choice])
            })
            .collect();
        Self::new(title, vec![Column::new("value", Constraint::Fill(1))], rows)
    }

    /// Selects the first row whose value is `value` (the default); without one, the first row.
    #[must_use]
    pub fn with_default(mut self, value: &str) -> Self {
        let position = self.view.iter().position(|&index| self.rows.get(index).is_some_and(|row| row.value == value));
        self.select(position.unwrap_or(0));
        self
    }

    /// Rows moved by PgUp/PgDn, and the list height assumed when scrolling; pass
    /// [`Picker::list_height`] of the area the picker is drawn in. Rendering keeps the selection
    /// visible whatever this is.
    pub fn set_page_size(&mut self, rows: usize) {
        self.page_size = rows.max(1);
        self.scroll_to_selection();
    }

    /// Handles one key; see the [module docs](self).
    pub fn handle_key(&mut self, key: KeyEvent) -> PickerOutcome {
        if !matches!(key.kind, KeyEventKind::Press | KeyEventKind::Repeat) {
            return PickerOutcome::Continue;
        }
        let ctrl = key.modifiers == KeyModifiers::CONTROL;
        let page = isize::try_from(self.page_size).unwrap_or(isize::MAX);
        match key.code {
            KeyCode::Esc => return PickerOutcome::Cancelled,
            KeyCode::Enter => {
                return match self.selected_value() {
                    Some(value) => PickerOutcome::Accepted(value.to_owned()),
                    None => PickerOutcome::Continue,
                };
            }
            KeyCode::Up => self.move_by(-1),
            KeyCode::Down => self.move_by(1),
            KeyCode::Char('p') if ctrl => self.move_by(-1),
            KeyCode::Char('n') if ctrl => self.move_by(1),
            KeyCode::PageUp => self.move_by(-page),
            KeyCode::PageDown => self.move_by(page),
            KeyCode::Home if ctrl => self.select(0),
            KeyCode::End if ctrl => self.select(usize::MAX),
            KeyCode::BackTab => self.reverse_sort(),
            KeyCode::Tab if key.modifiers.contains(KeyModifiers::SHIFT) => self.reverse_sort(),
            KeyCode::Tab => self.next_sort_column(),
            _ => {
                let changed = to_input_request(&Event::Key(key)).and_then(|request| self.filter.handle(request));
                if changed.is_some_and(|changed| changed.value) {
                    self.refilter();
                }
            }
        }
        PickerOutcome::Continue
    }

    /// The selected row's value; `None` when no row matches the filter.
    pub fn selected_value(&self) -> Option<&str> {
        self.selected_row().map(|row| row.value.as_str())
    }

    /// The selected row; `None` when no row matches the filter.
    pub fn selected_row(&self) -> Option<&Row> {
        self.selected.and_then(|position| self.view.get(position)).and_then(|&index| self.rows.get(index))
    }

    /// The filter as typed.
    pub fn filter_text(&self) -> &str {
        self.filter.value()
    }

    /// How many rows match the filter.
    pub fn visible_rows(&self) -> usize {
        self.view.len()
    }

    /// How many rows there are, filtered or not.
    pub fn total_rows(&self) -> usize {
        self.rows.len()
    }

    /// The sorted column (`None`: the given order) and whether the order is reversed.
    pub fn sort_state(&self) -> (Option<usize>, bool) {
        (self.sort_column, self.descending)
    }

    /// Sorts by `column`, keeping the selected row selected. Ties keep the given order. A column
    /// that does not exist restores the given order (reversed when `descending`).
    pub fn sort_by(&mut self, column: usize, descending: bool) {
        self.sort_column = (column < self.columns.len()).then_some(column);
        self.descending = descending;
        self.apply_sort();
    }

    /// Height of the list of rows when drawn in `area` (what [`Picker::set_page_size`] wants).
    pub fn list_height(area: Rect) -> u16 {
        Parts::of(area).body.height
    }

    /// Where the terminal cursor belongs (in the filter line) when drawn in `area`, for
    /// `Frame::set_cursor_position`; `None` when the filter line is not visible.
    pub fn cursor_position(&self, area: Rect) -> Option<Position> {
        let filter = Parts::of(area).filter;
        let text = text_area(filter);
        let column = if self.filter.value().is_empty() { 0 } else { self.filter_view(text.width).1 };
        (column < text.width).then(|| Position::new(text.x.saturating_add(column), text.y))
    }

    /// Draws the picker into `area` (clipped to `buf`). `focused` brightens the border, the
    /// highlight and shows the filter cursor.
    pub fn render(&self, area: Rect, buf: &mut Buffer, focused: bool) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let border_style = if focused { Style::new().fg(Color::Cyan) } else { DIM };
        let count = format!(" {} of {} ", self.view.len(), self.rows.len());
        Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(border_style)
            .title(Line::from(format!(" {} ", clean(&self.title))).style(HEADER_STYLE))
            .title_bottom(Line::from(count).right_aligned())
            .render(area, buf);

        let parts = Parts::of(area);
        self.render_filter(parts.filter, buf, focused);
        self.render_table(&parts, buf, focused);
        if !parts.hint.is_empty()
            && let Some(hint) = HINTS.iter().find(|hint| Span::raw(**hint).width() <= usize::from(parts.hint.width))
        {
            buf.set_stringn(parts.hint.x, parts.hint.y, hint, usize::from(parts.hint.width), DIM);
        }
    }

    fn select(&mut self, position: usize) {
        self.selected = self.view.len().checked_sub(1).map(|last| position.min(last));
        self.scroll_to_selection();
    }

    fn move_by(&mut self, delta: isize) {
        if let Some(current) = self.selected {
            self.select(current.saturating_add_signed(delta));
        }
    }

    /// Moves `offset` the least so the selection is within a list of `page_size` rows.
    fn scroll_to_selection(&mut self) {
        let Some(selected) = self.selected else {
            self.offset = 0;
            return;
        };
        if selected < self.offset {
            self.offset = selected;
        } else if selected >= self.offset.saturating_add(self.page_size) {
            self.offset = selected + 1 - self.page_size;
        }
    }

    fn next_sort_column(&mut self) {
        let next = self.sort_column.map_or(0, |column| column.saturating_add(1));
        self.sort_column = (next < self.columns.len()).then_some(next);
        self.apply_sort();
    }

    fn reverse_sort(&mut self) {
        self.descending = !self.descending;
        self.apply_sort();
    }

    fn apply_sort(&mut self) {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        match self.sort_column {
            None => {
                if self.descending {
                    order.reverse();
                }
            }
            Some(column) => {
                let keys: Vec<Key> = self.rows.iter().map(|row| Key::of(row, column)).collect();
                let descending = self.descending;
                // Stable: ties keep the given order.
                order.sort_by(|&a, &b| match (keys.get(a), keys.get(b)) {
                    (Some(a), Some(b)) => a.compare(b, descending),
                    _ => Ordering::Equal,
                });
            }
        }
        self.order = order;
        self.refilter();
    }

    /// Recomputes `view` from `order` and the filter, keeping the selected row if it still matches.
    fn refilter(&mut self) {
        let previous = self.selected.and_then(|position| self.view.get(position)).copied();
        let needle = self.filter.value().to_lowercase();
        let haystacks = &self.haystacks;
        self.view = self
            .order
            .iter()
            .copied()
            .filter(|&index| needle.is_empty() || haystacks.get(index).is_some_and(|hay| hay.contains(&needle)))
            .collect();
        let position = previous.and_then(|row| self.view.iter().position(|&index| index == row));
        self.select(position.unwrap_or(0));
    }

    /// The rows of `view` shown in a list `height` rows tall: `offset` clamped so the list is full
    /// when it can be and the selection is inside.
    fn window(&self, height: usize) -> (usize, usize) {
        let len = self.view.len();
        if height == 0 || len == 0 {
            return (0, 0);
        }
        let mut start = self.offset.min(len.saturating_sub(height));
        if let Some(selected) = self.selected {
            if selected < start {
                start = selected;
            } else if selected >= start + height {
                start = selected + 1 - height;
            }
        }
        (start, start.saturating_add(height).min(len))
    }

    /// The visible part of the filter for a text area `width` columns wide, and the cursor's column in it.
    fn filter_view(&self, width: u16) -> (String, u16) {
        let width = usize::from(width);
        // One column stays free on the right so the cursor can sit after the last character.
        let scroll = self.filter.visual_scroll(width.saturating_sub(1));
        let cursor = self.filter.visual_cursor().saturating_sub(scroll);
        let text = slice_columns(&clean(self.filter.value()), scroll, width);
        (text, u16::try_from(cursor).unwrap_or(u16::MAX))
    }

    fn render_filter(&self, area: Rect, buf: &mut Buffer, focused: bool) {
        if area.is_empty() {
            return;
        }
        let prompt_style = if focused { Style::new().fg(Color::Cyan) } else { DIM };
        buf.set_stringn(area.x, area.y, PROMPT, usize::from(area.width), prompt_style);
        let text = text_area(area);
        if text.is_empty() {
            return;
        }
        let cursor = if self.filter.value().is_empty() {
            buf.set_stringn(text.x, text.y, PLACEHOLDER, usize::from(text.width), DIM);
            0
        } else {
            let (visible, cursor) = self.filter_view(text.width);
            buf.set_stringn(text.x, text.y, visible, usize::from(text.width), Style::new());
            cursor
        };
        if focused
            && cursor < text.width
            && let Some(cell) = buf.cell_mut(Position::new(text.x.saturating_add(cursor), text.y))
        {
            cell.set_style(CURSOR_STYLE);
        }
    }

    fn render_table(&self, parts: &Parts, buf: &mut Buffer, focused: bool) {
        let area = parts.table;
        if area.is_empty() {
            return;
        }
        let mut widths = Vec::with_capacity(self.columns.len() + 1);
        if self.has_marks {
            widths.push(Constraint::Length(1));
        }
        // `Table` panics on percentages over 100.
        widths.extend(self.columns.iter().map(|column| match column.width {
            Constraint::Percentage(percent) => Constraint::Percentage(percent.min(100)),
            width => width,
        }));
        let column_widths = column_widths(area.width, &widths);
        // The width each of our columns gets, after the mark column.
        let widths_of_columns = column_widths.get(usize::from(self.has_marks)..).unwrap_or_default();

        let (start, end) = self.window(usize::from(parts.body.height));
        let rows: Vec<TableRow> = self
            .view
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .filter_map(|&index| self.rows.get(index))
            .map(|row| self.table_row(row, widths_of_columns))
            .collect();
        let mut state = TableState::default().with_selected(self.selected.and_then(|s| s.checked_sub(start)));
        let mut table = Table::new(rows, widths)
            .column_spacing(COLUMN_SPACING)
            .flex(Flex::Start)
            .highlight_symbol(SELECT_SYMBOL)
            .highlight_spacing(HighlightSpacing::Always)
            .row_highlight_style(if focused { HIGHLIGHT_FOCUSED } else { HIGHLIGHT_UNFOCUSED });
        if parts.header {
            table = table.header(self.header_row(widths_of_columns));
        }
        StatefulWidget::render(table, area, buf, &mut state);

        if self.view.is_empty() && !parts.body.is_empty() {
            let message = if self.rows.is_empty() { "nothing to choose from" } else { "no rows match the filter" };
            let x = parts.body.x.saturating_add(SELECT_WIDTH);
            let width = usize::from(parts.body.width.saturating_sub(SELECT_WIDTH));
            buf.set_stringn(x, parts.body.y, message, width, DIM.add_modifier(Modifier::ITALIC));
        }
    }

    fn header_row(&self, widths: &[u16]) -> TableRow<'static> {
        let mut cells = Vec::with_capacity(self.columns.len() + 1);
        if self.has_marks {
            cells.push(Cell::from(""));
        }
        for (index, column) in self.columns.iter().enumerate() {
            let width = usize::from(widths.get(index).copied().unwrap_or(0));
            let (text, style) = if self.sort_column == Some(index) {
                let arrow = if self.descending { "▼" } else { "▲" };
                let title = fit(&column.title, width.saturating_sub(2));
                let text = if title.is_empty() { fit(arrow, width) } else { format!("{title} {arrow}") };
                (text, SORTED_HEADER_STYLE)
            } else {
                (fit(&column.title, width), HEADER_STYLE)
            };
            cells.push(Cell::from(aligned(text, column.align_right)).style(style));
        }
        TableRow::new(cells).style(HEADER_STYLE)
    }

    fn table_row(&self, row: &Row, widths: &[u16]) -> TableRow<'static> {
        let mut cells = Vec::with_capacity(self.columns.len() + 1);
        if self.has_marks {
            cells.push(if row.marked { Cell::from(MARK).style(MARK_STYLE) } else { Cell::from("") });
        }
        for (index, column) in self.columns.iter().enumerate() {
            let width = usize::from(widths.get(index).copied().unwrap_or(0));
            let text = fit(row.cells.get(index).map_or("", String::as_str), width);
            cells.push(Cell::from(aligned(text, column.align_right)));
        }
        TableRow::new(cells)
    }
}

/// Where each part of the picker goes inside `area`.
struct Parts {
    filter: Rect,
    /// Header and rows.
    table: Rect,
    header: bool,
    /// The rows alone.
    body: Rect,
    hint: Rect,
}

impl Parts {
    fn of(area: Rect) -> Self {
        let inner = Block::bordered().inner(area);
        let filter = Rect { height: inner.height.min(1), ..inner };
        let hint_height = u16::from(inner.height >= 4);
        let hint = Rect { y: inner.bottom().saturating_sub(hint_height), height: hint_height, ..inner };
        let table = Rect {
            y: inner.y.saturating_add(filter.height),
            height: inner.height.saturating_sub(filter.height + hint_height),
            ..inner
        };
        let header = table.height >= 2;
        let header_height = u16::from(header);
        let body = Rect { y: table.y.saturating_add(header_height), height: table.height - header_height, ..table };
        Self { filter, table, header, body, hint }
    }
}

/// The filter line after the prompt.
fn text_area(filter: Rect) -> Rect {
    let prompt = PROMPT_WIDTH.min(filter.width);
    Rect { x: filter.x.saturating_add(prompt), width: filter.width - prompt, ..filter }
}

/// The widths the table gives each column, computed the way `Table` does it so cells can be
/// shortened with an ellipsis instead of being cut.
fn column_widths(table_width: u16, widths: &[Constraint]) -> Vec<u16> {
    let selection = SELECT_WIDTH.min(table_width);
    let columns_area = Rect::new(selection, 0, table_width - selection, 1);
    Layout::horizontal(widths.iter().copied())
        .flex(Flex::Start)
        .spacing(COLUMN_SPACING)
        .split(columns_area)
        .iter()
        .map(|rect| rect.width)
        .collect()
}

fn aligned(text: String, right: bool) -> Line<'static> {
    Line::from(text).alignment(if right { Alignment::Right } else { Alignment::Left })
}

/// The part of `text` from display column `skip`, at most `width` columns wide.
fn slice_columns(text: &str, skip: usize, width: usize) -> String {
    let mut skipped = 0;
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        let w = char_width(c);
        if skipped < skip {
            skipped += w;
            continue;
        }
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out
}

/// A row's sort key for one column, ready to compare.
enum Key {
    Number(i128),
    /// Lowercased.
    Text(String),
    Missing,
}

impl Key {
    fn of(row: &Row, column: usize) -> Self {
        match row.sort_keys.get(column) {
            Some(SortKey::Number(number)) => Self::Number(*number),
            Some(SortKey::Text(text)) => Self::Text(text.to_lowercase()),
            Some(SortKey::None) => Self::Missing,
            None => match row.cells.get(column) {
                Some(text) if !text.is_empty() => Self::Text(text.to_lowercase()),
                _ => Self::Missing,
            },
        }
    }

    /// Numbers before text; missing values last whatever the direction.
    fn compare(&self, other: &Self, descending: bool) -> Ordering {
        let ordering = match (self, other) {
            (Self::Missing, Self::Missing) => return Ordering::Equal,
            (Self::Missing, _) => return Ordering::Greater,
            (_, Self::Missing) => return Ordering::Less,
            (Self::Number(a), Self::Number(b)) => a.cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Number(_), Self::Text(_)) => Ordering::Less,
            (Self::Text(_), Self::Number(_)) => Ordering::Greater,
        };
        if descending { ordering.reverse() } else { ordering }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// Keys from a script: plain characters are typed, `<name>` is a special key.
    fn keys(script: &str) -> Vec<KeyEvent> {
        let mut out = Vec::new();
        let mut rest = script;
        while let Some(c) = rest.chars().next() {
            if c == '<'
                && let Some(end) = rest.find('>')
            {
                out.push(match &rest[1..end] {
                    "up" => key(KeyCode::Up),
                    "down" => key(KeyCode::Down),
                    "pgup" => key(KeyCode::PageUp),
                    "pgdn" => key(KeyCode::PageDown),
                    "bs" => key(KeyCode::Backspace),
                    "left" => key(KeyCode::Left),
                    "home" => key(KeyCode::Home),
                    "end" => key(KeyCode::End),
                    "c-home" => KeyEvent::new(KeyCode::Home, KeyModifiers::CONTROL),
                    "c-end" => KeyEvent::new(KeyCode::End, KeyModifiers::CONTROL),
                    "tab" => key(KeyCode::Tab),
                    "btab" => KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
                    "enter" => key(KeyCode::Enter),
                    "esc" => key(KeyCode::Esc),
                    "c-n" => ctrl('n'),
                    "c-p" => ctrl('p'),
                    "c-w" => ctrl('w'),
                    "c-u" => ctrl('u'),
                    other => panic!("unknown key <{other}>"),
                });
                rest = &rest[end + 1..];
            } else {
                let shift = if c.is_uppercase() { KeyModifiers::SHIFT } else { KeyModifiers::NONE };
                out.push(KeyEvent::new(KeyCode::Char(c), shift));
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    /// Sends every key of `script`, returning the last outcome.
    fn press(picker: &mut Picker, script: &str) -> PickerOutcome {
        let mut outcome = PickerOutcome::Continue;
        for key in keys(script) {
            outcome = picker.handle_key(key);
        }
        outcome
    }

    fn shown(picker: &Picker) -> Vec<&str> {
        picker.view.iter().map(|&index| picker.rows[index].value.as_str()).collect()
    }

    const GIB: i128 = 1 << 30;
    const MIB: i128 = 1 << 20;
    const DAY: i128 = 86_400;

    /// S3 backups, newest first, as the caller passes them.
    fn backups() -> Picker {
        let backup = |key: &str, size: (&str, i128), modified: &str, age_days: i128, version: &str| {
            let age = format!("{age_days}d");
            Row::new(key, vec![key.into(), size.0.into(), modified.into(), age, version.into()]).with_sort_keys(vec![
                SortKey::Text(key.into()),
                SortKey::Number(size.1),
                SortKey::Text(modified.into()),
                SortKey::Number(age_days * DAY),
                SortKey::Text(version.into()),
            ])
        };
        let rows = vec![
            backup("daily/2024-05-12.dump", ("1.2 GiB", 12 * GIB / 10), "2024-05-12 02:00", 1, "v8").with_marked(true),
            backup("daily/2024-05-11.dump", ("1.1 GiB", 11 * GIB / 10), "2024-05-11 02:00", 2, "v7"),
            backup("weekly/2024-w19.dump", ("3.4 GiB", 34 * GIB / 10), "2024-05-10 03:00", 3, "v6"),
            backup("daily/2024-05-10.dump", ("980 MiB", 980 * MIB), "2024-05-10 02:00", 3, "v5"),
            backup("daily/2024-05-09.dump", ("1.0 GiB", GIB), "2024-05-09 02:00", 4, "v4"),
            backup("weekly/2024-w18.dump", ("3.3 GiB", 33 * GIB / 10), "2024-05-03 03:00", 10, "v3"),
            backup("monthly/2024-04.dump", ("12 GiB", 12 * GIB), "2024-04-30 04:00", 13, "v2"),
            backup("weekly/2024-w17.dump", ("3.1 GiB", 31 * GIB / 10), "2024-04-26 03:00", 17, "v1"),
        ];
        let columns = vec![
            Column::new("key", Constraint::Fill(1)),
            Column::new("size", Constraint::Length(7)).right(),
            Column::new("last modified", Constraint::Length(16)),
            Column::new("age", Constraint::Length(4)).right(),
            Column::new("ver", Constraint::Length(3)),
        ];
        Picker::new("restore from backup", columns, rows)
    }

    fn buffer_text(buf: &Buffer) -> String {
        let area = buf.area;
        let mut lines = Vec::new();
        for y in area.top()..area.bottom() {
            let line: String = (area.left()..area.right()).map(|x| buf[(x, y)].symbol()).collect();
            lines.push(line.trim_end().to_owned());
        }
        lines.join("\n")
    }

    fn rendered(picker: &Picker, width: u16, height: u16, focused: bool) -> Buffer {
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        picker.render(area, &mut buf, focused);
        buf
    }

    fn text(picker: &Picker, width: u16, height: u16) -> String {
        buffer_text(&rendered(picker, width, height, true))
    }

    #[test]
    fn keys_filter_and_move() {
        struct Case {
            name: &'static str,
            script: &'static str,
            filter: &'static str,
            visible: usize,
            selected: Option<&'static str>,
        }
        let cases = [
            Case { name: "nothing typed", script: "", filter: "", visible: 8, selected: Some("daily/2024-05-12.dump") },
            Case {
                name: "filter narrows",
                script: "weekly",
                filter: "weekly",
                visible: 3,
                selected: Some("weekly/2024-w19.dump"),
            },
            Case {
                name: "filter is case-insensitive",
                script: "WeEKLY",
                filter: "WeEKLY",
                visible: 3,
                selected: Some("weekly/2024-w19.dump"),
            },
            Case {
                name: "filter matches any column",
                script: "v4",
                filter: "v4",
                visible: 1,
                selected: Some("daily/2024-05-09.dump"),
            },
            Case { name: "filter on size text", script: "gib", filter: "gib", visible: 7, selected: None },
            Case { name: "no match", script: "zzz", filter: "zzz", visible: 0, selected: None },
            Case {
                name: "backspace widens again",
                script: "zzz<bs><bs><bs>",
                filter: "",
                visible: 8,
                selected: Some("daily/2024-05-12.dump"),
            },
            Case {
                name: "ctrl-w deletes the word",
                script: "weekly<c-w>",
                filter: "",
                visible: 8,
                selected: Some("weekly/2024-w19.dump"),
            },
            Case {
                name: "editing mid-filter with left",
                script: "wekly<left><left><left><left>e",
                filter: "weekly",
                visible: 3,
                selected: Some("weekly/2024-w19.dump"),
            },
            Case {
                name: "selection follows its row through the filter",
                script: "<down><down><down><down><down>weekly",
                filter: "weekly",
                visible: 3,
                selected: Some("weekly/2024-w18.dump"),
            },
            Case {
                name: "selection follows its row when the filter widens",
                script: "w18<down><bs><bs><bs>",
                filter: "",
                visible: 8,
                selected: Some("weekly/2024-w18.dump"),
            },
            Case {
                name: "hidden selection falls back to the first visible row",
                script: "<down>weekly",
                filter: "weekly",
                visible: 3,
                selected: Some("weekly/2024-w19.dump"),
            },
            Case {
                name: "up stops at the top",
                script: "<up><up><down><up><up>",
                filter: "",
                visible: 8,
                selected: Some("daily/2024-05-12.dump"),
            },
            Case {
                name: "down stops at the bottom",
                script: "<down><down><down><down><down><down><down><down><down><down><down>",
                filter: "",
                visible: 8,
                selected: Some("weekly/2024-w17.dump"),
            },
            Case {
                name: "down within the filtered rows",
                script: "weekly<down><down><down><down>",
                filter: "weekly",
                visible: 3,
                selected: Some("weekly/2024-w17.dump"),
            },
            Case {
                name: "ctrl-n and ctrl-p",
                script: "<c-n><c-n><c-n><c-p>",
                filter: "",
                visible: 8,
                selected: Some("weekly/2024-w19.dump"),
            },
            Case {
                name: "page down stops at the last row",
                script: "<pgdn>",
                filter: "",
                visible: 8,
                selected: Some("weekly/2024-w17.dump"),
            },
            Case {
                name: "page up stops at the first row",
                script: "<down><down><pgup>",
                filter: "",
                visible: 8,
                selected: Some("daily/2024-05-12.dump"),
            },
            Case {
                name: "ctrl-end and ctrl-home",
                script: "<c-end><up><c-home><down>",
                filter: "",
                visible: 8,
                selected: Some("daily/2024-05-11.dump"),
            },
            Case {
                name: "home and end move within the filter",
                script: "eekly<home>w<end>",
                filter: "weekly",
                visible: 3,
                selected: Some("weekly/2024-w19.dump"),
            },
        ];
        for case in cases {
            let mut picker = backups();
            let outcome = press(&mut picker, case.script);
            assert_eq!(outcome, PickerOutcome::Continue, "{}", case.name);
            assert_eq!(picker.filter_text(), case.filter, "{}", case.name);
            assert_eq!(picker.visible_rows(), case.visible, "{}", case.name);
            if case.selected.is_some() || case.visible == 0 {
                assert_eq!(picker.selected_value(), case.selected, "{}", case.name);
            }
        }
    }

    #[test]
    fn filter_on_size_text_keeps_selection() {
        let mut picker = backups();
        press(&mut picker, "<down><down><down>gib");
        // "980 MiB" no longer matches, so the first visible row is selected.
        assert_eq!(picker.visible_rows(), 7);
        assert_eq!(picker.selected_value(), Some("daily/2024-05-12.dump"));
    }

    #[test]
    fn page_keys_use_the_page_size() {
        let rows = (0..100).map(|i| Row::new(format!("r{i}"), vec![format!("row {i}")])).collect();
        let mut picker = Picker::new("rows", vec![Column::new("row", Constraint::Fill(1))], rows);
        picker.set_page_size(7);
        let cases =
            [("<pgdn>", "r7"), ("<pgdn><pgdn>", "r14"), ("<pgdn><pgdn><pgup>", "r7"), ("<pgdn><up><pgup>", "r0")];
        for (script, expected) in cases {
            let mut picker = picker.clone();
            press(&mut picker, script);
            assert_eq!(picker.selected_value(), Some(expected), "{script}");
        }
    }

    #[test]
    fn enter_and_esc() {
        let cases = [
            ("<enter>", PickerOutcome::Accepted("daily/2024-05-12.dump".into())),
            ("<down><down><enter>", PickerOutcome::Accepted("weekly/2024-w19.dump".into())),
            ("monthly<enter>", PickerOutcome::Accepted("monthly/2024-04.dump".into())),
            ("zzz<enter>", PickerOutcome::Continue),
            ("<esc>", PickerOutcome::Cancelled),
            ("zzz<esc>", PickerOutcome::Cancelled),
            ("<down>x", PickerOutcome::Continue),
        ];
        for (script, expected) in cases {
            let mut picker = backups();
            assert_eq!(press(&mut picker, script), expected, "{script}");
        }
        let mut empty = Picker::new("empty", vec![Column::new("x", Constraint::Fill(1))], Vec::new());
        assert_eq!(press(&mut empty, "<down><up><pgdn><tab><btab><enter>"), PickerOutcome::Continue);
        assert_eq!(empty.selected_value(), None);
        assert_eq!(press(&mut empty, "<esc>"), PickerOutcome::Cancelled);
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut picker = backups();
        let mut release = key(KeyCode::Enter);
        release.kind = KeyEventKind::Release;
        assert_eq!(picker.handle_key(release), PickerOutcome::Continue);
        let mut release = key(KeyCode::Char('x'));
        release.kind = KeyEventKind::Release;
        picker.handle_key(release);
        assert_eq!(picker.filter_text(), "");
    }

    #[test]
    fn default_preselection() {
        let cases = [
            ("weekly/2024-w18.dump", Some("weekly/2024-w18.dump")),
            ("weekly/2024-w17.dump", Some("weekly/2024-w17.dump")),
            ("not there", Some("daily/2024-05-12.dump")),
            ("", Some("daily/2024-05-12.dump")),
        ];
        for (default, expected) in cases {
            let picker = backups().with_default(default);
            assert_eq!(picker.selected_value(), expected, "{default}");
            assert_eq!(press(&mut picker.clone(), "<enter>"), PickerOutcome::Accepted(expected.unwrap_or("").into()));
        }
        let picker = Picker::from_choices("env", ["staging", "prod", "dr"]).with_default("prod");
        assert_eq!(picker.selected_value(), Some("prod"));
        let picker = Picker::new("none", Vec::new(), Vec::new()).with_default("x");
        assert_eq!(picker.selected_value(), None);
    }

    #[test]
    fn sorting() {
        struct Case {
            name: &'static str,
            column: usize,
            descending: bool,
            expected: [&'static str; 8],
        }
        let cases = [
            Case {
                name: "size ascending is numeric, not by text",
                column: 1,
                descending: false,
                expected: [
                    "daily/2024-05-10.dump",
                    "daily/2024-05-09.dump",
                    "daily/2024-05-11.dump",
                    "daily/2024-05-12.dump",
                    "weekly/2024-w17.dump",
                    "weekly/2024-w18.dump",
                    "weekly/2024-w19.dump",
                    "monthly/2024-04.dump",
                ],
            },
            Case {
                name: "size descending",
                column: 1,
                descending: true,
                expected: [
                    "monthly/2024-04.dump",
                    "weekly/2024-w19.dump",
                    "weekly/2024-w18.dump",
                    "weekly/2024-w17.dump",
                    "daily/2024-05-12.dump",
                    "daily/2024-05-11.dump",
                    "daily/2024-05-09.dump",
                    "daily/2024-05-10.dump",
                ],
            },
            Case {
                name: "age ascending, ties keep the given order",
                column: 3,
                descending: false,
                expected: [
                    "daily/2024-05-12.dump",
                    "daily/2024-05-11.dump",
                    "weekly/2024-w19.dump",
                    "daily/2024-05-10.dump",
                    "daily/2024-05-09.dump",
                    "weekly/2024-w18.dump",
                    "monthly/2024-04.dump",
                    "weekly/2024-w17.dump",
                ],
            },
            Case {
                name: "key ascending is by text",
                column: 0,
                descending: false,
                expected: [
                    "daily/2024-05-09.dump",
                    "daily/2024-05-10.dump",
                    "daily/2024-05-11.dump",
                    "daily/2024-05-12.dump",
                    "monthly/2024-04.dump",
                    "weekly/2024-w17.dump",
                    "weekly/2024-w18.dump",
                    "weekly/2024-w19.dump",
                ],
            },
            Case {
                name: "a missing column restores the given order, reversed",
                column: 99,
                descending: true,
                expected: [
                    "weekly/2024-w17.dump",
                    "monthly/2024-04.dump",
                    "weekly/2024-w18.dump",
                    "daily/2024-05-09.dump",
                    "daily/2024-05-10.dump",
                    "weekly/2024-w19.dump",
                    "daily/2024-05-11.dump",
                    "daily/2024-05-12.dump",
                ],
            },
        ];
        for case in cases {
            let mut picker = backups();
            picker.sort_by(case.column, case.descending);
            assert_eq!(shown(&picker), case.expected, "{}", case.name);
            // The selection stays on the row it was on.
            assert_eq!(picker.selected_value(), Some("daily/2024-05-12.dump"), "{}", case.name);
        }
    }

    #[test]
    fn text_sorts_case_insensitively_and_missing_values_last() {
        let columns = vec![Column::new("name", Constraint::Fill(1)), Column::new("n", Constraint::Length(3))];
        let row = |name: &str, n: Option<i128>| {
            let key = n.map_or(SortKey::None, SortKey::Number);
            Row::new(name, vec![name.into(), n.map(|n| n.to_string()).unwrap_or_default()])
                .with_sort_keys(vec![SortKey::Text(name.into()), key])
        };
        let rows = vec![
            row("beta", Some(10)),
            row("Alpha", None),
            row("gamma", Some(9)),
            row("ALPHA2", Some(100)),
            row("", None),
        ];
        let mut picker = Picker::new("t", columns, rows);
        let cases = [
            (0, false, ["", "Alpha", "ALPHA2", "beta", "gamma"]),
            (0, true, ["gamma", "beta", "ALPHA2", "Alpha", ""]),
            (1, false, ["gamma", "beta", "ALPHA2", "Alpha", ""]),
            (1, true, ["ALPHA2", "beta", "gamma", "Alpha", ""]),
        ];
        for (column, descending, expected) in cases {
            picker.sort_by(column, descending);
            assert_eq!(shown(&picker), expected, "column {column} descending {descending}");
        }
        // Without sort keys, a column sorts by its text (so "10" < "9"); numbers sort before text.
        let rows = vec![
            Row::new("a", vec!["9".into()]),
            Row::new("b", vec!["10".into()]),
            Row::new("c", vec!["x".into()]).with_sort_keys(vec![SortKey::Number(50)]),
        ];
        let mut picker = Picker::new("t", vec![Column::new("v", Constraint::Fill(1))], rows);
        picker.sort_by(0, false);
        assert_eq!(shown(&picker), ["c", "b", "a"]);
    }

    #[test]
    fn tab_cycles_and_backtab_flips() {
        let mut picker = backups();
        assert_eq!(picker.sort_state(), (None, false));
        let cases = [
            ("<tab>", (Some(0), false), "daily/2024-05-09.dump"),
            ("<tab><tab>", (Some(1), false), "daily/2024-05-10.dump"),
            ("<tab><tab><btab>", (Some(1), true), "monthly/2024-04.dump"),
            ("<tab><tab><btab><tab>", (Some(2), true), "daily/2024-05-12.dump"),
            ("<tab><tab><tab><tab><tab>", (Some(4), false), "weekly/2024-w17.dump"),
            // After the last column: back to the given order.
            ("<tab><tab><tab><tab><tab><tab>", (None, false), "daily/2024-05-12.dump"),
            ("<tab><tab><tab><tab><tab><tab><tab>", (Some(0), false), "daily/2024-05-09.dump"),
            ("<btab>", (None, true), "weekly/2024-w17.dump"),
            ("<btab><btab>", (None, false), "daily/2024-05-12.dump"),
            ("weekly<tab><btab>", (Some(0), true), "weekly/2024-w19.dump"),
        ];
        for (script, state, first) in cases {
            let mut picker = picker.clone();
            press(&mut picker, script);
            assert_eq!(picker.sort_state(), state, "{script}");
            assert_eq!(shown(&picker).first().copied(), Some(first), "{script}");
            assert!(!picker.filter_text().contains('\t'), "{script}");
        }
        // Shift+Tab reported as Tab with SHIFT flips too.
        picker.handle_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::SHIFT));
        assert_eq!(picker.sort_state(), (None, true));
    }

    #[test]
    fn render_tiny_areas_never_panic() {
        let mut pickers = vec![backups(), Picker::new("empty", Vec::new(), Vec::new())];
        let mut filtered = backups();
        press(&mut filtered, "a long filter that matches nothing at all");
        pickers.push(filtered);
        let mut sorted = backups().with_default("weekly/2024-w17.dump");
        sorted.sort_by(1, true);
        pickers.push(sorted);
        for picker in &pickers {
            for (width, height) in [(0, 0), (1, 1), (20, 3), (0, 5), (5, 0), (2, 2), (3, 3)] {
                rendered(picker, width, height, true);
                rendered(picker, width, height, false);
                let _ = picker.cursor_position(Rect::new(0, 0, width, height));
            }
            for width in 0..40 {
                for height in 0..14 {
                    rendered(picker, width, height, width % 2 == 0);
                }
            }
        }
        // An area outside the buffer is clipped, not indexed.
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 5));
        backups().render(Rect::new(5, 3, 60, 12), &mut buf, true);
        backups().render(Rect::new(100, 100, 60, 12), &mut buf, true);
        backups().render(Rect::new(u16::MAX - 1, u16::MAX - 1, u16::MAX, u16::MAX), &mut buf, true);
    }

    #[test]
    fn odd_inputs_never_panic() {
        let columns = vec![
            Column::new("wide 表", Constraint::Percentage(250)),
            Column::new("", Constraint::Length(0)),
            Column::new("ratio", Constraint::Ratio(1, 0)).right(),
            Column::new("min", Constraint::Min(u16::MAX)),
        ];
        let rows = vec![
            Row::new("a", vec!["表表表表表表表表表".into(), "x\ny\tz\u{1b}[31m".into()]).with_marked(true),
            Row::new("b", Vec::new()).with_sort_keys(vec![SortKey::Number(i128::MIN), SortKey::None]),
            Row::new("c", vec![String::new(); 9]).with_sort_keys(vec![SortKey::Number(i128::MAX); 9]),
        ];
        let mut picker = Picker::new("ti\ntle", columns, rows);
        // A small deterministic pseudo-random walk over keys, sorts and render sizes.
        let script = keys("表<tab><btab><down>é<bs><pgdn><up><c-w><left><tab>Z<c-end><c-u><end><home>");
        let mut seed = 0x2545_f491_u64;
        for step in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let key = script[(seed % script.len() as u64) as usize];
            picker.handle_key(key);
            if step % 97 == 0 {
                picker.sort_by((seed % 7) as usize, seed.is_multiple_of(2));
                picker.set_page_size((seed % 5) as usize);
            }
            let width = (seed >> 8) % 50;
            let height = (seed >> 16) % 10;
            rendered(&picker, width as u16, height as u16, step % 3 == 0);
            assert!(picker.selected.is_none_or(|s| s < picker.visible_rows()));
            assert_eq!(picker.selected.is_some(), picker.visible_rows() > 0);
        }
    }

    #[test]
    fn selected_row_has_the_highlight_style() {
        let picker = backups().with_default("weekly/2024-w19.dump");
        let buf = rendered(&picker, 60, 12, true);
        let row_of = |needle: &str| {
            (0..12).find(|&y| buffer_text(&buf).lines().nth(usize::from(y)).is_some_and(|l| l.contains(needle)))
        };
        let selected = row_of("weekly/2024-w19").expect("selected row drawn");
        let other = row_of("daily/2024-05-11").expect("other row drawn");
        assert_eq!(buf[(1, selected)].symbol(), "▶");
        let cell = &buf[(10, selected)];
        assert!(cell.modifier.contains(Modifier::REVERSED | Modifier::BOLD), "{cell:?}");
        assert!(!buf[(10, other)].modifier.contains(Modifier::REVERSED));
        assert_eq!(buf[(1, other)].symbol(), " ");
        // The mark of the newest backup is green.
        let newest = row_of("daily/2024-05-12").expect("newest row drawn");
        assert_eq!(buf[(3, newest)].symbol(), MARK);
        assert_eq!(buf[(3, newest)].fg, Color::Green);
        // Unfocused: bold, not reversed.
        let buf = rendered(&picker, 60, 12, false);
        assert!(buf[(10, selected)].modifier.contains(Modifier::BOLD));
        assert!(!buf[(10, selected)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn filter_line_shows_placeholder_and_cursor() {
        let mut picker = backups();
        let buf = rendered(&picker, 60, 12, true);
        assert!(buffer_text(&buf).lines().nth(1).is_some_and(|l| l.starts_with("│/ filter…")));
        assert_eq!(buf[(3, 1)].fg, Color::DarkGray);
        assert!(buf[(3, 1)].modifier.contains(Modifier::REVERSED), "cursor on the placeholder when focused");
        assert!(!rendered(&picker, 60, 12, false)[(3, 1)].modifier.contains(Modifier::REVERSED));
        assert_eq!(picker.cursor_position(Rect::new(0, 0, 60, 12)), Some(Position::new(3, 1)));

        press(&mut picker, "week<left>");
        let buf = rendered(&picker, 60, 12, true);
        assert!(buffer_text(&buf).lines().nth(1).is_some_and(|l| l.starts_with("│/ week")));
        assert!(buf[(6, 1)].modifier.contains(Modifier::REVERSED), "cursor on the k");
        assert_eq!(picker.cursor_position(Rect::new(0, 0, 60, 12)), Some(Position::new(6, 1)));

        // A long filter scrolls so the cursor stays visible.
        let mut picker = backups();
        press(&mut picker, &"x".repeat(100));
        let buf = rendered(&picker, 20, 12, true);
        let line = buffer_text(&buf).lines().nth(1).map(str::to_owned).unwrap_or_default();
        assert_eq!(line, format!("│/ {} │", "x".repeat(15)));
        assert!(buf[(18, 1)].modifier.contains(Modifier::REVERSED));
        assert!(buffer_text(&buf).contains("no rows match"));
    }

    #[test]
    fn scrolling_keeps_the_selection_visible() {
        let rows: Vec<Row> = (0..10_000)
            .map(|i| {
                Row::new(format!("tag-{i}"), vec![format!("tag-{i:05}"), format!("{}", i % 7)])
                    .with_sort_keys(vec![SortKey::Text(format!("{i:05}")), SortKey::Number(i % 7)])
                    .with_marked(i == 42)
            })
            .collect();
        let columns =
            vec![Column::new("tag", Constraint::Fill(1)), Column::new("deploys", Constraint::Length(7)).right()];
        let mut picker = Picker::new("image tag", columns, rows);
        for height in [5_u16, 6, 9, 12, 30] {
            picker.set_page_size(usize::from(Picker::list_height(Rect::new(0, 0, 40, height))));
            for script in ["<c-home>", "<pgdn><pgdn>", "<down>", "<pgup><up>", "<c-end>", "<up><up><up>", "1234"] {
                press(&mut picker, script);
                let selected = picker.selected_value().map(str::to_owned).unwrap_or_default();
                let text = text(&picker, 40, height);
                let line = text.lines().find(|line| line.contains('▶')).unwrap_or_default();
                let number: usize = selected.trim_start_matches("tag-").parse().unwrap_or(0);
                assert!(line.contains(&format!("tag-{number:05}")), "height {height} {script}: {selected}\n{text}");
            }
            press(&mut picker, "<c-u>");
        }
        // Filtering ten thousand rows per keystroke, then sorting them.
        press(&mut picker, "tag-0999");
        assert_eq!(picker.visible_rows(), 10);
        press(&mut picker, "<c-u><tab><tab><btab>");
        assert_eq!(picker.visible_rows(), 10_000);
        assert_eq!(picker.sort_state(), (Some(1), true));
        assert!(text(&picker, 40, 12).contains("10000 of 10000"));
    }

    #[test]
    fn long_cells_end_in_an_ellipsis() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("a\nb", 3), "a b");
        assert_eq!(slice_columns("abcdef", 2, 3), "cde");
    }

    #[test]
    fn snapshot_backups() {
        insta::assert_snapshot!("backups", text(&backups(), 60, 12));
    }

    #[test]
    fn snapshot_backups_filtered_weekly() {
        let mut picker = backups();
        press(&mut picker, "weekly");
        insta::assert_snapshot!("backups_filtered_weekly", text(&picker, 60, 12));
    }

    #[test]
    fn snapshot_backups_sorted_by_size() {
        let mut picker = backups();
        press(&mut picker, "<tab><tab><btab>");
        assert_eq!(picker.sort_state(), (Some(1), true));
        insta::assert_snapshot!("backups_sorted_by_size", text(&picker, 60, 12));
    }
}
