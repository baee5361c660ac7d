//! Hostile conditions that need the fake server: absurd sizes, a disk with
//! too little room, secrets and redirects (loopback only).

use std::sync::Arc;

use vault_mirror::fake::{FakeOptions, Vault};
use vault_mirror::pipeline;
use vault_mirror::report::SilentReporter;

use crate::common::{assert_archive_matches, listed_media, media_files, mirror, stored_variants};
use crate::sandbox::Sandbox;

/// The (media id, label) of some stored `full` variant that is in a list.
fn some_stored_full(vault: &Vault) -> (String, String) {
    listed_media(vault)
        .find_map(|media| {
            media
                .variants
                .get("full")
                .filter(|variant| variant.status == "stored")
                .map(|_| (media.id.clone(), "full".to_owned()))
        })
        .unwrap()
}

#[tokio::test]
async fn a_size_larger_than_the_free_disk_is_refused_before_any_byte() {
    let mut vault = Vault::sample(12, 2);
    let (media_id, label) = some_stored_full(&vault);
    vault
        .media
        .get_mut(&media_id)
        .unwrap()
        .variants
        .get_mut(&label)
        .unwrap()
        .declared_size = Some(1_000_000_000_000_000); // a petabyte
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let settings = sandbox.settings();
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 3, "{summary:#?}");
    assert_eq!(summary.failed.len(), 1, "{summary:#?}");
    let failed = &summary.failed[0];
    assert_eq!((&failed.id, &failed.label), (&media_id, &label));
    assert!(
        failed.reason.contains("free on the disk of"),
        "{}",
        failed.reason
    );
    assert!(failed.reason.contains(&sandbox.out().display().to_string()));
    // Everything else is mirrored; the refused one was never requested.
    let total = stored_variants(&vault, &["full", "thumb"]);
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        total - 1
    );
    assert_eq!(sandbox.server().stats().media_requests as usize, total - 1);
    assert!(
        media_files(sandbox.out()).iter().all(|path| {
            let path = path.to_string_lossy();
            !(path.contains(&media_id) && path.contains(&label))
        }),
        "a file or .part was made for the refused variant"
    );
}

#[tokio::test]
async fn min_free_refuses_what_would_fill_the_disk_and_a_run_with_room_completes() {
    let vault = Vault::sample(12, 2);
    let total_bytes: u64 = vault
        .media
        .values()
        .flat_map(|media| media.variants.values())
        .map(|variant| variant.body.len() as u64)
        .sum();
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    // A disk with room for everything, but a floor that leaves room for half.
    settings.mirror.assume_free = Some(total_bytes);
    settings.mirror.min_free = Some(total_bytes / 2);
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 3, "{summary:#?}");
    assert!(!summary.failed.is_empty());
    assert!(
        summary
            .failed
            .iter()
            .all(|note| note.reason.contains("--min-free")),
        "{summary:#?}"
    );
    let kept = assert_archive_matches(sandbox.out(), &settings.db, &vault);
    assert!(kept > 0);
    let written: u64 = summary.bytes;
    assert!(written <= total_bytes / 2, "{written} of {total_bytes}");

    // With room, the next run fetches the rest and touches nothing kept.
    settings.mirror.min_free = None;
    settings.mirror.assume_free = None;
    let requests_before = sandbox.server().stats().media_requests;
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:#?}");
    let total = stored_variants(&vault, &["full", "thumb"]);
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        total
    );
    let fetched = sandbox.server().stats().media_requests - requests_before;
    assert_eq!(fetched as usize, total - kept);
}

#[tokio::test]
async fn a_media_redirect_to_another_host_is_followed_without_the_key() {
    let vault = Vault::sample(8, 2);
    let options = FakeOptions {
        faults: vault_mirror::fake::Faults {
            media_redirect_host: Some("localhost".to_owned()),
            ..Default::default()
        },
        ..FakeOptions::default()
    };
    let sandbox = Sandbox::start(&vault, options).await;
    let settings = sandbox.settings();
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:#?}");
    let total = stored_variants(&vault, &["full", "thumb"]);
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        total
    );
    let stats = sandbox.server().stats();
    // Each transfer was redirected once (to `localhost`) and then served.
    assert_eq!(stats.media_redirects as usize, total, "{stats:?}");
    assert_eq!(stats.media_requests as usize, 2 * total);
    assert_eq!(stats.media_requests_with_api_key, 0);
}

/// A loopback "host" that records each request head it gets and answers
/// every one with `answer`.
fn recorder(answer: String) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            recorded
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (port, heads)
}

#[tokio::test]
async fn an_api_redirect_to_another_host_is_not_followed_and_the_key_stays_home() {
    let (other_port, other_heads) = recorder(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\nconnection: close\r\n\r\n{\"items\":[]}"
            .to_owned(),
    );
    let (api_port, api_heads) = recorder(format!(
        "HTTP/1.1 302 Found\r\nlocation: http://localhost:{other_port}/v2/access/vault/lists\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let out = tempfile::tempdir().unwrap();
    let mut settings = vault_mirror::settings::Settings::new(out.path().to_path_buf());
    settings.base_url =
        vault_mirror::settings::parse_base_url(&format!("http://127.0.0.1:{api_port}")).unwrap();
    settings.api_key = Some("secret-key-4711".to_owned().into());
    settings.connection_id = Some("conn-secret-0815".to_owned());
    settings.network.retry_delay = std::time::Duration::from_millis(5);
    settings.network.max_retry_delay = std::time::Duration::from_millis(10);
    settings.network.api_attempts = 2;
    let error = pipeline::mirror(&settings, Arc::new(SilentReporter))
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(!message.contains("secret-key-4711"), "{message}");
    // The API host saw the key; the other host saw nothing at all.
    assert!(
        api_heads
            .lock()
            .unwrap()
            .iter()
            .any(|head| head.contains("secret-key-4711"))
    );
    assert!(
        other_heads.lock().unwrap().is_empty(),
        "{:?}",
        other_heads.lock().unwrap()
    );
}

#[tokio::test]
async fn bad_api_answers_fail_their_item_and_the_rest_of_the_run_goes_on() {
    let mut vault = Vault::sample(16, 2);
    let listed: Vec<String> = listed_media(&vault)
        .filter(|media| {
            media
                .variants
                .get("full")
                .is_some_and(|v| v.status == "stored")
        })
        .map(|media| media.id.clone())
        .take(3)
        .collect();
    let mut change = |index: usize, edit: &dyn Fn(&mut vault_mirror::fake::FakeVariant)| {
        edit(
            vault
                .media
                .get_mut(&listed[index])
                .unwrap()
                .variants
                .get_mut("full")
                .unwrap(),
        )
    };
    change(0, &|variant| variant.declared_size = Some(-5));
    change(1, &|variant| variant.status = "frozen".to_owned());
    change(2, &|variant| variant.content_type = String::new());
    let options = FakeOptions {
        faults: vault_mirror::fake::Faults {
            api_truncated: 0.2,
            batch_garbage: true,
            ..Default::default()
        },
        ..FakeOptions::default()
    };
    let sandbox = Sandbox::start(&vault, options).await;
    let mut settings = sandbox.settings();
    settings.network.api_attempts = 12;
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 3, "{summary:#?}");
    let stats = sandbox.server().stats();
    assert!(
        stats.truncated_answers > 0,
        "no truncated answer: {stats:?}"
    );
    assert!(stats.garbage_batches > 0, "no batch garbage: {stats:?}");
    let reason_for = |notes: &[pipeline::ItemNote], id: &str| {
        notes
            .iter()
            .find(|note| note.id == id && note.label == "full")
            .map(|note| note.reason.clone())
    };
    let negative = reason_for(&summary.failed, &listed[0]).expect("negative size failed");
    assert!(negative.contains("-5"), "{negative}");
    let frozen = reason_for(&summary.unavailable, &listed[1]).expect("unknown status reported");
    assert!(frozen.contains("frozen"), "{frozen}");
    let untyped = reason_for(&summary.failed, &listed[2]).expect("missing type failed");
    assert!(untyped.contains("content type"), "{untyped}");
    // Everything else is mirrored, once; nothing for the id nobody asked for.
    let total = stored_variants(&vault, &["full", "thumb"]);
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        total - 2
    );
    assert!(!sandbox.out().join("not-asked").exists());
    assert!(
        media_files(sandbox.out())
            .iter()
            .all(|path| !path.to_string_lossy().contains("not-asked")),
    );

    // A second run of the same bad answers touches nothing already mirrored.
    let requests_before = sandbox.server().stats().media_requests;
    let again = mirror(&settings).await;
    assert_eq!(again.downloaded, 0, "{again:#?}");
    assert_eq!(sandbox.server().stats().media_requests, requests_before);
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        total - 2
    );
}
