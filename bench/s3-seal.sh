#!/usr/bin/env bash
# What putting a multipart object's sha256 on it costs (docs/object-storage-faults.md,
# "The sha256 on every object"; src/archive/bucket/seal.rs): against moto's S3
# server on loopback, for objects of 64 and 256 MiB uploaded in 8 MiB parts,
# the time (median of 3) of
#   complete  CompleteMultipartUpload
#   copy      the CopyObject onto itself that sets x-amz-meta-sha256 (what vault-mirror does)
#   sidecar   a PUT of a small `<key>.sha256` object (considered, not taken)
#   tag       a PutObjectTagging of the sha256 (considered, not taken)
#
#   bench/s3-seal.sh [--port N]
#
# Needs moto_server and boto3 (pip install 'moto[server]' boto3).
set -euo pipefail

PORT=45931
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT=$2; shift 2 ;;
        *) echo "usage: bench/s3-seal.sh [--port N]" >&2; exit 2 ;;
    esac
done

WORK=$(mktemp -d)
trap 'kill "$MOTO" 2>/dev/null; rm -rf "$WORK"' EXIT
(cd "$WORK" && exec moto_server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1) &
MOTO=$!
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null && break
    sleep 0.1
done

PORT=$PORT python3 - <<'PYTHON'
import boto3, hashlib, os, time
s3 = boto3.client('s3', endpoint_url=f"http://127.0.0.1:{os.environ['PORT']}",
                  aws_access_key_id='x', aws_secret_access_key='y', region_name='us-east-1')
bucket = 'seal-bench'
s3.create_bucket(Bucket=bucket)
PART = 8 << 20
for mib in (64, 256):
    data = os.urandom(mib << 20)
    sha = hashlib.sha256(data).hexdigest()
    rows = {'complete': [], 'copy': [], 'sidecar': [], 'tag': []}
    def timed(name, call):
        started = time.perf_counter()
        call()
        rows[name].append(time.perf_counter() - started)
    for i in range(3):
        key = f'media/{mib}/{i}/full.mp4'
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType='video/mp4')['UploadId']
        parts = []
        for number, at in enumerate(range(0, len(data), PART), 1):
            answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data[at:at + PART])
            parts.append({'ETag': answer['ETag'], 'PartNumber': number})
        timed('complete', lambda: s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={'Parts': parts}))
        timed('copy', lambda: s3.copy_object(Bucket=bucket, Key=key, CopySource={'Bucket': bucket, 'Key': key}, MetadataDirective='REPLACE', Metadata={'sha256': sha}, ContentType='video/mp4'))
        timed('sidecar', lambda: s3.put_object(Bucket=bucket, Key=key + '.sha256', Body=sha.encode()))
        timed('tag', lambda: s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={'TagSet': [{'Key': 'sha256', 'Value': sha}]}))
        assert s3.head_object(Bucket=bucket, Key=key)['Metadata']['sha256'] == sha
    print(f'{mib:>4} MiB object, median of 3: ' + ', '.join(f'{name} {sorted(times)[1]:.3f} s' for name, times in rows.items()))
PYTHON
