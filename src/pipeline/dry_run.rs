//! `mirror --dry-run`: the plan of a run without the run. It reads what a
//! run would read — the connection's lists, their members, the batch
//! descriptions — and puts each variant through the same
//! [`plan::decide`](super::plan::decide) against the database, then counts.
//!
//! Invariants: it changes nothing anywhere. No `PUT sync` (a sync can purge
//! upstream), no database write (the database is not even created when
//! missing), no file or folder, no media request.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::api::models::MediaItem;
use crate::api::{ApiClient, BATCH_LIMIT};
use crate::archive::ArchiveDir;
use crate::archive::bucket::Bucket;
use crate::archive::paths::part_path;
use crate::location::ArchiveLocation;
use crate::pipeline::bucket::BucketRunError;
use crate::pipeline::error::MirrorError;
use crate::pipeline::lists;
use crate::pipeline::membership::{self, Members};
use crate::pipeline::plan::{Archived, Decision, decide};
use crate::pipeline::resign::ASSUMED_RATE;
use crate::report::{Reporter, Stage};
use crate::settings::{Quality, Settings};
use crate::store::{ListRecord, LocalState, LocalVariant, Store};

/// A number of variants (or files) and their bytes.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Amount {
    pub variants: u64,
    pub bytes: u64,
}

impl Amount {
    fn add(&mut self, bytes: u64) {
        self.variants += 1;
        self.bytes += bytes;
    }
}

/// One list the run would mirror.
#[derive(Debug, Clone, Serialize)]
pub struct ListPlan {
    pub id: String,
    pub name: String,
    /// Members Vault+ lists now (before any sync).
    pub members: usize,
}

/// What `mirror` would do; `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub command: &'static str,
    pub dry_run: bool,
    pub out: ArchiveLocation,
    /// The variant labels selected (`all` for every label).
    pub quality: String,
    pub jobs: usize,
    /// Whether a real run would `PUT sync` each list first (a dry run never does).
    pub sync: bool,
    pub lists: Vec<ListPlan>,
    /// Distinct media across the lists.
    pub media: u64,
    /// Variants that would be fetched, and their bytes.
    pub download: Amount,
    /// Of those, variants whose `.part` already holds bytes, and those bytes.
    pub resume: Amount,
    /// Variants already verified on disk: skipped.
    pub skip: Amount,
    /// Variants whose signed URL would expire before their transfer is
    /// done (estimated at 512 KiB/s per transfer): re-signed on the way.
    pub resign: u64,
    /// Variants not stored upstream yet (pending, storing), plus media
    /// Vault+ has not cached at all.
    pub pending: u64,
    /// Variants not downloadable upstream (removed, edge-only, unknown status).
    pub unavailable: u64,
    /// Variants Vault+ describes in a way that cannot be fetched.
    pub invalid: u64,
    /// Verified files of media gone from every mirrored list: kept, and
    /// what `--prune` would delete.
    pub prune: Amount,
    /// With `--prune`: each file it would delete (relative to the root),
    /// and whether its `--max-delete` guard would refuse the whole prune.
    pub prune_files: Vec<String>,
    pub prune_refused: bool,
    /// Lists that could not be read (their last known members are used).
    pub errors: Vec<String>,
}

/// Works out the plan. Reads the API and the database; writes nothing.
pub async fn dry_run(
    settings: &Settings,
    reporter: Arc<dyn Reporter>,
) -> Result<Plan, MirrorError> {
    let api = ApiClient::new(settings.api_config()?, reporter.clone())?;
    let store = Store::open_existing(&settings.db)?;
    let mut plan = Plan::empty(settings);
    let selected = lists::read(
        &api,
        &settings.mirror.lists,
        store.as_ref(),
        reporter.as_ref(),
    )
    .await?
    .lists;
    let media_ids = read_members(
        &api,
        reporter.as_ref(),
        store.as_ref(),
        &selected,
        &mut plan,
    )
    .await?;

    let mut planner = Planner {
        settings,
        archive: ArchiveDir::open(&settings.local),
        listed: list_objects(settings).await?,
        now: api.clock().now_ms(),
        queued_bytes: 0,
        labels_seen: BTreeSet::new(),
    };
    for (index, chunk) in media_ids.chunks(BATCH_LIMIT).enumerate() {
        // Each batch's own line: `media 101-200 of 250`, not the same
        // words once per batch.
        let first = index * BATCH_LIMIT + 1;
        reporter.on_stage(
            Stage::Plan,
            &format!(
                "describing media {first}-{} of {}",
                first + chunk.len() - 1,
                media_ids.len()
            ),
        );
        let batch = match api.media_batch(chunk).await {
            Ok(batch) => batch,
            Err(error) if error.is_auth() => return Err(error.into()),
            Err(error) => {
                plan.errors.push(format!("a batch lookup failed: {error}"));
                continue;
            }
        };
        let locals = match &store {
            Some(store) => store.local_variants(chunk)?,
            None => Default::default(),
        };
        // The client keeps only asked ids, each once: the rest are pending.
        plan.pending += (chunk.len() - batch.items.len()) as u64;
        planner.describe(&mut plan, &batch.items, &locals, api.clock().now_ms());
    }
    // A label nothing carries is a mistake in the command (exit 2), as a
    // real run finds it before it changes anything.
    if let Quality::Labels(asked) = &settings.mirror.quality
        && let Some(refused) = super::preflight::refusal(asked, &planner.labels_seen, true)
    {
        return Err(refused);
    }
    if let Some(store) = &store {
        plan_prune(&mut plan, settings, store, &selected, &media_ids)?;
    }
    Ok(plan)
}

/// On object storage: what is under `media/` (the dry run reads it, and
/// writes nothing).
async fn list_objects(settings: &Settings) -> Result<Option<HashMap<String, u64>>, MirrorError> {
    let Some(url) = settings.archive.bucket() else {
        return Ok(None);
    };
    let bucket = Bucket::open(url).map_err(|error| BucketRunError::at("opening", error))?;
    let listed = bucket
        .list("media")
        .await
        .map_err(|error| BucketRunError::at("listing the archive", error))?;
    Ok(Some(listed))
}

impl Plan {
    /// A plan of nothing yet, for `settings`.
    fn empty(settings: &Settings) -> Plan {
        Plan {
            command: "mirror",
            dry_run: true,
            out: settings.archive.clone(),
            quality: match &settings.mirror.quality {
                Quality::All => "all".to_owned(),
                Quality::Labels(labels) => labels.join(","),
            },
            jobs: settings.mirror.jobs,
            sync: settings.mirror.sync,
            lists: Vec::new(),
            media: 0,
            download: Amount::default(),
            resume: Amount::default(),
            skip: Amount::default(),
            resign: 0,
            pending: 0,
            unavailable: 0,
            invalid: 0,
            prune: Amount::default(),
            prune_files: Vec::new(),
            prune_refused: false,
            errors: Vec::new(),
        }
    }
}

/// The selected lists' members, through the membership stage's read half
/// (a list that cannot be read counts with its last known members).
async fn read_members(
    api: &ApiClient,
    reporter: &dyn Reporter,
    store: Option<&Store>,
    selected: &[ListRecord],
    plan: &mut Plan,
) -> Result<Vec<String>, MirrorError> {
    let mut media_ids = BTreeSet::new();
    for list in selected {
        let members: Vec<String> = match membership::read(api, reporter, &list.list_id).await? {
            Members::Read { members, .. } => {
                members.into_iter().map(|member| member.media_id).collect()
            }
            Members::Unreadable { text, .. } => {
                plan.errors.push(text);
                match store {
                    Some(store) => store.current_members(std::slice::from_ref(&list.list_id))?,
                    None => Vec::new(),
                }
            }
        };
        plan.lists.push(ListPlan {
            id: list.list_id.clone(),
            name: list.name.clone(),
            members: members.len(),
        });
        media_ids.extend(members);
    }
    plan.media = media_ids.len() as u64;
    Ok(media_ids.into_iter().collect())
}

/// Counts what each described variant would come to.
struct Planner<'a> {
    settings: &'a Settings,
    archive: ArchiveDir,
    /// On object storage: the objects under `media/` (key → size).
    listed: Option<HashMap<String, u64>>,
    /// The server's clock when the run was planned.
    now: i64,
    /// Bytes planned before the current job, for when it would start.
    queued_bytes: u64,
    labels_seen: BTreeSet<String>,
}

impl Planner<'_> {
    /// Where verified files are looked for.
    fn archived(&self) -> Archived<'_> {
        match &self.listed {
            Some(listed) => Archived::Listed(listed),
            None => Archived::Disk(&self.archive),
        }
    }

    /// One batch's items: each variant through the plan's `decide`, then
    /// the fetches in the order they would start. Transfers start in
    /// expiry order, `jobs` at a time: this is when each would start,
    /// roughly, and whether its URL would last (by the server's clock,
    /// which `expiresAt` keeps).
    fn describe(
        &mut self,
        plan: &mut Plan,
        items: &[MediaItem],
        locals: &HashMap<(String, String), LocalVariant>,
        server_now: i64,
    ) {
        let mut fetches = Vec::new();
        for item in items {
            let Some(media_id) = item.id.as_deref() else {
                continue;
            };
            for (label, variant) in &item.media {
                if !self.labels_seen.contains(label) {
                    self.labels_seen.insert(label.clone());
                }
                if !self.settings.mirror.quality.wants(label) {
                    continue;
                }
                let local = locals
                    .get(&(media_id.to_owned(), label.clone()))
                    .cloned()
                    .unwrap_or_else(never_seen);
                match decide(
                    self.archived(),
                    media_id,
                    label,
                    variant,
                    &local,
                    server_now,
                ) {
                    Decision::Fetch(job) => fetches.push(job),
                    Decision::AlreadyVerified => {
                        plan.skip.add(local.verified_size.map_or(0, |size| size.0))
                    }
                    Decision::Pending(_) => plan.pending += 1,
                    Decision::Unavailable(_) => plan.unavailable += 1,
                    Decision::Invalid(_) => plan.invalid += 1,
                }
            }
        }
        fetches.sort_by_key(|job| job.expiry_order());
        let lanes = self.settings.mirror.jobs.max(1) as f64;
        let margin = self.settings.network.expiry_margin.as_secs_f64();
        for job in fetches {
            let on_disk = self
                .archive
                .file_len(&part_path(&job.relative_path))
                .map_or(0, |len| len.min(job.size));
            if on_disk > 0 {
                plan.resume.add(on_disk);
            }
            plan.download.add(job.size);
            let remaining = job.size - on_disk;
            let starts = self.queued_bytes as f64 / (ASSUMED_RATE * lanes);
            let lasts = remaining as f64 / ASSUMED_RATE;
            if let Some(lifetime) = job.lifetime
                && (lifetime.expires_at - self.now) as f64 / 1000.0 < starts + lasts + margin
            {
                plan.resign += 1;
            }
            self.queued_bytes += remaining;
        }
    }
}

/// What `--prune` would delete: files of media gone from every selected
/// list (listed one by one only with `--prune`).
fn plan_prune(
    plan: &mut Plan,
    settings: &Settings,
    store: &Store,
    selected: &[ListRecord],
    media_ids: &[String],
) -> Result<(), MirrorError> {
    let list_ids: Vec<String> = selected.iter().map(|list| list.list_id.clone()).collect();
    let current: HashSet<String> = media_ids.iter().cloned().collect();
    for file in store.prune_candidates(&list_ids, &current)? {
        plan.prune.add(file.size);
        if settings.mirror.prune {
            plan.prune_files.push(file.local_path);
        }
    }
    plan.prune_refused =
        settings.mirror.prune && plan.prune_files.len() > settings.mirror.max_delete;
    Ok(())
}

fn never_seen() -> LocalVariant {
    LocalVariant {
        state: LocalState::Missing,
        local_path: None,
        verified_size: None,
        part_validator: None,
    }
}
