//! Stopping on a signal: the first Ctrl-C (SIGINT) or SIGTERM stops a run
//! in order, a second (or a run still busy 10 s later) exits at once.
//! Stopping anywhere is safe — files reach their final path only whole
//! and verified, and the next run resumes from the `.part` bytes and the
//! database.

use std::io::IsTerminal;
use vault_mirror::exit::ExitStatus;

use super::failure::Failure;
use super::progress;

/// Runs `work` until it ends or the process is asked to stop (Ctrl-C,
/// SIGTERM): then exits 130 or 143 at once. Stopping anywhere is safe —
/// files reach their final path only whole and verified, and the next run
/// resumes from the `.part` bytes and the database.
pub async fn interruptible(
    work: impl std::future::Future<Output = Result<i32, Failure>>,
) -> Result<i32, Failure> {
    let status = tokio::select! {
        result = work => return result,
        status = stop_signal() => status,
    };
    eprintln!();
    eprintln!("interrupted: what was verified is kept; run the same command again to resume");
    tracing::warn!(target: progress::EVENTS, "interrupted by a signal");
    Ok(status.code())
}

/// How long a run may take to stop after the first signal before the
/// process exits anyway.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Listens for stop signals from now until the process ends. The first
/// resolves the returned future with its exit code (130 or 143), so the
/// work can stop in order; a second signal, or the work still running
/// [`STOP_GRACE`] later, exits at once — safe too, only less tidy (the
/// run stays unfinished in the database, like after a crash).
/// `display` clears its bars and shows the "stopping" line.
pub(crate) fn graceful_stop(
    display: std::sync::Arc<progress::Progress>,
) -> impl std::future::Future<Output = i32> + Send + 'static {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let status = stop_signal().await;
        // A SIGINT while stdin is a terminal is, as a rule, Ctrl-C typed
        // there: the terminal echoed `^C` (see `Progress::stopping`).
        let echoed = status.code() == 130 && std::io::stdin().is_terminal();
        display.stopping(
            "stopping: transfers in flight are kept to resume (Ctrl-C again: stop at once)",
            echoed,
        );
        let _ = sender.send(status.code());
        let status = tokio::select! {
            second = stop_signal() => second,
            () = tokio::time::sleep(STOP_GRACE) => status,
        };
        eprintln!("stopped at once");
        std::process::exit(status.code());
    });
    async move {
        match receiver.await {
            Ok(code) => code,
            // The listener ended without a signal: never stop.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Resolves with the exit status for the first stop signal: interrupted
/// (Ctrl-C, 130) or terminated (SIGTERM, 143).
pub(crate) async fn stop_signal() -> ExitStatus {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => ExitStatus::Interrupted,
                _ = terminate.recv() => ExitStatus::Terminated,
            };
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => ExitStatus::Interrupted,
        // No signal handling here: wait for the work instead.
        Err(_) => std::future::pending().await,
    }
}
