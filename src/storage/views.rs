//! Per-list views on object storage: object stores hold no links, so each
//! live list gets the index form of a view (`archive::view_index`):
//! `lists/<list>/index.html` to browse and `lists/<list>/files.txt` to
//! script, each entry a relative path into `media/` (they work when the
//! prefix is served as a static website or synced down).
//!
//! Invariants: a view names only objects listed at their verified size;
//! an object is rewritten only when its bytes change; only `index.html`
//! and `files.txt` under `lists/` are ever deleted (a view of a list that
//! is gone), nothing else there.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::archive::view_index::{self, LIST_NAME, PAGE_NAME};
use crate::archive::views::{ViewsSummary, present_files_with, view_name};
use crate::storage::s3::{ObjectArchive, StorageError, WriteMode};
use crate::store::Store;

fn local(error: impl std::fmt::Display) -> StorageError {
    StorageError::Local(error.to_string())
}

/// Brings `lists/` in step with the lists the database holds.
pub async fn update_object_views(
    archive: &ObjectArchive,
    store: &Store,
) -> Result<ViewsSummary, StorageError> {
    let listed: HashMap<String, u64> = archive.list("media").await?;
    let existing = archive.list("lists").await?;
    let has_file = |path: &Path, size: u64| {
        listed.get(&path.to_string_lossy().replace('\\', "/")) == Some(&size)
    };
    let lists = store.archive_lists().map_err(local)?;
    let mut summary = ViewsSummary::default();
    let mut wanted_views = BTreeSet::new();
    for list in lists.iter().filter(|list| list.gone_at.is_none()) {
        let view = view_name(&list.list_id, &list.name);
        let files = present_files_with(store, &list.list_id, &has_file).map_err(local)?;
        let list_key = format!("lists/{view}/{LIST_NAME}");
        let new_list = view_index::file_list(&files);
        let old_list = match existing.contains_key(&list_key) {
            true => archive
                .read_all(&list_key)
                .await?
                .map(|bytes| bytes.to_vec()),
            false => None,
        };
        summary.count_index(old_list.as_deref(), &new_list, files.len());
        summary.indexes += 1;
        summary.lists += 1;
        let page_key = format!("lists/{view}/{PAGE_NAME}");
        let changed =
            old_list.as_deref() != Some(new_list.as_bytes()) || !existing.contains_key(&page_key);
        if changed {
            let page = view_index::page(&list.name, &files);
            archive
                .put(
                    &list_key,
                    new_list.into(),
                    "text/plain; charset=utf-8",
                    None,
                    WriteMode::Overwrite,
                )
                .await?;
            archive
                .put(
                    &page_key,
                    page.into(),
                    "text/html; charset=utf-8",
                    None,
                    WriteMode::Overwrite,
                )
                .await?;
        }
        wanted_views.insert(view);
    }
    for key in existing.keys() {
        let Some((view, name)) = key
            .strip_prefix("lists/")
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        if !wanted_views.contains(view) && (name == PAGE_NAME || name == LIST_NAME) {
            archive.delete(key).await?;
        }
    }
    Ok(summary)
}
