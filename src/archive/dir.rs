//! The archive folder held open, and the one way vault-mirror reaches
//! anything under it: [`ArchiveDir`] resolves folders relative to the
//! archive root without following links, and [`Folder`] lists, opens,
//! renames, links, removes and fsyncs entries relative to a folder it
//! holds open.
//!
//! Every folder on the way from the root down — `media/<dir>`,
//! `.versions/<dir>`, the quarantine, the views, the root where export
//! writes — is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! on Linux, else (an older kernel, another unix, or anything unusual on
//! the way) one `openat(O_NOFOLLOW | O_DIRECTORY)` per component. Files
//! are opened with `O_NOFOLLOW` relative to their folder. So nothing is
//! read, written, renamed or deleted outside the archive through a link,
//! whoever planted it and whenever.
//!
//! Invariants:
//! - The root itself is opened by its path, links and all: where the
//!   archive lives is the user's choice (`--out` may well be a link).
//! - A link found where vault-mirror keeps a folder or writes a file is
//!   never followed. Where vault-mirror is about to create that folder or
//!   file, the link is reported (a warning naming it and its target) and
//!   replaced by a real folder or file; removing a link leaves its target
//!   untouched. Where vault-mirror only reads, it is an error
//!   ([`LinkInside`]) naming it. `.vault-mirror` is the exception: the
//!   database and the lock were opened through it, so a link there is
//!   refused, never replaced (replacing it would split the archive's state
//!   in two, and let a second run past the lock).
//! - Relative paths are plain — normal components only, no `..`, no root
//!   — or refused; names inside a folder are single components.
//! - Files opened here are regular files (a fifo or device planted in the
//!   archive is refused, not read).
//! - Where folders cannot be held open (not unix), paths are used as they
//!   were before: a link is still never followed where vault-mirror
//!   checks, but a link swapped in between a check and its use is.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use crate::archive::paths::safe_name;

/// The archive's own state folder (database, lock, quarantine).
pub const STATE_FOLDER: &str = ".vault-mirror";

/// How often a step is tried again when the entry it is about changes
/// under it (another transfer replacing the same link, say).
#[cfg(unix)]
const ATTEMPTS: usize = 4;

/// A link inside the archive where vault-mirror only reads: not followed.
#[derive(Debug)]
pub struct LinkInside {
    /// The link itself.
    pub path: PathBuf,
    /// Where it points, when that could be read.
    pub target: Option<PathBuf>,
    /// Why it is not replaced, when it is not (`.vault-mirror`).
    pub refused: Option<&'static str>,
}

impl std::fmt::Display for LinkInside {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} is a link", self.path.display())?;
        if let Some(target) = &self.target {
            write!(formatter, " (to {})", target.display())?;
        }
        write!(
            formatter,
            "; vault-mirror does not follow links inside the archive"
        )?;
        if let Some(refused) = self.refused {
            write!(formatter, " ({refused})")?;
        }
        Ok(())
    }
}

impl std::error::Error for LinkInside {}

impl LinkInside {
    /// The link an IO error is about, if it is one.
    pub fn of(error: &io::Error) -> Option<&LinkInside> {
        error.get_ref()?.downcast_ref()
    }

    fn into_error(self) -> io::Error {
        io::Error::other(self)
    }
}

/// What sits at a name, links not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Folder,
    Link,
    /// A fifo, socket or device: never ours.
    Other,
}

/// An entry of a folder, as found (links not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// Bytes, for a file.
    pub len: u64,
}

/// An entry's metadata, as found (links not followed): what
/// [`Folder::stat`] and [`Folder::stat_entry`] give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStat {
    pub kind: EntryKind,
    /// Bytes, for a file.
    pub len: u64,
    /// The device and inode that identify it (on Windows the volume serial
    /// number and file index); 0 where not known (another system, or an
    /// entry that could not be opened), so nothing is ever taken for the
    /// same file there.
    pub device: u64,
    pub inode: u64,
    /// How many names its bytes have (1 where not known).
    pub links: u64,
    /// Its last modification, in nanoseconds since the epoch.
    pub modified_ns: i64,
}

impl EntryStat {
    /// The kind and length alone.
    pub fn entry(&self) -> Entry {
        Entry {
            kind: self.kind,
            len: self.len,
        }
    }
}

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read an existing file; a link there is an error.
    Read,
    /// Read and write, created when absent, its bytes kept (a `.part`
    /// being resumed); a link there is replaced.
    Resume,
    /// Write from empty, created or truncated (a temporary file); a link
    /// there is replaced.
    Replace,
}

/// The archive folder (`--out`), held open so that everything under it
/// is reached relative to it, never through a link.
pub struct ArchiveDir {
    path: PathBuf,
    /// Opened when first needed, so an archive created after this value
    /// (a first run) is still reached through a descriptor.
    #[cfg(unix)]
    root: std::sync::OnceLock<fs_err::File>,
    /// The folder of the last [`ArchiveDir::entry`], kept open: a run
    /// checks a media's variants one after the other, in one folder, and
    /// resolving it costs more than the check itself.
    last_folder: std::sync::Mutex<Option<(PathBuf, Folder)>>,
}

impl ArchiveDir {
    /// The archive at `path`; it need not exist yet.
    pub fn open(path: &Path) -> Self {
        let archive = ArchiveDir {
            path: path.to_owned(),
            #[cfg(unix)]
            root: std::sync::OnceLock::new(),
            last_folder: std::sync::Mutex::new(None),
        };
        #[cfg(unix)]
        let _ = archive.root();
        archive
    }

    /// The archive root as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `relative` under the root, for messages (with one separator).
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        crate::location::shown_path(&self.path.join(relative))
    }

    /// The folder at `relative` (empty: the root), opened without following
    /// links; `None` when it, or a folder on the way, does not exist. A link
    /// on the way is an error ([`LinkInside`]).
    pub fn folder(&self, relative: &Path) -> io::Result<Option<Folder>> {
        match self.resolve(relative, false) {
            Ok(folder) => Ok(Some(folder)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The folder at `relative`, with every missing folder on the way
    /// created; a link on the way is reported and replaced by a real
    /// folder (but see the module docs for `.vault-mirror`).
    pub fn create_folder(&self, relative: &Path) -> io::Result<Folder> {
        self.resolve(relative, true)
    }

    /// What sits at `relative` (links not followed); `None` when nothing
    /// does. A link on the way is an error ([`LinkInside`]).
    pub fn entry(&self, relative: &Path) -> io::Result<Option<Entry>> {
        let (folder_relative, name) = split_file(relative)?;
        // Taken out while in use: a lookup running meanwhile on another
        // thread resolves its own folder.
        let last = self
            .last_folder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let folder = match last {
            Some((cached, folder)) if cached == folder_relative => folder,
            _ => match self.folder(folder_relative)? {
                Some(folder) => folder,
                None => return Ok(None),
            },
        };
        let found = folder.entry(name);
        *self
            .last_folder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((folder_relative.to_owned(), folder));
        found
    }

    /// Whether `relative` is a regular file of `len` bytes, reached
    /// without following any link.
    pub fn has_file(&self, relative: &Path, len: u64) -> bool {
        self.file_len(relative) == Some(len)
    }

    /// The length of the regular file at `relative`, reached without
    /// following any link; `None` when there is none.
    pub fn file_len(&self, relative: &Path) -> Option<u64> {
        match self.entry(relative) {
            Ok(Some(entry)) if entry.kind == EntryKind::File => Some(entry.len),
            _ => None,
        }
    }

    /// Opens the file at `relative` (see [`Folder::open_file`]); with an
    /// access that writes, missing folders on the way are created.
    pub fn open_file(&self, relative: &Path, access: Access) -> io::Result<fs_err::File> {
        let (folder, name) = split_file(relative)?;
        let folder = if access == Access::Read {
            self.folder(folder)?
                .ok_or_else(|| not_found("open file", &self.join(relative)))?
        } else {
            self.create_folder(folder)?
        };
        folder.open_file(name, access)
    }

    /// Removes the file (or link) at `relative`; nothing to remove is fine.
    pub fn remove_file(&self, relative: &Path) -> io::Result<()> {
        let (folder, name) = split_file(relative)?;
        match self.folder(folder)? {
            Some(folder) => match folder.remove_file(name) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
            None => Ok(()),
        }
    }

    /// Moves `name` out of `from` into the quarantine of `media_id`, as
    /// `file_name` (replacing what an earlier quarantine of the same file
    /// left), and fsyncs both folders. Returns where it went, relative to
    /// the root. The one way bytes that failed a check are set aside.
    pub fn quarantine(
        &self,
        from: &Folder,
        name: impl AsRef<OsStr>,
        media_id: &str,
        file_name: impl AsRef<OsStr>,
    ) -> io::Result<PathBuf> {
        let relative = quarantine_path(media_id, file_name.as_ref());
        let (folder, file_name) = split_file(&relative)?;
        let folder = self.create_folder(folder)?;
        from.rename(name, &folder, file_name)?;
        folder.sync()?;
        from.sync()?;
        Ok(relative)
    }

    /// Writes `relative` atomically (see [`Folder::write_atomically`]).
    pub fn write_atomically(
        &self,
        relative: &Path,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let (folder, name) = split_file(relative)?;
        self.create_folder(folder)?.write_atomically(name, fill)
    }

    #[cfg(unix)]
    fn root(&self) -> io::Result<&fs_err::File> {
        if let Some(root) = self.root.get() {
            return Ok(root);
        }
        let fd = rustix::fs::open(&self.path, folder_flags(), rustix::fs::Mode::empty())
            .map_err(|error| failed(error, "open directory", &self.path))?;
        let root = fs_err::File::from_parts(std::fs::File::from(fd), &self.path);
        Ok(self.root.get_or_init(|| root))
    }

    #[cfg(unix)]
    fn resolve(&self, relative: &Path, create: bool) -> io::Result<Folder> {
        let names = plain_components(relative)?;
        let root = self.root()?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if !names.is_empty()
            && let Some(folder) = resolve_beneath(root, &self.path, relative)
        {
            return Ok(folder);
        }
        // The walk: slower, but it works out what is in the way, and makes
        // or replaces what it must.
        let mut folder = Folder {
            file: root.try_clone()?,
        };
        for (index, name) in names.iter().enumerate() {
            let may_replace = index > 0 || *name != STATE_FOLDER;
            folder = folder.child(name, create, may_replace)?;
        }
        Ok(folder)
    }

    #[cfg(not(unix))]
    fn resolve(&self, relative: &Path, create: bool) -> io::Result<Folder> {
        let names = plain_components(relative)?;
        let mut folder = Folder {
            path: self.path.clone(),
        };
        for (index, name) in names.iter().enumerate() {
            let may_replace = index > 0 || *name != STATE_FOLDER;
            folder = folder.child(name, create, may_replace)?;
        }
        Ok(folder)
    }
}

/// Where bytes that failed a check are set aside, relative to the root:
/// `.vault-mirror/quarantine/<media dir>/<file name>`. Shared by the
/// download (a transfer failing its checks), the commit (previous bytes no
/// longer as verified) and `verify --repair`.
pub fn quarantine_path(media_id: &str, file_name: &OsStr) -> PathBuf {
    Path::new(STATE_FOLDER)
        .join("quarantine")
        .join(safe_name(media_id))
        .join(file_name)
}

/// `relative` split into its folder and its file name.
pub fn split_file(relative: &Path) -> io::Result<(&Path, &OsStr)> {
    match (relative.parent(), relative.file_name()) {
        (Some(folder), Some(name)) => Ok((folder, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", relative.display()),
        )),
    }
}

/// The names of a plain relative path, or why it is not one.
fn plain_components(relative: &Path) -> io::Result<Vec<&OsStr>> {
    relative
        .components()
        .map(|component| match component {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing the path {}: it would leave the archive",
                    relative.display()
                ),
            )),
        })
        .collect()
}

/// `name` if it is one plain component.
fn plain_name(name: &OsStr) -> io::Result<&OsStr> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(only)), None) if only == name => Ok(name),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing the name {name:?}: not a plain file name"),
        )),
    }
}

/// An IO error that names what was being done and to which path (the
/// fs-err style), keeping the kind (a full disk stays a full disk).
fn failed(error: impl Into<io::Error>, action: &str, path: &Path) -> io::Error {
    let error: io::Error = error.into();
    io::Error::new(
        error.kind(),
        format!("failed to {action} `{}`: {error}", path.display()),
    )
}

fn not_found(action: &str, path: &Path) -> io::Error {
    failed(io::Error::from(io::ErrorKind::NotFound), action, path)
}

fn replaced_link(path: &Path, target: Option<&Path>, by: &str) {
    let target = target
        .map(|target| format!(" (to {})", target.display()))
        .unwrap_or_default();
    tracing::warn!(
        "{} was a link{target}; vault-mirror does not follow links inside the archive: replaced it by a real {by} (the link's target is untouched)",
        path.display()
    );
}

/// A folder under the archive root, held open: what is done to its
/// entries is done relative to it, whatever happens to the path above.
pub struct Folder {
    /// The folder itself (its path names it in messages).
    #[cfg(unix)]
    file: fs_err::File,
    #[cfg(not(unix))]
    path: PathBuf,
}

impl Folder {
    /// Where the folder is (for messages).
    pub fn path(&self) -> &Path {
        #[cfg(unix)]
        return self.file.path();
        #[cfg(not(unix))]
        return &self.path;
    }

    /// The sub-folder `name`, opened without following a link; `None` when
    /// there is none. A link there is an error ([`LinkInside`]).
    pub fn open_folder(&self, name: impl AsRef<OsStr>) -> io::Result<Option<Folder>> {
        match self.child(plain_name(name.as_ref())?, false, true) {
            Ok(folder) => Ok(Some(folder)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The sub-folder `name`, created when missing; a link there is
    /// reported and replaced by a real folder (one named `.vault-mirror`
    /// is refused, never replaced: see the module docs).
    pub fn create_folder(&self, name: impl AsRef<OsStr>) -> io::Result<Folder> {
        let name = plain_name(name.as_ref())?;
        self.child(name, true, name != STATE_FOLDER)
    }

    /// The entries of this folder with their metadata (links not
    /// followed); an entry removed while they are listed is left out.
    pub fn entries(&self) -> io::Result<Vec<(OsString, EntryStat)>> {
        let mut entries = Vec::new();
        for name in self.names()? {
            if let Some(stat) = self.stat_entry(&name)? {
                entries.push((name, stat));
            }
        }
        Ok(entries)
    }

    /// What sits at `name`, links not followed; `None` when nothing does.
    pub fn entry(&self, name: impl AsRef<OsStr>) -> io::Result<Option<Entry>> {
        Ok(self.stat_entry(name)?.map(|stat| stat.entry()))
    }

    /// Writes `name` atomically: a temporary file in this folder, filled by
    /// `fill`, flushed and fsynced, renamed over `name`, then the folder
    /// fsynced. A failure leaves the old file (if any) untouched; a link
    /// at `name` is replaced, never written through.
    pub fn write_atomically(
        &self,
        name: impl AsRef<OsStr>,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let name = plain_name(name.as_ref())?;
        let mut temporary = OsString::from(".");
        temporary.push(name);
        temporary.push(format!(".{}.tmp", std::process::id()));
        let result = (|| {
            let file = self.open_file(&temporary, Access::Replace)?;
            let mut writer = std::io::BufWriter::with_capacity(256 * 1024, file);
            fill(&mut writer)?;
            writer.flush()?;
            let file = writer.into_inner().map_err(|error| error.into_error())?;
            file.sync_all()?;
            drop(file);
            self.rename(&temporary, self, name)?;
            self.sync()
        })();
        if result.is_err() {
            let _ = self.remove_file(&temporary);
        }
        result
    }
}

#[cfg(unix)]
fn folder_flags() -> rustix::fs::OFlags {
    use rustix::fs::OFlags;
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

#[cfg(unix)]
fn entry_stat(stat: &rustix::fs::Stat) -> EntryStat {
    use rustix::fs::FileType;
    // The fields' types differ between systems (and between 32 and 64
    // bits); none of their values is out of range.
    fn unsigned(value: impl TryInto<u64>) -> u64 {
        value.try_into().unwrap_or(0)
    }
    fn signed(value: impl TryInto<i64>) -> i64 {
        value.try_into().unwrap_or(0)
    }
    let kind = match FileType::from_raw_mode(stat.st_mode as _) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Folder,
        FileType::Symlink => EntryKind::Link,
        _ => EntryKind::Other,
    };
    EntryStat {
        kind,
        len: unsigned(stat.st_size),
        device: unsigned(stat.st_dev),
        inode: unsigned(stat.st_ino),
        links: unsigned(stat.st_nlink),
        modified_ns: signed(stat.st_mtime)
            .saturating_mul(1_000_000_000)
            .saturating_add(signed(stat.st_mtime_nsec)),
    }
}

/// Linux: the whole path in one call, refused by the kernel if any
/// component is a link or leaves the root. `None`: the walk must work it
/// out (something is missing or in the way, or `openat2` is not there).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn resolve_beneath(root: &fs_err::File, root_path: &Path, relative: &Path) -> Option<Folder> {
    use rustix::fs::{Mode, ResolveFlags};
    use rustix::io::Errno;
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Set once `openat2` proves missing (kernels before 5.6, some sandboxes).
    static UNAVAILABLE: AtomicBool = AtomicBool::new(false);
    if UNAVAILABLE.load(Ordering::Relaxed) {
        return None;
    }
    match rustix::fs::openat2(
        root,
        relative,
        folder_flags(),
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Some(Folder {
            file: fs_err::File::from_parts(std::fs::File::from(fd), root_path.join(relative)),
        }),
        Err(Errno::NOSYS | Errno::PERM) => {
            UNAVAILABLE.store(true, Ordering::Relaxed);
            None
        }
        Err(_) => None,
    }
}

#[cfg(unix)]
impl Folder {
    fn entry_path(&self, name: &OsStr) -> PathBuf {
        self.file.path().join(name)
    }

    /// The sub-folder `name`, opened without following a link; created when
    /// missing (with `create`), a link there replaced (with `create` and
    /// `may_replace`) or refused.
    fn child(&self, name: &OsStr, create: bool, may_replace: bool) -> io::Result<Folder> {
        use rustix::fs::{AtFlags, Mode, OFlags};
        use rustix::io::Errno;
        let path = self.entry_path(name);
        for _ in 0..ATTEMPTS {
            let error = match rustix::fs::openat(
                &self.file,
                name,
                folder_flags() | OFlags::NOFOLLOW,
                Mode::empty(),
            ) {
                Ok(fd) => {
                    return Ok(Folder {
                        file: fs_err::File::from_parts(std::fs::File::from(fd), path),
                    });
                }
                Err(error) => error,
            };
            if error == Errno::NOENT && !create {
                return Err(failed(error, "open directory", &path));
            }
            if error == Errno::NOENT {
                match rustix::fs::mkdirat(&self.file, name, Mode::RWXU | Mode::RWXG | Mode::RWXO) {
                    // The new entry lasts once this folder is synced.
                    Ok(()) => {
                        self.sync()?;
                        continue;
                    }
                    Err(Errno::EXIST) => continue,
                    Err(error) => return Err(failed(error, "create directory", &path)),
                }
            }
            // A link (ELOOP, or EMLINK on FreeBSD), a file (ENOTDIR), or
            // something else: look at what is there, without following it.
            match self.entry(name)?.map(|entry| entry.kind) {
                Some(EntryKind::Link) => {
                    let target = self.read_link(name);
                    if !create || !may_replace {
                        return Err(LinkInside {
                            path,
                            target,
                            refused: (!may_replace).then_some(
                                "it holds the database and the lock; make it a real folder, or use --db to keep the database elsewhere",
                            ),
                        }
                        .into_error());
                    }
                    match rustix::fs::unlinkat(&self.file, name, AtFlags::empty()) {
                        Ok(()) => replaced_link(&path, target.as_deref(), "folder"),
                        Err(Errno::NOENT) => {}
                        Err(error) => return Err(failed(error, "remove the link", &path)),
                    }
                }
                // Changed meanwhile (made by another transfer): look again.
                Some(EntryKind::Folder) | None => {}
                Some(EntryKind::File | EntryKind::Other) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!(
                            "{} is not a folder; vault-mirror keeps a folder there (move it away)",
                            path.display()
                        ),
                    ));
                }
            }
        }
        Err(failed(
            io::Error::other("it kept changing while it was opened"),
            "open directory",
            &path,
        ))
    }

    /// The metadata of `name`, links not followed; `None` when nothing is
    /// there.
    pub fn stat_entry(&self, name: impl AsRef<OsStr>) -> io::Result<Option<EntryStat>> {
        let name = plain_name(name.as_ref())?;
        match rustix::fs::statat(&self.file, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(entry_stat(&stat))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(error) => Err(failed(error, "query metadata of", &self.entry_path(name))),
        }
    }

    /// This folder's own metadata, from the descriptor held (whatever is
    /// at its path now).
    pub fn stat(&self) -> io::Result<EntryStat> {
        rustix::fs::fstat(&self.file)
            .map(|stat| entry_stat(&stat))
            .map_err(|error| failed(error, "query metadata of", self.path()))
    }

    /// Makes `name` a symbolic link to `target` (as written, so a relative
    /// target is relative to this folder), in one step; fails when `name`
    /// is taken. The error is the system's own, its number kept (it tells
    /// a disk without links from a real failure): the caller names paths.
    pub fn symlink(&self, target: &Path, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = plain_name(name.as_ref())?;
        rustix::fs::symlinkat(target, &self.file, name).map_err(io::Error::from)
    }

    /// Makes `to_name` in `to` a hard link to the file `name` of this
    /// folder, in one step; fails when `to_name` is taken. A link at
    /// `name` is linked itself, never followed. The error is the system's
    /// own, as for [`Folder::symlink`].
    pub fn hard_link(
        &self,
        name: impl AsRef<OsStr>,
        to: &Folder,
        to_name: impl AsRef<OsStr>,
    ) -> io::Result<()> {
        let (name, to_name) = (plain_name(name.as_ref())?, plain_name(to_name.as_ref())?);
        rustix::fs::linkat(
            &self.file,
            name,
            &to.file,
            to_name,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(io::Error::from)
    }

    /// Where the link `name` points (for messages).
    pub fn read_link(&self, name: impl AsRef<OsStr>) -> Option<PathBuf> {
        use std::os::unix::ffi::OsStringExt;
        rustix::fs::readlinkat(&self.file, name.as_ref(), Vec::new())
            .ok()
            .map(|target| PathBuf::from(OsString::from_vec(target.into_bytes())))
    }

    /// Opens the regular file `name` of this folder, never through a link
    /// (see [`Access`] for what a link there means).
    pub fn open_file(&self, name: impl AsRef<OsStr>, access: Access) -> io::Result<fs_err::File> {
        use rustix::fs::{Mode, OFlags};
        use rustix::io::Errno;
        let name = plain_name(name.as_ref())?;
        let path = self.entry_path(name);
        let (flags, action) = match access {
            Access::Read => (OFlags::RDONLY, "open file"),
            Access::Resume => (OFlags::RDWR | OFlags::CREATE, "create file"),
            Access::Replace => (
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
                "create file",
            ),
        };
        // NONBLOCK: opening a fifo planted in the archive must not hang
        // (it is refused just below); regular files ignore the flag.
        let flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let mode = Mode::RUSR | Mode::WUSR | Mode::RGRP | Mode::WGRP | Mode::ROTH | Mode::WOTH;
        for _ in 0..ATTEMPTS {
            let error = match rustix::fs::openat(&self.file, name, flags, mode) {
                Ok(fd) => {
                    let file = std::fs::File::from(fd);
                    let regular = rustix::fs::fstat(&file).is_ok_and(|stat| {
                        rustix::fs::FileType::from_raw_mode(stat.st_mode as _)
                            == rustix::fs::FileType::RegularFile
                    });
                    if !regular {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{} is not a regular file", path.display()),
                        ));
                    }
                    return Ok(fs_err::File::from_parts(file, path));
                }
                Err(error) => error,
            };
            if error == Errno::NOENT && access == Access::Read {
                return Err(failed(error, action, &path));
            }
            match self.entry(name)?.map(|entry| entry.kind) {
                Some(EntryKind::Link) => {
                    let target = self.read_link(name);
                    if access == Access::Read {
                        return Err(LinkInside {
                            path,
                            target,
                            refused: None,
                        }
                        .into_error());
                    }
                    match self.remove_file(name) {
                        Ok(()) => replaced_link(&path, target.as_deref(), "file"),
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        Err(error) => return Err(error),
                    }
                }
                _ => return Err(failed(error, action, &path)),
            }
        }
        Err(failed(
            io::Error::other("it kept changing while it was opened"),
            action,
            &path,
        ))
    }

    /// Renames `name` to `to_name` in `to` (a link is moved, never
    /// followed; an entry at `to_name` is replaced).
    pub fn rename(
        &self,
        name: impl AsRef<OsStr>,
        to: &Folder,
        to_name: impl AsRef<OsStr>,
    ) -> io::Result<()> {
        let (name, to_name) = (plain_name(name.as_ref())?, plain_name(to_name.as_ref())?);
        rustix::fs::renameat(&self.file, name, &to.file, to_name).map_err(|error| {
            let error = io::Error::from(error);
            io::Error::new(
                error.kind(),
                format!(
                    "failed to rename `{}` to `{}`: {error}",
                    self.entry_path(name).display(),
                    to.entry_path(to_name).display()
                ),
            )
        })
    }

    /// Removes the file (or link: never its target) `name`.
    pub fn remove_file(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = plain_name(name.as_ref())?;
        rustix::fs::unlinkat(&self.file, name, rustix::fs::AtFlags::empty())
            .map_err(|error| failed(error, "remove file", &self.entry_path(name)))
    }

    /// Removes the empty folder `name`.
    pub fn remove_folder(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = plain_name(name.as_ref())?;
        rustix::fs::unlinkat(&self.file, name, rustix::fs::AtFlags::REMOVEDIR)
            .map_err(|error| failed(error, "remove directory", &self.entry_path(name)))
    }

    /// The names in this folder.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        use std::os::unix::ffi::OsStrExt;
        let read = |error| failed(error, "read directory", self.path());
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.file).map_err(read)? {
            let entry = entry.map_err(read)?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// fsync, so renames and removals in it survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        crate::durable::sync_open_folder(&self.file)
    }
}

#[cfg(not(unix))]
impl Folder {
    fn entry_path(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    fn child(&self, name: &OsStr, create: bool, may_replace: bool) -> io::Result<Folder> {
        let path = self.entry_path(name);
        match self.entry(name)?.map(|entry| entry.kind) {
            Some(EntryKind::Folder) => {}
            Some(EntryKind::Link) => {
                let target = self.read_link(name);
                if !create || !may_replace {
                    return Err(LinkInside {
                        path,
                        target,
                        refused: (!may_replace).then_some(
                            "it holds the database and the lock; make it a real folder, or use --db to keep the database elsewhere",
                        ),
                    }
                    .into_error());
                }
                // A folder link on Windows is removed as a folder.
                fs_err::remove_file(&path).or_else(|_| fs_err::remove_dir(&path))?;
                replaced_link(&path, target.as_deref(), "folder");
                fs_err::create_dir(&path)?;
            }
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!(
                        "{} is not a folder; vault-mirror keeps a folder there (move it away)",
                        path.display()
                    ),
                ));
            }
            None if create => fs_err::create_dir(&path).or_else(|error| {
                if error.kind() == io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(error)
                }
            })?,
            None => return Err(not_found("open directory", &path)),
        }
        Ok(Folder { path })
    }

    pub fn stat_entry(&self, name: impl AsRef<OsStr>) -> io::Result<Option<EntryStat>> {
        let path = self.entry_path(plain_name(name.as_ref())?);
        match fs_err::symlink_metadata(&path) {
            Ok(metadata) => Ok(Some(entry_stat(&path, &metadata))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub fn stat(&self) -> io::Result<EntryStat> {
        fs_err::symlink_metadata(&self.path).map(|metadata| entry_stat(&self.path, &metadata))
    }

    pub fn symlink(&self, target: &Path, name: impl AsRef<OsStr>) -> io::Result<()> {
        let path = self.entry_path(plain_name(name.as_ref())?);
        #[cfg(windows)]
        return std::os::windows::fs::symlink_file(target, path);
        #[cfg(not(windows))]
        {
            let _ = (target, path);
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    pub fn hard_link(
        &self,
        name: impl AsRef<OsStr>,
        to: &Folder,
        to_name: impl AsRef<OsStr>,
    ) -> io::Result<()> {
        fs_err::hard_link(
            self.entry_path(plain_name(name.as_ref())?),
            to.entry_path(plain_name(to_name.as_ref())?),
        )
    }

    pub fn read_link(&self, name: impl AsRef<OsStr>) -> Option<PathBuf> {
        fs_err::read_link(self.entry_path(name.as_ref())).ok()
    }

    pub fn open_file(&self, name: impl AsRef<OsStr>, access: Access) -> io::Result<fs_err::File> {
        let name = plain_name(name.as_ref())?;
        let path = self.entry_path(name);
        if self.entry(name)?.map(|entry| entry.kind) == Some(EntryKind::Link) {
            let target = self.read_link(name);
            if access == Access::Read {
                return Err(LinkInside {
                    path,
                    target,
                    refused: None,
                }
                .into_error());
            }
            fs_err::remove_file(&path)?;
            replaced_link(&path, target.as_deref(), "file");
        }
        let mut options = fs_err::OpenOptions::new();
        match access {
            Access::Read => options.read(true),
            Access::Resume => options.read(true).write(true).create(true).truncate(false),
            Access::Replace => options.write(true).create(true).truncate(true),
        };
        options.open(&path)
    }

    pub fn rename(
        &self,
        name: impl AsRef<OsStr>,
        to: &Folder,
        to_name: impl AsRef<OsStr>,
    ) -> io::Result<()> {
        let from = self.entry_path(plain_name(name.as_ref())?);
        let to = to.entry_path(plain_name(to_name.as_ref())?);
        // std, not fs-err, whose errors lose the OS error number
        // `held_open` reads; the message names both paths as fs-err's do.
        #[expect(
            clippy::disallowed_methods,
            reason = "the error names both paths below, after `held_open` read its number"
        )]
        std::fs::rename(&from, &to).map_err(|error| {
            let error = held_open(error);
            io::Error::new(
                error.kind(),
                format!(
                    "failed to rename file from `{}` to `{}`: {error}",
                    from.display(),
                    to.display()
                ),
            )
        })
    }

    pub fn remove_file(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let path = self.entry_path(plain_name(name.as_ref())?);
        #[expect(
            clippy::disallowed_methods,
            reason = "the error is named by `failed` after `held_open` read its number"
        )]
        std::fs::remove_file(&path).map_err(|error| failed(held_open(error), "remove file", &path))
    }

    pub fn remove_folder(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        fs_err::remove_dir(self.entry_path(plain_name(name.as_ref())?))
    }

    pub fn names(&self) -> io::Result<Vec<OsString>> {
        fs_err::read_dir(&self.path)?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect()
    }

    pub fn sync(&self) -> io::Result<()> {
        crate::durable::sync_folder(&self.path)
    }
}

/// On Windows a file another program holds open (a picture in a viewer)
/// cannot be renamed or removed: the error says so and what to do. The
/// step fails whole (the file and the new bytes beside it stay as they
/// are), so the next run does it again.
#[cfg(not(unix))]
fn held_open(error: io::Error) -> io::Error {
    /// `ERROR_SHARING_VIOLATION`, `ERROR_LOCK_VIOLATION`.
    const HELD: [i32; 2] = [32, 33];
    if cfg!(windows)
        && error
            .raw_os_error()
            .is_some_and(|code| HELD.contains(&code))
    {
        return io::Error::new(
            error.kind(),
            format!(
                "{error}; another program has the file open (a viewer?): close it, and the next run does this again"
            ),
        );
    }
    error
}

#[cfg(not(unix))]
fn entry_stat(path: &Path, metadata: &std::fs::Metadata) -> EntryStat {
    let kind = if metadata.file_type().is_symlink() {
        EntryKind::Link
    } else if metadata.is_file() {
        EntryKind::File
    } else if metadata.is_dir() {
        EntryKind::Folder
    } else {
        EntryKind::Other
    };
    let modified_ns = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| {
            i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
        });
    let (device, inode, links) = match kind {
        EntryKind::File | EntryKind::Folder => identity(path),
        EntryKind::Link | EntryKind::Other => None,
    }
    .unwrap_or((0, 0, 1));
    EntryStat {
        kind,
        len: metadata.len(),
        device,
        inode,
        links,
        modified_ns,
    }
}

/// A file's or folder's volume, file index and number of names
/// (`GetFileInformationByHandle`, which std keeps unstable): what tells
/// a hard link of a view from a file of someone else's. `None` when the
/// entry cannot be opened (then nothing is taken for the same file).
#[cfg(windows)]
fn identity(path: &Path) -> Option<(u64, u64, u64)> {
    let handle = winapi_util::Handle::from_path_any(path).ok()?;
    let information = winapi_util::file::information(&handle).ok()?;
    Some((
        information.volume_serial_number(),
        information.file_index(),
        information.number_of_links(),
    ))
}

#[cfg(not(any(unix, windows)))]
fn identity(_path: &Path) -> Option<(u64, u64, u64)> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// An archive and, beside it, a folder with one file that must never change.
    fn archive_and_outside() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("full.jpg"), b"not yours").unwrap();
        (dir, out, outside)
    }

    fn assert_untouched(outside: &Path) {
        let names: Vec<_> = std::fs::read_dir(outside)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["full.jpg"]);
        assert_eq!(
            std::fs::read(outside.join("full.jpg")).unwrap(),
            b"not yours"
        );
    }

    #[test]
    fn folders_are_made_and_reached_without_following_links() {
        let (_dir, out, outside) = archive_and_outside();
        let archive = ArchiveDir::open(&out);
        std::fs::create_dir_all(out.join("media")).unwrap();
        symlink(&outside, out.join("media/1")).unwrap();

        // Reading: the link is an error naming it, and nothing is read.
        let error = archive.folder(Path::new("media/1")).err().unwrap();
        let link = LinkInside::of(&error).expect("a link error");
        assert_eq!(link.path, out.join("media/1"));
        assert_eq!(link.target.as_deref(), Some(outside.as_path()));
        assert!(error.to_string().contains("does not follow links"));
        assert!(archive.entry(Path::new("media/1/full.jpg")).is_err());
        assert!(!archive.has_file(Path::new("media/1/full.jpg"), 9));
        assert!(
            archive
                .open_file(Path::new("media/1/full.jpg"), Access::Read)
                .is_err()
        );

        // Writing: the link is replaced by a real folder.
        let folder = archive.create_folder(Path::new("media/1")).unwrap();
        assert!(
            std::fs::symlink_metadata(out.join("media/1"))
                .unwrap()
                .is_dir()
        );
        let mut file = folder.open_file("full.jpg.part", Access::Resume).unwrap();
        file.write_all(b"ours").unwrap();
        folder.rename("full.jpg.part", &folder, "full.jpg").unwrap();
        assert!(archive.has_file(Path::new("media/1/full.jpg"), 4));
        assert_untouched(&outside);
    }

    #[test]
    fn a_link_at_a_file_is_replaced_when_writing_and_refused_when_reading() {
        let (_dir, out, outside) = archive_and_outside();
        let archive = ArchiveDir::open(&out);
        let folder = archive.create_folder(Path::new("media/1")).unwrap();
        symlink(outside.join("full.jpg"), out.join("media/1/full.jpg")).unwrap();
        symlink(outside.join("full.jpg"), out.join("media/1/full.jpg.part")).unwrap();

        assert_eq!(
            folder.entry("full.jpg").unwrap().unwrap().kind,
            EntryKind::Link
        );
        let error = folder.open_file("full.jpg", Access::Read).err().unwrap();
        assert!(LinkInside::of(&error).is_some(), "{error}");
        let mut part = folder.open_file("full.jpg.part", Access::Resume).unwrap();
        part.write_all(b"fresh").unwrap();
        assert_eq!(
            folder.entry("full.jpg.part").unwrap().unwrap(),
            Entry {
                kind: EntryKind::File,
                len: 5
            }
        );
        archive
            .write_atomically(Path::new("media/1/full.jpg"), |writer| {
                writer.write_all(b"new")
            })
            .unwrap();
        assert_eq!(std::fs::read(out.join("media/1/full.jpg")).unwrap(), b"new");
        assert_untouched(&outside);
    }

    #[test]
    fn the_walk_alone_does_the_same() {
        // The fallback where openat2 is missing: one component at a time.
        let (_dir, out, outside) = archive_and_outside();
        let archive = ArchiveDir::open(&out);
        std::fs::create_dir_all(out.join("media")).unwrap();
        symlink(&outside, out.join("media/1")).unwrap();
        let root = Folder {
            file: archive.root().unwrap().try_clone().unwrap(),
        };
        let media = root.child(OsStr::new("media"), false, true).unwrap();
        let error = media.child(OsStr::new("1"), false, true).err().unwrap();
        assert!(LinkInside::of(&error).is_some(), "{error}");
        let missing = media.child(OsStr::new("2"), false, true).err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let made = media.child(OsStr::new("1"), true, true).unwrap();
        assert_eq!(made.path(), out.join("media/1"));
        assert!(
            std::fs::symlink_metadata(out.join("media/1"))
                .unwrap()
                .is_dir()
        );
        std::fs::write(out.join("media/file"), b"").unwrap();
        let file = media.child(OsStr::new("file"), true, true).err().unwrap();
        assert_eq!(file.kind(), io::ErrorKind::NotADirectory);
        assert_untouched(&outside);
    }

    #[test]
    fn the_state_folder_is_never_replaced_and_paths_stay_inside() {
        let (_dir, out, outside) = archive_and_outside();
        let archive = ArchiveDir::open(&out);
        symlink(&outside, out.join(STATE_FOLDER)).unwrap();
        let error = archive
            .create_folder(&quarantine_path("1", OsStr::new("full.jpg")))
            .err()
            .unwrap();
        assert!(error.to_string().contains("--db"), "{error}");
        assert!(
            std::fs::symlink_metadata(out.join(STATE_FOLDER))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        for bad in ["../outside", "/etc", "media/../../outside"] {
            assert!(archive.folder(Path::new(bad)).is_err(), "{bad}");
        }
        let root = archive.folder(Path::new("")).unwrap().unwrap();
        assert!(root.entry("../outside").is_err());
        assert!(root.open_file("a/b", Access::Replace).is_err());
        assert_untouched(&outside);
    }

    #[test]
    fn links_are_made_and_entries_listed_relative_to_the_folder() {
        let (_dir, out, outside) = archive_and_outside();
        let archive = ArchiveDir::open(&out);
        let media = archive.create_folder(Path::new("media/1")).unwrap();
        media
            .write_atomically("full.jpg", |writer| writer.write_all(b"ours"))
            .unwrap();
        let lists = archive.create_folder(Path::new("lists")).unwrap();
        // A link where a view folder goes is refused when only opened,
        // replaced when made; its target is untouched.
        symlink(&outside, out.join("lists/1-a")).unwrap();
        assert!(LinkInside::of(&lists.open_folder("1-a").err().unwrap()).is_some());
        assert!(lists.open_folder("2-b").unwrap().is_none());
        let view = lists.create_folder("1-a").unwrap();
        assert!(lists.stat_entry("1-a").unwrap().unwrap().kind == EntryKind::Folder);
        // `.vault-mirror` is never replaced.
        symlink(&outside, out.join("lists").join(STATE_FOLDER)).unwrap();
        let refused = lists.create_folder(STATE_FOLDER).err().unwrap();
        assert!(refused.to_string().contains("--db"), "{refused}");
        lists.remove_file(STATE_FOLDER).unwrap();

        view.symlink(Path::new("../../media/1/full.jpg"), "1.full.jpg")
            .unwrap();
        media.hard_link("full.jpg", &view, "1.hard.jpg").unwrap();
        // Made only under a free name.
        let taken = view
            .symlink(Path::new("elsewhere"), "1.full.jpg")
            .err()
            .unwrap();
        assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists);
        assert!(media.hard_link("full.jpg", &view, "1.hard.jpg").is_err());
        assert_eq!(
            std::fs::read(out.join("lists/1-a/1.full.jpg")).unwrap(),
            b"ours"
        );

        let mut entries = view.entries().unwrap();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let file = media.stat_entry("full.jpg").unwrap().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "1.full.jpg");
        assert_eq!(entries[0].1.kind, EntryKind::Link);
        assert_eq!(entries[1].0, "1.hard.jpg");
        assert_eq!(entries[1].1, file);
        assert_eq!((file.kind, file.len, file.links), (EntryKind::File, 4, 2));
        assert_eq!(
            view.read_link("1.full.jpg").as_deref(),
            Some(Path::new("../../media/1/full.jpg"))
        );

        // The folder's own stamp, from the descriptor held: an entry
        // removed changes its time, and its inode is the path's.
        let stamp = view.stat().unwrap();
        assert_eq!(stamp.kind, EntryKind::Folder);
        assert_eq!(stamp, lists.stat_entry("1-a").unwrap().unwrap());
        view.remove_file("1.hard.jpg").unwrap();
        view.remove_file("1.full.jpg").unwrap();
        assert!(view.stat().unwrap().modified_ns >= stamp.modified_ns);
        assert_eq!(view.stat().unwrap().inode, stamp.inode);
        lists.remove_folder("1-a").unwrap();
        assert!(lists.entry("1-a").unwrap().is_none());
        assert_untouched(&outside);
    }

    #[test]
    fn a_fifo_is_refused_not_read() {
        let (_dir, out, _outside) = archive_and_outside();
        let archive = ArchiveDir::open(&out);
        let folder = archive.create_folder(Path::new("media/1")).unwrap();
        rustix::fs::mkfifoat(&folder.file, "full.jpg", rustix::fs::Mode::RUSR).unwrap();
        let error = folder.open_file("full.jpg", Access::Read).err().unwrap();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }
}
