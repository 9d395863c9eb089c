#!/usr/bin/env python3
"""Checks that the core library's module graph is acyclic (docs/design.md).

A module is a source file and its header (src/core/cache.c + cache.h); an
edge is an #include "..." of another module's header. Exits 0 when the graph
has no cycle, 1 (printing each cycle) otherwise.

usage: check_layers.py SRC_DIR
"""
import os
import re
import sys


def main(src):
    edges = {}
    for root, _, names in os.walk(src):
        for name in names:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            mod = os.path.splitext(os.path.relpath(path, src))[0]
            with open(path, encoding="utf-8", errors="replace") as f:
                incs = re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M)
            for inc in incs:
                dep = os.path.splitext(inc)[0]
                if dep != mod and os.path.exists(os.path.join(src, inc)):
                    edges.setdefault(mod, set()).add(dep)
    cycles, state = [], {}

    def visit(u, stack):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for u in sorted(edges):
        if u not in state:
            visit(u, [])
    for c in cycles:
        print("check_layers: cycle: " + " -> ".join(c), file=sys.stderr)
    if not edges:
        print("check_layers: no modules found under " + src, file=sys.stderr)
        return 1
    print("check_layers: %d modules, no cycle" % len(edges))
    return 1 if cycles else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
