//! Kept versions: when a variant changed upstream (`sizeBytes`,
//! `contentType` or `storedAt`) and is fetched anew, the bytes it replaces
//! are moved to `.versions/<media dir>/<label>-<time>.<ext>` and recorded,
//! so a backup never silently loses bytes.
//!
//! [`keep_previous`] is the one hook in the download path: called just
//! before a verified `.part` is renamed onto its final path. Invariants:
//! - Only verified bytes become a kept version: a file whose sha256 is
//!   still the one recorded when it was verified. Anything else in the way
//!   — bytes damaged since, or a file nobody verified — goes to the
//!   quarantine, as `verify --repair` does, never to `.versions/`, the
//!   versions table, the manifest or `SHA256SUMS`.
//! - The old bytes are moved (rename within the archive, then both folders
//!   fsynced) before anything can overwrite them, and recorded only once
//!   they are in place; bytes identical to the incoming ones are not kept
//!   twice; a failure here stops the commit, so the old file stays where
//!   it was and the `.part` stays for the next attempt.
//! - Every folder and file is reached through [`ArchiveDir`], never
//!   through a link: a link in the way is reported and removed (its
//!   target untouched), never moved into `.versions/`.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::archive::dir::{Access, ArchiveDir, EntryKind, Folder, split_file};
use crate::archive::paths::safe_name;
use crate::archive::{ArchiveError, archive_path, file_stamp};
use crate::store::{Store, VersionRecord};

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

/// Moves the bytes a new commit would replace out of the way: into
/// `.versions/` (and recorded) when they are the bytes verified before,
/// into the quarantine otherwise. `final_path` is where the new file is
/// about to be renamed (`media/<dir>/<label>.<ext>`, relative to the
/// archive root) and `incoming_sha256` its hash. The previous bytes are
/// the file the database records for the variant (its extension may
/// differ when the content type changed) and whatever sits at
/// `final_path`. Usually nothing is there to move: a first download, or
/// the same bytes stored again. Blocking.
pub fn keep_previous(
    store: &Store,
    archive: &ArchiveDir,
    media_id: &str,
    label: &str,
    final_path: &Path,
    incoming_sha256: &str,
) -> Result<Replaced, ArchiveError> {
    let previous = store.previous_bytes(media_id, label)?.unwrap_or_default();
    let recorded = previous
        .local_path
        .as_deref()
        .and_then(|path| archive_path(path).ok())
        .filter(|path| path.starts_with("media"));
    let mut candidates = Vec::new();
    if let Some(recorded) = &recorded {
        candidates.push((recorded.clone(), true));
    }
    if recorded.as_deref() != Some(final_path) {
        candidates.push((final_path.to_path_buf(), false));
    }

    let mut replaced = Replaced::default();
    for (candidate, is_recorded) in candidates {
        let (folder, name) = split_file(&candidate)?;
        let Some(folder) = archive.folder(folder)? else {
            continue;
        };
        match folder.entry(name)?.map(|entry| entry.kind) {
            Some(EntryKind::File) => {}
            Some(EntryKind::Link) => {
                // Not bytes of ours: never followed, never kept.
                let target = folder.read_link(name);
                folder.remove_file(name)?;
                tracing::warn!(
                    "{} was a link{}; vault-mirror does not follow links inside the archive: removed it (the link's target is untouched)",
                    archive.join(&candidate).display(),
                    target
                        .map(|target| format!(" (to {})", target.display()))
                        .unwrap_or_default()
                );
                continue;
            }
            // A folder or anything else holds no bytes of ours to keep.
            _ => continue,
        }
        let (sha256, size) = hash_reader(folder.open_file(name, Access::Read)?)?;
        if candidate == final_path && sha256 == incoming_sha256 {
            // The same bytes stored again: the rename replaces them with themselves.
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
        let from = candidate.to_string_lossy().replace('\\', "/");
        if !as_verified {
            let reason = if is_recorded && previous.sha256.is_some() {
                "its sha256 is no longer the one recorded when it was verified"
            } else {
                "no verified record holds these bytes"
            };
            let to = archive.quarantine(&folder, name, media_id, name)?;
            replaced.quarantined.push(Quarantined {
                from,
                to: to.to_string_lossy().replace('\\', "/"),
                reason: reason.to_owned(),
            });
            continue;
        }
        let when = if is_recorded {
            previous
                .stored_at
                .or(previous.verified_at)
                .unwrap_or_else(crate::now_ms)
        } else {
            crate::now_ms()
        };
        let versions_relative = PathBuf::from(".versions").join(safe_name(media_id));
        let versions = archive.create_folder(&versions_relative)?;
        let version_name =
            free_version_name(store, &versions, &versions_relative, label, when, name)?;
        archive.create_folder(Path::new(".versions"))?.sync()?;
        folder.rename(name, &versions, &version_name)?;
        versions.sync()?;
        folder.sync()?;
        let version = VersionRecord {
            media_id: media_id.to_owned(),
            label: label.to_owned(),
            local_path: versions_relative
                .join(&version_name)
                .to_string_lossy()
                .replace('\\', "/"),
            sha256,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            content_type: previous.content_type.clone().filter(|_| is_recorded),
            stored_at: previous.stored_at.filter(|_| is_recorded),
            verified_at: previous.verified_at.filter(|_| is_recorded),
            kept_at: crate::now_ms(),
            replaced_by: incoming_sha256.to_owned(),
        };
        store.record_version(&version)?;
        replaced.kept.push(version);
    }
    Ok(replaced)
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

/// `<label>-<time>.<ext>` in `versions` (the folder at `relative`), with
/// `-2`, `-3`… added when that name is taken on disk or in the database.
fn free_version_name(
    store: &Store,
    versions: &Folder,
    relative: &Path,
    label: &str,
    when: i64,
    kept_name: &OsStr,
) -> Result<String, ArchiveError> {
    let extension = kept_extension(Path::new(kept_name).extension().and_then(OsStr::to_str));
    let stem = format!("{}-{}", safe_name(label), file_stamp(when));
    for attempt in 1.. {
        let name = if attempt == 1 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{attempt}.{extension}")
        };
        let recorded_as = relative.join(&name).to_string_lossy().replace('\\', "/");
        if versions.entry(&name)?.is_none() && !store.version_path_taken(&recorded_as)? {
            return Ok(name);
        }
    }
    unreachable!("an unbounded range always yields a free name")
}

/// sha256 (lowercase hex) and length of what `reader` holds.
pub fn hash_reader(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut length = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::RemoteStatus;
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

    fn hash_of(path: &Path) -> String {
        hash_reader(std::fs::File::open(path).unwrap()).unwrap().0
    }

    #[test]
    fn replaced_bytes_are_moved_aside_and_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let archive = ArchiveDir::open(out);
        let store = Store::open(&out.join(".vault-mirror/state.sqlite")).unwrap();
        let jpg = Path::new("media/7/full.jpg");
        let final_path = out.join(jpg);
        std::fs::create_dir_all(final_path.parent().unwrap()).unwrap();

        // A first download: nothing to keep.
        store
            .record_remote(&[media()], &[remote(1_767_225_605_000, "image/jpeg")], 1)
            .unwrap();
        let first = keep_previous(&store, &archive, "7", "full", jpg, "aa").unwrap();
        assert!(first.kept.is_empty() && first.quarantined.is_empty());
        std::fs::write(&final_path, b"old").unwrap();
        let old_sha = hash_of(&final_path);
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
        let same = keep_previous(&store, &archive, "7", "full", jpg, &old_sha).unwrap();
        assert!(same.kept.is_empty() && same.quarantined.is_empty());
        assert!(final_path.exists());

        // Changed upstream, to a PNG: the JPEG is kept, named by its storedAt.
        store
            .record_remote(&[media()], &[remote(1_767_225_700_000, "image/png")], 3)
            .unwrap();
        let png = Path::new("media/7/full.png");
        let kept = keep_previous(&store, &archive, "7", "full", png, "bb")
            .unwrap()
            .kept;
        assert_eq!(kept.len(), 1);
        let version = &kept[0];
        assert_eq!(version.local_path, ".versions/7/full-20260101-000005.jpg");
        assert_eq!(version.sha256, old_sha);
        assert_eq!(version.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(version.replaced_by, "bb");
        assert!(!final_path.exists());
        assert_eq!(
            std::fs::read(out.join(&version.local_path)).unwrap(),
            b"old"
        );
        assert_eq!(store.kept_versions().unwrap(), kept);

        // An unrecorded file at the final path was never verified: it goes
        // to the quarantine, not to the kept versions.
        std::fs::write(out.join(png), b"stray").unwrap();
        let stray = keep_previous(&store, &archive, "7", "full", png, "cc").unwrap();
        assert!(stray.kept.is_empty());
        assert_eq!(
            stray.quarantined,
            [Quarantined {
                from: "media/7/full.png".into(),
                to: ".vault-mirror/quarantine/7/full.png".into(),
                reason: "no verified record holds these bytes".into(),
            }]
        );
        assert_eq!(
            std::fs::read(out.join(".vault-mirror/quarantine/7/full.png")).unwrap(),
            b"stray"
        );
        assert_eq!(store.kept_versions().unwrap().len(), 1);
    }

    #[test]
    fn damaged_bytes_are_quarantined_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let archive = ArchiveDir::open(out);
        let store = Store::open(&out.join(".vault-mirror/state.sqlite")).unwrap();
        let jpg = Path::new("media/7/full.jpg");
        std::fs::create_dir_all(out.join("media/7")).unwrap();
        store
            .record_remote(&[media()], &[remote(1_767_225_605_000, "image/jpeg")], 1)
            .unwrap();
        std::fs::write(out.join(jpg), b"old").unwrap();
        let old_sha = hash_of(&out.join(jpg));
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
        // Bit rot since it was verified, then a change upstream.
        std::fs::write(out.join(jpg), b"OLD").unwrap();
        store
            .record_remote(&[media()], &[remote(1_767_225_700_000, "image/jpeg")], 3)
            .unwrap();
        let replaced = keep_previous(&store, &archive, "7", "full", jpg, "bb").unwrap();
        assert!(replaced.kept.is_empty());
        assert_eq!(replaced.quarantined.len(), 1);
        assert!(
            replaced.quarantined[0]
                .reason
                .contains("no longer the one recorded")
        );
        assert!(store.kept_versions().unwrap().is_empty());
        assert!(!out.join(".versions").exists());
        assert!(!out.join(jpg).exists());
        assert_eq!(
            std::fs::read(out.join(".vault-mirror/quarantine/7/full.jpg")).unwrap(),
            b"OLD"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_the_way_is_removed_never_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        let outside = dir.path().join("outside.jpg");
        std::fs::write(&outside, b"old").unwrap();
        let archive = ArchiveDir::open(&out);
        let store = Store::open(&out.join(".vault-mirror/state.sqlite")).unwrap();
        let jpg = Path::new("media/7/full.jpg");
        std::fs::create_dir_all(out.join("media/7")).unwrap();
        store
            .record_remote(&[media()], &[remote(1_767_225_605_000, "image/jpeg")], 1)
            .unwrap();
        store
            .mark_verified(
                "7",
                "full",
                "media/7/full.jpg",
                &hash_of(&outside),
                crate::units::ByteSize(3),
                crate::units::EpochMillis(2),
            )
            .unwrap();
        std::os::unix::fs::symlink(&outside, out.join(jpg)).unwrap();
        let replaced = keep_previous(&store, &archive, "7", "full", jpg, "bb").unwrap();
        assert!(replaced.kept.is_empty() && replaced.quarantined.is_empty());
        assert!(std::fs::symlink_metadata(out.join(jpg)).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"old");
    }
}
