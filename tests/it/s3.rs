//! `--out s3://bucket/prefix` against a real S3 implementation on
//! loopback: each test's [`Sandbox`] is in bucket mode (its own moto, see
//! `moto`), and what the bucket holds is read back with boto3, outside
//! vault-mirror. What both backends do alike (verify, repair, versions,
//! prune, views, export, restore from the snapshot) is in `backends`; here
//! is what only a bucket has: multipart uploads, the lease, the sha256
//! metadata and checksums, the endpoint's rules. Without moto or boto3 a
//! test skips, saying so, unless `CI=true`, where it fails
//! (`common::require!`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vault_mirror::fake::{FakeMedia, FakeOptions, FakeVariant, Faults, Vault};

use crate::common::{add_video, db_strings, require, send_signal, stored_variants};
use crate::moto::{
    ACCESS_KEY, BUCKET, Moto, Object, PREFIX, SECRET_KEY, assert_objects_match, incomplete_uploads,
    objects, python,
};
use crate::sandbox::{Sandbox, with_faults};

/// `vault-mirror mirror --json <args>` on the sandbox's bucket.
fn mirror(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut command = sandbox.command(&["mirror", "--json"]);
    command.args(args);
    command
}

/// The sample vault plus one media whose `full` needs a multipart upload
/// (three parts of 8 MiB and a short last one).
fn vault_with_a_big_file() -> Vault {
    let mut vault = Vault::sample(24, 3);
    add_video(&mut vault, "9000000001", 25 * 1024 * 1024 + 12_345);
    vault
}

#[test]
fn s3_full_mirror_byte_for_byte_then_a_rerun_that_downloads_nothing() {
    let vault = vault_with_a_big_file();
    let sandbox = require!(Sandbox::start_in_bucket(&vault, FakeOptions::default()));
    let moto = sandbox.moto();
    let expected = stored_variants(&vault, &["full", "thumb"]);

    let run = sandbox.run(&mut mirror(&sandbox, &[]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(
        summary["downloaded"].as_u64().unwrap() as usize,
        expected,
        "{output}"
    );
    assert_eq!(summary["out"], format!("s3://{BUCKET}/{PREFIX}"));
    assert_eq!(assert_objects_match(moto, &vault), expected);
    let all = objects(moto);
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
    assert_eq!(incomplete_uploads(moto), Vec::<String>::new());
    // Credentials reach no output (the log is at debug level here), and no
    // local file.
    assert!(
        !output.contains(SECRET_KEY) && !output.contains(ACCESS_KEY),
        "{output}"
    );
    let db = std::fs::read(sandbox.db()).unwrap();
    let db_text = String::from_utf8_lossy(&db);
    assert!(!db_text.contains(SECRET_KEY) && !db_text.contains(ACCESS_KEY));

    // A dry run reads the bucket's listing: nothing to fetch.
    let plan = sandbox.json(&mut mirror(&sandbox, &["--dry-run"]), 0);
    assert_eq!(plan["download"]["variants"], 0, "{plan}");
    assert_eq!(
        plan["skip"]["variants"].as_u64().unwrap() as usize,
        expected,
        "{plan}"
    );
    assert_eq!(plan["out"], format!("s3://{BUCKET}/{PREFIX}"));

    let server = sandbox.server();
    let requests = server.stats().media_requests;
    let again = sandbox.json(&mut mirror(&sandbox, &[]), 0);
    assert_eq!(again["downloaded"], 0, "{again}");
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
            access: None,
        },
    );
    vault.lists[0].members.push(id);
    let mut sandbox = require!(Sandbox::start_in_bucket(&vault, FakeOptions::default()));
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
        sandbox.restart_server(&vault, with_faults(lie));
        // No second try in the run: what a lying answer leaves stays visible.
        let summary = sandbox.json(&mut mirror(&sandbox, &["--retries", "1"]), 3);
        assert_eq!(summary["downloaded"], 0, "{summary}");
        let media: Vec<String> = objects(sandbox.moto())
            .into_keys()
            .filter(|key| key.starts_with("media/"))
            .collect();
        assert!(media.is_empty(), "objects of lying answers: {media:?}");
        assert_eq!(incomplete_uploads(sandbox.moto()), Vec::<String>::new());
        let stats = sandbox.server().stats();
        assert!(
            stats.wrong_sizes + stats.wrong_types > 0,
            "no fault was served"
        );
    }
    // Honest answers again: every variant arrives, whole, but the one
    // whose bytes are not what Vault+ declared.
    sandbox.server().set_faults(Faults::default());
    let run = sandbox.run(&mut mirror(&sandbox, &[]), 3);
    let output = run.text();
    assert_eq!(
        run.json()["failed"].as_array().unwrap().len(),
        1,
        "{output}"
    );
    assert!(output.contains("not image/jpeg"), "{output}");
    let moto = sandbox.moto();
    assert_eq!(
        assert_objects_match(moto, &vault),
        stored_variants(&vault, &["full", "thumb"]) - 1
    );
    assert!(!objects(moto).contains_key("media/9000000002/full.jpg"));
    assert_eq!(incomplete_uploads(moto), Vec::<String>::new());
}

/// The big-file vault in a bucket sandbox whose fake media host sends each
/// transfer `rate` bytes a second, so a run can be caught mid-upload.
fn slow_sandbox(rate: u64) -> Result<(Sandbox, Vault), String> {
    let vault = vault_with_a_big_file();
    let slow = with_faults(Faults {
        bandwidth_per_transfer: Some(rate),
        ..Faults::default()
    });
    Ok((Sandbox::start_in_bucket(&vault, slow)?, vault))
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
    let (sandbox, vault) = require!(slow_sandbox(4 << 20));
    let moto = sandbox.moto();
    let mut child = spawn_until_uploading(
        moto,
        mirror(&sandbox, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Whatever the moment: no object at a final key with wrong bytes, and
    // the big one not at all.
    assert_objects_match(moto, &vault);
    assert!(!objects(moto).contains_key("media/9000000001/full.mp4"));
    assert!(!incomplete_uploads(moto).is_empty());

    // The next run aborts what the killed one left (or, once a part of it
    // was recorded, resumes it: see `resume`), then completes.
    let run = sandbox.run(&mut mirror(&sandbox, &[]), 0);
    let output = run.text();
    assert!(
        output.contains("aborted 1 unfinished upload")
            || output.contains("resuming the upload of media/9000000001/full.mp4"),
        "{output}"
    );
    assert_eq!(run.json()["outcome"], "complete", "{output}");
    assert_eq!(
        assert_objects_match(moto, &vault),
        stored_variants(&vault, &["full", "thumb"])
    );
    assert_eq!(incomplete_uploads(moto), Vec::<String>::new());
}

#[test]
fn s3_plain_http_elsewhere_is_refused_without_printing_a_secret() {
    // No bucket: the endpoint is refused before any is reached.
    let mut sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let state = sandbox.path("state");
    std::fs::create_dir(&state).unwrap();
    sandbox
        .env("XDG_STATE_HOME", state)
        .env("AWS_ENDPOINT_URL", "http://user:pw@192.0.2.10:9000")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let mut command = sandbox.command_at(Path::new("s3://vault-test/x"), &["mirror"]);
    let output = sandbox.run(&mut command, 2).text();
    assert!(output.contains("http://192.0.2.10:9000"), "{output}");
    assert!(output.contains("never in the endpoint URL"), "{output}");
    for secret in [SECRET_KEY, ACCESS_KEY, "pw@"] {
        assert!(!output.contains(secret), "{secret} in {output}");
    }
    // Without them in the URL: plain HTTP to another machine is refused.
    let output = sandbox
        .run(command.env("AWS_ENDPOINT_URL", "http://192.0.2.10:9000"), 2)
        .text();
    assert!(output.contains("AWS_ALLOW_HTTP=true"), "{output}");
    for secret in [SECRET_KEY, ACCESS_KEY] {
        assert!(!output.contains(secret), "{secret} in {output}");
    }
}

#[test]
fn s3_a_lease_is_honoured_until_stale_or_its_process_is_gone() {
    let sandbox = require!(Sandbox::start_in_bucket(
        &Vault::sample(4, 1),
        FakeOptions::default()
    ));
    let moto = sandbox.moto();
    let now = vault_mirror::now_ms();
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    // A lease as an older version wrote it (no boot id), or with one.
    let plant_in_boot = |host: &str, pid: u32, renewed_at: i64, boot_id: Option<&str>| {
        let boot = boot_id.map_or(String::new(), |id| format!(", boot_id='{id}'"));
        python(
            moto,
            &format!(
                "s3.put_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease', Body=json.dumps(dict(host='{host}', pid={pid}, command='mirror', started_at={renewed_at}, renewed_at={renewed_at}{boot})))"
            ),
        );
    };
    let plant = |host: &str, pid: u32, renewed_at: i64| plant_in_boot(host, pid, renewed_at, None);
    let output = |code: i32| sandbox.run(&mut mirror(&sandbox, &[]), code).text();

    // Another host's lease, renewed a minute ago: honoured.
    plant("other-host", 4242, now - 60_000);
    let text = output(1);
    assert!(text.contains("another run holds the archive"), "{text}");
    assert!(text.contains("other-host"), "{text}");
    assert_eq!(sandbox.server().stats().media_requests, 0);
    assert!(objects(moto).contains_key(".vault-mirror/lease"));

    // Says it was renewed 11 minutes ago (more than the 10 it is honoured),
    // but the store wrote it just now: its holder's clock is slow, and the
    // store's clock is the one that counts (`store_trust` has the lease
    // the store has not written for the stale period).
    plant("other-host", 4242, now - 11 * 60_000);
    let text = output(1);
    assert!(text.contains("another run holds the archive"), "{text}");
    python(
        moto,
        &format!("s3.delete_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease')"),
    );

    // This host, a process that no longer exists, renewed just now: taken
    // over at once.
    plant(&here, u32::MAX - 7, now);
    let text = output(0);
    assert!(text.contains("took over the lease"), "{text}");

    // This host, a process that runs (this test): honoured.
    plant(&here, std::process::id(), now);
    let text = output(1);
    assert!(text.contains("another run holds the archive"), "{text}");

    // The same, in this boot (its id in the lease): honoured; written in a
    // boot that is over (a power cut since): taken over, whoever has the
    // pid now.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    plant_in_boot(&here, std::process::id(), now, Some(boot.trim()));
    let text = output(1);
    assert!(text.contains("another run holds the archive"), "{text}");
    plant_in_boot(&here, std::process::id(), now, Some("an-earlier-boot"));
    let text = output(0);
    assert!(text.contains("took over the lease"), "{text}");
}

#[test]
fn s3_a_run_whose_lease_is_taken_over_stops_and_completes_nothing_more() {
    let (sandbox, _) = require!(slow_sandbox(2 << 20));
    let moto = sandbox.moto();
    let child = spawn_until_uploading(
        moto,
        mirror(&sandbox, &[])
            .env("VAULT_MIRROR_TEST_LEASE_RENEW_MS", "200")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // Another machine takes the lease meanwhile (as after a long pause).
    let now = vault_mirror::now_ms();
    python(
        moto,
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
    let all = objects(moto);
    assert!(
        !all.contains_key("media/9000000001/full.mp4"),
        "completed after losing the lease"
    );
    assert_eq!(incomplete_uploads(moto), Vec::<String>::new());
    // The other run's lease is left as it is.
    let lease = python(
        moto,
        &format!(
            "print(s3.get_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease')['Body'].read().decode())"
        ),
    );
    assert!(lease.contains("other-host"), "{lease}");
}

/// The uploads recorded in the state database as kept to resume.
fn resumable_uploads(db: &Path) -> Vec<String> {
    db_strings(
        db,
        "SELECT object_key FROM resumable_uploads ORDER BY object_key",
    )
}

#[test]
fn s3_a_stop_signal_keeps_only_resumable_uploads_and_leaves_a_snapshot() {
    let (sandbox, vault) = require!(slow_sandbox(2 << 20));
    let moto = sandbox.moto();
    let child = spawn_until_uploading(
        moto,
        mirror(&sandbox, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    send_signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(143), "{text}");
    // Stopped in order: no upload left open but one kept to resume (its
    // parts recorded), the snapshot written, the lease given back,
    // nothing half-made at a final key.
    let kept: Vec<String> = resumable_uploads(&sandbox.db())
        .iter()
        .map(|key| format!("{PREFIX}/{key}"))
        .collect();
    assert_eq!(incomplete_uploads(moto), kept, "{text}");
    let all = objects(moto);
    assert!(all.contains_key(".vault-mirror/state.sqlite"), "{text}");
    assert!(!all.contains_key(".vault-mirror/lease"), "{text}");
    assert!(!all.contains_key("media/9000000001/full.mp4"));
    assert_objects_match(moto, &vault);
    // The next run completes, and leaves no upload at all.
    sandbox.run(&mut mirror(&sandbox, &[]), 0);
    assert_eq!(incomplete_uploads(moto), Vec::<String>::new());
    assert!(resumable_uploads(&sandbox.db()).is_empty());
}

#[test]
fn s3_many_connections_each_under_its_own_prefix() {
    let (vault, options) = vault_mirror::fake::sample_account(6, 2, 3, false);
    let mut sandbox = require!(Sandbox::start_in_bucket(&vault, options));
    let mirror_all = |sandbox: &Sandbox| {
        let mut command = mirror(sandbox, &["--all-connections"]);
        command.env_remove("OFAUTH_CONNECTION_ID");
        sandbox.json(&mut command, 0)
    };
    let summary = mirror_all(&sandbox);
    let connections = summary["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 3, "{summary}");
    let server = sandbox.server();
    let found = objects(sandbox.moto());
    for connection in connections {
        let id = connection["connection"].as_str().unwrap();
        let out = format!("s3://{BUCKET}/{PREFIX}/{id}");
        assert_eq!(connection["out"], out.as_str(), "{summary}");
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
    assert!(incomplete_uploads(sandbox.moto()).is_empty());
    // The overview at the prefix: the page links into each gallery-less
    // connection by name, the registry names every connection.
    let page = &found["index.html"];
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(found.contains_key("connections.json"));
    // Again: nothing new.
    let again = mirror_all(&sandbox);
    assert_eq!(again["totals"]["downloaded"], 0, "{again}");

    // `status` from another machine (no local state): one row per
    // connection, each from its snapshot.
    sandbox.another_machine("elsewhere");
    let status = sandbox.json(&mut sandbox.command(&["status", "--json"]), 0);
    let rows = status["connections"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|row| row["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["conn_01", "conn_02", "conn_03"], "{status}");
    for (row, connection) in rows.iter().zip(connections) {
        assert_eq!(
            row["figures"]["verified"], connection["downloaded"],
            "{status}"
        );
    }
    assert_eq!(status["out"], format!("s3://{BUCKET}/{PREFIX}"));

    // verify and export on the prefix: every connection's archive in turn.
    for args in [&["verify", "--fast"][..], &["verify"][..], &["export"][..]] {
        let mut command = sandbox.command(args);
        let report = sandbox.json(command.arg("--json"), 0);
        let reports = report["connections"].as_array().unwrap();
        let ids: Vec<&str> = reports
            .iter()
            .map(|report| report["connection"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["conn_01", "conn_02", "conn_03"], "{args:?}: {report}");
    }
    let found = objects(sandbox.moto());
    for id in ["conn_01", "conn_02", "conn_03"] {
        assert!(found.contains_key(&format!("{id}/SHA256SUMS")), "{id}");
    }
    assert!(found.contains_key("index.html"));
}

/// The `error:` and `hint:` lines of a failed command's stderr, asserting
/// it printed no `caused by:` chain and no raw S3 XML.
fn one_line_and_hint(text: &str) -> (String, String) {
    assert!(!text.contains("caused by:"), "{text}");
    assert!(!text.contains("<Error>"), "{text}");
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{text}");
    let hint = text
        .lines()
        .find(|line| line.starts_with("hint:"))
        .unwrap_or_else(|| panic!("no hint in {text}"));
    (errors[0].to_owned(), hint.to_owned())
}

#[test]
fn s3_a_missing_bucket_or_no_credentials_is_one_line_and_exit_2_before_any_change() {
    let mut sandbox = require!(Sandbox::start_in_bucket(
        &Vault::sample(2, 1),
        FakeOptions::default()
    ));
    sandbox.env_remove("VAULT_MIRROR_LOG");
    let missing = Path::new("s3://no-such-bucket/x");
    let text = sandbox
        .run(&mut sandbox.command_at(missing, &["mirror"]), 2)
        .text();
    let (error, hint) = one_line_and_hint(&text);
    let endpoint = sandbox.moto().endpoint().to_owned();
    assert_eq!(
        error,
        format!("error: the bucket `no-such-bucket` does not exist at {endpoint}")
    );
    assert!(hint.contains("`aws s3 mb s3://no-such-bucket`"), "{hint}");
    // The chain only with -v.
    let text = sandbox
        .run(&mut sandbox.command_at(missing, &["mirror", "-v"]), 2)
        .text();
    assert!(
        text.contains("caused by: taking the lease of s3://no-such-bucket/x"),
        "{text}"
    );
    // --json: the same one line.
    let json = sandbox.json(&mut sandbox.command_at(missing, &["mirror", "--json"]), 2);
    assert_eq!(json["error"], error.trim_start_matches("error: "));

    // No credentials anywhere (and no instance metadata service asked).
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        sandbox.env_remove(name);
    }
    sandbox.env("AWS_EC2_METADATA_DISABLED", "true");
    let text = sandbox.run(&mut sandbox.command(&["mirror"]), 2).text();
    let (error, hint) = one_line_and_hint(&text);
    assert_eq!(
        error,
        "error: no AWS credentials for the object store: none in the environment, and this machine gives none"
    );
    assert!(
        hint.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{hint}"
    );
    // Nothing changed upstream or in the bucket.
    assert_eq!(sandbox.server().stats().sync_calls, 0);
    assert!(objects(sandbox.moto()).is_empty());
}

#[test]
fn s3_an_unreachable_endpoint_is_one_line_and_exit_2() {
    let mut sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let state = sandbox.path("state");
    std::fs::create_dir(&state).unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sandbox
        .env("XDG_STATE_HOME", state)
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let mut command = sandbox.command_at(Path::new("s3://vault-test/x"), &["mirror"]);
    let text = sandbox.run(&mut command, 2).text();
    let (error, hint) = one_line_and_hint(&text);
    assert_eq!(
        error,
        format!("error: cannot reach the object store at http://127.0.0.1:{port}")
    );
    assert!(hint.contains("AWS_ENDPOINT_URL"), "{hint}");
    assert_eq!(sandbox.server().stats().sync_calls, 0);
}

#[test]
fn s3_verify_and_export_write_the_snapshot_so_another_machine_sees_them() {
    let vault = Vault::sample(4, 2);
    let mut sandbox = require!(Sandbox::start_in_bucket(&vault, FakeOptions::default()));
    let first = sandbox.json(&mut mirror(&sandbox, &[]), 0);
    for args in [
        &["verify", "--json"][..],
        &["verify", "--budget", "1h", "--json"][..],
        &["export", "--json"][..],
    ] {
        sandbox.json(&mut sandbox.command(args), 0);
        // Each run under the lease, given back at its end.
        assert!(!objects(sandbox.moto()).contains_key(".vault-mirror/lease"));
    }
    let mirrored = first["run_id"].as_i64().unwrap();

    // A fresh machine starts from the snapshot: it sees every run, and
    // numbers its own after them.
    sandbox.another_machine("elsewhere");
    let history = sandbox.json(&mut sandbox.command(&["history", "--json"]), 0);
    let runs = history["runs"].as_array().unwrap();
    let commands: Vec<&str> = runs
        .iter()
        .map(|run| run["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        ["export", "verify", "verify", "mirror"],
        "{history}"
    );
    let next = sandbox.json(&mut sandbox.command(&["verify", "--json"]), 0);
    assert_eq!(next["run_id"].as_i64(), Some(mirrored + 4), "{next}");
}
