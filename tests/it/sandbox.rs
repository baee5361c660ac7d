//! The sandbox a test against the fake starts from: a temp folder, a fake
//! Vault+ serving a given vault (with given faults), the archive folder
//! inside the temp folder, and the environment every command of the test
//! gets. A test builds the binary's commands (or the in-process settings)
//! from it, so none sets up a server, a folder or an environment by hand:
//!
//! ```ignore
//! let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
//! sandbox.command(&["mirror", "-q"]).assert().code(0);
//! let report = sandbox.json(&mut sandbox.offline(&["verify", "--json"]), 0);
//! ```
//!
//! A command's `--json` is read with [`Sandbox::json`] (or
//! `common::json_with_code` for a command built otherwise), what it said in
//! words with [`Sandbox::run`], a signal sent with `common::send_signal`,
//! and a test that needs a tool the machine may lack starts with
//! `common::require!`.
//!
//! In bucket mode ([`Sandbox::start_in_bucket`]) the archive is
//! `s3://<BUCKET>/<PREFIX>` on a moto server of the sandbox's own (see
//! `moto`), its local state folder (`XDG_STATE_HOME`) is in the temp
//! folder, and every command gets moto's `AWS_*` settings and a log at
//! debug level (so a test can check that no credential reaches it):
//!
//! ```ignore
//! let sandbox = require!(Sandbox::start_in_bucket(&vault, FakeOptions::default()));
//! sandbox.json(&mut sandbox.command(&["mirror", "--json"]), 0);
//! let objects = moto::objects(sandbox.moto());
//! ```
//!
//! When the sandbox is dropped the fake stops, then moto, then the temp
//! folder is removed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use vault_mirror::fake::{FakeOptions, FakeServer, Faults, Vault};
use vault_mirror::settings::Settings;

use crate::common::{
    Printed, against, against_archive, json_with_code, run_with_code, settings_for, vault_mirror,
};
use crate::moto::{ACCESS_KEY, BUCKET, Moto, PREFIX, SECRET_KEY, moto};

/// See the module's documentation.
pub struct Sandbox {
    /// The fake (None once stopped); it stops when the sandbox is dropped.
    server: Option<FakeServer>,
    /// Bucket mode: moto and the local state folder (None: on disk).
    bucket: Option<Bucket>,
    // Dropped after the server, so nothing is served from a removed folder.
    dir: tempfile::TempDir,
    out: PathBuf,
    /// Set (`Some`) or removed (`None`) for every command of the sandbox,
    /// in order, after the fake's API settings.
    env: Vec<(OsString, Option<OsString>)>,
}

/// A sandbox's bucket: the moto holding it, and where this machine keeps
/// the archive's local state.
struct Bucket {
    moto: Moto,
    /// `XDG_STATE_HOME` of every command.
    state: PathBuf,
}

/// Options of a fake with `faults` switched on (and nothing else changed).
pub fn with_faults(faults: Faults) -> FakeOptions {
    FakeOptions {
        faults,
        ..FakeOptions::default()
    }
}

impl Sandbox {
    /// A fake serving `vault` on the test's own runtime (async tests, whose
    /// runtime keeps serving it while the test awaits).
    pub async fn start(vault: &Vault, options: FakeOptions) -> Sandbox {
        let server = FakeServer::start(vault.clone(), options).await.unwrap();
        Sandbox::around(server)
    }

    /// A fake serving `vault` on a thread of its own (tests that run the
    /// binary and wait for it).
    pub fn start_in_thread(vault: &Vault, options: FakeOptions) -> Sandbox {
        let server = FakeServer::start_in_thread(vault.clone(), options).unwrap();
        Sandbox::around(server)
    }

    /// A sandbox around a fake started otherwise (an account's, say).
    pub fn around(server: FakeServer) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archive");
        std::fs::create_dir(&out).unwrap();
        Sandbox {
            server: Some(server),
            bucket: None,
            dir,
            out,
            env: Vec::new(),
        }
    }

    /// A fake serving `vault` on a thread of its own, and the archive at
    /// `s3://<BUCKET>/<PREFIX>` on a moto of its own; or why moto cannot
    /// start (for `require!`).
    pub fn start_in_bucket(vault: &Vault, options: FakeOptions) -> Result<Sandbox, String> {
        let moto = moto()?;
        let mut sandbox = Sandbox::start_in_thread(vault, options);
        let state = sandbox.path("state");
        std::fs::create_dir(&state).unwrap();
        sandbox.bucket = Some(Bucket { moto, state });
        Ok(sandbox)
    }

    fn bucket(&self) -> &Bucket {
        self.bucket.as_ref().expect("a sandbox in bucket mode")
    }

    /// The moto holding the archive (bucket mode only), to look at the
    /// objects with `moto::objects` and the like.
    pub fn moto(&self) -> &Moto {
        &self.bucket().moto
    }

    /// The local state folder (`XDG_STATE_HOME`, bucket mode only): the
    /// database, the lock and the uploads in flight are under it.
    pub fn state(&self) -> &Path {
        &self.bucket().state
    }

    /// From now on the commands run as on another machine (bucket mode
    /// only): the local state folder is `name` in the temp folder, empty.
    pub fn another_machine(&mut self, name: &str) {
        let state = self.path(name);
        std::fs::create_dir(&state).unwrap();
        self.bucket
            .as_mut()
            .expect("a sandbox in bucket mode")
            .state = state;
    }

    /// The archive as a command names it (`--out`) and reports it (`out`):
    /// the folder, or `s3://<BUCKET>/<PREFIX>` in bucket mode.
    pub fn location(&self) -> String {
        match self.bucket {
            Some(_) => format!("s3://{BUCKET}/{PREFIX}"),
            None => self.out.display().to_string(),
        }
    }

    /// `--out`'s value: the archive folder, or the bucket URL.
    fn out_arg(&self) -> OsString {
        match self.bucket {
            Some(_) => self.location().into(),
            None => self.out.clone().into(),
        }
    }

    /// The fake (panics once [`Sandbox::stop_server`] stopped it).
    pub fn server(&self) -> &FakeServer {
        self.server.as_ref().expect("the fake was stopped")
    }

    /// Stops the fake: the archive stays, and offline commands still run.
    pub fn stop_server(&mut self) {
        self.server = None;
    }

    /// Stops the fake and starts a new one serving `vault`: the archive
    /// (and its local state) stays.
    pub fn restart_server(&mut self, vault: &Vault, options: FakeOptions) {
        self.server = None;
        self.server = Some(FakeServer::start_in_thread(vault.clone(), options).unwrap());
    }

    /// The archive folder (`--out`): `archive/` in the temp folder, empty
    /// at first. A bucket's archive has none: see [`Sandbox::location`].
    pub fn out(&self) -> &Path {
        assert!(self.bucket.is_none(), "a bucket's archive has no folder");
        &self.out
    }

    /// The archive's state database (where it is by default: in the
    /// archive, or for a bucket in the local state folder).
    pub fn db(&self) -> PathBuf {
        match &self.bucket {
            Some(bucket) => {
                let url = vault_mirror::location::S3Url::parse(&self.location()).unwrap();
                let key = url.state_key();
                bucket
                    .state
                    .join("vault-mirror")
                    .join(key)
                    .join("state.sqlite")
            }
            None => self.out.join(".vault-mirror/state.sqlite"),
        }
    }

    /// `name` in the temp folder, beside the archive (nothing is made).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The temp folder itself (the archive and [`Sandbox::path`]s are in it).
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// In-process settings: the fake's API, the archive, fast retries
    /// (disk only).
    pub fn settings(&self) -> Settings {
        settings_for(self.server(), self.out())
    }

    /// [`Sandbox::settings`] for another archive (`out`).
    pub fn settings_at(&self, out: &Path) -> Settings {
        settings_for(self.server(), out)
    }

    /// Sets `name` to `value` for every command from now on.
    pub fn env(&mut self, name: &str, value: impl Into<OsString>) -> &mut Sandbox {
        self.env.push((name.into(), Some(value.into())));
        self
    }

    /// Removes `name` from every command's environment from now on.
    pub fn env_remove(&mut self, name: &str) -> &mut Sandbox {
        self.env.push((name.into(), None));
        self
    }

    fn with_env(&self, mut command: Command) -> Command {
        if let Some(bucket) = &self.bucket {
            command
                .env("XDG_STATE_HOME", &bucket.state)
                .env("AWS_ENDPOINT_URL", bucket.moto.endpoint())
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .env("AWS_REGION", "us-east-1")
                .env_remove("AWS_SESSION_TOKEN")
                .env_remove("AWS_ENDPOINT_URL_S3")
                .env_remove("AWS_ALLOW_HTTP")
                .env("VAULT_MIRROR_LOG", "debug");
        }
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
    }

    /// `vault-mirror <args> --out <archive>` against the fake (its API
    /// settings in the environment), with the sandbox's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        self.with_env(against_archive(self.server(), &self.out_arg(), args))
    }

    /// [`Sandbox::command`] with another archive (`--out <out>`): one in
    /// the temp folder ([`Sandbox::path`]), or a connection's inside the
    /// sandbox's.
    pub fn command_at(&self, out: &Path, args: &[&str]) -> Command {
        self.with_env(against(self.server(), out, args))
    }

    /// `vault-mirror <args> --out <archive>` with no API settings at all
    /// (`status`, `verify`, `export`, … need none), with the sandbox's
    /// environment.
    pub fn offline(&self, args: &[&str]) -> Command {
        let mut command = vault_mirror();
        command.args(args).arg("--out").arg(self.out_arg());
        self.with_env(command)
    }

    /// Runs `command`, asserts it exits `code` (showing its stderr), and
    /// returns the one JSON object it printed on stdout.
    pub fn json(&self, command: &mut Command, code: i32) -> serde_json::Value {
        json_with_code(command, code)
    }

    /// Runs `command`, asserts it exits `code` (showing what it printed),
    /// and returns what it printed: its JSON, and its words.
    pub fn run(&self, command: &mut Command, code: i32) -> Printed {
        run_with_code(command, code)
    }
}
