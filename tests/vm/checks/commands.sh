# The cgroup-backed commands on v2: update, events --stats, ps, kill --all.
id=cmds
cg=/sys/fs/cgroup/vmtest/cmds
rd() {
    if [ -r "$cg/$1" ]; then tr '\n' ' ' <"$cg/$1" | sed 's/ $//'; else echo "<absent>"; fi
}
runway run -d --bundle ./b "$id" </dev/null >/tmp/cmds.out 2>&1
wait_status "$id" running 20
pid=$(state_field $id pid)
# Let the init start its two sleeps.
sleep 0.5

err=$(echo '{"memory": {"limit": 33554432}}' | runway update --resources - "$id" 2>&1)
expect_eq update-resources-memory "33554432" "$(rd memory.max)"
[ -z "$err" ] || echo "update --resources: $err"
err=$(runway update --pids-limit 20 "$id" 2>&1)
expect_eq update-pids-limit "20" "$(rd pids.max)"
[ -z "$err" ] || echo "update --pids-limit: $err"

raw=$(runway events --stats "$id" 2>&1)
st=$(echo "$raw" | tr -d ' \n\t')
# JSON key order is free: look at each object on its own.
pids=$(echo "$st" | grep -o '"pids":{[^}]*}')
case "$st|$pids" in
*'"type":"stats"'*'|'*'"current":'[1-9]*) pass events-stats-pids "$pids" ;;
*) fail events-stats-pids "no type stats with pids.current>0 in: $(echo "$raw" | head -c 200)" ;;
esac
usage=$(echo "$st" | grep -o '"memory":{.*' | grep -o '"usage":{[^}]*}' | head -n 1)
case $usage in
*'"usage":'[1-9]*) pass events-stats-memory "$usage" ;;
*) fail events-stats-memory "no memory.usage.usage>0 in: $(echo "$raw" | head -c 200)" ;;
esac

raw=$(runway ps --format json "$id" 2>&1)
ps=$(echo "$raw" | tr -d ' \n\t')
case $ps in
'['*']') n=$(echo "$ps" | tr ',[]' '   ' | wc -w) ;;
*) n="not a JSON array" ;;
esac
case ",$(echo "$ps" | tr -d '[]')," in
*",$pid,"*) pass ps-json "init $pid among $n: $ps" ;;
*) fail ps-json "init $pid not in: $raw" ;;
esac
expect_eq ps-json-count 3 "$n"

err=$(runway kill --all "$id" KILL 2>&1)
wait_status "$id" stopped 50
left=$(wc -l 2>/dev/null <"$cg/cgroup.procs")
expect_eq kill-all "stopped 0" "$(state_field $id status) $left"
[ -z "$err" ] || echo "kill --all: $err"
runway delete --force "$id" >/dev/null 2>&1
rmdir /sys/fs/cgroup/vmtest 2>/dev/null
