//! Stage 3, membership: `GET /v2/vault-plus/lists/{id}/media` for each
//! list; members are recorded with first and last seen, and members no
//! longer listed are marked gone (never deleted). When a list cannot be
//! read, its last known membership stands.

use crate::pipeline::{Context, ListSummary, MirrorError, lists::is_fatal};
use crate::report::Stage;
use crate::store::{ListRecord, MediaRecord};

pub async fn read_members(
    context: &Context,
    selected: &[ListRecord],
    errors: &mut Vec<String>,
) -> Result<Vec<ListSummary>, MirrorError> {
    let mut summaries = Vec::with_capacity(selected.len());
    for list in selected {
        context.reporter.on_stage(
            Stage::Membership,
            &format!("reading members of list {}", list.list_id),
        );
        let (members, gone) = match context.api.list_members(&list.list_id).await {
            Ok((members, malformed)) => {
                if malformed > 0 {
                    let text = format!(
                        "list {}: {malformed} members without a media id were skipped",
                        list.list_id
                    );
                    context.reporter.on_note(&text);
                    errors.push(text);
                }
                let records: Vec<MediaRecord> = members
                    .iter()
                    .filter_map(|member| {
                        Some(MediaRecord {
                            media_id: member.id()?.to_owned(),
                            media_type: member.media_type.clone(),
                            duration: None,
                        })
                    })
                    .collect();
                context
                    .store
                    .record_membership(&list.list_id, &records, crate::now_ms())?
            }
            Err(error) if is_fatal(&error) => return Err(error.into()),
            // Only when the listing could not be read do `--list` ids reach
            // this far unchecked: a list Vault+ does not know leaves no row.
            Err(error)
                if error.status() == Some(reqwest::StatusCode::NOT_FOUND)
                    && context.store.forget_unknown_list(&list.list_id)? =>
            {
                let text = format!("there is no list {} upstream ({error})", list.list_id);
                context.reporter.on_note(&text);
                errors.push(text);
                continue;
            }
            Err(error) => {
                let text = format!(
                    "members of list {} could not be read ({error}); using the last known members",
                    list.list_id
                );
                context.reporter.on_note(&text);
                errors.push(text);
                let known = context
                    .store
                    .current_members(std::slice::from_ref(&list.list_id))?;
                (known.len(), 0)
            }
        };
        summaries.push(ListSummary {
            id: list.list_id.clone(),
            name: list.name.clone(),
            members,
            gone,
        });
    }
    Ok(summaries)
}
