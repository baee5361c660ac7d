//! The pipeline end to end against the fake Vault+ (loopback only).

use std::sync::Arc;

use vault_mirror::fake::{FakeList, FakeOptions, Vault};
use vault_mirror::pipeline::{self, MirrorError, Outcome};
use vault_mirror::report::SilentReporter;
use vault_mirror::settings::Quality;

use crate::common::{assert_archive_matches, media_files, mirror, stored_variants, variant_rows};
use crate::sandbox::Sandbox;

#[tokio::test]
async fn full_mirror_of_overlapping_lists_then_a_rerun_that_downloads_nothing() {
    let vault = Vault::sample(40, 4);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let summary = mirror(&settings).await;
    let expected = stored_variants(&vault, &["full", "thumb"]);
    assert_eq!(summary.outcome, Outcome::Complete, "{summary:?}");
    assert_eq!(summary.exit_code, 0);
    assert_eq!(summary.lists.len(), 4);
    assert_eq!(summary.downloaded as usize, expected);
    assert_eq!(summary.variants_seen as usize, expected);
    assert!(summary.failed.is_empty() && summary.pending.is_empty());
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        expected
    );
    // Shared media is fetched once, whatever lists hold it.
    assert_eq!(sandbox.server().stats().media_requests as usize, expected);
    assert_eq!(
        sandbox.server().stats().media_requests_with_api_key,
        0,
        "secrets reached the media host"
    );
    // Only `full` and `thumb` by default, though some media have more labels.
    assert!(media_files(sandbox.out()).iter().all(|path| {
        let name = path.file_name().unwrap().to_string_lossy();
        name.starts_with("full.") || name.starts_with("thumb.")
    }));

    let requests_before = sandbox.server().stats().media_requests;
    let again = mirror(&settings).await;
    assert_eq!(again.downloaded, 0);
    assert_eq!(again.already_verified as usize, expected);
    assert_eq!(
        sandbox.server().stats().media_requests,
        requests_before,
        "a re-run fetched media again"
    );
    assert_eq!(again.exit_code, 0);
}

#[tokio::test]
async fn a_file_deleted_by_hand_is_fetched_again_and_its_view_links_come_back() {
    let vault = Vault::sample(12, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let first = mirror(&settings).await;
    assert_eq!(first.exit_code, 0, "{first:?}");
    let links = first.views.unwrap().links;

    // A file and, separately, a view link go missing between runs.
    let victim = sandbox.out().join(&media_files(sandbox.out())[0]);
    std::fs::remove_file(&victim).unwrap();
    let view = std::fs::read_dir(sandbox.out().join("lists"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let link = std::fs::read_dir(&view)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&link).unwrap();

    let again = mirror(&settings).await;
    assert_eq!(again.downloaded, 1, "{again:?}");
    assert_eq!(again.exit_code, 0);
    assert!(victim.is_file());
    let views = again.views.unwrap();
    assert_eq!(views.links, links);
    assert!(views.added >= 1, "{views:?}");
    assert!(std::fs::read_link(&link).is_ok());
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        stored_variants(&vault, &["full", "thumb"])
    );
}

#[tokio::test]
async fn quality_selects_labels_and_unknown_labels_are_mirrored_on_request() {
    let vault = Vault::sample(30, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let unusual: Vec<String> = vault
        .media
        .values()
        .flat_map(|media| media.variants.keys())
        .filter(|label| !matches!(label.as_str(), "full" | "thumb"))
        .cloned()
        .collect();
    assert!(!unusual.is_empty(), "the sample should have unusual labels");

    let mut settings = sandbox.settings();
    settings.mirror.quality = Quality::parse("thumb").unwrap();
    let summary = mirror(&settings).await;
    assert_eq!(
        summary.downloaded as usize,
        stored_variants(&vault, &["thumb"])
    );
    assert!(
        variant_rows(&settings.db)
            .iter()
            .all(|(_, label, _, _, state)| (label == "thumb") == (state == "verified"))
    );

    let everything = sandbox.path("everything");
    std::fs::create_dir(&everything).unwrap();
    let mut settings = sandbox.settings_at(&everything);
    settings.mirror.quality = Quality::All;
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    let labels: Vec<&str> = unusual.iter().map(String::as_str).collect();
    assert!(summary.downloaded as usize > stored_variants(&vault, &["full", "thumb"]));
    assert!(stored_variants(&vault, &labels) > 0);
    assert_archive_matches(&everything, &settings.db, &vault);
}

#[tokio::test]
async fn hostile_ids_and_list_names_stay_inside_the_archive() {
    let mut vault = Vault::sample(6, 1);
    let template = vault.media.values().next().unwrap().clone();
    let hostile = ["../../x", "a/b", "..", "UPPER", "upper", "semi;colon\n"];
    for id in hostile {
        let mut media = template.clone();
        media.id = id.to_owned();
        vault.media.insert(id.to_owned(), media);
    }
    vault.lists.push(FakeList {
        id: "999".into(),
        name: "../../etc/passwd / list".into(),
        members: hostile.iter().map(|id| (*id).to_owned()).collect(),
    });
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let out = sandbox.out();
    let settings = sandbox.settings();
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");

    // Nothing was written beside the archive.
    let beside: Vec<_> = std::fs::read_dir(sandbox.folder())
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(beside.len(), 1, "{beside:?}");
    // Every hostile id has its own folder, and its bytes.
    let folders: std::collections::HashSet<_> = media_files(out)
        .iter()
        .map(|path| path.parent().unwrap().to_path_buf())
        .collect();
    assert_eq!(folders.len(), vault.media.len());
    assert_archive_matches(out, &settings.db, &vault);
}

#[tokio::test]
async fn a_file_failing_verification_never_reaches_its_final_path() {
    let mut vault = Vault::sample(8, 1);
    let ids: Vec<String> = vault.media.keys().take(3).cloned().collect();
    // Wrong size declared, wrong Content-Type served, wrong magic bytes.
    vault
        .media
        .get_mut(&ids[0])
        .unwrap()
        .variants
        .get_mut("full")
        .unwrap()
        .declared_size = Some(999_999);
    vault
        .media
        .get_mut(&ids[1])
        .unwrap()
        .variants
        .get_mut("full")
        .unwrap()
        .served_content_type = Some("text/html".into());
    {
        let variant = vault
            .media
            .get_mut(&ids[2])
            .unwrap()
            .variants
            .get_mut("full")
            .unwrap();
        let mut body = variant.body.to_vec();
        body[..4].copy_from_slice(b"<htm");
        variant.body = body.into();
    }
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let summary = mirror(&settings).await;

    assert_eq!(summary.exit_code, 3);
    assert_eq!(summary.outcome, Outcome::Partial);
    let failed: Vec<&str> = summary.failed.iter().map(|note| note.id.as_str()).collect();
    assert_eq!(failed.len(), 3, "{:?}", summary.failed);
    for id in &ids {
        assert!(failed.contains(&id.as_str()));
        let folder = sandbox.out().join("media").join(id);
        assert!(
            !folder.join("full.jpg").exists()
                && !folder.join("full.png").exists()
                && !folder.join("full.mp4").exists(),
            "a failed file reached its final path"
        );
    }
    assert!(
        summary
            .failed
            .iter()
            .all(|note| note.label == "full" && !note.reason.is_empty())
    );
    let rows = variant_rows(&settings.db);
    let quarantined = rows.iter().filter(|row| row.4 == "quarantined").count();
    assert_eq!(quarantined, 3);
    // The others are all there, and whole.
    assert_archive_matches(sandbox.out(), &settings.db, &vault);
    assert!(sandbox.out().join(".vault-mirror/quarantine").exists());
}

#[tokio::test]
async fn pending_variants_end_the_run_with_exit_3_and_are_fetched_once_stored() {
    let mut vault = Vault::sample(6, 1);
    let id = vault.media.keys().next().unwrap().clone();
    vault
        .media
        .get_mut(&id)
        .unwrap()
        .variants
        .get_mut("full")
        .unwrap()
        .status = "pending".into();
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 3);
    assert_eq!(summary.pending.len(), 1);
    assert_eq!(
        (
            summary.pending[0].id.as_str(),
            summary.pending[0].label.as_str()
        ),
        (id.as_str(), "full")
    );

    sandbox.server().with_vault(|vault| {
        vault
            .media
            .get_mut(&id)
            .unwrap()
            .variants
            .get_mut("full")
            .unwrap()
            .status = "stored".into();
    });
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    assert_eq!(summary.downloaded, 1);
}

#[tokio::test]
async fn an_interrupted_part_file_is_resumed_with_range() {
    let vault = Vault::sample(4, 1);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    // A first run leaves half of one file in .part, as a killed run would.
    let (id, media) = vault.media.iter().next().unwrap();
    let body = media.variants["full"].body.clone();
    let extension =
        vault_mirror::archive::paths::extension_for(&media.variants["full"].content_type);
    let folder = sandbox.out().join("media").join(id);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join(format!("full.{extension}.part")),
        &body[..body.len() / 2],
    )
    .unwrap();

    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    assert_eq!(sandbox.server().stats().range_requests, 1);
    assert_archive_matches(sandbox.out(), &settings.db, &vault);
    assert!(!folder.join(format!("full.{extension}.part")).exists());
}

#[tokio::test]
async fn a_refused_key_is_an_auth_error() {
    let sandbox = Sandbox::start(&Vault::sample(2, 1), FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.api_key = Some("wrong".to_owned().into());
    let error = pipeline::mirror(&settings, Arc::new(SilentReporter))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MirrorError::Api(api) if api.is_auth()),
        "{error}"
    );
    assert_eq!(error.exit_code().code(), 4);
}

#[tokio::test]
async fn members_gone_upstream_are_kept_and_marked() {
    let vault = Vault::sample(10, 1);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    mirror(&settings).await;
    let files_before = media_files(sandbox.out());
    let removed = sandbox
        .server()
        .with_vault(|vault| vault.lists[0].members.pop().unwrap());
    let summary = mirror(&settings).await;
    assert_eq!(summary.lists[0].gone, 1);
    assert_eq!(
        media_files(sandbox.out()),
        files_before,
        "a backup never deletes on its own"
    );
    let connection = rusqlite::Connection::open(&settings.db).unwrap();
    let gone: Option<i64> = connection
        .query_row(
            "SELECT gone_at FROM membership WHERE media_id = ?1",
            [&removed],
            |row| row.get(0),
        )
        .unwrap();
    assert!(gone.is_some());
}
