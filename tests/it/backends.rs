//! The archive's maintenance, once for both backends: every test body here
//! runs twice, on a local folder (`--out DIR`) and on object storage
//! (`--out s3://bucket/prefix`, moto on loopback), each in a `Sandbox` of
//! that mode, through the binary only, so it holds whatever the code behind
//! the command line. `both!(name, |backend| …)` makes `name::disk` and
//! `name::bucket`. What only a bucket has (an object's type and sha256
//! metadata, multipart uploads) is checked inside the same body, under
//! `if backend == Backend::Bucket`; the rest of the bucket's own behaviour
//! is in `s3`.
//!
//! The disk side runs with `VAULT_MIRROR_TEST_NO_LINKS=1`: its list views
//! are index files, as they are on a bucket, so both lists of files
//! compare equal. Three of these failed on the bucket while the two
//! backends had separate code (a set-aside the run never heard of, rotted
//! bytes kept as a version on the strength of their metadata, a broken
//! database the finish stage only noted); they pass now that both go
//! through `archive::Archive`.
//!
//! Restoring the state from the bucket's snapshot is tested on the bucket
//! only: on a disk the database lives inside the archive
//! (`<out>/.vault-mirror/state.sqlite`), so there is no snapshot to lose it
//! apart from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};
use vault_mirror::fake::{FakeOptions, FakeServer, Vault};

use crate::archive::change_upstream;
use crate::common::{Printed, listed_media, require, stored_jpegs, stored_variants};
use crate::moto::{BUCKET, PREFIX, assert_objects_match, incomplete_uploads, objects, python};
use crate::sandbox::Sandbox;

/// Which archive a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Disk,
    Bucket,
}

/// A sandbox (a fake Vault+, an empty archive) on one backend, and what
/// the bodies here ask of the archive whichever it is.
struct Archive {
    backend: Backend,
    sandbox: Sandbox,
    /// The vault as the test started it.
    vault: Vault,
}

impl Archive {
    /// `vault` served by a fake; Err (for `require!`) when the bucket's
    /// moto is missing.
    fn new(backend: Backend, vault: Vault, options: FakeOptions) -> Result<Archive, String> {
        let sandbox = match backend {
            Backend::Disk => {
                let mut sandbox = Sandbox::start_in_thread(&vault, options);
                sandbox.env("VAULT_MIRROR_TEST_NO_LINKS", "1");
                sandbox
            }
            Backend::Bucket => Sandbox::start_in_bucket(&vault, options)?,
        };
        Ok(Archive {
            backend,
            sandbox,
            vault,
        })
    }

    /// A sample vault of `media` media in `lists` lists.
    fn sample(backend: Backend, media: usize, lists: usize) -> Result<Archive, String> {
        Archive::new(backend, Vault::sample(media, lists), FakeOptions::default())
    }

    fn server(&self) -> &FakeServer {
        self.sandbox.server()
    }

    /// `vault-mirror <args> --json` against this archive and the fake.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command(args);
        command.arg("--json");
        command
    }

    /// Runs `args`, which must exit `code`.
    fn run(&self, args: &[&str], code: i32) -> Printed {
        self.sandbox.run(&mut self.command(args), code)
    }

    /// Runs `args`, which must exit `code`: its `--json`.
    fn run_ok(&self, args: &[&str], code: i32) -> serde_json::Value {
        self.run(args, code).json()
    }

    /// `mirror <args>` with `--events` into a file, which must exit
    /// `code`: the run and its events.
    fn mirror_with_events(&self, args: &[&str], code: i32) -> (Printed, Vec<serde_json::Value>) {
        let events = self.sandbox.path("events.ndjson");
        let _ = std::fs::remove_file(&events);
        let mut all = vec!["mirror"];
        all.extend_from_slice(args);
        let run = self
            .sandbox
            .run(self.command(&all).arg("--events").arg(&events), code);
        let lines = std::fs::read_to_string(&events)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (run, lines)
    }

    /// Every file (disk) or object (bucket) of the archive: its key
    /// relative to the root → its bytes.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        match self.backend {
            Backend::Disk => {
                let root = self.sandbox.out();
                let mut found = BTreeMap::new();
                let mut stack = vec![root.to_path_buf()];
                while let Some(folder) = stack.pop() {
                    let Ok(entries) = std::fs::read_dir(&folder) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let kind = entry.file_type().unwrap();
                        let path = entry.path();
                        if kind.is_dir() {
                            stack.push(path);
                        } else {
                            let key = path.strip_prefix(root).unwrap();
                            let key = key.to_string_lossy().replace('\\', "/");
                            let bytes = if kind.is_file() {
                                std::fs::read(&path).unwrap()
                            } else {
                                Vec::new()
                            };
                            found.insert(key, bytes);
                        }
                    }
                }
                found
            }
            Backend::Bucket => {
                let out = python(
                    self.sandbox.moto(),
                    &format!(
                        "import base64\n\
                         found = {{}}\n\
                         for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{BUCKET}', Prefix='{PREFIX}/'):\n\
                         \x20   for item in page.get('Contents', []):\n\
                         \x20       body = s3.get_object(Bucket='{BUCKET}', Key=item['Key'])['Body'].read()\n\
                         \x20       found[item['Key'][len('{PREFIX}/'):]] = base64.b64encode(body).decode()\n\
                         print(json.dumps(found))"
                    ),
                );
                let found: BTreeMap<String, String> = serde_json::from_str(&out).unwrap();
                use base64::Engine as _;
                found
                    .into_iter()
                    .map(|(key, body)| {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(body)
                            .unwrap();
                        (key, bytes)
                    })
                    .collect()
            }
        }
    }

    /// The keys under `folder/` (e.g. `media`).
    fn keys_under(&self, folder: &str) -> Vec<String> {
        self.files()
            .into_keys()
            .filter(|key| key.starts_with(&format!("{folder}/")))
            .collect()
    }

    /// The bytes at `key`, if any.
    fn read(&self, key: &str) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Disk => std::fs::read(self.sandbox.out().join(key)).ok(),
            Backend::Bucket => self.files().remove(key),
        }
    }

    fn delete(&self, key: &str) {
        match self.backend {
            Backend::Disk => std::fs::remove_file(self.sandbox.out().join(key)).unwrap(),
            Backend::Bucket => {
                python(
                    self.sandbox.moto(),
                    &format!("s3.delete_object(Bucket='{BUCKET}', Key='{PREFIX}/{key}')"),
                );
            }
        }
    }

    /// Other bytes written at `key` by someone else: on a bucket, a plain
    /// PUT (no sha256 metadata).
    fn overwrite(&self, key: &str, bytes: &[u8]) {
        self.put(key, bytes, false);
    }

    /// The bytes at `key` changed under the record of them (bit rot): on a
    /// bucket, the object keeps its metadata (sha256, type).
    fn rot(&self, key: &str, bytes: &[u8]) {
        self.put(key, bytes, true);
    }

    fn put(&self, key: &str, bytes: &[u8], keep_metadata: bool) {
        match self.backend {
            Backend::Disk => std::fs::write(self.sandbox.out().join(key), bytes).unwrap(),
            Backend::Bucket => {
                use base64::Engine as _;
                let body = base64::engine::general_purpose::STANDARD.encode(bytes);
                let key = format!("{PREFIX}/{key}");
                let extra = if keep_metadata {
                    "old = s3.head_object(Bucket=bucket, Key=key)\n\
                     extra = dict(Metadata=old['Metadata'], ContentType=old['ContentType'])\n"
                } else {
                    "extra = {}\n"
                };
                python(
                    self.sandbox.moto(),
                    &format!(
                        "import base64\nbucket, key = '{BUCKET}', '{key}'\n{extra}\
                         s3.put_object(Bucket=bucket, Key=key, Body=base64.b64decode('{body}'), **extra)"
                    ),
                );
            }
        }
    }

    /// The state database this archive's commands use.
    fn db(&self) -> PathBuf {
        self.sandbox.db()
    }

    fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).unwrap()
    }

    /// How many (full, thumb) variants a mirror of the starting vault holds.
    fn expected(&self) -> usize {
        stored_variants(&self.vault, &["full", "thumb"])
    }

    /// A first mirror, complete.
    fn mirrored(self) -> Archive {
        let summary = self.run_ok(&["mirror"], 0);
        assert_eq!(
            summary["downloaded"].as_u64(),
            Some(self.expected() as u64),
            "{summary}"
        );
        self
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `verify --json`'s findings: (path, problem), sorted.
fn findings(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {report}"))
        .iter()
        .map(|finding| {
            let text = |name: &str| finding[name].as_str().unwrap().to_owned();
            (text("path"), text("problem"))
        })
        .collect();
    found.sort_unstable();
    found
}

fn pair(path: &str, problem: &str) -> (String, String) {
    (path.to_owned(), problem.to_owned())
}

/// The key of media `id`'s `full` JPEG.
fn full_jpeg(id: &str) -> String {
    format!("media/{}/full.jpg", vault_mirror::names::safe_name(id))
}

/// `bytes` with one bit flipped in the middle: same size, other bytes.
fn flipped(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    bytes
}

/// Every media file of the archive holds the fake's current bytes, and
/// there are `count` of them.
fn assert_media_match(archive: &Archive, count: usize) {
    let current = archive.server().with_vault(|vault| vault.clone());
    let media: Vec<(String, Vec<u8>)> = archive
        .files()
        .into_iter()
        .filter(|(key, _)| key.starts_with("media/"))
        .collect();
    for (key, bytes) in &media {
        let (folder, file) = key["media/".len()..].split_once('/').unwrap();
        let label = file.split('.').next().unwrap();
        let id = current
            .media
            .keys()
            .find(|id| vault_mirror::names::safe_name(id) == folder)
            .unwrap_or_else(|| panic!("{key} is no media of the vault"));
        let body = current.body(id, label).unwrap();
        assert!(bytes == body.as_ref(), "{key} holds other bytes");
    }
    assert_eq!(media.len(), count, "{:?}", media.iter().map(|m| &m.0));
}

/// `mod name { fn disk; fn bucket }`: two tests, each running `body` on
/// its backend. Attributes before the name go to the bucket's twin only.
macro_rules! both {
    ($(#[$bucket:meta])* $name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn disk() {
                let body: fn(Backend) = $body;
                body(Backend::Disk);
            }

            #[test]
            $(#[$bucket])*
            fn bucket() {
                let body: fn(Backend) = $body;
                body(Backend::Bucket);
            }
        }
    };
}

both!(
    verify_fast_finds_a_deleted_and_a_truncated_file,
    |backend| {
        let archive = require!(Archive::sample(backend, 10, 2));
        let archive = archive.mirrored();
        let intact = archive.run_ok(&["verify", "--fast"], 0);
        assert_eq!(intact["outcome"], "intact", "{intact}");
        assert_eq!(intact["checked"].as_u64(), Some(archive.expected() as u64));
        assert_eq!(intact["out"], archive.sandbox.location().as_str());

        let media = archive.keys_under("media");
        let (deleted, truncated) = (&media[0], &media[1]);
        archive.delete(deleted);
        let bytes = archive.read(truncated).unwrap();
        archive.overwrite(truncated, &bytes[..bytes.len() / 2]);
        let expected = vec![pair(deleted, "missing"), pair(truncated, "damaged")];
        let fast = archive.run_ok(&["verify", "--fast"], 3);
        assert_eq!(findings(&fast), expected, "{fast}");
        let full = archive.run_ok(&["verify"], 3);
        assert_eq!(findings(&full), expected, "{full}");
    }
);

both!(verify_full_finds_bytes_rotted_in_place, |backend| {
    let archive = require!(Archive::sample(backend, 10, 2));
    let archive = archive.mirrored();
    let key = &archive.keys_under("media")[2];
    let bytes = archive.read(key).unwrap();
    archive.rot(key, &flipped(&bytes));
    // `--fast` looks at sizes (and, on a bucket, at the sha256 metadata,
    // which rot leaves as it was): the same size passes.
    let fast = archive.run_ok(&["verify", "--fast"], 0);
    assert_eq!(fast["outcome"], "intact", "{fast}");
    // In full, every byte is hashed again.
    let full = archive.run_ok(&["verify"], 3);
    assert_eq!(findings(&full), vec![pair(key, "damaged")], "{full}");
    // Found once, it is found by `--fast` too from now on.
    let fast = archive.run_ok(&["verify", "--fast"], 3);
    assert_eq!(findings(&fast), vec![pair(key, "damaged")], "{fast}");
});

both!(
    verify_repair_fetches_again_and_a_second_verify_is_clean,
    |backend| {
        let archive = require!(Archive::sample(backend, 10, 2));
        let archive = archive.mirrored();
        let intact = archive.run_ok(&["verify"], 0);
        assert_eq!(intact["outcome"], "intact", "{intact}");
        assert_eq!(intact["out"], archive.sandbox.location().as_str());
        let id = stored_jpegs(&archive.vault)[0].clone();
        let damaged_key = full_jpeg(&id);
        let deleted = archive
            .keys_under("media")
            .into_iter()
            .find(|key| *key != damaged_key)
            .unwrap();
        archive.delete(&deleted);
        let damaged = flipped(&archive.read(&damaged_key).unwrap());
        archive.overwrite(&damaged_key, &damaged);
        // Same size, other bytes (on a bucket, no sha256 metadata either):
        // `--fast` finds only the missing one, a full verify both.
        let mut expected = vec![pair(&deleted, "missing"), pair(&damaged_key, "damaged")];
        expected.sort_unstable();
        let fast = archive.run_ok(&["verify", "--fast"], 3);
        assert_eq!(findings(&fast), vec![pair(&deleted, "missing")], "{fast}");
        let full = archive.run_ok(&["verify"], 3);
        assert_eq!(findings(&full), expected, "{full}");

        let repaired = archive.run_ok(&["verify", "--repair"], 0);
        assert_eq!(repaired["outcome"], "repaired", "{repaired}");
        assert_eq!(findings(&repaired), expected, "{repaired}");
        assert_media_match(&archive, archive.expected());
        if backend == Backend::Bucket {
            // Each object's type and sha256 metadata as at the first
            // mirror, and no multipart upload left open.
            let moto = archive.sandbox.moto();
            assert_eq!(
                assert_objects_match(moto, &archive.vault),
                archive.expected()
            );
            assert_eq!(incomplete_uploads(moto), Vec::<String>::new());
        }
        // The damaged bytes are set aside, never kept as a version.
        let aside = format!(
            ".vault-mirror/quarantine/{}/full.jpg",
            vault_mirror::names::safe_name(&id)
        );
        assert_eq!(archive.read(&aside).as_deref(), Some(&damaged[..]));
        assert_eq!(archive.keys_under(".versions"), Vec::<String>::new());

        let again = archive.run_ok(&["verify"], 0);
        assert_eq!(again["outcome"], "intact", "{again}");
        assert_eq!(again["checked"].as_u64(), Some(archive.expected() as u64));
    }
);

both!(
    a_change_upstream_keeps_the_old_bytes_as_a_version,
    |backend| {
        let archive = require!(Archive::sample(backend, 8, 2));
        let archive = archive.mirrored();
        let id = stored_jpegs(&archive.vault)[0].clone();
        let key = full_jpeg(&id);
        let old = archive.read(&key).unwrap();
        change_upstream(archive.server(), &id);
        let new = archive
            .server()
            .with_vault(|vault| vault.body(&id, "full").unwrap());

        let summary = archive.run_ok(&["mirror"], 0);
        assert_eq!(summary["downloaded"], 1, "{summary}");
        let kept = summary["versions_kept"].as_array().unwrap();
        assert_eq!(kept.len(), 1, "{summary}");
        let version = kept[0]["local_path"].as_str().unwrap();
        let dir = vault_mirror::names::safe_name(&id);
        assert!(
            version.starts_with(&format!(".versions/{dir}/full-")) && version.ends_with(".jpg"),
            "{version}"
        );
        assert_eq!(archive.keys_under(".versions"), vec![version.to_owned()]);
        assert_eq!(archive.read(version), Some(old.clone()));
        assert_eq!(archive.read(&key).as_deref(), Some(new.as_ref()));
        // Recorded, with the hash of the old bytes and what replaced them.
        let recorded: Vec<(String, String, String)> = archive
            .sql()
            .prepare("SELECT local_path, sha256, replaced_by FROM versions")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            recorded,
            vec![(version.to_owned(), sha256(&old), sha256(&new))]
        );
        assert_eq!(
            archive.keys_under(".vault-mirror/quarantine"),
            Vec::<String>::new()
        );
        assert_media_match(&archive, archive.expected());
        if backend == Backend::Bucket {
            // The new object's type and sha256 metadata are the new bytes'.
            let current = archive.server().with_vault(|vault| vault.clone());
            assert_objects_match(archive.sandbox.moto(), &current);
        }
        let verify = archive.run_ok(&["verify"], 0);
        assert_eq!(verify["outcome"], "intact", "{verify}");
        // Nothing more on a re-run.
        let again = archive.run_ok(&["mirror"], 0);
        assert_eq!(again["downloaded"], 0, "{again}");
        assert_eq!(again["versions_kept"].as_array().map(Vec::len), Some(0));
    }
);

/// A first mirror, then other bytes at media `id`'s `full` file (`rot`:
/// under its record; else written over it), then a change upstream.
/// Returns the bytes that were in the way.
fn damaged_then_changed_upstream(archive: &Archive, id: &str, rot: bool) -> Vec<u8> {
    let key = full_jpeg(id);
    let damaged = flipped(&archive.read(&key).unwrap());
    if rot {
        archive.rot(&key, &damaged);
    } else {
        archive.overwrite(&key, &damaged);
    }
    change_upstream(archive.server(), id);
    damaged
}

/// The commit after a change upstream set `damaged` aside at exactly
/// `.vault-mirror/quarantine/<media>/<file>`, kept no version, and put the
/// new bytes in place.
fn assert_quarantined_not_kept(
    archive: &Archive,
    summary: &serde_json::Value,
    id: &str,
    damaged: &[u8],
) {
    assert_eq!(summary["downloaded"], 1, "{summary}");
    assert_eq!(
        summary["versions_kept"].as_array().map(Vec::len),
        Some(0),
        "{summary}"
    );
    assert_eq!(archive.keys_under(".versions"), Vec::<String>::new());
    let versions: i64 = archive
        .sql()
        .query_row("SELECT count(*) FROM versions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(versions, 0);
    let aside = format!(
        ".vault-mirror/quarantine/{}/full.jpg",
        vault_mirror::names::safe_name(id)
    );
    assert_eq!(
        archive.keys_under(".vault-mirror/quarantine"),
        vec![aside.clone()]
    );
    assert_eq!(archive.read(&aside).as_deref(), Some(damaged));
    assert_media_match(archive, archive.expected());
}

// The quarantine's key is the same on both (the local side builds it with
// `archive::dir::quarantine_path`, the bucket's by hand today).
both!(
    bytes_no_longer_as_verified_are_quarantined_not_kept,
    |backend| {
        let archive = require!(Archive::sample(backend, 8, 2));
        let archive = archive.mirrored();
        let id = stored_jpegs(&archive.vault)[0].clone();
        let damaged = damaged_then_changed_upstream(&archive, &id, false);
        let summary = archive.run_ok(&["mirror"], 0);
        assert_quarantined_not_kept(&archive, &summary, &id, &damaged);
    }
);

both!(setting_bytes_aside_is_reported_in_the_events, |backend| {
    let archive = require!(Archive::sample(backend, 8, 2));
    let archive = archive.mirrored();
    let id = stored_jpegs(&archive.vault)[0].clone();
    let damaged = damaged_then_changed_upstream(&archive, &id, false);
    let (run, events) = archive.mirror_with_events(&[], 0);
    assert_quarantined_not_kept(&archive, &run.json(), &id, &damaged);
    // One event names both where the bytes were and where they are now.
    let dir = vault_mirror::names::safe_name(&id);
    let (from, to) = (
        format!("media/{dir}/full.jpg"),
        format!(".vault-mirror/quarantine/{dir}/full.jpg"),
    );
    let told: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| {
            let text = event.to_string();
            text.contains(&from) && text.contains(&to)
        })
        .collect();
    assert_eq!(told.len(), 1, "{events:#?}");
});

both!(
    bytes_rotted_under_their_record_are_quarantined_not_kept,
    |backend| {
        let archive = require!(Archive::sample(backend, 8, 2));
        let archive = archive.mirrored();
        let id = stored_jpegs(&archive.vault)[0].clone();
        let damaged = damaged_then_changed_upstream(&archive, &id, true);
        let summary = archive.run_ok(&["mirror"], 0);
        assert_quarantined_not_kept(&archive, &summary, &id, &damaged);
    }
);

/// A listed media with both of its variants stored, taken off every list
/// upstream; returns its id.
fn remove_one_upstream(archive: &Archive) -> String {
    let gone = listed_media(&archive.vault)
        .find(|media| {
            ["full", "thumb"].iter().all(|label| {
                media
                    .variants
                    .get(*label)
                    .is_some_and(|variant| variant.status == "stored")
            })
        })
        .unwrap()
        .id
        .clone();
    archive.server().with_vault(|vault| {
        for list in &mut vault.lists {
            list.members.retain(|member| member != &gone);
        }
    });
    gone
}

both!(
    prune_deletes_only_media_gone_upstream_within_its_guards,
    |backend| {
        let archive = require!(Archive::sample(backend, 12, 2));
        let archive = archive.mirrored();
        let gone = remove_one_upstream(&archive);
        let folder = format!("media/{}", vault_mirror::names::safe_name(&gone));
        let before = archive.keys_under(&folder);
        assert_eq!(before.len(), 2, "{before:?}");

        // Without --prune: kept.
        archive.run_ok(&["mirror"], 0);
        assert_eq!(archive.keys_under(&folder), before);
        // A dry run lists what would go, and deletes nothing.
        let dry = archive.run_ok(&["mirror", "--prune", "--dry-run"], 0);
        assert_eq!(archive.keys_under(&folder), before, "{dry}");
        assert!(
            before
                .iter()
                .all(|key| dry.to_string().contains(key.as_str())),
            "{dry}"
        );
        // More than --max-delete: nothing goes, and the run says so.
        let refused = archive.run_ok(&["mirror", "--prune", "--max-delete", "1"], 3);
        assert_eq!(refused["prune"]["refused"], true, "{refused}");
        assert_eq!(refused["exit_code"], 3, "{refused}");
        assert_eq!(archive.keys_under(&folder), before);

        let pruned = archive.run_ok(&["mirror", "--prune"], 0);
        let mut files: Vec<&str> = pruned["prune"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| file["path"].as_str().unwrap())
            .collect();
        files.sort_unstable();
        assert_eq!(files, before, "{pruned}");
        assert_eq!(archive.keys_under(&folder), Vec::<String>::new());
        assert_media_match(&archive, archive.expected() - 2);
        let recorded: i64 = archive
            .sql()
            .query_row("SELECT count(*) FROM pruned_files", [], |row| row.get(0))
            .unwrap();
        assert_eq!(recorded, 2);
        // No view names it any more.
        for (key, bytes) in archive.files() {
            if key.starts_with("lists/") {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(&format!("{folder}/")), "{key}: {text}");
            }
        }
    }
);

both!(list_views_are_index_files_of_their_members, |backend| {
    use std::collections::BTreeSet;
    let archive = require!(Archive::sample(backend, 10, 3));
    let archive = archive.mirrored();
    let files = archive.files();
    let media: BTreeSet<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|key| key.starts_with("media/"))
        .collect();
    // What each list's view must name: its members' files.
    let mut wanted: Vec<BTreeSet<&str>> = archive
        .vault
        .lists
        .iter()
        .map(|list| {
            media
                .iter()
                .copied()
                .filter(|key| {
                    list.members.iter().any(|member| {
                        let dir = vault_mirror::names::safe_name(member);
                        key.starts_with(&format!("media/{dir}/"))
                    })
                })
                .collect()
        })
        .collect();
    let views: Vec<&String> = files
        .keys()
        .filter(|key| key.starts_with("lists/") && key.ends_with("/files.txt"))
        .collect();
    assert_eq!(views.len(), wanted.len(), "{views:?}");
    let mut named = BTreeSet::new();
    for view in views {
        let page = view.replace("files.txt", "index.html");
        assert!(files.contains_key(&page), "no {page}");
        let text = String::from_utf8_lossy(&files[view]);
        let entries: Vec<&str> = text
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| line.strip_prefix("../../").unwrap())
            .collect();
        let unique: BTreeSet<&str> = entries.iter().copied().collect();
        assert_eq!(unique.len(), entries.len(), "{view} names a file twice");
        let list = wanted
            .iter()
            .position(|files| *files == unique)
            .unwrap_or_else(|| panic!("{view} is not one list's files: {text}"));
        wanted.remove(list);
        named.extend(unique.into_iter().map(str::to_owned));
    }
    let media: BTreeSet<String> = media.into_iter().map(str::to_owned).collect();
    assert_eq!(named, media, "every media file is in some view");
});

/// The keys at the top of the archive (no folder).
fn top_level(archive: &Archive) -> Vec<String> {
    archive
        .files()
        .into_keys()
        .filter(|key| !key.contains('/'))
        .collect()
}

both!(export_writes_the_manifest_sums_and_gallery, |backend| {
    let archive = require!(Archive::sample(backend, 8, 2));
    let archive = archive.mirrored();
    assert_eq!(top_level(&archive), Vec::<String>::new());
    let exported = archive.run_ok(&["export"], 0);
    assert_eq!(
        exported["out"],
        archive.sandbox.location().as_str(),
        "{exported}"
    );
    assert_eq!(
        top_level(&archive),
        ["SHA256SUMS", "index.html", "manifest.jsonl"]
    );
    if backend == Backend::Bucket {
        // Each object is served as what it is.
        let objects = objects(archive.sandbox.moto());
        for (name, content_type) in [
            ("manifest.jsonl", "application/x-ndjson"),
            ("SHA256SUMS", "text/plain; charset=utf-8"),
            ("index.html", "text/html; charset=utf-8"),
        ] {
            assert_eq!(objects[name].content_type, content_type, "{name}");
        }
    }
    let files = archive.files();
    // SHA256SUMS: every media file with the hash of its bytes, by path.
    let mut sums: Vec<String> = files
        .iter()
        .filter(|(key, _)| key.starts_with("media/"))
        .map(|(key, bytes)| format!("{}  {key}", sha256(bytes)))
        .collect();
    sums.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let written = String::from_utf8(files["SHA256SUMS"].clone()).unwrap();
    assert_eq!(written, sums.join("\n") + "\n");
    // The manifest: one entry a file, with its hash.
    let manifest = String::from_utf8(files["manifest.jsonl"].clone()).unwrap();
    let entries: Vec<serde_json::Value> = manifest
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(entries.len(), archive.expected(), "{manifest}");
    for entry in &entries {
        let path = entry["path"].as_str().unwrap();
        assert_eq!(entry["sha256"], sha256(&files[path]).as_str(), "{path}");
    }
    // The gallery is a page of ours.
    let page = String::from_utf8_lossy(&files["index.html"]);
    assert!(
        page.to_ascii_lowercase().starts_with("<!doctype html>"),
        "{}",
        &page[..page.len().min(200)]
    );
    // `mirror --export` writes the same three files, with the same sums.
    let again = archive.run_ok(&["mirror", "--export"], 0);
    assert_eq!(
        again["export"]["missing"].as_array().map(Vec::len),
        Some(0),
        "{again}"
    );
    assert_eq!(archive.read("SHA256SUMS"), Some(written.into_bytes()));
});

both!(status_and_history_show_the_runs, |backend| {
    let archive = require!(Archive::sample(backend, 6, 2));
    let archive = archive.mirrored();
    archive.run_ok(&["mirror"], 0);
    let status = archive.run_ok(&["status"], 0);
    assert_eq!(
        status["out"],
        archive.sandbox.location().as_str(),
        "{status}"
    );
    assert_eq!(
        status["total"]["verified"].as_u64(),
        Some(archive.expected() as u64),
        "{status}"
    );
    let history = archive.run_ok(&["history"], 0);
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{history}");
    let downloaded: Vec<u64> = runs
        .iter()
        .map(|run| run["downloaded"].as_u64().unwrap())
        .collect();
    assert_eq!(downloaded, [0, archive.expected() as u64], "{history}");
});

both!(
    an_agency_gets_an_overview_and_a_status_row_per_connection,
    |backend| {
        let (vault, options) = vault_mirror::fake::sample_account(6, 2, 3, false);
        let archive = require!(Archive::new(backend, vault, options));
        // Two of the account's three connections, into one archive.
        let agency = |args: &[&str]| {
            let mut command = archive.command(args);
            command.env_remove("OFAUTH_CONNECTION_ID");
            archive.sandbox.json(&mut command, 0)
        };
        let mirrored = agency(&[
            "mirror",
            "--connection",
            "conn_01",
            "--connection",
            "conn_02",
        ]);
        let ids = ["conn_01", "conn_02"];
        let files = archive.files();
        for id in ids {
            let own = archive
                .server()
                .with_connection_vault(id, |vault| vault.clone())
                .unwrap();
            let media = files
                .keys()
                .filter(|key| key.starts_with(&format!("{id}/media/")))
                .count();
            assert_eq!(media, stored_variants(&own, &["full", "thumb"]), "{id}");
        }
        assert!(
            !files.keys().any(|key| key.starts_with("conn_03/")),
            "a connection not asked for"
        );
        // The overview at the top: the registry and the page name both.
        let registry: serde_json::Value =
            serde_json::from_slice(&files["connections.json"]).unwrap();
        let page = String::from_utf8_lossy(&files["index.html"]);
        for id in ids {
            assert!(registry.to_string().contains(id), "{registry}");
            assert!(page.contains(id), "{page}");
        }
        assert!(!registry.to_string().contains("conn_03"), "{registry}");
        // `status` on the archive: one row per connection.
        let status = agency(&["status"]);
        let rows = status["connections"].as_array().unwrap();
        let listed: Vec<&str> = rows.iter().map(|row| row["id"].as_str().unwrap()).collect();
        assert_eq!(listed, ids, "{status}");
        for (row, summary) in rows.iter().zip(mirrored["connections"].as_array().unwrap()) {
            assert_eq!(row["figures"]["verified"], summary["downloaded"], "{row}");
        }
    }
);

both!(
    a_broken_database_in_the_finish_stage_stops_the_run,
    |backend| {
        let archive = require!(Archive::sample(backend, 8, 2));
        let archive = archive.mirrored();
        remove_one_upstream(&archive);
        // The database breaks after the transfers: recording the prune fails.
        archive
            .sql()
            .execute_batch(
                "CREATE TRIGGER broken BEFORE INSERT ON pruned_files \
                 BEGIN SELECT RAISE(ABORT, 'the test broke the database'); END;",
            )
            .unwrap();
        let text = archive.run(&["mirror", "--prune", "--export"], 1).text();
        assert!(text.contains("the test broke the database"), "{text}");
        // Stopped: the export after the prune never ran.
        assert_eq!(archive.read("SHA256SUMS"), None, "{text}");
    }
);

#[test]
fn a_lost_state_is_restored_from_the_snapshot_bucket() {
    // The disk keeps its database inside the archive (<out>/.vault-mirror/):
    // losing one loses the other, so only the bucket has a snapshot.
    let mut archive = require!(Archive::sample(Backend::Bucket, 8, 2)).mirrored();
    assert!(archive.read(".vault-mirror/state.sqlite").is_some());
    std::fs::remove_dir_all(archive.sandbox.state()).unwrap();
    std::fs::create_dir_all(archive.sandbox.state()).unwrap();
    let requests = archive.server().stats().media_requests;
    let run = archive.run(&["mirror"], 0);
    let text = run.text();
    assert!(text.contains("snapshot"), "{text}");
    assert_eq!(run.json()["downloaded"], 0, "{text}");
    assert_eq!(archive.server().stats().media_requests, requests);
    assert!(archive.db().exists());
    let verify = archive.run_ok(&["verify"], 0);
    assert_eq!(verify["checked"].as_u64(), Some(archive.expected() as u64));

    // `status` and `verify` on another machine start from the snapshot too.
    archive.sandbox.another_machine("elsewhere");
    let status = archive.run_ok(&["status"], 0);
    assert!(status["total"].is_object(), "{status}");
    let verify = archive.run_ok(&["verify", "--fast"], 0);
    assert_eq!(verify["outcome"], "intact", "{verify}");
    assert_eq!(verify["checked"].as_u64(), Some(archive.expected() as u64));
}

/// `(media_id/label, checked_at, check_outcome)` of every variant `verify`
/// has checked.
fn checks(archive: &Archive) -> BTreeMap<String, (i64, String)> {
    let sql = archive.sql();
    let mut statement = sql
        .prepare(
            "SELECT media_id || '/' || label, checked_at, check_outcome FROM variants
             WHERE checked_at IS NOT NULL",
        )
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

both!(
    a_rolling_verify_covers_the_archive_once_per_cycle_within_its_budget,
    |backend| {
        let archive = require!(Archive::sample(backend, 10, 2));
        let archive = archive.mirrored();
        let total: u64 = archive
            .sql()
            .query_row(
                "SELECT sum(verified_size) FROM variants WHERE local_state = 'verified'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap()
            .try_into()
            .unwrap();
        let files = archive.expected() as u64;
        let budget = (total / 3).to_string();
        let rolling = ["verify", "--max-bytes", budget.as_str()];

        // The first cycle: each run re-hashes files no run checked yet,
        // within its bytes, until every file has been checked once.
        let mut runs = Vec::new();
        let mut done = 0;
        while done < files {
            assert!(runs.len() < 10, "the cycle never ends: {runs:?}");
            let report = archive.run_ok(&rolling, 0);
            let checked = report["checked"].as_u64().unwrap();
            assert!(checked >= 1, "{report}");
            assert!(
                checked == 1 || report["bytes"].as_u64().unwrap() <= total / 3,
                "{report}"
            );
            done += checked;
            assert_eq!(report["left"].as_u64(), Some(files - checked), "{report}");
            // No file twice in a cycle: the checks recorded add up (the
            // last run of the cycle may go on into the next).
            let recorded = checks(&archive);
            assert_eq!(recorded.len() as u64, done.min(files), "{report}");
            assert!(recorded.values().all(|(_, outcome)| outcome == "intact"));
            assert_eq!(
                report["checks"]["never_checked"].as_u64(),
                Some(files - done.min(files))
            );
            runs.push(recorded);
        }
        assert!(
            runs.len() >= 3,
            "a third of the bytes a run: {}",
            runs.len()
        );
        let checked = runs.last().unwrap();
        let oldest = checked.values().map(|(at, _)| *at).min().unwrap();
        let first: Vec<String> = checked
            .iter()
            .filter(|(_, (at, _))| *at == oldest)
            .map(|(name, _)| name.clone())
            .collect();

        // The next run takes the files checked longest ago: rot in one of
        // them is found by it.
        let (id, label) = first[0].split_once('/').unwrap();
        let sql = archive.sql();
        let key: String = sql
            .query_row(
                "SELECT local_path FROM variants WHERE media_id = ?1 AND label = ?2",
                [id, label],
                |row| row.get(0),
            )
            .unwrap();
        archive.rot(&key, &flipped(&archive.read(&key).unwrap()));
        let found = archive.run_ok(&rolling, 3);
        assert_eq!(findings(&found), vec![pair(&key, "damaged")], "{found}");
        let after = checks(&archive);
        assert_eq!(after[&first[0]].1, "damaged");
        for name in &first {
            assert!(after[name].0 > oldest, "{name} was not checked again");
        }
        let status = archive.run_ok(&["status"], 0);
        assert_eq!(
            status["checks"]["files"].as_u64(),
            Some(files - 1),
            "{status}"
        );
        assert_eq!(status["checks"]["last_run"]["damaged"], 1, "{status}");
        assert!(
            status["checks"]["pace"]["cycle_runs"].as_u64().unwrap() >= 3,
            "{status}"
        );

        // Damage is handled as a full verify handles it: `--repair` fetches
        // it again, and the new bytes count as never checked.
        let repaired = archive.run_ok(&["verify", "--max-bytes", "1", "--repair"], 0);
        assert_eq!(repaired["outcome"], "repaired", "{repaired}");
        assert_eq!(findings(&repaired), vec![pair(&key, "damaged")]);
        assert_media_match(&archive, archive.expected());
        assert!(!checks(&archive).contains_key(&first[0]));
    }
);
