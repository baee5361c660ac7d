//! `verify` on object storage: every object the database calls verified
//! is looked at again — with `--fast`, its size and the sha256 in its
//! metadata (one `HEAD` each, no byte read); in full, its bytes streamed
//! down and hashed again.
//!
//! Invariants: as on a local disk (`archive::verify`): nothing is changed
//! here, only reported; a recorded path is used only if it is one of ours
//! (`archive_path`), so a tampered database cannot make it read outside
//! `media/` or `.versions/`.

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::archive::archive_path;
use crate::archive::verify::{Checked, Depth, Problem};
use crate::report::{Reporter, TransferId};
use crate::storage::s3::ObjectArchive;
use crate::store::VerifiedFile;

/// The bytes read from an intact object, or what is wrong with it.
type Outcome = Result<u64, (Problem, String)>;

/// Checks `files` in the archive, `workers` at a time.
pub async fn verify_objects(
    archive: &ObjectArchive,
    files: &[VerifiedFile],
    depth: Depth,
    workers: usize,
    reporter: &dyn Reporter,
) -> Checked {
    let total: u64 = files.iter().map(|file| file.size).sum();
    reporter.on_queued(files.len() as u64, total);
    let results: Vec<(&VerifiedFile, Outcome)> = futures::stream::iter(files)
        .map(|file| async move {
            let transfer = TransferId::next();
            reporter.on_start(transfer, &file.local_path, file.size, 0);
            // A file found broken before is hashed even with `--fast`.
            let depth = if file.found_broken {
                Depth::Full
            } else {
                depth
            };
            let result = check(archive, file, depth, transfer, reporter).await;
            reporter.on_done(transfer);
            (file, result)
        })
        .buffer_unordered(workers.clamp(1, 16))
        .collect()
        .await;
    let mut checked = Checked::default();
    for (file, result) in results {
        checked.count(file, result);
    }
    checked.findings.sort();
    checked
}

/// Checks one object; returns the bytes read (with `--fast`, its size).
async fn check(
    archive: &ObjectArchive,
    file: &VerifiedFile,
    depth: Depth,
    transfer: TransferId,
    reporter: &dyn Reporter,
) -> Outcome {
    let damaged = |reason: String| (Problem::Damaged, reason);
    if archive_path(&file.local_path).is_err() {
        return Err(damaged(
            "the recorded key leaves the archive; the database may be damaged".into(),
        ));
    }
    let info = match archive.head(&file.local_path).await {
        Ok(Some(info)) => info,
        Ok(None) => return Err((Problem::Missing, "the object is gone".into())),
        Err(error) => return Err(damaged(format!("cannot read it: {error}"))),
    };
    if info.size != file.size {
        return Err(damaged(format!(
            "it holds {} bytes, {} were verified",
            info.size, file.size
        )));
    }
    if let Some(sha256) = &info.sha256
        && !sha256.eq_ignore_ascii_case(&file.sha256)
    {
        return Err(damaged(
            "its sha256 metadata is not the one recorded: the object was replaced".into(),
        ));
    }
    if depth == Depth::Fast {
        return Ok(info.size);
    }
    let mut stream = match archive.read(&file.local_path).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return Err((Problem::Missing, "the object is gone".into())),
        Err(error) => return Err(damaged(format!("cannot read it: {error}"))),
    };
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| damaged(format!("reading it failed: {error}")))?;
        hasher.update(&chunk);
        read += chunk.len() as u64;
        reporter.on_bytes(transfer, chunk.len() as u64);
    }
    if !hex::encode(hasher.finalize()).eq_ignore_ascii_case(&file.sha256) {
        return Err(damaged(
            "its bytes no longer hash to the sha256 recorded when it was verified".into(),
        ));
    }
    Ok(read)
}
