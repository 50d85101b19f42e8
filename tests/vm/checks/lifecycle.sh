# create/start/state/kill/delete with the default cgroup path; delete and
# delete --force leave no cgroup behind.
id=life
runway create --bundle ./b "$id" >/tmp/life.create 2>&1
rc=$?
expect_eq lifecycle-create "0 created" "$rc $(state_field $id status)"
pid=$(state_field $id pid)
cg=$(cgroup_of "${pid:-0}")
if [ -n "$cg" ] && [ "$cg" != / ] && [ -d "/sys/fs/cgroup$cg" ]; then
    pass lifecycle-cgroup-at-create "$cg"
else
    fail lifecycle-cgroup-at-create "init pid=$pid in cgroup '$cg' $(cat /tmp/life.create)"
fi
expect_eq lifecycle-default-cgroup-path "/runway/$id" "$cg"
runway start "$id" >/dev/null 2>&1
wait_status "$id" running 20
expect_eq lifecycle-start running "$(state_field $id status)"
runway kill "$id" KILL 2>&1
wait_status "$id" stopped 50
expect_eq lifecycle-kill stopped "$(state_field $id status)"
err=$(runway delete "$id" 2>&1)
if runway state "$id" >/dev/null 2>&1; then
    fail lifecycle-delete "state still there: $err"
else
    pass lifecycle-delete "state gone"
fi
left=""
[ -n "$cg" ] && [ "$cg" != / ] && [ -d "/sys/fs/cgroup$cg" ] && left="/sys/fs/cgroup$cg"
[ -d "/sys/fs/cgroup/runway/$id" ] && left="$left /sys/fs/cgroup/runway/$id"
if [ -z "$cg" ] || [ "$cg" = / ]; then
    fail lifecycle-delete-cgroup-gone "container had no cgroup of its own to remove"
elif [ -z "$left" ]; then
    pass lifecycle-delete-cgroup-gone "/sys/fs/cgroup$cg gone"
else
    fail lifecycle-delete-cgroup-gone "left: $left"
fi

# delete --force on a running container: processes killed, cgroup removed.
id=life-force
runway run -d --bundle ./b "$id" </dev/null >/tmp/lf.out 2>&1
wait_status "$id" running 20
pid=$(state_field $id pid)
cg=$(cgroup_of "${pid:-0}")
err=$(runway delete --force "$id" 2>&1)
sleep 0.2
problems=""
runway state "$id" >/dev/null 2>&1 && problems="state still there;"
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && problems="$problems pid $pid alive;"
[ -z "$cg" ] || [ "$cg" = / ] && problems="$problems no container cgroup (pid=$pid cg='$cg');"
[ -n "$cg" ] && [ "$cg" != / ] && [ -d "/sys/fs/cgroup$cg" ] && problems="$problems /sys/fs/cgroup$cg left;"
if [ -z "$problems" ]; then
    pass lifecycle-delete-force "$cg removed"
else
    fail lifecycle-delete-force "$problems $err"
fi
