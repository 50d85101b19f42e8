# runway on the initramfs itself, where pivot_root(2) cannot work: the
# --no-pivot path (MS_MOVE + chroot) is how initramfs users run containers.
out=$(runway run --no-pivot --bundle ./b rootfs-np 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = "hello from the initramfs" ]; then
    pass initramfs-no-pivot "$out"
else
    fail initramfs-no-pivot "rc=$rc out=$out"
fi
runway delete --force rootfs-np >/dev/null 2>&1

# Without --no-pivot, pivot_root(2) fails with EINVAL on rootfs. Reported,
# not asserted: PASS when runway copes (falls back) or its error says why.
out=$(runway run --bundle ./b rootfs-pv 2>&1)
rc=$?
case "$rc $out" in
"0 hello from the initramfs") pass initramfs-pivot-info "ran without --no-pivot" ;;
*pivot*) pass initramfs-pivot-info "rc=$rc: $out" ;;
*) fail initramfs-pivot-info "rc=$rc, error does not mention pivot_root/--no-pivot: $out" ;;
esac
runway delete --force rootfs-pv >/dev/null 2>&1
