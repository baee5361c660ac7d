//! A run on an archive on object storage (`--out s3://bucket/prefix`):
//! before the stages, the lease, the state database from the bucket's
//! snapshot when this machine has none, the uploads a killed run left
//! aborted, and the list of objects already there; after them, every
//! upload of the run completed or aborted, the snapshot written, and the
//! lease given back. A run another run of this process started while it
//! holds the lease (`verify --repair`'s refetch, see [`crate::pipeline::leased`])
//! works under that lease and takes none of its own.
//!
//! Invariants: the stages start only with the lease held; an object
//! counts as present only if it is listed at the size it was verified at;
//! when a run ends (even by a stop signal) no upload it started is left
//! open but those kept to resume (recorded in the state database with
//! their parts: see `docs/resuming.md`); a kill leaves at most the
//! uploads in the ledger, which the next run aborts before it starts any,
//! unless they are kept to resume.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::archive::bucket::lease::{Lease, LeaseError};
use crate::archive::bucket::s3::ConfigError;
use crate::archive::bucket::seal::{Sealing, seal};
use crate::archive::bucket::snapshot::{restore_snapshot, upload_snapshot};
use crate::archive::bucket::upload::{Upload, UploadLedger};
use crate::archive::bucket::{Bucket, BucketError};
use crate::location::S3Url;
use crate::report::Reporter;
use crate::settings::Settings;
use crate::store::{ArchivedVariant, LocalState, Store, StoreError, Unsealed};
use crate::units::{ByteSize, EpochMillis};
use futures::StreamExt;

tokio::task_local! {
    /// Set while a run of this task holds the archive's lease: whether
    /// another run took it over.
    pub(crate) static HELD: Arc<AtomicBool>;
}

/// What the stages of a run on object storage share.
pub struct BucketRun {
    pub bucket: Bucket,
    pub ledger: UploadLedger,
    /// Objects under `media/` when the run began: relative key → size.
    inventory: HashMap<String, u64>,
    /// The same objects: relative key → when the store last wrote them
    /// (epoch ms, the store's clock).
    written: HashMap<String, i64>,
    /// How far the store's clock is ahead of ours (negative: behind), as
    /// the lease's probe read it; 0 under another run's lease.
    store_ahead_ms: i64,
    /// Uploads a transient failure interrupted, kept for the next attempt
    /// of the same item in this run: key → (declared size, upload).
    parked: Mutex<HashMap<String, (u64, Box<Upload>)>>,
    /// Set when the lease was taken over by another run (see [`Lease::lost`]).
    lease_lost: Arc<AtomicBool>,
}

/// The multipart uploads the store holds under the archive's prefix,
/// neither completed nor aborted (`status`); None on a disk.
pub async fn incomplete_uploads(settings: &Settings) -> Result<Option<usize>, BucketRunError> {
    let Some(url) = settings.archive.bucket() else {
        return Ok(None);
    };
    let bucket = Bucket::open(url).map_err(|error| BucketRunError::at("opening", error))?;
    bucket
        .incomplete_uploads()
        .await
        .map(|uploads| Some(uploads.len()))
        .map_err(|error| BucketRunError::at("listing the incomplete uploads", error))
}

/// Why a run on object storage cannot start or end well.
#[derive(Debug, thiserror::Error)]
pub enum BucketRunError {
    /// The AWS environment cannot be used (exit 2).
    #[error("object storage (--out s3://…)")]
    Config(#[source] ConfigError),
    #[error("taking the lease of {url}")]
    Lease {
        url: S3Url,
        #[source]
        source: LeaseError,
    },
    /// A step of the run's start or end failed on the store.
    #[error("{step}")]
    Bucket {
        step: &'static str,
        #[source]
        source: BucketError,
    },
    #[error("copying the state database")]
    Store(#[source] StoreError),
    /// Another run took the archive's lease over: nothing more may be
    /// written, so the run stops.
    #[error(
        "another run took over the archive's lease: this run stops, and completes nothing more"
    )]
    LeaseLost,
}

impl BucketRunError {
    /// Whether this is a set-up mistake found before the run changed
    /// anything (exit 2): an unusable AWS environment, or a first write
    /// (the lease) that failed for a reason `diagnose` names (credentials,
    /// bucket, region, endpoint, certificate).
    pub fn is_setup(&self) -> bool {
        match self {
            BucketRunError::Config(_)
            | BucketRunError::Lease {
                source: LeaseError::ConditionsIgnored { .. },
                ..
            } => true,
            BucketRunError::Lease {
                source: LeaseError::Storage(error),
                ..
            } => crate::archive::bucket::diagnose::diagnose(error).is_some(),
            _ => false,
        }
    }

    /// `source` failed during `step`; an unusable AWS environment is a
    /// usage error (exit 2) whatever the step.
    pub fn at(step: &'static str, source: BucketError) -> Self {
        match source {
            BucketError::Config(reason) => BucketRunError::Config(reason),
            source => BucketRunError::Bucket { step, source },
        }
    }
}

impl BucketRun {
    /// Opens the archive, takes its lease (none if this task holds it
    /// already: see [`HELD`]), restores the state database from the
    /// snapshot if this machine has none, aborts the uploads a killed run
    /// left, and, with `list`, lists what is there.
    pub async fn open(
        settings: &Settings,
        command: &str,
        list: bool,
        reporter: &dyn Reporter,
    ) -> Result<Option<(BucketRun, Option<Lease>)>, BucketRunError> {
        let Some(url) = settings.archive.bucket() else {
            return Ok(None);
        };
        let bucket = Bucket::open(url).map_err(|error| BucketRunError::at("opening", error))?;
        let (lease, lost) = match HELD.try_with(Arc::clone) {
            Ok(lost) => (None, lost),
            Err(_) => {
                let lease =
                    Self::lease(&bucket, url, command, settings.single_writer, reporter).await?;
                let lost = lease.lost();
                (Some(lease), lost)
            }
        };
        let store_ahead_ms = lease.as_ref().map_or(0, |lease| lease.store_ahead_ms);
        match Self::prepare(settings, bucket, lost, list, reporter).await {
            Ok(run) => Ok(Some((
                BucketRun {
                    store_ahead_ms,
                    ..run
                },
                lease,
            ))),
            Err(error) => {
                if let Some(lease) = lease {
                    lease.release().await;
                }
                Err(error)
            }
        }
    }

    async fn lease(
        bucket: &Bucket,
        url: &S3Url,
        command: &str,
        single_writer: bool,
        reporter: &dyn Reporter,
    ) -> Result<Lease, BucketRunError> {
        let lease = Lease::acquire(bucket, command, single_writer)
            .await
            .map_err(|source| match source {
                LeaseError::Storage(error @ BucketError::Config(_)) => {
                    BucketRunError::at("taking the lease", error)
                }
                source => BucketRunError::Lease {
                    url: url.clone(),
                    source,
                },
            })?;
        if let Some(previous) = &lease.took_over {
            reporter.on_note(&format!(
                "took over the lease of {url} from `{}` (pid {}) on {}: that run is gone",
                previous.command, previous.pid, previous.host
            ));
        }
        Ok(lease)
    }

    async fn prepare(
        settings: &Settings,
        bucket: Bucket,
        lease_lost: Arc<AtomicBool>,
        list: bool,
        reporter: &dyn Reporter,
    ) -> Result<BucketRun, BucketRunError> {
        if restore_snapshot(&bucket, &settings.db)
            .await
            .map_err(|error| {
                BucketRunError::at("restoring the state database from the archive", error)
            })?
        {
            reporter.on_note(&format!(
                "no local state database: started from the archive's snapshot ({})",
                crate::archive::bucket::snapshot::SNAPSHOT_KEY
            ));
        }
        let ledger = UploadLedger::new(&settings.local.join(".vault-mirror").join("uploads"));
        // The uploads kept open to resume stay (the database says which);
        // a database that cannot be read keeps none.
        let store = Store::open(&settings.db).ok();
        let kept = |key: &str, id: &str| {
            store
                .as_ref()
                .is_some_and(|store| resumable(store, key, id))
        };
        let aborted = ledger.abort_leftovers(&bucket, &kept).await;
        drop(store);
        if aborted > 0 {
            reporter.on_note(&format!(
                "aborted {aborted} unfinished upload(s) a stopped run left; their items are fetched again"
            ));
        }
        let listed = if list {
            bucket
                .list_written("media")
                .await
                .map_err(|error| BucketRunError::at("listing the archive", error))?
        } else {
            HashMap::new()
        };
        let inventory = listed
            .iter()
            .map(|(key, (size, _))| (key.clone(), *size))
            .collect();
        let written = listed
            .into_iter()
            .map(|(key, (_, written))| (key, written))
            .collect();
        Ok(BucketRun {
            bucket,
            ledger,
            inventory,
            written,
            store_ahead_ms: 0,
            parked: Mutex::new(HashMap::new()),
            lease_lost,
        })
    }

    /// Whether another run took the archive's lease over: nothing more
    /// may be written.
    pub fn lease_lost(&self) -> bool {
        self.lease_lost.load(Ordering::SeqCst)
    }

    /// The flag [`Self::lease_lost`] reads, shared with the runs started
    /// under this run's lease.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lease_lost.clone()
    }

    /// The objects under `media/` when the run began: key → size (none
    /// when it was opened without `list`).
    pub fn inventory(&self) -> &HashMap<String, u64> {
        &self.inventory
    }

    /// Before a mirror run's stages: every object that may lack its
    /// sha256 metadata gets it from its own bytes ([`mend`]) — those a run
    /// left unsealed (the store refused the metadata), and verified ones
    /// the store wrote after they were verified (by the store's clock:
    /// stripped or replaced by someone else). An object the run itself
    /// wrote is never newer than its verification, so an unchanged
    /// archive costs no request here.
    pub async fn mend(&self, store: &Store, reporter: &dyn Reporter) -> Result<Mended, StoreError> {
        let mut objects: Vec<(Unsealed, Looked)> = store
            .unsealed()?
            .into_iter()
            .map(|object| (object, Looked::Unsealed))
            .collect();
        for variant in store.archived_variants()? {
            let (Some(&written), Some(verified_at)) =
                (self.written.get(&variant.local_path), variant.verified_at)
            else {
                continue;
            };
            // Last-Modified is whole seconds, and the clocks' offset is
            // read to about one: anything closer is our own write.
            if written > verified_at + self.store_ahead_ms + CLOCK_SLACK_MS {
                objects.push((sealed_as_verified(variant), Looked::Rewritten));
            }
        }
        mend(&self.bucket, store, objects, reporter).await
    }

    /// Keeps an interrupted upload for the next attempt of the same item.
    pub fn park(&self, size: u64, upload: Box<Upload>) {
        if let Ok(mut parked) = self.parked.lock() {
            parked.insert(upload.relative().to_owned(), (size, upload));
        }
    }

    /// The upload a previous attempt of this item left, if it was for the
    /// same declared size.
    pub async fn unpark(&self, relative: &str, size: u64) -> Option<Box<Upload>> {
        let found = self.parked.lock().ok()?.remove(relative);
        match found {
            Some((parked_size, upload)) if parked_size == size => Some(upload),
            Some((_, mut upload)) => {
                upload.abort().await;
                None
            }
            None => None,
        }
    }

    /// The end of a run: every upload it left open aborted but those kept
    /// to resume (recorded with their parts in the state database), then
    /// a consistent snapshot of the state database written to the archive.
    pub async fn finish(&self, store: &Store) -> Result<(), BucketRunError> {
        let parked: Vec<_> = match self.parked.lock() {
            Ok(mut parked) => parked.drain().map(|(_, (_, upload))| upload).collect(),
            Err(_) => Vec::new(),
        };
        let kept = |key: &str, id: &str| resumable(store, key, id);
        for mut upload in parked {
            let key = upload.relative().to_owned();
            if !upload.upload_id().is_some_and(|id| kept(&key, id)) {
                upload.abort().await;
            }
        }
        // Uploads dropped mid-way (a stop signal) are still in the ledger.
        self.ledger.abort_leftovers(&self.bucket, &kept).await;
        if self.lease_lost() {
            // The archive is another run's now: its snapshot is its own.
            return Ok(());
        }
        self.abort_unknown_uploads(store).await;
        let copy = self.ledger.folder().with_file_name("snapshot.sqlite");
        let _ = fs_err::remove_file(&copy);
        store.backup_to(&copy).map_err(BucketRunError::Store)?;
        let uploaded = upload_snapshot(&self.bucket, &copy, &self.ledger).await;
        let _ = fs_err::remove_file(&copy);
        uploaded
            .map_err(|error| BucketRunError::at("writing the state snapshot to the archive", error))
    }

    /// Aborts the uploads the store still holds under the archive's prefix
    /// that the ledger does not know (one whose CreateMultipartUpload
    /// answer was lost, or a killed run's on a machine that lost its
    /// state) and that are not kept to resume: with the lease held, no
    /// other run writes there, so every other upload left is a leftover.
    /// A store that cannot list them is only logged: the ledger's uploads
    /// were aborted already. Every run on object storage ends so
    /// (`mirror`, `verify`, `verify --repair`, `export`).
    async fn abort_unknown_uploads(&self, store: &Store) {
        let left = match self.bucket.incomplete_uploads().await {
            Ok(left) => left,
            Err(error) if error.is_not_implemented() => {
                tracing::warn!(
                    "object storage: the store cannot list incomplete uploads (it answered HTTP 501 Not Implemented): the ones this machine's runs left were aborted, but one a run on another machine left is not seen from here; a lifecycle rule (AbortIncompleteMultipartUpload) on the bucket removes such leftovers"
                );
                return;
            }
            Err(error) => {
                tracing::warn!("{}", crate::report::chain(&error));
                return;
            }
        };
        for (key, id) in left {
            if resumable(store, &key, &id) {
                continue;
            }
            match self.bucket.abort_upload(&key, &id).await {
                Ok(()) => tracing::info!("aborted an upload to {key} that no record named"),
                Err(error) => tracing::warn!("{}", crate::report::chain(&error)),
            }
        }
    }
}

/// Whether the upload `id` to `key` is ours and kept open to resume
/// ([`Store::is_resumable_upload`]); a database that cannot answer keeps
/// none (the transfer starts over, which is always safe).
fn resumable(store: &Store, key: &str, id: &str) -> bool {
    store
        .is_resumable_upload(key, id, crate::units::EpochMillis(crate::now_ms()))
        .unwrap_or(false)
}

/// How much later than its verification (by the store's clock) an
/// object must have been written to be looked at again.
const CLOCK_SLACK_MS: i64 = 2_000;

/// What [`mend`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Mended {
    /// Objects looked at (one `HEAD` each).
    pub looked_at: u64,
    /// Objects given their sha256 metadata again from their own bytes.
    pub set: u64,
    /// Variants verified again without fetching (their metadata write had
    /// failed).
    pub verified: u64,
    /// Verified variants whose object is not the bytes verified: handed
    /// back to be fetched.
    pub differ: u64,
    /// Objects the store still would not give their metadata.
    pub failed: u64,
}

/// Why an object is looked at by [`mend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looked {
    /// A run left its variant unverified: the store refused its metadata.
    Unsealed,
    /// Its variant is verified (`verify --repair` looks at every one).
    Verified,
    /// Its variant is verified, and the store wrote it since.
    Rewritten,
}

/// A verified variant as an object to check for its sha256.
pub fn sealed_as_verified(variant: ArchivedVariant) -> Unsealed {
    Unsealed {
        media_id: variant.media_id,
        label: variant.label,
        local_path: variant.local_path,
        sha256: variant.sha256,
        size: ByteSize(u64::try_from(variant.size).unwrap_or(u64::MAX)),
        content_type: variant.content_type.unwrap_or_default(),
    }
}

/// Gives each of `objects` its sha256 metadata where it lacks it
/// ([`seal`]), a few at a time. An unsealed one sealed is verified now; a
/// verified one sealed again (or rewritten and still carrying it) has its
/// verification moved on; a verified one whose object holds other bytes
/// goes back to `missing`, to be fetched (and its bytes set aside) by a
/// run; a store that still refuses is logged, and the next run tries
/// again.
pub async fn mend(
    bucket: &Bucket,
    store: &Store,
    objects: Vec<(Unsealed, Looked)>,
    reporter: &dyn Reporter,
) -> Result<Mended, StoreError> {
    let mut mended = Mended::default();
    let results: Vec<_> = futures::stream::iter(objects)
        .map(|(object, looked)| async move {
            let result = seal(bucket, &object).await;
            (object, looked, result)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let now = EpochMillis(crate::now_ms());
    for (object, looked, result) in results {
        mended.looked_at += 1;
        let key = &object.local_path;
        let (media_id, label) = (&object.media_id, &object.label);
        let sealing = match result {
            Ok(sealing) => sealing,
            Err(error) => {
                mended.failed += 1;
                tracing::warn!("{}; a later run tries again", crate::report::chain(&error));
                continue;
            }
        };
        if sealing == Sealing::Set {
            mended.set += 1;
            reporter.on_note(&format!(
                "{key} lacked its sha256 metadata: set from its bytes in the store (not fetched again)"
            ));
        }
        match (sealing, looked) {
            (Sealing::Set | Sealing::Carried, Looked::Unsealed) => {
                mended.verified += 1;
                let sha256 = &object.sha256;
                store.mark_verified(media_id, label, key, sha256, object.size, now)?;
            }
            (Sealing::Set, _) | (Sealing::Carried, Looked::Rewritten) => {
                store.reverified(media_id, label, now)?;
            }
            (Sealing::Differs(why), Looked::Verified | Looked::Rewritten) => {
                mended.differ += 1;
                let reason = format!("the object is not the bytes verified: {why}");
                reporter.on_note(&format!("{key}: {reason}; fetched again"));
                store.mark_unfinished(media_id, label, LocalState::Missing, &reason, now.0)?;
            }
            _ => {}
        }
    }
    Ok(mended)
}
