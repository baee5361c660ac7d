//! Any bytes as an API answer or a header value: the parsers may refuse
//! them, never panic. (`cargo +nightly fuzz run responses`)
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_mirror::api::models::{
    ErrorBody, ItemsPage, ListMember, MediaItem, VaultList, VaultListPage, VaultStatus, parse_item,
};
use vault_mirror::archive::paths::{safe_name, variant_path};
use vault_mirror::pipeline::transfer::parse_content_range;

fuzz_target!(|data: &[u8]| {
    let _ = ItemsPage::<MediaItem>::parse(data);
    let _ = ItemsPage::<ListMember>::parse(data);
    if let Ok(page) = serde_json::from_slice::<VaultListPage>(data) {
        for item in &page.list {
            let _ = parse_item::<MediaItem>(item);
            let _ = parse_item::<VaultList>(item);
        }
    }
    let _ = serde_json::from_slice::<VaultStatus>(data);
    let _ = serde_json::from_slice::<ErrorBody>(data);
    let _ = vault_mirror::api::snippet(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some((first, last, total)) = parse_content_range(text) {
            assert!(first <= last && total.is_none_or(|total| last < total));
        }
        let name = safe_name(text);
        assert!(!name.is_empty() && name.len() <= 120 && name != "..");
        let path = variant_path(text, text, text);
        assert!(path.components().all(|part| matches!(part, std::path::Component::Normal(_))));
    }
});
