//! Shared helpers for the integration tests: a fake Vault+ on loopback and
//! checks of an archive against the fake's data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use vault_mirror::fake::{FakeMedia, FakeServer, Vault};
use vault_mirror::settings::{Settings, parse_base_url};

/// Settings that point at `server` and write into `out`, with fast retries.
pub fn settings_for(server: &FakeServer, out: &Path) -> Settings {
    let mut settings = Settings::new(out.to_path_buf());
    settings.base_url = parse_base_url(&server.base_url()).unwrap();
    settings.api_key = Some(server.api_key().to_owned().into());
    settings.connection_id = Some(server.connection_id().to_owned());
    settings.network.retry_delay = std::time::Duration::from_millis(10);
    settings.network.max_retry_delay = std::time::Duration::from_millis(50);
    settings
}

/// Every file under `out/media`, relative to `out` (skipping nothing).
pub fn media_files(out: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![out.join("media")];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(out).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// One row of the variants table: (media id, label, local path, sha256, local state).
pub type VariantRow = (String, String, Option<String>, Option<String>, String);

pub fn variant_rows(db: &Path) -> Vec<VariantRow> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT media_id, label, local_path, sha256, local_state FROM variants ORDER BY 1, 2",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Checks that every verified variant's file holds exactly the fake's
/// bytes and hash, and that no other file (but `.part`) sits under media/.
/// Returns how many verified files there are.
pub fn assert_archive_matches(out: &Path, db: &Path, vault: &Vault) -> usize {
    use sha2::{Digest, Sha256};
    let mut verified = 0;
    let mut expected_files = Vec::new();
    for (media_id, label, local_path, sha256, state) in variant_rows(db) {
        if state != "verified" {
            continue;
        }
        let local_path = local_path.expect("a verified variant has a path");
        let bytes = std::fs::read(out.join(&local_path)).unwrap();
        let body = vault
            .body(&media_id, &label)
            .expect("the fake has this variant");
        assert_eq!(bytes.len(), body.len(), "{media_id}/{label} size");
        assert!(
            bytes == body.as_ref(),
            "{media_id}/{label} bytes differ from the fake's"
        );
        assert_eq!(sha256.unwrap(), hex::encode(Sha256::digest(&bytes)));
        expected_files.push(PathBuf::from(local_path));
        verified += 1;
    }
    expected_files.sort();
    let on_disk: Vec<PathBuf> = media_files(out)
        .into_iter()
        .filter(|path| path.extension().is_none_or(|ext| ext != "part"))
        .collect();
    // A file at a final path that the database does not call verified may
    // only be one whose commit was interrupted before it was recorded; it
    // must still hold correct bytes.
    for path in &on_disk {
        if !expected_files.contains(path) {
            let bytes = std::fs::read(out.join(path)).unwrap();
            let found = vault.media.values().any(|media| {
                media
                    .variants
                    .values()
                    .any(|variant| variant.body.as_ref() == bytes.as_slice())
            });
            assert!(
                found,
                "{} at a final path is not a whole variant",
                path.display()
            );
        }
    }
    verified
}

/// The media some list of the vault holds (the ones a mirror fetches).
pub fn listed_media(vault: &Vault) -> impl Iterator<Item = &FakeMedia> {
    vault.media.values().filter(|media| {
        vault
            .lists
            .iter()
            .any(|list| list.members.contains(&media.id))
    })
}

/// The number of (media, label) pairs of `labels` that are stored upstream.
pub fn stored_variants(vault: &Vault, labels: &[&str]) -> usize {
    listed_media(vault)
        .flat_map(|media| media.variants.iter())
        .filter(|(label, variant)| labels.contains(&label.as_str()) && variant.status == "stored")
        .count()
}
