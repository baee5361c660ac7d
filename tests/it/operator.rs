//! The operator's side of the binary: status, verify and repair, lists,
//! dry runs, the config file, the archive lock, logging, completions and
//! the demo (loopback only); what a terminal shows is in `terminal.rs`.

use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;
use vault_mirror::fake::{FakeOptions, Faults, Vault};
use vault_mirror::lock::ArchiveLock;

use crate::common::{
    assert_archive_matches, json_of as json, media_files, stored_variants, variant_rows,
    vault_mirror,
};
use crate::sandbox::{Sandbox, with_faults};

/// Snapshot text with what varies between runs (the temporary folder,
/// times, durations, sizes) replaced by placeholders. Plain string scanning
/// rather than insta's regex filters: the test build carries no regex engine.
fn normalise(text: &str, out: &Path) -> String {
    let text = text.replace(&out.display().to_string(), "[ARCHIVE]");
    let text = replace_matches(&text, "[TIME]", timestamp_length);
    let text = replace_matches(&text, "([AGO])", ago_length);
    let text = replace_matches(&text, "took [DURATION]", took_length);
    replace_matches(&text, "[SIZE]", size_length)
}

/// Every match, leftmost first, replaced by `placeholder`; `matched` gives
/// the length of the match that starts the text it is given, if one does.
fn replace_matches(text: &str, placeholder: &str, matched: fn(&str) -> Option<usize>) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(character) = rest.chars().next() {
        let length = match matched(rest) {
            Some(length) => {
                result.push_str(placeholder);
                length
            }
            None => {
                result.push(character);
                character.len_utf8()
            }
        };
        rest = &rest[length..];
    }
    result
}

/// `2026-05-01 12:00:00 UTC`
fn timestamp_length(text: &str) -> Option<usize> {
    const SHAPE: &str = "0000-00-00 00:00:00 UTC";
    let candidate = text.get(..SHAPE.len())?;
    let fits = candidate
        .chars()
        .zip(SHAPE.chars())
        .all(|(character, shape)| {
            if shape == '0' {
                character.is_ascii_digit()
            } else {
                character == shape
            }
        });
    fits.then_some(SHAPE.len())
}

/// `(just now)`, `(3 minutes ago)`
fn ago_length(text: &str) -> Option<usize> {
    let inner = text.strip_prefix('(')?;
    let rest = match inner.strip_prefix("just now)") {
        Some(rest) => rest,
        None => {
            let rest = skip_some(inner, |c| c.is_ascii_digit())?.strip_prefix(' ')?;
            skip_some(rest, |c| c.is_alphanumeric() || c == '_')?.strip_prefix(" ago)")?
        }
    };
    Some(text.len() - rest.len())
}

/// `took 850ms`, `took 1.2s`
fn took_length(text: &str) -> Option<usize> {
    let rest = skip_some(text.strip_prefix("took ")?, |c| {
        c.is_ascii_digit() || c == '.'
    })?;
    let rest = rest.strip_prefix('m').unwrap_or(rest).strip_prefix('s')?;
    Some(text.len() - rest.len())
}

/// `512 B`, `68.2 KiB`, `1.0 MiB`
fn size_length(text: &str) -> Option<usize> {
    let mut rest = skip_some(text, |c| c.is_ascii_digit())?;
    if let Some(fraction) = rest
        .strip_prefix('.')
        .and_then(|r| skip_some(r, |c| c.is_ascii_digit()))
    {
        rest = fraction;
    }
    let rest = rest.strip_prefix(' ')?;
    let rest = ["B", "KiB", "MiB"]
        .iter()
        .find_map(|unit| rest.strip_prefix(unit))?;
    let word_follows = rest
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_');
    (!word_follows).then_some(text.len() - rest.len())
}

/// The text after one or more leading characters that `wanted` accepts.
fn skip_some(text: &str, wanted: fn(char) -> bool) -> Option<&str> {
    let rest = text.trim_start_matches(wanted);
    (rest.len() < text.len()).then_some(rest)
}

#[test]
fn help_is_the_contract() {
    for args in [
        &["--help"][..],
        &["mirror", "--help"],
        &["verify", "--help"],
    ] {
        let output = vault_mirror().args(args).output().unwrap();
        assert!(output.status.success());
        let name = format!("help_{}", args.join("_").replace("--", ""));
        insta::assert_snapshot!(name, String::from_utf8(output.stdout).unwrap());
    }
}

#[test]
fn status_tells_what_the_archive_holds_and_how_the_last_run_went() {
    let vault = Vault::sample(12, 3);
    let mut sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    sandbox.command(&["mirror", "-q"]).assert().code(0);
    sandbox.stop_server();

    // Offline: the server is gone, and status does not need it.
    let output = sandbox.offline(&["status"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let text = normalise(&text, sandbox.out());
    insta::assert_snapshot!("status", text);

    let status = sandbox.json(&mut sandbox.offline(&["status", "--json"]), 0);
    assert_eq!(status["lists"].as_array().unwrap().len(), 3);
    assert_eq!(status["total"]["members"], 12);
    assert_eq!(
        status["total"]["verified"].as_u64().unwrap() as usize,
        stored_variants(&vault, &["full", "thumb"])
    );
    assert_eq!(status["runs"][0]["command"], "mirror");
    assert_eq!(status["runs"][0]["state"], "complete");
    assert_eq!(
        status["last_success"]["run_id"],
        status["runs"][0]["run_id"]
    );
    assert!(status["running"].is_null());
}

#[test]
fn status_of_a_folder_without_an_archive_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    vault_mirror()
        .args(["status", "--out"])
        .arg(out.path().join("nothing-here"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no archive at").and(predicate::str::contains("hint:")));
    // It did not create one.
    assert!(!out.path().join("nothing-here").exists());
}

/// Deletes one file and flips bytes in another (same size); returns their paths.
fn damage(out: &Path) -> (String, String) {
    let db = out.join(".vault-mirror/state.sqlite");
    let rows = variant_rows(&db);
    let verified: Vec<String> = rows
        .iter()
        .filter(|row| row.4 == "verified")
        .filter_map(|row| row.2.clone())
        .collect();
    let deleted = verified[0].clone();
    let rotten = verified[verified.len() / 2].clone();
    std::fs::remove_file(out.join(&deleted)).unwrap();
    let mut bytes = std::fs::read(out.join(&rotten)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(out.join(&rotten), bytes).unwrap();
    (deleted, rotten)
}

#[test]
fn verify_finds_a_deleted_and_a_damaged_file_and_repair_restores_them() {
    let vault = Vault::sample(16, 2);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let db = sandbox.db();
    sandbox.command(&["mirror", "-q"]).assert().code(0);
    sandbox
        .offline(&["verify"])
        .assert()
        .code(0)
        // The summary is on stderr; stdout is for --json alone.
        .stdout("")
        .stderr(predicate::str::contains("0 missing, 0 damaged"));

    let (deleted, rotten) = damage(sandbox.out());
    // Sizes only: the deleted file is found, the same-size damage is not.
    let report = sandbox.json(&mut sandbox.offline(&["verify", "--fast", "--json"]), 3);
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);
    assert_eq!(report["findings"][0]["path"], deleted.as_str());
    assert_eq!(report["findings"][0]["problem"], "missing");

    // The whole check finds both, and says so again until they are fixed.
    for _ in 0..2 {
        sandbox.offline(&["verify"]).assert().code(3).stderr(
            predicate::str::contains(format!("missing: {deleted}"))
                .and(predicate::str::contains(format!("damaged: {rotten}")))
                .and(predicate::str::contains("sha256"))
                .and(predicate::str::contains("1 missing, 1 damaged")),
        );
    }

    let requests_before = sandbox.server().stats().media_requests;
    let report = sandbox.json(&mut sandbox.command(&["verify", "--repair", "--json"]), 0);
    assert_eq!(report["outcome"], "repaired");
    assert_eq!(report["repair"]["repaired"], 2);
    // Only the two broken files were fetched again.
    assert_eq!(sandbox.server().stats().media_requests - requests_before, 2);
    assert_eq!(
        assert_archive_matches(sandbox.out(), &db, &vault),
        stored_variants(&vault, &["full", "thumb"])
    );
    // The damaged bytes were set aside, not thrown away.
    let name = Path::new(&rotten).file_name().unwrap();
    let media_folder = Path::new(&rotten).parent().unwrap().file_name().unwrap();
    assert!(
        sandbox
            .out()
            .join(".vault-mirror/quarantine")
            .join(media_folder)
            .join(name)
            .is_file()
    );
    sandbox.offline(&["verify"]).assert().code(0);
}

#[test]
fn a_found_file_that_is_put_back_is_verified_again_and_mirror_also_repairs() {
    let vault = Vault::sample(6, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    sandbox.command(&["mirror", "-q"]).assert().code(0);
    let (deleted, rotten) = damage(sandbox.out());
    let good_copy = std::fs::read(sandbox.out().join(&rotten)).map(|mut bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xFF;
        bytes
    });
    sandbox.offline(&["verify"]).assert().code(3);
    // Put back by hand: verify accepts it again.
    std::fs::write(sandbox.out().join(&rotten), good_copy.unwrap()).unwrap();
    sandbox
        .offline(&["verify"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("1 missing, 0 damaged"));
    // What verify found, a plain mirror run fetches.
    sandbox.command(&["mirror", "-q"]).assert().code(0);
    assert!(sandbox.out().join(&deleted).is_file());
    sandbox.offline(&["verify"]).assert().code(0);
}

#[test]
fn the_lock_refuses_a_second_run_and_a_stale_one_is_taken_over() {
    let vault = Vault::sample(4, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    // An archive to verify (verify says "no archive" where there is none).
    sandbox.command(&["mirror", "-q"]).assert().code(0);
    let calls_before = sandbox.server().stats().api_calls;
    {
        let _held = ArchiveLock::acquire(sandbox.out(), "mirror").unwrap();
        for command in [&["mirror"][..], &["verify"], &["verify", "--budget", "30m"]] {
            sandbox.command(command).assert().code(1).stderr(
                predicate::str::contains("another vault-mirror run is using the archive")
                    .and(predicate::str::contains(format!(
                        "process {}",
                        std::process::id()
                    )))
                    .and(predicate::str::contains("hint:")),
            );
        }
        assert_eq!(
            sandbox.server().stats().api_calls,
            calls_before,
            "a refused run called the API"
        );
    }
    // The holder is gone (its lock file stays, naming it): the next run goes ahead.
    let lock_file = sandbox.out().join(".vault-mirror/lock");
    assert!(lock_file.is_file());
    std::fs::write(
        &lock_file,
        "pid = 4194303\nhost = elsewhere\ncommand = mirror\n",
    )
    .unwrap();
    sandbox
        .command(&["mirror", "-v"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "took over the lock left by process 4194303",
        ));
    let text = std::fs::read_to_string(&lock_file).unwrap();
    assert!(!text.contains("4194303"), "{text}");
}

#[test]
fn status_and_dry_runs_work_while_a_run_holds_the_lock() {
    let vault = Vault::sample(4, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    sandbox.command(&["mirror", "-q"]).assert().code(0);
    let _held = ArchiveLock::acquire(sandbox.out(), "mirror").unwrap();
    sandbox
        .offline(&["status"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "running now: process {}",
            std::process::id()
        )));
    sandbox.command(&["mirror", "--dry-run"]).assert().code(0);
}

#[test]
fn dry_run_shows_the_plan_and_changes_nothing() {
    let mut vault = Vault::sample(20, 2);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let archive = sandbox.out().join("archive");

    let plan = sandbox.json(
        &mut sandbox.command_at(&archive, &["mirror", "--dry-run", "--json"]),
        0,
    );
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["download"]["variants"].as_u64().unwrap() as usize,
        stored_variants(&vault, &["full", "thumb"])
    );
    assert_eq!(plan["skip"]["variants"], 0);
    assert!(!archive.exists(), "a dry run created the archive");
    let stats = sandbox.server().stats();
    assert_eq!((stats.sync_calls, stats.media_requests), (0, 0));

    // After a real run: everything is skipped; a member that leaves its
    // only list is counted for pruning; an expiring URL would be re-signed.
    sandbox
        .command_at(&archive, &["mirror", "-q"])
        .assert()
        .code(0);
    let gone = vault.lists[0].members.remove(0);
    sandbox
        .server()
        .with_vault(|served| served.lists[0].members.retain(|id| *id != gone));
    let in_other_list = vault.lists[1].members.contains(&gone);
    let rows_before = variant_rows(&archive.join(".vault-mirror/state.sqlite"));
    let output = sandbox
        .command_at(&archive, &["mirror", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    assert!(text.contains("already verified"), "{text}");
    let plan = sandbox.json(
        &mut sandbox.command_at(&archive, &["mirror", "--dry-run", "--json"]),
        0,
    );
    assert_eq!(plan["download"]["variants"], 0);
    let expected_prune = if in_other_list { 0 } else { 2 };
    assert_eq!(plan["prune"]["variants"], expected_prune, "{plan}");
    assert_eq!(
        variant_rows(&archive.join(".vault-mirror/state.sqlite")),
        rows_before,
        "a dry run changed the database"
    );
}

#[test]
fn lists_shows_the_connection_s_lists_with_local_counts() {
    let vault = Vault::sample(9, 3);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let lists = sandbox.json(&mut sandbox.command(&["lists", "--json"]), 0);
    assert_eq!(lists["lists"].as_array().unwrap().len(), 3);
    assert!(lists["lists"][0]["local"].is_null());

    sandbox
        .command(&["mirror", "-q", "--list", &vault.lists[0].id])
        .assert()
        .code(0);
    let output = sandbox.command(&["lists"]).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let mirrored = text
        .lines()
        .find(|line| line.starts_with(&vault.lists[0].id))
        .unwrap();
    assert!(mirrored.contains(&vault.lists[0].name), "{text}");
    assert!(!mirrored.contains("not mirrored"), "{text}");
    let other = text
        .lines()
        .find(|line| line.starts_with(&vault.lists[1].id))
        .unwrap();
    assert!(other.contains("not mirrored"), "{text}");
}

#[test]
fn settings_come_from_flag_then_environment_then_file() {
    let vault = Vault::sample(6, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let key_file = sandbox.path("api-key");
    std::fs::write(&key_file, format!("{}\n", sandbox.server().api_key())).unwrap();
    let config = sandbox.path("vault-mirror.toml");
    std::fs::write(
        &config,
        format!(
            "# where and how\nout = \"from-file\"\nbase_url = \"{}\"\napi_key_file = \"api-key\"\nconnection = \"conn_wrong\"\n\n[mirror]\nquality = \"thumb\"\njobs = 3\n",
            sandbox.server().base_url()
        ),
    )
    .unwrap();
    let plan_with = |configure: &dyn Fn(&mut Command)| {
        let mut command = vault_mirror();
        command
            .args(["mirror", "--dry-run", "--json"])
            .env("VAULT_MIRROR_CONFIG", &config);
        configure(&mut command);
        command.output().unwrap()
    };

    // The file's connection is wrong: the API refuses it (exit 4).
    let output = plan_with(&|_| {});
    assert_eq!(output.status.code(), Some(4));
    // The environment beats the file.
    let output = plan_with(&|command| {
        command.env("OFAUTH_CONNECTION_ID", sandbox.server().connection_id());
    });
    assert_eq!(output.status.code(), Some(0));
    let plan = json(&output);
    assert_eq!(plan["quality"], "thumb");
    assert_eq!(plan["jobs"], 3);
    assert_eq!(
        plan["out"].as_str().unwrap(),
        sandbox.path("from-file").to_str().unwrap()
    );
    // Flags beat both.
    let output = plan_with(&|command| {
        command
            .env("OFAUTH_CONNECTION_ID", "conn_also_wrong")
            .args(["--connection", sandbox.server().connection_id()])
            .args(["--quality", "full", "--jobs", "5"]);
    });
    assert_eq!(output.status.code(), Some(0));
    let plan = json(&output);
    assert_eq!(
        (plan["quality"].as_str(), plan["jobs"].as_u64()),
        (Some("full"), Some(5))
    );

    // An archive's own file is read without --config.
    let archive = sandbox.out();
    std::fs::create_dir_all(archive).unwrap();
    std::fs::write(
        archive.join("vault-mirror.toml"),
        "[mirror]\nquality = \"thumb\"\n",
    )
    .unwrap();
    sandbox.command(&["mirror", "-q"]).assert().code(0);
    let files = media_files(archive);
    assert!(!files.is_empty());
    assert!(files.iter().all(|path| {
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("thumb.")
    }));
}

#[test]
fn config_errors_name_the_line_and_the_key() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("c.toml");
    std::fs::write(&config, "out = \"x\"\n\n[mirror]\njobs = 0\n").unwrap();
    vault_mirror()
        .args(["status", "--config"])
        .arg(&config)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("line 4")
                .and(predicate::str::contains("`mirror.jobs`"))
                .and(predicate::str::contains("out of range")),
        );
    std::fs::write(&config, "api_key = \"sk_live_do_not_show\"\n").unwrap();
    vault_mirror()
        .args(["status", "--config"])
        .arg(&config)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("api_key_file")
                .and(predicate::str::contains("sk_live_do_not_show").not()),
        );
    vault_mirror()
        .args(["status", "--config"])
        .arg(folder.path().join("missing.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
}

#[test]
fn logs_and_errors_never_show_the_key_or_signed_urls() {
    let vault = Vault::sample(6, 1);
    let options = with_faults(Faults {
        // Transfers get cut off (or stall briefly), so there is something to log.
        bandwidth_per_transfer: Some(512 * 1024),
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, options);
    let log = sandbox.out().join("logs/run.log");
    let output = sandbox
        .command(&["mirror", "-vv"])
        .env("VAULT_MIRROR_LOG_FILE", &log)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(logged.contains("summary:"), "{logged}");
    assert!(logged.contains("resolve:"), "{logged}");
    for text in [&logged, &stderr.to_string()] {
        assert!(
            !text.contains(sandbox.server().api_key()),
            "the key leaked: {text}"
        );
        assert!(!text.contains("sig="), "a signed URL leaked: {text}");
    }
    // A refused key: an error with a hint, and still no key.
    let log_flag = format!("--log-file={}", log.display());
    let output = sandbox
        .command(&["mirror", &log_flag])
        .env("OFAUTH_API_KEY", "sk_not_the_key")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error:") && stderr.contains("hint:"),
        "{stderr}"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("sk_not_the_key") && !logged.contains("sk_not_the_key"));
}

#[test]
fn completions_are_printed_for_a_shell() {
    vault_mirror()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("vault-mirror").and(predicate::str::contains("verify")));
    vault_mirror()
        .args(["completions", "tcsh"])
        .assert()
        .code(2);
}

#[test]
fn the_demo_ends_by_saying_what_to_open_and_serves_real_media() {
    let folder = tempfile::tempdir().unwrap();
    let archive = folder.path().join("vault-demo");
    let output = vault_mirror()
        .args(["demo", "--media", "16", "--out"])
        .arg(&archive)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Open these"), "{stderr}");
    for name in ["full.jpg", "full.png", "full.mp4"] {
        let line = stderr
            .lines()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("no {name} in {stderr}"));
        let path = line.split_whitespace().next().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let kind = infer_kind(&bytes);
        assert_eq!(kind, name.rsplit('.').next().unwrap(), "{path}");
    }
}

#[test]
fn the_demo_run_from_the_path_suggests_the_binary_and_what_to_try_next() {
    // The binary on the PATH, as after an install (not under cargo).
    let folder = tempfile::tempdir().unwrap();
    let bin = folder.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(
        assert_cmd::cargo::cargo_bin!("vault-mirror"),
        bin.join("vault-mirror"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = std::process::Command::new("vault-mirror")
        .env("PATH", path)
        .env_remove("CARGO")
        .env("VAULT_MIRROR_NO_PROGRESS", "1")
        .current_dir(folder.path())
        .args(["demo", "--media", "8"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("cargo run"), "{stderr}");
    assert!(
        stderr.contains("Then try `vault-mirror status --out vault-demo`"),
        "{stderr}"
    );
    let tail = &stderr[stderr.find("Try next").expect("a try-next list")..];
    for step in [
        "  1. in one terminal: vault-mirror fake-server\n",
        "  2. vault-mirror lists\n",
        "  3. vault-mirror mirror --out try-it --limit-rate 200K\n",
        "  4. press Ctrl-C mid-way, run the same command again: it resumes\n",
    ] {
        assert!(tail.contains(step), "{step:?} in {tail}");
    }
    assert!(
        tail.lines().all(|line| line.chars().count() <= 80),
        "{tail}"
    );
}

/// The file type by its signature, as the `file` command would say.
fn infer_kind(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\xFF\xD8\xFF") && bytes.ends_with(b"\xFF\xD9") {
        "jpg"
    } else if bytes.starts_with(b"\x89PNG\r\n\x1A\n") {
        "png"
    } else if bytes.get(4..8) == Some(b"ftyp") {
        "mp4"
    } else {
        "unknown"
    }
}
