//! Text that must fit a width in terminal columns: shortened with `…`
//! rather than cut mid-word at the edge, and lines whose least needed parts
//! give way first.

use ratatui::text::{Line, Span};

/// `text` in at most `width` columns, control characters (newlines, tabs,
/// escapes) shown as spaces, ending in `…` when shortened.
pub fn fit(text: &str, width: usize) -> String {
    let text = clean(text);
    if Span::raw(text.as_str()).width() <= width {
        return text;
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w > width - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// A part of a line and how readily it gives way: 0 never, and among the
/// others the lower ranks are kept first (the earlier one on a tie).
pub type Part = (Span<'static>, u8);

/// One line from `parts` in at most `width` columns: parts are taken in
/// rank order while they fit (a part too wide is left out, and a later,
/// narrower one may still fit), and kept in their own order; if the parts
/// of rank 0 alone are too wide, the line is shortened with `…` where it
/// crosses the edge.
pub fn fit_line(parts: Vec<Part>, width: usize) -> Line<'static> {
    let mut by_rank: Vec<usize> = (0..parts.len()).collect();
    by_rank.sort_by_key(|&index| parts[index].1);
    let mut kept = vec![false; parts.len()];
    let mut used = 0;
    for index in by_rank {
        let (span, rank) = &parts[index];
        if *rank == 0 || used + span.width() <= width {
            used += span.width();
            kept[index] = true;
        }
    }
    let parts = parts.into_iter().zip(kept).filter_map(|(part, kept)| kept.then_some(part));
    let mut spans = Vec::new();
    let mut room = width;
    for (span, _) in parts {
        let w = span.width();
        if w <= room {
            room -= w;
            spans.push(span);
            continue;
        }
        if room > 0 {
            spans.push(Span::styled(fit(&span.content, room), span.style));
        }
        break;
    }
    Line::from(spans)
}

/// `text` with control characters (newlines, tabs, escapes) shown as spaces.
pub fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Columns `c` takes in a terminal.
pub fn char_width(c: char) -> usize {
    let mut utf8 = [0; 4];
    Span::raw(&*c.encode_utf8(&mut utf8)).width()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Stylize;

    #[test]
    fn fit_shortens_by_columns_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdef", 1), "…");
        assert_eq!(fit("abcdef", 0), "");
        assert_eq!(fit("表表表", 4), "表…");
        assert_eq!(fit("a\tb\nc", 5), "a b c");
    }

    fn text(line: &Line) -> String {
        line.spans.iter().map(|span| span.content.as_ref()).collect()
    }

    #[test]
    fn the_most_needed_parts_are_kept_then_the_edge_gets_an_ellipsis() {
        let parts = || -> Vec<Part> {
            vec![
                (Span::raw(" 1 "), 0),
                (Span::raw("Restore the database"), 0),
                (Span::raw(" · command"), 2),
                (Span::raw(" → dr-db"), 1),
                (Span::raw("  [typed confirmation]"), 3),
                (Span::raw("  12s last time").dim(), 4),
            ]
        };
        let all = " 1 Restore the database · command → dr-db  [typed confirmation]  12s last time";
        assert_eq!(text(&fit_line(parts(), 200)), all);
        assert_eq!(text(&fit_line(parts(), all.chars().count())), all);
        assert_eq!(text(&fit_line(parts(), 70)), " 1 Restore the database · command → dr-db  [typed confirmation]");
        assert_eq!(text(&fit_line(parts(), 41)), " 1 Restore the database · command → dr-db");
        assert_eq!(text(&fit_line(parts(), 40)), " 1 Restore the database → dr-db");
        assert_eq!(text(&fit_line(parts(), 31)), " 1 Restore the database → dr-db");
        assert_eq!(text(&fit_line(parts(), 30)), " 1 Restore the database");
        // The tags do not fit 50 columns, the last duration still does.
        assert_eq!(text(&fit_line(parts(), 58)), " 1 Restore the database · command → dr-db  12s last time");
        assert_eq!(text(&fit_line(parts(), 20)), " 1 Restore the data…");
        assert_eq!(text(&fit_line(parts(), 12)), " 1 Restore …");
        // Styles survive the shortening.
        let dim = fit_line(vec![(Span::raw("ab").dim(), 0)], 1);
        assert_eq!(dim.spans[0].style, ratatui::style::Style::new().dim());
    }
}
