//! Each media's own date and shape (issue 21): asked of the Access API
//! once in each media's life, files dated as their media, and an archive
//! made before all this filled in without fetching a file again.

use std::collections::BTreeMap;
use std::path::Path;

use vault_mirror::api::models::parse_media_date;
use vault_mirror::fake::{FakeOptions, Vault};
use vault_mirror::pipeline::Outcome;

use crate::common::mirror;
use crate::sandbox::Sandbox;

/// media id → (taken_at, date_source, width, height, described_at).
type DateRow = (
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn date_rows(db: &Path) -> BTreeMap<String, DateRow> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare("SELECT media_id, taken_at, date_source, width, height, described_at FROM media")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                (
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The date the fake's Access API gives media `id`, if it lists it.
fn access_date(vault: &Vault, id: &str) -> Option<i64> {
    let facts = vault.media[id].access.as_ref()?;
    parse_media_date(&facts.created_at)
}

/// Pages of 40 a list needs for all its members the Access API lists.
fn pages_for(vault: &Vault) -> u64 {
    vault
        .lists
        .iter()
        .map(|list| {
            let listed = list
                .members
                .iter()
                .filter(|id| vault.media[id.as_str()].access.is_some())
                .count() as u64;
            listed.div_ceil(40).max(1)
        })
        .sum()
}

fn assert_dated_as_the_fake_says(db: &Path, vault: &Vault) {
    let rows = date_rows(db);
    assert_eq!(rows.len(), vault.media.len());
    for (id, (taken_at, source, width, height, described_at)) in &rows {
        assert!(described_at.is_some(), "{id} was never asked about");
        match access_date(vault, id) {
            Some(date) => {
                assert_eq!(*taken_at, Some(date), "{id}");
                assert_eq!(source.as_deref(), Some("onlyfans"), "{id}");
                assert!(width.is_some() && height.is_some(), "{id}");
            }
            None => assert_eq!((*taken_at, source.as_deref()), (None, None), "{id}"),
        }
    }
}

#[tokio::test]
async fn dates_are_asked_once_in_each_medias_life() {
    let vault = Vault::sample(100, 3);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let first = mirror(&settings).await;
    assert_eq!(first.outcome, Outcome::Complete, "{first:?}");
    let dates = first.dates.clone().expect("the describe stage ran");
    assert_eq!(dates.asked, vault.media.len());
    let not_listed = vault.media.values().filter(|m| m.access.is_none()).count();
    assert!(
        not_listed > 0,
        "the sample has media the Access API does not list"
    );
    assert_eq!(dates.not_listed, not_listed);
    assert_eq!(dates.dated, vault.media.len() - not_listed);
    let calls = sandbox.server().stats().access_media_calls;
    // A media in two lists is found in the first one read; every list is
    // read through once (some of its media are not listed there).
    assert!(calls <= pages_for(&vault), "{calls} calls");
    assert_eq!(dates.pages, calls);
    assert_dated_as_the_fake_says(&settings.db, &vault);

    let again = mirror(&settings).await;
    assert_eq!(again.dates.unwrap().asked, 0);
    assert_eq!(
        sandbox.server().stats().access_media_calls,
        calls,
        "a re-run asked for dates again"
    );
}

#[tokio::test]
async fn an_archive_made_before_dates_fills_them_in_without_fetching_a_file() {
    let vault = Vault::sample(30, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    mirror(&settings).await;
    // What main's schema held: none of migration 6's columns filled.
    let connection = rusqlite::Connection::open(&settings.db).unwrap();
    connection
        .execute_batch(
            "UPDATE media SET taken_at = NULL, date_source = NULL, width = NULL, height = NULL,
                 described_at = NULL;
             UPDATE variants SET file_dated_at = NULL;",
        )
        .unwrap();
    drop(connection);
    let stats = sandbox.server().stats();
    let again = mirror(&settings).await;
    assert_eq!(again.outcome, Outcome::Complete, "{again:?}");
    assert_eq!(again.downloaded, 0);
    let after = sandbox.server().stats();
    assert_eq!(after.media_bytes_served, stats.media_bytes_served);
    assert_eq!(after.media_requests, stats.media_requests);
    assert!(after.access_media_calls > stats.access_media_calls);
    assert_dated_as_the_fake_says(&settings.db, &vault);
    for (id, modified, date) in file_times(sandbox.out(), &settings.db, &vault) {
        assert_eq!(modified, vault_mirror::epoch_time(date), "{id}");
    }
}

/// Each verified file of a media the Access API lists, with its mtime and
/// the fake's date for it.
fn file_times(out: &Path, db: &Path, vault: &Vault) -> Vec<(String, std::time::SystemTime, i64)> {
    crate::common::variant_rows(db)
        .into_iter()
        .filter(|(_, _, _, _, state)| state == "verified")
        .filter_map(|(id, _, path, _, _)| {
            let date = access_date(vault, &id)?;
            let modified = std::fs::metadata(out.join(path?))
                .unwrap()
                .modified()
                .unwrap();
            Some((id, modified, date))
        })
        .collect()
}

#[tokio::test]
async fn files_carry_their_medias_date_unless_told_not_to() {
    let vault = Vault::sample(20, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let first = mirror(&settings).await;
    let times = file_times(sandbox.out(), &settings.db, &vault);
    assert!(!times.is_empty());
    let verified = crate::common::variant_rows(&settings.db)
        .into_iter()
        .filter(|row| row.4 == "verified")
        .count();
    assert_eq!(first.dated_files.unwrap().dated, verified);
    for (id, modified, date) in &times {
        assert_eq!(*modified, vault_mirror::epoch_time(*date), "{id}");
    }
    // Verification reads no time: every dated file is intact.
    let verify = sandbox.json(&mut sandbox.command(&["verify", "--json"]), 0);
    assert_eq!(verify["intact"].as_u64(), Some(verified as u64), "{verify}");
    assert_eq!(
        verify["findings"].as_array().map(Vec::len),
        Some(0),
        "{verify}"
    );

    let mut keep = sandbox.settings();
    keep.layout.file_dates = false;
    let other = tempfile::tempdir().unwrap();
    keep.archive = vault_mirror::location::ArchiveLocation::Disk(other.path().to_owned());
    keep.local = other.path().to_owned();
    keep.db = other.path().join(".vault-mirror/state.sqlite");
    let summary = mirror(&keep).await;
    assert!(summary.dated_files.is_none());
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (id, modified, _) in file_times(other.path(), &keep.db, &vault) {
        assert!(modified > hour_ago, "{id} does not carry its download time");
    }
}
