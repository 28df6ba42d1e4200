//! Text as a terminal lays it out: CJK characters take two columns, combining marks none. The
//! tables of `jobs`, `search` and `spend` pad and cut by these columns, so Chinese spec names,
//! prompts and projects line up and fit the terminal.

/// Columns `c` takes in a terminal (East Asian Wide and Fullwidth characters two, combining marks
/// and controls none), by the Unicode tables of `unicode-width`.
fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// Columns `text` takes in a terminal.
pub(super) fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// `text` followed by spaces up to `columns` (as is when it is wider).
pub(super) fn pad(text: &str, columns: usize) -> String {
    format!("{text}{}", " ".repeat(columns.saturating_sub(width(text))))
}

/// `text` on one line, cut to at most `max` columns, with `…` when cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if width(&one_line) <= max {
        return one_line;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in one_line.chars() {
        let w = char_width(c);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_takes_two_columns_and_is_cut_on_a_character() {
        assert_eq!(width("灯笼.txt"), 8);
        assert_eq!(width("fox.json"), 8);
        assert_eq!(width("e\u{301}"), 1, "a combining accent takes no column");
        assert_eq!(pad("灯笼", 6), "灯笼  ");
        assert_eq!(clip("河面上漂浮的灯笼", 7), "河面上…");
        assert_eq!(width(&clip("河面上漂浮的灯笼", 8)), 7, "never half a character: {}", clip("河面上漂浮的灯笼", 8));
        assert_eq!(clip("a  quiet\nharbour", 40), "a quiet harbour");
        assert_eq!(clip("a quiet harbour", 8), "a quiet…");
    }
}
