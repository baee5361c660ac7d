#!/usr/bin/env bash
# The vault-mirror benchmark (see README, "Benchmark"). Re-runnable:
#
#   bench/run.sh [--rounds N] [--media N] [--noop-media N] [--jobs N] [--work DIR]
#   VAULT_MIRROR_BIN=/path/to/an/earlier/vault-mirror bench/run.sh …
#
# 1. Throughput: a loopback nginx serves a fixed ~1 GB data set (1,000 media,
#    `full` and `thumb`; images 100-400 KB, videos 2-8 MB) behind the fake
#    Vault+ API, whose signed URLs point at nginx. Each round times, on the
#    same URLs and in a rotating order, `vault-mirror mirror --jobs 8`,
#    `curl --parallel --parallel-max 8` and `aria2c -j 8 -x 1`, with
#    /usr/bin/time (wall, user+sys CPU, peak RSS). Output folders are deleted
#    and `sync` run between runs (the page cache cannot be dropped). For
#    context, each round also times `curl … && sync` (the same durability
#    as vault-mirror, which fsyncs every file) and the disk floor (`dd`
#    writing and fsyncing as many bytes). vault-mirror's wall time is
#    printed per round and as medians as a ratio to curl's (same round)
#    and to the hashing floor: bytes / (single-core sha256 rate x nproc),
#    the time sha256 alone would take on every core, so the figure can be
#    read on CPUs with and without SHA extensions. The rate is measured
#    first, by bench/sha256-rate (vault-mirror's own `sha2`, built with
#    its Cargo.lock). Each round prints the load average, and each run the
#    CPU time everything else on the machine took meanwhile.
# 2. Re-run: 50,000 tiny media (100,000 variants): a first run (time to first
#    byte = nginx's first request minus process start), then a timed no-op
#    re-run (CPU seconds, database size).
#
# Needs root for apt-get (nginx, curl, aria2, time) unless they are present.
# Everything lives under --work (default /tmp/vault-mirror-bench, ~1.3 GB);
# delete it when done. Targets are printed beside the figures, never asserted.
set -euo pipefail

ROUNDS=3
MEDIA=1000
NOOP_MEDIA=50000
JOBS=8
WORK=/tmp/vault-mirror-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --media) MEDIA=$2; shift 2 ;;
        --noop-media) NOOP_MEDIA=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
# VAULT_MIRROR_BIN: another build to measure (an earlier commit's, for a
# before/after in one session); else this checkout's, built here.
BIN=${VAULT_MIRROR_BIN:-$TARGET/release/vault-mirror}
# The fake has no rate limit; vault-mirror's own pacing of the real API (60
# calls a minute) would make the 50,000-media runs last minutes of waiting.
API_PACE=(--api-rate 1000000 --api-burst 1000000)

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v curl >/dev/null || need+=(curl)
command -v aria2c >/dev/null || need+=(aria2)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

[ -n "${VAULT_MIRROR_BIN:-}" ] || (cd "$REPO" && cargo build --release --locked -q)

mkdir -p "$WORK"
# The sha256 rate tool: a package of its own (bench/sha256-rate), so that
# vault-mirror's `cargo test` never builds it. It is built in the work
# folder with vault-mirror's Cargo.lock (cargo keeps the versions it needs
# and drops the rest) into the same target folder, so it hashes with the
# very `sha2` and `cpufeatures` the release binary was built with.
RATE_DIR=$WORK/sha256-rate
rm -rf "$RATE_DIR"
mkdir -p "$RATE_DIR"
cp -pR "$REPO/bench/sha256-rate/." "$RATE_DIR/"
cp -p "$REPO/Cargo.lock" "$RATE_DIR/Cargo.lock"
(cd "$RATE_DIR" && CARGO_TARGET_DIR=$TARGET cargo build --release -q)
locked_version() { # crate, Cargo.lock
    awk -v name="name = \"$1\"" '$0 == name { getline; gsub(/version = |"/, ""); print; exit }' "$2"
}
for crate in sha2 cpufeatures; do
    if [ "$(locked_version "$crate" "$RATE_DIR/Cargo.lock")" != "$(locked_version "$crate" "$REPO/Cargo.lock")" ]; then
        echo "bench/sha256-rate did not build with vault-mirror's $crate" >&2
        exit 1
    fi
done

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

chmod 755 "$WORK"
FAKE_PIDS=()

# nginx: access log only on the tiny data set's server, for the time to
# first byte.
DATA_PORT=$(free_port)
TINY_PORT=$(free_port)
start_nginx "$NGINX" "$WORK" "    log_format first '\$msec';
    server { listen 127.0.0.1:$DATA_PORT; root $WORK/data; }
    server {
        listen 127.0.0.1:$TINY_PORT;
        root $WORK/tiny;
        access_log $WORK/nginx/logs/tiny-access.log first;
    }"

# Starts a fake Vault+ API serving a bench data set; sets OFAUTH_* for the
# mirror. Arguments: data dir, media count, scale, nginx port, URL list.
start_fake() {
    local data=$1 media=$2 scale=$3 port=$4 urls=$5
    local env=$WORK/fake-$scale.env
    : >"$env"
    "$BIN" fake-server --media "$media" --bench-data "$data" --bench-scale "$scale" \
        --media-base "http://127.0.0.1:$port/" --url-ttl 24h --url-list "$urls" \
        >"$env" 2>"$WORK/fake-$scale.log" &
    PIDS+=($!)
    FAKE_PIDS+=($!)
    for _ in $(seq 1 600); do
        grep -q OFAUTH_CONNECTION_ID "$env" 2>/dev/null && break
        sleep 0.5
    done
    set -a
    # The fake wrote it just now.
    # shellcheck source=/dev/null
    . "$env"
    set +a
}

# The 1-, 5- and 15-minute load averages: the machine may be shared.
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== machine"
NPROC=$(nproc)
echo "nproc: $NPROC"
lscpu | head -n 15
CPU_MODEL=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
case $(uname -m) in
    x86_64 | i?86) SHA_FLAG=sha_ni ;;
    aarch64 | arm*) SHA_FLAG=sha2 ;;
    *) SHA_FLAG= ;;
esac
if [ -n "$SHA_FLAG" ] && grep -q -w "$SHA_FLAG" /proc/cpuinfo; then SHA_EXT=yes; else SHA_EXT=no; fi
echo "CPU: ${CPU_MODEL:-?}; SHA extensions: $SHA_EXT (/proc/cpuinfo flag ${SHA_FLAG:-?})"
echo "load average (1, 5, 15 min): $(load); uptime: $(uptime)"
free -h
df -h "$WORK" | tail -n 1
echo "$("$NGINX" -v 2>&1); $(curl --version | head -n 1); $(aria2c --version | head -n 1)"
echo "vault-mirror $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')"

echo "== single-core sha256 rate (vault-mirror's sha2 $(locked_version sha2 "$REPO/Cargo.lock"), 3 passes of 512 MiB in 256 KiB updates)"
"$TARGET/release/sha256-rate" 3 | tee "$WORK/sha256-rate.txt"
read -r _ SHA_RATE SHA_RATE_WALL SHA_USED < <(grep '^rate ' "$WORK/sha256-rate.txt")
echo "single-core sha256: $((SHA_RATE / 1000000)) MB/s per CPU second (fastest pass; $((SHA_RATE_WALL / 1000000)) MB/s of wall time in it), load $(load)"

echo "== data set: $MEDIA media (writing it the first time takes a while)"
start_fake "$WORK/data" "$MEDIA" full "$DATA_PORT" "$WORK/urls-full.tsv"
cat "$WORK/fake-full.log"
VARIANTS=$(wc -l <"$WORK/urls-full.tsv")
BYTES=$(sed -n 's/^data set: .* media, \([0-9]*\) bytes.*/\1/p' "$WORK/fake-full.log")
echo "$VARIANTS files, $BYTES bytes"

# The same URLs for the peers, as a curl config and an aria2c input file.
awk -F'\t' -v out="$WORK/out-curl" '{ printf "url = \"%s\"\noutput = \"%s/%s\"\n", $1, out, $2 }' \
    "$WORK/urls-full.tsv" >"$WORK/curl.conf"
awk -F'\t' '{ printf "%s\n  out=%s\n", $1, $2 }' "$WORK/urls-full.tsv" >"$WORK/aria2.txt"

# Clock ticks, so far, the machine spent busy (all CPUs), the hypervisor
# stole, and the servers (nginx's workers, the fake API) spent.
CLK_TCK=$(getconf CLK_TCK)
ticks() {
    local busy steal servers=0 pid
    read -r busy steal < <(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9; exit }' /proc/stat)
    for pid in $(cat /proc/"$NGINX_PID"/task/*/children 2>/dev/null || true) "${FAKE_PIDS[@]}"; do
        servers=$((servers + $(awk '{ print $14 + $15 }' /proc/"$pid"/stat 2>/dev/null || echo 0)))
    done
    echo "$busy $steal $servers"
}

run_tool() {
    local tool=$1 round=$2 before after
    rm -rf "$WORK/out-$tool"
    sync
    before=$(ticks)
    case $tool in
        vault-mirror)
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
                "$BIN" mirror --out "$WORK/out-vault-mirror" --jobs "$JOBS" --json "${API_PACE[@]}" \
                >"$WORK/summary.json" || true
            ;;
        curl)
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
                curl --parallel --parallel-max "$JOBS" --create-dirs --fail --silent --show-error --no-progress-meter \
                -K "$WORK/curl.conf"
            ;;
        curl+sync)
            # curl, then sync: every byte on disk when it ends, as with
            # vault-mirror (which fsyncs each file before recording it).
            sed "s#/out-curl/#/out-curl+sync/#" "$WORK/curl.conf" >"$WORK/curl-sync.conf"
            # $1 and $2 are the inner sh's.
            # shellcheck disable=SC2016
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" sh -c \
                'curl --parallel --parallel-max "$1" --create-dirs --fail --silent --show-error --no-progress-meter -K "$2" && sync' \
                sh "$JOBS" "$WORK/curl-sync.conf"
            ;;
        aria2c)
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
                aria2c -j "$JOBS" -x 1 -d "$WORK/out-aria2c" -i "$WORK/aria2.txt" \
                --quiet=true --file-allocation=none --allow-overwrite=true \
                --auto-file-renaming=false
            ;;
    esac
    after=$(ticks)
    if [ "$tool" = vault-mirror ]; then
        python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s["downloaded"]==int(sys.argv[2]) and not s["failed"] else "vault-mirror: "+str(s["downloaded"])+" downloaded, failed: "+str(s["failed"][:3]))' \
            "$WORK/summary.json" "$VARIANTS"
    fi
    local got
    got=$(find "$WORK/out-$tool" -path '*/.vault-mirror' -prune -o -type f \
        \( -name '*.jpg' -o -name '*.png' -o -name '*.mp4' \) -printf '%s\n' |
        awk '{ total += $1 } END { print total + 0 }')
    if [ "$got" -lt "$BYTES" ]; then
        echo "$tool wrote $got bytes, expected $BYTES" >&2
        exit 1
    fi
    read -r wall user sys rss <"$WORK/time"
    # CPU seconds the servers, and everything but them and the tool, took
    # during the run (the latter is other people's work on a shared
    # machine, plus the kernel's flusher threads), and the hypervisor stole.
    read -r servers others steal < <(echo "$before $after" | awk -v tck="$CLK_TCK" -v user="$user" -v sys="$sys" '{
        servers = ($6 - $3) / tck
        printf "%.2f %.2f %.2f\n", servers, ($4 - $1) / tck - servers - user - sys, ($5 - $2) / tck }')
    printf '%s %s %s %s %s %s %s %s %s\n' "$round" "$tool" "$wall" "$user" "$sys" "$rss" "$servers" "$others" "$steal" >>"$WORK/results"
    printf '  %-13s wall %6.2fs  cpu %6.2fs (user %5.2f sys %5.2f)  peak RSS %4d MB  meanwhile: servers %5.2fs, others %5.2fs CPU, steal %.2fs\n' \
        "$tool" "$wall" "$(echo "$user + $sys" | bc -l 2>/dev/null || python3 -c "print($user+$sys)")" \
        "$user" "$sys" "$((rss / 1024))" "$servers" "$others" "$steal"
    rm -rf "$WORK/out-$tool"
}

# vault-mirror makes every file durable, curl and aria2c do not: the time
# this disk takes to write the data set through the page cache and fsync it
# is a floor for vault-mirror's wall time that no client can go below. It
# is measured each round (disks vary), as is curl followed by `sync`, a
# peer that ends with every byte on disk too.
disk_floor() {
    local round=$1
    sync
    /usr/bin/time -f '%e' -o "$WORK/time-disk" \
        dd if=/dev/zero of="$WORK/disk-floor" bs=1M count=$((BYTES / 1048576)) conv=fdatasync status=none
    rm -f "$WORK/disk-floor"
    printf '%s disk-floor %s 0 0 0 0 0 0\n' "$round" "$(cat "$WORK/time-disk")" >>"$WORK/results"
    echo "  disk floor    wall $(cat "$WORK/time-disk")s to write and fsync $BYTES bytes (dd conv=fdatasync)"
}

echo "== throughput: $ROUNDS rounds, --jobs $JOBS, order rotating"
: >"$WORK/results"
tools=(vault-mirror curl aria2c curl+sync)
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round (load average $(load))"
    printf '%s load %s 0 0 0 0 0 0\n' "$round" "$(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/results"
    disk_floor "$round"
    for i in 0 1 2 3; do
        run_tool "${tools[$(((i + round - 1) % 4))]}" "$round"
    done
done
echo "load average after the rounds: $(load)"

python3 - "$WORK/results" "$BYTES" "$SHA_RATE" "$NPROC" "$SHA_EXT" "$SHA_USED" "$CPU_MODEL" <<'PY'
import sys, statistics
rows = [line.split() for line in open(sys.argv[1])]
data_bytes, rate, nproc = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sha_ext, sha_used, cpu_model = sys.argv[5], sys.argv[6], sys.argv[7]
gb = data_bytes / 1e9
by, rounds = {}, {}
for round_, tool, wall, user, sys_, rss, servers, others, steal in rows:
    if tool == "load":
        rounds.setdefault(round_, {})["load"] = float(wall)
        continue
    run = (float(wall), float(user), float(sys_), int(rss) / 1024, float(servers), float(others), float(steal))
    by.setdefault(tool, []).append(run)
    rounds.setdefault(round_, {})[tool] = run
print(f"== summary (median of {len(by['curl'])} rounds, {gb:.2f} GB)")
print(f"{'tool':<13} {'wall s':>8} {'MB/s':>7} {'cpu s':>7} {'cpu s/GB':>9} {'user s/GB':>10} {'peak RSS MB':>12} {'others cpu s':>13}")
median = {}
for tool in ("vault-mirror", "curl", "aria2c", "curl+sync", "disk-floor"):
    runs = by[tool]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] + r[2] for r in runs)
    user = statistics.median(r[1] for r in runs)
    rss = max(r[3] for r in runs)
    others = statistics.median(r[5] for r in runs)
    median[tool] = wall
    if tool == "disk-floor":
        print(f"{tool:<13} {wall:8.2f} {gb * 1000 / wall:7.0f}   (dd: write and fsync, no network)")
    else:
        print(f"{tool:<13} {wall:8.2f} {gb * 1000 / wall:7.0f} {cpu:7.2f} {cpu / gb:9.2f} {user / gb:10.2f} {rss:12.0f} {others:13.2f}")
print("(others cpu s: CPU time taken meanwhile by all but the tool, nginx and the fake API: other people's work, the kernel's flusher threads)")
fastest = min(("curl", "aria2c"), key=median.get)
vm = median["vault-mirror"]
print(f"vault-mirror / fastest peer ({fastest}): {vm / median[fastest]:.2f}x wall  (target <= 1.00)")
print(f"vault-mirror / curl+sync (same durability): {vm / median['curl+sync']:.2f}x wall  (target <= 1.00)")
print(f"vault-mirror / disk floor: {vm / median['disk-floor']:.2f}x wall")
runs = by["vault-mirror"]
print(f"vault-mirror CPU per GB: {statistics.median(r[1] + r[2] for r in runs) / gb:.2f} s "
      f"(user {statistics.median(r[1] for r in runs) / gb:.2f}, system {statistics.median(r[2] for r in runs) / gb:.2f})  (target <= 1.5)")
print(f"vault-mirror peak RSS: {max(r[3] for r in runs):.0f} MB  (target <= 32)")

# The hashing floor: the wall time sha256 alone needs for the data set
# with every core hashing at the single-core rate.
floor = data_bytes / (rate * nproc)
print("== vault-mirror against curl and against the hashing floor")
print(f"CPU: {cpu_model}; SHA extensions: {sha_ext} (sha2 uses them: {sha_used}); single-core sha256 (vault-mirror's sha2): {rate / 1e6:.0f} MB/s, "
      f"{1e9 / rate:.2f} CPU s/GB")
print(f"hashing floor: {data_bytes} bytes / ({rate / 1e6:.0f} MB/s x {nproc} cores) = {floor:.3f} s "
      f"(one core: {data_bytes / rate:.3f} s)")
print(f"{'round':>5} {'load 1m':>8} {'vault-mirror s':>15} {'curl s':>7} {'/ curl':>7} {'/ floor':>8} {'others cpu s':>13}")
to_curl, to_floor = [], []
for round_, r in sorted(rounds.items(), key=lambda item: int(item[0])):
    vm_wall, curl_wall = r["vault-mirror"][0], r["curl"][0]
    to_curl.append(vm_wall / curl_wall)
    to_floor.append(vm_wall / floor)
    print(f"{round_:>5} {r['load']:8.2f} {vm_wall:15.2f} {curl_wall:7.2f} {to_curl[-1]:6.2f}x {to_floor[-1]:7.2f}x {r['vault-mirror'][5]:13.2f}")
print(f"median  vault-mirror / curl: {statistics.median(to_curl):.2f}x (per round; {vm / median['curl']:.2f}x of the medians)  "
      f"vault-mirror / hashing floor: {statistics.median(to_floor):.2f}x")
vm_user = statistics.median(r[1] for r in runs) / gb
print(f"sha256 at the single-core rate: {1e9 / rate:.2f} CPU s/GB; vault-mirror's user CPU: {vm_user:.2f} s/GB")
PY

# Memory: what each transfer in flight costs. The same data set at
# --jobs 8 and at --jobs 64, peak RSS of each.
echo "== memory: peak RSS by --jobs, the same data set"
declare -A RSS_BY_JOBS
for jobs in 8 64; do
    rm -rf "$WORK/out-memory"
    sync
    /usr/bin/time -f '%M' -o "$WORK/time-memory" \
        "$BIN" mirror --out "$WORK/out-memory" --jobs "$jobs" --json "${API_PACE[@]}" >/dev/null
    RSS_BY_JOBS[$jobs]=$(cat "$WORK/time-memory")
    echo "  --jobs $jobs: peak RSS $((RSS_BY_JOBS[$jobs] / 1024)) MB"
done
rm -rf "$WORK/out-memory"
echo "  per extra job: $(( (RSS_BY_JOBS[64] - RSS_BY_JOBS[8]) / 56 )) kB  (targets: <= 32 MB at --jobs 8, about 1 MB (1024 kB) or less per extra job)"

echo "== re-run: $NOOP_MEDIA media ($((NOOP_MEDIA * 2)) variants), tiny files"
start_fake "$WORK/tiny" "$NOOP_MEDIA" tiny "$TINY_PORT" "$WORK/urls-tiny.tsv"
rm -rf "$WORK/out-noop"
: >"$WORK/nginx/logs/tiny-access.log"
started=$(date +%s.%N)
/usr/bin/time -f '%e %U %S %M' -o "$WORK/time-first" \
    "$BIN" mirror --out "$WORK/out-noop" --jobs "$JOBS" --json "${API_PACE[@]}" \
    >"$WORK/summary-first.json" || true
first_byte=$(head -n 1 "$WORK/nginx/logs/tiny-access.log")
/usr/bin/time -f '%e %U %S %M' -o "$WORK/time-noop" \
    "$BIN" mirror --out "$WORK/out-noop" --jobs "$JOBS" --json "${API_PACE[@]}" \
    >"$WORK/summary-noop.json" || true
db_bytes=$(du -cb "$WORK/out-noop/.vault-mirror/"state.sqlite* | tail -n 1 | cut -f1)
python3 - "$WORK" "$started" "$first_byte" "$db_bytes" <<'PY'
import json, sys
work, started, first_byte, db_bytes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
for name, label in (("first", "first run"), ("noop", "no-op re-run")):
    wall, user, sys_, rss = open(f"{work}/time-{name}").read().split()
    s = json.load(open(f"{work}/summary-{name}.json"))
    print(f"{label:<13} wall {float(wall):6.2f}s  cpu {float(user) + float(sys_):5.2f}s "
          f"(user {user} sys {sys_})  peak RSS {int(rss) // 1024} MB  "
          f"downloaded {s['downloaded']}, already verified {s['already_verified']}, failed {len(s['failed'])}")
reported = json.load(open(f"{work}/summary-first.json")).get("first_byte_seconds")
print(f"time to first byte (first run): {first_byte - started:.2f}s of {float(open(f'{work}/time-first').read().split()[0]):.2f}s "
      f"(nginx's log; vault-mirror's own first_byte_seconds: {reported})")
print(f"database after the re-run: {db_bytes / 1e6:.1f} MB  (target < 100)")
print("no-op re-run CPU target: <= 1 s beyond waiting on the API")
PY
echo "(work dir: $WORK; delete it when done)"
