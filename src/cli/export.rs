//! `export` (the archive index from the database alone: no network, no
//! key) and how export and prune results are shown after a run.

use vault_mirror::archive::Archive;
use vault_mirror::archive::export::{ExportSummary, export};
use vault_mirror::archive::prune::PruneSummary;
use vault_mirror::human_bytes;
use vault_mirror::pipeline::MirrorError;
use vault_mirror::settings::{Output, Settings};
use vault_mirror::store::Store;

use super::failure::Failure;

/// `export`: the archive index from the database alone (no network, no key).
pub async fn run(settings: &Settings) -> Result<i32, Failure> {
    let (code, json) = run_report(settings).await?;
    if settings.output.json {
        println!("{json}");
    }
    Ok(code)
}

/// An export run: its exit code and its `--json` object (printed by the
/// caller; the lines for a person are printed here).
pub async fn run_report(settings: &Settings) -> Result<(i32, String), Failure> {
    // No archive there (a typo in `--out`): say so, and create nothing.
    drop(super::status::open(settings)?);
    // Only now: taking the lock creates `.vault-mirror/` in the archive.
    let _lock = super::lock::lock(settings, "export")?;
    let store = Store::open(&settings.db).map_err(MirrorError::from)?;
    let run_id = store.begin_run("export", vault_mirror::now_ms())?;
    let result = write_index(settings, &store).await;
    // Recorded like every run that changes the archive (best effort: the
    // export's own result is what the user must see).
    let (outcome, code, body) = match &result {
        Ok(summary) => {
            let code = if summary.missing.is_empty() { 0 } else { 3 };
            let outcome = if code == 0 { "complete" } else { "partial" };
            (
                outcome,
                code,
                serde_json::to_value(summary).unwrap_or_default(),
            )
        }
        Err(failure) => (
            "failed",
            failure.code,
            serde_json::json!({ "error": format!("{:#}", failure.error) }),
        ),
    };
    let _ = store.finish_run(
        run_id,
        outcome,
        code,
        &body.to_string(),
        vault_mirror::now_ms(),
    );
    let summary = result?;
    Ok((code, report(settings, &summary, code)))
}

/// The three files written into the archive, on the disk or as objects.
async fn write_index(settings: &Settings, store: &Store) -> Result<ExportSummary, Failure> {
    let location = settings.archive();
    let archive = Archive::open(&location).map_err(Failure::usage)?;
    export(&archive, store, vault_mirror::now_ms())
        .await
        .map_err(|error| {
            Failure::failed(
                anyhow::Error::new(error)
                    .context(format!("cannot write the archive index in {location}")),
            )
        })
}

/// The `--json` object of an export; without `--json`, its lines for a
/// person are printed.
fn report(settings: &Settings, summary: &ExportSummary, code: i32) -> String {
    if !settings.output.json {
        print_export(summary, settings.output);
    }
    let mut body = serde_json::to_value(summary).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("command".into(), "export".into());
        object.insert(
            "outcome".into(),
            if code == 0 { "complete" } else { "partial" }.into(),
        );
        object.insert("exit_code".into(), code.into());
    }
    body.to_string()
}

pub fn print_export(summary: &ExportSummary, output: Output) {
    if !output.quiet {
        eprintln!(
            "exported {} media ({}, {}) into {}: {}",
            summary.media,
            vault_mirror::counted((summary.variants + summary.versions) as u64, "file"),
            human_bytes(summary.bytes),
            summary.out.display(),
            summary.written.join(", ")
        );
        if summary.out.starts_with("s3:") {
            eprintln!(
                "  serve the prefix as a static website, or: aws s3 sync {} DIR && cd DIR && sha256sum -c SHA256SUMS (then open index.html)",
                summary.out.display()
            );
        } else {
            eprintln!(
                "  open {} in a browser; check every file with: cd {} && sha256sum -c SHA256SUMS",
                summary.out.join("index.html").display(),
                summary.out.display()
            );
        }
    }
    const SHOWN: usize = 20;
    for path in summary.missing.iter().take(SHOWN) {
        eprintln!("  missing: {path} is recorded but not on disk as recorded; left out");
    }
    if summary.missing.len() > SHOWN {
        eprintln!(
            "  … and {} more missing (see `--json`)",
            summary.missing.len() - SHOWN
        );
    }
    if !summary.missing.is_empty() {
        eprintln!("  the next `vault-mirror mirror` fetches them again");
    }
}

/// A prune lists every file it deletes (or would); a refused one shows a few.
pub fn print_prune(prune: &PruneSummary, output: Output) {
    if output.quiet && !prune.refused {
        return;
    }
    if !prune.refused {
        eprintln!("{}", prune.headline());
    }
    let verb = if prune.refused || prune.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let shown = if prune.refused { 20 } else { usize::MAX };
    for file in prune.files.iter().take(shown) {
        eprintln!("  {verb}: {} ({})", file.path, human_bytes(file.size));
    }
    if prune.files.len() > shown {
        eprintln!(
            "  … and {} more (see `--dry-run --json`)",
            prune.files.len() - shown
        );
    }
}
