# pids.limit=5: the container's shell cannot fork its 5th child.
out=$(runway run --bundle ./b pids 2>&1)
rc=$?
started=$(echo "$out" | grep -c '^started')
case $out in
*"can't fork"* | *"Resource temporarily unavailable"* | *"fork"*) forkerr=yes ;;
*) forkerr=no ;;
esac
if [ "$forkerr" = yes ] && [ "$started" -le 4 ]; then
    pass pids-limit-enforced "started=$started, then fork failed"
else
    fail pids-limit-enforced "started=$started fork-error=$forkerr rc=$rc out=$(echo "$out" | tail -n 3)"
fi
