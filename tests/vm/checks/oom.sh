# A memory hog over memory.max is OOM-killed; memory.events counts it and
# `runway events` reports {"type":"oom"}.
id=oom
cg=/sys/fs/cgroup/vmtest/oom
runway create --bundle ./b "$id" >/tmp/oom.create 2>&1
rc=$?
runway events "$id" >/tmp/oom.events 2>&1 &
ev=$!
runway start "$id" >/dev/null 2>&1
wait_status "$id" stopped 100
kills=$(sed -n 's/^oom_kill //p' "$cg/memory.events" 2>/dev/null)
if [ -n "$kills" ] && [ "$kills" -ge 1 ]; then
    pass oom-killed "memory.events oom_kill $kills"
else
    fail oom-killed "rc=$rc oom_kill='$kills' status=$(state_field $id status) $(cat /tmp/oom.create)"
fi
# events polls; give it a moment to see the counter move.
i=0
while ! grep -q '"type": *"oom"' /tmp/oom.events && [ $i -lt 30 ]; do
    sleep 0.1
    i=$((i + 1))
done
if grep -q '"type": *"oom"' /tmp/oom.events; then
    pass oom-event "$(grep -m1 '"type": *"oom"' /tmp/oom.events)"
else
    fail oom-event "no oom event in $(wc -l </tmp/oom.events) lines: $(grep -o '"type":"[a-z]*"' /tmp/oom.events | sort | uniq -c | tr '\n' ' ')"
fi
kill "$ev" 2>/dev/null
wait "$ev" 2>/dev/null
runway delete --force "$id" >/dev/null 2>&1
rmdir /sys/fs/cgroup/vmtest 2>/dev/null
