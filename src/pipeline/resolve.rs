//! Stage 5, resolve: `POST /v2/vault-plus/media/batch` in chunks of at most
//! 100 ids, just in time. Every run re-reads the metadata of all members,
//! so a change upstream is seen; what the API says is recorded, the plan
//! decides per variant, and transfers go to the download stage earliest
//! expiry first.
//!
//! [`Resigner`] gets fresh URLs for transfers whose URL expired or is
//! about to: requests arriving close together share one batch call.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::api::models::MediaItem;
use crate::api::{ApiError, BATCH_LIMIT};
use crate::archive::paths::part_path;
use crate::archive::space::{SpaceBudget, Verdict};
use crate::pipeline::plan::{Decision, Job, decide};
use crate::pipeline::queue::JobQueue;
use crate::pipeline::{Context, ItemNote, MirrorError};
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
        &settings.out,
        settings.mirror.min_free,
        settings.mirror.assume_free,
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
        let items = keep_asked(chunk, batch.items);
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

/// Keeps the items that answer ids we asked for, each id once: extra or
/// repeated items from a misbehaving server are dropped.
pub fn keep_asked(asked: &[String], items: Vec<MediaItem>) -> Vec<MediaItem> {
    let asked: HashSet<&str> = asked.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| {
            item.id
                .as_deref()
                .is_some_and(|id| asked.contains(id) && seen.insert(id.to_owned()))
        })
        .collect()
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
                &context.archive,
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
                    let already = context.archive.file_len(&part).unwrap_or(0);
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

pub fn note(media_id: &str, label: &str, reason: &str) -> ItemNote {
    ItemNote {
        id: media_id.to_owned(),
        label: label.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A fresh description of one media item, or why there is none.
pub type Refreshed = Result<Option<MediaItem>, Arc<ApiError>>;

type Request = (String, oneshot::Sender<Refreshed>);

/// Batches re-sign requests: the first request waits a moment for others,
/// then up to 100 ids go out in one `media/batch` call.
#[derive(Clone)]
pub struct Resigner {
    requests: mpsc::Sender<Request>,
}

/// How long the first re-sign request waits for company. Retries arrive
/// spread out in time; a short wait here turns many single-id calls into
/// few batch calls, and costs little on a path already waiting on a retry.
const GATHER: Duration = Duration::from_millis(150);

impl Resigner {
    pub fn spawn(context: Arc<Context>) -> Self {
        let (requests, mut incoming) = mpsc::channel::<Request>(1024);
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut waiting: HashMap<String, Vec<oneshot::Sender<Refreshed>>> = HashMap::new();
                waiting.entry(first.0).or_default().push(first.1);
                let deadline = tokio::time::Instant::now() + GATHER;
                while waiting.len() < BATCH_LIMIT {
                    match tokio::time::timeout_at(deadline, incoming.recv()).await {
                        Ok(Some((media_id, reply))) => {
                            waiting.entry(media_id).or_default().push(reply)
                        }
                        _ => break,
                    }
                }
                let ids: Vec<String> = waiting.keys().cloned().collect();
                context
                    .counters
                    .resign_calls
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let answer = context.api.media_batch(&ids).await.map_err(Arc::new);
                let mut found: HashMap<String, MediaItem> = match &answer {
                    Ok(batch) => keep_asked(&ids, batch.items.clone())
                        .into_iter()
                        .filter_map(|item| Some((item.id.clone()?, item)))
                        .collect(),
                    Err(_) => HashMap::new(),
                };
                for (media_id, replies) in waiting {
                    let result = match &answer {
                        Ok(_) => Ok(found.remove(&media_id)),
                        Err(error) => Err(error.clone()),
                    };
                    for reply in replies {
                        let _ = reply.send(result.clone());
                    }
                }
            }
        });
        Resigner { requests }
    }

    /// A fresh description of `media_id` (with new signed URLs), `None` if
    /// Vault+ no longer holds it.
    pub async fn refresh(&self, media_id: &str) -> Refreshed {
        let (reply, answer) = oneshot::channel();
        if self
            .requests
            .send((media_id.to_owned(), reply))
            .await
            .is_err()
        {
            return Ok(None);
        }
        answer.await.unwrap_or(Ok(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asked_ids_once() {
        let item = |id: &str| MediaItem {
            id: Some(id.into()),
            ..MediaItem::default()
        };
        let kept = keep_asked(
            &["1".into(), "2".into()],
            vec![item("1"), item("3"), item("1"), item("2")],
        );
        let ids: Vec<_> = kept.iter().map(|i| i.id.clone().unwrap()).collect();
        assert_eq!(ids, ["1", "2"]);
    }
}
