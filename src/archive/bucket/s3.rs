//! An archive on S3-compatible object storage, through `object_store`:
//! every operation the pipeline and the commands need, on keys relative to
//! the archive's prefix (`media/<id>/<label>.<ext>`, `.vault-mirror/…`).
//!
//! Invariants: credentials, region and endpoint come only from the AWS
//! environment (`AmazonS3Builder::from_env`), never from our flags, files
//! or database; plain HTTP is refused unless the endpoint is a loopback
//! address or `AWS_ALLOW_HTTP=true`; every key is `<prefix>/<relative>`
//! with `relative` checked to be one of ours, so nothing is written
//! outside the prefix; no message of this module carries a credential
//! (object_store signs with headers, and errors name keys, not secrets).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as KeyPath;
use object_store::{
    Attribute, Attributes, GetOptions, MultipartId, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};

use crate::archive::bucket::retry::{Fault, Hinted, StoreFault, StoreRetries};
use crate::location::S3Url;
use base64::Engine as _;
use object_store::signer::{SignedUrlOptions, Signer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use std::time::Duration;

/// The user metadata key that holds an object's sha256 (`x-amz-meta-sha256`).
pub const SHA256_METADATA: &str = "sha256";

/// Why an object-storage operation failed (the key it was about named).
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("object storage: {action} {key}")]
    Store {
        action: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// A conditional write lost: the object exists, or changed meanwhile.
    #[error("object storage: {key} already exists or changed meanwhile")]
    Precondition { key: String },
    #[error("refusing the key {key:?}: not one vault-mirror writes")]
    UnsafeKey { key: String },
    /// The store computed another SHA-256 over the object it holds than
    /// the one of the bytes sent: the object was deleted (or, where even
    /// that failed, is left for `verify` to find), never called verified.
    #[error(
        "object storage: {key} holds other bytes than were sent (the store's SHA-256 of it is {stored}, the bytes sent hash to {sent}); {outcome}"
    )]
    OtherBytes {
        key: String,
        stored: String,
        sent: String,
        outcome: &'static str,
    },
    /// The CopyObject that gives an uploaded object its sha256 failed.
    #[error("object storage: setting the sha256 metadata of {key}")]
    Metadata {
        key: String,
        #[source]
        source: SignedError,
    },
    /// The store refused a part for want of a checksum of its own (S3
    /// does so in a bucket with Object Lock): uploads carry one from now
    /// on, and this transfer starts over.
    #[error(
        "object storage: the store asks for a checksum on every part of {key} (a bucket with Object Lock does): uploads carry a SHA-256 per part from now on, and this one starts over"
    )]
    PartChecksumsRequired { key: String },
    /// A request of our own, presigned (a PUT with our checksum,
    /// ListParts, ListMultipartUploads), failed.
    #[error("object storage: {action} {key}")]
    Request {
        action: &'static str,
        key: String,
        #[source]
        source: SignedError,
    },
    /// Local work around the archive (a staged file, the upload ledger).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A blocking or spawned task of an upload ended abnormally.
    #[error("object storage: an upload task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
    /// The AWS environment cannot be used (a usage error: exit 2).
    #[error("object storage (--out s3://…)")]
    Config(#[source] ConfigError),
}

/// Why a request of our own, presigned, failed: the CopyObject that sets
/// the sha256 metadata, a PUT that carries our checksum, a listing.
#[derive(Debug, thiserror::Error)]
pub enum SignedError {
    #[error("over 5 GiB, one CopyObject cannot copy it")]
    TooLarge,
    #[error("a header value is not valid")]
    Header(#[from] reqwest::header::InvalidHeaderValue),
    /// What should be a sha256 (64 hex digits) is not: a bug of ours.
    #[error("{0:?} is not a sha256 in hex")]
    NotASha256(String),
    #[error("signing the request failed")]
    Sign(#[source] object_store::Error),
    #[error("sending the request failed")]
    Send(#[source] reqwest::Error),
    #[error("the store answered HTTP {0}")]
    Refused(reqwest::StatusCode),
    /// A success whose body is not the answer asked for (S3's way to say
    /// a copy failed midway is a 200 with an error inside).
    #[error("the store answered HTTP 200 without a {expected}: {body}")]
    Unexpected {
        expected: &'static str,
        /// The answer's first 200 characters.
        body: String,
    },
}

/// Why the AWS environment cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the endpoint {0} holds a user name or password; credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never in the endpoint URL (it is shown in messages)"
    )]
    CredentialsInEndpoint(String),
    #[error(
        "the endpoint {0} is plain HTTP to another machine: credentials and media would cross the network unencrypted; use https, or set AWS_ALLOW_HTTP=true to accept that"
    )]
    PlainHttp(String),
    /// object_store refused the AWS environment (a region, an endpoint, a
    /// key it cannot use). Its messages name settings, never a secret.
    #[error("the AWS environment cannot be used")]
    Builder(#[source] object_store::Error),
    #[error("the HTTP client cannot be built")]
    Client(#[source] reqwest::Error),
    #[error(transparent)]
    NoCredentials(#[from] super::credentials::NoCredentials),
}

impl BucketError {
    /// Whether the store said the request was malformed or refused it for
    /// good (as opposed to a failure that may pass).
    pub fn is_config(&self) -> bool {
        matches!(self, BucketError::Config(_))
    }

    /// Whether the store does not implement the request (HTTP 501: a
    /// store that cannot list incomplete uploads, say).
    pub fn is_not_implemented(&self) -> bool {
        matches!(
            self,
            BucketError::Request {
                source: SignedError::Refused(reqwest::StatusCode::NOT_IMPLEMENTED),
                ..
            }
        )
    }
}

impl BucketError {
    fn of(action: &'static str, key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::Precondition { .. }
            | object_store::Error::AlreadyExists { .. } => Self::Precondition {
                key: key.to_owned(),
            },
            source => Self::Store {
                action,
                key: key.to_owned(),
                source,
            },
        }
    }
}

/// What a `HEAD` tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// `x-amz-meta-sha256`, where the object carries it.
    pub sha256: Option<String>,
    pub content_type: Option<String>,
    pub e_tag: Option<String>,
    /// `Last-Modified`: when the store wrote it, by the store's own clock
    /// (epoch milliseconds, whole seconds).
    pub last_modified: i64,
}

/// One part of a multipart upload, as ListParts names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    /// 1-based, as S3 numbers parts.
    pub number: u32,
    pub size: u64,
    pub e_tag: String,
}

/// The ETag in object_store's id of a part (with checksums on, an XML
/// fragment holding the ETag, as `<e_tag>` in object_store 0.14, and the
/// part's checksum; else the ETag itself).
pub fn part_e_tag(part: &PartId) -> String {
    ["e_tag", "ETag"]
        .iter()
        .find_map(|name| xml_values(&part.content_id, name).pop())
        .unwrap_or_else(|| part.content_id.clone())
}

/// Whether a multipart upload's parts carry a checksum of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// None: the whole object is checked at its seal (the default).
    None,
    /// A SHA-256 each (what a bucket with Object Lock asks for).
    Sha256,
}

impl Checks {
    /// The checks of an upload whose parts have these ids (object_store
    /// names a checked part by an XML fragment holding its checksum, as
    /// [`part_e_tag`] reads it).
    pub fn of_parts<'a>(mut ids: impl Iterator<Item = &'a str>) -> Checks {
        if ids.any(|id| !xml_values(id, "checksum_sha256").is_empty()) {
            Checks::Sha256
        } else {
            Checks::None
        }
    }
}

/// Whether a refused part was refused for want of a checksum: S3 says
/// `Content-MD5 OR x-amz-checksum- HTTP header is required for Put Part
/// requests with Object Lock parameters`.
fn demands_part_checksums(error: &object_store::Error) -> bool {
    let text = crate::report::chain(error).to_ascii_lowercase();
    text.contains("content-md5") || text.contains("x-amz-checksum")
}

/// How a small object is written.
#[derive(Debug, Clone)]
pub enum WriteMode {
    /// Replace whatever is there.
    Overwrite,
    /// Only if no object has the key (`If-None-Match: *`).
    Create,
    /// Only if the object still has this ETag (`If-Match`).
    Replace(String),
}

/// The archive at `s3://bucket/prefix`: any `object_store` store (S3 in
/// use, `InMemory` in unit tests) and the prefix every key is under.
#[derive(Clone)]
pub struct Bucket {
    /// Every call on whole objects (writes with object_store's SHA-256
    /// checksum on S3).
    store: Arc<dyn ObjectStore>,
    /// Multipart uploads of media (parts without a checksum of their own:
    /// see `Bucket::open`).
    multipart: Arc<dyn MultipartStore>,
    /// Multipart uploads whose parts carry a SHA-256 checksum each: for a
    /// store that demands one (a bucket with Object Lock), found out at
    /// the first part it refuses, and for uploads an earlier version
    /// started that way.
    checked_multipart: Arc<dyn MultipartStore>,
    /// The store refused a part without a checksum: every upload from
    /// now on is a checked one (every clone of this bucket shares it).
    parts_need_checksums: Arc<AtomicBool>,
    /// On S3: the store again, to presign the requests object_store has
    /// no call for (a PUT that carries our own checksum, a CopyObject that
    /// replaces metadata, ListParts, ListMultipartUploads), and the client
    /// that sends them.
    s3: Option<(Arc<AmazonS3>, reqwest::Client)>,
    url: S3Url,
    /// The retry policy every call goes through, and its count.
    retries: StoreRetries,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

/// CopyObject copies at most this much in one request.
const COPY_LIMIT: u64 = 5 << 30;

/// What `x-amz-copy-source` keeps as it is: the unreserved characters of
/// RFC 3986 (`A-Z a-z 0-9 - _ . ~`) and `/`; every other byte is `%XX`.
const KEY_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// `key` percent-encoded for `x-amz-copy-source` (`/` kept).
fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_KEEPS).to_string()
}

/// Whether `endpoint` is plain HTTP to somewhere other than this machine.
fn plain_http_elsewhere(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
        Some(url::Host::Domain(name)) => name != "localhost",
        None => true,
    }
}

/// An endpoint for a message: scheme, host and port only (never a
/// user name or password someone put in the URL).
fn shown_endpoint(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(url) => format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default()
        ),
        Err(_) => "(unparsable)".to_owned(),
    }
}

/// The endpoint the AWS environment names, if any.
fn endpoint_from_env() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

impl Bucket {
    /// The archive at `url`, configured from the AWS environment. Fails
    /// (a usage error, exit 2) on plain HTTP to a non-loopback endpoint
    /// without `AWS_ALLOW_HTTP=true`, or on an unusable configuration.
    pub fn open(url: &S3Url) -> Result<Self, BucketError> {
        // reqwest is built without a default TLS provider: ring, as for the API.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let invalid = BucketError::Config;
        let shown = |endpoint: &str| shown_endpoint(endpoint);
        let allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|value| value == "true");
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_config(AmazonS3ConfigKey::ConditionalPut, "etag")
            // Retries are ours, one policy for every call (see `retry`).
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            });
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        if let Some(endpoint) = endpoint_from_env() {
            if url::Url::parse(&endpoint)
                .is_ok_and(|url| !url.username().is_empty() || url.password().is_some())
            {
                return Err(invalid(ConfigError::CredentialsInEndpoint(shown(
                    &endpoint,
                ))));
            }
            if plain_http_elsewhere(&endpoint) && !allow_http {
                return Err(invalid(ConfigError::PlainHttp(shown(&endpoint))));
            }
            // Plain HTTP to this machine (a local MinIO or moto) is allowed.
            builder = builder.with_allow_http(true);
        }
        let builder = super::credentials::decide(builder).map_err(|e| invalid(e.into()))?;
        // Two clients on one configuration. The archive's own small
        // objects (manifest, lease, snapshot) go with a signed payload and
        // a SHA-256 checksum, both object_store's, so the store refuses
        // them changed on the way. Media carry ours, computed once as
        // their bytes arrive: a single PUT sends it as its checksum
        // (`put_sealed`), and a multipart object is checked whole against
        // the SHA-256 the store computes when it seals it
        // (`set_sha256_metadata`), so its parts go unsigned
        // (`UNSIGNED-PAYLOAD`, what AWS's own SDKs send over TLS) and
        // without a checksum of their own: either would hash every byte a
        // second time on our side, and a checksum a third on the store's.
        // A store that refuses such parts (Object Lock) gets the checked
        // client's from then on (`upload_part`).
        let checked = builder
            .clone()
            .with_checksum_algorithm(Checksum::SHA256)
            .build()
            .map_err(|error| invalid(ConfigError::Builder(error)))?;
        let plain = builder
            .with_unsigned_payload(true)
            .build()
            .map_err(|error| invalid(ConfigError::Builder(error)))?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|error| invalid(ConfigError::Client(error)))?;
        let (plain, checked) = (Arc::new(plain), Arc::new(checked));
        Ok(Self {
            store: checked.clone(),
            multipart: plain.clone(),
            checked_multipart: checked,
            parts_need_checksums: Arc::default(),
            s3: Some((plain, http)),
            url: url.clone(),
            retries: StoreRetries::default(),
        })
    }

    /// An archive in a bucket held in memory, at `prefix` (unit tests).
    #[cfg(test)]
    pub fn in_memory(prefix: &str) -> Self {
        let store = Arc::new(object_store::memory::InMemory::new());
        Self {
            store: store.clone(),
            multipart: store.clone(),
            checked_multipart: store,
            parts_need_checksums: Arc::default(),
            s3: None,
            url: S3Url::parse(&format!("s3://bucket/{prefix}")).expect("a valid URL"),
            retries: StoreRetries::default(),
        }
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// Requests tried again after a transient failure, so far (every
    /// clone of this bucket counts in the same place).
    pub fn retries(&self) -> u64 {
        self.retries.count()
    }

    /// The full key of `relative`, checked: `/`-separated segments of
    /// printable characters, none empty, `.` or `..`.
    fn key(&self, relative: &str) -> Result<KeyPath, BucketError> {
        let plain = !relative.is_empty()
            && relative.split('/').all(|s| {
                !s.is_empty() && s != "." && s != ".." && !s.chars().any(char::is_control)
            });
        let unsafe_key = || BucketError::UnsafeKey {
            key: relative.to_owned(),
        };
        if !plain {
            return Err(unsafe_key());
        }
        KeyPath::parse(self.url.key(relative)).map_err(|_| unsafe_key())
    }

    /// The key relative to the archive's prefix (None if outside it).
    fn relative(&self, full: &KeyPath) -> Option<String> {
        let full = full.as_ref();
        if self.url.prefix.is_empty() {
            return Some(full.to_owned());
        }
        full.strip_prefix(&self.url.prefix)?
            .strip_prefix('/')
            .map(str::to_owned)
    }

    /// Every object under `relative_folder` (e.g. `media`): relative key → size.
    pub async fn list(&self, relative_folder: &str) -> Result<HashMap<String, u64>, BucketError> {
        Ok(self
            .list_written(relative_folder)
            .await?
            .into_iter()
            .map(|(key, (size, _))| (key, size))
            .collect())
    }

    /// Every object under `relative_folder`: relative key → (size, its
    /// `Last-Modified` in epoch ms by the store's clock).
    pub async fn list_written(
        &self,
        relative_folder: &str,
    ) -> Result<HashMap<String, (u64, i64)>, BucketError> {
        let folder = self.key(relative_folder)?;
        let shown = folder.to_string();
        self.retries
            .run("listing", &shown, || {
                let folder = &folder;
                async move {
                    let mut found = HashMap::new();
                    let mut listing = self.store.list(Some(folder));
                    while let Some(meta) = listing.next().await {
                        let meta = meta?;
                        if let Some(relative) = self.relative(&meta.location) {
                            let written = meta.last_modified.timestamp_millis();
                            found.insert(relative, (meta.size, written));
                        }
                    }
                    Ok(found)
                }
            })
            .await
            .map_err(|error| BucketError::of("listing", &shown, error))
    }

    /// Size, sha256 metadata and type of an object; None when there is none.
    pub async fn head(&self, relative: &str) -> Result<Option<ObjectInfo>, BucketError> {
        let key = self.key(relative)?;
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let found = self
            .retries
            .run("reading", key.as_ref(), || {
                let (key, options) = (&key, options.clone());
                async move {
                    match self.store.get_opts(key, options).await {
                        Ok(result) => Ok(Some(result)),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(error) => Err(error),
                    }
                }
            })
            .await
            .map_err(|error| BucketError::of("reading", key.as_ref(), error))?;
        Ok(found.map(|result| ObjectInfo {
            size: result.meta.size,
            sha256: result
                .attributes
                .get(&Attribute::Metadata(SHA256_METADATA.into()))
                .map(|value| value.to_string()),
            content_type: result
                .attributes
                .get(&Attribute::ContentType)
                .map(|value| value.to_string()),
            e_tag: result.meta.e_tag,
            last_modified: result.meta.last_modified.timestamp_millis(),
        }))
    }

    /// The object's bytes as a stream; None when there is none. The
    /// request is retried; a failure once the bytes flow is the caller's.
    pub async fn read(
        &self,
        relative: &str,
    ) -> Result<Option<BoxStream<'static, Result<Bytes, BucketError>>>, BucketError> {
        let key = self.key(relative)?;
        let found = self
            .retries
            .run("reading", key.as_ref(), || {
                let key = &key;
                async move {
                    match self.store.get(key).await {
                        Ok(result) => Ok(Some(result)),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(error) => Err(error),
                    }
                }
            })
            .await
            .map_err(|error| BucketError::of("reading", key.as_ref(), error))?;
        let shown = key.to_string();
        Ok(found.map(|result| {
            result
                .into_stream()
                .map_err(move |error| BucketError::of("reading", &shown, error))
                .boxed()
        }))
    }

    /// The whole object in memory (small objects only: leases, snapshots).
    pub async fn read_all(&self, relative: &str) -> Result<Option<Bytes>, BucketError> {
        Ok(self
            .read_with_e_tag(relative)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// Writes a whole object in one PUT, with its type and (when given)
    /// its sha256 as metadata. Returns its new ETag.
    ///
    /// A conditional write (`Create`, `Replace`) whose answer was lost has
    /// been applied: tried again, its precondition fails on the object it
    /// wrote itself. So a precondition failing after a retry is checked
    /// against what the store now holds: the very bytes written (a lease
    /// names its host, pid and run id, so no other writer's are the same)
    /// are a success, with the object's ETag; anything else stays the
    /// precondition it is. A plain overwrite needs no check: trying it
    /// again writes the same bytes again.
    pub async fn put(
        &self,
        relative: &str,
        payload: PutPayload,
        content_type: &str,
        sha256: Option<&str>,
        mode: WriteMode,
    ) -> Result<Option<String>, BucketError> {
        let key = self.key(relative)?;
        let mode = match mode {
            WriteMode::Overwrite => PutMode::Overwrite,
            WriteMode::Create => PutMode::Create,
            WriteMode::Replace(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag),
                version: None,
            }),
        };
        let options = PutOptions {
            mode,
            attributes: attributes(content_type, sha256),
            ..PutOptions::default()
        };
        let mut tries = 0;
        let written = self
            .retries
            .run("writing", key.as_ref(), || {
                tries += 1;
                let (key, payload, options) = (&key, payload.clone(), options.clone());
                async move { self.store.put_opts(key, payload, options).await }
            })
            .await;
        match written {
            Ok(result) => Ok(result.e_tag),
            Err(
                error @ (object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }),
            ) if tries > 1 => match self.read_with_e_tag(relative).await? {
                Some((bytes, e_tag)) if bytes == Bytes::from(payload) => {
                    tracing::info!(
                        "object storage: the write of {key} had landed, its answer lost"
                    );
                    Ok(e_tag)
                }
                _ => Err(BucketError::of("writing", key.as_ref(), error)),
            },
            Err(error) => Err(BucketError::of("writing", key.as_ref(), error)),
        }
    }

    /// Writes a media object whose sha256 (lowercase hex) is `sha256` at
    /// `relative`, replacing what is there, in one PUT that carries the
    /// sha256 twice: as `x-amz-meta-sha256` (the seal `verify` and `HEAD`
    /// read) and as `x-amz-checksum-sha256`, which the store checks the
    /// bytes it received against, refusing them (`BadDigest`) when one
    /// changed on the way. The sha256 is the one computed as the bytes
    /// arrived, so no byte is hashed a second time on our side. Trying it
    /// again after a lost answer writes the same bytes again.
    pub async fn put_sealed(
        &self,
        relative: &str,
        payload: PutPayload,
        content_type: &str,
        sha256: &str,
    ) -> Result<(), BucketError> {
        let Some((s3, http)) = &self.s3 else {
            // In memory: the same object through object_store.
            self.put(
                relative,
                payload,
                content_type,
                Some(sha256),
                WriteMode::Overwrite,
            )
            .await?;
            return Ok(());
        };
        let key = self.key(relative)?;
        let failed = |source: SignedError| BucketError::Request {
            action: "writing",
            key: key.to_string(),
            source,
        };
        let digest = hex::decode(sha256)
            .ok()
            .filter(|digest| digest.len() == 32)
            .ok_or_else(|| failed(SignedError::NotASha256(sha256.chars().take(80).collect())))?;
        let header = |value: &str| {
            HeaderValue::from_str(value).map_err(|error| failed(SignedError::Header(error)))
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, header(content_type)?);
        headers.insert("x-amz-meta-sha256", header(sha256)?);
        headers.insert(
            "x-amz-checksum-sha256",
            header(&base64::engine::general_purpose::STANDARD.encode(digest))?,
        );
        let length = payload.content_length();
        let (s3, http) = (s3.as_ref(), http);
        self.retries
            .run("writing", key.as_ref(), || {
                // The chunks as they were written: no copy into
                // one buffer, so the length is given (S3 wants one).
                let body = reqwest::Body::wrap_stream(futures::stream::iter(
                    payload.clone().into_iter().map(Ok::<_, std::io::Error>),
                ));
                let headers = headers.clone();
                let key = &key;
                async move {
                    let url = presign(s3, Method::PUT, key, &headers).await?;
                    let request = http
                        .put(url)
                        .headers(headers)
                        .header(CONTENT_LENGTH, length)
                        .body(body);
                    expect_answer(request, None).await.map(|_| ())
                }
            })
            .await
            .map_err(|hinted| failed(hinted.error))
    }

    /// The whole object (a small one) and its ETag; None when there is none.
    async fn read_with_e_tag(
        &self,
        relative: &str,
    ) -> Result<Option<(Bytes, Option<String>)>, BucketError> {
        let key = self.key(relative)?;
        self.retries
            .run("reading", key.as_ref(), || {
                let key = &key;
                async move {
                    match self.store.get(key).await {
                        Ok(result) => {
                            let e_tag = result.meta.e_tag.clone();
                            result.bytes().await.map(|bytes| Some((bytes, e_tag)))
                        }
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(error) => Err(error),
                    }
                }
            })
            .await
            .map_err(|error| BucketError::of("reading", key.as_ref(), error))
    }

    pub async fn delete(&self, relative: &str) -> Result<(), BucketError> {
        let key = self.key(relative)?;
        self.retries
            .run("deleting", key.as_ref(), || {
                let key = &key;
                async move {
                    match self.store.delete(key).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(error) => Err(error),
                    }
                }
            })
            .await
            .map_err(|error| BucketError::of("deleting", key.as_ref(), error))
    }

    /// Server-side copy (the bytes never come down).
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), BucketError> {
        let (from_key, to_key) = (self.key(from)?, self.key(to)?);
        self.retries
            .run("copying to", to_key.as_ref(), || {
                self.store.copy(&from_key, &to_key)
            })
            .await
            .map_err(|error| BucketError::of("copying to", to_key.as_ref(), error))
    }

    /// Starts a multipart upload to `relative` (nothing is visible there
    /// until [`Bucket::complete_upload`]). An upload a lost answer left
    /// unknown to us is aborted at the end of the run (see
    /// `BucketRun::finish`).
    /// Also whether its parts carry checksums of their own ([`Checks`]):
    /// they do once the store has asked for them. Its parts and its
    /// completion go the same way.
    pub async fn begin_upload(
        &self,
        relative: &str,
        content_type: &str,
    ) -> Result<(MultipartId, Checks), BucketError> {
        let key = self.key(relative)?;
        let options = PutMultipartOptions {
            attributes: attributes(content_type, None),
            ..PutMultipartOptions::default()
        };
        let checks = if self.parts_need_checksums.load(Ordering::SeqCst) {
            Checks::Sha256
        } else {
            Checks::None
        };
        let client = self.multipart_client(checks);
        self.retries
            .run("starting an upload to", key.as_ref(), || {
                client.create_multipart_opts(&key, options.clone())
            })
            .await
            .map(|id| (id, checks))
            .map_err(|error| BucketError::of("starting an upload to", key.as_ref(), error))
    }

    fn multipart_client(&self, checks: Checks) -> &dyn MultipartStore {
        match checks {
            Checks::None => self.multipart.as_ref(),
            Checks::Sha256 => self.checked_multipart.as_ref(),
        }
    }

    /// A part refused for want of a checksum of its own (a bucket with
    /// Object Lock) makes every later upload a checked one, and fails
    /// with [`BucketError::PartChecksumsRequired`].
    pub async fn upload_part(
        &self,
        relative: &str,
        (id, checks): (&MultipartId, Checks),
        index: usize,
        payload: PutPayload,
    ) -> Result<PartId, BucketError> {
        let key = self.key(relative)?;
        let client = self.multipart_client(checks);
        let sent = self
            .retries
            .run("uploading a part of", key.as_ref(), || {
                client.put_part(&key, id, index, payload.clone())
            })
            .await;
        match sent {
            Ok(part) => Ok(part),
            Err(error) if checks == Checks::None && demands_part_checksums(&error) => {
                if !self.parts_need_checksums.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        "object storage: the store asks for a checksum on every part (a bucket with Object Lock does): parts carry a SHA-256 of their own from now on"
                    );
                }
                Err(BucketError::PartChecksumsRequired {
                    key: key.to_string(),
                })
            }
            Err(error) => Err(BucketError::of("uploading a part of", key.as_ref(), error)),
        }
    }

    /// Makes the upload's object visible at its key, whole: `size` bytes
    /// whose sha256 is `sha256`.
    ///
    /// A completion whose answer was lost has been applied: trying it
    /// again finds the upload gone (`NoSuchUpload`, a 404). So a 404 after
    /// a retry is checked against what the store now holds — the object
    /// at its key with our size and our sha256 (its metadata if it has
    /// one, else its bytes hashed as they stream from the store) — and is
    /// a success only then. A 404 on the first try, or an object that is
    /// not ours (an older one at the key, say), stays a failure.
    pub async fn complete_upload(
        &self,
        relative: &str,
        (id, checks): (&MultipartId, Checks),
        parts: Vec<PartId>,
        (size, sha256): (u64, &str),
    ) -> Result<(), BucketError> {
        let key = self.key(relative)?;
        let client = self.multipart_client(checks);
        let mut tries = 0;
        let completed = self
            .retries
            .run("completing the upload of", key.as_ref(), || {
                tries += 1;
                client.complete_multipart(&key, id, parts.clone())
            })
            .await;
        match completed {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) if tries > 1 => {
                if self.holds(relative, size, sha256).await? {
                    tracing::info!(
                        "object storage: the completion of {key} had landed, its answer lost"
                    );
                    return Ok(());
                }
                Err(BucketError::Store {
                    action: "completing the upload of",
                    key: key.to_string(),
                    source: object_store::Error::NotFound {
                        path: key.to_string(),
                        source: "the upload is gone and the object there is not the one uploaded"
                            .into(),
                    },
                })
            }
            Err(error) => Err(BucketError::of(
                "completing the upload of",
                key.as_ref(),
                error,
            )),
        }
    }

    /// Whether the object at `relative` is `size` bytes whose sha256 is
    /// `sha256`: by its metadata where it carries one, else by its bytes,
    /// hashed as they stream from the store.
    pub async fn holds(
        &self,
        relative: &str,
        size: u64,
        sha256: &str,
    ) -> Result<bool, BucketError> {
        let Some(info) = self.head(relative).await? else {
            return Ok(false);
        };
        if info.size != size {
            return Ok(false);
        }
        if let Some(found) = info.sha256 {
            return Ok(found == sha256);
        }
        Ok(self.stream_sha256(relative).await?.as_deref() == Some(sha256))
    }

    /// The sha256 (lowercase hex) of the object's bytes, hashed as they
    /// stream from the store; None when there is no object.
    pub async fn stream_sha256(&self, relative: &str) -> Result<Option<String>, BucketError> {
        use sha2::{Digest, Sha256};
        let Some(mut stream) = self.read(relative).await? else {
            return Ok(None);
        };
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    /// Gives an object a multipart upload wrote its sha256 as metadata
    /// (S3 takes metadata when an upload starts, before the hash is
    /// known): a CopyObject onto itself with `x-amz-metadata-directive:
    /// REPLACE`, `x-amz-meta-sha256`, its type and
    /// `x-amz-checksum-algorithm: SHA256` (so it also gets a full-object
    /// SHA-256 checksum), sent to a URL that
    /// object_store presigns with those headers bound to the signature.
    /// The bytes are copied server-side and stay as they are.
    ///
    /// The answer carries the store's SHA-256 of the whole object where
    /// the store gives one: it must be `sha256`, else the object holds
    /// other bytes than were sent, is deleted, and the call fails
    /// ([`BucketError::OtherBytes`]). That is the end-to-end check of a
    /// multipart object, whose parts go without checksums of their own.
    ///
    /// Why a copy and not a checksum given at completion: S3 keeps a
    /// full-object checksum of a multipart upload
    /// (`x-amz-checksum-type: FULL_OBJECT`) for the CRC algorithms only;
    /// with SHA-256 it keeps a composite one (the sha256 of the parts'
    /// sha256s, `…-N`), which is not the file's sha256 and cannot be
    /// compared with the one in `SHA256SUMS`. So the copy, a second write
    /// on the store's side, is what puts the file's own sha256 on the
    /// object.
    pub async fn set_sha256_metadata(
        &self,
        relative: &str,
        size: u64,
        content_type: &str,
        sha256: &str,
    ) -> Result<(), BucketError> {
        let key = self.key(relative)?;
        let failed = |source: SignedError| BucketError::Metadata {
            key: key.to_string(),
            source,
        };
        if size > COPY_LIMIT {
            return Err(failed(SignedError::TooLarge));
        }
        let Some((s3, http)) = &self.s3 else {
            // A store without CopyObject (in memory): written again whole.
            let bytes = self.read_all(relative).await?.unwrap_or_default();
            self.put(
                relative,
                bytes.into(),
                content_type,
                Some(sha256),
                WriteMode::Overwrite,
            )
            .await?;
            return Ok(());
        };
        let header = |value: &str| {
            HeaderValue::from_str(value).map_err(|error| failed(SignedError::Header(error)))
        };
        let mut headers = HeaderMap::new();
        let source = format!("/{}/{}", self.url.bucket, encode_key(key.as_ref()));
        headers.insert("x-amz-copy-source", header(&source)?);
        headers.insert("x-amz-metadata-directive", header("REPLACE")?);
        headers.insert("x-amz-meta-sha256", header(sha256)?);
        headers.insert(CONTENT_TYPE, header(content_type)?);
        // The copy gets a full-object SHA-256 checksum of its own, which
        // the store's answer carries: compared with ours below.
        headers.insert("x-amz-checksum-algorithm", header("SHA256")?);
        let (s3, http) = (s3.as_ref(), http);
        let answer = self
            .retries
            .run("setting the sha256 metadata of", key.as_ref(), || {
                self.send_signed(s3, http, Method::PUT, &key, headers.clone())
            })
            .await
            .map_err(|hinted| failed(hinted.error))?;
        // The store's own SHA-256 of the object it now holds, where it
        // says it (S3 and moto do; some stores do not): the one end-to-end
        // check of a multipart object's bytes, whose parts went without
        // checksums. Other bytes must not keep the claim just written.
        // A composite checksum (`…-N`, of parts' checksums) is none.
        let Some(stored) = xml_values(&answer, "ChecksumSHA256")
            .pop()
            .and_then(|value| base64::engine::general_purpose::STANDARD.decode(value).ok())
            .filter(|digest| digest.len() == 32)
            .map(hex::encode)
        else {
            return Ok(());
        };
        if stored.eq_ignore_ascii_case(sha256) {
            return Ok(());
        }
        let outcome = match self.delete(relative).await {
            Ok(()) => "it was deleted, and the media is fetched again",
            Err(_) => {
                "deleting it failed too: it stays unverified, and `vault-mirror verify` reports it"
            }
        };
        Err(BucketError::OtherBytes {
            key: key.to_string(),
            stored,
            sent: sha256.to_owned(),
            outcome,
        })
    }

    /// Presigns `method` on `key` with `headers` bound to the signature,
    /// sends it, and expects a CopyObject's answer (which may be a 200
    /// with an error in its body): its body.
    async fn send_signed(
        &self,
        s3: &AmazonS3,
        http: &reqwest::Client,
        method: Method,
        key: &KeyPath,
        headers: HeaderMap,
    ) -> Result<String, Hinted<SignedError>> {
        let url = presign(s3, method.clone(), key, &headers).await?;
        expect_answer(
            http.request(method, url).headers(headers),
            Some("CopyObjectResult"),
        )
        .await
    }

    /// The store's own list of multipart uploads started under the
    /// archive's `media/` and `.vault-mirror/` and neither completed nor
    /// aborted (ListMultipartUploads, which object_store has no call for:
    /// a GET on the bucket presigned with its query): (relative key,
    /// upload id). Empty on a store held in memory.
    pub async fn incomplete_uploads(&self) -> Result<Vec<(String, String)>, BucketError> {
        let Some((s3, http)) = &self.s3 else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for folder in ["media/", ".vault-mirror/"] {
            let prefix = self.url.key(folder);
            let mut markers = (String::new(), String::new());
            loop {
                let page = self
                    .retries
                    .run("listing the uploads under", &prefix, || {
                        self.list_uploads_once(s3, http, &prefix, &markers)
                    })
                    .await
                    .map_err(|hinted| BucketError::Request {
                        action: "listing the incomplete uploads under",
                        key: prefix.clone(),
                        source: hinted.error,
                    })?;
                for (key, id) in xml_values(&page, "Key")
                    .into_iter()
                    .zip(xml_values(&page, "UploadId"))
                {
                    if let Some(relative) = self.relative(&KeyPath::from(key.as_str())) {
                        found.push((relative, id));
                    }
                }
                let next = (
                    xml_values(&page, "NextKeyMarker").pop().unwrap_or_default(),
                    xml_values(&page, "NextUploadIdMarker")
                        .pop()
                        .unwrap_or_default(),
                );
                if !page.contains("<IsTruncated>true</IsTruncated>") || next.0.is_empty() {
                    break;
                }
                markers = next;
            }
        }
        Ok(found)
    }

    async fn list_uploads_once(
        &self,
        s3: &AmazonS3,
        http: &reqwest::Client,
        prefix: &str,
        (key_marker, id_marker): &(String, String),
    ) -> Result<String, Hinted<SignedError>> {
        let plain = |error| Hinted {
            error,
            retry_after: None,
        };
        let mut query = vec![("uploads", ""), ("prefix", prefix)];
        if !key_marker.is_empty() {
            query.push(("key-marker", key_marker));
            query.push(("upload-id-marker", id_marker));
        }
        let options = SignedUrlOptions::default().with_query(query);
        let url = s3
            .signed_url_opts(
                Method::GET,
                &KeyPath::from(""),
                Duration::from_secs(300),
                &options,
            )
            .await
            .map_err(|error| plain(SignedError::Sign(error)))?;
        // `ListMultipartUploadsResult` from S3; matched by its stem, as
        // `ListParts` is, for stores that name their answers otherwise.
        expect_answer(http.get(url), Some("ListMultipartUploads")).await
    }

    /// The parts the store holds of an upload (ListParts, which
    /// object_store has no call for: a GET on the key presigned with its
    /// query), in order; None when the upload is gone (`NoSuchUpload`:
    /// completed, or aborted by us, another client or a lifecycle rule).
    /// None on a store held in memory, which cannot list them.
    pub async fn list_parts(
        &self,
        relative: &str,
        id: &MultipartId,
    ) -> Result<Option<Vec<ListedPart>>, BucketError> {
        let key = self.key(relative)?;
        let Some((s3, http)) = &self.s3 else {
            return Ok(None);
        };
        let mut found = Vec::new();
        let mut marker = String::new();
        loop {
            let page = self
                .retries
                .run("listing the parts of the upload of", key.as_ref(), || {
                    let mut query = vec![("uploadId", id.as_str())];
                    if !marker.is_empty() {
                        query.push(("part-number-marker", marker.as_str()));
                    }
                    let options = SignedUrlOptions::default().with_query(query);
                    let key = &key;
                    async move {
                        let url = s3
                            .signed_url_opts(Method::GET, key, Duration::from_secs(300), &options)
                            .await
                            .map_err(|error| Hinted {
                                error: SignedError::Sign(error),
                                retry_after: None,
                            })?;
                        // `ListParts`: S3 answers `ListPartsResult`, some
                        // stores (moto before 5.2.6) `ListPartsResponse`.
                        expect_answer(http.get(url), Some("ListParts")).await
                    }
                })
                .await;
            let page = match page {
                Ok(page) => page,
                Err(Hinted {
                    error: SignedError::Refused(status),
                    ..
                }) if status == reqwest::StatusCode::NOT_FOUND => return Ok(None),
                Err(hinted) => {
                    return Err(BucketError::Request {
                        action: "listing the parts of the upload of",
                        key: key.to_string(),
                        source: hinted.error,
                    });
                }
            };
            for part in page.split("<Part>").skip(1) {
                let value = |name| xml_values(part, name).into_iter().next();
                let number = value("PartNumber").and_then(|text| text.parse().ok());
                let size = value("Size").and_then(|text| text.parse().ok());
                if let (Some(number), Some(size), Some(e_tag)) = (number, size, value("ETag")) {
                    found.push(ListedPart {
                        number,
                        size,
                        e_tag,
                    });
                }
            }
            let next = xml_values(&page, "NextPartNumberMarker")
                .pop()
                .unwrap_or_default();
            if !page.contains("<IsTruncated>true</IsTruncated>")
                || next.is_empty()
                || next == marker
            {
                break;
            }
            marker = next;
        }
        Ok(Some(found))
    }

    /// Drops an upload and every part of it (an upload already gone is fine).
    pub async fn abort_upload(&self, relative: &str, id: &MultipartId) -> Result<(), BucketError> {
        let key = self.key(relative)?;
        self.retries
            .run("aborting the upload of", key.as_ref(), || {
                let key = &key;
                async move {
                    match self.multipart.abort_multipart(key, id).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(error) => Err(error),
                    }
                }
            })
            .await
            .map_err(|error| BucketError::of("aborting the upload of", key.as_ref(), error))
    }
}

impl StoreFault for SignedError {
    fn fault(&self) -> Fault {
        match self {
            // No answer, or no credential to sign with yet: both may pass.
            SignedError::Send(_) | SignedError::Sign(_) => Fault::Transient(None),
            // A 200 whose body is no CopyObjectResult is S3's way to say
            // the copy failed midway (an InternalError): try again.
            SignedError::Unexpected { .. } => Fault::Transient(None),
            // Never a success: a 200 without its answer is `Unexpected`.
            SignedError::Refused(status) => {
                if crate::archive::bucket::retry::transient_status(status.as_u16()) {
                    Fault::Transient(None)
                } else {
                    Fault::Permanent
                }
            }
            SignedError::TooLarge | SignedError::Header(_) | SignedError::NotASha256(_) => {
                Fault::Permanent
            }
        }
    }
}

/// A URL for `method` on `key`, presigned by object_store with `headers`
/// bound to the signature (valid five minutes: it is sent at once).
async fn presign(
    s3: &AmazonS3,
    method: Method,
    key: &KeyPath,
    headers: &HeaderMap,
) -> Result<url::Url, Hinted<SignedError>> {
    let mut options = SignedUrlOptions::default();
    for (name, value) in headers {
        options = options.with_signed_header(name.clone(), value.clone());
    }
    s3.signed_url_opts(method, key, Duration::from_secs(300), &options)
        .await
        .map_err(|error| Hinted {
            error: SignedError::Sign(error),
            retry_after: None,
        })
}

/// Sends a presigned request and returns its answer's body, which must be
/// a success naming `result` where one is named (S3 may answer 200 with
/// an error in the body of a CopyObject).
async fn expect_answer(
    request: reqwest::RequestBuilder,
    result: Option<&'static str>,
) -> Result<String, Hinted<SignedError>> {
    // The URL holds a signature: never shown (`without_url`).
    let response = request.send().await.map_err(|error| Hinted {
        error: SignedError::Send(error.without_url()),
        retry_after: None,
    })?;
    let status = response.status();
    let retry_after = crate::api::retry_after(response.headers(), crate::now_ms());
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Hinted {
            error: SignedError::Refused(status),
            retry_after,
        });
    }
    if let Some(result) = result.filter(|result| !body.contains(result)) {
        return Err(Hinted {
            error: SignedError::Unexpected {
                expected: result,
                body: body.chars().take(200).collect(),
            },
            retry_after,
        });
    }
    Ok(body)
}

/// The text of every `<name>` element of `xml`, unescaped, in order
/// (inside `<Upload>` a `Key` comes before its `UploadId`).
fn xml_values(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(value, _)| value))
        .map(|value| {
            value
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

fn attributes(content_type: &str, sha256: Option<&str>) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, content_type.to_owned().into());
    if let Some(sha256) = sha256 {
        attributes.insert(
            Attribute::Metadata(SHA256_METADATA.into()),
            sha256.to_owned().into(),
        );
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_id_names_its_e_tag_with_or_without_checksums() {
        let id = |content_id: &str| PartId {
            content_id: content_id.to_owned(),
        };
        assert_eq!(
            part_e_tag(&id(
                "<PartMetadata><e_tag>\"a7\"</e_tag><checksum_sha256>x=</checksum_sha256></PartMetadata>"
            )),
            "\"a7\""
        );
        assert_eq!(part_e_tag(&id("\"b8\"")), "\"b8\"");
    }

    /// The same bytes kept, the same `%XX` (upper case) for every other byte,
    /// as the hand-written encoder this replaced.
    #[test]
    fn copy_source_keeps_unreserved_and_slash() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        let key = format!("{every_ascii}/café/日本/😀 x+y");
        let expected: String = key
            .bytes()
            .map(|byte| match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                    char::from(byte).to_string()
                }
                byte => format!("%{byte:02X}"),
            })
            .collect();
        assert_eq!(encode_key(&key), expected);
        assert_eq!(
            encode_key("lists/a b/ü~x_1.jpg"),
            "lists/a%20b/%C3%BC~x_1.jpg"
        );
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(!plain_http_elsewhere("http://127.0.0.1:9000"));
        assert!(!plain_http_elsewhere("http://localhost:9000"));
        assert!(!plain_http_elsewhere("http://[::1]:9000"));
        assert!(!plain_http_elsewhere("https://s3.example.com"));
        assert!(plain_http_elsewhere("http://10.0.0.5:9000"));
        assert!(plain_http_elsewhere("http://minio.example.com"));
    }
}
