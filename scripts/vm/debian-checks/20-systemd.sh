#!/bin/bash
# vm: hybrid
# The systemd cgroup driver (`skiff --systemd-cgroup`) against a real
# systemd, in the Debian VM (scripts/vm/debian.sh; pure cgroup v2 by
# default, VM_CGROUP=hybrid for v1 controllers + cgroup2 "unified"):
# scopes, their properties against config.json and the cgroup files,
# nested slices, update, pause/resume, delete, failed creates leaving no
# unit, then podman (--cgroup-manager systemd) and containerd's runc shim
# (SystemdCgroup) driving skiff.
. /skiff/lib.sh
layout=$(cat /skiff/cgroup 2>/dev/null || echo v2)
T=120 # TCG is slow: generous bounds, never a hang
work=$(mktemp -d)

if [ "$layout" = v2 ]; then
    MEMP=MemoryMax MEMF=memory.max
else
    MEMP=MemoryLimit MEMF=memory.limit_in_bytes
fi

# cgdir CONTROLLER REL: the directory of cgroup REL (e.g.
# system.slice/x.scope) for CONTROLLER on this layout.
cgdir() {
    if [ "$layout" = v2 ]; then echo "/sys/fs/cgroup/$2"; else echo "/sys/fs/cgroup/$1/$2"; fi
}

# dirs_left REL: every hierarchy's directory for REL that still exists.
dirs_left() {
    ls -d "/sys/fs/cgroup/$1" /sys/fs/cgroup/*/"$1" 2>/dev/null | tr '\n' ' '
}

# unit_gone UNIT: systemd has no such unit (loaded or not) any more.
unit_gone() {
    [ -z "$(systemctl list-units --all --no-legend --plain "$1" 2>/dev/null)" ] &&
        [ "$(systemctl show -p LoadState --value "$1" 2>/dev/null)" = not-found ]
}

prop() { systemctl show -p "$2" --value "$1" 2>/dev/null; }

# bundle DIR CGROUPSPATH CMD...: a busybox bundle with CGROUPSPATH ("" for none).
bundle() {
    local dir=$1 path=$2
    shift 2
    mkbundle "$dir" "$@" || return 1
    jq --arg p "$path" 'if $p == "" then del(.linux.cgroupsPath) else .linux.cgroupsPath = $p end' \
        "$dir/config.json" >"$dir/c.json" && mv "$dir/c.json" "$dir/config.json"
}

# edit DIR JQ-FILTER: edits DIR/config.json.
edit() {
    jq "$2" "$1/config.json" >"$1/c.json" && mv "$1/c.json" "$1/config.json"
}

sd() { timeout "$T" "$SKIFF" --systemd-cgroup "$@"; }
sk() { timeout "$T" "$SKIFF" "$@"; }

# ok NAME CMD...: `check`, with CMD's output in a file: a container made
# by `create` or `run --detach` keeps the runtime's stdio, and a pipe
# (`check`'s $(...)) would wait for the container to exit.
ok() {
    local name=$1 rc
    shift
    "$@" </dev/null >"$work/out" 2>&1 && rc=0 || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "status $rc: $(tail -5 "$work/out" | tr '\n' '|')"
    fi
    return "$rc"
}

# status ID: the container's status from `skiff state`.
status() { sk state "$1" 2>/dev/null | jq -r .status; }

# eq NAME WANT GOT: PASS when equal, else FAIL saying both.
eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi
}

systemd_version=$(systemctl --version | awk 'NR == 1 {print $2}')
info "systemd: $systemd_version, layout $layout"

# --- a scope with limits -----------------------------------------------------
id=sd-a$$
unit=skiff-$id.scope
rel=system.slice/$unit
b=$work/a
bundle "$b" "system.slice:skiff:$id" sleep 1000
edit "$b" '.linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 32},
    "cpu": {"quota": 50000, "period": 100000, "shares": 512}}'
if ok sd-create sd create --bundle "$b" "$id"; then
    eq sd-scope-active active "$(prop "$unit" ActiveState)"
    eq sd-scope-slice system.slice "$(prop "$unit" Slice)"
    eq sd-scope-delegate yes "$(prop "$unit" Delegate)"
    eq sd-prop-memory 67108864 "$(prop "$unit" $MEMP)"
    eq sd-prop-tasks 32 "$(prop "$unit" TasksMax)"
    eq sd-prop-cpuquota 500ms "$(prop "$unit" CPUQuotaPerSecUSec)"
    eq sd-file-memory 67108864 "$(cat "$(cgdir memory "$rel")/$MEMF" 2>&1)"
    eq sd-file-pids 32 "$(cat "$(cgdir pids "$rel")/pids.max" 2>&1)"
    if [ "$layout" = v2 ]; then
        eq sd-file-cpu "50000 100000" "$(cat "$(cgdir cpu "$rel")/cpu.max" 2>&1)"
        # shares 512 -> weight 1 + 510 * 9999 / 262142 = 20, in systemd and the file.
        eq sd-prop-cpuweight 20 "$(prop "$unit" CPUWeight)"
        eq sd-file-cpuweight 20 "$(cat "$(cgdir cpu "$rel")/cpu.weight" 2>&1)"
    else
        eq sd-file-cpu 50000 "$(cat "$(cgdir cpu "$rel")/cpu.cfs_quota_us" 2>&1)"
        eq sd-prop-cpushares 512 "$(prop "$unit" CPUShares)"
        eq sd-file-cpushares 512 "$(cat "$(cgdir cpu "$rel")/cpu.shares" 2>&1)"
    fi
    pid=$(sk state "$id" | jq -r .pid)
    # Only init is left in the scope (the holder process is gone).
    procs=$(cat "$(cgdir pids "$rel")/cgroup.procs" 2>&1 | tr '\n' ' ')
    eq sd-scope-holds-init "$pid " "$procs"
    if grep -q "/system.slice/$unit\$" "/proc/$pid/cgroup"; then
        pass sd-init-in-scope
    else
        fail sd-init-in-scope "$(tr '\n' ' ' <"/proc/$pid/cgroup")"
    fi
    if [ "$layout" = hybrid ]; then
        # Controllers systemd does not manage are joined at the same path.
        for c in cpuset freezer; do
            if grep -qx "$pid" "/sys/fs/cgroup/$c/$rel/cgroup.procs" 2>/dev/null; then
                pass "sd-v1-$c-joined"
            else
                fail "sd-v1-$c-joined" "pid $pid not in /sys/fs/cgroup/$c/$rel: $(cat /proc/$pid/cgroup | tr '\n' ' ')"
            fi
        done
        if grep -qx "$pid" "/sys/fs/cgroup/unified/$rel/cgroup.procs" 2>/dev/null; then
            pass sd-unified-joined
        else
            fail sd-unified-joined "pid $pid not in /sys/fs/cgroup/unified/$rel"
        fi
    fi
    check sd-start sk start "$id"
    eq sd-running running "$(status "$id")"
    # Later commands find the driver in the state: no flag from here on.
    check sd-update sk update --memory 134217728 --pids-limit 64 "$id"
    eq sd-update-prop-memory 134217728 "$(prop "$unit" $MEMP)"
    eq sd-update-file-memory 134217728 "$(cat "$(cgdir memory "$rel")/$MEMF" 2>&1)"
    eq sd-update-prop-tasks 64 "$(prop "$unit" TasksMax)"
    eq sd-update-file-pids 64 "$(cat "$(cgdir pids "$rel")/pids.max" 2>&1)"
    check sd-pause sk pause "$id"
    eq sd-paused paused "$(status "$id")"
    if [ "$layout" = v2 ]; then
        eq sd-paused-file 1 "$(cat "$(cgdir x "$rel")/cgroup.freeze" 2>&1)"
    else
        eq sd-paused-file FROZEN "$(cat "/sys/fs/cgroup/freezer/$rel/freezer.state" 2>&1)"
    fi
    check sd-resume sk resume "$id"
    eq sd-resumed running "$(status "$id")"
    out=$(sk exec "$id" cat /proc/self/cgroup 2>&1)
    case "$out" in
        *"$unit"* | 0::/) pass sd-exec ;; # a cgroup namespace shows "/"
        *) fail sd-exec "$out" ;;
    esac
    if sk ps "$id" 2>&1 | grep -qw "$pid"; then pass sd-ps; else fail sd-ps "$(sk ps "$id" 2>&1)"; fi
    # delete --force of a running container: StopUnit, then nothing left.
    check sd-delete-force sk delete --force "$id"
    if unit_gone "$unit"; then pass sd-delete-unit-gone; else fail sd-delete-unit-gone "$(systemctl status "$unit" 2>&1 | head -3)"; fi
    left=$(dirs_left "$rel")
    if [ -z "$left" ]; then pass sd-delete-dirs-gone; else fail sd-delete-dirs-gone "$left"; fi
fi
sk delete --force "$id" >/dev/null 2>&1

# --- kill, then delete (systemd stops the emptied scope itself) -----------
id=sd-k$$
unit=skiff-$id.scope
b=$work/k
bundle "$b" "system.slice:skiff:$id" sleep 1000
if ok sd-run-detach sd run --detach --bundle "$b" "$id"; then
    check sd-kill sk kill "$id" KILL
    i=0
    while [ "$(status "$id")" != stopped ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    eq sd-killed stopped "$(status "$id")"
    check sd-delete-stopped sk delete "$id"
    if unit_gone "$unit"; then pass sd-delete-stopped-unit-gone; else fail sd-delete-stopped-unit-gone "$(systemctl status "$unit" 2>&1 | head -3)"; fi
    left=$(dirs_left "system.slice/$unit")
    if [ -z "$left" ]; then pass sd-delete-stopped-dirs-gone; else fail sd-delete-stopped-dirs-gone "$left"; fi
fi
sk delete --force "$id" >/dev/null 2>&1

# --- a nested slice, and unit properties from annotations ----------------
id=sd-n$$
unit=skiff-$id.scope
rel=a.slice/a-b.slice/$unit
b=$work/n
bundle "$b" "a-b.slice:skiff:$id" sleep 1000
edit "$b" '.annotations = {"org.systemd.property.TimeoutStopUSec": "uint64 123456789",
    "org.systemd.property.CollectMode": "'"'"'inactive-or-failed'"'"'"}'
if ok sd-nested-create sd create --bundle "$b" "$id"; then
    eq sd-nested-slice a-b.slice "$(prop "$unit" Slice)"
    eq sd-nested-cgroup "/$rel" "$(prop "$unit" ControlGroup)"
    if [ -d "$(cgdir memory "$rel")" ]; then pass sd-nested-dir; else fail sd-nested-dir "no $(cgdir memory "$rel")"; fi
    eq sd-annotation-timeout "2min 3.456789s" "$(prop "$unit" TimeoutStopUSec)"
    eq sd-annotation-collect inactive-or-failed "$(prop "$unit" CollectMode)"
    check sd-nested-delete sk delete --force "$id"
    left=$(dirs_left "$rel")
    if unit_gone "$unit" && [ -z "$left" ]; then pass sd-nested-gone; else fail sd-nested-gone "unit: $(prop "$unit" ActiveState); dirs: $left"; fi
fi
sk delete --force "$id" >/dev/null 2>&1

# --- runc's default without a cgroupsPath: runc-<id>.scope ------------------
id=sd-d$$
b=$work/d
bundle "$b" "" sleep 1000
if ok sd-default-create sd create --bundle "$b" "$id"; then
    eq sd-default-unit active "$(prop "runc-$id.scope" ActiveState)"
    eq sd-default-slice system.slice "$(prop "runc-$id.scope" Slice)"
    check sd-default-delete sk delete --force "$id"
    if unit_gone "runc-$id.scope"; then pass sd-default-gone; else fail sd-default-gone "$(prop "runc-$id.scope" ActiveState)"; fi
fi
sk delete --force "$id" >/dev/null 2>&1

# --- failed creates leave no unit, no cgroup, no state --------------------
# failed NAME ID: create must fail (exit 1) and leave nothing of ID.
failed() {
    local name=$1 id=$2 out rc
    sd create --bundle "$work/f-$name" "$id" </dev/null >"$work/out" 2>&1 && rc=0 || rc=$?
    out=$(cat "$work/out")
    if [ "$rc" != 1 ]; then
        fail "sd-failed-$name" "create exit $rc: $out"
        sk delete --force "$id" >/dev/null 2>&1
        return
    fi
    local listed left
    listed=$(systemctl list-units --all --no-legend --plain "skiff-$id.scope")
    left=$(dirs_left "system.slice/skiff-$id.scope")
    if [ -n "$listed" ] || ! unit_gone "skiff-$id.scope"; then
        fail "sd-failed-$name" "unit left: $listed ($(prop "skiff-$id.scope" ActiveState)); error was: $out"
    elif [ -n "$left" ]; then
        fail "sd-failed-$name" "cgroup left: $left; error was: $out"
    elif sk state "$id" >/dev/null 2>&1; then
        fail "sd-failed-$name" "state left; error was: $out"
    else
        pass "sd-failed-$name"
        info "sd-failed-$name: $out"
    fi
}
bundle "$work/f-args" "system.slice:skiff:sd-fa$$" /nonexistent
failed args "sd-fa$$"
# Refused by the kernel after systemd made the scope: the unit must go too.
bundle "$work/f-cpuset" "system.slice:skiff:sd-fc$$" sleep 1000
edit "$work/f-cpuset" '.linux.resources = {"cpu": {"cpus": "1000"}}'
failed cpuset "sd-fc$$"
# A memory limit init cannot start under (OOM-killed during setup).
bundle "$work/f-memory" "system.slice:skiff:sd-fm$$" sleep 1000
edit "$work/f-memory" '.linux.resources = {"memory": {"limit": 1}}'
failed memory "sd-fm$$"
# A malformed cgroupsPath: runc's error, before anything exists.
bundle "$work/f-path" "system.slice:sd-fp$$" sleep 1000
failed path "sd-fp$$"
out=$(sd create --bundle "$work/f-path" "sd-fp$$" </dev/null 2>&1)
case "$out" in
    *'expected cgroupsPath to be of format \"slice:prefix:name\"'* | *'expected cgroupsPath to be of format "slice:prefix:name"'*) pass sd-failed-path-message ;;
    *) fail sd-failed-path-message "$out" ;;
esac
left=$(systemctl list-units --all --no-legend --plain 'skiff-sd-f*' 2>/dev/null)
if [ -z "$left" ]; then pass sd-failed-no-units; else fail sd-failed-no-units "$left"; fi

# --- the same container without the flag still uses cgroupfs ---------------
id=sd-fs$$
b=$work/fs
bundle "$b" "/skiff-fs-$id" sleep 1000
edit "$b" '.linux.resources = {"memory": {"limit": 67108864}}'
if ok sd-noflag-create sk create --bundle "$b" "$id"; then
    eq sd-noflag-file 67108864 "$(cat "$(cgdir memory "skiff-fs-$id")/$MEMF" 2>&1)"
    if [ -z "$(systemctl list-units --all --no-legend --plain "*$id*")" ]; then
        pass sd-noflag-no-unit
    else
        fail sd-noflag-no-unit "$(systemctl list-units --all --no-legend --plain "*$id*")"
    fi
    check sd-noflag-delete sk delete --force "$id"
    left=$(dirs_left "skiff-fs-$id")
    if [ -z "$left" ]; then pass sd-noflag-gone; else fail sd-noflag-gone "$left"; fi
fi
sk delete --force "$id" >/dev/null 2>&1

# --- podman --cgroup-manager systemd (it passes --systemd-cgroup) ------------
pm() { timeout 180 podman --runtime "$SKIFF" --cgroup-manager systemd "$@"; }
if busybox_image; then
    name=sdp$$
    if cid=$(pm run -d --name "$name" --memory 64m --network none localhost/busybox:latest sleep 1000 2>&1); then
        pass sd-podman-run
        cid=$(printf '%s\n' "$cid" | tail -1)
        unit=libpod-$cid.scope
        eq sd-podman-scope active "$(prop "$unit" ActiveState)"
        eq sd-podman-slice machine.slice "$(prop "$unit" Slice)"
        eq sd-podman-prop-memory 67108864 "$(prop "$unit" $MEMP)"
        eq sd-podman-file-memory 67108864 "$(cat "$(cgdir memory "machine.slice/$unit")/$MEMF" 2>&1)"
        if [ "$layout" = v2 ]; then inside=/sys/fs/cgroup/memory.max; else inside=/sys/fs/cgroup/memory/memory.limit_in_bytes; fi
        eq sd-podman-exec 67108864 "$(pm exec "$name" cat "$inside" 2>&1)"
        if podman update --help >/dev/null 2>&1; then
            if check sd-podman-update pm update --memory 128m "$name"; then
                eq sd-podman-update-prop 134217728 "$(prop "$unit" $MEMP)"
                eq sd-podman-update-file 134217728 "$(cat "$(cgdir memory "machine.slice/$unit")/$MEMF" 2>&1)"
            fi
        else
            skip sd-podman-update "podman $(podman --version | awk '{print $3}') has no update command"
        fi
        check sd-podman-stop pm stop -t 1 "$name"
        check sd-podman-rm pm rm "$name"
        if unit_gone "$unit"; then pass sd-podman-scope-gone; else fail sd-podman-scope-gone "$(prop "$unit" ActiveState)"; fi
        left=$(dirs_left "machine.slice/$unit")
        if [ -z "$left" ]; then pass sd-podman-dirs-gone; else fail sd-podman-dirs-gone "$left"; fi
    else
        fail sd-podman-run "$cid"
    fi
    pm rm -f "$name" >/dev/null 2>&1
else
    fail sd-podman-run "busybox_image failed"
fi

# --- containerd's runc shim with SystemdCgroup (ctr --runc-systemd-cgroup) --
if command -v ctr >/dev/null && timeout 60 systemctl start containerd 2>/dev/null; then
    ns=skiff
    ctr_() { timeout 180 ctr -n "$ns" "$@"; }
    img=localhost/busybox:latest
    if ! ctr_ image ls -q | grep -qx "$img"; then
        podman save --format oci-archive -o "$work/bb.tar" "$img" >/dev/null 2>&1 &&
            ctr_ image import --base-name localhost/busybox "$work/bb.tar" >/dev/null 2>&1
    fi
    if ctr_ image ls -q | grep -qx "$img"; then
        id=sdc$$
        unit=ctr-$id.scope
        if check sd-ctr-run ctr_ run -d --runc-binary "$SKIFF" --runc-systemd-cgroup \
            --cgroup "system.slice:ctr:$id" --memory-limit 67108864 "$img" "$id" sleep 1000; then
            eq sd-ctr-scope active "$(prop "$unit" ActiveState)"
            eq sd-ctr-prop-memory 67108864 "$(prop "$unit" $MEMP)"
            eq sd-ctr-file-memory 67108864 "$(cat "$(cgdir memory "system.slice/$unit")/$MEMF" 2>&1)"
            check sd-ctr-kill ctr_ task kill -s KILL "$id"
            i=0
            while ctr_ task ls 2>/dev/null | grep -q "^$id .*RUNNING" && [ $i -lt 100 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            check sd-ctr-task-delete ctr_ task delete "$id"
            check sd-ctr-container-delete ctr_ container delete "$id"
            if unit_gone "$unit" && [ -z "$(dirs_left "system.slice/$unit")" ]; then
                pass sd-ctr-gone
            else
                fail sd-ctr-gone "unit $(prop "$unit" ActiveState); dirs $(dirs_left "system.slice/$unit")"
            fi
        fi
        ctr_ task kill -s KILL "$id" >/dev/null 2>&1
        ctr_ task delete "$id" >/dev/null 2>&1
        ctr_ container delete "$id" >/dev/null 2>&1
    else
        skip sd-ctr-run "could not import the busybox image into containerd"
    fi
else
    skip sd-ctr-run "containerd not available in this VM"
fi

rm -rf "$work"
