#!/bin/sh
# Make a runnable OCI bundle at DIR from busybox-static, so a fresh machine
# can try runway without pulling an image.
#
#   examples/busybox-bundle.sh DIR
#
# DIR/rootfs gets /bin/busybox and its applet links; DIR/config.json is what
# `runway spec` writes, edited to run without a terminal and print something.
# The runtime used for `spec` is $RUNWAY, else the built static binary, else
# `runway` on PATH (RUNWAY=runc works too: the default specs are the same).
set -eu

fail() {
    echo "busybox-bundle.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] && [ -n "$1" ] || fail "usage: $0 DIR"
dir=$1
repo=$(cd "$(dirname "$0")/.." && pwd)

# Debian's dynamic `busybox` package also installs /bin/busybox; inside the
# container there is no libc for it, so only the static one will do.
is_static() {
    [ -x "$1" ] || return 1
    case "$(ldd "$1" 2>&1 || true)" in
    *"not a dynamic executable"* | *"statically linked"*) return 0 ;;
    *) return 1 ;;
    esac
}

busybox=/bin/busybox
if ! is_static "$busybox"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "busybox-bundle.sh: installing busybox-static" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >&2 ||
            fail "apt-get install busybox-static failed"
    fi
    is_static "$busybox" || fail "$busybox is missing or not static: apt-get install busybox-static"
fi

runway=${RUNWAY:-}
if [ -z "$runway" ]; then
    # musl-build.sh's binary (ship), else a `cargo build --release` one.
    for cand in "${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/ship/runway" \
        "${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/release/runway" \
        "$repo/target/x86_64-unknown-linux-musl/ship/runway" \
        "$repo/target/x86_64-unknown-linux-musl/release/runway"; do
        if [ -x "$cand" ]; then
            runway=$cand
            break
        fi
    done
fi
if [ -z "$runway" ]; then
    runway=$(command -v runway 2>/dev/null) || fail "runway not found: run ./musl-build.sh or set RUNWAY"
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -rf "$dir/rootfs"
rm -f "$dir/config.json"

root=$dir/rootfs
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/etc" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    # --list names busybox itself; linking that would replace the binary.
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
# So `id` and `ls -l` show names instead of numbers.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

"$runway" spec --bundle "$dir" || fail "$runway spec --bundle $dir failed"
[ -s "$dir/config.json" ] || fail "$runway spec wrote no $dir/config.json"

# The default spec asks for a terminal (needs a console socket when detached)
# and runs an interactive `sh`; the token "sh" appears only in process.args.
# sed rather than jq: a fresh Debian has no jq.
tmp=$dir/config.json.tmp
sed -e 's/"terminal": *true/"terminal": false/' \
    -e 's|"sh"|"sh", "-c", "echo hello from $(hostname); id"|' \
    "$dir/config.json" >"$tmp"
mv "$tmp" "$dir/config.json"
grep -q '"terminal": *false' "$dir/config.json" || fail "could not set terminal=false in $dir/config.json"
grep -q 'echo hello from' "$dir/config.json" || fail "could not set process.args in $dir/config.json"

echo "bundle ready: $dir"
echo "run it:       $runway run --bundle $dir demo"
