# linux.resources through the v2 files, read from outside while the
# container is created, plus the init's cpuset as the kernel applies it.
id=res
cg=/sys/fs/cgroup/vmtest/resources
runway create --bundle ./b "$id" >/tmp/res.create 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail resources-create "rc=$rc $(cat /tmp/res.create)"
rd() {
    if [ -r "$cg/$1" ]; then tr '\n' ' ' <"$cg/$1" | sed 's/ $//'; else echo "<absent>"; fi
}
expect_eq res-memory-max 67108864 "$(rd memory.max)"
expect_eq res-memory-low 33554432 "$(rd memory.low)"
expect_eq res-memory-swap-max 33554432 "$(rd memory.swap.max)"
expect_eq res-unified-memory-high 50331648 "$(rd memory.high)"
expect_eq res-pids-max 100 "$(rd pids.max)"
expect_eq res-cpu-max "50000 100000" "$(rd cpu.max)"
# shares 512 -> weight 1 + (512-2)*9999/262142 = 20 (runc's conversion)
expect_eq res-cpu-weight 20 "$(rd cpu.weight)"
expect_eq res-cpuset-cpus 1 "$(rd cpuset.cpus)"
expect_eq res-cpuset-mems 0 "$(rd cpuset.mems)"
pid=$(state_field $id pid)
expect_eq res-cgroups-path /vmtest/resources "$(cgroup_of "${pid:-0}")"
aff=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/${pid:-0}/status" 2>/dev/null)
expect_eq res-init-cpus-allowed 1 "$aff"
existed=no
[ -d "$cg" ] && existed=yes
runway delete --force "$id" >/dev/null 2>&1
if [ "$existed" = no ]; then
    fail res-delete-cgroup-gone "$cg never existed"
elif [ -d "$cg" ]; then
    fail res-delete-cgroup-gone "$cg left"
else
    pass res-delete-cgroup-gone "$cg gone"
fi
rmdir /sys/fs/cgroup/vmtest 2>/dev/null
