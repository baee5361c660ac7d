#!/usr/bin/env bash
# Object storage benchmark (README, "Object storage"): the 1 GB data set of
# bench/run.sh (1,000 media, `full` and `thumb`) served by a loopback nginx
# behind the fake Vault+, written into an S3 server on loopback by
#   1. vault-mirror mirror --out s3://bench/vault-mirror --jobs 8
#   2. rclone copy of the same files (:http: → S3, --transfers 8; it
#      sends an object up to 200 MiB in one PUT, and hashes nothing), and
#      again in 8 MiB parts above 8 MiB, vault-mirror's protocol
#   3. vault-mirror mirror --out DIR --jobs 8 (local disk, for reference)
# each timed with /usr/bin/time (wall, user+sys CPU, peak RSS); the store
# is restarted empty before each S3 run and its own CPU time is printed
# too. After 1. it also prints what the seal's CopyObject costs the store
# on its own (the same copy run again on every multipart object).
#
# The store (--store): moto's server (the default; Python, usually the
# bottleneck, and it joins and copies objects in memory), or s3s-fs (Rust,
# objects as files: `cargo install s3s-fs@0.14.1 --features binary`, found
# on PATH or at $S3S_FS), which shows what the clients cost when the
# store's own work is cheap. s3s-fs computes no checksum in a copy, so
# vault-mirror's end-to-end check of a multipart object is skipped there.
#
#   bench/s3.sh [--media N] [--scale full|large] [--jobs N] [--store moto|s3s-fs] [--work DIR]
#   VAULT_MIRROR_BIN=/path/to/an/earlier/vault-mirror bench/s3.sh …
#
# `--scale large --media 12`: about 1 GB in videos of 40-120 MB, every one
# a multipart upload (memory must stay within jobs x 18 MiB).
#
# rclone runs without AWS_CA_BUNDLE (its S3 SDK refuses a custom bundle
# with its own HTTP transport). Needs nginx, rclone, /usr/bin/time, boto3
# and the store (moto_server: pip install 'moto[server]'). Everything
# lives under --work (~1.2 GB, twice that with s3s-fs); delete it after.
set -euo pipefail

MEDIA=1000
SCALE=full
JOBS=8
STORE=moto
WORK=/tmp/vault-mirror-s3-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --media) MEDIA=$2; shift 2 ;;
        --scale) SCALE=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --store) STORE=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$STORE" in
    moto) STORE_VERSION="moto $(python3 -c 'import moto; print(moto.__version__)')" ;;
    s3s-fs)
        S3S_FS=${S3S_FS:-$(command -v s3s-fs || true)}
        [ -x "$S3S_FS" ] || { echo "s3s-fs not found: cargo install s3s-fs@0.14.1 --features binary, or set S3S_FS" >&2; exit 2; }
        STORE_VERSION=$("$S3S_FS" --version) ;;
    *) echo "unknown store: $STORE (moto or s3s-fs)" >&2; exit 2 ;;
esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
# VAULT_MIRROR_BIN: another build to measure (an earlier commit's, for a
# before/after in one session); else this checkout's, built here.
if [ -n "${VAULT_MIRROR_BIN:-}" ]; then
    BIN=$VAULT_MIRROR_BIN
else
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/vault-mirror
    (cd "$REPO" && cargo build --release --locked -q)
fi
API_PACE=(--api-rate 1000000 --api-burst 1000000)

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
mkdir -p "$WORK"
chmod 755 "$WORK"

DATA_PORT=$(free_port)
start_nginx nginx "$WORK" "    server { listen 127.0.0.1:$DATA_PORT; root $WORK/data-$SCALE; }"

ENV_FILE=$WORK/fake.env
: >"$ENV_FILE"
"$BIN" fake-server --media "$MEDIA" --bench-data "$WORK/data-$SCALE" --bench-scale "$SCALE" \
    --media-base "http://127.0.0.1:$DATA_PORT/" --url-ttl 24h --url-list "$WORK/urls.tsv" \
    >"$ENV_FILE" 2>"$WORK/fake.log" &
PIDS+=($!)
for _ in $(seq 1 1200); do
    grep -q OFAUTH_CONNECTION_ID "$ENV_FILE" 2>/dev/null && break
    sleep 0.5
done
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
BYTES=$(sed -n 's/^data set: .* media, \([0-9]*\) bytes.*/\1/p' "$WORK/fake.log")
FILES=$(wc -l <"$WORK/urls.tsv")
# The paths nginx serves, for rclone (the same files vault-mirror fetches).
cut -f1 "$WORK/urls.tsv" | sed -e 's#^http://[^/]*/##' -e 's#?.*##' >"$WORK/paths.txt"

echo "== machine"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(rclone version | head -n 1); $STORE_VERSION; vault-mirror ${VAULT_MIRROR_BIN:-$(cd "$REPO" && git rev-parse --short HEAD)}"
echo "data set: $FILES files, $BYTES bytes"

STORE_PID=
# Starts the store empty, with the bucket `bench`.
start_store() {
    [ -n "$STORE_PID" ] && { kill "$STORE_PID"; wait "$STORE_PID" 2>/dev/null || true; }
    STORE_PORT=$(free_port)
    if [ "$STORE" = moto ]; then
        moto_server -H 127.0.0.1 -p "$STORE_PORT" >"$WORK/store.log" 2>&1 &
    else
        rm -rf "$WORK/s3s-fs" && mkdir -p "$WORK/s3s-fs"
        "$S3S_FS" --host 127.0.0.1 --port "$STORE_PORT" --access-key bench --secret-key bench-secret \
            "$WORK/s3s-fs" >"$WORK/store.log" 2>&1 &
    fi
    STORE_PID=$!
    PIDS+=("$STORE_PID")
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $STORE_PORT))" 2>/dev/null && break
        sleep 0.2
    done
    export AWS_ENDPOINT_URL=http://127.0.0.1:$STORE_PORT AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
    python3 -c "import boto3; boto3.client('s3', endpoint_url='$AWS_ENDPOINT_URL').create_bucket(Bucket='bench')"
}
store_cpu() { awk '{ printf "%.1f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' /proc/"$STORE_PID"/stat; }
stored_bytes() {
    python3 -c "
import boto3
s3 = boto3.client('s3', endpoint_url='$AWS_ENDPOINT_URL')
total = 0
for page in s3.get_paginator('list_objects_v2').paginate(Bucket='bench', Prefix='$1/media/' if '$1' == 'vault-mirror' else '$1/'):
    total += sum(o['Size'] for o in page.get('Contents', []))
print(total)"
}
report() { # name, extra
    read -r wall user sys rss <"$WORK/time"
    printf '%-28s wall %7.1f s  CPU %6.1f s  peak RSS %5d MiB  %s\n' "$1" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))" "$2"
}

echo "== runs (jobs/transfers: $JOBS)"
start_store
/usr/bin/time -f '%e %U %S %M' -o "$WORK/time" env XDG_STATE_HOME="$WORK/state" \
    "$BIN" mirror --out s3://bench/vault-mirror --jobs "$JOBS" --json "${API_PACE[@]}" >"$WORK/summary-s3.json"
report "vault-mirror → S3 ($STORE)" "store CPU $(store_cpu) s; $(stored_bytes vault-mirror) bytes stored"
# What the seal's copy costs the store: the same CopyObject onto itself
# (metadata replaced, a SHA-256 of the whole object asked for) on every
# multipart object again, 8 at once, timed on its own.
STORE_BEFORE=$(store_cpu)
python3 - "$AWS_ENDPOINT_URL" "$JOBS" >"$WORK/copy" <<'PY'
import sys, time, boto3
from concurrent.futures import ThreadPoolExecutor
s3 = boto3.client('s3', endpoint_url=sys.argv[1])
keys = [o for page in s3.get_paginator('list_objects_v2').paginate(Bucket='bench', Prefix='vault-mirror/media/')
        for o in page.get('Contents', []) if o['Size'] > 8 * 1024 * 1024]
def seal(o):
    head = s3.head_object(Bucket='bench', Key=o['Key'])
    s3.copy_object(Bucket='bench', Key=o['Key'], CopySource={'Bucket': 'bench', 'Key': o['Key']},
                   MetadataDirective='REPLACE', Metadata=head['Metadata'], ContentType=head['ContentType'],
                   ChecksumAlgorithm='SHA256')
start = time.monotonic()
with ThreadPoolExecutor(int(sys.argv[2])) as pool:
    list(pool.map(seal, keys))
print(f"{time.monotonic() - start:.1f} {len(keys)} {sum(o['Size'] for o in keys)}")
PY
read -r copy_wall copy_objects copy_bytes <"$WORK/copy"
printf '%-28s wall %7.1f s  store CPU %.1f s for %d objects, %d bytes (the copy that seals a multipart object, alone)\n' \
    "  of which the seal's copy" "$copy_wall" "$(echo "$(store_cpu) - $STORE_BEFORE" | bc)" "$copy_objects" "$copy_bytes"

export RCLONE_CONFIG_STORE_TYPE=s3 RCLONE_CONFIG_STORE_PROVIDER=Other \
    RCLONE_CONFIG_STORE_ACCESS_KEY_ID=bench RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY=bench-secret RCLONE_CONFIG_STORE_REGION=us-east-1
# rclone_run NAME [FLAGS…]: rclone copy of the same files into a store
# started empty (given up after 10 minutes: it once hung on moto).
rclone_run() {
    local name=$1
    shift
    start_store
    if RCLONE_CONFIG_STORE_ENDPOINT=$AWS_ENDPOINT_URL timeout 600 \
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" env -u AWS_CA_BUNDLE rclone copy :http: store:bench/rclone \
        --http-url "http://127.0.0.1:$DATA_PORT/" --files-from "$WORK/paths.txt" --no-traverse \
        --transfers "$JOBS" --checkers "$JOBS" --s3-upload-concurrency 1 -q "$@"; then
        report "$name → S3 ($STORE)" "store CPU $(store_cpu) s; $(stored_bytes rclone) bytes stored"
    else
        echo "$name → S3 ($STORE): failed or gave up after 10 minutes"
    fi
    kill "$STORE_PID"; wait "$STORE_PID" 2>/dev/null || true; STORE_PID=
}
rclone_run "rclone copy"
# The same protocol as vault-mirror's: a multipart upload in 8 MiB parts
# for every object over 8 MiB (the large set's videos); no copy after it.
rclone_run "  rclone, 8 MiB parts" --s3-upload-cutoff 8Mi --s3-chunk-size 8Mi

rm -rf "$WORK/out-local"
sync
/usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
    "$BIN" mirror --out "$WORK/out-local" --jobs "$JOBS" --json "${API_PACE[@]}" >"$WORK/summary-local.json"
report "vault-mirror → local disk" ""
