//! Many connections in one run (an agency's): each connection its own
//! archive under `<out>/<id>/`, the refused ones reported while the others
//! go on, `--shard K/N`, the config file's `[[connections]]`, the single
//! connection's layout unchanged, and a stop signal with several
//! connections running, then a resume.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vault_mirror::fake::{FakeOptions, FakeServer, Faults, Vault, sample_account};
use vault_mirror::names::safe_name;

use crate::common::{
    against, assert_archive_matches, json_of, json_with_code, media_files, send_signal,
    stored_variants,
};
use crate::sandbox::Sandbox;

/// A sample account of `connections` healthy connections (`conn_01`, …)
/// of `media` media in 2 lists each, plus, when `troubled`, `conn_0N+1`
/// listed as expired and `conn_0N+2` listed as active but refused.
/// In a sandbox whose commands have no connection in their environment
/// (a test names the connections itself).
fn account(media: usize, connections: usize, troubled: bool, faults: Faults) -> Sandbox {
    let (vault, options) = sample_account(media, 2, connections, troubled);
    let server = FakeServer::start_in_thread(vault, FakeOptions { faults, ..options }).unwrap();
    let mut sandbox = Sandbox::around(server);
    sandbox.env_remove("OFAUTH_CONNECTION_ID");
    sandbox
}

/// `mirror --all-connections --json` into the sandbox's archive, exiting `code`.
fn mirror_all(sandbox: &Sandbox, code: i32) -> serde_json::Value {
    let args = ["mirror", "--all-connections", "--json"];
    json_with_code(&mut sandbox.command(&args), code)
}

/// The vault of connection `id`.
fn vault_of(server: &FakeServer, id: &str) -> Vault {
    server
        .with_connection_vault(id, |vault| vault.clone())
        .unwrap()
}

fn db_of(archive: &Path) -> PathBuf {
    archive.join(".vault-mirror/state.sqlite")
}

/// Every media folder of `archive` belongs to a media of `vault`: no file
/// of another connection is in this connection's folder.
fn assert_only_own_media(archive: &Path, vault: &Vault) {
    let own: Vec<String> = vault.media.keys().map(|id| safe_name(id)).collect();
    for path in media_files(archive) {
        let folder = path.components().nth(1).unwrap();
        let folder = folder.as_os_str().to_string_lossy().into_owned();
        assert!(
            own.contains(&folder),
            "{} in {} is not this connection's",
            path.display(),
            archive.display()
        );
    }
}

/// `field` of every entry of `object["connections"]`.
fn each_connection(object: &serde_json::Value, field: &str) -> Vec<String> {
    object["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|connection| connection[field].as_str().unwrap().to_owned())
        .collect()
}

/// The connections a run's `--json` object names, in order.
fn ids_in(summary: &serde_json::Value) -> Vec<String> {
    each_connection(summary, "connection")
}

#[test]
fn five_connections_one_expired_one_refused_the_others_complete() {
    let sandbox = account(6, 3, true, Faults::default());
    let ids = sandbox.server().connection_ids();
    assert_eq!(ids, ["conn_01", "conn_02", "conn_03", "conn_04", "conn_05"]);

    let summary = mirror_all(&sandbox, 4);
    assert_eq!(summary["command"], "mirror");
    assert_eq!(summary["outcome"], "refused");
    assert_eq!(summary["exit_code"], 4);
    // The expired connection is not listed as active: not even tried.
    assert_eq!(
        ids_in(&summary),
        ["conn_01", "conn_02", "conn_03", "conn_05"]
    );
    let connections = summary["connections"].as_array().unwrap();
    for healthy in &connections[..3] {
        assert_eq!(healthy["outcome"], "complete", "{healthy}");
        assert_eq!(healthy["exit_code"], 0);
        assert!(healthy["downloaded"].as_u64().unwrap() > 0);
    }
    let refused = &connections[3];
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert_eq!(refused["exit_code"], 4);
    assert!(
        refused["hints"][0].as_str().unwrap().contains("re-linking"),
        "{refused}"
    );
    assert_eq!(summary["totals"]["complete"], 3);
    assert_eq!(summary["totals"]["refused"], 1);

    for id in ["conn_01", "conn_02", "conn_03"] {
        let archive = sandbox.out().join(id);
        let vault = vault_of(sandbox.server(), id);
        let verified = assert_archive_matches(&archive, &db_of(&archive), &vault);
        assert_eq!(verified, stored_variants(&vault, &["full", "thumb"]));
        assert_only_own_media(&archive, &vault);
    }
    assert!(media_files(&sandbox.out().join("conn_05")).is_empty());
    assert!(!sandbox.out().join("conn_04").exists());
    assert!(!sandbox.out().join("media").exists(), "nothing at the top");
    let index = std::fs::read_to_string(sandbox.out().join("index.html")).unwrap();
    // No gallery without --export: each connection named, not linked.
    for id in ["conn_01", "conn_02", "conn_03", "conn_05"] {
        assert!(index.contains(&format!("<td>{id}</td>")), "{index}");
    }
    assert!(
        index.contains("<td>creator_01</td>"),
        "the username is shown"
    );

    // A second run downloads nothing.
    let served = sandbox.server().stats().media_requests;
    let summary = mirror_all(&sandbox, 4);
    assert_eq!(summary["totals"]["downloaded"], 0);
    assert_eq!(sandbox.server().stats().media_requests, served);

    // Named explicitly, the expired connection is refused too, with a hint.
    let mut command = sandbox.command(&["mirror", "--json"]);
    for id in &ids {
        command.args(["--connection", id]);
    }
    let summary = json_with_code(&mut command, 4);
    let outcomes = each_connection(&summary, "outcome");
    assert_eq!(
        outcomes,
        ["complete", "complete", "complete", "refused", "refused"]
    );

    // `status` shows one row per connection.
    let output = sandbox.command(&["status"]).output().unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    for id in &ids {
        assert!(table.contains(id.as_str()), "{table}");
    }
    let status = json_with_code(&mut sandbox.command(&["status", "--json"]), 0);
    let rows = each_connection(&status, "id");
    assert_eq!(rows, ids, "every connection an archive was made for");
    assert_eq!(status["connections"][4]["last_run"]["exit_code"], 4);
    assert_eq!(status["connections"][0]["figures"]["failed"], 0);
}

#[test]
fn shards_cover_every_connection_exactly_once_and_stay_put() {
    let sandbox = account(2, 7, false, Faults::default());
    let all = sandbox.server().connection_ids();
    let run_shards = || -> Vec<Vec<String>> {
        (1..=3)
            .map(|k| {
                let shard = format!("{k}/3");
                let args = ["mirror", "--all-connections", "--shard", &shard, "--json"];
                let summary = json_with_code(&mut sandbox.command(&args), 0);
                assert_eq!(summary["shard"], shard.as_str());
                ids_in(&summary)
            })
            .collect()
    };
    let first = run_shards();
    let mut covered: Vec<String> = first.iter().flatten().cloned().collect();
    covered.sort();
    assert_eq!(covered, all, "every connection once: {first:?}");
    for (k, shard) in first.iter().enumerate() {
        for id in shard {
            assert_eq!(vault_mirror::shard::owner(id, 3) as usize, k + 1);
        }
    }
    assert_eq!(
        run_shards(),
        first,
        "the same K/N picks the same connections"
    );
}

#[test]
fn one_connection_keeps_the_archive_layout() {
    let sandbox = account(4, 3, false, Faults::default());
    let mut command = sandbox.command(&["mirror", "--json"]);
    let summary = json_with_code(command.env("OFAUTH_CONNECTION_ID", "conn_02"), 0);
    assert_eq!(summary["command"], "mirror");
    assert_eq!(summary["connection"], "conn_02");
    assert!(summary.get("connections").is_none());
    let vault = vault_of(sandbox.server(), "conn_02");
    let verified = assert_archive_matches(sandbox.out(), &db_of(sandbox.out()), &vault);
    assert_eq!(verified, stored_variants(&vault, &["full", "thumb"]));
    let mut top: Vec<String> = std::fs::read_dir(sandbox.out())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, [".vault-mirror", "lists", "media"]);
}

#[test]
fn the_config_files_connection_tables() {
    let sandbox = account(4, 3, false, Faults::default());
    let out = sandbox.path("agency");
    let config = sandbox.path("agency.toml");
    std::fs::write(
        &config,
        "[mirror]\nquality = \"full,thumb\"\n\n\
         [[connections]]\nid = \"conn_01\"\nquality = \"thumb\"\n\n\
         [[connections]]\nid = \"conn_03\"\n",
    )
    .unwrap();
    let mut command = sandbox.command_at(&out, &["mirror", "--json"]);
    let summary = json_with_code(command.arg("--config").arg(&config), 0);
    assert_eq!(ids_in(&summary), ["conn_01", "conn_03"]);
    assert!(!out.join("conn_02").exists());
    let thumbs = vault_of(sandbox.server(), "conn_01");
    let archive = out.join("conn_01");
    let verified = assert_archive_matches(&archive, &db_of(&archive), &thumbs);
    assert_eq!(verified, stored_variants(&thumbs, &["thumb"]));
    let both = vault_of(sandbox.server(), "conn_03");
    let archive = out.join("conn_03");
    let verified = assert_archive_matches(&archive, &db_of(&archive), &both);
    assert_eq!(verified, stored_variants(&both, &["full", "thumb"]));

    // One connection named alone keeps today's layout, and its table.
    let single = sandbox.path("single");
    let mut command = sandbox.command_at(&single, &["mirror", "--json"]);
    command
        .arg("--config")
        .arg(&config)
        .env("OFAUTH_CONNECTION_ID", "conn_01");
    let summary = json_with_code(&mut command, 0);
    assert_eq!(summary["connection"], "conn_01");
    let verified = assert_archive_matches(&single, &db_of(&single), &thumbs);
    assert_eq!(verified, stored_variants(&thumbs, &["thumb"]));
}

/// Files verified in `archive`, or 0 while its database is not there yet.
fn verified_in(archive: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(
        db_of(archive),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|connection| {
        connection.query_row(
            "SELECT count(*) FROM variants WHERE local_state = 'verified'",
            [],
            |row| row.get::<_, i64>(0),
        )
    })
    .unwrap_or(0)
}

#[test]
fn ctrl_c_stops_every_connection_in_order_and_the_next_run_resumes() {
    let throttled = Faults {
        bandwidth_per_transfer: Some(64 * 1024),
        ..Faults::default()
    };
    let sandbox = account(24, 3, false, throttled);
    let mut command = sandbox.command(&[
        "mirror",
        "--all-connections",
        "--connections-at-once",
        "3",
        "--json",
    ]);
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Every connection under way: a file verified in each.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ["conn_01", "conn_02", "conn_03"]
        .iter()
        .any(|id| verified_in(&sandbox.out().join(id)) == 0)
    {
        assert!(Instant::now() < deadline, "the connections never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    send_signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("stopped at once"), "{stderr}");
    let summary = json_of(&output);
    assert_eq!(summary["outcome"], "interrupted");
    let mut before = 0;
    for connection in summary["connections"].as_array().unwrap() {
        assert_eq!(connection["outcome"], "interrupted", "{connection}");
        let id = connection["connection"].as_str().unwrap();
        let archive = sandbox.out().join(id);
        before +=
            assert_archive_matches(&archive, &db_of(&archive), &vault_of(sandbox.server(), id));
    }

    sandbox.server().set_faults(Faults::default());
    let summary = mirror_all(&sandbox, 0);
    let mut total = 0;
    for id in sandbox.server().connection_ids() {
        let archive = sandbox.out().join(&id);
        let vault = vault_of(sandbox.server(), &id);
        let verified = assert_archive_matches(&archive, &db_of(&archive), &vault);
        assert_eq!(verified, stored_variants(&vault, &["full", "thumb"]));
        total += verified;
    }
    assert!(before < total, "{before} of {total} before the stop");
    assert_eq!(
        summary["totals"]["downloaded"].as_u64().unwrap() as usize,
        total - before
    );
}

/// More connections at once than transfer slots: the runs share the
/// slots and every one completes (runs that handed freed slots to one
/// another without using them once stalled here forever).
#[test]
fn more_connections_at_once_than_transfer_slots_all_complete() {
    let sandbox = account(12, 6, false, Faults::default());
    let args = [
        "mirror",
        "--all-connections",
        "--connections-at-once",
        "6",
        "--jobs",
        "2",
        "--json",
    ];
    let mut child = sandbox
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A generous bound on a run of seconds: past it, the run is stuck.
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            send_signal(&child, "INT");
            let output = child.wait_with_output().unwrap();
            panic!(
                "the run is stuck: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let summary = json_of(&output);
    assert_eq!(summary["totals"]["complete"], 6);
    for id in sandbox.server().connection_ids() {
        let archive = sandbox.out().join(&id);
        let vault = vault_of(sandbox.server(), &id);
        let verified = assert_archive_matches(&archive, &db_of(&archive), &vault);
        assert_eq!(verified, stored_variants(&vault, &["full", "thumb"]));
    }
}

/// A run that cannot start creates nothing: a refused key for the
/// account's listing (exit 4), or `--db` with several connections (exit 2).
#[test]
fn an_agency_run_that_cannot_start_creates_nothing() {
    let sandbox = account(1, 2, false, Faults::default());
    let out = sandbox.path("agency");
    let mut command = sandbox.command_at(&out, &["mirror", "--all-connections", "--json"]);
    let summary = json_with_code(command.env("OFAUTH_API_KEY", "wrong"), 4);
    assert_eq!(summary["outcome"], "failed");
    assert!(
        summary["error"].as_str().unwrap().contains("401"),
        "{summary}"
    );
    let mut command = sandbox.command_at(
        &out,
        &[
            "mirror",
            "--connection",
            "conn_01",
            "--connection",
            "conn_02",
        ],
    );
    let output = command
        .arg("--db")
        .arg(sandbox.path("one.sqlite"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--db names one database"));
    assert!(!out.exists(), "nothing was created");
}

#[test]
fn verify_and_export_on_an_agencys_archive_cover_every_connection() {
    let sandbox = account(4, 3, false, Faults::default());
    let summary = mirror_all(&sandbox, 0);
    assert_eq!(ids_in(&summary), ["conn_01", "conn_02", "conn_03"]);

    // All intact: one object, a report per connection, each recorded in
    // its own history.
    let report = json_with_code(&mut sandbox.command(&["verify", "--json"]), 0);
    assert_eq!(report["command"], "verify");
    assert_eq!(ids_in(&report), ["conn_01", "conn_02", "conn_03"]);
    for connection in report["connections"].as_array().unwrap() {
        assert_eq!(connection["outcome"], "intact", "{connection}");
        assert!(connection["checked"].as_u64().unwrap() > 0, "{connection}");
    }

    // One file of conn_02 damaged (same size, other bytes): only conn_02
    // reports it, and the whole exits 3.
    let damaged = media_files(&sandbox.out().join("conn_02"))
        .into_iter()
        .next()
        .unwrap();
    let damaged = sandbox.out().join("conn_02").join(damaged);
    let mut bytes = std::fs::read(&damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    let report = json_with_code(&mut sandbox.command(&["verify", "--json"]), 3);
    let outcomes: Vec<String> = each_connection(&report, "outcome");
    assert_eq!(outcomes, ["intact", "damaged", "intact"], "{report}");
    let history = json_with_code(
        &mut sandbox.command_at(&sandbox.out().join("conn_02"), &["history", "--json"]),
        0,
    );
    assert_eq!(history["runs"][0]["command"], "verify", "{history}");
    assert_eq!(history["runs"][0]["exit_code"], 3, "{history}");

    // export writes each connection's index and the overview again.
    std::fs::remove_file(sandbox.out().join("index.html")).unwrap();
    let report = json_with_code(&mut sandbox.command(&["export", "--json"]), 0);
    assert_eq!(ids_in(&report), ["conn_01", "conn_02", "conn_03"]);
    for id in ["conn_01", "conn_02", "conn_03"] {
        let archive = sandbox.out().join(id);
        for file in ["SHA256SUMS", "manifest.jsonl", "index.html"] {
            assert!(archive.join(file).is_file(), "{id}/{file}");
        }
    }
    let overview = std::fs::read_to_string(sandbox.out().join("index.html")).unwrap();
    assert!(overview.contains("conn_02/index.html"), "{overview}");

    // `history` on the agency's folder: each connection's recent runs.
    let history = json_with_code(&mut sandbox.command(&["history", "--json"]), 0);
    let connections = history["connections"].as_array().unwrap();
    let ids: Vec<&str> = connections
        .iter()
        .map(|connection| connection["connection"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["conn_01", "conn_02", "conn_03"], "{history}");
    assert_eq!(connections[1]["runs"][0]["command"], "export", "{history}");
    assert_eq!(connections[1]["runs"][1]["command"], "verify", "{history}");
    let output = sandbox.command(&["history"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("connection conn_02:\n"), "{stdout}");
    // A run's number is one connection's: it says which folder to give.
    let output = sandbox.command(&["history", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/<connection id>"), "{stderr}");
}

#[test]
fn an_agencys_run_never_mixes_into_one_connections_archive() {
    let sandbox = account(3, 2, false, Faults::default());
    // Today's layout: one connection, named by the environment.
    let mut one = against(sandbox.server(), sandbox.out(), &["mirror", "--json"]);
    json_with_code(&mut one, 0);
    let before = media_files(sandbox.out()).len();

    for args in [
        &["mirror", "--all-connections"][..],
        &["mirror", "--all-connections", "--dry-run"][..],
    ] {
        let output = sandbox.command(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("would mix the two layouts"), "{stderr}");
    }
    // Nothing was added: no connection folder, the archive as it was.
    for id in ["conn_01", "conn_02"] {
        assert!(!sandbox.out().join(id).exists(), "{id}");
    }
    assert!(!sandbox.out().join("connections.json").exists());
    assert_eq!(media_files(sandbox.out()).len(), before);
}

#[test]
fn one_connections_run_never_mixes_into_an_agencys_folder() {
    let sandbox = account(3, 2, false, Faults::default());
    mirror_all(&sandbox, 0);
    let mut one = against(sandbox.server(), sandbox.out(), &["mirror"]);
    let output = one.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("holds one archive per connection"),
        "{stderr}"
    );
    assert!(!sandbox.out().join(".vault-mirror").exists());
    assert!(!sandbox.out().join("media").exists());
}
