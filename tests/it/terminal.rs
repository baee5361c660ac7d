//! What a person sees on a terminal of 80 columns: the binary runs in a
//! real pseudo-terminal (util-linux `script`) against the fake, and the
//! bytes it sent are read back as lines drawn ([`drawn_lines`]) and as the
//! screen they leave ([`final_screen`], a small terminal of our own that
//! follows the few escape sequences indicatif and the binary send).

use std::process::Command;

use vault_mirror::fake::{FakeOptions, FakeServer, Faults, Vault, sample_account};

use crate::common::{require, scrub_environment};
use crate::sandbox::{Sandbox, with_faults};

const COLUMNS: usize = 80;

/// Runs `command` (arguments of the binary, shell-quoted) in a real
/// pseudo-terminal of 80 columns (util-linux `script`, Debian package
/// `bsdutils`) against `server`; or why `script` cannot run here (for
/// [`require!`]: a skip, or under `CI=true` a failure).
fn in_terminal(server: &FakeServer, command: &str) -> Result<std::process::Output, String> {
    if Command::new("script").arg("--version").output().is_err() {
        return Err("util-linux `script` is not installed (Debian package `bsdutils`)".to_owned());
    }
    let binary = assert_cmd::cargo::cargo_bin!("vault-mirror");
    let inner = format!(
        "stty cols 80 rows 24; {}",
        command.replace("{bin}", &format!("'{}'", binary.display()))
    );
    let mut script = Command::new("script");
    // `script` passes its environment on to the binary: scrubbed, and
    // without a COLUMNS to beat the terminal's 80.
    scrub_environment(&mut script)
        .env("OFAUTH_BASE_URL", server.base_url())
        .env("OFAUTH_API_KEY", server.api_key())
        .env("OFAUTH_CONNECTION_ID", server.connection_id())
        .env("TERM", "xterm-256color")
        .env("NO_COLOR", "1")
        .args(["-qfec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("`script` could not run: {error}"))
}

/// What a terminal was sent, as the lines drawn: escape sequences
/// dropped, split at every carriage return and line feed.
fn drawn_lines(screen: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = screen.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split(['\r', '\n'])
        .map(str::to_owned)
        .filter(|line| !line.is_empty())
        .collect()
}

/// The bars must appear, count files, fit 80 columns, and give way to
/// the summary line.
#[test]
fn progress_bars_draw_in_a_terminal_and_end_in_a_summary() {
    let vault = Vault::sample(12, 2);
    let options = with_faults(Faults {
        // Slow enough that the bars are drawn many times.
        bandwidth_per_transfer: Some(48 * 1024),
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, options);
    let command = format!(
        "{{bin}} mirror --jobs 4 --out '{}'",
        sandbox.out().join("archive").display()
    );
    let output = require!(in_terminal(sandbox.server(), &command));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let screen = String::from_utf8_lossy(&output.stdout);
    // 12 media, full and thumb: 24 files, first as a lower bound while
    // the plan is read, then final.
    assert!(screen.contains("0/24 files"), "no file counter:\n{screen}");
    assert!(screen.contains("=>"), "no partly filled bar:\n{screen}");
    assert!(screen.contains("/s ETA"), "no rate and ETA:\n{screen}");
    // A line per active transfer, named by media id and label.
    assert!(
        screen.contains("/full") && screen.contains("/thumb"),
        "{screen}"
    );
    // indicatif pads each line of a frame to the terminal's width and
    // lets the terminal wrap: in a frame, every 80 columns must begin a
    // line of ours (the spinner, or a transfer's indent), never the rest
    // of a line too wide.
    let spinner = |c: char| ('\u{2800}'..='\u{28ff}').contains(&c);
    for frame in drawn_lines(&screen) {
        let chars: Vec<char> = frame.chars().collect();
        if !chars.first().is_some_and(|c| spinner(*c)) {
            continue;
        }
        for line in chars.chunks(80) {
            assert!(
                spinner(line[0]) || line.starts_with(&[' ', ' ']),
                "a line wider than 80 columns: {:?}",
                frame
            );
        }
    }
    // No colour with NO_COLOR.
    assert!(!screen.contains("\u{1b}[32m"), "colour despite NO_COLOR");
    // The bars are cleared, then the summary ends the screen, wrapped
    // to 80 columns.
    let shown = final_screen(&screen);
    let summary = shown
        .iter()
        .rposition(|line| line.starts_with("mirrored 2 lists into"))
        .unwrap_or_else(|| panic!("no summary at the end:\n{}", shown.join("\n")));
    assert!(
        shown[summary..]
            .iter()
            .skip(1)
            .all(|line| line.starts_with("  ")),
        "{shown:?}"
    );
    assert_no_bars_left(&shown);
    assert_lines_fit(&screen);
    assert!(screen.contains("\u{1b}[2K"), "the bars were never cleared");
}

/// Ctrl-C in a terminal: the bars are cleared before the "stopping" line,
/// and nothing is drawn after it but the summary.
#[test]
fn a_stop_signal_clears_the_bars_before_saying_so() {
    let vault = Vault::sample(12, 2);
    let options = with_faults(Faults {
        // Transfers still running when the signal comes.
        bandwidth_per_transfer: Some(16 * 1024),
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, options);
    let command = format!(
        // Ctrl-C typed on the terminal: it echoes `^C` where the cursor is,
        // then the signal comes (written and sent here as it would; the
        // terminal stays the run's stdin, as in the foreground).
        "{{bin}} mirror --jobs 4 --out '{}' < /dev/tty & pid=$!; sleep 2; printf '^C' > /dev/tty; kill -INT $pid; wait $pid",
        sandbox.out().join("archive").display()
    );
    let output = require!(in_terminal(sandbox.server(), &command));
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{screen}");
    let (before, after) = screen
        .split_once("stopping: transfers in flight are kept to resume (Ctrl-C again: stop at once)")
        .unwrap_or_else(|| panic!("no stopping line:\n{screen}"));
    assert!(
        before.contains(" files"),
        "no bars before the signal:\n{screen}"
    );
    // The last thing before the line is the bars being cleared.
    let tail = &before[before.len().saturating_sub(40)..];
    assert!(
        tail.contains("\u{1b}[2K") || tail.contains("\u{1b}[J"),
        "{tail:?}"
    );
    let after_lines = drawn_lines(after);
    assert!(
        after_lines
            .iter()
            .all(|line| !line.contains("ETA") && !line.contains("=>")),
        "bars drawn after the stopping line: {after_lines:?}"
    );
    assert!(
        after_lines
            .iter()
            .any(|line| line.starts_with("interrupted after")),
        "{after_lines:?}"
    );
    // What stays on screen: no bar, no transfer line above the stopping
    // line (the last frame used to stay there), every line within 80.
    let shown = final_screen(&screen);
    assert_no_bars_left(&shown);
    assert_lines_fit(&screen);
}

/// The screen `raw` leaves on a terminal of [`COLUMNS`] (its scrollback
/// included, as lines; no limit on rows): printable characters wrap at
/// the last column, `\r`, `\n`, and the CSI sequences indicatif and the
/// binary send (cursor up `A`, down `B`, to column `G`, erase in line `K`,
/// erase below `J`; colours and modes ignored).
fn final_screen(raw: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut column, mut pending_wrap) = (0usize, 0usize, false);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() != Some(&'[') {
                    continue;
                }
                chars.next();
                let mut parameters = String::new();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        last = c;
                        break;
                    }
                    parameters.push(c);
                }
                let n: usize = parameters.parse().unwrap_or(0);
                pending_wrap = false;
                match last {
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => row += n.max(1),
                    'G' => column = n.max(1) - 1,
                    'K' => {
                        let line = line_at(&mut lines, row);
                        match n {
                            2 => line.clear(),
                            1 => line.iter_mut().take(column + 1).for_each(|c| *c = ' '),
                            _ => line.truncate(column),
                        }
                    }
                    'J' if n == 0 => {
                        line_at(&mut lines, row).truncate(column);
                        lines.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            '\r' => {
                column = 0;
                pending_wrap = false;
            }
            '\n' => {
                row += 1;
                pending_wrap = false;
            }
            c if c.is_control() => {}
            c => {
                if pending_wrap {
                    row += 1;
                    column = 0;
                    pending_wrap = false;
                }
                let line = line_at(&mut lines, row);
                if line.len() <= column {
                    line.resize(column + 1, ' ');
                }
                line[column] = c;
                if column + 1 == COLUMNS {
                    pending_wrap = true;
                } else {
                    column += 1;
                }
            }
        }
    }
    let mut shown: Vec<String> = lines
        .into_iter()
        .map(|line| line.into_iter().collect::<String>().trim_end().to_owned())
        .collect();
    while shown.last().is_some_and(String::is_empty) {
        shown.pop();
    }
    shown
}

fn line_at(lines: &mut Vec<Vec<char>>, row: usize) -> &mut Vec<char> {
    if lines.len() <= row {
        lines.resize(row + 1, Vec::new());
    }
    &mut lines[row]
}

/// Whether `line` is part of the bars: the overall line (a spinner) or a
/// transfer's (`  4100000000/full   ===>   1.00 KiB/2.00 KiB`).
fn is_bar(line: &str) -> bool {
    let spinner = |c: char| ('\u{2800}'..='\u{28ff}').contains(&c);
    line.chars().next().is_some_and(spinner)
        || line.contains("/s ETA")
        || (line.starts_with("  ") && line.contains(" B/") && line.contains("iB"))
}

fn assert_no_bars_left(shown: &[String]) {
    for line in shown {
        assert!(
            !is_bar(line),
            "a bar left on screen: {line:?}\n{}",
            shown.join("\n")
        );
    }
}

/// Every line the binary printed (not a frame of bars, which indicatif pads
/// to the terminal's width) fits [`COLUMNS`], unless it is one word (a
/// path) too long for any line.
fn assert_lines_fit(screen: &str) {
    for line in drawn_lines(screen) {
        if is_bar(&line) || !line.trim().contains(' ') {
            continue;
        }
        assert!(
            line.chars().count() <= COLUMNS,
            "wider than {COLUMNS} columns: {line:?}"
        );
    }
}

#[test]
fn the_small_terminal_follows_wraps_moves_and_erasures() {
    let raw = format!(
        "{}\r\nnext\x1b[1A\r\x1b[2Kover\r\n\x1b[32mdone\x1b[0m\r\n",
        "x".repeat(85)
    );
    assert_eq!(
        final_screen(&raw),
        ["x".repeat(80), "over".to_owned(), "done".to_owned()]
    );
}

/// Retries on a terminal: one line each (the request not repeated, the
/// reason cut), no `caused by:` chain; the summary wrapped; no `ETA 0s` at
/// 0 B/s while no rate is known.
#[test]
fn retries_are_one_line_each_and_no_eta_shows_before_a_rate() {
    let vault = Vault::sample(12, 2);
    let options = with_faults(Faults {
        bandwidth_per_transfer: Some(64 * 1024),
        cut_bodies: 0.3,
        api_server_errors: 0.2,
        media_server_errors: 0.2,
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, options);
    let command = format!(
        "{{bin}} mirror --jobs 4 --retries 8 --out '{}'",
        sandbox.out().join("archive").display()
    );
    let output = require!(in_terminal(sandbox.server(), &command));
    let screen = String::from_utf8_lossy(&output.stdout);
    let retries: Vec<String> = drawn_lines(&screen)
        .into_iter()
        .filter(|line| line.starts_with("retrying "))
        .collect();
    assert!(!retries.is_empty(), "no retry shown:\n{screen}");
    for line in &retries {
        assert!(line.chars().count() <= COLUMNS, "{line:?}");
        let (lead, reason) = line.split_once("left): ").expect("a retry line");
        let what = lead
            .trim_start_matches("retrying ")
            .split(" (")
            .next()
            .unwrap();
        assert!(!reason.starts_with(what), "the request repeated: {line:?}");
    }
    assert!(!screen.contains("caused by"), "{screen}");
    assert!(
        !screen.contains("0 B/s ETA 0s"),
        "ETA 0s at 0 B/s:\n{screen}"
    );
    assert_lines_fit(&screen);
    assert_no_bars_left(&final_screen(&screen));
}

/// An agency's run: the later connections' stages replace each other on
/// one line below the overall bar (none piles up above the bars), and the
/// totals are final (no `≥`, an ETA) once every connection is planned;
/// then its `status` table and `history`, within 80 columns.
#[test]
fn an_agency_run_keeps_its_stages_on_one_line_and_ends_with_final_totals() {
    let (vault, options) = sample_account(12, 2, 3, false);
    let options = FakeOptions {
        faults: Faults {
            bandwidth_per_transfer: Some(48 * 1024),
            ..Faults::default()
        },
        ..options
    };
    let server = FakeServer::start_in_thread(vault, options).unwrap();
    let out = tempfile::tempdir().unwrap();
    let agency = out.path().join("agency");
    let agency = agency.display();
    let command = format!(
        "{{bin}} mirror --all-connections --connections-at-once 2 --jobs 3 --out '{agency}' \
         && {{bin}} status --out '{agency}' && {{bin}} history --out '{agency}'"
    );
    let output = require!(in_terminal(&server, &command));
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    for line in drawn_lines(&screen) {
        if is_bar(&line) {
            continue;
        }
        for stage in ["lists: ", "sync: ", "membership: ", "resolve: "] {
            assert!(
                !line.starts_with(stage),
                "a stage line above the bars: {line:?}"
            );
        }
    }
    // The third connection starts while the first two transfer: its
    // stages show in the frames, below the overall line.
    assert!(
        drawn_lines(&screen)
            .iter()
            .any(|line| is_bar(line) && line.contains("[conn_03]") && line.contains(": [conn_03]")),
        "{screen}"
    );
    // The agency's table and each connection's runs, within 80 too.
    assert!(
        screen.contains("CONNECTION") && screen.contains("conn_03"),
        "{screen}"
    );
    let last_frame = drawn_lines(&screen)
        .into_iter()
        .rfind(|line| line.contains(" files"))
        .expect("the overall line");
    assert!(
        !last_frame.contains('≥') && last_frame.contains("ETA"),
        "the totals stayed lower bounds: {last_frame:?}"
    );
    assert_lines_fit(&screen);
    assert_no_bars_left(&final_screen(&screen));
}

/// The demo run by a long path into a long folder, then `status`,
/// `history` and `lists`: every line fits 80 columns.
#[test]
fn the_demo_status_history_and_lists_fit_80_columns() {
    let vault = Vault::sample(8, 2);
    let sandbox = Sandbox::start_in_thread(&vault, with_faults(Faults::default()));
    let archive = sandbox
        .out()
        .join("a-folder-with-a-rather-long-name-for-the-demo");
    let archive = archive.display();
    let command = format!(
        "{{bin}} demo --media 8 --out '{archive}' && {{bin}} status --out '{archive}' \
         && {{bin}} history --out '{archive}' && {{bin}} mirror --out '{archive}-2' \
         && {{bin}} lists --out '{archive}-2'"
    );
    let output = require!(in_terminal(sandbox.server(), &command));
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    // Wrapped lines joined again, to find what was said.
    let said = drawn_lines(&screen)
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in ["Open these", "LIST NAME", "RUN COMMAND", "Try next"] {
        assert!(said.contains(expected), "no {expected:?}:\n{screen}");
    }
    assert_lines_fit(&screen);
}
