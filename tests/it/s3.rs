//! `--out s3://bucket/prefix` against a real S3 implementation on
//! loopback: moto's server mode (Python package `moto[server]`, installed
//! by `.ci/run`). Each test starts its own `moto_server` on a free port;
//! the objects and the multipart uploads left are read back with boto3
//! (which moto brings), outside vault-mirror. Without moto or boto3 a test
//! skips, saying so, unless `CI=true`, where it fails (`common::require!`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vault_mirror::fake::{FakeMedia, FakeOptions, FakeServer, FakeVariant, Faults, Vault};

use crate::common::{require, send_signal, stored_variants, vault_mirror};
use crate::moto::{
    ACCESS_KEY, BUCKET, Moto, Object, PREFIX, SECRET_KEY, assert_objects_match, incomplete_uploads,
    moto, objects, python,
};

/// `vault-mirror mirror --out s3://…` against `server` and `moto`, with
/// its local state under `state`.
fn mirror_s3(server: &FakeServer, moto: &Moto, state: &Path) -> Command {
    command_s3(server, moto, state, &["mirror"])
}

/// `vault-mirror <args> --json --out s3://…` against `server` and `moto`,
/// with its local state under `state` and the log at debug level.
fn command_s3(server: &FakeServer, moto: &Moto, state: &Path, args: &[&str]) -> Command {
    let mut command = vault_mirror();
    command
        .args(args)
        .args(["--json", "--out", &format!("s3://{BUCKET}/{PREFIX}")])
        .env("XDG_STATE_HOME", state)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ALLOW_HTTP")
        .env("VAULT_MIRROR_LOG", "debug")
        .env("OFAUTH_BASE_URL", server.base_url())
        .env("OFAUTH_API_KEY", server.api_key())
        .env("OFAUTH_CONNECTION_ID", server.connection_id());
    command
}

/// The local state database of the test archive under `state`.
fn state_db(state: &Path) -> PathBuf {
    let url = vault_mirror::location::S3Url::parse(&format!("s3://{BUCKET}/{PREFIX}")).unwrap();
    state
        .join("vault-mirror")
        .join(url.state_key())
        .join("state.sqlite")
}

/// The sample vault plus one media whose `full` needs a multipart upload
/// (three parts of 8 MiB and a short last one).
fn vault_with_a_big_file() -> Vault {
    let mut vault = Vault::sample(24, 3);
    let id = "9000000001".to_owned();
    let mut variants = BTreeMap::new();
    variants.insert(
        "full".to_owned(),
        FakeVariant::stored(&id, "full", "video/mp4", 25 * 1024 * 1024 + 12_345),
    );
    vault.media.insert(
        id.clone(),
        FakeMedia {
            id: id.clone(),
            media_type: "video".into(),
            duration: Some(2.0),
            variants,
        },
    );
    vault.lists[0].members.push(id);
    vault
}

fn run_json(command: &mut Command) -> (serde_json::Value, String, i32) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let summary = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        summary,
        format!("{stdout}\n{stderr}"),
        output.status.code().unwrap_or(-1),
    )
}

#[test]
fn s3_full_mirror_byte_for_byte_then_a_rerun_that_downloads_nothing() {
    let moto = require!(moto());
    let vault = vault_with_a_big_file();
    let server = FakeServer::start_in_thread(vault.clone(), FakeOptions::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let expected = stored_variants(&vault, &["full", "thumb"]);

    let (summary, output, code) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        summary["downloaded"].as_u64().unwrap() as usize,
        expected,
        "{output}"
    );
    assert_eq!(summary["out"], format!("s3://{BUCKET}/{PREFIX}"));
    assert_eq!(assert_objects_match(&moto, &vault), expected);
    let all = objects(&moto);
    // Every object carries its sha256 as metadata, the multipart one too.
    let media: Vec<(&String, &Object)> = all
        .iter()
        .filter(|(key, _)| key.starts_with("media/"))
        .collect();
    assert!(media.iter().any(|(_, object)| object.size > 8 << 20));
    // And as its full-object S3 SHA-256 checksum where moto keeps one: the
    // multipart object's, computed by the CopyObject that set its metadata
    // (moto keeps none for a PUT that sends only `x-amz-checksum-sha256`,
    // as object_store's PUT does).
    use base64::Engine as _;
    for (key, object) in media {
        assert_eq!(
            object.metadata_sha256.as_ref(),
            Some(&object.sha256),
            "{key}"
        );
        let digest = hex::decode(&object.sha256).unwrap();
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
        if object.size > 8 << 20 || object.checksum.is_some() {
            assert_eq!(object.checksum.as_ref(), Some(&checksum), "{key}");
        }
    }
    assert!(
        all.contains_key(".vault-mirror/state.sqlite"),
        "no snapshot"
    );
    assert!(
        !all.contains_key(".vault-mirror/lease"),
        "the lease was not given back"
    );
    assert_eq!(incomplete_uploads(&moto), Vec::<String>::new());
    // Credentials reach no output (the log is at debug level here), and no
    // local file.
    assert!(
        !output.contains(SECRET_KEY) && !output.contains(ACCESS_KEY),
        "{output}"
    );
    let db = std::fs::read(state_db(state.path())).unwrap();
    let db_text = String::from_utf8_lossy(&db);
    assert!(!db_text.contains(SECRET_KEY) && !db_text.contains(ACCESS_KEY));

    // A dry run reads the bucket's listing: nothing to fetch.
    let (plan, output, code) = run_json(mirror_s3(&server, &moto, state.path()).arg("--dry-run"));
    assert_eq!(code, 0, "{output}");
    assert_eq!(plan["download"]["variants"], 0, "{output}");
    assert_eq!(
        plan["skip"]["variants"].as_u64().unwrap() as usize,
        expected,
        "{output}"
    );
    assert_eq!(plan["out"], format!("s3://{BUCKET}/{PREFIX}"));

    let requests = server.stats().media_requests;
    let (again, output, code) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(code, 0, "{output}");
    assert_eq!(again["downloaded"], 0, "{output}");
    assert_eq!(
        again["already_verified"].as_u64().unwrap() as usize,
        expected
    );
    assert_eq!(
        server.stats().media_requests,
        requests,
        "a re-run fetched media again"
    );
}

#[test]
fn s3_lying_sizes_and_types_leave_no_object() {
    let moto = require!(moto());
    let mut vault = Vault::sample(12, 2);
    // Bytes that are no JPEG, declared and served as one: the magic-byte
    // check fails only once all 20 MiB went into a multipart upload.
    let id = "9000000002".to_owned();
    let mut fake = FakeVariant::stored(&id, "full", "application/octet-stream", 20 << 20);
    fake.content_type = "image/jpeg".into();
    vault.media.insert(
        id.clone(),
        FakeMedia {
            id: id.clone(),
            media_type: "photo".into(),
            duration: None,
            variants: BTreeMap::from([("full".to_owned(), fake)]),
        },
    );
    vault.lists[0].members.push(id);
    let state = tempfile::tempdir().unwrap();
    let mut server = None;
    for lie in [
        Faults {
            wrong_size: 1.0,
            ..Faults::default()
        },
        Faults {
            wrong_type: 1.0,
            ..Faults::default()
        },
    ] {
        // A fake of its own for each lie (each lies once per variant).
        let options = FakeOptions {
            faults: lie,
            ..FakeOptions::default()
        };
        let server = server.insert(FakeServer::start_in_thread(vault.clone(), options).unwrap());
        // No second try in the run: what a lying answer leaves stays visible.
        let (summary, output, code) =
            run_json(mirror_s3(server, &moto, state.path()).args(["--retries", "1"]));
        assert_ne!(code, 0, "{output}");
        assert_eq!(summary["downloaded"], 0, "{output}");
        let media: Vec<String> = objects(&moto)
            .into_keys()
            .filter(|key| key.starts_with("media/"))
            .collect();
        assert!(media.is_empty(), "objects of lying answers: {media:?}");
        assert_eq!(incomplete_uploads(&moto), Vec::<String>::new());
        let stats = server.stats();
        assert!(
            stats.wrong_sizes + stats.wrong_types > 0,
            "no fault was served"
        );
    }
    // Honest answers again: every variant arrives, whole, but the one
    // whose bytes are not what Vault+ declared.
    let server = server.unwrap();
    server.set_faults(Faults::default());
    let (summary, output, _) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(summary["failed"].as_array().unwrap().len(), 1, "{output}");
    assert!(output.contains("not image/jpeg"), "{output}");
    assert_eq!(
        assert_objects_match(&moto, &vault),
        stored_variants(&vault, &["full", "thumb"]) - 1
    );
    assert!(!objects(&moto).contains_key("media/9000000002/full.jpg"));
    assert_eq!(incomplete_uploads(&moto), Vec::<String>::new());
}

/// The big-file vault behind a fake media host that sends each transfer
/// `rate` bytes a second, so a run can be caught mid-upload.
fn slow_server(vault: &Vault, rate: u64) -> FakeServer {
    let slow = FakeOptions {
        faults: Faults {
            bandwidth_per_transfer: Some(rate),
            ..Faults::default()
        },
        ..FakeOptions::default()
    };
    FakeServer::start_in_thread(vault.clone(), slow).unwrap()
}

/// Starts `command` and returns once a multipart upload is under way.
fn spawn_until_uploading(moto: &Moto, command: &mut Command) -> Child {
    let child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while incomplete_uploads(moto).is_empty() {
        assert!(Instant::now() < deadline, "no multipart upload started");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

#[test]
fn s3_kill_9_mid_upload_leaves_no_wrong_object_and_the_next_run_cleans_up() {
    let moto = require!(moto());
    let vault = vault_with_a_big_file();
    let server = slow_server(&vault, 4 << 20);
    let state = tempfile::tempdir().unwrap();
    let mut child = spawn_until_uploading(
        &moto,
        mirror_s3(&server, &moto, state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Whatever the moment: no object at a final key with wrong bytes, and
    // the big one not at all.
    assert_objects_match(&moto, &vault);
    assert!(!objects(&moto).contains_key("media/9000000001/full.mp4"));
    assert!(!incomplete_uploads(&moto).is_empty());

    // The next run aborts what the killed one left, then completes.
    let (summary, output, code) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("aborted 1 unfinished upload"), "{output}");
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert_eq!(
        assert_objects_match(&moto, &vault),
        stored_variants(&vault, &["full", "thumb"])
    );
    assert_eq!(incomplete_uploads(&moto), Vec::<String>::new());
}

#[test]
fn s3_plain_http_elsewhere_is_refused_without_printing_a_secret() {
    let vault = Vault::sample(2, 1);
    let server = FakeServer::start_in_thread(vault, FakeOptions::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut command = vault_mirror();
    command
        .args(["mirror", "--out", "s3://vault-test/x"])
        .env("XDG_STATE_HOME", state.path())
        .env("AWS_ENDPOINT_URL", "http://user:pw@192.0.2.10:9000")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("OFAUTH_BASE_URL", server.base_url())
        .env("OFAUTH_API_KEY", server.api_key())
        .env("OFAUTH_CONNECTION_ID", server.connection_id());
    let (_, output, code) = run_json(&mut command);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("http://192.0.2.10:9000"), "{output}");
    assert!(output.contains("never in the endpoint URL"), "{output}");
    for secret in [SECRET_KEY, ACCESS_KEY, "pw@"] {
        assert!(!output.contains(secret), "{secret} in {output}");
    }
    // Without them in the URL: plain HTTP to another machine is refused.
    let (_, output, code) = run_json(command.env("AWS_ENDPOINT_URL", "http://192.0.2.10:9000"));
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("AWS_ALLOW_HTTP=true"), "{output}");
    for secret in [SECRET_KEY, ACCESS_KEY] {
        assert!(!output.contains(secret), "{secret} in {output}");
    }
}

#[test]
fn s3_a_lease_is_honoured_until_stale_or_its_process_is_gone() {
    let moto = require!(moto());
    let vault = Vault::sample(4, 1);
    let server = FakeServer::start_in_thread(vault, FakeOptions::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let now = vault_mirror::now_ms();
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let plant = |host: &str, pid: u32, renewed_at: i64| {
        python(
            &moto,
            &format!(
                "s3.put_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease', Body=json.dumps(dict(host='{host}', pid={pid}, command='mirror', started_at={renewed_at}, renewed_at={renewed_at})))"
            ),
        );
    };

    // Another host's lease, renewed a minute ago: honoured.
    plant("other-host", 4242, now - 60_000);
    let (_, output, code) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("another run holds the archive"), "{output}");
    assert!(output.contains("other-host"), "{output}");
    assert_eq!(server.stats().media_requests, 0);
    assert!(objects(&moto).contains_key(".vault-mirror/lease"));

    // Not renewed for 11 minutes (more than the 10 it is honoured): taken over.
    plant("other-host", 4242, now - 11 * 60_000);
    let (_, output, code) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("took over the lease"), "{output}");
    assert!(!objects(&moto).contains_key(".vault-mirror/lease"));

    // This host, a process that no longer exists, renewed just now: taken
    // over at once.
    plant(&here, u32::MAX - 7, now);
    let (_, output, code) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("took over the lease"), "{output}");

    // This host, a process that runs (this test): honoured.
    plant(&here, std::process::id(), now);
    let (_, output, code) = run_json(&mut mirror_s3(&server, &moto, state.path()));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("another run holds the archive"), "{output}");
}

#[test]
fn s3_a_run_whose_lease_is_taken_over_stops_and_completes_nothing_more() {
    let moto = require!(moto());
    let vault = vault_with_a_big_file();
    let server = slow_server(&vault, 2 << 20);
    let state = tempfile::tempdir().unwrap();
    let child = spawn_until_uploading(
        &moto,
        mirror_s3(&server, &moto, state.path())
            .env("VAULT_MIRROR_TEST_LEASE_RENEW_MS", "200")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // Another machine takes the lease meanwhile (as after a long pause).
    let now = vault_mirror::now_ms();
    python(
        &moto,
        &format!(
            "s3.put_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease', Body=json.dumps(dict(host='other-host', pid=4242, command='mirror', started_at={now}, renewed_at={now})))"
        ),
    );
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("took over the archive's lease"), "{text}");
    let all = objects(&moto);
    assert!(
        !all.contains_key("media/9000000001/full.mp4"),
        "completed after losing the lease"
    );
    assert_eq!(incomplete_uploads(&moto), Vec::<String>::new());
    // The other run's lease is left as it is.
    let lease = python(
        &moto,
        &format!(
            "print(s3.get_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease')['Body'].read().decode())"
        ),
    );
    assert!(lease.contains("other-host"), "{lease}");
}

#[test]
fn s3_a_stop_signal_aborts_the_uploads_and_leaves_a_snapshot() {
    let moto = require!(moto());
    let vault = vault_with_a_big_file();
    let server = slow_server(&vault, 2 << 20);
    let state = tempfile::tempdir().unwrap();
    let child = spawn_until_uploading(
        &moto,
        mirror_s3(&server, &moto, state.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    send_signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(143), "{text}");
    // Stopped in order: no upload left open, the snapshot written, the
    // lease given back, nothing half-made at a final key.
    assert_eq!(incomplete_uploads(&moto), Vec::<String>::new());
    let all = objects(&moto);
    assert!(all.contains_key(".vault-mirror/state.sqlite"), "{text}");
    assert!(!all.contains_key(".vault-mirror/lease"), "{text}");
    assert!(!all.contains_key("media/9000000001/full.mp4"));
    assert_objects_match(&moto, &vault);
}

#[test]
fn s3_many_connections_each_under_its_own_prefix() {
    let moto = require!(moto());
    let (vault, options) = vault_mirror::fake::sample_account(6, 2, 3, false);
    let server = FakeServer::start_in_thread(vault, options).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mirror_all = || {
        let mut command = command_s3(&server, &moto, state.path(), &["mirror"]);
        command
            .arg("--all-connections")
            .env_remove("OFAUTH_CONNECTION_ID");
        command
    };
    let (summary, output, code) = run_json(&mut mirror_all());
    assert_eq!(code, 0, "{output}");
    let connections = summary["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 3, "{output}");
    let found = objects(&moto);
    for connection in connections {
        let id = connection["connection"].as_str().unwrap();
        let out = format!("s3://{BUCKET}/{PREFIX}/{id}");
        assert_eq!(connection["out"], out.as_str(), "{output}");
        // Every variant of its own vault at its own prefix, nothing of another's.
        let own = server
            .with_connection_vault(id, |vault| vault.clone())
            .unwrap();
        let expected = stored_variants(&own, &["full", "thumb"]);
        assert_eq!(connection["downloaded"].as_u64(), Some(expected as u64));
        let media: Vec<&String> = found
            .keys()
            .filter(|key| key.starts_with(&format!("{id}/media/")))
            .collect();
        assert_eq!(media.len(), expected, "{id}: {media:?}");
        for key in media {
            let folder = key.split('/').nth(2).unwrap();
            assert!(
                own.media
                    .keys()
                    .any(|media| vault_mirror::names::safe_name(media) == folder),
                "{key} is not {id}'s"
            );
        }
        assert!(
            found.contains_key(&format!("{id}/.vault-mirror/state.sqlite")),
            "{id}: no snapshot"
        );
    }
    assert!(incomplete_uploads(&moto).is_empty());
    // The overview at the prefix: the page links into each gallery-less
    // connection by name, the registry names every connection.
    let page = &found["index.html"];
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(found.contains_key("connections.json"));
    // Again: nothing new.
    let (summary, output, code) = run_json(&mut mirror_all());
    assert_eq!(code, 0, "{output}");
    assert_eq!(summary["totals"]["downloaded"], 0, "{output}");

    // `status` from another machine (no local state): one row per
    // connection, each from its snapshot.
    let elsewhere = tempfile::tempdir().unwrap();
    let (status, output, code) = run_json(&mut command_s3(
        &server,
        &moto,
        elsewhere.path(),
        &["status"],
    ));
    assert_eq!(code, 0, "{output}");
    let rows = status["connections"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|row| row["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["conn_01", "conn_02", "conn_03"], "{output}");
    for (row, connection) in rows.iter().zip(connections) {
        assert_eq!(
            row["figures"]["verified"], connection["downloaded"],
            "{output}"
        );
    }
    assert_eq!(status["out"], format!("s3://{BUCKET}/{PREFIX}"));

    // verify and export on the prefix: every connection's archive in turn.
    for args in [&["verify", "--fast"][..], &["verify"][..], &["export"][..]] {
        let (report, output, code) =
            run_json(&mut command_s3(&server, &moto, elsewhere.path(), args));
        assert_eq!(code, 0, "{args:?}: {output}");
        let reports = report["connections"].as_array().unwrap();
        let ids: Vec<&str> = reports
            .iter()
            .map(|report| report["connection"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["conn_01", "conn_02", "conn_03"], "{args:?}: {output}");
    }
    let found = objects(&moto);
    for id in ["conn_01", "conn_02", "conn_03"] {
        assert!(found.contains_key(&format!("{id}/SHA256SUMS")), "{id}");
    }
    assert!(found.contains_key("index.html"));
}
