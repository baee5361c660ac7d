//! The sha256 on every object: an object whose `x-amz-meta-sha256` is
//! missing (the store refused the metadata write after every retry, or
//! someone stripped it) is found and given it again — without fetching
//! the bytes from the media host again: the object's own bytes are hashed
//! as they stream from the store, and the metadata is set only when they
//! are the bytes that were checked (the sha256 the database recorded).
//!
//! Why the metadata of a multipart object still comes from a copy of the
//! object onto itself (see [`Bucket::set_sha256_metadata`]) and not from
//! something cheaper:
//!
//! - S3 takes an object's metadata when its upload starts, before its
//!   hash is known, and keeps a full-object checksum of a multipart upload
//!   for the CRC algorithms only (a SHA-256 one is a composite of the
//!   parts'), so the store cannot be handed the file's sha256 at
//!   `CompleteMultipartUpload`;
//! - a sidecar object (`full.mp4.sha256`) is cheap (one small PUT), but it
//!   is not on the object: `HEAD` (ours, `aws s3api head-object`, anyone's
//!   script) would not show it, every listing, prune, export and view would
//!   have to skip it, and an object replaced without it (by hand, or a
//!   failed write between the two) would carry a stale claim;
//! - the object's key is the archive's layout (`media/<id>/<label>.<ext>`),
//!   which people browse: no room for a hash;
//! - the database snapshot holds every sha256 already (it is what
//!   `verify` compares with); the metadata's point is to be a second,
//!   independent record on the object itself, which the snapshot is not;
//! - object tags (`PutObjectTagging`) are set without rewriting the bytes,
//!   but a `HEAD` does not return them (one more request per object for
//!   `verify --fast`), and several S3-compatible stores do not keep them.
//!
//! The copy is a server-side one: no byte crosses the network again, and
//! S3 bills it as one PUT request. Its costs are time on the store's side,
//! about what the completion takes (`bench/s3-seal.sh` on moto: 64 MiB,
//! completion 0.93 s, copy 1.05 s; 256 MiB, 1.75 s and 1.88 s; a sidecar
//! PUT or a tagging 0.01–0.02 s whatever the size), and, on a bucket with
//! versioning on, a second version of every multipart object until a
//! lifecycle rule expires non-current versions. Objects over 5 GiB cannot
//! be copied in one CopyObject: they stay unverified (a known limit).
//!
//! Invariants: metadata is written only onto an object whose size and
//! streamed sha256 are the ones recorded; an object that is not (absent,
//! another size, other bytes) is reported, never sealed.

use crate::archive::bucket::s3::{Bucket, BucketError};
use crate::store::Unsealed;

/// What [`seal`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealing {
    /// The object carries the recorded sha256 already.
    Carried,
    /// Its bytes hashed to the recorded sha256, and the metadata was set.
    Set,
    /// No object at the key.
    Absent,
    /// The object is not the bytes recorded (why).
    Differs(String),
}

/// Makes sure the object at `object.local_path` carries its sha256 (see
/// the module docs): one `HEAD`, and only when the metadata is missing or
/// wrong, the object's bytes streamed and hashed, then the metadata set.
pub async fn seal(bucket: &Bucket, object: &Unsealed) -> Result<Sealing, BucketError> {
    let key = &object.local_path;
    let Some(info) = bucket.head(key).await? else {
        return Ok(Sealing::Absent);
    };
    if info.size != object.size.0 {
        return Ok(Sealing::Differs(format!(
            "{} bytes, not the {} verified",
            info.size, object.size.0
        )));
    }
    if info
        .sha256
        .as_deref()
        .is_some_and(|found| found.eq_ignore_ascii_case(&object.sha256))
    {
        return Ok(Sealing::Carried);
    }
    let Some(found) = bucket.stream_sha256(key).await? else {
        return Ok(Sealing::Absent);
    };
    if !found.eq_ignore_ascii_case(&object.sha256) {
        return Ok(Sealing::Differs(format!(
            "its bytes hash to {}…, not the verified {}…",
            found.get(..12).unwrap_or(&found),
            object.sha256.get(..12).unwrap_or(&object.sha256)
        )));
    }
    bucket
        .set_sha256_metadata(key, object.size.0, &object.content_type, &object.sha256)
        .await?;
    Ok(Sealing::Set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::bucket::s3::WriteMode;
    use crate::units::ByteSize;
    use sha2::{Digest, Sha256};

    #[tokio::test]
    async fn an_object_without_its_sha256_is_sealed_only_when_its_bytes_are_the_recorded_ones() {
        let bucket = Bucket::in_memory("seal");
        let bytes = b"0123456789".to_vec();
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let object = Unsealed {
            media_id: "1".into(),
            label: "full".into(),
            local_path: "media/1/full.jpg".into(),
            sha256: sha256.clone(),
            size: ByteSize(10),
            content_type: "image/jpeg".into(),
        };
        assert_eq!(seal(&bucket, &object).await.unwrap(), Sealing::Absent);
        let put = |bytes: Vec<u8>| {
            let bucket = bucket.clone();
            async move {
                bucket
                    .put(
                        "media/1/full.jpg",
                        bytes.into(),
                        "image/jpeg",
                        None,
                        WriteMode::Overwrite,
                    )
                    .await
                    .unwrap();
            }
        };
        put(bytes.clone()).await;
        assert_eq!(seal(&bucket, &object).await.unwrap(), Sealing::Set);
        let info = bucket.head("media/1/full.jpg").await.unwrap().unwrap();
        assert_eq!(info.sha256.as_deref(), Some(sha256.as_str()));
        assert_eq!(seal(&bucket, &object).await.unwrap(), Sealing::Carried);

        put(b"9876543210".to_vec()).await;
        assert!(matches!(
            seal(&bucket, &object).await.unwrap(),
            Sealing::Differs(_)
        ));
        let info = bucket.head("media/1/full.jpg").await.unwrap().unwrap();
        assert_eq!(info.sha256, None, "other bytes are never sealed");
    }
}
