//! What `mirror --prune` reads and records: media no live list holds, the
//! files it would delete, and the prune itself.
//!
//! Invariants: a prune is recorded in one transaction after its files are
//! deleted, so the database never claims bytes it no longer has for longer
//! than a crash between the two; every deleted file keeps a row in
//! `pruned_files`; a pruned media's variants go back to `missing`, so its
//! return upstream fetches them again.

use std::collections::HashSet;

use rusqlite::params;

use crate::store::archive::VerifiedFile;
use crate::store::database::{Store, rows};
use crate::store::error::StoreError;
use crate::units::ByteSize;

/// Media that no live list holds any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoneMedia {
    pub media_id: String,
    pub dir_name: String,
    /// When it left the last list that held it (epoch ms).
    pub gone_at: Option<i64>,
    /// When `--prune` last deleted its local copies.
    pub pruned_at: Option<i64>,
    /// Files the database records for it (variants and kept versions).
    pub files: Vec<RecordedFile>,
}

/// A file the database knows, relative to the archive root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    pub local_path: String,
    pub sha256: Option<String>,
    pub size: Option<i64>,
}

/// A file `--prune` deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrunedFile {
    pub media_id: String,
    /// Relative to the archive root.
    pub path: String,
    pub size: u64,
    #[serde(skip)]
    pub sha256: Option<String>,
}

impl Store {
    /// Media no live list holds any more: every membership row is gone, or
    /// belongs to a list gone from the connection. Lists a run did not
    /// read keep their last known members, so this errs on keeping.
    pub fn gone_from_every_list(&self) -> Result<Vec<GoneMedia>, StoreError> {
        self.with(|connection| {
            let mut gone = rows(
                connection,
                "SELECT m.media_id, m.dir_name, m.pruned_at,
                    (SELECT max(coalesce(ms.gone_at, l.gone_at))
                     FROM membership ms JOIN lists l USING (list_id)
                     WHERE ms.media_id = m.media_id)
                 FROM media m
                 WHERE EXISTS (SELECT 1 FROM membership ms WHERE ms.media_id = m.media_id)
                   AND NOT EXISTS (
                     SELECT 1 FROM membership ms JOIN lists l USING (list_id)
                     WHERE ms.media_id = m.media_id
                       AND ms.gone_at IS NULL AND l.gone_at IS NULL)
                 ORDER BY m.media_id",
                [],
                |row| {
                    Ok(GoneMedia {
                        media_id: row.get(0)?,
                        dir_name: row.get(1)?,
                        pruned_at: row.get(2)?,
                        gone_at: row.get(3)?,
                        files: Vec::new(),
                    })
                },
            )?;
            let recorded = [
                "SELECT local_path, sha256, verified_size FROM variants
                 WHERE media_id = ?1 AND local_path IS NOT NULL ORDER BY label",
                "SELECT local_path, sha256, size FROM versions
                 WHERE media_id = ?1 AND pruned_at IS NULL ORDER BY version_id",
            ];
            for media in &mut gone {
                for sql in recorded {
                    media
                        .files
                        .extend(rows(connection, sql, params![media.media_id], |row| {
                            Ok(RecordedFile {
                                local_path: row.get(0)?,
                                sha256: row.get(1)?,
                                size: row.get(2)?,
                            })
                        })?);
                }
            }
            Ok(gone)
        })
    }

    /// Verified files of media that were members of one of `list_ids` but
    /// are in none of `current` now, nor a current member of another list:
    /// what `--prune` would delete.
    pub fn prune_candidates(
        &self,
        list_ids: &[String],
        current: &HashSet<String>,
    ) -> Result<Vec<VerifiedFile>, StoreError> {
        let membership: Vec<(String, String, bool)> = self.with(|connection| {
            rows(
                connection,
                "SELECT list_id, media_id, gone_at IS NULL FROM membership",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
        })?;
        let mut ever_selected = HashSet::new();
        let mut held_elsewhere = HashSet::new();
        for (list_id, media_id, is_current) in membership {
            if list_ids.contains(&list_id) {
                ever_selected.insert(media_id);
            } else if is_current {
                held_elsewhere.insert(media_id);
            }
        }
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

    /// Records a prune, in one transaction: the files deleted, and for each
    /// media its variants back to `missing` (so a return upstream fetches
    /// them again), its versions and itself marked pruned.
    pub fn record_prune(
        &self,
        media_ids: &[String],
        files: &[PrunedFile],
        now: i64,
    ) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            let mut add_file = transaction.prepare_cached(
                "INSERT INTO pruned_files (media_id, local_path, size, sha256, pruned_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for file in files {
                add_file.execute(params![
                    file.media_id,
                    file.path,
                    ByteSize::from(file.size),
                    file.sha256,
                    now
                ])?;
            }
            let mut reset_variants = transaction.prepare_cached(
                "UPDATE variants SET local_state = 'missing', local_path = NULL, sha256 = NULL,
                    verified_size = NULL, verified_at = NULL, part_validator = NULL,
                    verified_content_type = NULL, verified_stored_at = NULL,
                    last_error = 'pruned: gone from every mirrored list', updated_at = ?2
                 WHERE media_id = ?1",
            )?;
            let mut prune_versions = transaction.prepare_cached(
                "UPDATE versions SET pruned_at = ?2 WHERE media_id = ?1 AND pruned_at IS NULL",
            )?;
            let mut prune_media = transaction
                .prepare_cached("UPDATE media SET pruned_at = ?2 WHERE media_id = ?1")?;
            // A pruned media's upload kept open is no longer ours to resume:
            // the end of the run aborts it.
            let mut forget_points =
                transaction.prepare_cached("DELETE FROM resume_points WHERE media_id = ?1")?;
            let mut forget_uploads =
                transaction.prepare_cached("DELETE FROM resumable_uploads WHERE media_id = ?1")?;
            for media_id in media_ids {
                for statement in [&mut reset_variants, &mut prune_versions, &mut prune_media] {
                    statement.execute(params![media_id, now])?;
                }
                forget_points.execute(params![media_id])?;
                forget_uploads.execute(params![media_id])?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{self, list, media, verified};

    fn pruned(media_id: &str, size: u64) -> PrunedFile {
        PrunedFile {
            media_id: media_id.into(),
            path: format!("media/{media_id}/full.jpg"),
            size,
            sha256: Some("ab".into()),
        }
    }

    #[test]
    fn gone_means_gone_from_every_live_list() {
        let (_dir, store) = testing::open();
        store
            .record_lists(&[list("a"), list("b")], true, 1)
            .unwrap();
        store
            .record_membership("a", &[media("1"), media("2"), media("3")], 1)
            .unwrap();
        store.record_membership("b", &[media("2")], 1).unwrap();
        for id in ["1", "2", "3"] {
            verified(&store, id, 1);
        }
        // 1 leaves a; 2 leaves a but stays in b; 3 stays.
        store.record_membership("a", &[media("3")], 2).unwrap();
        let gone = store.gone_from_every_list().unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].media_id, "1");
        assert_eq!(gone[0].gone_at, Some(2));
        assert_eq!(gone[0].files[0].local_path, "media/1/full.jpg");
        let candidates: Vec<String> = store
            .prune_candidates(&["a".into()], &HashSet::from(["3".to_owned()]))
            .unwrap()
            .into_iter()
            .map(|file| file.media_id)
            .collect();
        assert_eq!(candidates, ["1"]);

        // List b disappears from the connection: 2 is gone too.
        store.record_lists(&[list("a")], true, 3).unwrap();
        let ids: Vec<String> = store
            .gone_from_every_list()
            .unwrap()
            .into_iter()
            .map(|media| media.media_id)
            .collect();
        assert_eq!(ids, ["1", "2"]);

        store
            .record_prune(&["1".into()], &[pruned("1", 10)], 4)
            .unwrap();
        let gone = store.gone_from_every_list().unwrap();
        assert_eq!(gone[0].pruned_at, Some(4));
        assert!(gone[0].files.is_empty(), "{gone:?}");
        assert_eq!(store.archived_variants().unwrap().len(), 2);
    }

    #[test]
    fn a_prune_with_an_impossible_size_records_nothing() {
        let (_dir, store) = testing::open();
        store.record_lists(&[list("a")], true, 1).unwrap();
        store.record_membership("a", &[media("1")], 1).unwrap();
        verified(&store, "1", 1);
        let error = store
            .record_prune(&["1".into()], &[pruned("1", u64::MAX)], 2)
            .unwrap_err();
        assert!(matches!(error, StoreError::Sql { .. }), "{error}");
        // The transaction rolled back whole: the variant is still verified.
        assert_eq!(store.verified_files().unwrap().len(), 1);
    }
}
