# The v2 device filter (eBPF): deny-all plus c 1:3 plus runc's defaults.
# CAP_MKNOD and CAP_SYS_RAWIO are granted so a denial can only come from
# the device cgroup, and /dev/mem is opened on the host side first to show
# the device itself works.
if head -c 1 /dev/mem >/dev/null 2>&1; then
    pass devices-host-control "/dev/mem readable outside"
else
    fail devices-host-control "/dev/mem not readable even outside: $(oneline head -c 1 /dev/mem)"
fi
cat >inside.sh <<'IN'
try() {
    what=$1
    shift
    if err=$("$@" 2>&1 >/dev/null); then echo "$what ok"; else echo "$what denied $err"; fi
}
try hostmem-open head -c 1 /dev/hostmem
try mknod mknod /dev/xmem c 1 1
try xmem-open head -c 1 /dev/xmem
try null-write sh -c 'echo x >/dev/null'
try zero-read head -c 1 /dev/zero
try urandom-read head -c 1 /dev/urandom
IN
out=$(runway run --bundle ./b devs 2>&1)
rc=$?
res() { echo "$out" | sed -n "s/^$1 //p"; }
r=$(res hostmem-open)
case $r in
denied*"not permitted"*) pass devices-deny-open "c 1:1 bind-mounted: $r" ;;
*) fail devices-deny-open "c 1:1 bind-mounted: '$r' (want denied: Operation not permitted) rc=$rc" ;;
esac
r=$(res xmem-open)
case $r in
denied*) pass devices-deny-mknod-open "mknod: $(res mknod); open: $r" ;;
*) fail devices-deny-mknod-open "mknod: $(res mknod); open: '$r' (want denied)" ;;
esac
r=$(res null-write)
expect_eq devices-allow-listed "ok" "$r"
r=$(res zero-read) u=$(res urandom-read)
expect_eq devices-allow-default "ok ok" "$r $u"
[ "$rc" -eq 0 ] || echo "output: $out"
