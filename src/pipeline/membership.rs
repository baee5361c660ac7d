//! Stage 3, membership: `GET /v2/vault-plus/lists/{id}/media` for each
//! list; members are recorded with first and last seen, and members no
//! longer listed are marked gone (never deleted). When a list cannot be
//! read, its last known membership stands.
//!
//! A read half ([`read`]: one list's members from the API) that
//! `mirror --dry-run` shares, and a record half ([`read_members`]).

use crate::api::ApiClient;
use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::pipeline::lists::is_fatal;
use crate::pipeline::outcome::ListSummary;
use crate::report::{Reporter, Stage};
use crate::store::{ListRecord, MediaRecord};

/// What reading one list's members gave.
pub enum Members {
    /// The members, and how many came without a media id.
    Read {
        members: Vec<MediaRecord>,
        malformed: usize,
    },
    /// The list could not be read: why, as a line for the summary (the
    /// last known members stand).
    Unreadable {
        text: String,
        /// Vault+ does not know the list (HTTP 404).
        not_found: bool,
    },
}

/// The read half: `list_id`'s members. A refused key stops the run; any
/// other failure is [`Members::Unreadable`].
pub async fn read(
    api: &ApiClient,
    reporter: &dyn Reporter,
    list_id: &str,
) -> Result<Members, MirrorError> {
    reporter.on_stage(
        Stage::Membership,
        &format!("reading members of list {list_id}"),
    );
    match api.list_members(list_id).await {
        Ok((members, malformed)) => Ok(Members::Read {
            members: members
                .iter()
                .filter_map(|member| {
                    Some(MediaRecord {
                        media_id: member.id()?.to_owned(),
                        media_type: member.media_type.clone(),
                        duration: None,
                    })
                })
                .collect(),
            malformed,
        }),
        Err(error) if is_fatal(&error) => Err(error.into()),
        Err(error) => Ok(Members::Unreadable {
            not_found: error.status() == Some(reqwest::StatusCode::NOT_FOUND),
            text: format!(
                "members of list {list_id} could not be read ({error}); using the last known members"
            ),
        }),
    }
}

/// The stage: each list's members read and recorded.
pub async fn read_members(
    context: &Context,
    selected: &[ListRecord],
    errors: &mut Vec<String>,
) -> Result<Vec<ListSummary>, MirrorError> {
    let mut summaries = Vec::with_capacity(selected.len());
    for list in selected {
        let read = read(&context.api, context.reporter.as_ref(), &list.list_id).await?;
        let (members, gone) = match read {
            Members::Read { members, malformed } => {
                if malformed > 0 {
                    let text = format!(
                        "list {}: {malformed} members without a media id were skipped",
                        list.list_id
                    );
                    context.reporter.on_note(&text);
                    errors.push(text);
                }
                context
                    .store
                    .record_membership(&list.list_id, &members, crate::now_ms())?
            }
            // Only when the listing could not be read do `--list` ids reach
            // this far unchecked: a list Vault+ does not know leaves no row.
            Members::Unreadable {
                not_found: true, ..
            } if context.store.forget_unknown_list(&list.list_id)? => {
                let text = format!("there is no list {} upstream (HTTP 404)", list.list_id);
                context.reporter.on_note(&text);
                errors.push(text);
                continue;
            }
            Members::Unreadable { text, .. } => {
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
