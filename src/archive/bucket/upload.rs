//! The transaction's write half on object storage: bytes are hashed
//! (sha256), counted and streamed into the object store as they arrive —
//! one PUT for an object that fits in one part, a multipart upload for
//! bigger ones — and the object becomes visible at its key only when
//! [`Upload::commit`] is called, after every check passed.
//!
//! Resuming after a crash: at every part the store acknowledges, the
//! upload hands out a [`ResumePoint`] (the part's id and the sha256 state
//! at its end, a part boundary) for the caller to record; a later run
//! continues it with [`Upload::resume`] once ListParts shows the recorded
//! parts still there, and the hash goes on from the saved state.
//!
//! Invariants: a multipart upload is written to the [`UploadLedger`] (a
//! file per upload in the local state folder) as soon as the store has
//! given it an id, and forgotten only once completed or aborted, so a
//! run killed mid-upload leaves a record the next run aborts (or, with
//! parts recorded in the state database, resumes); a point is handed out
//! only for a part the store acknowledged; memory per
//! transfer is at most two parts ([`PART_SIZE`], kept as the chunks
//! written, never copied into one buffer): the one filling and the one on
//! its way; a failed check,
//! an error or a reset aborts the upload; every object ends with its
//! sha256 as `x-amz-meta-sha256` (a multipart one by a CopyObject onto
//! itself right after its completion, see
//! [`Bucket::set_sha256_metadata`] and `seal` for why), or the commit
//! says it does not ([`BucketError::Metadata`]); every byte is hashed
//! once on our side, and the store checks it: a single PUT carries the
//! sha256 as its checksum, and a multipart object's copy answers with
//! the store's SHA-256 of the whole object, compared with ours
//! ([`BucketError::OtherBytes`] when they differ: the object is deleted).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use object_store::MultipartId;
use object_store::multipart::PartId;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::archive::bucket::s3::{Bucket, BucketError, Checks, part_e_tag};
use crate::store::{ResumableUpload, ResumePoint};

/// The size of every part but the last (S3 wants ≥ 5 MiB; R2 wants them
/// equal). An object up to this size is written with one PUT.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

use crate::archive::content::Tally;

/// A multipart upload under way.
struct Multipart {
    id: MultipartId,
    /// Whether its parts carry checksums of their own (its completion
    /// must go the same way).
    checks: Checks,
    parts: Vec<PartId>,
    in_flight: Option<InFlight>,
}

/// A part on its way, and the point its end is: the bytes before it and
/// the sha256 state there.
struct InFlight {
    task: JoinHandle<Result<PartId, BucketError>>,
    end: u64,
    size: u64,
    state: Option<[u8; 32]>,
}

/// One object being written at `relative` (not visible until committed).
pub struct Upload {
    archive: Bucket,
    relative: String,
    content_type: String,
    ledger: UploadLedger,
    /// The next part: the chunks as they were written (no copy).
    buffer: Vec<Bytes>,
    /// Bytes in `buffer`.
    buffered: usize,
    multipart: Option<Multipart>,
    /// The bytes so far: their sha256, count and head.
    tally: Tally,
    /// Points reached (parts the store acknowledged) not handed to the
    /// caller yet ([`Upload::take_points`]), to be recorded for a resume.
    points: Vec<ResumePoint>,
}

/// How a recorded upload can go on.
pub enum Resumed {
    /// From its last part the store still holds as recorded.
    From(Box<Upload>),
    /// Not at all (why): it starts over.
    StartOver(String),
}

impl Upload {
    pub fn new(
        archive: Bucket,
        relative: String,
        content_type: String,
        ledger: UploadLedger,
    ) -> Self {
        Self {
            archive,
            relative,
            content_type,
            ledger,
            buffer: Vec::new(),
            buffered: 0,
            multipart: None,
            tally: Tally::default(),
            points: Vec::new(),
        }
    }

    /// The upload `recorded` continued, as far as the store still holds
    /// the parts `points` recorded (ListParts: each part there under its
    /// number with the recorded ETag and size, the first gap or difference
    /// ending what is kept). Where nothing of it can be kept — the upload
    /// is gone (aborted, e.g. by a lifecycle rule: `NoSuchUpload`), its
    /// first part is missing or differs — it is aborted and the transfer
    /// starts over.
    pub async fn resume(
        archive: Bucket,
        content_type: String,
        ledger: UploadLedger,
        recorded: &ResumableUpload,
        points: &[ResumePoint],
    ) -> Result<Resumed, BucketError> {
        let (key, id) = (&recorded.key, &recorded.upload_id);
        let Some(listed) = archive.list_parts(key, id).await? else {
            return Ok(Resumed::StartOver(
                "the upload is gone from the store (aborted by another client or a lifecycle rule)"
                    .to_owned(),
            ));
        };
        let unquoted = |e_tag: &str| e_tag.trim_matches('"').to_owned();
        let mut kept: Vec<&ResumePoint> = Vec::new();
        for (index, point) in points.iter().enumerate() {
            let there = listed.iter().find(|part| part.number == point.part_number);
            let matches = usize::try_from(point.part_number).ok() == Some(index + 1)
                && point.part_id.as_ref().is_some_and(|part_id| {
                    there.is_some_and(|part| {
                        part.size == point.part_size
                            && unquoted(&part.e_tag)
                                == unquoted(&part_e_tag(&PartId {
                                    content_id: part_id.clone(),
                                }))
                    })
                });
            if !matches {
                tracing::debug!(
                    "{key}: part {} recorded as {:?} ({} bytes), the store holds {there:?}",
                    point.part_number,
                    point.part_id,
                    point.part_size
                );
                break;
            }
            kept.push(point);
        }
        let resumed = kept
            .last()
            .and_then(|last| Tally::resume(&last.sha256_state, last.end, &recorded.head));
        let Some(tally) = resumed else {
            archive.abort_upload(key, id).await?;
            ledger.forget(key, id);
            return Ok(Resumed::StartOver(
                "the parts the store holds are not the ones recorded".to_owned(),
            ));
        };
        let parts = kept
            .iter()
            .map(|point| PartId {
                content_id: point.part_id.clone().unwrap_or_default(),
            })
            .collect();
        let mut upload = Upload::new(archive, key.clone(), content_type, ledger);
        upload.tally = tally;
        upload.multipart = Some(Multipart {
            id: id.clone(),
            // As it began: parts sent with checksums (an earlier version's,
            // or a bucket with Object Lock) go on with them.
            checks: Checks::of_parts(kept.iter().filter_map(|point| point.part_id.as_deref())),
            parts,
            in_flight: None,
        });
        Ok(Resumed::From(Box::new(upload)))
    }

    /// The id the store gave the multipart upload, once there is one.
    pub fn upload_id(&self) -> Option<&str> {
        self.multipart
            .as_ref()
            .map(|multipart| multipart.id.as_str())
    }

    /// The points reached since the last call: parts the store
    /// acknowledged, with the sha256 state at their end.
    pub fn take_points(&mut self) -> Vec<ResumePoint> {
        std::mem::take(&mut self.points)
    }

    pub fn len(&self) -> u64 {
        self.tally.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tally.is_empty()
    }

    pub fn head(&self) -> &[u8] {
        self.tally.head()
    }

    pub fn relative(&self) -> &str {
        &self.relative
    }

    /// sha256 (lowercase hex) of the bytes so far.
    pub fn sha256(&self) -> String {
        self.tally.sha256()
    }

    /// Hashes and counts `chunk`, and sends a part once one is full. The
    /// chunk is kept as it came (a part is a list of chunks, cut at exactly
    /// [`PART_SIZE`] without copying), so no large buffer is allocated.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), BucketError> {
        // A part the store has acknowledged is a point to resume from at
        // once, not only when the next part leaves.
        self.settle(false).await?;
        while self.buffered + chunk.len() > PART_SIZE {
            let rest = chunk.split_off(PART_SIZE - self.buffered);
            self.tally.add(&chunk);
            if !chunk.is_empty() {
                self.buffer.push(chunk);
            }
            let full = std::mem::take(&mut self.buffer);
            self.buffered = 0;
            self.send_part(full).await?;
            chunk = rest;
        }
        self.tally.add(&chunk);
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.buffer.push(chunk);
        }
        Ok(())
    }

    /// Starts the multipart upload if needed (and records it), waits for
    /// the part before, and sends `bytes` as the next part.
    async fn send_part(&mut self, chunks: Vec<Bytes>) -> Result<(), BucketError> {
        if self.multipart.is_none() {
            let (id, checks) = self
                .archive
                .begin_upload(&self.relative, &self.content_type)
                .await?;
            let multipart = Multipart {
                id,
                checks,
                parts: Vec::new(),
                in_flight: None,
            };
            // Recorded before any part is sent: a kill from here on leaves
            // a record for the next run to abort (or, once parts are
            // recorded in the state database, to resume).
            let recorded = self.ledger.record(&self.relative, &multipart.id);
            self.multipart = Some(multipart);
            recorded.map_err(BucketError::Io)?;
        }
        self.settle(true).await?;
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(());
        };
        let (archive, relative, id, checks) = (
            self.archive.clone(),
            self.relative.clone(),
            multipart.id.clone(),
            multipart.checks,
        );
        let index = multipart.parts.len();
        let size: usize = chunks.iter().map(Bytes::len).sum();
        let task = tokio::spawn(async move {
            archive
                .upload_part(
                    &relative,
                    (&id, checks),
                    index,
                    chunks.into_iter().collect(),
                )
                .await
        });
        multipart.in_flight = Some(InFlight {
            task,
            end: self.tally.len(),
            size: size as u64,
            state: self.tally.state(),
        });
        Ok(())
    }

    /// Takes the answer of the part on its way once there is one (with
    /// `wait`, waiting for it), and keeps the point its end is.
    async fn settle(&mut self, wait: bool) -> Result<(), BucketError> {
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(());
        };
        let ready = multipart
            .in_flight
            .as_ref()
            .is_some_and(|part| wait || part.task.is_finished());
        let Some(previous) = multipart.in_flight.take_if(|_| ready) else {
            return Ok(());
        };
        let part = join(previous.task).await?;
        if let (Some(state), Ok(number)) =
            (previous.state, u32::try_from(multipart.parts.len() + 1))
        {
            self.points.push(ResumePoint {
                end: previous.end,
                part_number: number,
                part_size: previous.size,
                sha256_state: state,
                part_id: Some(part.content_id.clone()),
                tail_sha256: None,
            });
        }
        multipart.parts.push(part);
        Ok(())
    }

    /// Every check passed: makes the object visible at its key, whole.
    /// One PUT (with the sha256 as metadata and checksum) when it fits in
    /// a part; else the last part, then CompleteMultipartUpload. Returns
    /// the sha256 (lowercase hex). On an error the upload is aborted,
    /// except [`BucketError::Metadata`]: the object is then whole at its
    /// key and only its sha256 metadata is missing (the store refused it
    /// after every retry), which the caller must not call verified.
    pub async fn commit(mut self) -> Result<String, BucketError> {
        let sha256 = self.sha256();
        if self.multipart.is_none() {
            let payload = std::mem::take(&mut self.buffer).into_iter().collect();
            self.buffered = 0;
            self.archive
                .put_sealed(&self.relative, payload, &self.content_type, &sha256)
                .await?;
            return Ok(sha256);
        }
        let last = std::mem::take(&mut self.buffer);
        self.buffered = 0;
        let completed = self.complete(last, &sha256).await;
        if completed.is_err() {
            self.abort().await;
            return completed.map(|()| sha256);
        }
        if let Some(multipart) = &self.multipart {
            self.ledger.forget(&self.relative, &multipart.id);
        }
        // The object is whole; without the metadata it is not done.
        self.archive
            .set_sha256_metadata(
                &self.relative,
                self.tally.len(),
                &self.content_type,
                &sha256,
            )
            .await?;
        Ok(sha256)
    }

    /// Sends the last part and completes the upload of the bytes whose
    /// sha256 is `sha256`.
    async fn complete(&mut self, last: Vec<Bytes>, sha256: &str) -> Result<(), BucketError> {
        if !last.is_empty() {
            self.send_part(last).await?;
        }
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(());
        };
        if let Some(previous) = multipart.in_flight.take() {
            multipart.parts.push(join(previous.task).await?);
        }
        let parts = std::mem::take(&mut multipart.parts);
        self.archive
            .complete_upload(
                &self.relative,
                (&multipart.id, multipart.checks),
                parts,
                (self.tally.len(), sha256),
            )
            .await
    }

    /// Drops the upload and every part sent (best effort: what cannot be
    /// aborted now stays in the ledger for the next run).
    pub async fn abort(&mut self) {
        self.buffer = Vec::new();
        self.buffered = 0;
        self.points.clear();
        if let Some(mut multipart) = self.multipart.take() {
            if let Some(previous) = multipart.in_flight.take() {
                let _ = previous.task.await;
            }
            if self
                .archive
                .abort_upload(&self.relative, &multipart.id)
                .await
                .is_ok()
            {
                self.ledger.forget(&self.relative, &multipart.id);
            }
        }
    }

    /// Drops every byte: the transfer starts over from zero.
    pub async fn reset(&mut self) {
        self.abort().await;
        self.tally = Tally::default();
    }
}

async fn join(task: JoinHandle<Result<PartId, BucketError>>) -> Result<PartId, BucketError> {
    task.await.map_err(BucketError::Task)?
}

/// The multipart uploads this machine started and has not completed or
/// aborted yet: one small file each in a local folder.
#[derive(Debug, Clone)]
pub struct UploadLedger {
    folder: PathBuf,
}

/// One upload in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeftUpload {
    pub key: String,
    pub upload_id: String,
}

impl UploadLedger {
    pub fn new(folder: &Path) -> Self {
        Self {
            folder: folder.to_owned(),
        }
    }

    fn file(&self, key: &str, id: &str) -> PathBuf {
        let digest = hex::encode(Sha256::digest(format!("{key}\n{id}")));
        self.folder.join(format!("{}.json", &digest[..32]))
    }

    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Records an upload (written whole: a temporary renamed into place).
    pub fn record(&self, key: &str, id: &MultipartId) -> std::io::Result<()> {
        fs_err::create_dir_all(&self.folder)?;
        let entry = LeftUpload {
            key: key.to_owned(),
            upload_id: id.clone(),
        };
        let path = self.file(key, id);
        let temporary = path.with_extension("tmp");
        fs_err::write(&temporary, serde_json::to_vec(&entry)?)?;
        fs_err::rename(&temporary, &path)
    }

    /// Forgets a completed or aborted upload.
    pub fn forget(&self, key: &str, id: &MultipartId) {
        let _ = fs_err::remove_file(self.file(key, id));
    }

    /// The uploads recorded and not forgotten.
    pub fn pending(&self) -> Vec<LeftUpload> {
        let Ok(entries) = fs_err::read_dir(&self.folder) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .filter_map(|entry| fs_err::read(entry.path()).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect()
    }

    /// Aborts every upload a run before this one left (killed mid-upload)
    /// but those `resumable` says are kept open to resume (see
    /// `Store::is_resumable_upload`). Returns how many were aborted; one
    /// the store refuses to abort stays recorded for the next run.
    pub async fn abort_leftovers(
        &self,
        archive: &Bucket,
        resumable: &dyn Fn(&str, &str) -> bool,
    ) -> usize {
        let mut aborted = 0;
        for left in self.pending() {
            if resumable(&left.key, &left.upload_id) {
                continue;
            }
            if archive
                .abort_upload(&left.key, &left.upload_id)
                .await
                .is_ok()
            {
                self.forget(&left.key, &left.upload_id);
                aborted += 1;
            }
        }
        aborted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_goes_on_as_its_parts_began() {
        let checked = "<PartMetadata><e_tag>\"a7\"</e_tag><checksum_sha256>x=</checksum_sha256></PartMetadata>";
        assert_eq!(Checks::of_parts([checked].into_iter()), Checks::Sha256);
        assert_eq!(Checks::of_parts(["\"a7\""].into_iter()), Checks::None);
        assert_eq!(Checks::of_parts(std::iter::empty()), Checks::None);
    }

    #[test]
    fn the_ledger_keeps_uploads_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = UploadLedger::new(&dir.path().join("uploads"));
        assert!(ledger.pending().is_empty());
        ledger
            .record("media/1/full.jpg", &"id-1".to_owned())
            .unwrap();
        ledger
            .record("media/2/full.jpg", &"id-2".to_owned())
            .unwrap();
        let mut pending = ledger.pending();
        pending.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].upload_id, "id-1");
        ledger.forget("media/1/full.jpg", &"id-1".to_owned());
        assert_eq!(ledger.pending().len(), 1);
    }
}
