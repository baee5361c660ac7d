//! `--ping-url`: healthchecks.io-style pings around a run, so a service
//! that expects them says when runs stop coming or start failing.
//!
//! - A plain URL gets `URL/start` when the run starts, `URL` when it
//!   ends with exit 0 and `URL/fail` otherwise (with `--ping-exit-code`,
//!   `URL/<exit code>` for every end: `URL/0`, `URL/3`, …), all with the
//!   same `rid` query parameter (a random UUID per run).
//! - A URL with placeholders is a template, for services with their own
//!   shape (an Uptime Kuma push monitor, an ntfy topic): `{status}` is
//!   `up` for exit 0 and `down` otherwise, `{event}` is `start`, `success`
//!   or `fail`, `{code}` the exit code (empty at the start), `{msg}` the
//!   summary's last line (URL-encoded). A template pings at the start only
//!   when it holds `{event}`; `rid` is added to it too.
//! - Every ping is a POST; the end's body is the summary's last lines,
//!   at most [`BODY_LIMIT`] bytes, with URL queries and the secrets the
//!   caller names redacted.
//!
//! Invariants: a ping never changes a run's outcome (errors are logged as
//! warnings and dropped), and the pings of a run block it for at most
//! [`TOTAL_BUDGET`] in all: the start ping runs beside the run, and the
//! end ping gets what the start left of the budget.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most time all pings of a run may cost it.
pub const TOTAL_BUDGET: Duration = Duration::from_secs(10);
/// The start ping's share: it runs beside the run, and the end ping waits
/// for it (so a service sees `start` before the end) at most this long.
const START_BUDGET: Duration = Duration::from_secs(5);
/// The largest body a ping carries (healthchecks.io keeps 10 kB).
pub const BODY_LIMIT: usize = 10_000;

const PLACEHOLDERS: [&str; 4] = ["{status}", "{event}", "{code}", "{msg}"];

/// The pings of one run (one process run, whatever it covers).
pub struct Pings {
    /// `None` if no HTTP client could be set up (then no ping is sent).
    client: Option<reqwest::Client>,
    url: String,
    exit_code_paths: bool,
    rid: Option<String>,
    start: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Checks a ping URL (plain or template) as `--ping-url` takes it.
pub fn check_url(url: &str) -> Result<(), String> {
    let filled = fill(url, "start", "up", "0", "x");
    let parsed = url::Url::parse(filled.trim())
        .map_err(|error| format!("not a URL ({error}); write e.g. https://hc-ping.com/<uuid>"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("use an http:// or https:// URL".into());
    }
    Ok(())
}

fn is_template(url: &str) -> bool {
    PLACEHOLDERS
        .iter()
        .any(|placeholder| url.contains(placeholder))
}

fn fill(url: &str, event: &str, status: &str, code: &str, msg: &str) -> String {
    url.replace("{event}", event)
        .replace("{status}", status)
        .replace("{code}", code)
        .replace("{msg}", msg)
}

/// A random version 4 UUID, from the operating system's generator;
/// `None` if it has none to give (the pings then go without a `rid`).
pub fn random_uuid() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).ok()?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The last lines of `text` that fit in `limit` bytes, cut at a line.
pub fn last_lines(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    match tail.find('\n') {
        Some(newline) if newline + 1 < tail.len() => &tail[newline + 1..],
        _ => tail,
    }
}

/// `text` with URL queries scrubbed and each of `secrets` replaced.
pub fn redacted(text: &str, secrets: &[&str]) -> String {
    let mut text = crate::redact::scrub(text);
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    text
}

impl Pings {
    /// Pings for `url` (checked with [`check_url`] beforehand).
    pub fn new(url: &str, exit_code_paths: bool) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("vault-mirror/", env!("CARGO_PKG_VERSION")))
            .build()
            .inspect_err(|error| {
                tracing::warn!("no pings: cannot set up their HTTP client ({error})");
            })
            .ok();
        Pings {
            client,
            url: url.trim().to_owned(),
            exit_code_paths,
            rid: random_uuid(),
            start: Mutex::new(None),
        }
    }

    /// The run's id, sent as `rid` with every ping.
    pub fn rid(&self) -> Option<&str> {
        self.rid.as_deref()
    }

    /// Sends the start ping beside the run (it never waits for it).
    pub fn start(&self) {
        let url = if is_template(&self.url) {
            if !self.url.contains("{event}") {
                return;
            }
            fill(&self.url, "start", "up", "", "started")
        } else {
            with_path(&self.url, "start")
        };
        let request = self.request(&url, String::new(), START_BUDGET);
        let task = tokio::spawn(async move {
            send(request, "start").await;
        });
        *self
            .start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
    }

    /// Sends the end ping for `exit_code` with `body` (already redacted),
    /// after the start ping, within what is left of [`TOTAL_BUDGET`].
    pub async fn finish(&self, exit_code: i32, body: &str) {
        let began = Instant::now();
        let start = self
            .start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(start) = start {
            // The start ping's own timeout bounds this; abort it if not.
            let abort = start.abort_handle();
            if tokio::time::timeout(START_BUDGET, start).await.is_err() {
                abort.abort();
            }
        }
        let left = TOTAL_BUDGET.saturating_sub(began.elapsed());
        if left.is_zero() {
            return;
        }
        let body = last_lines(body, BODY_LIMIT).to_owned();
        let url = self.end_url(exit_code, &body);
        send(self.request(&url, body, left), "end").await;
    }

    fn end_url(&self, exit_code: i32, body: &str) -> String {
        let success = exit_code == 0;
        if is_template(&self.url) {
            let last = body.lines().last().unwrap_or("");
            let short: String = last.chars().take(200).collect();
            let msg: String = url::form_urlencoded::byte_serialize(short.as_bytes()).collect();
            return fill(
                &self.url,
                if success { "success" } else { "fail" },
                if success { "up" } else { "down" },
                &exit_code.to_string(),
                &msg,
            );
        }
        match (self.exit_code_paths, success) {
            (true, _) => with_path(&self.url, &exit_code.to_string()),
            (false, true) => self.url.clone(),
            (false, false) => with_path(&self.url, "fail"),
        }
    }

    fn request(
        &self,
        url: &str,
        body: String,
        timeout: Duration,
    ) -> Option<reqwest::RequestBuilder> {
        let mut url = url::Url::parse(url).ok()?;
        if let Some(rid) = &self.rid {
            url.query_pairs_mut().append_pair("rid", rid);
        }
        Some(
            self.client
                .as_ref()?
                .post(url)
                .timeout(timeout)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body),
        )
    }
}

/// `url` with `/<segment>` after its path (before any query string).
fn with_path(url: &str, segment: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut text = format!("{}/{segment}", head.trim_end_matches('/'));
    if let Some(query) = query {
        text.push('?');
        text.push_str(query);
    }
    text
}

async fn send(request: Option<reqwest::RequestBuilder>, which: &str) {
    let Some(request) = request else {
        return;
    };
    match request.send().await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::warn!(
                "the {which} ping was answered {}; the run goes on",
                response.status()
            );
        }
        Err(error) => {
            // reqwest names the URL, which holds the check's secret.
            let reason = if error.is_timeout() {
                "it timed out".to_owned()
            } else if error.is_connect() {
                "the ping server could not be reached".to_owned()
            } else {
                "it failed".to_owned()
            };
            tracing::warn!("the {which} ping was not delivered ({reason}); the run goes on");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let one = random_uuid().unwrap();
        assert_eq!(one.len(), 36);
        assert_eq!(&one[14..15], "4");
        assert!(matches!(&one[19..20], "8" | "9" | "a" | "b"), "{one}");
        assert_ne!(Some(one), random_uuid());
    }

    #[test]
    fn plain_urls_get_paths_and_templates_get_values() {
        let pings = Pings::new("https://hc-ping.com/abc/", false);
        assert_eq!(pings.end_url(0, ""), "https://hc-ping.com/abc/");
        assert_eq!(pings.end_url(3, ""), "https://hc-ping.com/abc/fail");
        let codes = Pings::new("https://hc-ping.com/abc", true);
        assert_eq!(codes.end_url(0, ""), "https://hc-ping.com/abc/0");
        assert_eq!(codes.end_url(4, ""), "https://hc-ping.com/abc/4");
        let kuma = Pings::new(
            "https://kuma.example/api/push/T?status={status}&msg={msg}",
            false,
        );
        assert_eq!(
            kuma.end_url(3, "first\nmirrored 2 lists: 1 failed"),
            "https://kuma.example/api/push/T?status=down&msg=mirrored+2+lists%3A+1+failed"
        );
        assert_eq!(
            with_path("https://x/a?k=v", "start"),
            "https://x/a/start?k=v"
        );
        assert!(check_url("https://ntfy.sh/topic?title=vault-mirror+{event}").is_ok());
        assert!(check_url("ftp://x/y").is_err());
        assert!(check_url("hc-ping.com/abc").is_err());
    }

    #[test]
    fn bodies_keep_their_last_lines_and_lose_secrets() {
        let text = "a\n".repeat(20) + "last line\n";
        let tail = last_lines(&text, 14);
        assert_eq!(tail, "a\nlast line\n");
        assert_eq!(last_lines("short", 100), "short");
        let body = redacted(
            "error at https://api.example/x?sig=SECRET with key sk_live_KEY",
            &["sk_live_KEY"],
        );
        assert!(
            !body.contains("SECRET") && !body.contains("sk_live_KEY"),
            "{body}"
        );
    }
}
