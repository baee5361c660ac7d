//! `--metrics-file`: gauges in the Prometheus text format, for
//! node_exporter's textfile collector, written at the end of every run.
//!
//! Invariants:
//! - One file for the whole process: one [`MetricsEntry`] per connection,
//!   every sample labelled with its `connection`; each metric's `HELP`
//!   and `TYPE` lines come once, before its samples.
//! - The file is replaced atomically ([`write_atomically`]): a temporary
//!   file in the same folder (not ending in `.prom`, so the collector
//!   never reads it half-written), fsynced, renamed over the old one, and
//!   the folder fsynced. A reader sees the old file or the new one.
//! - A value that is not known (the database could not be read) is left
//!   out rather than written as a guess; the last success is `0` when the
//!   database is readable and no run ever succeeded, so a "no success for
//!   26 hours" alert fires for a mirror that never worked.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The variant states the `vault_mirror_variants` gauge reports, in order.
pub const VARIANT_STATES: [&str; 5] = ["verified", "pending", "failed", "quarantined", "missing"];

/// What one connection's run leaves in the metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsEntry {
    pub connection: String,
    /// When the last run that exited 0 finished (epoch ms); `None` when
    /// the database could not be read, `Some(0)` when none ever did.
    pub last_success_at: Option<i64>,
    /// When this run ended (epoch ms).
    pub last_run_at: i64,
    pub duration_seconds: f64,
    pub exit_code: i32,
    /// Bytes received and files verified this run.
    pub downloaded_bytes: u64,
    pub downloaded_files: u64,
    /// Variants per state ([`VARIANT_STATES`]); `None` when unknown.
    pub variants: Option<[u64; 5]>,
    /// Bytes of every verified file; `None` when unknown.
    pub archive_bytes: Option<u64>,
    /// The rolling check's figures; `None` when unknown.
    pub checks: Option<CheckMetrics>,
}

/// What the metrics file says of `verify`'s checks (read from the
/// database, so every run's file carries them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckMetrics {
    /// When the file hashed longest ago was last hashed (epoch ms): its
    /// last check, or its writing if `verify` never re-read it; `None`
    /// with no verified file.
    pub oldest_check_at: Option<i64>,
    /// Verified files `verify` has not re-read since they were written.
    pub never_checked_files: u64,
    /// The last re-hashing `verify` run: when it ended (epoch ms), the
    /// bytes it re-hashed and the missing and damaged files it found.
    pub last_run: Option<(i64, u64, u64)>,
}

/// The metrics, in order: name, help, and how an entry gives its samples.
type Samples = fn(&MetricsEntry) -> Vec<(Option<(&'static str, &'static str)>, f64)>;

const METRICS: &[(&str, &str, Samples)] = &[
    (
        "vault_mirror_last_success_timestamp_seconds",
        "When the last run that exited 0 finished, in Unix time (0: never).",
        |entry| one(entry.last_success_at.map(seconds)),
    ),
    (
        "vault_mirror_last_run_timestamp_seconds",
        "When the last run finished, in Unix time.",
        |entry| one(Some(seconds(entry.last_run_at))),
    ),
    (
        "vault_mirror_run_duration_seconds",
        "How long the last run took.",
        |entry| one(Some(entry.duration_seconds)),
    ),
    (
        "vault_mirror_run_exit_code",
        "The last run's exit code (0 complete, 1 fatal, 2 usage, 3 partial, 4 key refused, 130/143 stopped).",
        |entry| one(Some(f64::from(entry.exit_code))),
    ),
    (
        "vault_mirror_downloaded_bytes",
        "Bytes received by the last run.",
        |entry| one(Some(entry.downloaded_bytes as f64)),
    ),
    (
        "vault_mirror_downloaded_files",
        "Files fetched and verified by the last run.",
        |entry| one(Some(entry.downloaded_files as f64)),
    ),
    (
        "vault_mirror_variants",
        "Variants (files) by state, after the last run.",
        |entry| match entry.variants {
            Some(counts) => VARIANT_STATES
                .iter()
                .zip(counts)
                .map(|(state, count)| (Some(("state", *state)), count as f64))
                .collect(),
            None => Vec::new(),
        },
    ),
    (
        "vault_mirror_archive_bytes",
        "Bytes of every verified file in the archive.",
        |entry| one(entry.archive_bytes.map(|bytes| bytes as f64)),
    ),
    (
        "vault_mirror_oldest_check_timestamp_seconds",
        "When the file checked longest ago was last hashed against its recorded sha256 (by verify, or as it was written), in Unix time.",
        |entry| {
            one(entry
                .checks
                .as_ref()
                .and_then(|checks| checks.oldest_check_at)
                .map(seconds))
        },
    ),
    (
        "vault_mirror_unchecked_files",
        "Verified files that verify has not re-read since they were written.",
        |entry| {
            one(entry
                .checks
                .as_ref()
                .map(|checks| checks.never_checked_files as f64))
        },
    ),
    (
        "vault_mirror_last_verify_timestamp_seconds",
        "When the last verify run that re-hashed files finished, in Unix time (0: never).",
        |entry| {
            one(entry
                .checks
                .as_ref()
                .map(|checks| checks.last_run.map_or(0.0, |run| seconds(run.0))))
        },
    ),
    (
        "vault_mirror_verify_checked_bytes",
        "Bytes the last verify run re-hashed.",
        |entry| {
            one(entry
                .checks
                .as_ref()
                .map(|checks| checks.last_run.map_or(0.0, |run| run.1 as f64)))
        },
    ),
    (
        "vault_mirror_verify_damaged_files",
        "Missing and damaged files the last verify run found.",
        |entry| {
            one(entry
                .checks
                .as_ref()
                .map(|checks| checks.last_run.map_or(0.0, |run| run.2 as f64)))
        },
    ),
    (
        "vault_mirror_build_info",
        "The vault-mirror that wrote this file (always 1).",
        |_| vec![(Some(("version", env!("CARGO_PKG_VERSION"))), 1.0)],
    ),
];

fn one(value: Option<f64>) -> Vec<(Option<(&'static str, &'static str)>, f64)> {
    value.into_iter().map(|value| (None, value)).collect()
}

/// Epoch milliseconds as Unix seconds.
fn seconds(epoch_ms: i64) -> f64 {
    epoch_ms as f64 / 1000.0
}

/// The metrics file's text for these connections.
pub fn render(entries: &[MetricsEntry]) -> String {
    let mut text = String::new();
    for (name, help, samples) in METRICS {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} gauge");
        for entry in entries {
            for (label, value) in samples(entry) {
                let connection = escape(&entry.connection);
                let extra = label
                    .map(|(key, value)| format!(",{key}=\"{}\"", escape(value)))
                    .unwrap_or_default();
                let _ = writeln!(
                    text,
                    "{name}{{connection=\"{connection}\"{extra}}} {}",
                    number(value)
                );
            }
        }
    }
    text
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: whole numbers without a fraction, others as Rust
/// prints them (Prometheus reads both).
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// Replaces `path` with `text` atomically (see the module docs).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = folder.join(temporary_name);
    let written = (|| {
        let mut file = fs_err::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs_err::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs_err::remove_file(&temporary);
    }
    written?;
    // The rename is durable once the folder is; a folder that cannot be
    // opened for that (some file systems) still has the new file.
    if let Ok(folder) = fs_err::File::open(folder) {
        let _ = folder.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(connection: &str) -> MetricsEntry {
        MetricsEntry {
            connection: connection.into(),
            last_success_at: Some(1_700_000_000_000),
            last_run_at: 1_700_000_100_500,
            duration_seconds: 12.5,
            exit_code: 3,
            downloaded_bytes: 2048,
            downloaded_files: 2,
            variants: Some([10, 1, 2, 0, 3]),
            archive_bytes: Some(4096),
            checks: Some(CheckMetrics {
                oldest_check_at: Some(1_699_000_000_000),
                never_checked_files: 4,
                last_run: Some((1_699_500_000_000, 1024, 1)),
            }),
        }
    }

    #[test]
    fn every_gauge_once_with_a_sample_per_connection() {
        let text = render(&[entry("conn_a"), entry("conn_\"b\"")]);
        assert_eq!(text.matches("# TYPE ").count(), METRICS.len());
        assert!(text.contains(
            "vault_mirror_last_success_timestamp_seconds{connection=\"conn_a\"} 1700000000\n"
        ));
        assert!(text.contains(
            "vault_mirror_last_run_timestamp_seconds{connection=\"conn_a\"} 1700000100.5\n"
        ));
        assert!(
            text.contains("vault_mirror_variants{connection=\"conn_a\",state=\"missing\"} 3\n")
        );
        assert!(text.contains("vault_mirror_run_exit_code{connection=\"conn_\\\"b\\\"\"} 3\n"));
        for line in [
            "vault_mirror_oldest_check_timestamp_seconds{connection=\"conn_a\"} 1699000000\n",
            "vault_mirror_unchecked_files{connection=\"conn_a\"} 4\n",
            "vault_mirror_verify_checked_bytes{connection=\"conn_a\"} 1024\n",
            "vault_mirror_verify_damaged_files{connection=\"conn_a\"} 1\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
        assert!(text.contains(&format!(
            "vault_mirror_build_info{{connection=\"conn_a\",version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        // Unknown values are left out, not guessed.
        let unknown = MetricsEntry {
            last_success_at: None,
            variants: None,
            archive_bytes: None,
            checks: None,
            ..entry("c")
        };
        let text = render(&[unknown]);
        assert!(!text.contains("vault_mirror_last_success_timestamp_seconds{"));
        assert!(!text.contains("vault_mirror_variants{"));
        assert!(!text.contains("vault_mirror_oldest_check_timestamp_seconds{"));
        assert!(text.contains("vault_mirror_run_exit_code{connection=\"c\"} 3"));
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault_mirror.prom");
        write_atomically(&path, "old\n").unwrap();
        write_atomically(&path, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
        let error = write_atomically(&dir.path().join("no/such/folder.prom"), "x").unwrap_err();
        assert!(error.to_string().contains("folder.prom"), "{error}");
    }
}
