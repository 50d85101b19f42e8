# pause/resume through cgroup.freeze: state says paused, cgroup.events says
# frozen, and the container's ticker really stops and restarts. The ticker
# appends (a truncate-then-write ticker frozen in between reads as empty), so
# progress is the file's size.
id=frz
rm -f tick
runway run -d --bundle ./b "$id" </dev/null >/tmp/frz.out 2>&1
wait_status "$id" running 20
i=0
while [ ! -s tick ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
pid=$(state_field $id pid)
err=$(runway pause "$id" 2>&1)
rc=$?
expect_eq freeze-pause-state "0 paused" "$rc $(state_field $id status)"
[ "$rc" -eq 0 ] || echo "pause: $err"
i=0
while [ "$(cgfile "${pid:-0}" cgroup.events | grep -o 'frozen [01]')" != "frozen 1" ] && [ $i -lt 20 ]; do
    sleep 0.1
    i=$((i + 1))
done
ev=$(cgfile "${pid:-0}" cgroup.events | grep -o 'frozen [01]')
expect_eq freeze-events-frozen "frozen 1" "$ev"
t1=$(wc -c <tick 2>/dev/null)
sleep 1
t2=$(wc -c <tick 2>/dev/null)
if [ -n "$t1" ] && [ "$t1" != 0 ] && [ "$t1" = "$t2" ]; then
    pass freeze-processes-stopped "tick stayed at $t1"
else
    fail freeze-processes-stopped "tick moved '$t1' -> '$t2'"
fi
err=$(runway resume "$id" 2>&1)
rc=$?
expect_eq freeze-resume-state "0 running" "$rc $(state_field $id status)"
[ "$rc" -eq 0 ] || echo "resume: $err"
ev=$(cgfile "${pid:-0}" cgroup.events | grep -o 'frozen [01]')
expect_eq freeze-events-thawed "frozen 0" "$ev"
sleep 1
t3=$(wc -c <tick 2>/dev/null)
if [ -n "$t3" ] && [ "$t3" != "$t2" ]; then
    pass freeze-processes-resumed "tick $t2 -> $t3"
else
    fail freeze-processes-resumed "tick stuck at '$t3'"
fi
runway delete --force "$id" >/dev/null 2>&1
