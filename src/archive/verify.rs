//! `verify`: every file the database calls verified is read again and
//! checked against what was recorded when it was committed — its size
//! and, unless `--fast`, its sha256.
//!
//! A pass may be held to a [`Budget`] (`--max-bytes`, `--budget`): it
//! checks the first files it is given (the database gives them oldest
//! check first) and stops there; the caller records what was checked.
//!
//! One check for both backends ([`Archive`]): on object storage, `--fast`
//! also compares the sha256 an object carries in its metadata (one `HEAD`,
//! no byte read), so a replaced object of the same size is found.
//!
//! Invariants: this module never changes a file and never writes the
//! database; it only reports what it found. Recorded paths are trusted
//! only when they are ones vault-mirror writes ([`archive_path`]), so a
//! tampered database cannot make it read elsewhere; on the disk files are
//! reached through [`crate::archive::ArchiveDir`], so a link on the way
//! (or in place of the file) is reported as damage, never followed.

use futures::StreamExt;
use serde::Serialize;

use crate::archive::{Archive, Kind, archive_path};
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
    /// On object storage: intact objects that carry no sha256 metadata,
    /// so `--fast` compared their size only (`verify --repair` sets it).
    pub without_sha256: u64,
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

/// How much one pass may check (`verify --max-bytes`, `verify --budget`);
/// the default is everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Bytes to re-hash at most (the first file is checked whatever its size,
    /// so every pass moves the cycle on).
    pub max_bytes: Option<u64>,
    /// How long the run may go on: no file is started after it (files
    /// under way are finished).
    #[serde(rename = "seconds", serialize_with = "seconds")]
    pub time: Option<std::time::Duration>,
}

fn seconds<S: serde::Serializer>(
    time: &Option<std::time::Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    time.map(|time| time.as_secs_f64()).serialize(serializer)
}

impl Budget {
    /// No limit: every file.
    pub fn is_whole(&self) -> bool {
        self.max_bytes.is_none() && self.time.is_none()
    }

    /// The first of `files` (in the order given) whose sizes fit in
    /// `max_bytes`; at least one file.
    pub fn within_bytes<'a>(&self, files: &'a [VerifiedFile]) -> &'a [VerifiedFile] {
        let Some(max_bytes) = self.max_bytes else {
            return files;
        };
        let mut total = 0u64;
        let fitting = files
            .iter()
            .take_while(|file| {
                total = total.saturating_add(file.size);
                total <= max_bytes
            })
            .count();
        &files[..fitting.max(1).min(files.len())]
    }
}

/// Checks `files` in `archive`, `workers` at a time, reporting each file
/// as a transfer (so progress displays show bytes hashed). On the disk the
/// hashing runs on blocking threads, `workers` of them at once.
pub async fn verify_files(
    archive: &Archive,
    files: &[VerifiedFile],
    depth: Depth,
    workers: usize,
    reporter: &dyn Reporter,
) -> Checked {
    verify_until(archive, files, depth, workers, &|| false, reporter).await
}

/// [`verify_files`], starting files in order until `out_of_time` says so
/// (asked before each file after the first, so a pass always moves on).
/// The files checked are the first [`Checked::checked`] of `files`.
pub async fn verify_until(
    archive: &Archive,
    files: &[VerifiedFile],
    depth: Depth,
    workers: usize,
    out_of_time: &(dyn Fn() -> bool + Sync),
    reporter: &dyn Reporter,
) -> Checked {
    let total: u64 = files.iter().map(|file| file.size).sum();
    reporter.on_queued(files.len() as u64, total);
    let results: Vec<(&VerifiedFile, Outcome)> = futures::stream::iter(files.iter().enumerate())
        .take_while(|(index, _)| std::future::ready(*index == 0 || !out_of_time()))
        .map(|(_, file)| async move {
            let transfer = TransferId::next();
            reporter.on_start(transfer, &file.local_path, file.size, 0);
            // A file found broken before is hashed even with `--fast`: its
            // size alone proved nothing last time.
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
        checked.without_sha256 += u64::from(matches!(result, Ok((_, Sealed::No))));
        checked.count(file, result.map(|(bytes, _)| bytes));
    }
    checked.findings.sort();
    checked
}

/// The bytes read from an intact file and whether it carries its sha256
/// (an object), or what is wrong with it.
type Outcome = Result<(u64, Sealed), (Problem, String)>;

/// Whether an intact file carries its sha256 as metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sealed {
    Yes,
    /// An object without `x-amz-meta-sha256`.
    No,
    /// A file on a disk: no metadata to carry.
    NotApplicable,
}

/// Checks one file; returns the bytes read (with `--fast`, its size).
async fn check(
    archive: &Archive,
    file: &VerifiedFile,
    depth: Depth,
    transfer: TransferId,
    reporter: &dyn Reporter,
) -> Outcome {
    let damaged = |reason: String| (Problem::Damaged, reason);
    let gone = || (Problem::Missing, "the file is gone".to_owned());
    if archive_path(&file.local_path).is_err() {
        return Err(damaged(
            "the recorded path leaves the archive; the database may be damaged".into(),
        ));
    }
    let stat = match archive.stat(&file.local_path).await {
        Ok(Some(stat)) => stat,
        Ok(None) => return Err(gone()),
        // A link on the way says so itself.
        Err(error) => {
            return Err(damaged(format!(
                "cannot read it: {}",
                crate::report::chain(&error)
            )));
        }
    };
    match stat.kind {
        Kind::File => {}
        Kind::Link => {
            return Err(damaged(
                "it is a link, not the file vault-mirror wrote (links inside the archive are not followed)"
                    .into(),
            ));
        }
        Kind::Other => return Err(damaged("it is not a regular file".into())),
    }
    if stat.size != file.size {
        return Err(damaged(format!(
            "{} bytes, not the {} verified",
            stat.size, file.size
        )));
    }
    if let Some(sha256) = &stat.sha256
        && !sha256.eq_ignore_ascii_case(&file.sha256)
    {
        return Err(damaged(
            "its sha256 metadata is not the one recorded: the object was replaced".into(),
        ));
    }
    let sealed = match (&stat.sha256, archive) {
        (Some(_), _) => Sealed::Yes,
        (None, Archive::Bucket(_)) => Sealed::No,
        (None, _) => Sealed::NotApplicable,
    };
    if depth == Depth::Fast {
        reporter.on_bytes(transfer, file.size);
        return Ok((file.size, sealed));
    }
    let on_bytes = |read| reporter.on_bytes(transfer, read);
    let sha256 = match archive.hash(&file.local_path, &on_bytes).await {
        Ok(Some((sha256, _))) => sha256,
        Ok(None) => return Err(gone()),
        Err(error) => {
            return Err(damaged(format!(
                "cannot read it: {}",
                crate::report::chain(&error)
            )));
        }
    };
    if !sha256.eq_ignore_ascii_case(&file.sha256) {
        return Err(damaged(format!(
            "sha256 {}… differs from the verified {}…",
            &sha256[..12],
            file.sha256.get(..12).unwrap_or(&file.sha256)
        )));
    }
    Ok((file.size, sealed))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::archive::testing::both;
    use crate::report::SilentReporter;

    async fn recorded(archive: &Archive, relative: &str, bytes: &[u8]) -> VerifiedFile {
        archive
            .write(relative, bytes.to_vec(), "image/jpeg")
            .await
            .unwrap();
        VerifiedFile {
            media_id: relative.split('/').nth(1).unwrap().to_owned(),
            label: "full".into(),
            local_path: relative.to_owned(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            found_broken: false,
        }
    }

    #[tokio::test]
    async fn finds_missing_truncated_and_rotten_files() {
        for (archive, _keep) in both() {
            let files = vec![
                recorded(&archive, "media/1/full.jpg", b"intact bytes").await,
                recorded(&archive, "media/2/full.jpg", b"will be deleted").await,
                recorded(&archive, "media/3/full.jpg", b"will be cut short").await,
                recorded(&archive, "media/4/full.jpg", b"will rot in place").await,
            ];
            archive.delete("media/2/full.jpg").await.unwrap();
            archive
                .write("media/3/full.jpg", b"will be".to_vec(), "image/jpeg")
                .await
                .unwrap();
            archive
                .write(
                    "media/4/full.jpg",
                    b"WILL rot in place".to_vec(),
                    "image/jpeg",
                )
                .await
                .unwrap();

            let full = verify_files(&archive, &files, Depth::Full, 2, &SilentReporter).await;
            assert_eq!((full.checked, full.intact), (4, 1), "{archive}");
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
                ],
                "{archive}"
            );
            assert!(full.findings[2].reason.contains("sha256"));

            // Sizes only: the rotten file passes.
            let fast = verify_files(&archive, &files, Depth::Fast, 1, &SilentReporter).await;
            assert_eq!((fast.intact, fast.findings.len()), (2, 2), "{archive}");
        }
    }

    #[tokio::test]
    async fn a_budget_checks_the_first_files_and_always_one() {
        for (archive, _keep) in both() {
            let mut files = Vec::new();
            for id in 1..=5 {
                files
                    .push(recorded(&archive, &format!("media/{id}/full.jpg"), b"0123456789").await);
            }
            let bytes = |max_bytes| Budget {
                max_bytes: Some(max_bytes),
                time: None,
            };
            assert_eq!(bytes(25).within_bytes(&files).len(), 2);
            assert_eq!(bytes(30).within_bytes(&files).len(), 3);
            assert_eq!(bytes(1).within_bytes(&files).len(), 1, "at least one");
            assert_eq!(Budget::default().within_bytes(&files).len(), 5);

            // A clock that runs out after three files have started, however
            // fast they are hashed.
            let asked = std::sync::atomic::AtomicUsize::new(0);
            let out_of_time = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2;
            let checked = verify_until(
                &archive,
                &files,
                Depth::Full,
                2,
                &out_of_time,
                &SilentReporter,
            )
            .await;
            assert_eq!(
                (checked.checked, checked.intact, checked.bytes),
                (3, 3, 30),
                "{archive}"
            );
            let spent = || true;
            let checked =
                verify_until(&archive, &files, Depth::Full, 4, &spent, &SilentReporter).await;
            assert_eq!(checked.checked, 1, "{archive}");
        }
    }

    #[tokio::test]
    async fn a_replaced_object_is_found_by_its_sha256_metadata_without_reading_it() {
        let archive = crate::archive::testing::bucket();
        let file = recorded(&archive, "media/1/full.jpg", b"bytes").await;
        let Archive::Bucket(bucket) = &archive else {
            unreachable!()
        };
        let other = hex::encode(Sha256::digest(b"BYTES"));
        bucket
            .put(
                "media/1/full.jpg",
                b"BYTES".to_vec().into(),
                "image/jpeg",
                Some(&other),
                crate::archive::bucket::WriteMode::Overwrite,
            )
            .await
            .unwrap();
        let fast = verify_files(&archive, &[file], Depth::Fast, 1, &SilentReporter).await;
        assert_eq!(fast.findings.len(), 1);
        assert!(
            fast.findings[0].reason.contains("metadata"),
            "{:?}",
            fast.findings
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn links_are_damage_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        fs_err::create_dir_all(&out).unwrap();
        let outside = dir.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        let archive = Archive::Disk(std::sync::Arc::new(crate::archive::ArchiveDir::open(&out)));
        // The same bytes outside: a followed link would pass as intact.
        let files = vec![
            recorded(&archive, "media/1/full.jpg", b"bytes").await,
            recorded(&archive, "media/2/full.jpg", b"bytes").await,
        ];
        fs_err::copy(out.join("media/1/full.jpg"), outside.join("full.jpg")).unwrap();
        fs_err::remove_file(out.join("media/1/full.jpg")).unwrap();
        std::os::unix::fs::symlink(outside.join("full.jpg"), out.join("media/1/full.jpg")).unwrap();
        fs_err::remove_dir_all(out.join("media/2")).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("media/2")).unwrap();
        let checked = verify_files(&archive, &files, Depth::Full, 1, &SilentReporter).await;
        assert_eq!(checked.intact, 0);
        for finding in &checked.findings {
            assert_eq!(finding.problem, Problem::Damaged);
            assert!(finding.reason.contains("link"), "{}", finding.reason);
        }
    }

    #[tokio::test]
    async fn recorded_paths_must_stay_inside() {
        for (archive, _keep) in both() {
            let mut file = recorded(&archive, "media/1/full.jpg", b"x").await;
            for outside in ["../x", "/etc/passwd", "media/../../x", ""] {
                file.local_path = outside.to_owned();
                let checked =
                    verify_files(&archive, &[file.clone()], Depth::Full, 1, &SilentReporter).await;
                assert_eq!(checked.findings[0].problem, Problem::Damaged, "{outside}");
            }
        }
    }
}
