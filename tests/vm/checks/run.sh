# `runway run` in the foreground: output, exit code, cgroup made and removed.
out=$(runway run --bundle ./b run-basic 2>&1)
rc=$?
first=$(echo "$out" | sed -n 1p)
cg=$(echo "$out" | sed -n 2p)
expect_eq run-output "hello from a container" "$first"
expect_eq run-exit-code 3 "$rc"
if runway state run-basic >/dev/null 2>&1; then
    fail run-deleted "state still there after run"
else
    pass run-deleted "state gone"
fi
case $cg in
*/run-basic) pass run-in-cgroup "$cg" ;;
*) fail run-in-cgroup "container cgroup '$cg' (want a cgroup of its own, ending in /run-basic)" ;;
esac
if [ -z "$cg" ] || [ "$cg" = / ]; then
    fail run-cgroup-removed "no container cgroup to check"
elif [ -d "/sys/fs/cgroup$cg" ]; then
    fail run-cgroup-removed "/sys/fs/cgroup$cg still exists"
else
    pass run-cgroup-removed "/sys/fs/cgroup$cg gone"
fi
