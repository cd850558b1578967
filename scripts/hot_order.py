#!/usr/bin/env python3
"""Build link/hot.order from callgrind outputs and a page-fault trace.

Usage: hot_order.py OUT CALLGRIND_DIR [BINARY FAULT_TRACE]...
Called by scripts/hot-order.sh (read it first). CALLGRIND_DIR holds TAG.PID
files; each FAULT_TRACE is tracefs output of exceptions:page_fault_user for
a native run of BINARY (unstripped; each pass has its own layout).
"""
import bisect
import os
import re
import subprocess
import sys

def symbols(binary):
    """(sorted text symbols as (addr, name), set of all defined names)."""
    out = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    text, names = [], set()
    for line in out.splitlines():
        p = line.split()
        if len(p) != 3:
            continue
        names.add(p[2])
        if p[1] in "tTwW":
            text.append((int(p[0], 16), p[2]))
    text.sort()
    return text, names


def callgrind_names(path):
    names = set()
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"^c?fn=\(\d+\) (.+)$", line)
            if m:
                names.add(re.sub(r"'\d+$", "", m.group(1).strip()))
    return names


class Groups:
    """Three sets: what run's and create's runtime process executes; what
    their stages execute (stage-1, init); the other commands'. See main
    for the order."""

    def __init__(self):
        self.first, self.stages, self.rest = set(), set(), set()

    def add(self, tag, is_first, names):
        if tag in ("run", "create", "run-nx"):
            (self.first if is_first else self.stages).update(names)
        else:
            self.rest.update(names)


def add_callgrind(groups, cgdir):
    """TAG.PID[.PART] files (PART: callgrind's dump before each fork; see
    hot-order.sh): the smallest pid of a tag is the runtime process, except
    pid 1: the container's init, which names its file from inside its own
    pid namespace."""
    by_tag = {}
    for fn in os.listdir(cgdir):
        tag, _, rest = fn.partition(".")
        pid = rest.partition(".")[0]
        if pid.isdigit():
            by_tag.setdefault(tag, {}).setdefault(int(pid), set()).update(
                callgrind_names(os.path.join(cgdir, fn)))
    for tag, procs in by_tag.items():
        pids = sorted(procs, key=lambda p: (p == 1, p))
        for i, pid in enumerate(pids):
            groups.add(tag, i == 0 and pid != 1, procs[pid])


def entry_point(binary):
    out = subprocess.run(["readelf", "-h", binary], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", out).group(1), 16)


def fault_functions(binary, trace, text):
    """Functions whose instructions faulted in the native run, as
    {(step tag, is the step's first process): set of names}."""
    entry = entry_point(binary)
    addrs = [a for a, _ in text]
    base, found, tag, first_pid = None, {}, None, None
    pat = re.compile(r"address=(0x[0-9a-f]+) ip=(0x[0-9a-f]+) error_code=(0x[0-9a-f]+)")
    with open(trace) as f:
        for line in f:
            m = re.search(r"skiff-step (\S+)", line)
            if m:
                tag, first_pid = m.group(1), None
                continue
            pid = re.match(r"\s*\S+-(\d+)\s", line)
            m = pat.search(line)
            if not m:
                continue
            addr, ip, code = (int(x, 16) for x in m.groups())
            if code & 0x10 == 0:  # not an instruction fetch
                continue
            # A freshly exec'd skiff faults first at its entry point.
            if addr == ip and addr > 0x10000000 and (addr - entry) & 0xFFF == 0:
                base = addr - entry
            if base is None:
                continue
            off = addr - base
            if not addrs or off < addrs[0] or off > addrs[-1] + 0x100000:
                continue
            pid = pid and int(pid.group(1))
            first_pid = first_pid or pid
            key = (tag, pid == first_pid)
            found.setdefault(key, set()).add(text[bisect.bisect_right(addrs, off) - 1][1])
    return found


def main():
    out, cgdir, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
    groups = Groups()
    add_callgrind(groups, cgdir)
    for binary, trace in zip(runs[::2], runs[1::2]):
        text, defined = symbols(binary)
        for (tag, is_first), names in fault_functions(binary, trace, text).items():
            groups.add(tag, is_first, names)
    first, stages, rest = groups.first, groups.stages, groups.rest
    # The container's init is a fork of the runtime that faults its code in
    # itself, and both count toward run's peak RSS: what init shares with
    # the runtime comes first, then init's own code, then the runtime's
    # own, so that each of the two touches one dense run of windows.
    order, seen = [], set()
    for group in (first & stages, stages - first, first, rest):
        for name in sorted(group & defined):
            if name not in seen:
                seen.add(name)
                order.append(name)
    with open(out, "w") as f:
        f.write("# Generated by scripts/hot-order.sh: hot functions first (see build.rs).\n")
        f.write("\n".join(order) + "\n")
    print(f"{len(first)} + {len(stages)} + {len(rest)} names, {len(order)} defined", file=sys.stderr)


if __name__ == "__main__":
    main()
