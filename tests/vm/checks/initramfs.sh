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
