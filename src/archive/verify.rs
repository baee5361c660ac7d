//! `verify`: every file the database calls verified is read again and
//! checked against what was recorded when it was committed — its size
//! and, unless `--fast`, its sha256.
//!
//! Invariants: this module never changes a file and never writes the
//! database; it only reports what it found. Recorded paths are trusted
//! only when they stay inside the archive (plain relative components), so
//! a tampered database cannot make it read elsewhere; files are reached
//! through [`ArchiveDir`], so a link on the way (or in place of the file)
//! is reported as damage, never followed.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive::dir::{Access, ArchiveDir, EntryKind};
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

impl Checked {
    /// Counts the check of `file`: the bytes read from it intact, or
    /// what is wrong with it.
    pub fn count(&mut self, file: &VerifiedFile, result: Result<u64, (Problem, String)>) {
        self.checked += 1;
        match result {
            Ok(bytes) => {
                self.intact += 1;
                self.bytes += bytes;
            }
            Err((problem, reason)) => self.findings.push(Finding {
                path: file.local_path.clone(),
                id: file.media_id.clone(),
                label: file.label.clone(),
                problem,
                reason,
            }),
        }
    }
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
    let archive = ArchiveDir::open(out);
    let archive = &archive;
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
                    let result = check(archive, file, depth, transfer, reporter);
                    reporter.on_done(transfer);
                    let mut checked = checked.lock().unwrap_or_else(|p| p.into_inner());
                    checked.count(file, result);
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
    archive: &ArchiveDir,
    file: &VerifiedFile,
    depth: Depth,
    transfer: TransferId,
    reporter: &dyn Reporter,
) -> Result<u64, (Problem, String)> {
    let damaged = |reason: String| (Problem::Damaged, reason);
    let path = inside(&file.local_path).ok_or_else(|| {
        damaged("the recorded path leaves the archive; the database may be damaged".into())
    })?;
    let entry = match archive.entry(&path) {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err((Problem::Missing, "the file is gone".into())),
        // A link on the way says so itself.
        Err(error) => return Err(damaged(format!("cannot read it: {error}"))),
    };
    match entry.kind {
        EntryKind::File => {}
        EntryKind::Link => {
            return Err(damaged(
                "it is a link, not the file vault-mirror wrote (links inside the archive are not followed)"
                    .into(),
            ));
        }
        _ => return Err(damaged("it is not a regular file".into())),
    }
    if entry.len != file.size {
        return Err(damaged(format!(
            "{} bytes, not the {} verified",
            entry.len, file.size
        )));
    }
    if depth == Depth::Fast {
        reporter.on_bytes(transfer, file.size);
        return Ok(file.size);
    }
    let sha256 = archive
        .open_file(&path, Access::Read)
        .and_then(|opened| hash(opened, transfer, reporter))
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

/// A recorded relative path, if it stays inside.
fn inside(relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative);
    let plain = relative.components().next().is_some()
        && relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    plain.then(|| relative.to_path_buf())
}

fn hash(
    mut file: impl Read,
    transfer: TransferId,
    reporter: &dyn Reporter,
) -> std::io::Result<String> {
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

    #[cfg(unix)]
    #[test]
    fn links_are_damage_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        let outside = dir.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        // The same bytes outside: a followed link would pass as intact.
        let files = vec![
            recorded(&out, "media/1/full.jpg", b"bytes"),
            recorded(&out, "media/2/full.jpg", b"bytes"),
        ];
        fs_err::copy(out.join("media/1/full.jpg"), outside.join("full.jpg")).unwrap();
        fs_err::remove_file(out.join("media/1/full.jpg")).unwrap();
        std::os::unix::fs::symlink(outside.join("full.jpg"), out.join("media/1/full.jpg")).unwrap();
        fs_err::remove_dir_all(out.join("media/2")).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("media/2")).unwrap();
        let checked = verify_files(&out, &files, Depth::Full, 1, &SilentReporter);
        assert_eq!(checked.intact, 0);
        for finding in &checked.findings {
            assert_eq!(finding.problem, Problem::Damaged);
            assert!(finding.reason.contains("link"), "{}", finding.reason);
        }
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
