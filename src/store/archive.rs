//! Store queries of the offline archive: what the list views, `export`,
//! `mirror --prune` and kept versions read and record (migration 2).
//!
//! Invariants: paths stored here are relative to the archive root and were
//! built by `archive::paths` (they are still checked by the callers before
//! any file is touched); a kept version is recorded only after its bytes
//! are in `.versions/`; a prune is recorded in one transaction after its
//! files are deleted, so the database never claims bytes it no longer has
//! for longer than a crash between the two.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// A list as the archive shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveList {
    pub list_id: String,
    pub name: String,
    /// Missing from the connection's lists since (epoch ms).
    pub gone_at: Option<i64>,
}

/// One (list, media) membership row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub list_id: String,
    pub media_id: String,
    /// Gone from the list upstream since (epoch ms).
    pub gone_at: Option<i64>,
}

/// A verified variant, with what the archive index says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedVariant {
    pub media_id: String,
    pub label: String,
    /// Relative to the archive root (`media/<dir>/<label>.<ext>`).
    pub local_path: String,
    pub sha256: String,
    pub size: i64,
    pub content_type: Option<String>,
    pub media_type: Option<String>,
    pub duration: Option<f64>,
    pub created_at: Option<i64>,
    pub stored_at: Option<i64>,
    pub verified_at: Option<i64>,
}

/// A verified file of a list's current member, as the list's view links it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewFile<'a> {
    /// Relative to the archive root (`media/<dir>/<label>.<ext>`).
    pub local_path: &'a str,
    pub size: i64,
    pub verified_at: Option<i64>,
}

/// A list view as last written (see `archive::views`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewState {
    /// sha256 (hex) of the view's [`ViewFile`]s.
    pub digest: String,
    pub folder_inode: i64,
    /// The folder's modification time, in nanoseconds since the epoch.
    pub folder_mtime: i64,
    pub links: i64,
}

/// Bytes a change upstream replaced, kept under `.versions/`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VersionRecord {
    pub media_id: String,
    pub label: String,
    /// Relative to the archive root (`.versions/<dir>/<label>-<time>.<ext>`).
    pub local_path: String,
    pub sha256: String,
    pub size: i64,
    pub content_type: Option<String>,
    pub stored_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub kept_at: i64,
    /// sha256 of the bytes that replaced these.
    pub replaced_by: String,
}

/// What the database says about the bytes a variant had before a new
/// commit replaces them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreviousBytes {
    /// The media's sanitised folder name.
    pub dir_name: String,
    pub local_path: Option<String>,
    pub sha256: Option<String>,
    pub content_type: Option<String>,
    pub stored_at: Option<i64>,
    pub verified_at: Option<i64>,
}

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
    /// Every list the database knows, by name then id.
    pub fn archive_lists(&self) -> Result<Vec<ArchiveList>, StoreError> {
        let connection = self.lock();
        self.rows(
            &connection,
            "SELECT list_id, name, gone_at FROM lists ORDER BY name, list_id",
            [],
            |row| {
                Ok(ArchiveList {
                    list_id: row.get(0)?,
                    name: row.get(1)?,
                    gone_at: row.get(2)?,
                })
            },
        )
    }

    /// Every membership row, current or gone.
    pub fn archive_membership(&self) -> Result<Vec<Membership>, StoreError> {
        let connection = self.lock();
        self.rows(
            &connection,
            "SELECT list_id, media_id, gone_at FROM membership ORDER BY list_id, media_id",
            [],
            |row| {
                Ok(Membership {
                    list_id: row.get(0)?,
                    media_id: row.get(1)?,
                    gone_at: row.get(2)?,
                })
            },
        )
    }

    /// The verified files of `list_id`'s current members, by media id then
    /// label, one at a time (a list may hold many).
    pub fn view_files(
        &self,
        list_id: &str,
        mut each: impl FnMut(ViewFile<'_>),
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        // CROSS JOIN keeps SQLite walking the list's members: left to
        // itself it walks every verified variant of the archive per list.
        let mut statement = connection
            .prepare_cached(
                "SELECT v.local_path, v.verified_size, v.verified_at
                 FROM membership AS m CROSS JOIN variants AS v ON v.media_id = m.media_id
                 WHERE m.list_id = ?1 AND m.gone_at IS NULL AND v.local_state = 'verified'
                   AND v.local_path IS NOT NULL AND v.sha256 IS NOT NULL
                   AND v.verified_size IS NOT NULL
                 ORDER BY m.media_id, v.label",
            )
            .map_err(|error| self.sql(error))?;
        let mut rows = statement
            .query([list_id])
            .map_err(|error| self.sql(error))?;
        while let Some(row) = rows.next().map_err(|error| self.sql(error))? {
            let read = || -> rusqlite::Result<ViewFile<'_>> {
                Ok(ViewFile {
                    local_path: row.get_ref(0)?.as_str()?,
                    size: row.get(1)?,
                    verified_at: row.get(2)?,
                })
            };
            each(read().map_err(|error| self.sql(error))?);
        }
        Ok(())
    }

    /// The list views as last written, by folder name.
    pub fn view_states(&self) -> Result<HashMap<String, ViewState>, StoreError> {
        let connection = self.lock();
        let rows = self.rows(
            &connection,
            "SELECT view, digest, folder_inode, folder_mtime, links FROM view_state",
            [],
            |row| {
                Ok((
                    row.get(0)?,
                    ViewState {
                        digest: row.get(1)?,
                        folder_inode: row.get(2)?,
                        folder_mtime: row.get(3)?,
                        links: row.get(4)?,
                    },
                ))
            },
        )?;
        Ok(rows.into_iter().collect())
    }

    /// Replaces the recorded view states with `states` (views not named
    /// are forgotten, and are read in full next time).
    pub fn replace_view_states(&self, states: &[(String, ViewState)]) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(|error| self.sql(error))?;
        transaction
            .execute("DELETE FROM view_state", [])
            .map_err(|error| self.sql(error))?;
        for (view, state) in states {
            transaction
                .execute(
                    "INSERT INTO view_state (view, digest, folder_inode, folder_mtime, links)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        view,
                        state.digest,
                        state.folder_inode,
                        state.folder_mtime,
                        state.links
                    ],
                )
                .map_err(|error| self.sql(error))?;
        }
        transaction.commit().map_err(|error| self.sql(error))
    }

    /// Every verified variant, by media id then label.
    pub fn archived_variants(&self) -> Result<Vec<ArchivedVariant>, StoreError> {
        let connection = self.lock();
        self.rows(&connection, "SELECT v.media_id, v.label, v.local_path, v.sha256, v.verified_size,
                        coalesce(v.verified_content_type, v.content_type), m.media_type, m.duration,
                        v.remote_created_at, coalesce(v.verified_stored_at, v.stored_at), v.verified_at
                 FROM variants v JOIN media m USING (media_id)
                 WHERE v.local_state = 'verified' AND v.local_path IS NOT NULL
                   AND v.sha256 IS NOT NULL AND v.verified_size IS NOT NULL
                 ORDER BY v.media_id, v.label", [], |row| {
                Ok(ArchivedVariant {
                    media_id: row.get(0)?,
                    label: row.get(1)?,
                    local_path: row.get(2)?,
                    sha256: row.get(3)?,
                    size: row.get(4)?,
                    content_type: row.get(5)?,
                    media_type: row.get(6)?,
                    duration: row.get(7)?,
                    created_at: row.get(8)?,
                    stored_at: row.get(9)?,
                    verified_at: row.get(10)?,
                })
            })
    }

    /// Kept versions still on disk (not pruned), by media id, label, time.
    pub fn kept_versions(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.versions_where("pruned_at IS NULL", params![])
    }

    /// Versions kept at or after `since` (epoch ms), for a run's summary.
    pub fn versions_kept_since(&self, since: i64) -> Result<Vec<VersionRecord>, StoreError> {
        self.versions_where("kept_at >= ?1", params![since])
    }

    fn versions_where(
        &self,
        filter: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let connection = self.lock();
        let sql = format!(
            "SELECT media_id, label, local_path, sha256, size, content_type, stored_at,
                    verified_at, kept_at, replaced_by
             FROM versions WHERE {filter}
             ORDER BY media_id, label, kept_at, version_id"
        );
        self.rows(&connection, &sql, values, |row| {
            Ok(VersionRecord {
                media_id: row.get(0)?,
                label: row.get(1)?,
                local_path: row.get(2)?,
                sha256: row.get(3)?,
                size: row.get(4)?,
                content_type: row.get(5)?,
                stored_at: row.get(6)?,
                verified_at: row.get(7)?,
                kept_at: row.get(8)?,
                replaced_by: row.get(9)?,
            })
        })
    }

    /// What the database holds about a variant's current bytes; `None`
    /// when the media is unknown.
    pub fn previous_bytes(
        &self,
        media_id: &str,
        label: &str,
    ) -> Result<Option<PreviousBytes>, StoreError> {
        let connection = self.lock();
        let dir_name: Option<String> = connection
            .prepare_cached("SELECT dir_name FROM media WHERE media_id = ?1")
            .and_then(|mut statement| statement.query_row(params![media_id], |row| row.get(0)))
            .optional()
            .map_err(|error| self.sql(error))?;
        let Some(dir_name) = dir_name else {
            return Ok(None);
        };
        let previous = connection
            .prepare_cached(
                "SELECT local_path, sha256, verified_content_type, verified_stored_at, verified_at
                 FROM variants WHERE media_id = ?1 AND label = ?2",
            )
            .and_then(|mut statement| {
                statement.query_row(params![media_id, label], |row| {
                    Ok(PreviousBytes {
                        dir_name: dir_name.clone(),
                        local_path: row.get(0)?,
                        sha256: row.get(1)?,
                        content_type: row.get(2)?,
                        stored_at: row.get(3)?,
                        verified_at: row.get(4)?,
                    })
                })
            })
            .optional()
            .map_err(|error| self.sql(error))?;
        Ok(Some(previous.unwrap_or(PreviousBytes {
            dir_name,
            ..PreviousBytes::default()
        })))
    }

    /// Whether a kept version already uses `local_path`.
    pub fn version_path_taken(&self, local_path: &str) -> Result<bool, StoreError> {
        self.lock()
            .query_row(
                "SELECT 1 FROM versions WHERE local_path = ?1",
                params![local_path],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|error| self.sql(error))
    }

    /// Records bytes moved into `.versions/` (call after the move).
    pub fn record_version(&self, version: &VersionRecord) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO versions (media_id, label, local_path, sha256, size, content_type,
                    stored_at, verified_at, kept_at, replaced_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    version.media_id,
                    version.label,
                    version.local_path,
                    version.sha256,
                    version.size,
                    version.content_type,
                    version.stored_at,
                    version.verified_at,
                    version.kept_at,
                    version.replaced_by,
                ],
            )
            .map_err(|error| self.sql(error))?;
        Ok(())
    }

    /// Media no live list holds any more: every membership row is gone, or
    /// belongs to a list gone from the connection. Lists a run did not
    /// read keep their last known members, so this errs on keeping.
    pub fn gone_from_every_list(&self) -> Result<Vec<GoneMedia>, StoreError> {
        let connection = self.lock();
        let mut gone = {
            let mut statement = connection
                .prepare_cached(
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
                )
                .map_err(|error| self.sql(error))?;
            let rows = statement
                .query_map([], |row| {
                    Ok(GoneMedia {
                        media_id: row.get(0)?,
                        dir_name: row.get(1)?,
                        pruned_at: row.get(2)?,
                        gone_at: row.get(3)?,
                        files: Vec::new(),
                    })
                })
                .map_err(|error| self.sql(error))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|error| self.sql(error))?
        };
        let mut variants = connection
            .prepare_cached(
                "SELECT local_path, sha256, verified_size FROM variants
                 WHERE media_id = ?1 AND local_path IS NOT NULL ORDER BY label",
            )
            .map_err(|error| self.sql(error))?;
        let mut versions = connection
            .prepare_cached(
                "SELECT local_path, sha256, size FROM versions
                 WHERE media_id = ?1 AND pruned_at IS NULL ORDER BY version_id",
            )
            .map_err(|error| self.sql(error))?;
        for media in &mut gone {
            for statement in [&mut variants, &mut versions] {
                let rows = statement
                    .query_map(params![media.media_id], |row| {
                        Ok(RecordedFile {
                            local_path: row.get(0)?,
                            sha256: row.get(1)?,
                            size: row.get(2)?,
                        })
                    })
                    .map_err(|error| self.sql(error))?;
                for row in rows {
                    media.files.push(row.map_err(|error| self.sql(error))?);
                }
            }
        }
        Ok(gone)
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
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(|error| self.sql(error))?;
        {
            let mut add_file = transaction
                .prepare_cached(
                    "INSERT INTO pruned_files (media_id, local_path, size, sha256, pruned_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|error| self.sql(error))?;
            for file in files {
                add_file
                    .execute(params![
                        file.media_id,
                        file.path,
                        i64::try_from(file.size).unwrap_or(i64::MAX),
                        file.sha256,
                        now
                    ])
                    .map_err(|error| self.sql(error))?;
            }
            let mut reset_variants = transaction
                .prepare_cached(
                    "UPDATE variants SET local_state = 'missing', local_path = NULL, sha256 = NULL,
                        verified_size = NULL, verified_at = NULL, part_validator = NULL,
                        verified_content_type = NULL, verified_stored_at = NULL,
                        last_error = 'pruned: gone from every mirrored list', updated_at = ?2
                     WHERE media_id = ?1",
                )
                .map_err(|error| self.sql(error))?;
            let mut prune_versions = transaction
                .prepare_cached(
                    "UPDATE versions SET pruned_at = ?2 WHERE media_id = ?1 AND pruned_at IS NULL",
                )
                .map_err(|error| self.sql(error))?;
            let mut prune_media = transaction
                .prepare_cached("UPDATE media SET pruned_at = ?2 WHERE media_id = ?1")
                .map_err(|error| self.sql(error))?;
            for media_id in media_ids {
                for statement in [&mut reset_variants, &mut prune_versions, &mut prune_media] {
                    statement
                        .execute(params![media_id, now])
                        .map_err(|error| self.sql(error))?;
                }
            }
        }
        transaction.commit().map_err(|error| self.sql(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::RemoteStatus;
    use crate::store::{ListRecord, MediaRecord, RemoteVariant};

    fn media(id: &str) -> MediaRecord {
        MediaRecord {
            media_id: id.into(),
            media_type: Some("image".into()),
            duration: None,
        }
    }

    fn list(id: &str) -> ListRecord {
        ListRecord {
            list_id: id.into(),
            name: format!("list {id}"),
            list_type: None,
        }
    }

    fn verified(store: &Store, id: &str, now: i64) {
        let remote = RemoteVariant {
            media_id: id.into(),
            label: "full".into(),
            status: RemoteStatus::Stored,
            size_bytes: Some(10),
            content_type: Some("image/jpeg".into()),
            created_at: Some(1),
            stored_at: Some(now),
        };
        store.record_remote(&[media(id)], &[remote], now).unwrap();
        store
            .mark_verified(id, "full", &format!("media/{id}/full.jpg"), "ab", 10, now)
            .unwrap();
    }

    #[test]
    fn gone_means_gone_from_every_live_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
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
            .record_prune(
                &["1".into()],
                &[PrunedFile {
                    media_id: "1".into(),
                    path: "media/1/full.jpg".into(),
                    size: 10,
                    sha256: Some("ab".into()),
                }],
                4,
            )
            .unwrap();
        let gone = store.gone_from_every_list().unwrap();
        assert_eq!(gone[0].pruned_at, Some(4));
        assert!(gone[0].files.is_empty(), "{gone:?}");
        assert_eq!(store.archived_variants().unwrap().len(), 2);
    }

    #[test]
    fn a_database_at_migration_1_is_upgraded_with_its_verified_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        {
            let connection = rusqlite::Connection::open(&path).unwrap();
            connection
                .execute_batch(super::super::MIGRATIONS[0])
                .unwrap();
            connection
                .execute_batch(&format!(
                    "PRAGMA user_version = 1; PRAGMA application_id = {};
                     INSERT INTO media (media_id, dir_name, first_seen_at, last_seen_at)
                        VALUES ('1', '1', 1, 1);
                     INSERT INTO variants (media_id, label, remote_status, size_bytes, content_type,
                        stored_at, remote_seen_at, local_state, local_path, sha256, verified_size,
                        updated_at)
                        VALUES ('1', 'full', 'stored', 3, 'image/png', 7, 1, 'verified',
                        'media/1/full.png', 'ab', 3, 1);",
                    super::super::APPLICATION_ID
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

    #[test]
    fn previous_bytes_survive_a_change_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        verified(&store, "1", 5);
        // Vault+ now says it was stored again later: the row follows
        // Vault+, the verified columns stay with the bytes on disk.
        let remote = RemoteVariant {
            media_id: "1".into(),
            label: "full".into(),
            status: RemoteStatus::Stored,
            size_bytes: Some(12),
            content_type: Some("image/png".into()),
            created_at: Some(1),
            stored_at: Some(9),
        };
        store.record_remote(&[media("1")], &[remote], 9).unwrap();
        let previous = store.previous_bytes("1", "full").unwrap().unwrap();
        assert_eq!(previous.dir_name, "1");
        assert_eq!(previous.local_path.as_deref(), Some("media/1/full.jpg"));
        assert_eq!(previous.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(previous.stored_at, Some(5));
        assert!(store.previous_bytes("nobody", "full").unwrap().is_none());

        let version = VersionRecord {
            media_id: "1".into(),
            label: "full".into(),
            local_path: ".versions/1/full-x.jpg".into(),
            sha256: "ab".into(),
            size: 10,
            content_type: previous.content_type,
            stored_at: previous.stored_at,
            verified_at: previous.verified_at,
            kept_at: 10,
            replaced_by: "cd".into(),
        };
        store.record_version(&version).unwrap();
        assert!(store.version_path_taken(".versions/1/full-x.jpg").unwrap());
        assert_eq!(store.kept_versions().unwrap(), vec![version.clone()]);
        assert_eq!(store.versions_kept_since(10).unwrap().len(), 1);
        assert!(store.versions_kept_since(11).unwrap().is_empty());
    }
}
