#!/bin/sh
# Run every fuzz target for SECONDS each; non-zero exit on any crash, hang
# or failed build. Known reproducers in regressions/<target>-*.bin run
# first. New corpus entries go to target/work/<target> (not to git: merge
# them by hand with `cargo +nightly fuzz cmin`).
#
#   fuzz/run-all.sh SECONDS [TARGET...]
#
# FUZZ_TIMEOUT (seconds per input, default 10): raise it for long runs at
# low priority on a busy machine, where a starved input can look hung.
# FUZZ_SANITIZER (default address): `none` for long runs. The targets run
# safe code only (the few unsafe blocks are syscalls the harnesses never
# reach), and ASan's memcmp/memcpy interceptors cost seccomp_diff 2-3x.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); uses nightly if installed.
set -u

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
secs=$1
shift
case $secs in '' | *[!0-9]*) usage ;; esac

cd "$(dirname "$0")" || exit 2
targets=${*:-config argv seccomp_diff state parsers images http engine net registry}

# The repository's .cargo/config.toml says musl; libFuzzer needs gnu.
triple=x86_64-unknown-linux-gnu
# Nightly when installed; otherwise the pinned toolchain with its unstable
# flags unlocked (cargo-fuzz passes -Z sanitizer options), which is what a
# machine without nightly (CI) has.
if rustup run nightly rustc --version >/dev/null 2>&1; then
    set -- +nightly
else
    export RUSTC_BOOTSTRAP=1
    set --
fi
cargo "$@" fuzz build --target "$triple" --sanitizer "${FUZZ_SANITIZER:-address}" || {
    echo "run-all: build failed" >&2
    exit 1
}
# Absolute, so `pkill -STOP -f fuzz/target` pauses the fuzzers during benchmarks.
bin=$PWD/target/$triple/release
work=${FUZZ_WORK:-target/work}
stats=target/stats.log

failed=""
for t in $targets; do
    mkdir -p "$work/$t" "artifacts/$t" "corpus/$t"
    : >"$work/$t.regress.log"
    bad=0
    for r in regressions/"$t"-*.bin; do
        [ -e "$r" ] || continue
        if ! "$bin/$t" -runs=1 "$r" >>"$work/$t.regress.log" 2>&1; then
            echo "run-all: $t: regression $r still crashes:" >&2
            grep -m 2 -A 1 panicked "$work/$t.regress.log" | tail -n 2 >&2
            bad=1
        fi
    done
    log=$work/$t.log
    # libFuzzer stops itself at -max_total_time; the outer timeout only
    # catches a harness that stops answering altogether.
    timeout -k 10 $((secs + 120)) "$bin/$t" \
        -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        "$work/$t" "corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "$(date -u +%FT%TZ) $t secs=$secs execs=${execs:-?} rc=$rc" >>"$stats"
    if [ $rc -ne 0 ] || [ $bad -ne 0 ]; then
        [ $rc -ne 0 ] || echo "run-all: $t: fuzzing ok, ${execs:-?} executions, but regressions crash" >&2
        [ $rc -eq 0 ] || {
            echo "run-all: $t: FAILED (exit $rc) after ${execs:-?} executions; log $log:" >&2
            grep -E 'panicked|ERROR|SUMMARY|Test unit written|Base64' "$log" | head -n 20 >&2
        }
        failed="$failed $t"
    else
        echo "run-all: $t: ok, ${execs:-?} executions in ${secs}s"
    fi
done
rm -rf "${TMPDIR:-/tmp}/runway-fuzz-bundle"

if [ -n "$failed" ]; then
    echo "run-all: failing targets:$failed" >&2
    exit 1
fi
