#!/bin/sh
# Runs inside the cgroup v2 VM: each check prints "PASS name" or "FAIL name: why".
# Bundles are prepared on the host by scripts/vm/run.sh (bundles/<name>/config.json).
S="skiff --root /run/skiff"
CG=/sys/fs/cgroup/skiff-vm
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
eq() { if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi; }

# Limits as the container sees them (cgroup namespace: its cgroup is the root).
out=$($S run --bundle /bundles/limits limits 2>&1)
eq "memory.max inside" "mem=67108864" "$(echo "$out" | grep '^mem=')"
eq "memory.swap.max inside" "swap=0" "$(echo "$out" | grep '^swap=')"
eq "pids.max inside" "pids=32" "$(echo "$out" | grep '^pids=')"
eq "cpu.max inside" "cpu=50000 100000" "$(echo "$out" | grep '^cpu=')"
eq "cpu.weight inside" "weight=39" "$(echo "$out" | grep '^weight=')"
eq "own cgroup is the namespace root" "cg=0::/" "$(echo "$out" | grep '^cg=')"

# The same limits seen from the host, then gone after delete.
$S create --bundle /bundles/limits hostview >/dev/null 2>&1
eq "memory.max on host" "67108864" "$(cat $CG/limits/memory.max 2>&1)"
eq "pids.max on host" "32" "$(cat $CG/limits/pids.max 2>&1)"
pid=$($S state hostview | grep '"pid"' | tr -dc 0-9)
if grep -q "^$pid\$" $CG/limits/cgroup.procs 2>/dev/null; then pass "init in cgroup.procs"; else fail "init in cgroup.procs" "pid $pid not in $CG/limits"; fi
$S delete --force hostview
if [ -e $CG/limits ]; then fail "cgroup removed by delete" "$CG/limits still exists"; else pass "cgroup removed by delete"; fi

# A fork bomb stops at pids.max.
out=$($S run --bundle /bundles/pids pids 2>&1)
n=$(echo "$out" | grep '^started=' | tr -dc 0-9)
if [ -n "$n" ] && [ "$n" -le 16 ]; then pass "fork bomb stops at pids.max"; else fail "fork bomb stops at pids.max" "$n pids with pids.max 16: $out"; fi
hits=$(echo "$out" | grep '^max ' | tr -dc 0-9)
if [ -n "$hits" ] && [ "$hits" -gt 0 ]; then pass "pids.events counts refused forks"; else fail "pids.events counts refused forks" "$out"; fi

# Device rules (eBPF on v2): /dev/null usable, /dev/kmsg (not in the allow-list) denied.
out=$($S run --bundle /bundles/devices devices 2>&1)
eq "allowed device usable" "null=ok" "$(echo "$out" | grep '^null=')"
eq "config device created" "loopdev=present" "$(echo "$out" | grep '^loopdev=')"
eq "device outside the allow-list refused" "loop=denied" "$(echo "$out" | grep '^loop=')"
out=$($S run --bundle /bundles/devices-allowed devices-allowed 2>&1)
eq "device allowed by a rule readable" "loop=read" "$(echo "$out" | grep '^loop=')"

# Over the memory limit: the kernel OOM-kills the process, run reports 128+9.
$S run --bundle /bundles/oom oom >/dev/null 2>&1
eq "OOM kill exit status" "137" "$?"

# io.max on a real block device (a loop device over a tmpfs file).
if [ -b /dev/loop0 ]; then
    out=$($S run --bundle /bundles/io io 2>&1)
    eq "io.max inside" "io=7:0 rbps=1048576 wbps=max riops=max wiops=500" "$(echo "$out" | grep '^io=')"
else
    fail "io.max inside" "no /dev/loop0 in the VM"
fi

# Freeze: pause/resume through cgroup.freeze (only once skiff has the commands).
if $S pause --help >/dev/null 2>&1; then
    $S run -d --bundle /bundles/sleep frz >/dev/null 2>&1
    $S pause frz
    eq "paused state" '"status": "paused",' "$($S state frz | grep '"status"' | tr -d ' ' | sed 's/:/: /')"
    eq "cgroup.freeze set" "1" "$(cat $CG/sleep/cgroup.freeze 2>&1)"
    $S resume frz
    eq "resumed state" '"status": "running",' "$($S state frz | grep '"status"' | tr -d ' ' | sed 's/:/: /')"
    $S delete --force frz
else
    echo "SKIP freeze: skiff has no pause command yet"
fi

# update: new limits reach the kernel; zeros leave the others alone.
$S run -d --bundle /bundles/sleep upd >/dev/null 2>&1
$S update --memory 32m --pids-limit 5 --cpu-quota 0 upd
eq "update memory.max" "33554432" "$(cat $CG/sleep/memory.max 2>&1)"
eq "update pids.max" "5" "$(cat $CG/sleep/pids.max 2>&1)"
echo '{"memory":{"limit":0},"cpu":{"quota":20000,"period":100000}}' | $S update --resources - upd
eq "update from stdin cpu.max" "20000 100000" "$(cat $CG/sleep/cpu.max 2>&1)"
eq "update zero leaves memory.max" "33554432" "$(cat $CG/sleep/memory.max 2>&1)"
if $S events --stats upd | grep -q '"type":"stats".*"memory"'; then pass "events --stats"; else fail "events --stats" "$($S events --stats upd 2>&1)"; fi
$S delete --force upd

# events reports an OOM kill as it happens (the watch is set up before start).
$S create --bundle /bundles/oom oomev >/dev/null 2>&1
$S events --interval 60s oomev > /tmp/oomev.json 2>&1 &
evpid=$!
i=0; while ! ls -l /proc/$evpid/fd 2>/dev/null | grep -q inotify && [ $i -lt 500 ]; do i=$((i+1)); done
$S start oomev
wait $evpid
if grep -q '"type":"oom"' /tmp/oomev.json; then pass "events reports OOM"; else fail "events reports OOM" "$(cat /tmp/oomev.json)"; fi
$S delete --force oomev

# A cgroup frozen before create (cgroup.freeze 1): refused at once, not a hang.
mkdir -p $CG/frozen && echo 1 > $CG/frozen/cgroup.freeze
out=$($S create --bundle /bundles/frozen frozen 2>&1)
rc=$?
eq "frozen cgroup refused" "1 1" "$rc $(echo "$out" | grep -c 'unexpectedly frozen')"
if $S state frozen >/dev/null 2>&1; then fail "frozen cgroup: no state left" "state exists"; else pass "frozen cgroup: no state left"; fi
echo 0 > $CG/frozen/cgroup.freeze; rmdir $CG/frozen
