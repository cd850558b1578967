"""difftest's cgroup v2 part: v2-only resource fields, skiff against crun,
inside the VM of scripts/vm/run.sh (this host is v1 hybrid).

  v2.py gen OUTDIR N SEED      bundles OUTDIR/dt<i>/config.json + OUTDIR/rootfs
  v2.py compare LOG N SEED     reads the VM console log, prints differences
                               and `difftest-v2: N configs, D differences`

The VM (scripts/vm/difftest.sh) runs each bundle with each runtime and
prints `DT <i> <rt> rc=<rc>` and `DTV <i> <rt> <key>=<value>` lines: the
observer's cgroup view (cg.*, cgroup, the /sys/fs/cgroup mounts, end).
"""

import json
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

RUNTIMES = ("skiff", "crun")
VIEW_PREFIXES = ("cg.", "cgroup=", "mount./sys/fs/cgroup", "end=")


def gen_config(seed, i):
    r = random.Random("difftest-v2:%d:%d" % (seed, i))
    res = {}
    if r.random() < 0.7:
        m = {"limit": r.choice([32 << 20, 64 << 20, 256 << 20])}
        if r.random() < 0.4:
            m["reservation"] = r.choice([8 << 20, 16 << 20])
        if r.random() < 0.4:
            m["swap"] = r.choice([m["limit"], m["limit"] * 2, -1])
        res["memory"] = m
    if r.random() < 0.6:
        cpu = {}
        if r.random() < 0.6:
            cpu["shares"] = r.choice([2, 512, 1024, 4096, 262144])
        if r.random() < 0.5:
            cpu["quota"] = r.choice([20000, 50000, -1])
            cpu["period"] = r.choice([100000, 50000])
        if r.random() < 0.3:
            cpu["cpus"] = r.choice(["0", "0-1"])
            cpu["mems"] = "0"
        res["cpu"] = cpu
    if r.random() < 0.5:
        res["pids"] = {"limit": r.choice([16, 100, -1])}
    if r.random() < 0.4:
        unified = {}
        for k, vals in [("memory.high", ["max", "50000000"]), ("pids.max", ["20", "max"]),
                        ("cpu.weight", ["50", "100"]), ("memory.low", ["1048576"])]:
            if r.random() < 0.4:
                unified[k] = r.choice(vals)
        if unified:
            res["unified"] = unified
    ns = [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")]
    if r.random() < 0.6:
        ns.append({"type": "cgroup"})
    c = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/obs"],
                    "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": True},
        "root": {"path": "../rootfs", "readonly": True},
        "hostname": "v2",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {"namespaces": ns, "cgroupsPath": "/dt-@RT/dt%d" % i, "resources": res},
    }
    return c


def gen(out, n, seed, observer):
    os.makedirs(os.path.join(out, "rootfs"))
    for d in ("proc", "sys", "dev", "tmp", "difftest"):
        os.makedirs(os.path.join(out, "rootfs", d))
    shutil.copy2(observer, os.path.join(out, "rootfs", "obs"))
    for i in range(n):
        c = gen_config(seed, i)
        for rt in RUNTIMES:
            d = os.path.join(out, "dt%d-%s" % (i, rt))
            os.makedirs(d)
            text = json.dumps(c).replace("@RT", rt)
            with open(os.path.join(d, "config.json"), "w") as f:
                f.write(text)


def parse(log):
    res = {}
    for line in log.splitlines():
        line = line.rstrip("\r")
        if line.startswith("DT "):
            _, i, rt, rc = line.split(" ", 3)
            res.setdefault(int(i), {})[rt] = {"rc": int(rc.split("=")[1]), "view": {}}
        elif line.startswith("DTV "):
            _, i, rt, kv = line.split(" ", 3)
            k, _, v = kv.partition("=")
            res.setdefault(int(i), {}).setdefault(rt, {"rc": None, "view": {}})["view"][k] = v
    return res


def phase(r):
    if not r["view"]:
        return "create"
    return "ok" if r["rc"] == 0 else "exit=%s" % r["rc"]


def compare_log(log, n, seed, entries):
    res = parse(log)
    differing = 0
    phases = {}
    keys = 0
    for i in range(n):
        got = res.get(i, {})
        c = gen_config(seed, i)
        results = {}
        for rt in RUNTIMES:
            r = got.get(rt, {"rc": None, "view": {}})
            view = {k: v.replace("dt-%s" % rt, "dt-RT") for k, v in r["view"].items()}
            results[rt] = {"phase": phase(r), "view": view}
        # Two runtimes: reuse the three-way comparison with skiff as the
        # third, so a difference reads "crun" (or "skiff") odd.
        results3 = {"skiff": results["skiff"], "crun": results["crun"], "runc": results["skiff"]}
        ph = "/".join(results[rt]["phase"] for rt in RUNTIMES)
        phases[ph] = phases.get(ph, 0) + 1
        keys += len(results["skiff"]["view"])
        diffs = compare.differences(results3)
        bad = [d for d in diffs if not compare.explain(d, c, entries)]
        if bad:
            differing += 1
            print("v2 config %d (seed %d): %d difference(s)" % (i, seed, len(bad)))
            for key, vals, _ in bad:
                print("  %s\n    skiff %s\n    crun  %s" % (key, vals["skiff"], vals["crun"]))
    print("difftest-v2 phases (skiff/crun): %s; %d cgroup keys compared" % (
        ", ".join("%d %s" % (v, k) for k, v in sorted(phases.items())), keys))
    print("difftest-v2: %d configs, %d differences" % (n, differing))
    return differing


def main():
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    with open(sys.argv[2], encoding="utf-8", errors="replace") as f:
        log = f.read()
    entries = compare.load_explained(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "explained-v2.json"))
    return 1 if compare_log(log, int(sys.argv[3]), int(sys.argv[4]), entries) else 0


if __name__ == "__main__":
    sys.exit(main())
