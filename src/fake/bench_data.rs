//! The benchmark's data set: a deterministic vault whose bodies live on
//! disk, served by a static file server (nginx) rather than by the fake.
//!
//! [`Vault::bench`] describes the media (sizes and types only: the variants
//! hold no body, so 1 GB of media costs the fake no memory) and
//! [`write_files`] writes `<dir>/<id>/<label>.<ext>` for each of them.
//!
//! Invariants: the same `media_count` and [`BenchScale`] always give the
//! same ids, sizes and bytes; every file has exactly its declared size and
//! starts with its type's magic bytes (the mirror checks both); the file
//! extension maps to the declared Content-Type in the benchmark's nginx
//! `types` block (`jpg` image/jpeg, `png` image/png, `mp4` video/mp4).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::sample::{JPEG_HEADER, MP4_HEADER, PNG_END, png_header};
use super::vault::{FakeList, FakeMedia, FakeVariant, Vault};

/// How big the benchmark's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchScale {
    /// The throughput data set: images 100–400 KB (thumbs 10–40 KB), videos
    /// 2–8 MB; 1,000 media make about 1 GB.
    Full,
    /// Files of a few KB, for the 50,000-media no-op re-run.
    Tiny,
    /// Every media a video of 40–120 MB (thumbs 20–60 KB): a dozen make
    /// about 1 GB, each object a multipart upload on object storage.
    Large,
}

/// 2026-01-01T00:00:00Z.
const BENCH_EPOCH_MS: i64 = 1_767_225_600_000;
const FIRST_LIST_ID: u64 = 38_000_000;
/// Media per list: the benchmark's vault is split in lists of this size so
/// membership pages look like a real vault's.
const LIST_SIZE: usize = 5_000;

/// `<label>.<ext>` for a variant: the name of its file under its media's
/// directory, and the last segment of its signed URL.
pub fn file_name(label: &str, content_type: &str) -> String {
    let extension = match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "video/mp4" => "mp4",
        _ => "bin",
    };
    format!("{label}.{extension}")
}

impl Vault {
    /// The benchmark's vault: `media_count` media, every sixth a video, in
    /// lists of [`LIST_SIZE`]; each has a `full` and a `thumb`. Variants
    /// carry a declared size and no body.
    pub fn bench(media_count: usize, scale: BenchScale) -> Vault {
        let mut lists = Vec::new();
        let mut media = BTreeMap::new();
        for index in 0..media_count {
            let item = bench_media(index, scale);
            if index % LIST_SIZE == 0 {
                lists.push(FakeList {
                    id: (FIRST_LIST_ID + (index / LIST_SIZE) as u64).to_string(),
                    name: format!("Benchmark {}", index / LIST_SIZE + 1),
                    members: Vec::new(),
                });
            }
            if let Some(list) = lists.last_mut() {
                list.members.push(item.id.clone());
            }
            media.insert(item.id.clone(), item);
        }
        Vault { lists, media }
    }
}

fn bench_media(index: usize, scale: BenchScale) -> FakeMedia {
    // 104_729 is prime, so ids stay distinct and 10 digits for any index.
    let number = (5_200_000_000 + index as u64 * 104_729) % 10_000_000_000;
    let id = format!("{number:010}");
    let mut random = SplitMix(number);
    let mut between = |low: u64, high: u64| low + random.next() % (high - low + 1);
    const KB: u64 = 1_000;
    let video = scale == BenchScale::Large || index % 6 == 5;
    let (full_type, thumb_type) = match (video, index % 2) {
        (true, _) => ("video/mp4", "image/jpeg"),
        (false, 0) => ("image/jpeg", "image/jpeg"),
        (false, _) => ("image/png", "image/png"),
    };
    let (full_size, thumb_size) = match (scale, video) {
        (BenchScale::Full, true) => (between(2_000 * KB, 8_000 * KB), between(20 * KB, 60 * KB)),
        (BenchScale::Full, false) => (between(100 * KB, 400 * KB), between(10 * KB, 40 * KB)),
        (BenchScale::Tiny, true) => (between(4 * KB, 16 * KB), between(KB, 2 * KB)),
        (BenchScale::Tiny, false) => (between(KB, 4 * KB), between(200, 800)),
        (BenchScale::Large, _) => (
            between(40_000 * KB, 120_000 * KB),
            between(20 * KB, 60 * KB),
        ),
    };
    let created_at = BENCH_EPOCH_MS + i64::try_from(index).unwrap_or(0) * 60_000;
    let variant = |content_type: &str, size: u64| FakeVariant {
        status: "stored".to_owned(),
        content_type: content_type.to_owned(),
        declared_size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
        served_content_type: None,
        body: bytes::Bytes::new(),
        created_at,
        stored_at: Some(created_at + 5_000),
    };
    let mut variants = BTreeMap::new();
    variants.insert("full".to_owned(), variant(full_type, full_size));
    variants.insert("thumb".to_owned(), variant(thumb_type, thumb_size));
    FakeMedia {
        id,
        media_type: if video { "video" } else { "image" }.to_owned(),
        duration: video.then_some(30.0),
        variants,
        // Twenty minutes apart, newest first: 100,000 media span four years.
        access: Some(super::vault::AccessFacts {
            created_at: (BENCH_EPOCH_MS / 1000 - i64::try_from(index).unwrap_or(0) * 1_200)
                .to_string(),
            width: Some(if video { 1920 } else { 1280 }),
            height: Some(if video { 1080 } else { 960 }),
        }),
    }
}

/// Writes every stored variant of `vault` under `dir` as
/// `<id>/<label>.<ext>`; a file already there with the right size is kept,
/// so re-running the benchmark does not rewrite its gigabyte. Returns the
/// bytes the data set holds.
pub fn write_files(vault: &Vault, dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for media in vault.media.values() {
        let media_dir = dir.join(&media.id);
        fs_err::create_dir_all(&media_dir)?;
        for (label, variant) in &media.variants {
            let size = u64::try_from(variant.declared_size.unwrap_or(0)).unwrap_or(0);
            total += size;
            let path = media_dir.join(file_name(label, &variant.content_type));
            if fs_err::metadata(&path).is_ok_and(|metadata| metadata.len() == size) {
                continue;
            }
            let body = body(&media.id, label, &variant.content_type, size as usize);
            let mut file = std::io::BufWriter::new(fs_err::File::create(&path)?);
            file.write_all(&body)?;
            file.flush()?;
        }
    }
    Ok(total)
}

/// Magic bytes, pseudo-random filler and the type's trailer: exactly `size`
/// bytes (not viewable media, but of the declared type).
fn body(media_id: &str, label: &str, content_type: &str, size: usize) -> Vec<u8> {
    let (mut body, trailer): (Vec<u8>, &[u8]) = match content_type {
        "image/jpeg" => (JPEG_HEADER.to_vec(), &[0xFF, 0xD9]),
        "image/png" => (png_header(), PNG_END),
        "video/mp4" => (MP4_HEADER.to_vec(), &[]),
        _ => (Vec::new(), &[]),
    };
    body.reserve(size);
    let filler = size.saturating_sub(body.len() + trailer.len());
    let mut seed = 0xCBF2_9CE4_8422_2325u64;
    for byte in media_id.bytes().chain([0]).chain(label.bytes()) {
        seed = (seed ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    let mut random = SplitMix(seed);
    // Eight bytes per draw: the filler of 1 GB takes well under a second.
    let mut left = filler;
    while left > 0 {
        let word = random.next().to_le_bytes();
        let take = left.min(word.len());
        body.extend_from_slice(&word[..take]);
        left -= take;
    }
    body.extend_from_slice(trailer);
    body.truncate(size);
    body
}

/// splitmix64: stable across runs and platforms, unlike std's hashers.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_have_their_declared_size_and_magic_bytes() {
        let vault = Vault::bench(12, BenchScale::Tiny);
        let dir = tempfile::tempdir().unwrap();
        write_files(&vault, dir.path()).unwrap();
        for media in vault.media.values() {
            for (label, variant) in &media.variants {
                let path = dir
                    .path()
                    .join(&media.id)
                    .join(file_name(label, &variant.content_type));
                let bytes = std::fs::read(path).unwrap();
                assert_eq!(Some(bytes.len() as i64), variant.declared_size);
                let sniffed = infer::get(&bytes).map(|kind| kind.mime_type());
                assert_eq!(sniffed, Some(variant.content_type.as_str()));
            }
        }
    }
}
