//! The index form of a list view, for disks that make no links (exFAT and
//! FAT drives, some network shares): `index.html`, a page a browser opens
//! from the disk, and `files.txt`, the same paths one a line for scripts.
//! [`super::views`] decides when a view takes this form and writes these
//! files; this module says what they hold and which files are ours.
//!
//! Invariants:
//! - Paths are relative to the view folder (`../../media/<dir>/<file>`),
//!   made from paths checked by [`archive_path`], so an index works
//!   wherever the archive is and never points outside `media/`.
//! - What the files hold depends only on the list's name and files (no
//!   time), so an unchanged view gives the same bytes and is not rewritten.
//! - A file is ours only when it holds what we write ([`recognise`]): a
//!   page beginning with [`PAGE_MARK`], a list of nothing but paths into
//!   `media/`, or what an interrupted write of either left. A person's own
//!   `index.html` is never taken for one.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use crate::archive::archive_path;
use crate::archive::dir::{Access, Entry, EntryKind, Folder};
use crate::human_bytes;

/// A file a view shows: its path inside the archive and its size.
pub struct Wanted {
    pub target: PathBuf,
    pub size: u64,
}

/// The index files of a view.
pub const PAGE_NAME: &str = "index.html";
pub const LIST_NAME: &str = "files.txt";
/// How our `index.html` begins, which tells it from a person's own.
pub const PAGE_MARK: &str = "<!DOCTYPE html>\n<!-- vault-mirror list view:";
/// Bumped when the page changes, so that views written before are written
/// again (the view's digest includes it).
pub const PAGE_VERSION: &str = "index 1";
/// Larger files under an index's names are not ours: never read whole.
const MAX_INDEX_BYTES: u64 = 256 << 20;

/// An index file of ours found in a view folder.
pub enum IndexFile {
    /// Our `index.html`, its bytes.
    Page(Vec<u8>),
    /// Our `files.txt`, its bytes.
    List(Vec<u8>),
    /// What an interrupted write of either left.
    Leftover,
}

/// Which index file of ours the entry `name` of `folder` is, if it is
/// one (`entry`: what sits there, links not followed). Ours only when it
/// holds what we write, so that removing or replacing it loses nothing
/// (the next run writes it again). It is read through the folder held
/// open, never through a link.
pub fn recognise(folder: &Folder, name: &str, entry: Entry) -> Option<IndexFile> {
    if entry.kind != EntryKind::File {
        return None;
    }
    let read = || {
        if entry.len > MAX_INDEX_BYTES {
            return None;
        }
        let mut bytes = Vec::new();
        folder
            .open_file(name, Access::Read)
            .ok()?
            .read_to_end(&mut bytes)
            .ok()?;
        Some(bytes)
    };
    match name {
        PAGE_NAME => read()
            .filter(|bytes| bytes.starts_with(PAGE_MARK.as_bytes()))
            .map(IndexFile::Page),
        LIST_NAME => read()
            .filter(|bytes| is_file_list(bytes))
            .map(IndexFile::List),
        _ => is_leftover(name).then_some(IndexFile::Leftover),
    }
}

/// `files.txt`: each file's path from the view folder, one a line, in
/// the order of their names.
pub fn file_list(files: &BTreeMap<String, Wanted>) -> String {
    files
        .values()
        .map(|wanted| format!("../../{}\n", wanted.target.to_string_lossy()))
        .collect()
}

/// The lines of a `files.txt`.
pub fn list_lines(bytes: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(bytes)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.is_empty())
}

/// `index.html`: the list's name, then each file as a relative link (a
/// browser opens it from the disk, no network), with its size.
pub fn page(name: &str, files: &BTreeMap<String, Wanted>) -> String {
    page_from(name, files, "../../")
}

/// [`page`] of a view folder `up` (`../../`, `../`) below the archive root.
pub fn page_from(name: &str, files: &BTreeMap<String, Wanted>, up: &str) -> String {
    let title = html_text(name);
    let total = files.values().map(|wanted| wanted.size).sum::<u64>();
    let count = match files.len() {
        1 => "1 file".to_owned(),
        count => format!("{count} files"),
    };
    let mut page = format!(
        "{PAGE_MARK} written by each run; this disk makes no links, so the list's \
files are linked from here -->
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; margin: 0; }}
p {{ opacity: .75; margin: .25rem 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td {{ padding: .25rem .5rem; border-bottom: 1px solid #8883; }}
td + td {{ text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #111; color: #ddd; }} a {{ color: #8bf; }} }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{count}, {size}. Each opens from the archive's <code>media/</code> folder; \
<a href=\"{LIST_NAME}\">{LIST_NAME}</a> lists the same paths, one a line.</p>
<table>
",
        size = human_bytes(total),
    );
    for (entry_name, wanted) in files {
        page.push_str(&format!(
            "<tr><td><a href=\"{up}{}\">{}</a></td><td>{}</td></tr>\n",
            html_text(&wanted.target.to_string_lossy()),
            html_text(entry_name),
            human_bytes(wanted.size)
        ));
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

/// `text` safe in HTML text and attribute values.
pub(crate) fn html_text(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => safe.push_str("&amp;"),
            '<' => safe.push_str("&lt;"),
            '>' => safe.push_str("&gt;"),
            '"' => safe.push_str("&quot;"),
            '\'' => safe.push_str("&#39;"),
            c => safe.push(c),
        }
    }
    safe
}

/// Whether `bytes` are a `files.txt` as we write it.
fn is_file_list(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    (text.is_empty() || text.ends_with('\n'))
        && text.lines().all(|line| {
            line.strip_prefix("../../")
                .is_some_and(|path| path.starts_with("media/") && archive_path(path).is_ok())
        })
}

/// The temporary names [`Folder::write_atomically`] gives our index files:
/// `.<name>.<process id>.tmp`.
fn is_leftover(name: &str) -> bool {
    [PAGE_NAME, LIST_NAME].iter().any(|file_name| {
        name.strip_prefix('.')
            .and_then(|rest| rest.strip_prefix(file_name))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The targets a page links to, but its own `files.txt`.
    fn page_targets(page: &str) -> Vec<String> {
        page.split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|href| *href != LIST_NAME)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_page_escapes_the_list_name() {
        let files = BTreeMap::from([(
            "10.full.jpg".to_owned(),
            Wanted {
                target: PathBuf::from("media/10/full.jpg"),
                size: 2048,
            },
        )]);
        let page = page("</title><script>alert('x')</script> & \"q\"", &files);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(
            "&lt;/title&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        ));
        assert!(page.contains("1 file, "), "{page}");
        assert_eq!(page_targets(&page), ["../../media/10/full.jpg"]);
        assert!(is_file_list(file_list(&files).as_bytes()));
        for not_ours in ["notes\n", "../../etc/passwd\n", "../../media/10/full.jpg"] {
            assert!(!is_file_list(not_ours.as_bytes()), "{not_ours:?}");
        }
        assert!(is_leftover(".index.html.123.tmp"));
        assert!(!is_leftover(".index.html.x.tmp"));
        assert!(!is_leftover("index.html"));
    }
}
