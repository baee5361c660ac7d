//! `export` (the archive index from the database alone: no network, no
//! key) and how export and prune results are shown after a run.

use vault_mirror::archive::export::ExportSummary;
use vault_mirror::archive::prune::PruneSummary;
use vault_mirror::human_bytes;
use vault_mirror::pipeline::export::ExportReport;
use vault_mirror::pipeline::{self, MirrorError};
use vault_mirror::settings::{Output, Settings};
use vault_mirror::store::Store;

use super::failure::Failure;

/// `export`: the archive index from the database alone (no network, no key).
pub async fn run(settings: &Settings) -> Result<i32, Failure> {
    let report = run_report(settings).await?;
    if settings.output.json {
        println!("{}", json(&report));
    }
    Ok(report.exit_code.code())
}

/// An export run: its report (printed by the caller with `--json`; the
/// lines for a person are printed here).
pub async fn run_report(settings: &Settings) -> Result<ExportReport, Failure> {
    // No archive there (a typo in `--out`): say so, and create nothing.
    drop(super::status::open(settings)?);
    // Only now: taking the lock creates `.vault-mirror/` in the archive.
    let _lock = super::lock::lock(settings, "export")?;
    let store = Store::open(&settings.db).map_err(MirrorError::from)?;
    let report = pipeline::export::export_index(settings, &store).await?;
    if !settings.output.json {
        print_export(&report.summary, settings.output);
    }
    Ok(report)
}

/// An export's `--json` object (its keys in alphabetical order, as a
/// `serde_json::Value` writes them).
pub fn json(report: &ExportReport) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or_default()
}

/// `eprintln!`, wrapped to the terminal's width when stderr is one.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", super::terminal::for_stderr(&format!($($arg)*)))
    };
}

pub fn print_export(summary: &ExportSummary, output: Output) {
    if !output.quiet {
        say!(
            "exported {} media ({}, {}) into {}: {}",
            summary.media,
            vault_mirror::counted((summary.variants + summary.versions) as u64, "file"),
            human_bytes(summary.bytes),
            summary.out,
            summary.written.join(", ")
        );
        if summary.out.bucket().is_some() {
            say!(
                "  serve the prefix as a static website, or: aws s3 sync {} DIR && cd DIR && sha256sum -c SHA256SUMS (then open index.html)",
                summary.out
            );
        } else {
            say!(
                "  open {} in a browser; check every file with: cd {} && sha256sum -c SHA256SUMS",
                summary.out.shown_file("index.html"),
                summary.out
            );
        }
    }
    const SHOWN: usize = 20;
    for path in summary.missing.iter().take(SHOWN) {
        say!("  missing: {path} is recorded but not on disk as recorded; left out");
    }
    if summary.missing.len() > SHOWN {
        say!(
            "  … and {} more missing (see `--json`)",
            summary.missing.len() - SHOWN
        );
    }
    if !summary.missing.is_empty() {
        say!("  the next `vault-mirror mirror` fetches them again");
    }
}

/// A prune lists every file it deletes (or would); a refused one shows a few.
pub fn print_prune(prune: &PruneSummary, output: Output) {
    if output.quiet && !prune.refused {
        return;
    }
    if !prune.refused {
        say!("{}", prune.headline());
    }
    let verb = if prune.refused || prune.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let shown = if prune.refused { 20 } else { usize::MAX };
    for file in prune.files.iter().take(shown) {
        say!("  {verb}: {} ({})", file.path, human_bytes(file.size));
    }
    if prune.files.len() > shown {
        say!(
            "  … and {} more (see `--dry-run --json`)",
            prune.files.len() - shown
        );
    }
}
