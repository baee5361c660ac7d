//! Where an archive lives: a folder on a local disk, or a bucket and
//! prefix on S3-compatible object storage (`s3://bucket/prefix`).
//!
//! Invariants: a prefix is stored without leading or trailing `/` and
//! without empty, `.` or `..` segments, so every key vault-mirror makes is
//! `<prefix>/<relative key>` and never escapes the prefix; a location
//! carries no credential (they come from the AWS environment only), so it
//! is safe to show, log and key the local state by.

use std::fmt;
use std::path::{Path, PathBuf};

/// An archive's place: `--out DIR` or `--out s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveLocation {
    /// A folder on a local disk.
    Disk(PathBuf),
    /// A prefix of a bucket on S3-compatible object storage.
    Bucket(S3Url),
}

/// `s3://bucket/prefix`: the bucket and the key prefix of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl ArchiveLocation {
    /// `s3://…` is object storage; anything else is a local path.
    pub fn parse(path: &Path) -> Result<Self, String> {
        match path.to_str() {
            Some(text) if text.starts_with("s3://") => S3Url::parse(text).map(Self::Bucket),
            _ => Ok(Self::Disk(path.to_owned())),
        }
    }

    /// [`ArchiveLocation::parse`] of what a person typed (`--out`).
    pub fn parse_arg(text: &str) -> Result<Self, String> {
        Self::parse(Path::new(text))
    }

    /// The bucket and prefix, when the archive is on object storage.
    pub fn bucket(&self) -> Option<&S3Url> {
        match self {
            Self::Disk(_) => None,
            Self::Bucket(url) => Some(url),
        }
    }

    /// The folder, when the archive is on a local disk.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            Self::Disk(path) => Some(path),
            Self::Bucket(_) => None,
        }
    }

    /// A file of the archive (`name`: a `/`-separated key), as a person
    /// names it: `vault-archive/media/1/full.jpg` (`vault-archive\media\1\full.jpg`
    /// on Windows: one separator), `s3://bucket/prefix/media/1/full.jpg`.
    pub fn shown_file(&self, name: &str) -> String {
        match self {
            Self::Disk(path) => path.join(path_of_key(name)).display().to_string(),
            Self::Bucket(url) => format!("{url}/{name}"),
        }
    }

    /// The archive of `child` inside this one (`<out>/<child>`): a
    /// per-connection sub-archive is a folder locally, a longer prefix on
    /// object storage.
    pub fn join(&self, child: &str) -> Result<Self, String> {
        match self {
            Self::Disk(path) => Ok(Self::Disk(path.join(child))),
            Self::Bucket(url) => url.join(child).map(Self::Bucket),
        }
    }
}

/// A `/`-separated key inside an archive (as the database, object storage
/// and `SHA256SUMS` name files) as a relative path with this system's
/// separator: `media\1\full.jpg` on Windows, unchanged elsewhere. What is
/// opened and shown on a disk; the inverse of `archive::paths::key_of`.
pub fn path_of_key(key: &str) -> PathBuf {
    PathBuf::from(key.replace('/', std::path::MAIN_SEPARATOR_STR))
}

/// `path` with one separator throughout, for messages: on Windows, where
/// both `\` and `/` separate, `C:\a/b` becomes `C:\a\b`; elsewhere `\`
/// is a character of a name, so the path is shown as it is.
pub fn shown_path(path: &Path) -> PathBuf {
    if cfg!(windows) {
        path.components().collect()
    } else {
        path.to_owned()
    }
}

/// Written as a person names it: the folder, or `s3://bucket/prefix`.
impl serde::Serialize for ArchiveLocation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for ArchiveLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disk(path) => write!(f, "{}", shown_path(path).display()),
            Self::Bucket(url) => url.fmt(f),
        }
    }
}

impl S3Url {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{text}` does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
        if !bucket_ok {
            return Err(format!(
                "`{bucket}` is not an S3 bucket name (3 to 63 of a-z, 0-9, `-`, `.`)"
            ));
        }
        Self {
            bucket: bucket.to_owned(),
            prefix: String::new(),
        }
        .join(prefix)
    }

    /// This prefix with `child` (one or more `/`-separated segments) below it.
    pub fn join(&self, child: &str) -> Result<Self, String> {
        let mut segments: Vec<&str> = self.prefix.split('/').filter(|s| !s.is_empty()).collect();
        for segment in child.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." || segment.chars().any(char::is_control) {
                return Err(format!("`{child}` is not a plain prefix"));
            }
            segments.push(segment);
        }
        Ok(Self {
            bucket: self.bucket.clone(),
            prefix: segments.join("/"),
        })
    }

    /// The full key of `relative` (a `/`-separated key inside the archive).
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    /// A folder name made only of our name characters that names this
    /// archive and no other: the local state of an object-storage archive
    /// lives under it.
    pub fn state_key(&self) -> String {
        crate::names::safe_name(&self.to_string())
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_parse_and_join() {
        let url = S3Url::parse("s3://my-bucket/archives//alice/").unwrap();
        assert_eq!(url.bucket, "my-bucket");
        assert_eq!(url.prefix, "archives/alice");
        assert_eq!(url.to_string(), "s3://my-bucket/archives/alice");
        assert_eq!(
            url.key("media/1/full.jpg"),
            "archives/alice/media/1/full.jpg"
        );
        let child = url.join("conn_1").unwrap();
        assert_eq!(child.to_string(), "s3://my-bucket/archives/alice/conn_1");
        let root = S3Url::parse("s3://my-bucket").unwrap();
        assert_eq!(root.key("media/x"), "media/x");
        assert_eq!(root.join("a").unwrap().prefix, "a");
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Bad_Bucket/x",
            "s3://bucket/../x",
            "s3://bucket/a/./b",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn keys_become_paths_with_one_separator() {
        let path = path_of_key("media/41/full.jpg");
        assert_eq!(
            path.components().count(),
            3,
            "{} is not three names",
            path.display()
        );
        let shown =
            ArchiveLocation::Disk(PathBuf::from("vault-demo")).shown_file("media/41/full.jpg");
        let separator = std::path::MAIN_SEPARATOR;
        assert_eq!(
            shown,
            format!("vault-demo{separator}media{separator}41{separator}full.jpg")
        );
        let on_bucket = ArchiveLocation::parse(Path::new("s3://bucket/p")).unwrap();
        assert_eq!(
            on_bucket.shown_file("media/41/full.jpg"),
            "s3://bucket/p/media/41/full.jpg"
        );
        if cfg!(windows) {
            assert_eq!(
                shown_path(Path::new(r"C:\a/b\c")),
                PathBuf::from(r"C:\a\b\c")
            );
        }
    }

    #[test]
    fn locations_are_local_unless_s3() {
        assert_eq!(
            ArchiveLocation::parse(Path::new("archive")).unwrap(),
            ArchiveLocation::Disk(PathBuf::from("archive"))
        );
        let s3 = ArchiveLocation::parse(Path::new("s3://bucket/p")).unwrap();
        assert!(matches!(s3, ArchiveLocation::Bucket(_)));
        assert_eq!(s3.join("c").unwrap().to_string(), "s3://bucket/p/c");
        assert_eq!(
            ArchiveLocation::Disk(PathBuf::from("a")).join("c").unwrap(),
            ArchiveLocation::Disk(PathBuf::from("a/c"))
        );
        // Different archives never share local state.
        let a = S3Url::parse("s3://bucket/a-b").unwrap().state_key();
        let b = S3Url::parse("s3://bucket-a/b").unwrap().state_key();
        assert_ne!(a, b);
    }
}
