#!/usr/bin/env bash
# The cost of resuming a big download on the local disk (docs/resuming.md):
# the time to open a `.part` holding half of a 2 GB video, hashing every
# byte of it again (what every resume cost before saved sha256 states, and
# what one still costs without them) against starting from the last state
# saved at a part boundary. Re-runnable:
#
#   bench/resume.sh [--work DIR]
#
# Runs the ignored test `resume::bench_resume_half_of_a_2_gb_part` (the
# test build: sha2 at opt-level 1, as `cargo test` builds it). Writes a
# 1 GB file under --work (default /tmp), deleted at the end. As root, each
# figure is also taken with the page cache dropped (the bytes read from
# the disk, as after a reboot); otherwise warm only. Figures are printed,
# never asserted.
set -euo pipefail

WORK=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
REPO=$(cd "$(dirname "$0")/.." && pwd)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "vault-mirror $(cd "$REPO" && git rev-parse --short HEAD); work folder $WORK ($(df -hT "$WORK" | awk 'NR==2 {print $2}'))"
cd "$REPO"
VAULT_MIRROR_BENCH_DIR=$WORK cargo test --locked -q --test it resume::bench_resume_half_of_a_2_gb_part \
    -- --ignored --nocapture --test-threads 1 2>&1 | grep -E '^(a \.part|before|after)'
