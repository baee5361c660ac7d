//! What a run says about itself: how one transfer ended ([`Ended`]),
//! the items that need a word ([`ItemNote`]), and the [`Summary`] that
//! `--json` prints (its fields are documented in docs/reference.md and stable).

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::archive::export::ExportSummary;
use crate::archive::prune::PruneSummary;
use crate::archive::views::ViewsSummary;
use crate::location::ArchiveLocation;
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::store::VersionRecord;

/// How a run ended.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every selected variant is mirrored and verified.
    Complete,
    /// The run finished, but some variants failed or are still pending.
    Partial,
    /// A stop signal ended the run early; the next run resumes it.
    Interrupted,
}

/// One item of the summary that needs a word of explanation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemNote {
    pub id: String,
    pub label: String,
    pub reason: String,
}

/// Per-list figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ListSummary {
    pub id: String,
    pub name: String,
    pub members: usize,
    pub gone: usize,
}

/// What a `mirror` run did; `--json` prints it as one object. The fields
/// are documented in docs/reference.md and stable.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub command: &'static str,
    /// The connection this run mirrored (its id as given); left out when
    /// empty (as [`Summary::recorded_json`] makes it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub connection: String,
    pub outcome: Outcome,
    pub exit_code: i32,
    pub out: ArchiveLocation,
    pub run_id: i64,
    pub lists: Vec<ListSummary>,
    /// Variants of the selected labels that the API described this run.
    pub variants_seen: u64,
    /// Variants fetched and verified this run.
    pub downloaded: u64,
    /// Variants that were already verified on disk.
    pub already_verified: u64,
    /// Not stored upstream yet (pending, storing, or not cached by Vault+).
    pub pending: Vec<ItemNote>,
    /// Gave up this run (the reason says why); retried by the next run.
    pub failed: Vec<ItemNote>,
    /// Not downloadable upstream (removed, edge-only, or an unknown status).
    pub unavailable: Vec<ItemNote>,
    /// Problems with whole lists (a sync or membership read that failed).
    pub errors: Vec<String>,
    /// Bytes received this run.
    pub bytes: u64,
    /// Signed URLs replaced before or during their transfer.
    pub urls_resigned: u64,
    /// Batch calls made to re-sign them.
    pub resign_calls: u64,
    /// Times the media host refused a URL (401/403/410) and it was re-signed.
    pub expired_urls: u64,
    /// Transfer attempts retried after a transient failure.
    pub transfer_retries: u64,
    /// Requests to the object store tried again after a transient failure
    /// (0 on a disk).
    pub store_retries: u64,
    pub seconds: f64,
    /// Seconds from the start of the run to the first media byte received
    /// (`None` when nothing was downloaded).
    pub first_byte_seconds: Option<f64>,
    /// The list views after the run (`null` with `--dry-run`).
    pub views: Option<ViewsSummary>,
    /// What `--prune` deleted, would delete, or refused to (`null` without it).
    pub prune: Option<PruneSummary>,
    /// What `--export` wrote (`null` without it).
    pub export: Option<ExportSummary>,
    /// Bytes a change upstream replaced this run, kept under `.versions/`.
    pub versions_kept: Vec<VersionRecord>,
}

/// How one transfer ended.
#[derive(Debug)]
pub enum Ended {
    Verified {
        received: u64,
    },
    Failed {
        note: ItemNote,
        received: u64,
    },
    Pending {
        note: ItemNote,
        received: u64,
    },
    /// The run must stop (a refused key, a broken database, a full disk).
    Fatal(MirrorError),
    /// A bug: a transfer task panicked. Reported, and the run goes on.
    Crashed(String),
}

/// An item note.
pub fn note(media_id: &str, label: &str, reason: &str) -> ItemNote {
    ItemNote {
        id: media_id.to_owned(),
        label: label.to_owned(),
        reason: reason.to_owned(),
    }
}

impl Summary {
    /// A summary of run `run_id` with nothing done yet, carrying the
    /// counters the core kept (re-signs, retries).
    pub(crate) fn of_run(context: &Context, run_id: i64) -> Summary {
        let counters = &context.counters;
        Summary {
            command: "mirror",
            connection: context.settings.connection_id.clone().unwrap_or_default(),
            outcome: Outcome::Complete,
            exit_code: 0,
            out: context.settings.archive.clone(),
            run_id,
            lists: Vec::new(),
            variants_seen: 0,
            downloaded: 0,
            already_verified: 0,
            pending: Vec::new(),
            failed: Vec::new(),
            unavailable: Vec::new(),
            errors: Vec::new(),
            bytes: 0,
            urls_resigned: counters.urls_resigned.load(Ordering::Relaxed),
            resign_calls: counters.resign_calls.load(Ordering::Relaxed),
            expired_urls: counters.expired_urls.load(Ordering::Relaxed),
            transfer_retries: counters.transfer_retries.load(Ordering::Relaxed),
            store_retries: context
                .bucket
                .as_ref()
                .map_or(0, |run| run.bucket.retries()),
            seconds: 0.0,
            first_byte_seconds: None,
            views: None,
            prune: None,
            export: None,
            versions_kept: Vec::new(),
        }
    }
}

impl Summary {
    /// The summary as the database and the log keep it: without the
    /// connection id, which a run never writes to disk (the archive's path
    /// says which archive it is). `--json` prints it whole.
    pub fn recorded_json(&self) -> String {
        let recorded = Summary {
            connection: String::new(),
            ..self.clone()
        };
        serde_json::to_string(&recorded).unwrap_or_default()
    }
}

/// A name for messages: the raw id and label with control characters
/// escaped and great lengths cut, so server text cannot garble a terminal.
pub fn display_name(media_id: &str, label: &str) -> String {
    fn shown(text: &str) -> String {
        let escaped: String = text.chars().flat_map(char::escape_debug).collect();
        if escaped.chars().count() > 40 {
            let head: String = escaped.chars().take(37).collect();
            format!("{head}…")
        } else {
            escaped
        }
    }
    format!("{}/{}", shown(media_id), shown(label))
}
