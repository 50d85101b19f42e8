#!/bin/sh
# Build the initramfs of the cgroup v2 test VM.
#
# usage: tests/vm/build-initramfs.sh OUT RUNWAY BUSYBOX [TREE]
#   OUT      the newc cpio archive to write (uncompressed: the kernel takes
#            it as is and we save a gzip pass under TCG)
#   RUNWAY   a static runway binary
#   BUSYBOX  a static busybox (Debian's busybox-static)
#   TREE     optional directory copied over the image root; the test
#            harness puts its checks there (checks/NN-name/run.sh + bundles,
#            checks-rootfs/ for the ones that run before switch_root)
#
# Layout: /init (init.sh), /lib/vmcheck.sh, /bin/{busybox,applets,runway},
# /rootfs (a busybox root shared read-only by the containers).
set -eu

[ $# -ge 3 ] || { echo "usage: $0 OUT RUNWAY BUSYBOX [TREE]" >&2; exit 2; }
out=$1
runway=$2
busybox=$3
tree=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
command -v cpio >/dev/null || { echo "build-initramfs: cpio not found" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/runway-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# busybox --list names "busybox" too: linking it would replace the binary.
applets() {
    "$busybox" --list | while read -r a; do
        [ "$a" = busybox ] || [ -z "$a" ] || ln -s busybox "$1/$a"
    done
}

mkdir -p "$stage/bin" "$stage/lib" "$stage/proc" "$stage/sys" "$stage/dev" \
    "$stage/run" "$stage/tmp" "$stage/etc" "$stage/root"
cp "$busybox" "$stage/bin/busybox"
chmod 755 "$stage/bin/busybox"
applets "$stage/bin"
cp "$runway" "$stage/bin/runway"
chmod 755 "$stage/bin/runway"
cp "$here/init.sh" "$stage/init"
chmod 755 "$stage/init"
cp "$here/vmcheck.sh" "$stage/lib/vmcheck.sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
echo 'root:x:0:' >"$stage/etc/group"

r=$stage/rootfs
mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/shared" "$r/root"
cp "$busybox" "$r/bin/busybox"
chmod 755 "$r/bin/busybox"
applets "$r/bin"
cp "$stage/etc/passwd" "$stage/etc/group" "$r/etc/"

if [ -n "$tree" ]; then
    cp -a "$tree/." "$stage/"
fi

tmp_out="$out.tmp"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp_out"
mv "$tmp_out" "$out"
