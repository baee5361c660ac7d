//! A run other than a mirror's (`verify`, `export`) on an archive on
//! object storage: taken under the archive's lease, and ended, as a
//! mirror's is, by [`BucketRun::finish`] writing the state database's
//! snapshot, so another machine sees the run and numbers its own after
//! it. On a disk, the run alone.
//!
//! Invariant: the lease is given back whatever the run's result; a run
//! this one starts (`verify --repair`'s refetch) works under the same
//! lease ([`super::bucket::HELD`]).

use std::future::Future;
use std::sync::Arc;

use crate::pipeline::bucket::{BucketRun, HELD};
use crate::pipeline::error::MirrorError;
use crate::report::Reporter;
use crate::settings::Settings;
use crate::store::Store;

/// Runs `run` (which records itself in `store`) under the lease of
/// `settings`' archive when it is on object storage, then writes the
/// snapshot and gives the lease back. `notes` shows a lease taken over
/// (it is dropped before `run` starts). A failure to write the snapshot is
/// the run's failure, unless the run failed already.
pub async fn leased<T>(
    settings: &Settings,
    command: &str,
    store: &Store,
    notes: Arc<dyn Reporter>,
    run: impl Future<Output = Result<T, MirrorError>>,
) -> Result<T, MirrorError> {
    let opened = BucketRun::open(settings, command, false, notes.as_ref()).await;
    drop(notes);
    let Some((bucket, lease)) = opened? else {
        return run.await;
    };
    let result = HELD.scope(bucket.lost_flag(), run).await;
    let finished = bucket.finish(store).await.map_err(MirrorError::from);
    if let Some(lease) = lease {
        lease.release().await;
    }
    match (result, finished) {
        (Ok(_), Err(error)) => Err(error),
        (result, _) => result,
    }
}
