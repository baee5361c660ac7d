//! A `verify` run on one archive: the state database checked page by
//! page, the run recorded, the verified files re-read
//! ([`crate::archive::verify`]) — all of them, or within a [`Budget`] those
//! checked longest ago (never checked first), so repeated runs cover the
//! archive once per cycle — each file's check recorded with what it
//! found, the findings recorded and, with `--repair`, fetched again
//! ([`super::repair`]); the run's end recorded with its outcome. Returns a
//! [`VerifyReport`]; the binary prints it.
//!
//! Invariant: a run that began is finished in the history whatever
//! happens (`failed` with its error when something stopped it).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::archive::Archive;
use crate::archive::verify::{Budget, Checked, Depth, Finding, Problem, verify_until};
use crate::exit::ExitStatus;
use crate::location::ArchiveLocation;
use crate::pipeline::bucket::Mended;
use crate::pipeline::error::MirrorError;
use crate::pipeline::repair::{self, Repair};
use crate::report::{Reporter, Stage};
use crate::settings::Settings;
use crate::store::{CheckFigures, CheckOutcome, CheckRecord, Store, StoreError, VerifiedFile};
use crate::units::EpochMillis;

/// What a `verify` run found (its `--json`, and its record in the
/// history); the fields in this order.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// `verify`.
    pub command: &'static str,
    /// `intact` (nothing found), `repaired` (all found were fetched again),
    /// or `damaged` (some files are still missing or damaged).
    pub outcome: &'static str,
    pub exit_code: ExitStatus,
    /// The archive, as shown.
    pub out: ArchiveLocation,
    /// `full` (size and sha256) or `fast` (size only).
    pub depth: &'static str,
    pub run_id: i64,
    pub checked: u64,
    pub intact: u64,
    pub bytes: u64,
    /// Missing and damaged files, by path.
    pub findings: Vec<Finding>,
    /// On object storage: intact objects found without their sha256
    /// metadata (with `--repair`, `sha256_metadata` says what was set).
    pub without_sha256: u64,
    /// With `--repair`: how the refetch went.
    pub repair: Option<Repair>,
    /// With `--repair` on object storage: objects given their missing
    /// sha256 metadata from their own bytes (`null` otherwise).
    pub sha256_metadata: Option<Mended>,
    pub seconds: f64,
    /// `--max-bytes` and `--budget` (in seconds), `null` where not given.
    pub budget: Budget,
    /// Files left for the next runs (the budget was spent first).
    pub left: u64,
    /// How old the archive's checks are after this run, and the pace of
    /// the last runs (`null` if the database could not say).
    pub checks: Option<CheckFigures>,
}

/// Verifies the archive of `settings` whose database is `store`, to
/// `depth`; with `repair`, fetches what it found again (the API settings
/// are best checked before, so a missing key fails before the hashing).
///
/// `display` gives each phase (the checks, the refetch) its reporter,
/// dropped when the phase ends.
pub async fn verify(
    settings: &Settings,
    store: &Store,
    depth: Depth,
    budget: Budget,
    repair: bool,
    display: &dyn Fn() -> Arc<dyn Reporter>,
) -> Result<VerifyReport, MirrorError> {
    // On object storage: under the archive's lease, ending with the
    // snapshot that holds this run.
    let run = async {
        let started = Instant::now();
        // The database first: a run notices damage only in the pages it reads.
        store.check()?;
        let run_id = store.begin_run("verify", crate::now_ms())?;
        let run = Run {
            settings,
            store,
            run_id,
            started,
            budget,
        };
        let result = run.checked(depth, repair, display).await;
        if let Err(error) = &result {
            // Best effort: the failure itself is what the user must see.
            let body = serde_json::json!({ "error": crate::report::chain(error) });
            let _ = store.finish_run(
                run_id,
                "failed",
                error.exit_code().code(),
                &body.to_string(),
                crate::now_ms(),
            );
        }
        result
    };
    crate::pipeline::leased::leased(settings, "verify", store, display(), run).await
}

/// `full` or `fast`, as the report names a depth.
pub fn depth_word(depth: Depth) -> &'static str {
    match depth {
        Depth::Full => "full",
        Depth::Fast => "fast",
    }
}

/// One verify run, begun.
struct Run<'a> {
    settings: &'a Settings,
    store: &'a Store,
    run_id: i64,
    started: Instant,
    budget: Budget,
}

impl Run<'_> {
    /// The checks, the repair if asked, and the run's end recorded.
    async fn checked(
        &self,
        depth: Depth,
        repair: bool,
        display: &dyn Fn() -> Arc<dyn Reporter>,
    ) -> Result<VerifyReport, MirrorError> {
        let (settings, store) = (self.settings, self.store);
        let all = store.files_to_verify()?;
        let files = self.budget.within_bytes(&all);
        let total: u64 = files.iter().map(|file| file.size).sum();

        let reporter = display();
        reporter.on_stage(
            Stage::Verify,
            &format!(
                "{} {}{} ({})",
                match depth {
                    Depth::Fast => "checking the sizes of",
                    Depth::Full => "re-hashing",
                },
                if files.len() < all.len() || self.budget.time.is_some() {
                    "up to "
                } else {
                    ""
                },
                crate::counted(files.len() as u64, "file"),
                crate::human_bytes(total)
            ),
        );
        let archive = Archive::open(&settings.archive)
            .map_err(|error| MirrorError::OpenArchive(Box::new(error)))?;
        let workers = archive.parallel_reads();
        let deadline = self.budget.time.map(|time| self.started + time);
        let out_of_time = || deadline.is_some_and(|deadline| Instant::now() >= deadline);
        let checked = verify_until(&archive, files, depth, workers, &out_of_time, &*reporter).await;
        drop(reporter);

        // Only what was checked: a budget leaves the rest for later runs.
        let files = &files[..usize::try_from(checked.checked).unwrap_or(files.len())];
        let left = (all.len() - files.len()) as u64;
        repair::record_findings(store, files, &checked)?;
        if depth == Depth::Full {
            record_checks(store, files, &checked)?;
        }

        let repairing = repair;
        let repair = if repair && !checked.findings.is_empty() {
            let reporter = display();
            reporter.on_stage(
                Stage::Resolve,
                &format!("fetching {} files again", checked.findings.len()),
            );
            Some(repair::repair(settings, store, &checked, reporter).await?)
        } else {
            None
        };
        // After the refetch, so the bytes fetched again are sealed already.
        let sha256_metadata = if repairing {
            repair::mend_metadata(&archive, store, &*display()).await?
        } else {
            None
        };
        let still_broken = match &repair {
            Some(repair) => repair.unrepaired.len(),
            None => checked.findings.len(),
        };
        let (outcome, exit_code) = match (checked.findings.is_empty(), still_broken) {
            (true, _) => ("intact", ExitStatus::Ok),
            (false, 0) => ("repaired", ExitStatus::Ok),
            _ => ("damaged", ExitStatus::Partial),
        };
        let report = VerifyReport {
            command: "verify",
            outcome,
            exit_code,
            out: settings.archive.clone(),
            depth: depth_word(depth),
            run_id: self.run_id,
            checked: checked.checked,
            intact: checked.intact,
            bytes: checked.bytes,
            findings: checked.findings,
            without_sha256: checked.without_sha256,
            repair,
            sha256_metadata,
            seconds: self.started.elapsed().as_secs_f64(),
            budget: self.budget,
            left,
            checks: None,
        };
        let text = serde_json::to_string(&report).unwrap_or_default();
        store.finish_run(
            self.run_id,
            outcome,
            exit_code.code(),
            &text,
            crate::now_ms(),
        )?;
        // Read after the run's end is recorded, so its pace counts.
        let checks = store.check_figures().ok();
        Ok(VerifyReport { checks, ..report })
    }
}

/// Records the check of each of `files` (all checked), at once.
fn record_checks(
    store: &Store,
    files: &[VerifiedFile],
    checked: &Checked,
) -> Result<(), StoreError> {
    let found: std::collections::HashMap<(&str, &str), Problem> = checked
        .findings
        .iter()
        .map(|finding| {
            (
                (finding.id.as_str(), finding.label.as_str()),
                finding.problem,
            )
        })
        .collect();
    let records: Vec<CheckRecord<'_>> = files
        .iter()
        .map(|file| CheckRecord {
            media_id: &file.media_id,
            label: &file.label,
            outcome: match found.get(&(file.media_id.as_str(), file.label.as_str())) {
                None => CheckOutcome::Intact,
                Some(Problem::Missing) => CheckOutcome::Missing,
                Some(Problem::Damaged) => CheckOutcome::Damaged,
            },
        })
        .collect();
    store.record_checks(&records, EpochMillis(crate::now_ms()))
}
