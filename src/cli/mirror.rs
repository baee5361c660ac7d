//! `mirror` (and its `--dry-run` plan), and `fake-server`:
//! running the pipeline and saying how it went.

use std::sync::Arc;

use vault_mirror::fake::{FakeOptions, FakeServer, Faults, RateLimitFault, Vault, sample_account};
use vault_mirror::pipeline::dry_run::{Plan, dry_run};
use vault_mirror::pipeline::preflight::check_quality;
use vault_mirror::pipeline::{self, Summary};
use vault_mirror::report::SilentReporter;
use vault_mirror::settings::{Output, Settings};

use super::args::FakeServerArgs;
use super::failure::{Failure, failure_text};
use super::lock::lock;
use super::progress::{self, EVENTS};
use super::unattended::{ConnectionEnd, Watchers};

/// A `mirror` (or `demo`) run of one connection and what watches it
/// (`watchers` has opened the events stream and sent the start ping), then the API settings, the archive's lock and the
/// pipeline, then the metrics file and the end ping, whatever happened
/// (see [`super::unattended`]). A run the lock refuses is recorded in the
/// archive's history when there is one.
pub async fn run_watched(
    settings: &Settings,
    command: &'static str,
    watchers: Watchers,
) -> Result<i32, Failure> {
    let started_at = vault_mirror::now_ms();
    // A run that cannot start (no key: exit 2) creates nothing, not even
    // the archive folder or its lock, but it is measured and pinged.
    let result = match before_the_lock(settings).await {
        Err(failure) => Err(failure),
        Ok(()) => match lock(settings, command) {
            Ok(lock) => {
                let result = run(settings, &watchers).await;
                drop(lock);
                result
            }
            Err(failure) => {
                // The pipeline records `demo` runs as `mirror` runs too.
                super::history::record_refused(settings, "mirror", started_at, &failure);
                Err(failure)
            }
        },
    };
    let (code, text) = match &result {
        Ok(summary) => (summary.exit_code, end_text(Ok(summary))),
        Err(failure) => (failure.code, end_text(Err(failure))),
    };
    let end = ConnectionEnd {
        settings,
        result: result.as_ref(),
    };
    watchers.finish(&[end], code, &text).await;
    result.map(|summary| summary.exit_code)
}

/// The mistakes in the command found before the lock, the archive folder
/// or any sync: no key, `--out` where no archive may go, a `--quality`
/// label no media carries.
async fn before_the_lock(settings: &Settings) -> Result<(), Failure> {
    settings.api_config()?;
    if agency_folder(settings) {
        return Err(into_agency_folder(settings));
    }
    if let Some(failure) = misplaced_out(settings) {
        return Err(failure);
    }
    check_quality(settings, Arc::new(SilentReporter)).await?;
    Ok(())
}

/// `--out` naming a file, or a folder inside another archive's `media/`
/// (a run there would nest an archive in one).
fn misplaced_out(settings: &Settings) -> Option<Failure> {
    if settings.archive.bucket().is_some() {
        return None;
    }
    let out = std::path::absolute(&settings.local).unwrap_or_else(|_| settings.local.clone());
    if out.exists() && !out.is_dir() {
        return Some(
            Failure::usage(anyhow::anyhow!(
                "--out {} is a file, not a folder",
                out.display()
            ))
            .hint("name a folder for the archive (it is made if missing)"),
        );
    }
    let archive = out.ancestors().skip(1).find(|folder| {
        folder.file_name().is_some_and(|name| name == "media")
            && folder
                .parent()
                .is_some_and(|root| vault_mirror::settings::default_db(root).is_file())
    })?;
    let root = archive.parent()?.display().to_string();
    Some(
        Failure::usage(anyhow::anyhow!(
            "--out {} is inside the media/ folder of the archive at {root}; a run there would nest an archive in it",
            out.display()
        ))
        .hint(format!(
            "give a folder outside it (or `--out {root}` to mirror into that archive)"
        )),
    )
}

/// Whether `settings.local` holds an agency's archives (one per
/// connection) rather than being one archive itself.
fn agency_folder(settings: &Settings) -> bool {
    // `is_agency` asks that `<out>` hold no database of its own.
    settings.archive.bucket().is_none() && vault_mirror::archive::agency::is_agency(&settings.local)
}

/// One connection's run aimed at an agency's folder: the layouts would mix.
fn into_agency_folder(settings: &Settings) -> Failure {
    let out = settings.local.display();
    Failure::usage(anyhow::anyhow!(
        "{out} holds one archive per connection (an agency's); a run of one connection \
             would make it an archive of its own and mix the two layouts"
    ))
    .hint(format!(
        "give the connection's own folder, `--out {out}/<connection id>`, or choose the \
         connections as the agency's runs do (`--all-connections`, `--connection` repeated)"
    ))
}

/// The end ping's body for a run that ended with `result`: the summary's
/// lines as a person reads them, or the error.
pub fn end_text(result: Result<&Summary, &Failure>) -> String {
    match result {
        Ok(summary) => summary_text(summary),
        Err(failure) => failure_text(failure, false),
    }
}

/// Runs the pipeline; the first stop signal ends it gracefully (see
/// [`super::stop::graceful_stop`]), with a summary and exit 130 or 143.
pub async fn run(settings: &Settings, watchers: &Watchers) -> Result<Summary, Failure> {
    let display = Arc::new(progress::display_for(settings.output));
    let stop = super::stop::graceful_stop(display.clone());
    let reporter = watchers.reporter(display.clone(), settings);
    let result = pipeline::mirror_until(settings, reporter, stop).await;
    display.finish();
    let summary = result?;
    print_summary(&summary, settings.output);
    Ok(summary)
}

pub async fn run_dry(settings: &Settings) -> Result<i32, Failure> {
    let display = Arc::new(progress::messages_for(settings.output));
    let plan = dry_run(settings, display).await?;
    if settings.output.json {
        println!("{}", serde_json::to_string(&plan).unwrap_or_default());
        return Ok(0);
    }
    print!("{}", render_plan(&plan));
    // Like a real prune, every file is listed on stderr.
    for path in &plan.prune_files {
        eprintln!("  would delete: {path}");
    }
    if plan.prune_refused {
        eprintln!(
            "  a real run would delete nothing: {} files is more than --max-delete {}",
            plan.prune_files.len(),
            settings.mirror.max_delete
        );
    }
    Ok(0)
}

pub async fn run_fake_server(args: &FakeServerArgs) -> Result<i32, Failure> {
    let mut options = FakeOptions {
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
            clock_skew_ms: args.clock_skew,
            ..Faults::default()
        },
        media_base: args.media_base.clone(),
        ..FakeOptions::default()
    };
    let vault = match &args.bench_data {
        Some(dir) => {
            let vault = Vault::bench(args.media, args.bench_scale);
            let bytes = vault_mirror::fake::write_files(&vault, dir).map_err(|error| {
                Failure::failed(
                    anyhow::Error::new(error).context("cannot write the benchmark's data set"),
                )
            })?;
            eprintln!(
                "data set: {} media, {bytes} bytes under {}",
                args.media,
                dir.display()
            );
            vault
        }
        None => {
            let (vault, more) = sample_account(
                args.media,
                args.lists,
                usize::from(args.connections),
                args.troubled_connections,
            );
            options.connection_id = more.connection_id;
            options.more_connections = more.more_connections;
            vault
        }
    };
    let server = FakeServer::start_on(vault, options, args.port)
        .await
        .map_err(|error| {
            Failure::failed(anyhow::Error::new(error).context("cannot start the fake server"))
        })?;
    if let Some(path) = &args.url_list {
        let lines: String = server
            .signed_urls()
            .into_iter()
            .map(|(url, relative)| format!("{url}\t{relative}\n"))
            .collect();
        fs_err::write(path, lines).map_err(|error| {
            Failure::failed(anyhow::Error::new(error).context("cannot write the URL list"))
        })?;
    }
    // Lines a shell takes as they are: paste them, or `eval "$(…)"`.
    println!("export OFAUTH_BASE_URL={}", server.base_url());
    println!("export OFAUTH_API_KEY={}", server.api_key());
    println!("export OFAUTH_CONNECTION_ID={}", server.connection_id());
    let connections = server.connection_ids();
    if connections.len() > 1 {
        eprintln!(
            "connections: {} (mirror them all with `mirror --all-connections`)",
            connections.join(" ")
        );
    }
    eprintln!(
        "serving {} media until interrupted (Ctrl-C or SIGTERM)",
        args.media * connections.len()
    );
    super::stop::stop_signal().await;
    // What the server saw, for whoever measures a run against it.
    eprintln!(
        "{}",
        serde_json::to_string(&server.stats()).unwrap_or_default()
    );
    Ok(0)
}

pub fn print_summary(summary: &Summary, output: Output) {
    tracing::info!(target: EVENTS, "summary: {}", summary.recorded_json());
    if output.json {
        println!("{}", serde_json::to_string(summary).unwrap_or_default());
        return;
    }
    let problems = summary.failed.len() + summary.pending.len() + summary.errors.len();
    if output.quiet && problems == 0 {
        return;
    }
    let fit = super::terminal::for_stderr;
    eprint!("{}", fit(&summary_head(summary, output)));
    if summary.outcome == pipeline::Outcome::Interrupted {
        return;
    }
    if let Some(prune) = &summary.prune {
        super::export::print_prune(prune, output);
    }
    if let Some(export) = &summary.export {
        super::export::print_export(export, output);
    }
    eprint!("{}", fit(&summary_errors(summary)));
}

/// The summary as a person reads it (what a run without `--quiet` prints,
/// prune and export details aside): the body of the end ping.
pub fn summary_text(summary: &Summary) -> String {
    let mut text = summary_head(summary, Output::default());
    if summary.outcome != pipeline::Outcome::Interrupted {
        if let Some(prune) = &summary.prune {
            text.push_str(&prune.headline());
            text.push('\n');
        }
        text.push_str(&summary_errors(summary));
    }
    text
}

/// The summary's lines up to the prune and export details.
fn summary_head(summary: &Summary, output: Output) -> String {
    let mut text = String::new();
    if summary.outcome == pipeline::Outcome::Interrupted {
        text.push_str(&format!(
            "interrupted after {} downloaded ({}) in {:.1}s: what was verified is kept, transfers in flight are kept as .part files; run the same command again to resume\n",
            summary.downloaded,
            vault_mirror::human_bytes(summary.bytes),
            summary.seconds
        ));
        return text;
    }
    if !output.quiet {
        text.push_str(&format!(
            "mirrored {} into {}: {} downloaded ({}), {} already verified, {} pending, {} failed, in {:.1}s\n",
            vault_mirror::counted(summary.lists.len() as u64, "list"),
            summary.out,
            summary.downloaded,
            vault_mirror::human_bytes(summary.bytes),
            summary.already_verified,
            summary.pending.len(),
            summary.failed.len(),
            summary.seconds
        ));
    }
    const SHOWN: usize = 20;
    for (title, notes) in [("failed", &summary.failed), ("pending", &summary.pending)] {
        for item in notes.iter().take(SHOWN) {
            text.push_str(&format!(
                "  {title}: {}: {}\n",
                pipeline::display_name(&item.id, &item.label),
                item.reason
            ));
        }
        if notes.len() > SHOWN {
            text.push_str(&format!(
                "  … and {} more {title} (see `--json`)\n",
                notes.len() - SHOWN
            ));
        }
    }
    if output.quiet {
        return text;
    }
    if summary.store_retries > 0 {
        text.push_str(&format!(
            "  {} object-storage requests tried again after a transient failure\n",
            summary.store_retries
        ));
    }
    if summary.urls_resigned > 0 || summary.transfer_retries > 0 {
        text.push_str(&format!(
            "  {} URLs re-signed in {} batch calls ({} refused by the media host), {} transfer retries\n",
            summary.urls_resigned,
            summary.resign_calls,
            summary.expired_urls,
            summary.transfer_retries
        ));
    }
    if !summary.unavailable.is_empty() {
        text.push_str(&format!(
            "  {} variants are not downloadable upstream (removed or not stored by Vault+)\n",
            summary.unavailable.len()
        ));
    }
    for version in &summary.versions_kept {
        text.push_str(&format!(
            "  changed upstream: {}: the previous bytes are kept as {}\n",
            pipeline::display_name(&version.media_id, &version.label),
            version.local_path
        ));
    }
    if let Some(views) = &summary.views {
        for path in &views.left_alone {
            text.push_str(&format!(
                "  note: {path} is not a link or index vault-mirror made; left alone\n"
            ));
        }
    }
    text
}

fn summary_errors(summary: &Summary) -> String {
    summary
        .errors
        .iter()
        .map(|error| format!("  error: {error}\n"))
        .collect()
}

fn render_plan(plan: &Plan) -> String {
    let mut text = format!(
        "dry run: nothing was changed (no sync, no download, no database write)\n\
         plan for {}: {}, {} media, labels {}, {} transfers at a time\n",
        plan.out,
        vault_mirror::counted(plan.lists.len() as u64, "list"),
        plan.media,
        plan.quality,
        plan.jobs
    );
    let figure = |count: u64, noun: &str, bytes: Option<u64>| {
        let noun = if count == 1 {
            noun.trim_end_matches('s')
        } else {
            noun
        };
        let bytes = bytes.map(vault_mirror::human_bytes).unwrap_or_default();
        format!("{count:>6} {noun:<8} {bytes:>11}")
    };
    let mut resume = String::new();
    if plan.resume.variants > 0 {
        resume = format!(
            "  ({} resume from {} already on disk)",
            plan.resume.variants,
            vault_mirror::human_bytes(plan.resume.bytes)
        );
    }
    let rows = [
        (
            "download",
            figure(
                plan.download.variants,
                "variants",
                Some(plan.download.bytes),
            ),
            resume,
        ),
        (
            "skip",
            figure(plan.skip.variants, "variants", Some(plan.skip.bytes)),
            "  already verified on disk".to_owned(),
        ),
        (
            "re-sign",
            figure(plan.resign, "URLs", None),
            "  would expire before their transfer ends (estimated)".to_owned(),
        ),
        (
            "pending",
            figure(plan.pending, "variants", None),
            "  not stored by Vault+ yet".to_owned(),
        ),
        (
            "unavailable",
            figure(plan.unavailable, "variants", None),
            "  removed or not downloadable upstream".to_owned(),
        ),
        (
            "invalid",
            figure(plan.invalid, "variants", None),
            "  described in a way that cannot be fetched".to_owned(),
        ),
        (
            "prune",
            figure(plan.prune.variants, "files", Some(plan.prune.bytes)),
            "  of media gone from every list (kept unless --prune)".to_owned(),
        ),
    ];
    for (title, figures, note) in rows {
        text.push_str(&format!("  {title:<12}{figures}{note}\n"));
    }
    if plan.sync {
        text.push_str(
            "a real run first syncs each list (PUT sync), which may change its members\n",
        );
    }
    for error in &plan.errors {
        text.push_str(&format!("  error: {error}\n"));
    }
    text
}
