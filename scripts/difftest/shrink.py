"""Shrinking: drop fields one at a time while the difference remains.

shrink(config, still_differs, max_trials) -> (smallest config, trials).
An atom is one dict key or one list element anywhere in the config
(shallow ones first, so whole subtrees go before their leaves). Passes repeat
until one removes nothing; it stops at a fixed point
(no single removal keeps the difference) or after max_trials predicate
calls.
"""

import copy

# Never dropped: without them there is no container to compare. A
# protected tree keeps everything below it too.
PROTECTED = {("root",), ("process",)}
PROTECTED_TREES = {("ociVersion",), ("root", "path"), ("process", "args")}


def _protected(p):
    return p in PROTECTED or any(p[:len(t)] == t for t in PROTECTED_TREES)


def atoms(c):
    out = []
    queue = [((), c)]
    while queue:
        path, node = queue.pop(0)
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            # A long list (a seccomp allow-list) goes whole or not at all.
            items = list(enumerate(node)) if len(node) <= 32 else []
        else:
            continue
        for k, v in items:
            p = path + (k,)
            if not _protected(p):
                out.append(p)
            queue.append((p, v))
    return out


def without(c, path):
    c = copy.deepcopy(c)
    node = c
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return c


def shrink(config, still_differs, max_trials=150):
    cur = config
    trials = 0
    changed = True
    while changed and trials < max_trials:
        changed = False
        i = 0
        while trials < max_trials:
            lst = atoms(cur)
            if i >= len(lst):
                break
            cand = without(cur, lst[i])
            trials += 1
            if still_differs(cand):
                cur = cand  # the atom at i is gone: try the next one at i
                changed = True
            else:
                i += 1
    return cur, trials
