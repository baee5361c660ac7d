//! The OFAuth API client: every route the pipeline uses, with the key and
//! connection headers, typed errors that keep the HTTP status, retries of
//! transient failures, and the server's clock as the answers' `Date`
//! headers show it ([`clock`]).
//!
//! Invariants: the API key and connection id are sent only to the API's own
//! origin (redirects to another origin are not followed), and the key is
//! held in a [`SecretString`] so it never shows in a `Debug` dump.

pub mod clock;
pub mod models;

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::redact::{Redacted, scrub};
use crate::report::Reporter;
use clock::ServerClock;
use models::{
    AccessMedia, AccountConnection, ErrorBody, ItemsPage, ListMember, MediaItem, SyncReport,
    VaultList, VaultListPage, VaultStatus, parse_item,
};

/// The batch route takes at most this many ids per call.
pub const BATCH_LIMIT: usize = 100;
/// The Access API's largest page.
const LIST_PAGE_LIMIT: usize = 40;
/// Connections asked for per page of `GET /v2/account/connections`.
const CONNECTION_PAGE_LIMIT: usize = 50;
/// Error bodies are cut to this many bytes before they reach a message.
const BODY_SNIPPET: usize = 512;
/// A guard against a server whose pages never end, beside the checks
/// that every page brings something new (see [`Pager`]).
const MAX_PAGES: usize = 100_000;

/// How the client talks to the API.
#[derive(Clone)]
pub struct ApiConfig {
    pub base_url: Url,
    pub api_key: SecretString,
    /// Sent as `x-connection-id`; empty for an account's client (account
    /// routes such as `GET /v2/account/connections` take the key alone).
    pub connection_id: String,
    /// Attempts per API call (the first one included).
    pub attempts: usize,
    /// First retry delay; doubles with jitter up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
    /// Token bucket for API calls: refill per minute, and burst.
    pub rate_per_minute: u32,
    pub burst: u32,
}

/// The longest pause a `Retry-After` or `X-RateLimit-Reset` can impose.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

/// An API answer with an error status, with what its body said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} {path} answered HTTP {status}{}: {message}", error_type.as_deref().map(|t| format!(" {t}")).unwrap_or_default())]
pub struct HttpFailure {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub error_type: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    pub action_required: Option<String>,
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Status(Box<HttpFailure>),
    #[error("the id {id:?} cannot be addressed in a URL path (`.` and `..` are path syntax)")]
    Unaddressable { id: String },
    #[error("could not reach the API at {url}: {reason}")]
    Transport { url: Redacted, reason: String },
    #[error("{path} kept paging without progress ({reason}); stopped after {pages} pages")]
    Paging {
        path: String,
        reason: String,
        pages: usize,
    },
    #[error(
        "{method} {path} answered HTTP {status} with a body that is not the JSON expected: {snippet:?}"
    )]
    Decode {
        method: Method,
        path: String,
        status: StatusCode,
        snippet: String,
    },
}

impl ApiError {
    /// The API refused the key or the connection (exit code 4). A 401 of
    /// type `RULES_OUTDATED` is OFAuth updating itself: transient, not a refusal.
    pub fn is_auth(&self) -> bool {
        match self {
            ApiError::Status(failure) => {
                matches!(failure.status.as_u16(), 401 | 403)
                    && failure.error_type.as_deref() != Some("RULES_OUTDATED")
            }
            _ => false,
        }
    }

    /// Worth trying again: the network, the server's own trouble, rate
    /// limits, and garbled bodies (a proxy's HTML page, a cut-off answer).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Status(failure) => {
                failure.status.is_server_error()
                    || matches!(failure.status.as_u16(), 408 | 425 | 429)
                    || failure.error_type.as_deref() == Some("RULES_OUTDATED")
            }
            ApiError::Transport { .. } | ApiError::Decode { .. } => true,
            ApiError::Unaddressable { .. } | ApiError::Paging { .. } => false,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status(failure) => Some(failure.status),
            ApiError::Decode { status, .. } => Some(*status),
            ApiError::Transport { .. }
            | ApiError::Unaddressable { .. }
            | ApiError::Paging { .. } => None,
        }
    }

    /// What to tell a person who can act on it.
    pub fn hint(&self) -> Option<String> {
        let ApiError::Status(failure) = self else {
            return matches!(self, ApiError::Transport { .. })
                .then(|| "check the network and `--base-url` (OFAUTH_BASE_URL)".to_owned());
        };
        let HttpFailure {
            status,
            error_type,
            action_required,
            request_id,
            ..
        } = &**failure;
        let request = request_id
            .as_deref()
            .map(|id| format!(" (request id {id})"))
            .unwrap_or_default();
        match (
            status.as_u16(),
            error_type.as_deref(),
            action_required.as_deref(),
        ) {
            (_, Some("SESSION_EXPIRED" | "SESSION_NOT_PROVIDED"), _)
            | (_, _, Some("refresh_session")) => Some(format!(
                "the connection needs re-linking in the OFAuth dashboard, or `--connection` (OFAUTH_CONNECTION_ID) names the wrong one{request}"
            )),
            (401, ..) => Some(format!(
                "check the API key (`--api-key`, OFAUTH_API_KEY or `api_key_file`): it must be current and have the ACCOUNT scope{request}"
            )),
            (403, ..) => Some(format!(
                "the key lacks a permission this route needs (Vault+ needs the ACCOUNT scope, lists need `vault:read`){request}"
            )),
            _ => None,
        }
    }
}

/// Items of a batch answer, and the ones that could not be read.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<MediaItem>,
    /// Items that were not valid JSON objects of the expected shape.
    pub malformed: Vec<String>,
}

/// The OFAuth API client of one run: every call goes through the token
/// bucket (and a whole-client pause after a 429), is retried when the
/// failure is transient, feeds the server's clock from its `Date`, and
/// comes back as a typed [`ApiError`] that keeps the status. The key and
/// connection id travel only to the API's own origin.
pub struct ApiClient {
    http: reqwest::Client,
    config: ApiConfig,
    reporter: Arc<dyn Reporter>,
    /// Paces every call (the Access API documents 60/min with a burst of 90).
    limiter: governor::DefaultDirectRateLimiter,
    /// After a 429, no call leaves before this instant: the whole client
    /// backs off, not only the call that was refused.
    paused_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// The server's clock, learnt from every answer's `Date`.
    clock: ServerClock,
}

impl ApiClient {
    pub fn new(config: ApiConfig, reporter: Arc<dyn Reporter>) -> Result<Self, ApiError> {
        install_crypto_provider();
        let origin = config.base_url.origin();
        let http = reqwest::Client::builder()
            .user_agent(concat!("vault-mirror/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .timeout(config.timeout)
            // The key travels in headers: follow a redirect only within the
            // API's own origin, never to another host.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.url().origin() == origin && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()
            .map_err(|error| ApiError::Transport {
                url: Redacted::new(&config.base_url),
                reason: error.to_string(),
            })?;
        let per_minute = NonZeroU32::new(config.rate_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst).unwrap_or(per_minute);
        let quota = governor::Quota::per_minute(per_minute).allow_burst(burst);
        Ok(Self {
            http,
            config,
            reporter,
            limiter: governor::RateLimiter::direct(quota),
            paused_until: std::sync::Mutex::new(None),
            clock: ServerClock::default(),
        })
    }

    /// Waits out a 429 pause, then for a token of the bucket.
    async fn wait_for_turn(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(until) if until > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(until).await
                }
                _ => break,
            }
        }
        self.limiter.until_ready().await;
    }

    /// Holds every call back for `wait` (capped).
    fn pause(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait.min(RETRY_AFTER_CAP);
        let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.config.base_url
    }

    /// The API's clock: `expiresAt` and the like are instants in its time.
    pub fn clock(&self) -> &ServerClock {
        &self.clock
    }

    /// Every vault list of the connection (Access API, offset paging).
    pub async fn vault_lists(&self) -> Result<Vec<VaultList>, ApiError> {
        self.offset_paged(
            &["v2", "access", "vault", "lists"],
            &[],
            LIST_PAGE_LIMIT,
            |list: &VaultList| list.id.clone(),
            &mut |_| false,
        )
        .await
    }

    /// `GET /v2/account/connections`, every page, of the given `status`
    /// (`active`, …) or all. An account route: the client of an account
    /// (made with an empty connection id) sends only the `apiKey` header.
    pub async fn connections(
        &self,
        status: Option<&str>,
    ) -> Result<Vec<AccountConnection>, ApiError> {
        let query: Vec<(&str, &str)> = status
            .map(|status| ("status", status))
            .into_iter()
            .collect();
        self.offset_paged(
            &["v2", "account", "connections"],
            &query,
            CONNECTION_PAGE_LIMIT,
            |connection: &AccountConnection| connection.id.clone(),
            &mut |_| false,
        )
        .await
    }

    /// The media of vault list `list_id` from the Access API (`GET
    /// /v2/access/vault/lists/{id}/media`, newest first, 40 a page), page
    /// after page until `enough` (given every item so far) says so or the
    /// list ends: one call per 40 media, so a caller that wants a few
    /// stops early.
    pub async fn access_list_media(
        &self,
        list_id: &str,
        enough: &mut (dyn FnMut(&[AccessMedia]) -> bool + Send),
    ) -> Result<Vec<AccessMedia>, ApiError> {
        self.offset_paged(
            &["v2", "access", "vault", "lists", list_id, "media"],
            &[("sortBy", "recent"), ("sortDirection", "desc")],
            LIST_PAGE_LIMIT,
            |media: &AccessMedia| media.id.clone(),
            enough,
        )
        .await
    }

    /// Every item of an offset-paged route (`limit`, `offset`, `hasMore`,
    /// maybe `nextOffset`), each id once, guarded by [`Pager`], until
    /// `enough` says the items so far are. Items that do not parse or carry
    /// no id are left out.
    async fn offset_paged<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        page_limit: usize,
        id_of: fn(&T) -> Option<String>,
        enough: &mut (dyn FnMut(&[T]) -> bool + Send),
    ) -> Result<Vec<T>, ApiError> {
        let mut items: Vec<T> = Vec::new();
        let mut pager = Pager::new(&format!("/{}", segments.join("/")));
        let mut offset: i64 = 0;
        loop {
            let mut url = self.url(segments)?;
            url.query_pairs_mut()
                .extend_pairs(query)
                .append_pair("limit", &page_limit.to_string())
                .append_pair("offset", &offset.to_string());
            let page: VaultListPage = self.call(Method::GET, url, None).await?;
            let count = i64::try_from(page.list.len()).unwrap_or(i64::MAX);
            let mut new = 0;
            for value in page.list {
                if let Ok(item) = parse_item::<T>(&value)
                    && let Some(id) = id_of(&item)
                    && pager.first_sight(id)
                {
                    new += 1;
                    items.push(item);
                }
            }
            let next = page.next_offset.unwrap_or(offset + count);
            // `enough` sees every page, the last one too.
            let enough = enough(&items);
            if !page.has_more || count == 0 || enough {
                break;
            }
            pager.next_page(new, &next.to_string())?;
            if next <= offset {
                return Err(pager.stuck(format!("the next offset {next} is not past {offset}")));
            }
            offset = next;
        }
        Ok(items)
    }

    /// `PUT /v2/vault-plus/lists/{id}/sync`.
    /// Sent with an empty body and `Content-Length: 0`, which some front
    /// ends insist on for a PUT (411 without it).
    pub async fn sync_list(&self, list_id: &str) -> Result<SyncReport, ApiError> {
        let url = self.url(&["v2", "vault-plus", "lists", list_id, "sync"])?;
        self.call(Method::PUT, url, None).await
    }

    /// `GET /v2/vault-plus/lists/{id}/media`, following `nextCursor` if the
    /// server pages (undocumented, so tolerated either way). Members
    /// without an id are counted in the second value.
    pub async fn list_members(&self, list_id: &str) -> Result<(Vec<ListMember>, usize), ApiError> {
        let mut members = Vec::new();
        let mut malformed = 0;
        let mut cursor: Option<String> = None;
        let mut pager = Pager::new(&format!("/v2/vault-plus/lists/{list_id}/media"));
        loop {
            let mut url = self.url(&["v2", "vault-plus", "lists", list_id, "media"])?;
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            let page: ItemsPage<ListMember> = self
                .call_parsed(Method::GET, url, None, ItemsPage::parse)
                .await?;
            let mut new = 0;
            for item in page.items {
                match item {
                    Ok(member) => match member.id() {
                        Some(id) => {
                            if pager.first_sight(id.to_owned()) {
                                new += 1;
                                members.push(member);
                            }
                        }
                        None => malformed += 1,
                    },
                    Err(_) => malformed += 1,
                }
            }
            match page.next_cursor.filter(|next| !next.is_empty()) {
                Some(next) => {
                    pager.next_page(new, &next)?;
                    cursor = Some(next);
                }
                None => break,
            }
        }
        Ok((members, malformed))
    }

    /// `POST /v2/vault-plus/media/batch` for at most [`BATCH_LIMIT`] ids.
    /// Ids that Vault+ does not hold are simply absent from the answer;
    /// items nobody asked for, and repeats, are dropped.
    pub async fn media_batch(&self, ids: &[String]) -> Result<Batch, ApiError> {
        assert!(
            ids.len() <= BATCH_LIMIT,
            "media_batch takes at most {BATCH_LIMIT} ids"
        );
        let url = self.url(&["v2", "vault-plus", "media", "batch"])?;
        let body = serde_json::json!({ "mediaIds": ids });
        let page: ItemsPage<MediaItem> = self
            .call_parsed(Method::POST, url, Some(body), ItemsPage::parse)
            .await?;
        let mut batch = Batch::default();
        let mut items = Vec::new();
        for item in page.items {
            match item {
                Ok(item) if item.id.is_some() => items.push(item),
                Ok(_) => batch.malformed.push("an item without an id".to_owned()),
                Err(reason) => batch.malformed.push(reason),
            }
        }
        batch.items = keep_asked(ids, items);
        Ok(batch)
    }

    /// `GET /v2/vault-plus/media/{id}`.
    pub async fn media(&self, media_id: &str) -> Result<MediaItem, ApiError> {
        let url = self.url(&["v2", "vault-plus", "media", media_id])?;
        self.call(Method::GET, url, None).await
    }

    /// `GET /v2/vault-plus/status`.
    pub async fn status(&self) -> Result<VaultStatus, ApiError> {
        let url = self.url(&["v2", "vault-plus", "status"])?;
        self.call(Method::GET, url, None).await
    }

    /// The base URL with `segments` appended, each percent-encoded, so an
    /// id can never change the route. URLs cannot carry a `.` or `..`
    /// segment (parsers fold them away), so such ids are refused.
    fn url(&self, segments: &[&str]) -> Result<Url, ApiError> {
        if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            return Err(ApiError::Unaddressable {
                id: (*bad).to_owned(),
            });
        }
        let mut url = self.config.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        Ok(url)
    }

    /// One API call with retries of transient failures.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        self.call_parsed(method, url, body, |bytes| serde_json::from_slice(bytes))
            .await
    }

    /// [`ApiClient::call`], the answer read by `parse`.
    async fn call_parsed<T>(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        parse: fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<T, ApiError> {
        let attempts = self.config.attempts.max(1);
        let mut tries_left = attempts - 1;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.config.base_delay)
            .with_max_delay(self.config.max_delay)
            .with_max_times(attempts - 1);
        (|| self.call_once(method.clone(), url.clone(), body.as_ref(), parse))
            .retry(backoff)
            .when(ApiError::is_transient)
            .adjust(|error, delay| match error {
                // Honour the server's own word on when to come back, capped.
                ApiError::Status(failure) => match failure.retry_after {
                    Some(wait) => {
                        Some(wait.min(self.config.max_delay.max(Duration::from_secs(60))))
                    }
                    None => delay,
                },
                _ => delay,
            })
            .notify(|error, delay| {
                tries_left = tries_left.saturating_sub(1);
                self.reporter.on_retry(
                    &format!("{method} {}", url.path()),
                    tries_left + 1,
                    &format!("{error} (waiting {:.1}s)", delay.as_secs_f64()),
                );
            })
            .await
    }

    async fn call_once<T>(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        parse: fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<T, ApiError> {
        let path = url.path().to_owned();
        self.wait_for_turn().await;
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header("apiKey", self.config.api_key.expose_secret())
            .header(header::ACCEPT, "application/json");
        // An account's client (no connection) sends the key alone.
        if !self.config.connection_id.is_empty() {
            request = request.header("x-connection-id", &self.config.connection_id);
        }
        match body {
            Some(body) => request = request.json(body),
            // A write without a body still says so: some front ends answer
            // 411 Length Required to a PUT without `Content-Length`.
            None if method != Method::GET => {
                request = request.header(header::CONTENT_LENGTH, "0");
            }
            None => {}
        }
        let transport = |error: reqwest::Error| ApiError::Transport {
            url: Redacted::new(&url),
            reason: scrub(&error_chain(&error.without_url())),
        };
        let sent_at = crate::now_ms();
        let response = request.send().await.map_err(transport)?;
        self.clock
            .observe(response.headers(), sent_at, crate::now_ms());
        let status = response.status();
        let retry_after = retry_after(response.headers(), self.clock.now_ms());
        let bytes = response.bytes().await.map_err(transport)?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Without a word from the server, pause at least the base delay.
            self.pause(retry_after.unwrap_or(self.config.base_delay));
        }
        if !status.is_success() {
            let parsed: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = parsed
                .error
                .or(parsed.message)
                .unwrap_or_else(|| snippet(&bytes));
            return Err(ApiError::Status(Box::new(HttpFailure {
                method,
                path,
                status,
                error_type: parsed.error_type.or(parsed.code),
                message,
                request_id: parsed.request_id,
                action_required: parsed.action_required,
                retry_after,
            })));
        }
        parse(&bytes).map_err(|_| ApiError::Decode {
            method,
            path,
            status,
            snippet: snippet(&bytes),
        })
    }
}

/// Keeps the items that answer ids we asked for, each id once: extra or
/// repeated items from a misbehaving server are dropped.
fn keep_asked(asked: &[String], items: Vec<MediaItem>) -> Vec<MediaItem> {
    let asked: HashSet<&str> = asked.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| {
            item.id
                .as_deref()
                .is_some_and(|id| asked.contains(id) && seen.insert(id.to_owned()))
        })
        .collect()
}

/// The guard of a paged read: every page must bring an item not seen
/// before, and no cursor (or offset) may come back, so a server that
/// repeats itself stops the read with [`ApiError::Paging`] at once
/// instead of paging for hours (and a read stopped short is an error,
/// never taken for the whole list).
struct Pager {
    path: String,
    ids: std::collections::HashSet<String>,
    cursors: std::collections::HashSet<String>,
    pages: usize,
}

impl Pager {
    fn new(path: &str) -> Self {
        Pager {
            path: path.to_owned(),
            ids: std::collections::HashSet::new(),
            cursors: std::collections::HashSet::new(),
            pages: 0,
        }
    }

    /// Whether `id` is new to this read.
    fn first_sight(&mut self, id: String) -> bool {
        self.ids.insert(id)
    }

    /// A page brought `new` unseen items and points on to `next`: may the
    /// read go on?
    fn next_page(&mut self, new: usize, next: &str) -> Result<(), ApiError> {
        self.pages += 1;
        if new == 0 {
            return Err(self.stuck("a page brought no item not seen before".to_owned()));
        }
        if !self.cursors.insert(next.to_owned()) {
            return Err(self.stuck(format!(
                "the page after this one, {next:?}, was read before"
            )));
        }
        if self.pages >= MAX_PAGES {
            return Err(self.stuck(format!("more than {MAX_PAGES} pages")));
        }
        Ok(())
    }

    fn stuck(&self, reason: String) -> ApiError {
        ApiError::Paging {
            path: self.path.clone(),
            reason,
            pages: self.pages,
        }
    }
}

/// `Retry-After` (seconds or a date), else `X-RateLimit-Reset` (delta
/// seconds, or epoch seconds when it is larger than a day). Dates and
/// epochs are the server's: they are counted from `server_now_ms`, the
/// server's time (see [`ServerClock`]), so a server whose clock is off
/// neither holds us back for minutes nor lets us hammer it.
pub fn retry_after(headers: &header::HeaderMap, server_now_ms: i64) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(value) = text("retry-after") {
        if let Ok(seconds) = value.trim().parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Some(date) = clock::parse_date(value) {
            let wait = u64::try_from(date.saturating_sub(server_now_ms)).unwrap_or(0);
            return Some(Duration::from_millis(wait));
        }
    }
    let reset: f64 = text("x-ratelimit-reset")?.trim().parse().ok()?;
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    const DAY: f64 = 86_400.0;
    let now = server_now_ms as f64 / 1000.0;
    let seconds = if reset > DAY { reset - now } else { reset };
    Some(Duration::from_secs_f64(seconds.clamp(0.0, DAY)))
}

/// The first bytes of a body, as text, for an error message.
pub fn snippet(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(BODY_SNIPPET)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > BODY_SNIPPET {
        text.push('…');
    }
    text
}

/// An error and its sources on one line (reqwest hides the cause otherwise).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// reqwest is built without a default TLS crypto provider (ring builds much
/// faster than aws-lc); install ring once per process.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asked_ids_once() {
        let item = |id: &str| MediaItem {
            id: Some(id.into()),
            ..MediaItem::default()
        };
        let kept = keep_asked(
            &["1".into(), "2".into()],
            vec![item("1"), item("3"), item("1"), item("2")],
        );
        let ids: Vec<_> = kept.iter().map(|i| i.id.clone().unwrap()).collect();
        assert_eq!(ids, ["1", "2"]);
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_rate_limit_reset() {
        let now = crate::now_ms();
        let mut headers = header::HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));

        let mut headers = header::HeaderMap::new();
        headers.insert("x-ratelimit-reset", "3".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));

        let mut headers = header::HeaderMap::new();
        let epoch = now / 1000 + 5;
        headers.insert("x-ratelimit-reset", epoch.to_string().parse().unwrap());
        let wait = retry_after(&headers, now).unwrap();
        assert!(
            wait <= Duration::from_secs(6) && wait >= Duration::from_secs(3),
            "{wait:?}"
        );

        let mut headers = header::HeaderMap::new();
        headers.insert(
            "retry-after",
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&header::HeaderMap::new(), now), None);
    }

    #[test]
    fn retry_after_dates_count_from_the_servers_clock() {
        // 2026-01-01 00:00:00 UTC on the server; this machine's clock is
        // ten minutes off either way, which must not matter.
        let server_now = 1_767_225_600_000;
        let mut reset = header::HeaderMap::new();
        reset.insert("x-ratelimit-reset", "1767225605".parse().unwrap());
        let mut date = header::HeaderMap::new();
        date.insert(
            "retry-after",
            "Thu, 01 Jan 2026 00:00:05 GMT".parse().unwrap(),
        );
        let mut rfc3339 = header::HeaderMap::new();
        rfc3339.insert("retry-after", "2026-01-01T00:00:05Z".parse().unwrap());
        for headers in [reset, date, rfc3339] {
            assert_eq!(
                retry_after(&headers, server_now),
                Some(Duration::from_secs(5)),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn auth_and_transient_classification() {
        let status = |code: u16, kind: Option<&str>| {
            ApiError::Status(Box::new(HttpFailure {
                method: Method::GET,
                path: "/".into(),
                status: StatusCode::from_u16(code).unwrap(),
                error_type: kind.map(str::to_owned),
                message: String::new(),
                request_id: None,
                action_required: None,
                retry_after: None,
            }))
        };
        assert!(status(401, Some("UNAUTHORIZED")).is_auth());
        assert!(status(403, None).is_auth());
        assert!(!status(401, Some("RULES_OUTDATED")).is_auth());
        assert!(status(401, Some("RULES_OUTDATED")).is_transient());
        assert!(status(503, None).is_transient());
        assert!(status(429, None).is_transient());
        assert!(!status(404, None).is_transient());
    }
}
