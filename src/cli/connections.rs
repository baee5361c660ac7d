//! Which connections a `mirror` run covers, and in which layout.
//!
//! - One `--connection` (or `OFAUTH_CONNECTION_ID`, or `connection =` in
//!   the config file): today's layout, the archive at `<out>` itself.
//! - Several `--connection`s, the config file's `[[connections]]` tables
//!   (when no `--connection` is given), `--all-connections` (every
//!   connection `GET /v2/account/connections?status=active` lists), or any
//!   of these with `--shard K/N`: the agency layout, each connection a
//!   complete archive at `<out>/<safe id>/` ([`Settings::for_connection`]).
//!
//! The layout follows the form of the choice, not the count, so a shard
//! that happens to keep one connection still writes `<out>/<id>/`.

use std::sync::Arc;

use vault_mirror::api::ApiClient;
use vault_mirror::pipeline::MirrorError;
use vault_mirror::settings::{Settings, SettingsError};

use super::args::{GlobalArgs, MirrorArgs};
use super::failure::Failure;
use super::{progress, settings as cli_settings};

/// A connection to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub id: String,
    /// The creator's username, when the account's listing said it.
    pub username: Option<String>,
}

impl Chosen {
    fn named(id: &str) -> Self {
        Chosen {
            id: id.to_owned(),
            username: None,
        }
    }
}

/// The connections named by `--connection` (each once) and by the config
/// file's `[[connections]]` tables.
fn named(global: &GlobalArgs, settings: &Settings) -> Result<(Vec<String>, Vec<String>), Failure> {
    let file = cli_settings::config_file(global, &settings.archive)?;
    let from_file = file.map(|file| file.connections()).unwrap_or_default();
    let mut flagged: Vec<String> = Vec::new();
    for id in global.connection.iter().map(|id| id.trim()) {
        if !id.is_empty() && !flagged.iter().any(|known| known == id) {
            flagged.push(id.to_owned());
        }
    }
    Ok((flagged, from_file))
}

/// Whether the run covers many connections (each in `<out>/<id>/`) rather
/// than the one of today's layout.
fn is_many(global: &GlobalArgs, flagged: &[String], from_file: &[String]) -> bool {
    global.all_connections
        || global.shard.is_some()
        || flagged.len() > 1
        || (flagged.is_empty() && !from_file.is_empty())
}

/// Whether `mirror` with these flags and settings covers many connections
/// (no API call: `select` then says which).
pub fn covers_many(global: &GlobalArgs, settings: &Settings) -> Result<bool, Failure> {
    let (flagged, from_file) = named(global, settings)?;
    Ok(is_many(global, &flagged, &from_file))
}

/// What a `mirror` run covers.
#[derive(Debug)]
pub enum Selection {
    /// The one connection of `Settings`, in the archive at `<out>`.
    One,
    /// These connections, each in `<out>/<safe id>/` (maybe none: a shard
    /// may hold nothing).
    Many(Vec<Chosen>),
}

/// Works out the connections (asking the API for `--all-connections`).
pub async fn select(global: &GlobalArgs, settings: &Settings) -> Result<Selection, Failure> {
    let (flagged, from_file) = named(global, settings)?;
    if !is_many(global, &flagged, &from_file) {
        return Ok(Selection::One);
    }
    if global.db.is_some() {
        return Err(Failure::usage(
            anyhow::anyhow!("--db names one database, but this run mirrors several connections"),
        )
        .hint("each connection keeps its database in its own archive, <out>/<connection id>/.vault-mirror/; leave out --db"));
    }
    let mut chosen: Vec<Chosen> = if global.all_connections {
        active_connections(settings).await?
    } else if !flagged.is_empty() {
        flagged.iter().map(|id| Chosen::named(id)).collect()
    } else if !from_file.is_empty() {
        from_file.iter().map(|id| Chosen::named(id)).collect()
    } else if let Some(id) = &settings.connection_id {
        vec![Chosen::named(id)]
    } else {
        return Err(SettingsError::MissingConnection.into());
    };
    if let Some(shard) = global.shard {
        chosen.retain(|connection| shard.keeps(&connection.id));
    }
    Ok(Selection::Many(chosen))
}

/// Every active connection of the account. A connection the listing
/// shows in another state (a server that ignores the filter) is left
/// out, with a note: it needs re-linking before it can be mirrored.
pub async fn active_connections(settings: &Settings) -> Result<Vec<Chosen>, Failure> {
    let reporter = Arc::new(progress::messages_for(settings.output));
    let client = ApiClient::new(settings.account_api_config()?, reporter.clone())
        .map_err(MirrorError::from)?;
    let listed = client
        .connections(Some("active"))
        .await
        .map_err(MirrorError::from)?;
    let mut chosen = Vec::new();
    for connection in listed {
        let Some(id) = connection.id else { continue };
        let status = connection.status.unwrap_or_default();
        if !status.is_empty() && status != "active" {
            reporter.line(&format!(
                "note: connection {id} is listed as {status}: left out (re-link it in the OFAuth dashboard)"
            ));
            continue;
        }
        let user = connection.user_data.unwrap_or_default();
        chosen.push(Chosen {
            id,
            username: user.username.or(user.name),
        });
    }
    Ok(chosen)
}

/// Connection `id`'s settings: the run's, moved into `<out>/<safe id>/`,
/// with its `[[connections]]` table over the file's values and the
/// command line's mirror options over both (flag > table > file).
pub fn settings_for(
    global: &GlobalArgs,
    mirror: &MirrorArgs,
    base: &Settings,
    id: &str,
) -> Result<Settings, Failure> {
    let mut settings = base.for_connection(id)?;
    if let Some(file) = cli_settings::config_file(global, &base.archive)? {
        file.apply_connection(id, &mut settings)
            .map_err(SettingsError::from)?;
    }
    cli_settings::apply_mirror(&mut settings, mirror)?;
    Ok(settings)
}

/// One connection in today's layout, named by `--connection` (or the
/// environment, or the file): its `[[connections]]` table, if the file has
/// one, applies as it would among many (flag > table > file).
pub fn apply_own_table(
    global: &GlobalArgs,
    mirror: &MirrorArgs,
    settings: &mut Settings,
) -> Result<(), Failure> {
    let Some(id) = settings.connection_id.clone() else {
        return Ok(());
    };
    if let Some(file) = cli_settings::config_file(global, &settings.archive)? {
        file.apply_connection(&id, settings)
            .map_err(SettingsError::from)?;
        cli_settings::apply_mirror(settings, mirror)?;
    }
    Ok(())
}
