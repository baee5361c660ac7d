//! A proxy on loopback between vault-mirror and moto that misbehaves the
//! way object stores do now and then: on a schedule it answers `503
//! SlowDown` or `500 InternalError` without forwarding, resets the
//! connection before forwarding, or forwards the request (the store
//! applies it) and then resets the connection instead of answering (a
//! lost answer), or forwards it stripped of `If-None-Match` and `If-Match`
//! (a store that ignores conditional writes: some older Ceph RGW and NAS
//! gateways accept the headers and do not honour them), or forwards it
//! with a byte of its body changed. Every other request is forwarded as
//! it came.
//!
//! One request a connection: the proxy reads the request head and its
//! `Content-Length` body, sends it to moto with `Connection: close`, and
//! sends moto's answer back with `Connection: close`, so each request is
//! seen (and counted) on its own. vault-mirror signs for the proxy's host;
//! moto does not check signatures.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    SlowDown,
    InternalError,
    /// The connection reset before the request reaches the store.
    Reset,
    /// The request applied by the store, its answer replaced by a reset.
    LoseAnswer,
    /// `404 NoSuchUpload`, without forwarding: what a store that forgets
    /// a completed upload answers to its completion tried again (moto, as
    /// AWS, answers that one as it did the first).
    NoSuchUpload,
    /// Forwarded without its `If-None-Match` and `If-Match` headers: the
    /// store applies the write whatever is there.
    IgnoreConditions,
    /// Forwarded with one byte of its body changed (the middle one): a
    /// byte changed on the way, after the client hashed it (a faulty NIC
    /// or middlebox where nothing like TLS guards the bytes). A request
    /// that carries `x-amz-checksum-sha256` is then answered as S3 answers
    /// it (`400 BadDigest`, nothing stored), which moto does not: it keeps
    /// whatever bytes came, under the checksum it was told.
    FlipByte,
    /// `400 InvalidRequest` as S3 answers a part without a checksum of
    /// its own in a bucket with Object Lock, without forwarding.
    PartChecksumRequired,
    /// `501 NotImplemented`, without forwarding: a store without the
    /// request (s3s-fs answers ListMultipartUploads so).
    NotImplemented,
}

/// A request as the schedule sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 0 for the first request through the proxy.
    pub number: usize,
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names, lower case, with their values.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

type Schedule = dyn Fn(&Seen) -> Option<Fault> + Send + Sync;

/// The proxy, serving on its own thread until dropped.
pub struct FaultProxy {
    endpoint: String,
    requests: Arc<AtomicUsize>,
    injected: Arc<Mutex<Vec<(Seen, Fault)>>>,
    _runtime: tokio::runtime::Runtime,
}

impl FaultProxy {
    /// A proxy to `upstream` (moto's endpoint) faulting as `schedule` says.
    pub fn start(
        upstream: &str,
        schedule: impl Fn(&Seen) -> Option<Fault> + Send + Sync + 'static,
    ) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let requests = Arc::new(AtomicUsize::new(0));
        let injected = Arc::new(Mutex::new(Vec::new()));
        let schedule: Arc<Schedule> = Arc::new(schedule);
        let (counter, log) = (requests.clone(), injected.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, schedule) = (upstream.clone(), schedule.clone());
                let (counter, log) = (counter.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &*schedule, &counter, &log).await;
                });
            }
        });
        FaultProxy {
            endpoint,
            requests,
            injected,
            _runtime: runtime,
        }
    }

    /// Its URL (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Requests seen so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The faults injected so far, with the requests they hit.
    pub fn injected(&self) -> Vec<(Seen, Fault)> {
        self.injected.lock().unwrap().clone()
    }
}

/// Where a blank line ends a head, if it does in `bytes`.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Reads a request (head and `Content-Length` body) from `stream`.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let end = loop {
        if let Some(end) = head_end(&bytes) {
            break end;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes.extend_from_slice(&chunk[..read]);
    };
    let mut body = bytes.split_off(end);
    let head = bytes;
    let text = String::from_utf8_lossy(&head).to_lowercase();
    assert!(
        !text.contains("transfer-encoding: chunked"),
        "the proxy reads Content-Length bodies only"
    );
    let length: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while body.len() < length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Ok((head, body))
}

/// `head` with its `Connection` header replaced by `Connection: close`.
fn closing(head: &[u8]) -> Vec<u8> {
    without(head, &["connection:"])
}

/// `head` without the headers `dropped` names (lower case, with their
/// colon), and with `Connection: close`.
fn without(head: &[u8], dropped: &[&str]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<&str> = text
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .filter(|line| {
            let lower = line.to_lowercase();
            !lower.starts_with("connection:") && !dropped.iter().any(|name| lower.starts_with(name))
        })
        .collect();
    lines.insert(1, "Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

fn seen(number: usize, head: &[u8]) -> Seen {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    Seen {
        number,
        method,
        target,
        headers,
    }
}

/// Drops the connection with a TCP reset (SO_LINGER 0).
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

impl Fault {
    /// The error answered in the store's place, without forwarding, for
    /// the faults that are one; None for those that act otherwise.
    fn answer(self) -> Option<Vec<u8>> {
        let (status, code) = match self {
            Fault::SlowDown => ("503 Slow Down", "SlowDown"),
            Fault::InternalError => ("500 Internal Server Error", "InternalError"),
            Fault::NoSuchUpload => ("404 Not Found", "NoSuchUpload"),
            Fault::NotImplemented => ("501 Not Implemented", "NotImplemented"),
            Fault::PartChecksumRequired => {
                return Some(error_answer_saying(
                    "400 Bad Request",
                    "InvalidRequest",
                    "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Part requests with Object Lock parameters",
                ));
            }
            Fault::Reset | Fault::LoseAnswer | Fault::IgnoreConditions | Fault::FlipByte => {
                return None;
            }
        };
        Some(error_answer(status, code))
    }
}

fn error_answer(status: &str, code: &str) -> Vec<u8> {
    error_answer_saying(status, code, "injected by the test proxy")
}

fn error_answer_saying(status: &str, code: &str, message: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>0</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    schedule: &Schedule,
    counter: &AtomicUsize,
    log: &Mutex<Vec<(Seen, Fault)>>,
) -> std::io::Result<()> {
    let (head, body) = read_request(&mut client).await?;
    let request = seen(counter.fetch_add(1, Ordering::SeqCst), &head);
    let fault = schedule(&request);
    if let Some(fault) = fault {
        log.lock().unwrap().push((request.clone(), fault));
    }
    match fault {
        Some(Fault::Reset) => {
            reset(client);
            return Ok(());
        }
        Some(fault) => {
            if let Some(answer) = fault.answer() {
                client.write_all(&answer).await?;
                return client.shutdown().await;
            }
        }
        None => {}
    }
    let mut body = body;
    let middle = body.len() / 2;
    if fault == Some(Fault::FlipByte)
        && let Some(byte) = body.get_mut(middle)
    {
        *byte ^= 0x20;
        if let Some(claimed) = request.header("x-amz-checksum-sha256") {
            use base64::Engine as _;
            use sha2::Digest as _;
            let found =
                base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
            if found != claimed {
                let answer = error_answer("400 Bad Request", "BadDigest");
                client.write_all(&answer).await?;
                return client.shutdown().await;
            }
        }
    }
    let head = match fault {
        Some(Fault::IgnoreConditions) => without(&head, &["if-none-match:", "if-match:"]),
        _ => closing(&head),
    };
    let mut store = TcpStream::connect(upstream).await?;
    store.write_all(&head).await?;
    store.write_all(&body).await?;
    let mut answer = Vec::new();
    store.read_to_end(&mut answer).await?;
    if fault == Some(Fault::LoseAnswer) {
        reset(client);
        return Ok(());
    }
    let end = head_end(&answer).unwrap_or(answer.len());
    client.write_all(&closing(&answer[..end])).await?;
    client.write_all(&answer[end..]).await?;
    client.shutdown().await
}

/// The schedule of the long test: every `every`-th request (from the
/// `from`-th) is faulted, the kinds in turn, on every kind of request: a
/// lost answer on a POST (a multipart upload's creation or completion) or
/// on a conditional write is one vault-mirror must make safe by checking
/// what the store holds.
pub fn every(every: usize, from: usize) -> impl Fn(&Seen) -> Option<Fault> + Send + Sync {
    const KINDS: [Fault; 4] = [
        Fault::SlowDown,
        Fault::Reset,
        Fault::InternalError,
        Fault::LoseAnswer,
    ];
    move |request| {
        if request.number < from || !(request.number - from).is_multiple_of(every) {
            return None;
        }
        Some(KINDS[((request.number - from) / every) % KINDS.len()])
    }
}

/// A schedule that loses the answer of the first request `matches`
/// picks (and faults nothing else).
pub fn lose_first(
    matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Option<Fault> + Send + Sync {
    let lost = AtomicBool::new(false);
    move |request| {
        (matches(request) && !lost.swap(true, Ordering::SeqCst)).then_some(Fault::LoseAnswer)
    }
}

/// A store that ignores conditional writes: every conditional request is
/// forwarded without its conditions.
pub fn ignoring_conditions() -> impl Fn(&Seen) -> Option<Fault> + Send + Sync {
    |request| {
        (request.header("if-none-match").is_some() || request.header("if-match").is_some())
            .then_some(Fault::IgnoreConditions)
    }
}

/// Whether `request` writes a media object's bytes: a one-PUT object
/// or a part of a multipart one.
pub fn writes_media(request: &Seen) -> bool {
    request.method == "PUT"
        && request.target.contains("/media/")
        && request.header("x-amz-copy-source").is_none()
}

/// Whether `request` writes an object's sha256 metadata: the CopyObject
/// onto itself that replaces its metadata.
pub fn writes_metadata(request: &Seen) -> bool {
    request.header("x-amz-metadata-directive") == Some("REPLACE")
}
