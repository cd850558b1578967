"""difftest runner: N generated configs through skiff, runc and crun.

Usage (as root; scripts/difftest.sh builds the binaries and calls this):
  python3 run.py --skiff BIN --runc BIN --crun BIN --observer BIN N SEED

Each runtime runs in a private mount namespace without
/sys/fs/cgroup/unified (crun 1.8 refuses this host's hybrid layout; the
other two are wrapped the same way so all three see the same host), with
its own --root, a fresh bundle per config, a timeout, and delete --force
after every run. A config whose results differ in a way explained.json
does not cover counts as a difference; it is shrunk (shrink.py) and written
out as a bundle under --out. Closing line: `difftest: N configs, D differences`.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import gen  # noqa: E402
import shrink  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UNIFIED = "/sys/fs/cgroup/unified"
WRAP = ["unshare", "-m", "sh", "-c", 'umount %s 2>/dev/null; exec "$0" "$@"' % UNIFIED]
NS_TYPES = {"cgroup": "cgroup", "ipc": "ipc", "mnt": "mnt", "net": "net", "pid": "pid",
            "time": "time", "user": "user", "uts": "uts"}
SPEC_NS = {"network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup",
           "time": "time", "pid": "pid", "user": "user"}


def ns_value(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


class Runner:
    def __init__(self, work, bins, observer, timeout=20):
        self.work = work
        self.bins = bins
        self.observer = observer
        self.timeout = timeout
        self.host_ns = {t: ns_value("/proc/self/ns/" + t) for t in NS_TYPES}
        self.src_mounted = False

    def setup(self):
        w = self.work
        os.makedirs(w, exist_ok=True)
        # A user namespace's root (host uid 100000) must reach the bundles.
        os.chmod(w, 0o755)
        shutil.copy2(self.observer, os.path.join(w, "obs"))
        src = os.path.join(w, "src")
        os.makedirs(os.path.join(src, "sub"), exist_ok=True)
        with open(os.path.join(src, "file"), "w") as f:
            f.write("bind source file\n")
        # A submount below the bind source: bind and rbind differ on it.
        if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=1m", "dtsub",
                            os.path.join(src, "sub")]) == 0:
            self.src_mounted = True
        tpl = os.path.join(w, "rootfs")
        for d in ["proc", "sys", "dev", "tmp", "etc", "difftest", "mnt"]:
            os.makedirs(os.path.join(tpl, d), exist_ok=True)
        os.chmod(os.path.join(tpl, "tmp"), 0o1777)
        with open(os.path.join(tpl, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
        with open(os.path.join(tpl, "etc", "group"), "w") as f:
            f.write("root:x:0:\nuser:x:1000:\n")
        shutil.copy2(self.observer, os.path.join(tpl, "obs"))
        for rt in self.bins:
            os.makedirs(os.path.join(w, "root-" + rt), exist_ok=True)

    def teardown(self):
        if self.src_mounted:
            subprocess.call(["umount", "-l", os.path.join(self.work, "src", "sub")])
            self.src_mounted = False

    def _holder(self, types):
        """A process holding fresh namespaces of the given types to join."""
        flags = {"net": "--net", "ipc": "--ipc", "uts": "--uts", "cgroup": "--cgroup",
                 "time": "--time"}
        args = ["unshare"] + [flags[t] for t in sorted(types) if t in flags] + ["sleep", "1000"]
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        paths = {}
        deadline = time.time() + 5
        for t in types:
            f = "time_for_children" if t == "time" else t
            path = "/proc/%d/ns/%s" % (p.pid, f)
            while time.time() < deadline:
                v = ns_value(path)
                if v and v != self.host_ns.get(t) and ns_value("/proc/%d/exe" % p.pid) != "/usr/bin/unshare":
                    break
                time.sleep(0.002)
            paths[t] = path
        return p, paths

    def materialise(self, config, rt, cid, bundle, ns_paths):
        def sub(x):
            if isinstance(x, dict):
                return {k: sub(v) for k, v in x.items()}
            if isinstance(x, list):
                return [sub(v) for v in x]
            if isinstance(x, str):
                if x.startswith("@NS:"):
                    return ns_paths.get(SPEC_NS.get(x[4:], x[4:]), "/proc/1/ns/" + x[4:])
                return (x.replace("@BUNDLE", bundle).replace("@WORK", self.work)
                        .replace("@OBS", os.path.join(self.work, "obs"))
                        .replace("@RT", rt).replace("@ID", cid))
            return x
        return sub(config)

    def make_bundle(self, bundle, cfg):
        if os.path.exists(bundle):
            shutil.rmtree(bundle)
        os.makedirs(bundle)
        tpl = os.path.join(self.work, "rootfs")
        shutil.copytree(tpl, os.path.join(bundle, "rootfs"), symlinks=True,
                        copy_function=os.link)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)

    def _cmd(self, rt, *args):
        return WRAP + [self.bins[rt], "--root", os.path.join(self.work, "root-" + rt)] + list(args)

    def run_one(self, rt, config, cid):
        """Runs config under rt; returns {"phase", "view", "stderr"}."""
        bundle = os.path.join(self.work, "b-" + rt)
        joins = {SPEC_NS.get(n["type"], n["type"]) for n in config.get("linux", {}).get("namespaces", [])
                 if str(n.get("path", "")).startswith("@NS:")}
        holder, ns_paths = (None, {})
        if joins:
            holder, ns_paths = self._holder(joins)
        try:
            cfg = self.materialise(config, rt, cid, bundle, ns_paths)
            self.make_bundle(bundle, cfg)
            p = subprocess.Popen(self._cmd(rt, "run", "--bundle", bundle, cid), cwd=self.work,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
            timed_out = False
            try:
                out, err = p.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                out, err = p.communicate()
            subprocess.call(self._cmd(rt, "delete", "--force", cid), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=self.timeout)
            text = out.decode("utf-8", "replace")
            view = compare.parse_view(text)
            if timed_out:
                phase = "timeout"
            elif not view:
                phase = "create"
            elif p.returncode == 0:
                phase = "ok"
            else:
                phase = "exit=%d" % p.returncode
            hooks_log = ""
            try:
                with open(os.path.join(bundle, "hooks.log"), encoding="utf-8", errors="replace") as f:
                    hooks_log = f.read()
            except OSError:
                pass
            joined = {t: ns_value(p_) for t, p_ in ns_paths.items()}
            ctx = {"bundle": bundle, "work": self.work, "rt": rt, "host_ns": self.host_ns,
                   "joined_ns": joined, "hooks_log": hooks_log,
                   "runner_env": ["%s=%s" % kv for kv in os.environ.items()]}
            return {"phase": phase, "view": compare.normalise(view, ctx),
                    "stderr": err.decode("utf-8", "replace").strip()}
        finally:
            if holder:
                holder.kill()
                holder.wait()

    def run_all(self, config, cid):
        return {rt: self.run_one(rt, config, cid) for rt in compare.RUNTIMES}


def unexplained(results, config, entries):
    diffs = compare.differences(results)
    return diffs, [d for d in diffs if not compare.explain(d, config, entries)]


def signature(d, results):
    """What shrinking must keep: the same key, the same odd one out, and for
    a phase difference each runtime's phase and the gist of its error (its
    first lines without times, numbers and paths), so that the shrunk
    config fails for the same reasons, not just in the same phases."""
    key, vals, odd = d
    if key != "phase":
        return (key, odd, None)

    def gist(rt):
        lines = results[rt]["stderr"].splitlines()[:3]
        return re.sub(r'time="[^"]*"|/[^ :"]*|0x[0-9a-f]+|\d+', "", " ".join(lines))[:160]
    # Every runtime's phase and error gist: a shrunk config must fail (or
    # not) the same way in all three, not just keep the odd one odd.
    return (key, odd, tuple((rt, vals.get(rt), gist(rt)) for rt in sorted(results)))


def write_bundle(outdir, config, runner, results, diffs):
    """A ready bundle: rootfs, config.json with host paths inside outdir."""
    if os.path.exists(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    shutil.copytree(os.path.join(runner.work, "rootfs"), os.path.join(outdir, "rootfs"), symlinks=True)
    shutil.copy2(runner.observer, os.path.join(outdir, "obs"))
    os.makedirs(os.path.join(outdir, "src", "sub"))
    shutil.copy2(os.path.join(runner.work, "src", "file"), os.path.join(outdir, "src", "file"))
    saved_work = runner.work
    runner.work = outdir
    try:
        cfg = runner.materialise(config, "skiff", "difftest", outdir, {})
    finally:
        runner.work = saved_work
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(outdir, "generated.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(outdir, "diff.txt"), "w") as f:
        f.write("# difftest: shrunk config; joined namespaces point at /proc/1/ns/*\n")
        f.write("# (the run used fresh ones), and src/sub had a tmpfs on it.\n")
        for rt in compare.RUNTIMES:
            f.write("# %s: phase %s; stderr: %s\n" % (rt, results[rt]["phase"],
                                                    results[rt]["stderr"][:300]))
        for d in diffs:
            f.write(compare.describe(d) + "\n")
    for rt in compare.RUNTIMES:
        with open(os.path.join(outdir, rt + ".view"), "w") as f:
            for k in sorted(results[rt]["view"]):
                f.write("%s=%s\n" % (k, results[rt]["view"][k]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--runc", required=True)
    ap.add_argument("--crun", required=True)
    ap.add_argument("--observer", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True, help="where shrunk bundles go")
    ap.add_argument("--explained", default=os.path.join(HERE, "explained.json"))
    ap.add_argument("--shrink", type=int, default=1, help="max configs to shrink (0: none)")
    ap.add_argument("--shrink-trials", type=int, default=120)
    ap.add_argument("--first", type=int, default=0, help="first config index")
    ap.add_argument("--verbose", action="store_true", help="print explained differences too")
    a = ap.parse_args()

    entries = compare.load_explained(a.explained)
    host = gen.host_facts()
    bins = {"skiff": a.skiff, "runc": a.runc, "crun": a.crun}
    runner = Runner(a.work, bins, a.observer)
    runner.setup()
    differing = 0
    shrunk = 0
    explained_hits = {}
    phases = {}
    t0 = time.time()
    try:
        for i in range(a.first, a.first + a.n):
            config = gen.generate(a.seed, i, host)
            cid = "dt%d-%d" % (a.seed, i)
            results = runner.run_all(config, cid)
            ph = "/".join(results[rt]["phase"] for rt in compare.RUNTIMES)
            phases[ph] = phases.get(ph, 0) + 1
            diffs, bad = unexplained(results, config, entries)
            for d in diffs:
                e = compare.explain(d, config, entries)
                if e:
                    explained_hits[e["reason"]] = explained_hits.get(e["reason"], 0) + 1
                    if a.verbose:
                        print("config %d (seed %d): explained\n%s" % (i, a.seed, compare.describe(d, e)))
            if not bad:
                continue
            differing += 1
            print("config %d (seed %d): %d unexplained difference(s)" % (i, a.seed, len(bad)))
            for d in bad:
                print(compare.describe(d))
            for rt in compare.RUNTIMES:
                if results[rt]["stderr"]:
                    print("    %s stderr: %s" % (rt, results[rt]["stderr"].splitlines()[-1][:240]))
            out = os.path.join(a.out, "%d-%d" % (a.seed, i))
            if shrunk < a.shrink:
                shrunk += 1
                keys = {signature(d, results) for d in bad}

                def still(c, keys=keys):
                    r = runner.run_all(c, cid)
                    return any(signature(d, r) in keys for d in unexplained(r, c, entries)[1])

                small, trials = shrink.shrink(config, still, a.shrink_trials)
                r = runner.run_all(small, cid)
                write_bundle(out, small, runner, r, unexplained(r, small, entries)[1])
                print("    shrunk in %d trials to %s/config.json" % (trials, out))
            else:
                r = results
                write_bundle(out, config, runner, r, bad)
                print("    not shrunk (limit); bundle in %s" % out)
    finally:
        runner.teardown()
    dt = time.time() - t0
    print("phases (skiff/runc/crun):")
    for ph, n in sorted(phases.items(), key=lambda x: -x[1]):
        print("  %5d %s" % (n, ph))
    if explained_hits:
        print("explained differences:")
        for reason, n in sorted(explained_hits.items(), key=lambda x: -x[1]):
            print("  %5d %s" % (n, reason))
    print("time: %.1f s, %.2f s per config" % (dt, dt / max(a.n, 1)))
    print("difftest: %d configs, %d differences" % (a.n, differing))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
