#!/bin/sh
# Make a rootfs tarball from busybox-static, for `runway image import` on a
# machine that reaches no registry:
#
#   examples/busybox-image.sh FILE
#   runway image import -c 'CMD ["sh"]' FILE busybox
#   runway container run --rm busybox echo hello
#
# The rootfs is busybox-bundle.sh's (busybox, its applet links, /etc/passwd
# and /etc/group), made in a temporary dir.
set -eu

[ $# -eq 1 ] && [ -n "$1" ] || {
    echo "usage: $0 FILE" >&2
    exit 1
}
out=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/busybox-bundle.sh" "$tmp" >/dev/null
tar -C "$tmp/rootfs" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "rootfs tarball ready: $out"
