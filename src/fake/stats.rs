//! The fake's counters ([`Stats`]) of how a client used it.

/// Counters, so tests can assert how a client used the server.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// All authenticated API calls answered.
    pub api_calls: u64,
    /// `GET /v2/access/vault/lists` pages.
    pub list_calls: u64,
    pub sync_calls: u64,
    /// `GET /v2/access/vault/lists/{id}/media` pages.
    pub access_media_calls: u64,
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
