// TEMPORARY STUB (replaced by the helper's widget)
use crate::engine::OutputStream;
pub struct LogPane {
    lines: Vec<String>,
}
impl LogPane {
    pub fn new(_capacity: usize) -> Self {
        LogPane { lines: Vec::new() }
    }
    pub fn push_lines(&mut self, _s: OutputStream, lines: &[String]) {
        self.lines.extend(lines.iter().cloned())
    }
    pub fn push_marker(&mut self, t: &str) {
        self.lines.push(t.to_string())
    }
    pub fn follow(&self) -> bool {
        true
    }
    pub fn len(&self) -> usize {
        self.lines.len()
    }
    pub fn toggle_follow(&mut self) {}
    pub fn toggle_wrap(&mut self) {}
    pub fn scroll_up(&mut self, _n: usize) {}
    pub fn scroll_down(&mut self, _n: usize) {}
    pub fn page_up(&mut self, _n: usize) {}
    pub fn page_down(&mut self, _n: usize) {}
    pub fn home(&mut self) {}
    pub fn end(&mut self) {}
    pub fn scroll_left(&mut self, _n: usize) {}
    pub fn scroll_right(&mut self, _n: usize) {}
    pub fn set_search(&mut self, _q: Option<String>) {}
    pub fn search_next(&mut self) {}
    pub fn search_prev(&mut self) {}
    pub fn search_status(&self) -> Option<(usize, usize)> {
        None
    }
    pub fn render(&self, area: ratatui::layout::Rect, buf: &mut ratatui::buffer::Buffer, title: &str, _focused: bool) {
        use ratatui::widgets::{Block, Borders, Paragraph, Widget};
        let skip = self.lines.len().saturating_sub(area.height as usize);
        Paragraph::new(self.lines[skip..].join("\n"))
            .block(Block::new().borders(Borders::ALL).title(title.to_string()))
            .render(area, buf);
    }
}
