//! How a run shows itself on stderr — the one place indicatif lives.
//!
//! - On a terminal: an overall bar (bytes, files, rate, ETA), a line per
//!   active transfer, and retry, re-sign and failure messages printed above
//!   the bars (through `suspend`) so they never tear them.
//! - Not on a terminal (cron, a pipe), or with `-v` (log lines and bars do
//!   not mix): plain lines for stages, retries, re-signs and failures, and
//!   a progress line now and then.
//! - With `--quiet` or `--json`: nothing.
//!
//! Whatever the display, every event also goes to the log (target
//! [`EVENTS`]), which reaches the `--log-file` but never stderr, so
//! nothing shows twice.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use vault_mirror::report::{Reporter, Stage, TransferId};
use vault_mirror::settings::Output;

/// The log target of reported events (see `init_logging`).
pub const EVENTS: &str = "events";

/// How often a plain display says how far it got.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Picks the display for this output mode and terminal.
pub fn display_for(output: Output) -> Display {
    if output.quiet || output.json {
        Display::Silent
    } else if output.verbose == 0
        && std::io::stderr().is_terminal()
        && std::env::var_os("VAULT_MIRROR_NO_PROGRESS").is_none()
    {
        Display::Bars(Box::new(Bars::new(colour_wanted())))
    } else {
        Display::Lines(Counts::default())
    }
}

/// Messages (retries, notes) but no bars: for short commands.
pub fn messages_for(output: Output) -> Display {
    if output.quiet || output.json {
        Display::Silent
    } else {
        Display::Lines(Counts::default())
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` set (no-color.org).
pub fn colour_wanted() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

pub enum Display {
    Silent,
    Lines(Counts),
    Bars(Box<Bars>),
}

/// What a plain display counts for its occasional progress line.
pub struct Counts {
    files_total: AtomicU64,
    files_done: AtomicU64,
    bytes: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }
}

impl Display {
    /// Clears the bars before the summary is printed.
    pub fn finish(&self) {
        if let Display::Bars(bars) = self {
            bars.overall.finish_and_clear();
            for (_, bar) in bars
                .transfers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain()
            {
                bar.finish_and_clear();
            }
            let _ = bars.multi.clear();
        }
    }

    /// A line for a person (and the log), above the bars if there are any.
    pub fn line(&self, text: &str) {
        tracing::info!(target: EVENTS, "{text}");
        match self {
            Display::Silent => {}
            Display::Lines(_) => eprintln!("{text}"),
            Display::Bars(bars) => bars.multi.suspend(|| eprintln!("{text}")),
        }
    }
}

pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// The overall bar's look once there is something to count (before,
    /// an empty bar would draw as full).
    overall_style: ProgressStyle,
    counting: std::sync::atomic::AtomicBool,
    transfers: Mutex<HashMap<TransferId, ProgressBar>>,
    transfer_style: ProgressStyle,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

impl Bars {
    fn new(colour: bool) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(0));
        let template = if colour {
            "{spinner:.green} [{elapsed_precise}] {bar:32.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {bar:32} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
        };
        let overall_style = ProgressStyle::with_template(template)
            .expect("the overall template parses")
            .progress_chars("=> ");
        let waiting = if colour {
            "{spinner:.green} [{elapsed_precise}] {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {msg}"
        };
        overall
            .set_style(ProgressStyle::with_template(waiting).expect("the waiting template parses"));
        overall.enable_steady_tick(Duration::from_millis(120));
        let transfer_style =
            ProgressStyle::with_template("  {msg:32!} {bar:24} {bytes:>10}/{total_bytes:<10}")
                .expect("the transfer template parses")
                .progress_chars("=> ");
        Bars {
            multi,
            overall,
            overall_style,
            counting: std::sync::atomic::AtomicBool::new(false),
            transfers: Mutex::new(HashMap::new()),
            transfer_style,
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
        }
    }

    fn files_message(&self) {
        self.overall.set_message(format!(
            "files {}/{}",
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed)
        ));
    }

    fn transfer(&self, id: TransferId) -> Option<ProgressBar> {
        self.transfers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    fn end_transfer(&self, id: TransferId) -> Option<ProgressBar> {
        let bar = self
            .transfers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)?;
        bar.finish_and_clear();
        self.multi.remove(&bar);
        Some(bar)
    }
}

impl Counts {
    /// Every [`PLAIN_PROGRESS_EVERY`], a line saying how far the run got.
    fn maybe_line(&self) -> Option<String> {
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < PLAIN_PROGRESS_EVERY {
            return None;
        }
        *last = Instant::now();
        Some(format!(
            "progress: files {}/{}, {} received",
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
            HumanBytes(self.bytes.load(Ordering::Relaxed))
        ))
    }
}

impl Reporter for Display {
    fn on_stage(&self, stage: Stage, detail: &str) {
        let text = format!("{}: {detail}", stage.name());
        match self {
            Display::Bars(bars) => {
                tracing::info!(target: EVENTS, "{text}");
                bars.overall.set_message(text);
            }
            _ => self.line(&text),
        }
    }

    fn on_queued(&self, files: u64, bytes: u64) {
        match self {
            Display::Bars(bars) => {
                if !bars.counting.swap(true, Ordering::Relaxed) {
                    bars.overall.set_style(bars.overall_style.clone());
                }
                bars.overall.inc_length(bytes);
                bars.files_total.fetch_add(files, Ordering::Relaxed);
                bars.files_message();
            }
            Display::Lines(counts) => {
                counts.files_total.fetch_add(files, Ordering::Relaxed);
            }
            Display::Silent => {}
        }
    }

    fn on_start(&self, id: TransferId, name: &str, size: u64, resumed_from: u64) {
        if resumed_from > 0 {
            tracing::debug!(target: EVENTS, "{name}: resuming from byte {resumed_from} of {size}");
        }
        if let Display::Bars(bars) = self {
            let bar = bars.multi.insert_from_back(0, ProgressBar::new(size));
            bar.set_style(bars.transfer_style.clone());
            bar.set_message(name.to_owned());
            bar.set_position(resumed_from);
            // Resumed bytes were planned but arrived in an earlier run.
            bars.overall.inc(resumed_from);
            bars.transfers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, bar);
        }
    }

    fn on_bytes(&self, id: TransferId, new_bytes: u64) {
        match self {
            Display::Bars(bars) => {
                bars.overall.inc(new_bytes);
                if let Some(bar) = bars.transfer(id) {
                    bar.inc(new_bytes);
                }
            }
            Display::Lines(counts) => {
                counts.bytes.fetch_add(new_bytes, Ordering::Relaxed);
            }
            Display::Silent => {}
        }
    }

    fn on_rewind(&self, id: TransferId, lost_bytes: u64) {
        if let Display::Bars(bars) = self {
            bars.overall
                .set_position(bars.overall.position().saturating_sub(lost_bytes));
            if let Some(bar) = bars.transfer(id) {
                bar.set_position(0);
            }
        }
    }

    fn on_done(&self, id: TransferId) {
        match self {
            Display::Bars(bars) => {
                bars.end_transfer(id);
                bars.files_done.fetch_add(1, Ordering::Relaxed);
                bars.files_message();
            }
            Display::Lines(counts) => {
                counts.files_done.fetch_add(1, Ordering::Relaxed);
                if let Some(text) = counts.maybe_line() {
                    self.line(&text);
                }
            }
            Display::Silent => {}
        }
    }

    fn on_abandoned(&self, id: TransferId) {
        if let Display::Bars(bars) = self
            && let Some(bar) = bars.end_transfer(id)
        {
            // Bytes of an abandoned attempt stay in .part and count again
            // as resumed bytes when the next attempt starts.
            bars.overall
                .set_position(bars.overall.position().saturating_sub(bar.position()));
        }
    }

    fn on_resign(&self, what: &str, reason: &str) {
        self.line(&format!("re-signing {what}: {reason}"));
    }

    fn on_retry(&self, what: &str, tries_left: usize, reason: &str) {
        let tries = if tries_left == 1 { "try" } else { "tries" };
        self.line(&format!(
            "retrying {what} ({tries_left} {tries} left): {reason}"
        ));
    }

    fn on_failed(&self, what: &str, reason: &str) {
        self.line(&format!("failed {what}: {reason}"));
    }

    fn on_note(&self, text: &str) {
        self.line(&format!("note: {text}"));
    }
}
