//! Properties over wide inputs (proptest): path sanitising, API model
//! parsing, and `Content-Range` parsing. Pure; no network.

#![allow(
    clippy::disallowed_methods,
    clippy::too_many_lines,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "tests may use std::fs directly, build fixtures at length, and cast test numbers"
)]

use std::collections::HashMap;
use std::path::{Component, Path};

use proptest::prelude::*;
use serde_json::Value;
use vault_mirror::api::models::{
    ErrorBody, ItemsPage, ListMember, MediaItem, SyncReport, VaultList, VaultListPage, VaultStatus,
    parse_item,
};
use vault_mirror::archive::paths::{part_path, safe_name, variant_path};
use vault_mirror::pipeline::transfer::parse_content_range;

/// Ids and labels as a hostile server might send them: path characters,
/// dots, control characters, unicode, case, and great lengths.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_./\\\\~:-]{0,12}",
        "\\PC{0,16}",
        "[\\x00-\\x1f./~]{0,8}",
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("con".to_owned()),
        "[a-z~]{100,300}",
        "(\\.\\./){1,8}[a-z]{0,4}",
    ]
}

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    "[a-zA-Z]{1,12}",
                    Just("id".to_owned()),
                    Just("media".to_owned()),
                    Just("sizeBytes".to_owned()),
                    Just("status".to_owned()),
                    Just("url".to_owned()),
                    Just("items".to_owned()),
                    Just("nextCursor".to_owned()),
                ],
                inner,
                0..8
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn stays_under(relative: &Path) -> bool {
    relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)))
}

proptest! {
    #[test]
    fn a_safe_name_is_one_plain_short_component(raw in hostile_text()) {
        let name = safe_name(&raw);
        prop_assert!(!name.is_empty() && name.len() <= 120, "{name}");
        prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-~".contains(&b)), "{name}");
        prop_assert!(name != "." && name != "..");
    }

    #[test]
    fn distinct_texts_never_share_a_name(first in hostile_text(), second in hostile_text()) {
        prop_assume!(first != second);
        prop_assert_ne!(safe_name(&first), safe_name(&second));
    }

    #[test]
    fn long_texts_that_differ_late_keep_distinct_names(prefix in "[a-z~]{150,200}", first in "[a-z]{1,4}", second in "[a-z]{1,4}") {
        prop_assume!(first != second);
        prop_assert_ne!(safe_name(&format!("{prefix}{first}")), safe_name(&format!("{prefix}{second}")));
    }

    #[test]
    fn no_variant_path_leaves_the_archive(id in hostile_text(), label in hostile_text(), content_type in "\\PC{0,20}") {
        let relative = variant_path(&id, &label, &content_type);
        prop_assert!(stays_under(&relative), "{}", relative.display());
        prop_assert!(relative.starts_with("media"));
        prop_assert_eq!(relative.components().count(), 3);
        let out = Path::new("/archive");
        let part = part_path(&out.join(&relative));
        prop_assert!(part.starts_with(out.join("media")));
        prop_assert!(stays_under(part.strip_prefix(out).unwrap()));
    }

    #[test]
    fn distinct_ids_or_labels_never_share_a_path(
        first in (hostile_text(), hostile_text()),
        second in (hostile_text(), hostile_text()),
        content_type in prop_oneof![Just("image/jpeg"), Just("video/mp4"), Just("x/unknown")],
    ) {
        prop_assume!(first != second);
        prop_assert_ne!(
            variant_path(&first.0, &first.1, content_type),
            variant_path(&second.0, &second.1, content_type)
        );
    }

    #[test]
    fn any_json_parses_into_every_model_or_errs_without_panicking(value in json()) {
        let raw = serde_json::value::to_raw_value(&value).unwrap();
        let _ = parse_item::<MediaItem>(&raw);
        let _ = parse_item::<ListMember>(&raw);
        let _ = parse_item::<VaultList>(&raw);
        let _ = serde_json::from_value::<VaultListPage>(value.clone());
        let _ = ItemsPage::<MediaItem>::parse(value.to_string().as_bytes());
        let _ = serde_json::from_value::<SyncReport>(value.clone());
        let _ = serde_json::from_value::<VaultStatus>(value.clone());
        let _ = serde_json::from_value::<ErrorBody>(value.clone());
        let _ = serde_json::from_value::<HashMap<String, MediaItem>>(value);
    }

    #[test]
    fn a_page_reads_each_item_as_it_would_read_alone(items in prop::collection::vec(json(), 0..6)) {
        let body = serde_json::json!({ "items": items }).to_string();
        let page = ItemsPage::<MediaItem>::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(page.items.len(), items.len());
        for (read, item) in page.items.iter().zip(&items) {
            let alone = parse_item::<MediaItem>(&serde_json::value::to_raw_value(item).unwrap());
            prop_assert_eq!(read.is_ok(), alone.is_ok(), "{} vs {:?}", item, alone);
            if let (Ok(read), Ok(alone)) = (read, &alone) {
                prop_assert_eq!(&read.id, &alone.id);
                prop_assert_eq!(read.media.len(), alone.media.len());
            }
        }
    }

    #[test]
    fn any_bytes_parse_or_err_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ItemsPage::<MediaItem>::parse(&bytes);
        let _ = ItemsPage::<ListMember>::parse(&bytes);
        let _ = serde_json::from_slice::<VaultListPage>(&bytes);
        let _ = serde_json::from_slice::<ErrorBody>(&bytes);
        let _ = serde_json::from_slice::<MediaItem>(&bytes);
    }

    #[test]
    fn a_media_item_with_any_size_or_status_parses(size in any::<i64>(), status in "\\PC{0,12}", as_text in any::<bool>()) {
        let size = if as_text { Value::from(size.to_string()) } else { Value::from(size) };
        let value = serde_json::json!({
            "id": "m1",
            "media": { "full": { "sizeBytes": size, "status": status, "url": "https://cdn.example/x" } }
        });
        let item: MediaItem = parse_item(&serde_json::value::to_raw_value(&value).unwrap()).unwrap();
        prop_assert_eq!(item.id.as_deref(), Some("m1"));
    }

    #[test]
    fn content_range_round_trips(first in 0u64..u64::MAX / 2, length in 1u64..1 << 40, extra in 0u64..1 << 20, star in any::<bool>()) {
        let last = first + length - 1;
        let total = last + 1 + extra;
        let text = if star { format!("bytes {first}-{last}/*") } else { format!("bytes {first}-{last}/{total}") };
        let expected = (first, last, if star { None } else { Some(total) });
        prop_assert_eq!(parse_content_range(&text), Some(expected));
    }

    #[test]
    fn content_range_never_panics_and_never_yields_an_inverted_range(text in "\\PC{0,40}", numbers in "bytes [0-9 -]{0,30}/[0-9*]{0,8}") {
        for candidate in [text, numbers] {
            if let Some((first, last, total)) = parse_content_range(&candidate) {
                prop_assert!(first <= last);
                prop_assert!(total.is_none_or(|total| last < total));
            }
        }
    }
}
