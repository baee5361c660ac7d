//! The fake's data model: the [`Vault`] it serves, its lists ([`FakeList`]),
//! media ([`FakeMedia`]) and their variants ([`FakeVariant`]). The sample and
//! benchmark vaults are built in `sample` and `bench_data`.

use std::collections::BTreeMap;

/// The data the fake serves. Tests mutate it while the server runs.
#[derive(Debug, Clone, Default)]
pub struct Vault {
    pub lists: Vec<FakeList>,
    pub media: BTreeMap<String, FakeMedia>,
}

#[derive(Debug, Clone)]
pub struct FakeList {
    pub id: String,
    pub name: String,
    /// Media ids, in list order.
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FakeMedia {
    pub id: String,
    /// `image`, `video` or `audio`.
    pub media_type: String,
    pub duration: Option<f64>,
    /// By label (`full`, `thumb`, …).
    pub variants: BTreeMap<String, FakeVariant>,
    /// What the Access API says of it (`GET /v2/access/vault/lists/{id}/media`);
    /// `None`: the Access API does not list it, as for media deleted on
    /// OnlyFans that Vault+ still holds.
    pub access: Option<AccessFacts>,
}

/// A media as the Access API describes it: its own date and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessFacts {
    /// `createdAt`, as sent (any text, to try a client's leniency).
    pub created_at: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct FakeVariant {
    /// "stored", "pending", "storing", "removed", "edge_only", or anything.
    pub status: String,
    /// Declared in the API answer.
    pub content_type: String,
    /// `sizeBytes` in the API answer; None = `body.len()`.
    pub declared_size: Option<i64>,
    /// Content-Type header the media host sends; None = `content_type`.
    pub served_content_type: Option<String>,
    /// What the media host serves.
    pub body: bytes::Bytes,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms, None unless stored.
    pub stored_at: Option<i64>,
}
