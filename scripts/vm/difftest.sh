#!/bin/sh
# Runs inside the cgroup v2 VM after checks.sh: difftest's v2 part. Each
# /dt/dt<i>-<runtime> bundle (scripts/difftest/v2.py gen) runs with its
# runtime; the host compares (v2.py compare) the lines printed here:
#   DT <i> <rt> rc=<rc>   and   DTV <i> <rt> <key>=<value> (cgroup view)
n=$(ls -d /dt/dt*-skiff 2>/dev/null | wc -l)
i=0
while [ "$i" -lt "$n" ]; do
    for rt in skiff crun; do
        out=$($rt --root /run/dt-$rt run --bundle /dt/dt$i-$rt dt$i 2>/tmp/dt-err </dev/null)
        rc=$?
        echo "DT $i $rt rc=$rc"
        echo "$out" | grep -E '^(cg\.|cgroup=|mount\./sys/fs/cgroup|end=)' | sed "s/^/DTV $i $rt /"
        if [ -z "$out" ]; then echo "DTE $i $rt $(head -c 300 /tmp/dt-err | tr '\n' ' ')"; fi
        $rt --root /run/dt-$rt delete --force dt$i >/dev/null 2>&1
    done
    i=$((i + 1))
done
echo "VM: difftest finished ($n configs)"
