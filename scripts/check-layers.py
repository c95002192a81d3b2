#!/usr/bin/env python3
"""Checks that host/src's modules depend on each other one way (`just lint` runs it).

Two rules, from ../shared/STYLE.md ("dependencies point one way"):

1. No circle of imports between files: the file-level graph (a file uses another through
   `crate::…` or `super::…`, in a `use` or inline) has no cycle. Tests (`#[cfg(test)]` modules)
   are left out: they may reach anywhere.
2. The top-level modules form layers, and a module only uses modules of its own layer or a
   lower one (LAYERS below, highest first): the ways in never get used by what they call.

Prints each violation with the files and lines that make it, and exits 1 if there is any.
Usage: scripts/check-layers.py [host/src]
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

# Highest first. A module may use its own layer's modules (without a cycle) and lower layers.
LAYERS = [
    ["main", "cli", "app", "config", "invoke"],  # the binary: parses, wires, runs
    ["api", "dapr", "delivery", "watch"],  # ways in: people, the sidecar, the relay, files
    ["http"],  # what every HTTP way in shares (routes with access rules, error bodies)
    ["pipeline"],  # the one path of a message
    ["rollout"],  # shadow and canary candidates beside the serving versions
    ["runtime", "effects", "sockets"],  # wasm; turning effects into I/O; the socket hub
    ["storage"],  # the database
    ["metrics", "telemetry", "domain", "wire"],  # leaves: facades and pure types
]
LAYER_OF = {m: i for i, layer in enumerate(LAYERS) for m in layer}
# Inside one top-level module, these may not be used by the named ones (folder rules the
# issue that set them asked for; the layer rule covers the rest).
FORBIDDEN = {
    ("effects", "dapr"),
    ("dapr", "api"),
}

PATH_RE = re.compile(r"\b(crate|super)((?:::\w+)+|::\{)")


def module_of(root: Path, f: Path) -> tuple:
    rel = f.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> list:
    """The lines of `text` with comments and string literals blanked, and `#[cfg(test)]`
    modules removed (their lines kept empty, so line numbers stay)."""
    out, depth_skip, brace = [], False, 0
    pending_cfg_test = False
    for line in text.splitlines():
        code = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
        code = code.split("//", 1)[0]
        if depth_skip:
            brace += code.count("{") - code.count("}")
            if brace <= 0:
                depth_skip = False
            out.append("")
            continue
        if code.strip().startswith("#[cfg(test)]"):
            pending_cfg_test = True
            out.append("")
            continue
        if pending_cfg_test:
            pending_cfg_test = False
            if re.match(r"\s*(pub(\(\w+\))?\s+)?mod\s+\w+\s*\{", code):
                brace = code.count("{") - code.count("}")
                depth_skip = brace > 0
                out.append("")
                continue
            if re.match(r"\s*(pub(\(\w+\))?\s+)?mod\s+\w+\s*;", code):
                out.append("")
                continue
        out.append(code)
    return out


def expand(prefix: list, rest: str) -> list:
    """`{a, b::c}` after a path prefix → [prefix+a, prefix+b+c] (one level of braces)."""
    inner = rest[rest.index("{") + 1 :]
    depth, item, items = 0, "", []
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            items.append(item)
            item = ""
        else:
            item += ch
    items.append(item)
    paths = []
    for it in items:
        it = it.strip().split(" as ")[0].strip()
        if not it or it == "self":
            paths.append(prefix)
            continue
        head = re.match(r"(\w+(?:::\w+)*)", it)
        if head:
            paths.append(prefix + head.group(1).split("::"))
    return paths


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "host/src")
    files = sorted(root.rglob("*.rs"))
    modules = {module_of(root, f): f for f in files}
    edges = defaultdict(lambda: defaultdict(list))  # from-module -> to-module -> [line refs]

    def resolve(parts: list):
        for n in range(len(parts), 0, -1):
            if tuple(parts[:n]) in modules:
                return tuple(parts[:n])
        return None

    for mod, f in modules.items():
        lines = strip(f.read_text())
        text = "\n".join(lines)
        # Join multi-line `use` statements so their braces are seen whole.
        joined = re.sub(r"\buse\s+[^;]*;", lambda m: m.group(0).replace("\n", " "), text)
        for lineno, line in enumerate(joined.splitlines(), 1):
            for m in PATH_RE.finditer(line):
                kind, tail = m.group(1), m.group(2)
                # `super::` is the parent module: of `a::b` (a/b.rs or a/b/mod.rs), `a`.
                base = [] if kind == "crate" else list(mod[:-1])
                if tail == "::{":
                    paths = expand(base, line[m.start(2) :])
                else:
                    segs = [s for s in tail.split("::") if s]
                    # super::super::x
                    while segs and segs[0] == "super":
                        base = base[:-1]
                        segs = segs[1:]
                    if line[m.end() :].startswith("::{"):
                        paths = expand(base + segs, line[m.end() :])
                    else:
                        paths = [base + segs]
                for p in paths:
                    target = resolve(p)
                    if target is None or target == mod or target == ():
                        continue
                    # A module's use of its own submodule is structure, not a dependency.
                    if target[: len(mod)] == mod and mod != ():
                        continue
                    edges[mod][target].append(lineno)

    problems = []
    # Rule 1: no cycle between files (Tarjan's strongly connected components).
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(modules):
        if v not in index:
            strong(v)
    name = lambda m: "::".join(m) or "crate"
    for comp in sccs:
        members = set(comp)
        detail = []
        for a in sorted(comp):
            for b, lines in sorted(edges[a].items()):
                if b in members:
                    detail.append(f"    {modules[a]}:{lines[0]} uses {name(b)}")
        problems.append("circle of imports between " + ", ".join(sorted(name(m) for m in comp)) + ":\n" + "\n".join(detail))

    # Rule 2: layers and forbidden pairs, between top-level modules.
    for a, targets in edges.items():
        for b, lines in targets.items():
            ta, tb = (a[0] if a else "crate"), (b[0] if b else "crate")
            if ta == tb:
                continue
            la, lb = LAYER_OF.get(ta), LAYER_OF.get(tb)
            if la is None or lb is None:
                missing = ta if la is None else tb
                problems.append(f"top-level module `{missing}` has no layer in scripts/check-layers.py (LAYERS)")
                continue
            if (ta, tb) in FORBIDDEN or lb < la:
                problems.append(
                    f"{modules[a]}:{lines[0]}: `{name(a)}` uses `{name(b)}`, a higher layer "
                    f"({' · '.join(LAYERS[lb])} is above {' · '.join(LAYERS[la])})"
                    if lb < la
                    else f"{modules[a]}:{lines[0]}: `{name(a)}` must not use `{name(b)}`"
                )
    for p in sorted(set(problems)):
        print(p)
    if problems:
        print(f"\n{len(set(problems))} dependency problem(s) in {root}: dependencies must point one way (see the LAYERS in scripts/check-layers.py)", file=sys.stderr)
        sys.exit(1)
    print(f"dependencies in {root} point one way ({len(modules)} files)")


if __name__ == "__main__":
    main()
