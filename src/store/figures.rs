//! Read-only queries that sum the state up: per-list figures for `status`
//! and `lists`, the last runs, the verified files `verify` re-hashes, and
//! what a dry run needs to know. Nothing here writes.
//!
//! Counts are of variants (a media's `full` and `thumb` are two), except
//! `members` and `gone`, which count media.

use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{LocalVariant, Store, StoreError, read_local_at};

/// One list as the database knows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ListFigures {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub list_type: Option<String>,
    /// The connection no longer has this list (epoch ms since when).
    pub gone_from_connection_at: Option<i64>,
    /// Current members (media).
    pub members: u64,
    /// Media that left the list upstream (their files are kept).
    pub gone: u64,
    /// Variants of current members that are verified on disk.
    pub verified: u64,
    /// Variants of current members not stored by Vault+ yet.
    pub pending: u64,
    /// Variants of current members whose last attempt failed or was quarantined.
    pub failed: u64,
    /// Bytes of the verified variants of current members.
    pub bytes: u64,
    pub last_synced_at: Option<i64>,
}

/// The whole archive, each media and file counted once.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ArchiveFigures {
    /// Media in at least one list now.
    pub members: u64,
    /// Media known locally that are in no list any more.
    pub gone: u64,
    /// Verified files, whatever list holds (or held) them.
    pub verified: u64,
    pub pending: u64,
    pub failed: u64,
    /// Bytes of all verified files.
    pub bytes: u64,
}

/// One row of the `runs` table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRecord {
    pub run_id: i64,
    pub command: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `complete`, `partial`, `failed`, …; None while running or if it was killed.
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
}

/// A variant the database calls verified, and what its file must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFile {
    pub media_id: String,
    pub label: String,
    /// Relative to the archive root.
    pub local_path: String,
    pub sha256: String,
    pub size: u64,
    /// An earlier `verify` found it missing or damaged, and it has not been
    /// fetched since (it is `missing` now, waiting for a run).
    pub found_broken: bool,
}

impl Store {
    /// Figures of every list the database knows, by name.
    pub fn list_figures(&self) -> Result<Vec<ListFigures>, StoreError> {
        let connection = self.lock();
        self.rows(&connection, "SELECT l.list_id, l.name, l.list_type, l.gone_at, l.last_synced_at,
                    count(DISTINCT CASE WHEN m.gone_at IS NULL THEN m.media_id END),
                    count(DISTINCT CASE WHEN m.gone_at IS NOT NULL THEN m.media_id END),
                    coalesce(sum(m.gone_at IS NULL AND v.local_state = 'verified'), 0),
                    coalesce(sum(m.gone_at IS NULL AND v.local_state <> 'verified'
                        AND v.remote_status IN ('pending', 'storing')), 0),
                    coalesce(sum(m.gone_at IS NULL AND v.local_state IN ('failed', 'quarantined')), 0),
                    coalesce(sum(CASE WHEN m.gone_at IS NULL AND v.local_state = 'verified'
                        THEN v.verified_size END), 0)
                 FROM lists l
                 LEFT JOIN membership m ON m.list_id = l.list_id
                 LEFT JOIN variants v ON v.media_id = m.media_id
                 GROUP BY l.list_id
                 ORDER BY l.gone_at IS NOT NULL, l.name, l.list_id", [], |row| {
                Ok(ListFigures {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    list_type: row.get(2)?,
                    gone_from_connection_at: row.get(3)?,
                    last_synced_at: row.get(4)?,
                    members: count(row, 5)?,
                    gone: count(row, 6)?,
                    verified: count(row, 7)?,
                    pending: count(row, 8)?,
                    failed: count(row, 9)?,
                    bytes: count(row, 10)?,
                })
            })
    }

    /// Figures of the whole archive.
    pub fn archive_figures(&self) -> Result<ArchiveFigures, StoreError> {
        let connection = self.lock();
        connection
            .query_row(
                "WITH current AS (SELECT DISTINCT media_id FROM membership WHERE gone_at IS NULL)
                 SELECT
                    (SELECT count(*) FROM current),
                    (SELECT count(*) FROM media WHERE media_id NOT IN current
                        AND media_id IN (SELECT media_id FROM membership)),
                    (SELECT count(*) FROM variants WHERE local_state = 'verified'),
                    (SELECT count(*) FROM variants WHERE media_id IN current
                        AND local_state <> 'verified' AND remote_status IN ('pending', 'storing')),
                    (SELECT count(*) FROM variants WHERE media_id IN current
                        AND local_state IN ('failed', 'quarantined')),
                    (SELECT coalesce(sum(verified_size), 0) FROM variants
                        WHERE local_state = 'verified')",
                [],
                |row| {
                    Ok(ArchiveFigures {
                        members: count(row, 0)?,
                        gone: count(row, 1)?,
                        verified: count(row, 2)?,
                        pending: count(row, 3)?,
                        failed: count(row, 4)?,
                        bytes: count(row, 5)?,
                    })
                },
            )
            .map_err(|error| self.sql(error))
    }

    /// How many variants were verified at or after `since` (ms), and their
    /// bytes: what a run that was stopped early had finished.
    pub fn verified_since(&self, since: i64) -> Result<(u64, u64), StoreError> {
        self.lock()
            .query_row(
                "SELECT count(*), coalesce(sum(verified_size), 0) FROM variants
                 WHERE local_state = 'verified' AND verified_at >= ?1",
                [since],
                |row| Ok((count(row, 0)?, count(row, 1)?)),
            )
            .map_err(|error| self.sql(error))
    }

    /// The latest run of each command, the most recent first.
    pub fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let connection = self.lock();
        self.rows(
            &connection,
            "SELECT run_id, command, started_at, finished_at, outcome, exit_code FROM runs
                 WHERE run_id IN (SELECT max(run_id) FROM runs GROUP BY command)
                 ORDER BY run_id DESC",
            [],
            |row| {
                Ok(RunRecord {
                    run_id: row.get(0)?,
                    command: row.get(1)?,
                    started_at: row.get(2)?,
                    finished_at: row.get(3)?,
                    outcome: row.get(4)?,
                    exit_code: row.get(5)?,
                })
            },
        )
    }

    /// The summary JSON a run recorded, if any.
    pub fn run_summary(&self, run_id: i64) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row(
                "SELECT summary FROM runs WHERE run_id = ?1",
                params![run_id],
                |row| row.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|error| self.sql(error))
    }

    /// Every variant the database calls verified, by path.
    pub fn verified_files(&self) -> Result<Vec<VerifiedFile>, StoreError> {
        self.files_where("local_state = 'verified'")
    }

    /// What `verify` checks: the verified files, and those an earlier
    /// `verify` found broken that no run has fetched since (so a second
    /// `verify` still reports them, and sees a file put back by hand).
    pub fn files_to_verify(&self) -> Result<Vec<VerifiedFile>, StoreError> {
        self.files_where(
            "local_state = 'verified' OR (local_state = 'missing' AND last_error LIKE 'verify:%'
                AND local_path IS NOT NULL AND sha256 IS NOT NULL)",
        )
    }

    fn files_where(&self, condition: &str) -> Result<Vec<VerifiedFile>, StoreError> {
        let connection = self.lock();
        self.rows(&connection, &format!(
                "SELECT media_id, label, local_path, sha256, verified_size, local_state <> 'verified'
                 FROM variants WHERE {condition} ORDER BY local_path, media_id, label"
            ), [], |row| {
                Ok(VerifiedFile {
                    media_id: row.get(0)?,
                    label: row.get(1)?,
                    local_path: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    sha256: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    size: row
                        .get::<_, Option<i64>>(4)?
                        .unwrap_or(-1)
                        .try_into()
                        .unwrap_or(u64::MAX),
                    found_broken: row.get(5)?,
                })
            })
    }

    /// What the database holds of each variant of `media_ids`, by
    /// (media id, label); variants it has never seen are absent.
    pub fn local_variants(
        &self,
        media_ids: &[String],
    ) -> Result<HashMap<(String, String), LocalVariant>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT label, local_state, local_path, verified_size, part_validator
                 FROM variants WHERE media_id = ?1",
            )
            .map_err(|error| self.sql(error))?;
        let mut found = HashMap::new();
        for media_id in media_ids {
            let rows = statement
                .query_map(params![media_id], |row| {
                    let label: String = row.get(0)?;
                    let local = read_local_at(row, 1)?;
                    Ok((label, local))
                })
                .map_err(|error| self.sql(error))?;
            for row in rows {
                let (label, local) = row.map_err(|error| self.sql(error))?;
                found.insert((media_id.clone(), label), local);
            }
        }
        Ok(found)
    }

    /// Verified files of media that were members of one of `list_ids` but
    /// are in none of `current` now, nor a current member of another list:
    /// what `--prune` would delete.
    pub fn prune_candidates(
        &self,
        list_ids: &[String],
        current: &HashSet<String>,
    ) -> Result<Vec<VerifiedFile>, StoreError> {
        let (ever_selected, held_elsewhere) = {
            let connection = self.lock();
            let mut statement = connection
                .prepare("SELECT list_id, media_id, gone_at IS NULL FROM membership")
                .map_err(|error| self.sql(error))?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, bool>(2)?,
                    ))
                })
                .map_err(|error| self.sql(error))?;
            let mut ever_selected = HashSet::new();
            let mut held_elsewhere = HashSet::new();
            for row in rows {
                let (list_id, media_id, is_current) = row.map_err(|error| self.sql(error))?;
                if list_ids.contains(&list_id) {
                    ever_selected.insert(media_id);
                } else if is_current {
                    held_elsewhere.insert(media_id);
                }
            }
            (ever_selected, held_elsewhere)
        };
        Ok(self
            .verified_files()?
            .into_iter()
            .filter(|file| {
                ever_selected.contains(&file.media_id)
                    && !current.contains(&file.media_id)
                    && !held_elsewhere.contains(&file.media_id)
            })
            .collect())
    }
}

/// A count or a sum (never negative) as u64.
fn count(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(index)?.max(0) as u64)
}
