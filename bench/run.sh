#!/bin/sh
# Benchmark runway against crun and runc (whichever are installed).
#
#   sudo bench/run.sh                 # full run (N=50, list with 1000 containers)
#   sudo BENCH_QUICK=1 bench/run.sh   # smoke test (N=5, 10 in parallel, list with 100)
#
# Knobs (environment): BENCH_N, BENCH_PAR, BENCH_LIST, BENCH_QUICK, BENCH_TIMEOUT (s),
# RUNWAY_BIN (skip the build and use this binary), BENCH_OUT (results file).
# The table goes to stdout and to bench/results.md; progress goes to stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: must run as root" >&2
    exit 1
fi

if [ -z "${RUNWAY_BENCH_INNER:-}" ]; then
    if [ -z "${RUNWAY_BIN:-}" ]; then
        # The binary we ship, as musl-build.sh makes it: that is what users run.
        echo "bench: building runway (./musl-build.sh)" >&2
        if ! (cd "$repo" && ./musl-build.sh >&2); then
            echo "bench: build failed" >&2
            exit 1
        fi
        tdir=${CARGO_TARGET_DIR:-$repo/target}
        for c in "$tdir/x86_64-unknown-linux-musl/ship/runway"; do
            if [ -x "$c" ]; then
                RUNWAY_BIN=$c
                break
            fi
        done
        if [ -z "${RUNWAY_BIN:-}" ]; then
            echo "bench: no runway binary under $tdir" >&2
            exit 1
        fi
    fi
    RUNWAY_BIN=$(cd "$(dirname "$RUNWAY_BIN")" && pwd)/$(basename "$RUNWAY_BIN")
    export RUNWAY_BIN
    export RUNWAY_BENCH_INNER=1
    if [ -n "${BENCH_QUICK:-}" ]; then dflt=300; else dflt=1200; fi
    # One private mount namespace for every runtime: the cgroup2 unmount and our tmpfs
    # never reach the host. timeout bounds the whole run; -k is the hard stop if the
    # cleanup itself hangs.
    exec timeout -k 120 "${BENCH_TIMEOUT:-$dflt}" \
        unshare --mount --propagation private "$0" "$@"
fi

# Inside the private mount namespace from here on.
# crun 1.8 rejects the hybrid layout (cgroup2 at /sys/fs/cgroup/unified next to v1
# controllers); without it all three runtimes see the same pure v1 hierarchy.
if grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo; then
    umount /sys/fs/cgroup/unified
    # crun still mkdirs per-container dirs (and writes cgroup.procs files) under
    # unified/; a private tmpfs keeps them off the host's /sys/fs/cgroup tmpfs.
    mount -t tmpfs -o size=16m,mode=755 runway-bench-unified /sys/fs/cgroup/unified
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/runway-bench.XXXXXX")
cleanup() {
    umount "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
# State roots and bundles on tmpfs, as /run is on a normal host: the disk under /tmp
# must not decide who wins.
mount -t tmpfs -o size=512m,mode=700 runway-bench "$work"

# The peak-RSS probe (see rss.c); without a C compiler bench.py falls back to
# /usr/bin/time, whose own footprint then sets the floor.
rss=
if command -v cc >/dev/null 2>&1; then
    if cc -O2 -static -o "$work/rss" "$here/rss.c" 2>/dev/null ||
        cc -O2 -o "$work/rss" "$here/rss.c"; then
        rss=$work/rss
    fi
fi

out=${BENCH_OUT:-$here/results.md}
python3 -B "$here/bench.py" --work "$work" --runway "$RUNWAY_BIN" --out "$out" --rss "$rss"
