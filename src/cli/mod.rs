//! The binary side: commands, their output, and exit codes.

mod args;
mod progress;
mod settings;

use std::sync::Arc;

use clap::Parser;
use vault_mirror::fake::{FakeOptions, FakeServer, Faults, RateLimitFault, Vault};
use vault_mirror::pipeline::{self, MirrorError, Summary};
use vault_mirror::settings::{Output, Settings};

use args::{Cli, Command};

/// A failure to show the user: the error chain, hints, and the exit code.
struct Failure {
    error: anyhow::Error,
    hints: Vec<String>,
    code: i32,
}

impl From<MirrorError> for Failure {
    fn from(error: MirrorError) -> Self {
        let code = error.exit_code();
        let mut hints = Vec::new();
        if let MirrorError::Api(api) = &error
            && let Some(hint) = api.hint()
        {
            hints.push(hint);
        }
        Failure {
            error: error.into(),
            hints,
            code,
        }
    }
}

impl From<vault_mirror::settings::SettingsError> for Failure {
    fn from(error: vault_mirror::settings::SettingsError) -> Self {
        MirrorError::from(error).into()
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
    init_logging(settings::output(&cli.global));
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
    let output = settings::output(&cli.global);
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
        Command::Mirror(mirror) => {
            let settings = settings::build(&cli.global, Some(mirror), settings::DEFAULT_OUT)?;
            run_mirror(&settings).await
        }
        Command::Demo(demo) => run_demo(&cli, demo).await,
        Command::FakeServer(args) => run_fake_server(args).await,
    }
}

async fn run_mirror(settings: &Settings) -> Result<i32, Failure> {
    let display = Arc::new(progress::display_for(settings.output));
    let result = pipeline::mirror(settings, display.clone()).await;
    display.finish();
    let summary = result?;
    print_summary(&summary, settings.output);
    Ok(summary.exit_code)
}

async fn run_demo(cli: &Cli, demo: &args::DemoArgs) -> Result<i32, Failure> {
    let vault = Vault::sample(demo.media.max(1), 4);
    let server = FakeServer::start(vault, FakeOptions::default())
        .await
        .map_err(|error| Failure {
            error: anyhow::Error::new(error)
                .context("cannot start the sample Vault+ server on 127.0.0.1"),
            hints: Vec::new(),
            code: 1,
        })?;
    let mut settings = settings::build(&cli.global, Some(&demo.mirror), "vault-demo")?;
    // The demo talks only to its own server, whatever the environment says.
    settings.base_url = vault_mirror::settings::parse_base_url(&server.base_url())?;
    settings.api_key = Some(server.api_key().to_owned().into());
    settings.connection_id = Some(server.connection_id().to_owned());
    let output = settings.output;
    if !output.quiet && !output.json {
        eprintln!(
            "demo: a sample Vault+ with {} media in 4 lists is serving at {}",
            demo.media.max(1),
            server.base_url()
        );
    }
    let code = run_mirror(&settings).await?;
    if !output.quiet && !output.json {
        let out = settings.out.display();
        eprintln!();
        eprintln!("The mirror is in {out}:");
        eprintln!("  {out}/media/<media id>/<label>.<ext>   every variant, verified");
        eprintln!("  {out}/.vault-mirror/state.sqlite        what was fetched, with sha256");
        eprintln!("Run the demo again: nothing is downloaded twice.");
    }
    Ok(code)
}

async fn run_fake_server(args: &args::FakeServerArgs) -> Result<i32, Failure> {
    let options = FakeOptions {
        url_ttl: args.url_ttl,
        faults: Faults {
            bandwidth_per_transfer: args.bandwidth,
            cut_bodies: args.cut_bodies,
            resets: args.resets,
            api_server_errors: args.server_errors,
            media_server_errors: args.server_errors,
            wrong_size: args.wrong_size,
            wrong_type: args.wrong_type,
            rate_limit: args.rate_limit_every.map(|every| RateLimitFault {
                every,
                burst: 1,
                retry_after: Some(1),
                reset_after: None,
            }),
            ignore_range: args.no_range,
            ..Faults::default()
        },
        ..FakeOptions::default()
    };
    let server = FakeServer::start_on(Vault::sample(args.media, args.lists), options, args.port)
        .await
        .map_err(|error| Failure {
            error: anyhow::Error::new(error).context("cannot start the fake server"),
            hints: Vec::new(),
            code: 1,
        })?;
    println!("OFAUTH_BASE_URL={}", server.base_url());
    println!("OFAUTH_API_KEY={}", server.api_key());
    println!("OFAUTH_CONNECTION_ID={}", server.connection_id());
    eprintln!(
        "serving {} media until interrupted (Ctrl-C or SIGTERM)",
        args.media
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| Failure {
        error: anyhow::Error::new(error).context("cannot listen for SIGTERM"),
        hints: Vec::new(),
        code: 1,
    })?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    // What the server saw, for whoever measures a run against it.
    eprintln!(
        "{}",
        serde_json::to_string(&server.stats()).unwrap_or_default()
    );
    Ok(0)
}

fn print_summary(summary: &Summary, output: Output) {
    if output.json {
        println!("{}", serde_json::to_string(summary).unwrap_or_default());
        return;
    }
    let problems = summary.failed.len() + summary.pending.len();
    if output.quiet && problems == 0 {
        return;
    }
    if !output.quiet {
        eprintln!(
            "mirrored {} lists into {}: {} downloaded ({}), {} already verified, {} pending, {} failed, in {:.1}s",
            summary.lists.len(),
            summary.out.display(),
            summary.downloaded,
            indicatif::HumanBytes(summary.bytes),
            summary.already_verified,
            summary.pending.len(),
            summary.failed.len(),
            summary.seconds
        );
    }
    const SHOWN: usize = 20;
    for (title, notes) in [("failed", &summary.failed), ("pending", &summary.pending)] {
        for item in notes.iter().take(SHOWN) {
            eprintln!(
                "  {title}: {}: {}",
                pipeline::display_name(&item.id, &item.label),
                item.reason
            );
        }
        if notes.len() > SHOWN {
            eprintln!(
                "  … and {} more {title} (see `--json`)",
                notes.len() - SHOWN
            );
        }
    }
    if !output.quiet && (summary.urls_resigned > 0 || summary.transfer_retries > 0) {
        eprintln!(
            "  {} URLs re-signed in {} batch calls ({} refused by the media host), {} transfer retries",
            summary.urls_resigned,
            summary.resign_calls,
            summary.expired_urls,
            summary.transfer_retries
        );
    }
    if !output.quiet && !summary.unavailable.is_empty() {
        eprintln!(
            "  {} variants are not downloadable upstream (removed or not stored by Vault+)",
            summary.unavailable.len()
        );
    }
    for error in &summary.errors {
        eprintln!("  error: {error}");
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
    eprintln!("error: {}", failure.error);
    for cause in failure.error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    for hint in &failure.hints {
        eprintln!("hint: {hint}");
    }
}

fn init_logging(output: Output) {
    use tracing_subscriber::EnvFilter;
    let level = match (output.quiet, output.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("VAULT_MIRROR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("vault_mirror={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
