//! `export` (and `mirror --export`): the archive's index, written at the
//! root from the database —
//!
//! - `manifest.jsonl`: one JSON object per verified variant and per kept
//!   version (media id, label, lists, size, sha256, types, duration,
//!   remote times, path relative to the root);
//! - `SHA256SUMS`: `<sha256>  <path>` lines that `sha256sum -c SHA256SUMS`
//!   checks from the root (the XMP sidecars too);
//! - `index.html`: the offline gallery ([`super::gallery`]).
//!
//! One export for both backends ([`Archive`]): on object storage the three
//! are objects at the prefix, so the gallery works when the prefix is
//! served as a static website or synced down (every link is relative).
//!
//! Invariants: each file is replaced whole ([`Archive::write`]: on the disk
//! through [`crate::archive::ArchiveDir`], so a link at its name is
//! replaced, never written through); only files present at their recorded
//! size are indexed, found without following links (the others are reported as missing, so `sha256sum -c`
//! passes on a healthy archive); every path is checked with
//! [`archive_path`] first. Only verified bytes are named: variants as
//! verified, and versions, which hold only verified bytes (see
//! [`super::versions`]).

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use crate::archive::snapshot::Snapshot;
use crate::archive::{Archive, ArchiveError, gallery, utc};
use crate::location::ArchiveLocation;
use crate::store::{ArchivedVariant, Store};

/// The files `export` writes at the archive root.
pub const MANIFEST: &str = "manifest.jsonl";
pub const CHECKSUMS: &str = "SHA256SUMS";
pub const GALLERY: &str = "index.html";

/// What an export wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportSummary {
    pub out: ArchiveLocation,
    /// Media with at least one file indexed.
    pub media: usize,
    /// Verified variants indexed.
    pub variants: usize,
    /// Kept versions indexed.
    pub versions: usize,
    /// Bytes of all indexed files.
    pub bytes: u64,
    /// Recorded files that are not on disk as recorded (left out; `verify`
    /// or the next `mirror` repairs them).
    pub missing: Vec<String>,
    /// The files written, relative to the root.
    pub written: Vec<String>,
}

/// One line of `manifest.jsonl`.
#[derive(Debug, Serialize)]
struct ManifestEntry<'a> {
    /// `variant` (the current bytes) or `version` (bytes a change replaced).
    kind: &'static str,
    media_id: &'a str,
    label: &'a str,
    /// Ids of the lists holding the media now.
    lists: Vec<&'a str>,
    /// Lists the media left upstream, with when.
    gone_from: Vec<GoneFrom<'a>>,
    size: i64,
    sha256: &'a str,
    content_type: Option<&'a str>,
    media_type: Option<&'a str>,
    duration: Option<f64>,
    /// The media's own date (see `docs/views-and-dates.md`), and where it
    /// came from: `onlyfans`, `vault-plus-cached` or `first-seen`.
    date: Option<String>,
    date_source: Option<&'a str>,
    /// The full file's dimensions in pixels, where the API gave them.
    width: Option<i64>,
    height: Option<i64>,
    created_at: Option<String>,
    stored_at: Option<String>,
    verified_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_at: Option<String>,
    /// Relative to the archive root.
    path: &'a str,
}

#[derive(Debug, Serialize)]
struct GoneFrom<'a> {
    list: &'a str,
    at: String,
}

/// Writes `manifest.jsonl`, `SHA256SUMS` and `index.html` at the root of
/// `archive` (each replaced whole).
pub async fn export(
    archive: &Archive,
    store: &Store,
    now: i64,
) -> Result<ExportSummary, ArchiveError> {
    let snapshot = Snapshot::read(archive, store).await?;
    let mut summary = summarise(&snapshot, archive.location());
    let mut manifest = Vec::new();
    write_manifest(&snapshot, &mut manifest)?;
    let mut checksums = Vec::new();
    write_checksums(&snapshot, &mut checksums)?;
    let page = gallery::render(&snapshot, now).into_bytes();
    for (name, bytes, content_type) in [
        (MANIFEST, manifest, "application/x-ndjson"),
        (CHECKSUMS, checksums, "text/plain; charset=utf-8"),
        (GALLERY, page, "text/html; charset=utf-8"),
    ] {
        archive.write(name, bytes, content_type).await?;
        summary.written.push(name.to_owned());
    }
    Ok(summary)
}

/// What `snapshot` indexes.
fn summarise(snapshot: &Snapshot, out: ArchiveLocation) -> ExportSummary {
    let mut summary = ExportSummary {
        out,
        variants: snapshot.variants.len(),
        versions: snapshot.versions.len(),
        missing: snapshot.missing.clone(),
        media: 0,
        bytes: 0,
        written: Vec::new(),
    };
    let mut media: Vec<&str> = snapshot
        .variants
        .iter()
        .map(|variant| variant.media_id.as_str())
        .chain(
            snapshot
                .versions
                .iter()
                .map(|version| version.media_id.as_str()),
        )
        .collect();
    media.sort_unstable();
    media.dedup();
    summary.media = media.len();
    summary.bytes = snapshot
        .variants
        .iter()
        .map(|variant| variant.size)
        .chain(snapshot.versions.iter().map(|version| version.size))
        .map(|size| u64::try_from(size).unwrap_or(0))
        .sum();
    summary
}

fn write_manifest(snapshot: &Snapshot, writer: &mut dyn Write) -> std::io::Result<()> {
    let lists_of = |media_id: &str| -> (Vec<&str>, Vec<GoneFrom<'_>>) {
        let mut current = Vec::new();
        let mut gone = Vec::new();
        for (list, gone_at) in snapshot.membership.get(media_id).into_iter().flatten() {
            let list_id = snapshot.lists[*list].list_id.as_str();
            match gone_at {
                None => current.push(list_id),
                Some(at) => gone.push(GoneFrom {
                    list: list_id,
                    at: utc(*at),
                }),
            }
        }
        (current, gone)
    };
    let facts = |media_id: &str| snapshot.facts.get(media_id);
    let media_info: HashMap<&str, &ArchivedVariant> = snapshot
        .variants
        .iter()
        .map(|variant| (variant.media_id.as_str(), variant))
        .collect();
    for variant in &snapshot.variants {
        let (lists, gone_from) = lists_of(&variant.media_id);
        let entry = ManifestEntry {
            kind: "variant",
            media_id: &variant.media_id,
            label: &variant.label,
            lists,
            gone_from,
            size: variant.size,
            sha256: &variant.sha256,
            content_type: variant.content_type.as_deref(),
            media_type: variant.media_type.as_deref(),
            duration: variant.duration,
            date: facts(&variant.media_id).map(|facts| utc(facts.date)),
            date_source: facts(&variant.media_id).map(|facts| facts.date_source.as_str()),
            width: facts(&variant.media_id).and_then(|facts| facts.width),
            height: facts(&variant.media_id).and_then(|facts| facts.height),
            created_at: variant.created_at.map(utc),
            stored_at: variant.stored_at.map(utc),
            verified_at: variant.verified_at.map(utc),
            kept_at: None,
            path: &variant.local_path,
        };
        serde_json::to_writer(&mut *writer, &entry)?;
        writer.write_all(b"\n")?;
    }
    for version in &snapshot.versions {
        let (lists, gone_from) = lists_of(&version.media_id);
        let info = media_info.get(version.media_id.as_str());
        let entry = ManifestEntry {
            kind: "version",
            media_id: &version.media_id,
            label: &version.label,
            lists,
            gone_from,
            size: version.size,
            sha256: &version.sha256,
            content_type: version.content_type.as_deref(),
            media_type: info.and_then(|info| info.media_type.as_deref()),
            duration: info.and_then(|info| info.duration),
            date: facts(&version.media_id).map(|facts| utc(facts.date)),
            date_source: facts(&version.media_id).map(|facts| facts.date_source.as_str()),
            width: facts(&version.media_id).and_then(|facts| facts.width),
            height: facts(&version.media_id).and_then(|facts| facts.height),
            created_at: None,
            stored_at: version.stored_at.map(utc),
            verified_at: version.verified_at.map(utc),
            kept_at: Some(utc(version.kept_at)),
            path: &version.local_path,
        };
        serde_json::to_writer(&mut *writer, &entry)?;
        writer.write_all(b"\n")?;
    }
    Ok(())
}

fn write_checksums(snapshot: &Snapshot, writer: &mut dyn Write) -> std::io::Result<()> {
    let mut lines: Vec<(&str, &str)> = snapshot
        .variants
        .iter()
        .map(|variant| (variant.local_path.as_str(), variant.sha256.as_str()))
        .chain(
            snapshot
                .versions
                .iter()
                .map(|version| (version.local_path.as_str(), version.sha256.as_str())),
        )
        .chain(
            snapshot
                .sidecars
                .iter()
                .map(|sidecar| (sidecar.local_path.as_str(), sidecar.sha256.as_str())),
        )
        .collect();
    lines.sort_unstable();
    for (path, sha256) in lines {
        writer.write_all(checksum_line(sha256, path).as_bytes())?;
    }
    Ok(())
}

/// One `sha256sum` line. Our paths never need it, but a backslash or a
/// line break in a name is written the GNU way (a leading `\` and the
/// character escaped), so the file stays checkable whatever the name.
pub fn checksum_line(sha256: &str, path: &str) -> String {
    if path.contains(['\\', '\n', '\r']) {
        let escaped = path
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{sha256}  {escaped}\n")
    } else {
        format!("{sha256}  {path}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_lines_are_in_sha256sum_format() {
        assert_eq!(
            checksum_line("ab", "media/1/full.jpg"),
            "ab  media/1/full.jpg\n"
        );
        assert_eq!(checksum_line("ab", "a\\b\nc"), "\\ab  a\\\\b\\nc\n");
    }
}
