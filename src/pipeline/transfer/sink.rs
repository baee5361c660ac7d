//! Where one transfer's bytes go: a `.part` file on the local disk (its
//! blocking writer hashing on its own thread) or an upload to object
//! storage (hashed as it streams; visible only when committed). The
//! attempt runs the same transaction on either.
//!
//! Invariants: as for the `.part` ([`PartFile`]) and the upload
//! ([`Upload`]): bytes are hashed and counted as they are written;
//! nothing reaches a final name before the checks; an upload that fails
//! mid-way is aborted, never completed.

use bytes::Bytes;

use crate::archive::bucket::BucketError;
use crate::archive::bucket::upload::Upload;
use crate::pipeline::transfer::blocks::Blocks;
use crate::pipeline::transfer::part::PartFile;
use crate::pipeline::transfer::writer::{PartWriter, off_reactor};
use crate::store::{ResumableUpload, ResumePoint};

/// A transfer's destination, between writes.
#[expect(
    clippy::large_enum_variant,
    reason = "one per transfer, moved a few times per attempt; the .part's buffers are on the heap already"
)]
pub enum Sink {
    /// A `.part` file beside the final path, on the disk.
    Part(PartFile),
    /// An upload to object storage, visible only when committed.
    Upload(Box<Upload>),
}

/// Why a write failed.
#[derive(Debug)]
pub enum SinkError {
    Part(std::io::Error),
    /// The upload was aborted; the next attempt starts over.
    Upload(BucketError),
}

impl Sink {
    pub fn len(&self) -> u64 {
        match self {
            Sink::Part(part) => part.len(),
            Sink::Upload(upload) => upload.len(),
        }
    }

    pub fn head(&self) -> &[u8] {
        match self {
            Sink::Part(part) => part.head(),
            Sink::Upload(upload) => upload.head(),
        }
    }

    /// Drops every byte: the transfer starts over from zero.
    pub async fn reset(self) -> std::io::Result<Self> {
        match self {
            Sink::Part(mut part) => {
                off_reactor(move || part.reset().map(|()| Sink::Part(part))).await
            }
            Sink::Upload(mut upload) => {
                upload.reset().await;
                Ok(Sink::Upload(upload))
            }
        }
    }
}

/// A transfer's destination while the body streams in: the bytes are
/// copied into [`Blocks`] as they come, and handed on a block at a time.
pub struct SinkWriter {
    to: To,
    blocks: Blocks,
}

enum To {
    Part(PartWriter),
    Upload(Box<Upload>),
}

impl SinkWriter {
    pub fn start(sink: Sink) -> Self {
        let to = match sink {
            Sink::Part(part) => To::Part(PartWriter::start(part)),
            Sink::Upload(upload) => To::Upload(upload),
        };
        Self {
            to,
            blocks: Blocks::default(),
        }
    }

    /// Writes `chunk` (a full block at a time: the rest when finished).
    /// On an upload error the upload is aborted.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SinkError> {
        let mut rest = chunk;
        while let Some(block) = self.blocks.fill(&mut rest) {
            self.hand_on(block).await?;
        }
        Ok(())
    }

    async fn hand_on(&mut self, block: Bytes) -> Result<(), SinkError> {
        match &mut self.to {
            To::Part(writer) => writer.write(block).await.map_err(SinkError::Part),
            To::Upload(upload) => match upload.write(block).await {
                Ok(()) => Ok(()),
                Err(error) => {
                    upload.reset().await;
                    self.blocks.clear();
                    Err(SinkError::Upload(error))
                }
            },
        }
    }

    /// The points reached since the last call, to be recorded (see
    /// `crate::store::ResumePoint`), and on object storage the upload they
    /// belong to (begun for a file of `declared_size` bytes).
    pub fn take_points(
        &mut self,
        declared_size: u64,
    ) -> (Vec<ResumePoint>, Option<ResumableUpload>) {
        match &mut self.to {
            To::Part(writer) => (writer.take_points(), None),
            To::Upload(upload) => {
                let points = upload.take_points();
                if points.is_empty() {
                    return (points, None);
                }
                let recorded = upload.upload_id().map(|id| ResumableUpload {
                    key: upload.relative().to_owned(),
                    upload_id: id.to_owned(),
                    declared_size,
                    head: upload.head().to_vec(),
                    started_at: crate::now_ms(),
                });
                (points, recorded)
            }
        }
    }

    /// Every byte handed over is written: the destination back. On an
    /// upload error (the last block's) the upload is aborted.
    pub async fn finish(mut self) -> Result<Sink, SinkError> {
        if let Some(rest) = self.blocks.rest() {
            self.hand_on(rest).await?;
        }
        match self.to {
            To::Part(writer) => writer
                .finish()
                .await
                .map(Sink::Part)
                .map_err(SinkError::Part),
            To::Upload(upload) => Ok(Sink::Upload(upload)),
        }
    }
}
