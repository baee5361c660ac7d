//! What went wrong with object storage, in words a person acts on: a
//! [`BucketError`](super::BucketError)'s source chain (object_store's
//! errors, the HTTP status and the S3 error code in the body, the
//! transport's) sorted into the few mistakes of a set-up — credentials
//! absent or refused, access denied, the bucket missing, the region
//! wrong, the endpoint unreachable, its certificate refused — each with
//! one sentence saying what happened and a hint saying what to do.
//!
//! The one place that knows these: the binary prints a diagnosed failure
//! as `error: <what>` and `hint: <hint>` (its chain only with `-v`), and a
//! run whose first write (the lease) fails so stops with exit 2.

use std::error::Error;

use super::credentials::NoCredentials;
use super::lease::LeaseError;
use super::s3::ConfigError;

/// A set-up mistake on object storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// No credentials in the environment, none from the machine either.
    NoCredentials,
    /// The store does not know the key, or the secret does not match it.
    CredentialsRefused,
    /// The credentials are valid but may not use the bucket.
    AccessDenied,
    /// The bucket does not exist.
    NoSuchBucket,
    /// The bucket is in another region than the one configured.
    WrongRegion,
    /// Nothing answers at the endpoint.
    Unreachable,
    /// The endpoint's TLS certificate was refused.
    Tls,
    /// The store applies conditional writes it should refuse, and the
    /// operator has not said that only one writer exists.
    IgnoresConditions,
}

/// A [`Problem`], what happened (one sentence) and what to do (a hint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub problem: Problem,
    pub what: String,
    pub hint: String,
}

/// What the chain of `error` tells.
#[derive(Default)]
struct Facts {
    no_credentials: bool,
    tls: bool,
    connect: bool,
    redirect: bool,
    code: Option<String>,
    bucket: Option<String>,
    origin: Option<String>,
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// `scheme://host[:port]` of the first URL after "Error performing <METHOD> ".
fn origin(text: &str) -> Option<String> {
    let rest = &text[text.find("Error performing ")? + "Error performing ".len()..];
    let url = rest.split_whitespace().nth(1)?;
    let url = url::Url::parse(url).ok()?;
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    Some(format!("{}://{}{port}", url.scheme(), url.host_str()?))
}

fn facts(error: &(dyn Error + 'static)) -> Facts {
    let mut facts = Facts::default();
    let mut current = Some(error);
    while let Some(cause) = current {
        if cause.downcast_ref::<NoCredentials>().is_some()
            || matches!(
                cause.downcast_ref::<ConfigError>(),
                Some(ConfigError::NoCredentials(_))
            )
        {
            facts.no_credentials = true;
        }
        if cause.downcast_ref::<rustls::Error>().is_some() {
            facts.tls = true;
        }
        if let Some(http) = cause.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind;
            facts.connect |= matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout);
        }
        let text = cause.to_string();
        let lower = text.to_ascii_lowercase();
        facts.no_credentials |= text.contains("169.254.169.254") || text.contains("169.254.170.2");
        facts.tls |= lower.contains("certificate") || lower.contains("tls handshake");
        facts.redirect |= text.contains("Received redirect without LOCATION")
            || text.contains("301 Moved Permanently");
        if facts.code.is_none() {
            facts.code = between(&text, "<Code>", "</Code>").map(str::to_owned);
        }
        if facts.bucket.is_none() {
            facts.bucket = between(&text, "<BucketName>", "</BucketName>").map(str::to_owned);
        }
        if facts.origin.is_none() {
            facts.origin = origin(&text);
        }
        current = cause.source();
    }
    facts
}

/// The set-up mistake `error`'s chain shows, if it shows one.
pub fn diagnose(error: &(dyn Error + 'static)) -> Option<Diagnosis> {
    if let Some(ignored) = ignored_conditions(error) {
        return Some(ignored);
    }
    let facts = facts(error);
    let bucket = facts.bucket.as_deref().unwrap_or("<bucket>");
    let code = facts.code.as_deref().unwrap_or_default();
    let (problem, what, hint) = if facts.no_credentials {
        (
            Problem::NoCredentials,
            "no AWS credentials for the object store: none in the environment, and this machine gives none".to_owned(),
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION) in the environment vault-mirror runs in; on EC2, give the instance a role; nothing was changed".to_owned(),
        )
    } else if facts.tls {
        (
            Problem::Tls,
            format!(
                "the object store's TLS certificate was refused{}",
                at(&facts.origin)
            ),
            "the endpoint's certificate must be valid for its host name and signed by an authority this system trusts (install the authority in the system's store); for a store on this machine, plain http://127.0.0.1 works too".to_owned(),
        )
    } else if code == "NoSuchBucket" {
        (
            Problem::NoSuchBucket,
            format!("the bucket `{bucket}` does not exist{}", at(&facts.origin)),
            format!(
                "create it first (`aws s3 mb s3://{bucket}`, or in your store's console), or correct the bucket in `--out s3://…`; nothing was changed"
            ),
        )
    } else if matches!(
        code,
        "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "TokenRefreshRequired"
    ) {
        (
            Problem::CredentialsRefused,
            format!("the object store refused the AWS credentials ({code})"),
            "check that AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are a pair this store issued (with AWS_SESSION_TOKEN for temporary ones), and that AWS_ENDPOINT_URL names that store; nothing was changed".to_owned(),
        )
    } else if code == "AccessDenied" {
        (
            Problem::AccessDenied,
            "the AWS credentials may not use this bucket (AccessDenied)".to_owned(),
            "allow them to list the bucket and to get, put and delete objects under the archive's prefix (s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload); nothing was changed".to_owned(),
        )
    } else if facts.redirect
        || matches!(
            code,
            "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException"
        )
    {
        (
            Problem::WrongRegion,
            "the bucket is in another region than the one configured".to_owned(),
            "set AWS_REGION to the bucket's region (`aws s3api get-bucket-location --bucket <bucket>` tells it); nothing was changed".to_owned(),
        )
    } else if facts.connect {
        (
            Problem::Unreachable,
            format!("cannot reach the object store{}", at(&facts.origin)),
            "check AWS_ENDPOINT_URL (scheme, host and port; unset for AWS itself) and that the store runs and is reachable from this machine; nothing was changed".to_owned(),
        )
    } else {
        return None;
    };
    Some(Diagnosis {
        problem,
        what,
        hint,
    })
}

/// A lease refused on a store that ignores conditional writes: its own
/// message is the sentence (the behaviour, the holder, the way out).
fn ignored_conditions(error: &(dyn Error + 'static)) -> Option<Diagnosis> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(lease @ LeaseError::ConditionsIgnored { .. }) = cause.downcast_ref() {
            return Some(Diagnosis {
                problem: Problem::IgnoresConditions,
                what: lease.to_string(),
                hint: "run `vault-mirror --single-writer ...` only where no other machine or process writes to the archive (nothing else guards it then); or move the archive to a store that honours If-None-Match and If-Match on PUT (AWS S3 does)".to_owned(),
            });
        }
        current = cause.source();
    }
    None
}

fn at(origin: &Option<String>) -> String {
    origin
        .as_ref()
        .map(|origin| format!(" at {origin}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message is `text`, with `source` beneath it.
    #[derive(Debug)]
    struct Link(String, Option<Box<dyn Error + Send + Sync>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl Error for Link {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1
                .as_deref()
                .map(|source| source as &(dyn Error + 'static))
        }
    }

    fn chain(texts: &[&str]) -> Link {
        texts
            .iter()
            .rev()
            .fold(None, |below: Option<Link>, text| {
                Some(Link(
                    (*text).to_owned(),
                    below.map(|link| Box::new(link) as Box<dyn Error + Send + Sync>),
                ))
            })
            .unwrap()
    }

    fn problem(texts: &[&str]) -> Option<Problem> {
        diagnose(&chain(texts)).map(|diagnosis| diagnosis.problem)
    }

    fn s3_status(status: &str, code: &str) -> String {
        format!(
            "Error performing PUT https://s3.example.com/b/p/.vault-mirror/lease in 5ms - Server returned non-2xx status code: {status}: <?xml version=\"1.0\"?><Error><Code>{code}</Code><BucketName>archive-bucket</BucketName></Error>"
        )
    }

    #[test]
    fn each_s3_error_code_is_its_problem() {
        let lease = "object storage: writing p/.vault-mirror/lease";
        let cases = [
            ("404 Not Found", "NoSuchBucket", Problem::NoSuchBucket),
            (
                "403 Forbidden",
                "InvalidAccessKeyId",
                Problem::CredentialsRefused,
            ),
            (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                Problem::CredentialsRefused,
            ),
            ("403 Forbidden", "AccessDenied", Problem::AccessDenied),
            (
                "301 Moved Permanently",
                "PermanentRedirect",
                Problem::WrongRegion,
            ),
            (
                "400 Bad Request",
                "AuthorizationHeaderMalformed",
                Problem::WrongRegion,
            ),
        ];
        for (status, code, expected) in cases {
            assert_eq!(
                problem(&[lease, &s3_status(status, code)]),
                Some(expected),
                "{code}"
            );
        }
        assert_eq!(
            problem(&[
                lease,
                &s3_status("500 Internal Server Error", "InternalError")
            ]),
            None
        );
    }

    #[test]
    fn a_missing_bucket_is_named_with_the_command_that_makes_it() {
        let diagnosis = diagnose(&chain(&[
            "writing",
            &s3_status("404 Not Found", "NoSuchBucket"),
        ]))
        .unwrap();
        assert_eq!(
            diagnosis.what,
            "the bucket `archive-bucket` does not exist at https://s3.example.com"
        );
        assert!(
            diagnosis.hint.contains("aws s3 mb s3://archive-bucket"),
            "{}",
            diagnosis.hint
        );
    }

    #[test]
    fn the_metadata_service_means_no_credentials() {
        let imds = "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/token in 1ms - Server returned non-2xx status code: 403 Forbidden";
        assert_eq!(problem(&["writing", imds]), Some(Problem::NoCredentials));
        let ours = NoCredentials { reason: "none" };
        assert_eq!(
            diagnose(&ours).map(|d| d.problem),
            Some(Problem::NoCredentials)
        );
    }

    #[test]
    fn a_refused_certificate_is_tls() {
        let text = "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer";
        assert_eq!(problem(&["writing", text]), Some(Problem::Tls));
    }

    #[test]
    fn anything_else_is_not_diagnosed() {
        assert_eq!(problem(&["writing", "disk full"]), None);
    }
}
