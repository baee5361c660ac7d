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

use super::vault::Vault;

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::api::{ApiClient, ApiConfig};
    use crate::fake::{FakeServer, sample_account};
    use crate::report::SilentReporter;

    /// An account of `healthy` connections (one media, one list each) and,
    /// after them, one listed as expired and one refused.
    async fn account(healthy: usize) -> FakeServer {
        let (vault, options) = sample_account(1, 1, healthy, true);
        FakeServer::start(vault, options).await.unwrap()
    }

    async fn page(server: &FakeServer, query: &str, key: &str) -> (u16, serde_json::Value) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("{}/v2/account/connections{query}", server.base_url());
        let response = reqwest::Client::new()
            .get(url)
            .header("apiKey", key)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn ids(body: &serde_json::Value) -> Vec<&str> {
        body["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|connection| connection["id"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn connections_are_listed_by_offset_with_the_status_filter_and_the_key_alone() {
        let server = account(3).await;
        let key = server.api_key().to_owned();
        let (status, first) = page(&server, "?limit=2&offset=0", &key).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&first), ["conn_01", "conn_02"]);
        assert_eq!(first["hasMore"], true);
        assert_eq!(first["list"][0]["userData"]["username"], "creator_01");
        let (_, last) = page(&server, "?limit=2&offset=4", &key).await;
        assert_eq!(ids(&last), ["conn_05"]);
        assert_eq!(last["hasMore"], false);
        let (_, active) = page(&server, "?status=active&limit=10", &key).await;
        // conn_04 is listed as expired; conn_05 is listed as active (and refused).
        assert_eq!(ids(&active), ["conn_01", "conn_02", "conn_03", "conn_05"]);
        let (_, expired) = page(&server, "?status=expired", &key).await;
        assert_eq!(ids(&expired), ["conn_04"]);
        let (status, refused) = page(&server, "", "wrong").await;
        assert_eq!(
            (status, refused["type"].as_str()),
            (401, Some("UNAUTHORIZED"))
        );
        let (status, _) = page(&server, "?limit=0", &key).await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn the_client_reads_every_page_of_active_connections() {
        let server = account(60).await;
        let config = ApiConfig {
            base_url: url::Url::parse(&server.base_url()).unwrap(),
            api_key: server.api_key().to_owned().into(),
            connection_id: String::new(),
            attempts: 1,
            base_delay: std::time::Duration::from_millis(1),
            max_delay: std::time::Duration::from_millis(1),
            timeout: std::time::Duration::from_secs(30),
            rate_per_minute: 6000,
            burst: 100,
        };
        let client = ApiClient::new(config, Arc::new(SilentReporter)).unwrap();
        let active = client.connections(Some("active")).await.unwrap();
        assert_eq!(active.len(), 61, "60 healthy and the refused one");
        assert!(active.iter().all(|c| c.status.as_deref() == Some("active")));
        assert_eq!(server.stats().connection_calls, 2, "two pages of 50");
        // Connection routes refuse a client without a connection, as upstream.
        let refused = client.vault_lists().await.unwrap_err();
        assert!(refused.is_auth(), "{refused}");
    }
}
