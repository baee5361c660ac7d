//! Per-list views: `lists/<list id>-<slug>/` holds one relative link per
//! verified file of the list's current members, named
//! `<media dir>.<label>.<ext>`, pointing at `../../media/<media dir>/…`
//! (hard links where the file system refuses symbolic ones). Where it
//! makes no link at all (exFAT and FAT drives, some network shares), each
//! view is an index instead: an `index.html` to browse and a `files.txt`
//! to script, one relative path into `media/` per file, so a run there
//! still succeeds.
//!
//! Invariants:
//! - `lists/` is ours and derived: [`update_views`] makes it match the
//!   database after every run (links added, stale ones and views of lists
//!   gone upstream removed). It never removes bytes: a regular file there
//!   is removed only when it is one of several hard links to its bytes, or
//!   an index file of ours (recognised by its content, so a person's own
//!   `index.html` is never taken for one); anything else unexpected is
//!   left alone and reported.
//! - What links the disk makes is found once per run by making one
//!   ([`probe_links`]), judged by the error's kind, never by the file
//!   system's name; every view of the run takes that form, and a view
//!   whose form changed (the archive moved to a disk with or without
//!   links) is rewritten, its old entries removed.
//! - A view is read only when it may differ: the database keeps, per view,
//!   a digest of the files it is made from and its folder's inode and
//!   modification time after it was last written (`view_state`). Any
//!   entry added, removed or renamed in the folder changes that time, and
//!   a file verified anew changes the digest; a view holding anything not
//!   ours is always read (so it is reported each run). Stamps are kept
//!   only once the clock has moved past them (a change in the same tick
//!   would not show), and never on file systems with whole-second times.
//! - Links only ever point at checked paths under `media/` (see
//!   [`super::archive_path`]), and `lists/` and its views are real
//!   folders, reached and made through [`ArchiveDir`]: a link in their
//!   place is reported and replaced, never followed. Every step inside
//!   them (listing, reading an index file, removing, making a link, the
//!   folder's stamp) is taken relative to a [`Folder`] held open, never by
//!   path, and so is the source of a hard link under `media/`: nothing is
//!   read, removed or made through a link, even one swapped in meanwhile.
//! - View names are unique per list id whatever the list names: the id is
//!   written with [`safe_name`] and its `-` escaped as `~2d`, so the first
//!   `-` of a view name always ends the id; the slug is readable only.
//! - A link is made only under a free name (a wrong entry of ours is
//!   removed first), in one step: creating a link is atomic, so no reader
//!   ever sees half of one.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive::dir::{Access, EntryKind, EntryStat, STATE_FOLDER, split_file};
use crate::archive::paths::key_of;
use crate::archive::paths::safe_name;
use crate::archive::view_index::Wanted;
use crate::archive::view_index::{self, IndexFile, LIST_NAME, PAGE_NAME, PAGE_VERSION};
use crate::archive::{Archive, ArchiveDir, ArchiveError, Folder, archive_path};
use crate::store::{Store, ViewState};

/// The folder of the views, under the archive root.
const LISTS: &str = "lists";
/// Longest slug kept from a list name.
const MAX_SLUG: usize = 48;
/// Longest id part of a view name before it is replaced by a digest.
const MAX_ID_PART: usize = 100;

/// What updating the views did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ViewsSummary {
    /// Views (one per live list).
    pub lists: usize,
    /// Links in all views after the update.
    pub links: usize,
    pub added: usize,
    pub removed: usize,
    /// Links made as hard links because symbolic links failed.
    pub hard_links: usize,
    /// Views written as an index (`index.html` and `files.txt`) because
    /// the file system makes no links; `links` then counts their entries.
    pub indexes: usize,
    /// Entries under `lists/` that are not ours and were left alone.
    pub left_alone: Vec<String>,
}

impl ViewsSummary {
    /// Counts an index view going from `old_list` (its `files.txt`, if
    /// there was one) to `new_list`, which has `entries` entries.
    pub fn count_index(&mut self, old_list: Option<&[u8]>, new_list: &str, entries: usize) {
        let before: BTreeSet<&str> = old_list
            .map(view_index::list_lines)
            .into_iter()
            .flatten()
            .collect();
        let after: BTreeSet<&str> = view_index::list_lines(new_list.as_bytes()).collect();
        self.added += after.difference(&before).count();
        self.removed += before.difference(&after).count();
        self.links += entries;
    }
}

/// The one line a run on a disk without links says, once (its views
/// are indexes then).
pub const NO_LINKS_NOTE: &str = "the archive's disk makes neither symbolic nor hard links, so each \
list view is an index instead: lists/<list>/index.html to browse and files.txt to script, \
both pointing into media/; hint: exFAT and FAT drives and some network shares cannot hold \
links; on a disk that can (ext4, APFS, NTFS…) the next run writes links again";

/// What a view is made of, the same for every view of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// Symbolic links (a hard link where one fails).
    Symbolic,
    /// Hard links: this disk refuses symbolic ones.
    Hard,
    /// No link works here: an index of relative paths.
    Index,
}

/// A readable, file-system-safe slug of a list name: lowercase ASCII
/// letters and digits, runs of anything else as one `-`, at most 48
/// characters; `list` when nothing is left.
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if slug.len() >= MAX_SLUG {
                break;
            }
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "list".to_owned()
    } else {
        slug.to_owned()
    }
}

/// The folder name of a list's view: `<list id>-<slug>` (see the module
/// docs for why ids stay unique).
pub fn view_name(list_id: &str, name: &str) -> String {
    let mut id = safe_name(list_id).replace('-', "~2d");
    if id.len() > MAX_ID_PART {
        let digest = hex::encode(Sha256::digest(list_id.as_bytes()));
        id = format!("~~{}", &digest[..32]);
    }
    format!("{id}-{}", slug(name))
}

/// Makes `<out>/lists/` match the database: one view per live list, one
/// link per verified file (present on disk) of its current members.
pub fn update_views(store: &Store, out: &Path) -> Result<ViewsSummary, ArchiveError> {
    update_views_with(store, out, None)
}

/// The state a view was just written in: its digest, and its folder's
/// identity and time (whole-second times are never trusted: a file system
/// whose clock ticks that coarsely could hide a change in the same
/// second, so such a view is read every run).
fn written_state(folder: &Folder, digest: String, links: usize) -> Result<ViewState, ArchiveError> {
    let (folder_inode, mut folder_mtime) = folder_stamp(&folder.stat()?);
    if folder_mtime % 1_000_000_000 == 0 {
        folder_mtime = i64::MIN;
    }
    Ok(ViewState {
        digest,
        folder_inode,
        folder_mtime,
        links: i64::try_from(links).unwrap_or(i64::MAX),
    })
}

/// Views of lists gone upstream, or renamed: their links and index files
/// go, and the folder too once empty. Returns whether a folder went.
fn remove_unwanted_views(
    archive: &ArchiveDir,
    lists: &Folder,
    wanted: &BTreeMap<String, (String, String)>,
    summary: &mut ViewsSummary,
) -> Result<bool, ArchiveError> {
    let mut removed = false;
    for (name, stat) in lists.entries()? {
        if wanted.contains_key(name.to_string_lossy().as_ref()) {
            continue;
        }
        if stat.kind != EntryKind::Folder {
            summary
                .left_alone
                .push(relative_to(archive.path(), &lists.path().join(&name)));
            continue;
        }
        let Some(folder) = lists.open_folder(&name)? else {
            continue;
        };
        // The link form with no link wanted makes none, and removes index
        // files alike.
        sync_view(
            archive,
            &folder,
            "",
            &BTreeMap::new(),
            Form::Symbolic,
            summary,
        )?;
        drop(folder);
        if lists.remove_folder(&name).is_ok() {
            removed = true;
        }
    }
    Ok(removed)
}

/// [`update_views`] in `forced` form, or the form [`probe_links`] finds.
fn update_views_with(
    store: &Store,
    out: &Path,
    forced: Option<Form>,
) -> Result<ViewsSummary, ArchiveError> {
    let wanted = wanted_views(store)?;
    let archive = ArchiveDir::open(out);
    let mut summary = ViewsSummary {
        lists: wanted.len(),
        ..ViewsSummary::default()
    };
    if wanted.is_empty() && matches!(archive.entry(Path::new(LISTS)), Ok(None) | Err(_)) {
        return Ok(summary);
    }
    // A link in its place is replaced, never followed.
    let lists = archive.create_folder(Path::new(LISTS))?;
    let mut form = match forced {
        Some(form) => form,
        None => probe_links(&archive)?,
    };
    let mut last_written = store.view_states()?;
    let mut written = Vec::new();
    let mut newest_stamp = i64::MIN;
    let mut folders_changed = false;
    for (view, (list_id, name)) in &wanted {
        let mut digest = view_digest(store, list_id, name, form)?;
        let found = lists.entry(view)?.map(|entry| entry.kind);
        let held = match found {
            Some(EntryKind::Folder) => lists.open_folder(view).ok().flatten(),
            Some(EntryKind::File | EntryKind::Other) => {
                summary
                    .left_alone
                    .push(relative_to(out, &lists.path().join(view)));
                continue;
            }
            Some(EntryKind::Link) | None => None,
        };
        let folder = match held {
            Some(folder) => {
                // Nothing to do when the view was written from the same
                // files and its folder has not changed since.
                if let Some(state) = last_written.remove(view)
                    && state.digest == digest
                    && folder_stamp(&folder.stat()?) == (state.folder_inode, state.folder_mtime)
                {
                    summary.links += usize::try_from(state.links).unwrap_or(0);
                    summary.indexes += usize::from(form == Form::Index);
                    written.push((view.clone(), state));
                    continue;
                }
                folder
            }
            // Missing, or a link (replaced, never followed).
            None => {
                folders_changed = true;
                lists.create_folder(view)?
            }
        };
        let files = present_files(store, &archive, list_id)?;
        let (links_before, left_alone_before) = (summary.links, summary.left_alone.len());
        if sync_view(&archive, &folder, name, &files, form, &mut summary)? == Synced::NoLinks {
            // Links failed here although the probe made one (`lists/` on
            // another mount than `media/`): this view and the rest of the
            // run are indexes. What the first try did stays counted, but
            // not twice.
            summary.links = links_before;
            summary.left_alone.truncate(left_alone_before);
            form = Form::Index;
            digest = view_digest(store, list_id, name, form)?;
            sync_view(&archive, &folder, name, &files, form, &mut summary)?;
        }
        summary.indexes += usize::from(form == Form::Index);
        // A view holding things not ours is read in full each time, so
        // they are reported each time.
        if summary.left_alone.len() == left_alone_before {
            let state = written_state(&folder, digest, summary.links - links_before)?;
            newest_stamp = newest_stamp.max(state.folder_mtime);
            written.push((view.clone(), state));
        }
    }
    if remove_unwanted_views(&archive, &lists, &wanted, &mut summary)? {
        folders_changed = true;
    }
    if folders_changed {
        lists.sync()?;
    }
    wait_past(newest_stamp);
    store.replace_view_states(&written)?;
    summary.left_alone.sort();
    Ok(summary)
}

/// sha256 of what a list's view is made from: each verified file of its
/// current members, with its size and when it was verified (a file fetched
/// anew changes the digest, even with the same bytes); for an index, also
/// the list's name (the page's title) and the page's version. Links of
/// either kind hash alike, so a view of links is not rewritten for being
/// of hard ones.
fn view_digest(
    store: &Store,
    list_id: &str,
    name: &str,
    form: Form,
) -> Result<String, ArchiveError> {
    let mut hasher = Sha256::new();
    if form == Form::Index {
        hasher.update(PAGE_VERSION.as_bytes());
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([0]);
    }
    store.view_files(list_id, |file| {
        hasher.update(file.local_path.as_bytes());
        hasher.update([0]);
        hasher.update(file.size.to_le_bytes());
        hasher.update(file.verified_at.unwrap_or(-1).to_le_bytes());
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// Entry name → file (relative to the archive root) of a list's view:
/// each verified file of its current members that is on disk, a regular
/// file at the size it was verified at.
fn present_files(
    store: &Store,
    archive: &ArchiveDir,
    list_id: &str,
) -> Result<BTreeMap<String, Wanted>, ArchiveError> {
    present_files_with(store, list_id, &|path, size| archive.has_file(path, size))
}

/// [`present_files`] of an archive elsewhere (object storage), where
/// `has_file(path, size)` says whether a file is there at its size.
pub fn present_files_with(
    store: &Store,
    list_id: &str,
    has_file: &dyn Fn(&Path, u64) -> bool,
) -> Result<BTreeMap<String, Wanted>, ArchiveError> {
    let mut links = BTreeMap::new();
    store.view_files(list_id, |file| {
        let Ok(path) = archive_path(file.local_path) else {
            return;
        };
        if !path.starts_with("media") {
            return;
        }
        let Ok(size) = u64::try_from(file.size) else {
            return;
        };
        if !has_file(&path, size) {
            return;
        }
        let components: Vec<String> = path
            .components()
            .skip(1)
            .map(|component| component.as_os_str().to_string_lossy().into_owned())
            .collect();
        links.insert(components.join("."), Wanted { target: path, size });
    })?;
    Ok(links)
}

/// The views of an archive that holds no links (object storage): each
/// live list gets the index form (`lists/<view>/index.html` to browse,
/// `lists/<view>/files.txt` to script), each entry a relative path into
/// `media/`. A view is rewritten only when its file list changes; only
/// `index.html` and `files.txt` under `lists/` are ever deleted (views of
/// lists gone), nothing else there.
pub async fn update_index_views(
    archive: &Archive,
    store: &Store,
) -> Result<ViewsSummary, ArchiveError> {
    let listed = archive.files_under("media").await?;
    let existing = archive.files_under("lists").await?;
    let has_file = |path: &Path, size: u64| listed.get(&key_of(path)) == Some(&size);
    let wanted = wanted_views(store)?;
    let mut summary = ViewsSummary::default();
    for (view, (list_id, name)) in &wanted {
        let files = present_files_with(store, list_id, &has_file)?;
        let list_key = format!("lists/{view}/{LIST_NAME}");
        let page_key = format!("lists/{view}/{PAGE_NAME}");
        let new_list = view_index::file_list(&files);
        let old_list = match existing.contains_key(&list_key) {
            true => archive.read_small(&list_key).await?,
            false => None,
        };
        summary.count_index(old_list.as_deref(), &new_list, files.len());
        summary.indexes += 1;
        summary.lists += 1;
        if old_list.as_deref() != Some(new_list.as_bytes()) || !existing.contains_key(&page_key) {
            let page = view_index::page(name, &files);
            archive
                .write(
                    &list_key,
                    new_list.into_bytes(),
                    "text/plain; charset=utf-8",
                )
                .await?;
            archive
                .write(&page_key, page.into_bytes(), "text/html; charset=utf-8")
                .await?;
        }
    }
    for key in existing.keys() {
        let Some((view, name)) = key
            .strip_prefix("lists/")
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        if !wanted.contains_key(view) && (name == PAGE_NAME || name == LIST_NAME) {
            archive.delete(key).await?;
        }
    }
    Ok(summary)
}

/// The view of each live list: view name → (list id, list name).
fn wanted_views(store: &Store) -> Result<BTreeMap<String, (String, String)>, ArchiveError> {
    Ok(store
        .archive_lists()?
        .into_iter()
        .filter(|list| list.gone_at.is_none())
        .map(|list| {
            (
                view_name(&list.list_id, &list.name),
                (list.list_id, list.name),
            )
        })
        .collect())
}

/// A change in the same tick of the clock as our last write (at
/// `newest_stamp`, in ns) would leave a folder's time as it is: the stamps
/// hold only once the clock has moved on, so this waits for that (a few ms
/// at most) before anyone else may touch the views (the caller holds the
/// archive lock).
fn wait_past(newest_stamp: i64) {
    let since = now_ns().saturating_sub(newest_stamp);
    if since < CLOCK_TICK_NS {
        std::thread::sleep(std::time::Duration::from_nanos(
            u64::try_from(CLOCK_TICK_NS - since).unwrap_or(0),
        ));
    }
}

/// Longer than a step of the kernel's coarse clock (1–10 ms), which sets
/// file times on Linux.
const CLOCK_TICK_NS: i64 = 20_000_000;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64)
}

/// A folder's identity and last change: (inode, modification time in
/// nanoseconds). Adding, removing or renaming an entry changes the time.
fn folder_stamp(stat: &EntryStat) -> (i64, i64) {
    (
        i64::from_ne_bytes(stat.inode.to_ne_bytes()),
        stat.modified_ns,
    )
}

/// How one view folder's update went.
#[derive(Debug, PartialEq, Eq)]
enum Synced {
    Done,
    /// In a link form, a link could not be made because this disk makes
    /// none (see [`links_unsupported`]): write the view as an index.
    NoLinks,
}

/// Makes one view folder hold exactly `files` in `form`: links to them, or
/// an index of them (`name` is the list's, the page's title). Entries of
/// ours that do not belong (stale links, an index where links are made,
/// links where an index is) are removed.
fn sync_view(
    archive: &ArchiveDir,
    folder: &Folder,
    name: &str,
    files: &BTreeMap<String, Wanted>,
    form: Form,
    summary: &mut ViewsSummary,
) -> Result<Synced, ArchiveError> {
    let mut changed = false;
    // Names already taken: by the right link, or by something not ours.
    let mut taken = BTreeSet::new();
    // The index as it is, when it is ours.
    let mut page = None;
    let mut list = None;
    for (entry, stat) in folder.entries()? {
        let entry_name = entry.to_string_lossy().into_owned();
        if form != Form::Index
            && let Some(wanted) = files.get(&entry_name)
            && points_at(archive, folder, &entry, &stat, &wanted.target)
        {
            taken.insert(entry_name);
            summary.links += 1;
            continue;
        }
        match classify(folder, &entry_name, &stat) {
            Found::Link => {
                folder.remove_file(&entry)?;
                summary.removed += 1;
                changed = true;
            }
            Found::Index(IndexFile::Page(bytes)) if form == Form::Index => page = Some(bytes),
            Found::Index(IndexFile::List(bytes)) if form == Form::Index => list = Some(bytes),
            Found::Index(file) => {
                // Not wanted in this form, or what a stopped write left.
                folder.remove_file(&entry)?;
                if let IndexFile::List(bytes) = file {
                    summary.removed += view_index::list_lines(&bytes).count();
                }
                changed = true;
            }
            Found::Foreign => {
                summary
                    .left_alone
                    .push(relative_to(archive.path(), &folder.path().join(&entry)));
                taken.insert(entry_name);
            }
        }
    }
    if form == Form::Index {
        write_index(folder, name, files, page, list, &taken, summary)?;
    } else {
        for (entry_name, wanted) in files {
            if taken.contains(entry_name) {
                continue;
            }
            let from_view = Path::new("../..").join(&wanted.target);
            let at = (folder, OsStr::new(entry_name));
            match make_link(archive, &from_view, &wanted.target, at, form)? {
                Linked::Unsupported => {
                    if changed {
                        folder.sync()?;
                    }
                    return Ok(Synced::NoLinks);
                }
                linked => summary.hard_links += usize::from(linked == Linked::Hard),
            }
            summary.added += 1;
            summary.links += 1;
            changed = true;
        }
    }
    if changed {
        folder.sync()?;
    }
    Ok(Synced::Done)
}

/// Writes a view's `files.txt` and `index.html` where they differ from
/// what they hold (`list`, `page`: ours as found), so an unchanged view is
/// not rewritten. A name taken by a file not ours is left to it.
fn write_index(
    folder: &Folder,
    name: &str,
    files: &BTreeMap<String, Wanted>,
    page: Option<Vec<u8>>,
    list: Option<Vec<u8>>,
    taken: &BTreeSet<String>,
    summary: &mut ViewsSummary,
) -> Result<(), ArchiveError> {
    let new_list = view_index::file_list(files);
    summary.count_index(list.as_deref(), &new_list, files.len());
    let new_page = view_index::page(name, files);
    for (file_name, old, new) in [(LIST_NAME, list, new_list), (PAGE_NAME, page, new_page)] {
        if taken.contains(file_name) || old.as_deref() == Some(new.as_bytes()) {
            continue;
        }
        folder.write_atomically(file_name, |writer| writer.write_all(new.as_bytes()))?;
    }
    Ok(())
}

/// What an entry of a view folder is to us.
enum Found {
    /// A link: ours to replace or remove.
    Link,
    /// An index file of ours.
    Index(IndexFile),
    /// Anything else: not ours, left alone.
    Foreign,
}

fn classify(folder: &Folder, name: &str, stat: &EntryStat) -> Found {
    if is_our_link(stat) {
        return Found::Link;
    }
    view_index::recognise(folder, name, stat.entry()).map_or(Found::Foreign, Found::Index)
}

/// Whether the entry `name` of `folder` already is the link we want: a
/// symbolic link with exactly our relative target, or a hard link to the
/// bytes of `target` (relative to the archive root).
fn points_at(
    archive: &ArchiveDir,
    folder: &Folder,
    name: &OsStr,
    stat: &EntryStat,
    target: &Path,
) -> bool {
    if stat.kind == EntryKind::Link {
        return folder
            .read_link(name)
            .is_some_and(|found| found == Path::new("../..").join(target));
    }
    same_file(archive, stat, target)
}

/// Whether `stat` is of the regular file at `target` (relative to the
/// archive root, reached without following links). Never where files
/// have no known identity (neither unix nor Windows).
pub(super) fn same_file(archive: &ArchiveDir, stat: &EntryStat, target: &Path) -> bool {
    if stat.kind != EntryKind::File || stat.inode == 0 {
        return false;
    }
    let Ok((folder, name)) = split_file(target) else {
        return false;
    };
    let found = archive
        .folder(folder)
        .ok()
        .flatten()
        .and_then(|folder| folder.stat_entry(name).ok().flatten());
    found.is_some_and(|other| {
        other.kind == EntryKind::File && other.device == stat.device && other.inode == stat.inode
    })
}

/// Symbolic links are ours to remove; a regular file only when other
/// names hold its bytes too (a hard link), so no bytes are ever lost.
/// (Where the number of names is not known, it is 1: not ours.)
pub(super) fn is_our_link(stat: &EntryStat) -> bool {
    stat.kind == EntryKind::Link || (stat.kind == EntryKind::File && stat.links > 1)
}

/// What [`make_link`] made.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Linked {
    Symbolic,
    Hard,
    /// Nothing: this disk makes neither kind of link.
    Unsupported,
}

/// Creates the link `at` (a folder and a name in it) in a link `form`: a
/// symbolic one to `from_view` (a hard one to `target`, relative to the
/// archive root, if that fails), or a hard one. Fails only on an error
/// other than the disk making no links.
pub(super) fn make_link(
    archive: &ArchiveDir,
    from_view: &Path,
    target: &Path,
    at: (&Folder, &OsStr),
    form: Form,
) -> std::io::Result<Linked> {
    let symbolic_error = if form == Form::Symbolic {
        match symlink(from_view, at) {
            Ok(()) => return Ok(Linked::Symbolic),
            Err(error) => Some(error),
        }
    } else {
        None
    };
    match hard_link(archive, target, at) {
        Ok(()) => Ok(Linked::Hard),
        Err(hard_error)
            if links_unsupported(&hard_error)
                && symbolic_error.as_ref().is_none_or(links_unsupported) =>
        {
            Ok(Linked::Unsupported)
        }
        Err(hard_error) => {
            let at = at.0.path().join(at.1);
            Err(std::io::Error::new(
                hard_error.kind(),
                match symbolic_error {
                    Some(symbolic_error) => format!(
                        "cannot link {}: {symbolic_error}; a hard link failed too: {hard_error}",
                        at.display()
                    ),
                    None => format!(
                        "cannot link {} to {}: {hard_error}",
                        at.display(),
                        archive.join(target).display()
                    ),
                },
            ))
        }
    }
}

/// Whether making a link failed because the disk makes no such link, not
/// for a problem a person must fix (a folder not writable, a full disk):
/// `EPERM` (the kernel's answer where a file system has no links: FAT,
/// exFAT), `ENOSYS` (FUSE file systems that do not implement them),
/// `EOPNOTSUPP`/`ENOTSUP` (network shares), `EXDEV` (a hard link across
/// mounts). `EACCES` is a permission problem, so it is not one.
fn links_unsupported(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    if let Some(code) = error.raw_os_error() {
        use rustix::io::Errno;
        return [
            Errno::PERM,
            Errno::NOSYS,
            Errno::NOTSUP,
            Errno::OPNOTSUPP,
            Errno::XDEV,
        ]
        .iter()
        .any(|unsupported| unsupported.raw_os_error() == code);
    }
    matches!(
        error.kind(),
        std::io::ErrorKind::Unsupported | std::io::ErrorKind::CrossesDevices
    )
}

/// The first form a disk is tried with. Symbolic links on unix. On
/// Windows hard links: a symbolic link there needs a privilege (or
/// Developer Mode), a relative one resolves only with `\\` separators,
/// and Explorer and backup programs treat them poorly; NTFS makes hard
/// links for anyone, and a view of hard links is files a person opens
/// like any other.
const FIRST_FORM: Form = if cfg!(windows) {
    Form::Hard
} else {
    Form::Symbolic
};

/// Which form views take on this disk, found by making a link in
/// `.vault-mirror/` (ours, so `lists/` is not touched when no view
/// changed): [`FIRST_FORM`], else a hard one, else none (an index). A
/// link the system says it made but that is not there (Wine's symbolic
/// links) counts as none, so a view is never an empty folder.
pub(super) fn probe_links(archive: &ArchiveDir) -> Result<Form, ArchiveError> {
    const TARGET: &str = "link-probe";
    const LINK: &str = "link-probe.link";
    let folder = archive.create_folder(Path::new(STATE_FOLDER))?;
    // What a run stopped in the middle of this left.
    remove_if_present(&folder, LINK)?;
    remove_if_present(&folder, TARGET)?;
    drop(folder.open_file(TARGET, Access::Replace)?);
    let made = make_link(
        archive,
        Path::new(TARGET),
        &Path::new(STATE_FOLDER).join(TARGET),
        (&folder, OsStr::new(LINK)),
        FIRST_FORM,
    );
    let there = folder.entry(LINK)?.is_some();
    remove_if_present(&folder, LINK)?;
    folder.remove_file(TARGET)?;
    Ok(match made? {
        _ if !there => {
            tracing::warn!(
                "{}: a link this system said it made is not there; list views are indexes",
                archive.join(STATE_FOLDER).display()
            );
            Form::Index
        }
        Linked::Symbolic => Form::Symbolic,
        Linked::Hard => Form::Hard,
        Linked::Unsupported => Form::Index,
    })
}

fn remove_if_present(folder: &Folder, name: &str) -> std::io::Result<()> {
    match folder.remove_file(name) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The two ways a link is made, in one step under a free name; errors
/// keep their OS error number for [`links_unsupported`].
fn symlink(from_view: &Path, (folder, name): (&Folder, &OsStr)) -> std::io::Result<()> {
    simulated_no_links()?;
    folder.symlink(from_view, name)
}

/// A hard link at `folder`/`name` to `target` (relative to the archive
/// root, its folder reached without following links).
fn hard_link(
    archive: &ArchiveDir,
    target: &Path,
    (folder, name): (&Folder, &OsStr),
) -> std::io::Result<()> {
    simulated_no_links()?;
    let (source, file) = split_file(target)?;
    let source = archive
        .folder(source)?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
    source.hard_link(file, folder, name)
}

#[cfg(test)]
thread_local! {
    /// Unit tests' [`simulated_no_links`], per test thread.
    static NO_LINKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Test suites: `VAULT_MIRROR_TEST_NO_LINKS=1` makes every link fail as
/// on an exFAT drive (`EPERM`), so the index form can be run on any disk.
fn simulated_no_links() -> std::io::Result<()> {
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let set = *SET.get_or_init(|| {
        std::env::var_os("VAULT_MIRROR_TEST_NO_LINKS").is_some_and(|value| value == "1")
    });
    #[cfg(test)]
    let set = set || NO_LINKS.with(std::cell::Cell::get);
    if !set {
        return Ok(());
    }
    #[cfg(unix)]
    return Err(rustix::io::Errno::PERM.into());
    #[cfg(not(unix))]
    return Err(std::io::ErrorKind::Unsupported.into());
}

fn relative_to(out: &Path, path: &Path) -> String {
    path.strip_prefix(out)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::RemoteStatus;
    use crate::archive::view_index::PAGE_MARK;
    use crate::store::{ListRecord, MediaRecord, RemoteVariant};

    #[test]
    fn slugs_are_safe_and_readable() {
        assert_eq!(slug("Best of 2025/26"), "best-of-2025-26");
        assert_eq!(slug("  Q&A: extras!! "), "q-a-extras");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("日本語"), "list");
        assert_eq!(slug(""), "list");
        assert!(slug(&"x".repeat(500)).len() <= MAX_SLUG);
    }

    #[test]
    fn view_names_keep_ids_unique() {
        assert_eq!(view_name("28489180", "Summer trip"), "28489180-summer-trip");
        // Without escaping, both would be `a-b-c`.
        assert_ne!(view_name("a-b", "c"), view_name("a", "b-c"));
        assert_ne!(view_name("A", "x"), view_name("a", "x"));
        let long = view_name(&"-".repeat(300), "x");
        assert!(long.len() < 200, "{long}");
        for name in [view_name("../..", "../.."), view_name("con", "aux")] {
            assert!(name.chars().all(crate::archive::is_name_char), "{name}");
            assert!(!name.starts_with('.'), "{name}");
        }
    }

    fn archive_with(out: &Path) -> Store {
        let store = Store::open(&out.join(".vault-mirror/state.sqlite")).unwrap();
        let list = |id: &str, name: &str| ListRecord {
            list_id: id.into(),
            name: name.into(),
            list_type: None,
        };
        store
            .record_lists(&[list("1", "Summer trip"), list("2", "Drafts")], true, 1)
            .unwrap();
        let media = |id: &str| MediaRecord {
            media_id: id.into(),
            media_type: Some("image".into()),
            duration: None,
        };
        store
            .record_membership("1", &[media("10"), media("11")], 1)
            .unwrap();
        store.record_membership("2", &[media("11")], 1).unwrap();
        for id in ["10", "11"] {
            let remote = RemoteVariant {
                media_id: id.into(),
                label: "full".into(),
                status: RemoteStatus::Stored,
                size_bytes: Some(4),
                content_type: Some("image/jpeg".into()),
                created_at: None,
                stored_at: None,
            };
            store.record_remote(&[media(id)], &[remote], 1).unwrap();
            let path = format!("media/{id}/full.jpg");
            std::fs::create_dir_all(out.join(format!("media/{id}"))).unwrap();
            std::fs::write(out.join(&path), id.repeat(2)).unwrap();
            store
                .mark_verified(
                    id,
                    "full",
                    &path,
                    "x",
                    crate::units::ByteSize(4),
                    crate::units::EpochMillis(1),
                )
                .unwrap();
        }
        store
    }

    fn view_entries(out: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for view in std::fs::read_dir(out.join("lists")).unwrap().flatten() {
            for entry in std::fs::read_dir(view.path()).unwrap().flatten() {
                let path = entry.path();
                let bytes = std::fs::read(&path).unwrap();
                found.push(format!(
                    "{}/{} {}",
                    view.file_name().to_string_lossy(),
                    entry.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&bytes)
                ));
            }
        }
        found.sort();
        found
    }

    #[test]
    fn views_follow_membership_and_leave_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let store = archive_with(out);
        let summary = update_views(&store, out).unwrap();
        assert_eq!(summary.lists, 2);
        assert_eq!(summary.added, 3);
        assert_eq!(summary.hard_links, 0);
        assert_eq!(
            view_entries(out),
            [
                "1-summer-trip/10.full.jpg 1010",
                "1-summer-trip/11.full.jpg 1111",
                "2-drafts/11.full.jpg 1111"
            ]
        );
        let link = out.join("lists/1-summer-trip/10.full.jpg");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../../media/10/full.jpg")
        );
        // Idempotent, and recorded so that the next run need not read the
        // views again.
        let again = update_views(&store, out).unwrap();
        assert_eq!((again.added, again.removed, again.links), (0, 0, 3));
        let states = store.view_states().unwrap();
        assert_eq!(states["1-summer-trip"].links, 2);
        assert_eq!(states["2-drafts"].links, 1);
        // A link a person deleted changes its folder: the view is read
        // again and the link comes back.
        std::fs::remove_file(&link).unwrap();
        let restored = update_views(&store, out).unwrap();
        assert_eq!(
            (restored.added, restored.removed, restored.links),
            (1, 0, 3)
        );
        assert!(std::fs::read_link(&link).is_ok());

        // 10 leaves list 1, list 2 is renamed, and a person's own file sits in a view.
        let media = |id: &str| MediaRecord {
            media_id: id.into(),
            media_type: None,
            duration: None,
        };
        store.record_membership("1", &[media("11")], 2).unwrap();
        store
            .record_lists(
                &[
                    ListRecord {
                        list_id: "1".into(),
                        name: "Summer trip".into(),
                        list_type: None,
                    },
                    ListRecord {
                        list_id: "2".into(),
                        name: "Keepers".into(),
                        list_type: None,
                    },
                ],
                true,
                2,
            )
            .unwrap();
        std::fs::write(out.join("lists/2-drafts/notes.txt"), b"mine").unwrap();
        let summary = update_views(&store, out).unwrap();
        assert_eq!(summary.left_alone, ["lists/2-drafts/notes.txt"]);
        assert_eq!(
            view_entries(out),
            [
                "1-summer-trip/11.full.jpg 1111",
                "2-drafts/notes.txt mine",
                "2-keepers/11.full.jpg 1111"
            ]
        );
        // The bytes themselves never move.
        assert_eq!(
            std::fs::read(out.join("media/10/full.jpg")).unwrap(),
            b"1010"
        );
    }

    #[test]
    fn a_view_unchanged_since_its_stamp_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let store = archive_with(out);
        let folder = out.join("lists/2-drafts");
        let link = folder.join("11.full.jpg");
        update_views(&store, out).unwrap();
        let stamp = store.view_states().unwrap()["2-drafts"].folder_mtime;
        assert_ne!(stamp, i64::MIN);
        assert!(
            now_ns() - stamp >= CLOCK_TICK_NS,
            "returned before the clock moved on"
        );
        // Changed behind the stamp's back (its time put back): not read,
        // which is what saves a re-run from reading every view.
        let put_back = |folder: &Path| {
            let time = std::time::UNIX_EPOCH
                + std::time::Duration::from_nanos(u64::try_from(stamp).unwrap_or(0));
            std::fs::File::open(folder)
                .unwrap()
                .set_modified(time)
                .unwrap()
        };
        std::fs::remove_file(&link).unwrap();
        put_back(&folder);
        let skipped = update_views(&store, out).unwrap();
        assert_eq!((skipped.added, skipped.links), (0, 3));
        assert!(std::fs::symlink_metadata(&link).is_err());
        // Any real change moves the time, and the view is mended.
        std::fs::write(folder.join("x"), b"").unwrap();
        std::fs::remove_file(folder.join("x")).unwrap();
        let mended = update_views(&store, out).unwrap();
        assert_eq!(mended.added, 1);
        assert!(std::fs::read_link(&link).is_ok());
    }

    #[test]
    fn hard_links_stand_in_for_symbolic_ones() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let store = archive_with(out);
        let summary = update_views_with(&store, out, Some(Form::Hard)).unwrap();
        assert_eq!(summary.hard_links, 3);
        assert!(
            !std::fs::symlink_metadata(out.join("lists/2-drafts/11.full.jpg"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // Hard links already in place are recognised, then removed when stale.
        let again = update_views_with(&store, out, Some(Form::Hard)).unwrap();
        assert_eq!((again.added, again.removed), (0, 0));
        store
            .record_lists(
                &[ListRecord {
                    list_id: "1".into(),
                    name: "Summer trip".into(),
                    list_type: None,
                }],
                true,
                3,
            )
            .unwrap();
        let gone = update_views_with(&store, out, Some(Form::Hard)).unwrap();
        assert_eq!(gone.removed, 1);
        assert!(!out.join("lists/2-drafts").exists());
        assert_eq!(
            std::fs::read(out.join("media/11/full.jpg")).unwrap(),
            b"1111"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_lists_folder_or_view_that_is_a_link_is_replaced_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        std::fs::create_dir_all(&out).unwrap();
        let store = archive_with(&out);
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        {
            std::os::unix::fs::symlink(&elsewhere, out.join("lists")).unwrap();
            let summary = update_views(&store, &out).unwrap();
            assert_eq!(summary.added, 3);
            assert!(
                std::fs::symlink_metadata(out.join("lists"))
                    .unwrap()
                    .is_dir()
            );
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

            std::fs::remove_dir_all(out.join("lists/2-drafts")).unwrap();
            std::os::unix::fs::symlink(&elsewhere, out.join("lists/2-drafts")).unwrap();
            let summary = update_views(&store, &out).unwrap();
            assert_eq!(summary.added, 1);
            assert!(
                std::fs::symlink_metadata(out.join("lists/2-drafts"))
                    .unwrap()
                    .is_dir()
            );
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_view_that_is_a_link_outside_is_replaced_and_nothing_outside_is_touched() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        std::fs::create_dir_all(&out).unwrap();
        let store = archive_with(&out);
        // Outside: what a view followed through the link would remove or
        // rewrite (an index of ours, links, a file with two names).
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let page = format!("{PAGE_MARK} -->\n<html></html>");
        std::fs::write(outside.join(PAGE_NAME), &page).unwrap();
        std::fs::write(outside.join(LIST_NAME), "../../media/10/full.jpg\n").unwrap();
        std::fs::write(outside.join("bytes"), b"precious").unwrap();
        std::fs::hard_link(outside.join("bytes"), outside.join("10.full.jpg")).unwrap();
        symlink("bytes", outside.join("stale.jpg")).unwrap();
        let before = |path: &Path| {
            let mut names: Vec<_> = std::fs::read_dir(path)
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let names = before(&outside);

        // A view wanted, and one of a list gone, both links outside.
        std::fs::create_dir_all(out.join("lists")).unwrap();
        symlink(&outside, out.join("lists/2-drafts")).unwrap();
        symlink(&outside, out.join("lists/3-gone")).unwrap();
        for form in [Some(Form::Symbolic), Some(Form::Hard), None] {
            let _no_links = form.is_none().then(NoLinks::set);
            let summary = update_views_with(&store, &out, form).unwrap();
            assert_eq!(summary.left_alone, ["lists/3-gone"], "{form:?}");
            let view = out.join("lists/2-drafts");
            assert!(std::fs::symlink_metadata(&view).unwrap().is_dir());
            assert!(
                std::fs::symlink_metadata(out.join("lists/3-gone"))
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(before(&outside), names, "{form:?}");
            assert_eq!(
                std::fs::read_to_string(outside.join(PAGE_NAME)).unwrap(),
                page
            );
            assert_eq!(
                std::fs::read_to_string(outside.join(LIST_NAME)).unwrap(),
                "../../media/10/full.jpg\n"
            );
            assert_eq!(std::fs::read(outside.join("bytes")).unwrap(), b"precious");
            // Planted again for the next form.
            std::fs::remove_dir_all(&view).unwrap();
            symlink(&outside, &view).unwrap();
        }
    }

    /// Every link fails on this thread (as on exFAT) while it is held.
    struct NoLinks;

    impl NoLinks {
        fn set() -> NoLinks {
            NO_LINKS.with(|flag| flag.set(true));
            NoLinks
        }
    }

    impl Drop for NoLinks {
        fn drop(&mut self) {
            NO_LINKS.with(|flag| flag.set(false));
        }
    }

    /// The targets a page links to, but its own `files.txt`.
    fn page_targets(page: &str) -> Vec<String> {
        page.split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|href| *href != LIST_NAME)
            .map(str::to_owned)
            .collect()
    }

    /// (name, inode, modification time) of every entry of every view.
    fn view_stamps(out: &Path) -> Vec<(String, i64, i64)> {
        let lists = ArchiveDir::open(out)
            .folder(Path::new(LISTS))
            .unwrap()
            .unwrap();
        let mut found = Vec::new();
        for (view, _) in lists.entries().unwrap() {
            let folder = lists.open_folder(&view).unwrap().unwrap();
            for (name, stat) in folder.entries().unwrap() {
                let (inode, mtime) = folder_stamp(&stat);
                let path = folder.path().join(name);
                found.push((path.display().to_string(), inode, mtime));
            }
        }
        found.sort();
        found
    }

    #[test]
    fn link_errors_are_told_from_real_failures() {
        use std::io::{Error, ErrorKind};
        #[cfg(unix)]
        {
            use rustix::io::Errno;
            for unsupported in [
                Errno::PERM,
                Errno::NOSYS,
                Errno::NOTSUP,
                Errno::OPNOTSUPP,
                Errno::XDEV,
            ] {
                assert!(
                    links_unsupported(&Error::from(unsupported)),
                    "{unsupported:?}"
                );
            }
            for failure in [
                Errno::ACCESS,
                Errno::NOSPC,
                Errno::EXIST,
                Errno::IO,
                Errno::ROFS,
                Errno::NAMETOOLONG,
            ] {
                assert!(!links_unsupported(&Error::from(failure)), "{failure:?}");
            }
        }
        assert!(links_unsupported(&Error::new(ErrorKind::Unsupported, "x")));
        // Without its number, a refusal may be a folder a person must fix.
        assert!(!links_unsupported(&Error::new(
            ErrorKind::PermissionDenied,
            "x"
        )));
    }

    #[test]
    fn views_are_indexes_where_no_link_works_and_links_again_where_they_do() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let store = archive_with(out);
        let no_links = NoLinks::set();
        let summary = update_views(&store, out).unwrap();
        assert_eq!(
            (summary.lists, summary.indexes, summary.links, summary.added),
            (2, 2, 3, 3)
        );
        assert_eq!(summary.hard_links, 0);
        let folder = out.join("lists/1-summer-trip");
        assert_eq!(
            std::fs::read_to_string(folder.join(LIST_NAME)).unwrap(),
            "../../media/10/full.jpg\n../../media/11/full.jpg\n"
        );
        let page = std::fs::read_to_string(folder.join(PAGE_NAME)).unwrap();
        assert!(page.starts_with(PAGE_MARK), "{page}");
        assert!(page.contains("<title>Summer trip</title>"), "{page}");
        let targets = page_targets(&page);
        assert_eq!(
            targets,
            ["../../media/10/full.jpg", "../../media/11/full.jpg"]
        );
        for target in &targets {
            assert!(folder.join(target).is_file(), "{target}");
        }
        // Only the index files, and the probe left nothing behind.
        let names: BTreeSet<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, BTreeSet::from([PAGE_NAME.into(), LIST_NAME.into()]));
        let probes = std::fs::read_dir(out.join(".vault-mirror"))
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().contains("probe"))
            .count();
        assert_eq!(probes, 0);

        // Unchanged, nothing is written again.
        let stamps = view_stamps(out);
        let again = update_views(&store, out).unwrap();
        assert_eq!(
            (again.added, again.removed, again.links, again.indexes),
            (0, 0, 3, 2)
        );
        assert_eq!(view_stamps(out), stamps);

        // A member leaves; a person's own index.html is left alone (and
        // never overwritten), and what a stopped write left is cleared.
        let media = |id: &str| MediaRecord {
            media_id: id.into(),
            media_type: None,
            duration: None,
        };
        store.record_membership("1", &[media("11")], 2).unwrap();
        let drafts = out.join("lists/2-drafts");
        std::fs::write(drafts.join(PAGE_NAME), "<html>mine</html>").unwrap();
        std::fs::write(drafts.join(".files.txt.4242.tmp"), "../../media/1").unwrap();
        let changed = update_views(&store, out).unwrap();
        assert_eq!((changed.added, changed.removed, changed.links), (0, 1, 2));
        assert_eq!(changed.left_alone, ["lists/2-drafts/index.html"]);
        assert_eq!(
            std::fs::read_to_string(folder.join(LIST_NAME)).unwrap(),
            "../../media/11/full.jpg\n"
        );
        assert_eq!(
            std::fs::read_to_string(drafts.join(PAGE_NAME)).unwrap(),
            "<html>mine</html>"
        );
        assert!(!drafts.join(".files.txt.4242.tmp").exists());
        std::fs::remove_file(drafts.join(PAGE_NAME)).unwrap();

        // Links work again (the archive moved to a disk with links): the
        // views are links, and the index files are gone.
        drop(no_links);
        let back = update_views(&store, out).unwrap();
        assert_eq!((back.indexes, back.added, back.links), (0, 2, 2));
        assert_eq!(
            view_entries(out),
            [
                "1-summer-trip/11.full.jpg 1111",
                "2-drafts/11.full.jpg 1111"
            ]
        );
        assert!(std::fs::read_link(folder.join("11.full.jpg")).is_ok());

        // And back to an index, the links removed; a list gone upstream
        // takes its index with it.
        let _no_links = NoLinks::set();
        store
            .record_lists(
                &[ListRecord {
                    list_id: "1".into(),
                    name: "Summer trip".into(),
                    list_type: None,
                }],
                true,
                3,
            )
            .unwrap();
        let index = update_views(&store, out).unwrap();
        assert_eq!((index.indexes, index.removed, index.links), (1, 2, 1));
        assert!(!drafts.exists());
        assert!(std::fs::symlink_metadata(folder.join("11.full.jpg")).is_err());
        assert_eq!(
            std::fs::read_to_string(folder.join(LIST_NAME)).unwrap(),
            "../../media/11/full.jpg\n"
        );
        // The bytes themselves never move.
        assert_eq!(
            std::fs::read(out.join("media/11/full.jpg")).unwrap(),
            b"1111"
        );
    }

    #[test]
    fn links_that_fail_after_the_probe_made_one_give_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let store = archive_with(out);
        let _no_links = NoLinks::set();
        for form in [Form::Symbolic, Form::Hard] {
            let summary = update_views_with(&store, out, Some(form)).unwrap();
            assert_eq!((summary.indexes, summary.links), (2, 3), "{form:?}");
            assert!(out.join("lists/2-drafts").join(PAGE_NAME).is_file());
        }
    }
}
