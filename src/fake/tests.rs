//! Tests of the fake against its own contract, over real loopback HTTP.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{FakeMedia, FakeOptions, FakeServer, FakeVariant, Faults, Vault};
use crate::api::clock::parse_date;

/// reqwest is built without a TLS crypto provider and refuses to build a
/// client until one is installed, even for plain http.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn start(vault: Vault) -> FakeServer {
    FakeServer::start(vault, FakeOptions::default())
        .await
        .unwrap()
}

/// An authorized API call.
async fn api(server: &FakeServer, method: Method, path: &str, body: Value) -> (u16, Value) {
    let url = format!("{}{path}", server.base_url());
    let mut request = client().request(method.clone(), url);
    request = request.header("apiKey", server.api_key());
    request = request.header("x-connection-id", server.connection_id());
    if method == Method::POST {
        request = request.json(&body);
    } else if method == Method::PUT {
        request = request.header("content-length", "0");
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get_json(server: &FakeServer, path: &str) -> (u16, Value) {
    api(server, Method::GET, path, Value::Null).await
}

async fn batch(server: &FakeServer, media_ids: Value) -> (u16, Value) {
    let body = json!({"mediaIds": media_ids});
    api(server, Method::POST, "/v2/vault-plus/media/batch", body).await
}

/// Status and error type of an answer, for one-line asserts.
fn refusal((status, body): &(u16, Value)) -> (u16, &str) {
    (*status, body["type"].as_str().unwrap_or("none"))
}

/// What the media host answered.
struct Fetched {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Fetched {
    fn header(&self, name: &str) -> &str {
        let value = self.headers.get(name).map(|value| value.to_str());
        value.and_then(Result::ok).unwrap_or("")
    }
}

/// A plain GET, as a client of the media host sends it.
async fn fetch(url: &str, headers: &[(&str, &str)]) -> Fetched {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.bytes().await.unwrap();
    Fetched {
        status,
        headers,
        body,
    }
}

/// The signed URL of one variant, as the batch call hands it out.
async fn signed_url(server: &FakeServer, media_id: &str, label: &str) -> String {
    let (_, body) = batch(server, json!([media_id])).await;
    let url = &body["items"][0]["media"][label]["url"];
    url.as_str().unwrap().to_owned()
}

fn first_id(server: &FakeServer) -> String {
    server.with_vault(|vault| vault.media.keys().next().cloned().unwrap())
}

fn one_media(media_id: &str, size: usize) -> Vault {
    let variant = FakeVariant::stored(media_id, "full", "image/jpeg", size);
    let media = FakeMedia {
        id: media_id.to_owned(),
        media_type: "image".to_owned(),
        duration: None,
        variants: [("full".to_owned(), variant)].into(),
        access: None,
    };
    let mut vault = Vault::default();
    vault.media.insert(media_id.to_owned(), media);
    vault
}

#[tokio::test]
async fn refusals_carry_the_error_body() {
    // The threaded variant, so it is exercised too.
    let vault = Vault::sample(3, 1);
    let server = FakeServer::start_in_thread(vault, FakeOptions::default()).unwrap();
    let status_url = format!("{}/v2/vault-plus/status", server.base_url());
    let answer = fetch(&status_url, &[]).await;
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        refusal(&(answer.status, body.clone())),
        (401, "UNAUTHORIZED")
    );
    assert_eq!(body["error"], "Invalid or missing API key");
    assert!(body["requestId"].as_str().unwrap().starts_with("req_"));
    let key = ("APIKEY", server.api_key());
    let answer = fetch(&status_url, &[key, ("x-connection-id", "conn_other")]).await;
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        refusal(&(answer.status, body)),
        (401, "SESSION_NOT_PROVIDED")
    );

    let answer = get_json(&server, "/v2/nowhere").await;
    assert_eq!(refusal(&answer), (404, "ROUTE_NOT_FOUND"));
    let (status, body) = get_json(&server, "/v2/vault-plus/status").await;
    // Three media with full and thumb, and the first has a square-preview.
    assert_eq!((status, body["storedCount"].as_u64()), (200, Some(7)));
    assert_eq!(body["pendingCount"], 0);
    let stats = server.stats();
    assert_eq!((stats.unauthorized, stats.api_calls), (2, 1));
    let base_url = server.base_url();
    drop(server);
    assert!(client().get(base_url).send().await.is_err(), "stopped");
}

#[tokio::test]
async fn lists_page_by_offset_and_reject_bad_limits() {
    let server = start(Vault::sample(10, 45)).await;
    let (status, first) = get_json(&server, "/v2/access/vault/lists?limit=40").await;
    assert_eq!(
        (status, first["list"].as_array().map(Vec::len)),
        (200, Some(40))
    );
    assert_eq!(first["hasMore"], true);
    assert_eq!(first["list"][0]["id"], 28_489_180);
    assert_eq!(first["list"][0]["name"], "Best of 2025/26");
    let (_, last) = get_json(&server, "/v2/access/vault/lists?limit=40&offset=40").await;
    assert_eq!(last["list"].as_array().map(Vec::len), Some(5));
    assert_eq!(last["hasMore"], false);
    let (_, default_page) = get_json(&server, "/v2/access/vault/lists").await;
    assert_eq!(default_page["list"].as_array().map(Vec::len), Some(24));
    for bad in ["limit=41", "limit=0", "limit=ten", "offset=-1"] {
        let answer = get_json(&server, &format!("/v2/access/vault/lists?{bad}")).await;
        assert_eq!(refusal(&answer), (400, "BAD_REQUEST"), "{bad}");
    }
    assert_eq!(server.stats().list_calls, 3);
}

#[tokio::test]
async fn batch_limits_omits_unknown_and_answers_duplicates_once() {
    let server = start(Vault::sample(5, 2)).await;
    let ids: Vec<String> = server.with_vault(|vault| vault.media.keys().cloned().collect());
    let too_many: Vec<String> = (0..101).map(|number| number.to_string()).collect();
    let answer = batch(&server, json!(too_many)).await;
    assert_eq!(refusal(&answer), (400, "BAD_REQUEST"));
    let answer = batch(&server, json!([1, 2])).await;
    assert_eq!(refusal(&answer), (400, "BAD_REQUEST"));

    let (status, body) = batch(&server, json!([ids[3], "404", ids[1], ids[3]])).await;
    let items = body["items"].as_array().unwrap();
    let answered: Vec<&Value> = items.iter().map(|item| &item["id"]).collect();
    assert_eq!(
        (status, answered),
        (200, vec![&json!(ids[3]), &json!(ids[1])])
    );
    let full = &body["items"][0]["media"]["full"];
    assert_eq!(full["status"], "stored");
    assert_eq!(full["watermark"]["applied"], false);
    let stats = server.stats();
    assert_eq!((stats.batch_calls, stats.batch_ids), (1, 4));
}

#[tokio::test]
async fn sync_and_membership_follow_the_lists() {
    let server = start(Vault::sample(8, 2)).await;
    let sync_path = "/v2/vault-plus/lists/28489180/sync";
    // As some front ends do, a PUT without Content-Length is refused.
    let bare = client()
        .put(format!("{}{sync_path}", server.base_url()))
        .header("apiKey", server.api_key())
        .header("x-connection-id", server.connection_id())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 411);
    let (_, first) = api(&server, Method::PUT, sync_path, Value::Null).await;
    let seen = first["seen"].as_u64().unwrap();
    assert_eq!((first["addedItems"].as_u64(), seen > 2), (Some(seen), true));
    assert_eq!(first["listId"], "28489180");
    server.with_vault(|vault| vault.lists[0].members[0] = "9999999999".to_owned());
    let (_, second) = api(&server, Method::PUT, sync_path, Value::Null).await;
    let names = ["addedItems", "removedItems", "unchangedItems"];
    let counts = names.map(|name| second[name].as_u64());
    assert_eq!(counts, [Some(1), Some(1), Some(seen - 1)]);

    let path = "/v2/vault-plus/lists/28489180/media";
    let (status, body) = get_json(&server, path).await;
    let count = body["items"].as_array().map(Vec::len);
    assert_eq!((status, count), (200, Some(seen as usize)));
    assert_eq!(body["items"][0]["status"], "pending");
    assert_eq!(body["items"][0]["media"], json!({}));
    assert_eq!(body["items"][1]["status"], "stored");
    let answer = get_json(&server, "/v2/vault-plus/lists/123/media").await;
    assert_eq!(refusal(&answer), (404, "RESOURCE_NOT_FOUND"));
}

#[tokio::test]
async fn media_host_serves_whole_and_ranged_bodies() {
    let server = start(Vault::sample(3, 1)).await;
    let media_id = first_id(&server);
    let expected = server.with_vault(|vault| vault.body(&media_id, "full").unwrap());
    let total = expected.len();
    let url = signed_url(&server, &media_id, "full").await;

    let whole = fetch(&url, &[]).await;
    assert_eq!(
        (whole.status, whole.header("content-type")),
        (200, "image/jpeg")
    );
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("content-length"), total.to_string());
    assert_eq!(whole.body, expected);
    let etag = whole.header("etag");
    assert_eq!(etag.len(), 34);

    let ranged = fetch(&url, &[("Range", "bytes=100-"), ("If-Range", etag)]).await;
    assert_eq!((ranged.status, &ranged.body), (206, &expected.slice(100..)));
    let content_range = format!("bytes 100-{}/{total}", total - 1);
    assert_eq!(ranged.header("content-range"), content_range);
    let middle = fetch(&url, &[("Range", "bytes=10-19")]).await;
    assert_eq!(
        middle.header("content-range"),
        format!("bytes 10-19/{total}")
    );
    assert_eq!(middle.body, expected.slice(10..20));

    let stale = fetch(&url, &[("Range", "bytes=100-"), ("If-Range", "\"other\"")]).await;
    assert_eq!((stale.status, stale.body), (200, expected.clone()));
    let beyond = fetch(&url, &[("Range", &format!("bytes={total}-"))]).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), format!("bytes */{total}"));

    server.set_faults(Faults {
        ignore_range: true,
        ..Faults::default()
    });
    let ignored = fetch(&url, &[("Range", "bytes=100-")]).await;
    assert_eq!((ignored.status, ignored.body), (200, expected));

    let stats = server.stats();
    assert_eq!((stats.media_requests, stats.range_requests), (6, 2));
    assert_eq!(stats.media_requests_with_api_key, 0);
    let served = 3 * total + (total - 100) + 10;
    assert_eq!(stats.media_bytes_served, served as u64);
}

#[tokio::test]
async fn expired_and_tampered_urls_are_refused_in_xml() {
    let url_ttl = Duration::from_millis(1);
    let options = FakeOptions {
        url_ttl,
        ..FakeOptions::default()
    };
    let server = FakeServer::start(Vault::sample(2, 1), options)
        .await
        .unwrap();
    let media_id = first_id(&server);
    let url = signed_url(&server, &media_id, "thumb").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = fetch(&url, &[]).await;
    assert_eq!(expired.status, 403);
    assert_eq!(expired.header("content-type"), "application/xml");
    let text = String::from_utf8_lossy(&expired.body);
    assert!(text.starts_with("<?xml"), "{text}");
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    assert!(text.contains("Request has expired"), "{text}");
    assert_eq!(server.stats().expired_hits, 1);

    let fresh = signed_url(&server, &media_id, "thumb").await;
    let tampered = fetch(&fresh.replace("label=thumb", "label=full"), &[]).await;
    let text = String::from_utf8_lossy(&tampered.body);
    assert_eq!(tampered.status, 403);
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );
    let unsigned = format!("{}/media?id={media_id}&label=thumb", server.base_url());
    assert_eq!(fetch(&unsigned, &[]).await.status, 403);
    assert_eq!(server.stats().expired_hits, 3);
}

#[tokio::test]
async fn a_skewed_clock_shows_in_dates_expiry_and_signature_checks() {
    let skew = |clock_skew_ms| Faults {
        clock_skew_ms,
        ..Faults::default()
    };
    // Ten minutes behind, with URLs that live ten minutes: by this
    // machine's clock each URL expires as it is handed out.
    let options = FakeOptions {
        url_ttl: Duration::from_secs(600),
        faults: skew(-600_000),
        ..FakeOptions::default()
    };
    let server = FakeServer::start(Vault::sample(2, 1), options)
        .await
        .unwrap();
    let media_id = first_id(&server);
    let response = client()
        .post(format!("{}/v2/vault-plus/media/batch", server.base_url()))
        .header("apiKey", server.api_key())
        .header("x-connection-id", server.connection_id())
        .json(&json!({"mediaIds": [media_id]}))
        .send()
        .await
        .unwrap();
    let local = crate::now_ms();
    let date = response.headers()["date"].to_str().unwrap();
    let date = parse_date(date).unwrap();
    assert!((local - 600_000 - date).abs() < 2_000, "{date} vs {local}");
    let body: Value = response.json().await.unwrap();
    let thumb = &body["items"][0]["media"]["thumb"];
    let expires = thumb["expiresAt"].as_i64().unwrap();
    assert!((expires - local).abs() < 2_000, "{expires} vs {local}");
    // The server's clock judges it: the URL is good for ten minutes.
    let url = thumb["url"].as_str().unwrap();
    let fetched = fetch(url, &[]).await;
    assert_eq!(fetched.status, 200);
    let media_date = parse_date(fetched.header("date")).unwrap();
    assert!((local - 600_000 - media_date).abs() < 2_000);
    // Its clock set twenty minutes on, the same URL is past its time.
    server.set_faults(skew(600_000));
    assert_eq!(fetch(url, &[]).await.status, 403);
    assert_eq!(server.stats().expired_hits, 1);
}

#[tokio::test]
async fn awkward_media_ids_round_trip() {
    let media_id = "../../x/y?z&a=%2F";
    let server = start(one_media(media_id, 5_000)).await;
    let mut url = url::Url::parse(&server.base_url()).unwrap();
    // Encodes '/' as %2F, so the id stays one path segment.
    let segments = ["v2", "vault-plus", "media", media_id];
    url.path_segments_mut().unwrap().extend(segments);
    assert!(url.path().contains("/..%2F..%2Fx%2Fy"), "{url}");
    let (status, item) = get_json(&server, url.path()).await;
    assert_eq!((status, item["id"].as_str()), (200, Some(media_id)));

    let media_url = item["media"]["full"]["url"].as_str().unwrap();
    let fetched = fetch(media_url, &[]).await;
    let expected = server.with_vault(|vault| vault.body(media_id, "full"));
    assert_eq!((fetched.status, Some(fetched.body)), (200, expected));
    let answer = get_json(&server, "/v2/vault-plus/media/..%2Fnothing").await;
    assert_eq!(refusal(&answer), (404, "RESOURCE_NOT_FOUND"));
}

#[tokio::test]
async fn bandwidth_cap_slows_transfers() {
    let server = start(one_media("1000000001", 64 * 1024)).await;
    let url = signed_url(&server, "1000000001", "full").await;
    let bandwidth_per_transfer = Some(128 * 1024);
    server.set_faults(Faults {
        bandwidth_per_transfer,
        ..Faults::default()
    });
    let started = Instant::now();
    let fetched = fetch(&url, &[]).await;
    let elapsed = started.elapsed();
    assert_eq!(fetched.body.len(), 64 * 1024);
    assert!(elapsed >= Duration::from_millis(400), "took {elapsed:?}");
    assert_eq!(server.stats().media_bytes_served, 64 * 1024);
}

/// Whether `body` starts (and, for JPEG, ends) as `content_type` requires.
fn has_magic(content_type: &str, body: &[u8]) -> bool {
    match content_type {
        "image/jpeg" => {
            body.starts_with(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00") && body.ends_with(b"\xFF\xD9")
        }
        "image/png" => body.starts_with(b"\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR"),
        "video/mp4" => body.get(4..12) == Some(b"ftypisom"),
        _ => false,
    }
}

#[test]
fn sample_overlaps_and_has_magic_bytes() {
    let vault = Vault::sample(50, 4);
    assert_eq!((vault.media.len(), vault.lists.len()), (50, 4));
    assert!(vault.lists.iter().any(|list| list.name.contains('/')));
    let mut memberships = std::collections::BTreeMap::<&str, usize>::new();
    for member in vault.lists.iter().flat_map(|list| &list.members) {
        *memberships.entry(member).or_default() += 1;
    }
    assert_eq!(memberships.len(), 50, "every media is in a list");
    assert!(memberships.values().filter(|count| **count >= 2).count() >= 20);
    let media = || vault.media.values();
    let videos = media().filter(|media| media.media_type == "video").count();
    assert!((4..=8).contains(&videos), "{videos} videos");
    assert!(media().any(|media| media.variants.contains_key("square-preview")));
    for media in media() {
        assert!(media.id.len() == 10 && media.id.parse::<u64>().is_ok());
        assert!(media.variants.contains_key("full") && media.variants.contains_key("thumb"));
        assert_eq!(media.duration.is_some(), media.media_type == "video");
        for variant in media.variants.values() {
            let content_type = &variant.content_type;
            assert!(
                has_magic(content_type, &variant.body),
                "{} {content_type}",
                media.id
            );
        }
    }
    let first = vault.media.keys().next().unwrap();
    assert_eq!(
        Vault::sample(50, 4).body(first, "full"),
        vault.body(first, "full")
    );
    assert!(vault.body(first, "missing").is_none());
}

#[tokio::test]
async fn a_media_base_points_signed_urls_at_the_data_set_files() {
    let options = FakeOptions {
        media_base: Some(url::Url::parse("http://127.0.0.1:9/files/").unwrap()),
        ..FakeOptions::default()
    };
    let server = FakeServer::start(Vault::bench(3, super::BenchScale::Tiny), options)
        .await
        .unwrap();
    let urls = server.signed_urls();
    assert_eq!(urls.len(), 6);
    for (url, relative) in &urls {
        let url = url::Url::parse(url).unwrap();
        assert_eq!(url.path(), format!("/files/{relative}"));
        let keys: Vec<_> = url.query_pairs().map(|(key, _)| key.into_owned()).collect();
        assert_eq!(keys, ["expires", "sig"]);
    }
    // The API answers with the same URLs, so the mirror fetches those files.
    let id = urls[0].1.split('/').next().unwrap().to_owned();
    let (status, body) = batch(&server, json!([id])).await;
    assert_eq!(status, 200);
    let url = body["items"][0]["media"]["full"]["url"]
        .as_str()
        .unwrap_or_default();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:9/files/{id}/full.")),
        "{body}"
    );
}
