//! Mistakes in the command found before a run changes anything: a
//! `--quality` label that no media carries (`fulll`) would otherwise be
//! seen only at the end of a run that had synced every list upstream and
//! written the archive.
//!
//! The labels that exist are learned read-only: those the database has
//! recorded, and when they do not hold every asked label, those of one
//! batch (≤ 100) of the selected lists' members. A label seen nowhere is
//! refused (exit 2) when it is a near miss of one seen (`did you mean`), or
//! when every member was looked at; otherwise the run goes on, and its end
//! still reports a label nothing carried.
//!
//! Invariant: no `PUT sync`, no database write, no file or folder.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::api::{ApiClient, BATCH_LIMIT};
use crate::pipeline::error::MirrorError;
use crate::pipeline::lists;
use crate::pipeline::membership::{self, Members};
use crate::report::Reporter;
use crate::settings::{Quality, Settings};
use crate::store::Store;

/// Refuses a `--quality` label that no media carries (see the module).
pub async fn check_quality(
    settings: &Settings,
    reporter: Arc<dyn Reporter>,
) -> Result<(), MirrorError> {
    let Quality::Labels(asked) = &settings.mirror.quality else {
        return Ok(());
    };
    let store = Store::open_existing(&settings.db)?;
    let mut seen = match &store {
        Some(store) => store.labels()?,
        None => BTreeSet::new(),
    };
    if asked.iter().all(|label| seen.contains(label)) {
        return Ok(());
    }
    let api = ApiClient::new(settings.api_config()?, reporter.clone())?;
    let (sample, everything) = sample_members(&api, settings, store.as_ref(), reporter).await?;
    if !sample.is_empty() {
        match api.media_batch(&sample).await {
            Ok(batch) => {
                for item in batch.items {
                    seen.extend(item.media.into_keys());
                }
            }
            Err(error) if error.is_auth() => return Err(error.into()),
            // The run itself will meet it, and say so.
            Err(_) => return Ok(()),
        }
    }
    refusal(asked, &seen, everything).map_or(Ok(()), Err)
}

/// Up to one batch of the selected lists' members, and whether that is
/// all of them.
async fn sample_members(
    api: &ApiClient,
    settings: &Settings,
    store: Option<&Store>,
    reporter: Arc<dyn Reporter>,
) -> Result<(Vec<String>, bool), MirrorError> {
    let selected = lists::read(api, &settings.mirror.lists, store, reporter.as_ref())
        .await?
        .lists;
    let mut sample = BTreeSet::new();
    let mut everything = true;
    for list in &selected {
        let Members::Read { members, .. } =
            membership::read(api, reporter.as_ref(), &list.list_id).await?
        else {
            everything = false;
            continue;
        };
        for member in members {
            if sample.len() == BATCH_LIMIT {
                everything &= sample.contains(&member.media_id);
            } else {
                sample.insert(member.media_id);
            }
        }
    }
    Ok((sample.into_iter().collect(), everything))
}

/// The refusal of `asked` when `seen` shows a label missing from it is a
/// mistake: close to one seen, or seen nowhere among every member.
pub(crate) fn refusal(
    asked: &[String],
    seen: &BTreeSet<String>,
    everything: bool,
) -> Option<MirrorError> {
    let missing: Vec<String> = asked
        .iter()
        .filter(|label| !seen.contains(*label))
        .cloned()
        .collect();
    if missing.is_empty() || seen.is_empty() {
        return None;
    }
    let suggestion = missing.iter().find_map(|label| closest(label, seen));
    (suggestion.is_some() || everything).then(|| MirrorError::UnknownLabels {
        missing,
        seen: seen.iter().cloned().collect(),
        suggestion,
    })
}

/// The seen label nearest `label` (the same but for case, or at most two
/// edits away), if one is that near.
fn closest(label: &str, seen: &BTreeSet<String>) -> Option<String> {
    seen.iter()
        .map(|candidate| {
            let distance = if candidate.eq_ignore_ascii_case(label) {
                0
            } else {
                strsim::levenshtein(candidate, label)
            };
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= 2.min(label.len().saturating_sub(1)))
        .min()
        .map(|(_, candidate)| candidate.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(labels: &[&str]) -> BTreeSet<String> {
        labels.iter().map(|label| (*label).to_owned()).collect()
    }

    fn asked(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|label| (*label).to_owned()).collect()
    }

    #[test]
    fn a_near_miss_is_refused_with_the_label_meant() {
        let seen = set(&["full", "thumb", "preview"]);
        let Some(MirrorError::UnknownLabels {
            missing,
            suggestion,
            ..
        }) = refusal(&asked(&["fulll", "thumb"]), &seen, false)
        else {
            panic!("not refused");
        };
        assert_eq!(missing, ["fulll"]);
        assert_eq!(suggestion.as_deref(), Some("full"));
        assert_eq!(closest("Full", &seen).as_deref(), Some("full"));
    }

    #[test]
    fn a_label_far_from_any_is_refused_only_when_every_member_was_seen() {
        let seen = set(&["full", "thumb"]);
        assert!(refusal(&asked(&["hd720"]), &seen, false).is_none());
        assert!(matches!(
            refusal(&asked(&["hd720"]), &seen, true),
            Some(MirrorError::UnknownLabels {
                suggestion: None,
                ..
            })
        ));
        // Labels seen, or nothing seen at all (an empty vault): no refusal.
        assert!(refusal(&asked(&["full"]), &seen, true).is_none());
        assert!(refusal(&asked(&["fulll"]), &BTreeSet::new(), true).is_none());
    }
}
