//! Views by template (`[[views]] name = "by-date"`, `path =
//! "{date:%Y}/{date:%Y-%m}/{date:%Y-%m-%d}_{id}_{label}.{ext}"`): parsing a
//! template once, before any work, and rendering it into a relative path
//! that can never leave its view's folder.
//!
//! Invariants:
//! - A template is checked whole when settings are built: an unknown
//!   field, a bad date format, an unclosed brace, an absolute path, an
//!   empty or `.`/`..` segment, or a character no file system takes is
//!   refused with the field named and the valid ones listed.
//! - [`Template::render`] gives only relative paths of plain segments:
//!   whatever the values hold (`../`, `/`, NUL, a name Windows reserves, 300
//!   bytes), each segment is cut to [`MAX_SEGMENT`] bytes, never `.` or `..`,
//!   never holds a separator or a control character, and never is a name
//!   Windows reserves. Callers pass values already made readable and safe
//!   (ids through `names::safe_name`); this is the guard behind them.
//! - Dates are rendered in UTC: the API gives no time zone for a creator.

use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::names::safe_name;

/// The built-in `by-date` view's template.
pub const BY_DATE: &str = "{date:%Y}/{date:%Y-%m}/{date:%Y-%m-%d}_{id}_{label}.{ext}";
/// The built-in view's name.
pub const BY_DATE_NAME: &str = "by-date";
/// Longest segment rendered, in bytes (file systems allow 255).
pub const MAX_SEGMENT: usize = 200;
/// Names a view cannot take: the archive's own folders.
const TAKEN_NAMES: &[&str] = &["media", "lists"];

/// The fields a template may use, with what each holds.
pub const FIELDS: &[(&str, &str)] = &[
    ("id", "the media id"),
    ("label", "the variant's label (full, thumb, …)"),
    ("ext", "the file's extension (jpg, mp4, …)"),
    ("type", "image, video or audio"),
    (
        "list",
        "a list's name, as a slug (one entry per list holding the media)",
    ),
    (
        "list_id",
        "a list's id (one entry per list holding the media)",
    ),
    (
        "date",
        "the media's date, `{date:%Y-%m-%d}` by default; any strftime format",
    ),
    ("year", "the media's year (`{date:%Y}`)"),
    ("month", "its month, 01–12"),
    ("day", "its day of the month, 01–31"),
    (
        "width",
        "the full file's width in pixels (`unknown` when not given)",
    ),
    ("height", "its height in pixels"),
    ("connection", "the connection's id"),
    (
        "username",
        "the creator's username, where the account's listing gives it",
    ),
];

/// A field of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Id,
    Label,
    Ext,
    Type,
    List,
    ListId,
    /// A date, with its strftime format.
    Date(String),
    Width,
    Height,
    Connection,
    Username,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed template: segments of pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<Vec<Piece>>,
}

/// A view by template, as the config file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewTemplate {
    /// The view's folder under the archive root.
    pub name: String,
    pub template: Template,
}

/// What one entry of a view is made from (values already readable and
/// safe; see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Values<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub ext: &'a str,
    pub media_type: &'a str,
    pub list: &'a str,
    pub list_id: &'a str,
    /// Epoch ms.
    pub date: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub connection: &'a str,
    pub username: &'a str,
}

impl Template {
    /// Parses `text`; the error is one sentence naming what is wrong.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.trim().is_empty() {
            return Err("the path is empty".into());
        }
        if text.starts_with('/') || text.starts_with('\\') {
            return Err("the path must be relative to the view's folder (no leading `/`)".into());
        }
        let mut segments = Vec::new();
        for segment in split_segments(text)? {
            segments.push(parse_segment(&segment)?);
        }
        Ok(Template {
            text: text.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether an entry is made per list holding the media.
    pub fn per_list(&self) -> bool {
        self.segments.iter().flatten().any(|piece| {
            matches!(
                piece,
                Piece::Field(Field::List) | Piece::Field(Field::ListId)
            )
        })
    }

    /// The relative path for `values`: plain segments only (see the
    /// module docs).
    pub fn render(&self, values: &Values<'_>) -> PathBuf {
        let date = chrono::DateTime::from_timestamp_millis(values.date).unwrap_or_default();
        let mut path = PathBuf::new();
        for segment in &self.segments {
            let mut text = String::new();
            for piece in segment {
                match piece {
                    Piece::Text(literal) => text.push_str(literal),
                    Piece::Field(field) => text.push_str(&field_text(field, values, &date)),
                }
            }
            path.push(safe_segment(&text));
        }
        path
    }
}

/// A field's value as text.
fn field_text(field: &Field, values: &Values<'_>, date: &chrono::DateTime<chrono::Utc>) -> String {
    let number = |value: Option<i64>| value.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    match field {
        Field::Id => values.id.to_owned(),
        Field::Label => values.label.to_owned(),
        Field::Ext => values.ext.to_owned(),
        Field::Type => values.media_type.to_owned(),
        Field::List => values.list.to_owned(),
        Field::ListId => values.list_id.to_owned(),
        Field::Date(format) => {
            let mut text = String::new();
            // Checked when parsed; a failure here writes what it could.
            let _ = write!(text, "{}", date.format(format));
            text
        }
        Field::Width => number(values.width),
        Field::Height => number(values.height),
        Field::Connection => values.connection.to_owned(),
        Field::Username => values.username.to_owned(),
    }
}

/// `text` as one plain path segment: separators, NUL and control
/// characters and the characters Windows refuses become `_`; `.` and `..`,
/// an empty segment and names Windows reserves get a `_` in front; one
/// over [`MAX_SEGMENT`] bytes is cut, keeping its extension, and ends in a
/// digest of the whole so cut names stay distinct.
pub fn safe_segment(text: &str) -> String {
    let mut segment: String = text
        .chars()
        .map(|c| match c {
            '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    // Windows drops trailing dots and spaces, which could merge names.
    if segment.ends_with(['.', ' ']) {
        segment.push('_');
    }
    if segment.is_empty() || segment == "." || segment == ".." || is_reserved(&segment) {
        segment.insert(0, '_');
    }
    if segment.len() > MAX_SEGMENT {
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        let extension = segment
            .rsplit_once('.')
            .map(|(_, extension)| extension)
            .filter(|extension| extension.len() <= 16)
            .unwrap_or_default()
            .to_owned();
        let mut cut = MAX_SEGMENT - 2 - 16 - 1 - extension.len();
        while !segment.is_char_boundary(cut) {
            cut -= 1;
        }
        segment = format!("{}~~{}.{extension}", &segment[..cut], &digest[..16]);
        if extension.is_empty() {
            segment.pop();
        }
    }
    segment
}

/// Whether Windows reserves `segment` (`con`, `nul.txt`, `COM1`, …):
/// `names::safe_name` escapes exactly those among plain names.
fn is_reserved(segment: &str) -> bool {
    let stem = segment
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_ascii_lowercase();
    (1..=4).contains(&stem.len())
        && stem.bytes().all(|b| b.is_ascii_alphanumeric())
        && safe_name(&stem) != stem
}

/// The template's segments, split at `/` outside braces.
fn split_segments(text: &str) -> Result<Vec<String>, String> {
    let mut segments = vec![String::new()];
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' if depth == 0 => depth = 1,
            '{' => return Err("a `{` inside a field; write fields as `{name}`".into()),
            '}' if depth == 1 => depth = 0,
            '}' => return Err("a `}` closes no field".into()),
            '/' if depth == 0 => {
                segments.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = segments.last_mut() {
            last.push(c);
        }
    }
    if depth != 0 {
        return Err("a field is not closed with `}`".into());
    }
    for segment in &segments {
        if segment.is_empty() {
            return Err("the path has an empty folder (`//`, or a `/` at the end)".into());
        }
        if segment == "." || segment == ".." {
            return Err(format!(
                "`{segment}` in the path would leave the view's folder"
            ));
        }
    }
    Ok(segments)
}

/// One segment's pieces.
fn parse_segment(segment: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = segment;
    while let Some(open) = rest.find('{') {
        literal(&rest[..open], &mut pieces)?;
        let close = rest[open..]
            .find('}')
            .map(|at| at + open)
            .unwrap_or(rest.len());
        pieces.push(Piece::Field(parse_field(&rest[open + 1..close])?));
        rest = &rest[(close + 1).min(rest.len())..];
    }
    literal(rest, &mut pieces)?;
    Ok(pieces)
}

fn literal(text: &str, pieces: &mut Vec<Piece>) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| matches!(c, '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*') || c.is_control())
    {
        return Err(format!(
            "the path holds {bad:?}, which some file systems refuse in a name"
        ));
    }
    pieces.push(Piece::Text(text.to_owned()));
    Ok(())
}

/// `name` or `date:FORMAT`.
fn parse_field(inside: &str) -> Result<Field, String> {
    let (name, format) = match inside.split_once(':') {
        Some((name, format)) => (name.trim(), Some(format)),
        None => (inside.trim(), None),
    };
    let field = match (name, format) {
        ("date", format) => {
            let format = format.unwrap_or("%Y-%m-%d");
            check_date_format(format)?;
            Field::Date(format.to_owned())
        }
        (_, Some(_)) => {
            return Err(format!(
                "the field `{name}` takes no format; only `date` does (`{{date:%Y-%m}}`)"
            ));
        }
        ("year", None) => Field::Date("%Y".into()),
        ("month", None) => Field::Date("%m".into()),
        ("day", None) => Field::Date("%d".into()),
        ("id", None) => Field::Id,
        ("label", None) => Field::Label,
        ("ext", None) => Field::Ext,
        ("type", None) => Field::Type,
        ("list", None) => Field::List,
        ("list_id", None) => Field::ListId,
        ("width", None) => Field::Width,
        ("height", None) => Field::Height,
        ("connection", None) => Field::Connection,
        ("username", None) => Field::Username,
        _ => {
            let valid: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
            return Err(format!(
                "unknown field `{{{name}}}`; the fields are {}",
                valid.join(", ")
            ));
        }
    };
    Ok(field)
}

/// A strftime format chrono reads in full, without `/` (a date's parts
/// are folders only when written as segments of the path).
fn check_date_format(format: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if format.is_empty() {
        return Err("the field `{date:}` has an empty format".into());
    }
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err(format!(
            "the date format `{format}` is not a strftime format chrono reads (e.g. `%Y-%m-%d`)"
        ));
    }
    if format.contains('/') {
        return Err(format!(
            "the date format `{format}` holds a `/`; write folders as parts of the path, \
             `{{date:%Y}}/{{date:%m}}`"
        ));
    }
    Ok(())
}

/// Checks a view's name: a plain folder name (lowercase letters, digits,
/// `-` and `_`, at most 64), not one of the archive's own folders.
pub fn check_view_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with('-');
    if !plain {
        return Err(format!(
            "the view name `{name}` must be a plain folder name: lowercase letters, digits, `-` and `_`, at most 64"
        ));
    }
    if TAKEN_NAMES.contains(&name) {
        return Err(format!(
            "`{name}` is the archive's own folder; name the view otherwise"
        ));
    }
    Ok(())
}

impl ViewTemplate {
    /// A view named `name` with `path` (`None`: the built-in `by-date`
    /// template, when the name is `by-date`).
    pub fn new(name: &str, path: Option<&str>) -> Result<ViewTemplate, String> {
        check_view_name(name)?;
        let path = match path {
            Some(path) => path,
            None if name == BY_DATE_NAME => BY_DATE,
            None => {
                return Err(format!(
                    "the view `{name}` needs a `path` (only `{BY_DATE_NAME}` has a built-in one)"
                ));
            }
        };
        let template =
            Template::parse(path).map_err(|reason| format!("view `{name}`: {reason}"))?;
        Ok(ViewTemplate {
            name: name.to_owned(),
            template,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            id: "4100000000",
            label: "full",
            ext: "jpg",
            media_type: "image",
            list: "summer-trip",
            list_id: "28489180",
            date: 1_747_483_200_000, // 2025-05-17T12:00:00Z
            width: Some(320),
            height: None,
            connection: "conn_a",
            username: "alice",
        }
    }

    #[test]
    fn the_by_date_template_renders_dated_folders() {
        let template = Template::parse(BY_DATE).unwrap();
        assert_eq!(
            template.render(&values()),
            PathBuf::from("2025/2025-05/2025-05-17_4100000000_full.jpg")
        );
        assert!(!template.per_list());
        let template =
            Template::parse("{list}/{year}-{month}-{day}_{width}x{height}.{ext}").unwrap();
        assert!(template.per_list());
        assert_eq!(
            template.render(&values()),
            PathBuf::from("summer-trip/2025-05-17_320xunknown.jpg")
        );
    }

    #[test]
    fn bad_templates_are_refused_naming_the_field_and_the_valid_ones() {
        let error = Template::parse("{date:%Y}/{nope}.{ext}").unwrap_err();
        assert!(error.contains("`{nope}`"), "{error}");
        assert!(
            error.contains("id, label, ext, type, list, list_id, date"),
            "{error}"
        );
        for (bad, says) in [
            ("", "empty"),
            ("/etc/{id}", "relative"),
            ("../{id}", "leave"),
            ("a/./{id}", "leave"),
            ("a//{id}", "empty folder"),
            ("{id", "not closed"),
            ("{id}}", "closes no field"),
            ("{date:%Q}", "strftime"),
            ("{date:%Y/%m}", "holds a `/`"),
            ("{id:x}", "takes no format"),
            ("a:b/{id}", "refuse"),
        ] {
            let error = Template::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
        assert!(ViewTemplate::new("media", Some("{id}")).is_err());
        assert!(ViewTemplate::new("../x", Some("{id}")).is_err());
        assert!(ViewTemplate::new("mine", None).is_err());
        assert_eq!(
            ViewTemplate::new("by-date", None).unwrap().template.text(),
            BY_DATE
        );
    }

    #[test]
    fn hostile_values_never_leave_the_view() {
        let template = Template::parse("{list}/{id}_{label}.{ext}").unwrap();
        let long = "x".repeat(300);
        for hostile in [
            "..",
            ".",
            "../../etc",
            "/",
            "a\0b",
            "con",
            "NUL.txt",
            "",
            "a. ",
            &long,
        ] {
            let values = Values {
                list: hostile,
                id: hostile,
                label: hostile,
                ..values()
            };
            let path = template.render(&values);
            for component in path.components() {
                let std::path::Component::Normal(segment) = component else {
                    panic!("{hostile:?} gave {path:?}");
                };
                let segment = segment.to_str().unwrap();
                assert!(segment.len() <= MAX_SEGMENT, "{segment}");
                assert!(!segment.contains(['/', '\\', '\0']), "{segment:?}");
                assert!(!is_reserved(segment), "{segment:?}");
            }
            assert_eq!(path.components().count(), 2, "{hostile:?} gave {path:?}");
        }
        assert_eq!(safe_segment("con"), "_con");
        assert_eq!(safe_segment("nul.txt"), "_nul.txt");
        assert_eq!(safe_segment("console"), "console");
        let cut = safe_segment(&format!("{long}.jpg"));
        assert!(cut.ends_with(".jpg") && cut.len() <= MAX_SEGMENT, "{cut}");
        assert_ne!(cut, safe_segment(&format!("{long}y.jpg")));
    }
}
