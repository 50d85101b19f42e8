#!/bin/bash
# pull-image.sh DIR: make the pull benchmark's test image as an OCI image layout in DIR
# (tag "latest"), unless DIR already holds one made by this version of the script.
#
# About 100 MiB unpacked in 5 gzip layers, shaped like a real application image:
#   1. base:   static busybox and its applet links, /etc/passwd, /etc/group (~2 MiB)
#   2. python: the host's /usr/lib/python3.11 (or python3*), ~25 MiB of many small .py/.pyc
#   3. libs:   the host's /usr/lib/x86_64-linux-gnu shared objects, ~25 MiB
#   4. share:  the host's /usr/share (locales, docs: partly already gzip'd), ~25 MiB
#   5. app:    12 MiB of random bytes (compressed assets) + 13 MiB of repetitive log-like text
# Host files give real file-size distributions and compressibility; the content is not the
# same on every machine, so compare tools within one run (as pull.sh does), not across hosts.
#
# Plain tar + gzip + sha256sum + JSON: no tool under test builds its own input. Tar entries
# are owned by 0:0 with one fixed mtime; gzip -6 -n is what docker's and skopeo's Go gzip
# default to.
set -eu

# Bump when the content recipe changes: an older cached image is then rebuilt.
version=1
dir=${1:?usage: pull-image.sh DIR}
budget=$((25 * 1024 * 1024))

if [ -s "$dir/.bench-image-v$version" ]; then
    exit 0
fi
rm -rf "$dir" "$dir.tmp"
mkdir -p "$dir.tmp/blobs/sha256" "$dir.tmp/stage"
out=$dir.tmp
trap 'rm -rf "$out"' EXIT

log() { echo "pull-image: $*" >&2; }

# Copy regular files of SRC (sorted by path, each < 4 MiB so no single file dominates)
# into stage dir DEST, keeping their paths, until BUDGET bytes.
copy_budget() {
    src=$1 dest=$2 limit=$3
    [ -d "$src" ] || return 0
    find "$src" -xdev -type f -size -4M -printf '%s\t%p\n' 2>/dev/null | sort -k2 |
        awk -F'\t' -v b="$limit" '{ if (t + $1 > b) exit; t += $1; print $2 }' |
        while IFS= read -r f; do
            [ -r "$f" ] && cp -a --parents "$f" "$dest" 2>/dev/null || true
        done
}

layer_diffs=()
layer_digests=()
layer_sizes=()
history=()
tar_bytes=0
files=0

# Tar stage dir $1 as a layer, gzip it into the layout, record its ids.
add_layer() {
    name=$1 stage=$2
    tar --format=pax --pax-option=delete=atime,delete=ctime --sort=name \
        --numeric-owner --owner=0 --group=0 --mtime='2026-01-01 00:00:00Z' \
        -C "$stage" -cf "$out/layer.tar" .
    diff=$(sha256sum "$out/layer.tar" | cut -d' ' -f1)
    gzip -6 -n <"$out/layer.tar" >"$out/layer.tar.gz"
    hex=$(sha256sum "$out/layer.tar.gz" | cut -d' ' -f1)
    size=$(stat -c %s "$out/layer.tar.gz")
    tsize=$(stat -c %s "$out/layer.tar")
    tar_bytes=$((tar_bytes + tsize))
    files=$((files + $(find "$stage" -mindepth 1 | wc -l)))
    log "layer $name: $((tsize / 1024)) KiB tar, $((size / 1024)) KiB gzip"
    mv "$out/layer.tar.gz" "$out/blobs/sha256/$hex"
    rm -f "$out/layer.tar"
    layer_diffs+=("sha256:$diff")
    layer_digests+=("sha256:$hex")
    layer_sizes+=("$size")
    history+=("{\"created\":\"2026-01-01T00:00:00Z\",\"created_by\":\"bench layer $name\"}")
    rm -rf "$stage"
}

bb=$(command -v busybox || true)
if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
    for c in /bin/busybox /usr/bin/busybox; do
        [ -x "$c" ] && bb=$c && break
    done
fi
[ -n "$bb" ] || { log "needs busybox (busybox-static)"; exit 1; }

# 1. base
s=$out/stage/base
mkdir -p "$s/bin" "$s/sbin" "$s/usr/bin" "$s/usr/sbin" "$s/etc" "$s/tmp" "$s/root" "$s/proc" "$s/sys" "$s/dev"
chmod 1777 "$s/tmp"
chmod 700 "$s/root"
cp "$bb" "$s/bin/busybox"
for a in $("$bb" --list); do
    [ "$a" = busybox ] || ln -s busybox "$s/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$s/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$s/etc/group"
add_layer base "$s"

# 2. python
s=$out/stage/python
mkdir -p "$s"
py=
for c in /usr/lib/python3.11 /usr/lib/python3*; do
    [ -d "$c" ] && py=$c && break
done
[ -n "$py" ] && copy_budget "$py" "$s" "$budget"
add_layer python "$s"

# 3. libs
s=$out/stage/libs
mkdir -p "$s"
copy_budget /usr/lib/x86_64-linux-gnu "$s" "$budget"
add_layer libs "$s"

# 4. share
s=$out/stage/share
mkdir -p "$s"
copy_budget /usr/share "$s" "$budget"
add_layer share "$s"

# 5. app: incompressible assets and very compressible logs
s=$out/stage/app
mkdir -p "$s/opt/app/assets" "$s/var/log/app"
for i in 1 2 3; do
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$s/opt/app/assets/blob$i.bin"
done
awk 'BEGIN { srand(15); n = 0
    while (n < 13 * 1024 * 1024) {
        l = sprintf("2026-01-01T%02d:%02d:%02d.%06dZ INFO worker-%d request id=%08x path=/api/v1/items/%d status=200 bytes=%d\n",
            int(rand()*24), int(rand()*60), int(rand()*60), int(rand()*1e6), int(rand()*8),
            int(rand()*4294967295), int(rand()*100000), int(rand()*65536))
        printf "%s", l > "'"$s"'/var/log/app/app.log"; n += length(l) } }'
add_layer app "$s"

rmdir "$out/stage"

# Config, manifest, index.
diffs=$(IFS=,; printf '"%s"' "${layer_diffs[*]}" | sed 's/,/","/g')
hist=$(IFS=,; echo "${history[*]}")
printf '{"created":"2026-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
    "$diffs" "$hist" >"$out/config.json"
chex=$(sha256sum "$out/config.json" | cut -d' ' -f1)
csize=$(stat -c %s "$out/config.json")
mv "$out/config.json" "$out/blobs/sha256/$chex"

layers=
for i in "${!layer_digests[@]}"; do
    [ -z "$layers" ] || layers="$layers,"
    layers="$layers{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"${layer_digests[$i]}\",\"size\":${layer_sizes[$i]}}"
done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$chex" "$csize" "$layers" >"$out/manifest.json"
mhex=$(sha256sum "$out/manifest.json" | cut -d' ' -f1)
msize=$(stat -c %s "$out/manifest.json")
mv "$out/manifest.json" "$out/blobs/sha256/$mhex"

printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$mhex" "$msize" >"$out/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
# What pull.sh prints about the image.
comp=$(IFS=+; echo $((${layer_sizes[*]})))
echo "5 gzip layers, $((comp / 1024 / 1024)) MiB compressed, $((tar_bytes / 1024 / 1024)) MiB of tar, $files files" \
    >"$out/.bench-image-v$version"

mv "$out" "$dir"
trap - EXIT
log "made $dir"
