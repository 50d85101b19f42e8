#!/bin/busybox sh
# /init of the runway test VM (cgroup v2). Runs every check under /checks and
# reports on the serial console, one line per result:
#   RUNWAY-CHECK <name> PASS|FAIL <detail>
# then RUNWAY-VM-DONE and powers off. The host-side harness reads those.
#
# Stage 1 runs on the initramfs (rootfs), where pivot_root(2) is impossible:
# checks under /checks-rootfs exercise that case (--no-pivot). Stage 2 copies
# the tree to a tmpfs and switch_roots into it so containers can pivot_root.
export PATH=/bin
export HOME=/

# A dead init panics the kernel; with panic=-1 and -no-reboot that ends
# qemu at once, and the harness reports the missing RUNWAY-VM-DONE.
mount_base() {
    mkdir -p /proc /sys /dev /run /tmp
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev 2>/dev/null
    mount -t tmpfs -o mode=755 tmpfs /run
    mount -t tmpfs -o mode=1777 tmpfs /tmp
}

# The kernel's built-in cpio gives /dev/console; make sure stdio goes to it
# even if an unusual kernel did not open it for us.
console() {
    [ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
}

# cgroup v2 as a systemd-less host has it: every controller handed down one
# level so runway's cgroups can use them.
cgroup2() {
    grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts && return 0
    mkdir -p /sys/fs/cgroup
    if mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup; then
        for c in cpu memory pids io cpuset hugetlb misc rdma; do
            grep -qw "$c" /sys/fs/cgroup/cgroup.controllers &&
                echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control
        done
        echo "RUNWAY-VM-CGROUP2 $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    else
        echo "RUNWAY-VM-CGROUP2 mount failed"
    fi
}

# Each check is a directory with run.sh (sourced helpers in /lib/vmcheck.sh)
# and its bundles. A check that hangs is cut off so one bug cannot eat the
# whole VM time budget.
run_checks() {
    dir=$1
    [ -d "$dir" ] || return 0
    for c in "$dir"/*/; do
        c=${c%/}
        [ -f "$c/run.sh" ] || continue
        name=${c##*/}
        name=${name#*-}
        t=$(cat "$c/timeout" 2>/dev/null || echo 30)
        out=/tmp/check-$name.out
        t0=$(cut -d' ' -f1 /proc/uptime)
        (cd "$c" && CHECK_DIR=$c timeout "$t" sh -c '. /lib/vmcheck.sh; . ./run.sh') >"$out" 2>&1
        rc=$?
        echo "RUNWAY-VM-TIME $name $t0 $(cut -d' ' -f1 /proc/uptime)"
        grep '^RUNWAY-CHECK ' "$out"
        bad=no
        if [ "$rc" -eq 143 ] || [ "$rc" -eq 124 ]; then
            echo "RUNWAY-CHECK $name-script FAIL timed out after ${t}s"
            bad=yes
        elif ! grep -q '^RUNWAY-CHECK ' "$out"; then
            echo "RUNWAY-CHECK $name-script FAIL no result (exit status $rc)"
            bad=yes
        fi
        grep -q '^RUNWAY-CHECK [^ ]* FAIL' "$out" && bad=yes
        # The rest of the output is context for failures, indented so the
        # host parser never takes it for a result.
        if [ "$bad" = yes ]; then
            grep -v '^RUNWAY-CHECK ' "$out" | tail -n 40 | sed -e 's/^/  | /'
        fi
        # Leftovers of a failed check must not disturb the next one.
        for id in $(runway list -q 2>/dev/null); do
            runway delete --force "$id" >/dev/null 2>&1
        done
    done
}

if [ "$1" != stage2 ]; then
    mount_base
    console
    echo "RUNWAY-VM-BOOTED $(uname -r)"
    cgroup2
    run_checks /checks-rootfs
    # Move to a tmpfs root: pivot_root needs a root mount that has a parent.
    mkdir -p /newroot
    mount -t tmpfs -o mode=755 tmpfs /newroot
    for d in /*; do
        case $d in
        /newroot | /proc | /sys | /dev | /run | /tmp) ;;
        *) cp -a "$d" /newroot/ ;;
        esac
    done
    # The console is open on /dev: move the mounts rather than unmount.
    for m in proc sys dev run tmp; do
        mkdir -p "/newroot/$m"
        mount --move "/$m" "/newroot/$m"
    done
    # shellcheck disable=SC2093 # the lines after it run only if exec fails
    exec switch_root /newroot /init stage2
    echo "RUNWAY-CHECK switch-root FAIL exec switch_root failed"
    echo RUNWAY-VM-DONE
    poweroff -f
fi

[ -e /proc/self ] || mount_base
console
cgroup2
run_checks /checks
echo RUNWAY-VM-DONE
poweroff -f
