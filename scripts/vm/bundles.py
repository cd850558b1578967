#!/usr/bin/env python3
"""Writes the bundles the cgroup v2 VM checks run (scripts/vm/checks.sh).

Usage: bundles.py SKIFF OUTDIR. Each bundle starts from `skiff spec`, so the
VM checks the runtime's own default config, plus a cgroup namespace."""
import json, os, subprocess, sys, tempfile

skiff, out = sys.argv[1], sys.argv[2]
rootfs = os.path.join(out, "rootfs", "bin")
os.makedirs(rootfs)
subprocess.run(["cp", "/bin/busybox", rootfs], check=True)
for app in ["sh", "cat", "grep", "echo", "sleep", "head", "dd", "seq", "ls", "true", "tr"]:
    os.symlink("busybox", os.path.join(rootfs, app))

with tempfile.TemporaryDirectory() as t:
    subprocess.run([skiff, "spec", "--bundle", t], check=True)
    base = json.load(open(os.path.join(t, "config.json")))


def bundle(name, script, resources=None, devices=None):
    c = json.loads(json.dumps(base))
    c["root"] = {"path": "../rootfs", "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = ["sh", "-c", script]
    c["linux"]["namespaces"].append({"type": "cgroup"})
    c["linux"]["cgroupsPath"] = "/skiff-vm/" + name
    c["linux"].setdefault("resources", {}).update(resources or {})
    if devices:
        c["linux"]["devices"] = devices
    d = os.path.join(out, name)
    os.makedirs(d)
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)


F = "/sys/fs/cgroup/"
bundle("limits",
       f"echo mem=$(cat {F}memory.max); echo swap=$(cat {F}memory.swap.max); "
       f"echo pids=$(cat {F}pids.max); echo cpu=$(cat {F}cpu.max); "
       f"echo weight=$(cat {F}cpu.weight); echo cg=$(cat /proc/self/cgroup); sleep 1",
       {"memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 32},
        "cpu": {"quota": 50000, "period": 100000, "shares": 1024}})
bundle("pids",
       # Only builtins after the loop: with pids.max reached, nothing can fork.
       # busybox sh exits when a fork fails, so the bomb runs in a child shell.
       "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null; "
       f"read cur < {F}pids.current; read ev < {F}pids.events; echo started=$cur; echo $ev; kill -9 -1",
       {"pids": {"limit": 16}})
# /dev/loop0 is made in the container by the runtime; only the cgroup's
# device program decides whether opening it works.
DEV = ("echo x > /dev/null && echo null=ok; [ -b /dev/loop0 ] && echo loopdev=present; "
       "head -c1 /dev/loop0 >/dev/null 2>&1 && echo loop=read || echo loop=denied")
LOOP = [{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0, "fileMode": 0o644}]
bundle("devices", DEV, devices=LOOP)
bundle("devices-allowed", DEV, devices=LOOP,
       resources={"devices": [{"allow": False, "access": "rwm"},
                              {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]})
bundle("oom", "dd if=/dev/zero of=/dev/null bs=64M count=1",
       {"memory": {"limit": 16 << 20, "swap": 16 << 20}})
bundle("io", f"echo io=$(cat {F}io.max)",
       {"blockIO": {"throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 500}]}})
bundle("sleep", "sleep 600")
bundle("frozen", "true")
