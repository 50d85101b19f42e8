# Sourced by bench/containers.sh and bench/networks.sh: their test image.
#
# busybox_layout WORK: one gzip layer (static busybox with its applet links, /etc/passwd
# and /etc/group) as an OCI image layout (tag "latest") in WORK/image, made with tar, gzip,
# sha256sum and printf'd JSON so that no engine makes its own input; the unpacked tree
# stays in WORK/rootfs (a bundle's rootfs). Sets $s (the tree) and $img (the layout);
# needs the caller's log().
busybox_layout() {
    local work=$1 bb= c a diff lhex lsize chex csize mhex msize
    for c in "$(command -v busybox || true)" /bin/busybox /usr/bin/busybox; do
        [ -n "$c" ] && [ -x "$c" ] || continue
        if file -L "$c" 2>/dev/null | grep -q 'statically linked'; then bb=$c; break; fi
    done
    [ -n "$bb" ] || { log "needs a static busybox (busybox-static)"; return 1; }
    s=$work/rootfs
    mkdir -p "$s/bin" "$s/etc" "$s/tmp" "$s/root" "$s/proc" "$s/sys" "$s/dev"
    chmod 1777 "$s/tmp"
    chmod 700 "$s/root"
    cp "$bb" "$s/bin/busybox"
    for a in $("$bb" --list); do
        [ "$a" = busybox ] || ln -s busybox "$s/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$s/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$s/etc/group"
    img=$work/image
    mkdir -p "$img/blobs/sha256"
    tar --format=pax --pax-option=delete=atime,delete=ctime --sort=name --numeric-owner \
        --owner=0 --group=0 --mtime='2026-01-01 00:00:00Z' -C "$s" -cf "$work/layer.tar" .
    diff=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
    gzip -6 -n <"$work/layer.tar" >"$work/layer.tar.gz"
    lhex=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
    lsize=$(stat -c %s "$work/layer.tar.gz")
    mv "$work/layer.tar.gz" "$img/blobs/sha256/$lhex"
    rm -f "$work/layer.tar"
    printf '{"created":"2026-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2026-01-01T00:00:00Z","created_by":"bench busybox"}]}' \
        "$diff" >"$work/config.json"
    chex=$(sha256sum "$work/config.json" | cut -d' ' -f1)
    csize=$(stat -c %s "$work/config.json")
    mv "$work/config.json" "$img/blobs/sha256/$chex"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$chex" "$csize" "$lhex" "$lsize" >"$work/manifest.json"
    mhex=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
    msize=$(stat -c %s "$work/manifest.json")
    mv "$work/manifest.json" "$img/blobs/sha256/$mhex"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
        "$mhex" "$msize" >"$img/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$img/oci-layout"
}
