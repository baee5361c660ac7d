//! Stage 5, resolve: `POST /v2/vault-plus/media/batch` in chunks of at most
//! 100 ids, just in time. Every run re-reads the metadata of all members,
//! so a change upstream is seen; what the API says is recorded, the plan
//! decides per variant, and transfers go to the queue earliest expiry
//! first.

use std::sync::Arc;

use crate::api::BATCH_LIMIT;
use crate::api::models::MediaItem;
use crate::archive::paths::part_path;
use crate::archive::space::{SpaceBudget, Verdict};
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::pipeline::outcome::{ItemNote, note};
use crate::pipeline::plan::{Decision, Job, decide};
use crate::pipeline::queue::JobQueue;
use crate::store::{LocalState, MediaRecord, RemoteVariant};

/// What resolving found, besides the jobs it sent on.
#[derive(Debug, Default)]
pub struct Resolved {
    pub variants_seen: u64,
    pub already_verified: u64,
    pub pending: Vec<ItemNote>,
    pub failed: Vec<ItemNote>,
    pub unavailable: Vec<ItemNote>,
    /// Every variant label the API described, wanted or not (to tell a
    /// `--quality` typo from an empty vault).
    pub labels_seen: std::collections::BTreeSet<String>,
}

pub async fn resolve_all(
    context: Arc<Context>,
    media_ids: Vec<String>,
    queue: &JobQueue,
) -> Result<Resolved, MirrorError> {
    let mut resolved = Resolved::default();
    let settings = &context.settings;
    let mut budget = SpaceBudget::new(
        &settings.local,
        settings.mirror.min_free,
        // Object storage has no free space to run out of.
        settings
            .mirror
            .assume_free
            .or(settings.archive.bucket().map(|_| u64::MAX)),
    );
    for chunk in media_ids.chunks(BATCH_LIMIT) {
        let batch = match context.api.media_batch(chunk).await {
            Ok(batch) => batch,
            Err(error) if error.is_auth() => return Err(error.into()),
            Err(error) => {
                for media_id in chunk {
                    resolved.failed.push(note(
                        media_id,
                        "*",
                        &format!("batch lookup failed: {error}"),
                    ));
                }
                continue;
            }
        };
        for reason in &batch.malformed {
            context.reporter.on_note(&format!(
                "skipped a malformed item in a batch answer: {reason}"
            ));
        }
        let items = batch.items;
        let planned = record_items(&context, &items, &mut resolved, &mut budget)?;
        for media_id in chunk {
            if !items
                .iter()
                .any(|item| item.id.as_deref() == Some(media_id.as_str()))
            {
                resolved.pending.push(note(
                    media_id,
                    "*",
                    "not cached by Vault+ yet (absent from the batch answer)",
                ));
            }
        }
        let bytes: u64 = planned.iter().map(|job| job.size).sum();
        context.reporter.on_queued(planned.len() as u64, bytes);
        queue.push(planned).await;
    }
    Ok(resolved)
}

/// Records a batch's items and returns the jobs the plan wants.
fn record_items(
    context: &Context,
    items: &[MediaItem],
    resolved: &mut Resolved,
    budget: &mut SpaceBudget,
) -> Result<Vec<Job>, MirrorError> {
    let quality = &context.settings.mirror.quality;
    let media: Vec<MediaRecord> = items.iter().filter_map(media_record).collect();
    let mut variants = Vec::new();
    for item in items {
        let Some(media_id) = item.id.as_deref() else {
            continue;
        };
        for (label, variant) in &item.media {
            variants.push(remote_variant(media_id, label, variant));
        }
    }
    // The answer's time, for the URLs' lifetimes: before the database write.
    let server_now = context.api.clock().now_ms();
    let locals = context
        .store
        .record_remote(&media, &variants, crate::now_ms())?;
    let mut jobs = Vec::new();
    let mut index = 0;
    for item in items {
        let Some(media_id) = item.id.as_deref() else {
            continue;
        };
        for (label, variant) in &item.media {
            let local = &locals[index];
            index += 1;
            if !resolved.labels_seen.contains(label) {
                resolved.labels_seen.insert(label.clone());
            }
            if !quality.wants(label) {
                continue;
            }
            resolved.variants_seen += 1;
            let decision = decide(
                context.archived(),
                media_id,
                label,
                variant,
                local,
                server_now,
            );
            if local.state == LocalState::Verified && !matches!(decision, Decision::AlreadyVerified)
            {
                // The file is gone or not the size it was verified at: the
                // database says so at once (views and status follow it).
                context.store.mark_unfinished(
                    media_id,
                    label,
                    LocalState::Missing,
                    "the verified file is gone or was changed on disk",
                    crate::now_ms(),
                )?;
            }
            match decision {
                Decision::Fetch(job) => {
                    let part = part_path(&job.relative_path);
                    let already = context.folder.file_len(&part).unwrap_or(0);
                    match budget.plan(job.size, already) {
                        Verdict::Fits => jobs.push(*job),
                        Verdict::Warn(warning) => {
                            context.reporter.on_note(&warning);
                            jobs.push(*job);
                        }
                        Verdict::Refused(reason) => {
                            resolved.failed.push(note(media_id, label, &reason))
                        }
                    }
                }
                Decision::AlreadyVerified => resolved.already_verified += 1,
                Decision::Pending(reason) => resolved.pending.push(note(media_id, label, &reason)),
                Decision::Unavailable(reason) => {
                    resolved.unavailable.push(note(media_id, label, &reason))
                }
                Decision::Invalid(reason) => resolved.failed.push(note(media_id, label, &reason)),
            }
        }
    }
    Ok(jobs)
}

fn media_record(item: &MediaItem) -> Option<MediaRecord> {
    Some(MediaRecord {
        media_id: item.id.clone()?,
        media_type: item.media_type.clone(),
        duration: item.duration,
    })
}

fn remote_variant(
    media_id: &str,
    label: &str,
    variant: &crate::api::models::Variant,
) -> RemoteVariant {
    RemoteVariant {
        media_id: media_id.to_owned(),
        label: label.to_owned(),
        status: variant.status.clone(),
        size_bytes: variant.size_bytes,
        content_type: variant.content_type.clone(),
        created_at: variant.created_at,
        stored_at: variant.stored_at,
    }
}
