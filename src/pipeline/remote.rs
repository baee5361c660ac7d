//! A run on an archive on object storage (`--out s3://bucket/prefix`):
//! before the stages, the lease, the state database from the bucket's
//! snapshot when this machine has none, the uploads a killed run left
//! aborted, and the list of objects already there; after them, every
//! upload of the run completed or aborted, the snapshot written, and the
//! lease given back.
//!
//! Invariants: the stages start only with the lease held; an object
//! counts as present only if it is listed at the size it was verified at;
//! when a run ends (even by a stop signal) no upload it started is left
//! open; a kill leaves at most the uploads in the ledger, which the next
//! run aborts before it starts any.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::report::Reporter;
use crate::settings::{Settings, SettingsError};
use crate::storage::lease::Lease;
use crate::storage::snapshot::{restore_snapshot, upload_snapshot};
use crate::storage::upload::{RemoteUpload, UploadLedger};
use crate::storage::{ObjectArchive, StorageError};
use crate::store::Store;

/// What the stages of a run on object storage share.
pub struct Remote {
    pub archive: ObjectArchive,
    pub ledger: UploadLedger,
    /// Objects under `media/` when the run began: relative key → size.
    inventory: HashMap<String, u64>,
    /// Uploads a transient failure interrupted, kept for the next attempt
    /// of the same item in this run: key → (declared size, upload).
    parked: Mutex<HashMap<String, (u64, Box<RemoteUpload>)>>,
    /// Set when the lease was taken over by another run (see [`Lease::lost`]).
    lease_lost: Arc<AtomicBool>,
}

/// Why a run on object storage cannot start or end well.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The AWS environment cannot be used (exit 2).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Stopped(String),
}

impl From<StorageError> for RemoteError {
    /// An unusable AWS environment is a usage error (exit 2); anything
    /// else stops the run.
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Config(reason) => RemoteError::Settings(SettingsError::Invalid {
                name: "object storage (--out s3://…)",
                reason,
            }),
            error => RemoteError::Stopped(error.to_string()),
        }
    }
}

/// A storage failure that stops a run.
pub fn stopped(what: &str, error: impl std::fmt::Display) -> RemoteError {
    RemoteError::Stopped(format!("{what}: {error}"))
}

impl Remote {
    /// Opens the archive, takes its lease, restores the state database
    /// from the snapshot if this machine has none, aborts the uploads a
    /// killed run left, and lists what is there.
    pub async fn open(
        settings: &Settings,
        command: &str,
        reporter: &dyn Reporter,
    ) -> Result<Option<(Remote, Lease)>, RemoteError> {
        let Some(url) = &settings.remote else {
            return Ok(None);
        };
        let archive = ObjectArchive::open(url)?;
        let lease = Lease::acquire(&archive, command)
            .await
            .map_err(|error| stopped(&format!("taking the lease of {url}"), error))?;
        if let Some(previous) = &lease.took_over {
            reporter.on_note(&format!(
                "took over the lease of {url} from `{}` (pid {}) on {}: that run is gone",
                previous.command, previous.pid, previous.host
            ));
        }
        let ready = Self::prepare(settings, archive, lease.lost(), reporter).await;
        match ready {
            Ok(remote) => Ok(Some((remote, lease))),
            Err(error) => {
                lease.release().await;
                Err(error)
            }
        }
    }

    async fn prepare(
        settings: &Settings,
        archive: ObjectArchive,
        lease_lost: Arc<AtomicBool>,
        reporter: &dyn Reporter,
    ) -> Result<Remote, RemoteError> {
        if restore_snapshot(&archive, &settings.db)
            .await
            .map_err(|error| stopped("restoring the state database from the archive", error))?
        {
            reporter.on_note(&format!(
                "no local state database: started from the archive's snapshot ({})",
                crate::storage::snapshot::SNAPSHOT_KEY
            ));
        }
        let ledger = UploadLedger::new(&settings.out.join(".vault-mirror").join("uploads"));
        let aborted = ledger.abort_leftovers(&archive).await;
        if aborted > 0 {
            reporter.on_note(&format!(
                "aborted {aborted} unfinished upload(s) a stopped run left; their items are fetched again"
            ));
        }
        let inventory = archive
            .list("media")
            .await
            .map_err(|error| stopped("listing the archive", error))?;
        Ok(Remote {
            archive,
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

    /// The objects under `media/` when the run began: key → size.
    pub fn inventory(&self) -> &HashMap<String, u64> {
        &self.inventory
    }

    /// Keeps an interrupted upload for the next attempt of the same item.
    pub fn park(&self, size: u64, upload: Box<RemoteUpload>) {
        if let Ok(mut parked) = self.parked.lock() {
            parked.insert(upload.relative().to_owned(), (size, upload));
        }
    }

    /// The upload a previous attempt of this item left, if it was for the
    /// same declared size.
    pub async fn unpark(&self, relative: &str, size: u64) -> Option<Box<RemoteUpload>> {
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

    /// The end of a run: every upload it left open aborted, then a
    /// consistent snapshot of the state database written to the archive.
    pub async fn finish(&self, store: &Store) -> Result<(), RemoteError> {
        let parked: Vec<_> = match self.parked.lock() {
            Ok(mut parked) => parked.drain().map(|(_, (_, upload))| upload).collect(),
            Err(_) => Vec::new(),
        };
        for mut upload in parked {
            upload.abort().await;
        }
        // Uploads dropped mid-way (a stop signal) are still in the ledger.
        self.ledger.abort_leftovers(&self.archive).await;
        if self.lease_lost() {
            // The archive is another run's now: its snapshot is its own.
            return Ok(());
        }
        let copy = self.ledger.folder().with_file_name("snapshot.sqlite");
        let _ = fs_err::remove_file(&copy);
        store
            .backup_to(&copy)
            .map_err(|error| stopped("copying the state database", error))?;
        let uploaded = upload_snapshot(&self.archive, &copy, &self.ledger).await;
        let _ = fs_err::remove_file(&copy);
        uploaded.map_err(|error| stopped("writing the state snapshot to the archive", error))
    }
}
