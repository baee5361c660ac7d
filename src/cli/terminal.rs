//! What fits the terminal. On a terminal every line the binary prints
//! fits its width (80 columns at least is the promise): long text is
//! wrapped at spaces (continuation lines indented two more columns), and
//! the chatter of a run (retries, re-signs) is cut to one line. In a pipe,
//! a log or a cron mail nothing is wrapped or cut: one event, one line,
//! whole, for grep.
//!
//! Widths are display columns (`unicode-width`), as in [`super::table`].

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How many columns `text` takes in a terminal.
pub fn width(text: &str) -> usize {
    text.width()
}

/// The longest start of `chars` that takes at most `columns`.
fn within(chars: impl Iterator<Item = char>, columns: usize) -> Vec<char> {
    let mut used = 0;
    chars
        .take_while(|c| {
            used += c.width().unwrap_or(0);
            used <= columns
        })
        .collect()
}

/// `text` cut to `limit` columns, ending in `…` when cut.
pub fn cut_to(text: &str, limit: usize) -> String {
    if width(text) <= limit {
        return text.to_owned();
    }
    let head: String = within(text.chars(), limit.saturating_sub(1))
        .into_iter()
        .collect();
    format!("{head}…")
}

/// The width of the terminal stderr is, or `None` when it is none.
pub fn stderr_width() -> Option<usize> {
    let term = console::Term::stderr();
    if !term.is_term() {
        return None;
    }
    term.size_checked().map(|(_, columns)| usize::from(columns))
}

/// The width of the terminal stdout is, or `None` when it is none.
pub fn stdout_width() -> Option<usize> {
    let term = console::Term::stdout();
    if !term.is_term() {
        return None;
    }
    term.size_checked().map(|(_, columns)| usize::from(columns))
}

/// `text` wrapped to stdout's terminal, or as it is when stdout is none.
pub fn for_stdout(text: &str) -> String {
    match stdout_width() {
        Some(columns) => wrap(text, columns),
        None => text.to_owned(),
    }
}

/// `text` wrapped to stderr's terminal, or as it is when stderr is none.
pub fn for_stderr(text: &str) -> String {
    match stderr_width() {
        Some(columns) => wrap(text, columns),
        None => text.to_owned(),
    }
}

/// Each line of `text` wider than `columns` broken at spaces; a
/// continuation keeps the line's indentation and two columns more. A word
/// wider than the room (a long path) stays whole on a line of its own.
pub fn wrap(text: &str, columns: usize) -> String {
    let mut wrapped = String::with_capacity(text.len() + 16);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            wrapped.push('\n');
        }
        if width(line) <= columns {
            wrapped.push_str(line);
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let continuation = " ".repeat(indent + 2);
        let mut current = " ".repeat(indent);
        let mut current_width = indent;
        let mut empty = true;
        // Each word with the spaces before it, kept as they were (a
        // column's padding) unless the line breaks there.
        let mut rest = &line[indent..];
        while !rest.is_empty() {
            let spaces = rest.len() - rest.trim_start_matches(' ').len();
            let word_end = rest[spaces..]
                .find(' ')
                .map_or(rest.len(), |end| end + spaces);
            let word = &rest[spaces..word_end];
            rest = &rest[word_end..];
            if word.is_empty() {
                break;
            }
            let word_width = width(word);
            if !empty && current_width + spaces + word_width > columns {
                wrapped.push_str(current.trim_end());
                wrapped.push('\n');
                // Less indentation for a word that would not fit with it.
                let indent = continuation.len().min(columns.saturating_sub(word_width));
                current = " ".repeat(indent);
                current_width = indent;
            } else if !empty {
                current.push_str(&" ".repeat(spaces));
                current_width += spaces;
            }
            current.push_str(word);
            current_width += word_width;
            empty = false;
        }
        wrapped.push_str(current.trim_end());
    }
    wrapped
}

/// `text` on one line of at most `columns`: cut in the middle with `…`
/// when too wide, so its start (what) and its end (a wait, a code) stay.
pub fn one_line(text: &str, columns: usize) -> String {
    let text = text.replace('\n', " ");
    if width(&text) <= columns {
        return text;
    }
    let room = columns.saturating_sub(1);
    let tail_room = room / 3;
    let head: String = within(text.chars(), room - tail_room).into_iter().collect();
    let mut tail = within(text.chars().rev(), tail_room);
    tail.reverse();
    let tail: String = tail.into_iter().collect();
    format!("{}…{}", head.trim_end(), tail.trim_start())
}

/// `lead` then `detail` on one line of at most `columns`: the detail is
/// cut at its end (`…`), so what the line is about stays whole; a lead
/// too long for that is cut in the middle with the rest.
pub fn lead_and_detail(lead: &str, detail: &str, columns: usize) -> String {
    let detail = detail.replace('\n', " ");
    let lead_width = width(lead);
    if lead_width + width(&detail) <= columns {
        return format!("{lead}{detail}");
    }
    if lead_width + 12 > columns {
        return one_line(&format!("{lead}{detail}"), columns);
    }
    let head: String = within(detail.chars(), columns - lead_width - 1)
        .into_iter()
        .collect();
    format!("{lead}{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_at_spaces_and_short_ones_stay() {
        let summary = "interrupted after 80 downloaded (885.48 KiB) in 4.0s: what was verified is kept, transfers in flight are kept as .part files; run the same command again to resume";
        let wrapped = wrap(summary, 80);
        assert!(wrapped.lines().all(|line| width(line) <= 80), "{wrapped}");
        assert_eq!(wrapped.replace("\n  ", " "), summary);
        assert!(wrapped.lines().skip(1).all(|line| line.starts_with("  ")));
        assert_eq!(wrap("short\n  also short", 80), "short\n  also short");
        // A column's padding stays where the line does not break.
        assert_eq!(
            wrap("  a.jpg      a picture that is described at length", 30),
            "  a.jpg      a picture that is\n    described at length"
        );
        // An indented line keeps its indentation, and a long word stays whole.
        let path = format!("  {} a picture", "/x".repeat(50));
        let wrapped = wrap(&path, 80);
        assert_eq!(wrapped, format!("  {}\n    a picture", "/x".repeat(50)));
        // A long word after a break gives up indentation to fit.
        let wrapped = wrap(&format!("  open {}", "/x".repeat(39)), 80);
        assert_eq!(wrapped, format!("  open\n  {}", "/x".repeat(39)));
    }

    #[test]
    fn one_line_keeps_the_start_and_the_end() {
        let line = format!(
            "retrying {} (4 tries left): reset (waiting 0.8s)",
            "x".repeat(100)
        );
        let cut = one_line(&line, 80);
        assert_eq!(width(&cut), 80, "{cut}");
        assert!(
            cut.starts_with("retrying xxx") && cut.ends_with("(waiting 0.8s)"),
            "{cut}"
        );
        assert!(cut.contains('…'));
        assert_eq!(one_line("a\nb", 80), "a b");
    }

    #[test]
    fn a_lead_stays_whole_and_its_detail_is_cut() {
        let line = lead_and_detail(
            "retrying 4103246599/thumb (4 tries left): ",
            "the media host answered HTTP 503 Service Unavailable (waiting 0.8s)",
            80,
        );
        assert_eq!(
            line,
            "retrying 4103246599/thumb (4 tries left): the media host answered HTTP 503 Serv…"
        );
        assert_eq!(width(&line), 80);
        assert_eq!(lead_and_detail("a: ", "b", 80), "a: b");
        let long = lead_and_detail(&"x".repeat(75), ": a reason", 80);
        assert_eq!(width(&long), 80);
    }
}
