//! Stage 6, download: at most `--jobs` transfers at once, each one a fixed
//! transaction — `.part` in the destination folder → resume with `Range`
//! (and `If-Range`), accepted only as a matching 206 → write, hash, count →
//! check size, type and magic bytes → commit.
//!
//! An *attempt* is send + stream + verify; attempts are retried under one
//! budget per item with jittered exponential backoff (backon). A URL that
//! would expire before the transfer can finish, or that the media host
//! refuses (401/403/410), is re-signed through [`Resigner`] and the
//! transfer continues from the bytes on disk. A file failing verification
//! is quarantined and fetched once more with a fresh URL; failing again,
//! the variant is `failed`.
//!
//! The media host never sees the API key or connection id: it is reached
//! through its own HTTP client without them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use reqwest::{StatusCode, header};

use crate::api::error_chain;
use crate::api::models::MediaItem;
use crate::archive::content::{Sniff, header_agrees, sniff};
use crate::archive::dir::split_file;
use crate::archive::paths::part_path;
use crate::archive::versions::keep_previous;
use crate::pipeline::bandwidth::Bandwidth;
use crate::pipeline::commit::PartFile;
use crate::pipeline::plan::{Decision, Job, decide};
use crate::pipeline::resolve::{Resigner, keep_asked, note};
use crate::pipeline::{Context, ItemNote, MirrorError, display_name};
use crate::redact::{Redacted, scrub};
use crate::report::TransferId;
use crate::store::{LocalState, LocalVariant, StoreError};

/// How one job ended.
#[derive(Debug)]
pub enum Finished {
    Verified {
        received: u64,
    },
    Failed {
        note: ItemNote,
        received: u64,
    },
    Pending {
        note: ItemNote,
        received: u64,
    },
    /// The run must stop (a refused key, a broken database).
    Fatal(MirrorError),
    /// A bug: a transfer task panicked. Reported, and the run goes on.
    Crashed(String),
}

/// Why an attempt did not end in a committed file.
#[derive(Debug)]
enum AttemptError {
    /// The media host refused the signed URL: get a fresh one.
    Expired(StatusCode),
    /// Worth another attempt after a pause; the `.part` is kept.
    Transient(String),
    /// Another attempt would fail the same way.
    Permanent(String),
    /// The bytes are not what Vault+ declared; they were quarantined.
    Verification(String),
    /// Local trouble (disk, database): the item cannot go on.
    Local(String),
    /// The archive's disk is full: no item can go on, so the run stops.
    DiskFull(MirrorError),
}

/// A local IO error of an attempt on `part`: a full disk stops the run
/// (every other transfer would fail the same way), anything else fails
/// the item.
fn local_error(error: std::io::Error, part: &std::path::Path) -> AttemptError {
    if error.kind() == std::io::ErrorKind::StorageFull {
        return AttemptError::DiskFull(MirrorError::Io {
            context: format!(
                "no space left on the disk while writing {}; the bytes so far are kept there to resume when there is room",
                part.display()
            ),
            source: error,
        });
    }
    AttemptError::Local(error.to_string())
}

/// A database error of an attempt: the disk holding the database being
/// full stops the run (every other transfer would fail to record the same
/// way); anything else fails the item.
fn store_error(error: StoreError) -> AttemptError {
    match error {
        StoreError::DiskFull { .. } => AttemptError::DiskFull(error.into()),
        error => AttemptError::Local(error.to_string()),
    }
}

/// Test suites: `VAULT_MIRROR_TEST_DISK_FULL_AFTER=<bytes>` makes writes
/// fail as on a full disk once that many bytes were written by this
/// process, so a full disk can be tested without filling one.
fn simulated_disk_full(bytes: usize) -> std::io::Result<()> {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let Some(limit) = *LIMIT.get_or_init(|| {
        std::env::var("VAULT_MIRROR_TEST_DISK_FULL_AFTER")
            .ok()
            .and_then(|text| text.parse().ok())
    }) else {
        return Ok(());
    };
    if WRITTEN.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (simulated)",
        ));
    }
    Ok(())
}

/// Until transfers measure better, assume this rate per transfer.
const ASSUMED_RATE: f64 = 512.0 * 1024.0;

/// Transfer rate measured over the run, for expiry estimates: bytes over
/// the time attempts took, so it is a per-transfer rate whatever the
/// concurrency.
#[derive(Default)]
struct Throughput {
    bytes: AtomicU64,
    micros: AtomicU64,
    attempts: AtomicU64,
}

impl Throughput {
    fn record(&self, bytes: u64, took: Duration) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes per second one transfer can expect.
    fn per_transfer(&self) -> f64 {
        let bytes = self.bytes.load(Ordering::Relaxed) as f64;
        let seconds = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        if self.attempts.load(Ordering::Relaxed) < 3 || seconds < 0.05 {
            return ASSUMED_RATE;
        }
        (bytes / seconds).max(1024.0)
    }
}

#[derive(Clone)]
pub struct Transfers {
    inner: Arc<Inner>,
}

struct Inner {
    context: Arc<Context>,
    http: reqwest::Client,
    resigner: Resigner,
    throughput: Throughput,
    /// `--limit-rate`: one bucket of bytes shared by every transfer, and
    /// its capacity (one second of bytes).
    bandwidth: Option<Bandwidth>,
    /// `--jobs` permits: held from an attempt's request to its last body
    /// byte and checks, and given back before the commit, so the next
    /// transfer uses the network while this file's fsync waits on the disk.
    slots: Arc<tokio::sync::Semaphore>,
}

/// Items that may be committing (fsync, rename, record) at once, per
/// transfer slot: the dispatcher runs `jobs` × (1 + this) items, at most
/// `jobs` of them on the network.
pub const COMMITS_PER_SLOT: usize = 6;

impl Transfers {
    pub fn new(context: Arc<Context>) -> Result<Self, MirrorError> {
        crate::api::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("vault-mirror/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            // Bodies must arrive as stored: no transparent decompression.
            .no_gzip()
            .build()
            .map_err(|error| MirrorError::Io {
                context: "cannot set up the HTTP client for media downloads".into(),
                source: std::io::Error::other(error),
            })?;
        let jobs = context.settings.mirror.jobs.max(1);
        let bandwidth = context.settings.mirror.limit_rate.map(Bandwidth::new);
        Ok(Self {
            inner: Arc::new(Inner {
                resigner: Resigner::spawn(context.clone()),
                context,
                http,
                throughput: Throughput::default(),
                bandwidth,
                slots: Arc::new(tokio::sync::Semaphore::new(jobs)),
            }),
        })
    }

    /// A transfer slot, if one is free now.
    pub fn try_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.slots.clone().try_acquire_owned().ok()
    }

    /// Waits until a transfer slot is free (and gives it back at once: the
    /// dispatcher then takes it with [`Transfers::try_slot`]).
    pub async fn slot_freed(&self) {
        drop(self.inner.slots.acquire().await);
    }

    /// Fetches, verifies and commits one variant, within its attempt budget.
    /// `slot` is the transfer slot the dispatcher took for the first
    /// attempt (retries take one again).
    pub async fn fetch_verified(
        &self,
        mut job: Job,
        mut slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Finished {
        let inner = &*self.inner;
        let context = &*inner.context;
        let network = &context.settings.network;
        let name = display_name(&job.media_id, &job.label);
        let mut delays = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(network.retry_delay)
            .with_max_delay(network.max_retry_delay)
            .with_max_times(network.transfer_attempts.saturating_sub(1))
            .build();
        let mut tries_left = network.transfer_attempts.saturating_sub(1);
        let mut received = 0;
        // The longest the `.part` has been, and how many more attempts that
        // make it longer may be retried without spending a try.
        let mut progress_mark = 0;
        let mut free_retries_left = network.transfer_attempts.saturating_mul(10);
        let mut quarantined_once = false;
        let mut force_resign = false;
        loop {
            // Waiting for a slot before the expiry check: the URL must be
            // fresh when the transfer starts, not when it queued.
            let slot = match slot.take() {
                Some(slot) => slot,
                None => match inner.slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break Finished::Crashed("the transfer slots were closed".to_owned()),
                },
            };
            let expiring = self.resign_threshold(&job).is_some();
            if force_resign || expiring {
                let reason = if force_resign {
                    "the media host refused the URL or the bytes"
                } else {
                    "the URL would expire before the transfer could finish"
                };
                context.reporter.on_resign(&name, reason);
                force_resign = false;
                job = match self.resign(job, received).await {
                    Ok(job) => job,
                    Err(finished) => break finished,
                };
            }
            let transfer = TransferId::next();
            let (started, before) = (Instant::now(), received);
            let result = self
                .attempt(&job, transfer, &name, &mut received, slot)
                .await;
            inner
                .throughput
                .record(received - before, started.elapsed());
            let reason = match result {
                Ok(()) => {
                    context.reporter.on_done(transfer);
                    break Finished::Verified { received };
                }
                Err(error) => {
                    context.reporter.on_abandoned(transfer);
                    error
                }
            };
            let (message, pause) = match reason {
                AttemptError::Expired(status) => {
                    context
                        .counters
                        .expired_urls
                        .fetch_add(1, Ordering::Relaxed);
                    force_resign = true;
                    (
                        format!("the media host refused the URL (HTTP {status}); re-signing"),
                        false,
                    )
                }
                AttemptError::Verification(reason) if !quarantined_once => {
                    quarantined_once = true;
                    force_resign = true;
                    (
                        format!("{reason}; quarantined, fetching once more with a fresh URL"),
                        false,
                    )
                }
                AttemptError::Verification(reason) => {
                    break self.fail(&job, LocalState::Quarantined, &reason, received);
                }
                // An attempt that moved the file forward before it broke
                // (a cut body, resumed next time) costs no try: only attempts
                // without progress spend the budget, within a hard cap.
                AttemptError::Transient(reason)
                    if self.part_length(&job) > progress_mark && free_retries_left > 0 =>
                {
                    progress_mark = self.part_length(&job);
                    free_retries_left -= 1;
                    context
                        .counters
                        .transfer_retries
                        .fetch_add(1, Ordering::Relaxed);
                    context.reporter.on_retry(&name, tries_left + 1, &reason);
                    tokio::time::sleep(network.retry_delay.min(Duration::from_secs(1))).await;
                    continue;
                }
                AttemptError::Transient(reason) => (reason, true),
                AttemptError::Permanent(reason) | AttemptError::Local(reason) => {
                    break self.fail(&job, LocalState::Failed, &reason, received);
                }
                AttemptError::DiskFull(error) => break Finished::Fatal(error),
            };
            let Some(delay) = delays.next() else {
                break self.fail(&job, LocalState::Failed, &message, received);
            };
            tries_left = tries_left.saturating_sub(1);
            context
                .counters
                .transfer_retries
                .fetch_add(1, Ordering::Relaxed);
            context.reporter.on_retry(&name, tries_left + 1, &message);
            if pause {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// Bytes in the job's `.part` file (0 if there is none).
    fn part_length(&self, job: &Job) -> u64 {
        let part = part_path(&job.relative_path);
        self.inner.context.archive.file_len(&part).unwrap_or(0)
    }

    /// `Some(threshold)` (ms) when the job's URL has less than that left
    /// by the server's clock and must be re-signed before its transfer.
    /// A URL without a trusted lifetime never is: it is re-signed only
    /// when the media host refuses it.
    pub fn resign_threshold(&self, job: &Job) -> Option<i64> {
        let lifetime = job.lifetime.as_ref()?;
        let network = &self.inner.context.settings.network;
        let needed = job.size as f64 / self.inner.throughput.per_transfer();
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
        let clock = self.inner.context.api.clock();
        job.lifetime
            .as_ref()
            .map(|lifetime| clock.left_ms(lifetime))
    }

    /// Bytes the transfers can receive in half of `job`'s URL lifetime:
    /// queued jobs within that many bytes start before a URL signed now is
    /// half spent, so they are worth re-signing in the same call.
    pub fn resign_budget(&self, job: &Job) -> u64 {
        let jobs = self.inner.context.settings.mirror.jobs.max(1) as f64;
        let lifetime = job.lifetime.map_or(0, |lifetime| lifetime.length_ms()) as f64;
        (self.inner.throughput.per_transfer() * jobs * lifetime / 2000.0) as u64
    }

    /// Re-signs a group of jobs with one batch call (at most 100 distinct
    /// media ids). Each job comes back fresh, or ended (no longer stored).
    pub async fn resign_all(&self, jobs: Vec<Job>) -> Vec<Result<Job, Finished>> {
        let context = &*self.inner.context;
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
                let items = keep_asked(&ids, batch.items);
                jobs.into_iter()
                    .map(|job| {
                        let item = items
                            .iter()
                            .find(|item| item.id.as_deref() == Some(&job.media_id));
                        self.apply_fresh(job, item)
                            .map_err(|note| Finished::Pending { note, received: 0 })
                    })
                    .collect()
            }
            Err(error) if error.is_auth() => jobs
                .into_iter()
                .map(|_| Err(Finished::Fatal(error.clone().into())))
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
    async fn resign(&self, job: Job, received: u64) -> Result<Job, Finished> {
        let context = &*self.inner.context;
        match self.inner.resigner.refresh(&job.media_id).await {
            Ok(item) => self
                .apply_fresh(job, item.as_ref())
                .map_err(|note| Finished::Pending { note, received }),
            Err(error) if error.is_auth() => {
                Err(Finished::Fatal(Arc::unwrap_or_clone(error).into()))
            }
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
        let context = &*self.inner.context;
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
            &context.archive,
            &job.media_id,
            &job.label,
            variant,
            &unknown,
            context.api.clock().now_ms(),
        ) {
            Decision::Fetch(fresh) => {
                if fresh.size != job.size || fresh.content_type != job.content_type {
                    // Changed upstream meanwhile: the bytes on disk are of the old object.
                    let _ = context.archive.remove_file(&part_path(&job.relative_path));
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

    fn fail(&self, job: &Job, state: LocalState, reason: &str, received: u64) -> Finished {
        let context = &*self.inner.context;
        let name = display_name(&job.media_id, &job.label);
        context.reporter.on_failed(&name, reason);
        // An empty `.part` holds nothing worth resuming: leave no litter.
        let part = part_path(&job.relative_path);
        if context.archive.has_file(&part, 0) {
            let _ = context.archive.remove_file(&part);
        }
        if let Err(error) =
            context
                .store
                .mark_unfinished(&job.media_id, &job.label, state, reason, crate::now_ms())
        {
            return Finished::Fatal(error.into());
        }
        Finished::Failed {
            note: note(&job.media_id, &job.label, reason),
            received,
        }
    }

    /// One attempt: send, stream into `.part`, verify, commit, record.
    async fn attempt(
        &self,
        job: &Job,
        transfer: TransferId,
        name: &str,
        received: &mut u64,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<(), AttemptError> {
        let inner = &*self.inner;
        let context = &*inner.context;
        let stall = context.settings.network.stall_timeout;
        let part_relative = part_path(&job.relative_path);
        let part_path = context.settings.out.join(&part_relative);
        let local = |error: std::io::Error| local_error(error, &part_path);
        let (folder, part_name) = split_file(&part_relative).map_err(local)?;
        // Made where missing; a link in the way is replaced, never followed.
        let folder = context.archive.create_folder(folder).map_err(local)?;
        let mut part = PartFile::open(folder, part_name, job.size).map_err(local)?;
        context
            .reporter
            .on_start(transfer, name, job.size, part.len());

        let mut response = self.request(job, part.len(), stall).await?;
        let status = response.status();
        let resumed = part.len();
        let start = match status {
            StatusCode::PARTIAL_CONTENT if resumed > 0 => {
                let range = response
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(parse_content_range);
                match range {
                    Some((first, _, total))
                        if first == resumed && total.is_none_or(|t| t == job.size) =>
                    {
                        first
                    }
                    _ => {
                        // Not the bytes we asked for: start over from zero.
                        self.restart(&mut part, transfer)?;
                        response = self.request(job, 0, stall).await?;
                        0
                    }
                }
            }
            StatusCode::OK | StatusCode::RANGE_NOT_SATISFIABLE => {
                if resumed > 0 {
                    self.restart(&mut part, transfer)?;
                }
                if status == StatusCode::RANGE_NOT_SATISFIABLE {
                    response = self.request(job, 0, stall).await?;
                }
                0
            }
            _ => 0,
        };
        let status = response.status();
        match status.as_u16() {
            200 | 206 => {}
            401 | 403 | 410 => return Err(AttemptError::Expired(status)),
            408 | 425 | 429 | 500..=599 => {
                return Err(AttemptError::Transient(format!(
                    "the media host answered HTTP {status}"
                )));
            }
            _ => {
                return Err(AttemptError::Permanent(format!(
                    "the media host answered HTTP {status} for {}",
                    Redacted::new(&job.url)
                )));
            }
        }
        // One write per attempt the media host answered: it is counted, and
        // bytes starting from zero get their validator, for a later resume.
        let fresh_validator = (start == 0).then(|| validator(response.headers()));
        context
            .store
            .mark_downloading(
                &job.media_id,
                &job.label,
                fresh_validator.as_ref().map(Option::as_deref),
                crate::now_ms(),
            )
            .map_err(store_error)?;

        // Checks that need no body: fail before spending the bandwidth.
        let header_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        if !header_agrees(&job.content_type, header_type.as_deref()) {
            let reason = format!(
                "the media host sent Content-Type `{}`, Vault+ declared `{}`",
                header_type.unwrap_or_default(),
                job.content_type
            );
            return Err(self.quarantine(job, part, reason));
        }
        let remaining = job.size - start;
        if let Some(announced) = response.content_length()
            && announced != remaining
        {
            let reason = format!(
                "the media host announced {announced} bytes, {remaining} were expected (Vault+ declared {} in all)",
                job.size
            );
            return Err(self.quarantine(job, part, reason));
        }

        let mut body = response.bytes_stream();
        loop {
            let next = match tokio::time::timeout(stall, body.next()).await {
                Ok(next) => next,
                Err(_) => {
                    part.keep().map_err(local)?;
                    return Err(AttemptError::Transient(format!(
                        "stalled: no data for {}s",
                        stall.as_secs()
                    )));
                }
            };
            let Some(chunk) = next else { break };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    part.keep().map_err(local)?;
                    return Err(AttemptError::Transient(format!(
                        "the body was cut off at {} of {} bytes: {}",
                        part.len(),
                        job.size,
                        scrub(&error_chain(&error.without_url()))
                    )));
                }
            };
            if part.len() + chunk.len() as u64 > job.size {
                let reason = format!(
                    "the media host sent more than the {} bytes Vault+ declared",
                    job.size
                );
                return Err(self.quarantine(job, part, reason));
            }
            self.spend_bandwidth(chunk.len()).await;
            simulated_disk_full(chunk.len())
                .and_then(|()| part.write(&chunk))
                .map_err(local)?;
            *received += chunk.len() as u64;
            let first_byte_at = &context.counters.first_byte_at;
            if first_byte_at.load(Ordering::Relaxed) == 0 {
                let _ = first_byte_at.compare_exchange(
                    0,
                    crate::now_ms(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            inner
                .throughput
                .bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            context.reporter.on_bytes(transfer, chunk.len() as u64);
        }
        if part.len() < job.size {
            part.keep().map_err(local)?;
            return Err(AttemptError::Transient(format!(
                "the body ended at {} of {} bytes",
                part.len(),
                job.size
            )));
        }
        match sniff(&job.content_type, part.head()) {
            Sniff::Agrees | Sniff::NotCheckable => {}
            Sniff::Disagrees(found) => {
                let reason = format!(
                    "the file's bytes are {found}, Vault+ declared `{}`",
                    job.content_type
                );
                return Err(self.quarantine(job, part, reason));
            }
            Sniff::Unrecognised => {
                let reason = format!(
                    "the file's bytes are not {} (unrecognised signature)",
                    job.content_type
                );
                return Err(self.quarantine(job, part, reason));
            }
        }

        // Every byte is in and checked: the network is free for the next
        // transfer while this one waits on the disk.
        drop(slot);
        let size = part.len();
        let keeper = (
            inner.context.clone(),
            job.media_id.clone(),
            job.label.clone(),
            job.relative_path.clone(),
        );
        let (sha256, replaced) = tokio::task::spawn_blocking(move || {
            // Changed upstream: the bytes about to be replaced go to
            // .versions/ (or, not as verified, to the quarantine).
            let (context, media_id, label, final_path) = keeper;
            let replaced = keep_previous(
                &context.store,
                &context.archive,
                &media_id,
                &label,
                &final_path,
                &part.sha256(),
            )
            .map_err(std::io::Error::other)?;
            let final_name = final_path.file_name().unwrap_or_default();
            part.commit(final_name).map(|sha256| (sha256, replaced))
        })
        .await
        .map_err(|error| AttemptError::Local(error.to_string()))?
        .map_err(local)?;
        for aside in &replaced.quarantined {
            context.reporter.on_note(&format!(
                "{name}: the bytes at {} were not kept as a previous version ({}); they are in {}",
                aside.from, aside.reason, aside.to
            ));
        }
        let relative = job.relative_path.to_string_lossy().replace('\\', "/");
        context
            .store
            .mark_verified(
                &job.media_id,
                &job.label,
                &relative,
                &sha256,
                size as i64,
                crate::now_ms(),
            )
            .map_err(store_error)?;
        Ok(())
    }

    /// Waits until `--limit-rate` allows `bytes` more (no-op without a cap).
    async fn spend_bandwidth(&self, bytes: usize) {
        if let Some(bandwidth) = &self.inner.bandwidth {
            bandwidth.spend(bytes).await;
        }
    }

    async fn request(
        &self,
        job: &Job,
        offset: u64,
        stall: Duration,
    ) -> Result<reqwest::Response, AttemptError> {
        let mut request = self.inner.http.get(job.url.clone());
        if offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
            if let Some(validator) = &job.part_validator {
                request = request.header(header::IF_RANGE, validator);
            }
        }
        match tokio::time::timeout(stall, request.send()).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(AttemptError::Transient(format!(
                "request failed: {}",
                scrub(&error_chain(&error.without_url()))
            ))),
            Err(_) => Err(AttemptError::Transient(format!(
                "no answer from the media host within {}s",
                stall.as_secs()
            ))),
        }
    }

    fn restart(&self, part: &mut PartFile, transfer: TransferId) -> Result<(), AttemptError> {
        self.inner.context.reporter.on_rewind(transfer, part.len());
        part.reset()
            .map_err(|error| AttemptError::Local(error.to_string()))
    }

    /// Sets failed bytes aside under `.vault-mirror/quarantine/` (kept for
    /// inspection; the next quarantine of the same variant replaces them).
    fn quarantine(&self, job: &Job, part: PartFile, reason: String) -> AttemptError {
        let context = &*self.inner.context;
        let file_name = job.relative_path.file_name().unwrap_or_default();
        if let Err(error) = part.quarantine(&context.archive, &job.media_id, file_name) {
            return AttemptError::Local(format!(
                "{reason}; and setting the bytes aside failed: {error}"
            ));
        }
        let _ = context.store.mark_unfinished(
            &job.media_id,
            &job.label,
            LocalState::Quarantined,
            &reason,
            crate::now_ms(),
        );
        AttemptError::Verification(reason)
    }
}

/// A strong ETag, else Last-Modified: what `If-Range` may carry.
fn validator(headers: &header::HeaderMap) -> Option<String> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|value: &header::HeaderValue| value.to_str().ok())
    };
    text(header::ETAG)
        .filter(|etag| !etag.starts_with("W/"))
        .or_else(|| text(header::LAST_MODIFIED))
        .map(str::to_owned)
}

/// `bytes first-last/total` (total may be `*`) → (first, last, total).
pub fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.trim().split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        digits => Some(digits.parse().ok()?),
    };
    if last < first || total.is_some_and(|total| last >= total) {
        return None;
    }
    Some((first, last, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 0, None)));
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("bytes 5-10/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }

    #[test]
    fn validators_prefer_strong_etags() {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::ETAG, "W/\"weak\"".parse().unwrap());
        headers.insert(
            header::LAST_MODIFIED,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(
            validator(&headers).as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        headers.insert(header::ETAG, "\"strong\"".parse().unwrap());
        assert_eq!(validator(&headers).as_deref(), Some("\"strong\""));
    }
}
