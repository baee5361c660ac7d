//! vault-mirror: a local, verified, resumable mirror of the media that
//! OFAuth's Vault+ caches for an OnlyFans connection.
//!
//! The library is the core; the binary (`src/main.rs` and `src/cli/`) turns
//! command-line arguments into [`settings::Settings`] and shows what the core
//! reports. Data flows one way through the modules:
//!
//! ```text
//! settings ─▶ pipeline::{lists ─▶ sync ─▶ membership ─▶ plan ─▶ resolve ─▶ download ─▶ commit}
//!                 │ api (client + lenient models)        │ store (SQLite)     │ archive (paths, checks)
//!                 └──────────── report (events, never prints) ◀──────────────┘
//! ```
//!
//! `fake` is a Vault+ server of our own for tests and `demo`.

#![forbid(unsafe_code)]
// Unit tests may use std::fs, long functions and casts of test numbers.
#![cfg_attr(
    test,
    allow(
        clippy::disallowed_methods,
        clippy::too_many_lines,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss
    )
)]

pub mod api;
pub mod archive;
pub mod config;
pub mod durable;
pub mod exit;
pub mod fake;
pub mod location;
pub mod lock;
pub mod names;
pub mod pipeline;
pub mod redact;
pub mod report;
pub mod settings;
pub mod shard;
pub mod store;
pub mod template;
pub mod units;

/// An epoch-milliseconds time as a `SystemTime` (times before 1970 as
/// the epoch itself).
pub fn epoch_time(epoch_ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(epoch_ms).unwrap_or(0))
}

/// Milliseconds since the Unix epoch, the unit the API uses for timestamps.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Bytes for people, in one unit system everywhere (messages, tables,
/// the gallery, and the progress bars): binary multiples with IEC names,
/// `1.43 MiB`, as `--limit-rate` and `--min-free` read `M` and `G`.
pub fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// The command that checks every file `SHA256SUMS` lists, run in its
/// folder, in this system's usual shell: GNU `sha256sum -c`; on Windows a
/// PowerShell line over `Get-FileHash` (SHA-256 is its default), which
/// prints each file whose bytes differ or are missing.
pub const CHECK_SUMS: &str = if cfg!(windows) {
    CHECK_SUMS_POWERSHELL
} else {
    "sha256sum -c SHA256SUMS"
};

/// [`CHECK_SUMS`] on Windows (also named in the gallery's footer, which
/// any system may open).
pub const CHECK_SUMS_POWERSHELL: &str = "Get-Content SHA256SUMS | ForEach-Object { $sum, $file = $_ -split '  ', 2; if ((Get-FileHash -LiteralPath $file).Hash -ne $sum) { \"FAILED: $file\" } }";

/// [`CHECK_SUMS`] from anywhere: into `folder` first (`&&` in a unix
/// shell, `;` in PowerShell, whose 5.1 has no `&&`).
pub fn check_sums_in(folder: &str) -> String {
    let then = if cfg!(windows) { ";" } else { " &&" };
    format!("cd {folder}{then} {CHECK_SUMS}")
}

/// `1 list`, `2 lists`: a count with its noun (regular plurals only).
pub fn counted(count: impl Into<u64>, noun: &str) -> String {
    let count = count.into();
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// An epoch-milliseconds time as `2026-05-01 10:00:03 UTC` (UTC: the same
/// for every reader of a log, and no time-zone database needed).
pub fn utc_time(epoch_ms: i64) -> String {
    let Ok(millis) = u64::try_from(epoch_ms) else {
        return "before 1970".to_owned();
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// How long ago `epoch_ms` was, roughly: `3 minutes ago`, `2 days ago`.
pub fn time_ago(epoch_ms: i64, now_ms: i64) -> String {
    let seconds = (now_ms - epoch_ms) / 1000;
    if seconds < 0 {
        return "in the future".to_owned();
    }
    let (count, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_read_in_one_unit_system() {
        assert_eq!(super::human_bytes(999), "999 B");
        assert_eq!(super::human_bytes(1_500), "1.46 KiB");
        assert_eq!(super::human_bytes(1_500_000), "1.43 MiB");
        assert_eq!(super::human_bytes(2_000_000_000), "1.86 GiB");
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(super::counted(1u64, "list"), "1 list");
        assert_eq!(super::counted(0u64, "list"), "0 lists");
        assert_eq!(super::counted(4u32, "file"), "4 files");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(
            super::utc_time(1_767_225_600_000),
            "2026-01-01 00:00:00 UTC"
        );
        assert_eq!(super::time_ago(0, 59_000), "just now");
        assert_eq!(super::time_ago(0, 60_000), "1 minute ago");
        assert_eq!(super::time_ago(0, 7_300_000), "2 hours ago");
        assert_eq!(super::time_ago(0, 3 * 86_400_000), "3 days ago");
    }
}
