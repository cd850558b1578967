"""Normalise what the observer printed, compare three runtimes' results,
and match the differences against the explained list.

A result is a dict: {"phase": ..., "view": {key: value}}. phase is
  "ok"            the observer ran to its end and the runtime exited 0,
  "exit=N"        the observer printed its view but the run ended with N,
  "create"        the runtime failed before the observer printed anything,
  "timeout"       the run did not finish in time.
Failing runs are compared by phase only (never by wording).
"""

import fnmatch
import json
import re

RUNTIMES = ("skiff", "runc", "crun")

_NS_RE = re.compile(r"^([a-z_]+):\[(\d+)\]$")


def parse_view(text):
    view = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        view[k] = v
    return view


# Set by the shell or by a runtime for itself; not part of what a hook is given.
_OWN_VARS = ("PWD=", "OLDPWD=", "SHLVL=", "_=", "_LIBCONTAINER")


def _hook_env(env, runner_env):
    """A hook's env, sorted; the runner's whole environment (which the
    runtimes inherit) is shown as <runtime env>."""
    items = {e for e in env.split("\x1f") if e and not e.startswith(_OWN_VARS)}
    mine = {e for e in runner_env if not e.startswith(_OWN_VARS)}
    if mine and mine <= items:
        return ",".join(["<runtime env>"] + sorted(items - mine))
    return ",".join(sorted(items))


def _hook_line(line, subst, runner_env=()):
    """One hooks.log line (observer hook mode) -> {aspect: description}:
    call (kind and args), env, state (status, pid, id, bundle,
    annotations) and ver (the state's ociVersion)."""
    parts = line.split("\t")
    if len(parts) < 4:
        return {"call": "malformed " + subst(line)}
    kind, args, env, state = parts[0], parts[1], parts[2], parts[3]
    out = {"call": "%s [%s]" % (kind, subst(args)),
           "env": _hook_env(env, runner_env)}
    try:
        st = json.loads(state)
        out["state"] = "status=%s pid=%s id=%s bundle=%s ann=%s" % (
            st.get("status"), "yes" if st.get("pid", 0) > 0 else "no", st.get("id"),
            subst(st.get("bundle", "")), json.dumps(st.get("annotations", {}), sort_keys=True))
        out["ver"] = st.get("ociVersion", "")
    except ValueError:
        out["state"] = "unparsed " + subst(state)
    return out


def _superopts(v):
    """Drops the superblock's own ro/rw from a mount line: a runtime may
    mount a fresh superblock rw and make only the mount read-only (the new
    mount API) or the superblock too; the mount flags say what the process
    can do."""
    if "[" not in v:
        return v
    head, rest = v.split("[", 1)
    opts, tail = rest.split("]", 1)
    opts = ",".join(o for o in opts.split(",") if o not in ("ro", "rw"))
    return "%s[%s]%s" % (head, opts, tail)


def normalise(view, ctx):
    """ctx: bundle (path), work (path), rt (name), host_ns {type: value},
    joined_ns {type: value}, hooks_log (text of the host-side log)."""
    bundle, work, rt = ctx["bundle"], ctx["work"], ctx["rt"]

    def subst(s):
        s = s.replace(bundle, "BUNDLE").replace(work, "WORK")
        return s.replace("dt-%s-" % rt, "dt-RT-")

    out = {}
    for k, v in view.items():
        if k.startswith("ns."):
            m = _NS_RE.match(v)
            if m:
                t = k[3:].replace("_for_children", "")
                if v == ctx["host_ns"].get(t):
                    v = "host"
                elif v in ctx["joined_ns"].values():
                    v = "joined"
                elif k.endswith("_for_children") and v == view.get("ns." + t):
                    v = "same-as-self"
                else:
                    v = "new"
        elif k == "cg.devices/devices.list":
            # The kernel lists rules in the order they were written.
            v = "\\n".join(sorted(v.split("\\n")))
        elif k.startswith("hooklog."):
            for aspect, val in _hook_line(v, subst, ctx.get("runner_env", ())).items():
                out["%s.%s" % (k, aspect)] = val
            continue
        elif k.startswith("mount."):
            v = _superopts(subst(v))
        else:
            v = subst(v)
        out[subst(k)] = v
    for i, line in enumerate(l for l in ctx.get("hooks_log", "").splitlines() if l):
        for aspect, val in _hook_line(line, subst, ctx.get("runner_env", ())).items():
            out["hookhost.%02d.%s" % (i, aspect)] = val
    return out


def odd_one(vals):
    """vals: {rt: value}. Which runtime disagrees: a name, or "all"."""
    s, r, c = (vals.get(x) for x in RUNTIMES)
    if s == r == c:
        return None
    if s == c:
        return "runc"
    if s == r:
        return "crun"
    if r == c:
        return "skiff"
    return "all"


def differences(results):
    """results: {rt: {"phase", "view"}} -> [(key, {rt: value}, odd)]."""
    phases = {rt: results[rt]["phase"] for rt in RUNTIMES}
    odd = odd_one(phases)
    if odd:
        return [("phase", phases, odd)]
    if phases["skiff"] not in ("ok",) and not phases["skiff"].startswith("exit="):
        return []  # all failed in the same phase
    diffs = []
    keys = set()
    for rt in RUNTIMES:
        keys |= set(results[rt]["view"])
    for k in sorted(keys):
        vals = {rt: results[rt]["view"].get(k, "<absent>") for rt in RUNTIMES}
        o = odd_one(vals)
        if o:
            diffs.append((k, vals, o))
    return diffs


def load_explained(path):
    with open(path) as f:
        entries = json.load(f)
    for e in entries:
        for field in ("key", "odd", "reason"):
            if field not in e:
                raise ValueError("explained entry without %r: %r" % (field, e))
    return entries


def ns_types(c):
    return {n.get("type") for n in c.get("linux", {}).get("namespaces", [])}


def _entry_for(key, rt, value, config, entries):
    """The first entry explaining why runtime rt shows `value` for key."""
    for e in entries:
        if not fnmatch.fnmatchcase(key, e["key"]):
            continue
        if e["odd"] not in (rt, "*", "all"):
            continue
        when = e.get("when")
        if when:
            env = {"c": config, "ns": ns_types(config), "linux": config.get("linux", {}),
                   "process": config.get("process", {})}
            try:
                # As globals: a generator expression sees no eval locals.
                env["__builtins__"] = {"any": any, "all": all, "len": len}
                if not eval(when, env):
                    continue
            except (KeyError, TypeError, AttributeError, IndexError):
                continue
        if "value" in e and not fnmatch.fnmatchcase(str(value), e["value"]):
            continue
        return e
    return None


def explain(diff, config, entries):
    """The explained-list entry (or entries, joined) covering a difference,
    or None. An entry explains one runtime's value (its "odd"; "*" any
    runtime's); a difference is explained when the runtimes left after
    setting aside the explained ones all agree. So two runtimes that each
    differ for their own known reason (runc: no time namespace; crun: no
    blkio.weight) leave skiff alone, and that is explained too."""
    key, vals, odd = diff
    found = {}
    for rt in RUNTIMES:
        e = _entry_for(key, rt, vals.get(rt), config, entries)
        if e:
            found[rt] = e
    # Set aside as few runtimes as needed: one, then two, then three.
    for n in (1, 2, 3):
        for combo in _combos([rt for rt in RUNTIMES if rt in found], n):
            rest = {vals.get(rt) for rt in RUNTIMES if rt not in combo}
            if len(rest) <= 1:
                es = []
                for rt in combo:
                    if found[rt] not in es:
                        es.append(found[rt])
                if len(es) == 1:
                    return es[0]
                return {"key": key, "odd": "+".join(combo),
                        "reason": " AND ".join(e["reason"] for e in es)}
    return None


def _combos(items, n):
    if n == 0:
        return [()]
    out = []
    for i, x in enumerate(items):
        for rest in _combos(items[i + 1:], n - 1):
            out.append((x,) + rest)
    return out


def describe(diff, entry=None):
    key, vals, odd = diff
    who = {"skiff": "skiff differs from runc and crun",
           "runc": "runc and crun disagree; skiff sides with crun",
           "crun": "runc and crun disagree; skiff sides with runc",
           "all": "all three differ"}[odd]
    lines = ["  %s: %s" % (key, who)]
    for rt in RUNTIMES:
        lines.append("    %-5s %s" % (rt, vals[rt]))
    if entry:
        lines.append("    explained: " + entry["reason"])
    elif odd in ("runc", "crun", "all"):
        lines.append("    unexplained: the spec must decide (add a ruling to explained.json)")
    return "\n".join(lines)
