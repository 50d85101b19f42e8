# Helpers for VM check scripts (busybox sh), sourced before each run.sh.
# A check script runs in its own directory, which holds its bundles.

# pass NAME DETAIL... / fail NAME DETAIL...: one result line. Details are
# squeezed to one line so the host parser sees exactly one line per result.
pass() {
    _n=$1
    shift
    echo "RUNWAY-CHECK $_n PASS $(printf '%s' "$*" | tr '\n\t' '  ' | cut -c1-300)"
}
fail() {
    _n=$1
    shift
    echo "RUNWAY-CHECK $_n FAIL $(printf '%s' "$*" | tr '\n\t' '  ' | cut -c1-300)"
}

# expect_eq NAME WANT GOT: pass when equal; detail shows both.
expect_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1" "$3"
    else
        fail "$1" "want '$2' got '$3'"
    fi
}

# one-line stdout+stderr of a command, for details.
oneline() {
    "$@" 2>&1 | tr '\n\t' '  ' | cut -c1-240
}

# state_field ID FIELD: a string or number field of `runway state`.
state_field() {
    runway state "$1" 2>/dev/null | sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -n 1
}

# cgroup_of PID: the v2 cgroup path of a process ("/a/b"), or empty.
cgroup_of() {
    sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null
}

# cgfile PID FILE: a file of the cgroup that PID is in, or "<absent>".
cgfile() {
    _cg=$(cgroup_of "$1")
    if [ -n "$_cg" ] && [ -r "/sys/fs/cgroup$_cg/$2" ]; then
        tr '\n' ' ' <"/sys/fs/cgroup$_cg/$2" | sed 's/ $//'
    else
        echo "<absent>"
    fi
}

# wait_status ID STATUS [TRIES]: poll state until STATUS (0.1 s steps).
wait_status() {
    _i=0
    while [ "$_i" -lt "${3:-50}" ]; do
        [ "$(state_field "$1" status)" = "$2" ] && return 0
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}
