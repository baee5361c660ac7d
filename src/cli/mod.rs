//! The binary side: commands, their output, logging, and exit codes.
//!
//! Each command builds its [`Settings`] first (flags, environment, config
//! file), then starts logging, then works; a failure becomes a [`Failure`]
//! that prints as `error:` / `caused by:` / `hint:` lines (and as one JSON
//! object with `--json`) and picks the exit code.

mod args;
mod export;
mod lists;
mod logging;
mod mirror;
mod progress;
mod settings;
mod status;
mod table;
mod verify;

use clap::{CommandFactory, Parser};
use vault_mirror::lock::{ArchiveLock, LockError};
use vault_mirror::pipeline::MirrorError;
use vault_mirror::settings::{Output, Settings, SettingsError};
use vault_mirror::store::StoreError;

use args::{Cli, Command};

/// A failure to show the user: the error chain, hints, and the exit code.
pub struct Failure {
    error: anyhow::Error,
    hints: Vec<String>,
    code: i32,
}

impl Failure {
    fn new(error: impl Into<anyhow::Error>, code: i32) -> Self {
        Failure {
            error: error.into(),
            hints: Vec::new(),
            code,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl From<MirrorError> for Failure {
    fn from(error: MirrorError) -> Self {
        let code = error.exit_code();
        let mut hints = Vec::new();
        match &error {
            MirrorError::Api(api) => hints.extend(api.hint()),
            MirrorError::Store(store) => hints.extend(store_hint(store)),
            MirrorError::UnknownLists { .. } => hints.push(
                "`vault-mirror lists` shows the connection's lists with their ids".into(),
            ),
            MirrorError::Settings(SettingsError::MissingApiKey) => hints.push(
                "`vault-mirror --help` lists where settings come from; the README has an annotated config file".into(),
            ),
            _ => {}
        }
        Failure {
            error: error.into(),
            hints,
            code,
        }
    }
}

impl From<SettingsError> for Failure {
    fn from(error: SettingsError) -> Self {
        MirrorError::from(error).into()
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        MirrorError::from(error).into()
    }
}

impl From<LockError> for Failure {
    fn from(error: LockError) -> Self {
        let hint = error.hint();
        let mut failure = Failure::new(error, 1);
        failure.hints.extend(hint);
        failure
    }
}

fn store_hint(error: &StoreError) -> Option<String> {
    match error {
        StoreError::Busy { .. } => Some(
            "another program holds the database; a database on a network share (NFS, SMB) is best moved to a local disk with `--db`".into(),
        ),
        StoreError::ReadOnly { .. } => Some(
            "nothing was changed; make the folder writable, or point `--db` at a writable place".into(),
        ),
        StoreError::DiskFull { .. } => Some(
            "free some space on that disk, or move the database to another disk with `--db`; files already verified stay verified".into(),
        ),
        StoreError::NotOurs { .. } => Some(
            "point `--db` at another file to start a fresh database; the damaged one was not changed".into(),
        ),
        _ => None,
    }
}

pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not errors.
            return std::process::ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    let output = settings::output(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => {
            print_failure(&failure, output);
            failure.code
        }
    };
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    match &cli.command {
        Command::Mirror(args) => {
            let settings = settings::build(&cli.global, Some(args), settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            if settings.mirror.dry_run {
                return mirror::run_dry(&settings).await;
            }
            // A run that cannot start creates nothing: no folder, no lock.
            settings.api_config()?;
            let _lock = lock(&settings, "mirror")?;
            // Stops gracefully on a signal by itself.
            mirror::run(&settings).await
        }
        Command::Status => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            status::run(&settings)
        }
        Command::Verify(args) => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            // No archive there (a typo in `--out`): say so, and create
            // nothing, not even the lock's folder.
            drop(status::open(&settings)?);
            let _lock = lock(&settings, "verify")?;
            interruptible(verify::run(&settings, args)).await
        }
        Command::Lists => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            lists::run(&settings).await
        }
        Command::Export => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            export::run(&settings).await
        }
        // `mirror::run` stops gracefully on a signal by itself.
        Command::Demo(args) => mirror::run_demo(&cli.global, args).await,
        Command::Completions(args) => {
            let mut command = without_hidden_commands(Cli::command());
            clap_complete::generate(
                args.shell,
                &mut command,
                "vault-mirror",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::FakeServer(args) => mirror::run_fake_server(args).await,
    }
}

/// `command` without its hidden subcommands (clap_complete would offer
/// them): completion scripts name only what `--help` shows.
fn without_hidden_commands(command: clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|subcommand| !subcommand.is_hide_set())
        .cloned()
        .collect();
    let mut shown = clap::Command::new("vault-mirror")
        .args(command.get_arguments().cloned())
        .subcommands(visible);
    if let Some(about) = command.get_about() {
        shown = shown.about(about.clone());
    }
    shown
}

/// Takes the archive's lock for a command that writes.
fn lock(settings: &Settings, command: &str) -> Result<ArchiveLock, Failure> {
    let lock = ArchiveLock::acquire(&settings.out, command)?;
    if let Some(previous) = &lock.taken_over {
        tracing::info!(
            "took over the lock left by {} (no longer running)",
            previous.describe()
        );
    }
    Ok(lock)
}

/// Runs `work` until it ends or the process is asked to stop (Ctrl-C,
/// SIGTERM): then exits 130 or 143 at once. Stopping anywhere is safe —
/// files reach their final path only whole and verified, and the next run
/// resumes from the `.part` bytes and the database.
async fn interruptible(
    work: impl std::future::Future<Output = Result<i32, Failure>>,
) -> Result<i32, Failure> {
    let code = tokio::select! {
        result = work => return result,
        code = stop_signal() => code,
    };
    eprintln!();
    eprintln!("interrupted: what was verified is kept; run the same command again to resume");
    tracing::warn!(target: progress::EVENTS, "interrupted by a signal");
    Ok(code)
}

/// How long a run may take to stop after the first signal before the
/// process exits anyway.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Listens for stop signals from now until the process ends. The first
/// resolves the returned future with its exit code (130 or 143), so the
/// work can stop in order; a second signal, or the work still running
/// [`STOP_GRACE`] later, exits at once — safe too, only less tidy (the
/// run stays unfinished in the database, like after a crash).
/// `display` clears its bars and shows the "stopping" line.
pub(crate) fn graceful_stop(
    display: std::sync::Arc<progress::Display>,
) -> impl std::future::Future<Output = i32> + Send + 'static {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let code = stop_signal().await;
        display.stopping(
            "stopping: transfers in flight are kept to resume (press Ctrl-C again to stop at once)",
        );
        let _ = sender.send(code);
        let code = tokio::select! {
            second = stop_signal() => second,
            () = tokio::time::sleep(STOP_GRACE) => code,
        };
        eprintln!("stopped at once");
        std::process::exit(code);
    });
    async move {
        match receiver.await {
            Ok(code) => code,
            // The listener ended without a signal: never stop.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Resolves with the exit code for the first stop signal.
pub(crate) async fn stop_signal() -> i32 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => 130,
                _ = terminate.recv() => 143,
            };
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => 130,
        // No signal handling here: wait for the work instead.
        Err(_) => std::future::pending().await,
    }
}

fn print_failure(failure: &Failure, output: Output) {
    if output.json {
        let body = serde_json::json!({
            "outcome": "failed",
            "exit_code": failure.code,
            "error": format!("{:#}", failure.error),
        });
        println!("{body}");
    }
    tracing::error!(target: progress::EVENTS, "{:#}", failure.error);
    eprintln!("error: {}", failure.error);
    for cause in failure.error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    for hint in &failure.hints {
        eprintln!("hint: {hint}");
    }
}
