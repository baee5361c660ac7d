//! The state database's copy on object storage:
//! `<prefix>/.vault-mirror/state.sqlite`, written after every run from a
//! consistent copy (SQLite's online backup), and read back by a machine
//! that has no local database for the archive yet.
//!
//! Invariants: the snapshot is replaced whole (one PUT, or a multipart
//! upload completed only when every byte is in), so a reader never sees
//! half of one; a restore writes a temporary file beside the database and
//! renames it into place only when whole and synced, so a failed restore
//! leaves no database that looks real.

use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::archive::bucket::s3::{Bucket, BucketError};
use crate::archive::bucket::upload::{PART_SIZE, Upload, UploadLedger};
use crate::settings::Settings;

/// Where the snapshot lives, relative to the archive's prefix.
pub const SNAPSHOT_KEY: &str = ".vault-mirror/state.sqlite";

fn local(error: std::io::Error) -> BucketError {
    BucketError::Io(error)
}

/// Uploads `file` (a finished backup of the database) as the snapshot.
pub async fn upload_snapshot(
    archive: &Bucket,
    file: &Path,
    ledger: &UploadLedger,
) -> Result<(), BucketError> {
    let mut reader = fs_err::tokio::File::open(file).await.map_err(local)?;
    let mut upload = Upload::new(
        archive.clone(),
        SNAPSHOT_KEY.to_owned(),
        "application/vnd.sqlite3".to_owned(),
        ledger.clone(),
    );
    let mut buffer = vec![0; PART_SIZE];
    loop {
        let read = match reader.read(&mut buffer).await {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) => {
                upload.abort().await;
                return Err(local(error));
            }
        };
        if let Err(error) = upload.write(Bytes::copy_from_slice(&buffer[..read])).await {
            upload.abort().await;
            return Err(error);
        }
    }
    upload.commit().await.map(|_| ())
}

/// Writes the snapshot to `db` if there is one and `db` does not exist.
/// Returns whether it did.
pub async fn restore_snapshot(archive: &Bucket, db: &Path) -> Result<bool, BucketError> {
    if fs_err::tokio::metadata(db).await.is_ok() {
        return Ok(false);
    }
    let Some(mut stream) = archive.read(SNAPSHOT_KEY).await? else {
        return Ok(false);
    };
    if let Some(folder) = db.parent().filter(|folder| !folder.as_os_str().is_empty()) {
        fs_err::tokio::create_dir_all(folder).await.map_err(local)?;
    }
    let temporary = db.with_extension("restoring");
    let mut file = fs_err::tokio::File::create(&temporary)
        .await
        .map_err(local)?;
    while let Some(chunk) = stream.next().await {
        let written = match chunk {
            Ok(chunk) => file.write_all(&chunk).await.map_err(local),
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            drop(file);
            let _ = fs_err::tokio::remove_file(&temporary).await;
            return Err(error);
        }
    }
    file.sync_all().await.map_err(local)?;
    drop(file);
    fs_err::tokio::rename(&temporary, db).await.map_err(local)?;
    Ok(true)
}

/// Where `settings`' archive is on object storage and this machine has no
/// state database for it: the snapshot restored (the one way a machine
/// starts from another's state). Returns whether it was.
pub async fn restore_state(settings: &Settings) -> Result<bool, BucketError> {
    let Some(url) = settings.archive.bucket() else {
        return Ok(false);
    };
    if settings.db.exists() {
        return Ok(false);
    }
    restore_snapshot(&Bucket::open(url)?, &settings.db).await
}
