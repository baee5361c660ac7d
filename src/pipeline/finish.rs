//! Stage 8, finish: the offline archive after the transfers — each file
//! dated as its media (`file_dates`), the list views brought in step with membership, then `--prune` and `--export`
//! when asked for, and the versions this run kept. One path for both
//! backends ([`Archive`]); only the views differ in kind (links on a disk
//! that makes them, index files elsewhere).
//!
//! Invariants: with `--dry-run` nothing changes in the archive (the prune
//! only lists); views are updated before the prune, so no view names
//! media about to be deleted; a problem here is reported in the summary's
//! `errors` (exit 3) and never hides the run's transfers, except a broken
//! database, which stops the run as everywhere else, on either backend.

use std::sync::Arc;

use crate::archive::export::{ExportSummary, export};
use crate::archive::file_dates::{self, DatedFiles};
use crate::archive::prune::{PruneSummary, prune};
use crate::archive::sidecars::{SidecarsSummary, update_sidecars};
use crate::archive::template_views::{self, Owner, TemplateViewsSummary};
use crate::archive::views::{NO_LINKS_NOTE, ViewsSummary, update_views};
use crate::archive::{Archive, ArchiveError};
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::store::VersionRecord;

/// What the finish stage did.
#[derive(Debug, Default)]
pub struct Finished {
    pub dated_files: Option<DatedFiles>,
    pub views: Option<ViewsSummary>,
    pub template_views: Option<TemplateViewsSummary>,
    pub sidecars: Option<SidecarsSummary>,
    pub prune: Option<PruneSummary>,
    pub export: Option<ExportSummary>,
    pub versions_kept: Vec<VersionRecord>,
    pub errors: Vec<String>,
}

/// The archive steps after the transfers.
pub async fn finish(context: &Arc<Context>, run_started_at: i64) -> Result<Finished, MirrorError> {
    let mirror = &context.settings.mirror;
    let archive = &context.archive;
    let store = &context.store;
    let mut finished = Finished {
        versions_kept: store.versions_kept_since(run_started_at)?,
        ..Finished::default()
    };
    if !mirror.dry_run && context.settings.layout.file_dates {
        match date_files(context).await {
            Ok(dated) => finished.dated_files = Some(dated),
            Err(error) => report(context, &mut finished.errors, "dating the files", error)?,
        }
    }
    if !mirror.dry_run {
        match views(context).await {
            Ok(views) => {
                // Once per run, not per file or view.
                if views.indexes > 0 && archive.may_link() {
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
            archive,
            store,
            mirror.max_delete,
            mirror.dry_run,
            crate::now_ms(),
        )
        .await
        {
            Ok(summary) => {
                if summary.refused {
                    finished.errors.push(summary.headline());
                }
                finished.prune = Some(summary);
            }
            Err(error) => report(context, &mut finished.errors, "pruning", error)?,
        }
    }
    // After the prune: a view by template names every verified file
    // present, so none a prune deleted.
    if !mirror.dry_run {
        match template_views(context).await {
            Ok(views) => finished.template_views = Some(views).filter(|views| views.views > 0),
            Err(error) => report(
                context,
                &mut finished.errors,
                "updating the views by template",
                error,
            )?,
        }
    }
    // Before the export, so SHA256SUMS lists them.
    if !mirror.dry_run && context.settings.layout.sidecars {
        match update_sidecars(archive, store).await {
            Ok(sidecars) => finished.sidecars = Some(sidecars),
            Err(error) => report(context, &mut finished.errors, "writing the sidecars", error)?,
        }
    }
    if mirror.export && !mirror.dry_run {
        match export(archive, store, crate::now_ms()).await {
            Ok(summary) => finished.export = Some(summary),
            Err(error) => report(context, &mut finished.errors, "exporting the index", error)?,
        }
    }
    Ok(finished)
}

/// Each verified file dated as its media, on the disk off the async
/// threads; on object storage an object's time cannot be set (the date is
/// in the manifest and the sidecars), so nothing is done there.
async fn date_files(context: &Arc<Context>) -> Result<DatedFiles, ArchiveError> {
    let Archive::Disk(dir) = &context.archive else {
        return Ok(DatedFiles::default());
    };
    let (dir, context) = (dir.clone(), context.clone());
    tokio::task::spawn_blocking(move || file_dates::date_files(&dir, &context.store))
        .await
        .map_err(|error| ArchiveError::Io(std::io::Error::other(error)))?
}

/// The views, on the disk off the async threads (they are file-system work).
async fn views(context: &Arc<Context>) -> Result<ViewsSummary, ArchiveError> {
    let context = context.clone();
    match &context.archive {
        Archive::Disk(_) => {
            let out = context.folder.path().to_owned();
            tokio::task::spawn_blocking(move || update_views(&context.store, &out))
                .await
                .map_err(|error| ArchiveError::Io(std::io::Error::other(error)))?
        }
        Archive::Bucket(_) => {
            crate::archive::views::update_index_views(&context.archive, &context.store).await
        }
    }
}

/// The views by template (`[[views]]`): links on a disk (off the async
/// threads), indexes on object storage.
async fn template_views(context: &Arc<Context>) -> Result<TemplateViewsSummary, ArchiveError> {
    let settings = &context.settings;
    let owner = Owner {
        connection: settings.connection_id.clone().unwrap_or_default(),
        username: settings.layout.username.clone().unwrap_or_default(),
    };
    match &context.archive {
        Archive::Disk(_) => {
            let context = context.clone();
            tokio::task::spawn_blocking(move || {
                let out = context.folder.path();
                template_views::update_disk(
                    &context.store,
                    out,
                    &context.settings.layout.views,
                    &owner,
                )
            })
            .await
            .map_err(|error| ArchiveError::Io(std::io::Error::other(error)))?
        }
        Archive::Bucket(_) => {
            template_views::update_bucket(
                &context.archive,
                &context.store,
                &settings.layout.views,
                &owner,
            )
            .await
        }
    }
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
            let text = format!("{what}: {}", crate::report::chain(&error));
            context.reporter.on_note(&text);
            errors.push(text);
            Ok(())
        }
    }
}
