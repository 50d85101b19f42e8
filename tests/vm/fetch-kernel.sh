#!/bin/sh
# Put a Debian 6.1 kernel image at DEST/vmlinuz for the cgroup v2 VM test.
# The dev host is cgroup v1-hybrid, so v2 is exercised under qemu with this
# kernel; it has cgroup2, every v2 controller, BPF cgroup-device and the
# 8250 serial console built in, so the initramfs needs no modules.
#
# usage: tests/vm/fetch-kernel.sh [DEST]   (default: target/vm-cache)
# Needs apt-get (package lists updated) and dpkg; installs nothing.
set -eu

dest=${1:-target/vm-cache}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

if [ -s "$dest/vmlinuz" ]; then
    echo "kernel already at $dest/vmlinuz"
    exit 0
fi

# The meta package names the current ABI (linux-image-6.1.0-NN-amd64); ask
# apt rather than hard-coding NN, which Debian bumps on every point release.
pkg=${RUNWAY_VM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n 1)
fi
if [ -z "$pkg" ]; then
    echo "fetch-kernel: no linux-image-6.1.0-*-amd64 known to apt (run apt-get update?)" >&2
    exit 1
fi

work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$pkg" >/dev/null)
deb=$(ls "$work"/*.deb)
dpkg -x "$deb" "$work/x"
img=$(ls "$work"/x/boot/vmlinuz-* | head -n 1)
cp "$img" "$dest/vmlinuz.tmp"
mv "$dest/vmlinuz.tmp" "$dest/vmlinuz"
echo "$pkg" > "$dest/vmlinuz.pkg"
echo "kernel $pkg at $dest/vmlinuz"
