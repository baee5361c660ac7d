//! Events from the core to whoever shows them. The core never prints: it
//! calls a [`Reporter`], and the binary decides whether that means progress
//! bars, log lines, or nothing (`--quiet`, `--json`).
//!
//! Byte counts are *new* bytes per read, so a reporter can sum them.
//!
//! Beside the trait live the outputs an unattended run leaves for the
//! machines watching it, each fed plain values by the binary: [`events`]
//! (an NDJSON stream of what the core reports), [`metrics`] (the
//! Prometheus textfile) and [`ping`] (healthchecks.io-style pings).

pub mod events;
pub mod metrics;
pub mod ping;

use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one transfer between `on_start` and `on_done`/`on_failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferId(pub u64);

impl TransferId {
    /// A process-wide unique id.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TransferId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The pipeline stages, in the order a run goes through them (ARCHITECTURE.md,
/// "One run, end to end").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Lists,
    Sync,
    Membership,
    Resolve,
    Download,
    Commit,
    /// Each media's own date, asked of the Access API once in its life.
    Dates,
    /// `mirror --dry-run` working out what a run would do.
    Plan,
    /// `verify` re-reading files.
    Verify,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Lists => "lists",
            Stage::Sync => "sync",
            Stage::Membership => "membership",
            Stage::Resolve => "resolve",
            Stage::Download => "download",
            Stage::Commit => "commit",
            Stage::Dates => "dates",
            Stage::Plan => "plan",
            Stage::Verify => "verify",
        }
    }
}

/// What the core tells whoever shows a run: stages, planned work,
/// transfers (start, new bytes, done, abandoned), re-signs, retries,
/// failures and notes. Every method has an empty default, so a reporter
/// implements only what it shows; the core never prints.
pub trait Reporter: Send + Sync {
    /// A stage began (or made progress worth a line): `detail` says what.
    fn on_stage(&self, _stage: Stage, _detail: &str) {}
    /// More work was planned: `files` transfers totalling `bytes`. Until
    /// [`Reporter::on_planned`], more may come: totals are lower bounds.
    fn on_queued(&self, _files: u64, _bytes: u64) {}
    /// Every transfer of this pass is planned: the totals are final (a
    /// later `on_queued`, from `--wait-pending`, makes them grow again).
    fn on_planned(&self) {}
    /// A transfer started; `resumed_from` bytes were already on disk.
    fn on_start(&self, _id: TransferId, _name: &str, _size: u64, _resumed_from: u64) {}
    /// `new_bytes` more bytes of a transfer arrived.
    fn on_bytes(&self, _id: TransferId, _new_bytes: u64) {}
    /// The transfer's bytes were dropped (a restart from zero): take them back.
    fn on_rewind(&self, _id: TransferId, _lost_bytes: u64) {}
    /// The transfer's file is checked and at its final `path` (relative
    /// to the archive root), `size` bytes with this `sha256`; `on_done`
    /// follows.
    fn on_verified(&self, _id: TransferId, _name: &str, _path: &str, _size: u64, _sha256: &str) {}
    /// The transfer is verified and committed.
    fn on_done(&self, _id: TransferId) {}
    /// A transfer's signed URL is replaced by a fresh one (it expires
    /// before the transfer could finish, or the media host refused it);
    /// `reason` says which. The transfer goes on from the bytes on disk.
    fn on_resign(&self, _what: &str, _reason: &str) {}
    /// Something is tried again; `tries_left` more attempts remain.
    fn on_retry(&self, _what: &str, _tries_left: usize, _reason: &str) {}
    /// An item failed for good (the run goes on).
    fn on_failed(&self, _what: &str, _reason: &str) {}
    /// A transfer ended without success (failed, or handed back to be retried later).
    fn on_abandoned(&self, _id: TransferId) {}
    /// Something the user should know that is neither progress nor failure.
    fn on_note(&self, _text: &str) {}
}

/// Shows nothing: for `--quiet`, `--json` and tests.
pub struct SilentReporter;

impl Reporter for SilentReporter {}

/// An error's message and its causes', each once: a cause whose text the
/// message shown before it already holds is left out (some libraries put
/// their source's text in their own message, and also give it as the
/// source), so a chain never repeats itself.
pub fn causes(error: &dyn std::error::Error) -> Vec<String> {
    let mut shown = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !shown.last().is_some_and(|last| last.contains(&text)) {
            shown.push(text);
        }
        source = cause.source();
    }
    shown
}

/// An error and its causes on one line (`what: why: deeper why`), for a
/// note or a finding that has no room for a `caused by:` list.
pub fn chain(error: &dyn std::error::Error) -> String {
    causes(error).join(": ")
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    /// A library error that repeats its source in its own message.
    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner detail")]
    struct Inner;

    #[test]
    fn a_cause_already_in_the_message_before_it_is_not_repeated() {
        let error = Outer(Middle(Inner));
        assert_eq!(causes(&error), ["outer", "middle: inner detail"]);
        assert_eq!(chain(&error), "outer: middle: inner detail");
    }
}
