"""Config generator: random but spec-valid OCI configs from a seed.

generate(seed, i, host) -> dict is a pure function of its arguments:
config i of a seed does not depend on N, on the runtime or on earlier
configs. `host` carries the few host facts the values must respect (hard
rlimits, the oom_score_adj floor); host_facts() reads them.

Host-side paths are placeholders, filled in per runtime by run.py:
  @BUNDLE   the bundle directory        @WORK   the run's work directory
  @OBS      the observer on the host    @NS:<type>  a namespace to join
Every field below is present or absent at random; most values are valid,
a few are deliberately bad (then every runtime must fail the same way).
"""

import os
import random
import resource

SYSCALLS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "syscalls.txt")

CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

DEFAULT_MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
    "/proc/scsi",
]
EXTRA_MASKED = ["/proc/sys/kernel/ostype", "/difftest/nothere", "/etc/group", "/mnt"]
DEFAULT_READONLY = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]
EXTRA_READONLY = ["/etc", "/nonexistent/ro", "/proc/sys/kernel"]

RLIMITS = [
    "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_STACK", "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_MEMLOCK", "RLIMIT_FSIZE", "RLIMIT_AS",
    "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_RTTIME",
]

# Values that leave the observer (and hooks) room to run; capped by the host's hard limits.
RLIMIT_VALUES = {
    "RLIMIT_NOFILE": [4096, 1024, 64], "RLIMIT_NPROC": [4096, 64], "RLIMIT_CORE": [0, 1 << 20],
    "RLIMIT_STACK": [8 << 20, 16 << 20], "RLIMIT_MSGQUEUE": [819200, 4096],
    "RLIMIT_NICE": [0], "RLIMIT_RTPRIO": [0], "RLIMIT_MEMLOCK": [65536, 8 << 20],
    "RLIMIT_FSIZE": [1 << 30], "RLIMIT_AS": [1 << 34], "RLIMIT_CPU": [3600],
    "RLIMIT_DATA": [1 << 34], "RLIMIT_LOCKS": [1024], "RLIMIT_SIGPENDING": [1024],
    "RLIMIT_RTTIME": [1000000],
}

# name -> (namespace it needs, candidate values); the observer reads them.
SYSCTLS = {
    "kernel.shmmax": ("ipc", ["68719476736", "4096000"]),
    "kernel.shmall": ("ipc", ["2097152", "1000"]),
    "kernel.msgmax": ("ipc", ["8192", "16384"]),
    "kernel.msgmnb": ("ipc", ["16384", "32768"]),
    "kernel.sem": ("ipc", ["250 32000 32 128", "100 1000 10 10"]),
    "fs.mqueue.msg_max": ("ipc", ["10", "64"]),
    "fs.mqueue.queues_max": ("ipc", ["256", "100"]),
    "net.ipv4.ip_forward": ("network", ["0", "1"]),
    "net.ipv4.ping_group_range": ("network", ["0 0", "1 0"]),
    "net.core.somaxconn": ("network", ["4096", "128"]),
    "net.ipv4.tcp_syncookies": ("network", ["1", "0"]),
}

# The observer's seccomp probes (tools/observer: PROBES), by syscall name.
PROBE_SYSCALLS = ["getppid", "getpgrp", "getpriority", "getsid", "sched_yield",
                  "sysinfo", "times", "getitimer", "alarm"]

HOOK_KINDS = ["prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop"]

# The deliberate oddities, at most one per config.
BAD = ["no-mount-ns", "no-userns-map", "no-proc", "proc-elsewhere", "env-no-equals",
       "cwd-relative", "rlimit-soft-gt-hard", "rlimit-dup", "oom-negative", "hook-fails",
       "pids-0", "hostname-no-uts", "sysctl-no-ns", "caps", "unknown-cap",
       "rootfs-propagation"]

PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave",
                "unbindable", "runbindable"]


def host_facts():
    """The host limits generated values must stay within."""
    hard = {}
    for name in RLIMITS:
        num = getattr(resource, name, None)
        if num is None:
            continue
        h = resource.getrlimit(num)[1]
        hard[name] = h if h != resource.RLIM_INFINITY else 2**64 - 1
    with open("/proc/self/oom_score_adj") as f:
        oom = int(f.read())
    with open("/proc/self/status") as f:
        bnd = int(f.read().split("CapBnd:")[1].split()[0], 16)
    caps = [c for i, c in enumerate(CAPS) if bnd >> i & 1]
    return {"rlimit_hard": hard, "oom_floor": oom, "ncpu": os.cpu_count() or 1, "caps": caps}


def _syscalls():
    with open(SYSCALLS_FILE) as f:
        return [l.strip() for l in f if l.strip()]


def _subset(r, pool, p=0.5):
    return [x for x in pool if r.random() < p]


def _maybe(r, p):
    return r.random() < p


def gen_namespaces(r, c, bad):
    ns = []
    modes = {
        # type: (p_new, p_joined)
        "pid": (0.9, 0.0),
        "network": (0.75, 0.1),
        "ipc": (0.75, 0.1),
        "uts": (0.75, 0.1),
        "mount": (1.0, 0.0),
        "cgroup": (0.5, 0.1),
        "user": (0.12, 0.0),
        "time": (0.12, 0.03),
    }
    for t, (pn, pj) in modes.items():
        x = r.random()
        if x < pn:
            ns.append({"type": t})
        elif x < pn + pj:
            ns.append({"type": t, "path": "@NS:" + t})
    if bad == "no-mount-ns":
        ns = [n for n in ns if n["type"] != "mount"]
    r.shuffle(ns)
    c["linux"]["namespaces"] = ns
    types = {n["type"] for n in ns}
    if "user" in types and bad != "no-userns-map":
        size = r.choice([65536, 1000, 1])
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": size}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": size}]
    if "time" in types and _maybe(r, 0.5):
        c["linux"]["timeOffsets"] = {
            "monotonic": {"secs": r.choice([86400, -10, 0]), "nanosecs": 0},
            "boottime": {"secs": r.choice([3600, 0]), "nanosecs": r.choice([0, 500])},
        }
    return types


def gen_mounts(r, c, types, bad):
    mounts = []

    def std(dest, typ, src, opts):
        if _maybe(r, 0.9):
            mounts.append({"destination": dest, "type": typ, "source": src, "options": opts})

    if bad != "no-proc":
        mounts.append({"destination": "/proc", "type": "proc", "source": "proc", "options": []})
    dev_opts = ["nosuid", "strictatime", "mode=755", "size=65536k"]
    if _maybe(r, 0.2):
        dev_opts = r.sample(dev_opts, len(dev_opts) - 1)
    std("/dev", "tmpfs", "tmpfs", dev_opts)
    std("/dev/pts", "devpts", "devpts",
        ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
        + (["gid=5"] if "user" not in types else []))
    std("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])
    std("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"])
    std("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"])
    std("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"])
    # The startContainer hooks write here (always present: not a variable).
    mounts.append({"destination": "/difftest", "type": "tmpfs", "source": "tmpfs",
                   "options": ["mode=1777"]})
    flag_pool = ["ro", "rw", "nosuid", "nodev", "noexec", "noatime", "nodiratime",
                 "relatime", "strictatime", "sync", "dirsync", "suid", "dev", "exec"]
    rec_pool = ["rro", "rrw", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rrelatime",
                "rnosymfollow", "nosymfollow"]
    for k in range(r.choice([0, 0, 1, 2, 3])):
        kind = r.choice(["bind", "rbind", "file", "tmpfs", "tmpfs"])
        if bad == "proc-elsewhere" and k == 0:
            kind = "proc-ro"
        opts = _subset(r, flag_pool, 0.12)
        if _maybe(r, 0.3):
            opts += _subset(r, rec_pool, 0.2)
        if _maybe(r, 0.35):
            opts.append(r.choice(PROPAGATIONS))
        r.shuffle(opts)
        if kind in ("bind", "rbind"):
            m = {"destination": f"/mnt/b{k}", "type": "bind", "source": "@WORK/src",
                 "options": [kind] + opts}
            if _maybe(r, 0.15):
                del m["type"]
        elif kind == "file":
            m = {"destination": f"/etc/bindfile{k}", "type": "bind",
                 "source": "@WORK/src/file", "options": ["bind"] + opts}
        elif kind == "tmpfs":
            m = {"destination": r.choice([f"/mnt/t{k}", "/tmp", f"/tmp/deep/t{k}"]),
                 "type": "tmpfs", "source": "tmpfs",
                 "options": opts + _subset(r, ["mode=700", "size=1m", "uid=1000", "gid=1000",
                                               "nr_inodes=100"], 0.3)}
        else:
            m = {"destination": f"/mnt/p{k}", "type": "proc", "source": "proc",
                 "options": ["ro"] + opts}
        mounts.append(m)
    c["mounts"] = mounts


def gen_process(r, c, host, bad):
    p = c["process"]
    p["user"] = {"uid": r.choice([0, 0, 0, 1000, 65534]), "gid": r.choice([0, 0, 1000, 65534])}
    if _maybe(r, 0.35):
        p["user"]["additionalGids"] = _subset(r, [1, 2, 10, 1000, 65534], 0.4)
    if _maybe(r, 0.35):
        p["user"]["umask"] = r.choice([0, 0o22, 0o77, 0o27, 0o777])
    env = ["PATH=/usr/local/bin:/usr/bin:/bin", "TERM=xterm"]
    env += _subset(r, ["A=1", "B=two words", "EMPTY=", "HOME=/tmp", "DUP=1", "DUP=2",
                       "UNICODE=\u00e9t\u00e9", "EQ=a=b"], 0.25)
    if _maybe(r, 0.1):
        env = env[1:]  # no PATH
    if _maybe(r, 0.05):
        env = []
    if bad == "env-no-equals":
        env.append("NOEQUALS")
    p["env"] = env
    p["cwd"] = r.choice(["/", "/", "/tmp", "/difftest", "/newdir/sub", "/proc", "/etc"])
    if bad == "cwd-relative":
        p["cwd"] = "tmp"
    if _maybe(r, 0.7):
        # Consistent sets (effective, inheritable <= permitted <= bounding,
        # ambient <= permitted & inheritable); BAD "caps" makes them random.
        bnd = list(DEFAULT_CAPS) if _maybe(r, 0.5) else _subset(r, host["caps"], 0.4)
        prm = [x for x in bnd if r.random() < 0.8]
        sets = {"bounding": bnd, "permitted": prm,
                "effective": [x for x in prm if r.random() < 0.8],
                "inheritable": [x for x in prm if r.random() < 0.4]}
        sets["ambient"] = [x for x in sets["inheritable"] if r.random() < 0.5]
        if bad == "caps":
            sets = {k: _subset(r, CAPS, 0.25) for k in sets}
        if bad == "unknown-cap":
            sets["bounding"] = sets["bounding"] + ["CAP_NOT_A_CAP"]
        caps = dict(sets)
        # An absent set is empty: drop the sets that must be inside it too.
        if r.random() < 0.1:
            for k in ("bounding", "inheritable", "ambient"):
                caps.pop(k, None)
        if r.random() < 0.1:
            for k in ("permitted", "effective", "inheritable", "ambient"):
                caps.pop(k, None)
        for k in ("effective", "inheritable", "ambient"):
            if r.random() < 0.1:
                caps.pop(k, None)
                if k == "inheritable":
                    caps.pop("ambient", None)
        p["capabilities"] = caps
    else:
        p.pop("capabilities", None)
    if _maybe(r, 0.6):
        rl = []
        for name in _subset(r, RLIMITS, 0.25):
            hard = host["rlimit_hard"].get(name)
            if hard is None:
                continue
            h = min(hard, r.choice(RLIMIT_VALUES[name] + [hard]))
            s = r.choice([h, min(h, r.choice(RLIMIT_VALUES[name]))])
            rl.append({"type": name, "hard": h, "soft": s})
        if bad == "rlimit-soft-gt-hard" and rl:
            rl[0]["soft"] = rl[0]["hard"] + 1 if rl[0]["hard"] < 2**63 else 1
            rl[0]["hard"] = min(rl[0]["hard"], 1)
        if bad == "rlimit-dup" and rl:
            rl.append(dict(rl[0], soft=0))
        p["rlimits"] = rl
    else:
        p.pop("rlimits", None)
    x = r.random()
    if x < 0.4:
        p["noNewPrivileges"] = True
    elif x < 0.7:
        p["noNewPrivileges"] = False
    else:
        p.pop("noNewPrivileges", None)
    if _maybe(r, 0.4):
        floor = host["oom_floor"]
        p["oomScoreAdj"] = r.choice([floor, floor + 100, 500, 1000]) if floor <= 500 else 1000
        p["oomScoreAdj"] = min(p["oomScoreAdj"], 1000)
    if bad == "oom-negative":
        p["oomScoreAdj"] = -100
    if _maybe(r, 0.08):
        p["ioPriority"] = {"class": r.choice(["IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]),
                           "priority": r.choice([0, 4, 7])}


def gen_seccomp(r, c):
    pool = list(PROBE_SYSCALLS)
    deny = _subset(r, pool, 0.35) or [r.choice(pool)]
    kill_ok = _maybe(r, 0.25)

    def action():
        a = r.choice(["SCMP_ACT_ERRNO"] * 4 + (["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS"]
                                                if kill_ok else []) + ["SCMP_ACT_TRACE"])
        return a

    def rule(names, act):
        rr = {"names": names, "action": act}
        if act in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") and _maybe(r, 0.5):
            rr["errnoRet"] = r.choice([1, 13, 22, 38])
        if _maybe(r, 0.25) and names in (["getpriority"], ["getsid"]):
            rr["args"] = [{"index": 0, "value": r.choice([0, 1]),
                           "op": r.choice(["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_GT"])}]
        return rr

    arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    if _maybe(r, 0.5):
        # deny-list: allow by default, rules refuse.
        sc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
        for name in deny:
            sc["syscalls"].append(rule([name], action()))
    else:
        # allow-list: refuse by default, allow every known call but the denied.
        sc = {"defaultAction": r.choice(["SCMP_ACT_ERRNO", "SCMP_ACT_ERRNO",
                                         "SCMP_ACT_KILL_PROCESS" if kill_ok else "SCMP_ACT_ERRNO"]),
              "syscalls": [{"names": [s for s in _syscalls() if s not in deny],
                            "action": "SCMP_ACT_ALLOW"}]}
        if sc["defaultAction"] == "SCMP_ACT_ERRNO" and _maybe(r, 0.5):
            sc["defaultErrnoRet"] = r.choice([1, 38])
    if _maybe(r, 0.6):
        sc["architectures"] = _subset(r, arches, 0.6) or arches[:1]
    if _maybe(r, 0.05):
        sc["flags"] = [r.choice(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])]
    c["linux"]["seccomp"] = sc


def gen_hooks(r, c, bad):
    hooks = {}
    for kind in _subset(r, HOOK_KINDS, 0.35):
        lst = []
        for j in range(r.choice([1, 1, 2])):
            if kind == "startContainer":
                # One file per hook: it runs as the container's user, and a
                # sticky tmpfs refuses appending to another's file.
                h = {"path": "/obs", "args": ["obs", "hook", kind, "/difftest/hooks.%d.log" % j]}
            else:
                h = {"path": "@OBS", "args": ["obs", "hook", kind, "@BUNDLE/hooks.log"]}
            if _maybe(r, 0.3):
                h["env"] = ["HOOKVAR=1", "PATH=/bin"]
            if _maybe(r, 0.2):
                h["timeout"] = 10
            if bad == "hook-fails" and not lst:
                h["args"].append("fail")
            lst.append(h)
        hooks[kind] = lst
    if hooks:
        c["hooks"] = hooks


def gen_resources(r, c, host, bad):
    res = c["linux"].setdefault("resources", {})
    if _maybe(r, 0.3):
        m = {}
        if _maybe(r, 0.8):
            m["limit"] = r.choice([64 << 20, 256 << 20, 1 << 30, -1])
        if _maybe(r, 0.3):
            m["reservation"] = r.choice([32 << 20, 128 << 20])
        if _maybe(r, 0.3) and m.get("limit", 0) > 0:
            m["swap"] = r.choice([m["limit"], m["limit"] * 2, -1])
        if _maybe(r, 0.2):
            m["swappiness"] = r.choice([0, 60, 100])
        if _maybe(r, 0.15):
            m["disableOOMKiller"] = r.choice([True, False])
        res["memory"] = m
    if _maybe(r, 0.3):
        cpu = {}
        if _maybe(r, 0.5):
            cpu["shares"] = r.choice([2, 512, 1024, 4096])
        if _maybe(r, 0.4):
            cpu["quota"] = r.choice([50000, 100000, -1])
            cpu["period"] = r.choice([100000, 50000])
        if _maybe(r, 0.3):
            cpu["cpus"] = r.choice(["0", f"0-{host['ncpu'] - 1}"])
        if _maybe(r, 0.3):
            cpu["mems"] = "0"
        res["cpu"] = cpu
    if _maybe(r, 0.3):
        res["pids"] = {"limit": r.choice([10, 100, -1])}
    if bad == "pids-0":
        res["pids"] = {"limit": 0}
    if _maybe(r, 0.15):
        res["blockIO"] = {"weight": r.choice([10, 500, 1000])}
    if _maybe(r, 0.3):
        dev = [{"allow": False, "access": "rwm"}]
        dev += [{"allow": True, "type": "c", "major": 1, "minor": mn, "access": "rwm"}
                for mn in _subset(r, [3, 5, 7, 8, 9], 0.6)]
        if _maybe(r, 0.3):
            dev.append({"allow": True, "type": "c", "major": 10, "minor": 229,
                        "access": r.choice(["rw", "rwm", "r"])})
        res["devices"] = dev
    if _maybe(r, 0.15):
        c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                  "fileMode": r.choice([0o666, 0o600]), "uid": 0, "gid": 0}]
    if not res:
        del c["linux"]["resources"]


def base_config(i):
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/obs"],
            "env": [],
            "cwd": "/",
            "capabilities": {},
        },
        "root": {"path": "rootfs", "readonly": False},
        "mounts": [],
        "linux": {
            "cgroupsPath": "/dt-@RT-@ID",
            "maskedPaths": [],
            "readonlyPaths": [],
        },
    }


def generate(seed, i, host):
    r = random.Random(f"difftest:{seed}:{i}")
    c = base_config(i)
    # One config in four gets one deliberate oddity (then the runtimes must
    # all fail alike, or differ only as explained.json says).
    bad = r.choice(BAD) if _maybe(r, 0.25) else None
    if bad:
        c.setdefault("annotations", {})["difftest.bad"] = bad
    types = gen_namespaces(r, c, bad)
    if ("uts" in types and _maybe(r, 0.8)) or bad == "hostname-no-uts":
        c["hostname"] = r.choice(["dt", "box-1", "x" * 20])
    if ("uts" in types or bad == "hostname-no-uts") and _maybe(r, 0.3):
        c["domainname"] = r.choice(["example.org", "dom"])
    gen_mounts(r, c, types, bad)
    gen_process(r, c, host, bad)
    c["root"]["readonly"] = _maybe(r, 0.3)
    if _maybe(r, 0.85):
        c["linux"]["maskedPaths"] = _subset(r, DEFAULT_MASKED, 0.85) + _subset(r, EXTRA_MASKED, 0.15)
    else:
        del c["linux"]["maskedPaths"]
    if _maybe(r, 0.85):
        c["linux"]["readonlyPaths"] = _subset(r, DEFAULT_READONLY, 0.85) + _subset(r, EXTRA_READONLY, 0.15)
    else:
        del c["linux"]["readonlyPaths"]
    if _maybe(r, 0.3):
        sysctl = {}
        for name in _subset(r, list(SYSCTLS), 0.3):
            if SYSCTLS[name][0] in types or bad == "sysctl-no-ns":
                sysctl[name] = r.choice(SYSCTLS[name][1])
        c["linux"]["sysctl"] = sysctl
    if _maybe(r, 0.3):
        gen_seccomp(r, c)
    if _maybe(r, 0.4):
        gen_hooks(r, c, bad)
    if bad == "hook-fails" and "hooks" not in c:
        gen_hooks(r, c, bad)
    gen_resources(r, c, host, bad)
    if _maybe(r, 0.3):
        c["linux"]["rootfsPropagation"] = r.choice(PROPAGATIONS)
    if _maybe(r, 0.08):
        c["linux"]["personality"] = {"domain": r.choice(["LINUX", "LINUX32"])}
    if _maybe(r, 0.2):
        c.setdefault("annotations", {}).update({"org.example.k": "v", "dt.i": str(i)})
    if bad == "rootfs-propagation":
        c["linux"]["rootfsPropagation"] = "sideways"
    return c
