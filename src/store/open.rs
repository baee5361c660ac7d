//! Opening the database: the file (created private), the connection's
//! pragmas, the check that the file is ours, and the migrations.
//!
//! Invariants: migrations are append-only, numbered from 1, and migration
//! `n` is applied (in its own transaction, with `user_version = n`) only
//! to a database whose `user_version` is below `n`. A newer database is
//! refused, never downgraded. Opening reads the header and the schema;
//! damage deeper in the file is reported by SQLite when a page is read,
//! and [`Store::check`] (run by `verify`) reads every page — a whole-file
//! check on each open would make every run cost the size of the archive.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::database::Store;
use crate::store::error::{StoreError, classify};

/// Marks the file as a vault-mirror database ("VMIR").
const APPLICATION_ID: i64 = 0x564D_4952;

/// Each migration with the `user_version` it brings the database to.
/// Append only; the test `migrations_are_numbered_from_one` holds the
/// numbers to 1, 2, 3, …
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../schema.sql")),
    (2, include_str!("../../migrations/002-archive.sql")),
    (3, include_str!("../../migrations/003-rerun-cost.sql")),
    (4, include_str!("../../migrations/004-history.sql")),
    (5, include_str!("../../migrations/005-checks.sql")),
    (6, include_str!("../../migrations/006-dates.sql")),
    (7, include_str!("../../migrations/007-resume.sql")),
];

/// The schema version this build writes.
fn known_version() -> i64 {
    MIGRATIONS.last().map_or(0, |&(version, _)| version)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: path.to_owned(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::durable::create_dir_all(parent)
                .map_err(|error| open_error(error.to_string()))?;
        }
        if !path.exists() {
            create_private_file(path).map_err(|error| open_error(error.to_string()))?;
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| classify(path, error))?;
        let store = Store {
            path: path.to_owned(),
            connection: Mutex::new(connection),
            progress_synced: Mutex::new(std::time::Instant::now()),
        };
        store.with(|connection| {
            connection.busy_timeout(Duration::from_secs(5))?;
            // Room for every statement the pipeline repeats (rusqlite keeps 16).
            connection.set_prepared_statement_cache_capacity(64);
            // Test suites: `VAULT_MIRROR_TEST_DB_MAX_PAGES=<pages>` caps the
            // database's size, so a full disk under it can be tested
            // without filling one.
            if let Some(pages) = std::env::var("VAULT_MIRROR_TEST_DB_MAX_PAGES")
                .ok()
                .and_then(|text| text.parse::<u32>().ok())
            {
                connection.pragma_update(None, "max_page_count", pages)?;
            }
            Ok(())
        })?;
        store.prepare()?;
        Ok(store)
    }

    /// Opens the database at `path` if there is one; never creates it
    /// (for commands that only read, such as `status`).
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        Store::open(path).map(Some)
    }

    /// Checks that the file is ours and applies pending migrations.
    fn prepare(&self) -> Result<(), StoreError> {
        // Reading the header is the first thing that fails on a damaged file.
        let (application_id, version, tables) = self
            .with(|connection| {
                let pragma = |name: &str| -> rusqlite::Result<i64> {
                    connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                };
                let application_id = pragma("application_id")?;
                let version = pragma("user_version")?;
                let tables: i64 =
                    connection
                        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
                Ok((application_id, version, tables))
            })
            .map_err(|error| self.unreadable_is_not_ours(error))?;
        if application_id != APPLICATION_ID && !(application_id == 0 && tables == 0) {
            return Err(StoreError::NotOurs {
                path: self.path.clone(),
                reason: format!("application id {application_id:#x}, {tables} schema objects"),
            });
        }
        let known = known_version();
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        self.with(|connection| {
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        })?;
        for &(number, migration) in MIGRATIONS.iter().filter(|&&(number, _)| number > version) {
            self.transaction(|transaction| {
                transaction.execute_batch(migration)?;
                transaction.pragma_update(None, "user_version", number)?;
                transaction.pragma_update(None, "application_id", APPLICATION_ID)
            })?;
        }
        Ok(())
    }

    /// Runs `PRAGMA integrity_check`.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.with(|connection| connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)))
    }

    /// Reads every page of the database: `NotOurs` when it is damaged.
    pub fn check(&self) -> Result<(), StoreError> {
        match self.integrity_check() {
            Ok(check) if check == "ok" => Ok(()),
            Ok(check) => Err(StoreError::NotOurs {
                path: self.path.clone(),
                reason: format!("integrity check: {check}"),
            }),
            Err(error) => Err(self.unreadable_is_not_ours(error)),
        }
    }
}

/// Creates the empty database file, readable by its owner alone (it
/// holds what a person mirrors; nobody else's business), and syncs its
/// folder: SQLite syncs the file's bytes, never the new name.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = fs_err::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => {}
        // Made meanwhile by another process (a reader that opened it a
        // moment before): it is opened as it is.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) => return Err(error),
    }
    crate::durable::sync_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one() {
        let numbers: Vec<i64> = MIGRATIONS.iter().map(|&(number, _)| number).collect();
        let expected: Vec<i64> = (1..=known_version()).collect();
        assert_eq!(numbers, expected);
    }

    #[test]
    fn fresh_database_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.integrity_check().unwrap(), "ok");
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .with(|connection| connection.query_row("PRAGMA user_version", [], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, known_version());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn foreign_or_damaged_files_are_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(
            &junk,
            b"this is not a database at all, but it is somebody's data",
        )
        .unwrap();
        let error = Store::open(&junk).err().unwrap();
        assert!(matches!(error, StoreError::NotOurs { .. }), "{error}");
        assert_eq!(
            std::fs::read(&junk).unwrap(),
            b"this is not a database at all, but it is somebody's data"
        );

        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            Store::open(&foreign).err().unwrap(),
            StoreError::NotOurs { .. }
        ));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", known_version() + 1)
            .unwrap();
        let error = Store::open(&path).err().unwrap();
        assert!(
            matches!(error, StoreError::TooNew { found, known, .. }
                if found == known_version() + 1 && known == known_version()),
            "{error}"
        );
    }

    #[test]
    fn a_database_at_migration_1_is_upgraded_with_its_verified_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        {
            let connection = Connection::open(&path).unwrap();
            connection.execute_batch(MIGRATIONS[0].1).unwrap();
            connection
                .execute_batch(&format!(
                    "PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};
                     INSERT INTO media (media_id, dir_name, first_seen_at, last_seen_at)
                        VALUES ('1', '1', 1, 1);
                     INSERT INTO variants (media_id, label, remote_status, size_bytes, content_type,
                        stored_at, remote_seen_at, local_state, local_path, sha256, verified_size,
                        updated_at)
                        VALUES ('1', 'full', 'stored', 3, 'image/png', 7, 1, 'verified',
                        'media/1/full.png', 'ab', 3, 1);"
                ))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let previous = store.previous_bytes("1", "full").unwrap().unwrap();
        assert_eq!(previous.content_type.as_deref(), Some("image/png"));
        assert_eq!(previous.stored_at, Some(7));
        assert!(store.kept_versions().unwrap().is_empty());
        assert_eq!(store.archived_variants().unwrap().len(), 1);
    }
}
