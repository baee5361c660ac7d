//! XMP sidecars for photo managers (`sidecars = "xmp"`, off by default):
//! beside each verified file `media/<dir>/<label>.<ext>`, a
//! `media/<dir>/<label>.xmp` carrying the media's own date
//! (`exif:DateTimeOriginal`, `xmp:CreateDate`, `photoshop:DateCreated`),
//! its lists as keywords (`dc:subject`, which PhotoPrism and exiftool read,
//! and `digiKam:TagsList`, which Immich reads), and the full file's
//! dimensions.
//!
//! Why `<label>.xmp` and not `<label>.<ext>.xmp`: PhotoPrism pairs a
//! sidecar with its file by the name without the extension (`full.jpg` ↔
//! `full.xmp`), and Immich reads both forms (`full.jpg.xmp` first, then
//! `full.xmp`); within a media's folder every label has one file, so the
//! one name is never ambiguous and both read it.
//!
//! Invariants: written through [`Archive::write`] (whole, atomic, on a disk
//! or a bucket); a sidecar is rewritten only when what it says changed
//! (its sha256 against the database's record) or it is missing, and
//! deleted with its file; every sidecar written is recorded, so `export`
//! lists it in `SHA256SUMS`. Dates are written in UTC.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::models::format_offset_date;
use crate::archive::paths::key_of;
use crate::archive::view_index::html_text;
use crate::archive::{Archive, ArchiveError, archive_path};
use crate::store::{MediaFacts, SidecarRecord, Store};

/// What updating the sidecars did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SidecarsSummary {
    /// Sidecars in the archive after the update.
    pub sidecars: usize,
    /// Written this run (new, or what they say changed).
    pub written: usize,
    /// Deleted with their files.
    pub removed: usize,
}

/// The sidecar's path beside the file at `local_path`.
pub fn sidecar_path(local_path: &Path) -> std::path::PathBuf {
    local_path.with_extension("xmp")
}

/// What one sidecar says.
pub struct Sidecar<'a> {
    pub media_id: &'a str,
    pub label: &'a str,
    pub facts: &'a MediaFacts,
    /// The names of the lists holding the media now.
    pub lists: &'a [String],
}

/// The XMP of `sidecar` (the same facts always give the same bytes).
pub fn xmp(sidecar: &Sidecar<'_>) -> String {
    let date = format_offset_date(sidecar.facts.date, 0);
    let mut attributes = format!(
        "    exif:DateTimeOriginal=\"{date}\"\n    xmp:CreateDate=\"{date}\"\n    \
         photoshop:DateCreated=\"{date}\"\n    dc:source=\"{}\"\n",
        html_text(&format!(
            "vault-mirror media {} {}",
            sidecar.media_id, sidecar.label
        ))
    );
    // The API gives the full file's shape only.
    if sidecar.label == "full"
        && let (Some(width), Some(height)) = (sidecar.facts.width, sidecar.facts.height)
    {
        attributes.push_str(&format!(
            "    exif:PixelXDimension=\"{width}\"\n    exif:PixelYDimension=\"{height}\"\n    \
             tiff:ImageWidth=\"{width}\"\n    tiff:ImageLength=\"{height}\"\n"
        ));
    }
    let items = |kind: &str| {
        let mut items = format!("   <rdf:{kind}>\n");
        for list in sidecar.lists {
            items.push_str(&format!("    <rdf:li>{}</rdf:li>\n", xml_text(list)));
        }
        items.push_str(&format!("   </rdf:{kind}>\n"));
        items
    };
    let mut keywords = String::new();
    if !sidecar.lists.is_empty() {
        keywords = format!(
            "   <dc:subject>\n{}   </dc:subject>\n   <digiKam:TagsList>\n{}   </digiKam:TagsList>\n",
            items("Bag"),
            items("Seq")
        );
    }
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"vault-mirror\">
 <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">
  <rdf:Description rdf:about=\"\"
    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"
    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"
    xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"
    xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\"
    xmlns:photoshop=\"http://ns.adobe.com/photoshop/1.0/\"
    xmlns:digiKam=\"http://www.digikam.org/ns/1.0/\"
{attributes}  >
{keywords}  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end=\"w\"?>
"
    )
}

/// `text` as XML character data: escaped, and without the characters XML
/// cannot hold at all (controls other than tab and line breaks).
fn xml_text(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect();
    html_text(&kept)
}

/// Brings the sidecars in step with the database: one beside each
/// verified file present, rewritten where what it says changed, deleted
/// where its file went.
pub async fn update_sidecars(
    archive: &Archive,
    store: &Store,
) -> Result<SidecarsSummary, ArchiveError> {
    let listed = archive.files_under("media").await?;
    let facts = store.media_facts()?;
    let lists = list_names_of_media(store)?;
    let mut recorded: HashMap<String, SidecarRecord> = store
        .sidecars()?
        .into_iter()
        .map(|sidecar| (sidecar.local_path.clone(), sidecar))
        .collect();
    let mut summary = SidecarsSummary::default();
    let no_lists = Vec::new();
    for variant in store.archived_variants()? {
        let Ok(path) = archive_path(&variant.local_path) else {
            continue;
        };
        let present =
            u64::try_from(variant.size).is_ok_and(|size| listed.get(&key_of(&path)) == Some(&size));
        if !present || !path.starts_with("media") {
            continue;
        }
        let key = key_of(&sidecar_path(&path));
        let fact = facts.get(&variant.media_id).cloned().unwrap_or_default();
        let text = xmp(&Sidecar {
            media_id: &variant.media_id,
            label: &variant.label,
            facts: &fact,
            lists: lists.get(&variant.media_id).unwrap_or(&no_lists),
        });
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        let size = i64::try_from(text.len()).unwrap_or(i64::MAX);
        summary.sidecars += 1;
        let known = recorded.remove(&key);
        let in_place = known.as_ref().is_some_and(|known| known.sha256 == sha256)
            && listed.get(&key) == u64::try_from(size).ok().as_ref();
        if in_place {
            continue;
        }
        archive
            .write(&key, text.into_bytes(), "application/rdf+xml")
            .await?;
        store.record_sidecar(&SidecarRecord {
            media_id: variant.media_id.clone(),
            label: variant.label.clone(),
            local_path: key,
            sha256,
            size,
        })?;
        summary.written += 1;
    }
    // Sidecars whose file went (pruned, or no longer verified).
    for (key, _) in recorded {
        if archive_path(&key).is_ok() && listed.contains_key(&key) {
            archive.delete(&key).await?;
        }
        store.forget_sidecar(&key)?;
        summary.removed += 1;
    }
    Ok(summary)
}

/// The names of the lists holding each media now, sorted.
fn list_names_of_media(store: &Store) -> Result<HashMap<String, Vec<String>>, ArchiveError> {
    let names: BTreeMap<String, String> = store
        .archive_lists()?
        .into_iter()
        .filter(|list| list.gone_at.is_none())
        .map(|list| (list.list_id, list.name))
        .collect();
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    for member in store.archive_membership()? {
        if member.gone_at.is_none()
            && let Some(name) = names.get(&member.list_id)
        {
            lists.entry(member.media_id).or_default().push(name.clone());
        }
    }
    for names in lists.values_mut() {
        names.sort();
        names.dedup();
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xmp_escapes_list_names_and_says_the_date() {
        let facts = MediaFacts {
            date: 1_747_483_200_000,
            date_source: "onlyfans".into(),
            width: Some(320),
            height: Some(240),
            duration: None,
        };
        let lists = vec!["Q&A: <extras>\u{0}".to_owned(), "Summer trip".to_owned()];
        let text = xmp(&Sidecar {
            media_id: "42",
            label: "full",
            facts: &facts,
            lists: &lists,
        });
        assert!(
            text.contains("exif:DateTimeOriginal=\"2025-05-17T12:00:00+00:00\""),
            "{text}"
        );
        assert!(
            text.contains("<rdf:li>Q&amp;A: &lt;extras&gt;</rdf:li>"),
            "{text}"
        );
        assert!(text.contains("exif:PixelXDimension=\"320\""), "{text}");
        assert!(!text.contains('\u{0}'));
        let thumb = xmp(&Sidecar {
            label: "thumb",
            ..Sidecar {
                media_id: "42",
                label: "full",
                facts: &facts,
                lists: &lists,
            }
        });
        assert!(!thumb.contains("PixelXDimension"), "{thumb}");
        assert_eq!(
            sidecar_path(Path::new("media/42/full.jpg")),
            Path::new("media/42/full.xmp")
        );
    }
}
