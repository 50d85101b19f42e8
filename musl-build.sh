#!/bin/sh
# Build the static binary we ship and refuse to call it done unless it
# really is static: a runtime that needs the host's libc cannot run in the
# minimal environments (initrds, distroless hosts) runway is meant for.
#
# It is the `ship` profile (opt-level s) with std rebuilt alongside runway
# (-Z build-std, enabled on the pinned stable toolchain by RUSTC_BOOTSTRAP):
# std compiled for size and with panics that abort at once, which drops
# std's panic printing and backtrace symbolizer (runway aborts on panic
# anyway and has none by design). That is about half the size of a plain
# `cargo build --release`, which the tests use and which stays on stable.
set -eu

target=x86_64-unknown-linux-musl
profile=ship
cd "$(dirname "$0")"

fail() {
    echo "musl-build.sh: $*" >&2
    exit 1
}

command -v cargo >/dev/null 2>&1 || fail "cargo not found (install rustup: https://rustup.rs)"
if command -v rustup >/dev/null 2>&1; then
    # Installs what rust-toolchain.toml pins (rustup >= 1.28; older ones
    # install it on `rustup show`).
    rustup toolchain install >&2 || rustup show >&2 || fail "cannot install the pinned toolchain"
    # rust-toolchain.toml lists the target and rust-src, but older rustups
    # ignore those lists.
    rustup target list --installed | grep -qx "$target" || rustup target add "$target" ||
        fail "rustup target add $target failed"
    rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src ||
        fail "rustup component add rust-src failed"
fi

# No unwind tables: with immediate-abort panics nothing ever unwinds, and
# .eh_frame was 0.3 MiB of the 2.5 MiB budget.
# Packed relative relocations (DT_RELR, binutils >= 2.38; musl's static-PIE
# start code applies them): the binary stays position-independent (ASLR)
# but its ~4000 pointer fix-ups take 1.3 KB instead of 96 KB of .rela.dyn.
RUSTC_BOOTSTRAP=1 RUSTFLAGS="${RUSTFLAGS:-} -Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Clink-arg=-Wl,-z,pack-relative-relocs" \
    cargo build --profile "$profile" --target "$target" \
    -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size ||
    fail "cargo build failed"

bin="${CARGO_TARGET_DIR:-target}/$target/$profile/runway"
[ -x "$bin" ] || fail "$bin: not built"

# `file` is not on minimal Debian; ldd (libc-bin) always is. Either must say static.
if command -v file >/dev/null 2>&1; then
    how=$(file -L "$bin")
else
    how=$(ldd "$bin" 2>&1 || true)
fi
case "$how" in
*"dynamically linked"* | *"=>"* | *"interpreter"*) fail "$bin is not static: $how" ;;
*"static-pie linked"* | *"statically linked"* | *"not a dynamic executable"*) ;;
*) fail "$bin: cannot tell whether it is static: $how" ;;
esac

bytes=$(wc -c <"$bin" | tr -d ' ')
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
echo "static binary: $bin"
echo "size: $bytes bytes ($mib MiB)"
