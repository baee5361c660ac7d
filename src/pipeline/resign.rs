//! Every part of re-signing: when a signed URL is too close to its
//! expiry for its transfer (by the server's clock and the transfer rate
//! measured so far), how many queued jobs are worth re-signing in the same
//! call, the batch call itself, and the batcher that lets transfers whose
//! URL was refused share one call.
//!
//! Invariants: a URL is never judged stale before half its lifetime is
//! spent, so a fresh URL is never re-signed; a URL without a trusted
//! lifetime is re-signed only when the media host refuses it; re-signing
//! never costs more than one batch call per hundred media ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::api::models::MediaItem;
use crate::api::{ApiError, BATCH_LIMIT};
use crate::archive::paths::part_path;
use crate::pipeline::context::Context;
use crate::pipeline::outcome::{Ended, ItemNote, display_name, note};
use crate::pipeline::plan::{Decision, Job, decide};
use crate::store::{LocalState, LocalVariant};

/// Until transfers measure better, assume this rate per transfer.
pub const ASSUMED_RATE: f64 = 512.0 * 1024.0;

/// Transfer rate measured over the run, for expiry estimates: bytes over
/// the time attempts took, so it is a per-transfer rate whatever the
/// concurrency.
#[derive(Default)]
pub struct Throughput {
    pub bytes: AtomicU64,
    micros: AtomicU64,
    attempts: AtomicU64,
}

impl Throughput {
    pub fn record(&self, bytes: u64, took: Duration) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes per second one transfer can expect.
    pub fn per_transfer(&self) -> f64 {
        let bytes = self.bytes.load(Ordering::Relaxed) as f64;
        let seconds = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        if self.attempts.load(Ordering::Relaxed) < 3 || seconds < 0.05 {
            return ASSUMED_RATE;
        }
        (bytes / seconds).max(1024.0)
    }
}

/// Re-signing for one run: shared by the queue (before a job starts) and
/// the transfers (when the media host refuses a URL).
pub struct Resign {
    context: Arc<Context>,
    batcher: Resigner,
    /// The rate transfers measured, for "would it expire before the end".
    pub throughput: Throughput,
}

impl Resign {
    pub fn new(context: Arc<Context>) -> Self {
        Resign {
            batcher: Resigner::spawn(context.clone()),
            context,
            throughput: Throughput::default(),
        }
    }

    /// `Some(threshold)` (ms) when the job's URL has less than that left
    /// by the server's clock and must be re-signed before its transfer.
    /// A URL without a trusted lifetime never is: it is re-signed only
    /// when the media host refuses it.
    pub fn threshold(&self, job: &Job) -> Option<i64> {
        let lifetime = job.lifetime.as_ref()?;
        let network = &self.context.settings.network;
        let needed = job.size as f64 / self.throughput.per_transfer();
        let wanted = ((network.expiry_margin.as_secs_f64() + needed) * 1000.0) as i64;
        // Never more than half the URL's whole lifetime: a fresh URL is never
        // stale, however short-lived URLs are (a transfer longer than a URL's
        // life is re-signed when refused, and resumes).
        let threshold = wanted.min(lifetime.length_ms() / 2);
        (self.time_left(job)? < threshold).then_some(threshold)
    }

    /// How long the job's URL has left by the server's clock (ms; negative
    /// once expired), when its lifetime is known.
    pub fn time_left(&self, job: &Job) -> Option<i64> {
        let clock = self.context.api.clock();
        job.lifetime
            .as_ref()
            .map(|lifetime| clock.left_ms(lifetime))
    }

    /// Bytes the transfers can receive in half of `job`'s URL lifetime:
    /// queued jobs within that many bytes start before a URL signed now is
    /// half spent, so they are worth re-signing in the same call.
    #[expect(
        clippy::cast_sign_loss,
        reason = "a product of rates and a lifetime, never negative"
    )]
    pub fn budget(&self, job: &Job) -> u64 {
        let jobs = self.context.settings.mirror.jobs.max(1) as f64;
        let lifetime = job.lifetime.map_or(0, |lifetime| lifetime.length_ms()) as f64;
        (self.throughput.per_transfer() * jobs * lifetime / 2000.0) as u64
    }

    /// Re-signs a group of jobs with one batch call (at most 100 distinct
    /// media ids). Each job comes back fresh, or ended (no longer stored).
    pub async fn all(&self, jobs: Vec<Job>) -> Vec<Result<Job, Ended>> {
        let context = &*self.context;
        let mut ids: Vec<String> = Vec::new();
        for job in &jobs {
            if !ids.contains(&job.media_id) {
                ids.push(job.media_id.clone());
            }
        }
        context
            .counters
            .resign_calls
            .fetch_add(1, Ordering::Relaxed);
        context.reporter.on_note(&format!(
            "re-signing {} URLs that would expire before their transfer",
            jobs.len()
        ));
        match context.api.media_batch(&ids).await {
            Ok(batch) => {
                let items = batch.items;
                jobs.into_iter()
                    .map(|job| {
                        let item = items
                            .iter()
                            .find(|item| item.id.as_deref() == Some(&job.media_id));
                        self.apply_fresh(job, item)
                            .map_err(|note| Ended::Pending { note, received: 0 })
                    })
                    .collect()
            }
            Err(error) if error.is_auth() => jobs
                .into_iter()
                .map(|_| Err(Ended::Fatal(error.clone().into())))
                .collect(),
            Err(error) => {
                // Try the old URLs; a refusal re-signs each on its own.
                context
                    .reporter
                    .on_note(&format!("could not re-sign URLs: {error}"));
                jobs.into_iter().map(Ok).collect()
            }
        }
    }

    /// Replaces the job's URL with a fresh one (batched with other
    /// transfers asking at the same moment). Errors say how the job ends.
    pub async fn one(&self, job: Job, received: u64) -> Result<Job, Ended> {
        let context = &*self.context;
        match self.batcher.refresh(&job.media_id).await {
            Ok(item) => self
                .apply_fresh(job, item.as_ref())
                .map_err(|note| Ended::Pending { note, received }),
            Err(error) if error.is_auth() => Err(Ended::Fatal(Arc::unwrap_or_clone(error).into())),
            Err(error) => {
                // Try the old URL; the next attempt asks again.
                let name = display_name(&job.media_id, &job.label);
                context
                    .reporter
                    .on_note(&format!("could not re-sign {name}: {error}"));
                Ok(job)
            }
        }
    }

    /// The job with the fresh URL `item` gives, or why it cannot go on.
    fn apply_fresh(&self, job: Job, item: Option<&MediaItem>) -> Result<Job, ItemNote> {
        let context = &*self.context;
        let pending = |reason: &str| note(&job.media_id, &job.label, reason);
        let Some(item) = item else {
            return Err(pending("no longer cached by Vault+"));
        };
        let Some(variant) = item.media.get(&job.label) else {
            return Err(pending("the variant is no longer listed by Vault+"));
        };
        let unknown = LocalVariant {
            state: LocalState::Missing,
            local_path: None,
            verified_size: None,
            part_validator: job.part_validator.clone(),
        };
        match decide(
            context.archived(),
            &job.media_id,
            &job.label,
            variant,
            &unknown,
            context.api.clock().now_ms(),
        ) {
            Decision::Fetch(fresh) => {
                if fresh.size != job.size || fresh.content_type != job.content_type {
                    // Changed upstream meanwhile: the bytes on disk are of the old object.
                    let _ = context.folder.remove_file(&part_path(&job.relative_path));
                }
                context
                    .counters
                    .urls_resigned
                    .fetch_add(1, Ordering::Relaxed);
                Ok(*fresh)
            }
            Decision::Pending(reason)
            | Decision::Unavailable(reason)
            | Decision::Invalid(reason) => Err(pending(&reason)),
            Decision::AlreadyVerified => Ok(job),
        }
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
                    Ok(batch) => batch
                        .items
                        .clone()
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
