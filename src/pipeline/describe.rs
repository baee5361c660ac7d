//! Stage 7, describe: each media's own date and shape from the Access API
//! (`GET /v2/access/vault/lists/{id}/media`: `createdAt`, the full file's
//! width and height, the duration), asked once in each media's life —
//! dates do not change — so a re-run whose media are all known costs no
//! call.
//!
//! Why here, after the transfers: a page costs one call per 40 media out
//! of the API budget the transfers' re-signing shares, so on a first run
//! the files come first; the finish stage then dates them, and writes the
//! views and sidecars, with what this stage learnt.
//!
//! Invariants: only the lists holding a media never asked about are read,
//! newest first, and a list's reading stops as soon as every such member
//! was seen; each page is recorded as it comes (a stopped run keeps what
//! it learnt); a media the Access API does not list after a whole list was
//! read is marked asked, and keeps the fallback date (when Vault+ cached
//! it, else when it was first seen). A failure here is noted (exit 3) and
//! the media stay unasked, for the next run; only a refused key stops the run.

use std::collections::HashSet;

use serde::Serialize;

use crate::api::models::AccessMedia;
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::pipeline::lists::is_fatal;
use crate::report::Stage;
use crate::store::{Description, ListRecord, StoreError};

/// What the describe stage did (`dates` in the summary).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DatesSummary {
    /// Media never asked about before this run.
    pub asked: usize,
    /// Of those, the media the Access API listed (dated by `createdAt`).
    pub dated: usize,
    /// Of those, the media it did not list (their date is a fallback).
    pub not_listed: usize,
    /// Pages of `GET /v2/access/vault/lists/{id}/media` read.
    pub pages: u64,
}

/// The stage: every selected list with a member never asked about.
pub async fn describe(
    context: &Context,
    selected: &[ListRecord],
    errors: &mut Vec<String>,
) -> Result<DatesSummary, MirrorError> {
    let mut summary = DatesSummary::default();
    for list in selected {
        let wanted: HashSet<String> = context
            .store
            .undescribed_members(&list.list_id)?
            .into_iter()
            .collect();
        if wanted.is_empty() {
            continue;
        }
        context.reporter.on_stage(
            Stage::Dates,
            &format!(
                "reading the dates of {} media of list {}",
                wanted.len(),
                list.list_id
            ),
        );
        summary.asked += wanted.len();
        describe_list(context, &list.list_id, wanted, &mut summary, errors).await?;
    }
    Ok(summary)
}

/// One list: its Access pages until every `wanted` member was seen.
async fn describe_list(
    context: &Context,
    list_id: &str,
    wanted: HashSet<String>,
    summary: &mut DatesSummary,
    errors: &mut Vec<String>,
) -> Result<(), MirrorError> {
    let mut recorded = 0;
    let mut found: HashSet<String> = HashSet::new();
    let mut failure: Option<StoreError> = None;
    let mut pages = 0;
    let read = context
        .api
        .access_list_media(list_id, &mut |items: &[AccessMedia]| {
            pages += 1;
            let page: Vec<Description> = items[recorded..]
                .iter()
                .filter_map(description)
                .filter(|item| wanted.contains(&item.media_id))
                .collect();
            recorded = items.len();
            if let Err(error) = context.store.record_descriptions(&page, crate::now_ms()) {
                failure = Some(error);
                return true;
            }
            found.extend(page.into_iter().map(|item| item.media_id));
            found.len() >= wanted.len()
        })
        .await;
    summary.pages += pages;
    if let Some(error) = failure {
        return Err(error.into());
    }
    summary.dated += found.len();
    match read {
        Ok(_) => {
            // The whole list was read (or all were found): the rest are
            // not listed by the Access API, and will not be asked again.
            let missing: Vec<String> = wanted.difference(&found).cloned().collect();
            summary.not_listed += missing.len();
            context.store.mark_described(&missing, crate::now_ms())?;
            Ok(())
        }
        Err(error) if is_fatal(&error) => Err(error.into()),
        Err(error) => {
            let text = format!(
                "the dates of list {list_id} could not be read ({error}); the next run asks again"
            );
            context.reporter.on_note(&text);
            errors.push(text);
            Ok(())
        }
    }
}

/// What the store keeps of one Access media; `None` without an id.
fn description(media: &AccessMedia) -> Option<Description> {
    let (width, height) = media.dimensions();
    Some(Description {
        media_id: media.id.clone()?,
        taken_at: media.created_at_ms(),
        width,
        height,
        duration: media.duration.filter(|seconds| *seconds > 0.0),
    })
}
