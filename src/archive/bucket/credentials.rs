//! Where a bucket's credentials come from, decided before any request:
//! the AWS environment (a key pair, a web identity, a container's
//! credentials), else the instance metadata service of the machine it runs
//! on (an EC2 role), asked once within a short budget, never by a retry
//! loop; and none at all when `AWS_EC2_METADATA_DISABLED=true` says there
//! is no such service, which is then a usage error before any request.
//!
//! Invariant: a machine without credentials learns it in at most
//! [`METADATA_BUDGET`], as [`NoCredentials`] (see `diagnose`), never as a
//! minute of retries against `169.254.169.254`.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AwsCredential, AwsCredentialProvider};
use object_store::{CredentialProvider, RetryConfig};

/// How long the instance metadata service may take to give credentials.
pub const METADATA_BUDGET: Duration = Duration::from_secs(3);

/// No credentials: none in the environment, and no instance metadata
/// service gave any.
#[derive(Debug, thiserror::Error)]
#[error("no AWS credentials: {reason}")]
pub struct NoCredentials {
    pub reason: &'static str,
}

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}

/// Whether the environment names credentials of any kind object_store
/// reads (a key pair, a web identity, a container's credentials).
pub fn in_environment() -> bool {
    set("AWS_ACCESS_KEY_ID")
        || set("AWS_SECRET_ACCESS_KEY")
        || (set("AWS_WEB_IDENTITY_TOKEN_FILE") && set("AWS_ROLE_ARN"))
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
}

/// Whether `AWS_EC2_METADATA_DISABLED=true` (as the AWS SDKs read it).
pub fn metadata_disabled() -> bool {
    std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|value| value.eq_ignore_ascii_case("true"))
}

/// `builder` with its credentials decided: unchanged when the environment
/// names some; the instance metadata service asked once, within
/// [`METADATA_BUDGET`], when it does not; refused when there is no such
/// service either.
pub fn decide(builder: AmazonS3Builder) -> Result<AmazonS3Builder, NoCredentials> {
    if in_environment() {
        return Ok(builder);
    }
    if metadata_disabled() {
        return Err(NoCredentials {
            reason: "none in the environment, and AWS_EC2_METADATA_DISABLED=true",
        });
    }
    let once = RetryConfig {
        max_retries: 0,
        retry_timeout: METADATA_BUDGET,
        ..RetryConfig::default()
    };
    let Ok(probe) = AmazonS3Builder::from_env()
        .with_bucket_name("probe")
        .with_retry(once)
        .build()
    else {
        return Ok(builder);
    };
    let inner = probe.credentials().clone();
    Ok(builder.with_credentials(Arc::new(Instance { inner })))
}

/// The instance metadata service's credentials, within [`METADATA_BUDGET`].
#[derive(Debug)]
struct Instance {
    inner: AwsCredentialProvider,
}

#[async_trait::async_trait]
impl CredentialProvider for Instance {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let absent = || object_store::Error::Generic {
            store: "S3",
            source: Box::new(NoCredentials {
                reason: "none in the environment, and the instance metadata service gave none",
            }),
        };
        match tokio::time::timeout(METADATA_BUDGET, self.inner.get_credential()).await {
            Ok(Ok(credential)) => Ok(credential),
            Ok(Err(error)) => {
                tracing::debug!("instance metadata: {error}");
                Err(absent())
            }
            Err(_) => Err(absent()),
        }
    }
}
