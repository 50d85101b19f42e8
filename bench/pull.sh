#!/bin/bash
# Benchmark image pulls: runway vs `podman pull` vs `skopeo copy` + `umoci unpack`, from a
# registry on 127.0.0.1 inside a network namespace this script makes.
#
#   sudo bench/pull.sh                  # N=3 cold + 3 warm pulls per tool, about 2 minutes
#   sudo BENCH_PULL_N=1 bench/pull.sh   # smoke test
#
# Knobs (environment):
#   BENCH_PULL_N       pulls per tool and phase (default 3); the table shows medians
#   RUNWAY_BIN         runway binary (default: target/x86_64-unknown-linux-musl/ship/runway,
#                      as ./musl-build.sh makes it; this script does not build)
#   BENCH_OUT          also write the table to this file
#   BENCH_PULL_CACHE   where the test image is kept between runs (default: target/bench-pull)
#   BENCH_PULL_DISK=1  stores on disk (under $TMPDIR) instead of a tmpfs
#   BENCH_PULL_PODMAN_DRIVER  overlay (default; vfs if overlay does not work here) or vfs
#   BENCH_TIMEOUT      seconds for the whole run (default 600)
# The table goes to stdout, progress to stderr. See bench/README.md, "Pull benchmark".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tdir=${CARGO_TARGET_DIR:-$repo/target}

log() { echo "bench-pull: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    echo "bench/pull.sh: must run as root" >&2
    exit 1
fi

if [ -z "${RUNWAY_BENCH_PULL_INNER:-}" ]; then
    for t in podman skopeo umoci docker-registry curl unshare timeout ip tar gzip sha256sum; do
        command -v "$t" >/dev/null 2>&1 || { echo "bench/pull.sh: needs $t" >&2; exit 1; }
    done
    RUNWAY_BIN=${RUNWAY_BIN:-$tdir/x86_64-unknown-linux-musl/ship/runway}
    if [ -e "$RUNWAY_BIN" ]; then
        RUNWAY_BIN=$(cd "$(dirname "$RUNWAY_BIN")" && pwd)/$(basename "$RUNWAY_BIN")
    fi
    BENCH_PULL_CACHE=${BENCH_PULL_CACHE:-$tdir/bench-pull}
    mkdir -p "$BENCH_PULL_CACHE"
    BENCH_PULL_CACHE=$(cd "$BENCH_PULL_CACHE" && pwd)
    if [ -n "${BENCH_OUT:-}" ]; then
        case $BENCH_OUT in /*) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac
        export BENCH_OUT
    fi
    log "test image: $BENCH_PULL_CACHE/image (made once)"
    "$here/pull-image.sh" "$BENCH_PULL_CACHE/image"
    export RUNWAY_BIN BENCH_PULL_CACHE
    export RUNWAY_BENCH_PULL_INNER=1
    # A network namespace of our own: the registry and every client talk over its
    # loopback only, and the host's network is never touched. A private mount namespace:
    # our tmpfs and whatever podman's overlay driver mounts vanish with it. timeout
    # bounds the run (SIGTERM to the whole process group, then -k SIGKILL).
    exec timeout -k 30 "${BENCH_TIMEOUT:-600}" \
        unshare --net --mount --propagation private "$0" "$@"
fi

# ---------------------------------------------------------------- inside the namespaces

N=${BENCH_PULL_N:-3}
case $N in '' | *[!0-9]* | 0) echo "bench/pull.sh: BENCH_PULL_N must be a positive integer" >&2; exit 1 ;; esac
CMD_TIMEOUT=180
start_s=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
ip link set lo up

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
work=$(mktemp -d "${TMPDIR:-/tmp}/runway-bench-pull.XXXXXX")
registry_pid=
cur_pid=
made_dirs=()

# Unmount everything at or below $1 (podman's overlay driver leaves mounts), deepest first.
unmount_under() {
    findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d) == 1' | sort -r |
        while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

cleanup() {
    # timeout signals us twice (directly and through the process group): a second TERM
    # must not cut the cleanup short.
    trap '' TERM INT
    if [ -n "$cur_pid" ]; then
        kill -KILL -- "-$cur_pid" 2>/dev/null || kill -KILL "$cur_pid" 2>/dev/null || true
        wait "$cur_pid" 2>/dev/null || true
    fi
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    for d in /var/lib/containers /etc/containers/networks /etc/cni/net.d; do
        ! mountpoint -q "$d" || umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null || true
    done
    for d in ${made_dirs[@]+"${made_dirs[@]}"}; do
        find "$d" -depth -type d -empty -delete 2>/dev/null || true
    done
    unmount_under "$work"
    umount "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if [ "${BENCH_PULL_DISK:-0}" = 1 ]; then
    where="disk ($work)"
else
    # Registry storage and every tool's store on one tmpfs: the registry's files are in
    # memory for every tool alike (drop_caches is not an option on a shared machine), and
    # the shared disk, busy with other builds, does not pick the winner. No tool's fsyncs
    # cost anything here; BENCH_PULL_DISK=1 measures with them.
    mount -t tmpfs -o size=4g,mode=700 runway-bench-pull "$work"
    where=tmpfs
fi
mkdir -p "$work/samples" "$work/logs"
chmod 700 "$work"

# podman and skopeo keep machine-wide state even with --root: containers/image's blob-info
# cache (/var/lib/containers/cache) and network-backend lock files. Each of those dirs gets
# a private copy from the work dir, mounted in this mount namespace only: the host's stay
# untouched, and every cold pull starts without a blob-info cache.
made_dirs=()
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

# Every tool gets the same empty credentials file, so nothing from the host's auth files
# changes what any of them does.
echo '{"auths":{}}' >"$work/auth.json"
export REGISTRY_AUTH_FILE=$work/auth.json

# ---------------------------------------------------------------- the registry

port=5000 # our own network namespace: nothing else can hold it
ref=127.0.0.1:$port/bench:latest
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: runway-bench-pull
EOF
# (env -u: the registry reads REGISTRY_* variables as configuration.)
env -u REGISTRY_AUTH_FILE docker-registry serve "$work/registry.yml" >"$work/logs/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then break; fi
    if ! kill -0 "$registry_pid" 2>/dev/null; then
        log "registry exited:"; cat "$work/logs/registry.log" >&2; exit 1
    fi
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" || { log "registry not answering"; exit 1; }
log "pushing the test image to $ref"
skopeo copy -q --dest-tls-verify=false "oci:$BENCH_PULL_CACHE/image:latest" "docker://$ref" >&2

# ---------------------------------------------------------------- measuring

# The peak-RSS probe (rss.c, as run.sh uses): a small static parent, so the tool's
# maxrss does not start at its parent's high-water mark. Without cc, GNU time (which
# then sets a higher floor).
rss_probe=
if command -v cc >/dev/null 2>&1; then
    if cc -O2 -static -o "$work/rss" "$here/rss.c" 2>/dev/null || cc -O2 -o "$work/rss" "$here/rss.c"; then
        rss_probe=$work/rss
    fi
fi
[ -n "$rss_probe" ] || log "no C compiler: peak RSS from /usr/bin/time (its own footprint is the floor)"

us() { local t=${1/./}; echo "$((10#$t))"; }

# measure LOG CMD...: run CMD (absolute path or name) with its output in LOG; sets M_US
# (wall µs, from just before the probe's spawn to its exit) and M_KIB (ru_maxrss of the
# command's process tree: its largest single process). Returns CMD's status.
measure() {
    local logf=$1 t0 t1 st
    shift
    local cmd
    cmd=$(command -v "$1") || { echo "not found: $1" >"$logf"; return 127; }
    shift
    rm -f "$work/rss.out"
    # In the background and waited for, so a SIGTERM runs the trap at once (bash defers
    # traps while a foreground command runs); timeout puts the command in a process group
    # of its own, which cleanup kills.
    t0=$EPOCHREALTIME
    if [ -n "$rss_probe" ]; then
        timeout -k 5 "$CMD_TIMEOUT" "$rss_probe" "$work/rss.out" "$cmd" "$@" >"$logf" 2>&1 </dev/null &
    else
        timeout -k 5 "$CMD_TIMEOUT" /usr/bin/time -f %M -o "$work/rss.out" "$cmd" "$@" >"$logf" 2>&1 </dev/null &
    fi
    cur_pid=$!
    wait "$cur_pid" && st=0 || st=$?
    cur_pid=
    t1=$EPOCHREALTIME
    M_US=$(($(us "$t1") - $(us "$t0")))
    M_KIB=$(tail -n1 "$work/rss.out" 2>/dev/null || echo 0)
    [ "$st" != 124 ] || echo "timed out after ${CMD_TIMEOUT}s" >>"$logf"
    return "$st"
}

# The last meaningful line of a log, made safe for a table cell.
reason() {
    grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n1 | cut -c1-160 | sed 's/|/\\|/g' || true
}

add_sample() { echo "$2" >>"$work/samples/$1"; }

podman_driver=${BENCH_PULL_PODMAN_DRIVER:-overlay}
podman_args() { # STORE
    echo --root "$1/root" --runroot "$1/run" --tmpdir "$1/libpod" \
        --storage-driver "$podman_driver" --events-backend none --cgroup-manager cgroupfs
}

# One tool, one phase. STORE persists from cold to warm. Each sets P_US, P_KIB and returns
# non-zero with P_WHY on failure.
pull_podman() { # STORE PHASE
    local s=$1
    # shellcheck disable=SC2046
    if measure "$work/logs/podman.$2" podman $(podman_args "$s") pull --tls-verify=false "$ref"; then
        P_US=$M_US P_KIB=$M_KIB
    else
        P_WHY=$(reason "$work/logs/podman.$2"); return 1
    fi
}

pull_skopeo() { # STORE PHASE: skopeo copy to an OCI layout, then umoci unpack of a new bundle
    local s=$1 b=$1/bundle.$2
    if ! measure "$work/logs/skopeo.$2" skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$s/oci:latest"; then
        P_WHY="skopeo: $(reason "$work/logs/skopeo.$2")"; return 1
    fi
    P_US=$M_US P_KIB=$M_KIB
    if ! measure "$work/logs/umoci.$2" umoci unpack --image "$s/oci:latest" "$b"; then
        P_WHY="umoci: $(reason "$work/logs/umoci.$2")"; return 1
    fi
    P_US=$((P_US + M_US))
    [ "$M_KIB" -le "$P_KIB" ] || P_KIB=$M_KIB
    rm -rf "$b"
}

pull_runway() { # STORE PHASE
    local s=$1
    if [ ! -x "$RUNWAY_BIN" ]; then
        P_WHY="no binary at $RUNWAY_BIN (./musl-build.sh, or set RUNWAY_BIN)"; return 1
    fi
    if ! measure "$work/logs/runway.$2" "$RUNWAY_BIN" --data-root "$s/data" image pull "$ref"; then
        P_WHY=$(reason "$work/logs/runway.$2"); return 1
    fi
    P_US=$M_US P_KIB=$M_KIB
    # A pull that exits 0 must have left the image complete: five unpacked layers, each a
    # diff/ dir with its info.json (the store's mark of a whole layer).
    local n=0 l
    for l in "$s"/data/layers/*/; do
        [ -d "$l/diff" ] && [ -s "$l/info.json" ] && n=$((n + 1))
    done
    if [ "$n" != 5 ]; then
        P_WHY="exit 0 but $n of 5 layers unpacked under $s/data/layers"; return 1
    fi
}

# Cold means "this image is absent", not "the tool's first run ever": a store is set up
# (untimed) before its cold pull, by a command that reads it. For podman that setup (bolt
# database, overlay feature probes with mounts) is ~150 ms; runway's is a few mkdirs;
# skopeo + umoci have no store.
init_podman() {
    # shellcheck disable=SC2046
    podman $(podman_args "$1") images -q >"$work/logs/podman.init" 2>&1 || true
}
init_skopeo() { :; }
init_runway() {
    [ ! -x "$RUNWAY_BIN" ] || "$RUNWAY_BIN" --data-root "$1/data" image ls -q >"$work/logs/runway.init" 2>&1 || true
}

tools=(podman skopeo runway)
declare -A failed=()

# Warm the tools' own binaries into the page cache: the first one timed must not pay for
# reading them from disk.
for b in podman skopeo umoci; do cat "$(command -v "$b")" >/dev/null; done
[ ! -f "$RUNWAY_BIN" ] || cat "$RUNWAY_BIN" >/dev/null

if [ "$podman_driver" = overlay ]; then
    mkdir -p "$work/probe"
    # shellcheck disable=SC2046
    if ! podman $(podman_args "$work/probe") info >"$work/logs/podman.probe" 2>&1; then
        log "podman: overlay driver does not work here, using vfs ($(reason "$work/logs/podman.probe"))"
        podman_driver=vfs
    fi
    unmount_under "$work/probe"
    rm -rf "$work/probe"
fi

# The harness's own floor: the probe (under timeout) running /bin/true.
for _ in $(seq 5); do
    measure "$work/logs/floor" true || true
    add_sample floor.us "$M_US"
    add_sample floor.kib "$M_KIB"
done

log "N=$N cold + $N warm pulls per tool, stores on $where, podman storage driver: $podman_driver"
for i in $(seq 0 $((N - 1))); do
    # Rotating order (A B C, B C A, C A B, ...) so drift and order effects cancel.
    for k in 0 1 2; do
        t=${tools[$(((i + k) % 3))]}
        [ -z "${failed[$t]:-}" ] || continue
        s=$work/store.$t
        rm -rf "$s"
        mkdir -p "$s/tmp"
        find "$work/shadow/var/lib/containers" -mindepth 1 -delete
        export TMPDIR=$s/tmp # big temporary files (podman's blob copies) stay in the store
        P_WHY=
        "init_$t" "$s"
        if "pull_$t" "$s" cold; then
            add_sample "$t.cold.us" "$P_US"
            add_sample "$t.cold.kib" "$P_KIB"
            cold_ms=$((P_US / 1000))
            if "pull_$t" "$s" warm; then
                add_sample "$t.warm.us" "$P_US"
                add_sample "$t.warm.kib" "$P_KIB"
                log "round $((i + 1))/$N $t: cold ${cold_ms} ms, warm $((P_US / 1000)) ms"
            else
                failed[$t]="warm: $P_WHY"
                log "$t: failed (${failed[$t]})"
                [ ! -s "$work/logs/$t.warm" ] || { log "its output:"; tail -n 20 "$work/logs/$t.warm" >&2; }
            fi
        else
            failed[$t]="cold: $P_WHY"
            log "$t: failed (${failed[$t]})"
            [ ! -s "$work/logs/$t.cold" ] || { log "its output:"; tail -n 20 "$work/logs/$t.cold" >&2; }
        fi
        export TMPDIR=$work
        unmount_under "$s"
        rm -rf "$s"
    done
done

# ---------------------------------------------------------------- the table

median() { # FILE -> median, or empty
    [ -s "$1" ] || return 0
    sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ms() { [ -n "$1" ] || { echo —; return; }; awk -v v="$1" 'BEGIN { x = v / 1000; printf(x >= 100 ? "%.0f" : "%.1f", x) }'; }
mib() { [ -n "$1" ] || { echo —; return; }; awk -v v="$1" 'BEGIN { printf("%.1f", v / 1024) }'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] || { echo —; return; }; awk -v a="$1" -v b="$2" 'BEGIN { printf("%.2f×", a / b) }'; }
verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "PASS" : "FAIL") }'; }

version_of() {
    case $1 in
    podman) podman --version 2>/dev/null ;;
    skopeo) echo "$(skopeo --version 2>/dev/null) + $(umoci --version 2>/dev/null)" ;;
    runway) if [ -x "$RUNWAY_BIN" ]; then "$RUNWAY_BIN" --version 2>/dev/null | head -n1; else echo "(no binary)"; fi ;;
    esac
}
label() {
    case $1 in
    podman) echo "podman pull ($podman_driver)" ;;
    skopeo) echo "skopeo copy + umoci unpack" ;;
    runway) echo "runway image pull" ;;
    esac
}

image_info=$(cat "$BENCH_PULL_CACHE"/image/.bench-image-v* 2>/dev/null | head -n1)
pc_wall=$(median "$work/samples/podman.cold.us")
pc_rss=$(median "$work/samples/podman.cold.kib")
{
    echo "## Image pull benchmark"
    echo
    echo "Machine: $(nproc) × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')  "
    echo "Load average at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)  "
    echo "Image: $image_info, OCI manifest; registry: $(docker-registry --version 2>/dev/null | awk '{ print $2, $3 }') on 127.0.0.1 (plain HTTP, own network namespace)  "
    echo "Stores and registry storage on: $where; podman storage driver: $podman_driver  "
    for t in "${tools[@]}"; do
        echo "$(label "$t"): $(version_of "$t" || true)  "
    done
    echo
    echo "Median of $N pulls each; lower is better. Cold: the image absent from a newly set-up store (podman's set up by an untimed \`podman images\`). Warm: the same pull again, everything present (skopeo + umoci: blobs present, \`umoci unpack\` into a new bundle, as it keeps no unpacked layers)."
    echo "Peak RSS: ru_maxrss of the command's process tree, i.e. its largest single process, not a sum (podman: itself or one of its \`storage-untar\` children; skopeo + umoci: the larger of the two)."
    echo
    echo "| tool | cold wall (ms) | cold peak RSS (MiB) | warm wall (ms) | warm peak RSS (MiB) | cold wall / podman | cold RSS / podman |"
    echo "|---|---|---|---|---|---|---|"
    for t in "${tools[@]}"; do
        cw=$(median "$work/samples/$t.cold.us")
        cr=$(median "$work/samples/$t.cold.kib")
        ww=$(median "$work/samples/$t.warm.us")
        wr=$(median "$work/samples/$t.warm.kib")
        name=$(label "$t")
        [ -z "${failed[$t]:-}" ] || name="$name: failed (${failed[$t]})"
        echo "| $name | $(ms "$cw") | $(mib "$cr") | $(ms "$ww") | $(mib "$wr") | $(ratio "$cw" "$pc_wall") | $(ratio "$cr" "$pc_rss") |"
    done
    echo
    rw=$(median "$work/samples/runway.cold.us")
    rr=$(median "$work/samples/runway.cold.kib")
    rww=$(median "$work/samples/runway.warm.us")
    if [ -n "$rw" ] && [ -n "$pc_wall" ] && [ -n "$rww" ]; then
        echo "Targets: cold wall ≤ 0.5× podman: $(ratio "$rw" "$pc_wall") $(verdict "$(awk -v a="$rw" -v b="$pc_wall" 'BEGIN { print (a <= 0.5 * b) }')");" \
            "cold peak RSS ≤ 0.25× podman: $(ratio "$rr" "$pc_rss") $(verdict "$(awk -v a="$rr" -v b="$pc_rss" 'BEGIN { print (a <= 0.25 * b) }')");" \
            "warm ≤ 50 ms: $(ms "$rww") ms $(verdict "$(awk -v a="$rww" 'BEGIN { print (a <= 50000) }')")"
    else
        echo "Targets (cold wall ≤ 0.5× podman, cold peak RSS ≤ 0.25× podman, warm ≤ 50 ms): not measured, runway did not complete."
    fi
    echo
    echo "Floor (the same probe running /bin/true): $(ms "$(median "$work/samples/floor.us")") ms, $(mib "$(median "$work/samples/floor.kib")") MiB.  "
    echo "Total benchmark time: $((SECONDS - start_s)) s."
} >"$work/table.md"

cat "$work/table.md"
if [ -n "${BENCH_OUT:-}" ]; then
    cp "$work/table.md" "$BENCH_OUT"
    log "table written to $BENCH_OUT"
fi
