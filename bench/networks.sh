#!/bin/bash
# Benchmark runway's container networks against podman + netavark (+ aardvark-dns), issue 17:
#   - network setup + teardown per container: `run --rm IMAGE true` on the default network
#     minus the same with `--network none` (target: runway ≤ 0.2× podman), and the same on a
#     user network (where both engines also run their DNS server);
#   - DNS answer latency for a container name, asked from inside another container on the
#     same network (a UDP client in that container's network namespace, timed per query),
#     runway's DNS server vs aardvark-dns.
#
#   sudo bench/networks.sh                          # about 3-5 minutes on 2 cores
#   sudo BENCH_NET_N=5 BENCH_NET_Q=200 bench/networks.sh   # smoke test
#   sudo BENCH_NET_ENGINES=podman bench/networks.sh        # the peer only (no runway binary)
#
# EVERYTHING runs inside a network namespace this script creates (unshare --net, only `lo`
# up): both engines' bridges, veths, firewall rules, DNS servers and containers live and
# die there. The machine's own links, routes and firewall are never touched; the script
# refuses to go on if it finds itself in the host's network namespace.
#
# Knobs (environment):
#   BENCH_NET_N        timed runs of each `run --rm … true` variant after 2 warm-ups (default 20)
#   BENCH_NET_Q        timed DNS queries per engine (default 2000, in rounds of 250)
#   BENCH_NET_ENGINES  "runway podman" (default), or one of them
#   RUNWAY_BIN         runway binary (default: target/x86_64-unknown-linux-musl/ship/runway,
#                      as ./musl-build.sh makes it; this script does not build)
#   BENCH_OUT          also write the table to this file
#   BENCH_TIMEOUT      seconds for the whole run (default 1200)
# The table goes to stdout, progress to stderr; its header says how each row is measured.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tdir=${CARGO_TARGET_DIR:-$repo/target}

log() { echo "bench-networks: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    echo "bench/networks.sh: must run as root" >&2
    exit 1
fi

if [ -z "${RUNWAY_BENCH_NET_INNER:-}" ]; then
    BENCH_NET_ENGINES=${BENCH_NET_ENGINES:-runway podman}
    need="python3 unshare timeout tar gzip sha256sum findmnt ip"
    case " $BENCH_NET_ENGINES " in *" podman "*) need="$need podman skopeo" ;; esac
    for t in $need; do
        command -v "$t" >/dev/null 2>&1 || { echo "bench/networks.sh: needs $t" >&2; exit 1; }
    done
    case " $BENCH_NET_ENGINES " in
    *" runway "*)
        RUNWAY_BIN=${RUNWAY_BIN:-$tdir/x86_64-unknown-linux-musl/ship/runway}
        if [ ! -x "$RUNWAY_BIN" ]; then
            echo "bench/networks.sh: no runway binary at $RUNWAY_BIN (./musl-build.sh, or set RUNWAY_BIN)" >&2
            exit 1
        fi
        RUNWAY_BIN=$(cd "$(dirname "$RUNWAY_BIN")" && pwd)/$(basename "$RUNWAY_BIN")
        ;;
    *) RUNWAY_BIN= ;;
    esac
    if [ -n "${BENCH_OUT:-}" ]; then
        case $BENCH_OUT in /*) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac
        export BENCH_OUT
    fi
    # The namespace we start in: the inside must be another one.
    RUNWAY_BENCH_NET_OUTER=$(readlink /proc/self/ns/net)
    [ -n "$RUNWAY_BENCH_NET_OUTER" ] || { echo "bench/networks.sh: cannot read /proc/self/ns/net" >&2; exit 1; }
    export RUNWAY_BIN BENCH_NET_ENGINES RUNWAY_BENCH_NET_OUTER RUNWAY_BENCH_NET_INNER=1
    # A private mount namespace (our tmpfs, the engines' overlay and netns mounts, the
    # shadowed config dirs vanish with it) and a new network namespace (every link, rule
    # and DNS server either engine makes vanishes with it). timeout bounds the run.
    exec timeout -k 300 "${BENCH_TIMEOUT:-1200}" unshare --mount --net --propagation private "$0" "$@"
fi

# ---------------------------------------------------------------- inside the namespaces

# The absolute rule: never the machine's network. Not the namespace we were started in,
# nor PID 1's (where that is readable).
my_netns=$(readlink /proc/self/ns/net)
host_netns=$(readlink /proc/1/ns/net 2>/dev/null || true)
if [ -z "$my_netns" ] || [ -z "${RUNWAY_BENCH_NET_OUTER:-}" ] ||
    [ "$my_netns" = "$RUNWAY_BENCH_NET_OUTER" ] || [ "$my_netns" = "$host_netns" ]; then
    log "refusing to run: not in a network namespace of our own"
    exit 1
fi
ip link set lo up

# runc and runway see the same pure cgroup v1 layout (as bench/containers.sh): the hybrid
# host's cgroup2 at /sys/fs/cgroup/unified is swapped for a private tmpfs.
if grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo; then
    umount /sys/fs/cgroup/unified
    mount -t tmpfs -o size=16m,mode=755 runway-bench-net-unified /sys/fs/cgroup/unified
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/runway-bench-net.XXXXXX")
made_dirs=()
cg_parents=()
for c in /sys/fs/cgroup/*/; do
    [ "$c" != /sys/fs/cgroup/unified/ ] || continue
    for d in runway libpod_parent/conmon libpod_parent; do
        [ -d "$c$d" ] || cg_parents+=("$c$d")
    done
done
py_pid=

unmount_under() {
    findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d) == 1' | sort -r |
        while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

# Every process in our network namespace but this shell: all of them are ours (engine
# monitors, conmons, DNS servers, containers).
kill_netns_procs() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" != $$ ] || continue
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$my_netns" ] || continue
        kill -KILL "${p#/proc/}" 2>/dev/null || true
    done
}

cleanup() {
    trap '' TERM INT
    if [ -n "$py_pid" ]; then
        kill -TERM "$py_pid" 2>/dev/null || true
        wait "$py_pid" 2>/dev/null || true
    fi
    kill_netns_procs
    sleep 0.2
    kill_netns_procs
    local ids c d p n
    ids=$(ls "$work/rw-data/containers" "$work/pm-root/overlay-containers" 2>/dev/null | grep -E '^[0-9a-f]{64}$' || true)
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
    for d in $shadowed; do
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
shadowed=
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

mount -t tmpfs -o size=3g,mode=700 runway-bench-net "$work"
chmod 700 "$work"

# Machine-wide state podman and netavark keep even with --root/--runroot: the blob-info
# cache and network configs get a private copy on the tmpfs, mounted in this mount
# namespace only; /run (named network namespaces under /run/netns, aardvark-dns's
# files, runc's and iptables' state and locks) becomes a private tmpfs as a whole.
mount -t tmpfs -o size=64m,mode=755 runway-bench-net-run /run
mkdir -p /run/lock /run/netns /run/containers
shadowed="/var/lib/containers /etc/containers/networks /etc/cni/net.d"
for d in $shadowed; do
    if [ ! -d "$d" ]; then
        top=$d
        while [ ! -d "$(dirname "$top")" ]; do top=$(dirname "$top"); done
        mkdir -p "$d" && made_dirs+=("$top")
    fi
    mkdir -p "$work/shadow$d"
    case $d in /etc/*) cp -a "$d/." "$work/shadow$d/" ;; esac
    mount --bind "$work/shadow$d" "$d"
done

# ---------------------------------------------------------------- the test image

# The same image as bench/containers.sh's (bench/busybox-layout.sh).
. "$here/busybox-layout.sh"
busybox_layout "$work" || exit 1

# The binaries into the page cache before anything is timed.
for b in podman conmon runc /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns iptables; do
    c=$(command -v "$b" || true)
    [ -z "$c" ] || cat "$c" >/dev/null
done
[ -z "$RUNWAY_BIN" ] || cat "$RUNWAY_BIN" >/dev/null

python3 -B "$here/networks.py" --work "$work" --image "$img" --runway "$RUNWAY_BIN" --engines "$BENCH_NET_ENGINES" &
py_pid=$!
wait "$py_pid" && st=0 || st=$?
py_pid=
if [ -s "$work/table.md" ] && [ -n "${BENCH_OUT:-}" ]; then
    cp "$work/table.md" "$BENCH_OUT"
    log "table written to $BENCH_OUT"
fi
exit "$st"
