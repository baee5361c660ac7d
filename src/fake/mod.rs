//! A fake Vault+ server on loopback, for integration tests and the `demo`
//! command. It owns the in-memory [`Vault`] it serves, the per-server key that
//! signs its media URLs, the switchable [`Faults`] and the [`Stats`] counters.
//!
//! Invariants: it binds 127.0.0.1 only, never panics on client input (bad
//! input gets the API's error body), and stops when its [`FakeServer`] is
//! dropped. The API half lives in `routes`, the media host in `media_host`,
//! the sample data in `sample`.

mod bench_data;
mod connections;
mod media_host;
mod routes;
mod sample;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use url::Url;

pub use bench_data::{BenchScale, write_files};
pub use connections::{FakeConnection, Tenant, sample_account};

/// How a [`FakeServer`] behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub api_key: String,
    pub connection_id: String,
    /// Lifetime of signed media URLs.
    pub url_ttl: Duration,
    pub faults: Faults,
    /// Where signed URLs point. None: this server's own `/media` route.
    /// Some: `<media_base>/<id>/<label>.<ext>?expires=..&sig=..`, for a
    /// static file server (the benchmark's nginx) that serves the files
    /// [`bench_data::write_files`] wrote and ignores the query string.
    pub media_base: Option<Url>,
    /// The account's other connections, each with a vault of its own
    /// (the server's own vault is `connection_id`'s). All of them are
    /// listed by `GET /v2/account/connections`.
    pub more_connections: Vec<FakeConnection>,
}

impl Default for FakeOptions {
    fn default() -> FakeOptions {
        FakeOptions {
            api_key: "demo-key".to_owned(),
            connection_id: "conn_demo".to_owned(),
            url_ttl: Duration::from_secs(600),
            faults: Faults::default(),
            media_base: None,
            more_connections: Vec::new(),
        }
    }
}

/// Switchable misbehaviour. Default: none. Ratios are fractions (0.0–1.0)
/// of requests, drawn from a fixed-seed generator so a run is repeatable.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Cap, in bytes per second, on each media response body. None (or 0) =
    /// full speed.
    pub bandwidth_per_transfer: Option<u64>,
    /// When true, the media host ignores `Range` and always answers 200 with
    /// the whole body.
    pub ignore_range: bool,
    /// Lifetime of URLs signed from now on (instead of `FakeOptions::url_ttl`).
    pub url_ttl: Option<Duration>,
    /// 429 bursts on the API.
    pub rate_limit: Option<RateLimitFault>,
    /// API calls answered 503.
    pub api_server_errors: f64,
    /// API calls answered 200 with an HTML page (a proxy's) instead of JSON.
    pub api_html: f64,
    /// API calls answered 200 with JSON cut off mid-way.
    pub api_truncated: f64,
    /// Batch answers that also carry every item twice, an item nobody
    /// asked for (with a path-like id) and malformed items.
    pub batch_garbage: bool,
    /// Media requests answered 503.
    pub media_server_errors: f64,
    /// Media requests refused as if their signature had expired (403, as
    /// an object store answers), whatever the URL's real lifetime.
    pub refused_urls: f64,
    /// Media requests whose `Host` is not this name are redirected (307) to
    /// the same path and query on it (e.g. `localhost` for a server at
    /// 127.0.0.1): a redirect to another host, on loopback.
    pub media_redirect_host: Option<String>,
    /// Media bodies cut short: the connection closes part-way.
    pub cut_bodies: f64,
    /// Media connections reset before the first body byte.
    pub resets: f64,
    /// Variants whose first serve has 1 KiB too many bytes (and says so in
    /// Content-Length).
    pub wrong_size: f64,
    /// Variants whose first serve carries `Content-Type: text/html`.
    pub wrong_type: f64,
    /// `pending`/`storing` variants become `stored` this long after the
    /// server started (checked on each API call).
    pub pending_for: Option<Duration>,
    /// Paging that never ends: the lists route answers every offset with
    /// the first page and `hasMore: true`; the members route answers with
    /// a `nextCursor` (`c1`, `c2`, … then `c1` again) and the same items.
    pub endless_pages: bool,
    /// The lists route (Access API) answers 503 every time: the list names
    /// cannot be read, so `--list` ids go on unchecked.
    pub lists_unavailable: bool,
    /// How far the server's clock is ahead of this machine's, in ms
    /// (negative: behind). Its `Date` headers, `expiresAt` values and
    /// signature checks all keep that clock, as a real API's would.
    pub clock_skew_ms: i64,
    /// Answers carry a `Date` no client can read: as good as none (hyper
    /// adds a `Date` to any answer without one, so none cannot be sent).
    pub garbled_date: bool,
}

/// After every `every` API calls, the next `burst` calls get 429.
#[derive(Debug, Clone, Default)]
pub struct RateLimitFault {
    pub every: u64,
    pub burst: u64,
    /// Seconds for `Retry-After`; None sends no such header.
    pub retry_after: Option<u64>,
    /// Seconds for `X-RateLimit-Reset` (a delta); None sends no such header.
    pub reset_after: Option<u64>,
}

/// The data the fake serves. Tests mutate it while the server runs.
#[derive(Debug, Clone, Default)]
pub struct Vault {
    pub lists: Vec<FakeList>,
    pub media: BTreeMap<String, FakeMedia>,
}

#[derive(Debug, Clone)]
pub struct FakeList {
    pub id: String,
    pub name: String,
    /// Media ids, in list order.
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FakeMedia {
    pub id: String,
    /// `image`, `video` or `audio`.
    pub media_type: String,
    pub duration: Option<f64>,
    /// By label (`full`, `thumb`, …).
    pub variants: BTreeMap<String, FakeVariant>,
}

#[derive(Debug, Clone)]
pub struct FakeVariant {
    /// "stored", "pending", "storing", "removed", "edge_only", or anything.
    pub status: String,
    /// Declared in the API answer.
    pub content_type: String,
    /// `sizeBytes` in the API answer; None = `body.len()`.
    pub declared_size: Option<i64>,
    /// Content-Type header the media host sends; None = `content_type`.
    pub served_content_type: Option<String>,
    /// What the media host serves.
    pub body: bytes::Bytes,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms, None unless stored.
    pub stored_at: Option<i64>,
}

/// Counters, so tests can assert how a client used the server.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// All authenticated API calls answered.
    pub api_calls: u64,
    /// `GET /v2/access/vault/lists` pages.
    pub list_calls: u64,
    pub sync_calls: u64,
    /// `GET /v2/vault-plus/lists/{id}/media`.
    pub member_calls: u64,
    pub batch_calls: u64,
    /// Total ids asked for in batch calls.
    pub batch_ids: u64,
    /// Media-host GETs.
    pub media_requests: u64,
    /// Body bytes written by the media host.
    pub media_bytes_served: u64,
    /// Media GETs whose `Range` header was honoured (206).
    pub range_requests: u64,
    /// Media GETs refused for an expired or invalid signature.
    pub expired_hits: u64,
    /// `GET /v2/account/connections` pages.
    pub connection_calls: u64,
    /// Media GETs that carried an `apiKey` or `x-connection-id` header. Must
    /// stay 0: secrets must never reach the media host.
    pub media_requests_with_api_key: u64,
    /// API calls refused with 401.
    pub unauthorized: u64,
    /// Faults served: 429s, 5xx (API and media), HTML answers, cut bodies,
    /// resets, wrong sizes and wrong types.
    pub rate_limited: u64,
    pub server_errors: u64,
    pub html_answers: u64,
    pub cut_bodies: u64,
    pub resets: u64,
    pub wrong_sizes: u64,
    pub wrong_types: u64,
    // Where a counter above lumps faults together, or none counts a fault,
    // these show each switched-on fault struck.
    /// Of `server_errors`, those of the media host.
    pub media_server_errors: u64,
    /// Of `html_answers`, the JSON answers cut off mid-way.
    pub truncated_answers: u64,
    /// Of `expired_hits`, URLs refused as expired that were not.
    pub refused_urls: u64,
    /// Batch answers padded with repeats, an item nobody asked for and
    /// malformed ones.
    pub garbage_batches: u64,
    /// List and member pages that promised more only because paging never ends.
    pub endless_pages: u64,
    /// List pages answered 503 because the lists route is down.
    pub lists_unavailable: u64,
    /// Media requests redirected to another host.
    pub media_redirects: u64,
    /// Media GETs with a `Range` the host ignored (200, the whole body).
    pub ignored_ranges: u64,
    /// Media bodies sent at a capped rate.
    pub throttled_bodies: u64,
    /// Variants the clock turned from pending or storing to stored.
    pub stored_late: u64,
    /// Answers whose `Date` keeps a skewed clock.
    pub skewed_dates: u64,
    /// Answers whose `Date` no client can read.
    pub garbled_dates: u64,
}

/// One API call as the fake saw it, in arrival order, so a test can check
/// how long a client waited after being told to.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// When the call reached the API (after its key was accepted).
    pub arrived: std::time::Instant,
    /// `Some` when it was answered 429: when, and what the answer said.
    pub rate_limited: Option<RateLimitAnswer>,
}

/// A 429 the fake sent: when, and its `Retry-After` and
/// `X-RateLimit-Reset` (delta seconds), if any.
#[derive(Debug, Clone)]
pub struct RateLimitAnswer {
    pub answered: std::time::Instant,
    pub retry_after: Option<u64>,
    pub reset_after: Option<u64>,
}

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

/// State the handlers share.
struct Shared {
    api_key: String,
    /// The server's own connection (the first of `tenants`).
    primary: Arc<Tenant>,
    /// Every connection of the account, in the order they are listed.
    tenants: Vec<Arc<Tenant>>,
    url_ttl: Duration,
    media_url: Url,
    media_base: Option<Url>,
    signing_key: Vec<u8>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    /// Every authorized API call, for [`FakeServer::api_requests`].
    api_requests: Mutex<Vec<ApiRequest>>,
    next_request_id: AtomicU64,
    started: std::time::Instant,
    /// State of the fixed-seed generator behind fault ratios.
    dice: AtomicU64,
    /// API calls seen, for rate-limit bursts.
    api_sequence: AtomicU64,
    /// Variants (id, label) already served corrupted once.
    corrupted: Mutex<BTreeSet<(String, String)>>,
}

impl Shared {
    fn count(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut lock(&self.stats));
    }

    /// True with probability `ratio`.
    fn roll(&self, ratio: f64) -> bool {
        ratio > 0.0 && self.fraction() < ratio
    }

    /// A fraction in 0..1 (splitmix64 over a shared counter: a fixed seed,
    /// so a run with the same faults misbehaves the same way).
    fn fraction(&self) -> f64 {
        let mut z = self
            .dice
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether to serve this variant corrupted: at most once per variant.
    fn corrupt_once(&self, ratio: f64, media_id: &str, label: &str) -> bool {
        self.roll(ratio) && lock(&self.corrupted).insert((media_id.to_owned(), label.to_owned()))
    }

    fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// The server's time (epoch ms): this machine's, skewed by the fault.
    fn now_ms(&self) -> i64 {
        crate::now_ms().saturating_add(lock(&self.faults).clock_skew_ms)
    }

    fn request_id(&self) -> String {
        format!(
            "req_{}",
            self.next_request_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Connection `id`, if the account has it.
    fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.iter().find(|tenant| tenant.id == id)
    }

    /// The signature's MAC. The server's own connection signs as it always
    /// did; another connection's URLs also name and sign its id, so a URL
    /// of one connection never serves another's media.
    fn mac(&self, tenant: &str, media_id: &str, label: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.signing_key)
            .expect("HMAC accepts keys of any length");
        if !tenant.is_empty() {
            mac.update(format!("{tenant}\n").as_bytes());
        }
        mac.update(format!("{media_id}\n{label}\n{expires}").as_bytes());
        mac
    }

    /// The connection a signed URL's `conn` names (none: the server's own).
    fn url_owner(&self, conn: &str) -> Option<&Arc<Tenant>> {
        if conn.is_empty() {
            Some(&self.primary)
        } else {
            self.tenant(conn)
        }
    }

    /// The `conn` a signed URL of `tenant` carries (none for the server's own).
    fn url_tenant<'a>(&self, tenant: &'a Tenant) -> &'a str {
        if tenant.primary { "" } else { &tenant.id }
    }

    fn signed_url(
        &self,
        tenant: &Tenant,
        media_id: &str,
        label: &str,
        content_type: &str,
        expires: i64,
    ) -> String {
        let conn = self.url_tenant(tenant);
        let mac = self.mac(conn, media_id, label, expires);
        let signature = hex::encode(mac.finalize().into_bytes());
        if let Some(base) = &self.media_base {
            let mut url = base.clone();
            // path_segments_mut encodes each segment, so no id escapes the base.
            if let Ok(mut segments) = url.path_segments_mut() {
                segments
                    .pop_if_empty()
                    .push(media_id)
                    .push(&bench_data::file_name(label, content_type));
            }
            url.query_pairs_mut()
                .append_pair("expires", &expires.to_string())
                .append_pair("sig", &signature);
            return url.into();
        }
        let mut url = self.media_url.clone();
        // query_pairs_mut encodes any id safely, even one holding '&' or '/'.
        if !conn.is_empty() {
            url.query_pairs_mut().append_pair("conn", conn);
        }
        url.query_pairs_mut()
            .append_pair("id", media_id)
            .append_pair("label", label)
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &signature);
        url.into()
    }

    fn signature_is_valid(
        &self,
        tenant: &str,
        media_id: &str,
        label: &str,
        expires: i64,
        signature: &str,
    ) -> bool {
        hex::decode(signature).is_ok_and(|bytes| {
            self.mac(tenant, media_id, label, expires)
                .verify_slice(&bytes)
                .is_ok()
        })
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

/// A poisoned lock only means a test's closure panicked; the data is still
/// usable, and the server must keep answering.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
