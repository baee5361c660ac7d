//! Each media's own date and shape (migration 6): what the Access API
//! said of it (asked once in its life), the date every reader uses — the
//! best one known, with where it came from — and the modification time
//! each verified file was last given.
//!
//! Invariants: a media is asked about at most once (`described_at` is set
//! whether the Access API listed it or not; only a run that never reached
//! it leaves it NULL); the date readers see comes from one SQL expression
//! ([`DATE_SQL`]), so views, sidecars, the manifest and file times agree.

use std::collections::HashMap;

use rusqlite::params;

use crate::store::database::{Store, rows};
use crate::store::error::StoreError;

/// Where a media's date came from, best first.
pub const SOURCE_ONLYFANS: &str = "onlyfans";
/// When Vault+ cached the media's first variant: the media is older.
pub const SOURCE_CACHED: &str = "vault-plus-cached";
/// When this archive first saw the media.
pub const SOURCE_FIRST_SEEN: &str = "first-seen";

/// The best date of media `m` (epoch ms), as an SQL expression: the
/// Access API's `createdAt`, else when Vault+ cached its first variant,
/// else when we first saw it. Never NULL.
const DATE_SQL: &str = "coalesce(m.taken_at,
        (SELECT min(v2.remote_created_at) FROM variants v2 WHERE v2.media_id = m.media_id),
        m.first_seen_at)";

/// Where [`DATE_SQL`] came from, as an SQL expression.
const SOURCE_SQL: &str = "CASE WHEN m.taken_at IS NOT NULL THEN coalesce(m.date_source, 'onlyfans')
         WHEN EXISTS (SELECT 1 FROM variants v3 WHERE v3.media_id = m.media_id
                      AND v3.remote_created_at IS NOT NULL) THEN 'vault-plus-cached'
         ELSE 'first-seen' END";

/// What the Access API says of one media.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Description {
    pub media_id: String,
    /// `createdAt`, epoch ms, when readable.
    pub taken_at: Option<i64>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub duration: Option<f64>,
}

/// A media as the archive's outputs describe it (views, sidecars, the
/// manifest, the gallery).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct MediaFacts {
    /// The best date known, epoch ms.
    pub date: i64,
    /// [`SOURCE_ONLYFANS`], [`SOURCE_CACHED`] or [`SOURCE_FIRST_SEEN`].
    pub date_source: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub duration: Option<f64>,
}

/// An XMP sidecar as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarRecord {
    pub media_id: String,
    pub label: String,
    /// Relative to the archive root (`media/<dir>/<label>.xmp`).
    pub local_path: String,
    pub sha256: String,
    pub size: i64,
}

/// A verified file whose modification time is not yet its media's date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToDate {
    pub media_id: String,
    pub label: String,
    /// Relative to the archive root.
    pub local_path: String,
    /// The media's date, epoch ms.
    pub date: i64,
}

impl Store {
    /// The current members of `list_id` the Access API was never asked about.
    pub fn undescribed_members(&self, list_id: &str) -> Result<Vec<String>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT m.media_id FROM membership ms JOIN media m USING (media_id)
                 WHERE ms.list_id = ?1 AND ms.gone_at IS NULL AND m.described_at IS NULL
                 ORDER BY m.media_id",
                [list_id],
                |row| row.get(0),
            )
        })
    }

    /// Records what the Access API said of media we know (others are
    /// ignored), in one transaction. A duration Vault+ gave is kept.
    pub fn record_descriptions(
        &self,
        described: &[Description],
        now: i64,
    ) -> Result<usize, StoreError> {
        self.transaction(|transaction| {
            let mut update = transaction.prepare_cached(
                "UPDATE media SET taken_at = coalesce(?2, taken_at),
                    date_source = CASE WHEN ?2 IS NULL THEN date_source ELSE 'onlyfans' END,
                    width = coalesce(?3, width), height = coalesce(?4, height),
                    duration = coalesce(duration, ?5), described_at = ?6
                 WHERE media_id = ?1",
            )?;
            let mut changed = 0;
            for item in described {
                changed += update.execute(params![
                    item.media_id,
                    item.taken_at,
                    item.width,
                    item.height,
                    item.duration,
                    now
                ])?;
            }
            Ok(changed)
        })
    }

    /// Marks `media_ids` as asked about though the Access API did not list
    /// them: their date stays the fallback, and they are not asked again.
    pub fn mark_described(&self, media_ids: &[String], now: i64) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            let mut update = transaction.prepare_cached(
                "UPDATE media SET described_at = ?2 WHERE media_id = ?1 AND described_at IS NULL",
            )?;
            for media_id in media_ids {
                update.execute(params![media_id, now])?;
            }
            Ok(())
        })
    }

    /// Every known media's facts, by media id.
    pub fn media_facts(&self) -> Result<HashMap<String, MediaFacts>, StoreError> {
        let sql = format!(
            "SELECT m.media_id, {DATE_SQL}, {SOURCE_SQL}, m.width, m.height, m.duration
             FROM media m"
        );
        let found = self.with(|connection| {
            rows(connection, &sql, [], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    MediaFacts {
                        date: row.get(1)?,
                        date_source: row.get(2)?,
                        width: row.get(3)?,
                        height: row.get(4)?,
                        duration: row.get(5)?,
                    },
                ))
            })
        })?;
        Ok(found.into_iter().collect())
    }

    /// Verified files whose modification time was never set to their
    /// media's date, or was set to another one.
    pub fn files_to_date(&self) -> Result<Vec<FileToDate>, StoreError> {
        let sql = format!(
            "SELECT media_id, label, local_path, date FROM (
                SELECT v.media_id, v.label, v.local_path, v.file_dated_at, {DATE_SQL} AS date
                FROM variants v JOIN media m USING (media_id)
                WHERE v.local_state = 'verified' AND v.local_path IS NOT NULL)
             WHERE file_dated_at IS NOT date"
        );
        self.with(|connection| {
            rows(connection, &sql, [], |row| {
                Ok(FileToDate {
                    media_id: row.get(0)?,
                    label: row.get(1)?,
                    local_path: row.get(2)?,
                    date: row.get(3)?,
                })
            })
        })
    }

    /// Records that the file of (`media_id`, `label`) now carries `date`.
    pub fn mark_dated(&self, media_id: &str, label: &str, date: i64) -> Result<(), StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(
                    "UPDATE variants SET file_dated_at = ?3 WHERE media_id = ?1 AND label = ?2",
                )?
                .execute(params![media_id, label, date])
        })?;
        Ok(())
    }
}

impl Store {
    /// The sidecars written, by path.
    pub fn sidecars(&self) -> Result<Vec<SidecarRecord>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT media_id, label, local_path, sha256, size FROM sidecars ORDER BY local_path",
                [],
                |row| {
                    Ok(SidecarRecord {
                        media_id: row.get(0)?,
                        label: row.get(1)?,
                        local_path: row.get(2)?,
                        sha256: row.get(3)?,
                        size: row.get(4)?,
                    })
                },
            )
        })
    }

    /// Records a sidecar written (after its bytes are in place).
    pub fn record_sidecar(&self, sidecar: &SidecarRecord) -> Result<(), StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(
                    "INSERT OR REPLACE INTO sidecars (media_id, label, local_path, sha256, size)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    sidecar.media_id,
                    sidecar.label,
                    sidecar.local_path,
                    sidecar.sha256,
                    sidecar.size
                ])
        })?;
        Ok(())
    }

    /// Forgets the sidecar at `local_path` (after it was deleted).
    pub fn forget_sidecar(&self, local_path: &str) -> Result<(), StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached("DELETE FROM sidecars WHERE local_path = ?1")?
                .execute([local_path])
        })?;
        Ok(())
    }
}

impl Store {
    /// The oldest and newest date of the media with a verified file
    /// (epoch ms); `None` when there is none.
    pub fn media_date_range(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let sql = format!(
            "SELECT min(date), max(date) FROM (SELECT {DATE_SQL} AS date FROM media m
             WHERE EXISTS (SELECT 1 FROM variants v WHERE v.media_id = m.media_id
                           AND v.local_state = 'verified'))"
        );
        self.with(|connection| {
            connection.query_row(&sql, [], |row| {
                Ok(row
                    .get::<_, Option<i64>>(0)?
                    .zip(row.get::<_, Option<i64>>(1)?))
            })
        })
    }
}
