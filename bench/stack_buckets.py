#!/usr/bin/env python3
"""Shares of a profile's samples by the function on their stack.

    perf record -F 999 --call-graph dwarf,16384 -o run.perf \\
        target/release/vault-mirror mirror --out ARCHIVE --json
    perf script -i run.perf -F comm,tid,ip,sym --no-inline > run.txt
    bench/stack_buckets.py run.txt record_remote,has_file,ItemsPage,update_views

Each sample counts once, for the first name (in the order given) that
appears anywhere on its stack; the rest are listed by their outermost and
innermost frames. The README's "What the profiles showed" was read this way.
"""
import collections
import sys


def stacks(path):
    """The samples of `perf script` output, each a list of frames, leaf first."""
    current = []
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            if current:
                yield current
            current = []
        elif line[0] in " \t":
            parts = line.split(None, 1)
            current.append(parts[1] if len(parts) > 1 else "?")
        elif current:
            yield current
            current = []
    if current:
        yield current


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    names = sys.argv[2].split(",")
    counts, others, total = collections.Counter(), collections.Counter(), 0
    for frames in stacks(sys.argv[1]):
        total += 1
        name = next((n for n in names if any(n in frame for frame in frames)), None)
        if name:
            counts[name] += 1
        else:
            others["root " + frames[-1][:80]] += 1
            others["leaf " + frames[0][:80]] += 1
    if not total:
        sys.exit("no samples")
    for name in names:
        print(f"{100 * counts[name] / total:6.2f}%  {name}")
    print(f"{100 * (total - sum(counts.values())) / total:6.2f}%  other, by frame:")
    for frame, count in others.most_common(12):
        print(f"        {100 * count / total:6.2f}%  {frame}")
    print(f"({total} samples)")


if __name__ == "__main__":
    main()
