//! The archive's object-storage backend: a prefix of a bucket on
//! S3-compatible object storage (`--out s3://bucket/prefix`), through
//! `object_store`.
//!
//! What only a bucket has: [`s3`] (the [`Bucket`]: list, head with size,
//! sha256 metadata and type, read as a stream, conditional put, delete,
//! server-side copy, multipart begin / part / complete / abort, on keys
//! relative to the prefix), [`retry`] (the one retry policy of every
//! request to the store, and its count), [`upload`] (a transfer's write half: hash,
//! count, stream; visible only when committed after the checks; the
//! ledger of uploads in flight), [`lease`] (one run at a time across
//! machines) and [`snapshot`] (the state database's copy in the bucket).
//! Everything the disk does too (verify, versions, prune, export, the
//! overview) is written once over [`crate::archive::Archive`].
//!
//! Invariants: credentials come from the AWS environment only and reach
//! no message, log or database; nothing is written outside the prefix;
//! nothing unverified is ever visible at a final key.

pub mod credentials;
pub mod diagnose;
pub mod lease;
pub mod retry;
pub mod s3;
pub mod snapshot;
pub mod upload;

pub use s3::{Bucket, BucketError, ListedPart, ObjectInfo, WriteMode};
pub use upload::{Upload, UploadLedger};
