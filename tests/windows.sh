#!/usr/bin/env bash
# The Windows test set: the x86_64-pc-windows-gnu release binary, run under
# Wine against the Linux build's fake server and moto, both on 127.0.0.1.
# `.ci/run` runs it after the Linux tests; by hand:
#
#   CARGO_TARGET_DIR=target-win cargo build --release --target x86_64-pc-windows-gnu
#   tests/windows.sh target-win/x86_64-pc-windows-gnu/release/vault-mirror.exe
#
# Needs wine (Debian's `wine64`), x86_64-w64-mingw32-gcc (`gcc-mingw-w64-x86-64`),
# sha256sum, python3, and moto_server with boto3 on PATH. Under CI=true a
# missing tool fails the set; elsewhere it skips it.
#
# It builds two small Windows programs of its own with mingw, never shipped:
# bcryptprimitives.dll, a stand-in for the ProcessPrng that Rust's std
# calls and Wine 8 lacks (tests/windows/processprng.c), and hold-open.exe,
# which holds a file open as a picture viewer does (tests/windows/hold-open.c).
#
# Each step prints `ok: …` or `FAILED: …` with the output it judged; the
# set exits 1 at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

exe=${1:-${VAULT_MIRROR_WINDOWS_EXE:-target-win/x86_64-pc-windows-gnu/release/vault-mirror.exe}}
started=$(date +%s)

need() {
  if ! command -v "$1" >/dev/null; then
    if [ "${CI:-}" = true ]; then
      echo "FAILED: $1 is not installed ($2)" >&2
      exit 1
    fi
    echo "skipped: the Windows test set needs $1 ($2)" >&2
    exit 0
  fi
}
need wine "apt-get install wine64"
need x86_64-w64-mingw32-gcc "apt-get install gcc-mingw-w64-x86-64"
need moto_server "pip install 'moto[server]' boto3"
need sha256sum "coreutils"
[ -f "$exe" ] || { echo "FAILED: no Windows binary at $exe" >&2; exit 1; }

# The Linux build serves the fake Vault+ (and checks nothing else).
linux=${VAULT_MIRROR_LINUX_BIN:-}
if [ -z "$linux" ]; then
  cargo build --locked --quiet --bin vault-mirror
  linux=$repo/target/debug/vault-mirror
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wineserver -k 2>/dev/null || true
  # WINDOWS_TEST_KEEP=1 keeps every command's output (`<step>.err`) to read.
  if [ -n "${WINDOWS_TEST_KEEP:-}" ]; then
    echo "kept: $work/run"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

export WINEPREFIX=$work/prefix WINEDEBUG=-all
# No Mono or Gecko prompts: the set runs console programs only.
export WINEDLLOVERRIDES="mscoree,mshtml="
export VAULT_MIRROR_TEST_RETRY_DELAY_MS=20
unset OFAUTH_BASE_URL OFAUTH_API_KEY OFAUTH_CONNECTION_ID VAULT_MIRROR_OUT

bin=$work/bin
mkdir -p "$bin" "$work/run"
cp "$exe" "$bin/vault-mirror.exe"
x86_64-w64-mingw32-gcc -O2 -shared -o "$bin/bcryptprimitives.dll" \
  tests/windows/processprng.c tests/windows/processprng.def -ladvapi32
x86_64-w64-mingw32-gcc -O2 -municode -o "$bin/hold-open.exe" tests/windows/hold-open.c
# One wineserver for the whole set, kept until cleanup kills it: started
# and stopped between programs (its default), a program that starts just
# as the last one's server exits fails with "wine client error: recvmsg:
# Connection reset by peer" (seen once in CI at step 4).
mkdir -p "$WINEPREFIX"
wineserver -p
wineboot --init >/dev/null 2>&1 || true
cd "$work/run"

fail() {
  echo "FAILED: $1" >&2
  shift
  for file in "$@"; do
    echo "--- $file" >&2
    tail -n 30 "$file" >&2 || true
  done
  exit 1
}
ok() { echo "ok: $*"; }

# Runs the Windows binary; its exit code in $code, output in $1.out/$1.err.
run() {
  local name=$1
  shift
  code=0
  wine "$bin/vault-mirror.exe" "$@" >"$name.out" 2>"$name.err" || code=$?
}

# Starts the Linux fake server with the given options; sets its OFAUTH_*.
serve() {
  local name=$1
  shift
  "$linux" fake-server "$@" >"$name.env" 2>"$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    [ "$(grep -c '^export ' "$name.env" 2>/dev/null)" = 3 ] && break
    sleep 0.1
  done
  # shellcheck disable=SC1090
  source "$name.env"
  export OFAUTH_BASE_URL OFAUTH_API_KEY OFAUTH_CONNECTION_ID
}

# Every list view holds entries: hard links (more than one name) or an index.
views_filled() {
  local out=$1 view
  for view in "$out"/lists/*/; do
    [ -n "$(ls -A "$view")" ] || fail "the view $view is empty"
    if [ ! -f "$view/index.html" ]; then
      for entry in "$view"*; do
        [ "$(stat -c %h "$entry")" -gt 1 ] || fail "$entry is not a hard link"
      done
    fi
  done
}

echo "== 1. the demo"
run demo demo --out vault-demo
[ "$code" = 0 ] || fail "demo exited $code" demo.err
(cd vault-demo && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c of the demo's export"
grep -q 'vault-demo\\media\\[0-9]*\\full.jpg ' demo.err || fail "paths not shown with one separator" demo.err
if grep -q 'vault-demo[\\/]media/' demo.err; then fail "mixed separators" demo.err; fi
grep -q 'Get-FileHash' demo.err || fail "no Get-FileHash hint" demo.err
views_filled vault-demo
[ -f vault-demo/index.html ] || fail "no gallery"
run demo2 demo --out vault-demo
[ "$code" = 0 ] && grep -q ': 0 downloaded' demo2.err || fail "a second demo downloaded again" demo2.err
ok "demo: exit 0, sha256sum -c passes, views of hard links, one separator, a second demo downloads nothing"

echo "== 2. a long path (past 260 characters)"
deep=$work/run/$(printf 'a-folder-with-a-long-name-%02d/' $(seq 1 8) | tr -d ' ')
mkdir -p "$deep"
run deep demo --out "Z:$(echo "$deep" | tr / '\\')archive"
[ "$code" = 0 ] || fail "demo in a deep folder exited $code" deep.err
longest=$(find "$deep" -type f | awk '{ print length($0) }' | sort -n | tail -1)
[ "$longest" -gt 260 ] || fail "the deep archive's longest path is only $longest characters"
ok "demo in a folder whose files' paths reach $longest characters"

echo "== 3. a mirror against the fake with faults, verify"
serve faults --media 60 --lists 3 --cut-bodies 0.2 --resets 0.1 --server-errors 0.05
run faults mirror --out faults
[ "$code" = 0 ] || { run faults-again mirror --out faults; [ "$code" = 0 ] || fail "mirror with faults exited $code twice" faults.err faults-again.err; }
run verify verify --out faults
[ "$code" = 0 ] || fail "verify exited $code" verify.err
views_filled faults
ok "mirror with cut bodies, resets and 503s: exit 0; verify: exit 0"

echo "== 3b. free space from Windows (GetDiskFreeSpaceExW)"
run space mirror --out space --min-free 1000000G
[ "$code" = 3 ] || fail "a mirror short of --min-free exited $code, not 3" space.err
grep -q 'would leave less than --min-free .* free, ' space.err || fail "no free space in the refusal" space.err
[ -z "$(find space/media -type f 2>/dev/null)" ] || fail "files fetched past --min-free"
ok "free space: with --min-free above it every variant is refused, naming the free space"

echo "== 4. verify --repair, and a file another program holds open"
damaged=$(ls faults/media/*/full.jpg | head -1)
printf 'XXXX' | dd of="$damaged" bs=1 seek=100 conv=notrunc 2>/dev/null
run damaged verify --out faults
[ "$code" = 3 ] || fail "verify of a damaged file exited $code, not 3" damaged.err
windows_path=$(echo "$damaged" | tr / '\\')
wine "$bin/hold-open.exe" "$windows_path" released >held.out 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q holding held.out && break; sleep 0.1; done
run held verify --repair --out faults
[ "$code" != 0 ] || fail "the repair of a file held open exited 0" held.err
grep -q 'another program has the file open' held.err || fail "no word of the file held open" held.err
[ -f "$damaged.part" ] || fail "the new bytes are not kept in the .part" held.err
new_bytes=$(sha256sum <"$damaged.part")
old_bytes=$(sha256sum <"$damaged")
[ "$new_bytes" != "$old_bytes" ] || fail "the .part holds the damaged bytes"
touch released
wait "${pids[-1]}" || true
# The variant failed, so the next run fetches it again.
run repaired mirror --out faults
[ "$code" = 0 ] || fail "the next mirror exited $code" repaired.err
[ ! -e "$damaged.part" ] || fail "the .part is left after the next run"
[ "$(sha256sum <"$damaged")" = "$new_bytes" ] || fail "the file does not hold the verified bytes"
run verify2 verify --out faults
[ "$code" = 0 ] || fail "verify after the repair exited $code" verify2.err
ok "verify finds the damage (exit 3); held open: the repair fails that file saying so, the old bytes in place and the new in the .part; released: the next mirror puts them in place, verify exits 0"

echo "== 5. Ctrl-C (a console control event) and resume; the lock"
serve slow --media 200 --lists 2
wine "$bin/vault-mirror.exe" mirror --out slow --limit-rate 300K >slow.out 2>slow.err &
slow=$!
pids+=($slow)
for _ in $(seq 300); do
  [ -n "$(find slow/media -name '*.part' 2>/dev/null | head -1)" ] && break
  sleep 0.1
done
run locked mirror --out slow
[ "$code" != 0 ] && grep -qi 'lock\|another' locked.err || fail "a second run while one runs was not refused" locked.err
# Wine turns SIGINT into the console's CTRL_C_EVENT for the program.
kill -INT "$slow"
slow_code=0
wait "$slow" || slow_code=$?
[ "$slow_code" = 130 ] || fail "Ctrl-C exited $slow_code, not 130" slow.err
grep -q 'stopping: transfers in flight are kept' slow.err || fail "no stopping line" slow.err
run resumed mirror --out slow
[ "$code" = 0 ] || fail "the resumed run exited $code" resumed.err
grep -q '0 failed' resumed.err || fail "the resumed run failed some" resumed.err
ok "Ctrl-C: exit 130, transfers kept; a second run is refused while it runs; the same command resumes to exit 0"

echo "== 6. export and the gallery"
run export export --out faults
[ "$code" = 0 ] || fail "export exited $code" export.err
(cd faults && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c of the export"
grep -q '"media"' faults/index.html || grep -q 'VAULT' faults/index.html || [ -s faults/index.html ] || fail "no gallery page"
grep -q 'Get-FileHash' export.err || fail "no Get-FileHash hint" export.err
ok "export: exit 0, SHA256SUMS checks, the gallery is written, the hint is PowerShell's"

echo "== 7. object storage (moto)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
python3 - "$port" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
s3.create_bucket(Bucket="windows")
PY
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
serve bucket --media 30 --lists 2
run bucket mirror --out s3://windows/archive --export
[ "$code" = 0 ] || fail "mirror to the bucket exited $code" bucket.err
run bucket-verify verify --out s3://windows/archive
[ "$code" = 0 ] || fail "verify of the bucket exited $code" bucket-verify.err
objects=$(python3 - "$port" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
pages = s3.get_paginator("list_objects_v2").paginate(Bucket="windows", Prefix="archive/")
keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
assert all("\\" not in key for key in keys), keys
print(sum(key.startswith("archive/media/") for key in keys))
PY
)
[ "$objects" -gt 0 ] || fail "no media in the bucket"
unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
ok "object storage: mirror --export and verify exit 0; $objects media objects, every key with /"

echo "the Windows test set passed in $(($(date +%s) - started)) s"
