//! Plain-text tables for `status` and `lists`: columns padded to their
//! widest cell, numbers on the right, no colour and no box drawing, so the
//! output reads the same in a terminal, a log and a snapshot. Widths are
//! display columns (`unicode-width`): a CJK character or an emoji takes two,
//! so a list named with them keeps the columns straight.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How a column lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

pub struct Table {
    headers: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[(&'static str, Align)]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines (no trailing spaces), headers first.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|(title, _)| width(title)).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate().take(columns) {
                widths[index] = widths[index].max(width(cell));
            }
        }
        let mut text = String::new();
        let titles: Vec<String> = self
            .headers
            .iter()
            .map(|(title, _)| (*title).to_owned())
            .collect();
        for row in std::iter::once(&titles).chain(&self.rows) {
            let mut line = String::new();
            for (index, (_, align)) in self.headers.iter().enumerate() {
                let cell = row.get(index).map(String::as_str).unwrap_or("");
                let pad = widths[index].saturating_sub(width(cell));
                if index > 0 {
                    line.push_str("  ");
                }
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// How many columns `text` takes in a terminal.
pub fn width(text: &str) -> usize {
    text.width()
}

/// Server text made safe for a terminal: control characters escaped, and
/// long names cut to `limit` columns.
pub fn shown(text: &str, limit: usize) -> String {
    let escaped: String = text.chars().flat_map(char::escape_debug).collect();
    if width(&escaped) <= limit {
        return escaped;
    }
    let room = limit.saturating_sub(1);
    let mut used = 0;
    let head: String = escaped
        .chars()
        .take_while(|c| {
            used += c.width().unwrap_or(0);
            used <= room
        })
        .collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&[("NAME", Align::Left), ("FILES", Align::Right)]);
        table.row(vec!["Summer trip".into(), "7".into()]);
        table.row(vec!["Q&A".into(), "1234".into()]);
        assert_eq!(
            table.render(),
            "NAME         FILES\nSummer trip      7\nQ&A           1234\n"
        );
        assert_eq!(shown("a\u{1b}[2Jb", 40), "a\\u{1b}[2Jb");
        assert_eq!(shown("abcdef", 4), "abc…");
    }

    /// CJK characters and emoji take two columns each: the columns after
    /// them still line up on screen, and a long name is cut by columns.
    #[test]
    fn wide_characters_line_up() {
        let mut table = Table::new(&[("NAME", Align::Left), ("FILES", Align::Right)]);
        table.row(vec!["夏の旅行".into(), "7".into()]);
        table.row(vec!["🎉 party".into(), "42".into()]);
        table.row(vec!["Summer trip".into(), "1234".into()]);
        let text = table.render();
        assert_eq!(
            text,
            "NAME         FILES\n夏の旅行         7\n🎉 party        42\nSummer trip   1234\n"
        );
        let widths: Vec<usize> = text.lines().map(width).collect();
        assert_eq!(widths, [18, 18, 18, 18]);
        assert_eq!(shown("日本語の名前", 7), "日本語…");
        assert_eq!(width(&shown("🎉🎉🎉🎉", 6)), 5);
        assert_eq!(shown("夏の旅行", 8), "夏の旅行");
    }
}
