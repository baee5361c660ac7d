//! [`Archive`]: one archive, whatever holds it. A folder on a local disk
//! ([`ArchiveDir`]) or a prefix of a bucket on S3-compatible object storage
//! ([`Bucket`]); every maintenance step (verify, kept versions, the
//! quarantine, prune, export, the agency's overview) is written once over
//! the few operations below, and only they differ per backend: what is at
//! a key, its bytes hashed, the files in a folder, a whole small file read
//! or written, bytes moved aside, a file deleted.
//!
//! Why an enum and not a trait: there are exactly two backends, both in
//! this crate; an enum keeps every operation's two halves side by side (a
//! reader sees at once what differs), needs no boxed futures or
//! `async_trait`, and lets a caller that must (the `.part` file of a
//! transfer, the links of a view) match on the disk without a downcast.
//!
//! Keys are `/`-separated and relative to the archive's root (its prefix on
//! object storage). Invariants: on the disk every key is reached through
//! [`ArchiveDir`] (beneath the root, no link followed, a link is reported as
//! what it is, never read through); on object storage every key stays under
//! the prefix ([`Bucket`] checks it); the disk's blocking work (hashing,
//! walking, renames and their fsyncs) runs on blocking threads, never on
//! the async workers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::archive::bucket::{Bucket, BucketError, WriteMode};
use crate::archive::dir::{Access, ArchiveDir, EntryKind, LinkInside, split_file};
use crate::archive::error::ArchiveError;
use crate::location::{ArchiveLocation, path_of_key};

/// An archive: a folder on a local disk, or a prefix in a bucket.
#[derive(Clone)]
pub enum Archive {
    Disk(Arc<ArchiveDir>),
    Bucket(Bucket),
}

/// What sits at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub size: u64,
    /// The sha256 the object carries in its metadata (object storage
    /// only; a disk file carries none).
    pub sha256: Option<String>,
}

/// What kind of thing sits at a key (links are never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    /// A link on the disk: not bytes of ours.
    Link,
    /// A folder, fifo, device: not a file of ours.
    Other,
}

impl fmt::Display for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Archive::Disk(dir) => write!(f, "{}", dir.path().display()),
            Archive::Bucket(bucket) => write!(f, "{}", bucket.url()),
        }
    }
}

/// Runs disk work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(std::io::Error::other(error)))
}

impl Archive {
    /// The archive at `location` (object storage configured from the AWS
    /// environment; see [`Bucket::open`]).
    pub fn open(location: &ArchiveLocation) -> Result<Self, BucketError> {
        Ok(match location {
            ArchiveLocation::Disk(path) => Archive::Disk(Arc::new(ArchiveDir::open(path))),
            ArchiveLocation::Bucket(url) => Archive::Bucket(Bucket::open(url)?),
        })
    }

    /// The archive's folder, when it is on a local disk.
    pub fn disk(&self) -> Option<&Arc<ArchiveDir>> {
        match self {
            Archive::Disk(dir) => Some(dir),
            Archive::Bucket(_) => None,
        }
    }

    /// Where the archive is.
    pub fn location(&self) -> ArchiveLocation {
        match self {
            Archive::Disk(dir) => ArchiveLocation::Disk(dir.path().to_owned()),
            Archive::Bucket(bucket) => ArchiveLocation::Bucket(bucket.url().clone()),
        }
    }

    /// How many files are best read at once: on the disk one per core (at
    /// most 4: more only makes the disk seek); on object storage more, as
    /// each read waits mostly on the network.
    pub fn parallel_reads(&self) -> usize {
        match self {
            Archive::Disk(_) => std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            Archive::Bucket(_) => 8,
        }
    }

    /// Whether the archive can hold links (a disk may still refuse them:
    /// see `views::probe_links`); object storage never does.
    pub fn may_link(&self) -> bool {
        matches!(self, Archive::Disk(_))
    }

    /// What is at `key`; `None` when nothing is. On the disk a link on the
    /// way is an error naming it ([`LinkInside`]).
    pub async fn stat(&self, key: &str) -> Result<Option<Stat>, ArchiveError> {
        match self {
            Archive::Disk(dir) => {
                let (dir, key) = (dir.clone(), path_of_key(key));
                let entry = blocking(move || dir.entry(&key)).await?;
                Ok(entry.map(|entry| Stat {
                    kind: match entry.kind {
                        EntryKind::File => Kind::File,
                        EntryKind::Link => Kind::Link,
                        EntryKind::Folder | EntryKind::Other => Kind::Other,
                    },
                    size: entry.len,
                    sha256: None,
                }))
            }
            Archive::Bucket(bucket) => Ok(bucket.head(key).await?.map(|info| Stat {
                kind: Kind::File,
                size: info.size,
                sha256: info.sha256.map(|sha256| sha256.to_ascii_lowercase()),
            })),
        }
    }

    /// The sha256 (lowercase hex) and length of the file at `key`, its
    /// bytes read and hashed (never a recorded hash); `on_bytes` hears of
    /// every chunk. `None` when there is no file.
    pub async fn hash(
        &self,
        key: &str,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<Option<(String, u64)>, ArchiveError> {
        match self {
            Archive::Disk(dir) => {
                let (dir, key) = (dir.clone(), path_of_key(key));
                let (sender, mut progress) = tokio::sync::mpsc::unbounded_channel();
                let hashing = tokio::task::spawn_blocking(move || {
                    let file = match dir.open_file(&key, Access::Read) {
                        Ok(file) => file,
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                            return Ok(None);
                        }
                        Err(error) => return Err(error),
                    };
                    hash_reader(file, |read| {
                        let _ = sender.send(read);
                    })
                    .map(Some)
                });
                // The channel closes when the hashing thread ends.
                while let Some(read) = progress.recv().await {
                    on_bytes(read);
                }
                Ok(hashing
                    .await
                    .unwrap_or_else(|error| Err(std::io::Error::other(error)))?)
            }
            Archive::Bucket(bucket) => {
                let Some(mut stream) = bucket.read(key).await? else {
                    return Ok(None);
                };
                let mut hasher = Sha256::new();
                let mut length = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    length += chunk.len() as u64;
                    on_bytes(chunk.len() as u64);
                }
                Ok(Some((hex::encode(hasher.finalize()), length)))
            }
        }
    }

    /// The files directly in each of `folders` (no deeper): folder → name →
    /// size (a folder that is missing maps to nothing). Links and folders
    /// are not files; on the disk a link in place of a folder is reported
    /// and yields nothing (what it leads to is not ours). On object storage
    /// many folders are found with one listing of each top folder rather
    /// than one listing each.
    pub async fn files_in(
        &self,
        folders: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, u64>>, ArchiveError> {
        let mut found: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        match self {
            Archive::Disk(dir) => {
                let (dir, folders) = (dir.clone(), folders.to_vec());
                return Ok(blocking(move || {
                    for folder in folders {
                        let files = files_of_folder(&dir, &folder)?;
                        found.insert(folder, files);
                    }
                    Ok(found)
                })
                .await?);
            }
            Archive::Bucket(bucket) => {
                let wanted: std::collections::BTreeSet<&str> =
                    folders.iter().map(String::as_str).collect();
                let listings: Vec<String> = if folders.len() > LIST_EACH_UP_TO {
                    let tops: std::collections::BTreeSet<&str> = folders
                        .iter()
                        .map(|folder| folder.split('/').next().unwrap_or_default())
                        .collect();
                    tops.into_iter().map(str::to_owned).collect()
                } else {
                    folders.to_vec()
                };
                for listing in listings {
                    for (key, size) in bucket.list(&listing).await? {
                        let Some((folder, name)) = key.rsplit_once('/') else {
                            continue;
                        };
                        if wanted.contains(folder) {
                            found
                                .entry(folder.to_owned())
                                .or_default()
                                .insert(name.to_owned(), size);
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Every file under `folder`, at any depth: key (from the root) → size.
    /// On the disk, links (and what is beneath them) are left out.
    pub async fn files_under(&self, folder: &str) -> Result<BTreeMap<String, u64>, ArchiveError> {
        match self {
            Archive::Disk(dir) => {
                let (dir, folder) = (dir.clone(), folder.to_owned());
                Ok(blocking(move || walk(&dir, &folder)).await?)
            }
            Archive::Bucket(bucket) => Ok(bucket.list(folder).await?.into_iter().collect()),
        }
    }

    /// A whole small file (an index, a registry); `None` when absent.
    pub async fn read_small(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        match self {
            Archive::Disk(dir) => {
                let (dir, key) = (dir.clone(), path_of_key(key));
                Ok(blocking(move || {
                    use std::io::Read;
                    match dir.open_file(&key, Access::Read) {
                        Ok(mut file) => {
                            let mut bytes = Vec::new();
                            file.read_to_end(&mut bytes)?;
                            Ok(Some(bytes))
                        }
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(error) => Err(error),
                    }
                })
                .await?)
            }
            Archive::Bucket(bucket) => Ok(bucket.read_all(key).await?.map(|bytes| bytes.to_vec())),
        }
    }

    /// Writes `bytes` as the whole file at `key`, atomically: a reader sees
    /// the old file or the new one, never half of one (a temporary file
    /// renamed and fsynced on the disk; one PUT on object storage).
    pub async fn write(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ArchiveError> {
        match self {
            Archive::Disk(dir) => {
                let (dir, key) = (dir.clone(), path_of_key(key));
                Ok(
                    blocking(move || dir.write_atomically(&key, |writer| writer.write_all(&bytes)))
                        .await?,
                )
            }
            Archive::Bucket(bucket) => {
                bucket
                    .put(key, bytes.into(), content_type, None, WriteMode::Overwrite)
                    .await?;
                Ok(())
            }
        }
    }

    /// Puts the bytes at `from` at `to` (replacing what is there), for
    /// bytes set aside: kept versions and the quarantine. On the disk the
    /// file is renamed (both folders fsynced, the new one made); on object
    /// storage it is copied server-side and `from` keeps its copy until it
    /// is replaced or [`Archive::delete`]d, so no moment has it nowhere.
    pub async fn move_aside(&self, from: &str, to: &str) -> Result<(), ArchiveError> {
        match self {
            Archive::Disk(dir) => {
                let (dir, from, to) = (dir.clone(), path_of_key(from), path_of_key(to));
                Ok(blocking(move || {
                    let (from_folder, name) = split_file(&from)?;
                    let (to_folder, to_name) = split_file(&to)?;
                    let source = dir.folder(from_folder)?.ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("{}: no such folder", dir.join(from_folder).display()),
                        )
                    })?;
                    let target = dir.create_folder(to_folder)?;
                    // The new folder's own entry is durable before anything
                    // moves into it.
                    if let Some(parent) = to_folder.parent() {
                        dir.create_folder(parent)?.sync()?;
                    }
                    source.rename(name, &target, to_name)?;
                    target.sync()?;
                    source.sync()
                })
                .await?)
            }
            Archive::Bucket(bucket) => Ok(bucket.copy(from, to).await?),
        }
    }

    /// Deletes the file (or, on the disk, the link) at `key`; nothing there
    /// is fine. A folder is never deleted here.
    pub async fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        match self {
            Archive::Disk(dir) => {
                let (dir, key) = (dir.clone(), path_of_key(key));
                Ok(blocking(move || match dir.entry(&key)? {
                    Some(entry) if matches!(entry.kind, EntryKind::File | EntryKind::Link) => {
                        dir.remove_file(&key)
                    }
                    _ => Ok(()),
                })
                .await?)
            }
            Archive::Bucket(bucket) => Ok(bucket.delete(key).await?),
        }
    }

    /// After deletions in `folders` (each `<top>/<name>`): on the disk each
    /// is removed once empty and the folders holding them fsynced; object
    /// storage has no folders.
    pub async fn tidy(&self, folders: Vec<String>) -> Result<(), ArchiveError> {
        let Archive::Disk(dir) = self else {
            return Ok(());
        };
        let dir = dir.clone();
        Ok(blocking(move || {
            let mut tops = std::collections::BTreeSet::new();
            for folder in &folders {
                let (top, name) = split_file(Path::new(folder))?;
                // Fails while something is left there (or it is a link, not
                // a folder); that is fine.
                if let Ok(Some(top_folder)) = dir.folder(top) {
                    let _ = top_folder.remove_folder(name);
                    tops.insert(top.to_owned());
                }
            }
            for top in tops {
                if let Some(folder) = dir.folder(&top)? {
                    folder.sync()?;
                }
            }
            Ok(())
        })
        .await?)
    }
}

/// Up to how many folders [`Archive::files_in`] lists one by one on
/// object storage (one request each) before it lists their top folders.
const LIST_EACH_UP_TO: usize = 8;

/// The regular files directly in `folder` of `dir`: name → size; nothing
/// when it is missing, or a link (reported, never followed).
fn files_of_folder(dir: &ArchiveDir, folder: &str) -> std::io::Result<BTreeMap<String, u64>> {
    let mut files = BTreeMap::new();
    let opened = match dir.folder(Path::new(folder)) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(files),
        Err(error) if LinkInside::of(&error).is_some() => {
            tracing::warn!("{error}; left alone");
            return Ok(files);
        }
        Err(error) => return Err(error),
    };
    for name in opened.names()? {
        if let Some(entry) = opened.entry(&name)?
            && entry.kind == EntryKind::File
        {
            files.insert(name.to_string_lossy().into_owned(), entry.len);
        }
    }
    Ok(files)
}

/// Every regular file under `folder` of `dir`, reached without following
/// links: key → size.
fn walk(dir: &ArchiveDir, folder: &str) -> std::io::Result<BTreeMap<String, u64>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(current) = pending.pop() {
        let opened = match dir.folder(Path::new(&current)) {
            Ok(Some(opened)) => opened,
            Ok(None) => continue,
            Err(error) if LinkInside::of(&error).is_some() => continue,
            Err(error) => return Err(error),
        };
        for name in opened.names()? {
            let Some(entry) = opened.entry(&name)? else {
                continue;
            };
            let key = format!("{current}/{}", name.to_string_lossy());
            match entry.kind {
                EntryKind::File => {
                    files.insert(key, entry.len);
                }
                EntryKind::Folder => pending.push(key),
                EntryKind::Link | EntryKind::Other => {}
            }
        }
    }
    Ok(files)
}

/// sha256 (lowercase hex) and length of what `reader` holds, telling
/// `on_bytes` of every chunk read.
pub fn hash_reader(
    mut reader: impl std::io::Read,
    mut on_bytes: impl FnMut(u64),
) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut length = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
        on_bytes(read as u64);
    }
    Ok((hex::encode(hasher.finalize()), length))
}

/// Both backends for a unit test: a temporary folder, and a bucket held in
/// memory (object_store's `InMemory`).
#[cfg(test)]
pub mod testing {
    use super::*;

    /// A disk archive in a fresh temporary folder (kept alive with it).
    pub fn disk() -> (Archive, tempfile::TempDir) {
        let folder = tempfile::tempdir().unwrap();
        let archive = Archive::Disk(Arc::new(ArchiveDir::open(folder.path())));
        (archive, folder)
    }

    /// A bucket archive held in memory, at a prefix.
    pub fn bucket() -> Archive {
        Archive::Bucket(Bucket::in_memory("prefix"))
    }

    /// Both, each with whatever keeps it alive.
    pub fn both() -> Vec<(Archive, Option<tempfile::TempDir>)> {
        let (disk, folder) = disk();
        vec![(disk, Some(folder)), (bucket(), None)]
    }
}

#[cfg(test)]
mod tests {
    use super::testing::both;
    use super::*;

    #[tokio::test]
    async fn the_operations_mean_the_same_on_both_backends() {
        for (archive, _keep) in both() {
            let shown = archive.to_string();
            assert_eq!(archive.stat("media/1/full.jpg").await.unwrap(), None);
            archive
                .write("media/1/full.jpg", b"bytes".to_vec(), "image/jpeg")
                .await
                .unwrap();
            archive
                .write("media/1/thumb.jpg", b"thumb".to_vec(), "image/jpeg")
                .await
                .unwrap();
            archive
                .write("media/2/deeper/x.jpg", b"x".to_vec(), "image/jpeg")
                .await
                .unwrap();
            let stat = archive.stat("media/1/full.jpg").await.unwrap().unwrap();
            assert_eq!((stat.kind, stat.size), (Kind::File, 5), "{shown}");
            let (sha256, size) = archive
                .hash("media/1/full.jpg", &|_| {})
                .await
                .unwrap()
                .unwrap();
            assert_eq!(sha256, hex::encode(Sha256::digest(b"bytes")));
            assert_eq!(size, 5);
            assert_eq!(
                archive
                    .files_in(&["media/1".to_owned()])
                    .await
                    .unwrap()
                    .remove("media/1")
                    .unwrap_or_default()
                    .into_iter()
                    .collect::<Vec<_>>(),
                [("full.jpg".to_owned(), 5), ("thumb.jpg".to_owned(), 5)],
                "{shown}"
            );
            assert_eq!(
                archive
                    .files_under("media")
                    .await
                    .unwrap()
                    .keys()
                    .collect::<Vec<_>>(),
                [
                    "media/1/full.jpg",
                    "media/1/thumb.jpg",
                    "media/2/deeper/x.jpg"
                ],
                "{shown}"
            );
            archive
                .move_aside("media/1/full.jpg", ".versions/1/full-1.jpg")
                .await
                .unwrap();
            assert_eq!(
                archive.read_small(".versions/1/full-1.jpg").await.unwrap(),
                Some(b"bytes".to_vec())
            );
            archive.delete("media/1/full.jpg").await.unwrap();
            archive.delete("media/1/full.jpg").await.unwrap();
            assert_eq!(archive.stat("media/1/full.jpg").await.unwrap(), None);
            assert_eq!(
                archive.hash("media/1/full.jpg", &|_| {}).await.unwrap(),
                None
            );
            archive.delete("media/1/thumb.jpg").await.unwrap();
            archive.tidy(vec!["media/1".into()]).await.unwrap();
            let left = archive.files_in(&["media/1".to_owned()]).await.unwrap();
            assert!(left.values().all(BTreeMap::is_empty), "{shown}");
        }
    }

    #[tokio::test]
    async fn many_folders_are_listed_alike_one_by_one_or_by_their_top() {
        for (archive, _keep) in both() {
            let mut folders = Vec::new();
            for id in 0..(LIST_EACH_UP_TO + 3) {
                let folder = format!("media/{id}");
                archive
                    .write(&format!("{folder}/full.jpg"), vec![0; id], "image/jpeg")
                    .await
                    .unwrap();
                folders.push(folder);
            }
            // Deeper, and beside: never taken for a folder's own files.
            archive
                .write("media/1/deeper/x.jpg", vec![1], "image/jpeg")
                .await
                .unwrap();
            archive
                .write("media/10x/full.jpg", vec![1], "image/jpeg")
                .await
                .unwrap();
            for wanted in [&folders[..2], &folders[..]] {
                let found = archive.files_in(wanted).await.unwrap();
                assert_eq!(found.len(), wanted.len(), "{archive}");
                for (index, folder) in wanted.iter().enumerate() {
                    let files: Vec<_> = found[folder].iter().collect();
                    assert_eq!(
                        files,
                        [(&"full.jpg".to_owned(), &(index as u64))],
                        "{archive}"
                    );
                }
            }
        }
    }
}
