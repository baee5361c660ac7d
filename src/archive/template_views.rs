//! Views by template (`[[views]]` in the config file, `docs/views-and-dates.md`):
//! `<out>/<view name>/<the template's path>` for every verified file, as
//! relative links into `media/` — or, on a disk that makes no links and
//! on object storage, an index at the view's root (`index.html` to
//! browse, `files.txt`: each view path and its file, tab-separated).
//!
//! Invariants:
//! - A view is links or an index, never a copy of the bytes; nothing under
//!   `media/` is ever moved, renamed or rewritten by a view, so changing a
//!   template rewrites the view alone.
//! - Every path comes from [`crate::template::Template::render`] over
//!   values made safe here (ids and labels through `names::safe_name`, list
//!   names as slugs): whatever the API's strings hold, an entry stays
//!   inside its view's folder. Links only point at checked paths under
//!   `media/` ([`archive_path`]).
//! - Two entries that render to one path both get a suffix from their own
//!   identity (`~` and 12 hex digits of sha256 of media id, label, list id)
//!   before the extension: stable from run to run, the same whatever the
//!   order the database lists them in.
//! - Only what is ours is removed: symbolic links, hard links (a file with
//!   other names), our index files, and folders left empty; anything else
//!   is left alone and reported. A view dropped from the config file is
//!   emptied of what is ours (found from the database's record of the
//!   views last written).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive::dir::{EntryKind, EntryStat};
use crate::archive::paths::key_of as key;
use crate::archive::view_index::{self, PAGE_MARK, Wanted};
use crate::archive::views::{self, Form, Linked, slug};
use crate::archive::{Archive, ArchiveDir, ArchiveError, Folder, archive_path};
use crate::names::safe_name;
use crate::store::Store;
use crate::template::{Values, ViewTemplate};

/// The index files of a view in index form.
const PAGE_NAME: &str = view_index::PAGE_NAME;
const LIST_NAME: &str = view_index::LIST_NAME;

/// Who the archive belongs to, for the `connection` and `username` fields.
#[derive(Debug, Clone, Default)]
pub struct Owner {
    pub connection: String,
    pub username: String,
}

/// What updating the views by template did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TemplateViewsSummary {
    /// Views written.
    pub views: usize,
    /// Entries in all views after the update.
    pub links: usize,
    pub added: usize,
    pub removed: usize,
    /// Entries that shared a path with another and took a suffix.
    pub suffixed: usize,
    /// Views written as an index (no links on this disk, or object storage).
    pub indexes: usize,
    /// Entries under the views that are not ours and were left alone.
    pub left_alone: Vec<String>,
}

/// One entry a view wants: its path in the view (`/`-separated) → file.
pub type Entries = BTreeMap<String, Wanted>;

/// The entries of `view`: one per verified file present (`has_file`), or
/// per (file, list holding its media) when the template names a list.
/// Returns them and how many took a suffix.
pub fn entries(
    store: &Store,
    view: &ViewTemplate,
    owner: &Owner,
    has_file: &dyn Fn(&Path, u64) -> bool,
) -> Result<(Entries, usize), ArchiveError> {
    let facts = store.media_facts()?;
    let lists = if view.template.per_list() {
        lists_of_media(store)?
    } else {
        HashMap::new()
    };
    // Unknown is said so, never an empty name (or `slug`'s `list`).
    let known = |text: &str, safe: fn(&str) -> String| match text.is_empty() {
        true => "unknown".to_owned(),
        false => safe(text),
    };
    let connection = known(&owner.connection, safe_name);
    let username = known(&owner.username, slug);
    let no_list = vec![(String::new(), String::new())];
    let mut rendered: BTreeMap<String, Vec<(String, Wanted)>> = BTreeMap::new();
    for variant in store.archived_variants()? {
        let Ok(target) = archive_path(&variant.local_path) else {
            continue;
        };
        let Ok(size) = u64::try_from(variant.size) else {
            continue;
        };
        if !target.starts_with("media") || !has_file(&target, size) {
            continue;
        }
        let ext = target
            .extension()
            .map(|ext| ext.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fact = facts.get(&variant.media_id).cloned().unwrap_or_default();
        let id = safe_name(&variant.media_id);
        let label = safe_name(&variant.label);
        let media_type = safe_name(variant.media_type.as_deref().unwrap_or("unknown"));
        let holding = match view.template.per_list() {
            true => lists.get(&variant.media_id).unwrap_or(&no_list),
            false => &no_list,
        };
        for (list_id, list_name) in holding {
            let list = if list_name.is_empty() {
                String::new()
            } else {
                slug(list_name)
            };
            let list_id_safe = safe_name(list_id);
            let values = Values {
                id: &id,
                label: &label,
                ext: &ext,
                media_type: &media_type,
                list: &list,
                list_id: &list_id_safe,
                date: fact.date,
                width: fact.width,
                height: fact.height,
                connection: &connection,
                username: &username,
            };
            let path = key(&view.template.render(&values));
            let identity = format!("{}\0{}\0{list_id}", variant.media_id, variant.label);
            let wanted = Wanted {
                target: target.clone(),
                size,
            };
            rendered.entry(path).or_default().push((identity, wanted));
        }
    }
    Ok(with_suffixes(rendered))
}

/// Current members' lists (id, name) by media id, lists not gone.
fn lists_of_media(store: &Store) -> Result<HashMap<String, Vec<(String, String)>>, ArchiveError> {
    let names: HashMap<String, String> = store
        .archive_lists()?
        .into_iter()
        .filter(|list| list.gone_at.is_none())
        .map(|list| (list.list_id, list.name))
        .collect();
    let mut lists: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for member in store.archive_membership()? {
        if member.gone_at.is_some() {
            continue;
        }
        if let Some(name) = names.get(&member.list_id) {
            lists
                .entry(member.media_id)
                .or_default()
                .push((member.list_id, name.clone()));
        }
    }
    Ok(lists)
}

/// Paths rendered once stay; each of several sharing one takes a suffix
/// of its own identity (see the module docs).
fn with_suffixes(rendered: BTreeMap<String, Vec<(String, Wanted)>>) -> (Entries, usize) {
    let mut entries = Entries::new();
    let mut suffixed = 0;
    let mut crowded = Vec::new();
    for (path, mut sharing) in rendered {
        if sharing.len() == 1
            && let Some((_, wanted)) = sharing.pop()
        {
            entries.insert(path, wanted);
        } else {
            crowded.push((path, sharing));
        }
    }
    for (path, sharing) in crowded {
        for (identity, wanted) in sharing {
            let digest = hex::encode(Sha256::digest(identity.as_bytes()));
            let (folder, name) = path
                .rsplit_once('/')
                .map_or(("", path.as_str()), |(f, n)| (f, n));
            let (stem, ext) = match name.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
                _ => (name, String::new()),
            };
            let mut suffixed_name = format!("{stem}~{}{ext}", &digest[..12]);
            if !folder.is_empty() {
                suffixed_name = format!("{folder}/{suffixed_name}");
            }
            suffixed += 1;
            entries.insert(suffixed_name, wanted);
        }
    }
    (entries, suffixed)
}

/// Makes every configured view on a disk match the database, and removes
/// what is ours from views no longer configured. Blocking.
pub fn update_disk(
    store: &Store,
    out: &Path,
    views: &[ViewTemplate],
    owner: &Owner,
) -> Result<TemplateViewsSummary, ArchiveError> {
    let archive = ArchiveDir::open(out);
    let mut summary = TemplateViewsSummary::default();
    let before = store.template_views()?;
    if views.is_empty() && before.is_empty() {
        return Ok(summary);
    }
    let mut form = views::probe_links(&archive)?;
    let mut written = Vec::new();
    for view in views {
        let (entries, suffixed) = entries(store, view, owner, &|path, size| {
            archive.has_file(path, size)
        })?;
        summary.suffixed += suffixed;
        let root = archive.create_folder(Path::new(&view.name))?;
        let (links_before, alone_before) = (summary.links, summary.left_alone.len());
        if form != Form::Index && !sync_links(&archive, &root, &entries, form, &mut summary)? {
            // This disk makes no links after all: the index form, for this
            // view and the rest.
            summary.links = links_before;
            summary.left_alone.truncate(alone_before);
            form = Form::Index;
        }
        if form == Form::Index {
            remove_links(&archive, &root, &mut summary)?;
            write_disk_index(&root, &view.name, &entries, &mut summary)?;
        }
        summary.views += 1;
        written.push(record(view, &entries));
    }
    for name in dropped(&before, views) {
        if let Some(root) = archive.folder(Path::new(name))? {
            remove_links(&archive, &root, &mut summary)?;
            remove_index_files(&root)?;
            drop(root);
            let _ = archive
                .folder(Path::new(""))?
                .map(|top| top.remove_folder(name));
        }
    }
    store.replace_template_views(&written)?;
    summary.left_alone.sort();
    Ok(summary)
}

/// What the database keeps of a view written: name, template, entries.
fn record(view: &ViewTemplate, entries: &Entries) -> (String, String, usize) {
    (
        view.name.clone(),
        view.template.text().to_owned(),
        entries.len(),
    )
}

/// The views last written that the config file no longer declares.
fn dropped<'a>(
    before: &'a [(String, String)],
    views: &'a [ViewTemplate],
) -> impl Iterator<Item = &'a String> {
    before
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !views.iter().any(|view| &view.name == *name))
}

/// Removes every link of ours under `root` (and folders left empty).
fn remove_links(
    archive: &ArchiveDir,
    root: &Folder,
    summary: &mut TemplateViewsSummary,
) -> Result<(), ArchiveError> {
    sync_links(archive, root, &Entries::new(), Form::Symbolic, summary).map(|_| ())
}

/// Makes the tree under `root` hold exactly `entries` as links in `form`;
/// `false` when a link could not be made because the disk makes none.
fn sync_links(
    archive: &ArchiveDir,
    root: &Folder,
    entries: &Entries,
    form: Form,
    summary: &mut TemplateViewsSummary,
) -> Result<bool, ArchiveError> {
    let mut present = BTreeSet::new();
    walk(archive, root, "", 1, entries, &mut present, summary)?;
    for (path, wanted) in entries {
        if present.contains(path) {
            summary.links += 1;
            continue;
        }
        let segments: Vec<&str> = path.split('/').collect();
        let Some((name, folders)) = segments.split_last() else {
            continue;
        };
        let mut folder: Option<Folder> = None;
        let mut blocked = false;
        for segment in folders {
            let parent = folder.as_ref().unwrap_or(root);
            match parent.create_folder(segment) {
                Ok(child) => folder = Some(child),
                Err(_) => {
                    // A file not ours holds the folder's name.
                    blocked = true;
                    break;
                }
            }
        }
        if blocked {
            continue;
        }
        let at = folder.as_ref().unwrap_or(root);
        if at.entry(name)?.is_some() {
            // Something not ours holds the name (reported by the walk).
            continue;
        }
        let from_view = Path::new(&"../".repeat(segments.len())).join(&wanted.target);
        match views::make_link(
            archive,
            &from_view,
            &wanted.target,
            (at, OsStr::new(name)),
            form,
        )? {
            Linked::Unsupported => return Ok(false),
            _ => {
                summary.added += 1;
                summary.links += 1;
            }
        }
    }
    Ok(true)
}

/// Walks the tree under `folder` (`prefix`: its path in the view, `depth`:
/// folders below the archive root), keeping wanted links, removing other
/// links and folders left empty, noting what is not ours.
fn walk(
    archive: &ArchiveDir,
    folder: &Folder,
    prefix: &str,
    depth: usize,
    entries: &Entries,
    present: &mut BTreeSet<String>,
    summary: &mut TemplateViewsSummary,
) -> Result<(), ArchiveError> {
    for (name, stat) in folder.entries()? {
        let text = name.to_string_lossy().into_owned();
        let path = format!("{prefix}{text}");
        if stat.kind == EntryKind::Folder {
            if let Some(child) = folder.open_folder(&name)? {
                walk(
                    archive,
                    &child,
                    &format!("{path}/"),
                    depth + 1,
                    entries,
                    present,
                    summary,
                )?;
                let empty = child.names()?.is_empty();
                drop(child);
                if empty {
                    folder.remove_folder(&name)?;
                }
            }
            continue;
        }
        if let Some(wanted) = entries.get(&path)
            && is_link_to(archive, folder, &name, &stat, depth, &wanted.target)
        {
            present.insert(path);
            continue;
        }
        if views::is_our_link(&stat) {
            folder.remove_file(&name)?;
            summary.removed += 1;
        } else if !(prefix.is_empty() && is_our_index(folder, &text, &stat)) {
            summary
                .left_alone
                .push(format!("{}", folder.path().join(&name).display()));
        }
    }
    Ok(())
}

/// Whether `name` already is the link wanted: a symbolic link with
/// exactly our relative target, or a hard link to the bytes of `target`.
fn is_link_to(
    archive: &ArchiveDir,
    folder: &Folder,
    name: &OsStr,
    stat: &EntryStat,
    depth: usize,
    target: &Path,
) -> bool {
    if stat.kind == EntryKind::Link {
        let expected = Path::new(&"../".repeat(depth)).join(target);
        return folder
            .read_link(name)
            .is_some_and(|found| found == expected);
    }
    views::same_file(archive, stat, target)
}

/// Our `index.html` or `files.txt` at a view's root (left for the index
/// writer, which rewrites or removes them).
fn is_our_index(folder: &Folder, name: &str, stat: &EntryStat) -> bool {
    (name == PAGE_NAME || name == LIST_NAME)
        && view_index::recognise(folder, name, stat.entry()).is_some()
        || (name == LIST_NAME && read_small(folder, name).is_some_and(|bytes| is_file_list(&bytes)))
}

fn read_small(folder: &Folder, name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    folder
        .open_file(name, crate::archive::dir::Access::Read)
        .ok()?
        .take(256 << 20)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// `files.txt` of a view by template: `<path in the view>\t../<file>`.
pub fn file_list(entries: &Entries) -> String {
    entries
        .iter()
        .map(|(path, wanted)| format!("{path}\t../{}\n", wanted.target.to_string_lossy()))
        .collect()
}

/// Whether `bytes` are a `files.txt` of ours.
fn is_file_list(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        text.lines().all(|line| {
            line.split_once('\t')
                .and_then(|(_, target)| target.strip_prefix("../"))
                .is_some_and(|target| archive_path(target).is_ok())
        })
    })
}

/// Writes the index form at a view's root where it differs.
fn write_disk_index(
    root: &Folder,
    name: &str,
    entries: &Entries,
    summary: &mut TemplateViewsSummary,
) -> Result<(), ArchiveError> {
    let list = file_list(entries);
    let page = view_index::page_from(name, entries, "../");
    summary.indexes += 1;
    summary.links += entries.len();
    let old = read_small(root, LIST_NAME);
    count_index(old.as_deref(), &list, summary);
    for (file_name, bytes) in [(LIST_NAME, list), (PAGE_NAME, page)] {
        if read_small(root, file_name).as_deref() == Some(bytes.as_bytes()) {
            continue;
        }
        root.write_atomically(file_name, |writer| writer.write_all(bytes.as_bytes()))?;
    }
    Ok(())
}

fn remove_index_files(root: &Folder) -> Result<(), ArchiveError> {
    for name in [PAGE_NAME, LIST_NAME] {
        if let Some(stat) = root.stat_entry(name)?
            && is_our_index(root, name, &stat)
        {
            root.remove_file(name)?;
        }
    }
    Ok(())
}

/// Entries added and removed between two `files.txt`.
fn count_index(old: Option<&[u8]>, new: &str, summary: &mut TemplateViewsSummary) {
    let before: BTreeSet<&str> = old
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .map(|text| text.lines().collect())
        .unwrap_or_default();
    let after: BTreeSet<&str> = new.lines().collect();
    summary.added += after.difference(&before).count();
    summary.removed += before.difference(&after).count();
}

/// The views by template on object storage: each an index at its root
/// (`<view>/index.html`, `<view>/files.txt`), rewritten only when its list
/// changes; the index of a view no longer configured is deleted.
pub async fn update_bucket(
    archive: &Archive,
    store: &Store,
    views: &[ViewTemplate],
    owner: &Owner,
) -> Result<TemplateViewsSummary, ArchiveError> {
    let mut summary = TemplateViewsSummary::default();
    let before = store.template_views()?;
    if views.is_empty() && before.is_empty() {
        return Ok(summary);
    }
    let listed = archive.files_under("media").await?;
    let has_file = |path: &Path, size: u64| listed.get(&key(path)) == Some(&size);
    let mut written = Vec::new();
    for view in views {
        let (entries, suffixed) = entries(store, view, owner, &has_file)?;
        summary.suffixed += suffixed;
        let list_key = format!("{}/{LIST_NAME}", view.name);
        let page_key = format!("{}/{PAGE_NAME}", view.name);
        let list = file_list(&entries);
        let old = archive.read_small(&list_key).await?;
        count_index(old.as_deref(), &list, &mut summary);
        summary.links += entries.len();
        summary.indexes += 1;
        summary.views += 1;
        if old.as_deref() != Some(list.as_bytes()) {
            let page = view_index::page_from(&view.name, &entries, "../");
            archive
                .write(&list_key, list.into_bytes(), "text/plain; charset=utf-8")
                .await?;
            archive
                .write(&page_key, page.into_bytes(), "text/html; charset=utf-8")
                .await?;
        }
        written.push(record(view, &entries));
    }
    for name in dropped(&before, views) {
        for file in [PAGE_NAME, LIST_NAME] {
            let key = format!("{name}/{file}");
            if archive.read_small(&key).await?.is_some_and(|bytes| {
                bytes.starts_with(PAGE_MARK.as_bytes()) || is_file_list(&bytes)
            }) {
                archive.delete(&key).await?;
            }
        }
    }
    store.replace_template_views(&written)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_rendered_twice_take_stable_suffixes_and_owners_are_named() {
        let (_dir, store) = crate::store::testing::open();
        for id in ["42", "43", "44"] {
            crate::store::testing::verified(&store, id, 1_800_000_000_000);
        }
        let view = ViewTemplate::new("mine", Some("{connection}/{username}/{year}.{ext}")).unwrap();
        let owner = Owner {
            connection: "conn_A".into(),
            username: "Jane.Doe".into(),
        };
        let (first, suffixed) = entries(&store, &view, &owner, &|_, _| true).unwrap();
        assert_eq!(suffixed, 3);
        let names: Vec<&String> = first.keys().collect();
        assert!(
            names
                .iter()
                .all(|name| name.starts_with("conn_~41/jane-doe/1970~") && name.ends_with(".jpg")),
            "{names:?}"
        );
        // The same again, whatever else is there: the names stay.
        let (again, _) = entries(&store, &view, &owner, &|_, _| true).unwrap();
        assert_eq!(again.keys().collect::<Vec<_>>(), names);
        let (unnamed, _) = entries(&store, &view, &Owner::default(), &|path, _| {
            path.starts_with("media/42")
        })
        .unwrap();
        assert_eq!(
            unnamed.keys().collect::<Vec<_>>(),
            ["unknown/unknown/1970.jpg"]
        );
    }
}
