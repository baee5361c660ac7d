//! A fake Vault+ server on loopback, for integration tests and the `demo`
//! command. It owns the in-memory [`Vault`] it serves, the per-server key that
//! signs its media URLs, the switchable [`Faults`] and the [`Stats`] counters.
//!
//! Invariants: it binds 127.0.0.1 only, never panics on client input (bad
//! input gets the API's error body), and stops when its [`FakeServer`] is
//! dropped. The API half lives in `routes`, the media host in `media_host`,
//! the sample data in `sample`. The data model is in `vault`, the options
//! and faults in `options`, the counters in `stats`, and the state the
//! handlers share in `shared`.

mod bench_data;
mod connections;
mod media_host;
mod options;
mod routes;
mod sample;
mod shared;
mod stats;
#[cfg(test)]
mod tests;
mod vault;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use url::Url;

pub use bench_data::{BenchScale, write_files};
pub use connections::{FakeConnection, Tenant};
pub use options::{FakeOptions, Faults, RateLimitFault};
pub use sample::sample_account;
pub use stats::{ApiRequest, RateLimitAnswer, Stats};
pub use vault::{AccessFacts, FakeList, FakeMedia, FakeVariant, Vault};

use shared::{Shared, lock};

/// A running fake; it stops when dropped.
pub struct FakeServer {
    shared: Arc<Shared>,
    base_url: String,
    // Dropping the sender is the stop signal.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime (spawned
    /// task). Stops when dropped.
    pub async fn start(vault: Vault, options: FakeOptions) -> std::io::Result<FakeServer> {
        FakeServer::start_on(vault, options, 0).await
    }

    /// Same as [`FakeServer::start`], on 127.0.0.1:`port` (0 picks a free
    /// one), for the `fake-server` command.
    pub async fn start_on(
        vault: Vault,
        options: FakeOptions,
        port: u16,
    ) -> std::io::Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let (server, app, stop) = FakeServer::prepare(listener.local_addr()?, vault, options)?;
        // Graceful, so idle keep-alive connections close and no answer comes
        // from a server its owner has dropped.
        let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.await;
        });
        tokio::spawn(serving.into_future());
        Ok(server)
    }

    /// Same, on a dedicated thread with its own tokio runtime (for
    /// synchronous tests that run the CLI binary). Stops when dropped.
    pub fn start_in_thread(vault: Vault, options: FakeOptions) -> std::io::Result<FakeServer> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let (mut server, app, stop) = FakeServer::prepare(listener.local_addr()?, vault, options)?;
        // The runtime is built and dropped inside the thread, never in the
        // caller, which may itself be async; `ready` brings failures back.
        let (ready_sender, ready) = std::sync::mpsc::channel();
        let serve = move |ready_sender: std::sync::mpsc::Sender<_>| -> std::io::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let _ = ready_sender.send(Ok(()));
                tokio::select! {
                    _ = axum::serve(listener, app).into_future() => {}
                    _ = stop => {}
                }
                Ok(())
            })
            // Dropping the runtime here cancels connections still open, so
            // a slow transfer never holds up the drop of the server.
        };
        let thread = std::thread::Builder::new()
            .name("fake-vault".to_owned())
            .spawn(move || {
                if let Err(error) = serve(ready_sender.clone()) {
                    let _ = ready_sender.send(Err(error));
                }
            })?;
        let started = ready.recv().map_err(std::io::Error::other)?;
        server.thread = Some(thread);
        started.map(|()| server)
    }

    fn prepare(
        address: SocketAddr,
        vault: Vault,
        options: FakeOptions,
    ) -> std::io::Result<(FakeServer, axum::Router, oneshot::Receiver<()>)> {
        let base_url = format!("http://{address}");
        let media_url = Url::parse(&format!("{base_url}/media"))
            .map_err(|error| std::io::Error::other(format!("media URL: {error}")))?;
        let primary = Arc::new(Tenant::new(
            FakeConnection::new(&options.connection_id, vault),
            true,
        ));
        let mut tenants = vec![primary.clone()];
        for connection in options.more_connections {
            if tenants.iter().all(|tenant| tenant.id != connection.id) {
                tenants.push(Arc::new(Tenant::new(connection, false)));
            }
        }
        let shared = Arc::new(Shared {
            api_key: options.api_key,
            primary,
            tenants,
            url_ttl: options.url_ttl,
            media_url,
            media_base: options.media_base,
            signing_key: random_key(),
            faults: Mutex::new(options.faults),
            stats: Mutex::new(Stats::default()),
            api_requests: Mutex::new(Vec::new()),
            next_request_id: AtomicU64::new(1),
            started: std::time::Instant::now(),
            dice: AtomicU64::new(0x5EED),
            api_sequence: AtomicU64::new(0),
            corrupted: Mutex::new(BTreeSet::new()),
        });
        let app = routes::api(&shared)
            .route("/media", axum::routing::get(media_host::serve))
            .fallback(routes::route_not_found)
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                server_date,
            ))
            .with_state(Arc::clone(&shared));
        let (stop_sender, stop_receiver) = oneshot::channel();
        let server = FakeServer {
            shared,
            base_url,
            stop: Some(stop_sender),
            thread: None,
        };
        Ok((server, app, stop_receiver))
    }

    /// "http://127.0.0.1:PORT", no trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The connection whose vault is the server's own (`with_vault`).
    pub fn connection_id(&self) -> &str {
        &self.shared.primary.id
    }

    /// Every connection of the account, the server's own first.
    pub fn connection_ids(&self) -> Vec<String> {
        self.shared
            .tenants
            .iter()
            .map(|tenant| tenant.id.clone())
            .collect()
    }

    /// Run `change` on the live data under its lock.
    pub fn with_vault<R>(&self, change: impl FnOnce(&mut Vault) -> R) -> R {
        change(&mut lock(&self.shared.primary.vault))
    }

    /// Run `change` on connection `id`'s live data under its lock (`None`:
    /// the account has no such connection).
    pub fn with_connection_vault<R>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Vault) -> R,
    ) -> Option<R> {
        let tenant = self.shared.tenant(id)?;
        Some(change(&mut lock(&tenant.vault)))
    }

    /// Change the faults while running; transfers already under way keep
    /// the faults they started with.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Every stored variant as (signed URL, path relative to the data
    /// directory), for the benchmark's curl and aria2c runs.
    pub fn signed_urls(&self) -> Vec<(String, String)> {
        let now = self.shared.now_ms();
        let ttl = i64::try_from(self.shared.url_ttl.as_millis()).unwrap_or(i64::MAX);
        let expires = now.saturating_add(ttl);
        let vault = lock(&self.shared.primary.vault);
        let stored = vault.media.values().flat_map(|media| {
            media
                .variants
                .iter()
                .filter(|(_, variant)| variant.status == "stored")
                .map(move |(label, variant)| (media, label, variant))
        });
        stored
            .map(|(media, label, variant)| {
                let url = self.shared.signed_url(
                    &self.shared.primary,
                    &media.id,
                    label,
                    &variant.content_type,
                    expires,
                );
                let path = format!(
                    "{}/{}",
                    media.id,
                    bench_data::file_name(label, &variant.content_type)
                );
                (url, path)
            })
            .collect()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Every authorized API call so far, in the order they arrived.
    pub fn api_requests(&self) -> Vec<ApiRequest> {
        lock(&self.shared.api_requests).clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Every answer carries `Date` in the server's own (maybe skewed) clock.
/// hyper adds a `Date` only to answers without one, and from this
/// machine's clock, so the fake writes its own.
async fn server_date(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let faults = shared.faults();
    let date = if faults.garbled_date {
        shared.count(|stats| stats.garbled_dates += 1);
        "sometime".to_owned()
    } else {
        if faults.clock_skew_ms != 0 {
            shared.count(|stats| stats.skewed_dates += 1);
        }
        // httpdate writes years 1970 to 9999 only; a skew beyond is pinned.
        let now = u64::try_from(shared.now_ms().clamp(0, 253_402_300_799_000)).unwrap_or(0);
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_millis(now))
    };
    if let Ok(date) = axum::http::HeaderValue::from_str(&date) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, date);
    }
    response
}

/// A per-server signing key, so URLs from one server never work on another.
/// No random crate is at hand; std's randomly seeded hasher plus the clock is
/// plenty for a loopback fake.
fn random_key() -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::hash::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    let mut seed = hasher.finish().to_le_bytes().to_vec();
    seed.extend_from_slice(&nanos.to_le_bytes());
    Sha256::digest(&seed).to_vec()
}
