//! `export` on object storage: `manifest.jsonl`, `SHA256SUMS` and
//! `index.html` (the offline gallery) written as objects at the archive's
//! prefix, so the gallery works when the prefix is served as a static
//! website or synced down (`aws s3 sync s3://bucket/prefix DIR`): every
//! link in it is relative (`media/…`).
//!
//! Invariants: as on a local disk: only objects listed at their verified
//! size are named (the others are reported missing); each of the three is
//! replaced whole, by one PUT.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::archive::export::{CHECKSUMS, ExportSummary, GALLERY, MANIFEST, export_with};
use crate::storage::s3::{ObjectArchive, StorageError, WriteMode};
use crate::store::Store;

/// The three files and their types.
const FILES: [(&str, &str); 3] = [
    (MANIFEST, "application/x-ndjson"),
    (CHECKSUMS, "text/plain; charset=utf-8"),
    (GALLERY, "text/html; charset=utf-8"),
];

/// Every object under `media/` and `.versions/`: relative key → size.
pub async fn list_bytes(archive: &ObjectArchive) -> Result<HashMap<String, u64>, StorageError> {
    let mut listed = archive.list("media").await?;
    listed.extend(archive.list(".versions").await?);
    Ok(listed)
}

/// Writes the index of `store`'s archive into `archive`, through the
/// local folder `staging`. Blocks on SQLite and the staging files briefly.
pub async fn export_objects(
    archive: &ObjectArchive,
    store: &Store,
    staging: &Path,
    now: i64,
) -> Result<ExportSummary, StorageError> {
    let listed = list_bytes(archive).await?;
    let local = |error: &dyn std::fmt::Display| StorageError::Local(error.to_string());
    fs_err::create_dir_all(staging).map_err(|error| local(&error))?;
    let has_file = |path: &Path, size: u64| {
        listed.get(&path.to_string_lossy().replace('\\', "/")) == Some(&size)
    };
    let mut summary = export_with(store, &has_file, staging, now).map_err(|error| local(&error))?;
    for (name, content_type) in FILES {
        let bytes = fs_err::read(staging.join(name)).map_err(|error| local(&error))?;
        archive
            .put(name, bytes.into(), content_type, None, WriteMode::Overwrite)
            .await?;
        let _ = fs_err::remove_file(staging.join(name));
    }
    summary.out = PathBuf::from(archive.url().to_string());
    Ok(summary)
}
