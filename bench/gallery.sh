#!/usr/bin/env bash
# How fast the offline gallery is with 50,000 media, in real headless
# Chromium (the figures tests/it/gallery_browser.rs measures and prints,
# never asserts):
#
#   bench/gallery.sh [--rounds N]
#
# Each round runs the test `fifty_thousand_media_render_one_page_at_a_time`
# (release build): it writes a 50,000-media `index.html` (about 10 MB of
# HTML), opens it from disk and times the first page of tiles, then one
# page turn and one list filter together. Printed per round and as
# medians, beside the targets (first page under 20 s, page turn and filter
# under 2 s), never asserted.
#
# Then the timeline at 100,000 media (`a_hundred_thousand_media_on_a_timeline_jump_to_a_month`):
# the first page, and a jump to a month three years back, per round and
# as medians.
#
# Needs chromium and chromedriver (Debian: chromium chromium-driver; or
# VAULT_MIRROR_CHROMIUM / VAULT_MIRROR_CHROMEDRIVER). Without them the
# test skips, and this script says so and exits 1.
set -euo pipefail

ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

cargo test --release --test it --no-run >/dev/null 2>&1 ||
    cargo test --release --test it --no-run

# Runs the test $1 $ROUNDS times; each run prints a line `$2: first_page_ms=…
# $3=… …`. Prints each round (prefixed by $4, the second figure named $5)
# and leaves the figures in FIRST and SECOND.
rounds() {
    local test=$1 tag=$2 field=$3 prefix=$4 what=$5 line round
    FIRST=() SECOND=()
    for round in $(seq 1 "$ROUNDS"); do
        # CI unset: a missing browser is a skip here, reported below.
        line=$(env -u CI cargo test --release --test it "$test" -- --exact --nocapture 2>&1 |
            grep "^$tag:" || true)
        if [ -z "$line" ]; then
            echo "no figures from $test: chromium or chromedriver is missing (the test skipped), or it failed" >&2
            exit 1
        fi
        FIRST+=("$(sed -n 's/.*first_page_ms=\([0-9]*\).*/\1/p' <<<"$line")")
        SECOND+=("$(sed -n "s/.*$field=\([0-9]*\).*/\1/p" <<<"$line")")
        printf '%sround %d: first page %6d ms   %s %5d ms   (%s)\n' \
            "$prefix" "$round" "${FIRST[-1]}" "$what" "${SECOND[-1]}" "${line#"$tag": }"
    done
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

rounds gallery_browser::fifty_thousand_media_render_one_page_at_a_time \
    gallery-50k page_and_filter_ms "" "page turn + filter"
printf 'median:  first page %6d ms (target < 20000)   page turn + filter %5d ms (target < 2000)\n' \
    "$(median "${FIRST[@]}")" "$(median "${SECOND[@]}")"

rounds gallery_browser::a_hundred_thousand_media_on_a_timeline_jump_to_a_month \
    gallery-100k jump_to_month_ms "timeline " "jump to a month"
printf 'timeline median (100,000 media): first page %6d ms   jump to a month %5d ms\n' \
    "$(median "${FIRST[@]}")" "$(median "${SECOND[@]}")"
