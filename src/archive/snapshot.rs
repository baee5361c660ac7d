//! What the archive holds, for the export and the gallery: the database's
//! lists, membership, verified variants and kept versions, each checked
//! against the disk (a file missing at its recorded size is reported, not
//! indexed).

use std::collections::HashMap;
use std::path::Path;

use crate::archive::paths::key_of;
use crate::archive::{Archive, ArchiveError, BYTE_FOLDERS, archive_path};
use crate::store::{ArchiveList, ArchivedVariant, MediaFacts, SidecarRecord, Store, VersionRecord};

/// What the database says the archive holds, checked against the disk.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub lists: Vec<ArchiveList>,
    /// Per media id: (index into `lists`, gone from that list since).
    pub membership: HashMap<String, Vec<(usize, Option<i64>)>>,
    /// Present on disk, by media id then label.
    pub variants: Vec<ArchivedVariant>,
    /// Present on disk, by media id, label, time.
    pub versions: Vec<VersionRecord>,
    /// Each media's own date and shape, by media id.
    pub facts: HashMap<String, MediaFacts>,
    /// XMP sidecars present as written (`sidecars = "xmp"`).
    pub sidecars: Vec<SidecarRecord>,
    /// Recorded but not on disk as recorded.
    pub missing: Vec<String>,
}

/// Every file under `media/` and `.versions/`: key → size.
pub async fn files_of(
    archive: &Archive,
) -> Result<std::collections::BTreeMap<String, u64>, ArchiveError> {
    let mut listed = std::collections::BTreeMap::new();
    for top in BYTE_FOLDERS {
        listed.extend(archive.files_under(top).await?);
    }
    Ok(listed)
}

impl Snapshot {
    /// What `store` records of `archive`, checked against one listing of
    /// its `media/` and `.versions/` (links left out on the disk).
    pub async fn read(archive: &Archive, store: &Store) -> Result<Snapshot, ArchiveError> {
        let listed = files_of(archive).await?;
        Self::read_with(store, &|relative, len| {
            listed.get(&key_of(relative)) == Some(&len)
        })
    }

    /// [`Snapshot::read`], with `has_file(relative path, size)` telling
    /// whether a file is in the archive at its size.
    pub fn read_with(
        store: &Store,
        has_file: &dyn Fn(&Path, u64) -> bool,
    ) -> Result<Snapshot, ArchiveError> {
        let lists = store.archive_lists()?;
        let index: HashMap<&str, usize> = lists
            .iter()
            .enumerate()
            .map(|(index, list)| (list.list_id.as_str(), index))
            .collect();
        let mut membership: HashMap<String, Vec<(usize, Option<i64>)>> = HashMap::new();
        for row in store.archive_membership()? {
            if let Some(&list) = index.get(row.list_id.as_str()) {
                membership
                    .entry(row.media_id)
                    .or_default()
                    .push((list, row.gone_at));
            }
        }
        let mut missing = Vec::new();
        let mut present = |path: &str, size: i64| match archive_path(path) {
            Ok(relative) => {
                let ok = u64::try_from(size).is_ok_and(|len| has_file(&relative, len));
                if !ok {
                    missing.push(path.to_owned());
                }
                ok
            }
            Err(error) => {
                missing.push(format!("{path} ({error})"));
                false
            }
        };
        let variants: Vec<ArchivedVariant> = store
            .archived_variants()?
            .into_iter()
            .filter(|variant| present(&variant.local_path, variant.size))
            .collect();
        let versions: Vec<VersionRecord> = store
            .kept_versions()?
            .into_iter()
            .filter(|version| present(&version.local_path, version.size))
            .collect();
        // A sidecar not as written is left out, not missing: the next
        // run writes it again.
        let sidecars = store
            .sidecars()?
            .into_iter()
            .filter(|sidecar| {
                archive_path(&sidecar.local_path).is_ok_and(|relative| {
                    u64::try_from(sidecar.size).is_ok_and(|len| has_file(&relative, len))
                })
            })
            .collect();
        Ok(Snapshot {
            facts: store.media_facts()?,
            lists,
            membership,
            variants,
            versions,
            sidecars,
            missing,
        })
    }

    /// Ids of the lists that hold `media_id` now (not gone from them).
    pub fn current_lists(&self, media_id: &str) -> Vec<usize> {
        self.membership
            .get(media_id)
            .into_iter()
            .flatten()
            .filter(|(_, gone_at)| gone_at.is_none())
            .map(|(list, _)| *list)
            .collect()
    }

    /// When `media_id` left the last live list that held it, if no live
    /// list holds it now (what `--prune` calls gone from every list).
    pub fn gone_from_every_list(&self, media_id: &str) -> Option<i64> {
        let rows = self.membership.get(media_id)?;
        let mut last = None;
        for (list, gone_at) in rows {
            let list_gone = self.lists[*list].gone_at;
            match gone_at.or(list_gone) {
                None => return None,
                Some(when) => last = last.max(Some(when)),
            }
        }
        last
    }
}
