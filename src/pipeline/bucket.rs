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
use crate::archive::bucket::snapshot::{restore_snapshot, upload_snapshot};
use crate::archive::bucket::upload::{Upload, UploadLedger};
use crate::archive::bucket::{Bucket, BucketError};
use crate::location::S3Url;
use crate::report::Reporter;
use crate::settings::Settings;
use crate::store::{Store, StoreError};

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
    /// Uploads a transient failure interrupted, kept for the next attempt
    /// of the same item in this run: key → (declared size, upload).
    parked: Mutex<HashMap<String, (u64, Box<Upload>)>>,
    /// Set when the lease was taken over by another run (see [`Lease::lost`]).
    lease_lost: Arc<AtomicBool>,
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
            BucketRunError::Config(_) => true,
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
                let lease = Self::lease(&bucket, url, command, reporter).await?;
                let lost = lease.lost();
                (Some(lease), lost)
            }
        };
        match Self::prepare(settings, bucket, lost, list, reporter).await {
            Ok(run) => Ok(Some((run, lease))),
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
        reporter: &dyn Reporter,
    ) -> Result<Lease, BucketRunError> {
        let lease = Lease::acquire(bucket, command)
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
        let inventory = if list {
            bucket
                .list("media")
                .await
                .map_err(|error| BucketRunError::at("listing the archive", error))?
        } else {
            HashMap::new()
        };
        Ok(BucketRun {
            bucket,
            ledger,
            inventory,
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
    /// were aborted already.
    async fn abort_unknown_uploads(&self, store: &Store) {
        let left = match self.bucket.incomplete_uploads().await {
            Ok(left) => left,
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
