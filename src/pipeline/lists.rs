//! Stage 1, lists: which lists this run mirrors — those named by `--list`,
//! or every list of the connection (Access API, offset paging).

use crate::api::ApiError;
use crate::pipeline::{Context, MirrorError};
use crate::report::Stage;
use crate::store::ListRecord;

pub async fn select(context: &Context) -> Result<Vec<ListRecord>, MirrorError> {
    let wanted = &context.settings.mirror.lists;
    context
        .reporter
        .on_stage(Stage::Lists, "reading the connection's vault lists");
    let (remote, listing_read) = match context.api.vault_lists().await {
        Ok(remote) => (remote, true),
        // With `--list` the ids are known: a listing we may not read (a key
        // without `vault:read`) costs only the names.
        Err(error) if !wanted.is_empty() && !error.is_auth() => {
            context.reporter.on_note(&format!(
                "could not read list names ({error}); using the ids given"
            ));
            (Vec::new(), false)
        }
        Err(error) => return Err(error.into()),
    };
    let records: Vec<ListRecord> = remote
        .into_iter()
        .filter_map(|list| {
            Some(ListRecord {
                list_id: list.id?,
                name: list.name.unwrap_or_default(),
                list_type: list.list_type,
            })
        })
        .collect();
    let now = crate::now_ms();
    if wanted.is_empty() {
        context
            .store
            .record_lists(&records, !records.is_empty(), now)?;
        return Ok(records);
    }
    // An id the listing does not hold is a typo or another connection's
    // list: stop before anything is recorded (a row for it would stay
    // behind as a list "gone" upstream).
    let missing: Vec<String> = wanted
        .iter()
        .filter(|list_id| !records.iter().any(|record| &&record.list_id == list_id))
        .cloned()
        .collect();
    if listing_read && !missing.is_empty() {
        return Err(MirrorError::UnknownLists {
            missing,
            known: records
                .iter()
                .map(|record| record.list_id.clone())
                .collect(),
        });
    }
    let mut selected = Vec::new();
    for list_id in wanted {
        let record = match records.iter().find(|record| &record.list_id == list_id) {
            Some(record) => record.clone(),
            None => ListRecord {
                list_id: list_id.clone(),
                name: context.store.list_name(list_id)?.unwrap_or_default(),
                list_type: None,
            },
        };
        if !selected
            .iter()
            .any(|known: &ListRecord| known.list_id == record.list_id)
        {
            selected.push(record);
        }
    }
    context.store.record_lists(&selected, false, now)?;
    Ok(selected)
}

/// Whether an error for one list should stop the whole run.
pub fn is_fatal(error: &ApiError) -> bool {
    error.is_auth()
}
