# clone3(CLONE_INTO_CGROUP): the init is born in the container cgroup.
#
# Proxy: at `create` (before start) the init is already there. A runtime
# that clones and then moves the child gets there too, so the strict check
# runs `runway create` from a cgroup whose pids.max is 1 (runway itself):
# a fork charged to runway's own cgroup fails with EAGAIN, while a clone
# into the container cgroup is charged there and succeeds.
id=cic
runway --debug --log /tmp/cic.log create --bundle ./b "$id" >/tmp/cic.out 2>&1
rc=$?
pid=$(state_field $id pid)
st=$(state_field $id status)
cg=$(cgroup_of "${pid:-0}")
if [ "$rc" -eq 0 ] && [ "$st" = created ] && [ "$cg" = /vmtest/cic ]; then
    pass clone-into-cgroup "init $pid in $cg at create"
else
    fail clone-into-cgroup "rc=$rc status=$st init $pid in '$cg' (want /vmtest/cic) $(cat /tmp/cic.out)"
fi
# Reported, not asserted: whether the debug log says which way it went.
note=$(grep -i -o '[^"]*clone_into_cgroup[^"]*' /tmp/cic.log 2>/dev/null | head -n 1)
if [ -n "$note" ]; then
    pass clone-into-cgroup-log "$note"
else
    fail clone-into-cgroup-log "runway --debug does not mention CLONE_INTO_CGROUP"
fi
existed=no
[ -d /sys/fs/cgroup/vmtest/cic ] && existed=yes
runway delete --force "$id" >/dev/null 2>&1
if [ "$existed" = no ]; then
    fail clone-into-cgroup-cleanup "/sys/fs/cgroup/vmtest/cic never existed"
elif [ -d /sys/fs/cgroup/vmtest/cic ]; then
    fail clone-into-cgroup-cleanup "/sys/fs/cgroup/vmtest/cic left"
else
    pass clone-into-cgroup-cleanup "gone"
fi

id=cic2
runner=/sys/fs/cgroup/vmtest-runner
mkdir -p "$runner"
echo 1 >"$runner/pids.max"
# The shell moves itself in and becomes runway: one process, no room for
# a child of its own.
sh -c "echo \$\$ >$runner/cgroup.procs && exec runway create --bundle ./b2 $id" >/tmp/cic2.out 2>&1
rc=$?
pid=$(state_field $id pid)
cg=$(cgroup_of "${pid:-0}")
if [ "$rc" -eq 0 ] && [ "$cg" = /vmtest/cic2 ]; then
    pass clone-into-cgroup-strict "created from a cgroup with pids.max=1; init in $cg"
else
    fail clone-into-cgroup-strict "rc=$rc init '$pid' in '$cg': $(head -c 200 /tmp/cic2.out)"
fi
runway delete --force "$id" >/dev/null 2>&1
rmdir "$runner" /sys/fs/cgroup/vmtest 2>/dev/null
