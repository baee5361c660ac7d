//! How the run shows itself on stderr — the one place indicatif lives.
//!
//! On a terminal: an overall bar (bytes, files, rate, ETA), a line per
//! active transfer, and retry/failure messages printed above the bars so
//! they do not tear them. Not on a terminal (cron, a pipe): plain lines
//! for stages, retries and failures. With `--quiet` or `--json`: nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use vault_mirror::report::{Reporter, Stage, TransferId};
use vault_mirror::settings::Output;

/// Picks the display for this output mode and terminal.
pub fn display_for(output: Output) -> Display {
    if output.quiet || output.json {
        Display::Silent
    } else if std::io::stderr().is_terminal()
        && std::env::var_os("VAULT_MIRROR_NO_PROGRESS").is_none()
    {
        Display::Bars(Bars::new())
    } else {
        Display::Lines
    }
}

pub enum Display {
    Silent,
    Lines,
    Bars(Bars),
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

    fn line(&self, text: &str) {
        match self {
            Display::Silent => {}
            Display::Lines => eprintln!("{text}"),
            Display::Bars(bars) => bars.multi.suspend(|| eprintln!("{text}")),
        }
    }
}

pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    transfers: Mutex<HashMap<TransferId, ProgressBar>>,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{spinner:.green} [{elapsed_precise}] {bar:32.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("the overall template parses")
            .progress_chars("=> "),
        );
        overall.enable_steady_tick(Duration::from_millis(120));
        Bars {
            multi,
            overall,
            transfers: Mutex::new(HashMap::new()),
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

impl Reporter for Display {
    fn on_stage(&self, stage: Stage, detail: &str) {
        match self {
            Display::Bars(bars) => bars
                .overall
                .set_message(format!("{}: {detail}", stage.name())),
            _ => self.line(&format!("{}: {detail}", stage.name())),
        }
    }

    fn on_queued(&self, files: u64, bytes: u64) {
        if let Display::Bars(bars) = self {
            bars.overall.inc_length(bytes);
            bars.files_total.fetch_add(files, Ordering::Relaxed);
            bars.files_message();
        }
    }

    fn on_start(&self, id: TransferId, name: &str, size: u64, resumed_from: u64) {
        if let Display::Bars(bars) = self {
            let bar = bars.multi.insert_from_back(0, ProgressBar::new(size));
            bar.set_style(
                ProgressStyle::with_template("  {msg:32!} {bar:24} {bytes:>10}/{total_bytes:<10}")
                    .expect("the transfer template parses")
                    .progress_chars("=> "),
            );
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
        if let Display::Bars(bars) = self {
            bars.overall.inc(new_bytes);
            if let Some(bar) = bars
                .transfers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
            {
                bar.inc(new_bytes);
            }
        }
    }

    fn on_rewind(&self, id: TransferId, lost_bytes: u64) {
        if let Display::Bars(bars) = self {
            bars.overall
                .set_position(bars.overall.position().saturating_sub(lost_bytes));
            if let Some(bar) = bars
                .transfers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
            {
                bar.set_position(0);
            }
        }
    }

    fn on_done(&self, id: TransferId) {
        if let Display::Bars(bars) = self {
            bars.end_transfer(id);
            bars.files_done.fetch_add(1, Ordering::Relaxed);
            bars.files_message();
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
