//! Kept versions: when a variant changed upstream (`sizeBytes`,
//! `contentType` or `storedAt`) and is fetched anew, the bytes it replaces
//! are moved to `.versions/<media dir>/<label>-<time>.<ext>` and recorded,
//! so a backup never silently loses bytes.
//!
//! [`keep_previous`] is the one hook in the download path, for both
//! backends ([`Archive`]): called just before a verified `.part` is renamed
//! onto its final path, or an upload is completed at its key. Invariants:
//! - Only verified bytes become a kept version: a file whose sha256 is
//!   still the one recorded when it was verified. Anything else in the way
//!   — bytes damaged since, or a file nobody verified — goes to the
//!   quarantine, as `verify --repair` does, never to `.versions/`, the
//!   versions table, the manifest or `SHA256SUMS`.
//! - The old bytes are moved ([`Archive::move_aside`]: a rename within the
//!   archive with both folders fsynced, or a server-side copy) before
//!   anything can overwrite them, and recorded only once
//!   they are in place; bytes identical to the incoming ones are not kept
//!   twice; a failure here stops the commit, so the old file stays where
//!   it was and the `.part` stays for the next attempt.
//! - On the disk every folder and file is reached through
//!   [`crate::archive::ArchiveDir`], never through a link: a link in the way is reported and removed (its
//!   target untouched), never moved into `.versions/`.

use std::ffi::OsStr;

use crate::archive::dir::quarantine_path;
use crate::archive::paths::key_of;
use crate::archive::paths::safe_name;
use crate::archive::{Archive, ArchiveError, Kind, archive_path, file_stamp};
use crate::store::{PreviousBytes, Store, VersionRecord};

/// What [`keep_previous`] did with the bytes a commit replaces.
#[derive(Debug, Default)]
pub struct Replaced {
    /// Verified bytes moved to `.versions/` and recorded.
    pub kept: Vec<VersionRecord>,
    /// Bytes that were not as verified, moved to the quarantine.
    pub quarantined: Vec<Quarantined>,
}

/// Bytes set aside instead of kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where they were, relative to the archive root.
    pub from: String,
    /// Where they are now, relative to the archive root.
    pub to: String,
    pub reason: String,
}

impl Quarantined {
    /// One line for the run's notes (`--events`, the summary, the log).
    pub fn note(&self, item: &str) -> String {
        format!(
            "{item}: the bytes at {} were not kept as a previous version ({}); they are in {}",
            self.from, self.reason, self.to
        )
    }
}

/// Moves the bytes a new commit would replace out of the way: into
/// `.versions/` (and recorded) when they are the bytes verified before,
/// into the quarantine otherwise. `final_key` is where the new file is
/// about to be committed (`media/<dir>/<label>.<ext>`) and
/// `incoming_sha256` its hash. The previous bytes are the file the
/// database records for the variant (its extension may differ when the
/// content type changed) and whatever sits at `final_key`. Usually nothing
/// is there to move: a first download, or the same bytes stored again.
pub async fn keep_previous(
    archive: &Archive,
    store: &Store,
    media_id: &str,
    label: &str,
    final_key: &str,
    incoming_sha256: &str,
) -> Result<Replaced, ArchiveError> {
    let previous = store.previous_bytes(media_id, label)?.unwrap_or_default();
    let recorded = previous
        .local_path
        .clone()
        .filter(|path| archive_path(path).is_ok() && path.starts_with("media/"));
    let mut candidates = Vec::new();
    if let Some(recorded) = &recorded {
        candidates.push((recorded.clone(), true));
    }
    if recorded.as_deref() != Some(final_key) {
        candidates.push((final_key.to_owned(), false));
    }

    let mut replaced = Replaced::default();
    for (key, is_recorded) in candidates {
        let Some(stat) = archive.stat(&key).await? else {
            continue;
        };
        match stat.kind {
            Kind::File => {}
            Kind::Link => {
                // Not bytes of ours: never followed, never kept.
                archive.delete(&key).await?;
                tracing::warn!(
                    "{archive}/{key} was a link; vault-mirror does not follow links inside the archive: removed it (the link's target is untouched)"
                );
                continue;
            }
            // A folder or anything else holds no bytes of ours to keep.
            Kind::Other => continue,
        }
        // The bytes themselves, hashed: an object's sha256 metadata says
        // what was written, not what is there now.
        let Some((sha256, size)) = archive.hash(&key, &|_| {}).await? else {
            continue;
        };
        if key == final_key && sha256 == incoming_sha256 {
            // The same bytes stored again: the commit replaces them with themselves.
            continue;
        }
        let as_verified = previous
            .sha256
            .as_deref()
            .is_some_and(|recorded| recorded.eq_ignore_ascii_case(&sha256))
            && !replaced
                .kept
                .iter()
                .any(|version| version.sha256.eq_ignore_ascii_case(&sha256));
        let name = key.rsplit('/').next().unwrap_or(label);
        if as_verified {
            let found = Found {
                key: &key,
                is_recorded,
                sha256,
                size,
            };
            let version = keep_version(
                archive,
                store,
                &previous,
                media_id,
                label,
                found,
                incoming_sha256,
            )
            .await?;
            replaced.kept.push(version);
        } else {
            let reason = if is_recorded && previous.sha256.is_some() {
                "its sha256 is no longer the one recorded when it was verified"
            } else {
                "no verified record holds these bytes"
            };
            let to = key_of(&quarantine_path(media_id, OsStr::new(name)));
            archive.move_aside(&key, &to).await?;
            replaced.quarantined.push(Quarantined {
                from: key.clone(),
                to,
                reason: reason.to_owned(),
            });
        }
        // Object storage copied it aside; at another key than the new
        // object's (the type, so the extension, changed) it goes now. On
        // the disk it was moved, and this finds nothing.
        if key != final_key {
            archive.delete(&key).await?;
        }
    }
    Ok(replaced)
}

/// Bytes found where a commit is about to write.
struct Found<'a> {
    key: &'a str,
    /// At the path the database records for the variant (else at the
    /// commit's own path, unrecorded).
    is_recorded: bool,
    sha256: String,
    size: u64,
}

/// Moves `found`, the bytes verified before, to a free name in
/// `.versions/`, and records it there.
async fn keep_version(
    archive: &Archive,
    store: &Store,
    previous: &PreviousBytes,
    media_id: &str,
    label: &str,
    found: Found<'_>,
    incoming_sha256: &str,
) -> Result<VersionRecord, ArchiveError> {
    let is_recorded = found.is_recorded;
    let when = if is_recorded {
        previous
            .stored_at
            .or(previous.verified_at)
            .unwrap_or_else(crate::now_ms)
    } else {
        crate::now_ms()
    };
    let name = found.key.rsplit('/').next().unwrap_or(label);
    let to = free_version_key(archive, store, media_id, label, when, name).await?;
    archive.move_aside(found.key, &to).await?;
    let version = VersionRecord {
        media_id: media_id.to_owned(),
        label: label.to_owned(),
        local_path: to,
        sha256: found.sha256,
        size: i64::try_from(found.size).unwrap_or(i64::MAX),
        content_type: previous.content_type.clone().filter(|_| is_recorded),
        stored_at: previous.stored_at.filter(|_| is_recorded),
        verified_at: previous.verified_at.filter(|_| is_recorded),
        kept_at: crate::now_ms(),
        replaced_by: incoming_sha256.to_owned(),
    };
    store.record_version(&version)?;
    Ok(version)
}

/// The extension a kept version keeps: the file's own when it is one of
/// ours (a few lowercase letters and digits), else `bin`.
pub fn kept_extension(extension: Option<&str>) -> &str {
    extension
        .filter(|extension| {
            !extension.is_empty()
                && extension.len() <= 8
                && extension
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        .unwrap_or("bin")
}

/// `.versions/<media>/<label>-<time>.<ext>`, with `-2`, `-3`… added when
/// that name is taken in the archive or in the database.
async fn free_version_key(
    archive: &Archive,
    store: &Store,
    media_id: &str,
    label: &str,
    when: i64,
    kept_name: &str,
) -> Result<String, ArchiveError> {
    let extension = kept_extension(kept_name.rsplit_once('.').map(|(_, extension)| extension));
    let stem = format!(
        ".versions/{}/{}-{}",
        safe_name(media_id),
        safe_name(label),
        file_stamp(when)
    );
    for attempt in 1u32.. {
        let key = if attempt == 1 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{attempt}.{extension}")
        };
        if !store.version_path_taken(&key)? && archive.stat(&key).await?.is_none() {
            return Ok(key);
        }
    }
    unreachable!("an unbounded range always yields a free name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::RemoteStatus;
    use crate::archive::testing::both;
    use crate::store::{MediaRecord, RemoteVariant};

    fn remote(stored_at: i64, content_type: &str) -> RemoteVariant {
        RemoteVariant {
            media_id: "7".into(),
            label: "full".into(),
            status: RemoteStatus::Stored,
            size_bytes: Some(3),
            content_type: Some(content_type.into()),
            created_at: Some(1),
            stored_at: Some(stored_at),
        }
    }

    fn media() -> MediaRecord {
        MediaRecord {
            media_id: "7".into(),
            media_type: Some("image".into()),
            duration: None,
        }
    }

    fn hash_of(bytes: &[u8]) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    }

    async fn write(archive: &Archive, key: &str, bytes: &[u8]) {
        archive
            .write(key, bytes.to_vec(), "image/jpeg")
            .await
            .unwrap();
    }

    async fn read(archive: &Archive, key: &str) -> Option<Vec<u8>> {
        archive.read_small(key).await.unwrap()
    }

    #[tokio::test]
    async fn replaced_bytes_are_moved_aside_and_recorded_once() {
        for (archive, _keep) in both() {
            let state = tempfile::tempdir().unwrap();
            let store = Store::open(&state.path().join("state.sqlite")).unwrap();
            let jpg = "media/7/full.jpg";

            // A first download: nothing to keep.
            store
                .record_remote(&[media()], &[remote(1_767_225_605_000, "image/jpeg")], 1)
                .unwrap();
            let first = keep_previous(&archive, &store, "7", "full", jpg, "aa")
                .await
                .unwrap();
            assert!(first.kept.is_empty() && first.quarantined.is_empty());
            write(&archive, jpg, b"old").await;
            let old_sha = hash_of(b"old");
            store
                .mark_verified(
                    "7",
                    "full",
                    "media/7/full.jpg",
                    &old_sha,
                    crate::units::ByteSize(3),
                    crate::units::EpochMillis(2),
                )
                .unwrap();

            // The same bytes stored again upstream: kept once, not twice.
            let same = keep_previous(&archive, &store, "7", "full", jpg, &old_sha)
                .await
                .unwrap();
            assert!(same.kept.is_empty() && same.quarantined.is_empty());
            assert!(read(&archive, jpg).await.is_some());

            // Changed upstream, to a PNG: the JPEG is kept, named by its storedAt.
            store
                .record_remote(&[media()], &[remote(1_767_225_700_000, "image/png")], 3)
                .unwrap();
            let png = "media/7/full.png";
            let kept = keep_previous(&archive, &store, "7", "full", png, "bb")
                .await
                .unwrap()
                .kept;
            assert_eq!(kept.len(), 1);
            let version = &kept[0];
            assert_eq!(version.local_path, ".versions/7/full-20260101-000005.jpg");
            assert_eq!(version.sha256, old_sha);
            assert_eq!(version.content_type.as_deref(), Some("image/jpeg"));
            assert_eq!(version.replaced_by, "bb");
            assert_eq!(read(&archive, jpg).await, None, "{archive}");
            assert_eq!(read(&archive, &version.local_path).await.unwrap(), b"old");
            assert_eq!(store.kept_versions().unwrap(), kept);

            // An unrecorded file at the final path was never verified: it goes
            // to the quarantine, not to the kept versions.
            write(&archive, png, b"stray").await;
            let stray = keep_previous(&archive, &store, "7", "full", png, "cc")
                .await
                .unwrap();
            assert!(stray.kept.is_empty());
            assert_eq!(
                stray.quarantined,
                [Quarantined {
                    from: "media/7/full.png".into(),
                    to: ".vault-mirror/quarantine/7/full.png".into(),
                    reason: "no verified record holds these bytes".into(),
                }],
                "{archive}"
            );
            assert_eq!(
                read(&archive, ".vault-mirror/quarantine/7/full.png")
                    .await
                    .unwrap(),
                b"stray"
            );
            assert_eq!(store.kept_versions().unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn damaged_bytes_are_quarantined_not_kept() {
        for (archive, _keep) in both() {
            let state = tempfile::tempdir().unwrap();
            let store = Store::open(&state.path().join("state.sqlite")).unwrap();
            let jpg = "media/7/full.jpg";
            store
                .record_remote(&[media()], &[remote(1_767_225_605_000, "image/jpeg")], 1)
                .unwrap();
            write(&archive, jpg, b"old").await;
            store
                .mark_verified(
                    "7",
                    "full",
                    "media/7/full.jpg",
                    &hash_of(b"old"),
                    crate::units::ByteSize(3),
                    crate::units::EpochMillis(2),
                )
                .unwrap();
            // Bit rot since it was verified, then a change upstream.
            write(&archive, jpg, b"OLD").await;
            store
                .record_remote(&[media()], &[remote(1_767_225_700_000, "image/jpeg")], 3)
                .unwrap();
            let replaced = keep_previous(&archive, &store, "7", "full", jpg, "bb")
                .await
                .unwrap();
            assert!(replaced.kept.is_empty());
            assert_eq!(replaced.quarantined.len(), 1, "{archive}");
            assert!(
                replaced.quarantined[0]
                    .reason
                    .contains("no longer the one recorded")
            );
            // The same place on both backends.
            assert_eq!(
                replaced.quarantined[0].to,
                ".vault-mirror/quarantine/7/full.jpg"
            );
            assert!(store.kept_versions().unwrap().is_empty());
            assert!(archive.files_under(".versions").await.unwrap().is_empty());
            if let Some(dir) = archive.disk() {
                // Moved on the disk; on object storage the commit replaces it.
                assert!(!dir.join(jpg).exists());
            }
            assert_eq!(
                read(&archive, ".vault-mirror/quarantine/7/full.jpg")
                    .await
                    .unwrap(),
                b"OLD"
            );
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_link_in_the_way_is_removed_never_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        let outside = dir.path().join("outside.jpg");
        std::fs::write(&outside, b"old").unwrap();
        let archive = Archive::Disk(std::sync::Arc::new(crate::archive::ArchiveDir::open(&out)));
        let store = Store::open(&out.join(".vault-mirror/state.sqlite")).unwrap();
        let jpg = "media/7/full.jpg";
        std::fs::create_dir_all(out.join("media/7")).unwrap();
        store
            .record_remote(&[media()], &[remote(1_767_225_605_000, "image/jpeg")], 1)
            .unwrap();
        store
            .mark_verified(
                "7",
                "full",
                "media/7/full.jpg",
                &hash_of(b"old"),
                crate::units::ByteSize(3),
                crate::units::EpochMillis(2),
            )
            .unwrap();
        std::os::unix::fs::symlink(&outside, out.join(jpg)).unwrap();
        let replaced = keep_previous(&archive, &store, "7", "full", jpg, "bb")
            .await
            .unwrap();
        assert!(replaced.kept.is_empty() && replaced.quarantined.is_empty());
        assert!(std::fs::symlink_metadata(out.join(jpg)).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"old");
    }
}
