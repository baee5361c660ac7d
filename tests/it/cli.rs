//! The real binary, as a user runs it (loopback only).

use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use predicates::prelude::*;
use vault_mirror::fake::{FakeOptions, FakeServer, Faults, Vault};

#[cfg(target_os = "linux")]
use crate::common::run_tool;
use crate::common::{
    SCRUBBED_ENVIRONMENT, against, assert_archive_matches, has_variants_table, integrity_check,
    json_of, media_files, require, send_signal, stored_variants, variant_rows, vault_mirror,
};
use crate::sandbox::{Sandbox, with_faults};

#[test]
fn help_names_the_commands_and_exit_codes() {
    vault_mirror()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("mirror").and(predicate::str::contains("demo")))
        .stdout(predicate::str::contains("Exit codes"));
    vault_mirror()
        .args(["mirror", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--quality").and(predicate::str::contains("--no-sync")));
}

/// Every `OFAUTH_*` and `VAULT_MIRROR_*` name quoted in `src/` is one the
/// binary may read, so each must be scrubbed: else a developer's shell
/// changes what the tests see (two drifted copies of the list once
/// cleared 6 and 10 of them).
#[test]
fn the_scrubbed_environment_holds_every_variable_the_source_names() {
    let mut folders = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut named = std::collections::BTreeSet::new();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for prefix in ["\"OFAUTH_", "\"VAULT_MIRROR_"] {
                for (at, _) in text.match_indices(prefix) {
                    let name = &text[at + 1..];
                    let end = name
                        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                        .unwrap_or(name.len());
                    if name[end..].starts_with('"') {
                        named.insert(name[..end].to_owned());
                    }
                }
            }
        }
    }
    assert!(named.contains("OFAUTH_API_KEY"), "{named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| !SCRUBBED_ENVIRONMENT.contains(&name.as_str()))
        .collect();
    assert!(missing.is_empty(), "not scrubbed: {missing:?}");
}

#[test]
fn a_refused_key_exits_4_with_a_hint() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    sandbox
        .command(&["mirror"])
        .env("OFAUTH_API_KEY", "not-the-key")
        .assert()
        .code(4)
        .stderr(predicate::str::contains("error:").and(predicate::str::contains("hint:")))
        .stderr(predicate::str::contains("not-the-key").not());
}

#[test]
fn an_unreachable_api_exits_1() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = tempfile::tempdir().unwrap();
    vault_mirror()
        .args([
            "mirror",
            "--api-key",
            "k",
            "--connection",
            "c",
            "--base-url",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("could not reach the API"));
}

#[test]
fn missing_key_or_bad_flags_exit_2() {
    let out = tempfile::tempdir().unwrap();
    vault_mirror()
        .args(["mirror", "--connection", "c", "--out"])
        .arg(out.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no API key"));
    // The key file first: a key on the command line shows in `ps`.
    let said = String::from_utf8(
        vault_mirror()
            .args(["mirror", "--connection", "c", "--out"])
            .arg(out.path())
            .env_remove("OFAUTH_API_KEY")
            .env_remove("OFAUTH_API_KEY_FILE")
            .output()
            .unwrap()
            .stderr,
    )
    .unwrap();
    let file = said.find("--api-key-file").expect("the key file suggested");
    let flag = said.find("`--api-key` ").expect("the flag named");
    assert!(file < flag && said.contains("shows in `ps`"), "{said}");
    vault_mirror()
        .args(["mirror", "--jobs", "0"])
        .assert()
        .code(2);
    vault_mirror()
        .args([
            "mirror",
            "--api-key",
            "k",
            "--connection",
            "c",
            "--base-url",
            "ftp://x",
        ])
        .assert()
        .code(2);
}

#[test]
fn json_prints_exactly_one_object() {
    let vault = Vault::sample(12, 3);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let output = sandbox.command(&["mirror"]).arg("--json").output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for field in [
        "lists",
        "variants_seen",
        "downloaded",
        "already_verified",
        "pending",
        "failed",
        "bytes",
        "seconds",
        "exit_code",
        "outcome",
    ] {
        assert!(summary.get(field).is_some(), "missing {field} in {summary}");
    }
    assert_eq!(
        summary["downloaded"].as_u64().unwrap() as usize,
        stored_variants(&vault, &["full", "thumb"])
    );
    assert_eq!(summary["lists"].as_array().unwrap().len(), 3);
    // Downloads began before the run ended.
    let first_byte = summary["first_byte_seconds"].as_f64().unwrap();
    assert!(
        first_byte <= summary["seconds"].as_f64().unwrap(),
        "{summary}"
    );

    // A run that downloads nothing has no first byte.
    let again = sandbox.command(&["mirror"]).arg("--json").output().unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8(again.stdout).unwrap().trim()).unwrap();
    assert_eq!(summary["downloaded"], 0);
    assert!(summary["first_byte_seconds"].is_null(), "{summary}");
}

#[test]
fn demo_mirrors_the_sample_vault_and_a_second_run_downloads_nothing() {
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("vault-demo");
    vault_mirror()
        .args(["demo", "--media", "15", "--out"])
        .arg(&archive)
        .assert()
        .success()
        .stderr(predicate::str::contains("The mirror is in"));
    assert!(archive.join("media").is_dir());
    let output = vault_mirror()
        .args(["demo", "--media", "15", "--json", "--out"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(output.status.success());
    let summary = json_of(&output);
    assert_eq!(summary["downloaded"], 0);
    assert!(summary["already_verified"].as_u64().unwrap() > 0);
}

#[test]
fn kill_9_mid_run_then_a_run_that_completes() {
    let vault = Vault::sample(40, 3);
    let throttled = with_faults(Faults {
        bandwidth_per_transfer: Some(96 * 1024),
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, throttled);
    let db = sandbox.db();
    let mut child = sandbox.command(&["mirror"]).arg("--quiet").spawn().unwrap();
    // Wait until the run is well under way: some files verified, more in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        // The database may be there before its tables are.
        let verified = db.exists()
            && has_variants_table(&db)
            && variant_rows(&db)
                .iter()
                .filter(|row| row.4 == "verified")
                .count()
                >= 5;
        if verified || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Whatever the moment, nothing broken sits at a final path.
    let verified_before = assert_archive_matches(sandbox.out(), &db, &vault);
    let total = stored_variants(&vault, &["full", "thumb"]);
    assert!(
        verified_before > 0 && verified_before < total,
        "{verified_before} of {total}"
    );

    sandbox.server().set_faults(Faults::default());
    let requests_before = sandbox.server().stats().media_requests;
    sandbox.command(&["mirror"]).arg("--quiet").assert().code(0);
    assert_eq!(assert_archive_matches(sandbox.out(), &db, &vault), total);
    // No verified file was fetched again.
    let fetched = sandbox.server().stats().media_requests - requests_before;
    assert_eq!(fetched as usize, total - verified_before);
    let connection = rusqlite::Connection::open(&db).unwrap();
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Waits (polling the database) until `at_least` variants are verified.
pub(crate) fn wait_for_verified(db: &std::path::Path, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        // The file exists a moment before its schema does, and the run may
        // hold it locked: anything but a count is "not yet".
        let verified =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|connection| {
                    connection.query_row(
                        "SELECT count(*) FROM variants WHERE local_state = 'verified'",
                        [],
                        |row| row.get::<_, i64>(0),
                    )
                });
        if verified.is_ok_and(|count| count >= at_least as i64) {
            return;
        }
    }
    panic!("fewer than {at_least} variants verified after a minute");
}

fn part_files(out: &std::path::Path) -> usize {
    media_files(out)
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "part"))
        .count()
}

#[test]
fn a_signal_stops_the_run_in_order_and_the_next_run_resumes() {
    let vault = Vault::sample(40, 3);
    let total = stored_variants(&vault, &["full", "thumb"]);
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let throttled = with_faults(Faults {
            bandwidth_per_transfer: Some(64 * 1024),
            ..Faults::default()
        });
        let sandbox = Sandbox::start_in_thread(&vault, throttled);
        let db = sandbox.db();
        let child = sandbox
            .command(&["mirror"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_verified(&db, 3);
        send_signal(&child, signal);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        // A summary, not the "at once" exit of a second signal or the grace.
        assert!(stderr.contains("interrupted after"), "{stderr}");
        assert!(!stderr.contains("stopped at once"), "{stderr}");

        let connection = rusqlite::Connection::open(&db).unwrap();
        let (outcome, exit_code, finished): (String, i32, Option<i64>) = connection
            .query_row(
                "SELECT outcome, exit_code, finished_at FROM runs ORDER BY run_id DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!((outcome.as_str(), exit_code), ("interrupted", code));
        assert!(finished.is_some());
        drop(connection);
        assert_eq!(integrity_check(&db), "ok");
        let verified_before = assert_archive_matches(sandbox.out(), &db, &vault);
        assert!(verified_before < total, "{verified_before} of {total}");
        // Transfers in flight were kept to resume.
        assert!(part_files(sandbox.out()) > 0, "no .part kept");

        sandbox.server().set_faults(Faults::default());
        let requests_before = sandbox.server().stats().media_requests;
        sandbox.command(&["mirror"]).arg("--quiet").assert().code(0);
        assert_eq!(assert_archive_matches(sandbox.out(), &db, &vault), total);
        assert_eq!(part_files(sandbox.out()), 0);
        let fetched = sandbox.server().stats().media_requests - requests_before;
        assert_eq!(fetched as usize, total - verified_before);
    }
}

/// A small, seeded generator (xorshift64*): the kill moments repeat from
/// run to run, and `VAULT_MIRROR_CRASH_SEED` tries others.
struct Moments(u64);

impl Moments {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

#[test]
fn crash_loop_kill_9_at_random_moments_then_every_resumed_run_matches() {
    let seed = std::env::var("VAULT_MIRROR_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0x5eed_cafe_u64);
    let mut moments = Moments(seed.max(1));
    let vault = Vault::sample(24, 3);
    let total = stored_variants(&vault, &["full", "thumb"]);
    let throttled = with_faults(Faults {
        bandwidth_per_transfer: Some(128 * 1024),
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, throttled);
    let mut out = sandbox.out().to_path_buf();
    let mut kills = 0;
    let mut completed = 0;
    let mut attempts = 0;
    while kills < 20 {
        attempts += 1;
        assert!(attempts < 200, "runs keep finishing before the kill");
        let db = out.join(".vault-mirror/state.sqlite");
        let mut child = sandbox
            .command_at(&out, &["mirror"])
            .arg("--quiet")
            .arg("--export")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // From the first instant (no database yet) to well past the end.
        let moment = Duration::from_millis(moments.next_below(1500));
        std::thread::sleep(moment);
        match child.try_wait().unwrap() {
            Some(status) => {
                // The run ended first: it must have completed everything.
                assert_eq!(status.code(), Some(0), "seed {seed}, after {moment:?}");
                assert_eq!(assert_archive_matches(&out, &db, &vault), total);
                assert_eq!(integrity_check(&db), "ok");
                completed += 1;
                // A fresh archive, so the next kills land mid-run again.
                out = sandbox.path(&format!("archive-{completed}"));
                std::fs::create_dir(&out).unwrap();
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                if db.exists() {
                    assert_eq!(integrity_check(&db), "ok", "seed {seed}, after {moment:?}");
                    // A kill while the database was being created may leave
                    // it without tables; the next run must cope with that.
                    if has_variants_table(&db) {
                        assert_archive_matches(&out, &db, &vault);
                    }
                }
            }
        }
    }
    // And the run after the last kill completes.
    let db = out.join(".vault-mirror/state.sqlite");
    sandbox
        .command_at(&out, &["mirror"])
        .arg("--quiet")
        .assert()
        .code(0);
    assert_eq!(assert_archive_matches(&out, &db, &vault), total);
    assert_eq!(integrity_check(&db), "ok");
    eprintln!("{kills} kills, {completed} runs completed between them (seed {seed})");
}

/// A run under `variable=value` stops with exit 1 and `message` (and the
/// hint, when given), the database intact and every file it calls
/// verified whole; the next run, without it, completes. Returns the
/// failed run's stderr.
fn stops_then_the_next_run_completes(
    (variable, value): (&str, &str),
    message: &str,
    hint: Option<&str>,
) -> String {
    let vault = Vault::sample(40, 2);
    let total = stored_variants(&vault, &["full", "thumb"]);
    let mut sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let db = sandbox.db();
    let output = sandbox
        .env(variable, value)
        .command(&["mirror"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let message = message.replace("<out>", &sandbox.out().display().to_string());
    assert!(stderr.contains(&message), "{stderr}");
    assert!(hint.is_none_or(|hint| stderr.contains(hint)), "{stderr}");
    assert_eq!(integrity_check(&db), "ok");
    let verified_before = assert_archive_matches(sandbox.out(), &db, &vault);
    assert!(verified_before < total);

    let requests_before = sandbox.server().stats().media_requests;
    sandbox.env_remove(variable);
    sandbox.command(&["mirror"]).arg("--quiet").assert().code(0);
    assert_eq!(assert_archive_matches(sandbox.out(), &db, &vault), total);
    assert_eq!(part_files(sandbox.out()), 0);
    assert_eq!(integrity_check(&db), "ok");
    let fetched = sandbox.server().stats().media_requests - requests_before;
    assert!(fetched as usize <= total - verified_before);
    stderr
}

#[test]
fn an_unknown_list_given_while_list_names_cannot_be_read_leaves_no_row_either() {
    let vault = Vault::sample(4, 1);
    let options = with_faults(Faults {
        lists_unavailable: true,
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, options);
    let db = sandbox.db();
    let known = vault.lists[0].id.clone();
    sandbox
        .command(&["mirror"])
        .args(["--list", "999", "--list", &known])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("could not read list names")
                .and(predicate::str::contains("there is no list 999 upstream")),
        );
    assert!(
        sandbox.server().stats().lists_unavailable > 0,
        "{:?}",
        sandbox.server().stats()
    );
    assert_eq!(db_list_ids(&db), vec![known]);
}

#[test]
fn a_full_disk_stops_the_run_with_the_path_and_a_run_with_room_completes() {
    let stderr = stops_then_the_next_run_completes(
        ("VAULT_MIRROR_TEST_DISK_FULL_AFTER", "400000"),
        "no space left on the disk while writing <out>",
        None,
    );
    assert!(stderr.contains(".part"), "{stderr}");
}

#[test]
fn a_full_disk_under_the_database_stops_the_run_and_the_next_run_resumes() {
    // Room for the schema and a little more: the run fills it part-way.
    stops_then_the_next_run_completes(
        ("VAULT_MIRROR_TEST_DB_MAX_PAGES", "22"),
        "no space left on the disk holding the state database <out>/.vault-mirror/state.sqlite",
        Some("hint: free some space"),
    );
}

#[cfg(unix)]
#[test]
fn the_database_and_the_log_are_private_and_hold_no_secret() {
    use std::os::unix::fs::PermissionsExt;
    let vault = Vault::sample(6, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let log = sandbox.out().join("run.log");
    sandbox
        .command(&["mirror"])
        .arg("--log-file")
        .arg(&log)
        .arg("-v")
        .assert()
        .code(0);
    let db = sandbox.db();
    for path in [&db, &log] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    // No key, connection id or signature anywhere the run wrote text.
    let mut texts = vec![std::fs::read(&log).unwrap()];
    texts.push(std::fs::read(&db).unwrap());
    if let Ok(wal) = std::fs::read(sandbox.out().join(".vault-mirror/state.sqlite-wal")) {
        texts.push(wal);
    }
    for text in texts {
        let text = String::from_utf8_lossy(&text);
        for secret in [
            sandbox.server().api_key(),
            sandbox.server().connection_id(),
            "sig=",
        ] {
            assert!(!text.contains(secret), "{secret} was written");
        }
    }
}

/// Mirrors into `out` and folds the WAL into the database file (so that
/// bytes written over it land in the database); returns its path.
fn mirrored_with_wal_folded_in(server: &FakeServer, out: &std::path::Path) -> std::path::PathBuf {
    let db = out.join(".vault-mirror/state.sqlite");
    against(server, out, &["mirror"])
        .arg("--quiet")
        .assert()
        .code(0);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    db
}

#[test]
fn verify_reads_every_page_of_the_database_and_reports_damage_deep_inside() {
    let vault = Vault::sample(30, 2);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let db = mirrored_with_wal_folded_in(sandbox.server(), sandbox.out());
    // The header and schema stay whole; the last page is scribbled over.
    let mut bytes = std::fs::read(&db).unwrap();
    let page = 4096;
    assert!(bytes.len() >= 4 * page, "{} bytes", bytes.len());
    let last = bytes.len() - page;
    bytes[last..].fill(0x5A);
    std::fs::write(&db, &bytes).unwrap();
    sandbox
        .offline(&["verify"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is damaged"))
        .stderr(predicate::str::contains("left untouched"));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the damaged file was changed"
    );
}

#[test]
fn a_damaged_database_is_reported_and_never_recreated_over_the_archive() {
    let vault = Vault::sample(6, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let db = mirrored_with_wal_folded_in(sandbox.server(), sandbox.out());
    let files_before = media_files(sandbox.out());
    // Scribble over the header.
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..100].copy_from_slice(&[0xAB; 100]);
    std::fs::write(&db, &bytes).unwrap();
    sandbox
        .command(&["mirror"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is damaged or is not a vault-mirror database",
        ))
        .stderr(predicate::str::contains("left untouched"))
        .stderr(predicate::str::contains("hint:"));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the damaged file was changed"
    );
    assert_eq!(media_files(sandbox.out()), files_before);
}

#[test]
fn a_locked_database_is_reported_not_waited_on_forever() {
    let vault = Vault::sample(6, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let db = sandbox.db();
    sandbox.command(&["mirror"]).arg("--quiet").assert().code(0);
    // Another program holds an exclusive lock for the whole run.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    assert_cmd::Command::from_std(sandbox.command(&["mirror"]))
        .timeout(Duration::from_secs(120))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "busy or locked by another program",
        ))
        .stderr(predicate::str::contains("hint:"));
    holder.execute_batch("COMMIT;").unwrap();
}

/// Needs root to mount a tmpfs (as in CI): elsewhere it skips, saying so;
/// under `CI=true` it fails (`require!`).
#[test]
fn a_read_only_database_is_reported() {
    let vault = Vault::sample(6, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let mount = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mount.path())
        .output();
    require!(match mounted {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "cannot mount a tmpfs here (it needs root): mount {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("cannot run mount: {error}")),
    });
    let db = mount.path().join("state.sqlite");
    let run = || {
        let mut command = sandbox.command(&["mirror"]);
        command.arg("--db").arg(&db).arg("--quiet");
        command
    };
    run().assert().code(0);
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(remounted.success());
    let output = assert_cmd::Command::from_std(run())
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(mount.path()).status();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("read-only") || stderr.contains("readonly"),
        "{stderr}"
    );
}

#[test]
fn too_little_free_space_warns_and_min_free_refuses_with_a_clear_message() {
    let vault = Vault::sample(12, 2);
    let total_bytes: u64 = vault
        .media
        .values()
        .flat_map(|media| media.variants.values())
        .map(|variant| variant.body.len() as u64)
        .sum();
    let largest = vault
        .media
        .values()
        .flat_map(|media| media.variants.values())
        .map(|variant| variant.body.len() as u64)
        .max()
        .unwrap();
    let mut sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    // Room for the largest file, not for everything: a warning, then a run
    // that goes on (the pretended disk never really fills).
    let free = (total_bytes / 2).max(largest).to_string();
    sandbox.env("VAULT_MIRROR_TEST_FREE_BYTES", &free);
    sandbox
        .command(&["mirror"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("need more than the"))
        .stderr(predicate::str::contains("--min-free"));
    // With a floor, what would go below it is refused and named.
    let second = sandbox.path("second");
    std::fs::create_dir(&second).unwrap();
    sandbox
        .command_at(&second, &["mirror"])
        .args(["--min-free", "1K"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("would leave less than --min-free"));
}

/// The list ids the state database holds.
fn db_list_ids(db: &std::path::Path) -> Vec<String> {
    crate::common::db_strings(db, "SELECT list_id FROM lists ORDER BY 1")
}

#[test]
fn a_quality_label_nothing_carries_is_refused_before_any_sync_or_file() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(6, 1), FakeOptions::default());
    for (typo, meant) in [("fulll", "full"), ("FULL", "full"), ("thumbs", "thumb")] {
        let out = sandbox.path(typo);
        std::fs::create_dir(&out).unwrap();
        for dry_run in [false, true] {
            let mut command = sandbox.command_at(&out, &["mirror"]);
            command.args(["--quality", &format!("full,{typo}")]);
            if dry_run {
                command.arg("--dry-run");
            }
            let text = sandbox.run(&mut command, 2).text();
            assert!(
                text.contains(&format!(
                    "error: --quality: no media carries `{typo}`; the labels there are `full`, `square-preview`, `thumb`"
                )),
                "{text}"
            );
            assert!(
                text.contains(&format!("hint: did you mean `{meant}`?")),
                "{text}"
            );
        }
        // Nothing changed upstream or on disk: no sync, not even the
        // archive's own folder.
        assert_eq!(sandbox.server().stats().sync_calls, 0);
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "{typo}");
    }
    // A label far from every one, when every member was looked at.
    let json = sandbox.json(
        sandbox
            .command(&["mirror", "--json"])
            .args(["--quality", "hd720"]),
        2,
    );
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("no media carries `hd720`"),
        "{json}"
    );
    assert_eq!(sandbox.server().stats().sync_calls, 0);
    // Labels that exist run as before.
    sandbox
        .command(&["mirror", "-q"])
        .args(["--quality", "thumb"])
        .assert()
        .code(0);
}

#[test]
fn a_command_that_cannot_start_creates_nothing() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let typo = sandbox.path("typo");
    for command in [
        &["verify"][..],
        &["verify", "--fast"],
        &["status"],
        &["export"],
    ] {
        vault_mirror()
            .args(command)
            .arg("--out")
            .arg(&typo)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("no archive at"));
        assert!(!typo.exists(), "{command:?} created {}", typo.display());
    }
    // A mirror without a key (or without a connection) makes no folder, no lock.
    vault_mirror()
        .args(["mirror", "--connection", "c", "--out"])
        .arg(&typo)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no API key"));
    vault_mirror()
        .args(["mirror", "--api-key", "k", "--out"])
        .arg(&typo)
        .env("OFAUTH_BASE_URL", sandbox.server().base_url())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no connection id"));
    assert!(!typo.exists());
    assert_eq!(sandbox.server().stats().api_calls, 0);
}

#[test]
fn an_unknown_list_is_a_clear_error_and_leaves_no_row_behind() {
    let vault = Vault::sample(6, 2);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let db = sandbox.db();
    sandbox
        .command(&["mirror"])
        .args(["--list", "999", "--list", &vault.lists[0].id])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(format!(
                "the connection has no list `999`; its lists are `{}`, `{}`",
                vault.lists[0].id, vault.lists[1].id
            ))
            .and(predicate::str::contains("hint: `vault-mirror lists`")),
        );
    assert_eq!(sandbox.server().stats().sync_calls, 0, "nothing was synced");
    // A full run afterwards: no list row for 999 (it would show as gone).
    sandbox.command(&["mirror"]).arg("-q").assert().code(0);
    assert_eq!(
        db_list_ids(&db),
        vec![vault.lists[0].id.clone(), vault.lists[1].id.clone()]
    );
    sandbox.offline(&["status"]).assert().code(0).stdout(
        predicate::str::contains("999")
            .not()
            .and(predicate::str::contains("gone").not()),
    );
}

#[test]
fn paging_that_never_ends_stops_with_a_clear_error() {
    let options = with_faults(Faults {
        endless_pages: true,
        ..Faults::default()
    });
    let vault = Vault::sample(6, 2);
    let sandbox = Sandbox::start_in_thread(&vault, options);
    // Every list: the listing repeats its first page.
    sandbox.command(&["mirror"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "/v2/access/vault/lists kept paging without progress (a page brought no item not seen before)",
        ));
    let stats = sandbox.server().stats();
    assert!(stats.list_calls <= 2, "{stats:?}");
    assert!(stats.endless_pages > 0, "{stats:?}");
    // Named lists: their members' cursor goes round in a circle; the last
    // known members stand and the run says why.
    let output = sandbox
        .command(&["mirror"])
        // `all`: no label to check before the run, so only the run pages.
        .args(["--list", &vault.lists[0].id, "--quality", "all", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let summary = json_of(&output);
    let errors = summary["errors"].to_string();
    assert!(errors.contains("kept paging without progress"), "{errors}");
    let stats = sandbox.server().stats();
    assert!(stats.member_calls <= 3, "{stats:?}");
    // Every list page paged without end, and so did some member page.
    assert!(stats.endless_pages > stats.list_calls, "{stats:?}");
}

#[test]
fn fake_server_prints_lines_a_shell_takes_and_completions_name_only_visible_commands() {
    let mut child = vault_mirror()
        .args(["fake-server", "--media", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    {
        use std::io::BufRead;
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines().take(3) {
            lines.push(line.unwrap());
        }
    }
    send_signal(&child, "TERM");
    let _ = child.wait();
    for (line, name) in
        lines
            .iter()
            .zip(["OFAUTH_BASE_URL", "OFAUTH_API_KEY", "OFAUTH_CONNECTION_ID"])
    {
        assert!(line.starts_with(&format!("export {name}=")), "{line}");
    }
    for shell in ["bash", "zsh", "fish"] {
        vault_mirror()
            .args(["completions", shell])
            .assert()
            .code(0)
            // `fake-server` is shown in `--help`, so completed too.
            .stdout(
                predicate::str::contains("verify").and(predicate::str::contains("fake-server")),
            );
    }
}

/// Checks the views of an archive on a disk without links: each list's
/// folder holds just an `index.html` and a `files.txt` that list the same
/// paths, each leading to a file under `media/`, one per stored variant of
/// its members. Returns how many entries they hold in all.
fn assert_index_views(out: &std::path::Path, vault: &Vault) -> usize {
    use vault_mirror::archive::views::view_name;
    let media = std::fs::canonicalize(out.join("media")).unwrap();
    let mut entries = 0;
    for list in &vault.lists {
        let folder = out.join("lists").join(view_name(&list.id, &list.name));
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["files.txt", "index.html"], "{}", folder.display());
        let listed: Vec<String> = std::fs::read_to_string(folder.join("files.txt"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let page = std::fs::read_to_string(folder.join("index.html")).unwrap();
        let linked: Vec<String> = page
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|href| *href != "files.txt")
            .map(str::to_owned)
            .collect();
        assert_eq!(linked, listed, "{}", folder.display());
        let stored = stored_variants_of(vault, &list.members);
        assert_eq!(listed.len(), stored, "{}", folder.display());
        for path in &listed {
            assert!(path.starts_with("../../media/"), "{path}");
            let file = std::fs::canonicalize(folder.join(path))
                .unwrap_or_else(|error| panic!("{path} does not resolve: {error}"));
            assert!(file.starts_with(&media) && file.is_file(), "{path}");
        }
        entries += listed.len();
    }
    entries
}

/// (path, size, modification time) of everything in the archive but the
/// database's folder: what a run that changes nothing leaves as it was.
fn archive_stamps(out: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut found = Vec::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with(".vault-mirror") {
                continue;
            }
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                stack.push(path.clone());
            }
            found.push((
                path.display().to_string(),
                metadata.len(),
                metadata.modified().unwrap(),
            ));
        }
    }
    found.sort();
    found
}

/// A mirror onto a disk without links, run twice: exit 0 with the one note
/// the first time; all verified, index views; the second run changes
/// nothing. Returns the first run's stderr.
fn mirror_without_links(
    server: &FakeServer,
    vault: &Vault,
    out: &std::path::Path,
    simulated: bool,
) -> String {
    use vault_mirror::archive::views::NO_LINKS_NOTE;
    let total = stored_variants(vault, &["full", "thumb"]);
    let db = out.join(".vault-mirror/state.sqlite");
    let run = || {
        let mut command = against(server, out, &["mirror"]);
        if simulated {
            command.env("VAULT_MIRROR_TEST_NO_LINKS", "1");
        }
        command
    };
    let output = run().output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches(&format!("note: {NO_LINKS_NOTE}\n")).count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(assert_archive_matches(out, &db, vault), total);
    let entries = assert_index_views(out, vault);

    let stamps = archive_stamps(out);
    let output = run().arg("--json").output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json_of(&output);
    assert_eq!(summary["outcome"], "complete");
    assert_eq!(summary["downloaded"], 0);
    assert_eq!(summary["already_verified"], total);
    let views = &summary["views"];
    assert_eq!(views["indexes"], vault.lists.len(), "{views}");
    assert_eq!(views["links"], entries, "{views}");
    assert_eq!((&views["added"], &views["removed"]), (&0.into(), &0.into()));
    assert_eq!(archive_stamps(out), stamps);
    stderr
}

#[test]
fn on_a_disk_without_links_views_are_indexes_and_the_run_succeeds() {
    let vault = Vault::sample(24, 3);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let stderr = mirror_without_links(sandbox.server(), &vault, sandbox.out(), true);
    assert!(
        stderr.contains("hint: exFAT and FAT drives and some network shares cannot hold links"),
        "{stderr}"
    );

    // Links work again (the archive moved to a disk with them): the views
    // are links again, the index files gone, and nothing more is said.
    let output = sandbox.command(&["mirror"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("symbolic nor hard links"), "{stderr}");
    let mut links = 0;
    for view in std::fs::read_dir(sandbox.out().join("lists")).unwrap() {
        for entry in std::fs::read_dir(view.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            let target = std::fs::read_link(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert!(target.starts_with("../../media/"), "{target:?}");
            assert!(path.is_file(), "{}", path.display());
            links += 1;
        }
    }
    assert_eq!(links, stored_variants_per_list(&vault));
}

/// Entries of all list views: one per stored variant of each list's members.
fn stored_variants_per_list(vault: &Vault) -> usize {
    vault
        .lists
        .iter()
        .map(|list| stored_variants_of(vault, &list.members))
        .sum()
}

/// The stored variants of `members` a default run mirrors.
fn stored_variants_of(vault: &Vault, members: &[String]) -> usize {
    members
        .iter()
        .flat_map(|id| &vault.media[id].variants)
        .filter(|(label, variant)| {
            ["full", "thumb"].contains(&label.as_str()) && variant.status == "stored"
        })
        .count()
}

/// An exFAT file system (FUSE, on a loop device) for one test: unmounted
/// and its loop device freed when dropped.
#[cfg(target_os = "linux")]
struct ExfatMount {
    _image_dir: tempfile::TempDir,
    path: std::path::PathBuf,
    loop_device: String,
}

#[cfg(target_os = "linux")]
impl ExfatMount {
    /// Mounts a fresh exFAT image, or says why it cannot.
    fn new() -> Result<ExfatMount, String> {
        let image_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let image = image_dir.path().join("exfat.img");
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(64 << 20))
            .map_err(|error| error.to_string())?;
        run_tool("mkfs.exfat", &[image.as_os_str()])?;
        let loop_device = run_tool(
            "losetup",
            &["--find".as_ref(), "--show".as_ref(), image.as_os_str()],
        )?
        .trim()
        .to_owned();
        let path = image_dir.path().join("mnt");
        std::fs::create_dir(&path).map_err(|error| error.to_string())?;
        if let Err(why) = run_tool(
            "mount.exfat-fuse",
            &[loop_device.as_ref(), path.as_os_str()],
        ) {
            let _ = run_tool("losetup", &["-d".as_ref(), loop_device.as_ref()]);
            return Err(why);
        }
        Ok(ExfatMount {
            _image_dir: image_dir,
            path,
            loop_device,
        })
    }
}

#[cfg(target_os = "linux")]
impl Drop for ExfatMount {
    fn drop(&mut self) {
        if run_tool("umount", &[self.path.as_os_str()]).is_err() {
            let _ = run_tool("umount", &["-l".as_ref(), self.path.as_os_str()]);
        }
        let _ = run_tool("losetup", &["-d".as_ref(), self.loop_device.as_ref()]);
    }
}

/// The real thing: a mirror onto an exFAT file system, which makes no
/// links. Where no exFAT can be mounted (it needs root, /dev/fuse, a free
/// loop device and the Debian packages exfat-fuse and exfatprogs) it
/// skips, saying why; under `CI=true` it fails (`require!`).
#[cfg(target_os = "linux")]
#[test]
fn a_mirror_onto_exfat_completes_with_index_views() {
    let mount = require!(ExfatMount::new().map_err(|why| format!(
        "cannot mount an exFAT image here ({why}); it needs root, /dev/fuse, a free loop \
         device and the Debian packages exfat-fuse and exfatprogs"
    )));
    let vault = Vault::sample(24, 3);
    let server = FakeServer::start_in_thread(vault.clone(), FakeOptions::default()).unwrap();
    let out = mount.path.join("archive");
    mirror_without_links(&server, &vault, &out, false);
}

#[test]
fn out_naming_a_file_or_inside_an_archives_media_is_refused_with_exit_2() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let file = sandbox.path("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let text = sandbox
        .run(&mut sandbox.command_at(&file, &["mirror"]), 2)
        .text();
    assert!(text.contains("is a file, not a folder"), "{text}");

    sandbox.command(&["mirror", "-q"]).assert().code(0);
    let nested = sandbox.out().join("media/inner");
    let text = sandbox
        .run(&mut sandbox.command_at(&nested, &["mirror"]), 2)
        .text();
    assert!(
        text.contains("is inside the media/ folder of the archive at"),
        "{text}"
    );
    assert!(!nested.exists());
    assert_eq!(sandbox.server().stats().sync_calls, 1);
}
