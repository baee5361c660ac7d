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

/// Names Windows refuses whatever the extension (`con`, `CON.jpg`, `com1.txt`:
/// device names; `com0` and `lpt0` too on recent versions).
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7",
    "com8", "com9", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Whether Windows refuses `name` as a file or folder name: a device name
/// (with or without an extension, any case, spaces before the dot
/// ignored), a character of `<>:"/\|?*` or a control character, a
/// trailing dot or space, or nothing. Pure, so Linux tests check every
/// name vault-mirror makes against it.
pub fn windows_refuses(name: &str) -> bool {
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches(' ');
    name.is_empty()
        || name.ends_with(['.', ' '])
        || name
            .chars()
            .any(|c| c.is_control() || "<>:\"/\\|?*".contains(c))
        || RESERVED.contains(&stem.to_ascii_lowercase().as_str())
        || ["conin$", "conout$"].contains(&stem.to_ascii_lowercase().as_str())
}

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
    fn windows_refuses_what_it_refuses() {
        for refused in [
            "CON",
            "COM0",
            "lpt0.png",
            "con",
            "Con.jpg",
            "nul.txt",
            "COM1",
            "lpt9.tar.gz",
            "aux ",
            "name.",
            "a:b",
            "a<b",
            "a>b",
            "a\"b",
            "a/b",
            "a\\b",
            "a|b",
            "a?b",
            "a*b",
            "a\u{1}b",
            "",
            "prn .x",
        ] {
            assert!(windows_refuses(refused), "{refused:?}");
        }
        for allowed in [
            "console",
            "con-1",
            "4100000000",
            "full.jpg",
            "~63on",
            "a.b.c",
            ".vault-mirror",
        ] {
            assert!(!windows_refuses(allowed), "{allowed:?}");
        }
    }

    proptest::proptest! {
        /// Every name [`safe_name`] makes, and every file name vault-mirror
        /// makes from one (`<label>.<ext>`, a view's `<media>.<label>.<ext>`),
        /// is one Windows takes, whatever the id or label.
        #[test]
        fn safe_names_are_names_windows_takes(raw in "\\PC{0,200}", other in "(con|nul|com[0-9]|lpt[0-9]|aux|prn)[. ]{0,2}") {
            for input in [raw.as_str(), other.as_str(), &other.to_uppercase()] {
                let name = safe_name(input);
                proptest::prop_assert!(!windows_refuses(&name), "{input:?} -> {name:?}");
                let file = format!("{name}.jpg");
                let view_entry = format!("{name}.{name}.jpg");
                proptest::prop_assert!(!windows_refuses(&file), "{}", file);
                proptest::prop_assert!(!windows_refuses(&view_entry), "{}", view_entry);
            }
        }
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
