//! The JSON half of the fake: the Access lists and list media routes, the
//! Vault+ routes, the
//! `apiKey` / `x-connection-id` check in front of them (which picks the
//! connection, [`Tenant`], whose vault answers), the account's
//! `GET /v2/account/connections` (the key alone), and the error body
//! `{"error","type","requestId"}` every refusal uses. Each answer is built
//! from the vault as it is at that moment; signed URLs expire `url_ttl` after
//! the answer.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use serde_json::{Value, json};

use super::connections::Tenant;
use super::shared::{Shared, lock};
use super::stats::{ApiRequest, RateLimitAnswer};
use super::vault::{AccessFacts, FakeList, FakeMedia, Vault};
use crate::api::models::parse_media_date;

type Answer = Result<Response, ApiError>;

/// How many API calls the fake remembers for [`super::FakeServer::api_requests`].
const API_LOG_LIMIT: usize = 100_000;

/// A refusal in the API's error shape, `{"error","type","requestId"}`; kept
/// apart from `Response` because it is small enough to travel in `Err`.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "type": self.kind, "requestId": self.request_id});
        (self.status, Json(body)).into_response()
    }
}

/// Timestamps of list records; fixed, as the mirror only stores them.
const LIST_RECORD_TIME: &str = "2026-01-01T00:00:00.000Z";
const BATCH_LIMIT: usize = 100;

/// The authenticated API routes.
pub(super) fn api(shared: &Arc<Shared>) -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/v2/access/vault/lists", get(lists))
        .route(
            "/v2/access/vault/lists/{list_id}/media",
            get(access_list_media),
        )
        .route("/v2/vault-plus/lists/{list_id}/sync", put(sync))
        .route("/v2/vault-plus/lists/{list_id}/media", get(list_media))
        // Static `batch` wins over `{media_id}` in the router, as upstream.
        .route("/v2/vault-plus/media/batch", post(batch))
        .route("/v2/vault-plus/media/{media_id}", get(media_item))
        .route("/v2/vault-plus/status", get(status))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(shared),
            authorize,
        ))
        // Account routes take the key alone, no connection.
        .merge(
            axum::Router::new()
                .route("/v2/account/connections", get(connections))
                .route_layer(middleware::from_fn_with_state(
                    Arc::clone(shared),
                    authorize_account,
                )),
        )
}

pub(super) async fn route_not_found(State(shared): State<Arc<Shared>>) -> Response {
    api_error(
        &shared,
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
        "Route not found",
    )
    .into_response()
}

fn api_error(shared: &Shared, status: StatusCode, kind: &'static str, message: &str) -> ApiError {
    ApiError {
        status,
        kind,
        message: message.to_owned(),
        request_id: shared.request_id(),
    }
}

fn bad_request(shared: &Shared, message: &str) -> ApiError {
    api_error(shared, StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

fn resource_not_found(shared: &Shared, what: &str) -> ApiError {
    let message = format!("{what} not found");
    api_error(
        shared,
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        &message,
    )
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let tenant = match refusal(&shared, request.headers()) {
        Ok(tenant) => tenant,
        Err((kind, message)) => {
            shared.count(|stats| stats.unauthorized += 1);
            return api_error(&shared, StatusCode::UNAUTHORIZED, kind, message).into_response();
        }
    };
    request.extensions_mut().insert(tenant);
    answer(&shared, request, next).await
}

/// In front of the account routes: the key alone.
async fn authorize_account(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if request
        .headers()
        .get("apikey")
        .map(|value| value.as_bytes())
        != Some(shared.api_key.as_bytes())
    {
        shared.count(|stats| stats.unauthorized += 1);
        let message = "Invalid or missing API key";
        return api_error(&shared, StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
            .into_response();
    }
    answer(&shared, request, next).await
}

/// An authorized call: a switched-on fault, or the route's answer.
async fn answer(shared: &Shared, request: Request, next: Next) -> Response {
    if let Some(misbehaviour) = api_fault(shared) {
        return misbehaviour;
    }
    let response = next.run(request).await;
    shared.count(|stats| stats.api_calls += 1);
    response
}

/// A switched-on fault for this API call, if one strikes; also lets
/// pending variants become stored when their time has come.
fn api_fault(shared: &Shared) -> Option<Response> {
    let faults = shared.faults();
    if let Some(delay) = faults.pending_for
        && shared.started.elapsed() >= delay
    {
        let now = shared.now_ms();
        for tenant in &shared.tenants {
            for media in lock(&tenant.vault).media.values_mut() {
                for variant in media.variants.values_mut() {
                    if matches!(variant.status.as_str(), "pending" | "storing") {
                        variant.status = "stored".to_owned();
                        variant.stored_at = Some(now);
                        shared.count(|stats| stats.stored_late += 1);
                    }
                }
            }
        }
    }
    let sequence = shared.api_sequence.fetch_add(1, Ordering::Relaxed);
    let limited = faults
        .rate_limit
        .filter(|limit| limit.burst > 0 && sequence % (limit.every + limit.burst) >= limit.every);
    // Stamped under the log's lock, so the log's order is arrival order.
    let mut requests = lock(&shared.api_requests);
    requests.push(ApiRequest {
        arrived: std::time::Instant::now(),
        rate_limited: limited.as_ref().map(|limit| RateLimitAnswer {
            answered: std::time::Instant::now(),
            retry_after: limit.retry_after,
            reset_after: limit.reset_after,
        }),
    });
    // Bounded for a long `fake-server` or `demo` run: a test looks at far fewer.
    if requests.len() > API_LOG_LIMIT {
        requests.drain(..API_LOG_LIMIT / 2);
    }
    drop(requests);
    if let Some(limit) = limited {
        shared.count(|stats| stats.rate_limited += 1);
        let mut response = api_error(
            shared,
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
            "Rate limit exceeded",
        )
        .into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = limit.retry_after {
            headers.insert("retry-after", seconds.into());
        }
        if let Some(seconds) = limit.reset_after {
            headers.insert("x-ratelimit-reset", seconds.into());
        }
        headers.insert("x-ratelimit-remaining", 0.into());
        return Some(response);
    }
    if shared.roll(faults.api_server_errors) {
        shared.count(|stats| stats.server_errors += 1);
        let error = api_error(
            shared,
            StatusCode::SERVICE_UNAVAILABLE,
            "NETWORK_ERROR",
            "Upstream network error",
        );
        return Some(error.into_response());
    }
    if shared.roll(faults.api_truncated) {
        shared.count(|stats| {
            stats.html_answers += 1;
            stats.truncated_answers += 1;
        });
        let cut = r#"{"items":[{"id":"1","media":{"full":{"sizeB"#;
        return Some(([(header::CONTENT_TYPE, "application/json")], cut).into_response());
    }
    if shared.roll(faults.api_html) {
        shared.count(|stats| stats.html_answers += 1);
        let page = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";
        return Some(([(header::CONTENT_TYPE, "text/html")], page).into_response());
    }
    None
}

/// The connection a request may use, or why it may not: header names are
/// case-insensitive, values must match exactly.
fn refusal(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Arc<Tenant>, (&'static str, &'static str)> {
    let header = |name: &str| headers.get(name).map(|value| value.as_bytes());
    if header("apikey") != Some(shared.api_key.as_bytes()) {
        return Err(("UNAUTHORIZED", "Invalid or missing API key"));
    }
    let tenant = header("x-connection-id")
        .and_then(|id| std::str::from_utf8(id).ok())
        .and_then(|id| shared.tenant(id));
    match tenant {
        None => Err((
            "SESSION_NOT_PROVIDED",
            "Connection not found or has no session",
        )),
        Some(tenant) if tenant.needs_relinking() => Err((
            "SESSION_EXPIRED",
            "The connection's session has expired: re-link it",
        )),
        Some(tenant) => Ok(tenant.clone()),
    }
}

fn path_text(
    shared: &Shared,
    path: Result<Path<String>, PathRejection>,
) -> Result<String, ApiError> {
    path.map(|Path(text)| text)
        .map_err(|rejection| bad_request(shared, &rejection.body_text()))
}

fn number_param(
    shared: &Shared,
    query: &HashMap<String, String>,
    name: &str,
    default: u64,
    allowed: RangeInclusive<u64>,
) -> Result<usize, ApiError> {
    let number = match query.get(name) {
        None => default,
        Some(text) => match text.parse::<u64>() {
            Ok(number) if allowed.contains(&number) => number,
            _ => {
                let (low, high) = (allowed.start(), allowed.end());
                let message = format!("`{name}` must be an integer from {low} to {high}");
                return Err(bad_request(shared, &message));
            }
        },
    };
    Ok(usize::try_from(number).unwrap_or(usize::MAX))
}

async fn lists(
    State(shared): State<Arc<Shared>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query.map_err(|rejection| bad_request(&shared, &rejection.body_text()))?;
    let limit = number_param(&shared, &query, "limit", 24, 1..=40)?;
    let mut offset = number_param(&shared, &query, "offset", 0, 0..=u64::MAX)?;
    shared.count(|stats| stats.list_calls += 1);
    if shared.faults().lists_unavailable {
        shared.count(|stats| stats.lists_unavailable += 1);
        return Err(api_error(
            &shared,
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "the Access API is unavailable",
        ));
    }
    let endless = shared.faults().endless_pages;
    if endless {
        shared.count(|stats| stats.endless_pages += 1);
        offset = 0;
    }
    let vault = lock(&tenant.vault);
    let page: Vec<Value> = vault
        .lists
        .iter()
        .skip(offset)
        .take(limit)
        .map(|list| {
            // Access list ids are integers; keep odd test ids as strings.
            let id = list
                .id
                .parse::<u64>()
                .map_or_else(|_| json!(list.id), |id| json!(id));
            let has_media = !list.members.is_empty();
            json!({"id": id, "type": "custom", "name": list.name, "hasMedia": has_media,
                   "canUpdate": true, "canDelete": true, "medias": []})
        })
        .collect();
    let count_type = |kind: &str| {
        vault
            .media
            .values()
            .filter(|media| media.media_type == kind)
            .count()
    };
    let has_more = endless || offset.saturating_add(page.len()) < vault.lists.len();
    let body = json!({
        "list": page,
        "all": {"videosCount": count_type("video"), "photosCount": count_type("image"),
                "gifsCount": 0, "audiosCount": 0, "medias": []},
        "hasMore": has_more, "canCreateVaultLists": true, "order": "desc", "sort": "recent",
    });
    Ok(Json(body).into_response())
}

fn members(shared: &Shared, vault: &Vault, list_id: &str) -> Result<Vec<String>, ApiError> {
    let list = vault.lists.iter().find(|list| list.id == list_id);
    list.map(|list| list.members.clone())
        .ok_or_else(|| resource_not_found(shared, "List"))
}

/// `GET /v2/access/vault/lists/{id}/media?limit=&offset=&sortBy=&sortDirection=`:
/// the list's media the Access API knows (those with [`FakeMedia::access`]),
/// newest first unless `sortDirection=asc`, 40 at most a page.
async fn access_list_media(
    State(shared): State<Arc<Shared>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    list_id: Result<Path<String>, PathRejection>,
) -> Answer {
    let list_id = path_text(&shared, list_id)?;
    let Query(query) = query.map_err(|rejection| bad_request(&shared, &rejection.body_text()))?;
    let limit = number_param(&shared, &query, "limit", 24, 1..=40)?;
    let offset = number_param(&shared, &query, "offset", 0, 0..=u64::MAX)?;
    shared.count(|stats| stats.access_media_calls += 1);
    let vault = lock(&tenant.vault);
    let list = vault
        .lists
        .iter()
        .find(|list| list.id == list_id)
        .ok_or_else(|| resource_not_found(&shared, "List"))?;
    let mut known: Vec<(&FakeMedia, &AccessFacts)> = list
        .members
        .iter()
        .filter_map(|id| vault.media.get(id))
        .filter_map(|media| Some((media, media.access.as_ref()?)))
        .collect();
    let created = |facts: &AccessFacts| parse_media_date(&facts.created_at).unwrap_or(0);
    known.sort_by_key(|(media, facts)| (std::cmp::Reverse(created(facts)), media.id.clone()));
    if query.get("sortDirection").map(String::as_str) == Some("asc") {
        known.reverse();
    }
    let page: Vec<Value> = known
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(media, facts)| access_media_json(list, media, facts))
        .collect();
    let has_more = offset.saturating_add(page.len()) < known.len();
    Ok(Json(json!({"list": page, "hasMore": has_more})).into_response())
}

/// A `VaultMedia` of the Access API: ids are integers there, types are
/// OnlyFans' (`photo`, not `image`).
fn access_media_json(list: &FakeList, media: &FakeMedia, facts: &AccessFacts) -> Value {
    let number = |id: &str| id.parse::<u64>().map_or_else(|_| json!(id), |id| json!(id));
    let kind = match media.media_type.as_str() {
        "image" => "photo",
        other => other,
    };
    let url = format!("https://media.ofauth.com/fake/{}/full", media.id);
    json!({"id": number(&media.id), "type": kind, "convertedToVideo": false, "canView": true,
           "hasError": false, "isReady": true, "createdAt": facts.created_at,
           "duration": media.duration, "releaseForms": [], "hasCustomPreview": false,
           "counters": {"likesCount": 0, "tipsSumm": 0},
           "lists": [{"id": number(&list.id), "type": "custom", "name": list.name}],
           "files": {"full": {"url": url, "width": facts.width, "height": facts.height,
                              "sources": []}}})
}

async fn sync(
    State(shared): State<Arc<Shared>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    headers: HeaderMap,
    list_id: Result<Path<String>, PathRejection>,
) -> Answer {
    // As some front ends do: a PUT must say how long its body is.
    if !headers.contains_key(axum::http::header::CONTENT_LENGTH) {
        return Err(api_error(
            &shared,
            StatusCode::LENGTH_REQUIRED,
            "LENGTH_REQUIRED",
            "a PUT must carry Content-Length",
        ));
    }
    let list_id = path_text(&shared, list_id)?;
    shared.count(|stats| stats.sync_calls += 1);
    let current: BTreeSet<String> = members(&shared, &lock(&tenant.vault), &list_id)?
        .into_iter()
        .collect();
    // Upstream reconciles against the previous sync's baseline; the first
    // sync only sets it, so everything counts as added.
    let previous = lock(&tenant.baselines)
        .insert(list_id.clone(), current.clone())
        .unwrap_or_default();
    let body = json!({
        "synced": true, "listId": list_id, "seen": current.len(),
        "addedItems": current.difference(&previous).count(), "updatedItems": 0,
        "removedItems": previous.difference(&current).count(),
        "unchangedItems": current.intersection(&previous).count(), "adoptedItems": 0,
    });
    Ok(Json(body).into_response())
}

async fn list_media(
    State(shared): State<Arc<Shared>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    list_id: Result<Path<String>, PathRejection>,
) -> Answer {
    let list_id = path_text(&shared, list_id)?;
    shared.count(|stats| stats.member_calls += 1);
    let vault = lock(&tenant.vault);
    let now = shared.now_ms();
    let members = members(&shared, &vault, &list_id)?;
    let items: Vec<Value> = members
        .iter()
        .map(|media_id| member_json(&shared, &tenant, media_id, vault.media.get(media_id), now))
        .collect();
    if shared.faults().endless_pages {
        // c1 → c2 → c3 → c1 …, every page the same items.
        let Query(query) =
            query.map_err(|rejection| bad_request(&shared, &rejection.body_text()))?;
        let at: u64 = query
            .get("cursor")
            .and_then(|cursor| cursor.strip_prefix('c'))
            .and_then(|number| number.parse().ok())
            .unwrap_or(0);
        let next = format!("c{}", at % 3 + 1);
        shared.count(|stats| stats.endless_pages += 1);
        return Ok(Json(json!({"items": items, "nextCursor": next})).into_response());
    }
    Ok(Json(json!({"items": items})).into_response())
}

/// A `ListMediaItem`; a member the vault lacks is listed as pending, the
/// way upstream lists what it has not stored yet.
fn member_json(
    shared: &Shared,
    tenant: &Tenant,
    media_id: &str,
    media: Option<&FakeMedia>,
    now: i64,
) -> Value {
    let unstored = media.and_then(|media| {
        let mut variants = media.variants.values();
        variants.find(|variant| variant.status != "stored")
    });
    let status = match (media, unstored) {
        (None, _) => "pending",
        (Some(_), None) => "stored",
        (Some(_), Some(variant)) => variant.status.as_str(),
    };
    let variants = media.map_or(json!({}), |media| variants_json(shared, tenant, media, now));
    let time = LIST_RECORD_TIME;
    json!({"mediaId": media_id, "ofMediaId": media_id, "status": status,
           "type": media.map(|media| &media.media_type),
           "duration": media.and_then(|media| media.duration),
           "firstAddedAt": time, "lastAddedAt": time, "lastSeenAt": time, "lastSyncedAt": time,
           "media": variants})
}

async fn batch(
    State(shared): State<Arc<Shared>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    body: Bytes,
) -> Answer {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct BatchRequest {
        media_ids: Vec<String>,
    }
    let request: BatchRequest = serde_json::from_slice(&body)
        .map_err(|error| bad_request(&shared, &format!("Invalid body: {error}")))?;
    if request.media_ids.len() > BATCH_LIMIT {
        return Err(bad_request(&shared, "`mediaIds` takes at most 100 ids"));
    }
    shared.count(|stats| {
        stats.batch_calls += 1;
        stats.batch_ids += request.media_ids.len() as u64;
    });
    let vault = lock(&tenant.vault);
    let now = shared.now_ms();
    let mut answered = HashSet::new();
    let items: Vec<Value> = request
        .media_ids
        .iter()
        .filter(|media_id| answered.insert(media_id.as_str()))
        .filter_map(|media_id| vault.media.get(media_id))
        .map(|media| media_json(&shared, &tenant, media, now))
        .collect();
    if shared.faults().batch_garbage {
        shared.count(|stats| stats.garbage_batches += 1);
        let mut garbage = items.clone();
        garbage.extend(items);
        garbage.push(json!({
            "id": "../../not-asked",
            "media": {"full": {"status": "stored", "sizeBytes": 3, "contentType": "image/png",
                                "url": "http://127.0.0.1:9/x"}}
        }));
        garbage.extend([
            json!("oops"),
            json!({"id": {"nested": 1}}),
            json!({"media": 5}),
            json!(null),
        ]);
        return Ok(Json(json!({"items": garbage})).into_response());
    }
    Ok(Json(json!({"items": items})).into_response())
}

async fn media_item(
    State(shared): State<Arc<Shared>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    media_id: Result<Path<String>, PathRejection>,
) -> Answer {
    let media_id = path_text(&shared, media_id)?;
    let vault = lock(&tenant.vault);
    let media = vault
        .media
        .get(&media_id)
        .ok_or_else(|| resource_not_found(&shared, "Media"))?;
    Ok(Json(media_json(&shared, &tenant, media, shared.now_ms())).into_response())
}

async fn status(Extension(tenant): Extension<Arc<Tenant>>) -> Response {
    let vault = lock(&tenant.vault);
    let variants = vault
        .media
        .values()
        .flat_map(|media| media.variants.values());
    let stored: Vec<_> = variants
        .clone()
        .filter(|variant| variant.status == "stored")
        .collect();
    let stored_bytes: usize = stored.iter().map(|variant| variant.body.len()).sum();
    let body = json!({
        "connectionId": tenant.id,
        "storedCount": stored.len(),
        "pendingCount": variants.count() - stored.len(),
        "totalSizeBytes": stored_bytes,
    });
    Json(body).into_response()
}

fn media_json(shared: &Shared, tenant: &Tenant, media: &FakeMedia, now: i64) -> Value {
    json!({"id": media.id, "type": media.media_type, "duration": media.duration,
           "media": variants_json(shared, tenant, media, now)})
}

fn variants_json(shared: &Shared, tenant: &Tenant, media: &FakeMedia, now: i64) -> Value {
    let ttl = shared.faults().url_ttl.unwrap_or(shared.url_ttl);
    let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let expires = now.saturating_add(ttl);
    let variants = media.variants.iter().map(|(label, variant)| {
        let size = variant
            .declared_size
            .unwrap_or(i64::try_from(variant.body.len()).unwrap_or(i64::MAX));
        // `watermark` is not in the docs: it proves clients tolerate
        // unknown fields. Unstored variants get a URL too, as a trap.
        let url = shared.signed_url(tenant, &media.id, label, &variant.content_type, expires);
        let body = json!({
            "status": variant.status, "quality": label, "sizeBytes": size,
            "contentType": variant.content_type, "accessCount": 0,
            "createdAt": variant.created_at, "expiresAt": expires, "storedAt": variant.stored_at,
            "lastAccessedAt": variant.created_at, "url": url, "watermark": {"applied": false},
        });
        (label.clone(), body)
    });
    Value::Object(variants.collect())
}

/// `GET /v2/account/connections?status=&limit=&offset=`.
async fn connections(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| bad_request(&shared, &rejection.body_text()))?;
    let limit = number_param(&shared, &query, "limit", 10, 1..=100)?;
    let offset = number_param(&shared, &query, "offset", 0, 0..=u64::MAX)?;
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
