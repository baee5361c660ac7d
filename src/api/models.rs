//! Models of the OFAuth API answers, parsed leniently.
//!
//! The public docs are incomplete (see `shared/reference/ofauth-api.md`), so
//! every model tolerates unknown fields, unknown variant labels and status
//! values, numbers sent as strings (and ids sent as numbers), and missing
//! optional fields. What a field must hold for a variant to be downloadable
//! is checked later, per item, by the plan: one odd item never fails a page.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Cache state of one variant, as Vault+ reports it. Older API generations
/// used other words for the same states; they are mapped here. Anything
/// else is kept verbatim and treated as "not downloadable".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RemoteStatus {
    EdgeOnly,
    Pending,
    Storing,
    Stored,
    Removed,
    #[default]
    Missing,
    Other(String),
}

impl RemoteStatus {
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "edge_only" => Self::EdgeOnly,
            "pending" => Self::Pending,
            "storing" | "caching" => Self::Storing,
            "stored" | "cached" => Self::Stored,
            "removed" | "purged" => Self::Removed,
            "" => Self::Missing,
            _ => Self::Other(text.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::EdgeOnly => "edge_only",
            Self::Pending => "pending",
            Self::Storing => "storing",
            Self::Stored => "stored",
            Self::Removed => "removed",
            Self::Missing => "unknown",
            Self::Other(text) => text,
        }
    }

    /// Pending and storing variants will become stored without our help:
    /// the run reports them as pending instead of failed.
    pub fn is_on_its_way(&self) -> bool {
        matches!(self, Self::Pending | Self::Storing)
    }
}

impl<'de> Deserialize<'de> for RemoteStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(text) => Self::parse(&text),
            Value::Null => Self::Missing,
            other => Self::Other(other.to_string()),
        })
    }
}

/// One cached variant (a value of the `media` map, keyed by label).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Variant {
    pub status: RemoteStatus,
    #[serde(deserialize_with = "lenient_string")]
    pub quality: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub size_bytes: Option<i64>,
    #[serde(deserialize_with = "lenient_string")]
    pub content_type: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub created_at: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub expires_at: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub stored_at: Option<i64>,
    #[serde(deserialize_with = "lenient_string")]
    pub url: Option<String>,
}

/// A media item with all its cached variants (`MediaItem` in the docs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MediaItem {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub media_type: Option<String>,
    #[serde(deserialize_with = "lenient_f64")]
    pub duration: Option<f64>,
    #[serde(deserialize_with = "lenient_variants")]
    pub media: BTreeMap<String, Variant>,
}

/// One member of a Vault+ list (`ListMediaItem` in the docs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListMember {
    #[serde(deserialize_with = "lenient_string")]
    pub media_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub of_media_id: Option<String>,
    pub status: RemoteStatus,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub media_type: Option<String>,
}

impl ListMember {
    /// The media id, from `mediaId` or else `ofMediaId`.
    pub fn id(&self) -> Option<&str> {
        self.media_id.as_deref().or(self.of_media_id.as_deref())
    }
}

/// One vault list from the Access API (`VaultList`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VaultList {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub name: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub list_type: Option<String>,
}

/// A page of `GET /v2/access/vault/lists`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VaultListPage {
    pub list: Vec<Value>,
    pub has_more: bool,
    #[serde(deserialize_with = "lenient_i64")]
    pub next_offset: Option<i64>,
}

/// Answer of `PUT /v2/vault-plus/lists/{id}/sync`: counters, recorded as they are.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncReport {
    pub synced: bool,
    #[serde(deserialize_with = "lenient_i64")]
    pub seen: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub added_items: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub updated_items: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub removed_items: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub unchanged_items: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub adopted_items: Option<i64>,
}

/// Answer of `GET /v2/vault-plus/status`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VaultStatus {
    #[serde(deserialize_with = "lenient_string")]
    pub connection_id: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub stored_count: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub pending_count: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total_size_bytes: Option<i64>,
}

/// A response whose `items` are parsed one by one, so that one malformed
/// item is reported on its own and the others are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ItemsPage {
    pub items: Vec<Value>,
    #[serde(deserialize_with = "lenient_string")]
    pub next_cursor: Option<String>,
}

/// Error body; both documented shapes (`{error, type, requestId,
/// actionRequired}` and `{error|message, code, details}`) fit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorBody {
    #[serde(deserialize_with = "lenient_string")]
    pub error: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub message: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub error_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub code: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub request_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub action_required: Option<String>,
}

/// Parses one element of an `items` array; the error says what was wrong.
pub fn parse_item<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|error| error.to_string())
}

/// A string, or a number or bool turned into its text; anything else is absent.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    })
}

/// An integer, an integral float, or a decimal string; anything else is absent.
fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15)
                .map(|float| float as i64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
    .filter(|float: &f64| float.is_finite()))
}

/// The `media` map: entries whose value is not an object are skipped.
fn lenient_variants<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Variant>, D::Error> {
    let Value::Object(entries) = Value::deserialize(deserializer)? else {
        return Ok(BTreeMap::new());
    };
    Ok(entries
        .into_iter()
        .filter_map(|(label, value)| {
            serde_json::from_value::<Variant>(value)
                .ok()
                .map(|variant| (label, variant))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_media_item_parses() {
        let item: MediaItem = serde_json::from_str(
            r#"{"id":"4492994399","type":"image","duration":null,"media":{
                "full":{"status":"stored","quality":"full","sizeBytes":1024000,"contentType":"image/jpeg",
                        "accessCount":12,"createdAt":1715800000000,"expiresAt":1715886400000,
                        "storedAt":1715800100000,"lastAccessedAt":1715800500000,
                        "url":"https://media.ofauth.com/v2/example-signed-media-url"}}}"#,
        )
        .unwrap();
        assert_eq!(item.id.as_deref(), Some("4492994399"));
        let full = &item.media["full"];
        assert_eq!(full.status, RemoteStatus::Stored);
        assert_eq!(full.size_bytes, Some(1_024_000));
        assert_eq!(full.expires_at, Some(1_715_886_400_000));
    }

    #[test]
    fn unknown_fields_labels_and_statuses_are_tolerated() {
        let item: MediaItem = serde_json::from_str(
            r#"{"id":12,"type":"hologram","extra":{"x":1},"media":{
                "4k-hdr":{"status":"teleporting","sizeBytes":"12","contentType":"video/mp4","newField":[1,2]},
                "thumb":{"status":"cached","sizeBytes":3.0,"storedAt":null},
                "broken":"not an object"}}"#,
        )
        .unwrap();
        assert_eq!(item.id.as_deref(), Some("12"));
        assert_eq!(item.media.len(), 2);
        assert_eq!(
            item.media["4k-hdr"].status,
            RemoteStatus::Other("teleporting".into())
        );
        assert_eq!(item.media["4k-hdr"].size_bytes, Some(12));
        assert_eq!(item.media["thumb"].status, RemoteStatus::Stored);
        assert_eq!(item.media["thumb"].stored_at, None);
    }

    #[test]
    fn next_cursor_absent_or_null() {
        let absent: ItemsPage = serde_json::from_str(r#"{"items":[]}"#).unwrap();
        let null: ItemsPage = serde_json::from_str(r#"{"items":[],"nextCursor":null}"#).unwrap();
        let set: ItemsPage = serde_json::from_str(r#"{"items":[],"nextCursor":"100"}"#).unwrap();
        assert_eq!(absent.next_cursor, None);
        assert_eq!(null.next_cursor, None);
        assert_eq!(set.next_cursor.as_deref(), Some("100"));
    }

    #[test]
    fn both_error_shapes_parse() {
        let current: ErrorBody = serde_json::from_str(
            r#"{"error":"Invalid API key","type":"UNAUTHORIZED","requestId":"req_1"}"#,
        )
        .unwrap();
        assert_eq!(current.error_type.as_deref(), Some("UNAUTHORIZED"));
        let older: ErrorBody =
            serde_json::from_str(r#"{"message":"bad key","code":"AUTH_INVALID_KEY","details":{}}"#)
                .unwrap();
        assert_eq!(older.code.as_deref(), Some("AUTH_INVALID_KEY"));
    }
}
