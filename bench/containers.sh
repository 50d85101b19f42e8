#!/bin/bash
# Benchmark runway's docker-style containers: `runway container run` against `podman run`
# (and against runway's own `run` of a prepared bundle) on the same busybox image.
#
#   sudo bench/containers.sh                    # about 2-3 minutes on 2 cores
#   sudo BENCH_CT_N=5 BENCH_CT_PS=100 bench/containers.sh   # smoke test
#
# Knobs (environment):
#   BENCH_CT_N        timed runs of each `run --rm … true` after 2 warm-ups (default 20)
#   BENCH_CT_PAR      containers started at once with `run -d` (default 50)
#   BENCH_CT_ROUNDS   rounds of the parallel start per engine (default 2)
#   BENCH_CT_PS       containers present for `ps -a` (default 1000)
#   BENCH_CT_PS_N     timed `ps -a` runs (default 10)
#   BENCH_CT_PODMAN_PS=1  also create BENCH_CT_PS podman containers and time `podman ps -a`
#                     (slow: podman creates about 10 a second here)
#   RUNWAY_BIN        runway binary (default: target/x86_64-unknown-linux-musl/ship/runway,
#                     as ./musl-build.sh makes it; this script does not build)
#   BENCH_OUT         also write the table to this file
#   BENCH_TIMEOUT     seconds for the whole run (default 1200)
# The table goes to stdout, progress to stderr. See bench/README.md, "Container benchmark".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tdir=${CARGO_TARGET_DIR:-$repo/target}

log() { echo "bench-containers: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    echo "bench/containers.sh: must run as root" >&2
    exit 1
fi

if [ -z "${RUNWAY_BENCH_CT_INNER:-}" ]; then
    for t in podman skopeo python3 unshare timeout tar gzip sha256sum findmnt; do
        command -v "$t" >/dev/null 2>&1 || { echo "bench/containers.sh: needs $t" >&2; exit 1; }
    done
    RUNWAY_BIN=${RUNWAY_BIN:-$tdir/x86_64-unknown-linux-musl/ship/runway}
    if [ ! -x "$RUNWAY_BIN" ]; then
        echo "bench/containers.sh: no runway binary at $RUNWAY_BIN (./musl-build.sh, or set RUNWAY_BIN)" >&2
        exit 1
    fi
    RUNWAY_BIN=$(cd "$(dirname "$RUNWAY_BIN")" && pwd)/$(basename "$RUNWAY_BIN")
    if [ -n "${BENCH_OUT:-}" ]; then
        case $BENCH_OUT in /*) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac
        export BENCH_OUT
    fi
    export RUNWAY_BIN RUNWAY_BENCH_CT_INNER=1
    # A private mount and network namespace (nothing touches the host's network): our tmpfs, the containers' overlay mounts (both engines')
    # and the cgroup2 swap below vanish with it. timeout bounds the run (SIGTERM, then
    # SIGKILL 300 s later if the cleanup hangs).
    exec timeout -k 300 "${BENCH_TIMEOUT:-1200}" unshare --mount --net --propagation private "$0" "$@"
fi

# ---------------------------------------------------------------- inside the namespace

# podman runs its default runtime, crun 1.8, which rejects this host's hybrid layout
# (cgroup2 at /sys/fs/cgroup/unified next to the v1 controllers). Without it both engines
# see the same pure v1 hierarchy; crun still makes per-container dirs under unified/, so a
# private tmpfs there keeps them off the host (as bench/run.sh does).
if grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo; then
    umount /sys/fs/cgroup/unified
    mount -t tmpfs -o size=16m,mode=755 runway-bench-ct-unified /sys/fs/cgroup/unified
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/runway-bench-ct.XXXXXX")
made_dirs=()
# The engines' parent cgroups (runway's /runway, podman's /libpod_parent and its conmon
# child) outlive their containers. Those this run makes are removed at the end if empty;
# ones that were there before (other users of the engines) are left alone.
cg_parents=()
for c in /sys/fs/cgroup/*/; do
    [ "$c" != /sys/fs/cgroup/unified/ ] || continue
    for d in runway libpod_parent/conmon libpod_parent; do
        [ -d "$c$d" ] || cg_parents+=("$c$d")
    done
done
py_pid=

# Unmount everything at or below $1, deepest first.
unmount_under() {
    findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d) == 1' | sort -r |
        while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

cleanup() {
    trap '' TERM INT
    if [ -n "$py_pid" ]; then
        # The harness cleans up on SIGTERM itself (containers of both engines); give it time.
        kill -TERM "$py_pid" 2>/dev/null || true
        wait "$py_pid" 2>/dev/null || true
    fi
    # The last resort, for a harness killed before it finished: every process naming the
    # work dir (runway's monitors, podman's conmons), then whatever still runs in the
    # cgroups of the containers whose ids the stores hold; then those cgroups.
    local ids p c d n
    ids=$(ls "$work/rw-data/containers" "$work/pm-root/overlay-containers" 2>/dev/null | grep -E '^[0-9a-f]{64}$' || true)
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" != $$ ] || continue
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$work/"; then
            kill -KILL "${p#/proc/}" 2>/dev/null || true
        fi
    done
    if [ -n "$ids" ]; then
        for n in 1 2 3; do
            for c in /sys/fs/cgroup/*/; do
                for d in $(for i in $ids; do echo "${c}runway/$i ${c}libpod_parent/libpod-$i"; done); do
                    [ -d "$d" ] || continue
                    for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
                    rmdir "$d" 2>/dev/null || [ "$n" != 3 ] || log "left: cgroup $d"
                done
            done
            sleep 0.2
        done
    fi
    for d in /var/lib/containers /etc/containers/networks /etc/cni/net.d; do
        ! mountpoint -q "$d" || umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null || true
    done
    for d in ${made_dirs[@]+"${made_dirs[@]}"}; do
        find "$d" -depth -type d -empty -delete 2>/dev/null || true
    done
    for d in ${cg_parents[@]+"${cg_parents[@]}"}; do
        [ ! -d "$d" ] || rmdir "$d" 2>/dev/null || log "left: cgroup $d (not empty)"
    done
    unmount_under "$work"
    umount "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Both engines' stores, state and the bundle on one tmpfs (as /run and a fast disk would
# be): the shared, busy disk must not pick the winner, and fsyncs cost nobody anything.
mount -t tmpfs -o size=3g,mode=700 runway-bench-ct "$work"
chmod 700 "$work"

# podman keeps machine-wide state even with --root (the blob-info cache under
# /var/lib/containers, network config and lock files): each such dir gets a private copy
# on the tmpfs, mounted in this namespace only, so the host's stay untouched.
for d in /var/lib/containers /etc/containers/networks /etc/cni/net.d; do
    if [ ! -d "$d" ]; then
        top=$d
        while [ ! -d "$(dirname "$top")" ]; do top=$(dirname "$top"); done
        mkdir -p "$d" && made_dirs+=("$top")
    fi
    mkdir -p "$work/shadow$d"
    [ "$d" = /var/lib/containers ] || cp -a "$d/." "$work/shadow$d/"
    mount --bind "$work/shadow$d" "$d"
done

# ---------------------------------------------------------------- the test image

# Static busybox in one gzip layer as an OCI layout ($img), see bench/busybox-layout.sh; the
# same unpacked tree ($s) is the rootfs of runway's bundle.
. "$here/busybox-layout.sh"
busybox_layout "$work" || exit 1

# Both binaries into the page cache before anything is timed.
for b in podman conmon crun; do c=$(command -v "$b" || true); [ -z "$c" ] || cat "$c" >/dev/null; done
cat "$RUNWAY_BIN" >/dev/null

# The harness: everything else (imports, timings, the table, the containers' cleanup).
python3 -B "$here/containers.py" --work "$work" --image "$img" --rootfs "$s" --runway "$RUNWAY_BIN" &
py_pid=$!
wait "$py_pid" && st=0 || st=$?
py_pid=
if [ -s "$work/table.md" ] && [ -n "${BENCH_OUT:-}" ]; then
    cp "$work/table.md" "$BENCH_OUT"
    log "table written to $BENCH_OUT"
fi
exit "$st"
