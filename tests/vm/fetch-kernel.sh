#!/bin/sh
# Put a Debian 6.1 kernel image at DEST/vmlinuz for the cgroup v2 VM test.
# The dev host is cgroup v1-hybrid, so v2 is exercised under qemu with this
# kernel; it has cgroup2, every v2 controller, BPF cgroup-device and the
# 8250 serial console built in, so the initramfs needs no modules.
#
# usage: tests/vm/fetch-kernel.sh [DEST]   (default: target/vm-cache)
# Needs apt-get (package lists updated), dpkg-deb and tar; installs nothing.
set -eu

dest=${1:-target/vm-cache}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

if [ -s "$dest/vmlinuz" ]; then
    echo "kernel already at $dest/vmlinuz"
    exit 0
fi

# Prefer the 6.1 ABI the meta package names (Debian bumps NN in
# linux-image-6.1.0-NN-amd64 on every point release, so ask apt rather than
# hard-code it); else the newest 6.1 apt knows; else whatever the meta
# package points at (any Debian kernel has what the VM needs built in).
pkg=${RUNWAY_VM_KERNEL_PKG:-}
meta=$(apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
if [ -z "$pkg" ]; then
    case $meta in
    linux-image-6.1.0-*) pkg=$meta ;;
    *)
        pkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
            grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -n 1)
        pkg=${pkg:-$meta}
        ;;
    esac
fi
if [ -z "$pkg" ]; then
    echo "fetch-kernel: no linux-image-*-amd64 known to apt (run apt-get update?)" >&2
    exit 1
fi

work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# As root, apt would hand the download to its _apt user, who cannot write
# into our private temp dir.
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
deb=$(ls "$work"/*.deb)
# Only the image: the modules would be hundreds of MB we never load.
mkdir "$work/x"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" --wildcards './boot/vmlinuz-*'
for img in "$work"/x/boot/vmlinuz-*; do break; done
[ -f "$img" ] || { echo "fetch-kernel: no boot/vmlinuz-* in $pkg" >&2; exit 1; }
cp "$img" "$dest/vmlinuz.tmp"
mv "$dest/vmlinuz.tmp" "$dest/vmlinuz"
echo "$pkg" > "$dest/vmlinuz.pkg"
echo "kernel $pkg at $dest/vmlinuz"
