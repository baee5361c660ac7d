//! Signed URLs are secrets with a lifetime: anything that shows a URL to a
//! person (logs, errors, the database, the summary) goes through
//! [`Redacted`], which drops the query string and any user info.

use std::fmt;

/// A URL that displays without its query string, fragment or credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(url: &url::Url) -> Self {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let had_query = shown.query().is_some();
        shown.set_query(None);
        shown.set_fragment(None);
        let mut text = shown.to_string();
        if had_query {
            text.push_str("?…");
        }
        Redacted(text)
    }

    /// Redacts a URL given as text; text that is not a URL is cut at the
    /// first `?` so a query string can never leak.
    pub fn from_text(text: &str) -> Self {
        match url::Url::parse(text) {
            Ok(url) => Self::new(&url),
            Err(_) => match text.split_once('?') {
                Some((head, _)) => Redacted(format!("{head}?…")),
                None => Redacted(text.to_owned()),
            },
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Removes anything that looks like a URL query string from free text (an
/// error message from a library may quote the URL it failed on).
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, word) in text.split(' ').enumerate() {
        if index > 0 {
            out.push(' ');
        }
        if word.contains("://") && word.contains('?') {
            let trimmed =
                word.trim_matches(|c| matches!(c, '(' | ')' | '"' | '\'' | ',' | '<' | '>'));
            out.push_str(&word.replace(trimmed, Redacted::from_text(trimmed).as_str()));
        } else {
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_credentials_are_dropped() {
        let url =
            url::Url::parse("https://user:pw@media.example/a/b.jpg?sig=SECRET&exp=1").unwrap();
        let shown = Redacted::new(&url).to_string();
        assert_eq!(shown, "https://media.example/a/b.jpg?…");
        assert!(!shown.contains("SECRET"));
    }

    #[test]
    fn scrub_hides_queries_inside_messages() {
        let text = "error sending request for url (http://127.0.0.1:9/m?sig=SECRET): refused";
        let scrubbed = scrub(text);
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
        assert!(scrubbed.contains("http://127.0.0.1:9/m?…"), "{scrubbed}");
    }
}
