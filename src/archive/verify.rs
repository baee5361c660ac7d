//! `verify`: every file the database calls verified is read again and
//! checked against what was recorded when it was committed — its size
//! and, unless `--fast`, its sha256.
//!
//! Invariants: this module never changes a file and never writes the
//! database; it only reports what it found. Recorded paths are trusted
//! only when they stay inside the archive (plain relative components), so
//! a tampered database cannot make it read elsewhere.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::report::{Reporter, TransferId};
use crate::store::VerifiedFile;

/// How thoroughly to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Size and sha256 (reads every byte).
    Full,
    /// Size only (`--fast`): catches deleted and truncated files, not bit rot.
    Fast,
}

/// What is wrong with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// Not there at all.
    Missing,
    /// There, but not what was verified.
    Damaged,
}

/// One file that is not as it was verified.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// Relative to the archive root.
    pub path: String,
    pub id: String,
    pub label: String,
    pub problem: Problem,
    pub reason: String,
}

/// The result of a verify pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checked {
    /// Files checked.
    pub checked: u64,
    /// Files as they were verified.
    pub intact: u64,
    /// Bytes read (with `--fast`, bytes of the files checked).
    pub bytes: u64,
    /// Missing and damaged files, by path.
    pub findings: Vec<Finding>,
}

/// Checks `files` under `out` with `workers` threads, reporting each file
/// as a transfer (so progress displays show bytes hashed).
pub fn verify_files(
    out: &Path,
    files: &[VerifiedFile],
    depth: Depth,
    workers: usize,
    reporter: &dyn Reporter,
) -> Checked {
    let total: u64 = files.iter().map(|file| file.size).sum();
    reporter.on_queued(files.len() as u64, total);
    let next = AtomicUsize::new(0);
    let checked = Mutex::new(Checked::default());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, 16) {
            scope.spawn(|| {
                while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let transfer = TransferId::next();
                    reporter.on_start(transfer, &file.local_path, file.size, 0);
                    // A file found broken before is hashed even with
                    // `--fast`: its size alone proved nothing last time.
                    let depth = if file.found_broken {
                        Depth::Full
                    } else {
                        depth
                    };
                    let result = check(out, file, depth, transfer, reporter);
                    reporter.on_done(transfer);
                    let mut checked = checked.lock().unwrap_or_else(|p| p.into_inner());
                    checked.checked += 1;
                    match result {
                        Ok(bytes) => {
                            checked.intact += 1;
                            checked.bytes += bytes;
                        }
                        Err((problem, reason)) => checked.findings.push(Finding {
                            path: file.local_path.clone(),
                            id: file.media_id.clone(),
                            label: file.label.clone(),
                            problem,
                            reason,
                        }),
                    }
                }
            });
        }
    });
    let mut checked = checked.into_inner().unwrap_or_else(|p| p.into_inner());
    checked.findings.sort();
    checked
}

/// Checks one file; returns the bytes read.
fn check(
    out: &Path,
    file: &VerifiedFile,
    depth: Depth,
    transfer: TransferId,
    reporter: &dyn Reporter,
) -> Result<u64, (Problem, String)> {
    let damaged = |reason: String| (Problem::Damaged, reason);
    let path = inside(out, &file.local_path).ok_or_else(|| {
        damaged("the recorded path leaves the archive; the database may be damaged".into())
    })?;
    let metadata = match fs_err::metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err((Problem::Missing, "the file is gone".into()));
        }
        Err(error) => return Err(damaged(format!("cannot read it: {error}"))),
    };
    if !metadata.is_file() {
        return Err(damaged("it is not a regular file".into()));
    }
    if metadata.len() != file.size {
        return Err(damaged(format!(
            "{} bytes, not the {} verified",
            metadata.len(),
            file.size
        )));
    }
    if depth == Depth::Fast {
        reporter.on_bytes(transfer, file.size);
        return Ok(file.size);
    }
    let sha256 = hash(&path, transfer, reporter)
        .map_err(|error| damaged(format!("cannot read it: {error}")))?;
    if !sha256.eq_ignore_ascii_case(&file.sha256) {
        return Err(damaged(format!(
            "sha256 {}… differs from the verified {}…",
            &sha256[..12],
            file.sha256.get(..12).unwrap_or(&file.sha256)
        )));
    }
    Ok(file.size)
}

/// The archive path of a recorded relative path, if it stays inside.
fn inside(out: &Path, relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative);
    let plain = relative.components().next().is_some()
        && relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    plain.then(|| out.join(relative))
}

fn hash(path: &Path, transfer: TransferId, reporter: &dyn Reporter) -> std::io::Result<String> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        reporter.on_bytes(transfer, read as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SilentReporter;

    fn recorded(out: &Path, relative: &str, bytes: &[u8]) -> VerifiedFile {
        let path = out.join(relative);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, bytes).unwrap();
        VerifiedFile {
            media_id: relative.split('/').nth(1).unwrap().to_owned(),
            label: "full".into(),
            local_path: relative.to_owned(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            found_broken: false,
        }
    }

    #[test]
    fn finds_missing_truncated_and_rotten_files() {
        let out = tempfile::tempdir().unwrap();
        let out = out.path();
        let files = vec![
            recorded(out, "media/1/full.jpg", b"intact bytes"),
            recorded(out, "media/2/full.jpg", b"will be deleted"),
            recorded(out, "media/3/full.jpg", b"will be cut short"),
            recorded(out, "media/4/full.jpg", b"will rot in place"),
        ];
        fs_err::remove_file(out.join("media/2/full.jpg")).unwrap();
        fs_err::write(out.join("media/3/full.jpg"), b"will be").unwrap();
        fs_err::write(out.join("media/4/full.jpg"), b"WILL rot in place").unwrap();

        let full = verify_files(out, &files, Depth::Full, 2, &SilentReporter);
        assert_eq!((full.checked, full.intact), (4, 1));
        let problems: Vec<(&str, Problem)> = full
            .findings
            .iter()
            .map(|finding| (finding.id.as_str(), finding.problem))
            .collect();
        assert_eq!(
            problems,
            [
                ("2", Problem::Missing),
                ("3", Problem::Damaged),
                ("4", Problem::Damaged)
            ]
        );
        assert!(full.findings[2].reason.contains("sha256"));

        // Sizes only: the rotten file passes.
        let fast = verify_files(out, &files, Depth::Fast, 1, &SilentReporter);
        assert_eq!((fast.intact, fast.findings.len()), (2, 2));
    }

    #[test]
    fn recorded_paths_must_stay_inside() {
        let out = tempfile::tempdir().unwrap();
        let mut file = recorded(out.path(), "media/1/full.jpg", b"x");
        for outside in ["../x", "/etc/passwd", "media/../../x", ""] {
            file.local_path = outside.to_owned();
            let checked =
                verify_files(out.path(), &[file.clone()], Depth::Full, 1, &SilentReporter);
            assert_eq!(checked.findings[0].problem, Problem::Damaged, "{outside}");
        }
    }
}
