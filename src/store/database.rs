//! [`Store`]: the one connection to the state database, behind its mutex;
//! every statement of the store runs through [`Store::with`] or
//! [`Store::transaction`], its errors sorted by [`classify`] (`error.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Row, Transaction};

use crate::store::error::{StoreError, classify};
use crate::units::ByteSize;

/// One media row, as a list or a batch answer describes it.
#[derive(Debug, Clone)]
pub struct MediaRecord {
    pub media_id: String,
    pub media_type: Option<String>,
    pub duration: Option<f64>,
}

/// The state database: one connection behind a mutex (one writer), every
/// statement through [`Store::with`] or [`Store::transaction`], errors
/// sorted into [`StoreError`]s a person can act on. Its methods, one
/// concern a file, live beside this one in `store/`.
pub struct Store {
    pub(super) path: PathBuf,
    pub(super) connection: Mutex<Connection>,
    /// When recorded progress was last made durable ([`Store::sync_progress`]).
    pub(super) progress_synced: Mutex<Instant>,
}

/// How much recorded progress a power cut may take: commits are not
/// synced one by one (`synchronous = NORMAL`, the WAL is synced at each
/// checkpoint), so every so often a checkpoint makes them last. Two fsyncs
/// a second at most, whatever the number of files.
const PROGRESS_SYNC_INTERVAL: Duration = Duration::from_secs(1);

impl Store {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent copy of the whole database at `path` (SQLite's online
    /// backup: other statements wait, nothing half-written is copied).
    pub fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        self.with(|connection| {
            connection.backup(
                rusqlite::MAIN_DB,
                path,
                None::<fn(rusqlite::backup::Progress)>,
            )
        })
    }

    /// Makes what was recorded so far durable (a WAL checkpoint, which
    /// syncs the log and then the database), at most once per
    /// [`PROGRESS_SYNC_INTERVAL`]: after a power cut, a run resumes from
    /// at most that much earlier. Nothing depends on it for correctness:
    /// a variant is recorded verified only after its bytes are durable,
    /// so a record lost is work done again, never a broken file called
    /// done.
    pub(super) fn sync_progress(&self) -> Result<(), StoreError> {
        {
            let mut synced = self
                .progress_synced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if synced.elapsed() < PROGRESS_SYNC_INTERVAL {
                return Ok(());
            }
            *synced = Instant::now();
        }
        self.with(|connection| {
            connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so the poison can be ignored.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` on the connection (reads, or one statement, which SQLite
    /// commits on its own) and classifies its error: with
    /// [`Store::transaction`], the one way SQL reaches the database.
    pub(super) fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        work(&self.lock()).map_err(|error| classify(&self.path, error))
    }

    /// Runs `work` in one transaction: committed when it returns `Ok`,
    /// rolled back whole on an error (or a panic), so a batch is recorded
    /// entirely or not at all.
    pub(super) fn transaction<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let run = || {
            let transaction = connection.transaction()?;
            let value = work(&transaction)?;
            transaction.commit()?;
            Ok(value)
        };
        run().map_err(|error| classify(&self.path, error))
    }

    /// `error` as [`StoreError::NotOurs`] when SQLite could not make sense
    /// of the file (a plain SQL error where only well-formed reads were
    /// made); a busy, read-only or full database stays what it is.
    pub(super) fn unreadable_is_not_ours(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::Sql { source, .. } => StoreError::NotOurs {
                path: self.path.clone(),
                reason: source.to_string(),
            },
            other => other,
        }
    }
}

/// Runs `sql` with `values`, prepared once per connection, and maps every
/// row: the one way lists of rows are read.
pub(super) fn rows<T>(
    connection: &Connection,
    sql: &str,
    values: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    connection
        .prepare_cached(sql)?
        .query_map(values, map)?
        .collect()
}

/// A media's folder name under `media/`, sanitised once when it is first
/// recorded (and kept: a folder never moves).
pub(super) fn dir_name(media_id: &str) -> String {
    crate::names::safe_name(media_id)
}

/// A count as u64 (a negative one is an error).
pub(super) fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// A sum of sizes as u64 (a negative one is an error).
pub(super) fn bytes(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    row.get::<_, ByteSize>(index).map(u64::from)
}
