//! What makes a file's type acceptable: the declared `contentType` must
//! agree with the response's `Content-Type` header and with the magic bytes
//! at the start of the file.

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};

/// How many leading bytes the magic-byte check looks at.
pub const SNIFF_LEN: usize = 512;

/// What a transfer's bytes add up to as they arrive, wherever they go (a
/// `.part` file or an upload): their sha256, their count, and their first
/// [`SNIFF_LEN`] bytes for the magic-byte check.
pub struct Tally {
    hasher: Sha256,
    length: u64,
    head: Vec<u8>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            hasher: Sha256::new(),
            length: 0,
            head: Vec::with_capacity(SNIFF_LEN),
        }
    }
}

impl Tally {
    /// Counts, hashes and (while the head is short) keeps `bytes`.
    pub fn add(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        if self.head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.length += bytes.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The first bytes, up to [`SNIFF_LEN`].
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// sha256 (lowercase hex) of the bytes so far.
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// The sha256 state after the bytes so far, when no partial block is
    /// pending (the count a multiple of 64, as at every part boundary):
    /// 32 bytes, which with the count are the whole of it. None otherwise.
    pub fn state(&self) -> Option<[u8; 32]> {
        let serialized = self.hasher.serialize();
        // Layout (sha2 0.11): the eight state words (little-endian), the
        // count of blocks (u64, little-endian), then the pending block
        // buffer, all zero when empty.
        let (state, rest) = serialized.split_at(32);
        let (blocks, pending) = rest.split_at(8);
        let blocks = u64::from_le_bytes(blocks.try_into().ok()?);
        if pending.iter().any(|&byte| byte != 0) || blocks.checked_mul(64)? != self.length {
            return None;
        }
        state.try_into().ok()
    }

    /// The tally of a file's first `length` bytes from the sha256 `state`
    /// after them ([`Tally::state`]) and the file's `head`: what adding
    /// those bytes to a fresh tally would have given. None when `length`
    /// is not a multiple of 64.
    pub fn resume(state: &[u8; 32], length: u64, head: &[u8]) -> Option<Tally> {
        if !length.is_multiple_of(64) {
            return None;
        }
        let mut serialized = SerializedState::<Sha256>::default();
        serialized[..32].copy_from_slice(state);
        serialized[32..40].copy_from_slice(&(length / 64).to_le_bytes());
        let hasher = Sha256::deserialize(&serialized).ok()?;
        let take = head
            .len()
            .min(SNIFF_LEN)
            .min(usize::try_from(length).unwrap_or(usize::MAX));
        Some(Tally {
            hasher,
            length,
            head: head[..take].to_vec(),
        })
    }
}

/// The lowercase `type/subtype` of a content type, without parameters.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Folds aliases of one format into one name, so `image/jpg` and
/// `image/jpeg`, or `audio/x-m4a` and `audio/mp4`, compare equal. MP4,
/// QuickTime and M4A share the ISO base media container, whose brand the
/// sniffer can name either way, so they are one family here.
fn family(essence: &str) -> &str {
    match essence {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "video/mp4" | "video/quicktime" | "audio/mp4" | "audio/x-m4a" | "audio/m4a"
        | "video/x-m4v" | "video/3gpp" => "iso-bmff",
        "audio/mp3" | "audio/x-mpeg" => "audio/mpeg",
        "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
        "audio/x-flac" => "audio/flac",
        "image/heif" => "image/heic",
        "video/webm" | "audio/webm" | "video/x-matroska" => "matroska",
        other => other,
    }
}

/// Whether the response's `Content-Type` header agrees with the declared
/// type. A missing header, or the generic `application/octet-stream` that
/// object stores send for untyped objects, says nothing either way: the
/// magic bytes decide then.
pub fn header_agrees(declared: &str, header: Option<&str>) -> bool {
    let Some(header) = header else { return true };
    let header = essence(header);
    if header.is_empty() || header == "application/octet-stream" || header == "binary/octet-stream"
    {
        return true;
    }
    family(&header) == family(&essence(declared))
}

/// The outcome of looking at a file's first bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniff {
    /// The bytes are of the declared type.
    Agrees,
    /// The bytes are of another type (named).
    Disagrees(String),
    /// The bytes match no signature while the declared type has one.
    Unrecognised,
    /// The declared type has no signature we know: nothing to check.
    NotCheckable,
}

/// Compares the file's first bytes with the declared type.
pub fn sniff(declared: &str, head: &[u8]) -> Sniff {
    let declared = essence(declared);
    let found = infer::get(head).map(|kind| kind.mime_type().to_owned());
    // An alias (`image/jpg`) of a known format is checkable too.
    let checkable = infer::is_mime_supported(&declared) || family(&declared) != declared;
    if !checkable {
        return Sniff::NotCheckable;
    }
    match found {
        Some(found) if family(&found) == family(&declared) => Sniff::Agrees,
        Some(found) => Sniff::Disagrees(found),
        None => Sniff::Unrecognised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D,
    ];
    const MP4: &[u8] = &[
        0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm', 0, 0, 2, 0,
    ];

    #[test]
    fn a_tally_resumed_from_its_state_ends_with_the_same_sha256() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut whole = Tally::default();
        whole.add(&bytes);
        for cut in [0usize, 64, 640, 8192] {
            let mut first = Tally::default();
            first.add(&bytes[..cut]);
            let state = first.state().unwrap();
            let mut resumed = Tally::resume(&state, cut as u64, &bytes[..cut]).unwrap();
            resumed.add(&bytes[cut..]);
            assert_eq!(resumed.sha256(), whole.sha256(), "cut at {cut}");
            assert_eq!(resumed.len(), whole.len());
            assert_eq!(resumed.head(), whole.head());
        }
        // Mid-block there is no 32-byte state to give.
        let mut odd = Tally::default();
        odd.add(&bytes[..100]);
        assert_eq!(odd.state(), None);
        assert!(Tally::resume(&[0; 32], 100, &[]).is_none());
    }

    #[test]
    fn magic_bytes_agree_or_not() {
        assert_eq!(sniff("image/jpeg", JPEG), Sniff::Agrees);
        assert_eq!(sniff("image/jpg", JPEG), Sniff::Agrees);
        assert_eq!(sniff("image/png", PNG), Sniff::Agrees);
        assert_eq!(sniff("video/mp4", MP4), Sniff::Agrees);
        assert_eq!(
            sniff("image/jpeg", PNG),
            Sniff::Disagrees("image/png".into())
        );
        assert_eq!(
            sniff("image/jpeg", b"<html>oops</html>"),
            Sniff::Disagrees("text/html".into())
        );
        assert_eq!(sniff("image/jpeg", &[7u8; 64]), Sniff::Unrecognised);
        assert_eq!(
            sniff("application/x-custom", b"anything"),
            Sniff::NotCheckable
        );
    }

    #[test]
    fn header_checks() {
        assert!(header_agrees("image/jpeg", Some("image/jpeg")));
        assert!(header_agrees(
            "image/jpeg",
            Some("IMAGE/JPEG; charset=binary")
        ));
        assert!(header_agrees("image/jpeg", None));
        assert!(header_agrees(
            "image/jpeg",
            Some("application/octet-stream")
        ));
        assert!(!header_agrees("image/jpeg", Some("text/html")));
        assert!(!header_agrees("image/jpeg", Some("image/png")));
    }
}
