#!/bin/bash
# vm: hybrid
# Smoke checks of the Debian systemd VM (scripts/vm/debian.sh): the VM is
# what the other checks assume (systemd PID 1, the requested cgroup layout,
# the system bus, CRIU) and skiff runs a container, directly and under podman.
. /skiff/lib.sh
want=$(cat /skiff/cgroup 2>/dev/null || echo v2)

comm=$(cat /proc/1/comm)
if [ "$comm" = systemd ]; then pass smoke-systemd-pid1; else fail smoke-systemd-pid1 "PID 1 is $comm"; fi

state=$(timeout 120 systemctl is-system-running --wait 2>&1)
case "$state" in
    running) pass smoke-system-running ;;
    degraded)
        pass smoke-system-running
        info "smoke: system degraded; failed units: $(systemctl list-units --state=failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
        ;;
    *) fail smoke-system-running "systemctl is-system-running: $state" ;;
esac

fstype=$(stat -f -c %T /sys/fs/cgroup)
case "$want" in
    v2)
        ctrl=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)
        missing=
        for c in memory pids cpu; do
            case " $ctrl " in *" $c "*) ;; *) missing="$missing $c" ;; esac
        done
        if [ "$fstype" = cgroup2fs ] && [ -z "$missing" ]; then
            pass smoke-cgroup-v2
        else
            fail smoke-cgroup-v2 "/sys/fs/cgroup is $fstype, controllers '$ctrl', missing:$missing"
        fi
        ;;
    hybrid)
        if [ "$(stat -f -c %T /sys/fs/cgroup/memory 2>/dev/null)" = cgroupfs ] &&
            grep -q ' /sys/fs/cgroup/memory cgroup .*memory' /proc/self/mounts &&
            { [ -d /sys/fs/cgroup/systemd/system.slice ] || [ -d /sys/fs/cgroup/unified/system.slice ]; }; then
            pass smoke-cgroup-hybrid
            info "smoke: v1 controllers: $(awk '$3 == "cgroup" {print $2}' /proc/self/mounts | sed 's|/sys/fs/cgroup/||' | tr '\n' ' ')"
        else
            fail smoke-cgroup-hybrid "/sys/fs/cgroup is $fstype; mounts: $(grep cgroup /proc/self/mounts | tr '\n' ';')"
        fi
        ;;
esac

check smoke-dbus timeout 30 busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId

out=$(timeout 60 criu check 2>&1)
case "$out" in
    *"Looks good"*) pass smoke-criu-check ;;
    *) fail smoke-criu-check "$(printf '%s' "$out" | tail -3 | tr '\n' ' ')" ;;
esac

b=$(mktemp -d)
if mkbundle "$b" sh -c 'echo hi'; then
    out=$(cd "$b" && timeout 60 "$SKIFF" run smoke-$$ 2>&1)
    if [ "$out" = hi ]; then pass smoke-skiff-run; else fail smoke-skiff-run "output: $out"; fi
    timeout 30 "$SKIFF" delete -f smoke-$$ >/dev/null 2>&1
else
    fail smoke-skiff-run "mkbundle failed"
fi
rm -rf "$b"

if busybox_image; then
    t0=$(cut -d' ' -f1 /proc/uptime)
    out=$(timeout 120 podman --runtime "$SKIFF" --cgroup-manager cgroupfs run --rm --network none \
        localhost/busybox:latest echo hi 2>&1)
    if [ "$out" = hi ]; then pass smoke-podman-run; else fail smoke-podman-run "output: $out"; fi
    info "smoke: podman run took $(awk -v t0="$t0" '{printf "%.1f", $1 - t0}' /proc/uptime) s"
else
    fail smoke-podman-run "busybox_image failed"
fi
