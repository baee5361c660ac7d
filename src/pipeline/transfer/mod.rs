//! Stage 6, transfer: at most `--jobs` transfers at once, each attempt
//! one fixed transaction ([`attempt`]: `.part` → resume only on a
//! matching 206 → write, hash, count → check size, type and magic bytes →
//! commit).
//!
//! This module is the retry loop around attempts: one budget per item
//! with jittered exponential backoff (backon); an attempt that moved the
//! file forward costs no try; a URL that would expire before the transfer
//! can finish, or that the media host refuses (401/403/410), is re-signed
//! ([`Resign`]) and the transfer continues from the bytes on disk; a file
//! failing verification is quarantined and fetched once more with a fresh
//! URL, and failing again, the variant is `failed`.
//!
//! The media host never sees the API key or connection id: it is reached
//! through its own HTTP client without them.

mod attempt;
mod blocks;
pub mod part;
mod range;
mod sink;
mod writer;

pub use range::parse_content_range;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::archive::paths::part_path;
use crate::pipeline::bandwidth::Bandwidth;
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::pipeline::outcome::{Ended, display_name, note};
use crate::pipeline::plan::Job;
use crate::pipeline::resign::Resign;
use crate::report::TransferId;
use crate::store::LocalState;
use attempt::{Attempt, AttemptError};

/// The transfers of one run: the media host's HTTP client, the transfer
/// slots (`--jobs`), `--limit-rate`, and re-signing. Cheap to clone (one
/// per running transfer).
#[derive(Clone)]
pub struct Transfers {
    inner: Arc<Inner>,
}

struct Inner {
    context: Arc<Context>,
    http: reqwest::Client,
    resign: Resign,
    /// `--limit-rate`: one budget of bytes shared fairly by every transfer
    /// of the process (see [`crate::pipeline::limits::Limits`]).
    bandwidth: Option<Arc<Bandwidth>>,
    /// `--jobs` permits, shared by every run of the process: held from an
    /// attempt's request to its last body byte and checks, and given back
    /// before the commit, so the next transfer uses the network while this
    /// file's fsync waits on the disk.
    slots: Arc<tokio::sync::Semaphore>,
}

/// Items that may be committing (fsync, rename, record) at once, per
/// transfer slot: the dispatcher runs `jobs` × (1 + this) items, at most
/// `jobs` of them on the network.
pub const COMMITS_PER_SLOT: usize = 6;

/// Where one item stands in its retry budget.
struct Tries {
    delays: ExponentialBackoff,
    tries_left: usize,
    received: u64,
    /// The longest the `.part` has been, and how many more attempts that
    /// make it longer may be retried without spending a try.
    progress_mark: u64,
    free_retries_left: usize,
    quarantined_once: bool,
    /// Why the URL must be re-signed before the next attempt, if it must.
    resign: Option<&'static str>,
}

/// What comes after a failed attempt.
enum Next {
    /// Another attempt, after `pause` (none: at once).
    Retry {
        message: String,
        pause: Option<Duration>,
    },
    /// The item is done with.
    End(Ended),
}

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
        let bandwidth = context.limits.bandwidth.clone();
        let slots = context.limits.slots.clone();
        Ok(Self {
            inner: Arc::new(Inner {
                resign: Resign::new(context.clone()),
                context,
                http,
                bandwidth,
                slots,
            }),
        })
    }

    fn context(&self) -> &Context {
        &self.inner.context
    }

    /// Re-signing for this run (the queue asks it before a job starts).
    pub fn resign(&self) -> &Resign {
        &self.inner.resign
    }

    /// A transfer slot, if one is free now.
    pub fn try_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.slots.clone().try_acquire_owned().ok()
    }

    /// Waits for a transfer slot, in turn with every other waiter of the
    /// process (`None` only if the slots were closed).
    pub async fn next_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.slots.clone().acquire_owned().await.ok()
    }

    /// Fetches, verifies and commits one variant, within its attempt budget.
    /// `slot` is the transfer slot the dispatcher took for the first
    /// attempt (retries take one again).
    pub async fn fetch_verified(
        &self,
        mut job: Job,
        mut slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Ended {
        let context = self.context();
        let network = &context.settings.network;
        let name = display_name(&job.media_id, &job.label);
        let mut tries = Tries {
            delays: ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(network.retry_delay)
                .with_max_delay(network.max_retry_delay)
                .with_max_times(network.transfer_attempts.saturating_sub(1))
                .build(),
            tries_left: network.transfer_attempts.saturating_sub(1),
            received: 0,
            progress_mark: 0,
            free_retries_left: network.transfer_attempts.saturating_mul(10),
            quarantined_once: false,
            resign: None,
        };
        loop {
            // Waiting for a slot before the expiry check: the URL must be
            // fresh when the transfer starts, not when it queued.
            let slot = match slot.take() {
                Some(slot) => slot,
                None => match self.inner.slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break Ended::Crashed("the transfer slots were closed".to_owned()),
                },
            };
            if self.resign().threshold(&job).is_some() {
                tries.resign = tries.resign.or(Some(
                    "the URL would expire before the transfer could finish",
                ));
            }
            if let Some(reason) = tries.resign.take() {
                context.reporter.on_resign(&name, reason);
                job = match self.resign().one(job, tries.received).await {
                    Ok(job) => job,
                    Err(ended) => break ended,
                };
            }
            let transfer = TransferId::next();
            let (started, before) = (Instant::now(), tries.received);
            let attempt = Attempt {
                context: &self.inner.context,
                http: &self.inner.http,
                bandwidth: self.inner.bandwidth.as_deref(),
                resign: &self.inner.resign,
            };
            let result = attempt
                .run(&job, transfer, &name, &mut tries.received, slot)
                .await;
            self.resign()
                .throughput
                .record(tries.received - before, started.elapsed());
            let error = match result {
                Ok(()) => {
                    context.reporter.on_done(transfer);
                    break Ended::Verified {
                        received: tries.received,
                    };
                }
                Err(error) => {
                    context.reporter.on_abandoned(transfer);
                    error
                }
            };
            match self.after(&job, error, &mut tries) {
                Next::End(ended) => break ended,
                Next::Retry { message, pause } => {
                    context
                        .counters
                        .transfer_retries
                        .fetch_add(1, Ordering::Relaxed);
                    context
                        .reporter
                        .on_retry(&name, tries.tries_left + 1, &message);
                    if let Some(pause) = pause {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }

    /// What a failed attempt leads to, spending the item's budget.
    fn after(&self, job: &Job, error: AttemptError, tries: &mut Tries) -> Next {
        let context = self.context();
        let (message, pause) = match error {
            AttemptError::Expired(status) => {
                context
                    .counters
                    .expired_urls
                    .fetch_add(1, Ordering::Relaxed);
                tries.resign = Some("the media host refused the URL or the bytes");
                let message = format!("the media host refused the URL (HTTP {status}); re-signing");
                (message, false)
            }
            AttemptError::Verification(reason) if !tries.quarantined_once => {
                tries.quarantined_once = true;
                tries.resign = Some("the media host refused the URL or the bytes");
                let message = format!("{reason}; quarantined, fetching once more with a fresh URL");
                (message, false)
            }
            AttemptError::Verification(reason) => {
                return Next::End(self.fail(job, LocalState::Quarantined, &reason, tries.received));
            }
            // An attempt that moved the file forward before it broke (a
            // cut body, resumed next time) costs no try: only attempts
            // without progress spend the budget, within a hard cap.
            AttemptError::Transient(reason)
                if self.part_length(job) > tries.progress_mark && tries.free_retries_left > 0 =>
            {
                tries.progress_mark = self.part_length(job);
                tries.free_retries_left -= 1;
                let pause = context
                    .settings
                    .network
                    .retry_delay
                    .min(Duration::from_secs(1));
                return Next::Retry {
                    message: reason,
                    pause: Some(pause),
                };
            }
            AttemptError::Transient(reason) => (reason, true),
            AttemptError::Permanent(reason) => {
                return Next::End(self.fail(job, LocalState::Failed, &reason, tries.received));
            }
            AttemptError::Local(failure) => {
                let reason = crate::report::chain(&failure);
                return Next::End(self.fail(job, LocalState::Failed, &reason, tries.received));
            }
            AttemptError::DiskFull(error) | AttemptError::LeaseLost(error) => {
                return Next::End(Ended::Fatal(error));
            }
        };
        let Some(delay) = tries.delays.next() else {
            return Next::End(self.fail(job, LocalState::Failed, &message, tries.received));
        };
        tries.tries_left = tries.tries_left.saturating_sub(1);
        Next::Retry {
            message,
            pause: pause.then_some(delay),
        }
    }

    /// Bytes in the job's `.part` file (0 if there is none).
    fn part_length(&self, job: &Job) -> u64 {
        let part = part_path(&job.relative_path);
        self.context().folder.file_len(&part).unwrap_or(0)
    }

    /// The item failed for good: reported, recorded, and an empty `.part`
    /// removed (it holds nothing worth resuming).
    fn fail(&self, job: &Job, state: LocalState, reason: &str, received: u64) -> Ended {
        let context = self.context();
        let name = display_name(&job.media_id, &job.label);
        context.reporter.on_failed(&name, reason);
        let part = part_path(&job.relative_path);
        if context.folder.has_file(&part, 0) {
            let _ = context.folder.remove_file(&part);
        }
        if let Err(error) =
            context
                .store
                .mark_unfinished(&job.media_id, &job.label, state, reason, crate::now_ms())
        {
            return Ended::Fatal(error.into());
        }
        Ended::Failed {
            note: note(&job.media_id, &job.label, reason),
            received,
        }
    }
}
