//! The fake's account of many connections, as an agency holds them: each
//! connection ([`Tenant`]) has a vault of its own, and
//! `GET /v2/account/connections` lists them with offset paging
//! (`limit`, `offset`, `hasMore`) and the `status` filter, asked with the
//! `apiKey` header alone.
//!
//! A connection may be listed as `expired` (its session ended), or listed
//! as `active` but answer every call 401 `SESSION_EXPIRED` (it lapsed
//! since the listing): both are how a connection that needs re-linking
//! looks to a mirror.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, Vault};

/// One connection of the fake's account, as a test or `demo` describes it.
#[derive(Debug, Clone)]
pub struct FakeConnection {
    pub id: String,
    /// `userData.username` in the listing.
    pub username: String,
    /// `active` or `expired` (listed as such; an expired one is refused).
    pub status: String,
    /// Listed as `active`, but every call is answered 401 `SESSION_EXPIRED`.
    pub session_expired: bool,
    pub vault: Vault,
}

impl FakeConnection {
    /// An active connection serving `vault`.
    pub fn new(id: &str, vault: Vault) -> Self {
        FakeConnection {
            id: id.to_owned(),
            username: format!("creator_{}", id.trim_start_matches("conn_")),
            status: "active".to_owned(),
            session_expired: false,
            vault,
        }
    }

    /// `count` active connections (`conn_01`, `conn_02`, …) of `media`
    /// sample media in `lists` lists each, every media id distinct across
    /// connections (so a file in the wrong archive shows).
    pub fn sample_agency(count: usize, media: usize, lists: usize) -> Vec<FakeConnection> {
        (1..=count)
            .map(|number| {
                let vault = Vault::sample_from(number * media, media, lists);
                FakeConnection::new(&format!("conn_{number:02}"), vault)
            })
            .collect()
    }

    /// This connection, listed as expired.
    pub fn expired(mut self) -> Self {
        self.status = "expired".to_owned();
        self
    }

    /// This connection, listed as active but refused (401 `SESSION_EXPIRED`).
    pub fn refused(mut self) -> Self {
        self.session_expired = true;
        self
    }
}

/// A connection as the server holds it while it runs.
pub struct Tenant {
    pub id: String,
    username: String,
    status: String,
    session_expired: bool,
    /// The server's own connection: its signed URLs look as they always did.
    pub(super) primary: bool,
    pub(super) vault: Mutex<Vault>,
    /// Per list, the members at its last sync, to answer sync plausibly.
    pub(super) baselines: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl Tenant {
    pub(super) fn new(connection: FakeConnection, primary: bool) -> Self {
        Tenant {
            id: connection.id,
            username: connection.username,
            status: connection.status,
            session_expired: connection.session_expired,
            primary,
            vault: Mutex::new(connection.vault),
            baselines: Mutex::new(HashMap::new()),
        }
    }

    /// Whether every call for this connection is refused: it needs
    /// re-linking.
    pub(super) fn needs_relinking(&self) -> bool {
        self.session_expired || self.status != "active"
    }
}

/// `GET /v2/account/connections?status=&limit=&offset=`.
pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, super::routes::ApiError> {
    let Query(query) =
        query.map_err(|rejection| super::routes::bad_request(&shared, &rejection.body_text()))?;
    let limit = super::routes::number_param(&shared, &query, "limit", 10, 1..=100)?;
    let offset = super::routes::number_param(&shared, &query, "offset", 0, 0..=u64::MAX)?;
    shared.count(|stats| stats.connection_calls += 1);
    let wanted = query.get("status").map(String::as_str);
    let matching: Vec<&Arc<Tenant>> = shared
        .tenants
        .iter()
        .filter(|tenant| wanted.is_none_or(|status| tenant.status == status))
        .collect();
    let page: Vec<serde_json::Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|tenant| {
            json!({"id": tenant.id, "status": tenant.status, "imported": false,
                   "permissions": ["vault:read", "vault-plus:read"],
                   "userData": {"username": tenant.username, "name": tenant.username,
                                "avatar": null},
                   "createdAt": "2026-01-01T00:00:00.000Z"})
        })
        .collect();
    let has_more = offset.saturating_add(page.len()) < matching.len();
    Ok(Json(json!({"list": page, "hasMore": has_more})).into_response())
}
