//! [`MirrorError`]: why a run could not go on, and the exit code each kind
//! of failure gets.

use crate::api::ApiError;
use crate::archive::ArchiveError;
use crate::archive::bucket::BucketError;
use crate::exit::ExitStatus;
use crate::location::ArchiveLocation;
use crate::pipeline::bucket::BucketRunError;
use crate::settings::SettingsError;
use crate::store::StoreError;

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// `--list` names lists the connection does not have (nothing was
    /// recorded for them).
    #[error("the connection has no list {}; its lists are {}", quoted(.missing), if .known.is_empty() { "none".to_owned() } else { quoted(.known) })]
    UnknownLists {
        missing: Vec<String>,
        known: Vec<String>,
    },
    /// `--quality` asks for labels no media carries (found before the run
    /// changed anything; see `preflight`).
    #[error("--quality: no media carries {}; the labels there are {}", quoted(.missing), quoted(.seen))]
    UnknownLabels {
        missing: Vec<String>,
        seen: Vec<String>,
        /// The seen label closest to a missing one, when one is close.
        suggestion: Option<String>,
    },
    /// Object storage (`--out s3://…`) failed in a way no item can get past.
    #[error(transparent)]
    Bucket(Box<BucketRunError>),
    /// The archive cannot be opened where it is (the AWS environment
    /// cannot be used for an `s3://` archive).
    #[error(transparent)]
    OpenArchive(Box<BucketError>),
    /// `export` could not write the archive index.
    #[error("cannot write the archive index in {location}")]
    Export {
        location: Box<ArchiveLocation>,
        #[source]
        source: Box<ArchiveError>,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl MirrorError {
    /// The exit status (docs/reference.md, "Exit codes") of this kind of failure.
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            MirrorError::Settings(_)
            | MirrorError::UnknownLists { .. }
            | MirrorError::UnknownLabels { .. }
            | MirrorError::OpenArchive(_) => ExitStatus::Usage,
            MirrorError::Bucket(error) if error.is_setup() => ExitStatus::Usage,
            MirrorError::Api(error) if error.is_auth() => ExitStatus::Refused,
            _ => ExitStatus::Failed,
        }
    }
}

impl From<BucketRunError> for MirrorError {
    fn from(error: BucketRunError) -> Self {
        MirrorError::Bucket(Box::new(error))
    }
}

/// `a`, `b`, `c` for a message (at most 20 named).
fn quoted(items: &[String]) -> String {
    let mut text: Vec<String> = items
        .iter()
        .take(20)
        .map(|item| format!("`{item}`"))
        .collect();
    if items.len() > 20 {
        text.push(format!("and {} more", items.len() - 20));
    }
    text.join(", ")
}
