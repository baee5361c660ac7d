//! What a transfer needs to resume after a crash (migration 7): the
//! points it reached — every part boundary, with the sha256 state there —
//! and, on object storage, the multipart upload kept open across runs.
//!
//! Invariants: points are recorded only for bytes that are durable where
//! they went (a part the store acknowledged, `.part` bytes after
//! `sync_data`); every point and upload of a variant is forgotten when its
//! bytes start again from zero ([`Store::mark_downloading`] with a fresh
//! validator) and when it is verified ([`Store::mark_verified`]), so no
//! point outlives the bytes it describes.

use rusqlite::{OptionalExtension, params};

use crate::store::database::Store;
use crate::store::error::StoreError;
use crate::units::{ByteSize, EpochMillis};

/// How long an upload kept open stays resumable: past this, the end of a
/// run aborts it like any other leftover (a media that never comes back
/// must not leave parts billed forever).
pub const RESUMABLE_FOR_MS: i64 = 30 * 24 * 3600 * 1000;

/// One point a transfer can resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// Bytes of the file before this point.
    pub end: u64,
    /// The part that ends here (1-based) and its size.
    pub part_number: u32,
    pub part_size: u64,
    /// The sha256 state after `end` bytes (no partial block pending).
    pub sha256_state: [u8; 32],
    /// Object storage: the store's id of the part (its ETag and checksum).
    pub part_id: Option<String>,
    /// Disk: the sha256 of the bytes just before `end`.
    pub tail_sha256: Option<[u8; 32]>,
}

/// A multipart upload kept open across runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableUpload {
    pub key: String,
    pub upload_id: String,
    pub declared_size: u64,
    /// The file's first bytes (for the magic-byte check).
    pub head: Vec<u8>,
    pub started_at: i64,
}

/// Forgets every point and the upload of one variant (a step of a
/// statement batch: the caller's transaction).
pub(super) fn forget_resume(
    connection: &rusqlite::Connection,
    media_id: &str,
    label: &str,
) -> rusqlite::Result<()> {
    for statement in [
        "DELETE FROM resume_points WHERE media_id = ?1 AND label = ?2",
        "DELETE FROM resumable_uploads WHERE media_id = ?1 AND label = ?2",
    ] {
        connection
            .prepare_cached(statement)?
            .execute(params![media_id, label])?;
    }
    Ok(())
}

fn blob32(bytes: Vec<u8>) -> rusqlite::Result<[u8; 32]> {
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("a sha256 state of {} bytes, not 32", bytes.len()).into(),
        )
    })
}

impl Store {
    /// Records points a transfer reached (and, with `upload`, the upload
    /// they belong to, if not recorded yet), in one transaction.
    pub fn record_resume_points(
        &self,
        media_id: &str,
        label: &str,
        upload: Option<&ResumableUpload>,
        points: &[ResumePoint],
    ) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            if let Some(upload) = upload {
                transaction
                    .prepare_cached(
                        "INSERT INTO resumable_uploads (media_id, label, object_key, upload_id,
                            declared_size, head, started_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (media_id, label) DO UPDATE SET
                            object_key = excluded.object_key, upload_id = excluded.upload_id,
                            declared_size = excluded.declared_size, head = excluded.head,
                            started_at = excluded.started_at
                         WHERE upload_id != excluded.upload_id",
                    )?
                    .execute(params![
                        media_id,
                        label,
                        upload.key,
                        upload.upload_id,
                        ByteSize(upload.declared_size),
                        upload.head,
                        upload.started_at
                    ])?;
            }
            let mut insert = transaction.prepare_cached(
                "INSERT OR REPLACE INTO resume_points (media_id, label, end_offset, part_number,
                    part_size, sha256_state, part_id, tail_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for point in points {
                insert.execute(params![
                    media_id,
                    label,
                    ByteSize(point.end),
                    point.part_number,
                    ByteSize(point.part_size),
                    point.sha256_state.as_slice(),
                    point.part_id,
                    point.tail_sha256.as_ref().map(<[u8; 32]>::as_slice),
                ])?;
            }
            Ok(())
        })
    }

    /// The points of a variant, in order.
    pub fn resume_points(
        &self,
        media_id: &str,
        label: &str,
    ) -> Result<Vec<ResumePoint>, StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(
                    "SELECT end_offset, part_number, part_size, sha256_state, part_id, tail_sha256
                     FROM resume_points WHERE media_id = ?1 AND label = ?2 ORDER BY end_offset",
                )?
                .query_map(params![media_id, label], |row| {
                    let end: ByteSize = row.get(0)?;
                    let size: ByteSize = row.get(2)?;
                    let tail: Option<Vec<u8>> = row.get(5)?;
                    Ok(ResumePoint {
                        end: end.0,
                        part_number: row.get(1)?,
                        part_size: size.0,
                        sha256_state: blob32(row.get(3)?)?,
                        part_id: row.get(4)?,
                        tail_sha256: tail.map(blob32).transpose()?,
                    })
                })?
                .collect()
        })
    }

    /// The upload kept open for a variant, if any.
    pub fn resumable_upload(
        &self,
        media_id: &str,
        label: &str,
    ) -> Result<Option<ResumableUpload>, StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(
                    "SELECT object_key, upload_id, declared_size, head, started_at
                     FROM resumable_uploads WHERE media_id = ?1 AND label = ?2",
                )?
                .query_row(params![media_id, label], |row| {
                    let size: ByteSize = row.get(2)?;
                    Ok(ResumableUpload {
                        key: row.get(0)?,
                        upload_id: row.get(1)?,
                        declared_size: size.0,
                        head: row.get(3)?,
                        started_at: row.get(4)?,
                    })
                })
                .optional()
        })
    }

    /// Forgets every point and the upload of a variant (its bytes start
    /// again from zero, or it is done).
    pub fn forget_resume(&self, media_id: &str, label: &str) -> Result<(), StoreError> {
        self.transaction(|transaction| forget_resume(transaction, media_id, label))
    }

    /// Whether the multipart upload `upload_id` to `key` (relative to the
    /// archive's prefix) is ours and resumable: recorded for a variant not
    /// verified yet, begun less than [`RESUMABLE_FOR_MS`] before `now`.
    /// The one predicate every sweep of incomplete uploads asks before it
    /// aborts one.
    pub fn is_resumable_upload(
        &self,
        key: &str,
        upload_id: &str,
        now: EpochMillis,
    ) -> Result<bool, StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM resumable_uploads AS u
                        JOIN variants AS v USING (media_id, label)
                        WHERE u.object_key = ?1 AND u.upload_id = ?2
                          AND v.local_state != 'verified' AND u.started_at > ?3)",
                )?
                .query_row(params![key, upload_id, now.0 - RESUMABLE_FOR_MS], |row| {
                    row.get(0)
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{media, open, stored};

    fn point(end: u64, number: u32) -> ResumePoint {
        ResumePoint {
            end,
            part_number: number,
            part_size: 8,
            sha256_state: [number as u8; 32],
            part_id: Some(format!("etag-{number}")),
            tail_sha256: None,
        }
    }

    #[test]
    fn points_and_uploads_are_kept_until_forgotten_or_verified() {
        let (_dir, store) = open();
        store
            .record_remote(&[media("1")], &[stored("1", 20, 1)], 1)
            .unwrap();
        let upload = ResumableUpload {
            key: "media/1/full.mp4".into(),
            upload_id: "up-1".into(),
            declared_size: 20,
            head: vec![1, 2, 3],
            started_at: 1_000,
        };
        store
            .record_resume_points("1", "full", Some(&upload), &[point(8, 1)])
            .unwrap();
        store
            .record_resume_points("1", "full", Some(&upload), &[point(16, 2)])
            .unwrap();
        assert_eq!(
            store.resume_points("1", "full").unwrap(),
            vec![point(8, 1), point(16, 2)]
        );
        assert_eq!(store.resumable_upload("1", "full").unwrap(), Some(upload));
        let resumable = |key, id, now| {
            store
                .is_resumable_upload(key, id, EpochMillis(now))
                .unwrap()
        };
        assert!(resumable("media/1/full.mp4", "up-1", 2_000));
        assert!(!resumable("media/1/full.mp4", "up-2", 2_000));
        assert!(!resumable(
            "media/1/full.mp4",
            "up-1",
            1_000 + RESUMABLE_FOR_MS
        ));

        // Starting from zero again forgets them.
        store
            .mark_downloading("1", "full", Some(Some("\"etag\"")), 3_000)
            .unwrap();
        assert!(store.resume_points("1", "full").unwrap().is_empty());
        assert_eq!(store.resumable_upload("1", "full").unwrap(), None);
        assert!(!resumable("media/1/full.mp4", "up-1", 2_000));

        // So does the variant's verification.
        store
            .record_resume_points("1", "full", None, &[point(8, 1)])
            .unwrap();
        store
            .mark_verified(
                "1",
                "full",
                "media/1/full.mp4",
                "ab",
                ByteSize(20),
                EpochMillis(4_000),
            )
            .unwrap();
        assert!(store.resume_points("1", "full").unwrap().is_empty());
    }
}
