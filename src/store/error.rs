//! [`StoreError`]: the one place SQLite's errors are sorted into kinds a
//! person acts on ([`classify`]).

use std::path::{Path, PathBuf};

/// Why the state database could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "the state database {path} is damaged or is not a vault-mirror database ({reason}); it was left untouched"
    )]
    NotOurs { path: PathBuf, reason: String },
    #[error(
        "the state database {path} was written by a newer vault-mirror (schema {found}, this one knows {known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the state database {path} is busy or locked by another program: {reason}")]
    Busy { path: PathBuf, reason: String },
    #[error("the state database {path} is read-only: {reason}")]
    ReadOnly { path: PathBuf, reason: String },
    #[error(
        "no space left on the disk holding the state database {path}; what was verified before is recorded, and the same command resumes once there is room"
    )]
    DiskFull { path: PathBuf },
    #[error("state database {path}: {source}")]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// Sorts SQLite errors into the kinds a person acts on differently.
pub(super) fn classify(path: &Path, error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let path = path.to_owned();
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
            path,
            reason: error.to_string(),
        },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly {
            path,
            reason: error.to_string(),
        },
        // SQLITE_FULL: the disk (or a size limit) is full. The write that
        // failed rolled back whole, so nothing recorded is lost.
        Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::NotOurs {
            path,
            reason: error.to_string(),
        },
        // SQLite says only "unable to open database file"; a read-only
        // mount is the common cause worth naming.
        Some(ErrorCode::CannotOpen) if on_read_only_mount(&path) => StoreError::ReadOnly {
            path,
            reason: "it is on a read-only file system".into(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => StoreError::Open {
            path,
            reason: error.to_string(),
        },
        _ => StoreError::Sql {
            path,
            source: error,
        },
    }
}

/// Whether the folder of `path` (or its nearest folder that exists) is on
/// a file system that refuses writes: a new file made there fails as
/// read-only (`EROFS` on unix, `ERROR_WRITE_PROTECT` on Windows), and
/// one that could be made is removed at once. One way on every system.
fn on_read_only_mount(path: &Path) -> bool {
    let Some(folder) = path.ancestors().skip(1).find(|folder| folder.is_dir()) else {
        return false;
    };
    let probe = folder.join(format!(".vault-mirror-probe-{}", std::process::id()));
    match fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(file) => {
            drop(file);
            let _ = fs_err::remove_file(&probe);
            false
        }
        Err(error) => error.kind() == std::io::ErrorKind::ReadOnlyFilesystem,
    }
}
