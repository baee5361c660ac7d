//! The top of an archive of many connections (an agency's):
//!
//! ```text
//! <out>/
//!   index.html          every connection: username, counts, size, last run
//!   connections.json    which folder holds which connection id (and username)
//!   <safe id>/          one complete archive per connection
//! ```
//!
//! [`overview`] reads each connection's own database (figures, last run);
//! `status` prints it as a table and [`write_index`] as a page.
//!
//! Invariants: only folders that hold an archive database are listed;
//! every name and username is escaped before it reaches the page
//! ([`super::view_index::html_text`]); links are relative, so the page
//! works wherever the archive is; both files are written atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive::view_index::html_text;
use crate::archive::{ArchiveError, utc};
use crate::human_bytes;
use crate::settings::default_db;
use crate::store::{ArchiveFigures, RunRecord, Store};

/// The page at the top.
pub const INDEX: &str = "index.html";
/// Which folder holds which connection.
pub const REGISTRY: &str = "connections.json";

/// One connection as the registry keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registered {
    pub id: String,
    /// The folder under `<out>` (the id through `safe_name`).
    pub folder: String,
    pub username: Option<String>,
}

/// One connection of an agency's archive, as its database tells it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRow {
    pub id: String,
    pub folder: String,
    pub username: Option<String>,
    pub figures: ArchiveFigures,
    /// The latest run, whatever its command.
    pub last_run: Option<RunRecord>,
    /// Whether the connection's gallery (`<folder>/index.html`) is there.
    pub gallery: bool,
}

/// Whether `out` is an agency's archive: no database of its own, and at
/// least one folder beneath it that holds one.
pub fn is_agency(out: &Path) -> bool {
    !default_db(out).exists() && !archive_folders(out).is_empty()
}

/// The folders directly under `out` that hold an archive database, by name.
fn archive_folders(out: &Path) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(out) else {
        return Vec::new();
    };
    let mut folders: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| default_db(&out.join(name)).is_file())
        .collect();
    folders.sort();
    folders
}

/// The registry at `<out>/connections.json` (empty when there is none or
/// it cannot be read: it only names things).
pub fn registry(out: &Path) -> Vec<Registered> {
    fs_err::read(out.join(REGISTRY))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Adds or updates `connections` in the registry (a username once known
/// is kept when a later run does not know it).
pub fn register(out: &Path, connections: &[Registered]) -> Result<(), ArchiveError> {
    let text = registry_text(&merged(registry(out), connections));
    write_root_file(out, REGISTRY, &text)
}

/// `known` with `connections` added or updated, by id (a username once
/// known is kept when a later run does not know it).
pub fn merged(known: Vec<Registered>, connections: &[Registered]) -> Vec<Registered> {
    let mut known: BTreeMap<String, Registered> = known
        .into_iter()
        .map(|entry| (entry.id.clone(), entry))
        .collect();
    for connection in connections {
        let entry = known.entry(connection.id.clone()).or_default();
        let username = connection.username.clone().or(entry.username.take());
        *entry = Registered {
            username,
            ..connection.clone()
        };
    }
    known.into_values().collect()
}

/// The registry file's text.
pub fn registry_text(entries: &[Registered]) -> String {
    serde_json::to_string_pretty(entries).unwrap_or_else(|_| "[]".to_owned())
}

/// One connection's row, from its database at `db` (`None` when there is
/// no database there).
pub fn row(
    entry: Registered,
    db: &Path,
    gallery: bool,
) -> Result<Option<ConnectionRow>, ArchiveError> {
    let Some(store) = Store::open_existing(db)? else {
        return Ok(None);
    };
    Ok(Some(ConnectionRow {
        id: entry.id,
        username: entry.username,
        figures: store.archive_figures()?,
        last_run: store.last_runs()?.into_iter().next(),
        gallery,
        folder: entry.folder,
    }))
}

/// Every connection archived under `out`: the registry's, then any other
/// folder holding a database (named by its folder).
pub fn overview(out: &Path) -> Result<Vec<ConnectionRow>, ArchiveError> {
    let registered: BTreeMap<String, Registered> = registry(out)
        .into_iter()
        .map(|entry| (entry.folder.clone(), entry))
        .collect();
    let mut rows = Vec::new();
    for folder in archive_folders(out) {
        let entry = registered.get(&folder).cloned().unwrap_or(Registered {
            id: folder.clone(),
            folder: folder.clone(),
            username: None,
        });
        let archive = out.join(&folder);
        let gallery = archive.join(super::export::GALLERY).is_file();
        rows.extend(row(entry, &default_db(&archive), gallery)?);
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}

/// `<out>/index.html` for `rows`, written at `now` (epoch ms).
pub fn write_index(out: &Path, rows: &[ConnectionRow], now: i64) -> Result<PathBuf, ArchiveError> {
    write_root_file(out, INDEX, &render(rows, now))?;
    Ok(out.join(INDEX))
}

fn write_root_file(out: &Path, name: &str, text: &str) -> Result<(), ArchiveError> {
    super::write_atomically(&out.join(name), |file| file.write_all(text.as_bytes()))?;
    Ok(())
}

/// The page: one row per connection, linking into its gallery.
pub fn render(rows: &[ConnectionRow], now: i64) -> String {
    let total_bytes: u64 = rows.iter().map(|row| row.figures.bytes).sum();
    let total_files: u64 = rows.iter().map(|row| row.figures.verified).sum();
    let mut page = format!(
        "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>vault-mirror: {count}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; margin: 0; }}
p {{ opacity: .75; margin: .25rem 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ padding: .25rem .5rem; border-bottom: 1px solid #8883; text-align: left; }}
td.n, th.n {{ text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #111; color: #ddd; }} a {{ color: #8bf; }} }}
</style>
</head>
<body>
<h1>{count}</h1>
<p>{files} verified files, {size}; written {written}. Each connection is a complete archive \
of its own: open its gallery, or check it with <code>sha256sum -c SHA256SUMS</code> in its folder.</p>
<table>
<tr><th>Connection</th><th>Username</th><th class=\"n\">Media</th><th class=\"n\">Files</th>\
<th class=\"n\">Pending</th><th class=\"n\">Failed</th><th class=\"n\">Size</th><th>Last run</th><th>Outcome</th></tr>
",
        count = html_text(&crate::counted(rows.len() as u64, "connection")),
        files = total_files,
        size = human_bytes(total_bytes),
        written = utc(now),
    );
    for row in rows {
        let id = html_text(&row.id);
        let name = if row.gallery {
            format!(
                "<a href=\"{}/{}\">{id}</a>",
                html_text(&row.folder),
                super::export::GALLERY
            )
        } else {
            id
        };
        let (when, outcome) = match &row.last_run {
            Some(run) => (
                utc(run.finished_at.unwrap_or(run.started_at)),
                run_outcome(run),
            ),
            None => (String::new(), "no run yet".to_owned()),
        };
        let figures = &row.figures;
        page.push_str(&format!(
            "<tr><td>{name}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>\n",
            html_text(row.username.as_deref().unwrap_or("")),
            figures.members,
            figures.verified,
            figures.pending,
            figures.failed,
            human_bytes(figures.bytes),
            html_text(&when),
            html_text(&outcome),
        ));
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

/// `complete`, `partial (exit 3)`, `refused (exit 4)`, … as the run
/// recorded it; `unfinished`
/// when it never recorded an end (running, or stopped hard).
pub fn run_outcome(run: &RunRecord) -> String {
    match (&run.outcome, run.exit_code) {
        // The API refused the connection: it needs re-linking.
        (Some(_), Some(4)) => "refused (exit 4)".to_owned(),
        (Some(outcome), Some(0) | None) => outcome.clone(),
        (Some(outcome), Some(code)) => format!("{outcome} (exit {code})"),
        (None, _) => "unfinished".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, username: Option<&str>, gallery: bool) -> ConnectionRow {
        ConnectionRow {
            id: id.to_owned(),
            folder: crate::names::safe_name(id),
            username: username.map(str::to_owned),
            figures: ArchiveFigures {
                members: 3,
                verified: 6,
                bytes: 2048,
                ..ArchiveFigures::default()
            },
            last_run: Some(RunRecord {
                run_id: 1,
                command: "mirror".into(),
                started_at: 0,
                finished_at: Some(1000),
                outcome: Some("partial".into()),
                exit_code: Some(3),
            }),
            gallery,
        }
    }

    #[test]
    fn the_page_escapes_names_and_links_into_each_gallery() {
        let rows = [
            row("conn_01", Some("<script>alert(1)</script>"), true),
            row("Conn/../x", None, false),
        ];
        let page = render(&rows, 0);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<a href=\"conn_01/index.html\">conn_01</a>"));
        // No gallery yet: named, not linked.
        assert!(page.contains("<td>Conn/../x</td>"), "{page}");
        assert!(page.contains("partial (exit 3)"));
        assert!(page.contains("2 connections"));
    }

    #[test]
    fn the_registry_keeps_a_username_once_known() {
        let out = tempfile::tempdir().unwrap();
        let entry = |username: Option<&str>| Registered {
            id: "conn_01".into(),
            folder: "conn_01".into(),
            username: username.map(str::to_owned),
        };
        register(out.path(), &[entry(Some("ann"))]).unwrap();
        register(out.path(), &[entry(None)]).unwrap();
        assert_eq!(registry(out.path()), [entry(Some("ann"))]);
        assert!(!is_agency(out.path()));
    }
}
