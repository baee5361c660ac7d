//! Where an archive's bytes live when `--out` is not a local folder:
//! S3-compatible object storage (`--out s3://bucket/prefix`).
//!
//! The operations the pipeline and the commands need, on keys relative
//! to the archive's prefix: [`s3`] (list, head with size, sha256 metadata
//! and type, read as a stream, conditional put, delete, server-side copy,
//! multipart begin / part / complete / abort), [`upload`] (the
//! transaction's write half: hash, count, stream; visible only when
//! committed after the checks; the ledger of uploads in flight),
//! [`lease`] (one run at a time), [`snapshot`] (the state database's copy
//! in the bucket), [`location`] (`DIR` or `s3://bucket/prefix`, and
//! `join` for a sub-archive).
//!
//! The local disk's side of the same operations is `archive::dir`
//! (`ArchiveDir`, `.part` files renamed into place); the transfer picks
//! one or the other per run (`pipeline::transfer::sink`).
//!
//! Invariants: credentials come from the AWS environment only and reach
//! no message, log or database; nothing is written outside the prefix;
//! nothing unverified is ever visible at a final key.

pub mod export;
pub mod lease;
pub mod location;
pub mod prune;
pub mod s3;
pub mod snapshot;
pub mod upload;
pub mod verify;
pub mod versions;
pub mod views;

pub use location::{ArchiveLocation, S3Url};
pub use s3::{ObjectArchive, StorageError};
