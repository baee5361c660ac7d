//! Stage 8, finish: the offline archive after the transfers — the list
//! views brought in step with membership, then `--prune` and `--export`
//! when asked for, and the versions this run kept.
//!
//! Invariants: with `--dry-run` nothing changes on disk (the prune only
//! lists); views are updated before the prune, so no view links to media
//! about to be deleted; a problem here is reported in the summary's
//! `errors` (exit 3) and never hides the run's transfers, except a broken
//! database, which stops the run as everywhere else.

use std::sync::Arc;

use crate::archive::ArchiveError;
use crate::archive::export::{ExportSummary, export};
use crate::archive::prune::{PruneSummary, prune};
use crate::archive::views::{NO_LINKS_NOTE, ViewsSummary, update_views};
use crate::pipeline::context::{Context, MirrorError};
use crate::pipeline::remote::Remote;
use crate::storage::export::export_objects;
use crate::storage::prune::prune_objects;
use crate::storage::views::update_object_views;
use crate::store::VersionRecord;

/// What the finish stage did.
#[derive(Debug, Default)]
pub struct Finished {
    pub views: Option<ViewsSummary>,
    pub prune: Option<PruneSummary>,
    pub export: Option<ExportSummary>,
    pub versions_kept: Vec<VersionRecord>,
    pub errors: Vec<String>,
}

/// Runs the archive steps off the async threads (they are file-system work).
pub async fn finish(context: &Arc<Context>, run_started_at: i64) -> Result<Finished, MirrorError> {
    if let Some(remote) = &context.remote {
        return finish_remote(context, remote, run_started_at).await;
    }
    let context = context.clone();
    tokio::task::spawn_blocking(move || finish_blocking(&context, run_started_at))
        .await
        .map_err(|error| MirrorError::Io {
            context: "the archive stage ended abnormally".into(),
            source: std::io::Error::other(error),
        })?
}

fn finish_blocking(context: &Context, run_started_at: i64) -> Result<Finished, MirrorError> {
    let settings = &context.settings;
    let mirror = &settings.mirror;
    let out = &settings.out;
    let store = &context.store;
    let mut finished = Finished {
        versions_kept: store.versions_kept_since(run_started_at)?,
        ..Finished::default()
    };

    if !mirror.dry_run {
        match update_views(store, out) {
            Ok(views) => {
                // Once per run, not per file or view.
                if views.indexes > 0 {
                    context.reporter.on_note(NO_LINKS_NOTE);
                }
                finished.views = Some(views);
            }
            Err(error) => report(
                context,
                &mut finished.errors,
                "updating the list views",
                error,
            )?,
        }
    }
    if mirror.prune {
        match prune(
            store,
            out,
            mirror.max_delete,
            mirror.dry_run,
            crate::now_ms(),
        ) {
            Ok(summary) => {
                if summary.refused {
                    finished.errors.push(summary.headline());
                }
                finished.prune = Some(summary);
            }
            Err(error) => report(context, &mut finished.errors, "pruning", error)?,
        }
    }
    if mirror.export && !mirror.dry_run {
        match export(store, out, crate::now_ms()) {
            Ok(summary) => finished.export = Some(summary),
            Err(error) => report(context, &mut finished.errors, "exporting the index", error)?,
        }
    }
    Ok(finished)
}

/// On object storage: the list views are index files (`storage::views`),
/// `--prune` deletes objects (`storage::prune`) and `--export` writes its
/// three files as objects (`storage::export`).
async fn finish_remote(
    context: &Context,
    remote: &Remote,
    run_started_at: i64,
) -> Result<Finished, MirrorError> {
    let mirror = &context.settings.mirror;
    let mut finished = Finished {
        versions_kept: context.store.versions_kept_since(run_started_at)?,
        ..Finished::default()
    };
    if !mirror.dry_run {
        match update_object_views(&remote.archive, &context.store).await {
            Ok(views) => finished.views = Some(views),
            Err(error) => note(
                context,
                &mut finished.errors,
                "updating the list views",
                error,
            ),
        }
    }
    if mirror.prune {
        let pruned = prune_objects(
            &remote.archive,
            &context.store,
            mirror.max_delete,
            mirror.dry_run,
            crate::now_ms(),
        )
        .await;
        match pruned {
            Ok(summary) => {
                if summary.refused {
                    finished.errors.push(summary.headline());
                }
                finished.prune = Some(summary);
            }
            Err(error) => note(context, &mut finished.errors, "pruning", error),
        }
    }
    if mirror.export && !mirror.dry_run {
        let staging = context.settings.out.join(".vault-mirror").join("export");
        match export_objects(&remote.archive, &context.store, &staging, crate::now_ms()).await {
            Ok(summary) => finished.export = Some(summary),
            Err(error) => note(context, &mut finished.errors, "exporting the index", error),
        }
    }
    Ok(finished)
}

/// A problem of the finish stage on object storage: noted, the run goes on.
fn note(context: &Context, errors: &mut Vec<String>, what: &str, error: impl std::fmt::Display) {
    let text = format!("{what}: {error}");
    context.reporter.on_note(&text);
    errors.push(text);
}

/// A broken database stops the run; any other archive problem is noted.
fn report(
    context: &Context,
    errors: &mut Vec<String>,
    what: &str,
    error: ArchiveError,
) -> Result<(), MirrorError> {
    match error {
        ArchiveError::Store(error) => Err(error.into()),
        error => {
            let text = format!("{what}: {error}");
            context.reporter.on_note(&text);
            errors.push(text);
            Ok(())
        }
    }
}
