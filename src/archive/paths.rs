//! Paths in the archive: a variant's final path, its `.part`, the
//! extension chosen from the content type. Names come only from
//! [`safe_name`]d ids and labels (see [`crate::names`]), never from raw
//! server text.

pub use crate::names::safe_name;

use std::path::{Path, PathBuf};

/// The extension for a declared content type (`bin` when unknown).
pub fn extension_for(content_type: &str) -> &'static str {
    match crate::archive::content::essence(content_type).as_str() {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "image/heif" => "heif",
        "image/avif" => "avif",
        "image/bmp" => "bmp",
        "image/tiff" => "tiff",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        "video/x-msvideo" => "avi",
        "video/mp2t" => "ts",
        "video/3gpp" => "3gp",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" => "m4a",
        "audio/aac" => "aac",
        "audio/ogg" => "ogg",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/webm" => "weba",
        _ => "bin",
    }
}

/// `media/<id>/<label>.<ext>`, relative to the archive root.
pub fn variant_path(media_id: &str, label: &str, content_type: &str) -> PathBuf {
    Path::new("media").join(safe_name(media_id)).join(format!(
        "{}.{}",
        safe_name(label),
        extension_for(content_type)
    ))
}

/// A path relative to the archive root as the `/`-separated key the
/// archive, the database and object storage name it by (whatever the
/// platform's separator).
pub fn key_of(relative: &Path) -> String {
    relative.to_string_lossy().replace('\\', "/")
}

/// The in-progress file beside a final path.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    final_path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    #[test]
    fn hostile_ids_cannot_escape() {
        for raw in [
            "../../x",
            "..",
            ".",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "\0",
            "~",
            "C:x",
            "",
        ] {
            let name = safe_name(raw);
            assert!(
                !name.contains('/') && !name.contains('\\') && !name.contains('.'),
                "{raw:?} -> {name}"
            );
            let path = variant_path(raw, raw, "image/jpeg");
            assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "{path:?}"
            );
        }
    }

    #[test]
    fn extensions_come_from_the_content_type() {
        assert_eq!(extension_for("image/jpeg"), "jpg");
        assert_eq!(extension_for("IMAGE/PNG; charset=binary"), "png");
        assert_eq!(extension_for("video/mp4"), "mp4");
        assert_eq!(extension_for("application/x-evil/../../"), "bin");
        assert_eq!(
            part_path(Path::new("media/1/full.jpg")),
            Path::new("media/1/full.jpg.part")
        );
    }
}
