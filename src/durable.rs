//! Durability on disk: the one folder fsync (so a rename in it survives
//! a crash), tolerant of file systems that do not sync folders at all.
//! Every commit, kept version, view and atomic write of the archive ends
//! with it, and every folder the tool creates is made to last by it
//! ([`create_dir_all`]): a folder's entry is durable only once its
//! parent is synced, which POSIX asks for and ext4 does not always need,
//! but other file systems do (tests/it/power_loss.rs checks it).

use std::path::Path;

/// fsync a folder so a rename in it survives a crash (a no-op where
/// folders cannot be opened, as on Windows). A file system that refuses to
/// sync folders at all (see [`folder_sync_refused`]) is taken as it is:
/// its renames are as durable as it makes them, and the files' own
/// `sync_data` still stands.
pub fn sync_folder(folder: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        sync_open_folder(&fs_err::File::open(folder)?)?;
    }
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

/// Creates `folder` and its missing parents, each new one made durable
/// (its parent synced once it is there), so that nothing written inside
/// later can vanish with a folder the power cut took.
pub fn create_dir_all(folder: &Path) -> std::io::Result<()> {
    if folder.as_os_str().is_empty() || folder.is_dir() {
        return Ok(());
    }
    if let Some(parent) = folder.parent() {
        create_dir_all(parent)?;
    }
    match fs_err::create_dir(folder) {
        Ok(()) => sync_parent(folder),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && folder.is_dir() => {
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Syncs the folder holding `entry` (the current folder for a bare
/// name), so that a new entry there lasts.
pub fn sync_parent(entry: &Path) -> std::io::Result<()> {
    let parent = entry
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    sync_folder(parent.unwrap_or(Path::new(".")))
}

/// What [`sync_folder`] does once the folder is open: the one folder
/// fsync, also used on folders held open by [`Folder`]. A file system that
/// does not sync folders at all is taken as it is (see
/// [`folder_sync_refused`]).
pub fn sync_open_folder(folder: &fs_err::File) -> std::io::Result<()> {
    match folder.sync_all() {
        Err(error) if !folder_sync_refused(&error) => Err(error),
        _ => Ok(()),
    }
}

/// Whether a folder's fsync failed only because its file system does not
/// sync folders: some FUSE and network file systems answer `EINVAL` (the
/// error fsync gives for a descriptor that cannot be synced) or
/// `ENOTSUP`/`EOPNOTSUPP`. Any other error (`EIO`, `ENOSPC`…) means the
/// rename may not last, and is one.
pub fn folder_sync_refused(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    if let Some(code) = error.raw_os_error() {
        use rustix::io::Errno;
        return [Errno::INVAL, Errno::NOTSUP, Errno::OPNOTSUPP]
            .iter()
            .any(|refusal| refusal.raw_os_error() == code);
    }
    // fs-err's errors keep the kind but not the number.
    matches!(
        error.kind(),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_system_that_cannot_sync_folders_is_excused() {
        use std::io::{Error, ErrorKind};
        #[cfg(unix)]
        {
            use rustix::io::Errno;
            for refusal in [Errno::INVAL, Errno::NOTSUP, Errno::OPNOTSUPP] {
                assert!(folder_sync_refused(&Error::from(refusal)), "{refusal:?}");
            }
            for failure in [
                Errno::IO,
                Errno::NOSPC,
                Errno::DQUOT,
                Errno::BADF,
                Errno::ROFS,
            ] {
                assert!(!folder_sync_refused(&Error::from(failure)), "{failure:?}");
            }
        }
        // As fs-err hands them on: the kind without the number.
        assert!(folder_sync_refused(&Error::new(
            ErrorKind::InvalidInput,
            "x"
        )));
        assert!(folder_sync_refused(&Error::new(
            ErrorKind::Unsupported,
            "x"
        )));
        assert!(!folder_sync_refused(&Error::other("x")));
        assert!(!folder_sync_refused(&Error::new(
            ErrorKind::StorageFull,
            "x"
        )));
        // And a folder that can be synced is.
        let dir = tempfile::tempdir().unwrap();
        sync_folder(dir.path()).unwrap();
        assert!(sync_folder(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn folders_are_created_whole_and_a_file_in_the_way_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all(&deep).unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        assert!(create_dir_all(&dir.path().join("file/d")).is_err());
        assert!(create_dir_all(&dir.path().join("file")).is_err());
    }
}
