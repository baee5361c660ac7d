//! One attempt of a transfer, in the order of the fixed transaction:
//! open the `.part` (hashing what it holds after its last resume point),
//! or on object storage the upload a crashed run kept open → ask for the bytes not on
//! disk yet, accepting a resume only as a matching 206 → record the
//! answer → check the headers (type, length) before any body byte → stream
//! into the `.part` through its [`PartWriter`] → check the size and the
//! magic bytes → keep the bytes a change upstream replaces → `sync_data`,
//! rename, fsync the folder → mark verified.
//!
//! Invariants: a check that fails quarantines the bytes, they never reach
//! the final path; a transient failure keeps (and syncs) the `.part` to
//! resume from; the resume points a transfer reaches are recorded as it
//! goes (only for bytes durable where they went); file and database work
//! runs off the async workers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use reqwest::{StatusCode, header};

use crate::api::error_chain;
use crate::archive::ArchiveError;
use crate::archive::bucket::BucketError;
use crate::archive::bucket::upload::{PART_SIZE, Resumed, Upload};
use crate::archive::content::{Sniff, header_agrees, sniff};
use crate::archive::dir::split_file;
use crate::archive::paths::{key_of, part_path};
use crate::archive::versions::{Replaced, keep_previous};
use crate::pipeline::bandwidth::Bandwidth;
use crate::pipeline::bucket::BucketRunError;
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::pipeline::plan::Job;
use crate::pipeline::resign::Resign;
use crate::pipeline::transfer::part::PartFile;
use crate::pipeline::transfer::range::{parse_content_range, validator};
use crate::pipeline::transfer::sink::{Sink, SinkError, SinkWriter};
use crate::pipeline::transfer::writer::off_reactor;
use crate::redact::{Redacted, scrub};
use crate::report::TransferId;
use crate::store::{LocalState, Store, StoreError};
use crate::units::{ByteSize, EpochMillis};

/// Why an attempt did not end in a committed file.
#[derive(Debug)]
pub enum AttemptError {
    /// The media host refused the signed URL: get a fresh one.
    Expired(StatusCode),
    /// Worth another attempt after a pause; the `.part` is kept.
    Transient(String),
    /// Another attempt would fail the same way.
    Permanent(String),
    /// The bytes are not what Vault+ declared; they were quarantined.
    Verification(String),
    /// Local trouble (disk, database) or the archive's: the item cannot go on.
    Local(LocalFailure),
    /// A disk is full (the archive's, or the database's): no item can go
    /// on, so the run stops.
    DiskFull(MirrorError),
    /// Another run took the object-storage archive's lease over: nothing
    /// more may be written, so the run stops.
    LeaseLost(MirrorError),
}

/// Why an item could not go on for a reason of ours, not the hosts'.
#[derive(Debug, thiserror::Error)]
pub enum LocalFailure {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(StoreError),
    #[error("a blocking step ended abnormally")]
    Task(#[from] tokio::task::JoinError),
    /// Setting aside the bytes a commit replaces failed: nothing was replaced.
    #[error("keeping the bytes it replaces failed, so nothing was replaced")]
    KeepPrevious(#[source] ArchiveError),
    /// The bytes failed a check (`reason`), and setting them aside failed too.
    #[error("{reason}; and setting the bytes aside failed")]
    SetAside {
        reason: String,
        #[source]
        source: std::io::Error,
    },
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
    AttemptError::Local(error.into())
}

/// A write of an attempt's bytes failed: to the `.part` (as
/// [`local_error`]), or to object storage, where the upload was aborted
/// and the next attempt starts over.
fn sink_error(error: SinkError, part: &std::path::Path) -> AttemptError {
    match error {
        SinkError::Part(error) => local_error(error, part),
        SinkError::Upload(error) => AttemptError::Transient(format!(
            "writing to the archive failed (the upload starts over): {}",
            crate::report::chain(&error)
        )),
    }
}

/// A database error of an attempt: the disk holding the database being
/// full stops the run (every other transfer would fail to record the same
/// way); anything else fails the item.
fn store_error(error: StoreError) -> AttemptError {
    match error {
        StoreError::DiskFull { .. } => AttemptError::DiskFull(error.into()),
        error => AttemptError::Local(LocalFailure::Store(error)),
    }
}

/// A strike against the media host: what its status means for the attempt.
fn check_status(job: &Job, status: StatusCode) -> Result<(), AttemptError> {
    match status.as_u16() {
        200 | 206 => Ok(()),
        401 | 403 | 410 => Err(AttemptError::Expired(status)),
        408 | 425 | 429 | 500..=599 => Err(AttemptError::Transient(format!(
            "the media host answered HTTP {status}"
        ))),
        _ => Err(AttemptError::Permanent(format!(
            "the media host answered HTTP {status} for {}",
            Redacted::new(&job.url)
        ))),
    }
}

/// Whether a 206 continues the `.part` exactly where it stops.
fn continues(headers: &header::HeaderMap, resumed: u64, size: u64) -> bool {
    headers
        .get(header::CONTENT_RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_content_range)
        .is_some_and(|(first, _, total)| first == resumed && total.is_none_or(|t| t == size))
}

/// What one attempt works with: the run's context, the media host's
/// HTTP client, `--limit-rate`, and re-signing's rate measurement.
pub struct Attempt<'a> {
    pub context: &'a Arc<Context>,
    pub http: &'a reqwest::Client,
    pub bandwidth: Option<&'a Bandwidth>,
    pub resign: &'a Resign,
}

impl Attempt<'_> {
    /// One attempt: the whole transaction (see the module docs). `slot`
    /// is given back once every byte is in and checked, so the network
    /// serves the next transfer while this one waits on the disk.
    pub async fn run(
        &self,
        job: &Job,
        transfer: TransferId,
        name: &str,
        received: &mut u64,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<(), AttemptError> {
        let part = self.open_part(job).await?;
        self.context
            .reporter
            .on_start(transfer, name, job.size, part.len());
        let (response, part, start) = self.negotiate(job, part, transfer).await?;
        self.record_answer(job, response.headers(), start).await?;
        let part = self.check_headers(job, &response, part, start).await?;
        let part = self.stream(job, response, part, transfer, received).await?;
        let part = self.check_bytes(job, part).await?;
        drop(slot);
        self.commit(job, transfer, name, part).await
    }

    /// The job's `.part`, made where missing (a link in the way is
    /// replaced, never followed) and re-hashed, off the async workers; on
    /// object storage, the upload an earlier attempt left, or a new one.
    async fn open_part(&self, job: &Job) -> Result<Sink, AttemptError> {
        if let Some(run) = &self.context.bucket {
            let key = key_of(&job.relative_path);
            if let Some(upload) = run.unpark(&key, job.size).await {
                return Ok(Sink::Upload(upload));
            }
            if let Some(upload) = self.resume_upload(job, &key).await? {
                return Ok(Sink::Upload(upload));
            }
            return Ok(Sink::Upload(Box::new(Upload::new(
                run.bucket.clone(),
                key,
                job.content_type.clone(),
                run.ledger.clone(),
            ))));
        }
        let context = self.context.clone();
        let relative = part_path(&job.relative_path);
        let shown = context.settings.local.join(&relative);
        let size = job.size;
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        off_reactor(move || {
            let (folder, name) = split_file(&relative)?;
            let folder = context.folder.create_folder(folder)?;
            // No point to start from is no loss: the bytes are re-read.
            let points = context
                .store
                .resume_points(&media_id, &label)
                .unwrap_or_default();
            PartFile::open(folder, name, size, &points).map(Sink::Part)
        })
        .await
        .map_err(|error| local_error(error, &shown))
    }

    /// The upload a run before this one kept open for this item, continued
    /// from its last part the store still holds as recorded (see
    /// [`Upload::resume`]); None when there is none or it cannot go on —
    /// the media changed upstream (another size; no validator to ask the
    /// media host with), the upload is gone, its parts differ — and then
    /// what is left of it is aborted and forgotten: the item starts over.
    async fn resume_upload(
        &self,
        job: &Job,
        key: &str,
    ) -> Result<Option<Box<Upload>>, AttemptError> {
        let Some(run) = &self.context.bucket else {
            return Ok(None);
        };
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        let recorded = self
            .with_store(move |store| {
                let upload = store.resumable_upload(&media_id, &label)?;
                let points = store.resume_points(&media_id, &label)?;
                Ok(upload.map(|upload| (upload, points)))
            })
            .await?;
        let Some((recorded, points)) = recorded else {
            return Ok(None);
        };
        let shown = format!("the upload of {key}");
        let outcome = if recorded.key != key || recorded.declared_size != job.size {
            Err("the media changed upstream (another size)".to_owned())
        } else if job.part_validator.is_none() {
            Err("the media host gave no validator to resume with".to_owned())
        } else {
            Upload::resume(
                run.bucket.clone(),
                job.content_type.clone(),
                run.ledger.clone(),
                &recorded,
                &points,
            )
            .await
            .map_err(|error| crate::report::chain(&error))
        };
        let reason = match outcome {
            Ok(Resumed::From(upload)) => {
                self.context.reporter.on_note(&format!(
                    "resuming {shown} at {} of {} ({} parts kept in the store)",
                    crate::human_bytes(upload.len()),
                    crate::human_bytes(job.size),
                    upload.len() / PART_SIZE as u64,
                ));
                return Ok(Some(upload));
            }
            Ok(Resumed::StartOver(reason)) | Err(reason) => reason,
        };
        self.context
            .reporter
            .on_note(&format!("{shown} starts over: {reason}"));
        if run
            .bucket
            .abort_upload(&recorded.key, &recorded.upload_id)
            .await
            .is_ok()
        {
            run.ledger.forget(&recorded.key, &recorded.upload_id);
        }
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        self.with_store(move |store| store.forget_resume(&media_id, &label))
            .await?;
        Ok(None)
    }

    /// Records the points a transfer reached since the last call (parts
    /// the store acknowledged; `.part` bytes made durable), so a run after
    /// a crash resumes from the last one. On object storage the first
    /// records its upload too.
    async fn record_points(&self, job: &Job, writer: &mut SinkWriter) -> Result<(), AttemptError> {
        let (points, upload) = writer.take_points(job.size);
        if points.is_empty() {
            return Ok(());
        }
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        self.with_store(move |store| {
            store.record_resume_points(&media_id, &label, upload.as_ref(), &points)
        })
        .await
    }

    /// Asks for the bytes not on disk yet. A 206 that continues the
    /// `.part` exactly is taken; any other answer to a resume starts the
    /// `.part` over from zero. Returns the answer and where it starts.
    async fn negotiate(
        &self,
        job: &Job,
        mut part: Sink,
        transfer: TransferId,
    ) -> Result<(reqwest::Response, Sink, u64), AttemptError> {
        let resumed = part.len();
        let mut response = self.request(job, resumed).await?;
        let status = response.status();
        let start = match status {
            StatusCode::PARTIAL_CONTENT if resumed > 0 => {
                if continues(response.headers(), resumed, job.size) {
                    resumed
                } else {
                    // Not the bytes we asked for: start over from zero.
                    part = self.restart(part, transfer).await?;
                    response = self.request(job, 0).await?;
                    0
                }
            }
            StatusCode::OK | StatusCode::RANGE_NOT_SATISFIABLE => {
                if resumed > 0 {
                    part = self.restart(part, transfer).await?;
                }
                if status == StatusCode::RANGE_NOT_SATISFIABLE {
                    response = self.request(job, 0).await?;
                }
                0
            }
            _ => 0,
        };
        check_status(job, response.status())?;
        Ok((response, part, start))
    }

    /// One database write per attempt the media host answered: it is
    /// counted, and bytes starting from zero get their validator, for a
    /// later resume.
    async fn record_answer(
        &self,
        job: &Job,
        headers: &header::HeaderMap,
        start: u64,
    ) -> Result<(), AttemptError> {
        let fresh_validator = (start == 0).then(|| validator(headers));
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        self.with_store(move |store| {
            store.mark_downloading(
                &media_id,
                &label,
                fresh_validator.as_ref().map(Option::as_deref),
                crate::now_ms(),
            )
        })
        .await
    }

    /// Checks that need no body, before any bandwidth is spent: the
    /// `Content-Type` and the announced length.
    async fn check_headers(
        &self,
        job: &Job,
        response: &reqwest::Response,
        part: Sink,
        start: u64,
    ) -> Result<Sink, AttemptError> {
        let header_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        if !header_agrees(&job.content_type, header_type) {
            let reason = format!(
                "the media host sent Content-Type `{}`, Vault+ declared `{}`",
                header_type.unwrap_or_default(),
                job.content_type
            );
            return Err(self.quarantine(job, part, reason).await);
        }
        let remaining = job.size - start;
        if let Some(announced) = response.content_length()
            && announced != remaining
        {
            let reason = format!(
                "the media host announced {announced} bytes, {remaining} were expected (Vault+ declared {} in all)",
                job.size
            );
            return Err(self.quarantine(job, part, reason).await);
        }
        Ok(part)
    }

    /// Streams the body into the `.part` (written and hashed on its own
    /// thread), within `--limit-rate` and the stall timeout. Returns the
    /// `.part` holding every declared byte.
    async fn stream(
        &self,
        job: &Job,
        response: reqwest::Response,
        part: Sink,
        transfer: TransferId,
        received: &mut u64,
    ) -> Result<Sink, AttemptError> {
        let stall = self.context.settings.network.stall_timeout;
        let shown = self
            .context
            .settings
            .local
            .join(part_path(&job.relative_path));
        let failed = |error| sink_error(error, &shown);
        let mut written = part.len();
        let mut writer = SinkWriter::start(part);
        let mut body = response.bytes_stream();
        loop {
            let chunk = match tokio::time::timeout(stall, body.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    let reason = format!(
                        "the body was cut off at {written} of {} bytes: {}",
                        job.size,
                        scrub(&error_chain(&error.without_url()))
                    );
                    return Err(self.keep(job, writer, reason, &shown).await);
                }
                Err(_) => {
                    let reason = format!("stalled: no data for {}s", stall.as_secs());
                    return Err(self.keep(job, writer, reason, &shown).await);
                }
            };
            let length = chunk.len() as u64;
            if written + length > job.size {
                let part = writer.finish().await.map_err(failed)?;
                let reason = format!(
                    "the media host sent more than the {} bytes Vault+ declared",
                    job.size
                );
                return Err(self.quarantine(job, part, reason).await);
            }
            self.spend_bandwidth(chunk.len()).await;
            writer.write(&chunk).await.map_err(failed)?;
            // Copied: dropped now, not after the awaits below, so hyper
            // can read into its buffer again (see `blocks`).
            drop(chunk);
            written += length;
            *received += length;
            self.count_bytes(transfer, length);
            self.record_points(job, &mut writer).await?;
        }
        if written < job.size {
            let reason = format!("the body ended at {written} of {} bytes", job.size);
            return Err(self.keep(job, writer, reason, &shown).await);
        }
        writer.finish().await.map_err(failed)
    }

    /// Counts `length` new bytes of `transfer`: for the summary's first
    /// byte, the re-sign rate, and the reporter.
    fn count_bytes(&self, transfer: TransferId, length: u64) {
        let context = self.context;
        let first_byte_at = &context.counters.first_byte_at;
        if first_byte_at.load(Ordering::Relaxed) == 0 {
            let _ = first_byte_at.compare_exchange(
                0,
                crate::now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.resign
            .throughput
            .bytes
            .fetch_add(length, Ordering::Relaxed);
        context.reporter.on_bytes(transfer, length);
    }

    /// The checks on the whole file: the magic bytes against the declared
    /// content type.
    async fn check_bytes(&self, job: &Job, part: Sink) -> Result<Sink, AttemptError> {
        let reason = match sniff(&job.content_type, part.head()) {
            Sniff::Agrees | Sniff::NotCheckable => return Ok(part),
            Sniff::Disagrees(found) => format!(
                "the file's bytes are {found}, Vault+ declared `{}`",
                job.content_type
            ),
            Sniff::Unrecognised => format!(
                "the file's bytes are not {} (unrecognised signature)",
                job.content_type
            ),
        };
        Err(self.quarantine(job, part, reason).await)
    }

    /// Every byte is in and checked: the bytes a change upstream replaces
    /// go to `.versions/` (or, no longer as verified, to the quarantine,
    /// and the run is told), then the `.part` takes the final name or the
    /// upload is completed at its key (visible only now, whole), and the
    /// variant is verified. A failure before the last step leaves what was
    /// there in place; a failed completion aborts the upload and the item
    /// is tried again from zero.
    async fn commit(
        &self,
        job: &Job,
        transfer: TransferId,
        name: &str,
        part: Sink,
    ) -> Result<(), AttemptError> {
        let relative = key_of(&job.relative_path);
        let size = part.len();
        if self
            .context
            .bucket
            .as_ref()
            .is_some_and(|run| run.lease_lost())
        {
            let _ = part.reset().await;
            return Err(AttemptError::LeaseLost(BucketRunError::LeaseLost.into()));
        }
        let incoming = match &part {
            Sink::Part(part) => part.sha256(),
            Sink::Upload(upload) => upload.sha256(),
        };
        let replaced = match self.keep_previous(job, &relative, &incoming).await {
            Ok(replaced) => replaced,
            Err(error) => {
                if let Sink::Upload(mut upload) = part {
                    upload.abort().await;
                }
                return Err(error);
            }
        };
        for aside in &replaced.quarantined {
            self.context.reporter.on_note(&aside.note(name));
        }
        let sha256 = match part {
            Sink::Part(part) => {
                let shown = self.context.settings.local.join(&job.relative_path);
                let final_name = job.relative_path.file_name().unwrap_or_default().to_owned();
                off_reactor(move || part.commit(&final_name))
                    .await
                    .map_err(|error| local_error(error, &shown))?
            }
            Sink::Upload(upload) => match upload.commit().await {
                Ok(sha256) => sha256,
                Err(error @ BucketError::Metadata { .. }) => {
                    return Err(self.unsealed(job, relative, incoming, size, &error).await);
                }
                Err(error) => {
                    return Err(AttemptError::Transient(format!(
                        "completing the upload failed: {}",
                        crate::report::chain(&error)
                    )));
                }
            },
        };
        self.record_verified(job, transfer, name, relative, sha256, size)
            .await
    }

    /// [`keep_previous`] for this job: a broken database is the store's
    /// error (which may stop the run); anything else fails the item.
    async fn keep_previous(
        &self,
        job: &Job,
        relative: &str,
        incoming_sha256: &str,
    ) -> Result<Replaced, AttemptError> {
        let context = &self.context;
        keep_previous(
            &context.archive,
            &context.store,
            &job.media_id,
            &job.label,
            relative,
            incoming_sha256,
        )
        .await
        .map_err(|error| match error {
            ArchiveError::Store(error) => store_error(error),
            error => AttemptError::Local(LocalFailure::KeepPrevious(error)),
        })
    }

    /// The variant is verified at `relative` (its bytes are in place).
    async fn record_verified(
        &self,
        job: &Job,
        transfer: TransferId,
        name: &str,
        relative: String,
        sha256: String,
        size: u64,
    ) -> Result<(), AttemptError> {
        let (path, digest) = (relative.clone(), sha256.clone());
        self.record_bytes(job, relative, sha256, size, true).await?;
        self.context
            .reporter
            .on_verified(transfer, name, &path, size, &digest);
        Ok(())
    }

    /// The object is whole at `relative` but the store refused its sha256
    /// metadata after every retry: not verified (the caller's failure
    /// marks it `failed`), and recorded with its sha256 so the next run
    /// sets the metadata from the object's own bytes instead of fetching
    /// them again (`archive::bucket::seal`). No retry in this run: the
    /// request was tried as often as the store's retry policy allows.
    async fn unsealed(
        &self,
        job: &Job,
        relative: String,
        sha256: String,
        size: u64,
        error: &BucketError,
    ) -> AttemptError {
        let reason = format!(
            "{}; the bytes are whole at {relative}, so the next run sets it from them without fetching them again",
            crate::report::chain(error)
        );
        match self.record_bytes(job, relative, sha256, size, false).await {
            Ok(()) => AttemptError::Permanent(reason),
            Err(error) => error,
        }
    }

    /// Records the bytes committed at `relative`: the variant verified,
    /// or (`sealed` false: their sha256 is not on their object) not.
    async fn record_bytes(
        &self,
        job: &Job,
        relative: String,
        sha256: String,
        size: u64,
        sealed: bool,
    ) -> Result<(), AttemptError> {
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        self.with_store(move |store| {
            let (size, now) = (ByteSize(size), EpochMillis(crate::now_ms()));
            if sealed {
                store.mark_verified(&media_id, &label, &relative, &sha256, size, now)
            } else {
                store.mark_unsealed(&media_id, &label, &relative, &sha256, size, now)
            }
        })
        .await
    }

    /// Records a failed check of bytes that were never kept.
    async fn mark_quarantined(&self, job: &Job, reason: String) -> AttemptError {
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        let recorded = reason.clone();
        let marked = self
            .with_store(move |store| {
                store.mark_unfinished(
                    &media_id,
                    &label,
                    LocalState::Quarantined,
                    &recorded,
                    crate::now_ms(),
                )
            })
            .await;
        match marked {
            Ok(()) => AttemptError::Verification(reason),
            Err(error) => error,
        }
    }

    /// A database write, off the async workers.
    async fn with_store<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AttemptError> {
        let context = Arc::clone(self.context);
        tokio::task::spawn_blocking(move || write(&context.store))
            .await
            .map_err(|error| AttemptError::Local(error.into()))?
            .map_err(store_error)
    }

    /// Waits until `--limit-rate` allows `bytes` more (no-op without a cap).
    async fn spend_bandwidth(&self, bytes: usize) {
        if let Some(bandwidth) = &self.bandwidth {
            bandwidth.spend(bytes).await;
        }
    }

    /// Asks the media host for the job's bytes from `offset` on.
    async fn request(&self, job: &Job, offset: u64) -> Result<reqwest::Response, AttemptError> {
        let stall: Duration = self.context.settings.network.stall_timeout;
        let mut request = self.http.get(job.url.clone());
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

    /// Drops every byte of the `.part`: the transfer starts over.
    async fn restart(&self, part: Sink, transfer: TransferId) -> Result<Sink, AttemptError> {
        self.context.reporter.on_rewind(transfer, part.len());
        part.reset()
            .await
            .map_err(|error| AttemptError::Local(error.into()))
    }

    /// A transient failure mid-body: the bytes so far are made durable to
    /// resume from, and the attempt ends with `reason`.
    async fn keep(
        &self,
        job: &Job,
        mut writer: SinkWriter,
        reason: String,
        shown: &std::path::Path,
    ) -> AttemptError {
        if let Err(error) = self.record_points(job, &mut writer).await {
            return error;
        }
        let kept = match writer.finish().await {
            Ok(Sink::Part(mut part)) => off_reactor(move || part.keep()).await,
            Ok(Sink::Upload(upload)) => {
                // Kept open for the next attempt in this run (and, with
                // points recorded, for the next run: see `BucketRun::finish`).
                if let Some(run) = &self.context.bucket {
                    run.park(job.size, upload);
                }
                Ok(Vec::new())
            }
            Err(error) => return sink_error(error, shown),
        };
        let points = match kept {
            Ok(points) => points,
            Err(error) => return local_error(error, shown),
        };
        if points.is_empty() {
            return AttemptError::Transient(reason);
        }
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        let recorded = self
            .with_store(move |store| store.record_resume_points(&media_id, &label, None, &points))
            .await;
        match recorded {
            Ok(()) => AttemptError::Transient(reason),
            Err(error) => error,
        }
    }

    /// Sets failed bytes aside under `.vault-mirror/quarantine/` (kept for
    /// inspection; the next quarantine of the same variant replaces them).
    async fn quarantine(&self, job: &Job, part: Sink, reason: String) -> AttemptError {
        let part = match part {
            Sink::Part(part) => part,
            Sink::Upload(mut upload) => {
                // Nothing of it ever became visible: dropping it is enough.
                upload.abort().await;
                return self.mark_quarantined(job, reason).await;
            }
        };
        let context = self.context.clone();
        let (media_id, label) = (job.media_id.clone(), job.label.clone());
        let file_name = job.relative_path.file_name().unwrap_or_default().to_owned();
        let recorded = reason.clone();
        let set_aside = off_reactor(move || {
            part.quarantine(&context.folder, &media_id, &file_name)?;
            let _ = context.store.mark_unfinished(
                &media_id,
                &label,
                LocalState::Quarantined,
                &recorded,
                crate::now_ms(),
            );
            Ok(())
        })
        .await;
        match set_aside {
            Ok(()) => AttemptError::Verification(reason),
            Err(source) => AttemptError::Local(LocalFailure::SetAside { reason, source }),
        }
    }
}
