//! The integration tests, as one binary (ripgrep's shape): the crate is
//! linked once, not once per file. Cargo builds `tests/it/main.rs` as the
//! test target `it`; the modules beside it are not targets of their own.
//! Run one module with `cargo test --test it faults::`.
//!
//! `common` owns what every module shares: the fake-server settings, the
//! binary with a scrubbed environment, the one way to read a command's
//! JSON and to signal it, the one rule for a missing tool (`require!`),
//! and the checks of an archive. `sandbox` is where a test against the
//! fake starts: a temp folder, the fake, the archive (a folder, or a bucket
//! on moto) and the environment; `moto` is the bucket side's S3 on loopback
//! and what boto3 finds in it.
//! Fixtures live in `fixtures/`, insta snapshots in `snapshots/`.

#![allow(
    clippy::disallowed_methods,
    clippy::too_many_lines,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "tests may use std::fs directly, build fixtures at length, and cast test numbers"
)]

mod common;
mod moto;
mod sandbox;

mod agency;
mod archive;
mod backends;
mod cli;
mod dates;
mod faults;
mod gallery_browser;
mod hostile;
mod mirror;
mod operator;
mod power_loss;
mod properties;
mod resume;
mod s3;
mod sidecars;
mod store_faults;
mod store_proxy;
mod store_trust;
mod terminal;
mod unattended;
mod views_by_template;
