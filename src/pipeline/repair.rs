//! What `verify` does to the archive once it has checked it: findings are
//! recorded (so the next `mirror` fetches them even if nobody reads the
//! report), files found broken before and intact now are verified again,
//! and with `--repair` damaged bytes are set aside in the quarantine and
//! the variants fetched again through the pipeline — the same fresh URLs,
//! checks and commit as any run. The binary only calls and prints.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::sync::Arc;

use serde::Serialize;

use crate::archive::dir::quarantine_path;
use crate::archive::paths::key_of;
use crate::archive::verify::{Checked, Finding, Problem};
use crate::archive::{Archive, archive_path};
use crate::pipeline::bucket::{BucketRunError, Looked, Mended, mend, sealed_as_verified};
use crate::pipeline::error::MirrorError;
use crate::pipeline::outcome::Summary;
use crate::report::Reporter;
use crate::settings::{Quality, Settings};
use crate::store::{LocalState, Store, StoreError, VerifiedFile};
use crate::units::{ByteSize, EpochMillis};

/// How `verify --repair` went.
#[derive(Debug, Serialize)]
pub struct Repair {
    /// Findings that are verified again.
    pub repaired: u64,
    /// Findings still missing or damaged, with why.
    pub unrepaired: Vec<Finding>,
    /// The refetch run's own summary (as `mirror --json` prints it).
    pub summary: Summary,
}

/// `verify --repair` on object storage: every verified object, and every
/// one a run left without its sha256 metadata, given that metadata where
/// it lacks it, from its own bytes in the store (see
/// [`crate::archive::bucket::seal`]); None on a disk.
pub async fn mend_metadata(
    archive: &Archive,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Option<Mended>, StoreError> {
    let Archive::Bucket(bucket) = archive else {
        return Ok(None);
    };
    let mut objects: Vec<_> = store
        .unsealed()?
        .into_iter()
        .map(|object| (object, Looked::Unsealed))
        .collect();
    objects.extend(
        store
            .archived_variants()?
            .into_iter()
            .map(|variant| (sealed_as_verified(variant), Looked::Verified)),
    );
    mend(bucket, store, objects, reporter).await.map(Some)
}

/// `missing` or `damaged`.
pub fn problem_word(problem: Problem) -> &'static str {
    match problem {
        Problem::Missing => "missing",
        Problem::Damaged => "damaged",
    }
}

/// Records what a check found among `files`: each finding's variant goes
/// back to `missing` with the reason; a file found broken by an earlier
/// check and intact now (put back by hand) is verified again.
pub fn record_findings(
    store: &Store,
    files: &[VerifiedFile],
    checked: &Checked,
) -> Result<(), StoreError> {
    let now = crate::now_ms();
    for file in files.iter().filter(|file| file.found_broken) {
        let still_broken = checked
            .findings
            .iter()
            .any(|finding| finding.id == file.media_id && finding.label == file.label);
        if !still_broken {
            store.mark_verified(
                &file.media_id,
                &file.label,
                &file.local_path,
                &file.sha256,
                ByteSize(file.size),
                EpochMillis(now),
            )?;
        }
    }
    for finding in &checked.findings {
        store.mark_unfinished(
            &finding.id,
            &finding.label,
            LocalState::Missing,
            &format!(
                "verify: {}: {}",
                problem_word(finding.problem),
                finding.reason
            ),
            now,
        )?;
    }
    Ok(())
}

/// Moves damaged bytes aside and fetches the findings again.
pub async fn repair(
    settings: &Settings,
    store: &Store,
    checked: &Checked,
    reporter: Arc<dyn Reporter>,
) -> Result<Repair, MirrorError> {
    let archive = Archive::open(&settings.archive)
        .map_err(|error| BucketRunError::at("opening the archive", error))?;
    for finding in &checked.findings {
        if finding.problem == Problem::Damaged {
            set_aside(&archive, finding).await;
        }
    }
    let media_ids: Vec<String> = checked
        .findings
        .iter()
        .map(|finding| finding.id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let labels: Vec<String> = checked
        .findings
        .iter()
        .map(|finding| finding.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut repair_settings = settings.clone();
    repair_settings.mirror.quality = Quality::Labels(labels);
    let summary = crate::pipeline::refetch(&repair_settings, media_ids.clone(), reporter).await?;
    let now_held = store.local_variants(&media_ids)?;
    let mut repaired = 0;
    let mut unrepaired = Vec::new();
    for finding in &checked.findings {
        let local = now_held.get(&(finding.id.clone(), finding.label.clone()));
        if local.is_some_and(|local| local.state == LocalState::Verified) {
            repaired += 1;
            continue;
        }
        let why = summary
            .failed
            .iter()
            .chain(&summary.pending)
            .chain(&summary.unavailable)
            .find(|note| {
                note.id == finding.id && (note.label == finding.label || note.label == "*")
            })
            .map(|note| note.reason.clone())
            .unwrap_or_else(|| "Vault+ did not offer it (no longer in its cache?)".into());
        unrepaired.push(Finding {
            reason: format!("{}; fetching it again failed: {why}", finding.reason),
            ..finding.clone()
        });
    }
    Ok(Repair {
        repaired,
        unrepaired,
        summary,
    })
}

/// Moves a damaged file to the quarantine (as the transfer does with
/// bytes that fail a check), so nothing broken sits at a final path while
/// it is fetched again (and its bytes stay for inspection if that fails).
/// Best effort: the commit of the refetched file moves it there anyway.
async fn set_aside(archive: &Archive, finding: &Finding) {
    if archive_path(&finding.path).is_err() {
        return; // not one of ours: never touched
    }
    let name = finding.path.rsplit('/').next().unwrap_or_default();
    let to = key_of(&quarantine_path(&finding.id, OsStr::new(name)));
    let moved = match archive.move_aside(&finding.path, &to).await {
        // Object storage copied it: the damaged object goes now.
        Ok(()) => archive.delete(&finding.path).await,
        Err(error) => Err(error),
    };
    if let Err(error) = moved {
        tracing::warn!(
            "could not set the damaged file aside: {}",
            crate::report::chain(&error)
        );
    }
}
