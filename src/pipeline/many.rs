//! `mirror` of many connections in one process (an agency's run): each
//! connection runs the unchanged pipeline on its own archive
//! (`<out>/<safe id>/`, its own database and lock) with its own settings,
//! API client and token bucket, `at_once` at a time; the transfer slots
//! (`--jobs`) and `--limit-rate` are one pool for the whole process
//! ([`Limits`]). One stop signal stops every run in order, and the
//! connections whose turn had not come are not started.
//!
//! Invariants: a connection refused or failing never stops the others;
//! every connection chosen has its [`ConnectionRun`], in the order given;
//! the exit status is the worst of theirs ([`ExitStatus::worst`]), or the
//! stop signal's. The binary builds each connection's settings and
//! reporter, and prints.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::future::Shared;
use serde::Serialize;

use crate::exit::ExitStatus;
use crate::location::ArchiveLocation;
use crate::lock::{ArchiveLock, LockError};
use crate::pipeline::{Limits, MirrorError, Outcome, Summary, mirror_sharing};
use crate::report::Reporter;
use crate::settings::{Settings, connection_out};
use crate::store::Store;

/// Why one connection's run could not start or go on, as the caller
/// tells it: built from the core's errors, with an exit status.
pub trait ConnectionFailure: From<MirrorError> + From<LockError> + Send {
    fn status(&self) -> ExitStatus;
}

/// A connection to run: its id, its username when known, and its
/// settings (or why they could not be built).
pub struct Connection<F> {
    pub id: String,
    pub username: Option<String>,
    pub settings: Result<Settings, F>,
}

/// How one connection's run ended.
pub enum RunResult<F> {
    Finished(Box<Summary>),
    /// It could not start or could not go on (refused: exit code 4).
    Failed(F),
    /// A stop signal came before its turn.
    NotStarted,
}

/// One connection of the run and how it went.
pub struct ConnectionRun<F> {
    pub id: String,
    pub username: Option<String>,
    /// Its archive, as shown.
    pub out: ArchiveLocation,
    /// Its settings (`None` when they could not be built).
    pub settings: Option<Settings>,
    pub result: RunResult<F>,
}

impl<F: ConnectionFailure> ConnectionRun<F> {
    /// The connection's own exit status (not started: nothing to report).
    pub fn status(&self) -> ExitStatus {
        match &self.result {
            RunResult::Finished(summary) => match summary.outcome {
                Outcome::Complete => ExitStatus::Ok,
                Outcome::Partial => ExitStatus::Partial,
                Outcome::Interrupted => ExitStatus::Interrupted,
            },
            RunResult::Failed(failure) => failure.status(),
            RunResult::NotStarted => ExitStatus::Ok,
        }
    }

    /// `complete`, `partial`, `interrupted`, `refused`, `failed` or `not_started`.
    pub fn outcome(&self) -> &'static str {
        match &self.result {
            RunResult::Finished(summary) => match summary.outcome {
                Outcome::Complete => "complete",
                Outcome::Partial => "partial",
                Outcome::Interrupted => "interrupted",
            },
            RunResult::Failed(failure) if failure.status() == ExitStatus::Refused => "refused",
            RunResult::Failed(_) => "failed",
            RunResult::NotStarted => "not_started",
        }
    }
}

/// A run of many connections: each one's, and how the whole ended.
pub struct ManyRun<F> {
    /// In the order they were given.
    pub runs: Vec<ConnectionRun<F>>,
    /// The stop signal's status (130 or 143), when one came.
    pub stopped: Option<ExitStatus>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

impl<F: ConnectionFailure> ManyRun<F> {
    /// The stop signal's status when stopped; else the worst of the
    /// connections' ([`ExitStatus::worst`]: 1 if any failed, else 4 if
    /// any was refused, else 3 if any is partial, else 0).
    pub fn status(&self) -> ExitStatus {
        self.stopped
            .unwrap_or_else(|| ExitStatus::worst(self.runs.iter().map(ConnectionRun::status)))
    }

    /// `complete`, `partial`, `refused`, `interrupted` or `failed`.
    pub fn outcome(&self) -> &'static str {
        outcome_of(self.status())
    }

    /// What every connection's run added up to.
    pub fn totals(&self) -> Totals {
        Totals::of(&self.runs, self.seconds)
    }
}

/// The outcome of a run of many that ended with `status`.
pub fn outcome_of(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::Ok => "complete",
        ExitStatus::Partial => "partial",
        ExitStatus::Refused => "refused",
        ExitStatus::Interrupted | ExitStatus::Terminated => "interrupted",
        ExitStatus::Failed | ExitStatus::Usage => "failed",
    }
}

/// Mirrors `connections` of the agency's archive at `base.local`,
/// `--connections-at-once` at a time, sharing one [`Limits`], until `stop`
/// resolves with an exit code; `reporter` gives each connection (its
/// settings and id) the reporter its run reports to.
pub async fn mirror_many<F, S>(
    base: &Settings,
    connections: Vec<Connection<F>>,
    stop: Shared<S>,
    reporter: &(dyn Fn(&Settings, &str) -> Arc<dyn Reporter> + Sync),
) -> ManyRun<F>
where
    F: ConnectionFailure,
    S: Future<Output = i32>,
{
    let started = Instant::now();
    let limits = Limits::new(base);
    let at_once = base.mirror.connections_at_once.max(1);
    let mut runs: Vec<(usize, ConnectionRun<F>)> =
        futures::stream::iter(connections.into_iter().enumerate())
            .map(|(index, connection)| {
                let (stop, limits) = (stop.clone(), limits.clone());
                async move {
                    let out = match &connection.settings {
                        Ok(settings) => settings.archive.clone(),
                        Err(_) => {
                            ArchiveLocation::Disk(connection_out(&base.local, &connection.id))
                        }
                    };
                    let (result, settings) = match (stop.peek(), connection.settings) {
                        (Some(_), settings) => (RunResult::NotStarted, settings.ok()),
                        (None, Err(failure)) => (RunResult::Failed(failure), None),
                        (None, Ok(settings)) => {
                            let reporter = reporter(&settings, &connection.id);
                            let result = run_one(&settings, reporter, stop, limits).await;
                            (result, Some(settings))
                        }
                    };
                    let run = ConnectionRun {
                        id: connection.id,
                        username: connection.username,
                        out,
                        settings,
                        result,
                    };
                    (index, run)
                }
            })
            .buffer_unordered(at_once)
            .collect()
            .await;
    runs.sort_by_key(|(index, _)| *index);
    ManyRun {
        runs: runs.into_iter().map(|(_, run)| run).collect(),
        stopped: stop.peek().map(|code| ExitStatus::from_code(*code)),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// One connection's run: its lock, then the pipeline.
async fn run_one<F: ConnectionFailure>(
    settings: &Settings,
    reporter: Arc<dyn Reporter>,
    stop: impl Future<Output = i32>,
    limits: Limits,
) -> RunResult<F> {
    let _lock = match lock(settings, "mirror") {
        Ok(lock) => lock,
        Err(error) => return RunResult::Failed(error.into()),
    };
    match mirror_sharing(settings, reporter, stop, limits).await {
        Ok(summary) => RunResult::Finished(Box::new(summary)),
        Err(error) => RunResult::Failed(error.into()),
    }
}

/// Takes the archive's lock for `command`; a refusal is recorded in the
/// archive's history (when it has a database: nothing is created for it).
fn lock(settings: &Settings, command: &str) -> Result<ArchiveLock, LockError> {
    let started_at = crate::now_ms();
    match ArchiveLock::acquire(&settings.local, command) {
        Ok(lock) => {
            if let Some(previous) = &lock.taken_over {
                tracing::info!(
                    "took over the lock left by {} (no longer running)",
                    previous.describe()
                );
            }
            Ok(lock)
        }
        Err(error) => {
            // Best effort: the refusal itself is what the user must see.
            if let Ok(Some(store)) = Store::open_existing(&settings.db) {
                let _ = store.record_refused_run(
                    command,
                    started_at,
                    crate::now_ms(),
                    ExitStatus::Failed.code(),
                    &crate::report::chain(&error),
                );
            }
            Err(error)
        }
    }
}

/// What every connection's run added up to.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub connections: usize,
    pub complete: usize,
    pub partial: usize,
    pub refused: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub not_started: usize,
    pub downloaded: u64,
    pub already_verified: u64,
    /// Variants pending, and failed, over every connection.
    pub pending_variants: usize,
    pub failed_variants: usize,
    pub bytes: u64,
    /// Wall time of the whole run.
    pub seconds: f64,
}

impl Totals {
    fn of<F: ConnectionFailure>(runs: &[ConnectionRun<F>], seconds: f64) -> Totals {
        let mut totals = Totals {
            connections: runs.len(),
            seconds,
            ..Totals::default()
        };
        for run in runs {
            match run.outcome() {
                "complete" => totals.complete += 1,
                "partial" => totals.partial += 1,
                "refused" => totals.refused += 1,
                "interrupted" => totals.interrupted += 1,
                "not_started" => totals.not_started += 1,
                _ => totals.failed += 1,
            }
            if let RunResult::Finished(summary) = &run.result {
                totals.downloaded += summary.downloaded;
                totals.already_verified += summary.already_verified;
                totals.pending_variants += summary.pending.len();
                totals.failed_variants += summary.failed.len();
                totals.bytes += summary.bytes;
            }
        }
        totals
    }
}
