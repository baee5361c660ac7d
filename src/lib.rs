//! vault-mirror: a local, verified, resumable mirror of the media that
//! OFAuth's Vault+ caches for an OnlyFans connection.
//!
//! The library is the core; the binary (`src/main.rs` and `src/cli/`) turns
//! command-line arguments into [`settings::Settings`] and shows what the core
//! reports. Data flows one way through the modules:
//!
//! ```text
//! settings ─▶ pipeline::{lists ─▶ sync ─▶ membership ─▶ plan ─▶ resolve ─▶ download ─▶ commit}
//!                 │ api (client + lenient models)        │ store (SQLite)     │ archive (paths, checks)
//!                 └──────────── report (events, never prints) ◀──────────────┘
//! ```
//!
//! `fake` is a Vault+ server of our own for tests and `demo`.

pub mod api;
pub mod archive;
pub mod fake;
pub mod pipeline;
pub mod redact;
pub mod report;
pub mod settings;
pub mod store;

/// Milliseconds since the Unix epoch, the unit the API uses for timestamps.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
