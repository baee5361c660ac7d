//! The top of an archive of many connections (an agency's):
//!
//! ```text
//! <out>/
//!   index.html          every connection: username, counts, size, oldest
//!                       and newest media date, last run
//!   connections.json    which folder holds which connection id (and username)
//!   <safe id>/          one complete archive per connection
//! ```
//!
//! One [`Agency`] for both backends: on object storage the registry and
//! the page are objects at the prefix, and each connection's database is
//! its local state, restored from its snapshot where this machine has
//! none. [`Agency::rows`] reads each connection's own database (figures,
//! last run); `status` prints them as a table and
//! [`Agency::write_overview`] as a page.
//!
//! Invariants: on a disk only folders that hold an archive database are
//! listed;
//! every name and username is escaped before it reaches the page
//! ([`super::view_index::html_text`]); links are relative, so the page
//! works wherever the archive is; both files are written atomically.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::archive::bucket::snapshot::restore_state;
use crate::archive::view_index::html_text;
use crate::archive::{Archive, ArchiveError, utc};
use crate::human_bytes;
use crate::settings::{Settings, default_db};
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
    /// The oldest and newest media date of its verified files (epoch ms).
    pub media_dates: Option<(i64, i64)>,
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

/// An agency's archive: a folder or a prefix with one complete archive per
/// connection beneath it (`<out>/<safe id>/`), its registry and its page.
/// The same on a disk and on object storage; what differs is only where a
/// connection's database is (inside its folder, or in the local state
/// folder of its prefix, restored from its snapshot where this machine has
/// none: a connection another shard mirrors).
pub struct Agency {
    base: Settings,
    archive: Archive,
}

impl Agency {
    /// The agency's archive at `base`'s `--out` (it need not hold anything yet).
    pub fn open(base: &Settings) -> Result<Agency, ArchiveError> {
        Ok(Agency {
            base: base.clone(),
            archive: Archive::open(&base.archive)?,
        })
    }

    /// The agency's archive at `base`, or `None` when `--out` is not one:
    /// on a disk, no database of its own and at least one folder beneath
    /// that holds one; on object storage, no local database for the prefix
    /// and a registry at it.
    pub async fn find(base: &Settings) -> Result<Option<Agency>, ArchiveError> {
        let agency = match base.archive.bucket() {
            None if is_agency(&base.local) => Agency::open(base)?,
            Some(_) if !base.db.exists() => {
                let agency = Agency::open(base)?;
                if agency.registry().await?.is_empty() {
                    return Ok(None);
                }
                agency
            }
            _ => return Ok(None),
        };
        Ok(Some(agency))
    }

    /// The registry (empty when there is none or it cannot be read: it
    /// only names things).
    pub async fn registry(&self) -> Result<Vec<Registered>, ArchiveError> {
        Ok(self
            .archive
            .read_small(REGISTRY)
            .await?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default())
    }

    /// Every connection archived here, each with its own archive's
    /// settings (its database restored from its snapshot first where this
    /// machine has none): the registry's, and on a disk any other folder
    /// holding a database (named by its folder).
    pub async fn connections(&self) -> Result<Vec<(Registered, Settings)>, ArchiveError> {
        let registered = self.registry().await?;
        let mut found = Vec::new();
        match &self.archive {
            Archive::Disk(_) => {
                let by_folder: BTreeMap<String, Registered> = registered
                    .into_iter()
                    .map(|entry| (entry.folder.clone(), entry))
                    .collect();
                for folder in archive_folders(&self.base.local) {
                    let entry = by_folder.get(&folder).cloned().unwrap_or(Registered {
                        id: folder.clone(),
                        folder: folder.clone(),
                        username: None,
                    });
                    let settings = self
                        .base
                        .for_connection_at(&entry.id, self.base.local.join(&folder));
                    found.push((entry, settings));
                }
            }
            Archive::Bucket(_) => {
                for entry in registered {
                    let settings = self.base.for_connection(&entry.id)?;
                    restore_state(&settings).await?;
                    found.push((entry, settings));
                }
            }
        }
        found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(found)
    }

    /// One row per connection, from its own database.
    pub async fn rows(&self) -> Result<Vec<ConnectionRow>, ArchiveError> {
        let mut rows = Vec::new();
        for (entry, settings) in self.connections().await? {
            // Its folder (or prefix) is `entry.folder` under this archive's.
            let gallery = self
                .archive
                .stat(&format!("{}/{}", entry.folder, super::export::GALLERY))
                .await?
                .is_some();
            rows.extend(row(entry, &settings.db, gallery)?);
        }
        Ok(rows)
    }

    /// Adds or updates `connections` in the registry (a username once
    /// known is kept when a later run does not know it), then writes the
    /// page from every connection's row (the other shards' too). Returns
    /// where the page is.
    pub async fn write_overview(
        &self,
        connections: &[Registered],
        now: i64,
    ) -> Result<String, ArchiveError> {
        let entries = merged(self.registry().await?, connections);
        self.archive
            .write(
                REGISTRY,
                registry_text(&entries).into_bytes(),
                "application/json",
            )
            .await?;
        let rows = self.rows().await?;
        self.archive
            .write(
                INDEX,
                render(&rows, now).into_bytes(),
                "text/html; charset=utf-8",
            )
            .await?;
        Ok(self.archive.location().shown_file(INDEX))
    }
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
fn registry_text(entries: &[Registered]) -> String {
    serde_json::to_string_pretty(entries).unwrap_or_else(|_| "[]".to_owned())
}

/// One connection's row, from its database at `db` (`None` when there is
/// no database there).
fn row(entry: Registered, db: &Path, gallery: bool) -> Result<Option<ConnectionRow>, ArchiveError> {
    let Some(store) = Store::open_existing(db)? else {
        return Ok(None);
    };
    Ok(Some(ConnectionRow {
        id: entry.id,
        username: entry.username,
        figures: store.archive_figures()?,
        last_run: store.last_runs()?.into_iter().next(),
        media_dates: store.media_date_range()?,
        gallery,
        folder: entry.folder,
    }))
}

/// The page's stylesheet: the gallery's (`gallery.html`) colours, fonts and
/// light/dark scheme; on a narrow screen the table scrolls inside its own
/// box, never the page.
const STYLE: &str = r#":root {
  --bg: #f4f5f8; --panel: #ffffff; --text: #171a21; --muted: #687082; --line: #e2e5eb;
  --accent: #4a63e7; --accent-soft: rgba(74, 99, 231, .12); --chip: #eceff5;
  --warn: #b4541a; --shadow: 0 1px 2px rgba(16, 24, 40, .06), 0 6px 18px rgba(16, 24, 40, .06);
  --radius: 12px;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d0f13; --panel: #151920; --text: #e8eaf0; --muted: #8f98aa; --line: #232834;
    --accent: #8fa2ff; --accent-soft: rgba(143, 162, 255, .14); --chip: #1e2430;
    --warn: #f0a46b; --shadow: 0 1px 2px rgba(0, 0, 0, .4), 0 8px 24px rgba(0, 0, 0, .35);
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body {
  background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  -webkit-font-smoothing: antialiased;
}
a { color: var(--accent); }
.top { display: flex; gap: 12px; align-items: center; padding: 14px 24px; border-bottom: 1px solid var(--line); }
.logo {
  width: 38px; height: 38px; border-radius: 10px; display: grid; place-items: center; flex: none;
  background: linear-gradient(135deg, #5b7cfa, #a45bf0); color: #fff; box-shadow: var(--shadow);
}
h1 { font-size: 18px; margin: 0; letter-spacing: -.01em; }
.totals { margin: 0; color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
main { max-width: 72rem; margin: 0 auto; padding: 20px 24px 40px; }
.scroll {
  max-width: 100%; overflow-x: auto; background: var(--panel); border-radius: var(--radius);
  box-shadow: var(--shadow);
}
table { border-collapse: collapse; width: 100%; }
th, td { padding: 10px 14px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
tr:last-child td { border-bottom: 0; }
th { font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.failed { color: var(--warn); }
time { font-variant-numeric: tabular-nums; }
footer { padding: 0 24px 32px; color: var(--muted); font-size: 12px; text-align: center; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--chip); padding: 1px 5px; border-radius: 5px; }
@media (max-width: 760px) {
  .top { padding: 12px 14px; }
  main { padding: 12px 14px 32px; }
  th, td { padding: 8px 10px; }
}
"#;

/// The gallery's logo, so the page reads as the same thing.
const LOGO: &str = r#"<div class="logo" aria-hidden="true"><svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><rect x="3" y="4" width="18" height="16" rx="3"/><circle cx="9" cy="10" r="2"/><path d="M21 16l-5-5-9 9"/></svg></div>"#;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An epoch-ms time for people: `7 Dec 2026, 06:41 UTC` (the exact time
/// as RFC 3339 when it cannot be read apart).
pub fn human_utc(ms: i64) -> String {
    let exact = utc(ms);
    // `2026-12-07T06:41:00.000Z`
    let part = |range: std::ops::Range<usize>| exact.get(range).and_then(|s| s.parse::<u32>().ok());
    match (part(0..4), part(5..7), part(8..10), exact.get(11..16)) {
        (Some(year), Some(month @ 1..=12), Some(day), Some(clock)) => {
            format!("{day} {} {year}, {clock} UTC", MONTHS[month as usize - 1])
        }
        _ => exact,
    }
}

/// `<time>` for an epoch-ms time: shown for people, exact (RFC 3339) in
/// its `datetime` and `title`.
fn time_element(ms: i64) -> String {
    let exact = html_text(&utc(ms));
    format!(
        "<time datetime=\"{exact}\" title=\"{exact}\">{}</time>",
        html_text(&human_utc(ms))
    )
}

/// `<time>` for a media's date: the day for people (`17 May 2025`), the
/// exact time in its `datetime` and `title`.
fn day_element(ms: i64) -> String {
    let exact = html_text(&utc(ms));
    let shown = human_utc(ms);
    let day = shown.split(',').next().unwrap_or(&shown);
    format!(
        "<time datetime=\"{exact}\" title=\"{exact}\">{}</time>",
        html_text(day)
    )
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
<meta name=\"color-scheme\" content=\"light dark\">
<meta name=\"generator\" content=\"vault-mirror\">
<title>vault-mirror: {count}</title>
<style>
{STYLE}</style>
</head>
<body>
<header class=\"top\">
{LOGO}
<div><h1>{count}</h1><p class=\"totals\">{files} verified files, {size}; written {written}</p></div>
</header>
<main>
<div class=\"scroll\" id=\"connections\">
<table>
<tr><th>Connection</th><th>Username</th><th class=\"n\">Media</th><th class=\"n\">Files</th>\
<th class=\"n\">Pending</th><th class=\"n\">Failed</th><th class=\"n\">Size</th><th>Oldest media</th><th>Newest media</th>\
<th>Last run</th><th>Outcome</th></tr>
",
        count = html_text(&crate::counted(rows.len() as u64, "connection")),
        files = total_files,
        size = human_bytes(total_bytes),
        written = time_element(now),
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
                time_element(run.finished_at.unwrap_or(run.started_at)),
                run_outcome(run),
            ),
            None => (String::new(), "no run yet".to_owned()),
        };
        let figures = &row.figures;
        let failed = if figures.failed > 0 { "n failed" } else { "n" };
        let (oldest, newest) = row
            .media_dates
            .map(|(oldest, newest)| (day_element(oldest), day_element(newest)))
            .unwrap_or_default();
        page.push_str(&format!(
            "<tr><td>{name}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"{failed}\">{}</td><td class=\"n\">{}</td><td>{oldest}</td><td>{newest}</td>\
<td>{when}</td><td>{}</td></tr>\n",
            html_text(row.username.as_deref().unwrap_or("")),
            figures.members,
            figures.verified,
            figures.pending,
            figures.failed,
            human_bytes(figures.bytes),
            html_text(&outcome),
        ));
    }
    page.push_str(
        "</table>\n</div>\n</main>\n<footer>Written by vault-mirror. Each connection is a complete \
archive of its own: open its gallery, or check it with <code>sha256sum -c SHA256SUMS</code> \
in its folder (on Windows, with the PowerShell line its gallery's footer gives).</footer>\n</body>\n</html>\n",
    );
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
            media_dates: Some((1_747_483_200_000, 1_796_625_669_250)),
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
        // The oldest and newest media, by day.
        assert!(page.contains(">17 May 2025</time></td><td><time"), "{page}");
        assert!(page.contains(">7 Dec 2026</time></td>"), "{page}");
    }

    #[test]
    fn times_read_for_people_and_stay_exact_in_the_markup() {
        // 2026-12-07T06:41:09.250Z
        let at = 1_796_625_669_250;
        assert_eq!(utc(at), "2026-12-07T06:41:09.250Z");
        assert_eq!(human_utc(at), "7 Dec 2026, 06:41 UTC");
        assert_eq!(human_utc(0), "1 Jan 1970, 00:00 UTC");
        let mut ran = row("conn_01", None, true);
        ran.last_run.as_mut().unwrap().finished_at = Some(at);
        let page = render(&[ran], at);
        let time = "<time datetime=\"2026-12-07T06:41:09.250Z\" \
                    title=\"2026-12-07T06:41:09.250Z\">7 Dec 2026, 06:41 UTC</time>";
        // Written at, and the connection's last run.
        assert_eq!(page.matches(time).count(), 2, "{page}");
        assert!(!page.contains(">2026-12-07T"), "{page}");
    }

    #[test]
    fn the_table_scrolls_in_its_own_box_and_the_page_is_self_contained() {
        let page = render(&[row("conn_01", Some("ann"), true)], 0);
        assert!(page.contains("<div class=\"scroll\" id=\"connections\">\n<table>"));
        assert!(page.contains(".scroll {"), "{page}");
        assert!(page.contains("overflow-x: auto"), "{page}");
        assert!(page.contains("name=\"viewport\""));
        assert!(page.contains("prefers-color-scheme: dark"));
        for external in ["http://", "https://", "<link", "@import", "src="] {
            assert!(!page.contains(external), "{external} in {page}");
        }
    }

    #[tokio::test]
    async fn the_registry_keeps_a_username_once_known() {
        let out = tempfile::tempdir().unwrap();
        let base = Settings::new(out.path().to_owned());
        let agency = Agency::open(&base).unwrap();
        let entry = |username: Option<&str>| Registered {
            id: "conn_01".into(),
            folder: "conn_01".into(),
            username: username.map(str::to_owned),
        };
        agency
            .write_overview(&[entry(Some("ann"))], 0)
            .await
            .unwrap();
        agency.write_overview(&[entry(None)], 0).await.unwrap();
        assert_eq!(agency.registry().await.unwrap(), [entry(Some("ann"))]);
        assert!(!is_agency(out.path()));
        assert!(out.path().join(INDEX).is_file());
    }
}
