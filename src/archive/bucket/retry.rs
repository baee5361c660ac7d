//! The one retry policy of every request to the object store: which
//! failures pass (and are tried again), how often, and how long to wait.
//!
//! | failure | tried again? |
//! |---|---|
//! | HTTP 429, 408, 500, 502, 503, 504; a 200 whose body is an `InternalError` or `SlowDown` | yes |
//! | no answer: connection refused or reset, closed mid-answer, a timeout | yes |
//! | 400, 401, 403, 404 (`NoSuchBucket`, `NoSuchKey`, `NoSuchUpload`), 409, 412 (a precondition), any other 4xx | no |
//!
//! At most [`TRIES`] tries in all; before try `n + 1` the wait is drawn
//! uniformly from `0..=min(LONGEST_WAIT, FIRST_WAIT × 2ⁿ⁻¹)` (exponential
//! backoff, full jitter), or the store's own `Retry-After` (capped at
//! [`LONGEST_HINT`]) where the answer is ours to read.
//!
//! Why above `object_store` and not its own `RetryConfig`
//! (`AmazonS3Builder::with_retry`): its retries are invisible (they cannot
//! be counted or reported); it retries a request whose answer was lost
//! only when it deems the request idempotent (a connection reset after
//! the request was sent, `HttpErrorKind::Unknown`, is never retried, as
//! issue #23's HEAD shows); it does not cover the requests we sign and
//! send ourselves (the CopyObject that sets the sha256 metadata, the
//! listing of incomplete uploads); and the caller cannot check what a
//! lost answer did between two tries. So `Bucket::open` switches it off
//! (`max_retries: 0`) and every call of `Bucket` goes through
//! [`StoreRetries::run`]. object_store keeps no answer's headers in its
//! errors, so `Retry-After` is honoured on the requests we send ourselves
//! only; elsewhere the backoff alone paces the tries.
//!
//! Invariants: a permanent failure is returned at once; a transient one
//! is tried again at most `TRIES - 1` times; every retry is counted
//! (`store_retries` in the summary) and logged.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Tries of one request in all (the first and six more).
pub const TRIES: usize = 7;
/// The cap of the first wait.
pub const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The cap of any wait of the backoff.
pub const LONGEST_WAIT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` honoured.
pub const LONGEST_HINT: Duration = Duration::from_secs(60);

/// What a failure of the store says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It may pass: try again (after the store's hint, if it gave one).
    Transient(Option<Duration>),
    /// It will not pass by itself.
    Permanent,
}

/// A failure the policy can sort.
pub trait StoreFault {
    fn fault(&self) -> Fault;
}

/// Whether an HTTP status is worth trying again.
pub fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether an error body names a failure that passes (S3 may send one
/// with `200 OK`, for CopyObject and CompleteMultipartUpload).
pub fn transient_body(body: &str) -> bool {
    [
        "InternalError",
        "SlowDown",
        "ServiceUnavailable",
        "RequestTimeout",
    ]
    .iter()
    .any(|code| body.contains(&format!("<Code>{code}</Code>")) || body.contains(code))
}

/// The status object_store's message names (`… status code: 503 …`):
/// the status itself is in a type it does not export.
fn status_in(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

impl StoreFault for object_store::Error {
    fn fault(&self) -> Fault {
        use object_store::Error as E;
        match self {
            E::Generic { .. } => {}
            _ => return Fault::Permanent,
        }
        let mut current: Option<&(dyn StdError + 'static)> = Some(self);
        while let Some(error) = current {
            // No answer at all: refused, reset, closed, timed out.
            if error
                .downcast_ref::<object_store::client::HttpError>()
                .is_some()
            {
                return Fault::Transient(None);
            }
            let text = error.to_string();
            if let Some(status) = status_in(&text) {
                let passes = transient_status(status) || (status == 200 && transient_body(&text));
                return if passes {
                    Fault::Transient(None)
                } else {
                    Fault::Permanent
                };
            }
            if text.contains("Server returned error response") && transient_body(&text) {
                return Fault::Transient(None);
            }
            current = error.source();
        }
        Fault::Permanent
    }
}

/// A failure of a request we send ourselves, with the store's
/// `Retry-After` when it gave one.
#[derive(Debug)]
pub struct Hinted<E> {
    pub error: E,
    pub retry_after: Option<Duration>,
}

impl<E: std::fmt::Display> std::fmt::Display for Hinted<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<E: StoreFault> StoreFault for Hinted<E> {
    fn fault(&self) -> Fault {
        match self.error.fault() {
            Fault::Transient(hint) => Fault::Transient(self.retry_after.or(hint)),
            Fault::Permanent => Fault::Permanent,
        }
    }
}

/// The policy, and the count of retries it made (shared by every clone of
/// a `Bucket`).
#[derive(Debug, Clone, Default)]
pub struct StoreRetries {
    count: Arc<AtomicU64>,
}

impl StoreRetries {
    /// Retries made so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Runs `call` until it succeeds, fails for good, or [`TRIES`] are spent.
    /// `what` and `key` name the request in the log.
    pub async fn run<T, E, F, Fut>(&self, what: &str, key: &str, call: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: StoreFault + std::fmt::Display,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(FIRST_WAIT)
            .with_max_delay(LONGEST_WAIT)
            .with_max_times(TRIES - 1);
        call.retry(backoff)
            .when(|error| matches!(error.fault(), Fault::Transient(_)))
            .adjust(|error, delay| {
                let delay = delay?;
                Some(match error.fault() {
                    Fault::Transient(Some(hint)) => hint.min(LONGEST_HINT),
                    _ => full_jitter(delay),
                })
            })
            .notify(|error, wait| {
                self.count.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "object storage: {what} {key} failed ({error}); trying again in {:.1}s",
                    wait.as_secs_f64()
                );
            })
            .sleep(tokio::time::sleep)
            .await
    }
}

/// A wait drawn uniformly from `0..=cap`.
fn full_jitter(cap: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return cap / 2;
    }
    let fraction = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
    cap.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Answer(Fault);

    impl std::fmt::Display for Answer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl StoreFault for Answer {
        fn fault(&self) -> Fault {
            self.0
        }
    }

    #[test]
    fn statuses_and_bodies_are_sorted() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(transient_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 412, 501] {
            assert!(!transient_status(status), "{status}");
        }
        assert_eq!(
            status_in("Server returned non-2xx status code: 503 Service Unavailable: "),
            Some(503)
        );
        assert!(transient_body("<Error><Code>SlowDown</Code></Error>"));
        assert!(!transient_body("<Error><Code>NoSuchUpload</Code></Error>"));
        let missing = object_store::Error::NotFound {
            path: "k".into(),
            source: "gone".into(),
        };
        assert_eq!(missing.fault(), Fault::Permanent);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_counted_permanent_ones_not() {
        let retries = StoreRetries::default();
        let mut calls = 0;
        let result: Result<u32, Answer> = retries
            .run("reading", "k", || {
                calls += 1;
                let fault = if calls < 3 {
                    Some(Fault::Transient(None))
                } else {
                    None
                };
                async move { fault.map_or(Ok(7), |fault| Err(Answer(fault))) }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(retries.count(), 2);

        let mut calls = 0;
        let result: Result<u32, Answer> = retries
            .run("reading", "k", || {
                calls += 1;
                async { Err(Answer(Fault::Permanent)) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);

        let mut calls = 0;
        let result: Result<u32, Answer> = retries
            .run("reading", "k", || {
                calls += 1;
                async { Err(Answer(Fault::Transient(Some(Duration::from_millis(1))))) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, TRIES);
    }

    #[test]
    fn jitter_stays_under_its_cap() {
        for _ in 0..100 {
            assert!(full_jitter(Duration::from_millis(400)) <= Duration::from_millis(400));
        }
    }
}
