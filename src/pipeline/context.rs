//! What every stage of a run shares: the [`Context`] (settings, API
//! client, store, the archive, the reporter), the
//! counters the core keeps while a run goes on, and [`MirrorError`], why a
//! run could not go on (which picks the exit code).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::api::{ApiClient, ApiError};
use crate::archive::bucket::BucketError;
use crate::archive::{Archive, ArchiveDir, ArchiveError};
use crate::exit::ExitStatus;
use crate::location::ArchiveLocation;
use crate::pipeline::bandwidth::Bandwidth;
use crate::pipeline::bucket::{BucketRun, BucketRunError};
use crate::pipeline::plan::Archived;
use crate::report::Reporter;
use crate::settings::{Settings, SettingsError};
use crate::store::{Store, StoreError};

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// `--list` names lists the connection does not have (nothing was
    /// recorded for them).
    #[error("the connection has no list {}; its lists are {}", quoted(.missing), if .known.is_empty() { "none".to_owned() } else { quoted(.known) })]
    UnknownLists {
        missing: Vec<String>,
        known: Vec<String>,
    },
    /// Object storage (`--out s3://…`) failed in a way no item can get past.
    #[error(transparent)]
    Bucket(Box<BucketRunError>),
    /// The archive cannot be opened where it is (the AWS environment
    /// cannot be used for an `s3://` archive).
    #[error(transparent)]
    OpenArchive(Box<BucketError>),
    /// `export` could not write the archive index.
    #[error("cannot write the archive index in {location}")]
    Export {
        location: Box<ArchiveLocation>,
        #[source]
        source: Box<ArchiveError>,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl MirrorError {
    /// The exit status (README, "Exit codes") of this kind of failure.
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            MirrorError::Settings(_)
            | MirrorError::UnknownLists { .. }
            | MirrorError::OpenArchive(_) => ExitStatus::Usage,
            MirrorError::Bucket(error) if matches!(**error, BucketRunError::Config(_)) => {
                ExitStatus::Usage
            }
            MirrorError::Api(error) if error.is_auth() => ExitStatus::Refused,
            _ => ExitStatus::Failed,
        }
    }
}

impl From<BucketRunError> for MirrorError {
    fn from(error: BucketRunError) -> Self {
        MirrorError::Bucket(Box::new(error))
    }
}

/// `a`, `b`, `c` for a message (at most 20 named).
fn quoted(items: &[String]) -> String {
    let mut text: Vec<String> = items
        .iter()
        .take(20)
        .map(|item| format!("`{item}`"))
        .collect();
    if items.len() > 20 {
        text.push(format!("and {} more", items.len() - 20));
    }
    text.join(", ")
}

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

/// The limits one process shares among every run it makes at once (one
/// per connection): the transfer slots (`--jobs`) and the `--limit-rate`
/// budget. Cheap to clone; clones share the same slots and budget. Each
/// run keeps its own API client and token bucket: OFAuth paces the API per
/// connection.
#[derive(Clone)]
pub struct Limits {
    /// `--jobs` permits. tokio's semaphore serves waiters first come, first
    /// served, so runs that wait for a slot take turns.
    pub slots: Arc<tokio::sync::Semaphore>,
    /// `--limit-rate`: one budget of bytes shared fairly by every transfer.
    pub bandwidth: Option<Arc<Bandwidth>>,
}

impl Limits {
    /// The limits `settings` asks for, for one process.
    pub fn new(settings: &Settings) -> Self {
        Limits {
            slots: Arc::new(tokio::sync::Semaphore::new(settings.mirror.jobs.max(1))),
            bandwidth: settings
                .mirror
                .limit_rate
                .map(|rate| Arc::new(Bandwidth::new(rate))),
        }
    }
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
