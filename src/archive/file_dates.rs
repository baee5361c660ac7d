//! Files dated as their media (`file_dates`, on by default): each verified
//! file's modification time is its media's own date, so a file manager or
//! a photo app sorts the archive by when the media was made, not by when
//! it was downloaded.
//!
//! Invariants: nothing in verification reads a modification time (files
//! are checked by size and sha256 only), so setting one changes nothing
//! the archive vouches for; only files the database calls verified, at
//! checked paths under `media/`, are touched, each opened for reading
//! beneath the archive root without following links; a file is dated
//! once per date (the database keeps the date it was given, and forgets
//! it when new bytes are committed). On object storage an object's time
//! is when it was written and cannot be set; the date travels in the
//! manifest and the sidecars there instead.

use std::sync::Arc;

use serde::Serialize;

use crate::archive::{ArchiveDir, ArchiveError, archive_path};
use crate::store::Store;

/// What dating the files did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DatedFiles {
    /// Files whose modification time was set this run.
    pub dated: usize,
    /// Verified files not where the database says (left for `verify`).
    pub missing: usize,
}

/// Sets the modification time of every verified file not yet carrying its
/// media's date. Blocking: file-system work.
pub fn date_files(archive: &Arc<ArchiveDir>, store: &Store) -> Result<DatedFiles, ArchiveError> {
    let mut summary = DatedFiles::default();
    for file in store.files_to_date()? {
        let Ok(path) = archive_path(&file.local_path) else {
            continue;
        };
        let opened = archive.open_file(&path, crate::archive::dir::Access::Read);
        let set = opened.and_then(|opened| {
            opened
                .file()
                .set_modified(crate::epoch_time(file.date))
                .map_err(|error| {
                    std::io::Error::new(
                        error.kind(),
                        format!("{}: {error}", archive.join(&path).display()),
                    )
                })
        });
        match set {
            Ok(()) => {
                store.mark_dated(&file.media_id, &file.label, file.date)?;
                summary.dated += 1;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => summary.missing += 1,
            Err(error) => return Err(ArchiveError::Io(error)),
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_file_takes_its_medias_date_once() {
        let (dir, store) = crate::store::testing::open();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("media/42")).unwrap();
        std::fs::write(out.join("media/42/full.jpg"), b"0123456789").unwrap();
        crate::store::testing::verified(&store, "42", 1_800_000_000_000);
        let taken = crate::store::Description {
            media_id: "42".into(),
            taken_at: Some(1_700_000_000_000),
            ..Default::default()
        };
        store.record_descriptions(&[taken], 1).unwrap();
        let archive = Arc::new(ArchiveDir::open(&out));
        assert_eq!(date_files(&archive, &store).unwrap().dated, 1);
        let modified = std::fs::metadata(out.join("media/42/full.jpg"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(modified, crate::epoch_time(1_700_000_000_000));
        assert_eq!(date_files(&archive, &store).unwrap().dated, 0);
        // New bytes committed: dated again.
        crate::store::testing::verified(&store, "42", 1_800_000_000_001);
        assert_eq!(date_files(&archive, &store).unwrap().dated, 1);
    }
}
