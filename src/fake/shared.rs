//! The state the fake's handlers share ([`Shared`]: its connections, signing
//! key, faults, counters and fault dice), the signing and checking of media
//! URLs, and [`lock`], which shrugs off a poisoned lock.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

use super::bench_data;
use super::connections::Tenant;
use super::options::Faults;
use super::stats::{ApiRequest, Stats};

/// State the handlers share.
pub(super) struct Shared {
    pub(super) api_key: String,
    /// The server's own connection (the first of `tenants`).
    pub(super) primary: Arc<Tenant>,
    /// Every connection of the account, in the order they are listed.
    pub(super) tenants: Vec<Arc<Tenant>>,
    pub(super) url_ttl: Duration,
    pub(super) media_url: Url,
    pub(super) media_base: Option<Url>,
    pub(super) signing_key: Vec<u8>,
    pub(super) faults: Mutex<Faults>,
    pub(super) stats: Mutex<Stats>,
    /// Every authorized API call, for [`super::FakeServer::api_requests`].
    pub(super) api_requests: Mutex<Vec<ApiRequest>>,
    pub(super) next_request_id: AtomicU64,
    pub(super) started: std::time::Instant,
    /// State of the fixed-seed generator behind fault ratios.
    pub(super) dice: AtomicU64,
    /// API calls seen, for rate-limit bursts.
    pub(super) api_sequence: AtomicU64,
    /// Variants (id, label) already served corrupted once.
    pub(super) corrupted: Mutex<BTreeSet<(String, String)>>,
}

impl Shared {
    pub(super) fn count(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut lock(&self.stats));
    }

    /// True with probability `ratio`.
    pub(super) fn roll(&self, ratio: f64) -> bool {
        ratio > 0.0 && self.fraction() < ratio
    }

    /// A fraction in 0..1 (splitmix64 over a shared counter: a fixed seed,
    /// so a run with the same faults misbehaves the same way).
    pub(super) fn fraction(&self) -> f64 {
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
    pub(super) fn corrupt_once(&self, ratio: f64, media_id: &str, label: &str) -> bool {
        self.roll(ratio) && lock(&self.corrupted).insert((media_id.to_owned(), label.to_owned()))
    }

    pub(super) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// The server's time (epoch ms): this machine's, skewed by the fault.
    pub(super) fn now_ms(&self) -> i64 {
        crate::now_ms().saturating_add(lock(&self.faults).clock_skew_ms)
    }

    pub(super) fn request_id(&self) -> String {
        format!(
            "req_{}",
            self.next_request_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Connection `id`, if the account has it.
    pub(super) fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
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
    pub(super) fn url_owner(&self, conn: &str) -> Option<&Arc<Tenant>> {
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

    pub(super) fn signed_url(
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

    pub(super) fn signature_is_valid(
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

/// A poisoned lock only means a test's closure panicked; the data is still
/// usable, and the server must keep answering.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
