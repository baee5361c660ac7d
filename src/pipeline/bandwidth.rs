//! `--limit-rate`: one budget of bytes per second shared by every
//! transfer, and shared fairly.
//!
//! A token bucket alone (governor) is not fair: a transfer asking for a
//! large chunk waits for the bucket to hold it all, while transfers asking
//! for small ones keep taking what trickles in, so the large one can
//! starve for seconds. Here every transfer spends its chunk in small
//! pieces, and the pieces are served in the order they were asked for
//! (tokio's mutex is first come, first served), so transfers take turns.

use std::num::NonZeroU32;

/// Bytes spent per turn: small enough that a turn is short (16 KiB at
/// 1 MiB/s is 16 ms), large enough that the turns cost nothing.
const PIECE: u32 = 16 * 1024;

pub struct Bandwidth {
    bucket: governor::DefaultDirectRateLimiter,
    /// The largest piece the bucket can ever hold (its burst: one second).
    piece: NonZeroU32,
    turn: tokio::sync::Mutex<()>,
}

impl Bandwidth {
    /// A budget of `bytes_per_second` for the whole process.
    pub fn new(bytes_per_second: u64) -> Self {
        let rate = NonZeroU32::new(u32::try_from(bytes_per_second).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        Bandwidth {
            bucket: governor::RateLimiter::direct(governor::Quota::per_second(rate)),
            piece: rate.min(NonZeroU32::new(PIECE).unwrap_or(NonZeroU32::MIN)),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits until `bytes` more may be received, a piece per turn.
    pub async fn spend(&self, bytes: usize) {
        let mut left = u32::try_from(bytes).unwrap_or(u32::MAX);
        while let Some(wanted) = NonZeroU32::new(left) {
            let piece = wanted.min(self.piece);
            {
                let _turn = self.turn.lock().await;
                // `piece` never exceeds the bucket's burst, so this only waits.
                let _ = self.bucket.until_n_ready(piece).await;
            }
            left -= piece.get();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// One transfer reading 256 KiB chunks beside three reading 8 KiB
    /// ones: each gets a share of the budget (a turn is a piece, so the
    /// large reader gets up to twice a small one's), none starves. With
    /// the bucket alone, the large reader got nothing while the others ran.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transfers_share_the_budget_whatever_their_chunk_size() {
        let budget = Arc::new(Bandwidth::new(2 * 1024 * 1024));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut received = Vec::new();
        let mut tasks = Vec::new();
        for chunk in [256 * 1024, 8 * 1024, 8 * 1024, 8 * 1024] {
            let count = Arc::new(AtomicU64::new(0));
            received.push(count.clone());
            let (budget, stop) = (budget.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    budget.spend(chunk).await;
                    count.fetch_add(chunk as u64, Ordering::Relaxed);
                }
            }));
        }
        // Past the bucket's first second of burst, then one second more.
        let read = || -> Vec<u64> { received.iter().map(|c| c.load(Ordering::Relaxed)).collect() };
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let before = read();
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let counts: Vec<u64> = read()
            .iter()
            .zip(&before)
            .map(|(now, then)| now - then)
            .collect();
        stop.store(true, Ordering::Relaxed);
        let total: u64 = counts.iter().sum();
        for (index, count) in counts.iter().enumerate() {
            // A fair share is a quarter; a starving transfer gets next to nothing.
            assert!(
                *count * 8 >= total,
                "transfer {index} received {count} of {total} bytes: {counts:?}"
            );
        }
        for task in tasks {
            task.abort();
        }
    }
}
