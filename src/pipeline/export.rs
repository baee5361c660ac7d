//! An `export` run on one archive: the run recorded, the archive index
//! written from the database alone ([`crate::archive::export`]: no
//! network, no key), the run's end recorded with its outcome. Returns an
//! [`ExportReport`]; the binary prints it.
//!
//! Invariant: a run that began is finished in the history whatever
//! happens (`failed` with its error when the index could not be written).

use std::sync::Arc;

use serde::Serialize;

use crate::archive::Archive;
use crate::archive::export::{ExportSummary, export};
use crate::exit::ExitStatus;
use crate::pipeline::error::MirrorError;
use crate::report::{Reporter, SilentReporter};
use crate::settings::Settings;
use crate::store::Store;

/// What an `export` run wrote: the summary, its outcome and exit code.
#[derive(Debug, Serialize)]
pub struct ExportReport {
    /// `export`.
    pub command: &'static str,
    /// `complete`, or `partial` when recorded files were not there as
    /// recorded (left out of the index).
    pub outcome: &'static str,
    pub exit_code: ExitStatus,
    #[serde(flatten)]
    pub summary: ExportSummary,
}

/// Writes the index of `settings`' archive whose database is `store`
/// (the caller holds the archive's lock), recorded as a run; on object
/// storage under the archive's lease, ending with the snapshot that holds
/// the run ([`crate::pipeline::leased`]).
pub async fn export_index(settings: &Settings, store: &Store) -> Result<ExportReport, MirrorError> {
    let notes: Arc<dyn Reporter> = Arc::new(SilentReporter);
    let run = export_run(&settings.archive, store);
    crate::pipeline::leased::leased(settings, "export", store, notes, run).await
}

async fn export_run(
    location: &crate::location::ArchiveLocation,
    store: &Store,
) -> Result<ExportReport, MirrorError> {
    let run_id = store.begin_run("export", crate::now_ms())?;
    let result = write_index(location, store).await;
    // Recorded like every run that changes the archive (best effort: the
    // export's own result is what the user must see).
    let (outcome, code, body) = match &result {
        Ok(summary) => {
            let (outcome, code) = outcome_of(summary);
            (
                outcome,
                code,
                serde_json::to_value(summary).unwrap_or_default(),
            )
        }
        Err(error) => (
            "failed",
            error.exit_code(),
            serde_json::json!({ "error": crate::report::chain(error) }),
        ),
    };
    let _ = store.finish_run(
        run_id,
        outcome,
        code.code(),
        &body.to_string(),
        crate::now_ms(),
    );
    let summary = result?;
    Ok(ExportReport {
        command: "export",
        outcome,
        exit_code: code,
        summary,
    })
}

/// `complete` (exit 0), or `partial` (exit 3) when files were missing.
fn outcome_of(summary: &ExportSummary) -> (&'static str, ExitStatus) {
    if summary.missing.is_empty() {
        ("complete", ExitStatus::Ok)
    } else {
        ("partial", ExitStatus::Partial)
    }
}

/// The three files written into the archive, on the disk or as objects.
async fn write_index(
    location: &crate::location::ArchiveLocation,
    store: &Store,
) -> Result<ExportSummary, MirrorError> {
    let archive =
        Archive::open(location).map_err(|error| MirrorError::OpenArchive(Box::new(error)))?;
    export(&archive, store, crate::now_ms())
        .await
        .map_err(|source| MirrorError::Export {
            location: Box::new(location.clone()),
            source: Box::new(source),
        })
}
