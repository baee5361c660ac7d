//! The offline archive end to end against the fake Vault+ (loopback only):
//! export checked by `sha256sum -c`, list views whose links all resolve,
//! removals kept then pruned only on request, and changes upstream fetched
//! anew with the old bytes kept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::prelude::*;
use vault_mirror::fake::{FakeList, FakeOptions, FakeServer, Vault};

use crate::common::{
    assert_archive_matches, json_of, media_files, mirror, stored_jpegs, stored_variants,
    variant_rows, vault_mirror,
};
use crate::sandbox::Sandbox;

/// Runs `sha256sum -c SHA256SUMS` in `out`; panics with its output on failure.
fn sha256sum_check(out: &Path) -> usize {
    let output = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(out)
        .output()
        .expect("sha256sum (GNU coreutils) runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sha256sum -c failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().filter(|line| line.ends_with(": OK")).count()
}

fn manifest(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Every entry of every view: (view folder, link name, resolved target).
fn view_links(out: &Path) -> Vec<(String, String, PathBuf)> {
    let mut links = Vec::new();
    let Ok(views) = std::fs::read_dir(out.join("lists")) else {
        return links;
    };
    for view in views.flatten() {
        assert!(view.file_type().unwrap().is_dir());
        for entry in std::fs::read_dir(view.path()).unwrap().flatten() {
            let target = std::fs::canonicalize(entry.path()).unwrap_or_else(|error| {
                panic!("{} does not resolve: {error}", entry.path().display())
            });
            links.push((
                view.file_name().to_string_lossy().into_owned(),
                entry.file_name().to_string_lossy().into_owned(),
                target,
            ));
        }
    }
    links.sort();
    links
}

fn remove_everywhere(vault: &mut Vault, media_id: &str) {
    for list in &mut vault.lists {
        list.members.retain(|member| member != media_id);
    }
}

#[tokio::test]
async fn export_round_trip_is_checked_by_sha256sum() {
    let mut vault = Vault::sample(30, 3);
    // Hostile ids and list names still give checkable, contained paths.
    let template = vault.media.values().next().unwrap().clone();
    for id in ["../../x", "UPPER", "semi;colon\nline"] {
        let mut media = template.clone();
        media.id = id.to_owned();
        vault.media.insert(id.to_owned(), media);
    }
    vault.lists.push(FakeList {
        id: "-1".into(),
        name: "</script><b>\"quoted\" & ünïcode".into(),
        members: vec!["../../x".into(), "UPPER".into(), "semi;colon\nline".into()],
    });
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.mirror.export = true;
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    let expected = stored_variants(&vault, &["full", "thumb"]);
    let export = summary.export.expect("--export wrote the index");
    assert_eq!(export.variants, expected);
    assert!(export.missing.is_empty());

    assert_eq!(sha256sum_check(sandbox.out()), expected);
    let sums = std::fs::read_to_string(sandbox.out().join("SHA256SUMS")).unwrap();
    for line in sums.lines() {
        let (digest, path) = line.split_once("  ").unwrap();
        assert_eq!(digest.len(), 64);
        assert!(
            path.chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '~' | '.' | '-' | '/')),
            "{path}"
        );
    }

    let entries = manifest(sandbox.out());
    assert_eq!(entries.len(), expected);
    let rows = variant_rows(&settings.db);
    for entry in &entries {
        for field in [
            "media_id",
            "label",
            "lists",
            "size",
            "sha256",
            "content_type",
            "media_type",
            "duration",
            "created_at",
            "stored_at",
            "path",
        ] {
            assert!(entry.get(field).is_some(), "{field} missing in {entry}");
        }
        let path = entry["path"].as_str().unwrap();
        let bytes = std::fs::read(sandbox.out().join(path)).unwrap();
        assert_eq!(entry["size"].as_u64().unwrap() as usize, bytes.len());
        let id = entry["media_id"].as_str().unwrap();
        assert!(
            rows.iter()
                .any(|row| row.0 == id && row.2.as_deref() == Some(path))
        );
        assert!(!entry["lists"].as_array().unwrap().is_empty());
    }
    assert!(
        entries
            .iter()
            .any(|entry| entry["media_id"] == "semi;colon\nline")
    );

    // The gallery carries every media, and the hostile list name cannot
    // close its script.
    let page = std::fs::read_to_string(sandbox.out().join("index.html")).unwrap();
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(page.contains("\\u003c/script>\\u003cb>"));

    // `export` alone (no key, no network) writes the same index.
    std::fs::remove_file(sandbox.out().join("SHA256SUMS")).unwrap();
    let output = sandbox.offline(&["export", "--json"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = json_of(&output);
    assert_eq!(printed["command"], "export");
    assert_eq!(printed["variants"].as_u64().unwrap() as usize, expected);
    assert_eq!(sha256sum_check(sandbox.out()), expected);
}

#[test]
fn export_without_an_archive_is_a_usage_error() {
    let empty = tempfile::tempdir().unwrap();
    vault_mirror()
        .args(["export", "--out"])
        .arg(empty.path().join("nothing-here"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no archive at"));
    assert!(!empty.path().join("nothing-here").exists());
}

#[tokio::test]
async fn list_views_follow_membership_and_every_link_resolves() {
    let vault = Vault::sample(24, 3);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    let root = std::fs::canonicalize(sandbox.out()).unwrap();

    let expected_views: BTreeSet<String> = vault
        .lists
        .iter()
        .map(|list| vault_mirror::archive::views::view_name(&list.id, &list.name))
        .collect();
    let links = view_links(sandbox.out());
    let views: BTreeSet<String> = links.iter().map(|(view, _, _)| view.clone()).collect();
    assert_eq!(views, expected_views);
    assert!(views.contains("28489180-best-of-2025-26"), "{views:?}");
    let per_list_files: usize = vault.lists.iter().map(|list| list.members.len() * 2).sum();
    assert_eq!(links.len(), per_list_files);
    for (view, name, target) in &links {
        assert!(
            target.starts_with(root.join("media")),
            "{view}/{name} points outside media/: {}",
            target.display()
        );
        let link = sandbox.out().join("lists").join(view).join(name);
        let relative = std::fs::read_link(&link).unwrap();
        assert!(relative.starts_with("../../media"), "{relative:?}");
    }
    assert_eq!(summary.views.as_ref().unwrap().links, per_list_files);

    // A member leaves one list: its links there go, the bytes stay.
    let (list_id, leaving) = sandbox.server().with_vault(|vault| {
        let list = &mut vault.lists[0];
        (list.id.clone(), list.members.remove(0))
    });
    let files_before = media_files(sandbox.out());
    let again = mirror(&settings).await;
    assert_eq!(again.views.as_ref().unwrap().removed, 2);
    assert_eq!(media_files(sandbox.out()), files_before);
    let links = view_links(sandbox.out());
    assert!(
        !links
            .iter()
            .any(|(view, name, _)| view.starts_with(&format!("{list_id}-"))
                && name.starts_with(&format!("{leaving}.")))
    );
    assert_eq!(links.len(), per_list_files - 2);
}

#[tokio::test]
async fn a_removal_is_kept_then_pruned_only_with_prune_and_within_max_delete() {
    let vault = Vault::sample(40, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    mirror(&settings).await;
    let ids: Vec<String> = vault.media.keys().cloned().collect();

    // Gone from every list upstream: kept on disk and marked.
    let removed = ids[0].clone();
    sandbox
        .server()
        .with_vault(|vault| remove_everywhere(vault, &removed));
    let files_before = media_files(sandbox.out());
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0);
    assert!(summary.prune.is_none());
    assert_eq!(
        media_files(sandbox.out()),
        files_before,
        "deleted without --prune"
    );
    let connection = rusqlite::Connection::open(&settings.db).unwrap();
    let marked: i64 = connection
        .query_row(
            "SELECT count(*) FROM membership WHERE media_id = ?1 AND gone_at IS NOT NULL",
            [&removed],
            |row| row.get(0),
        )
        .unwrap();
    assert!(marked >= 1);
    assert!(
        !view_links(sandbox.out())
            .iter()
            .any(|(_, name, _)| name.starts_with(&format!("{removed}.")))
    );

    // --prune --dry-run only lists.
    settings.mirror.prune = true;
    settings.mirror.dry_run = true;
    let listed = mirror(&settings).await;
    let prune = listed.prune.expect("a prune summary");
    assert!(prune.dry_run);
    let listed_paths: Vec<&str> = prune.files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(listed_paths.len(), 2, "{listed_paths:?}");
    assert!(
        listed_paths
            .iter()
            .all(|path| path.starts_with(&format!("media/{removed}/")))
    );
    assert_eq!(media_files(sandbox.out()), files_before);

    // Over --max-delete: refused whole, exit 3, nothing deleted.
    for id in &ids[1..6] {
        sandbox
            .server()
            .with_vault(|vault| remove_everywhere(vault, id));
    }
    settings.mirror.dry_run = false;
    settings.mirror.max_delete = 5;
    let refused = mirror(&settings).await;
    assert_eq!(refused.exit_code, 3, "{refused:?}");
    let prune = refused.prune.unwrap();
    assert!(prune.refused);
    assert_eq!(prune.files.len(), 12);
    assert!(
        refused
            .errors
            .iter()
            .any(|error| error.contains("--max-delete 5"))
    );
    assert_eq!(media_files(sandbox.out()), files_before);

    // Within the limit: deleted, listed, recorded.
    settings.mirror.max_delete = 12;
    let pruned = mirror(&settings).await;
    assert_eq!(pruned.exit_code, 0, "{pruned:?}");
    let prune = pruned.prune.unwrap();
    assert_eq!((prune.media, prune.files.len()), (6, 12));
    for id in &ids[..6] {
        assert!(
            !sandbox.out().join("media").join(id).exists(),
            "{id} still on disk"
        );
    }
    assert_eq!(media_files(sandbox.out()).len(), files_before.len() - 12);
    let recorded: i64 = connection
        .query_row("SELECT count(*) FROM pruned_files", [], |row| row.get(0))
        .unwrap();
    assert_eq!(recorded, 12);
    // Pruning again finds nothing.
    let nothing = mirror(&settings).await;
    assert!(nothing.prune.unwrap().files.is_empty());

    // Back upstream: fetched again.
    sandbox
        .server()
        .with_vault(|vault| vault.lists[0].members.push(removed.clone()));
    let back = mirror(&settings).await;
    assert_eq!(back.downloaded, 2);
    assert!(sandbox.out().join("media").join(&removed).is_dir());

    // The CLI lists what it would delete, and the guard exits 3.
    for id in &ids[6..10] {
        sandbox
            .server()
            .with_vault(|vault| remove_everywhere(vault, id));
    }
    // The binary runs beside this test's runtime, which keeps serving the fake.
    let cli = |extra: &[&str]| {
        let mut command = sandbox.command(&["mirror"]);
        command.args(extra);
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let dry = cli(&["--prune", "--dry-run"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("would delete: media/").count(),
        8,
        "{stderr}"
    );
    let guarded = cli(&["--prune", "--max-delete", "3"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&guarded.stderr);
    assert_eq!(guarded.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("nothing was deleted"), "{stderr}");
    let done = cli(&["--prune"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("deleted: media/").count(), 8, "{stderr}");
}

#[tokio::test]
async fn a_change_upstream_is_fetched_anew_and_the_old_bytes_are_kept() {
    let vault = Vault::sample(12, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.mirror.export = true;
    mirror(&settings).await;

    let ids: Vec<String> = vault.media.keys().cloned().collect();
    let image = ids
        .iter()
        .find(|id| vault.media[*id].variants["full"].content_type == "image/jpeg")
        .unwrap()
        .clone();
    let retyped = ids
        .iter()
        .find(|id| vault.media[*id].variants["full"].content_type == "image/png")
        .unwrap()
        .clone();
    let restored = ids
        .iter()
        .find(|id| **id != image && **id != retyped)
        .unwrap()
        .clone();
    let old_image = vault.body(&image, "full").unwrap();
    let old_retyped = vault.body(&retyped, "full").unwrap();
    sandbox.server().with_vault(|vault| {
        // New bytes, new size and a later storedAt.
        let variant = vault
            .media
            .get_mut(&image)
            .unwrap()
            .variants
            .get_mut("full")
            .unwrap();
        let mut body = old_image.to_vec();
        body.splice(body.len() - 2..body.len() - 2, *b"edited");
        variant.body = body.into();
        variant.stored_at = variant.stored_at.map(|at| at + 86_400_000);
        // PNG → JPEG, same media.
        let fresh =
            vault_mirror::fake::FakeVariant::stored(&retyped, "full-v2", "image/jpeg", 5_000);
        let variant = vault
            .media
            .get_mut(&retyped)
            .unwrap()
            .variants
            .get_mut("full")
            .unwrap();
        variant.content_type = fresh.content_type;
        variant.body = fresh.body;
        // Stored again, same bytes: fetched anew, nothing to keep.
        let variant = vault
            .media
            .get_mut(&restored)
            .unwrap()
            .variants
            .get_mut("full")
            .unwrap();
        variant.stored_at = variant.stored_at.map(|at| at + 1);
    });
    let current = sandbox.server().with_vault(|vault| vault.clone());

    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    assert_eq!(summary.downloaded, 3, "{summary:?}");
    assert_eq!(
        summary.versions_kept.len(),
        2,
        "{:?}",
        summary.versions_kept
    );
    for (id, old, extension) in [(&image, &old_image, "jpg"), (&retyped, &old_retyped, "png")] {
        let version = summary
            .versions_kept
            .iter()
            .find(|version| &version.media_id == id)
            .unwrap_or_else(|| panic!("no version kept for {id}"));
        assert!(
            version
                .local_path
                .starts_with(&format!(".versions/{id}/full-"))
                && version.local_path.ends_with(extension),
            "{}",
            version.local_path
        );
        assert_eq!(
            std::fs::read(sandbox.out().join(&version.local_path)).unwrap(),
            old.as_ref(),
            "the old bytes of {id}"
        );
    }
    // The new bytes are where the media's full variant lives now.
    for id in [&image, &retyped, &restored] {
        let row = variant_rows(&settings.db)
            .into_iter()
            .find(|row| &row.0 == id && row.1 == "full")
            .unwrap();
        assert_eq!(row.4, "verified");
        let bytes = std::fs::read(sandbox.out().join(row.2.unwrap())).unwrap();
        assert_eq!(bytes, current.body(id, "full").unwrap().as_ref());
    }
    assert!(
        !sandbox
            .out()
            .join(format!("media/{retyped}/full.png"))
            .exists()
    );
    assert!(
        sandbox
            .out()
            .join(format!("media/{retyped}/full.jpg"))
            .exists()
    );

    // The versions are part of the archive: indexed, checked, shown.
    let expected = stored_variants(&vault, &["full", "thumb"]) + 2;
    assert_eq!(sha256sum_check(sandbox.out()), expected);
    let versions: Vec<_> = manifest(sandbox.out())
        .into_iter()
        .filter(|entry| entry["kind"] == "version")
        .collect();
    assert_eq!(versions.len(), 2);
    assert!(versions.iter().all(|entry| entry["kept_at"].is_string()));
    let old_type = versions
        .iter()
        .find(|entry| entry["media_id"] == retyped.as_str())
        .unwrap();
    assert_eq!(old_type["content_type"], "image/png");

    // Nothing changes on a re-run.
    let again = mirror(&settings).await;
    assert_eq!((again.downloaded, again.versions_kept.len()), (0, 0));
}

/// A stored JPEG `full` variant of a listed media (`skip` of them passed over).
fn listed_jpeg(vault: &Vault, skip: usize) -> String {
    stored_jpegs(vault).swap_remove(skip)
}

/// The media's `full` bytes change upstream: new bytes, new size, a later storedAt.
pub(crate) fn change_upstream(server: &FakeServer, media_id: &str) {
    server.with_vault(|vault| {
        let variant = vault
            .media
            .get_mut(media_id)
            .unwrap()
            .variants
            .get_mut("full")
            .unwrap();
        let mut body = variant.body.to_vec();
        body.splice(body.len() - 2..body.len() - 2, *b"edited");
        variant.body = body.into();
        variant.stored_at = variant.stored_at.map(|at| at + 86_400_000);
    });
}

#[cfg(unix)]
/// Every file under `folder` with the sha256 of its bytes, links not followed.
fn tree(folder: &Path) -> Vec<(PathBuf, String)> {
    use sha2::Digest;
    let mut found = Vec::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                let bytes = if kind.is_file() {
                    std::fs::read(entry.path()).unwrap()
                } else {
                    Vec::new()
                };
                found.push((entry.path(), hex::encode(sha2::Sha256::digest(bytes))));
            }
        }
    }
    found.sort();
    found
}

#[cfg(unix)]
fn is_real_folder(path: &Path) -> bool {
    let metadata = std::fs::symlink_metadata(path).unwrap();
    metadata.is_dir() && !metadata.file_type().is_symlink()
}

fn versions_recorded(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM versions", [], |row| row.get(0))
        .unwrap()
}

#[cfg(unix)]
/// `command`, run beside the test's runtime (which keeps serving the fake).
async fn run_binary(mut command: std::process::Command) -> (Option<i32>, String, String) {
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[cfg(unix)]
#[tokio::test]
async fn a_media_folder_planted_as_a_link_is_replaced_and_nothing_outside_is_touched() {
    let vault = Vault::sample(12, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let out = sandbox.out();
    let settings = sandbox.settings();
    assert_eq!(mirror(&settings).await.exit_code, 0);

    // `media/<id>` becomes a link to a folder outside the archive, holding
    // the very files that were there; then the media changes upstream.
    let id = listed_jpeg(&vault, 0);
    let outside = sandbox.path("outside");
    std::fs::rename(out.join("media").join(&id), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("media").join(&id)).unwrap();
    let outside_before = tree(&outside);
    assert!(!outside_before.is_empty());
    // export does not index bytes outside the archive.
    let (code, stdout, stderr) = run_binary(sandbox.command(&["export", "--json"])).await;
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    let export: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        export["missing"]
            .as_array()
            .unwrap()
            .contains(&format!("media/{id}/full.jpg").into()),
        "{export}"
    );
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(!sums.contains(&format!("media/{id}/")), "{sums}");
    change_upstream(sandbox.server(), &id);

    let (code, _, stderr) = run_binary(sandbox.command(&["mirror"])).await;
    assert_eq!(code, Some(0), "{stderr}");
    // Nothing outside was read into .versions/, written, renamed or deleted.
    assert_eq!(tree(&outside), outside_before);
    let planted = out.join("media").join(&id);
    assert!(is_real_folder(&planted));
    assert!(
        stderr.contains(&format!(
            "{} was a link (to {})",
            planted.display(),
            outside.display()
        )) && stderr.contains("replaced it by a real folder"),
        "{stderr}"
    );
    assert_eq!(versions_recorded(&settings.db), 0);
    assert!(!out.join(".versions").exists());
    // The media is mirrored again, inside the archive, from upstream.
    let current = sandbox.server().with_vault(|vault| vault.clone());
    assert_eq!(
        assert_archive_matches(out, &settings.db, &current),
        stored_variants(&current, &["full", "thumb"])
    );
    assert_eq!(
        std::fs::read(planted.join("full.jpg")).unwrap(),
        current.body(&id, "full").unwrap().as_ref()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_planted_as_a_link_is_never_read_or_written_through() {
    let vault = Vault::sample(12, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let out = sandbox.out();
    let settings = sandbox.settings();
    assert_eq!(mirror(&settings).await.exit_code, 0);

    // `full.jpg` becomes a link to a copy of its bytes outside the archive,
    // and a `.part` beside it a link to another outside file.
    let id = listed_jpeg(&vault, 0);
    let folder = out.join("media").join(&id);
    let outside = sandbox.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(folder.join("full.jpg"), outside.join("full.jpg")).unwrap();
    std::fs::write(outside.join("notes.txt"), b"someone's notes").unwrap();
    std::os::unix::fs::symlink(outside.join("full.jpg"), folder.join("full.jpg")).unwrap();
    std::os::unix::fs::symlink(outside.join("notes.txt"), folder.join("full.jpg.part")).unwrap();
    let outside_before = tree(&outside);

    // verify does not vouch for bytes outside the archive.
    let (code, stdout, stderr) = run_binary(sandbox.command(&["verify"])).await;
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("damaged: media/{id}/full.jpg")) && stderr.contains("link"),
        "{stderr}"
    );

    change_upstream(sandbox.server(), &id);
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    assert!(summary.versions_kept.is_empty(), "{summary:?}");
    assert_eq!(versions_recorded(&settings.db), 0);
    assert_eq!(tree(&outside), outside_before);
    // Links replaced by the real, verified file; no `.part` left.
    let current = sandbox.server().with_vault(|vault| vault.clone());
    let metadata = std::fs::symlink_metadata(folder.join("full.jpg")).unwrap();
    assert!(metadata.is_file() && !metadata.file_type().is_symlink());
    assert_eq!(
        std::fs::read(folder.join("full.jpg")).unwrap(),
        current.body(&id, "full").unwrap().as_ref()
    );
    assert!(std::fs::symlink_metadata(folder.join("full.jpg.part")).is_err());
    assert_archive_matches(out, &settings.db, &current);
}

#[tokio::test]
async fn damaged_bytes_are_quarantined_never_kept_as_a_version() {
    let vault = Vault::sample(12, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let out = sandbox.out();
    let mut settings = sandbox.settings();
    settings.mirror.export = true;
    assert_eq!(mirror(&settings).await.exit_code, 0);
    let corrupt = |id: &str| {
        let path = out.join("media").join(id).join("full.jpg");
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle..middle + 4].copy_from_slice(b"XXXX");
        std::fs::write(&path, &bytes).unwrap();
        bytes
    };

    // One found damaged by `verify`, then fetched again (same bytes upstream).
    let found = listed_jpeg(&vault, 0);
    let found_bytes = corrupt(&found);
    vault_mirror()
        .args(["verify", "--out"])
        .arg(out)
        .assert()
        .code(3)
        .stderr(predicates::str::contains(format!(
            "damaged: media/{found}/full.jpg"
        )));
    // One damaged unnoticed, then changed upstream.
    let changed = listed_jpeg(&vault, 1);
    let changed_bytes = corrupt(&changed);
    change_upstream(sandbox.server(), &changed);

    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    assert!(summary.versions_kept.is_empty(), "{summary:?}");
    assert_eq!(versions_recorded(&settings.db), 0);
    assert!(!out.join(".versions").exists());
    for (id, bytes) in [(&found, &found_bytes), (&changed, &changed_bytes)] {
        assert_eq!(
            &std::fs::read(
                out.join(".vault-mirror/quarantine")
                    .join(id)
                    .join("full.jpg")
            )
            .unwrap(),
            bytes,
            "the damaged bytes of {id} are in the quarantine"
        );
    }
    // The index names only verified bytes, and checks out.
    let current = sandbox.server().with_vault(|vault| vault.clone());
    let expected = stored_variants(&current, &["full", "thumb"]);
    assert_eq!(sha256sum_check(out), expected);
    let entries = manifest(out);
    assert!(entries.iter().all(|entry| entry["kind"] == "variant"));
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for bytes in [&found_bytes, &changed_bytes] {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(bytes));
        assert!(!sums.contains(&digest));
        assert!(
            entries
                .iter()
                .all(|entry| entry["sha256"] != digest.as_str())
        );
    }
    assert_archive_matches(out, &settings.db, &current);
}
