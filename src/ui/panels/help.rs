//! `?`: every key binding, grouped by where it applies, straight from the
//! keymap table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget};

use crate::ui::app::App;
use crate::ui::keymap;
use crate::ui::layout::centered;

pub fn render(app: &App, scroll: u16, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let mut lines = Vec::new();
    for (context, entries) in keymap::help_sections() {
        lines.push(Line::from(Span::styled(context.title(), theme.title())));
        for (key, description) in entries {
            lines.push(Line::from(vec![Span::styled(format!("  {key:<14}"), theme.key()), Span::raw(description)]));
        }
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(Span::styled("Mouse: click a step to view it; the wheel scrolls the log.", theme.dim())));
    let dialog = centered(area, 64, area.height.saturating_sub(2));
    Clear.render(dialog, buf);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.border(true))
        .title(Span::styled(" Keys ", theme.title()))
        .title_bottom(Line::from(vec![
            Span::styled(" ↑↓", theme.key()),
            Span::styled(" scroll ", theme.dim()),
            Span::styled(" esc", theme.key()),
            Span::styled(" close ", theme.dim()),
        ]));
    Paragraph::new(lines).block(block).scroll((scroll, 0)).render(dialog, buf);
}
