//! Stage 4, plan: for each variant the API described, decide what to do —
//! fetch it, count it as already verified, or report it pending or
//! unavailable. Pure logic over what the API said, when (by the server's
//! clock) it said it, and what the database holds (plus one `stat` of the
//! file that is supposed to be there).

use std::collections::HashMap;
use std::path::PathBuf;

use url::Url;

use crate::api::clock::UrlLifetime;
use crate::api::models::{RemoteStatus, Variant};
use crate::archive::paths::{key_of, variant_path};
use crate::archive::{ArchiveDir, archive_path};
use crate::store::{LocalState, LocalVariant};

/// One transfer to make.
#[derive(Debug, Clone)]
pub struct Job {
    pub media_id: String,
    pub label: String,
    /// Signed URL: a secret, never shown or stored.
    pub url: Url,
    /// When the URL was given and when it stops working, by the server's
    /// clock; None when the API did not say or said something implausible
    /// (the URL is then re-signed only when the media host refuses it).
    pub lifetime: Option<UrlLifetime>,
    pub size: u64,
    pub content_type: String,
    /// Final path, relative to the archive root.
    pub relative_path: PathBuf,
    /// ETag or Last-Modified of the bytes already in `.part`.
    pub part_validator: Option<String>,
}

impl Job {
    /// The job's place in the earliest-expiry-first order: its URL's
    /// expiry by the server's clock, URLs of unknown lifetime last.
    pub fn expiry_order(&self) -> i64 {
        self.lifetime
            .map_or(i64::MAX, |lifetime| lifetime.expires_at)
    }
}

#[derive(Debug)]
pub enum Decision {
    Fetch(Box<Job>),
    AlreadyVerified,
    /// Not stored upstream yet; a later run (or `--wait-pending`) gets it.
    Pending(String),
    /// Not downloadable upstream, and no later run will change that by itself.
    Unavailable(String),
    /// The API described the variant in a way we cannot use.
    Invalid(String),
}

/// What to do with one variant the API described when the server's clock
/// read `server_now` (epoch ms).
pub fn decide(
    archive: Archived<'_>,
    media_id: &str,
    label: &str,
    remote: &Variant,
    local: &LocalVariant,
    server_now: i64,
) -> Decision {
    if local.state == LocalState::Verified && verified_file_present(archive, local) {
        return Decision::AlreadyVerified;
    }
    match &remote.status {
        RemoteStatus::Stored => {}
        status if status.is_on_its_way() => {
            return Decision::Pending(format!("{} upstream", status.as_str()));
        }
        status => {
            return Decision::Unavailable(format!("status `{}` upstream", status.as_str()));
        }
    }
    let size = match remote.size_bytes {
        Some(size) if size > 0 => size.unsigned_abs(),
        Some(size) => return Decision::Invalid(format!("Vault+ declares a size of {size} bytes")),
        None => return Decision::Invalid("Vault+ declares no size (`sizeBytes`)".into()),
    };
    let Some(content_type) = remote
        .content_type
        .as_deref()
        .map(str::trim)
        .filter(|content_type| content_type.contains('/'))
    else {
        return Decision::Invalid("Vault+ declares no content type".into());
    };
    let url = match remote.url.as_deref().map(Url::parse) {
        Some(Ok(url)) if matches!(url.scheme(), "http" | "https") => url,
        Some(_) => return Decision::Invalid("Vault+ gave a URL that is not http(s)".into()),
        None => return Decision::Invalid("Vault+ gave no URL".into()),
    };
    Decision::Fetch(Box::new(Job {
        media_id: media_id.to_owned(),
        label: label.to_owned(),
        url,
        lifetime: UrlLifetime::new(remote.expires_at, server_now),
        size,
        content_type: content_type.to_owned(),
        relative_path: variant_path(media_id, label, content_type),
        part_validator: local.part_validator.clone(),
    }))
}

/// A verified variant counts only while its file is where the database
/// says, at the size it was verified at (`verify` re-hashes; this is the
/// cheap check every run makes).
fn verified_file_present(archive: Archived<'_>, local: &LocalVariant) -> bool {
    let (Some(path), Some(size)) = (&local.local_path, local.verified_size) else {
        return false;
    };
    // Paths in the database are ours, but checked all the same.
    let Ok(path) = archive_path(path) else {
        return false;
    };
    match archive {
        Archived::Disk(archive) => archive.has_file(&path, size.0),
        Archived::Listed(listed) => listed.get(key_of(&path).as_str()) == Some(&size.0),
    }
}

/// Where verified files are looked for: the archive folder, or the
/// objects listed on object storage when the run began (key → size).
#[derive(Clone, Copy)]
pub enum Archived<'a> {
    Disk(&'a ArchiveDir),
    Listed(&'a HashMap<String, u64>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn stored() -> Variant {
        Variant {
            status: RemoteStatus::Stored,
            size_bytes: Some(10),
            content_type: Some("image/jpeg".into()),
            url: Some("http://127.0.0.1/media?sig=x".into()),
            expires_at: Some(5),
            ..Variant::default()
        }
    }

    fn local(state: LocalState) -> LocalVariant {
        LocalVariant {
            state,
            local_path: Some("media/1/full.jpg".into()),
            verified_size: Some(crate::units::ByteSize(10)),
            part_validator: None,
        }
    }

    #[test]
    fn stored_and_missing_is_fetched_to_a_safe_path() {
        let out = ArchiveDir::open(Path::new("/nonexistent"));
        let Decision::Fetch(job) = decide(
            Archived::Disk(&out),
            "../../x",
            "full",
            &stored(),
            &local(LocalState::Missing),
            0,
        ) else {
            panic!("expected a fetch")
        };
        assert_eq!(
            job.relative_path,
            Path::new("media/~2e~2e~2f~2e~2e~2fx/full.jpg")
        );
        assert_eq!(job.size, 10);
        assert_eq!(job.lifetime.map(|l| l.length_ms()), Some(5));
    }

    #[test]
    fn an_expiry_already_past_by_the_servers_clock_is_no_lifetime() {
        // Still fetched: the URL is used as it is, re-signed if refused.
        let out = ArchiveDir::open(Path::new("/nonexistent"));
        let missing = local(LocalState::Missing);
        let Decision::Fetch(job) =
            decide(Archived::Disk(&out), "1", "full", &stored(), &missing, 5)
        else {
            panic!("expected a fetch")
        };
        assert_eq!(job.lifetime, None);
    }

    #[test]
    fn verified_counts_only_with_the_file_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveDir::open(dir.path());
        let decision = || {
            decide(
                Archived::Disk(&archive),
                "1",
                "full",
                &stored(),
                &local(LocalState::Verified),
                0,
            )
        };
        assert!(matches!(decision(), Decision::Fetch(_)));
        std::fs::create_dir_all(dir.path().join("media/1")).unwrap();
        std::fs::write(dir.path().join("media/1/full.jpg"), b"0123456789").unwrap();
        assert!(matches!(decision(), Decision::AlreadyVerified));
        std::fs::write(dir.path().join("media/1/full.jpg"), b"short").unwrap();
        assert!(matches!(decision(), Decision::Fetch(_)));
        // A link in its place is not the file.
        #[cfg(unix)]
        {
            std::fs::remove_file(dir.path().join("media/1/full.jpg")).unwrap();
            std::fs::write(dir.path().join("elsewhere"), b"0123456789").unwrap();
            std::os::unix::fs::symlink(
                dir.path().join("elsewhere"),
                dir.path().join("media/1/full.jpg"),
            )
            .unwrap();
            assert!(matches!(decision(), Decision::Fetch(_)));
        }
    }

    #[test]
    fn statuses_and_bad_declarations() {
        let out = ArchiveDir::open(Path::new("/nonexistent"));
        let missing = local(LocalState::Missing);
        let with = |change: fn(&mut Variant)| {
            let mut variant = stored();
            change(&mut variant);
            decide(Archived::Disk(&out), "1", "full", &variant, &missing, 0)
        };
        assert!(matches!(
            with(|v| v.status = RemoteStatus::Pending),
            Decision::Pending(_)
        ));
        assert!(matches!(
            with(|v| v.status = RemoteStatus::Storing),
            Decision::Pending(_)
        ));
        assert!(matches!(
            with(|v| v.status = RemoteStatus::Removed),
            Decision::Unavailable(_)
        ));
        assert!(matches!(
            with(|v| v.status = RemoteStatus::Other("x".into())),
            Decision::Unavailable(_)
        ));
        assert!(matches!(
            with(|v| v.size_bytes = Some(-5)),
            Decision::Invalid(_)
        ));
        assert!(matches!(
            with(|v| v.size_bytes = None),
            Decision::Invalid(_)
        ));
        assert!(matches!(
            with(|v| v.url = Some("file:///etc/passwd".into())),
            Decision::Invalid(_)
        ));
        assert!(matches!(
            with(|v| v.content_type = None),
            Decision::Invalid(_)
        ));
    }
}
