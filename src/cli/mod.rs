//! The binary side: commands, their output, logging, and exit codes.
//!
//! Each command builds its [`vault_mirror::settings::Settings`] first (flags, environment, config
//! file), then starts logging, then works; a failure becomes a [`Failure`]
//! that prints as `error:` / `caused by:` / `hint:` lines (and as one JSON
//! object with `--json`) and picks the exit code.

mod agency;
mod args;
mod connections;
mod demo;
mod export;
mod failure;
mod history;
mod lists;
mod lock;
mod logging;
mod manual;
mod mirror;
mod per_connection;
mod progress;
mod settings;
mod status;
mod stop;
mod table;
mod terminal;
mod unattended;
mod verify;

use clap::{CommandFactory, Parser};
use failure::{Failure, print_failure};
use lock::lock;
use stop::interruptible;
use vault_mirror::archive::agency::Agency;

use args::{Cli, Command};

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
        Command::Mirror(args) => mirror_command(&cli.global, args).await,
        Command::Status => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            if cli.global.db.is_none()
                && let Some(agency) = Agency::find(&settings).await.map_err(Failure::failed)?
            {
                let rows = agency.rows().await.map_err(Failure::failed)?;
                return Ok(status::print_many(&settings, &rows));
            }
            status::restore(&settings).await?;
            status::run(&settings)
        }
        Command::Verify(args) => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            if cli.global.db.is_none()
                && let Some(connections) = per_connection::agency_connections(&settings).await?
            {
                return interruptible(per_connection::verify(&settings, connections, args)).await;
            }
            // No archive there (a typo in `--out`): say so, and create
            // nothing, not even the lock's folder.
            status::restore(&settings).await?;
            drop(status::open(&settings)?);
            let started_at = vault_mirror::now_ms();
            let _lock = lock(&settings, "verify").inspect_err(|failure| {
                history::record_refused(&settings, "verify", started_at, failure);
            })?;
            interruptible(verify::run(&settings, args)).await
        }
        Command::History(args) => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            if cli.global.db.is_none()
                && let Some(connections) = per_connection::agency_connections(&settings).await?
            {
                return history::run_many(&settings, &connections, args).await;
            }
            status::restore(&settings).await?;
            history::run(&settings, args)
        }
        Command::Lists => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            lists::run(&settings).await
        }
        Command::Export => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            logging::init(&settings)?;
            if cli.global.db.is_none()
                && let Some(connections) = per_connection::agency_connections(&settings).await?
            {
                return per_connection::export(&settings, connections).await;
            }
            status::restore(&settings).await?;
            export::run(&settings).await
        }
        // `mirror::run` stops gracefully on a signal by itself.
        Command::Demo(args) => demo::run_demo(&cli.global, args).await,
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

/// `mirror`: one connection in today's layout, or many (an agency's
/// run); watched (events, metrics, pings) unless it is a dry run.
async fn mirror_command(
    global: &args::GlobalArgs,
    args: &args::MirrorArgs,
) -> Result<i32, Failure> {
    let mut settings = settings::build(global, Some(args), settings::DEFAULT_OUT)?;
    logging::init(&settings)?;
    if settings.mirror.dry_run {
        return match connections::select(global, &settings).await? {
            connections::Selection::Many(chosen) => {
                agency::run(global, args, &settings, chosen, None).await
            }
            connections::Selection::One => {
                connections::apply_own_table(global, args, &mut settings)?;
                mirror::run_dry(&settings).await
            }
        };
    }
    // Watched from here on: a run that fails while choosing its
    // connections (a refused key) is measured and pinged too.
    // A run of many connections is the process's, not one connection's.
    let process = if connections::covers_many(global, &settings)? {
        unattended::of_process(&settings)
    } else {
        settings.clone()
    };
    let watchers = unattended::Watchers::start(&process, "mirror")?;
    let selection = match connections::select(global, &settings).await {
        Ok(selection) => selection,
        Err(failure) => return Err(watchers.fail(&process, failure).await),
    };
    match selection {
        connections::Selection::Many(chosen) => {
            agency::run(global, args, &settings, chosen, Some(&watchers)).await
        }
        connections::Selection::One => {
            if let Err(failure) = connections::apply_own_table(global, args, &mut settings) {
                return Err(watchers.fail(&settings, failure).await);
            }
            // Checks the API settings, takes the lock; stops
            // gracefully on a signal by itself.
            mirror::run_watched(&settings, "mirror", watchers).await
        }
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
