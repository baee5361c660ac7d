//! One run at a time on an object-storage archive: the lease object
//! `<prefix>/.vault-mirror/lease`, created only if absent
//! (`If-None-Match: *`), naming the host, pid, start time and a random
//! run id of its holder, and renewed every [`RENEW_EVERY`] by a conditional write
//! (`If-Match` on its ETag) while the run goes on.
//!
//! Invariants: a lease is taken over only when its holder is surely gone —
//! on this host, when its process no longer runs (as the local lock does
//! after `kill -9`; a zombie not yet reaped is gone) or the host has booted
//! since (another boot id: the pid may be another process's now); from
//! another host, when the store has not written it
//! for [`STALE_AFTER`] by the store's own clock (the lease's
//! `Last-Modified` against a probe the store wrote just now, never the
//! `renewed_at` the holder wrote by its clock, which may run slow) — and
//! the take-over is itself conditional on the ETag read, so of two runs
//! racing for a stale lease exactly one wins. The lease is read before it
//! is written, so a fresh lease of another host is never overwritten.
//! A store that ignores conditional writes is found out before the lease
//! is written (see [`probe`]): the run then refuses to write unless the
//! operator stated that only one writer exists (`--single-writer`). A
//! lease holds no secret.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::PutPayload;
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
/// A lease from another host the store has not written for this long
/// (by its own clock) is taken over.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// [`STALE_AFTER`], or what the test hook `VAULT_MIRROR_TEST_LEASE_STALE_MS`
/// says (so a test sees a lease go stale without waiting ten minutes).
fn stale_after() -> Duration {
    std::env::var("VAULT_MIRROR_TEST_LEASE_STALE_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .map_or(STALE_AFTER, Duration::from_millis)
}

/// Where the scratch object the store's behaviour is probed with goes
/// (`<this>-<run id>`, one per run, so two runs starting at once do not
/// probe the same object; deleted after).
pub const PROBE_KEY: &str = ".vault-mirror/probe";

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
    /// The boot of its host the holder ran in (Linux's
    /// `/proc/sys/kernel/random/boot_id`); empty where there is none, and in
    /// a lease an older version wrote.
    #[serde(default)]
    pub boot_id: String,
}

/// Why a lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another run holds the archive: `{}` (pid {}) on {}, started {} by its clock, last renewed {} by the store's clock; it is taken over once the store has not seen it renewed for {} minutes",
        .0.body.command, .0.body.pid, .0.body.host, when(.0.body.started_at), when(.0.written_at), stale_after().as_secs() / 60
    )]
    Held(Box<Holder>),
    /// The store applied a conditional write it should have refused: it
    /// cannot keep two runs apart, and the operator has not said that only
    /// one writer exists.
    #[error(
        "the object store ignores conditional writes ({behaviour}), so its lease cannot keep two runs from writing the archive at once; {}; nothing was written. If only this machine ever writes to this archive, say so with --single-writer (VAULT_MIRROR_SINGLE_WRITER=true, or single_writer = true in the config file)",
        holder.as_deref().map_or_else(|| "no run holds the lease now".to_owned(), Holder::shown)
    )]
    ConditionsIgnored {
        behaviour: &'static str,
        holder: Option<Box<Holder>>,
    },
    #[error(transparent)]
    Storage(#[from] BucketError),
}

/// A lease found in the store, and when the store last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub body: LeaseBody,
    /// The lease object's `Last-Modified` (epoch ms, the store's clock).
    pub written_at: i64,
}

impl Holder {
    fn shown(&self) -> String {
        format!(
            "the lease there now is held by `{}` (pid {}) on {}, last written {} by the store's clock",
            self.body.command,
            self.body.pid,
            self.body.host,
            when(self.written_at)
        )
    }
}

/// What a probe found out about the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreBehaviour {
    /// The store's clock now (epoch ms, whole seconds): the probe's
    /// `Last-Modified`.
    pub now: i64,
    /// The conditional write the store applied where it should have
    /// refused it, if it did.
    pub ignores: Option<&'static str>,
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
    /// How far the store's clock is ahead of this machine's (negative:
    /// behind), as the probe read it: about a second either way.
    pub store_ahead_ms: i64,
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
        boot_id: boot_id().unwrap_or_default(),
    }
}

/// This boot's id (Linux), which changes at every boot.
fn boot_id() -> Option<String> {
    let text = fs_err::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(text.trim().to_owned()).filter(|id| !id.is_empty())
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
/// Windows), where the lease's age decides instead. A process killed and
/// not yet reaped by its parent (a zombie: in a container whose first
/// process reaps nothing, for good) runs no more: it writes nothing.
fn process_runs(pid: u32) -> Option<bool> {
    if !std::path::Path::new("/proc/self").exists() {
        return None;
    }
    let Ok(stat) = fs_err::read_to_string(format!("/proc/{pid}/stat")) else {
        return Some(false);
    };
    // `pid (name) state …`: the name may hold spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    Some(!matches!(state, Some("Z" | "X" | "x")))
}

/// Whether `found` may be taken over by a run on `host`, the store's
/// clock reading `store_now` and the lease last written at `written_at`
/// by that same clock (its `renewed_at`, by its holder's clock, plays no
/// part: a holder whose clock runs slow writes leases that look old).
pub fn may_take_over(found: &LeaseBody, host: &str, written_at: i64, store_now: i64) -> bool {
    if found.host == host {
        if found.pid == std::process::id() {
            return true;
        }
        if let Some(now) = boot_id()
            && !found.boot_id.is_empty()
            && found.boot_id != now
        {
            return true;
        }
        if let Some(runs) = process_runs(found.pid) {
            return !runs;
        }
    }
    let stale_ms = i64::try_from(stale_after().as_millis()).unwrap_or(i64::MAX);
    store_now.saturating_sub(written_at) > stale_ms
}

/// Finds out how the store treats conditional writes, and reads its
/// clock, with a scratch object (`<`[`PROBE_KEY`]`>-<run id>`): written, then created
/// again with `If-None-Match: *` (which must fail: it exists), then
/// replaced with `If-Match` on an ETag it never had (which must fail
/// too); its `Last-Modified` is the store's clock now. Each write carries
/// other bytes, so a retried conditional write whose first answer was
/// lost is not taken for an applied one (see `Bucket::put`). Five small
/// requests a run.
pub async fn probe(archive: &Bucket, run_id: &str) -> Result<StoreBehaviour, BucketError> {
    let body = |step: &str| {
        let text = format!("{{\"probe\":\"{step}\",\"run_id\":\"{run_id}\"}}");
        PutPayload::from(Bytes::from(text))
    };
    let kind = "application/json";
    let key = format!("{PROBE_KEY}-{run_id}");
    let key = key.as_str();
    archive
        .put(key, body("plain"), kind, None, WriteMode::Overwrite)
        .await?;
    let mut ignores = None;
    let tries = [
        (
            WriteMode::Create,
            "a PUT with If-None-Match: * replaced an object that exists",
        ),
        (
            WriteMode::Replace("\"vault-mirror-no-such-etag\"".to_owned()),
            "a PUT with If-Match on an ETag the object does not have replaced it",
        ),
    ];
    for (step, (mode, behaviour)) in tries.into_iter().enumerate() {
        let payload = body(&format!("conditional-{step}"));
        match archive.put(key, payload, kind, None, mode).await {
            Ok(_) => {
                ignores.get_or_insert(behaviour);
            }
            Err(BucketError::Precondition { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let now = archive
        .head(key)
        .await?
        .map_or_else(crate::now_ms, |info| info.last_modified);
    archive.delete(key).await?;
    Ok(StoreBehaviour { now, ignores })
}

impl Lease {
    /// Takes the archive's lease for `command` (see the module docs).
    /// `single_writer`: the operator stated that no other run ever writes
    /// to the archive, so a store that ignores conditional writes is used
    /// all the same (a fresh lease of another host is still honoured).
    pub async fn acquire(
        archive: &Bucket,
        command: &str,
        single_writer: bool,
    ) -> Result<Lease, LeaseError> {
        let mine = this_run(command);
        let asked_at = crate::now_ms();
        let store = probe(archive, &mine.run_id).await?;
        let store_ahead_ms = store.now - asked_at;
        let refuse = |holder: Option<Holder>| match store.ignores {
            Some(behaviour) if !single_writer => Err(LeaseError::ConditionsIgnored {
                behaviour,
                holder: holder.map(Box::new),
            }),
            _ => Ok(()),
        };
        for _ in 0..3 {
            // Read before writing: a store that ignores `If-None-Match`
            // would let a create replace another run's lease.
            let Some(info) = archive.head(LEASE_KEY).await? else {
                refuse(None)?;
                match write(archive, &mine, WriteMode::Create).await {
                    Ok(e_tag) => return Ok(Self::hold(archive, mine, e_tag, None, store_ahead_ms)),
                    Err(BucketError::Precondition { .. }) => continue,
                    Err(error) => return Err(error.into()),
                }
            };
            let found = read(archive).await?;
            let holder = found.clone().map(|body| Holder {
                body,
                written_at: info.last_modified,
            });
            // Whatever the lease's age: on such a store even a stale one
            // may be taken by two runs at once.
            refuse(holder.clone())?;
            // An unreadable lease is taken over as a stale one would be.
            let takeable = found.as_ref().is_none_or(|found| {
                may_take_over(found, &mine.host, info.last_modified, store.now)
            });
            if !takeable {
                return Err(LeaseError::Held(Box::new(holder.unwrap_or_else(|| {
                    Holder {
                        body: mine.clone(),
                        written_at: info.last_modified,
                    }
                }))));
            }
            let Some(e_tag) = info.e_tag else { continue };
            match write(archive, &mine, WriteMode::Replace(e_tag)).await {
                Ok(e_tag) => return Ok(Self::hold(archive, mine, e_tag, found, store_ahead_ms)),
                Err(BucketError::Precondition { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let holder = match archive.head(LEASE_KEY).await? {
            Some(info) => read(archive).await?.map(|body| Holder {
                body,
                written_at: info.last_modified,
            }),
            None => None,
        };
        Err(LeaseError::Held(Box::new(holder.unwrap_or(Holder {
            written_at: mine.renewed_at,
            body: mine,
        }))))
    }

    fn hold(
        archive: &Bucket,
        mine: LeaseBody,
        e_tag: Option<String>,
        took_over: Option<LeaseBody>,
        store_ahead_ms: i64,
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
            store_ahead_ms,
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
            boot_id: boot_id().unwrap_or_default(),
        }
    }

    #[test]
    fn leases_are_taken_over_only_from_the_gone() {
        let now = 1_000_000_000;
        // Same host: the process decides (pid 1 always exists; a huge pid does not).
        assert!(!may_take_over(&lease("here", 1, now), "here", now, now));
        assert!(may_take_over(
            &lease("here", u32::MAX - 1, now),
            "here",
            now,
            now
        ));
        // Same host, another boot: its pid may be anyone's now (pid 1 here).
        if boot_id().is_some() {
            let before_a_reboot = LeaseBody {
                boot_id: "a boot of this host that is over".into(),
                ..lease("here", 1, now)
            };
            assert!(may_take_over(&before_a_reboot, "here", now, now));
            // A lease without one (an older version's): the pid decides.
            let older = LeaseBody {
                boot_id: String::new(),
                ..lease("here", 1, now)
            };
            assert!(!may_take_over(&older, "here", now, now));
        }
        // Another host: only once the store has not written it for STALE_AFTER.
        let stale = i64::try_from(STALE_AFTER.as_millis()).unwrap();
        let there = lease("there", 1, now);
        assert!(!may_take_over(&there, "here", now - stale + 1000, now));
        assert!(may_take_over(&there, "here", now - stale - 1000, now));
        // Its holder's clock plays no part: a lease written just now that
        // says it was renewed 15 minutes ago (a slow clock) is fresh.
        let slow = lease("there", 1, now - 15 * 60_000);
        assert!(!may_take_over(&slow, "here", now, now));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_killed_process_not_yet_reaped_runs_no_more() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep runs");
        let pid = child.id();
        assert_eq!(process_runs(pid), Some(true));
        child.kill().expect("the child is killed");
        // Not waited for: a zombie, its /proc entry still there.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while process_runs(pid) == Some(true) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert_eq!(process_runs(pid), Some(false));
        assert!(may_take_over(
            &lease(&crate::lock::host_name().unwrap_or_default(), pid, 0),
            &crate::lock::host_name().unwrap_or_default(),
            0,
            0
        ));
        child.wait().expect("reaped");
        assert_eq!(process_runs(pid), Some(false));
    }

    #[tokio::test]
    async fn a_store_that_honours_conditions_passes_the_probe() {
        let bucket = Bucket::in_memory("probe");
        let found = probe(&bucket, "run").await.unwrap();
        assert_eq!(found.ignores, None);
        assert!(bucket.list(".vault-mirror").await.unwrap().is_empty());
        let lease = Lease::acquire(&bucket, "mirror", false).await.unwrap();
        lease.release().await;
    }
}
