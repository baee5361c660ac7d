//! Media and their variants: what Vault+ says about each (the remote
//! description) and what we hold of it (the local state machine).
//!
//! Local states: `missing` → `downloading` → `verified`, or `failed` /
//! `quarantined`; any of them goes back to `missing` when handed back.
//! Invariants: a variant is `verified` only through [`Store::mark_verified`],
//! called after its file was checked, fsynced and renamed into place; a
//! verified variant whose size, type or stored time changes upstream goes
//! back to `missing`, while the `verified_*` columns stay with the bytes on
//! disk. A batch answer is recorded in one transaction, and an unchanged
//! description is not written again.

use std::collections::HashMap;

use rusqlite::{Row, Transaction, params};

use crate::api::models::RemoteStatus;

use crate::store::database::{MediaRecord, Store, dir_name, rows};
use crate::store::error::StoreError;
use crate::store::resume::forget_resume;
use crate::units::{ByteSize, EpochMillis};

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
    pub verified_size: Option<ByteSize>,
    pub part_validator: Option<String>,
}

impl Store {
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
        let ids: Vec<&str> = media.iter().map(|item| item.media_id.as_str()).collect();
        let ids = serde_json::to_string(&ids)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()));
        self.transaction(|transaction| {
            let ids = ids?;
            record_media(transaction, media, &ids, now)?;
            record_variants(transaction, variants, &ids, now)
        })
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
        self.transaction(|transaction| {
            transaction
                .prepare_cached(
                    "UPDATE variants SET local_state = 'downloading', attempts = attempts + 1,
                        updated_at = ?3,
                        part_validator = CASE WHEN ?4 THEN ?5 ELSE part_validator END
                     WHERE media_id = ?1 AND label = ?2",
                )?
                .execute(params![
                    media_id,
                    label,
                    now,
                    validator.is_some(),
                    validator.flatten()
                ])?;
            if validator.is_some() {
                // Bytes from zero: no point of the bytes before holds.
                forget_resume(transaction, media_id, label)?;
            }
            Ok(())
        })
    }

    /// The file is checked, fsynced and at its final path: the variant is done.
    pub fn mark_verified(
        &self,
        media_id: &str,
        label: &str,
        local_path: &str,
        sha256: &str,
        size: ByteSize,
        now: EpochMillis,
    ) -> Result<(), StoreError> {
        self.transaction(|connection| {
            forget_resume(connection, media_id, label)?;
            connection
                .prepare_cached(
                    "UPDATE variants SET local_state = 'verified', local_path = ?3, sha256 = ?4,
                        verified_size = ?5, verified_at = ?6, last_error = NULL,
                        part_validator = NULL, updated_at = ?6,
                        verified_content_type = content_type, verified_stored_at = stored_at,
                        checked_at = NULL, check_outcome = NULL
                     WHERE media_id = ?1 AND label = ?2",
                )?
                .execute(params![media_id, label, local_path, sha256, size, now])
        })?;
        self.sync_progress()
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
        self.with(|connection| {
            connection
                .prepare_cached(
                    "UPDATE variants SET local_state = ?3, last_error = ?4, updated_at = ?5
                     WHERE media_id = ?1 AND label = ?2",
                )?
                .execute(params![media_id, label, state.as_str(), reason, now])
        })?;
        Ok(())
    }

    /// What the database holds of each variant of `media_ids`, by
    /// (media id, label); variants it has never seen are absent.
    pub fn local_variants(
        &self,
        media_ids: &[String],
    ) -> Result<HashMap<(String, String), LocalVariant>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT label, local_state, local_path, verified_size, part_validator
                 FROM variants WHERE media_id = ?1",
            )?;
            let mut found = HashMap::new();
            for media_id in media_ids {
                let rows = statement.query_map(params![media_id], |row| {
                    Ok((row.get::<_, String>(0)?, read_local_at(row, 1)?))
                })?;
                for row in rows {
                    let (label, local) = row?;
                    found.insert((media_id.clone(), label), local);
                }
            }
            Ok(found)
        })
    }

    /// Every variant label the database has recorded.
    pub fn labels(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare("SELECT DISTINCT label FROM variants")?;
            let labels = statement.query_map([], |row| row.get::<_, String>(0))?;
            labels.collect::<Result<_, _>>()
        })
    }

    /// Counts of variants by local state (for tests and `status`).
    pub fn count_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT local_state, count(*) FROM variants GROUP BY local_state ORDER BY 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })
    }
}

/// [`Store::record_remote`]'s media: new or changed ones written, all of
/// them (`ids`, a JSON array) seen now.
fn record_media(
    transaction: &Transaction<'_>,
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
            upsert.execute(params![
                item.media_id,
                item.media_type,
                item.duration,
                dir_name(&item.media_id),
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
/// (`ids`) are matched to what the API said by (media, label) and compared
/// in place; an unchanged one is taken as it is, anything else is
/// upserted. Returns the local state of each, in order.
fn record_variants(
    transaction: &Transaction<'_>,
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
                |row| read_local_at(row, 0),
            ),
        })
        .collect()
}

/// [`LocalVariant`] from the columns `local_state, local_path,
/// verified_size, part_validator` of `row`, starting at `first`.
fn read_local_at(row: &Row<'_>, first: usize) -> rusqlite::Result<LocalVariant> {
    Ok(LocalVariant {
        state: LocalState::parse(row.get_ref(first)?.as_str()?),
        local_path: row.get(first + 1)?,
        // A size no verified file can have (negative: a damaged row) is
        // no size: the file then counts as absent and is fetched again.
        verified_size: row
            .get::<_, Option<i64>>(first + 2)?
            .and_then(|size| u64::try_from(size).ok())
            .map(ByteSize),
        part_validator: row.get(first + 3)?,
    })
}

/// Whether the recorded description in `row` (columns `remote_status,
/// size_bytes, content_type, remote_created_at, stored_at` from `first`)
/// says what `remote` says; an absent `storedAt` keeps the recorded one,
/// as the upsert does. Compared in place, nothing copied.
fn described_alike(row: &Row<'_>, first: usize, remote: &RemoteVariant) -> rusqlite::Result<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{self, media, stored};

    #[test]
    fn change_upstream_reopens_a_verified_variant() {
        let (_dir, store) = testing::open();
        let locals = store
            .record_remote(&[media("1")], &[stored("1", 10, 2)], 1)
            .unwrap();
        assert_eq!(locals[0].state, LocalState::Missing);
        store.mark_downloading("1", "full", None, 2).unwrap();
        store
            .mark_verified(
                "1",
                "full",
                "media/1/full.jpg",
                "ab",
                ByteSize(10),
                EpochMillis(3),
            )
            .unwrap();
        let same = store
            .record_remote(&[media("1")], &[stored("1", 10, 2)], 4)
            .unwrap();
        assert_eq!(same[0].state, LocalState::Verified);
        assert_eq!(same[0].verified_size, Some(ByteSize(10)));
        let changed = store
            .record_remote(&[media("1")], &[stored("1", 11, 2)], 5)
            .unwrap();
        assert_eq!(changed[0].state, LocalState::Missing);
    }

    #[test]
    fn the_local_state_machine() {
        let (_dir, store) = testing::open();
        store
            .record_remote(&[media("1")], &[stored("1", 10, 2)], 1)
            .unwrap();
        let local = |store: &Store| {
            store.local_variants(&["1".into()]).unwrap()[&("1".to_owned(), "full".to_owned())]
                .clone()
        };
        store
            .mark_downloading("1", "full", Some(Some("\"etag\"")), 2)
            .unwrap();
        assert_eq!(local(&store).state, LocalState::Downloading);
        assert_eq!(local(&store).part_validator.as_deref(), Some("\"etag\""));
        // A resumed attempt keeps the validator of the bytes in `.part`.
        store.mark_downloading("1", "full", None, 3).unwrap();
        assert_eq!(local(&store).part_validator.as_deref(), Some("\"etag\""));
        store
            .mark_unfinished("1", "full", LocalState::Quarantined, "bad bytes", 4)
            .unwrap();
        assert_eq!(local(&store).state, LocalState::Quarantined);
        store
            .mark_verified(
                "1",
                "full",
                "media/1/full.jpg",
                "ab",
                ByteSize(10),
                EpochMillis(5),
            )
            .unwrap();
        let verified = local(&store);
        assert_eq!(verified.state, LocalState::Verified);
        assert_eq!(verified.part_validator, None);
        assert_eq!(
            store.count_by_state().unwrap(),
            vec![("verified".to_owned(), 1)]
        );
    }
}
