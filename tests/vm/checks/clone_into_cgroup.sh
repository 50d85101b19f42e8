# clone3(CLONE_INTO_CGROUP): the init is born in the container cgroup, so
# at `create` (before start) it is already there. That is also true of a
# clone-then-move runtime, so this is a proxy; the debug log is quoted for
# the reader.
id=cic
runway --debug --log /tmp/cic.log create --bundle ./b "$id" >/tmp/cic.out 2>&1
rc=$?
pid=$(state_field $id pid)
st=$(state_field $id status)
cg=$(cgroup_of "${pid:-0}")
note=$(grep -i -o 'clone_into_cgroup[^"]*' /tmp/cic.log 2>/dev/null | head -n 1)
if [ "$rc" -eq 0 ] && [ "$st" = created ] && [ "$cg" = /vmtest/cic ]; then
    pass clone-into-cgroup "init $pid in $cg at create; log: ${note:-no mention}"
else
    fail clone-into-cgroup "rc=$rc status=$st init $pid in '$cg' (want /vmtest/cic) $(cat /tmp/cic.out)"
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
rmdir /sys/fs/cgroup/vmtest 2>/dev/null
