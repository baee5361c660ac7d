//! Fixtures for tests that need a store with something in it: a fresh
//! database in a temporary folder, and the records the pipeline would
//! write. Compiled for tests only.

use super::{ListRecord, MediaRecord, RemoteVariant, Store};
use crate::api::models::RemoteStatus;

/// A fresh store; keep the folder alive as long as the store.
pub(crate) fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
    (dir, store)
}

pub(crate) fn media(id: &str) -> MediaRecord {
    MediaRecord {
        media_id: id.into(),
        media_type: Some("image".into()),
        duration: None,
    }
}

pub(crate) fn list(id: &str) -> ListRecord {
    ListRecord {
        list_id: id.into(),
        name: format!("list {id}"),
        list_type: None,
    }
}

/// Media `id`'s `full` variant, a stored JPEG of `size` bytes.
pub(crate) fn stored(id: &str, size: i64, stored_at: i64) -> RemoteVariant {
    RemoteVariant {
        media_id: id.into(),
        label: "full".into(),
        status: RemoteStatus::Stored,
        size_bytes: Some(size),
        content_type: Some("image/jpeg".into()),
        created_at: Some(1),
        stored_at: Some(stored_at),
    }
}

/// Media `id` described and its 10-byte `full` verified at
/// `media/<id>/full.jpg`, all at `now`.
pub(crate) fn verified(store: &Store, id: &str, now: i64) {
    store
        .record_remote(&[media(id)], &[stored(id, 10, now)], now)
        .unwrap();
    store
        .mark_verified(
            id,
            "full",
            &format!("media/{id}/full.jpg"),
            "ab",
            crate::units::ByteSize(10),
            crate::units::EpochMillis(now),
        )
        .unwrap();
}
