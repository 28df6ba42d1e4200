//! Text as a terminal lays it out: CJK characters take two columns, combining marks none. The
//! tables of `jobs`, `search` and `spend` pad and cut by these columns, so Chinese spec names,
//! prompts and projects line up and fit the terminal.

/// Columns `c` takes in a terminal (East Asian Wide and Fullwidth characters take two).
fn char_width(c: char) -> usize {
    let u = u32::from(c);
    let zero = matches!(u, 0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F | 0x20D0..=0x20FF);
    if zero || c.is_control() {
        return 0;
    }
    let wide = matches!(
        u,
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x2FFFD
            | 0x30000..=0x3FFFD
    );
    if wide { 2 } else { 1 }
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
