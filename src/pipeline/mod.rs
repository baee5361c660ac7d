//! The mirror pipeline, one module per stage, in the order data flows:
//!
//! ```text
//! lists ─▶ sync ─▶ membership ─▶ resolve ─▶ queue ─▶ transfer ─▶ finish
//!                                 (plan)    (resign)  (attempt, part, writer)
//! ```
//!
//! This file is the driver only: [`mirror`] runs the stages. Stages before
//! `resolve` run one after another; `resolve` feeds the transfers through
//! the [`queue`], so transfers start as soon as the first batch is
//! resolved and signed URLs are fresh when used. What the stages share
//! lives in [`context`]; what a run reports, in [`outcome`]. One failed
//! item is recorded and the run goes on; only a refused key, an
//! unreachable API, a full disk or a broken database stop a run.
//!
//! Beside the stages: the runs of the other commands that change an
//! archive ([`verify`], [`export`]) and a run of [`many`] connections,
//! each returning a typed report the binary prints.

pub mod bandwidth;
pub mod bucket;
pub mod context;
pub mod describe;
pub mod dry_run;
pub mod error;
pub mod export;
pub mod finish;
pub mod leased;
pub mod limits;
pub mod lists;
pub mod many;
pub mod membership;
pub mod outcome;
pub mod plan;
pub mod preflight;
pub mod queue;
pub mod repair;
pub mod resign;
pub mod resolve;
pub mod sync;
pub mod transfer;
pub mod verify;

pub use context::{Context, Counters};
pub use error::MirrorError;
pub use limits::Limits;
pub use outcome::{Ended, ItemNote, ListSummary, Outcome, Summary, display_name};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::api::ApiClient;
use crate::archive::{Archive, ArchiveDir};
use crate::pipeline::bucket::BucketRun;
use crate::report::{Reporter, Stage};
use crate::settings::Settings;
use crate::store::Store;

/// What a run covers.
enum Scope {
    /// The selected lists, through every stage.
    Lists,
    /// These media only, from `resolve` on (no list, sync or membership
    /// stage): `verify --repair` fetching what it found broken.
    Media(Vec<String>),
}

/// Runs the whole pipeline once.
pub async fn mirror(
    settings: &Settings,
    reporter: Arc<dyn Reporter>,
) -> Result<Summary, MirrorError> {
    let limits = Limits::new(settings);
    run(
        settings,
        reporter,
        Scope::Lists,
        std::future::pending(),
        limits,
    )
    .await
}

/// [`mirror`], until `stop` resolves with an exit code (a stop signal):
/// then the transfers in flight are dropped — their bytes stay in `.part`
/// files, which the next run resumes — the run is recorded as
/// `interrupted`, and the summary says what was verified before the stop.
pub async fn mirror_until(
    settings: &Settings,
    reporter: Arc<dyn Reporter>,
    stop: impl std::future::Future<Output = i32>,
) -> Result<Summary, MirrorError> {
    run(
        settings,
        reporter,
        Scope::Lists,
        stop,
        Limits::new(settings),
    )
    .await
}

/// [`mirror_until`] as one of several runs of a process (one per
/// connection): the transfer slots and the `--limit-rate` budget are
/// `limits`, shared with the other runs; the API client is this run's own.
pub async fn mirror_sharing(
    settings: &Settings,
    reporter: Arc<dyn Reporter>,
    stop: impl std::future::Future<Output = i32>,
    limits: Limits,
) -> Result<Summary, MirrorError> {
    run(settings, reporter, Scope::Lists, stop, limits).await
}

/// Fetches the variants of `media_ids` that `settings.mirror.quality`
/// selects and that are not verified on disk, as `mirror` would (fresh
/// URLs, the same checks and commit); the run is recorded as `repair`.
pub async fn refetch(
    settings: &Settings,
    media_ids: Vec<String>,
    reporter: Arc<dyn Reporter>,
) -> Result<Summary, MirrorError> {
    run(
        settings,
        reporter,
        Scope::Media(media_ids),
        std::future::pending(),
        Limits::new(settings),
    )
    .await
}

async fn run(
    settings: &Settings,
    reporter: Arc<dyn Reporter>,
    scope: Scope,
    stop: impl std::future::Future<Output = i32>,
    limits: Limits,
) -> Result<Summary, MirrorError> {
    let started = Instant::now();
    let started_ms = crate::now_ms();
    let api = ApiClient::new(settings.api_config()?, reporter.clone())?;
    crate::durable::create_dir_all(&settings.local).map_err(|source| MirrorError::Io {
        context: format!(
            "cannot create the archive folder {}",
            settings.local.display()
        ),
        source,
    })?;
    let command = match scope {
        Scope::Lists => "mirror",
        Scope::Media(_) => "repair",
    };
    let (bucket, lease) = match BucketRun::open(settings, command, true, reporter.as_ref()).await? {
        Some((run, lease)) => (Some(run), lease),
        None => (None, None),
    };
    let archive = match &bucket {
        Some(run) => Archive::Bucket(run.bucket.clone()),
        None => Archive::Disk(Arc::new(ArchiveDir::open(&settings.local))),
    };
    let opened = Store::open(&settings.db)
        .map_err(MirrorError::from)
        .and_then(|store| {
            store
                .begin_run(command, crate::now_ms())
                .map(|id| (store, id))
                .map_err(MirrorError::from)
        });
    let (store, run_id) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            if let Some(lease) = lease {
                lease.release().await;
            }
            return Err(error);
        }
    };
    let context = Arc::new(Context {
        settings: settings.clone(),
        api,
        store,
        archive,
        folder: ArchiveDir::open(&settings.local),
        bucket,
        reporter,
        counters: Counters::default(),
        limits,
    });
    // Dropping the stages on a stop is safe: the transfers, spawned by the
    // queue's dispatch, are aborted with it (each stops at an await, as a
    // dropped future does), a `.part` keeps every byte written (its buffer
    // is flushed on drop), a file reaches its final path only whole, and
    // each database write is one transaction.
    let result = tokio::select! {
        result = run_stages(&context, run_id, scope) => result,
        code = stop => interrupted_summary(&context, run_id, started_ms, code),
    }
    .map(|summary| Summary { command, ..summary });
    let result = record_end(&context, run_id, result, started, started_ms);
    // After the run is recorded, so the snapshot holds its summary.
    let result = finish_bucket_run(&context, result).await;
    if let Some(lease) = lease {
        lease.release().await;
    }
    result
}

/// Records how run `run_id` ended (its summary, or its failure), with
/// its times filled in.
fn record_end(
    context: &Context,
    run_id: i64,
    result: Result<Summary, MirrorError>,
    started: Instant,
    started_ms: i64,
) -> Result<Summary, MirrorError> {
    let now = crate::now_ms();
    match result {
        Ok(mut summary) => {
            summary.seconds = started.elapsed().as_secs_f64();
            let first_byte_at = context.counters.first_byte_at.load(Ordering::Relaxed);
            summary.first_byte_seconds =
                (first_byte_at > 0).then(|| (first_byte_at - started_ms).max(0) as f64 / 1000.0);
            let text = summary.recorded_json();
            let outcome = match summary.outcome {
                Outcome::Complete => "complete",
                Outcome::Partial => "partial",
                Outcome::Interrupted => "interrupted",
            };
            context
                .store
                .finish_run(run_id, outcome, summary.exit_code, &text, now)
                .map(|_| summary)
                .map_err(MirrorError::from)
        }
        Err(error) => {
            // Best effort: the run's own failure is what the user must see.
            let _ = context.store.finish_run(
                run_id,
                "failed",
                error.exit_code().code(),
                &serde_json::json!({ "error": error.to_string() }).to_string(),
                now,
            );
            Err(error)
        }
    }
}

/// On object storage, the end of every run (see [`BucketRun::finish`]):
/// a failure there is the run's failure, unless the run failed already.
async fn finish_bucket_run(
    context: &Context,
    result: Result<Summary, MirrorError>,
) -> Result<Summary, MirrorError> {
    let Some(run) = &context.bucket else {
        return result;
    };
    let finished = run.finish(&context.store).await.map_err(MirrorError::from);
    match (result, finished) {
        (Ok(_), Err(error)) => Err(error),
        (Ok(summary), Ok(())) => Ok(Summary {
            // The end of the run's own retries count too.
            store_retries: run.bucket.retries(),
            ..summary
        }),
        (result, _) => result,
    }
}

/// The summary of a run that a stop signal ended: what the database says
/// was verified since the run began (the stages' own figures went with
/// them).
fn interrupted_summary(
    context: &Context,
    run_id: i64,
    started_at: i64,
    exit_code: i32,
) -> Result<Summary, MirrorError> {
    let (downloaded, bytes) = context.store.verified_since(started_at)?;
    Ok(Summary {
        outcome: Outcome::Interrupted,
        exit_code,
        downloaded,
        errors: vec!["interrupted by a signal: run the same command again to resume".into()],
        bytes,
        ..Summary::of_run(context, run_id)
    })
}

async fn run_stages(
    context: &Arc<Context>,
    run_id: i64,
    scope: Scope,
) -> Result<Summary, MirrorError> {
    let started_at = crate::now_ms();
    let mut errors = Vec::new();
    let mut selected_lists = Vec::new();
    let (list_summaries, media_ids) = match scope {
        Scope::Lists => {
            if let Some(run) = &context.bucket {
                run.mend(&context.store, context.reporter.as_ref()).await?;
            }
            let selected = lists::select(context).await?;
            if context.settings.mirror.sync {
                sync::sync_lists(context, &selected, &mut errors).await?;
            }
            let list_summaries = membership::read_members(context, &selected, &mut errors).await?;
            let list_ids: Vec<String> = selected.iter().map(|list| list.list_id.clone()).collect();
            let media_ids = context.store.current_members(&list_ids)?;
            context.reporter.on_stage(
                Stage::Resolve,
                &format!(
                    "{} media in {}",
                    media_ids.len(),
                    crate::counted(selected.len() as u64, "list")
                ),
            );
            selected_lists = selected;
            (list_summaries, media_ids)
        }
        Scope::Media(media_ids) => {
            context
                .reporter
                .on_stage(Stage::Resolve, &format!("{} media", media_ids.len()));
            (Vec::new(), media_ids)
        }
    };

    let transfers = transfer::Transfers::new(context.clone())?;
    let mut round = transfer_round(context, &transfers, media_ids).await?;
    if let Some(limit) = context.settings.mirror.wait_pending {
        wait_for_pending(context, &transfers, &mut round, limit).await?;
    }
    // Each new media's own date and shape, once in its life, before the
    // finish stage dates the files and writes views with them.
    let dates = match context.settings.mirror.dry_run {
        true => None,
        false => Some(describe::describe(context, &selected_lists, &mut errors).await?),
    };

    // A label nothing carries is most likely a typo: the run is not
    // complete, whatever else it did (exit 3).
    errors.extend(
        context
            .settings
            .mirror
            .quality
            .unmatched(&round.labels_seen),
    );
    let mut summary = Summary {
        lists: list_summaries,
        variants_seen: round.variants_seen,
        downloaded: round.downloaded,
        already_verified: round.already_verified,
        pending: round.pending,
        failed: round.failed,
        unavailable: round.unavailable,
        errors,
        bytes: round.bytes,
        dates,
        ..Summary::of_run(context, run_id)
    };
    // The offline archive: views in step with membership, --prune, --export.
    let archive = finish::finish(context, started_at).await?;
    summary.dated_files = archive.dated_files;
    summary.views = archive.views;
    summary.template_views = archive.template_views;
    summary.sidecars = archive.sidecars;
    summary.prune = archive.prune;
    summary.export = archive.export;
    summary.versions_kept = archive.versions_kept;
    summary.errors.extend(archive.errors);
    summary.pending.sort();
    summary.failed.sort();
    summary.unavailable.sort();
    if !summary.pending.is_empty() || !summary.failed.is_empty() || !summary.errors.is_empty() {
        summary.outcome = Outcome::Partial;
        summary.exit_code = 3;
    }
    Ok(summary)
}

/// What one pass of resolve + download did.
#[derive(Debug, Default)]
struct Round {
    variants_seen: u64,
    already_verified: u64,
    downloaded: u64,
    bytes: u64,
    pending: Vec<ItemNote>,
    failed: Vec<ItemNote>,
    unavailable: Vec<ItemNote>,
    labels_seen: std::collections::BTreeSet<String>,
}

/// Resolves `media_ids` and downloads what they need; the two stages run
/// together, joined by the queue.
async fn transfer_round(
    context: &Arc<Context>,
    transfers: &transfer::Transfers,
    media_ids: Vec<String>,
) -> Result<Round, MirrorError> {
    let jobs = context.settings.mirror.jobs.max(1);
    let queue = queue::JobQueue::new(jobs);
    let resolver = async {
        let resolved = resolve::resolve_all(context.clone(), media_ids, &queue).await;
        if resolved.is_err() {
            queue.abandon();
        } else {
            queue.close();
            context.reporter.on_planned();
        }
        resolved
    };
    let dispatcher = queue::dispatch(transfers, &queue, jobs);
    let (resolved, finished) = tokio::join!(resolver, dispatcher);
    let resolved = resolved?;
    let mut round = Round {
        variants_seen: resolved.variants_seen,
        already_verified: resolved.already_verified,
        pending: resolved.pending,
        failed: resolved.failed,
        unavailable: resolved.unavailable,
        labels_seen: resolved.labels_seen,
        ..Round::default()
    };
    for ended in finished {
        match ended {
            Ended::Verified { received } => {
                round.downloaded += 1;
                round.bytes += received;
            }
            Ended::Failed { note, received } => {
                round.bytes += received;
                round.failed.push(note);
            }
            Ended::Pending { note, received } => {
                round.bytes += received;
                round.pending.push(note);
            }
            Ended::Fatal(error) => return Err(error),
            Ended::Crashed(reason) => round.failed.push(ItemNote {
                id: String::new(),
                label: String::new(),
                reason: format!("internal error: {reason}"),
            }),
        }
    }
    Ok(round)
}

/// `--wait-pending`: polls (status, then a batch of the pending ids) with
/// growing pauses, downloading variants as they become stored, until none
/// is pending or the time is up.
async fn wait_for_pending(
    context: &Arc<Context>,
    transfers: &transfer::Transfers,
    round: &mut Round,
    limit: std::time::Duration,
) -> Result<(), MirrorError> {
    let deadline = Instant::now() + limit;
    let mut pause = context.settings.network.poll_interval;
    while !round.pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        context.reporter.on_stage(
            Stage::Resolve,
            &format!(
                "waiting for {} pending variants ({}s left)",
                round.pending.len(),
                left.as_secs()
            ),
        );
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(60));
        match context.api.status().await {
            Ok(status) => {
                if let Some(pending) = status.pending_count {
                    context.reporter.on_stage(
                        Stage::Resolve,
                        &format!("Vault+ reports {pending} variants pending"),
                    );
                }
            }
            Err(error) if error.is_auth() => return Err(error.into()),
            Err(_) => {}
        }
        let mut ids: Vec<String> = round.pending.iter().map(|note| note.id.clone()).collect();
        ids.dedup();
        let next = transfer_round(context, transfers, ids).await?;
        round.downloaded += next.downloaded;
        round.bytes += next.bytes;
        round.failed.extend(next.failed);
        round.unavailable.extend(next.unavailable);
        round.labels_seen.extend(next.labels_seen);
        round.pending = next.pending;
    }
    Ok(())
}
