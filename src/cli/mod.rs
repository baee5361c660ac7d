//! The binary side: commands, their output, and exit codes.

mod args;
mod progress;
mod settings;

use std::sync::Arc;

use clap::Parser;
use vault_mirror::archive::export::{ExportSummary, export};
use vault_mirror::archive::prune::{PruneSummary, human_bytes};
use vault_mirror::fake::{FakeOptions, FakeServer, Faults, Vault};
use vault_mirror::pipeline::{self, MirrorError, Summary};
use vault_mirror::settings::{Output, Settings};
use vault_mirror::store::Store;

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
        Command::Export => {
            let settings = settings::build(&cli.global, None, settings::DEFAULT_OUT)?;
            run_export(&settings).await
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

/// `export`: the archive index from the database alone (no network, no key).
async fn run_export(settings: &Settings) -> Result<i32, Failure> {
    if !settings.db.is_file() {
        return Err(Failure {
            error: anyhow::anyhow!(
                "no vault-mirror archive at {}: the database {} does not exist",
                settings.out.display(),
                settings.db.display()
            ),
            hints: vec![
                "pass the archive folder with --out (or --db), or run `vault-mirror mirror` first"
                    .into(),
            ],
            code: 2,
        });
    }
    let store = Store::open(&settings.db).map_err(MirrorError::from)?;
    let out = settings.out.clone();
    let summary = tokio::task::spawn_blocking(move || export(&store, &out, vault_mirror::now_ms()))
        .await
        .map_err(|error| Failure {
            error: anyhow::anyhow!("the export ended abnormally: {error}"),
            hints: Vec::new(),
            code: 1,
        })?
        .map_err(|error| Failure {
            error: anyhow::Error::new(error).context(format!(
                "cannot write the archive index in {}",
                settings.out.display()
            )),
            hints: Vec::new(),
            code: 1,
        })?;
    let code = if summary.missing.is_empty() { 0 } else { 3 };
    if settings.output.json {
        let mut body = serde_json::to_value(&summary).unwrap_or_default();
        if let Some(object) = body.as_object_mut() {
            object.insert("command".into(), "export".into());
            object.insert(
                "outcome".into(),
                if code == 0 { "complete" } else { "partial" }.into(),
            );
            object.insert("exit_code".into(), code.into());
        }
        println!("{body}");
    } else {
        print_export(&summary, settings.output);
    }
    Ok(code)
}

fn print_export(summary: &ExportSummary, output: Output) {
    if !output.quiet {
        eprintln!(
            "exported {} media ({} files, {}) into {}: {}",
            summary.media,
            summary.variants + summary.versions,
            human_bytes(summary.bytes),
            summary.out.display(),
            summary.written.join(", ")
        );
        eprintln!(
            "  open {} in a browser; check every file with: cd {} && sha256sum -c SHA256SUMS",
            summary.out.join("index.html").display(),
            summary.out.display()
        );
    }
    const SHOWN: usize = 20;
    for path in summary.missing.iter().take(SHOWN) {
        eprintln!("  missing: {path} is recorded but not on disk as recorded; left out");
    }
    if summary.missing.len() > SHOWN {
        eprintln!(
            "  … and {} more missing (see `--json`)",
            summary.missing.len() - SHOWN
        );
    }
    if !summary.missing.is_empty() {
        eprintln!("  the next `vault-mirror mirror` fetches them again");
    }
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
    // The demo shows the whole archive, gallery included.
    settings.mirror.export = true;
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
        eprintln!(
            "  {out}/index.html                        the offline gallery: open it in a browser"
        );
        eprintln!("  {out}/media/<media id>/<label>.<ext>   every variant, verified");
        eprintln!("  {out}/lists/<list id>-<name>/           one folder of links per list");
        eprintln!("  {out}/SHA256SUMS, manifest.jsonl        check with `sha256sum -c SHA256SUMS`");
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
    eprintln!("serving {} media until interrupted (Ctrl-C)", args.media);
    let _ = tokio::signal::ctrl_c().await;
    Ok(0)
}

fn print_summary(summary: &Summary, output: Output) {
    if output.json {
        println!("{}", serde_json::to_string(summary).unwrap_or_default());
        return;
    }
    let problems = summary.failed.len() + summary.pending.len() + summary.errors.len();
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
    if !output.quiet && !summary.unavailable.is_empty() {
        eprintln!(
            "  {} variants are not downloadable upstream (removed or not stored by Vault+)",
            summary.unavailable.len()
        );
    }
    if !output.quiet {
        for version in &summary.versions_kept {
            eprintln!(
                "  changed upstream: {}: the previous bytes are kept as {}",
                pipeline::display_name(&version.media_id, &version.label),
                version.local_path
            );
        }
        if let Some(views) = &summary.views {
            for path in &views.left_alone {
                eprintln!("  note: {path} is not a link vault-mirror made; left alone");
            }
        }
    }
    if let Some(prune) = &summary.prune {
        print_prune(prune, output);
    }
    if let Some(export) = &summary.export {
        print_export(export, output);
    }
    for error in &summary.errors {
        eprintln!("  error: {error}");
    }
}

/// A prune lists every file it deletes (or would); a refused one shows a few.
fn print_prune(prune: &PruneSummary, output: Output) {
    if output.quiet && !prune.refused {
        return;
    }
    if !prune.refused {
        eprintln!("{}", prune.headline());
    }
    let verb = if prune.refused || prune.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let shown = if prune.refused { 20 } else { usize::MAX };
    for file in prune.files.iter().take(shown) {
        eprintln!("  {verb}: {} ({})", file.path, human_bytes(file.size));
    }
    if prune.files.len() > shown {
        eprintln!(
            "  … and {} more (see `--dry-run --json`)",
            prune.files.len() - shown
        );
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
