//! [`ArchiveError`]: why an archive step could not be done, on either
//! backend. In a file of its own, so that every part of the archive can
//! name it without depending on `archive/mod.rs`, which re-exports them.

use crate::archive::bucket::BucketError;
use crate::settings::SettingsError;
use crate::store::StoreError;

/// Why an archive step could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A connection's settings could not be made (an id that cannot be a prefix).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Object storage failed (the key and the store's error named).
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// fs-err's messages name the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("refusing to use the path {path:?}: {reason}")]
    UnsafePath { path: String, reason: String },
}
