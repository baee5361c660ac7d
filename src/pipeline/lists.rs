//! Stage 1, lists: which lists this run mirrors — those named by `--list`,
//! or every list of the connection (Access API, offset paging).
//!
//! A read half ([`read`]: the API, and the database for names only, never
//! written) that `mirror --dry-run` shares, and a record half ([`select`]
//! records what was read).

use crate::api::{ApiClient, ApiError};
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::report::{Reporter, Stage};
use crate::store::{ListRecord, Store};

/// What the lists stage read.
pub struct Selection {
    /// The lists to mirror, each once, in the order asked.
    pub lists: Vec<ListRecord>,
    /// Whether these are every list of the connection, as its own listing
    /// gave them (then lists missing from it are gone upstream).
    pub whole_connection: bool,
}

/// The read half: the connection's listing, and the `--list` ids checked
/// against it. An id the listing does not hold is a typo or another
/// connection's list: an error, before anything is recorded (a row for
/// it would stay behind as a list "gone" upstream). Where the listing
/// cannot be read (a key without `vault:read`), `--list` ids go on with
/// the names `store` knows.
pub async fn read(
    api: &ApiClient,
    wanted: &[String],
    store: Option<&Store>,
    reporter: &dyn Reporter,
) -> Result<Selection, MirrorError> {
    reporter.on_stage(Stage::Lists, "reading the connection's vault lists");
    let (remote, listing_read) = match api.vault_lists().await {
        Ok(remote) => (remote, true),
        // With `--list` the ids are known: a listing we may not read costs
        // only the names.
        Err(error) if !wanted.is_empty() && !error.is_auth() => {
            reporter.on_note(&format!(
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
    if wanted.is_empty() {
        let whole_connection = !records.is_empty();
        return Ok(Selection {
            lists: records,
            whole_connection,
        });
    }
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
    let mut selected: Vec<ListRecord> = Vec::new();
    for list_id in wanted {
        if selected.iter().any(|known| &known.list_id == list_id) {
            continue;
        }
        let record = match records.iter().find(|record| &record.list_id == list_id) {
            Some(record) => record.clone(),
            None => ListRecord {
                list_id: list_id.clone(),
                name: match store {
                    Some(store) => store.list_name(list_id)?.unwrap_or_default(),
                    None => String::new(),
                },
                list_type: None,
            },
        };
        selected.push(record);
    }
    Ok(Selection {
        lists: selected,
        whole_connection: false,
    })
}

/// The stage: [`read`], then the lists recorded (and, when the whole
/// connection was read, the lists it no longer has marked gone).
pub async fn select(context: &Context) -> Result<Vec<ListRecord>, MirrorError> {
    let selection = read(
        &context.api,
        &context.settings.mirror.lists,
        Some(&context.store),
        context.reporter.as_ref(),
    )
    .await?;
    context.store.record_lists(
        &selection.lists,
        selection.whole_connection,
        crate::now_ms(),
    )?;
    Ok(selection.lists)
}

/// Whether an error for one list should stop the whole run.
pub fn is_fatal(error: &ApiError) -> bool {
    error.is_auth()
}
