//! `lists`: the connection's vault lists (from the API), each with what
//! the mirror holds of it (from the database, if there is one). Lists the
//! database knows that the connection no longer has are shown too.

use std::sync::Arc;

use serde::Serialize;
use vault_mirror::api::ApiClient;
use vault_mirror::pipeline::MirrorError;
use vault_mirror::settings::Settings;
use vault_mirror::store::{ListFigures, Store};

use super::failure::Failure;
use super::progress;
use super::table::{Align, Table, shown};

#[derive(Serialize)]
struct ListRow {
    id: String,
    name: String,
    #[serde(rename = "type")]
    list_type: Option<String>,
    /// The connection has this list now.
    remote: bool,
    /// What the mirror holds of it (absent if it was never mirrored).
    local: Option<ListFigures>,
}

pub async fn run(settings: &Settings) -> Result<i32, Failure> {
    let display = Arc::new(progress::messages_for(settings.output));
    let api = ApiClient::new(settings.api_config()?, display).map_err(MirrorError::from)?;
    let remote = api.vault_lists().await.map_err(MirrorError::from)?;
    let local = match Store::open_existing(&settings.db)? {
        Some(store) => store.list_figures()?,
        None => Vec::new(),
    };
    let mut rows: Vec<ListRow> = remote
        .into_iter()
        .filter_map(|list| {
            let id = list.id?;
            Some(ListRow {
                local: local.iter().find(|known| known.id == id).cloned(),
                name: list.name.unwrap_or_default(),
                list_type: list.list_type,
                remote: true,
                id,
            })
        })
        .collect();
    for known in &local {
        if !rows.iter().any(|row| row.id == known.id) {
            rows.push(ListRow {
                id: known.id.clone(),
                name: known.name.clone(),
                list_type: known.list_type.clone(),
                remote: false,
                local: Some(known.clone()),
            });
        }
    }
    if settings.output.json {
        let body = serde_json::json!({ "command": "lists", "lists": rows });
        println!("{body}");
        return Ok(0);
    }
    if rows.is_empty() {
        println!("the connection has no vault lists");
        return Ok(0);
    }
    let mut table = Table::new(&[
        ("LIST", Align::Left),
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("MEMBERS", Align::Right),
        ("VERIFIED", Align::Right),
        ("BYTES", Align::Right),
        ("LAST SYNC", Align::Left),
    ]);
    for row in &rows {
        let mut name = shown(&row.name, 32);
        if !row.remote {
            name.push_str(" (no longer in the connection)");
        }
        let (members, verified, bytes, synced) = match &row.local {
            Some(local) => (
                local.members.to_string(),
                local.verified.to_string(),
                vault_mirror::human_bytes(local.bytes),
                local
                    .last_synced_at
                    .map(vault_mirror::utc_time)
                    .unwrap_or_else(|| "never".into()),
            ),
            None => ("-".into(), "-".into(), "-".into(), "not mirrored".into()),
        };
        table.row(vec![
            shown(&row.id, 24),
            name,
            shown(row.list_type.as_deref().unwrap_or("-"), 16),
            members,
            verified,
            bytes,
            synced,
        ]);
    }
    print!("{}", table.render());
    Ok(0)
}
