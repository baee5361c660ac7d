//! The state database (SQLite): lists, membership, media, variants and runs.
//!
//! Invariants:
//! - One writer: the [`Store`] owns one connection behind a mutex; every
//!   change is a short transaction, batched where many rows change at once.
//! - A variant is `verified` only after its file was checked, fsynced and
//!   renamed into place (the pipeline calls [`Store::mark_verified`] last).
//! - The schema is `schema.sql` plus append-only migrations keyed by
//!   `PRAGMA user_version`; a database that is not ours, or is damaged, is
//!   reported and never recreated over. Opening reads the header and the
//!   schema; damage deeper in the file is reported by SQLite when a page
//!   is read, and [`Store::check`] (run by `verify`) reads every page —
//!   a whole-file check on each open would make every run cost the size
//!   of the archive.
//!
//! The offline archive's queries (views, export, prune, kept versions) are
//! in [`archive`].

mod archive;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::api::models::RemoteStatus;

mod figures;
pub use archive::{
    ArchiveList, ArchivedVariant, GoneMedia, Membership, PreviousBytes, PrunedFile, RecordedFile,
    VersionRecord, ViewFile, ViewState,
};
pub use figures::{ArchiveFigures, ListFigures, RunRecord, VerifiedFile};

/// Marks the file as a vault-mirror database ("VMIR").
const APPLICATION_ID: i64 = 0x564D_4952;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schema.sql"),
    include_str!("../../migrations/002-archive.sql"),
    include_str!("../../migrations/003-rerun-cost.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "the state database {path} is damaged or is not a vault-mirror database ({reason}); it was left untouched"
    )]
    NotOurs { path: PathBuf, reason: String },
    #[error(
        "the state database {path} was written by a newer vault-mirror (schema {found}, this one knows {known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the state database {path} is busy or locked by another program: {reason}")]
    Busy { path: PathBuf, reason: String },
    #[error("the state database {path} is read-only: {reason}")]
    ReadOnly { path: PathBuf, reason: String },
    #[error(
        "no space left on the disk holding the state database {path}; what was verified before is recorded, and the same command resumes once there is room"
    )]
    DiskFull { path: PathBuf },
    #[error("state database {path}: {source}")]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// Local state of a variant (the `local_state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalState {
    Missing,
    Downloading,
    Verified,
    Failed,
    Quarantined,
}

impl LocalState {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalState::Missing => "missing",
            LocalState::Downloading => "downloading",
            LocalState::Verified => "verified",
            LocalState::Failed => "failed",
            LocalState::Quarantined => "quarantined",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "downloading" => LocalState::Downloading,
            "verified" => LocalState::Verified,
            "failed" => LocalState::Failed,
            "quarantined" => LocalState::Quarantined,
            _ => LocalState::Missing,
        }
    }
}

/// A list as the API described it.
#[derive(Debug, Clone)]
pub struct ListRecord {
    pub list_id: String,
    pub name: String,
    pub list_type: Option<String>,
}

/// What the API says about one variant now.
#[derive(Debug, Clone)]
pub struct RemoteVariant {
    pub media_id: String,
    pub label: String,
    pub status: RemoteStatus,
    pub size_bytes: Option<i64>,
    pub content_type: Option<String>,
    pub created_at: Option<i64>,
    pub stored_at: Option<i64>,
}

/// What we hold of one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalVariant {
    pub state: LocalState,
    pub local_path: Option<String>,
    pub verified_size: Option<i64>,
    pub part_validator: Option<String>,
}

/// One media row for a batch upsert.
#[derive(Debug, Clone)]
pub struct MediaRecord {
    pub media_id: String,
    pub media_type: Option<String>,
    pub duration: Option<f64>,
}

pub struct Store {
    path: PathBuf,
    connection: Mutex<Connection>,
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
            fs_err::create_dir_all(parent).map_err(|error| open_error(error.to_string()))?;
        }
        let existed = path.exists();
        if !existed {
            create_private_file(path).map_err(|error| open_error(error.to_string()))?;
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| classify(path, error))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(|error| classify(path, error))?;
        // Room for every statement the pipeline repeats (rusqlite keeps 16).
        connection.set_prepared_statement_cache_capacity(64);
        // Test suites: `VAULT_MIRROR_TEST_DB_MAX_PAGES=<pages>` caps the
        // database's size, so a full disk under it can be tested without
        // filling one.
        if let Some(pages) = std::env::var("VAULT_MIRROR_TEST_DB_MAX_PAGES")
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        {
            connection
                .pragma_update(
                    None,
                    "max_page_count",
                    i64::try_from(pages).unwrap_or(i64::MAX),
                )
                .map_err(|error| classify(path, error))?;
        }
        let store = Store {
            path: path.to_owned(),
            connection: Mutex::new(connection),
        };
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so the poison can be ignored.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        classify(&self.path, source)
    }

    /// Runs one statement, prepared once per connection: the statements a
    /// transfer makes per file are too many to parse again each time.
    fn execute_cached(
        &self,
        sql: &str,
        values: impl rusqlite::Params,
    ) -> Result<usize, StoreError> {
        self.lock()
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values))
            .map_err(|error| self.sql(error))
    }

    /// Runs `sql` with `values` on an already locked connection and maps
    /// every row: the one way lists of rows are read.
    pub(crate) fn rows<T>(
        &self,
        connection: &Connection,
        sql: &str,
        values: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = connection
            .prepare_cached(sql)
            .map_err(|error| self.sql(error))?;
        let rows = statement
            .query_map(values, map)
            .map_err(|error| self.sql(error))?;
        rows.collect::<Result<_, _>>()
            .map_err(|error| self.sql(error))
    }

    /// Checks that the file is ours and applies pending migrations.
    fn prepare(&self) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let not_ours = |reason: String| StoreError::NotOurs {
            path: self.path.clone(),
            reason,
        };
        // Reading the header is the first thing that fails on a damaged file.
        let application_id: i64 = connection
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .map_err(|error| match classify(&self.path, error) {
                StoreError::Sql { source, .. } => not_ours(source.to_string()),
                other => other,
            })?;
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|error| self.sql(error))?;
        let tables: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|error| not_ours(error.to_string()))?;
        if application_id != APPLICATION_ID && !(application_id == 0 && tables == 0) {
            return Err(not_ours(format!(
                "application id {application_id:#x}, {tables} schema objects"
            )));
        }
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|error| self.sql(error))?;
        connection
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|error| self.sql(error))?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let transaction = connection.transaction().map_err(|error| self.sql(error))?;
            transaction
                .execute_batch(migration)
                .map_err(|error| self.sql(error))?;
            transaction
                .pragma_update(None, "user_version", index as i64 + 1)
                .map_err(|error| self.sql(error))?;
            transaction
                .pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(|error| self.sql(error))?;
            transaction.commit().map_err(|error| self.sql(error))?;
        }
        Ok(())
    }

    /// Starts a run record; returns its id.
    pub fn begin_run(&self, command: &str, now: i64) -> Result<i64, StoreError> {
        let connection = self.lock();
        connection
            .execute(
                "INSERT INTO runs (command, started_at) VALUES (?1, ?2)",
                params![command, now],
            )
            .map_err(|error| self.sql(error))?;
        Ok(connection.last_insert_rowid())
    }

    pub fn finish_run(
        &self,
        run_id: i64,
        outcome: &str,
        exit_code: i32,
        summary: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, exit_code = ?4, summary = ?5 WHERE run_id = ?1",
                params![run_id, now, outcome, exit_code, summary],
            )
            .map_err(|error| self.sql(error))?;
        Ok(())
    }

    /// Records the lists the API described. With `complete`, lists we knew
    /// that the API no longer has are marked gone.
    pub fn record_lists(
        &self,
        lists: &[ListRecord],
        complete: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(|error| self.sql(error))?;
        {
            let mut upsert = transaction
                .prepare_cached(
                    "INSERT INTO lists (list_id, name, list_type, first_seen_at, last_seen_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (list_id) DO UPDATE SET
                        name = excluded.name,
                        list_type = coalesce(excluded.list_type, list_type),
                        last_seen_at = excluded.last_seen_at,
                        gone_at = NULL",
                )
                .map_err(|error| self.sql(error))?;
            for list in lists {
                upsert
                    .execute(params![list.list_id, list.name, list.list_type, now])
                    .map_err(|error| self.sql(error))?;
            }
        }
        if complete {
            transaction
                .execute(
                    "UPDATE lists SET gone_at = ?1 WHERE last_seen_at < ?1 AND gone_at IS NULL",
                    params![now],
                )
                .map_err(|error| self.sql(error))?;
        }
        transaction.commit().map_err(|error| self.sql(error))
    }

    /// Forgets `list_id` if nothing was ever recorded of it (no sync, no
    /// member): an id given with `--list` that turned out not to exist
    /// upstream leaves no row behind. Returns whether it was forgotten.
    pub fn forget_unknown_list(&self, list_id: &str) -> Result<bool, StoreError> {
        let forgotten = self
            .lock()
            .execute(
                "DELETE FROM lists WHERE list_id = ?1 AND last_synced_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM membership WHERE list_id = ?1)",
                params![list_id],
            )
            .map_err(|error| self.sql(error))?;
        Ok(forgotten > 0)
    }

    /// Known lists by id (for `--list` ids the API listing does not name).
    pub fn list_name(&self, list_id: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row(
                "SELECT name FROM lists WHERE list_id = ?1",
                params![list_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|error| self.sql(error))
    }

    pub fn record_sync(&self, list_id: &str, counters: &str, now: i64) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE lists SET last_synced_at = ?2, last_sync = ?3 WHERE list_id = ?1",
                params![list_id, now, counters],
            )
            .map_err(|error| self.sql(error))?;
        Ok(())
    }

    /// Records a list's current members: new (or returning) ones are
    /// added, members no longer present are marked gone (never deleted),
    /// and the rest are touched in one statement. The list's current
    /// members are read once and compared, so a re-run writes only what
    /// changed. Returns (members now, newly gone).
    pub fn record_membership(
        &self,
        list_id: &str,
        members: &[MediaRecord],
        now: i64,
    ) -> Result<(usize, usize), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(|error| self.sql(error))?;
        let mut current: std::collections::HashSet<String> = {
            let mut statement = transaction
                .prepare_cached(
                    "SELECT media_id FROM membership WHERE list_id = ?1 AND gone_at IS NULL",
                )
                .map_err(|error| self.sql(error))?;
            statement
                .query_map([list_id], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|error| self.sql(error))?
        };
        let mut gone = 0;
        {
            let mut add_media = transaction
                .prepare_cached(
                    "INSERT INTO media (media_id, media_type, dir_name, first_seen_at, last_seen_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (media_id) DO UPDATE SET
                        media_type = coalesce(excluded.media_type, media_type)",
                )
                .map_err(|error| self.sql(error))?;
            let mut add_member = transaction
                .prepare_cached(
                    "INSERT INTO membership (list_id, media_id, first_seen_at, last_seen_at)
                     VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (list_id, media_id) DO UPDATE SET
                        last_seen_at = excluded.last_seen_at, gone_at = NULL",
                )
                .map_err(|error| self.sql(error))?;
            let mut present = std::collections::HashSet::with_capacity(members.len());
            for member in members {
                present.insert(member.media_id.as_str());
                if current.contains(&member.media_id) {
                    continue;
                }
                let dir_name = crate::archive::paths::safe_name(&member.media_id);
                add_media
                    .execute(params![member.media_id, member.media_type, dir_name, now])
                    .map_err(|error| self.sql(error))?;
                add_member
                    .execute(params![list_id, member.media_id, now])
                    .map_err(|error| self.sql(error))?;
            }
            current.retain(|media_id| !present.contains(media_id.as_str()));
            let mut mark_gone = transaction
                .prepare_cached(
                    "UPDATE membership SET gone_at = ?3 WHERE list_id = ?1 AND media_id = ?2",
                )
                .map_err(|error| self.sql(error))?;
            for media_id in &current {
                gone += mark_gone
                    .execute(params![list_id, media_id, now])
                    .map_err(|error| self.sql(error))?;
            }
        }
        transaction
            .execute(
                "UPDATE membership SET last_seen_at = ?2 WHERE list_id = ?1 AND gone_at IS NULL",
                params![list_id, now],
            )
            .map_err(|error| self.sql(error))?;
        transaction.commit().map_err(|error| self.sql(error))?;
        Ok((members.len(), gone))
    }

    /// Current (not gone) members of the given lists, each media id once,
    /// in a stable order.
    pub fn current_members(&self, list_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT DISTINCT media_id FROM membership
                 WHERE list_id = ?1 AND gone_at IS NULL ORDER BY media_id",
            )
            .map_err(|error| self.sql(error))?;
        let mut seen = std::collections::BTreeSet::new();
        for list_id in list_ids {
            let rows = statement
                .query_map(params![list_id], |row| row.get::<_, String>(0))
                .map_err(|error| self.sql(error))?;
            for row in rows {
                seen.insert(row.map_err(|error| self.sql(error))?);
            }
        }
        Ok(seen.into_iter().collect())
    }

    /// Records what a batch answer said about media and their variants, in
    /// one transaction, and returns the local state of every variant given,
    /// in order. What is already known is read in one query and only what
    /// changed is written, so a re-run costs what changed: a new variant is
    /// added, and a known one whose description changed is rewritten — if
    /// it was verified and its size, type or stored time changed upstream,
    /// it goes back to `missing`, to be fetched anew. Media get their
    /// `last_seen_at` in one statement.
    pub fn record_remote(
        &self,
        media: &[MediaRecord],
        variants: &[RemoteVariant],
        now: i64,
    ) -> Result<Vec<LocalVariant>, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(|error| self.sql(error))?;
        let ids = serde_json::to_string(
            &media
                .iter()
                .map(|item| item.media_id.as_str())
                .collect::<Vec<_>>(),
        )
        .map_err(|error| self.sql(rusqlite::Error::ToSqlConversionFailure(error.into())))?;
        let locals = Self::record_media(&transaction, media, &ids, now)
            .and_then(|()| Self::record_variants(&transaction, variants, &ids, now))
            .map_err(|error| self.sql(error))?;
        transaction.commit().map_err(|error| self.sql(error))?;
        Ok(locals)
    }

    /// [`Store::record_remote`]'s media: new or changed ones written, all
    /// of them (`ids`, a JSON array) seen now.
    fn record_media(
        transaction: &rusqlite::Transaction<'_>,
        media: &[MediaRecord],
        ids: &str,
        now: i64,
    ) -> rusqlite::Result<()> {
        let mut recorded = HashMap::new();
        let mut statement = transaction.prepare_cached(
            "SELECT m.media_id, m.media_type, m.duration
             FROM json_each(?1) AS j JOIN media AS m ON m.media_id = j.value",
        )?;
        let mut rows = statement.query([ids])?;
        while let Some(row) = rows.next()? {
            recorded.insert(
                row.get::<_, String>(0)?,
                (
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<f64>>(2)?,
                ),
            );
        }
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO media (media_id, media_type, duration, dir_name, first_seen_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (media_id) DO UPDATE SET
                media_type = coalesce(excluded.media_type, media_type),
                duration = excluded.duration",
        )?;
        for item in media {
            let unchanged = recorded
                .get(&item.media_id)
                .is_some_and(|(media_type, duration)| {
                    (item.media_type.is_none() || item.media_type == *media_type)
                        && item.duration == *duration
                });
            if !unchanged {
                let dir_name = crate::archive::paths::safe_name(&item.media_id);
                upsert.execute(params![
                    item.media_id,
                    item.media_type,
                    item.duration,
                    dir_name,
                    now
                ])?;
            }
        }
        transaction
            .prepare_cached(
                "UPDATE media SET last_seen_at = ?1
                 WHERE media_id IN (SELECT value FROM json_each(?2))",
            )?
            .execute(params![now, ids])?;
        Ok(())
    }

    /// [`Store::record_remote`]'s variants: the recorded rows of the media
    /// (`ids`) are matched to what the API said by (media, label) and
    /// compared in place; an unchanged one is taken as it is, anything
    /// else is upserted. Returns the local state of each, in order.
    fn record_variants(
        transaction: &rusqlite::Transaction<'_>,
        variants: &[RemoteVariant],
        ids: &str,
        now: i64,
    ) -> rusqlite::Result<Vec<LocalVariant>> {
        let wanted: HashMap<(&str, &str), usize> = variants
            .iter()
            .enumerate()
            .map(|(index, variant)| ((variant.media_id.as_str(), variant.label.as_str()), index))
            .collect();
        let mut unchanged: Vec<Option<LocalVariant>> = vec![None; variants.len()];
        let mut statement = transaction.prepare_cached(
            "SELECT v.media_id, v.label, v.remote_status, v.size_bytes, v.content_type,
                v.remote_created_at, v.stored_at,
                v.local_state, v.local_path, v.verified_size, v.part_validator
             FROM json_each(?1) AS j JOIN variants AS v ON v.media_id = j.value",
        )?;
        let mut rows = statement.query([ids])?;
        while let Some(row) = rows.next()? {
            let key = (row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?);
            if let Some(&index) = wanted.get(&key)
                && described_alike(row, 2, &variants[index])?
            {
                unchanged[index] = Some(read_local_at(row, 7)?);
            }
        }
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO variants (media_id, label, remote_status, size_bytes, content_type,
                remote_created_at, stored_at, remote_changed_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (media_id, label) DO UPDATE SET
                local_state = CASE
                    WHEN local_state = 'verified' AND (
                        size_bytes IS NOT excluded.size_bytes
                        OR content_type IS NOT excluded.content_type
                        OR (excluded.stored_at IS NOT NULL AND stored_at IS NOT excluded.stored_at))
                    THEN 'missing' ELSE local_state END,
                remote_status = excluded.remote_status,
                size_bytes = excluded.size_bytes,
                content_type = excluded.content_type,
                remote_created_at = excluded.remote_created_at,
                stored_at = coalesce(excluded.stored_at, stored_at),
                remote_changed_at = excluded.remote_changed_at,
                updated_at = excluded.updated_at
             RETURNING local_state, local_path, verified_size, part_validator",
        )?;
        variants
            .iter()
            .zip(unchanged)
            .map(|(variant, unchanged)| match unchanged {
                Some(local) => Ok(local),
                None => upsert.query_row(
                    params![
                        variant.media_id,
                        variant.label,
                        variant.status.as_str(),
                        variant.size_bytes,
                        variant.content_type,
                        variant.created_at,
                        variant.stored_at,
                        now
                    ],
                    read_local,
                ),
            })
            .collect()
    }

    /// The media host answered an attempt: one more attempt, the variant
    /// is downloading, and with `Some(validator)` (bytes starting from
    /// zero) the ETag or Last-Modified of the bytes going into `.part`.
    pub fn mark_downloading(
        &self,
        media_id: &str,
        label: &str,
        validator: Option<Option<&str>>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.execute_cached(
            "UPDATE variants SET local_state = 'downloading', attempts = attempts + 1,
                updated_at = ?3, part_validator = CASE WHEN ?4 THEN ?5 ELSE part_validator END
             WHERE media_id = ?1 AND label = ?2",
            params![
                media_id,
                label,
                now,
                validator.is_some(),
                validator.flatten()
            ],
        )?;
        Ok(())
    }

    /// The file is checked, fsynced and at its final path: the variant is done.
    pub fn mark_verified(
        &self,
        media_id: &str,
        label: &str,
        local_path: &str,
        sha256: &str,
        size: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.execute_cached(
            "UPDATE variants SET local_state = 'verified', local_path = ?3, sha256 = ?4,
                    verified_size = ?5, verified_at = ?6, last_error = NULL, part_validator = NULL,
                    updated_at = ?6, verified_content_type = content_type,
                    verified_stored_at = stored_at
                 WHERE media_id = ?1 AND label = ?2",
            params![media_id, label, local_path, sha256, size, now],
        )?;
        Ok(())
    }

    /// The variant ended badly this run (`failed` or `quarantined`), or is
    /// handed back (`missing`) with the reason kept.
    pub fn mark_unfinished(
        &self,
        media_id: &str,
        label: &str,
        state: LocalState,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.execute_cached(
            "UPDATE variants SET local_state = ?3, last_error = ?4, updated_at = ?5
                 WHERE media_id = ?1 AND label = ?2",
            params![media_id, label, state.as_str(), reason, now],
        )?;
        Ok(())
    }

    /// Counts of variants by local state (for tests and `status`).
    pub fn count_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT local_state, count(*) FROM variants GROUP BY local_state ORDER BY 1")
            .map_err(|error| self.sql(error))?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|error| self.sql(error))?;
        rows.collect::<Result<_, _>>()
            .map_err(|error| self.sql(error))
    }

    /// Runs `PRAGMA integrity_check`.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.lock()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(|error| self.sql(error))
    }

    /// Reads every page of the database: `NotOurs` when it is damaged.
    pub fn check(&self) -> Result<(), StoreError> {
        let not_ours = |reason: String| StoreError::NotOurs {
            path: self.path.clone(),
            reason,
        };
        match self.integrity_check() {
            Ok(check) if check == "ok" => Ok(()),
            Ok(check) => Err(not_ours(format!("integrity check: {check}"))),
            Err(StoreError::Sql { source, .. }) => Err(not_ours(source.to_string())),
            Err(other) => Err(other),
        }
    }
}

fn read_local(row: &rusqlite::Row<'_>) -> rusqlite::Result<LocalVariant> {
    read_local_at(row, 0)
}

/// [`LocalVariant`] from the columns `local_state, local_path,
/// verified_size, part_validator` of `row`, starting at `first`.
fn read_local_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<LocalVariant> {
    Ok(LocalVariant {
        state: LocalState::parse(row.get_ref(first)?.as_str()?),
        local_path: row.get(first + 1)?,
        verified_size: row.get(first + 2)?,
        part_validator: row.get(first + 3)?,
    })
}

/// Whether the recorded description in `row` (columns `remote_status,
/// size_bytes, content_type, remote_created_at, stored_at` from `first`)
/// says what `remote` says; an absent `storedAt` keeps the recorded one,
/// as the upsert does. Compared in place, nothing copied.
fn described_alike(
    row: &rusqlite::Row<'_>,
    first: usize,
    remote: &RemoteVariant,
) -> rusqlite::Result<bool> {
    let text = |index: usize| -> rusqlite::Result<Option<&str>> {
        Ok(row.get_ref(first + index)?.as_str_or_null()?)
    };
    let number = |index: usize| -> rusqlite::Result<Option<i64>> {
        Ok(row.get_ref(first + index)?.as_i64_or_null()?)
    };
    Ok(text(0)? == Some(remote.status.as_str())
        && number(1)? == remote.size_bytes
        && text(2)? == remote.content_type.as_deref()
        && number(3)? == remote.created_at
        && (remote.stored_at.is_none() || number(4)? == remote.stored_at))
}

/// Sorts SQLite errors into the kinds a person acts on differently.
fn classify(path: &Path, error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let path = path.to_owned();
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
            path,
            reason: error.to_string(),
        },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly {
            path,
            reason: error.to_string(),
        },
        // SQLITE_FULL: the disk (or a size limit) is full. The write that
        // failed rolled back whole, so nothing recorded is lost.
        Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::NotOurs {
            path,
            reason: error.to_string(),
        },
        // SQLite says only "unable to open database file"; a read-only
        // mount is the common cause worth naming.
        Some(ErrorCode::CannotOpen) if on_read_only_mount(&path) => StoreError::ReadOnly {
            path,
            reason: "it is on a read-only file system".into(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => StoreError::Open {
            path,
            reason: error.to_string(),
        },
        _ => StoreError::Sql {
            path,
            source: error,
        },
    }
}

fn on_read_only_mount(path: &Path) -> bool {
    rustix::fs::statvfs(path)
        .is_ok_and(|stats| stats.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Creates an empty file readable by its owner only (the database holds
/// what a person mirrors; it is nobody else's business).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = fs_err::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(id: &str, size: i64) -> RemoteVariant {
        RemoteVariant {
            media_id: id.into(),
            label: "full".into(),
            status: RemoteStatus::Stored,
            size_bytes: Some(size),
            content_type: Some("image/jpeg".into()),
            created_at: Some(1),
            stored_at: Some(2),
        }
    }

    fn media(id: &str) -> MediaRecord {
        MediaRecord {
            media_id: id.into(),
            media_type: Some("image".into()),
            duration: None,
        }
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
            .lock()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
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
    fn change_upstream_reopens_a_verified_variant() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let locals = store
            .record_remote(&[media("1")], &[variant("1", 10)], 1)
            .unwrap();
        assert_eq!(locals[0].state, LocalState::Missing);
        store.mark_downloading("1", "full", None, 2).unwrap();
        store
            .mark_verified("1", "full", "media/1/full.jpg", "ab", 10, 3)
            .unwrap();
        let same = store
            .record_remote(&[media("1")], &[variant("1", 10)], 4)
            .unwrap();
        assert_eq!(same[0].state, LocalState::Verified);
        assert_eq!(same[0].verified_size, Some(10));
        let changed = store
            .record_remote(&[media("1")], &[variant("1", 11)], 5)
            .unwrap();
        assert_eq!(changed[0].state, LocalState::Missing);
    }

    #[test]
    fn membership_marks_gone_and_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let list = ListRecord {
            list_id: "7".into(),
            name: "a/b".into(),
            list_type: None,
        };
        store.record_lists(&[list], true, 1).unwrap();
        assert_eq!(
            store
                .record_membership("7", &[media("1"), media("2")], 1)
                .unwrap(),
            (2, 0)
        );
        assert_eq!(
            store.record_membership("7", &[media("2")], 2).unwrap(),
            (1, 1)
        );
        assert_eq!(
            store.current_members(&["7".into()]).unwrap(),
            vec!["2".to_owned()]
        );
        assert_eq!(
            store
                .record_membership("7", &[media("1"), media("2")], 3)
                .unwrap(),
            (2, 0)
        );
        assert_eq!(store.current_members(&["7".into()]).unwrap().len(), 2);
    }
}
