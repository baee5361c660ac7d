//! Kept versions: when a variant changed upstream (`sizeBytes`,
//! `contentType` or `storedAt`) and is fetched anew, the bytes it replaces
//! are moved to `.versions/<media dir>/<label>-<time>.<ext>` and recorded,
//! so a backup never silently loses bytes.
//!
//! [`keep_previous`] is the one hook in the download path: called just
//! before a verified `.part` is renamed onto its final path. Invariants:
//! the old bytes are moved (rename within the archive, then both folders
//! fsynced) before anything can overwrite them, and recorded only once
//! they are in place; bytes identical to the incoming ones are not kept
//! twice; a failure here stops the commit, so the old file stays where it
//! was and the `.part` stays for the next attempt.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::archive::paths::safe_name;
use crate::archive::{ArchiveError, archive_path, file_stamp};
use crate::pipeline::commit::sync_folder;
use crate::store::{Store, VersionRecord};

/// Moves the bytes a new commit would replace into `.versions/` and
/// records them. `final_path` is where the new file is about to be renamed
/// (`<out>/media/<dir>/<label>.<ext>`) and `incoming_sha256` its hash.
/// The previous bytes are the file the database records for the variant
/// (its extension may differ when the content type changed) and whatever
/// sits at `final_path`. Returns the versions kept (usually none: a first
/// download, or the same bytes stored again). Blocking.
pub fn keep_previous(
    store: &Store,
    out: &Path,
    media_id: &str,
    label: &str,
    final_path: &Path,
    incoming_sha256: &str,
) -> Result<Vec<VersionRecord>, ArchiveError> {
    let previous = store.previous_bytes(media_id, label)?.unwrap_or_default();
    let recorded = previous
        .local_path
        .as_deref()
        .and_then(|path| archive_path(path).ok())
        .filter(|path| path.starts_with("media"))
        .map(|path| out.join(path));
    let mut candidates = Vec::new();
    if let Some(recorded) = &recorded {
        candidates.push((recorded.clone(), true));
    }
    if recorded.as_deref() != Some(final_path) {
        candidates.push((final_path.to_path_buf(), false));
    }

    let mut kept = Vec::new();
    for (candidate, is_recorded) in candidates {
        // Only regular files hold bytes; a link or folder is not ours to keep.
        let Ok(metadata) = fs_err::symlink_metadata(&candidate) else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let (sha256, size) = hash_file(&candidate)?;
        if candidate == final_path && sha256 == incoming_sha256 {
            // The same bytes stored again: the rename replaces them with themselves.
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
        let relative = free_version_path(store, out, media_id, label, when, &candidate)?;
        let target = out.join(&relative);
        let folder = target.parent().unwrap_or(out);
        fs_err::create_dir_all(folder)?;
        sync_folder(folder.parent().unwrap_or(out))?;
        fs_err::rename(&candidate, &target)?;
        sync_folder(folder)?;
        sync_folder(candidate.parent().unwrap_or(out))?;
        let version = VersionRecord {
            media_id: media_id.to_owned(),
            label: label.to_owned(),
            local_path: relative,
            sha256,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            content_type: previous.content_type.clone().filter(|_| is_recorded),
            stored_at: previous.stored_at.filter(|_| is_recorded),
            verified_at: previous.verified_at.filter(|_| is_recorded),
            kept_at: crate::now_ms(),
            replaced_by: incoming_sha256.to_owned(),
        };
        store.record_version(&version)?;
        kept.push(version);
    }
    Ok(kept)
}

/// `.versions/<media dir>/<label>-<time>.<ext>`, with `-2`, `-3`… added
/// when that name is taken on disk or in the database.
fn free_version_path(
    store: &Store,
    out: &Path,
    media_id: &str,
    label: &str,
    when: i64,
    kept_file: &Path,
) -> Result<String, ArchiveError> {
    let extension = kept_file
        .extension()
        .and_then(|extension| extension.to_str())
        .filter(|extension| {
            !extension.is_empty()
                && extension.len() <= 8
                && extension
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        .unwrap_or("bin");
    let stem = format!("{}-{}", safe_name(label), file_stamp(when));
    let folder = PathBuf::from(".versions").join(safe_name(media_id));
    for attempt in 1.. {
        let name = if attempt == 1 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{attempt}.{extension}")
        };
        let relative = folder.join(name).to_string_lossy().replace('\\', "/");
        let on_disk = fs_err::symlink_metadata(out.join(&relative)).is_ok();
        if !on_disk && !store.version_path_taken(&relative)? {
            return Ok(relative);
        }
    }
    unreachable!("an unbounded range always yields a free name")
}

/// sha256 (lowercase hex) and length of a file.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut length = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
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

    #[test]
    fn replaced_bytes_are_moved_aside_and_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let store = Store::open(&out.join(".vault-mirror/state.sqlite")).unwrap();
        let final_path = out.join("media/7/full.jpg");
        std::fs::create_dir_all(final_path.parent().unwrap()).unwrap();

        // A first download: nothing to keep.
        store
            .record_remote(&[media()], &[remote(1_767_225_605_000, "image/jpeg")], 1)
            .unwrap();
        let first = keep_previous(&store, out, "7", "full", &final_path, "aa").unwrap();
        assert!(first.is_empty());
        std::fs::write(&final_path, b"old").unwrap();
        let (old_sha, _) = hash_file(&final_path).unwrap();
        store
            .mark_verified("7", "full", "media/7/full.jpg", &old_sha, 3, 2)
            .unwrap();

        // The same bytes stored again upstream: kept once, not twice.
        let same = keep_previous(&store, out, "7", "full", &final_path, &old_sha).unwrap();
        assert!(same.is_empty());
        assert!(final_path.exists());

        // Changed upstream, to a PNG: the JPEG is kept, named by its storedAt.
        store
            .record_remote(&[media()], &[remote(1_767_225_700_000, "image/png")], 3)
            .unwrap();
        let png_path = out.join("media/7/full.png");
        let kept = keep_previous(&store, out, "7", "full", &png_path, "bb").unwrap();
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

        // An unrecorded file at the final path is kept too, under a free name.
        std::fs::write(&png_path, b"stray").unwrap();
        let stray = keep_previous(&store, out, "7", "full", &png_path, "cc").unwrap();
        assert_eq!(stray.len(), 1);
        assert!(stray[0].local_path.starts_with(".versions/7/full-"));
        assert_eq!(store.kept_versions().unwrap().len(), 2);
    }
}
