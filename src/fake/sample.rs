//! The deterministic sample vault: the same arguments always give the same
//! ids, lists and bytes, so tests and `demo` can check what a client wrote.
//!
//! The bodies are real media a person can open: JPEG and PNG images drawn
//! here (a gradient and a few shapes, different per media) whose `thumb`
//! and `square-preview` are downscaled copies of the same picture, and
//! short H.264 clips (`assets/`, made with ffmpeg; see `assets/README.md`)
//! whose `thumb` is a JPEG of one of their frames.
//!
//! Invariants: every body is a valid instance of its declared content type
//! (the mirror checks magic bytes), and building a sample is cheap: there
//! are [`DESIGNS`] pictures, each drawn and encoded once per process and
//! shared by every media (and every sample) that uses it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use super::connections::FakeConnection;
use super::options::FakeOptions;
use super::vault::{AccessFacts, FakeList, FakeMedia, FakeVariant, Vault};

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

/// Distinct pictures: the default `demo` (60 media) shows no repeat.
const DESIGNS: usize = 64;
const FULL_SIZE: (usize, usize) = (320, 240);
const THUMB_SIZE: (usize, usize) = (80, 60);
const SQUARE_SIZE: usize = 96;
const JPEG_QUALITY: u8 = 85;

/// Two-second 160×120 clips, and a JPEG of the frame at one second of each.
const CLIPS: [(&[u8], &[u8]); 3] = [
    (
        include_bytes!("assets/clip-1.mp4"),
        include_bytes!("assets/frame-1.jpg"),
    ),
    (
        include_bytes!("assets/clip-2.mp4"),
        include_bytes!("assets/frame-2.jpg"),
    ),
    (
        include_bytes!("assets/clip-3.mp4"),
        include_bytes!("assets/frame-3.jpg"),
    ),
];
const CLIP_SECONDS: f64 = 2.0;

/// SOI and a JFIF APP0 segment: the fallback body's start.
pub(super) const JPEG_HEADER: &[u8] =
    b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1A\n";
pub(super) const PNG_END: &[u8] = b"\x00\x00\x00\x00IEND\xAE\x42\x60\x82";
/// An `ftyp` box of 24 bytes: brand isom, compatible isom and mp41.
pub(super) const MP4_HEADER: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41";

impl Vault {
    /// Deterministic sample: `media_count` media spread over `list_count`
    /// lists, two thirds of them in two lists. Every media has "full" and
    /// "thumb"; every eighth is a video; every tenth has a "square-preview".
    pub fn sample(media_count: usize, list_count: usize) -> Vault {
        Vault::sample_from(0, media_count, list_count)
    }

    /// [`Vault::sample`] of the sample media `first..first + media_count`:
    /// vaults made from ranges that do not overlap share no media id.
    pub fn sample_from(first: usize, media_count: usize, list_count: usize) -> Vault {
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
            let item = sample_media(first + index);
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
    /// A stored variant of exactly `size` bytes: a real image or clip of
    /// `content_type` (JPEG, PNG or MP4), padded where the format allows
    /// (JPEG comment segments and fill bytes, a private PNG chunk, an MP4
    /// `free` box). A size too small for the real thing, or another
    /// type, gets the type's magic bytes and filler instead.
    pub fn stored(media_id: &str, label: &str, content_type: &str, size: usize) -> FakeVariant {
        let created_at = SAMPLE_EPOCH_MS;
        let seed = Xorshift::seeded(media_id, "design").next_u64();
        let real = match content_type {
            "image/jpeg" | "image/png" => {
                let kind = match label {
                    "thumb" => Kind::Thumb,
                    "square-preview" => Kind::Square,
                    _ => Kind::Full,
                };
                let format = if content_type == "image/png" {
                    Format::Png
                } else {
                    Format::Jpeg
                };
                Some(picture(seed as usize % DESIGNS, kind, format))
            }
            "video/mp4" => Some(Bytes::from_static(CLIPS[seed as usize % CLIPS.len()].0)),
            _ => None,
        };
        let body = real
            .and_then(|body| padded(content_type, &body, size))
            .unwrap_or_else(|| {
                filler_body(content_type, size, &mut Xorshift::seeded(media_id, label))
            });
        FakeVariant {
            status: "stored".to_owned(),
            content_type: content_type.to_owned(),
            declared_size: None,
            served_content_type: None,
            body,
            created_at,
            stored_at: Some(created_at + 5_000),
        }
    }
}

fn sample_media(index: usize) -> FakeMedia {
    // 104_729 is prime, so ids stay distinct and 10 digits for any index.
    let number = (4_100_000_000 + index as u64 * 104_729) % 10_000_000_000;
    let id = format!("{number:010}");
    let created_at = SAMPLE_EPOCH_MS + i64::try_from(index).unwrap_or(0) * 60_000;
    let variant = |content_type: &str, body: Bytes| FakeVariant {
        status: "stored".to_owned(),
        content_type: content_type.to_owned(),
        declared_size: None,
        served_content_type: None,
        body,
        created_at,
        stored_at: Some(created_at + 5_000),
    };
    let mut variants = BTreeMap::new();
    let (media_type, duration) = if index % 8 == 7 {
        let (clip, frame) = CLIPS[(index / 8) % CLIPS.len()];
        variants.insert(
            "full".to_owned(),
            variant("video/mp4", Bytes::from_static(clip)),
        );
        variants.insert(
            "thumb".to_owned(),
            variant("image/jpeg", Bytes::from_static(frame)),
        );
        ("video", Some(CLIP_SECONDS))
    } else {
        let (format, content_type) = if index.is_multiple_of(2) {
            (Format::Jpeg, "image/jpeg")
        } else {
            (Format::Png, "image/png")
        };
        let design = index % DESIGNS;
        for (label, kind) in [("full", Kind::Full), ("thumb", Kind::Thumb)] {
            variants.insert(
                label.to_owned(),
                variant(content_type, picture(design, kind, format)),
            );
        }
        ("image", None)
    };
    if index.is_multiple_of(10) {
        let design = index % DESIGNS;
        variants.insert(
            "square-preview".to_owned(),
            variant("image/jpeg", picture(design, Kind::Square, Format::Jpeg)),
        );
    }
    let access = sample_access(index, media_type == "video");
    FakeMedia {
        id,
        media_type: media_type.to_owned(),
        duration,
        variants,
        access,
    }
}

/// What the Access API says of sample media `index`: created a little
/// over nine days before the one before it (so the sample spans months
/// and years), in the spellings OnlyFans and its proxies use; every
/// thirteenth is not listed there (deleted on OnlyFans, still in Vault+).
fn sample_access(index: usize, video: bool) -> Option<AccessFacts> {
    if index % 13 == 12 {
        return None;
    }
    let step = i64::try_from(index).unwrap_or(0) * (9 * 86_400_000 + 3_600_000 + 61_000);
    let created = SAMPLE_EPOCH_MS - 86_400_000 - step;
    let seconds = created / 1000;
    let created_at = match index % 4 {
        // As the API documents it: text with an offset.
        0 => crate::api::models::format_offset_date(created, 0),
        1 => crate::api::models::format_offset_date(created, 2 * 3_600),
        2 => seconds.to_string(),
        _ => crate::api::models::format_offset_date(created, -5 * 3_600).replace('T', " "),
    };
    let (width, height) = if video { (160, 120) } else { FULL_SIZE };
    Some(AccessFacts {
        created_at,
        width: u32::try_from(width).ok(),
        height: u32::try_from(height).ok(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// The picture itself.
    Full,
    /// The picture at a quarter of its width and height.
    Thumb,
    /// Its middle square, small.
    Square,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Format {
    Jpeg,
    Png,
}

/// An encoded picture, drawn and encoded at most once per process.
fn picture(design: usize, kind: Kind, format: Format) -> Bytes {
    type Cache = Mutex<HashMap<(usize, Kind, Format), Bytes>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (design, kind, format);
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return found.clone();
    }
    // Drawn outside the lock: two threads may both draw a design once,
    // which costs less than making every other design wait.
    let full = Canvas::design(design);
    let canvas = match kind {
        Kind::Full => full,
        Kind::Thumb => full.resized(THUMB_SIZE.0, THUMB_SIZE.1),
        Kind::Square => full.middle_square().resized(SQUARE_SIZE, SQUARE_SIZE),
    };
    let encoded = Bytes::from(match format {
        Format::Jpeg => canvas.jpeg(),
        Format::Png => canvas.png(),
    });
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert(encoded)
        .clone()
}

/// An RGB picture in memory.
struct Canvas {
    width: usize,
    height: usize,
    /// Row-major RGB, 3 bytes a pixel.
    pixels: Vec<u8>,
}

/// A shape drawn over the gradient.
enum Shape {
    Disc {
        x: f32,
        y: f32,
        radius: f32,
    },
    Ring {
        x: f32,
        y: f32,
        radius: f32,
        width: f32,
    },
    Square {
        x: f32,
        y: f32,
        half: f32,
    },
    Band {
        offset: f32,
        width: f32,
    },
}

impl Shape {
    fn covers(&self, px: f32, py: f32) -> bool {
        match *self {
            Shape::Disc { x, y, radius } => (px - x).powi(2) + (py - y).powi(2) <= radius * radius,
            Shape::Ring {
                x,
                y,
                radius,
                width,
            } => (((px - x).powi(2) + (py - y).powi(2)).sqrt() - radius).abs() <= width / 2.0,
            Shape::Square { x, y, half } => (px - x).abs() <= half && (py - y).abs() <= half,
            Shape::Band { offset, width } => (px + py - offset).abs() <= width / 2.0,
        }
    }
}

impl Canvas {
    /// Picture number `design`: a two-colour gradient in a direction of
    /// its own, under three to six discs, rings, squares and bands in
    /// colours opposite the gradient's.
    #[expect(clippy::cast_sign_loss, reason = "colour channels between 0 and 255")]
    fn design(design: usize) -> Canvas {
        let (width, height) = FULL_SIZE;
        let mut random = Xorshift::seeded(&design.to_string(), "design");
        // The golden angle spreads neighbouring designs' hues apart.
        let hue = (design as f32 * 137.508) % 360.0;
        let start = hsv(hue, 0.55, 0.95);
        let end = hsv(hue + 40.0 + random.below(80) as f32, 0.75, 0.45);
        let angle = random.below(360) as f32 * std::f32::consts::PI / 180.0;
        let (dx, dy) = (angle.cos(), angle.sin());
        let (w, h) = (width as f32, height as f32);
        let span = (w * dx.abs() + h * dy.abs()).max(1.0);
        let low = (0.0f32).min(w * dx) + (0.0f32).min(h * dy);

        let count = 3 + random.below(4);
        let shapes: Vec<(Shape, [u8; 3])> = (0..count)
            .map(|index| {
                let x = random.below(width as u64) as f32;
                let y = random.below(height as u64) as f32;
                let size = 18.0 + random.below(52) as f32;
                let shape = match (design + index as usize) % 4 {
                    0 => Shape::Disc { x, y, radius: size },
                    1 => Shape::Ring {
                        x,
                        y,
                        radius: size,
                        width: 6.0 + random.below(8) as f32,
                    },
                    2 => Shape::Square {
                        x,
                        y,
                        half: size * 0.8,
                    },
                    _ => Shape::Band {
                        offset: random.below((width + height) as u64) as f32,
                        width: 10.0 + random.below(20) as f32,
                    },
                };
                let colour = hsv(hue + 150.0 + index as f32 * 30.0, 0.7, 0.9);
                (shape, colour)
            })
            .collect();

        let mut pixels = Vec::with_capacity(width * height * 3);
        for row in 0..height {
            for column in 0..width {
                let (px, py) = (column as f32, row as f32);
                let t = ((px * dx + py * dy - low) / span).clamp(0.0, 1.0);
                let mut colour = [0u8; 3];
                for channel in 0..3 {
                    colour[channel] =
                        (f32::from(start[channel]) * (1.0 - t) + f32::from(end[channel]) * t) as u8;
                }
                for (shape, shape_colour) in &shapes {
                    if shape.covers(px, py) {
                        // Three quarters opaque, so overlaps show.
                        for channel in 0..3 {
                            colour[channel] = ((u16::from(colour[channel])
                                + 3 * u16::from(shape_colour[channel]))
                                / 4) as u8;
                        }
                    }
                }
                pixels.extend_from_slice(&colour);
            }
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    /// A smaller copy, each pixel the average of the area it covers.
    fn resized(&self, width: usize, height: usize) -> Canvas {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for row in 0..height {
            let top = row * self.height / height;
            let bottom = ((row + 1) * self.height / height).max(top + 1);
            for column in 0..width {
                let left = column * self.width / width;
                let right = ((column + 1) * self.width / width).max(left + 1);
                let mut sums = [0u32; 3];
                for y in top..bottom {
                    for x in left..right {
                        let at = (y * self.width + x) * 3;
                        for (sum, value) in sums.iter_mut().zip(&self.pixels[at..at + 3]) {
                            *sum += u32::from(*value);
                        }
                    }
                }
                let area = ((bottom - top) * (right - left)) as u32;
                pixels.extend(sums.iter().map(|sum| (sum / area) as u8));
            }
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    fn middle_square(&self) -> Canvas {
        let side = self.width.min(self.height);
        let left = (self.width - side) / 2;
        let top = (self.height - side) / 2;
        let mut pixels = Vec::with_capacity(side * side * 3);
        for row in top..top + side {
            let at = (row * self.width + left) * 3;
            pixels.extend_from_slice(&self.pixels[at..at + side * 3]);
        }
        Canvas {
            width: side,
            height: side,
            pixels,
        }
    }

    fn jpeg(&self) -> Vec<u8> {
        let mut encoded = Vec::new();
        jpeg_encoder::Encoder::new(&mut encoded, JPEG_QUALITY)
            .encode(
                &self.pixels,
                self.width as u16,
                self.height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .expect("a small RGB picture encodes into memory");
        encoded
    }

    fn png(&self) -> Vec<u8> {
        let mut encoded = Vec::new();
        let mut encoder = png::Encoder::new(&mut encoded, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder
            .write_header()
            .expect("a PNG header writes into memory");
        writer
            .write_image_data(&self.pixels)
            .expect("a small RGB picture encodes into memory");
        writer.finish().expect("a PNG ends in memory");
        encoded
    }
}

/// HSV (hue in degrees, saturation and value in 0–1) to RGB.
#[expect(
    clippy::cast_sign_loss,
    reason = "hue, saturation and value are never negative"
)]
fn hsv(hue: f32, saturation: f32, value: f32) -> [u8; 3] {
    let hue = hue.rem_euclid(360.0) / 60.0;
    let chroma = value * saturation;
    let x = chroma * (1.0 - (hue % 2.0 - 1.0).abs());
    let (r, g, b) = match hue as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = value - chroma;
    [r, g, b].map(|channel| ((channel + m) * 255.0).round() as u8)
}

/// `body` grown to exactly `size` bytes without breaking it, if its format
/// allows that much padding.
fn padded(content_type: &str, body: &[u8], size: usize) -> Option<Bytes> {
    let padding = size.checked_sub(body.len())?;
    if padding == 0 {
        return Some(Bytes::copy_from_slice(body));
    }
    let mut grown = Vec::with_capacity(size);
    match content_type {
        "image/jpeg" => {
            // After SOI and the JFIF segment: comment segments, then fill
            // bytes (0xFF, which may precede any marker) for the rest.
            const AFTER_JFIF: usize = 20;
            if body.len() < AFTER_JFIF || !body.starts_with(b"\xFF\xD8\xFF\xE0") {
                return None;
            }
            grown.extend_from_slice(&body[..AFTER_JFIF]);
            let mut left = padding;
            while left >= 4 {
                let data = (left - 4).min(65_533);
                grown.extend_from_slice(&[0xFF, 0xFE]);
                grown.extend_from_slice(&((data + 2) as u16).to_be_bytes());
                grown.extend(std::iter::repeat_n(b' ', data));
                left -= data + 4;
            }
            grown.extend(std::iter::repeat_n(0xFF, left));
            grown.extend_from_slice(&body[AFTER_JFIF..]);
        }
        "image/png" => {
            // A private, ancillary chunk (`vmPd`) just before IEND.
            if padding < 12 || padding - 12 > u32::MAX as usize || body.len() < PNG_END.len() {
                return None;
            }
            let (head, end) = body.split_at(body.len() - PNG_END.len());
            grown.extend_from_slice(head);
            let mut chunk = b"vmPd".to_vec();
            chunk.extend(std::iter::repeat_n(0, padding - 12));
            grown.extend_from_slice(&((padding - 12) as u32).to_be_bytes());
            grown.extend_from_slice(&chunk);
            grown.extend_from_slice(&crc32(&chunk).to_be_bytes());
            grown.extend_from_slice(end);
        }
        "video/mp4" => {
            // A `free` box at the end, which players skip.
            if padding < 8 || padding > u32::MAX as usize {
                return None;
            }
            grown.extend_from_slice(body);
            grown.extend_from_slice(&(padding as u32).to_be_bytes());
            grown.extend_from_slice(b"free");
            grown.extend(std::iter::repeat_n(0, padding - 8));
        }
        _ => return None,
    }
    Some(Bytes::from(grown))
}

/// The type's magic bytes and pseudo-random filler: for sizes too small
/// for a real body (not viewable, but still of the declared type).
fn filler_body(content_type: &str, size: usize, random: &mut Xorshift) -> Bytes {
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
pub(super) fn png_header() -> Vec<u8> {
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

/// CRC-32 as PNG chunks use it, bit by bit: the chunks are small.
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

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// A sample account: the vault of the server's own connection, and the
/// options that add `connections - 1` other connections of
/// [`FakeConnection::sample_agency`] (and, when `troubled`, two more that
/// need re-linking: one listed as expired, one refused).
pub fn sample_account(
    media: usize,
    lists: usize,
    connections: usize,
    troubled: bool,
) -> (Vault, FakeOptions) {
    if connections <= 1 && !troubled {
        return (Vault::sample(media, lists), FakeOptions::default());
    }
    let extra = if troubled { 2 } else { 0 };
    let mut agency = FakeConnection::sample_agency(connections.max(1) + extra, media, lists);
    if troubled && let [.., expired, refused] = agency.as_mut_slice() {
        expired.status = "expired".to_owned();
        refused.session_expired = true;
    }
    let first = agency.remove(0);
    let options = FakeOptions {
        connection_id: first.id,
        more_connections: agency,
        ..FakeOptions::default()
    };
    (first.vault, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bodies_have_exactly_the_size_asked() {
        for content_type in ["image/jpeg", "image/png", "video/mp4", "text/plain"] {
            for size in [100, 700, 5_000, 64 * 1024, 200_000] {
                let variant = FakeVariant::stored("1000000001", "full", content_type, size);
                assert_eq!(variant.body.len(), size, "{content_type} {size}");
            }
        }
        // Big enough: the real picture, padded, still a JPEG from end to end.
        let jpeg = FakeVariant::stored("1", "full", "image/jpeg", 64 * 1024).body;
        assert!(
            jpeg.starts_with(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00") && jpeg.ends_with(b"\xFF\xD9")
        );
        assert!(jpeg.windows(2).any(|pair| pair == b"\xFF\xFE"));
    }

    #[test]
    fn thumbnails_are_small_copies_of_their_picture() {
        let full = Canvas::design(5);
        assert_eq!((full.width, full.height), FULL_SIZE);
        let thumb = full.resized(THUMB_SIZE.0, THUMB_SIZE.1);
        assert_eq!(thumb.pixels.len(), THUMB_SIZE.0 * THUMB_SIZE.1 * 3);
        // A thumb pixel is the average of its 4×4 block of the full picture.
        let mut sum = 0u32;
        for y in 0..4 {
            for x in 0..4 {
                sum += u32::from(full.pixels[(y * FULL_SIZE.0 + x) * 3]);
            }
        }
        assert_eq!(u32::from(thumb.pixels[0]), sum / 16);
        // Designs differ.
        assert_ne!(Canvas::design(6).pixels, full.pixels);
    }

    #[test]
    fn padding_keeps_each_format_whole() {
        let png = picture(1, Kind::Thumb, Format::Png);
        let grown = padded("image/png", &png, png.len() + 40).unwrap();
        assert!(grown.ends_with(PNG_END) && grown.starts_with(PNG_SIGNATURE));
        assert!(padded("image/png", &png, png.len() + 5).is_none());
        let jpeg = picture(1, Kind::Thumb, Format::Jpeg);
        for extra in [1, 3, 4, 70_000] {
            let grown = padded("image/jpeg", &jpeg, jpeg.len() + extra).unwrap();
            assert_eq!(grown.len(), jpeg.len() + extra);
            assert!(grown.ends_with(b"\xFF\xD9"));
        }
    }

    #[test]
    fn pictures_decode_at_their_sizes() {
        let png = picture(3, Kind::Full, Format::Png);
        let decoder = png::Decoder::new(std::io::Cursor::new(png.to_vec()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (320, 240));

        // A JPEG's frame header (SOF0) names its height and width.
        for (kind, size) in [
            (Kind::Full, (240, 320)),
            (Kind::Thumb, (60, 80)),
            (Kind::Square, (96, 96)),
        ] {
            let jpeg = picture(2, kind, Format::Jpeg);
            let at = jpeg
                .windows(2)
                .position(|pair| pair == b"\xFF\xC0")
                .unwrap();
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            assert_eq!((height, width), size);
            assert!(jpeg.ends_with(b"\xFF\xD9"));
        }
    }
}
