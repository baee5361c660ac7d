#!/usr/bin/env python3
"""Lists import cycles between the crate's source files.

Every `crate::a::b` (and `super::`, `self::`) path in a file is resolved
to the file of the deepest module it names; a cycle is a set of files
that reach each other through such paths (a strongly connected component
of more than one file). A module's own `mod.rs` declaring its children
(`mod x;`, `pub mod x;`) is not an edge: only uses are.

Exit 1 when there is a cycle, so CI can enforce none. Usage:
    scripts/import-cycles.py [src]
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "src"


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for folder, _, names in os.walk(ROOT):
    for name in names:
        if name.endswith(".rs"):
            path = os.path.join(folder, name)
            files[module_of(path)] = path
# main.rs and lib.rs are both the root; the binary's modules live under cli/.
files[()] = os.path.join(ROOT, "lib.rs")

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)


def strip_tests(text):
    # Unit tests may reach anywhere; they are not part of the layout.
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests", text, re.M)
    text = text[: cut.start()] if cut else text
    # Comments and docs name modules without using them.
    return re.sub(r"//[^\n]*", "", text)


def resolve(base, parts):
    """The file of the deepest module `base + parts` names."""
    target = list(base)
    for part in parts:
        if tuple(target + [part]) in files:
            target.append(part)
        else:
            break
    return tuple(target)


edges = {module: set() for module in files}
for module, path in files.items():
    if path.endswith("main.rs"):
        continue
    text = strip_tests(open(path, encoding="utf-8").read())
    is_mod_file = os.path.basename(path) in ("mod.rs", "lib.rs")
    here = list(module)
    parent = here[:-1] if not is_mod_file else here[:-1]
    self_base = here
    super_base = here[:-1]

    def add(kind, parts):
        if kind == "crate":
            base = []
        elif kind == "super":
            base = super_base
        else:
            base = self_base
        target = resolve(base, parts)
        if target != module and target in files:
            edges[module].add(target)

    for match in GROUP.finditer(text):
        kind, prefix, inner = match.groups()
        head = [part for part in prefix.split("::") if part]
        for item in re.split(r",", inner):
            names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", item.split(" as ")[0])
            add(kind, head + names)
    for match in PATH.finditer(text):
        kind, rest = match.groups()
        add(kind, rest.strip(":").split("::"))
    # A bare `child::x` path names a child module of this one.
    if is_mod_file:
        for child in re.findall(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;", text, re.M):
            if re.search(r"(?<![:\w])" + child + r"::", text):
                add("self", [child])

# Tarjan's strongly connected components.
index, low, stack, on_stack, found = {}, {}, [], set(), []
counter = [0]


def visit(node):
    index[node] = low[node] = counter[0]
    counter[0] += 1
    stack.append(node)
    on_stack.add(node)
    for target in edges[node]:
        if target not in index:
            visit(target)
            low[node] = min(low[node], low[target])
        elif target in on_stack:
            low[node] = min(low[node], index[target])
    if low[node] == index[node]:
        component = []
        while True:
            top = stack.pop()
            on_stack.discard(top)
            component.append(top)
            if top == node:
                break
        if len(component) > 1:
            found.append(component)


sys.setrecursionlimit(10000)
for node in list(edges):
    if node not in index:
        visit(node)

name = lambda m: files[m].replace(ROOT + os.sep, "")
# The same at the level of the crate's top modules (api, store, archive…):
# the layers must point one way too.
top_edges = {}
for module, targets in edges.items():
    for target in targets:
        if module[:1] and target[:1] and module[:1] != target[:1]:
            top_edges.setdefault(module[0], set()).add(target[0])
top_cycles = []
for a, targets in sorted(top_edges.items()):
    for b in sorted(targets):
        if a < b and a in top_edges.get(b, set()):
            top_cycles.append((a, b))
for a, b in top_cycles:
    print(f"layer cycle: {a} <-> {b}")
    for module, targets in sorted(edges.items(), key=lambda item: name(item[0])):
        for target in sorted(targets, key=name):
            if (module[:1], target[:1]) in (((a,), (b,)), ((b,), (a,))):
                print(f"  {name(module)} uses {name(target)}")
for component in found:
    members = sorted(name(m) for m in component)
    print("cycle: " + " <-> ".join(members))
    for m in sorted(component, key=name):
        inside = sorted(name(t) for t in edges[m] if t in component)
        print(f"  {name(m)} uses {', '.join(inside)}")
print(f"{len(found)} import cycles among {len(files)} files, {len(top_cycles)} between top modules")
sys.exit(1 if found or top_cycles else 0)
