//! Names on disk come only from sanitised ids and labels and an extension
//! chosen from the content type, never from raw server text.
//!
//! [`safe_name`] is injective: bytes outside `[a-z0-9_-]` (uppercase
//! included, so names stay distinct on case-insensitive file systems) are
//! written as `~hh`; since a raw `~` is always escaped, distinct inputs give
//! distinct names. Over-long names keep a readable prefix and end in
//! `~~` plus a sha256 of the whole input, which plain escaping never
//! produces. So a media id such as `../../x` cannot escape `<out>`, and two
//! ids never share a folder.

use sha2::{Digest, Sha256};

/// Longest name we produce (well under the 255 bytes most file systems allow).
const MAX_NAME: usize = 120;

/// Names Windows refuses whatever the extension.
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A file-system-safe, injective rendering of `raw` (see the module docs).
pub fn safe_name(raw: &str) -> String {
    let mut name = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-' {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("~{byte:02x}"));
        }
    }
    if name.is_empty() {
        // The empty id is still an id; give it a name no other input has.
        return "~".to_owned();
    }
    if RESERVED.contains(&name.as_str()) {
        name = format!("~{:02x}{}", name.as_bytes()[0], &name[1..]);
    }
    if name.len() > MAX_NAME {
        let mut cut = MAX_NAME - 2 - 32 - 1;
        // Never cut an escape in half.
        while name.as_bytes()[..cut]
            .iter()
            .rev()
            .take(2)
            .any(|&b| b == b'~')
        {
            cut -= 1;
        }
        let digest = hex::encode(Sha256::digest(raw.as_bytes()));
        name = format!("{}~~{}", &name[..cut], &digest[..32]);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn plain_ids_stay_readable() {
        assert_eq!(safe_name("4492994399"), "4492994399");
        assert_eq!(safe_name("thumb"), "thumb");
        assert_eq!(safe_name("720p"), "720p");
    }

    #[test]
    fn distinct_inputs_give_distinct_names() {
        let inputs = [
            "a", "A", "~61", "a~", "~", "", "con", "~63on", "x/y", "x~2fy", "..", "~2e~2e",
        ];
        let names: HashSet<String> = inputs.iter().map(|raw| safe_name(raw)).collect();
        assert_eq!(names.len(), inputs.len(), "{names:?}");
    }

    #[test]
    fn long_names_are_cut_with_a_digest() {
        let long_a = "9".repeat(5000);
        let long_b = format!("{}8", "9".repeat(4999));
        let a = safe_name(&long_a);
        let b = safe_name(&long_b);
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME);
        assert_ne!(a, b);
        let escaped = safe_name(&"/".repeat(500));
        assert!(escaped.len() <= MAX_NAME);
        assert!(escaped.contains("~~"));
    }
}
