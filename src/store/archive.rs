//! What the offline archive reads and records: the verified files (for the
//! list views, `export`, `verify`), the list views as last written, and
//! the versions kept when a change upstream replaced bytes (migration 2).
//!
//! Invariants: paths stored here are relative to the archive root and were
//! built by `archive::paths` (they are still checked by the callers before
//! any file is touched); a kept version is recorded only after its bytes
//! are in `.versions/`.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use crate::store::database::{Store, rows};
use crate::store::error::StoreError;
use crate::units::ByteSize;

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

/// A variant the database calls verified, and what its file must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFile {
    pub media_id: String,
    pub label: String,
    /// Relative to the archive root.
    pub local_path: String,
    pub sha256: String,
    /// `u64::MAX` when the database holds no size, or a negative one (no
    /// file matches it).
    pub size: u64,
    /// An earlier `verify` found it missing or damaged, and it has not been
    /// fetched since (it is `missing` now, waiting for a run).
    pub found_broken: bool,
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

impl Store {
    /// Every verified variant, by media id then label.
    pub fn archived_variants(&self) -> Result<Vec<ArchivedVariant>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT v.media_id, v.label, v.local_path, v.sha256, v.verified_size,
                    coalesce(v.verified_content_type, v.content_type), m.media_type, m.duration,
                    v.remote_created_at, coalesce(v.verified_stored_at, v.stored_at), v.verified_at
                 FROM variants v JOIN media m USING (media_id)
                 WHERE v.local_state = 'verified' AND v.local_path IS NOT NULL
                   AND v.sha256 IS NOT NULL AND v.verified_size IS NOT NULL
                 ORDER BY v.media_id, v.label",
                [],
                |row| {
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
                },
            )
        })
    }

    /// Every variant the database calls verified, by path.
    pub fn verified_files(&self) -> Result<Vec<VerifiedFile>, StoreError> {
        self.files_where("local_state = 'verified'", "local_path, media_id, label")
    }

    /// What `verify` checks: the verified files, and those an earlier
    /// `verify` found broken that no run has fetched since (so a second
    /// `verify` still reports them, and sees a file put back by hand).
    ///
    /// In the order a rolling check takes them: files found broken by an
    /// earlier check first, then those `verify` never re-read (oldest
    /// written first), then the rest by their last check, longest ago first.
    pub fn files_to_verify(&self) -> Result<Vec<VerifiedFile>, StoreError> {
        self.files_where(
            "local_state = 'verified' OR (local_state = 'missing' AND last_error LIKE 'verify:%'
                AND local_path IS NOT NULL AND sha256 IS NOT NULL)",
            "local_state = 'verified', checked_at IS NOT NULL, checked_at, verified_at,
             local_path, media_id, label",
        )
    }

    fn files_where(&self, condition: &str, order: &str) -> Result<Vec<VerifiedFile>, StoreError> {
        let sql = format!(
            "SELECT media_id, label, local_path, sha256, verified_size, local_state <> 'verified'
             FROM variants WHERE {condition} ORDER BY {order}"
        );
        self.with(|connection| {
            rows(connection, &sql, [], |row| {
                Ok(VerifiedFile {
                    media_id: row.get(0)?,
                    label: row.get(1)?,
                    local_path: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    sha256: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    // An absent or negative (damaged) size matches no
                    // file: `verify` reports it, and the next run fetches
                    // the file again and records its size anew.
                    size: row
                        .get::<_, Option<i64>>(4)?
                        .and_then(|size| ByteSize::try_from(size).ok())
                        .map_or(u64::MAX, u64::from),
                    found_broken: row.get(5)?,
                })
            })
        })
    }

    /// The verified files of `list_id`'s current members, by media id then
    /// label, one at a time (a list may hold many).
    pub fn view_files(
        &self,
        list_id: &str,
        mut each: impl FnMut(ViewFile<'_>),
    ) -> Result<(), StoreError> {
        self.with(|connection| {
            // CROSS JOIN keeps SQLite walking the list's members: left to
            // itself it walks every verified variant of the archive per list.
            let mut statement = connection.prepare_cached(
                "SELECT v.local_path, v.verified_size, v.verified_at
                 FROM membership AS m CROSS JOIN variants AS v ON v.media_id = m.media_id
                 WHERE m.list_id = ?1 AND m.gone_at IS NULL AND v.local_state = 'verified'
                   AND v.local_path IS NOT NULL AND v.sha256 IS NOT NULL
                   AND v.verified_size IS NOT NULL
                 ORDER BY m.media_id, v.label",
            )?;
            let mut rows = statement.query([list_id])?;
            while let Some(row) = rows.next()? {
                each(ViewFile {
                    local_path: row.get_ref(0)?.as_str()?,
                    size: row.get(1)?,
                    verified_at: row.get(2)?,
                });
            }
            Ok(())
        })
    }

    /// The list views as last written, by folder name.
    pub fn view_states(&self) -> Result<HashMap<String, ViewState>, StoreError> {
        let states = self.with(|connection| {
            rows(
                connection,
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
            )
        })?;
        Ok(states.into_iter().collect())
    }

    /// The views by template as last written: name → template.
    pub fn template_views(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT name, template FROM template_views ORDER BY name",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })
    }

    /// Replaces the recorded views by template with `views` (name,
    /// template, links).
    pub fn replace_template_views(
        &self,
        views: &[(String, String, usize)],
    ) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            transaction.execute("DELETE FROM template_views", [])?;
            let mut insert = transaction.prepare_cached(
                "INSERT INTO template_views (name, template, links) VALUES (?1, ?2, ?3)",
            )?;
            for (name, template, links) in views {
                insert.execute(params![
                    name,
                    template,
                    i64::try_from(*links).unwrap_or(i64::MAX)
                ])?;
            }
            Ok(())
        })
    }

    /// Replaces the recorded view states with `states` (views not named
    /// are forgotten, and are read in full next time).
    pub fn replace_view_states(&self, states: &[(String, ViewState)]) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            transaction.execute("DELETE FROM view_state", [])?;
            let mut insert = transaction.prepare_cached(
                "INSERT INTO view_state (view, digest, folder_inode, folder_mtime, links)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (view, state) in states {
                insert.execute(params![
                    view,
                    state.digest,
                    state.folder_inode,
                    state.folder_mtime,
                    state.links
                ])?;
            }
            Ok(())
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
        let sql = format!(
            "SELECT media_id, label, local_path, sha256, size, content_type, stored_at,
                    verified_at, kept_at, replaced_by
             FROM versions WHERE {filter}
             ORDER BY media_id, label, kept_at, version_id"
        );
        self.with(|connection| {
            rows(connection, &sql, values, |row| {
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
        })
    }

    /// What the database holds about a variant's current bytes; `None`
    /// when the media is unknown.
    pub fn previous_bytes(
        &self,
        media_id: &str,
        label: &str,
    ) -> Result<Option<PreviousBytes>, StoreError> {
        self.with(|connection| {
            let dir_name: Option<String> = connection
                .prepare_cached("SELECT dir_name FROM media WHERE media_id = ?1")?
                .query_row(params![media_id], |row| row.get(0))
                .optional()?;
            let Some(dir_name) = dir_name else {
                return Ok(None);
            };
            let previous = connection
                .prepare_cached(
                    "SELECT local_path, sha256, verified_content_type, verified_stored_at,
                        verified_at
                     FROM variants WHERE media_id = ?1 AND label = ?2",
                )?
                .query_row(params![media_id, label], |row| {
                    Ok(PreviousBytes {
                        dir_name: dir_name.clone(),
                        local_path: row.get(0)?,
                        sha256: row.get(1)?,
                        content_type: row.get(2)?,
                        stored_at: row.get(3)?,
                        verified_at: row.get(4)?,
                    })
                })
                .optional()?;
            Ok(Some(previous.unwrap_or(PreviousBytes {
                dir_name,
                ..PreviousBytes::default()
            })))
        })
    }

    /// Whether a kept version already uses `local_path`.
    pub fn version_path_taken(&self, local_path: &str) -> Result<bool, StoreError> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT 1 FROM versions WHERE local_path = ?1",
                    params![local_path],
                    |_| Ok(()),
                )
                .optional()
                .map(|found| found.is_some())
        })
    }

    /// Records bytes moved into `.versions/` (call after the move).
    pub fn record_version(&self, version: &VersionRecord) -> Result<(), StoreError> {
        self.with(|connection| {
            connection.execute(
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
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RemoteVariant;
    use crate::store::testing::{self, list, media, stored, verified};

    #[test]
    fn previous_bytes_survive_a_change_upstream() {
        let (_dir, store) = testing::open();
        verified(&store, "1", 5);
        // Vault+ now says it was stored again later: the row follows
        // Vault+, the verified columns stay with the bytes on disk.
        let remote = RemoteVariant {
            content_type: Some("image/png".into()),
            ..stored("1", 12, 9)
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

    #[test]
    fn view_files_and_view_states() {
        let (_dir, store) = testing::open();
        store.record_lists(&[list("a")], true, 1).unwrap();
        store
            .record_membership("a", &[media("1"), media("2")], 1)
            .unwrap();
        verified(&store, "2", 3);
        let mut files = Vec::new();
        store
            .view_files("a", |file| {
                files.push((file.local_path.to_owned(), file.size, file.verified_at))
            })
            .unwrap();
        assert_eq!(files, [("media/2/full.jpg".to_owned(), 10, Some(3))]);

        let state = ViewState {
            digest: "ab".into(),
            folder_inode: 7,
            folder_mtime: -1,
            links: 1,
        };
        store
            .replace_view_states(&[("a".into(), state.clone())])
            .unwrap();
        assert_eq!(store.view_states().unwrap()["a"], state);
        store.replace_view_states(&[]).unwrap();
        assert!(store.view_states().unwrap().is_empty());
    }

    #[test]
    fn verified_files_say_what_their_size_must_be() {
        let (_dir, store) = testing::open();
        verified(&store, "1", 1);
        verified(&store, "2", 1);
        assert_eq!(store.verified_files().unwrap()[0].size, 10);
        // A size the database does not hold, or a damaged (negative) one,
        // matches no file, so `verify` reports it and a run fetches it anew.
        store
            .with(|connection| {
                connection.execute(
                    "UPDATE variants SET verified_size = iif(media_id = '1', NULL, -10)",
                    [],
                )
            })
            .unwrap();
        let sizes: Vec<u64> = store
            .verified_files()
            .unwrap()
            .iter()
            .map(|file| file.size)
            .collect();
        assert_eq!(sizes, [u64::MAX, u64::MAX]);
    }
}
