//! Stage 7, commit: the `.part` file a transfer writes into, and the one
//! way a file reaches its final path.
//!
//! Invariants: bytes are hashed (sha256) and counted as they are written;
//! [`PartFile::commit`] runs only after every check passed, and does
//! `sync_data` → rename → fsync of the folder, so a file at a final path
//! is whole and durable. A file that fails a check is moved to the
//! quarantine folder with its reason, never to the final path. The
//! `.part`, its rename and the folder's fsync all go through the folder
//! held open ([`Folder`]), so none of them follows a link out of the
//! archive.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::archive::bucket::upload::PART_SIZE;
use crate::archive::content::{SNIFF_LEN, Tally};
use crate::archive::dir::{Access, ArchiveDir, Folder};
use crate::store::ResumePoint;

/// Write buffer: large enough that a write is rarely a system call per chunk.
const WRITE_BUFFER: usize = 256 * 1024;

/// How many bytes before a point its fingerprint covers
/// ([`ResumePoint::tail_sha256`]).
const TAIL: usize = 4096;

/// Bytes written between two `sync_data` that make the points reached
/// durable: a kill loses at most this much re-hashing, never a byte of
/// the download (the `.part` keeps them all), and a 2 GB file is synced
/// about thirty times.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// An in-progress download at `<final>.part`.
pub struct PartFile {
    /// The folder of the `.part` and of its final path.
    folder: Folder,
    name: OsString,
    writer: std::io::BufWriter<fs_err::File>,
    /// The file's bytes: their sha256, count and head.
    tally: Tally,
    /// The last bytes written (up to [`TAIL`]), for a point's fingerprint.
    tail: Vec<u8>,
    /// Points reached since the last `sync_data`: not durable yet.
    pending: Vec<ResumePoint>,
    /// Points made durable and not yet taken ([`PartFile::take_points`]).
    durable: Arc<Mutex<Vec<ResumePoint>>>,
    /// Where the last `sync_data` left the file.
    synced: u64,
}

impl PartFile {
    /// Opens `name` in `folder` to continue it (a link there is replaced,
    /// never written through). A file longer than `expected` is started
    /// over; a complete one keeps all but its last byte, so that resuming
    /// re-reads the headers and checks the server still has the same
    /// object before anything is committed. The bytes already there are
    /// hashed from the last of `points` the file provably holds (its
    /// fingerprint matches the bytes before it), else from the start.
    pub fn open(
        folder: Folder,
        name: &OsStr,
        expected: u64,
        points: &[ResumePoint],
    ) -> std::io::Result<Self> {
        let mut file = folder.open_file(name, Access::Resume)?;
        let found = file.metadata()?.len();
        let length = if found > expected {
            0
        } else if found == expected {
            expected.saturating_sub(1)
        } else {
            found
        };
        // Only when it changes anything: on ext4 a truncated file is
        // flushed when closed (auto_da_alloc), a write-back this process
        // would pay for on every new file.
        if length != found {
            file.set_len(length)?;
        }
        let mut tally = resume_point(&mut file, points, length)?.unwrap_or_default();
        let resumed_at = tally.len();
        file.seek(SeekFrom::Start(resumed_at))?;
        let mut buffer = vec![0; 256 * 1024];
        let mut tail = Vec::with_capacity(TAIL);
        while tally.len() < length {
            let want = buffer.len().min((length - tally.len()) as usize);
            let read = file.read(&mut buffer[..want])?;
            if read == 0 {
                break;
            }
            tally.add(&buffer[..read]);
            keep_tail(&mut tail, &buffer[..read]);
        }
        if length > 0 {
            tracing::debug!(
                "{}: {length} bytes to resume from, {} of them re-read to hash them",
                name.display(),
                length - resumed_at
            );
        }
        file.seek(SeekFrom::Start(length))?;
        Ok(Self {
            folder,
            name: name.to_owned(),
            writer: std::io::BufWriter::with_capacity(WRITE_BUFFER, file),
            tally,
            tail,
            pending: Vec::new(),
            durable: Arc::default(),
            synced: length,
        })
    }

    /// The points made durable and not taken yet, shared with whoever
    /// records them while this file is written on another thread.
    pub fn durable_points(&self) -> Arc<Mutex<Vec<ResumePoint>>> {
        Arc::clone(&self.durable)
    }

    pub fn len(&self) -> u64 {
        self.tally.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tally.is_empty()
    }

    pub fn head(&self) -> &[u8] {
        self.tally.head()
    }

    /// sha256 (lowercase hex) of the bytes written so far: what
    /// [`PartFile::commit`] will return once every byte is in.
    pub fn sha256(&self) -> String {
        self.tally.sha256()
    }

    /// Writes and hashes `bytes`. At every part boundary the sha256 state
    /// is a point to resume from; every [`SYNC_EVERY`] bytes the file is
    /// synced and the points it now holds durably become recordable.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let part = PART_SIZE as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            let to_boundary = part - self.tally.len() % part;
            let take = rest
                .len()
                .min(usize::try_from(to_boundary).unwrap_or(usize::MAX));
            let (now, later) = rest.split_at(take);
            self.writer.write_all(now)?;
            self.tally.add(now);
            keep_tail(&mut self.tail, now);
            if self.tally.len().is_multiple_of(part)
                && let Some(state) = self.tally.state()
            {
                self.pending.push(ResumePoint {
                    end: self.tally.len(),
                    part_number: u32::try_from(self.tally.len() / part).unwrap_or(u32::MAX),
                    part_size: part,
                    sha256_state: state,
                    part_id: None,
                    tail_sha256: Some(Sha256::digest(&self.tail).into()),
                });
            }
            rest = later;
        }
        if !self.pending.is_empty() && self.tally.len().saturating_sub(self.synced) >= SYNC_EVERY {
            self.sync_points()?;
        }
        Ok(())
    }

    /// `sync_data`, then the points reached are durable.
    fn sync_points(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        self.writer.get_ref().sync_data()?;
        self.synced = self.tally.len();
        let pending = std::mem::take(&mut self.pending);
        if let Ok(mut durable) = self.durable.lock() {
            durable.extend(pending);
        }
        Ok(())
    }

    /// Drops every byte: the transfer starts over from zero.
    pub fn reset(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        let file = self.writer.get_mut();
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        self.tally = Tally::default();
        self.tail.clear();
        self.pending.clear();
        self.synced = 0;
        if let Ok(mut durable) = self.durable.lock() {
            durable.clear();
        }
        Ok(())
    }

    /// Makes the bytes so far durable, so a later run can resume from
    /// them; returns the points not taken yet, all durable now.
    pub fn keep(&mut self) -> std::io::Result<Vec<ResumePoint>> {
        self.sync_points()?;
        Ok(self.take_points())
    }

    /// The durable points not taken yet.
    pub fn take_points(&self) -> Vec<ResumePoint> {
        self.durable
            .lock()
            .map(|mut durable| std::mem::take(&mut *durable))
            .unwrap_or_default()
    }

    /// Moves the bytes aside into the quarantine of `media_id`, named
    /// `file_name` (they failed a check). Returns where they went,
    /// relative to the archive root.
    pub fn quarantine(
        mut self,
        archive: &ArchiveDir,
        media_id: &str,
        file_name: &OsStr,
    ) -> std::io::Result<PathBuf> {
        self.writer.flush()?;
        drop(self.writer);
        archive.quarantine(&self.folder, &self.name, media_id, file_name)
    }

    /// `sync_data` → rename onto `final_name` (in the same folder) → fsync
    /// the folder. Returns the sha256 (lowercase hex) of the committed
    /// file. Blocking: run it off the async threads.
    pub fn commit(mut self, final_name: &OsStr) -> std::io::Result<String> {
        self.writer.flush()?;
        let file = self
            .writer
            .into_inner()
            .map_err(|error| error.into_error())?;
        file.sync_data()?;
        drop(file);
        self.folder.rename(&self.name, &self.folder, final_name)?;
        self.folder.sync()?;
        Ok(self.tally.sha256())
    }
}

/// Keeps the last [`TAIL`] bytes written in `tail`.
fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() >= TAIL {
        tail.clear();
        tail.extend_from_slice(&bytes[bytes.len() - TAIL..]);
        return;
    }
    let overflow = (tail.len() + bytes.len()).saturating_sub(TAIL);
    tail.drain(..overflow);
    tail.extend_from_slice(bytes);
}

/// The tally at the last of `points` within `length` whose fingerprint
/// the file's bytes match (they are what the state was computed over, as
/// far as one can tell without reading them all), else None.
fn resume_point(
    file: &mut fs_err::File,
    points: &[ResumePoint],
    length: u64,
) -> std::io::Result<Option<Tally>> {
    let mut head = vec![0; SNIFF_LEN];
    for point in points.iter().rev().filter(|point| point.end <= length) {
        let (Some(expected), Some(start)) = (point.tail_sha256, point.end.checked_sub(TAIL as u64))
        else {
            continue;
        };
        let mut tail = vec![0; TAIL];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut tail)?;
        if <[u8; 32]>::from(Sha256::digest(&tail)) != expected {
            continue;
        }
        let head_length = SNIFF_LEN.min(usize::try_from(point.end).unwrap_or(usize::MAX));
        file.seek(SeekFrom::Start(0))?;
        file.read_exact(&mut head[..head_length])?;
        if let Some(tally) = Tally::resume(&point.sha256_state, point.end, &head[..head_length]) {
            return Ok(Some(tally));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn folder(dir: &Path) -> Folder {
        ArchiveDir::open(dir).create_folder(Path::new("")).unwrap()
    }

    #[test]
    fn resume_rehashes_and_commit_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let final_path = dir.path().join("full.jpg");
        let part_path = dir.path().join("full.jpg.part");
        let body = b"0123456789abcdef";
        std::fs::write(&part_path, &body[..6]).unwrap();
        let name = OsStr::new("full.jpg.part");
        let mut part = PartFile::open(folder(dir.path()), name, body.len() as u64, &[]).unwrap();
        assert_eq!(part.len(), 6);
        part.write(&body[6..]).unwrap();
        let digest = part.commit(OsStr::new("full.jpg")).unwrap();
        assert_eq!(digest, hex::encode(Sha256::digest(body)));
        assert_eq!(std::fs::read(&final_path).unwrap(), body);
        assert!(!part_path.exists());
    }

    #[test]
    fn a_resumed_part_is_hashed_from_its_last_provable_point() {
        let dir = tempfile::tempdir().unwrap();
        let name = OsStr::new("big.part");
        let body: Vec<u8> = (0..(2 * PART_SIZE + 12_345) as u32)
            .map(|i| (i ^ (i >> 9)) as u8)
            .collect();
        let total = body.len() as u64 + 1000;
        let mut part = PartFile::open(folder(dir.path()), name, total, &[]).unwrap();
        for chunk in body.chunks(65_536) {
            part.write(chunk).unwrap();
        }
        let points = part.keep().unwrap();
        drop(part);
        let ends: Vec<u64> = points.iter().map(|point| point.end).collect();
        assert_eq!(ends, [PART_SIZE as u64, 2 * PART_SIZE as u64]);
        let sha256 = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));

        let reopened = PartFile::open(folder(dir.path()), name, total, &points).unwrap();
        assert_eq!(reopened.len(), body.len() as u64);
        assert_eq!(reopened.sha256(), sha256(&body));
        drop(reopened);

        // A byte changed before the last point, outside its fingerprint:
        // not re-read, so the state (the bytes as written) stands.
        let path = dir.path().join("big.part");
        let mut changed = body.clone();
        changed[PART_SIZE + 100] ^= 0xFF;
        std::fs::write(&path, &changed).unwrap();
        let reopened = PartFile::open(folder(dir.path()), name, total, &points).unwrap();
        assert_eq!(reopened.sha256(), sha256(&body));
        drop(reopened);

        // The bytes just before the last point differ: that point is not
        // provable, the one before is, and what follows it is re-read.
        changed[2 * PART_SIZE - 1] ^= 0xFF;
        std::fs::write(&path, &changed).unwrap();
        let reopened = PartFile::open(folder(dir.path()), name, total, &points).unwrap();
        assert_eq!(reopened.sha256(), sha256(&changed));
        drop(reopened);

        // Shorter than every point: hashed from the start.
        std::fs::write(&path, &body[..1000]).unwrap();
        let reopened = PartFile::open(folder(dir.path()), name, total, &points).unwrap();
        assert_eq!(reopened.sha256(), sha256(&body[..1000]));
    }

    #[test]
    fn complete_or_overlong_parts_are_not_trusted_whole() {
        let dir = tempfile::tempdir().unwrap();
        let part_path = dir.path().join("x.part");
        let name = OsStr::new("x.part");
        std::fs::write(&part_path, b"12345").unwrap();
        assert_eq!(
            PartFile::open(folder(dir.path()), name, 5, &[])
                .unwrap()
                .len(),
            4
        );
        std::fs::write(&part_path, b"1234567").unwrap();
        assert_eq!(
            PartFile::open(folder(dir.path()), name, 5, &[])
                .unwrap()
                .len(),
            0
        );
    }
}
