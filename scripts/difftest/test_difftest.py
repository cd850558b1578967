"""Unit tests of difftest's generator, comparator and shrinker (no root,
no runtime): python3 -m unittest discover -s scripts/difftest -p 'test_*.py'."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import gen  # noqa: E402
import shrink  # noqa: E402

HOST = {"rlimit_hard": {"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 5000, "RLIMIT_CORE": 2**64 - 1,
                        "RLIMIT_STACK": 2**64 - 1, "RLIMIT_MEMLOCK": 8 << 20},
        "oom_floor": 0, "ncpu": 2, "caps": list(gen.CAPS)}


class Generator(unittest.TestCase):
    def test_same_seed_same_configs(self):
        for i in range(30):
            self.assertEqual(json.dumps(gen.generate(7, i, HOST)), json.dumps(gen.generate(7, i, HOST)))

    def test_config_i_does_not_depend_on_the_others(self):
        a = [gen.generate(3, i, HOST) for i in range(10)]
        self.assertEqual(json.dumps(a[9]), json.dumps(gen.generate(3, 9, HOST)))

    def test_seeds_and_indices_differ(self):
        texts = {json.dumps(gen.generate(s, i, HOST)) for s in (1, 2) for i in range(20)}
        self.assertEqual(len(texts), 40)

    def test_values_stay_within_the_host(self):
        for i in range(300):
            c = gen.generate(11, i, HOST)
            p = c["process"]
            self.assertEqual(p["args"], ["/obs"])
            bad = c.get("annotations", {}).get("difftest.bad")
            for rl in p.get("rlimits", []):
                if bad not in ("rlimit-soft-gt-hard", "rlimit-dup"):
                    self.assertLessEqual(rl["hard"], HOST["rlimit_hard"][rl["type"]], rl)
                    self.assertLessEqual(rl["soft"], rl["hard"], rl)
            if bad != "oom-negative" and "oomScoreAdj" in p:
                self.assertGreaterEqual(p["oomScoreAdj"], HOST["oom_floor"])
                self.assertLessEqual(p["oomScoreAdj"], 1000)
            types = [n["type"] for n in c["linux"]["namespaces"]]
            self.assertEqual(len(types), len(set(types)))
            if bad != "no-mount-ns":
                self.assertIn("mount", types)
            caps = p.get("capabilities", {})
            if bad not in ("caps", "unknown-cap"):
                self.assertLessEqual(set(caps.get("effective", [])), set(caps.get("permitted", [])))
                self.assertLessEqual(set(caps.get("ambient", [])), set(caps.get("inheritable", [])))

    def test_every_field_kind_shows_up(self):
        seen = set()
        for i in range(400):
            c = gen.generate(5, i, HOST)
            seen |= set(c) | {"linux." + k for k in c["linux"]} | {"process." + k for k in c["process"]}
        for f in ["hostname", "domainname", "hooks", "annotations", "linux.seccomp", "linux.sysctl",
                  "linux.resources", "linux.rootfsPropagation", "linux.personality",
                  "linux.uidMappings", "linux.timeOffsets", "linux.devices", "process.rlimits",
                  "process.oomScoreAdj", "process.capabilities", "process.noNewPrivileges",
                  "process.ioPriority"]:
            self.assertIn(f, seen)


def ctx(rt="skiff"):
    return {"bundle": "/tmp/w/b-" + rt, "work": "/tmp/w", "rt": rt,
            "host_ns": {"net": "net:[1]", "mnt": "mnt:[2]", "time": "time:[3]"},
            "joined_ns": {"uts": "uts:[50]"}, "hooks_log": ""}


class Normalise(unittest.TestCase):
    def test_paths_namespaces_and_ids(self):
        for rt in ("skiff", "runc"):
            v = compare.normalise({
                "mount./": "ext4 /dev/vda root=/tmp/w/b-%s/rootfs rw,relatime [rw,discard] private" % rt,
                "mount./mnt/b0": "ext4 /dev/vda root=/tmp/w/src ro,relatime [ro] shared",
                "ns.net": "net:[1]", "ns.uts": "uts:[50]", "ns.ipc": "ipc:[77]",
                "ns.time": "time:[3]", "ns.time_for_children": "time:[3]",
                "cgroup": "4:memory:/dt-%s-x1" % rt,
                "cg.devices/devices.list": "c 1:3 rwm\\na *:* m",
            }, ctx(rt))
            self.assertEqual(v, {
                "mount./": "ext4 /dev/vda root=BUNDLE/rootfs rw,relatime [discard] private",
                "mount./mnt/b0": "ext4 /dev/vda root=WORK/src ro,relatime [] shared",
                "ns.net": "host", "ns.uts": "joined", "ns.ipc": "new",
                "ns.time": "host", "ns.time_for_children": "host",
                "cgroup": "4:memory:/dt-RT-x1",
                "cg.devices/devices.list": "a *:* m\\nc 1:3 rwm",
            })

    def test_hook_lines(self):
        state = json.dumps({"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 42,
                            "bundle": "/tmp/w/b-runc", "annotations": {"a": "b"}})
        c = ctx("runc")
        c["hooks_log"] = "prestart\thook prestart /tmp/w/b-runc/hooks.log\tB=2\x1fA=1\t%s\n" % state
        v = compare.normalise({"hooklog.00": "startContainer\thook x\t\t{}"}, c)
        self.assertEqual(v["hookhost.00.call"], "prestart [hook prestart BUNDLE/hooks.log]")
        self.assertEqual(v["hookhost.00.env"], "A=1,B=2")
        self.assertEqual(v["hookhost.00.state"],
                         'status=creating pid=yes id=c1 bundle=BUNDLE ann={"a": "b"}')
        self.assertEqual(v["hookhost.00.ver"], "1.0.2")
        self.assertEqual(v["hooklog.00.call"], "startContainer [hook x]")
        c["runner_env"] = ["A=1", "PWD=/x"]
        c["hooks_log"] = "prestart\tx\tB=2\x1fA=1\x1fSHLVL=1\t{}\n"
        v = compare.normalise({}, c)
        self.assertEqual(v["hookhost.00.env"], "<runtime env>,B=2")

    def test_parse_view(self):
        self.assertEqual(compare.parse_view("a=1\nb=x=y\nnoise\n"), {"a": "1", "b": "x=y"})


def res(phase, **view):
    return {"phase": phase, "view": view, "stderr": ""}


class Differences(unittest.TestCase):
    def test_equal_and_all_failing_alike(self):
        r = {rt: res("ok", a="1") for rt in compare.RUNTIMES}
        self.assertEqual(compare.differences(r), [])
        r = {"skiff": res("create"), "runc": res("create"), "crun": res("create")}
        self.assertEqual(compare.differences(r), [])

    def test_phase_first_then_keys_and_the_odd_one(self):
        r = {"skiff": res("ok", a="1"), "runc": res("create"), "crun": res("create")}
        self.assertEqual(compare.differences(r), [("phase", {"skiff": "ok", "runc": "create",
                                                              "crun": "create"}, "skiff")])
        r = {"skiff": res("ok", a="1", b="x"), "runc": res("ok", a="2", b="x"), "crun": res("ok", a="1")}
        d = compare.differences(r)
        self.assertEqual([(k, o) for k, _, o in d], [("a", "runc"), ("b", "crun")])
        self.assertEqual(d[1][1]["crun"], "<absent>")
        self.assertEqual(compare.odd_one({"skiff": 1, "runc": 2, "crun": 3}), "all")

    def test_explained_entries_match_key_odd_when_and_value(self):
        entries = [{"key": "phase", "odd": "skiff", "when": "'time' in ns", "reason": "t"},
                   {"key": "mount.*", "odd": "crun", "value": "*size=0k*", "reason": "m"}]
        cfg = {"linux": {"namespaces": [{"type": "time"}]}}
        d = ("phase", {"skiff": "ok", "runc": "create", "crun": "create"}, "skiff")
        self.assertEqual(compare.explain(d, cfg, entries)["reason"], "t")
        self.assertIsNone(compare.explain(d, {"linux": {"namespaces": []}}, entries))
        d = ("mount./x", {"skiff": "a", "runc": "a", "crun": "tmpfs [size=0k]"}, "crun")
        self.assertEqual(compare.explain(d, cfg, entries)["reason"], "m")
        d = ("mount./x", {"skiff": "a", "runc": "a", "crun": "other"}, "crun")
        self.assertIsNone(compare.explain(d, cfg, entries))

    def test_two_runtimes_each_explained_leave_the_third_alone(self):
        entries = [{"key": "phase", "odd": "runc", "when": "'time' in ns", "reason": "r"},
                   {"key": "phase", "odd": "crun", "value": "create", "reason": "c"}]
        cfg = {"linux": {"namespaces": [{"type": "time"}]}}
        d = ("phase", {"skiff": "ok", "runc": "timeout", "crun": "create"}, "all")
        self.assertEqual(compare.explain(d, cfg, entries)["reason"], "r AND c")
        # Only one of the two explained: skiff and the other still differ.
        self.assertIsNone(compare.explain(d, {"linux": {}}, entries))

    def test_the_repo_list_loads_and_has_reasons(self):
        entries = compare.load_explained(os.path.join(os.path.dirname(__file__), "explained.json"))
        self.assertTrue(entries)
        for e in entries:
            self.assertIn(e["odd"], ("skiff", "runc", "crun", "all", "*"))
            self.assertGreater(len(e["reason"]), 20)
            if "when" in e:
                compile(e["when"], "when", "eval")
        # Every condition evaluates on real configs (no NameError and the like).
        for i in range(50):
            cfg = gen.generate(13, i, HOST)
            for e in entries:
                compare._entry_for(e["key"].replace("*", "x"), "runc", "v", cfg, [e])


class Shrinker(unittest.TestCase):
    def test_fake_runtime_differs_on_two_fields(self):
        # A fake runtime that differs from its peers exactly when the config
        # has a tmpfs at /x and a hostname, whatever else is there.
        def differs(c):
            return c.get("hostname") and any(m.get("destination") == "/x" for m in c.get("mounts", []))
        calls = []

        def still(c):
            calls.append(1)
            return bool(differs(c))

        big = gen.generate(9, 0, HOST)
        big["hostname"] = "h"
        big["mounts"].append({"destination": "/x", "type": "tmpfs", "source": "tmpfs"})
        small, trials = shrink.shrink(big, still, max_trials=1000)
        self.assertEqual(trials, len(calls))
        self.assertEqual(small["hostname"], "h")
        self.assertEqual(small["mounts"], [{"destination": "/x"}])
        self.assertEqual(set(small), {"ociVersion", "root", "process", "hostname", "mounts"})
        self.assertEqual(small["process"], {"args": ["/obs"]})
        self.assertEqual(small["root"], {"path": "rootfs"})
        # Every remaining atom is needed: dropping any one ends the difference.
        for a in shrink.atoms(small):
            self.assertFalse(differs(shrink.without(small, a)), a)

    def test_trial_budget(self):
        small, trials = shrink.shrink(gen.generate(9, 1, HOST), lambda c: False, max_trials=5)
        self.assertEqual(trials, 5)

    def test_long_lists_go_whole(self):
        c = {"a": list(range(100)), "b": [1, 2]}
        self.assertEqual(shrink.atoms(c), [("a",), ("b",), ("b", 0), ("b", 1)])


if __name__ == "__main__":
    unittest.main()
