//! Plain-text tables for `status` and `lists`: columns padded to their
//! widest cell, numbers on the right, no colour and no box drawing, so the
//! output reads the same in a terminal, a log and a snapshot. Widths are
//! display columns (`unicode-width`): a CJK character or an emoji takes two,
//! so a list named with them keeps the columns straight.

use super::terminal::{cut_to, width};

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

    /// The table as lines (no trailing spaces), headers first; fitted to
    /// the terminal when stdout is one (see [`Table::render_within`]).
    pub fn render(&self) -> String {
        self.render_within(super::terminal::stdout_width())
    }

    /// The table as lines, at most `columns` wide when given and the
    /// table can be made so: first one space between columns instead of
    /// two, then the widest text column cut (`…`), then the next, never
    /// below its title or 8 columns. Numbers are never cut.
    pub fn render_within(&self, columns: Option<usize>) -> String {
        let count = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|(title, _)| width(title)).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate().take(count) {
                widths[index] = widths[index].max(width(cell));
            }
        }
        let mut gap = "  ";
        if let Some(limit) = columns {
            let total = |widths: &[usize], gap: usize| {
                widths.iter().sum::<usize>() + gap * count.saturating_sub(1)
            };
            if total(&widths, 2) > limit {
                gap = " ";
            }
            while total(&widths, gap.len()) > limit {
                let floor = |index: usize| width(self.headers[index].0).max(8);
                let Some(widest) = (0..count)
                    .filter(|&index| self.headers[index].1 == Align::Left)
                    .filter(|&index| widths[index] > floor(index))
                    .max_by_key(|&index| widths[index])
                else {
                    break;
                };
                let excess = total(&widths, gap.len()) - limit;
                widths[widest] = widths[widest].saturating_sub(excess).max(floor(widest));
            }
        }
        let widths = widths;
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
                let cut;
                let cell = if width(cell) > widths[index] {
                    cut = cut_to(cell, widths[index]);
                    cut.as_str()
                } else {
                    cell
                };
                let pad = widths[index].saturating_sub(width(cell));
                if index > 0 {
                    line.push_str(gap);
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

/// Server text made safe for a terminal: control characters escaped, and
/// long names cut to `limit` columns.
pub fn shown(text: &str, limit: usize) -> String {
    let escaped: String = text.chars().flat_map(char::escape_debug).collect();
    cut_to(&escaped, limit)
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

    /// On a narrow terminal the gaps narrow, then the widest text column
    /// is cut; numbers stay whole.
    #[test]
    fn a_table_fits_the_terminal() {
        let mut table = Table::new(&[
            ("LIST", Align::Left),
            ("NAME", Align::Left),
            ("BYTES", Align::Right),
        ]);
        table.row(vec![
            "28489181".into(),
            "Behind the scenes, and a long name".into(),
            "610.07 KiB".into(),
        ]);
        let wide = table.render_within(None);
        assert_eq!(wide.lines().map(width).max(), Some(56));
        assert_eq!(table.render_within(Some(56)), wide);
        let narrow = table.render_within(Some(40));
        assert_eq!(
            narrow,
            format!(
                "LIST     NAME{}      BYTES\n28489181 Behind the scenes, … 610.07 KiB\n",
                " ".repeat(16)
            )
        );
        assert!(narrow.lines().all(|line| width(line) <= 40), "{narrow}");
        // Never below the title or 8 columns: then it stays wider.
        let tiny = table.render_within(Some(10));
        assert!(
            tiny.contains("28489181") && tiny.contains("610.07 KiB"),
            "{tiny}"
        );
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
