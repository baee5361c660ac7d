//! One run at a time on an object-storage archive: the lease object
//! `<prefix>/.vault-mirror/lease`, created only if absent
//! (`If-None-Match: *`), naming the host, pid, start time and a random
//! run id of its holder, and renewed every [`RENEW_EVERY`] by a conditional write
//! (`If-Match` on its ETag) while the run goes on.
//!
//! Invariants: a lease is taken over only when its holder is surely gone —
//! on this host, when its process no longer exists (as the local lock does
//! after `kill -9`); from another host, when it has not been renewed for
//! [`STALE_AFTER`] — and the take-over is itself conditional on the ETag
//! read, so of two runs racing for a stale lease exactly one wins. A lease
//! holds no secret.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::archive::bucket::s3::{Bucket, BucketError, WriteMode};

/// Where the lease lives, relative to the archive's prefix.
pub const LEASE_KEY: &str = ".vault-mirror/lease";
/// How often a run renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(60);

/// [`RENEW_EVERY`], or what the test hook `VAULT_MIRROR_TEST_LEASE_RENEW_MS`
/// says (so a test sees a renewal without waiting a minute).
fn renew_every() -> Duration {
    std::env::var("VAULT_MIRROR_TEST_LEASE_RENEW_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .map_or(RENEW_EVERY, Duration::from_millis)
}
/// A lease from another host not renewed for this long is taken over.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// What the lease object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// Epoch milliseconds, by the holder's clock.
    pub started_at: i64,
    pub renewed_at: i64,
    /// Random, one per run: with the host and pid it makes the lease this
    /// run's own, so a write whose answer was lost is known for ours when
    /// read back (see `Bucket::put`). Empty in a lease an older version
    /// wrote.
    #[serde(default)]
    pub run_id: String,
}

/// Why a lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another run holds the archive: `{}` (pid {}) on {}, started {}, last renewed {}; it is taken over once it has not been renewed for {} minutes",
        .0.command, .0.pid, .0.host, when(.0.started_at), when(.0.renewed_at), STALE_AFTER.as_secs() / 60
    )]
    Held(LeaseBody),
    #[error(transparent)]
    Storage(#[from] BucketError),
}

/// A lease held by this run; renewed in the background until released.
pub struct Lease {
    archive: Bucket,
    e_tag: Arc<Mutex<Option<String>>>,
    /// Set when a renewal finds the lease taken over by another run.
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    /// The run id this run's lease carries.
    run_id: String,
    /// Whose lease was taken over, when one was.
    pub took_over: Option<LeaseBody>,
}

/// An epoch-ms time as RFC 3339 UTC, for a message.
fn when(ms: i64) -> String {
    humantime::format_rfc3339_seconds(crate::epoch_time(ms)).to_string()
}

fn this_run(command: &str) -> LeaseBody {
    let now = crate::now_ms();
    LeaseBody {
        host: crate::lock::host_name().unwrap_or_else(|| "unknown".into()),
        pid: std::process::id(),
        command: command.to_owned(),
        started_at: now,
        renewed_at: now,
        run_id: run_id(),
    }
}

/// 16 random bytes in hex.
fn run_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No randomness: the time and pid still tell runs apart.
        return format!("{:x}-{:x}", crate::now_ms(), std::process::id());
    }
    hex::encode(bytes)
}

/// Writes the lease object; returns its new ETag.
async fn write(
    archive: &Bucket,
    body: &LeaseBody,
    mode: WriteMode,
) -> Result<Option<String>, BucketError> {
    let bytes = Bytes::from(serde_json::to_vec_pretty(body).unwrap_or_default());
    archive
        .put(LEASE_KEY, bytes.into(), "application/json", None, mode)
        .await
}

/// The lease as it is now (None: absent or unreadable).
async fn read(archive: &Bucket) -> Result<Option<LeaseBody>, BucketError> {
    Ok(archive
        .read_all(LEASE_KEY)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Whether a process of this host with `pid` still runs, where the system
/// tells without a library (Linux's `/proc`); `None` elsewhere (macOS,
/// Windows), where the lease's age decides instead.
fn process_exists(pid: u32) -> Option<bool> {
    if !std::path::Path::new("/proc/self").exists() {
        return None;
    }
    Some(std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Whether `found` may be taken over by a run on `host` at `now`.
pub fn may_take_over(found: &LeaseBody, host: &str, now: i64) -> bool {
    if found.host == host {
        if found.pid == std::process::id() {
            return true;
        }
        if let Some(exists) = process_exists(found.pid) {
            return !exists;
        }
    }
    let stale_ms = i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
    now.saturating_sub(found.renewed_at) > stale_ms
}

impl Lease {
    /// Takes the archive's lease for `command` (see the module docs).
    pub async fn acquire(archive: &Bucket, command: &str) -> Result<Lease, LeaseError> {
        let mine = this_run(command);
        for _ in 0..3 {
            match write(archive, &mine, WriteMode::Create).await {
                Ok(e_tag) => return Ok(Self::hold(archive, mine, e_tag, None)),
                Err(BucketError::Precondition { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            let Some(info) = archive.head(LEASE_KEY).await? else {
                continue; // released meanwhile: try to create it again
            };
            let found = read(archive).await?;
            // An unreadable lease is taken over as a stale one would be.
            let takeable = found
                .as_ref()
                .is_none_or(|found| may_take_over(found, &mine.host, crate::now_ms()));
            if !takeable {
                return Err(LeaseError::Held(found.unwrap_or_else(|| mine.clone())));
            }
            let Some(e_tag) = info.e_tag else { continue };
            match write(archive, &mine, WriteMode::Replace(e_tag)).await {
                Ok(e_tag) => return Ok(Self::hold(archive, mine, e_tag, found)),
                Err(BucketError::Precondition { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(LeaseError::Held(read(archive).await?.unwrap_or(mine)))
    }

    fn hold(
        archive: &Bucket,
        mine: LeaseBody,
        e_tag: Option<String>,
        took_over: Option<LeaseBody>,
    ) -> Lease {
        let e_tag = Arc::new(Mutex::new(e_tag));
        let lost = Arc::new(AtomicBool::new(false));
        let run_id = mine.run_id.clone();
        let renewer = tokio::spawn(renew(archive.clone(), mine, e_tag.clone(), lost.clone()));
        Lease {
            archive: archive.clone(),
            e_tag,
            lost,
            renewer,
            run_id,
            took_over,
        }
    }

    /// True once a renewal found the lease taken over: the run must stop
    /// writing.
    pub fn lost(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Gives the lease up: deleted, unless another run took it meanwhile.
    /// The lease there is ours by the ETag of our last renewal, or by our
    /// run id (a renewal stopped mid-write landed with an ETag never seen).
    pub async fn release(self) {
        self.renewer.abort();
        let _ = self.renewer.await;
        let held = self.e_tag.lock().map(|e_tag| e_tag.clone()).ok().flatten();
        let current = self.archive.head(LEASE_KEY).await.ok().flatten();
        let by_e_tag = current.is_some_and(|info| info.e_tag.is_some() && info.e_tag == held);
        let ours = by_e_tag
            || read(&self.archive)
                .await
                .ok()
                .flatten()
                .is_some_and(|found| !found.run_id.is_empty() && found.run_id == self.run_id);
        if ours {
            let _ = self.archive.delete(LEASE_KEY).await;
        }
    }
}

/// Renews the lease every [`RENEW_EVERY`], each write conditional on the
/// ETag of the one before.
async fn renew(
    archive: Bucket,
    mut mine: LeaseBody,
    e_tag: Arc<Mutex<Option<String>>>,
    lost: Arc<AtomicBool>,
) {
    let every = renew_every();
    loop {
        tokio::time::sleep(every).await;
        let Some(previous) = e_tag.lock().ok().and_then(|e_tag| e_tag.clone()) else {
            return;
        };
        mine.renewed_at = crate::now_ms();
        match write(&archive, &mine, WriteMode::Replace(previous)).await {
            Ok(new) => {
                if let Ok(mut held) = e_tag.lock() {
                    *held = new;
                }
            }
            Err(BucketError::Precondition { .. }) => {
                tracing::warn!(
                    "the archive's lease was taken over by another run: this run stops writing"
                );
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A failed renewal is tried again at the next turn.
            Err(error) => tracing::warn!(
                "renewing the archive's lease: {}",
                crate::report::chain(&error)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(host: &str, pid: u32, renewed_at: i64) -> LeaseBody {
        LeaseBody {
            host: host.into(),
            pid,
            command: "mirror".into(),
            started_at: renewed_at,
            renewed_at,
            run_id: String::new(),
        }
    }

    #[test]
    fn leases_are_taken_over_only_from_the_gone() {
        let now = 1_000_000_000;
        // Same host: the process decides (pid 1 always exists; a huge pid does not).
        assert!(!may_take_over(&lease("here", 1, now), "here", now));
        assert!(may_take_over(
            &lease("here", u32::MAX - 1, now),
            "here",
            now
        ));
        // Another host: only once not renewed for STALE_AFTER.
        let stale = i64::try_from(STALE_AFTER.as_millis()).unwrap();
        assert!(!may_take_over(
            &lease("there", 1, now - stale + 1000),
            "here",
            now
        ));
        assert!(may_take_over(
            &lease("there", 1, now - stale - 1000),
            "here",
            now
        ));
    }
}
