#!/bin/bash
# Benchmark the registry server: `runway registry serve` vs Debian's docker-registry
# (distribution 2.8), both on 127.0.0.1 inside a network namespace this script makes.
#
#   sudo bench/registry.sh                    # N=3 rounds, about 2 minutes
#   sudo BENCH_REG_N=1 BENCH_REG_MB=20 bench/registry.sh   # smoke test
#
# Knobs (environment):
#   BENCH_REG_N     rounds per server (default 3); the table shows medians
#   BENCH_REG_MB    size of the test image in MiB (default 100: 4 random layers)
#   BENCH_REG_PAR   parallel pulls (default 50)
#   RUNWAY_BIN      runway binary (default: target/x86_64-unknown-linux-musl/ship/runway,
#                   as ./musl-build.sh makes it; this script does not build)
#   BENCH_OUT       also write the table to this file
#   BENCH_TIMEOUT   seconds for the whole run (default 900)
# The table goes to stdout, progress to stderr. See bench/README.md, "Registry benchmark".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tdir=${CARGO_TARGET_DIR:-$repo/target}

if [ "$(id -u)" != 0 ]; then
    echo "bench/registry.sh: must run as root" >&2
    exit 1
fi

if [ -z "${RUNWAY_BENCH_REG_INNER:-}" ]; then
    for t in docker-registry curl python3 unshare timeout ip; do
        command -v "$t" >/dev/null 2>&1 || { echo "bench/registry.sh: needs $t" >&2; exit 1; }
    done
    RUNWAY_BIN=${RUNWAY_BIN:-$tdir/x86_64-unknown-linux-musl/ship/runway}
    [ -x "$RUNWAY_BIN" ] || { echo "bench/registry.sh: no $RUNWAY_BIN (run ./musl-build.sh)" >&2; exit 1; }
    RUNWAY_BIN=$(cd "$(dirname "$RUNWAY_BIN")" && pwd)/$(basename "$RUNWAY_BIN")
    if [ -n "${BENCH_OUT:-}" ]; then
        case $BENCH_OUT in /*) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac
        export BENCH_OUT
    fi
    export RUNWAY_BIN RUNWAY_BENCH_REG_INNER=1
    # A network namespace of our own (both servers and every client talk over its
    # loopback only) and a private mount namespace (our tmpfs vanishes with it).
    exec timeout -k 30 "${BENCH_TIMEOUT:-900}" \
        unshare --net --mount --propagation private "$0" "$@"
fi

# ---------------------------------------------------------------- inside the namespaces

ip link set lo up
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
work=$(mktemp -d "${TMPDIR:-/tmp}/runway-bench-reg.XXXXXX")
cleanup() {
    trap '' TERM INT
    umount "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
# Both servers' storage and the test blobs on one tmpfs: the disk (shared with other
# work on this machine) does not pick the winner, and neither server's fsyncs cost.
mb=${BENCH_REG_MB:-100}
mount -t tmpfs -o size=$((mb * 8 + 512))m,mode=700 runway-bench-reg "$work"
python3 -B "$here/registry.py" --work "$work" --runway "$RUNWAY_BIN"
