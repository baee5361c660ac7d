//! What every stage of a run shares: the [`Context`] (settings, API
//! client, store, the archive, the reporter, the limits of the process)
//! and the [`Counters`] the core keeps while a run goes on.

use std::sync::atomic::AtomicU64;

use crate::api::ApiClient;
use crate::archive::{Archive, ArchiveDir};
use crate::pipeline::bucket::BucketRun;
use crate::pipeline::limits::Limits;
use crate::pipeline::plan::Archived;
use crate::report::Reporter;
use crate::settings::Settings;
use crate::store::Store;

/// Counts the core keeps while a run goes on (for the summary).
#[derive(Debug, Default)]
pub struct Counters {
    pub urls_resigned: AtomicU64,
    pub resign_calls: AtomicU64,
    pub expired_urls: AtomicU64,
    pub transfer_retries: AtomicU64,
    /// When the first media byte of the run arrived (epoch ms; 0: not yet).
    pub first_byte_at: std::sync::atomic::AtomicI64,
}

impl Context {
    /// Where verified files are looked for (see [`Archived`]).
    pub fn archived(&self) -> Archived<'_> {
        match &self.bucket {
            Some(run) => Archived::Listed(run.inventory()),
            None => Archived::Disk(&self.folder),
        }
    }
}

/// Everything the stages share.
pub struct Context {
    pub settings: Settings,
    pub api: ApiClient,
    pub store: Store,
    /// The archive, on the disk or on object storage.
    pub archive: Archive,
    /// The local folder `settings.local`, held open: on a disk the archive's
    /// root (where `.part` files are written beside their final names); on
    /// object storage the run's local work folder.
    pub folder: ArchiveDir,
    /// What a run on object storage holds (lease, ledger, inventory).
    pub bucket: Option<BucketRun>,
    pub reporter: std::sync::Arc<dyn Reporter>,
    pub counters: Counters,
    /// What this run shares with the others of the process.
    pub limits: Limits,
}
