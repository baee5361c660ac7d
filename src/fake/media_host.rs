//! The media-host half of the fake, playing media.ofauth.com: it checks the
//! signature and expiry of `/media?id&label&expires&sig`, answers like S3
//! (XML errors, ETag, single byte ranges, If-Range) and streams bodies in
//! chunks, throttled when [`super::Faults`] says so. Bytes are counted as the
//! stream yields them, so an aborted transfer counts only what left.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::options::Faults;
use super::shared::{Shared, lock};

/// Fixed, so an If-Range carrying it stays valid across runs.
const LAST_MODIFIED: &str = "Thu, 01 Jan 2026 00:00:00 GMT";
const LARGEST_CHUNK: usize = 64 * 1024;
const SIGNATURE_MISMATCH: &str =
    "The request signature we calculated does not match the signature you provided";

/// `Faults::media_redirect_host`: a request for another host name is sent
/// there (307, same path and query).
fn redirect(shared: &Shared, headers: &HeaderMap, uri: &axum::http::Uri) -> Option<Response> {
    let host = shared.faults().media_redirect_host?;
    let asked = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if asked.split(':').next() == Some(host.as_str()) {
        return None;
    }
    let port = shared.media_url.port().unwrap_or(80);
    let location = format!("http://{host}:{port}{uri}");
    shared.count(|stats| stats.media_redirects += 1);
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    Some(response)
}

/// Where the connection dies, if it does: before any byte (a reset), or
/// part-way (at least one byte gets through: a cut with nothing sent is a
/// reset).
#[expect(
    clippy::cast_sign_loss,
    reason = "a fraction of a length, never negative"
)]
fn cut_point(shared: &Shared, faults: &Faults, length: usize) -> Option<usize> {
    if shared.roll(faults.resets) {
        shared.count(|stats| stats.resets += 1);
        Some(0)
    } else if length > 1 && shared.roll(faults.cut_bodies) {
        shared.count(|stats| stats.cut_bodies += 1);
        Some(1 + (shared.fraction() * (length - 1) as f64) as usize % (length - 1))
    } else {
        None
    }
}

pub(super) async fn serve(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let carries_secret = headers.contains_key("apikey") || headers.contains_key("x-connection-id");
    shared.count(|stats| {
        stats.media_requests += 1;
        stats.media_requests_with_api_key += u64::from(carries_secret);
    });
    if let Some(response) = redirect(&shared, &headers, &uri) {
        return response;
    }
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let param = |name: &str| query.get(name).map_or("", String::as_str);
    let (media_id, label, conn) = (param("id"), param("label"), param("conn"));
    let Ok(expires) = param("expires").parse::<i64>() else {
        return refuse(&shared, "SignatureDoesNotMatch", SIGNATURE_MISMATCH);
    };
    if !shared.signature_is_valid(conn, media_id, label, expires, param("sig")) {
        return refuse(&shared, "SignatureDoesNotMatch", SIGNATURE_MISMATCH);
    }
    let expired = expires < shared.now_ms();
    if expired || shared.roll(shared.faults().refused_urls) {
        if !expired {
            shared.count(|stats| stats.refused_urls += 1);
        }
        return refuse(&shared, "AccessDenied", "Request has expired");
    }
    let variant = shared.url_owner(conn).and_then(|tenant| {
        let vault = lock(&tenant.vault);
        let media = vault.media.get(media_id)?;
        media.variants.get(label).cloned()
    });
    let Some(variant) = variant else {
        let message = "The specified key does not exist.";
        return xml_error(StatusCode::NOT_FOUND, "NoSuchKey", message);
    };
    let faults = shared.faults();
    if shared.roll(faults.media_server_errors) {
        shared.count(|stats| {
            stats.server_errors += 1;
            stats.media_server_errors += 1;
        });
        let message = "Please reduce your request rate.";
        return xml_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", message);
    }
    let mut variant = variant;
    if shared.corrupt_once(faults.wrong_size, media_id, label) {
        shared.count(|stats| stats.wrong_sizes += 1);
        let mut longer = variant.body.to_vec();
        longer.extend(std::iter::repeat_n(0x5A, 1024));
        variant.body = longer.into();
    } else if shared.corrupt_once(faults.wrong_type, media_id, label) {
        shared.count(|stats| stats.wrong_types += 1);
        variant.served_content_type = Some("text/html".to_owned());
    }
    let total = variant.body.len();
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&variant.body)[..16]));

    let requested = requested_range(&headers, &etag);
    if requested.is_some() && faults.ignore_range {
        shared.count(|stats| stats.ignored_ranges += 1);
    }
    let range = requested.filter(|_| !faults.ignore_range);
    let (status, part) = match range.map(|range| range.within(total)) {
        None => (StatusCode::OK, 0..total),
        Some(Some(part)) => (StatusCode::PARTIAL_CONTENT, part),
        Some(None) => {
            let message = "The requested range is not satisfiable";
            let mut response =
                xml_error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange", message);
            let content_range = text_header(format!("bytes */{total}"));
            response
                .headers_mut()
                .insert(header::CONTENT_RANGE, content_range);
            return response;
        }
    };
    let length = part.len();
    let rate = faults.bandwidth_per_transfer.filter(|rate| *rate > 0);
    if rate.is_some() {
        shared.count(|stats| stats.throttled_bodies += 1);
    }
    let cut_at = cut_point(&shared, &faults, length);
    let content_range = format!(
        "bytes {}-{}/{total}",
        part.start,
        part.end.saturating_sub(1)
    );
    let stream = body_stream(Arc::clone(&shared), variant.body.slice(part), rate, cut_at);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let content_type = variant.served_content_type.unwrap_or(variant.content_type);
    add_headers(response.headers_mut(), content_type, length, etag);
    if status == StatusCode::PARTIAL_CONTENT {
        shared.count(|stats| stats.range_requests += 1);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_RANGE, text_header(content_range));
    }
    response
}

/// The headers every body is served with.
fn add_headers(headers: &mut HeaderMap, content_type: String, length: usize, etag: String) {
    headers.insert(header::CONTENT_TYPE, text_header(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, text_header(etag));
    headers.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_static(LAST_MODIFIED),
    );
}

/// One `bytes=` range; anything else (several ranges, other units, garbage)
/// is ignored, as RFC 9110 allows, and the whole body is served.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ByteRange {
    From(usize),
    Between(usize, usize),
    Last(usize),
}

impl ByteRange {
    fn parse(value: &str) -> Option<ByteRange> {
        let (first, last) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
        let number = |text: &str| text.trim().parse::<usize>().ok();
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (false, true) => Some(ByteRange::From(number(first)?)),
            (true, false) => Some(ByteRange::Last(number(last)?)),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                (first <= last).then_some(ByteRange::Between(first, last))
            }
            (true, true) => None,
        }
    }

    /// The half-open byte span to serve, or None when unsatisfiable.
    fn within(self, total: usize) -> Option<Range<usize>> {
        match self {
            ByteRange::From(first) | ByteRange::Between(first, _) if first >= total => None,
            ByteRange::From(first) => Some(first..total),
            ByteRange::Between(first, last) => Some(first..last.saturating_add(1).min(total)),
            ByteRange::Last(0) => None,
            ByteRange::Last(_) if total == 0 => None,
            ByteRange::Last(count) => Some(total - count.min(total)..total),
        }
    }
}

/// The range to honour: a parsable `Range`, unless an `If-Range` names
/// another version of the body, in which case the client gets it all.
fn requested_range(headers: &HeaderMap, etag: &str) -> Option<ByteRange> {
    let range = ByteRange::parse(headers.get(header::RANGE)?.to_str().ok()?)?;
    match headers.get(header::IF_RANGE).map(HeaderValue::as_bytes) {
        Some(validator)
            if validator != etag.as_bytes() && validator != LAST_MODIFIED.as_bytes() =>
        {
            None
        }
        _ => Some(range),
    }
}

/// Yields `body` in chunks. With a rate, each chunk waits until the cap
/// allows every byte up to its end, so even a one-chunk body takes its time.
/// With `cut_at`, the stream fails after that many bytes, which makes the
/// server drop the connection mid-body.
fn body_stream(
    shared: Arc<Shared>,
    body: Bytes,
    rate: Option<u64>,
    cut_at: Option<usize>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // About ten chunks a second when throttled, so pacing looks smooth.
    let tenth = rate.map(|rate| usize::try_from(rate / 10).unwrap_or(LARGEST_CHUNK));
    let chunk = tenth.map_or(LARGEST_CHUNK, |tenth| tenth.clamp(1024, LARGEST_CHUNK));
    let started = tokio::time::Instant::now();
    futures::stream::unfold(
        (shared, body, 0usize),
        move |(shared, body, offset)| async move {
            if offset >= body.len() {
                return None;
            }
            if cut_at == Some(offset) {
                // Let the bytes sent so far leave before the connection
                // drops, as on a real network; hyper would discard them.
                tokio::time::sleep(Duration::from_millis(30)).await;
                let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault: cut");
                return Some((Err(reset), (shared, body, usize::MAX)));
            }
            let limit = cut_at.filter(|cut| *cut > offset).unwrap_or(body.len());
            let end = offset.saturating_add(chunk).min(limit);
            if let Some(rate) = rate {
                let due = Duration::from_secs_f64(end as f64 / rate as f64);
                tokio::time::sleep_until(started + due).await;
            }
            shared.count(|stats| stats.media_bytes_served += (end - offset) as u64);
            let piece = body.slice(offset..end);
            Some((Ok(piece), (shared, body, end)))
        },
    )
}

/// Refuses a request over its signature; counted as an expired hit because
/// to a client both mean "get a fresh URL".
fn refuse(shared: &Shared, code: &str, message: &str) -> Response {
    shared.count(|stats| stats.expired_hits += 1);
    xml_error(StatusCode::FORBIDDEN, code, message)
}

fn xml_error(status: StatusCode, code: &str, message: &str) -> Response {
    let declaration = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    let body =
        format!("{declaration}<Error><Code>{code}</Code><Message>{message}</Message></Error>");
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// Header texts here are ASCII unless a test declares an odd content type;
/// an empty value is then the harmless fallback.
fn text_header(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn single_ranges_parse_and_clamp_to_the_body() {
        let span = |value: &str| ByteRange::parse(value).map(|range| range.within(10));
        assert_eq!(span("bytes=4-"), Some(Some(4..10)));
        assert_eq!(span("bytes=2-4"), Some(Some(2..5)));
        assert_eq!(span("bytes=8-99"), Some(Some(8..10)));
        assert_eq!(span("bytes=-3"), Some(Some(7..10)));
        assert_eq!(span("bytes=-30"), Some(Some(0..10)));
        assert_eq!(span("bytes=10-"), Some(None));
        assert_eq!(span("bytes=-0"), Some(None));
        for ignored in [
            "bytes=5-2",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(span(ignored), None, "{ignored}");
        }
    }
}
