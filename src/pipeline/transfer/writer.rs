//! The blocking half of a transfer: a `.part` is written, hashed (sha256)
//! and counted on a blocking thread, fed chunks by the network task
//! through a short channel, so a slow disk or a CPU without SHA
//! extensions never stalls the async workers, and the hashing of
//! concurrent transfers runs on every core.
//!
//! Invariants: chunks are written in the order they arrived; when the
//! network task goes away (an error, a stop signal), the writer still
//! writes what it was handed and flushes, so a later run resumes from
//! every byte handed on (all but a block not yet full when the task was
//! dropped: see `blocks`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::pipeline::transfer::part::PartFile;
use crate::store::ResumePoint;

/// Bytes in flight between the network and the disk, per transfer:
/// enough to ride out a short stall of either. Counted in bytes, not
/// chunks: on a fast link hyper hands over chunks of up to ~400 kB, and
/// sixteen of those per transfer were most of the memory a run used.
const IN_FLIGHT_BYTES: u32 = 512 * 1024;

/// Chunks queued at most (the byte budget is what binds).
const IN_FLIGHT_CHUNKS: usize = 64;

/// Runs blocking file-system work off the async workers.
pub async fn off_reactor<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)?
}

/// The writer of one attempt's `.part`.
pub struct PartWriter {
    chunks: Option<mpsc::Sender<(Bytes, OwnedSemaphorePermit)>>,
    /// [`IN_FLIGHT_BYTES`] of room, taken by each chunk until it is written.
    room: Arc<Semaphore>,
    task: Option<JoinHandle<std::io::Result<PartFile>>>,
    /// The points the `.part` made durable, as the writer reaches them.
    durable: Arc<Mutex<Vec<ResumePoint>>>,
}

impl PartWriter {
    /// Starts writing after the bytes `part` already holds.
    pub fn start(mut part: PartFile) -> Self {
        let durable = part.durable_points();
        let (chunks, mut incoming) =
            mpsc::channel::<(Bytes, OwnedSemaphorePermit)>(IN_FLIGHT_CHUNKS);
        let task = tokio::task::spawn_blocking(move || {
            while let Some((chunk, room)) = incoming.blocking_recv() {
                simulated_disk_full(chunk.len())?;
                part.write(&chunk)?;
                drop(room);
            }
            Ok(part)
        });
        PartWriter {
            chunks: Some(chunks),
            room: Arc::new(Semaphore::new(IN_FLIGHT_BYTES as usize)),
            task: Some(task),
            durable,
        }
    }

    /// The points the `.part` made durable since the last call.
    pub fn take_points(&self) -> Vec<ResumePoint> {
        self.durable
            .lock()
            .map(|mut durable| std::mem::take(&mut *durable))
            .unwrap_or_default()
    }

    /// Hands `chunk` to the writer (waits while it is behind). An error
    /// is the writer's own: it stopped on it.
    pub async fn write(&mut self, chunk: Bytes) -> std::io::Result<()> {
        // A chunk bigger than the whole budget takes all of it.
        let size =
            u32::try_from(chunk.len()).map_or(IN_FLIGHT_BYTES, |size| size.min(IN_FLIGHT_BYTES));
        let sent = match &self.chunks {
            Some(chunks) => match Arc::clone(&self.room).acquire_many_owned(size).await {
                Ok(room) => chunks.send((chunk, room)).await.is_ok(),
                Err(_) => false,
            },
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.chunks = None;
        match self.join().await {
            Err(error) => Err(error),
            Ok(_) => Err(std::io::Error::other("the .part writer stopped")),
        }
    }

    /// Waits until every chunk is written; gives the `.part` back.
    pub async fn finish(mut self) -> std::io::Result<PartFile> {
        self.chunks = None;
        self.join().await
    }

    async fn join(&mut self) -> std::io::Result<PartFile> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Err(std::io::Error::other("the .part writer already stopped")),
        }
    }
}

/// Test suites: `VAULT_MIRROR_TEST_DISK_FULL_AFTER=<bytes>` makes writes
/// fail as on a full disk once that many bytes were written by this
/// process, so a full disk can be tested without filling one.
fn simulated_disk_full(bytes: usize) -> std::io::Result<()> {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let Some(limit) = *LIMIT.get_or_init(|| {
        std::env::var("VAULT_MIRROR_TEST_DISK_FULL_AFTER")
            .ok()
            .and_then(|text| text.parse().ok())
    }) else {
        return Ok(());
    };
    if WRITTEN.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (simulated)",
        ));
    }
    Ok(())
}
