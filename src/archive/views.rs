//! Per-list views: `lists/<list id>-<slug>/` holds one relative link per
//! verified file of the list's current members, named
//! `<media dir>.<label>.<ext>`, pointing at `../../media/<media dir>/…`
//! (hard links where the file system refuses symbolic ones).
//!
//! Invariants:
//! - `lists/` is ours and derived: [`update_views`] makes it match the
//!   database after every run (links added, stale ones and views of lists
//!   gone upstream removed). It never removes bytes: a regular file there
//!   is removed only when it is one of several hard links to its bytes;
//!   anything else unexpected is left alone and reported.
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
//!   place is reported and replaced, never followed.
//! - View names are unique per list id whatever the list names: the id is
//!   written with [`safe_name`] and its `-` escaped as `~2d`, so the first
//!   `-` of a view name always ends the id; the slug is readable only.
//! - A link is made only under a free name (a wrong entry of ours is
//!   removed first), in one step: creating a link is atomic, so no reader
//!   ever sees half of one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive::paths::safe_name;
use crate::archive::{ArchiveDir, ArchiveError, archive_path};
use crate::pipeline::commit::sync_folder;
use crate::store::{Store, ViewState};

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
    /// Entries under `lists/` that are not ours and were left alone.
    pub left_alone: Vec<String>,
}

/// How links are made; tests force hard links to cover the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkMode {
    SymbolicFirst,
    #[cfg_attr(not(test), allow(dead_code))]
    HardOnly,
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
    update_views_with(store, out, LinkMode::SymbolicFirst)
}

fn update_views_with(
    store: &Store,
    out: &Path,
    mode: LinkMode,
) -> Result<ViewsSummary, ArchiveError> {
    let wanted: BTreeMap<String, String> = store
        .archive_lists()?
        .into_iter()
        .filter(|list| list.gone_at.is_none())
        .map(|list| (view_name(&list.list_id, &list.name), list.list_id))
        .collect();
    let root = out.join("lists");
    let mut summary = ViewsSummary {
        lists: wanted.len(),
        ..ViewsSummary::default()
    };
    if wanted.is_empty() && fs_err::symlink_metadata(&root).is_err() {
        return Ok(summary);
    }
    let archive = ArchiveDir::open(out);
    // A link in its place is replaced, never followed.
    archive.create_folder(Path::new("lists"))?;
    let mut last_written = store.view_states()?;
    let mut written = Vec::new();
    let mut newest_stamp = i64::MIN;
    let mut folders_changed = false;
    for (view, list_id) in &wanted {
        let folder = root.join(view);
        let digest = files_digest(store, list_id)?;
        match fs_err::symlink_metadata(&folder) {
            Ok(metadata) if metadata.is_dir() => {
                // Nothing to do when the view was written from the same
                // files and its folder has not changed since.
                if let Some(state) = last_written.remove(view)
                    && state.digest == digest
                    && folder_stamp(&metadata) == (state.folder_inode, state.folder_mtime)
                {
                    summary.links += state.links as usize;
                    written.push((view.clone(), state));
                    continue;
                }
            }
            Ok(metadata) if !metadata.file_type().is_symlink() => {
                summary.left_alone.push(relative_to(out, &folder));
                continue;
            }
            // Missing, or a link (replaced, never followed).
            _ => {
                archive.create_folder(&Path::new("lists").join(view))?;
                folders_changed = true;
            }
        }
        let links = present_files(store, &archive, list_id)?;
        let (links_before, left_alone_before) = (summary.links, summary.left_alone.len());
        sync_view(out, &folder, &links, mode, &mut summary)?;
        // A view holding things not ours is read in full each time, so
        // they are reported each time.
        if summary.left_alone.len() == left_alone_before {
            let (folder_inode, mut folder_mtime) =
                folder_stamp(&fs_err::symlink_metadata(&folder)?);
            if folder_mtime % 1_000_000_000 == 0 {
                // Whole seconds: a file system whose clock ticks that
                // coarsely could hide a change in the same second. Such a
                // view is read every run.
                folder_mtime = i64::MIN;
            }
            newest_stamp = newest_stamp.max(folder_mtime);
            let state = ViewState {
                digest,
                folder_inode,
                folder_mtime,
                links: (summary.links - links_before) as i64,
            };
            written.push((view.clone(), state));
        }
    }
    // Views of lists gone upstream, or renamed: their links go, and the
    // folder too once empty.
    for entry in fs_err::read_dir(&root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if wanted.contains_key(&name) {
            continue;
        }
        let path = entry.path();
        if !fs_err::symlink_metadata(&path)?.is_dir() {
            summary.left_alone.push(relative_to(out, &path));
            continue;
        }
        sync_view(out, &path, &BTreeMap::new(), mode, &mut summary)?;
        if fs_err::remove_dir(&path).is_ok() {
            folders_changed = true;
        }
    }
    if folders_changed {
        sync_folder(&root)?;
    }
    // A change in the same tick of the clock as our last write would leave
    // the folder's time as it is: the stamps hold only once the clock has
    // moved on, so wait for that (a few ms at most) before anyone else may
    // touch the views (the caller holds the archive lock).
    let since = now_ns().saturating_sub(newest_stamp);
    if since < CLOCK_TICK_NS {
        std::thread::sleep(std::time::Duration::from_nanos(
            (CLOCK_TICK_NS - since) as u64,
        ));
    }
    store.replace_view_states(&written)?;
    summary.left_alone.sort();
    Ok(summary)
}

/// sha256 of what a list's view is made from: each verified file of its
/// current members, with its size and when it was verified (a file fetched
/// anew changes the digest, even with the same bytes).
fn files_digest(store: &Store, list_id: &str) -> Result<String, ArchiveError> {
    let mut hasher = Sha256::new();
    store.view_files(list_id, |file| {
        hasher.update(file.local_path.as_bytes());
        hasher.update([0]);
        hasher.update(file.size.to_le_bytes());
        hasher.update(file.verified_at.unwrap_or(-1).to_le_bytes());
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// Link name → target (relative to the archive root) of a list's view:
/// each verified file of its current members that is on disk, a regular
/// file at the size it was verified at.
fn present_files(
    store: &Store,
    archive: &ArchiveDir,
    list_id: &str,
) -> Result<BTreeMap<String, PathBuf>, ArchiveError> {
    let mut links = BTreeMap::new();
    store.view_files(list_id, |file| {
        let Ok(path) = archive_path(file.local_path) else {
            return;
        };
        if !path.starts_with("media") {
            return;
        }
        let present = u64::try_from(file.size).is_ok_and(|len| archive.has_file(&path, len));
        if !present {
            return;
        }
        let components: Vec<String> = path
            .components()
            .skip(1)
            .map(|component| component.as_os_str().to_string_lossy().into_owned())
            .collect();
        links.insert(components.join("."), path);
    })?;
    Ok(links)
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
fn folder_stamp(metadata: &std::fs::Metadata) -> (i64, i64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (
            metadata.ino() as i64,
            metadata.mtime() * 1_000_000_000 + metadata.mtime_nsec(),
        )
    }
    #[cfg(not(unix))]
    {
        let mtime = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos() as i64);
        (0, mtime)
    }
}

/// Makes one view folder hold exactly `links`.
fn sync_view(
    out: &Path,
    folder: &Path,
    links: &BTreeMap<String, PathBuf>,
    mode: LinkMode,
    summary: &mut ViewsSummary,
) -> Result<(), ArchiveError> {
    let mut changed = false;
    // Names already taken: by the right link, or by something not ours.
    let mut taken = BTreeSet::new();
    for entry in fs_err::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let metadata = fs_err::symlink_metadata(&path)?;
        if let Some(target) = links.get(&name)
            && points_at(&path, &metadata, &out.join(target), target)
        {
            taken.insert(name);
            summary.links += 1;
            continue;
        }
        if is_our_link(&metadata) {
            fs_err::remove_file(&path)?;
            summary.removed += 1;
            changed = true;
        } else {
            summary.left_alone.push(relative_to(out, &path));
            taken.insert(name);
        }
    }
    for (name, target) in links {
        if taken.contains(name) {
            continue;
        }
        let at = folder.join(name);
        let from_view = Path::new("../..").join(target);
        let hard = make_link(&from_view, &out.join(target), &at, mode)?;
        summary.added += 1;
        summary.links += 1;
        summary.hard_links += usize::from(hard);
        changed = true;
    }
    if changed {
        sync_folder(folder)?;
    }
    Ok(())
}

/// Whether an entry already is the link we want: a symbolic link with
/// exactly our relative target, or a hard link to the target's bytes.
fn points_at(
    path: &Path,
    metadata: &std::fs::Metadata,
    target: &Path,
    relative_target: &Path,
) -> bool {
    if metadata.file_type().is_symlink() {
        return fs_err::read_link(path)
            .is_ok_and(|found| found == Path::new("../..").join(relative_target));
    }
    same_file(metadata, target)
}

#[cfg(unix)]
fn same_file(metadata: &std::fs::Metadata, target: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    metadata.is_file()
        && fs_err::metadata(target)
            .is_ok_and(|other| other.dev() == metadata.dev() && other.ino() == metadata.ino())
}

#[cfg(not(unix))]
fn same_file(_metadata: &std::fs::Metadata, _target: &Path) -> bool {
    false
}

/// Symbolic links are ours to remove; a regular file only when other
/// names hold its bytes too (a hard link), so no bytes are ever lost.
fn is_our_link(metadata: &std::fs::Metadata) -> bool {
    if metadata.file_type().is_symlink() {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        metadata.is_file() && metadata.nlink() > 1
    }
    #[cfg(not(unix))]
    false
}

/// Creates a link at `at`; returns whether it is a hard link.
fn make_link(from_view: &Path, target: &Path, at: &Path, mode: LinkMode) -> std::io::Result<bool> {
    if mode == LinkMode::SymbolicFirst {
        #[cfg(unix)]
        let symbolic = fs_err::os::unix::fs::symlink(from_view, at);
        #[cfg(windows)]
        let symbolic = fs_err::os::windows::fs::symlink_file(from_view, at);
        #[cfg(not(any(unix, windows)))]
        let symbolic: std::io::Result<()> = Err(std::io::ErrorKind::Unsupported.into());
        match symbolic {
            Ok(()) => return Ok(false),
            Err(symbolic_error) => {
                return fs_err::hard_link(target, at)
                    .map(|()| true)
                    .map_err(|hard_error| {
                        std::io::Error::other(format!(
                            "cannot link {}: {symbolic_error}; a hard link failed too: {hard_error}",
                            at.display()
                        ))
                    });
            }
        }
    }
    fs_err::hard_link(target, at).map(|()| true)
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
            store.mark_verified(id, "full", &path, "x", 4, 1).unwrap();
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
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(stamp as u64);
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
        let summary = update_views_with(&store, out, LinkMode::HardOnly).unwrap();
        assert_eq!(summary.hard_links, 3);
        assert!(
            !std::fs::symlink_metadata(out.join("lists/2-drafts/11.full.jpg"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // Hard links already in place are recognised, then removed when stale.
        let again = update_views_with(&store, out, LinkMode::HardOnly).unwrap();
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
        let gone = update_views_with(&store, out, LinkMode::HardOnly).unwrap();
        assert_eq!(gone.removed, 1);
        assert!(!out.join("lists/2-drafts").exists());
        assert_eq!(
            std::fs::read(out.join("media/11/full.jpg")).unwrap(),
            b"1111"
        );
    }

    #[test]
    fn a_lists_folder_or_view_that_is_a_link_is_replaced_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        std::fs::create_dir_all(&out).unwrap();
        let store = archive_with(&out);
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        #[cfg(unix)]
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
}
