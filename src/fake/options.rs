//! How a fake server behaves: its [`FakeOptions`] (key, connections, URL
//! lifetime, media base) and the switchable misbehaviour, [`Faults`] and
//! [`RateLimitFault`].

use std::time::Duration;

use url::Url;

use super::connections::FakeConnection;

/// How a [`FakeServer`](super::FakeServer) behaves.
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
    /// [`bench_data::write_files`](super::bench_data::write_files) wrote and
    /// ignores the query string.
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
