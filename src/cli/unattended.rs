//! What an unattended `mirror` run leaves for those watching it: the
//! `--events` stream, the `--metrics-file` and the `--ping-url` pings
//! (docs/scheduling.md). The core knows none of them: this file
//! sets them up before a run ([`Watchers::start`]), gives each
//! connection its reporter ([`Watchers::reporter`]), and after the run
//! writes the metrics and sends the end ping ([`Watchers::finish`]).
//!
//! Invariants:
//! - Once per process: one events sink, one start ping and one end ping
//!   (with the process's exit code), one metrics file with an entry per
//!   connection, whatever the run covered.
//! - Nothing here changes a run's outcome: a metrics file that cannot be
//!   written, a ping that fails or hangs (at most 10 s in all) or an
//!   events stream that breaks are warnings. Only an events file that
//!   cannot be opened at the start stops the run (exit 2), before any work.
//! - Ping bodies carry no secret: URL queries are scrubbed and the API
//!   key and the ping URL are replaced wherever they appear.

use std::sync::Arc;

use secrecy::ExposeSecret;
use vault_mirror::pipeline::Summary;
use vault_mirror::report::Reporter;
use vault_mirror::report::events::{EventReporter, EventSink};
use vault_mirror::report::metrics::{self, CheckMetrics, MetricsEntry};
use vault_mirror::report::ping::{self, Pings};
use vault_mirror::settings::Settings;
use vault_mirror::store::WatchedFigures;

use super::failure::Failure;

/// How one connection's run ended, for the metrics file.
pub struct ConnectionEnd<'a> {
    pub settings: &'a Settings,
    pub result: Result<&'a Summary, &'a Failure>,
}

/// The outputs of one process's run.
pub struct Watchers {
    events: Option<Arc<EventSink>>,
    pings: Option<Pings>,
    started: std::time::Instant,
}

impl Watchers {
    /// Opens the events stream and sends the start ping.
    pub fn start(settings: &Settings, command: &str) -> Result<Watchers, Failure> {
        let watch = &settings.watch;
        let events = match &watch.events {
            None => None,
            Some(_) if watch.events_on_stdout() => Some(EventSink::stdout()),
            Some(path) => Some(EventSink::file(path).map_err(|error| {
                Failure::usage(
                    anyhow::Error::new(error).context("cannot open the events file (--events)"),
                )
            })?),
        }
        .map(Arc::new);
        let pings = watch
            .ping_url
            .as_ref()
            .map(|url| Pings::new(url.expose_secret(), watch.ping_exit_code));
        if let Some(pings) = &pings {
            pings.start();
        }
        let watchers = Watchers {
            events,
            pings,
            started: std::time::Instant::now(),
        };
        watchers.emit(
            settings,
            "run_started",
            serde_json::json!({
                "command": command,
                "out": settings.local,
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
                "rid": watchers.pings.as_ref().and_then(Pings::rid),
            }),
        );
        Ok(watchers)
    }

    fn emit(&self, settings: &Settings, event: &str, fields: serde_json::Value) {
        if let Some(sink) = &self.events {
            sink.emit(&connection_of(settings), event, fields);
        }
    }

    /// The reporter for a connection's run: `display`, and the events.
    pub fn reporter(&self, display: Arc<dyn Reporter>, settings: &Settings) -> Arc<dyn Reporter> {
        match &self.events {
            Some(sink) => Arc::new(EventReporter::new(
                display,
                sink.clone(),
                &connection_of(settings),
            )),
            None => display,
        }
    }

    /// A run that failed before any connection's run began: its event, the
    /// metrics file and the end ping; returns the failure to report.
    pub async fn fail(&self, settings: &Settings, failure: Failure) -> Failure {
        let end = ConnectionEnd {
            settings,
            result: Err(&failure),
        };
        self.finish(
            &[end],
            failure.code,
            &super::failure::failure_text(&failure, false),
        )
        .await;
        failure
    }

    /// After the run: each connection's last event, the metrics file, and
    /// the end ping with `exit_code` and the last lines of `text` (what
    /// the run printed as its summary, or the error).
    pub async fn finish(&self, ends: &[ConnectionEnd<'_>], exit_code: i32, text: &str) {
        for end in ends {
            match end.result {
                Ok(summary) => self.emit(
                    end.settings,
                    "summary",
                    serde_json::json!({ "summary": summary }),
                ),
                Err(failure) => self.emit(
                    end.settings,
                    "run_failed",
                    serde_json::json!({
                        "exit_code": failure.code,
                        "error": vault_mirror::redact::scrub(&failure.one_line()),
                    }),
                ),
            }
        }
        if let Some(path) = ends
            .first()
            .and_then(|end| end.settings.watch.metrics_file.as_ref())
        {
            let seconds = self.started.elapsed().as_secs_f64();
            let entries: Vec<MetricsEntry> =
                ends.iter().map(|end| metrics_entry(end, seconds)).collect();
            if let Err(error) = metrics::write_atomically(path, &metrics::render(&entries)) {
                // Shown even with --quiet; the run's exit code stays its own.
                tracing::error!("cannot write the metrics file (--metrics-file): {error}");
            }
        }
        if let Some(pings) = &self.pings {
            let mut secrets: Vec<String> = Vec::new();
            for end in ends {
                let watch = &end.settings.watch;
                secrets.extend(
                    watch
                        .ping_url
                        .iter()
                        .map(|url| url.expose_secret().to_owned()),
                );
                secrets.extend(
                    end.settings
                        .api_key
                        .iter()
                        .map(|key| key.expose_secret().to_owned()),
                );
            }
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let body = ping::redacted(text, &secrets);
            pings.finish(exit_code, &body).await;
        }
    }
}

/// `settings` as a run of many connections reports its own events (its
/// start, a failure before any connection's run): under no connection,
/// whatever connection the environment or the file names.
pub fn of_process(settings: &Settings) -> Settings {
    Settings {
        connection_id: None,
        ..settings.clone()
    }
}

/// The connection id events and metrics carry (empty when none is set).
fn connection_of(settings: &Settings) -> String {
    settings.connection_id.clone().unwrap_or_default()
}

/// A connection's metrics: the run's figures, and what its database holds
/// (left out where the database cannot be read).
fn metrics_entry(end: &ConnectionEnd<'_>, seconds: f64) -> MetricsEntry {
    let settings = end.settings;
    let (exit_code, duration_seconds, downloaded_bytes, downloaded_files) = match end.result {
        Ok(summary) => (
            summary.exit_code,
            summary.seconds,
            summary.bytes,
            summary.downloaded,
        ),
        Err(failure) => (failure.code, seconds, 0, 0),
    };
    let figures = WatchedFigures::read(&settings.db, |label| settings.mirror.quality.wants(label));
    MetricsEntry {
        connection: connection_of(settings),
        last_success_at: figures.last_success_at,
        last_run_at: vault_mirror::now_ms(),
        duration_seconds,
        exit_code,
        downloaded_bytes,
        downloaded_files,
        variants: figures.variants,
        archive_bytes: figures.archive_bytes,
        checks: figures.checks.map(|checks| CheckMetrics {
            oldest_check_at: checks.oldest_check_at,
            never_checked_files: checks.never_checked,
            last_run: checks
                .last_run
                .map(|run| (run.finished_at, run.bytes, run.damaged)),
        }),
    }
}
