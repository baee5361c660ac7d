//! The deterministic sample vault: the same arguments always give the same
//! ids, lists and bytes, so tests and `demo` can check what a client wrote.
//! Bodies begin with real magic bytes for their content type, so content
//! checks pass, and continue with pseudo-random bytes seeded by (id, label).

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;

use super::{FakeList, FakeMedia, FakeVariant, Vault};

const LIST_NAMES: [&str; 6] = [
    "Best of 2025/26",
    "Behind the scenes",
    "Fan favourites",
    "Summer trip",
    "Q&A: extras",
    "Drafts & outtakes",
];
const FIRST_LIST_ID: u64 = 28_489_180;
/// 2026-01-01T00:00:00Z.
const SAMPLE_EPOCH_MS: i64 = 1_767_225_600_000;
/// SOI and a JFIF APP0 segment.
const JPEG_HEADER: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1A\n";
const PNG_END: &[u8] = b"\x00\x00\x00\x00IEND\xAE\x42\x60\x82";
/// An `ftyp` box of 24 bytes: brand isom, compatible isom and mp41.
const MP4_HEADER: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41";

impl Vault {
    /// Deterministic sample: `media_count` media spread over `list_count`
    /// lists, two thirds of them in two lists. Every media has "full" and
    /// "thumb"; every eighth is a video; every tenth has a "square-preview".
    pub fn sample(media_count: usize, list_count: usize) -> Vault {
        let mut lists: Vec<FakeList> = (0..list_count)
            .map(|index| {
                let name = LIST_NAMES[index % LIST_NAMES.len()].to_owned();
                let round = index / LIST_NAMES.len();
                FakeList {
                    id: (FIRST_LIST_ID + index as u64).to_string(),
                    name: if round == 0 {
                        name
                    } else {
                        format!("{name} {}", round + 1)
                    },
                    members: Vec::new(),
                }
            })
            .collect();
        let mut media = BTreeMap::new();
        for index in 0..media_count {
            let item = sample_media(index);
            if list_count > 0 {
                let home = index % list_count;
                let second = (index * 7 + 3) % list_count;
                lists[home].members.push(item.id.clone());
                if !index.is_multiple_of(3) && second != home {
                    lists[second].members.push(item.id.clone());
                }
            }
            media.insert(item.id.clone(), item);
        }
        Vault { lists, media }
    }

    /// The exact bytes a client should end up with for (id, label), if present.
    pub fn body(&self, media_id: &str, label: &str) -> Option<Bytes> {
        let variant = self.media.get(media_id)?.variants.get(label)?;
        Some(variant.body.clone())
    }
}

impl FakeVariant {
    /// A stored variant of `size` bytes whose body starts with the magic
    /// bytes of `content_type` (JPEG, PNG or MP4; other types get none).
    pub fn stored(media_id: &str, label: &str, content_type: &str, size: usize) -> FakeVariant {
        let created_at = SAMPLE_EPOCH_MS;
        FakeVariant {
            status: "stored".to_owned(),
            content_type: content_type.to_owned(),
            declared_size: None,
            served_content_type: None,
            body: sample_body(content_type, size, &mut Xorshift::seeded(media_id, label)),
            created_at,
            stored_at: Some(created_at + 5_000),
        }
    }
}

fn sample_media(index: usize) -> FakeMedia {
    // 104_729 is prime, so ids stay distinct and 10 digits for any index.
    let number = (4_100_000_000 + index as u64 * 104_729) % 10_000_000_000;
    let id = format!("{number:010}");
    let is_video = index % 8 == 7;
    let (media_type, full_type, duration) = match (is_video, index % 2) {
        (true, _) => ("video", "video/mp4", Some(5.0 + (index % 50) as f64 * 1.5)),
        (false, 0) => ("image", "image/jpeg", None),
        (false, _) => ("image", "image/png", None),
    };
    let thumb_type = if is_video { "image/jpeg" } else { full_type };
    let full_sizes = if is_video {
        40_000..120_000
    } else {
        8_000..40_000
    };
    let mut labels = vec![
        ("full", full_type, full_sizes),
        ("thumb", thumb_type, 1_000..3_000),
    ];
    if index.is_multiple_of(10) {
        labels.push(("square-preview", "image/jpeg", 1_500..2_500));
    }
    let created_at = SAMPLE_EPOCH_MS + index as i64 * 60_000;
    let variants = labels
        .into_iter()
        .map(|(label, content_type, sizes)| {
            let size = pick(&id, label, sizes);
            let mut variant = FakeVariant::stored(&id, label, content_type, size);
            variant.created_at = created_at;
            variant.stored_at = Some(created_at + 5_000);
            (label.to_owned(), variant)
        })
        .collect();
    FakeMedia {
        id,
        media_type: media_type.to_owned(),
        duration,
        variants,
    }
}

/// A size in `sizes`, from a generator seeded apart from the body's.
fn pick(media_id: &str, label: &str, sizes: Range<usize>) -> usize {
    let span = (sizes.end - sizes.start).max(1) as u64;
    let mut random = Xorshift::seeded(media_id, &format!("{label}#size"));
    sizes.start + usize::try_from(random.next_u64() % span).unwrap_or(0)
}

fn sample_body(content_type: &str, size: usize, random: &mut Xorshift) -> Bytes {
    let (mut body, trailer): (Vec<u8>, &[u8]) = match content_type {
        "image/jpeg" => (JPEG_HEADER.to_vec(), &[0xFF, 0xD9]),
        "image/png" => (png_header(), PNG_END),
        "video/mp4" => (MP4_HEADER.to_vec(), &[]),
        _ => (Vec::new(), &[]),
    };
    let filler = size.saturating_sub(body.len() + trailer.len());
    body.extend((0..filler).map(|_| random.next_u64().to_le_bytes()[0]));
    body.extend_from_slice(trailer);
    Bytes::from(body)
}

/// The PNG signature and a valid IHDR chunk (640×480, 8-bit RGB).
fn png_header() -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&640u32.to_be_bytes());
    chunk.extend_from_slice(&480u32.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut header = PNG_SIGNATURE.to_vec();
    header.extend_from_slice(&13u32.to_be_bytes());
    header.extend_from_slice(&chunk);
    header.extend_from_slice(&crc32(&chunk).to_be_bytes());
    header
}

/// CRC-32 as PNG chunks use it, bit by bit: the headers are tiny.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// xorshift64, seeded by FNV-1a of (id, label): stable across runs and
/// platforms, unlike std's hashers.
struct Xorshift(u64);

impl Xorshift {
    fn seeded(media_id: &str, label: &str) -> Xorshift {
        let mut hash = 0xCBF2_9CE4_8422_2325u64;
        for byte in media_id.bytes().chain([0]).chain(label.bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        Xorshift(hash | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
