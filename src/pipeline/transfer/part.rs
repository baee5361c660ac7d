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

use crate::archive::content::Tally;
use crate::archive::dir::{Access, ArchiveDir, Folder};

/// Write buffer: large enough that a write is rarely a system call per chunk.
const WRITE_BUFFER: usize = 256 * 1024;

/// An in-progress download at `<final>.part`.
pub struct PartFile {
    /// The folder of the `.part` and of its final path.
    folder: Folder,
    name: OsString,
    writer: std::io::BufWriter<fs_err::File>,
    /// The file's bytes: their sha256, count and head.
    tally: Tally,
}

impl PartFile {
    /// Opens `name` in `folder` to continue it (a link there is replaced,
    /// never written through). Bytes already there are re-hashed. A file
    /// longer than `expected` is started over; a complete one keeps all
    /// but its last byte, so that resuming re-reads the headers and checks
    /// the server still has the same object before anything is committed.
    pub fn open(folder: Folder, name: &OsStr, expected: u64) -> std::io::Result<Self> {
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
        let mut tally = Tally::default();
        if length > 0 {
            file.seek(SeekFrom::Start(0))?;
            let mut buffer = vec![0; 256 * 1024];
            let mut remaining = length;
            while remaining > 0 {
                let want = buffer.len().min(remaining as usize);
                let read = file.read(&mut buffer[..want])?;
                if read == 0 {
                    break;
                }
                tally.add(&buffer[..read]);
                remaining -= read as u64;
            }
        }
        file.seek(SeekFrom::Start(length))?;
        Ok(Self {
            folder,
            name: name.to_owned(),
            writer: std::io::BufWriter::with_capacity(WRITE_BUFFER, file),
            tally,
        })
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

    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.tally.add(bytes);
        Ok(())
    }

    /// Drops every byte: the transfer starts over from zero.
    pub fn reset(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        let file = self.writer.get_mut();
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        self.tally = Tally::default();
        Ok(())
    }

    /// Makes the bytes so far durable, so a later run can resume from them.
    pub fn keep(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        self.writer.get_ref().sync_data()
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

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
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
        let mut part = PartFile::open(folder(dir.path()), name, body.len() as u64).unwrap();
        assert_eq!(part.len(), 6);
        part.write(&body[6..]).unwrap();
        let digest = part.commit(OsStr::new("full.jpg")).unwrap();
        assert_eq!(digest, hex::encode(Sha256::digest(body)));
        assert_eq!(std::fs::read(&final_path).unwrap(), body);
        assert!(!part_path.exists());
    }

    #[test]
    fn complete_or_overlong_parts_are_not_trusted_whole() {
        let dir = tempfile::tempdir().unwrap();
        let part_path = dir.path().join("x.part");
        let name = OsStr::new("x.part");
        std::fs::write(&part_path, b"12345").unwrap();
        assert_eq!(
            PartFile::open(folder(dir.path()), name, 5).unwrap().len(),
            4
        );
        std::fs::write(&part_path, b"1234567").unwrap();
        assert_eq!(
            PartFile::open(folder(dir.path()), name, 5).unwrap().len(),
            0
        );
    }
}
