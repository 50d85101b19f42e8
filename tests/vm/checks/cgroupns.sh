# A container with a cgroup namespace and runc's default `type: cgroup`
# mount sees its own cgroup as / with its limits in the v2 files.
out=$(runway run --bundle ./b cgns 2>&1)
rc=$?
line() { echo "$out" | sed -n "$1p"; }
expect_eq cgroupns-run 0 "$rc"
expect_eq cgroupns-self "/" "$(line 1)"
expect_eq cgroupns-mount-type cgroup2 "$(line 2)"
expect_eq cgroupns-memory-max 67108864 "$(line 3)"
expect_eq cgroupns-pids-max 50 "$(line 4)"
[ "$rc" -eq 0 ] || echo "output: $out"
