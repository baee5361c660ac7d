//! Part of stage 6, download: the queue between resolve and the
//! transfers. Jobs leave earliest `expiresAt` first, at most `--jobs` run
//! at once, and a job whose URL would expire before it could finish is
//! re-signed first — together with every queued job close to expiring, in
//! one batch call, so re-signing costs one API call per hundred URLs.
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
use crate::pipeline::download::{Finished, Transfers};
use crate::pipeline::plan::Job;

struct Entry {
    expires_at: i64,
    sequence: u64,
    job: Job,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.expires_at, self.sequence) == (other.expires_at, other.sequence)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.expires_at, self.sequence).cmp(&(other.expires_at, other.sequence))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    sequence: u64,
    closed: bool,
}

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
        self.put_back(jobs);
    }

    /// Adds jobs without waiting (re-signed jobs going back in line).
    fn put_back(&self, jobs: Vec<Job>) {
        let mut state = self.lock();
        for job in jobs {
            state.sequence += 1;
            let entry = Entry {
                expires_at: job.expires_at.unwrap_or(i64::MAX),
                sequence: state.sequence,
                job,
            };
            state.heap.push(Reverse(entry));
        }
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

    fn pop(&self) -> Option<Job> {
        let job = self.lock().heap.pop().map(|Reverse(entry)| entry.job);
        if job.is_some() {
            self.drained.notify_one();
        }
        job
    }

    /// Takes up to `limit` queued jobs that expire before `before` (epoch ms).
    fn take_expiring(&self, before: i64, limit: usize) -> Vec<Job> {
        let mut state = self.lock();
        let mut taken = Vec::new();
        while taken.len() < limit
            && state
                .heap
                .peek()
                .is_some_and(|Reverse(entry)| entry.expires_at < before)
        {
            if let Some(Reverse(entry)) = state.heap.pop() {
                taken.push(entry.job);
            }
        }
        drop(state);
        self.drained.notify_one();
        taken
    }

    fn finished(&self) -> bool {
        let state = self.lock();
        state.closed && state.heap.is_empty()
    }
}

/// Runs the queue's jobs, at most `jobs` at once, until the queue is
/// closed and empty. Returns how each job ended.
pub async fn dispatch(transfers: &Transfers, queue: &JobQueue, jobs: usize) -> Vec<Finished> {
    let mut running = FuturesUnordered::new();
    let mut finished = Vec::new();
    loop {
        while running.len() < jobs.max(1) {
            let Some(job) = queue.pop() else { break };
            let (job, ended) = fresh_enough(transfers, queue, job).await;
            finished.extend(ended);
            let Some(job) = job else { continue };
            let transfers = transfers.clone();
            running.push(tokio::spawn(
                async move { transfers.fetch_verified(job).await },
            ));
        }
        if running.is_empty() {
            if queue.finished() {
                break;
            }
            queue.arrived.notified().await;
            continue;
        }
        tokio::select! {
            Some(joined) = running.next() => finished.push(joined.unwrap_or_else(|error| {
                Finished::Crashed(format!("a transfer task ended abnormally: {error}"))
            })),
            _ = queue.arrived.notified() => {}
        }
    }
    finished
}

/// Returns `job` ready to start: re-signed first if its URL would expire
/// before the transfer could finish, along with every queued job close to
/// expiring (one batch call for up to a hundred ids). Jobs that ended on
/// the way (no longer stored upstream) come back as `Finished`.
async fn fresh_enough(
    transfers: &Transfers,
    queue: &JobQueue,
    job: Job,
) -> (Option<Job>, Vec<Finished>) {
    let Some(threshold) = transfers.resign_threshold(&job) else {
        return (Some(job), Vec::new());
    };
    // Jobs expiring within twice this job's threshold would be stale by the
    // time they start: re-sign them now, in the same call.
    let before = crate::now_ms() + 2 * threshold;
    let mut group = vec![job];
    let mut media = std::collections::HashSet::new();
    media.insert(group[0].media_id.clone());
    for candidate in queue.take_expiring(before, BATCH_LIMIT * 2) {
        if media.len() < BATCH_LIMIT || media.contains(&candidate.media_id) {
            media.insert(candidate.media_id.clone());
            group.push(candidate);
        } else {
            queue.put_back(vec![candidate]);
        }
    }
    let mut first = None;
    let mut back = Vec::new();
    let mut ended = Vec::new();
    for (index, result) in transfers.resign_all(group).await.into_iter().enumerate() {
        match result {
            Ok(job) if index == 0 => first = Some(job),
            Ok(job) => back.push(job),
            Err(finished) => ended.push(finished),
        }
    }
    queue.put_back(back);
    (first, ended)
}
