//! `mirror --prune` on object storage: deletes the objects of media gone
//! from every mirrored list — under `media/<media dir>/` and
//! `.versions/<media dir>/` — with the guards of a local prune
//! (`archive::prune`).
//!
//! Invariants: nothing is deleted without `--prune`; with `dry_run`
//! nothing changes; when more than `max_delete` objects would go, nothing
//! is deleted and the summary says so; only objects directly in those two
//! folders of the gone media are deleted; every deletion is recorded, and
//! the media's variants go back to `missing`.

use std::collections::HashMap;

use crate::archive::BYTE_FOLDERS;
use crate::archive::paths::safe_name;
use crate::archive::prune::{PrunePlan, PruneSummary};
use crate::storage::export::list_bytes;
use crate::storage::s3::{ObjectArchive, StorageError};
use crate::store::{PrunedFile, Store};

fn local(error: impl std::fmt::Display) -> StorageError {
    StorageError::Local(error.to_string())
}

/// Deletes (or, with `dry_run`, lists) the objects of media gone from
/// every mirrored list, refusing when more than `max_delete` would go.
pub async fn prune_objects(
    archive: &ObjectArchive,
    store: &Store,
    max_delete: usize,
    dry_run: bool,
    now: i64,
) -> Result<PruneSummary, StorageError> {
    let mut summary = PruneSummary {
        dry_run,
        max_delete,
        ..PruneSummary::default()
    };
    let listed = list_bytes(archive).await?;
    let mut plan: PrunePlan = Vec::new();
    for gone in store.gone_from_every_list().map_err(local)? {
        let recorded: HashMap<&str, Option<&String>> = gone
            .files
            .iter()
            .map(|file| (file.local_path.as_str(), file.sha256.as_ref()))
            .collect();
        let dir = safe_name(&gone.media_id);
        let mut files: Vec<PrunedFile> = listed
            .iter()
            .filter(|(key, _)| {
                BYTE_FOLDERS.iter().any(|top| {
                    key.strip_prefix(&format!("{top}/{dir}/"))
                        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
                })
            })
            .map(|(key, size)| PrunedFile {
                media_id: gone.media_id.clone(),
                sha256: recorded.get(key.as_str()).copied().flatten().cloned(),
                path: key.clone(),
                size: *size,
            })
            .collect();
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
            match archive.delete(&file.path).await {
                Ok(()) => deleted.push(file.clone()),
                Err(error) => {
                    failure = Some(error);
                    break 'media;
                }
            }
        }
    }
    // Record what went even when a deletion failed part way.
    store
        .record_prune(&pruned_media, &deleted, now)
        .map_err(local)?;
    match failure {
        Some(error) => Err(error),
        None => Ok(summary),
    }
}
