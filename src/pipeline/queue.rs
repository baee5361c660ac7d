//! Between resolve and the transfers: the earliest-deadline queue and its
//! dispatch. Jobs leave earliest `expiresAt` first, at most `--jobs` are
//! on the network at once (a few more may be committing), and a job whose
//! URL would expire before it could finish is re-signed first — together
//! with every queued job close to expiring, in one batch call (the maths
//! is [`crate::pipeline::resign`]'s).
//!
//! Resolve runs ahead of the transfers by a bounded number of jobs
//! ([`JobQueue::push`] waits above the high-water mark), so memory stays
//! flat whatever the vault's size and URLs are fresh when used.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::Notify;

use crate::api::BATCH_LIMIT;
use crate::pipeline::outcome::Ended;
use crate::pipeline::plan::Job;
use crate::pipeline::transfer::{COMMITS_PER_SLOT, Transfers};

/// A queued job. Its place in line is the `expiresAt` it was queued with:
/// re-signing gives a job a later expiry but must not send it to the back
/// of the line, or the queue would be re-signed over and over.
struct Queued {
    place: (i64, u64),
    job: Job,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.place == other.place
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.place.cmp(&other.place)
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Queued>>,
    sequence: u64,
    closed: bool,
}

/// The jobs resolve has planned and no transfer has taken yet, earliest
/// `expiresAt` first, bounded above a high-water mark so resolve never
/// runs far ahead of the transfers (memory stays flat, URLs stay fresh).
pub struct JobQueue {
    state: Mutex<State>,
    high_water: usize,
    /// Wakes the dispatcher: jobs arrived, or the queue closed.
    arrived: Notify,
    /// Wakes the resolver: room below the high-water mark.
    drained: Notify,
}

impl JobQueue {
    pub fn new(jobs: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            // Two batches' worth of variants, or more with many transfers.
            high_water: (jobs * 8).max(2 * BATCH_LIMIT * 2),
            arrived: Notify::new(),
            drained: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds jobs; waits while the queue is above its high-water mark.
    pub async fn push(&self, jobs: Vec<Job>) {
        loop {
            let drained = self.drained.notified();
            if self.lock().heap.len() < self.high_water {
                break;
            }
            drained.await;
        }
        let mut state = self.lock();
        for job in jobs {
            state.sequence += 1;
            let place = (job.expiry_order(), state.sequence);
            state.heap.push(Reverse(Queued { place, job }));
        }
        drop(state);
        self.arrived.notify_one();
    }

    /// Puts jobs back in their places (re-signed jobs keep their turn).
    fn put_back(&self, entries: Vec<Queued>) {
        let mut state = self.lock();
        state.heap.extend(entries.into_iter().map(Reverse));
        drop(state);
        self.arrived.notify_one();
    }

    /// No more jobs will come, and those queued will not run (the run is
    /// stopping); transfers under way finish.
    pub fn abandon(&self) {
        self.lock().heap.clear();
        self.drained.notify_one();
        self.close();
    }

    /// No more jobs will come.
    pub fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_one();
    }

    fn pop(&self) -> Option<Queued> {
        let job = self.lock().heap.pop().map(|Reverse(entry)| entry);
        if job.is_some() {
            self.drained.notify_one();
        }
        job
    }

    /// Takes the next queued jobs (in start order) while their bytes fit
    /// in `budget` and they name at most `media_limit` distinct media ids
    /// besides `media` (which is updated).
    fn take_next(
        &self,
        budget: u64,
        media: &mut std::collections::HashSet<String>,
        media_limit: usize,
    ) -> Vec<Queued> {
        let mut state = self.lock();
        let mut taken = Vec::new();
        let mut spent = 0u64;
        while let Some(Reverse(entry)) = state.heap.peek() {
            let job = &entry.job;
            let new_media = !media.contains(&job.media_id);
            if spent + job.size > budget || (new_media && media.len() >= media_limit) {
                break;
            }
            spent += job.size;
            media.insert(job.media_id.clone());
            if let Some(Reverse(entry)) = state.heap.pop() {
                taken.push(entry);
            }
        }
        drop(state);
        self.drained.notify_one();
        taken
    }

    fn is_empty(&self) -> bool {
        self.lock().heap.is_empty()
    }

    fn finished(&self) -> bool {
        let state = self.lock();
        state.closed && state.heap.is_empty()
    }
}

/// Runs the queue's jobs, at most `jobs` at once, until the queue is
/// closed and empty. Returns how each job ended.
pub async fn dispatch(transfers: &Transfers, queue: &JobQueue, jobs: usize) -> Vec<Ended> {
    let mut running = FuturesUnordered::new();
    let mut finished = Vec::new();
    // A slot this dispatcher waited for and holds. The slots may be shared
    // with other runs (one per connection): a dispatcher that waits takes
    // the slot it is handed and keeps it, rather than giving it back and
    // trying for one again, or several dispatchers would hand the freed
    // slots to one another forever and none would start a transfer.
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    loop {
        // More items than transfer slots: those past `jobs` wait for a slot
        // or are committing (see `transfer::COMMITS_PER_SLOT`).
        // A job leaves the queue only with a free transfer slot in hand, so
        // its URL is judged fresh (and its stale neighbours re-signed in one
        // call) right before it uses the network, not long before.
        let capacity = jobs.max(1) * (1 + COMMITS_PER_SLOT);
        while running.len() < capacity {
            let Some(slot) = held.take().or_else(|| transfers.try_slot()) else {
                break;
            };
            // No job for the slot: it goes back at once.
            let Some(entry) = queue.pop() else { break };
            let (job, ended) = fresh_enough(transfers, queue, entry).await;
            finished.extend(ended);
            let Some(job) = job else { continue };
            let transfers = transfers.clone();
            running.push(AbortOnDrop(tokio::spawn(async move {
                transfers.fetch_verified(job, Some(slot)).await
            })));
        }
        if running.is_empty() && queue.finished() {
            break;
        }
        let waiting = running.len() < capacity && !queue.is_empty();
        tokio::select! {
            Some(joined) = running.next(), if !running.is_empty() => {
                finished.push(joined.unwrap_or_else(|error| {
                    Ended::Crashed(format!("a transfer task ended abnormally: {error}"))
                }))
            }
            _ = queue.arrived.notified() => {}
            slot = transfers.next_slot(), if waiting => held = slot,
        }
    }
    finished
}

/// A spawned transfer, aborted when its handle is dropped: a run stopped
/// by a signal drops [`dispatch`], and with it every transfer in flight,
/// which stops at its next await (its `.part` kept) instead of going on
/// behind the run's summary until the process ends.
struct AbortOnDrop(tokio::task::JoinHandle<Ended>);

impl std::future::Future for AbortOnDrop {
    type Output = Result<Ended, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(context)
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        // A no-op for a task that has ended.
        self.0.abort();
    }
}

/// Returns `job` ready to start: re-signed first if its URL would expire
/// before the transfer could finish, along with every queued job close to
/// expiring (one batch call for up to a hundred ids). Jobs that ended on
/// the way (no longer stored upstream) come back as `Ended`.
async fn fresh_enough(
    transfers: &Transfers,
    queue: &JobQueue,
    entry: Queued,
) -> (Option<Job>, Vec<Ended>) {
    // The jobs next in line would go stale too before they start: re-sign
    // them in the same call, but only as many as will start while a URL
    // signed now is young, or they would be re-signed over and over.
    let threshold = transfers.resign().threshold(&entry.job);
    tracing::debug!(
        media = %entry.job.media_id,
        left_ms = transfers.resign().time_left(&entry.job),
        lifetime_ms = entry.job.lifetime.map(|lifetime| lifetime.length_ms()),
        ?threshold,
        "dispatching"
    );
    if threshold.is_none() {
        return (Some(entry.job), Vec::new());
    }
    let budget = transfers.resign().budget(&entry.job);
    let mut media = std::collections::HashSet::from([entry.job.media_id.clone()]);
    let mut places = vec![entry.place];
    let mut group = vec![entry.job];
    for next in queue.take_next(budget, &mut media, BATCH_LIMIT) {
        places.push(next.place);
        group.push(next.job);
    }
    let mut first = None;
    let mut back = Vec::new();
    let mut ended = Vec::new();
    let results = transfers.resign().all(group).await;
    for (index, (place, result)) in places.into_iter().zip(results).enumerate() {
        match result {
            Ok(job) if index == 0 => first = Some(job),
            Ok(job) => back.push(Queued { place, job }),
            Err(finished) => ended.push(finished),
        }
    }
    queue.put_back(back);
    (first, ended)
}
