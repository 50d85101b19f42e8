# runway on the initramfs itself, where pivot_root(2) cannot work: the
# --no-pivot path (MS_MOVE + chroot) is how initramfs users run containers,
# and without the flag runway must notice and take that path by itself.
echo "root mount: $(head -n 1 /proc/self/mountinfo)"
out=$(runway run --no-pivot --bundle ./b rootfs-np 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = "hello from the initramfs" ]; then
    pass initramfs-no-pivot "$out"
else
    fail initramfs-no-pivot "rc=$rc out=$out"
fi
runway delete --force rootfs-np >/dev/null 2>&1

# No flag, cgroup v2 limits seen from inside (cgroup namespace), and the
# initramfs's own mount table as it was once the container is gone.
before=$(cat /proc/self/mountinfo)
out=$(runway run --bundle ./lim rootfs-lim 2>&1 | tr '\n' ' ')
expect_eq initramfs-pivot-fallback "67108864 20 hello from the initramfs " "$out"
runway delete --force rootfs-lim >/dev/null 2>&1
after=$(cat /proc/self/mountinfo)
if [ "$before" = "$after" ]; then
    pass initramfs-mounts-unchanged "$(echo "$after" | wc -l) mounts"
else
    fail initramfs-mounts-unchanged "$(echo "$after" | grep -v -F -x "$before" | head -n 3)"
fi
