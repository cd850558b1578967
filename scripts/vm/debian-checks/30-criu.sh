#!/bin/bash
# vm: hybrid
# Checkpoint and restore with CRIU (issue 16), in the Debian VM whose 6.1
# kernel CRIU 3.17 works on (the host's does not: integration/criu.rs
# covers the failure path there). Each check prints one PASS/FAIL/SKIP.
# A counter container (it counts in a shell variable, once per 100 ms, and
# writes the count to /tmp/n, through a rename so that a reader never sees
# the file between truncation and write: that read as 0 once) shows that a restored container goes on from
# where it was, not from 0. Timings of checkpoint and restore are printed
# as INFO lines, with runc's next to them when a runc binary is there
# (/usr/sbin/runc, or /skiff/extra/runc given with VM_EXTRA).
. /skiff/lib.sh

R=/run/skiff-criu
S() { timeout 120 "$SKIFF" --root "$R" "$@"; }
T=$(mktemp -d /var/tmp/criu.XXXXXX)
COUNTER='i=0; while true; do i=$((i+1)); echo $i > /tmp/n.w; mv /tmp/n.w /tmp/n; sleep 0.1; done'
cgv=$(stat -f -c %T /sys/fs/cgroup)

ms() { date +%s%3N; }
# count DIR: the counter's last value (0 if none yet).
count() {
    local v
    v=$(cat "$1/rootfs/tmp/n" 2>/dev/null)
    echo "${v:-0}" # no file yet
}
# until_ SECS CMD...: polls CMD every 50 ms until it succeeds, at most SECS.
until_() {
    local n=$(($1 * 20))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.05
        n=$((n - 1))
    done
    return 1
}
above() { [ "$(count "$1")" -gt "$2" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
status() { S state "$1" 2>/dev/null | jq -r .status; }
is_status() { [ "$(status "$1")" = "$2" ]; }
pid_of() { S state "$1" 2>/dev/null | jq -r .pid; }
# counter BUNDLE ID: starts the counter container detached, waits until it counts.
counter() {
    mkb "$1" sh -c "$COUNTER" || return 1
    S run -d --bundle "$1" "$2" </dev/null >/dev/null 2>"$T/$2.err" || { cat "$T/$2.err"; return 1; }
    until_ 30 above "$1" 3
}
# cgroup_dir PID: the host directory of PID's cgroup (v2 line, else memory's).
cgroup_dir() {
    local l
    l=$(grep '^0::' "/proc/$1/cgroup")
    if [ "$cgv" = cgroup2fs ]; then
        echo "/sys/fs/cgroup${l#0::}"
    else
        echo "/sys/fs/cgroup/memory$(grep ':memory:' "/proc/$1/cgroup" | cut -d: -f3)"
    fi
}
cleanup() { S delete -f "$1" >/dev/null 2>&1; }
# mkb DIR CMD...: mkbundle with a writable rootfs (the counter writes /tmp/n).
mkb() {
    mkbundle "$@" || return 1
    jq '.root.readonly = false' "$1/config.json" >"$1/config.json.new" && mv "$1/config.json.new" "$1/config.json"
}
# rst ID IMAGES BUNDLE [FLAGS...]: restore -d; on failure prints skiff's
# error and CRIU's (stdio not to a pipe: the container would hold it).
rst() {
    local id=$1 img=$2 b=$3
    shift 3
    S restore -d "$@" --image-path "$img" --bundle "$b" "$id" </dev/null >/dev/null 2>"$T/$id.err" && return 0
    echo "restore: $(cat "$T/$id.err") CRIU: $(why "$img/restore.log")"
    return 1
}
# why LOG: CRIU's errors in LOG, for a failure message.
why() { grep -m3 'Error' "$1" 2>/dev/null | tr '\n' ' '; }

out=$(timeout 60 criu check 2>&1)
if [ $? -ne 0 ]; then
    fail criu-check "criu check: $(printf '%s' "$out" | tail -3 | tr '\n' ' ')"
    exit 0
fi
info "criu: $(criu --version | head -1), cgroup $cgv"

# 1. Counter: checkpoint (it stops and is gone, as runc leaves it), restore
# under the same id (counting goes on), state running, delete cleans up.
basic() {
    local b=$T/b1 img=$T/img1 pid n first cg
    counter "$b" c1 || { echo "counter did not start"; return 1; }
    pid=$(pid_of c1)
    S checkpoint --image-path "$img" c1 || { echo "checkpoint: $(why "$R/c1/criu.work/dump.log")"; return 1; }
    gone "$pid" || { echo "init $pid still alive after checkpoint"; return 1; }
    if S state c1 >/dev/null 2>&1; then echo "c1 still exists after checkpoint"; return 1; fi
    n=$(count "$b")
    rst c1 "$img" "$b" || return 1
    [ "$(status c1)" = running ] || { echo "state after restore: $(status c1)"; return 1; }
    until_ 20 above "$b" "$n" || { echo "no counting after restore (stuck at $n)"; return 1; }
    first=$(count "$b")
    [ "$first" -gt "$n" ] && [ "$first" -le $((n + 20)) ] ||
        { echo "count went from $n to $first: restarted?"; return 1; }
    pid=$(pid_of c1)
    cg=$(cgroup_dir "$pid")
    S kill c1 KILL || return 1
    until_ 20 gone "$pid" || return 1
    S delete c1 || return 1
    [ ! -e "$R/c1" ] || { echo "$R/c1 left"; return 1; }
    [ ! -e "$cg" ] || { echo "cgroup $cg left"; return 1; }
}
check criu-counter-continues basic

# Timings, taken after `basic` so that CRIU's first run in this boot (cold
# page cache: about 1.2 s more here, whoever runs it first) counts for
# neither runtime: skiff's counter, then runc's in the same VM.
tb=$T/tb
if counter "$tb" ct; then
    t0=$(ms)
    S checkpoint --image-path "$T/timg" ct
    t1=$(ms)
    rst ct "$T/timg" "$tb" >/dev/null
    t2=$(ms)
    info "criu: skiff checkpoint of the counter $((t1 - t0)) ms, restore $((t2 - t1)) ms"
    cleanup ct
fi
# runc's timings in the same VM, same counter (if a runc is here).
RUNC=$(command -v runc || ls /skiff/extra/runc 2>/dev/null)
if [ -n "$RUNC" ]; then
    rb=$T/rb
    mkb "$rb" sh -c "$COUNTER"
    RR=/run/runc-criu
    if timeout 60 "$RUNC" --root "$RR" run -d --bundle "$rb" r1 </dev/null >/dev/null 2>&1 &&
        until_ 30 above "$rb" 3; then
        t0=$(ms)
        timeout 120 "$RUNC" --root "$RR" checkpoint --image-path "$T/rimg" r1
        t1=$(ms)
        timeout 120 "$RUNC" --root "$RR" restore -d --image-path "$T/rimg" --bundle "$rb" r1 </dev/null >/dev/null 2>&1
        t2=$(ms)
        info "criu: runc $("$RUNC" --version | head -1 | awk '{print $3}') checkpoint of the counter $((t1 - t0)) ms, restore $((t2 - t1)) ms"
        timeout 30 "$RUNC" --root "$RR" delete -f r1 >/dev/null 2>&1
    else
        info "criu: runc could not run the counter"
    fi
else
    info "criu: no runc in the VM: no runc timings"
fi

# 2. --leave-running: same init, still counting, images written.
leave_running() {
    local b=$T/b2 pid n
    counter "$b" c2 || return 1
    pid=$(pid_of c2)
    S checkpoint --leave-running --image-path "$T/img2" c2 || { why "$R/c2/criu.work/dump.log"; return 1; }
    [ "$(status c2)" = running ] && [ "$(pid_of c2)" = "$pid" ] || { echo "state $(status c2) pid $(pid_of c2)"; return 1; }
    n=$(count "$b")
    until_ 20 above "$b" "$n" || { echo "stopped counting"; return 1; }
    ls "$T/img2"/pages-*.img >/dev/null || { echo "no pages image"; return 1; }
    cleanup c2
}
check criu-leave-running leave_running

# 3. --pre-dump, then the final dump with --parent-path; restore it.
pre_dump() {
    local b=$T/b3 n
    counter "$b" c3 || return 1
    S checkpoint --pre-dump --image-path "$T/img3/pre" c3 || { why "$R/c3/criu.work/dump.log"; return 1; }
    [ "$(status c3)" = running ] || { echo "not running after pre-dump"; return 1; }
    S checkpoint --image-path "$T/img3/final" --parent-path ../pre c3 || { why "$R/c3/criu.work/dump.log"; return 1; }
    [ -L "$T/img3/final/parent" ] || { echo "no parent link in the final images"; return 1; }
    n=$(count "$b")
    rst c3 "$T/img3/final" "$b" || return 1
    until_ 20 above "$b" "$n" || return 1
    [ "$(count "$b")" -le $((n + 20)) ] || return 1
    cleanup c3
}
check criu-pre-dump-parent pre_dump

# 4. Restore under another id; with --detach --pid-file.
other_id() {
    local b=$T/b4 n pid
    counter "$b" c4 || return 1
    S checkpoint --image-path "$T/img4" c4 || return 1
    n=$(count "$b")
    rst c4b "$T/img4" "$b" --pid-file "$T/c4b.pid" || return 1
    if S state c4 >/dev/null 2>&1; then echo "old id c4 exists"; return 1; fi
    [ "$(status c4b)" = running ] || return 1
    pid=$(cat "$T/c4b.pid")
    [ "$pid" = "$(pid_of c4b)" ] || { echo "pid file $pid, state $(pid_of c4b)"; return 1; }
    until_ 20 above "$b" "$n" || return 1
    cleanup c4b
}
check criu-restore-other-id-pid-file other_id

# 5. Cgroup limits are the same after restore (memory, pids).
limits() {
    local b=$T/b5 pid cg mem pids
    mkb "$b" sh -c "$COUNTER" || return 1
    jq '.linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 42}}' "$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json"
    S run -d --bundle "$b" c5 </dev/null >/dev/null 2>"$T/c5.err" || { cat "$T/c5.err"; return 1; }
    until_ 30 above "$b" 3 || return 1
    S checkpoint --image-path "$T/img5" c5 || return 1
    rst c5 "$T/img5" "$b" || return 1
    pid=$(pid_of c5)
    cg=$(cgroup_dir "$pid")
    if [ "$cgv" = cgroup2fs ]; then
        mem=$(cat "$cg/memory.max") pids=$(cat "$cg/pids.max")
    else
        mem=$(cat "$cg/memory.limit_in_bytes")
        pids=$(cat "/sys/fs/cgroup/pids$(grep ':pids:' "/proc/$pid/cgroup" | cut -d: -f3)/pids.max")
    fi
    [ "$mem" = 67108864 ] && [ "$pids" = 42 ] || { echo "after restore: memory $mem pids $pids ($cg)"; return 1; }
    cleanup c5
}
check criu-cgroup-limits limits

# 6. A loopback TCP connection survives with --tcp-established: a server
# and a client inside the container, connected, keep talking after restore.
tcp() {
    local b=$T/b6 n
    # The server listens first (the client starts a second later, inside
    # the container); every line it receives is appended to /tmp/srv.
    # (The server's stdin never ends: busybox nc hangs up at its EOF.)
    mkb "$b" sh -c 'sleep 99999 | nc -l -p 7777 > /tmp/srv & sleep 1; i=0; while true; do i=$((i+1)); echo $i; echo $i > /tmp/n; sleep 0.1; done | nc 127.0.0.1 7777' || return 1
    S run -d --bundle "$b" c6 </dev/null >/dev/null 2>"$T/c6.err" || { cat "$T/c6.err"; return 1; }
    lines() { wc -l <"$b/rootfs/tmp/srv" 2>/dev/null || echo 0; }
    srv_above() { [ "$(lines)" -gt "$1" ]; }
    until_ 30 srv_above 3 || { echo "no connection"; return 1; }
    S checkpoint --tcp-established --image-path "$T/img6" c6 || { why "$R/c6/criu.work/dump.log"; return 1; }
    n=$(lines)
    rst c6 "$T/img6" "$b" --tcp-established || return 1
    until_ 20 srv_above "$n" || { echo "server stuck at $n lines after restore"; return 1; }
    cleanup c6
}
check criu-tcp-established tcp

# 7. Failure paths: clear errors, the container untouched, nothing left.
missing_image() {
    local b=$T/b7 o
    mkb "$b" sh -c "$COUNTER" || return 1
    S restore -d --image-path "$T/nope" --bundle "$b" c7 </dev/null >/dev/null 2>"$T/c7.err" && { echo "restore succeeded"; return 1; }
    o=$(cat "$T/c7.err")
    printf '%s\n' "$o" | grep -q "$T/nope" || { echo "unclear: $o"; return 1; }
    [ ! -e "$R/c7" ] || { echo "state left"; return 1; }
}
check criu-restore-missing-image missing_image

stopped() {
    local b=$T/b8 o
    mkb "$b" true || return 1
    S run -d --bundle "$b" c8 </dev/null >/dev/null 2>"$T/c8.err" || { cat "$T/c8.err"; return 1; }
    until_ 10 is_status c8 stopped || return 1
    o=$(S checkpoint --image-path "$T/img8" c8 2>&1) && { echo "checkpoint succeeded"; return 1; }
    printf '%s\n' "$o" | grep -q 'cannot be checkpointed in stopped state' || { echo "unclear: $o"; return 1; }
    [ ! -e "$T/img8" ] || { echo "image dir made"; return 1; }
    cleanup c8
}
check criu-checkpoint-stopped stopped

# CRIU SIGKILLed in the middle of the dump (once it has frozen the
# container): a clear error, the container running and counting again
# with the same init, no image dir left.
killed() {
    local b=$T/b9 pid cg o n w=$T/criu-killer
    counter "$b" c9 || return 1
    pid=$(pid_of c9)
    cg=$(cgroup_dir "$pid")
    # The wrapper runs the real criu and SIGKILLs it once the container's
    # cgroup is frozen (CRIU is then mid-dump); shell builtins only, so
    # that it notices at once; it ends when criu does.
    if [ "$cgv" = cgroup2fs ]; then
        fz="$cg/cgroup.events"
    else
        fz="/sys/fs/cgroup/freezer$(grep ':freezer:' "/proc/$pid/cgroup" | cut -d: -f3)/freezer.state"
    fi
    cat >"$w" <<EOF
#!/bin/bash
$(command -v criu) "\$@" &
c=\$!
while kill -0 \$c 2>/dev/null; do
    f=
    while read -r k v; do
        case "\$k \$v" in "frozen 1" | FROZEN*) f=1 ;; esac
    done <"$fz"
    if [ -n "\$f" ]; then
        kill -9 \$c
        break
    fi
done
wait \$c
EOF
    chmod +x "$w"
    o=$(timeout 120 "$SKIFF" --root "$R" --criu "$w" checkpoint --image-path "$T/img9" c9 2>&1) && { echo "checkpoint succeeded"; return 1; }
    echo "$o" | grep -q criu || { echo "unclear: $o"; return 1; }
    echo "criu: the error of a checkpoint whose criu was SIGKILLed mid-dump: $o" >"$T/killed"
    [ "$(status c9)" = running ] && [ "$(pid_of c9)" = "$pid" ] || { echo "state $(status c9) pid $(pid_of c9)"; return 1; }
    n=$(count "$b")
    until_ 20 above "$b" "$n" || { echo "not counting after the failed dump"; return 1; }
    [ ! -e "$T/img9" ] || { echo "image dir left"; return 1; }
    cleanup c9
}
check criu-killed-mid-dump killed
[ -f "$T/killed" ] && info "$(cat "$T/killed")"

# 8. podman with skiff as its runtime: checkpoint and restore a running
# container (no terminal, and with -t: the restored pty goes to conmon
# through --console-socket).
podman_cr() {
    local tty=$1 name=ckpt$1 n b4
    busybox_image || return 1
    P() { timeout 180 podman --runtime "$SKIFF" --cgroup-manager cgroupfs "$@"; }
    pcount() { P exec "$name" cat /tmp/n 2>/dev/null || echo 0; }
    pabove() { [ "$(pcount)" -gt "$1" ]; }
    P rm -f "$name" >/dev/null 2>&1
    P run -d $tty --name "$name" --network none localhost/busybox:latest sh -c "$COUNTER" >/dev/null || return 1
    until_ 60 pabove 10 || { echo "podman counter did not start"; return 1; }
    b4=$(pcount)
    P container checkpoint "$name" >/dev/null || return 1
    [ "$(P inspect -f '{{.State.Status}}' "$name")" = exited ] || { echo "not exited after checkpoint"; return 1; }
    P container restore "$name" >/dev/null || return 1
    [ "$(P inspect -f '{{.State.Status}}' "$name")" = running ] || { echo "not running after restore"; return 1; }
    n=$(pcount)
    [ "$n" -ge "$b4" ] || { echo "count $n after restore, $b4 before checkpoint: restarted?"; return 1; }
    until_ 20 pabove "$n" || { echo "not counting after restore"; return 1; }
    P rm -f "$name" >/dev/null
}
check criu-podman podman_cr ""
check criu-podman-tty podman_cr -t

# Whatever a failed check left running.
for id in $(S list -q 2>/dev/null); do cleanup "$id"; done
rm -rf "$T"
