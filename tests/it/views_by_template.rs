//! Views by template (`[[views]]`, issue 21): links over `media/`, never
//! copies; a template change rewrites the view alone; hostile strings
//! never lead outside the view; a bad template is refused before any work.
//! Unix only: it compares inodes and modification times (`MetadataExt`).

#![cfg(unix)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use vault_mirror::fake::{FakeOptions, Vault};
use vault_mirror::pipeline::Outcome;
use vault_mirror::template::ViewTemplate;

use crate::common::mirror;
use crate::sandbox::Sandbox;

/// Every entry under `root` (not folders): its path from `root` → what
/// it resolves to (canonical).
fn view_entries(root: &Path) -> BTreeMap<PathBuf, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let target = std::fs::canonicalize(&path).unwrap();
                found.insert(path.strip_prefix(root).unwrap().to_owned(), target);
            }
        }
    }
    found
}

/// media/ as (path → inode and modification time): unchanged means
/// nothing was moved, rewritten or fetched again.
fn media_tree(out: &Path) -> BTreeMap<PathBuf, (u64, i64)> {
    let mut found = BTreeMap::new();
    for folder in std::fs::read_dir(out.join("media")).unwrap() {
        for file in std::fs::read_dir(folder.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            found.insert(path, (meta.ino(), meta.mtime()));
        }
    }
    found
}

fn verified_count(db: &Path) -> usize {
    crate::common::variant_rows(db)
        .into_iter()
        .filter(|row| row.4 == "verified")
        .count()
}

#[tokio::test]
async fn a_template_view_links_every_file_and_a_new_template_moves_nothing() {
    let vault = Vault::sample(30, 4);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.layout.views = vec![
        ViewTemplate::new("by-date", None).unwrap(),
        // full and thumb of a PNG share `{id}.{ext}`: suffixed.
        ViewTemplate::new("by-list", Some("{list}/{date:%Y-%m}/{id}.{ext}")).unwrap(),
    ];
    let first = mirror(&settings).await;
    assert_eq!(first.outcome, Outcome::Complete, "{first:?}");
    let files = verified_count(&settings.db);
    let by_date = view_entries(&sandbox.out().join("by-date"));
    assert_eq!(by_date.len(), files);
    for (path, target) in &by_date {
        let text = path.to_string_lossy();
        let parts: Vec<&str> = text.split('/').collect();
        assert_eq!(parts.len(), 3, "{text}");
        assert!(
            parts[2].starts_with(parts[1]) && parts[1].starts_with(parts[0]),
            "{text}"
        );
        assert!(
            target.starts_with(sandbox.out().canonicalize().unwrap().join("media")),
            "{text}"
        );
        let link = sandbox.out().join("by-date").join(path);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "a copy: {text}"
        );
    }
    let by_list = view_entries(&sandbox.out().join("by-list"));
    assert!(by_list.len() > files, "media in two lists are in both");
    let summary = first.template_views.unwrap();
    assert!(summary.suffixed > 0, "{summary:?}");
    assert!(
        by_list
            .keys()
            .any(|path| path.to_string_lossy().contains('~'))
    );

    // The same run again changes nothing; a new template rewrites the view
    // alone: nothing fetched, moved or rewritten under media/.
    let media_before = media_tree(sandbox.out());
    let stats = sandbox.server().stats();
    let again = mirror(&settings).await;
    let unchanged = again.template_views.unwrap();
    assert_eq!(
        (unchanged.added, unchanged.removed),
        (0, 0),
        "{unchanged:?}"
    );
    settings.layout.views[0] =
        ViewTemplate::new("by-date", Some("{type}/{year}/{id}_{label}.{ext}")).unwrap();
    let changed = mirror(&settings).await;
    let after = sandbox.server().stats();
    assert_eq!(changed.downloaded, 0);
    assert_eq!(after.media_requests, stats.media_requests);
    assert_eq!(after.media_bytes_served, stats.media_bytes_served);
    assert_eq!(media_tree(sandbox.out()), media_before);
    let views = changed.template_views.unwrap();
    assert_eq!((views.added, views.removed), (files, files), "{views:?}");
    let by_type = view_entries(&sandbox.out().join("by-date"));
    assert_eq!(by_type.len(), files);
    assert!(by_type.keys().all(|path| {
        let text = path.to_string_lossy();
        text.starts_with("image/") || text.starts_with("video/")
    }));
    // The same files, under other names.
    let targets = |entries: &BTreeMap<PathBuf, PathBuf>| {
        let mut targets: Vec<PathBuf> = entries.values().cloned().collect();
        targets.sort();
        targets
    };
    assert_eq!(targets(&by_type), targets(&by_date));

    // A view dropped from the config file goes; media/ stays.
    settings.layout.views.truncate(1);
    mirror(&settings).await;
    assert!(!sandbox.out().join("by-list").exists());
    assert_eq!(media_tree(sandbox.out()), media_before);
}

#[tokio::test]
async fn hostile_list_names_never_lead_outside_the_view() {
    let mut vault = Vault::sample(12, 3);
    let long = "é".repeat(200);
    for (list, name) in vault
        .lists
        .iter_mut()
        .zip(["../../../escape", "con", long.as_str()])
    {
        list.name = format!("{name}\0/..\\nul");
    }
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.layout.views = vec![
        ViewTemplate::new("lists-by-name", Some("{list}/{list_id}/{id}_{label}.{ext}")).unwrap(),
    ];
    let summary = mirror(&settings).await;
    assert_eq!(summary.outcome, Outcome::Complete, "{summary:?}");
    let root = sandbox.out().join("lists-by-name");
    let entries = view_entries(&root);
    assert!(!entries.is_empty());
    for path in entries.keys() {
        assert_eq!(path.components().count(), 3, "{path:?}");
        for part in path.iter() {
            let part = part.to_string_lossy();
            assert!(
                part.len() <= 255 && part != ".." && !part.contains('\\'),
                "{path:?}"
            );
            assert_ne!(part.to_ascii_lowercase(), "con", "{path:?}");
        }
    }
    // Nothing was written beside the archive.
    let beside: Vec<_> = std::fs::read_dir(sandbox.out().parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !beside.iter().any(|name| name.contains("escape")),
        "{beside:?}"
    );
}

#[test]
fn a_bad_template_is_refused_before_any_work() {
    let vault = Vault::sample(4, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    std::fs::create_dir_all(sandbox.out()).unwrap();
    std::fs::write(
        sandbox.out().join("vault-mirror.toml"),
        "[[views]]\nname = \"by-date\"\npath = \"{date:%Y}/{title}.{ext}\"\n",
    )
    .unwrap();
    let printed = sandbox.run(&mut sandbox.command(&["mirror"]), 2);
    let text = printed.text();
    assert!(text.contains("views.path"), "{text}");
    assert!(
        text.contains("unknown field `{title}`; the fields are id, label, ext"),
        "{text}"
    );
    let stats = sandbox.server().stats();
    assert_eq!(stats.api_calls, 0, "work was done before the refusal");
    assert!(!sandbox.out().join("media").exists());
}

#[test]
fn on_a_disk_without_links_a_template_view_is_an_index() {
    let vault = Vault::sample(6, 2);
    let mut sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    sandbox.env("VAULT_MIRROR_TEST_NO_LINKS", "1");
    std::fs::create_dir_all(sandbox.out()).unwrap();
    std::fs::write(
        sandbox.out().join("vault-mirror.toml"),
        "views = [\"by-date\"]\n",
    )
    .unwrap();
    let summary = sandbox.json(&mut sandbox.command(&["mirror", "--json"]), 0);
    let views = &summary["template_views"];
    assert_eq!(views["indexes"], 1, "{summary:#}");
    let root = sandbox.out().join("by-date");
    let names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let files = std::fs::read_to_string(root.join("files.txt")).unwrap();
    assert_eq!(
        files.lines().count() as u64,
        views["links"].as_u64().unwrap()
    );
    for line in files.lines() {
        let (path, target) = line.split_once('\t').unwrap();
        assert_eq!(path.split('/').count(), 3, "{line}");
        // Relative to the view's folder, a file of the archive.
        assert!(root.join(target).is_file(), "{line}");
    }
    let page = std::fs::read_to_string(root.join("index.html")).unwrap();
    assert!(page.contains("href=\"../media/"), "{page}");
}
