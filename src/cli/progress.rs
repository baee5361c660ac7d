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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use vault_mirror::report::{Reporter, Stage, TransferId};
use vault_mirror::settings::Output;

/// The log target of reported events (see `init_logging`).
pub const EVENTS: &str = "events";

/// How often a plain display says how far it got.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Picks the display for this output mode and terminal.
pub fn display_for(output: Output) -> Progress {
    if output.quiet || output.json {
        Progress::Silent
    } else if output.verbose == 0
        && std::io::stderr().is_terminal()
        && std::env::var_os("VAULT_MIRROR_NO_PROGRESS").is_none()
    {
        Progress::Bars(Box::new(Bars::new(
            colour_wanted(),
            ProgressDrawTarget::stderr_with_hz(10),
            super::terminal::stderr_width().unwrap_or(80),
        )))
    } else {
        Progress::Lines(Counts::default())
    }
}

/// Messages (retries, notes) but no bars: for short commands.
pub fn messages_for(output: Output) -> Progress {
    if output.quiet || output.json {
        Progress::Silent
    } else {
        Progress::Lines(Counts::default())
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` set (no-color.org).
pub fn colour_wanted() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// How a run shows itself: nothing, plain lines, or bars (see the module docs).
pub enum Progress {
    Silent,
    Lines(Counts),
    Bars(Box<Bars>),
}

/// What a plain display counts for its occasional progress line.
pub struct Counts {
    /// Whether every transfer is planned (`files_total` is final).
    planned: AtomicBool,
    files_total: AtomicU64,
    files_done: AtomicU64,
    bytes: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            planned: AtomicBool::new(false),
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }
}

/// A display no one holds any more clears its bars: the core drops a
/// phase's reporter when the phase ends (`verify`'s checks, then its
/// refetch), so what follows is not drawn over stale bars.
impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Progress {
    /// Clears the bars before the summary is printed.
    pub fn finish(&self) {
        if let Progress::Bars(bars) = self {
            bars.clear();
        }
    }

    /// A stop signal: the bars go (transfers in flight are dropped, so
    /// they would stay drawn as they were), then `text` is shown.
    /// `echoed`: the signal is a Ctrl-C typed on the terminal, which
    /// echoed `^C` where the cursor was. The bars fill every line to the
    /// last column (indicatif lets the terminal wrap), so the echo began
    /// a line below them that they know nothing of: that line goes first,
    /// or clearing them (so many lines up from the cursor) would leave
    /// their top line, the overall bar, on screen.
    pub fn stopping(&self, text: &str, echoed: bool) {
        tracing::warn!(target: EVENTS, "{text}");
        if let Progress::Bars(bars) = self {
            if echoed && !bars.stopped.load(Ordering::Relaxed) {
                eprint!("\r\x1b[2K\x1b[1A");
            }
            bars.clear();
        }
        // Shown whatever the output mode: a stop is worth a line.
        eprintln!("{}", super::terminal::for_stderr(text));
    }

    /// A line for a person (and the log), above the bars if there are any
    /// (wrapped to the terminal's width there).
    pub fn line(&self, text: &str) {
        tracing::info!(target: EVENTS, "{text}");
        match self {
            Progress::Silent => {}
            Progress::Lines(_) => eprintln!("{text}"),
            Progress::Bars(bars) => {
                bars.above(&super::terminal::wrap(text, bars.columns));
            }
        }
    }

    /// A run's chatter (a retry, a re-sign): `lead` and the whole `reason`
    /// in the log and in plain lines (`-v`, a pipe); on a terminal one line
    /// of its width, the reason shortened ([`short_reason`]) and cut.
    fn chatter(&self, lead: &str, what: &str, reason: &str) {
        tracing::info!(target: EVENTS, "{lead}{reason}");
        match self {
            Progress::Silent => {}
            Progress::Lines(_) => eprintln!("{lead}{reason}"),
            Progress::Bars(bars) => bars.above(&super::terminal::lead_and_detail(
                lead,
                &short_reason(what, reason),
                bars.columns,
            )),
        }
    }
}

/// `reason` without the request it repeats (`PUT /v2/… answered HTTP 503
/// …` after `retrying PUT /v2/…`) and with only the first and the last of
/// a chain of causes (`a: b: c: d` → `a: … d`); `-v` shows the whole.
fn short_reason<'a>(what: &str, reason: &'a str) -> std::borrow::Cow<'a, str> {
    let reason = reason
        .strip_prefix(what)
        .map(str::trim_start)
        .unwrap_or(reason);
    let reason = reason.strip_prefix("answered ").unwrap_or(reason);
    let parts: Vec<&str> = reason.split(": ").collect();
    if parts.len() <= 3 {
        return reason.into();
    }
    format!("{}: … {}", parts[0], parts[parts.len() - 1]).into()
}

pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// The terminal's width: lines printed above the bars fit it.
    columns: usize,
    /// Once the files are counted, the latest stage (a second connection
    /// still reading its lists, a poll for pending variants) shows on a
    /// line of its own below the overall bar, each replacing the last,
    /// rather than as lines piling up above the bars.
    stage: Mutex<Option<ProgressBar>>,
    /// The overall bar's looks once there is something to count (before,
    /// an empty bar would draw as full): while the plan still grows (no
    /// ETA: it would be taken as final) and once it is whole.
    growing_style: ProgressStyle,
    planned_style: ProgressStyle,
    counting: AtomicBool,
    /// Whether every transfer is planned (the totals are final).
    planned: AtomicBool,
    /// Set once a stop signal cleared the bars: nothing is drawn again.
    stopped: AtomicBool,
    transfers: Mutex<HashMap<TransferId, ProgressBar>>,
    transfer_style: ProgressStyle,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

/// The overall line's parts, which fit 80 columns with room for the bar
/// (at most 19 + 8 + 23 + 13 + 8 + 20 columns besides it). The bar
/// takes what the terminal has left (`wide_bar`).
const OVERALL_HEAD: &str = "{spinner} {elapsed_precise} ";
const OVERALL_GROWING: &str = " {bytes}/≥{total_bytes} {binary_bytes_per_sec} {msg}";
const OVERALL_PLANNED: &str = " {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}";

/// `{eta}` once a rate is known; `--` before the first bytes arrive,
/// where indicatif would say `0s` at 0 B/s.
fn eta(state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = if state.pos() == 0 || state.per_sec() <= 0.0 || !state.per_sec().is_finite() {
        write!(out, "--")
    } else {
        write!(out, "{:#}", indicatif::HumanDuration(state.eta()))
    };
}

impl Bars {
    fn new(colour: bool, target: ProgressDrawTarget, columns: usize) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        let (spinner, bar) = if colour {
            ("{spinner:.green}", "{wide_bar:.cyan/blue}")
        } else {
            ("{spinner}", "{wide_bar}")
        };
        let head = OVERALL_HEAD.replace("{spinner}", spinner);
        let style = |tail: &str| {
            ProgressStyle::with_template(&format!("{head}{bar}{tail}"))
                .expect("the overall template parses")
                .with_key("eta", eta)
                .progress_chars("=> ")
        };
        let waiting = format!("{head}{{wide_msg}}");
        overall.set_style(
            ProgressStyle::with_template(&waiting).expect("the waiting template parses"),
        );
        overall.enable_steady_tick(Duration::from_millis(120));
        let transfer_style =
            ProgressStyle::with_template("  {msg:30!} {bar:20} {bytes:>10}/{total_bytes:<10}")
                .expect("the transfer template parses")
                .progress_chars("=> ");
        Bars {
            multi,
            overall,
            columns,
            stage: Mutex::new(None),
            growing_style: style(OVERALL_GROWING),
            planned_style: style(OVERALL_PLANNED),
            counting: AtomicBool::new(false),
            planned: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            transfers: Mutex::new(HashMap::new()),
            transfer_style,
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
        }
    }

    /// `12/≥4,200 files` while the plan grows, `12/4,200 files` once whole.
    fn files_message(&self) {
        let at_least = if self.planned.load(Ordering::Relaxed) {
            ""
        } else {
            "≥"
        };
        self.overall.set_message(format!(
            "{}/{at_least}{} files",
            grouped(self.files_done.load(Ordering::Relaxed)),
            grouped(self.files_total.load(Ordering::Relaxed))
        ));
    }

    /// Picks the overall bar's look for where the plan stands.
    fn restyle(&self) {
        if !self.counting.load(Ordering::Relaxed) {
            return;
        }
        let style = if self.planned.load(Ordering::Relaxed) {
            &self.planned_style
        } else {
            &self.growing_style
        };
        // The counter first: a frame drawn in between would show the
        // stage text in a line that has no room for it; then again, so the
        // new look is drawn at once.
        self.files_message();
        self.overall.set_style(style.clone());
        self.files_message();
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

    /// `text` printed above the bars (or alone once they are gone).
    fn above(&self, text: &str) {
        if self.stopped.load(Ordering::Relaxed) {
            eprintln!("{text}");
        } else {
            self.multi.suspend(|| eprintln!("{text}"));
        }
    }

    /// The latest stage, on its line below the overall bar.
    fn show_stage(&self, text: &str) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let mut stage = self.stage.lock().unwrap_or_else(|p| p.into_inner());
        let bar = stage.get_or_insert_with(|| {
            let bar = self.multi.insert_after(&self.overall, ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("  {wide_msg}").expect("the stage template parses"),
            );
            bar
        });
        bar.set_message(text.to_owned());
    }

    /// Clears every bar and draws none again: the whole drawn area at
    /// once, then no target, then the bars end unseen. (Ending them one
    /// by one first redrew the others each time, and the last frame could
    /// stay on screen above what follows.)
    fn clear(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _ = self.multi.clear();
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
        if let Some(stage) = self.stage.lock().unwrap_or_else(|p| p.into_inner()).take() {
            stage.finish_and_clear();
        }
        self.overall.finish_and_clear();
        for (_, bar) in self
            .transfers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            bar.finish_and_clear();
        }
    }
}

/// `4200` → `4,200`.
fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

impl Counts {
    /// Every [`PLAIN_PROGRESS_EVERY`], a line saying how far the run got.
    fn maybe_line(&self) -> Option<String> {
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < PLAIN_PROGRESS_EVERY {
            return None;
        }
        *last = Instant::now();
        let at_least = if self.planned.load(Ordering::Relaxed) {
            ""
        } else {
            "≥"
        };
        Some(format!(
            "progress: {}/{at_least}{} files, {} received",
            grouped(self.files_done.load(Ordering::Relaxed)),
            grouped(self.files_total.load(Ordering::Relaxed)),
            vault_mirror::human_bytes(self.bytes.load(Ordering::Relaxed))
        ))
    }
}

impl Reporter for Progress {
    fn on_stage(&self, stage: Stage, detail: &str) {
        let text = format!("{}: {detail}", stage.name());
        match self {
            // Before counting starts, the stage is the overall line's
            // message (`{wide_msg}` fits it to the width); after, that
            // message is the file counter, so a stage gets a line above.
            Progress::Bars(bars) if !bars.counting.load(Ordering::Relaxed) => {
                tracing::info!(target: EVENTS, "{text}");
                bars.overall.set_message(text);
            }
            Progress::Bars(bars) => {
                tracing::info!(target: EVENTS, "{text}");
                bars.show_stage(&text);
            }
            _ => self.line(&text),
        }
    }

    fn on_queued(&self, files: u64, bytes: u64) {
        match self {
            Progress::Bars(bars) => {
                bars.overall.inc_length(bytes);
                bars.files_total.fetch_add(files, Ordering::Relaxed);
                let first = !bars.counting.swap(true, Ordering::Relaxed);
                let was_planned = bars.planned.swap(false, Ordering::Relaxed);
                if first || was_planned {
                    bars.restyle();
                } else {
                    bars.files_message();
                }
            }
            Progress::Lines(counts) => {
                counts.files_total.fetch_add(files, Ordering::Relaxed);
                counts.planned.store(false, Ordering::Relaxed);
            }
            Progress::Silent => {}
        }
    }

    fn on_planned(&self) {
        match self {
            Progress::Bars(bars) => {
                if !bars.planned.swap(true, Ordering::Relaxed) {
                    bars.restyle();
                }
            }
            Progress::Lines(counts) => counts.planned.store(true, Ordering::Relaxed),
            Progress::Silent => {}
        }
    }

    fn on_start(&self, id: TransferId, name: &str, size: u64, resumed_from: u64) {
        if resumed_from > 0 {
            tracing::debug!(target: EVENTS, "{name}: resuming from byte {resumed_from} of {size}");
        }
        if let Progress::Bars(bars) = self
            && !bars.stopped.load(Ordering::Relaxed)
        {
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
            Progress::Bars(bars) => {
                bars.overall.inc(new_bytes);
                if let Some(bar) = bars.transfer(id) {
                    bar.inc(new_bytes);
                }
            }
            Progress::Lines(counts) => {
                counts.bytes.fetch_add(new_bytes, Ordering::Relaxed);
            }
            Progress::Silent => {}
        }
    }

    fn on_rewind(&self, id: TransferId, lost_bytes: u64) {
        if let Progress::Bars(bars) = self {
            bars.overall
                .set_position(bars.overall.position().saturating_sub(lost_bytes));
            if let Some(bar) = bars.transfer(id) {
                bar.set_position(0);
            }
        }
    }

    fn on_done(&self, id: TransferId) {
        match self {
            Progress::Bars(bars) => {
                bars.end_transfer(id);
                bars.files_done.fetch_add(1, Ordering::Relaxed);
                bars.files_message();
            }
            Progress::Lines(counts) => {
                counts.files_done.fetch_add(1, Ordering::Relaxed);
                if let Some(text) = counts.maybe_line() {
                    self.line(&text);
                }
            }
            Progress::Silent => {}
        }
    }

    fn on_abandoned(&self, id: TransferId) {
        if let Progress::Bars(bars) = self
            && let Some(bar) = bars.end_transfer(id)
        {
            // Bytes of an abandoned attempt stay in .part and count again
            // as resumed bytes when the next attempt starts.
            bars.overall
                .set_position(bars.overall.position().saturating_sub(bar.position()));
        }
    }

    fn on_resign(&self, what: &str, reason: &str) {
        self.chatter(&format!("re-signing {what}: "), what, reason);
    }

    fn on_retry(&self, what: &str, tries_left: usize, reason: &str) {
        let tries = if tries_left == 1 { "try" } else { "tries" };
        self.chatter(
            &format!("retrying {what} ({tries_left} {tries} left): "),
            what,
            reason,
        );
    }

    fn on_failed(&self, what: &str, reason: &str) {
        self.line(&format!("failed {what}: {reason}"));
    }

    fn on_note(&self, text: &str) {
        self.line(&format!("note: {text}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// An 80-column terminal that keeps every line drawn.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(line.to_owned());
            Ok(())
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            if !text.trim().is_empty() {
                self.0.lock().unwrap().push(text.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The widest figures a run can show still leave the bar room in 80
    /// columns; the total reads as a lower bound (`≥`, no ETA) until the
    /// plan is whole.
    #[test]
    fn the_overall_line_fits_80_columns_and_says_when_the_total_is_final() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let display = Progress::Bars(Box::new(Bars::new(false, target, 80)));
        display.on_stage(Stage::Resolve, &"a long stage description ".repeat(8));
        // 1023.99 GiB in 12,345 files: the widest the byte figures get.
        display.on_queued(12_345, 1_099_500_000_000);
        let transfer = TransferId::next();
        display.on_start(transfer, &"4492994399".repeat(8), 1 << 30, 0);
        display.on_bytes(transfer, 1_073_700_000);
        let growing = screen.lines();
        let overall = |lines: &[String]| {
            lines
                .iter()
                .rfind(|line| line.contains(" files"))
                .cloned()
                .expect("the overall line was drawn")
        };
        let line = overall(&growing);
        assert!(
            line.contains("/≥") && line.contains("/≥12,345 files") && !line.contains("ETA"),
            "{line:?}"
        );
        display.on_planned();
        display.on_bytes(transfer, 1);
        let planned = screen.lines();
        let line = overall(&planned);
        assert!(
            line.contains("ETA") && line.contains("/12,345 files") && !line.contains('≥'),
            "{line:?}"
        );
        let bar: String = line
            .split_once(' ')
            .and_then(|(_, rest)| rest.split_once(' '))
            .map(|(_, rest)| rest.chars().take_while(|c| !c.is_ascii_digit()).collect())
            .unwrap_or_default();
        assert!(
            bar.chars().count() >= 10,
            "no room left for the bar: {line:?}"
        );
        for line in &planned {
            assert!(
                line.chars().count() <= 80,
                "wider than 80 columns: {line:?}"
            );
        }
        // More work planned (--wait-pending): a lower bound again.
        display.on_queued(1, 10);
        display.on_bytes(transfer, 1);
        assert!(overall(&screen.lines()).contains("/≥12,346 files"));
        display.finish();
    }

    /// At the start of a run nothing has arrived: the ETA says `--`, not
    /// `0s` at 0 B/s.
    #[test]
    fn no_eta_before_a_rate_is_known() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let display = Progress::Bars(Box::new(Bars::new(false, target, 80)));
        display.on_queued(24, 360_000);
        display.on_planned();
        let line = screen
            .lines()
            .into_iter()
            .rfind(|line| line.contains(" files"))
            .expect("the overall line was drawn");
        assert!(
            line.contains("ETA --") && !line.contains("ETA 0s"),
            "{line:?}"
        );
        display.finish();
    }

    #[test]
    fn a_retry_names_its_request_once_and_keeps_the_ends_of_a_chain() {
        assert_eq!(
            short_reason(
                "PUT /v2/vault-plus/lists/1/sync",
                "PUT /v2/vault-plus/lists/1/sync answered HTTP 503 Service Unavailable (waiting 0.8s)"
            ),
            "HTTP 503 Service Unavailable (waiting 0.8s)"
        );
        assert_eq!(short_reason("x", "a: b: c: d"), "a: … d");
        assert_eq!(short_reason("x", "a: b"), "a: b");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(4_200), "4,200");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
