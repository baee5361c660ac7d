//! Models of the OFAuth API answers, parsed leniently.
//!
//! OFAuth's public docs do not describe every field the API sends, so
//! every model tolerates unknown fields, unknown variant labels and status
//! values, numbers sent as strings (and ids sent as numbers), and missing
//! optional fields. What a field must hold for a variant to be downloadable
//! is checked later, per item, by the plan: one odd item never fails a page.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

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
        Ok(match Scalar::deserialize(deserializer)? {
            Scalar::Text(text) => Self::parse(&text),
            Scalar::Null => Self::Missing,
            other => Self::Other(
                other
                    .text()
                    .unwrap_or_else(|| "a JSON array or object".into()),
            ),
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

/// One media of a vault list from the Access API (`VaultMedia`, `GET
/// /v2/access/vault/lists/{id}/media`): only what a mirror records, the
/// media's own date and shape. Every field may be missing or odd; an
/// unreadable date is simply no date.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccessMedia {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub media_type: Option<String>,
    /// When the media was created on OnlyFans, as sent (text or a number).
    #[serde(deserialize_with = "lenient_string")]
    pub created_at: Option<String>,
    #[serde(deserialize_with = "lenient_f64")]
    pub duration: Option<f64>,
    #[serde(deserialize_with = "lenient_files")]
    pub files: AccessFiles,
}

impl AccessMedia {
    /// `createdAt` as epoch ms (see [`parse_media_date`]).
    pub fn created_at_ms(&self) -> Option<i64> {
        self.created_at.as_deref().and_then(parse_media_date)
    }

    /// The full file's width and height, when both are positive whole
    /// numbers of pixels.
    pub fn dimensions(&self) -> (Option<i64>, Option<i64>) {
        let full = &self.files.full;
        let pixels = |value: Option<f64>| {
            value
                .filter(|value| value.is_finite() && *value >= 1.0 && *value < 1e6)
                .map(|value| value.round() as i64)
        };
        (pixels(full.width), pixels(full.height))
    }
}

/// `files` of an Access media: only `full` is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccessFiles {
    #[serde(deserialize_with = "lenient_file")]
    pub full: AccessFile,
}

/// One file of an Access media (`AccessFileRef`): its shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccessFile {
    #[serde(deserialize_with = "lenient_f64")]
    pub width: Option<f64>,
    #[serde(deserialize_with = "lenient_f64")]
    pub height: Option<f64>,
}

/// `files`, or nothing when it is not an object of the expected shape.
fn lenient_files<'de, D: Deserializer<'de>>(deserializer: D) -> Result<AccessFiles, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

/// `files.full`, or nothing when it is not an object of the expected shape.
fn lenient_file<'de, D: Deserializer<'de>>(deserializer: D) -> Result<AccessFile, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

/// A media date as the Access API may send it, as epoch ms: RFC 3339 with
/// any offset (`2024-05-17T12:34:56+00:00`, `…Z`, fractions), the same
/// with a space or without an offset (taken as UTC), or a number of
/// seconds or milliseconds since the epoch. `None` for anything else, or a
/// time before 2000 or past 2200 (no OnlyFans media is that old, and such
/// a value is a unit mistake, not a date).
pub fn parse_media_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let millis = if let Ok(number) = text.parse::<f64>() {
        // Seconds below 1e11 (year 5138), milliseconds above.
        if !number.is_finite() {
            return None;
        }
        let millis = if number.abs() < 1e11 {
            number * 1000.0
        } else {
            number
        };
        millis.round() as i64
    } else if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        time.timestamp_millis()
    } else {
        let naive = text.trim_end_matches('Z').replace(' ', "T");
        chrono::NaiveDateTime::parse_from_str(&naive, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc()
            .timestamp_millis()
    };
    (946_684_800_000..7_258_118_400_000)
        .contains(&millis)
        .then_some(millis)
}

/// `epoch_ms` as RFC 3339 text at `offset_seconds` east of UTC
/// (`2024-05-17T14:34:56+02:00`), as the Access API sends dates and XMP
/// writes them; UTC when the offset is impossible.
pub fn format_offset_date(epoch_ms: i64, offset_seconds: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_seconds)
        .or_else(|| chrono::FixedOffset::east_opt(0))
        .expect("UTC is a valid offset");
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .unwrap_or_default()
        .with_timezone(&offset)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// One connection of the account (`GET /v2/account/connections`): only
/// what a mirror needs; the rest of the record is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountConnection {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// `active`, `expired`, `awaiting_2fa`, or a word we do not know.
    #[serde(deserialize_with = "lenient_string")]
    pub status: Option<String>,
    pub user_data: Option<ConnectionUser>,
}

/// The creator behind a connection, as far as the listing says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectionUser {
    #[serde(deserialize_with = "lenient_string")]
    pub username: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub name: Option<String>,
}

/// A page of an offset-paged route (`{list, hasMore}`): the Access API's
/// `GET /v2/access/vault/lists`, and `GET /v2/account/connections`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VaultListPage {
    #[serde(deserialize_with = "null_as_empty")]
    pub list: Vec<Box<RawValue>>,
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

/// A response whose `items` are read one by one: a malformed item is
/// reported on its own (`Err`, saying why) and the others are kept.
#[derive(Debug)]
pub struct ItemsPage<T> {
    pub items: Vec<Result<T, String>>,
    pub next_cursor: Option<String>,
}

impl<T: serde::de::DeserializeOwned> ItemsPage<T> {
    /// Reads a page in one pass, an item that is not an object becoming
    /// its `Err`. Only a page that pass refuses (an item with a repeated
    /// field, say) is read again, as raw text per item, so that the trouble
    /// stays with its item. `Err` when the page itself is not JSON of this
    /// shape.
    pub fn parse(body: &[u8]) -> serde_json::Result<Self> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", bound(deserialize = "I: Deserialize<'de>"))]
        struct Page<I> {
            #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
            items: Vec<I>,
            #[serde(default, deserialize_with = "lenient_string")]
            next_cursor: Option<String>,
        }
        if let Ok(page) = serde_json::from_slice::<Page<OneItem<T>>>(body) {
            return Ok(ItemsPage {
                items: page.items.into_iter().map(|item| item.0).collect(),
                next_cursor: page.next_cursor,
            });
        }
        let page = serde_json::from_slice::<Page<Box<RawValue>>>(body)?;
        Ok(ItemsPage {
            items: page.items.iter().map(|raw| parse_item(raw)).collect(),
            next_cursor: page.next_cursor,
        })
    }
}

/// A list that may be sent as `null` for none.
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// One element of `items`: the model when it is an object, else why not.
struct OneItem<T>(Result<T, String>);

impl<'de, T: Deserialize<'de>> FromObject<'de> for OneItem<T> {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            .map(|item| OneItem(Ok(item)))
    }

    fn otherwise(found: &str) -> Self {
        OneItem(Err(format!("expected an object, found {found}")))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneItem<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object_or(deserializer)
    }
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
/// Anything but an object is refused (serde would read an array as the
/// model's fields in order).
pub fn parse_item<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, String> {
    match serde_json::from_str::<OneItem<T>>(raw.get()) {
        Ok(OneItem(item)) => item,
        Err(error) => Err(error.to_string()),
    }
}

/// A JSON value as lenient fields see it: scalars kept, arrays and objects
/// skipped over without being built.
enum Scalar {
    Text(String),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
    Null,
    Compound,
}

impl Scalar {
    /// The value as text, as `lenient_string` reads it (numbers and
    /// booleans in their JSON spelling); `None` for null, arrays, objects.
    fn text(self) -> Option<String> {
        match self {
            Scalar::Text(text) => Some(text),
            Scalar::Signed(number) => Some(number.to_string()),
            Scalar::Unsigned(number) => Some(number.to_string()),
            Scalar::Float(float) => serde_json::Number::from_f64(float).map(|n| n.to_string()),
            Scalar::Bool(flag) => Some(flag.to_string()),
            Scalar::Null | Scalar::Compound => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_str<E>(self, text: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(text.to_owned()))
            }
            fn visit_string<E>(self, text: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(text))
            }
            fn visit_i64<E>(self, number: i64) -> Result<Scalar, E> {
                Ok(Scalar::Signed(number))
            }
            fn visit_u64<E>(self, number: u64) -> Result<Scalar, E> {
                Ok(Scalar::Unsigned(number))
            }
            fn visit_f64<E>(self, float: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(float))
            }
            fn visit_bool<E>(self, flag: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(flag))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(inner)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A string, or a number or bool turned into its text; anything else is absent.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Scalar::deserialize(deserializer)?.text())
}

/// An integer, an integral float, or a decimal string; anything else is absent.
fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Scalar::deserialize(deserializer)? {
        Scalar::Signed(number) => Some(number),
        Scalar::Unsigned(number) => i64::try_from(number).ok(),
        Scalar::Float(float) => {
            (float.fract() == 0.0 && float.abs() < 9.0e15).then_some(float as i64)
        }
        Scalar::Text(text) => text.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(match Scalar::deserialize(deserializer)? {
        Scalar::Signed(number) => Some(number as f64),
        Scalar::Unsigned(number) => Some(number as f64),
        Scalar::Float(float) => Some(float),
        Scalar::Text(text) => text.trim().parse().ok(),
        _ => None,
    }
    .filter(|float: &f64| float.is_finite()))
}

/// The `media` map: entries whose value is not an object are skipped, and
/// anything but an object is an empty map.
fn lenient_variants<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Variant>, D::Error> {
    object_or(deserializer)
}

/// A value read from a JSON object, and what stands for any other JSON
/// value (`found` says what it was: "a string", "null", …).
trait FromObject<'de>: Sized {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;

    fn otherwise(found: &str) -> Self;
}

impl<'de> FromObject<'de> for BTreeMap<String, Variant> {
    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut variants = BTreeMap::new();
        while let Some((label, MaybeVariant(variant))) = map.next_entry::<String, MaybeVariant>()? {
            if let Some(variant) = variant {
                variants.insert(label, variant);
            }
        }
        Ok(variants)
    }

    fn otherwise(_: &str) -> Self {
        BTreeMap::new()
    }
}

/// A `media` map value: a variant when it is an object, else nothing.
struct MaybeVariant(Option<Variant>);

impl<'de> FromObject<'de> for MaybeVariant {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Variant::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            .map(|variant| MaybeVariant(Some(variant)))
    }

    fn otherwise(_: &str) -> Self {
        MaybeVariant(None)
    }
}

impl<'de> Deserialize<'de> for MaybeVariant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object_or(deserializer)
    }
}

/// Reads a JSON object with [`FromObject::from_object`]; any other value
/// is skipped over and gives [`FromObject::otherwise`].
fn object_or<'de, T: FromObject<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    struct ObjectOr<T>(std::marker::PhantomData<T>);
    impl<'de, T: FromObject<'de>> Visitor<'de> for ObjectOr<T> {
        type Value = T;
        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_object(map)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(T::otherwise("an array"))
        }
        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<T, D::Error> {
            inner.deserialize_any(self)
        }
        fn visit_none<E>(self) -> Result<T, E> {
            Ok(T::otherwise("null"))
        }
        fn visit_unit<E>(self) -> Result<T, E> {
            Ok(T::otherwise("null"))
        }
        fn visit_str<E>(self, _: &str) -> Result<T, E> {
            Ok(T::otherwise("a string"))
        }
        fn visit_i64<E>(self, _: i64) -> Result<T, E> {
            Ok(T::otherwise("a number"))
        }
        fn visit_u64<E>(self, _: u64) -> Result<T, E> {
            Ok(T::otherwise("a number"))
        }
        fn visit_f64<E>(self, _: f64) -> Result<T, E> {
            Ok(T::otherwise("a number"))
        }
        fn visit_bool<E>(self, _: bool) -> Result<T, E> {
            Ok(T::otherwise("a boolean"))
        }
    }
    deserializer.deserialize_any(ObjectOr(std::marker::PhantomData))
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
    fn a_bad_item_stays_with_its_item() {
        // Non-objects are caught in the one pass; a repeated field makes
        // that pass refuse the page, and the raw reading keeps the rest.
        for body in [
            r#"{"items":[{"id":"1"},"oops",null,5,[1],{"id":"2","media":7}]}"#,
            r#"{"items":[{"id":"1"},{"id":"x","id":"y"},{"id":"2","media":{"full":"no"}}]}"#,
        ] {
            let page = ItemsPage::<MediaItem>::parse(body.as_bytes()).unwrap();
            let ids: Vec<_> = page
                .items
                .iter()
                .filter_map(|item| item.as_ref().ok()?.id.clone())
                .collect();
            assert_eq!(ids, ["1", "2"], "{body}");
            assert!(page.items.iter().any(Result::is_err), "{body}");
        }
        assert!(ItemsPage::<MediaItem>::parse(b"<html>").is_err());
        assert!(ItemsPage::<MediaItem>::parse(br#"{"items":[{"id":"1"}"#).is_err());
    }

    #[test]
    fn next_cursor_absent_or_null() {
        let page = |body: &str| ItemsPage::<MediaItem>::parse(body.as_bytes()).unwrap();
        let absent = page(r#"{"items":[]}"#);
        assert!(page(r#"{"items":null}"#).items.is_empty());
        assert!(page(r#"{}"#).items.is_empty());
        let lists: VaultListPage = serde_json::from_str(r#"{"list":null}"#).unwrap();
        assert!(lists.list.is_empty());
        let null = page(r#"{"items":[],"nextCursor":null}"#);
        let set = page(r#"{"items":[],"nextCursor":"100"}"#);
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
#[cfg(test)]
mod access_media_tests {
    use super::*;

    #[test]
    fn access_media_parse_leniently() {
        let raw: Box<RawValue> = serde_json::from_str(r#"{"id": 4100000000, "type": "photo", "convertedToVideo": false, "createdAt": "2025-12-31T00:00:00+00:00", "duration": null, "files": {"full": {"url": "x", "width": 320, "height": 240, "sources": []}}, "lists": [{"id": 1, "type": "custom", "name": "a"}]}"#).unwrap();
        let media: AccessMedia = parse_item(&raw).unwrap();
        assert_eq!(media.id.as_deref(), Some("4100000000"));
        assert_eq!(media.created_at_ms(), Some(1_767_139_200_000));
        assert_eq!(media.dimensions(), (Some(320), Some(240)));
        // Odd shapes are no date, no size; never a failed page.
        let raw: Box<RawValue> = serde_json::from_str(
            r#"{"id": "7", "createdAt": {"no": 1}, "files": [1, 2], "duration": "x"}"#,
        )
        .unwrap();
        let odd: AccessMedia = parse_item(&raw).unwrap();
        assert_eq!(odd.created_at_ms(), None);
        assert_eq!(odd.dimensions(), (None, None));
    }

    #[test]
    fn media_dates_are_read_in_every_spelling_seen() {
        let noon = Some(1_747_483_200_000); // 2025-05-17T12:00:00Z
        for text in [
            "2025-05-17T12:00:00Z",
            "2025-05-17T12:00:00.000Z",
            "2025-05-17T14:00:00+02:00",
            "2025-05-17 07:00:00-05:00",
            "2025-05-17T12:00:00",
            "2025-05-17 12:00:00",
            "1747483200",
            "1747483200000",
            " 1747483200.0 ",
        ] {
            assert_eq!(parse_media_date(text), noon, "{text}");
        }
        for bad in [
            "",
            "yesterday",
            "0",
            "-5",
            "1e300",
            "NaN",
            "9999-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_media_date(bad), None, "{bad}");
        }
        assert_eq!(
            format_offset_date(1_747_483_200_000, 2 * 3600),
            "2025-05-17T14:00:00+02:00"
        );
    }
}
