//! What the integration tests share: settings and a mirror run against a
//! fake Vault+ on loopback, the binary with an environment scrubbed of the
//! host's settings (one list of what a test must not inherit), and checks
//! of an archive against the fake's data.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use vault_mirror::fake::{FakeMedia, FakeServer, FakeVariant, Vault};
use vault_mirror::pipeline::{self, Summary};
use vault_mirror::report::SilentReporter;
use vault_mirror::settings::{Settings, parse_base_url};

/// What a process a test starts must not inherit from the developer's
/// shell: every variable the binary reads (its settings, and its test
/// hooks, which a test sets only where it means them), what changes the
/// colour and width of what it prints, and proxies (reqwest honours them,
/// and the fake is on loopback). A test in `cli` keeps the first part in
/// step with the names `src/` reads.
pub const SCRUBBED_ENVIRONMENT: &[&str] = &[
    // Settings (clap's `env =`), logging and the progress display.
    "OFAUTH_API_KEY",
    "OFAUTH_API_KEY_FILE",
    "OFAUTH_CONNECTION_ID",
    "OFAUTH_BASE_URL",
    "VAULT_MIRROR_OUT",
    "VAULT_MIRROR_DB",
    "VAULT_MIRROR_CONFIG",
    "VAULT_MIRROR_LOG",
    "VAULT_MIRROR_LOG_FILE",
    "VAULT_MIRROR_NO_PROGRESS",
    "VAULT_MIRROR_METRICS_FILE",
    "VAULT_MIRROR_PING_URL",
    "VAULT_MIRROR_EVENTS",
    // Test hooks of the binary.
    "VAULT_MIRROR_TEST_RETRY_DELAY_MS",
    "VAULT_MIRROR_TEST_FREE_BYTES",
    "VAULT_MIRROR_TEST_DISK_FULL_AFTER",
    "VAULT_MIRROR_TEST_DB_MAX_PAGES",
    "VAULT_MIRROR_TEST_NO_LINKS",
    "VAULT_MIRROR_TEST_LEASE_RENEW_MS",
    // Read by the man pages' unit test only (it writes docs/man/).
    "VAULT_MIRROR_WRITE_MAN",
    // Colour and width (clap's help, the progress bars).
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "COLUMNS",
    "LINES",
    // Proxies.
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Keeps [`SCRUBBED_ENVIRONMENT`] from reaching `command`'s process.
pub fn scrub_environment(command: &mut Command) -> &mut Command {
    for name in SCRUBBED_ENVIRONMENT {
        command.env_remove(name);
    }
    command
}

/// The binary with a scrubbed environment, fast retries, and help wrapped
/// at 100 columns whatever the terminal. `assert_cmd::prelude` gives it
/// `.assert()`.
pub fn vault_mirror() -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("vault-mirror"));
    scrub_environment(&mut command)
        .env("VAULT_MIRROR_TEST_RETRY_DELAY_MS", "5")
        .env("COLUMNS", "100");
    command
}

/// `vault-mirror <args> --out <out>` with `server`'s API settings in its
/// environment: the binary run against the fake.
pub fn against(server: &FakeServer, out: &Path, args: &[&str]) -> Command {
    against_archive(server, out.as_os_str(), args)
}

/// [`against`] with `--out` a folder or a bucket URL (`s3://…`).
pub fn against_archive(server: &FakeServer, out: &OsStr, args: &[&str]) -> Command {
    let mut command = vault_mirror();
    command
        .args(args)
        .arg("--out")
        .arg(out)
        .env("OFAUTH_BASE_URL", server.base_url())
        .env("OFAUTH_API_KEY", server.api_key())
        .env("OFAUTH_CONNECTION_ID", server.connection_id());
    command
}

/// The one JSON object a command printed on stdout (panics, showing
/// stdout and stderr, when it is not one).
pub fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON object ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// What a command printed, once it exited with the code a test expected
/// ([`run_with_code`]).
pub struct Printed(Output);

impl Printed {
    /// The one JSON object it printed on stdout (panics when it is not one).
    pub fn json(&self) -> serde_json::Value {
        json_of(&self.0)
    }

    /// stdout then stderr, for what it said in words (or must not say).
    pub fn text(&self) -> String {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&self.0.stdout),
            String::from_utf8_lossy(&self.0.stderr)
        )
    }
}

/// Runs `command` and asserts it exits `code` (showing its stdout and
/// stderr): the one way a test runs a command to its end and reads it.
pub fn run_with_code(command: &mut Command, code: i32) -> Printed {
    let output = command.output().unwrap();
    let printed = Printed(output);
    assert_eq!(printed.0.status.code(), Some(code), "{}", printed.text());
    printed
}

/// Runs `command`, asserts it exits `code`, and returns the one JSON
/// object it printed on stdout: how a test reads a command's `--json`.
pub fn json_with_code(command: &mut Command, code: i32) -> serde_json::Value {
    run_with_code(command, code).json()
}

/// Sends `signal` (a name for `kill`, like `INT`) to `child`: the one way
/// a test signals the binary.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// A mirror run in this process, reporting nothing; panics if the run
/// cannot start or is stopped by an error (its summary holds item failures).
pub async fn mirror(settings: &Settings) -> Summary {
    pipeline::mirror(settings, Arc::new(SilentReporter))
        .await
        .unwrap()
}

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

/// SQLite's own check of a database file: "ok" when its pages are whole.
pub fn integrity_check(db: &std::path::Path) -> String {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

/// Whether the database holds the schema yet (a database cut off before
/// its first sync holds nothing, and claims nothing).
pub fn has_variants_table(db: &std::path::Path) -> bool {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'variants'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        == 1
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

/// The ids of listed media whose `full` variant is a stored JPEG.
pub fn stored_jpegs(vault: &Vault) -> Vec<String> {
    listed_media(vault)
        .filter(|media| {
            media
                .variants
                .get("full")
                .is_some_and(|full| full.status == "stored" && full.content_type == "image/jpeg")
        })
        .map(|media| media.id.clone())
        .collect()
}

/// The number of (media, label) pairs of `labels` that are stored upstream.
pub fn stored_variants(vault: &Vault, labels: &[&str]) -> usize {
    listed_media(vault)
        .flat_map(|media| media.variants.iter())
        .filter(|(label, variant)| labels.contains(&label.as_str()) && variant.status == "stored")
        .count()
}

/// Adds to `vault` a video `id` whose `full` is `size` bytes, a member of
/// its first list (big enough, past 8 MiB, for multipart uploads).
pub fn add_video(vault: &mut Vault, id: &str, size: usize) {
    let mut variants = std::collections::BTreeMap::new();
    variants.insert(
        "full".to_owned(),
        FakeVariant::stored(id, "full", "video/mp4", size),
    );
    vault.media.insert(
        id.to_owned(),
        FakeMedia {
            id: id.to_owned(),
            media_type: "video".into(),
            duration: Some(2.0),
            variants,
        },
    );
    vault.lists[0].members.push(id.to_owned());
}

/// The first column of every row `query` returns from the database `db`.
pub fn db_strings(db: &Path, query: &str) -> Vec<String> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection.prepare(query).unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Whether this is a CI run (`CI=true`, as `.ci/run` and most CI services
/// set it): there every tool a test needs must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// The one rule for a test that needs what a machine may lack (a tool, a
/// browser, root, a mount): under `CI=true` the test fails, since CI must
/// have it; elsewhere it prints `skipped: <test>: <why>` straight to
/// stderr (past the harness's capture, so a plain `cargo test` shows it)
/// and the test goes on without that part. Tests use it through
/// [`require!`], which also returns.
pub fn missing(why: &dyn std::fmt::Display) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(
        !in_ci(),
        "{test}: {why}; under CI=true it must be (.ci/run installs the tools and runs as root)"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

/// `require!(needed)`: the value of `needed` (a `Result`) when `Ok`;
/// on `Err(why)`, [`missing`]`(why)` (a failure under `CI=true`) and a
/// `return` from the test.
macro_rules! require {
    ($needed:expr) => {
        match $needed {
            Ok(value) => value,
            Err(why) => {
                $crate::common::missing(&why);
                return;
            }
        }
    };
}
pub(crate) use require;

/// A system tool on `PATH` or in the sbin folders (root's tools).
#[cfg(target_os = "linux")]
pub fn find_tool(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(std::path::PathBuf::from))
        .map(|folder| folder.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a system tool; its stdout, or why it failed.
#[cfg(target_os = "linux")]
pub fn run_tool(name: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let program = find_tool(name).ok_or(format!("{name} is not installed"))?;
    let output = Command::new(&program)
        .args(args)
        .output()
        .map_err(|error| format!("cannot run {}: {error}", program.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{name} {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
