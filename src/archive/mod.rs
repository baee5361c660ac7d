//! The archive on disk: where files go ([`paths`]), what makes a file
//! acceptable ([`content`]), whether files are still as they were
//! verified ([`verify`]), and the offline archive a person keeps —
//! per-list [`views`] (indexes where the disk makes no links), the
//! [`export`] (manifest, `SHA256SUMS`, the [`gallery`]), [`prune`] of
//! media gone upstream, and kept [`versions`] of bytes a change upstream
//! replaced.
//!
//! Invariants: everything under `<out>` is reached through [`dir`]
//! ([`ArchiveDir`]), never through a link, so nothing is read, written,
//! renamed or deleted outside the archive; every path read from the
//! database is checked with [`archive_path`] before a file is touched, so
//! nothing here reads, links or deletes outside `<out>/media` and
//! `<out>/.versions`; every file written at a final path goes through
//! [`Folder::write_atomically`].

pub mod agency;
mod backend;
pub mod bucket;
pub mod content;
pub mod dir;
mod error;
pub mod export;
pub mod file_dates;
pub mod gallery;
pub mod paths;
pub mod prune;
pub mod sidecars;
pub mod snapshot;
pub mod space;
pub mod template_views;
pub mod verify;
pub mod versions;
pub mod view_index;
pub mod views;

use std::io::Write;
use std::path::{Component, Path, PathBuf};

#[cfg(test)]
pub use backend::testing;
pub use backend::{Archive, Kind, Stat, hash_reader};
pub use dir::{ArchiveDir, Folder};
pub use error::ArchiveError;

/// The top-level folders that hold archived bytes.
pub const BYTE_FOLDERS: [&str; 2] = ["media", ".versions"];

/// Checks a path from the database: relative, made only of the characters
/// our sanitised names use (`[a-z0-9_~.-]` and `/`), no `.` or `..`
/// component, under `media/` or `.versions/`. Returns it as a `PathBuf`.
pub fn archive_path(relative: &str) -> Result<PathBuf, ArchiveError> {
    let unsafe_path = |reason: &str| ArchiveError::UnsafePath {
        path: relative.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(bad) = relative.chars().find(|c| !is_name_char(*c) && *c != '/') {
        return Err(unsafe_path(&format!(
            "the character {bad:?} is not one vault-mirror writes"
        )));
    }
    let path = crate::location::path_of_key(relative);
    let mut components = path.components();
    let first = components.next();
    if !first.is_some_and(|first| BYTE_FOLDERS.iter().any(|top| first.as_os_str() == *top)) {
        return Err(unsafe_path("not under media/ or .versions/"));
    }
    if !path
        .components()
        .all(|component| matches!(component, Component::Normal(_)))
        || relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        || path.components().count() < 3
    {
        return Err(unsafe_path("not a plain <folder>/<media>/<file> path"));
    }
    Ok(path)
}

/// Characters of the names vault-mirror writes.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '~' | '.' | '-')
}

/// Writes `path` atomically, as [`Folder::write_atomically`] does in the
/// folder that holds it (reached by its path: it is the root here).
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let folder = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (_, name) = dir::split_file(path)?;
    ArchiveDir::open(folder).write_atomically(Path::new(name), fill)
}

/// An epoch-ms time as RFC 3339 UTC with milliseconds.
pub fn utc(ms: i64) -> String {
    let time = crate::epoch_time(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

/// An epoch-ms time as a compact UTC stamp made only of our name
/// characters, so it is safe in file names on any file system
/// (`20260101-000005` for 2026-01-01T00:00:05Z).
pub fn file_stamp(ms: i64) -> String {
    let time = crate::epoch_time(ms);
    // `2026-01-01T00:00:05Z` → `20260101-000005`.
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace(['-', ':', 'Z'], "")
        .replace('T', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_paths_are_accepted() {
        assert!(archive_path("media/4492994399/full.jpg").is_ok());
        assert!(archive_path(".versions/~2e~2e/full-20260101-000000.jpg").is_ok());
        for bad in [
            "",
            "media",
            "media/x",
            "/etc/passwd",
            "media/../../etc/passwd",
            "media/./x/full.jpg",
            "media//full.jpg",
            "lists/1/full.jpg",
            "media/A/full.jpg",
            "media/a b/full.jpg",
            "media/a\\b/full.jpg",
            "media/a\n/full.jpg",
        ] {
            assert!(archive_path(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("SHA256SUMS");
        write_atomically(&path, |writer| writer.write_all(b"one\n")).unwrap();
        write_atomically(&path, |writer| writer.write_all(b"two\n")).unwrap();
        let failed = write_atomically(&path, |writer| {
            writer.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn times() {
        assert_eq!(utc(1_767_225_605_000), "2026-01-01T00:00:05.000Z");
        assert_eq!(file_stamp(1_767_225_605_123), "20260101-000005");
    }
}
