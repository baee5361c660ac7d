//! `index.html`: a self-contained offline gallery of the archive — one
//! file, all CSS and JavaScript inline (the template is `gallery.html`),
//! the data embedded as JSON, media referenced by relative paths. It opens
//! from disk (`file://`) with no network and no server: nothing is
//! fetched but the archive's own files.
//!
//! Invariants: the embedded JSON can never end its `<script>` element
//! early (every `<` is written `\u003c`); the page renders one page of
//! tiles at a time with lazy-loaded thumbnails, so tens of thousands of
//! media stay fast, and a tile loads a larger picture only once its
//! thumbnail has loaded and proved smaller than the tile; paths in it are
//! the checked relative paths of the export snapshot.

use std::collections::HashMap;

use serde::Serialize;

use crate::archive::snapshot::Snapshot;

const TEMPLATE: &str = include_str!("gallery.html");
const DATA_SLOT: &str = "{{VAULT_DATA}}";

/// The data the page's script reads. Short keys: the page carries one
/// entry per media, tens of thousands of times.
#[derive(Debug, Serialize)]
struct GalleryData<'a> {
    /// Epoch ms.
    exported_at: i64,
    lists: Vec<GalleryList<'a>>,
    media: Vec<GalleryMedia<'a>>,
}

#[derive(Debug, Serialize)]
struct GalleryList<'a> {
    id: &'a str,
    name: &'a str,
    /// The list itself is gone from the connection.
    gone: bool,
}

#[derive(Debug, Serialize)]
struct GalleryMedia<'a> {
    /// Media id.
    i: &'a str,
    /// Media type (`image`, `video`, `audio`), if known.
    t: Option<&'a str>,
    /// Duration in seconds.
    d: Option<f64>,
    /// The media's date (epoch ms): its own where the Access API gave it,
    /// else the earliest of its variants' cache times.
    c: Option<i64>,
    /// Where `c` came from: `o` OnlyFans, `c` when Vault+ cached it, `f`
    /// when first seen; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    /// The full file's width and height in pixels, where given.
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<(i64, i64)>,
    /// Indexes into `lists` of the lists holding it now.
    l: Vec<usize>,
    /// Gone from every live list since (epoch ms).
    g: Option<i64>,
    /// Files: (label, path, content type, size).
    f: Vec<(&'a str, &'a str, &'a str, i64)>,
    /// Kept versions: (label, path, content type, size, kept at).
    o: Vec<(&'a str, &'a str, &'a str, i64, i64)>,
}

/// The whole page for `snapshot`.
pub fn render(snapshot: &Snapshot, exported_at: i64) -> String {
    let mut media: Vec<GalleryMedia<'_>> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for variant in &snapshot.variants {
        let index = *position.entry(&variant.media_id).or_insert_with(|| {
            media.push(new_media(snapshot, &variant.media_id));
            media.len() - 1
        });
        let item = &mut media[index];
        item.t = item.t.or(variant.media_type.as_deref());
        item.d = item.d.or(variant.duration);
        item.c = match (item.c, variant.created_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        item.f.push((
            &variant.label,
            &variant.local_path,
            variant.content_type.as_deref().unwrap_or(""),
            variant.size,
        ));
    }
    for item in &mut media {
        if let Some(facts) = snapshot.facts.get(item.i) {
            item.c = Some(facts.date);
            item.s = Some(match facts.date_source.as_str() {
                crate::store::SOURCE_ONLYFANS => "o",
                crate::store::SOURCE_CACHED => "c",
                _ => "f",
            });
            item.w = facts.width.zip(facts.height);
        }
    }
    for version in &snapshot.versions {
        let index = *position.entry(&version.media_id).or_insert_with(|| {
            media.push(new_media(snapshot, &version.media_id));
            media.len() - 1
        });
        media[index].o.push((
            &version.label,
            &version.local_path,
            version.content_type.as_deref().unwrap_or(""),
            version.size,
            version.kept_at,
        ));
    }
    let data = GalleryData {
        exported_at,
        lists: snapshot
            .lists
            .iter()
            .map(|list| GalleryList {
                id: &list.list_id,
                name: &list.name,
                gone: list.gone_at.is_some(),
            })
            .collect(),
        media,
    };
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned());
    TEMPLATE.replacen(DATA_SLOT, &script_safe(&json), 1)
}

fn new_media<'a>(snapshot: &'a Snapshot, media_id: &'a str) -> GalleryMedia<'a> {
    GalleryMedia {
        i: media_id,
        t: None,
        d: None,
        c: None,
        s: None,
        w: None,
        l: snapshot.current_lists(media_id),
        g: snapshot.gone_from_every_list(media_id),
        f: Vec::new(),
        o: Vec::new(),
    }
}

/// JSON that is safe inside `<script>`: `<` becomes `\u003c` (so neither
/// `</script>` nor `<!--` can appear), and the line separators U+2028 and
/// U+2029 are escaped too. The result still parses to the same value.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ArchiveList, ArchivedVariant};

    #[test]
    fn the_footer_gives_the_windows_check_that_windows_builds_print() {
        assert!(TEMPLATE.contains(crate::CHECK_SUMS_POWERSHELL));
        assert!(TEMPLATE.contains("sha256sum -c SHA256SUMS"));
    }

    fn snapshot() -> Snapshot {
        let mut snapshot = Snapshot {
            lists: vec![ArchiveList {
                list_id: "1".into(),
                name: "</script><script>alert(1)</script> \u{2028}".into(),
                gone_at: None,
            }],
            ..Snapshot::default()
        };
        snapshot.membership.insert("42".into(), vec![(0, None)]);
        snapshot.variants.push(ArchivedVariant {
            media_id: "42".into(),
            label: "full".into(),
            local_path: "media/42/full.jpg".into(),
            sha256: "ab".into(),
            size: 10,
            content_type: Some("image/jpeg".into()),
            media_type: Some("image".into()),
            duration: None,
            created_at: Some(5),
            stored_at: None,
            verified_at: None,
        });
        snapshot
    }

    #[test]
    fn data_cannot_break_out_of_its_script() {
        let page = render(&snapshot(), 1);
        assert_eq!(
            page.matches("</script>").count(),
            TEMPLATE.matches("</script>").count()
        );
        assert!(!page.contains(DATA_SLOT));
        let opening = "type=\"application/json\">";
        let start = page.find(opening).unwrap() + opening.len();
        let end = start + page[start..].find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(data["lists"][0]["name"], snapshot().lists[0].name.as_str());
        assert_eq!(data["media"][0]["f"][0][1], "media/42/full.jpg");
        assert_eq!(data["media"][0]["l"][0], 0);
    }

    #[test]
    fn the_page_needs_no_network() {
        let page = render(&snapshot(), 1);
        for needle in [
            "http://",
            "https://",
            "//cdn",
            "fetch(",
            "XMLHttpRequest",
            "@import",
        ] {
            assert!(!page.contains(needle), "the gallery mentions {needle}");
        }
        assert!(page.contains("loading"));
        assert!(page.contains("preload"));
    }
}
