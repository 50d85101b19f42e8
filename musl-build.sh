#!/bin/sh
# Build the static release binary we ship and refuse to call it done unless it
# really is static: a runtime that needs the host's libc cannot run in the
# minimal environments (initrds, distroless hosts) runway is meant for.
set -eu

target=x86_64-unknown-linux-musl
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
    # rust-toolchain.toml lists the target, but older rustups ignore that list.
    rustup target list --installed | grep -qx "$target" || rustup target add "$target" ||
        fail "rustup target add $target failed"
fi

cargo build --release --target "$target" || fail "cargo build failed"

bin="${CARGO_TARGET_DIR:-target}/$target/release/runway"
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
