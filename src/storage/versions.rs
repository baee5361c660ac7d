//! Kept versions on object storage: when a variant changed upstream and
//! is fetched anew, the object it replaces is copied server-side (the
//! bytes never come down) to `.versions/<media>/<label>-<time>.<ext>` and
//! recorded, before the new object is completed over it — as
//! `archive::versions` moves the file on a local disk.
//!
//! Invariants: only verified bytes become a kept version: an object whose
//! sha256 (its metadata, else its bytes hashed again) is the one recorded
//! when it was verified; anything else in the way is copied to
//! `.vault-mirror/quarantine/`, never to `.versions/`; an object at
//! another key than the new one (the type, so the extension, changed) is
//! deleted only once its copy exists; a failure stops the commit, so the
//! old object stays where it was.

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::archive::paths::safe_name;
use crate::archive::versions::kept_extension;
use crate::archive::{archive_path, file_stamp};
use crate::storage::s3::{ObjectArchive, StorageError};
use crate::store::{Store, VersionRecord};

fn local(error: impl std::fmt::Display) -> StorageError {
    StorageError::Local(error.to_string())
}

/// The sha256 of the object at `key`: its metadata, else its bytes.
async fn object_sha256(
    archive: &ObjectArchive,
    key: &str,
    metadata: Option<String>,
) -> Result<Option<String>, StorageError> {
    if let Some(sha256) = metadata {
        return Ok(Some(sha256.to_ascii_lowercase()));
    }
    let Some(mut stream) = archive.read(key).await? else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    Ok(Some(hex::encode(hasher.finalize())))
}

/// Moves what a commit at `final_key` of bytes hashing to
/// `incoming_sha256` replaces out of the way (see the module docs).
/// Returns the versions kept.
pub async fn keep_previous_object(
    archive: &ObjectArchive,
    store: &Store,
    media_id: &str,
    label: &str,
    final_key: &str,
    incoming_sha256: &str,
) -> Result<Vec<VersionRecord>, StorageError> {
    let previous = store
        .previous_bytes(media_id, label)
        .map_err(local)?
        .unwrap_or_default();
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
    let mut kept = Vec::new();
    for (key, is_recorded) in candidates {
        let Some(info) = archive.head(&key).await? else {
            continue;
        };
        let Some(sha256) = object_sha256(archive, &key, info.sha256).await? else {
            continue;
        };
        if key == final_key && sha256 == incoming_sha256 {
            continue; // the same bytes again
        }
        let as_verified = previous
            .sha256
            .as_deref()
            .is_some_and(|recorded| recorded.eq_ignore_ascii_case(&sha256))
            && !kept
                .iter()
                .any(|version: &VersionRecord| version.sha256 == sha256);
        let name = key.rsplit('/').next().unwrap_or(label);
        if as_verified {
            let when = if is_recorded {
                previous
                    .stored_at
                    .or(previous.verified_at)
                    .unwrap_or_else(crate::now_ms)
            } else {
                crate::now_ms()
            };
            let to = free_version_key(archive, store, media_id, label, when, name).await?;
            archive.copy(&key, &to).await?;
            let version = VersionRecord {
                media_id: media_id.to_owned(),
                label: label.to_owned(),
                local_path: to,
                sha256,
                size: i64::try_from(info.size).unwrap_or(i64::MAX),
                content_type: previous.content_type.clone().filter(|_| is_recorded),
                stored_at: previous.stored_at.filter(|_| is_recorded),
                verified_at: previous.verified_at.filter(|_| is_recorded),
                kept_at: crate::now_ms(),
                replaced_by: incoming_sha256.to_owned(),
            };
            store.record_version(&version).map_err(local)?;
            kept.push(version);
        } else {
            let aside = format!(".vault-mirror/quarantine/{}/{name}", safe_name(media_id));
            archive.copy(&key, &aside).await?;
            tracing::warn!(
                "{key} was not the bytes verified before; set aside at {aside} instead of being kept as a version"
            );
        }
        if key != final_key {
            archive.delete(&key).await?;
        }
    }
    Ok(kept)
}

/// `.versions/<media>/<label>-<time>.<ext>`, with `-2`, `-3`… when taken.
async fn free_version_key(
    archive: &ObjectArchive,
    store: &Store,
    media_id: &str,
    label: &str,
    when: i64,
    kept_name: &str,
) -> Result<String, StorageError> {
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
        if !store.version_path_taken(&key).map_err(local)? && archive.head(&key).await?.is_none() {
            return Ok(key);
        }
    }
    unreachable!("an unbounded range always yields a free name")
}
