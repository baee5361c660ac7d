//! A real S3 implementation on loopback for the bucket side of the tests:
//! moto's server mode (Python package `moto[server]`, installed by
//! `.ci/run`). A [`Sandbox`](crate::sandbox::Sandbox) in bucket mode starts
//! its own `moto_server` on a free port with the test bucket; what a test
//! then finds there (objects, multipart uploads left) is read back with
//! boto3, which moto brings, outside vault-mirror. Without moto or boto3,
//! [`moto`] says why, for `common::require!` (a skip, or under `CI=true` a
//! failure).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vault_mirror::fake::Vault;

/// The test bucket, made when moto starts.
pub const BUCKET: &str = "vault-test";
/// Where in the bucket a sandbox's archive is.
pub const PREFIX: &str = "archives/alice";
pub const ACCESS_KEY: &str = "AKIAVAULTMIRRORTEST1";
pub const SECRET_KEY: &str = "s3cr3t-do-not-print-me-0123456789abcdef";

/// A moto server on a free loopback port, stopped when dropped.
pub struct Moto {
    child: Child,
    endpoint: String,
    _home: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Its URL (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Starts moto with the test bucket, or says why it cannot (for
/// `require!`: a skip, or under `CI=true` a failure).
pub fn moto() -> Result<Moto, String> {
    let boto3 = Command::new("python3")
        .args(["-c", "import boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !boto3.is_ok_and(|status| status.success()) {
        return Err("python3 cannot import boto3; pip install 'moto[server]' boto3".to_owned());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| {
            format!("moto_server is not installed ({error}); pip install 'moto[server]'")
        })?;
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        _home: home,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    python(&moto, &format!("s3.create_bucket(Bucket='{BUCKET}')"));
    Ok(moto)
}

/// Runs `code` with `s3` a boto3 client of `moto`; returns its stdout.
pub fn python(moto: &Moto, code: &str) -> String {
    let script = format!(
        "import boto3, json, hashlib\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='{ACCESS_KEY}', aws_secret_access_key='{SECRET_KEY}', region_name='us-east-1')\n{code}\n",
        moto.endpoint
    );
    let mut child = Command::new("python3")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python failed: {script}");
    String::from_utf8(output.stdout).unwrap()
}

/// One object as boto3 sees it.
#[derive(Debug, serde::Deserialize)]
pub struct Object {
    pub size: u64,
    pub sha256: String,
    pub metadata_sha256: Option<String>,
    pub content_type: String,
    /// The S3 checksum (`x-amz-checksum-sha256`, base64), if any.
    pub checksum: Option<String>,
}

/// Every object under the prefix (key relative to it → what it holds).
pub fn objects(moto: &Moto) -> BTreeMap<String, Object> {
    let out = python(
        moto,
        &format!(
            "found = {{}}\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{BUCKET}', Prefix='{PREFIX}/'):\n\
             \x20   for item in page.get('Contents', []):\n\
             \x20       got = s3.get_object(Bucket='{BUCKET}', Key=item['Key'])\n\
             \x20       body = got['Body'].read()\n\
             \x20       found[item['Key'][len('{PREFIX}/'):]] = dict(size=len(body), sha256=hashlib.sha256(body).hexdigest(), metadata_sha256=got['Metadata'].get('sha256'), content_type=got['ContentType'], checksum=s3.head_object(Bucket='{BUCKET}', Key=item['Key'], ChecksumMode='ENABLED').get('ChecksumSHA256'))\n\
             print(json.dumps(found))"
        ),
    );
    serde_json::from_str(&out).unwrap()
}

/// Multipart uploads started and neither completed nor aborted.
pub fn incomplete_uploads(moto: &Moto) -> Vec<String> {
    let out = python(
        moto,
        &format!(
            "print(json.dumps([u['Key'] for u in s3.list_multipart_uploads(Bucket='{BUCKET}').get('Uploads', [])]))"
        ),
    );
    serde_json::from_str(&out).unwrap()
}

/// Every object under media/ is a whole, verified variant: its bytes the
/// fake's, its sha256 in its metadata (or, for a multipart object, in the
/// database), its type the declared one. Returns how many there are.
pub fn assert_objects_match(moto: &Moto, vault: &Vault) -> usize {
    let mut count = 0;
    for (key, object) in objects(moto) {
        let Some(rest) = key.strip_prefix("media/") else {
            continue;
        };
        let (folder, file) = rest.split_once('/').unwrap();
        let label = file.split('.').next().unwrap();
        let media = vault
            .media
            .values()
            .find(|media| vault_mirror::names::safe_name(&media.id) == folder)
            .unwrap_or_else(|| panic!("{key} is no media of the vault"));
        let variant = &media.variants[label];
        let expected = hex::encode(Sha256::digest(&variant.body));
        assert_eq!(object.size, variant.body.len() as u64, "{key} size");
        assert_eq!(object.sha256, expected, "{key} holds other bytes");
        assert_eq!(object.content_type, variant.content_type, "{key} type");
        if let Some(metadata) = &object.metadata_sha256 {
            assert_eq!(metadata, &expected, "{key} metadata sha256");
        }
        count += 1;
    }
    count
}
