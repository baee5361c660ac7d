//! Where one transfer's bytes go: a `.part` file on the local disk (its
//! blocking writer hashing on its own thread) or an upload to object
//! storage (hashed as it streams; visible only when committed). The
//! attempt runs the same transaction on either.
//!
//! Invariants: as for the `.part` ([`PartFile`]) and the upload
//! ([`RemoteUpload`]): bytes are hashed and counted as they are written;
//! nothing reaches a final name before the checks; an upload that fails
//! mid-way is aborted, never completed.

use bytes::Bytes;

use crate::pipeline::transfer::part::PartFile;
use crate::pipeline::transfer::writer::{PartWriter, off_reactor};
use crate::storage::StorageError;
use crate::storage::upload::RemoteUpload;

/// A transfer's destination, between writes.
#[expect(
    clippy::large_enum_variant,
    reason = "one per transfer, moved a few times per attempt; the .part's buffers are on the heap already"
)]
pub enum Sink {
    Local(PartFile),
    Remote(Box<RemoteUpload>),
}

/// Why a write failed.
#[derive(Debug)]
pub enum SinkError {
    Local(std::io::Error),
    /// The upload was aborted; the next attempt starts over.
    Remote(StorageError),
}

impl Sink {
    pub fn len(&self) -> u64 {
        match self {
            Sink::Local(part) => part.len(),
            Sink::Remote(upload) => upload.len(),
        }
    }

    pub fn head(&self) -> &[u8] {
        match self {
            Sink::Local(part) => part.head(),
            Sink::Remote(upload) => upload.head(),
        }
    }

    /// Drops every byte: the transfer starts over from zero.
    pub async fn reset(self) -> std::io::Result<Self> {
        match self {
            Sink::Local(mut part) => {
                off_reactor(move || part.reset().map(|()| Sink::Local(part))).await
            }
            Sink::Remote(mut upload) => {
                upload.reset().await;
                Ok(Sink::Remote(upload))
            }
        }
    }
}

/// A transfer's destination while the body streams in.
pub enum SinkWriter {
    Local(PartWriter),
    Remote(Box<RemoteUpload>),
}

impl SinkWriter {
    pub fn start(sink: Sink) -> Self {
        match sink {
            Sink::Local(part) => SinkWriter::Local(PartWriter::start(part)),
            Sink::Remote(upload) => SinkWriter::Remote(upload),
        }
    }

    /// Writes `chunk`. On an upload error the upload is aborted.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), SinkError> {
        match self {
            SinkWriter::Local(writer) => writer.write(chunk).await.map_err(SinkError::Local),
            SinkWriter::Remote(upload) => match upload.write(chunk).await {
                Ok(()) => Ok(()),
                Err(error) => {
                    upload.reset().await;
                    Err(SinkError::Remote(error))
                }
            },
        }
    }

    /// Every chunk handed over is written: the destination back.
    pub async fn finish(self) -> std::io::Result<Sink> {
        match self {
            SinkWriter::Local(writer) => writer.finish().await.map(Sink::Local),
            SinkWriter::Remote(upload) => Ok(Sink::Remote(upload)),
        }
    }
}
