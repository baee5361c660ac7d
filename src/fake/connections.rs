//! The fake's account of many connections, as an agency holds them: each
//! connection ([`Tenant`]) has a vault of its own, and
//! `GET /v2/account/connections` (in `routes`) lists them with offset
//! paging (`limit`, `offset`, `hasMore`) and the `status` filter, asked
//! with the `apiKey` header alone.
//!
//! A connection may be listed as `expired` (its session ended), or listed
//! as `active` but answer every call 401 `SESSION_EXPIRED` (it lapsed
//! since the listing): both are how a connection that needs re-linking
//! looks to a mirror.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use super::{FakeOptions, Vault};

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
    pub(super) username: String,
    pub(super) status: String,
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

/// A sample account: the vault of the server's own connection, and the
/// options that add `connections - 1` other connections of
/// [`FakeConnection::sample_agency`] (and, when `troubled`, two more that
/// need re-linking: one listed as expired, one refused).
pub fn sample_account(
    media: usize,
    lists: usize,
    connections: usize,
    troubled: bool,
) -> (Vault, FakeOptions) {
    if connections <= 1 && !troubled {
        return (Vault::sample(media, lists), FakeOptions::default());
    }
    let extra = if troubled { 2 } else { 0 };
    let mut agency = FakeConnection::sample_agency(connections.max(1) + extra, media, lists);
    if troubled && let [.., expired, refused] = agency.as_mut_slice() {
        expired.status = "expired".to_owned();
        refused.session_expired = true;
    }
    let first = agency.remove(0);
    let options = FakeOptions {
        connection_id: first.id,
        more_connections: agency,
        ..FakeOptions::default()
    };
    (first.vault, options)
}
