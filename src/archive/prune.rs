//! `mirror --prune`: deletes the local copies of media gone from every
//! mirrored list (see [`Store::gone_from_every_list`]) — the files in
//! `media/<media dir>/` and its kept versions in `.versions/<media dir>/`.
//!
//! One prune for both backends ([`Archive`]): on object storage there are
//! no folders to remove, and no links.
//!
//! Invariants: nothing is deleted without `--prune`; the files are listed
//! (in the summary) whether deleted or not; with `dry_run` nothing changes;
//! when more than `max_delete` files would go, nothing is deleted at all
//! and the summary says so. Only regular files directly in those two
//! folders are touched (folders are removed once empty), reached through
//! [`crate::archive::ArchiveDir`] on the disk: a link there, or in place of a folder, is never
//! followed, so nothing outside the archive is deleted; the database
//! records every deleted file, and sets the media's variants back to
//! `missing`, so media returning upstream is fetched again.

use std::collections::HashMap;

use serde::Serialize;

use crate::archive::paths::safe_name;
use crate::archive::{Archive, ArchiveError, BYTE_FOLDERS, Kind};
use crate::store::{PrunedFile, Store};

/// What a prune did, or would do.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PruneSummary {
    /// Only listed (`--dry-run`).
    pub dry_run: bool,
    /// More than `max_delete` files would go: nothing was deleted.
    pub refused: bool,
    pub max_delete: usize,
    /// Media whose local copies are (or would be) deleted.
    pub media: usize,
    /// Every file deleted (or that would be), relative to the archive root.
    pub files: Vec<PrunedFile>,
    pub bytes: u64,
}

impl PruneSummary {
    /// One line for people: what happened and what to do next.
    pub fn headline(&self) -> String {
        let files = self.files.len();
        let what = format!(
            "{files} files ({}) of {} media gone from every mirrored list",
            crate::human_bytes(self.bytes),
            self.media
        );
        if files == 0 {
            "prune: nothing to delete: no local copy of media gone from every mirrored list"
                .to_owned()
        } else if self.refused {
            format!(
                "prune refused: {what} exceed --max-delete {}; nothing was deleted (run again \
                 with --max-delete {files} to allow it, or --dry-run to review)",
                self.max_delete
            )
        } else if self.dry_run {
            format!("prune (dry run): would delete {what}")
        } else {
            format!("prune: deleted {what}")
        }
    }
}

/// What a prune deletes: media ids, each with its files.
pub type PrunePlan = Vec<(String, Vec<PrunedFile>)>;

impl PruneSummary {
    /// Counts what `plan` deletes, and refuses it (`refused`) when that is
    /// more than `max_delete` files.
    pub fn count(&mut self, plan: &PrunePlan) {
        self.files = plan.iter().flat_map(|(_, files)| files.clone()).collect();
        self.media = plan.iter().filter(|(_, files)| !files.is_empty()).count();
        self.bytes = self.files.iter().map(|file| file.size).sum();
        if self.files.len() > self.max_delete {
            self.refused = true;
        }
    }
}

/// Deletes (or, with `dry_run`, lists) the copies of media gone from
/// every mirrored list, refusing when more than `max_delete` files would go.
pub async fn prune(
    archive: &Archive,
    store: &Store,
    max_delete: usize,
    dry_run: bool,
    now: i64,
) -> Result<PruneSummary, ArchiveError> {
    let mut summary = PruneSummary {
        dry_run,
        max_delete,
        ..PruneSummary::default()
    };
    // Media to record as pruned, each with the files found for it.
    let gone_media = store.gone_from_every_list()?;
    let folders: Vec<String> = gone_media
        .iter()
        .flat_map(|gone| {
            let dir = safe_name(&gone.media_id);
            BYTE_FOLDERS.map(|top| format!("{top}/{dir}"))
        })
        .collect();
    let mut found = archive.files_in(&folders).await?;
    let mut plan: PrunePlan = Vec::new();
    for gone in gone_media {
        let recorded: HashMap<String, Option<String>> = gone
            .files
            .iter()
            .map(|file| (file.local_path.clone(), file.sha256.clone()))
            .collect();
        let dir = safe_name(&gone.media_id);
        let mut files = Vec::new();
        for top in BYTE_FOLDERS {
            let folder = format!("{top}/{dir}");
            for (name, size) in found.remove(&folder).unwrap_or_default() {
                let path = format!("{folder}/{name}");
                files.push(PrunedFile {
                    media_id: gone.media_id.clone(),
                    sha256: recorded.get(&path).cloned().flatten(),
                    path,
                    size,
                });
            }
        }
        if files.is_empty() && gone.files.is_empty() {
            continue;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        plan.push((gone.media_id, files));
    }
    summary.count(&plan);
    if dry_run || summary.refused || plan.is_empty() {
        return Ok(summary);
    }

    let mut pruned_media = Vec::new();
    let mut deleted = Vec::new();
    let mut failure = None;
    'media: for (media_id, files) in &plan {
        pruned_media.push(media_id.clone());
        for file in files {
            match remove_listed(archive, &file.path).await {
                Ok(true) => deleted.push(file.clone()),
                Ok(false) => {}
                Err(error) => {
                    failure = Some(error);
                    break 'media;
                }
            }
        }
    }
    let folders = pruned_media
        .iter()
        .flat_map(|media_id| {
            let dir = safe_name(media_id);
            BYTE_FOLDERS.map(|top| format!("{top}/{dir}"))
        })
        .collect();
    let tidied = archive.tidy(folders).await;
    // Record what went even when a deletion failed part way.
    store.record_prune(&pruned_media, &deleted, now)?;
    if let Some(error) = failure {
        return Err(error);
    }
    tidied?;
    Ok(summary)
}

/// Removes a file listed for deletion if it still is a regular file (a
/// link put there since is not what was listed); returns whether it did.
async fn remove_listed(archive: &Archive, key: &str) -> Result<bool, ArchiveError> {
    match archive.stat(key).await? {
        Some(stat) if stat.kind == Kind::File => archive.delete(key).await.map(|()| true),
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::api::models::RemoteStatus;
    use crate::archive::testing::both;
    use crate::store::{ListRecord, MediaRecord, RemoteVariant};

    fn media(id: &str) -> MediaRecord {
        MediaRecord {
            media_id: id.into(),
            media_type: Some("image".into()),
            duration: None,
        }
    }

    /// Media 1 and 2 in list "a", both verified in `archive`; 1 has a kept
    /// version. The database is in `state`.
    async fn recorded(archive: &Archive, state: &Path) -> Store {
        let store = Store::open(&state.join("state.sqlite")).unwrap();
        store
            .record_lists(
                &[ListRecord {
                    list_id: "a".into(),
                    name: "A".into(),
                    list_type: None,
                }],
                true,
                1,
            )
            .unwrap();
        store
            .record_membership("a", &[media("1"), media("2")], 1)
            .unwrap();
        for id in ["1", "2"] {
            let remote = RemoteVariant {
                media_id: id.into(),
                label: "full".into(),
                status: RemoteStatus::Stored,
                size_bytes: Some(5),
                content_type: Some("image/jpeg".into()),
                created_at: None,
                stored_at: None,
            };
            store.record_remote(&[media(id)], &[remote], 1).unwrap();
            archive
                .write(
                    &format!("media/{id}/full.jpg"),
                    b"12345".to_vec(),
                    "image/jpeg",
                )
                .await
                .unwrap();
            store
                .mark_verified(
                    id,
                    "full",
                    &format!("media/{id}/full.jpg"),
                    "s",
                    crate::units::ByteSize(5),
                    crate::units::EpochMillis(1),
                )
                .unwrap();
        }
        archive
            .write(".versions/1/full-old.jpg", b"old".to_vec(), "image/jpeg")
            .await
            .unwrap();
        store
            .record_version(&crate::store::VersionRecord {
                media_id: "1".into(),
                label: "full".into(),
                local_path: ".versions/1/full-old.jpg".into(),
                sha256: "o".into(),
                size: 3,
                content_type: None,
                stored_at: None,
                verified_at: None,
                kept_at: 1,
                replaced_by: "s".into(),
            })
            .unwrap();
        store
    }

    #[tokio::test]
    async fn nothing_goes_while_a_list_holds_it() {
        for (archive, _keep) in both() {
            let state = tempfile::tempdir().unwrap();
            let store = recorded(&archive, state.path()).await;
            let summary = prune(&archive, &store, 50, false, 2).await.unwrap();
            assert!(summary.files.is_empty());
            assert!(summary.headline().contains("nothing to delete"));
        }
    }

    #[tokio::test]
    async fn dry_run_lists_the_guard_refuses_and_prune_deletes() {
        for (archive, _keep) in both() {
            let state = tempfile::tempdir().unwrap();
            let store = recorded(&archive, state.path()).await;
            store.record_membership("a", &[media("2")], 2).unwrap();
            let present = async |key: &str| archive.stat(key).await.unwrap().is_some();

            let listed = prune(&archive, &store, 50, true, 3).await.unwrap();
            let paths: Vec<&str> = listed.files.iter().map(|file| file.path.as_str()).collect();
            assert_eq!(
                paths,
                [".versions/1/full-old.jpg", "media/1/full.jpg"],
                "{archive}"
            );
            assert_eq!((listed.media, listed.bytes), (1, 8));
            assert!(present("media/1/full.jpg").await);
            assert!(listed.headline().contains("would delete 2 files"));

            let refused = prune(&archive, &store, 1, false, 3).await.unwrap();
            assert!(refused.refused);
            assert!(
                refused.headline().contains("--max-delete 1"),
                "{}",
                refused.headline()
            );
            assert!(present("media/1/full.jpg").await);

            let done = prune(&archive, &store, 2, false, 4).await.unwrap();
            assert!(!done.refused && !done.dry_run);
            assert!(archive.files_under("media/1").await.unwrap().is_empty());
            assert!(archive.files_under(".versions/1").await.unwrap().is_empty());
            if let Some(dir) = archive.disk() {
                assert!(!dir.join("media/1").exists());
                assert!(!dir.join(".versions/1").exists());
            }
            assert!(present("media/2/full.jpg").await);
            assert!(store.kept_versions().unwrap().is_empty());
            let gone = store.gone_from_every_list().unwrap();
            assert_eq!(gone[0].pruned_at, Some(4));
            // Pruned once, nothing left to list.
            assert!(
                prune(&archive, &store, 50, false, 5)
                    .await
                    .unwrap()
                    .files
                    .is_empty()
            );
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn nothing_is_listed_or_deleted_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        fs_err::create_dir_all(&out).unwrap();
        let archive = Archive::Disk(std::sync::Arc::new(crate::archive::ArchiveDir::open(&out)));
        let store = recorded(&archive, dir.path()).await;
        store.record_membership("a", &[media("2")], 2).unwrap();
        // `.versions/1` leads outside; `media/1` holds a link to a file outside.
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("full-old.jpg"), b"not yours").unwrap();
        std::fs::remove_dir_all(out.join(".versions/1")).unwrap();
        std::os::unix::fs::symlink(&outside, out.join(".versions/1")).unwrap();
        std::os::unix::fs::symlink(outside.join("full-old.jpg"), out.join("media/1/thumb.jpg"))
            .unwrap();

        let done = prune(&archive, &store, 50, false, 3).await.unwrap();
        let paths: Vec<&str> = done.files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(paths, ["media/1/full.jpg"]);
        assert_eq!(
            std::fs::read(outside.join("full-old.jpg")).unwrap(),
            b"not yours"
        );
        assert!(!out.join("media/1/full.jpg").exists());
    }
}
