#!/usr/bin/env python3
"""Finds import cycles of any length, between source files and between layers.

The module tree is read from the `mod` declarations, starting at
`src/lib.rs` (the library, `vault_mirror`) and `src/main.rs` (the binary,
whose modules live under `src/cli/`). A file is test-only when its `mod`
declaration carries `#[cfg(test)]`; such files, and every `#[cfg(test)]`
item inside a file, are left out: tests may reach anywhere.

Every path a file names is resolved to the file of the module it names:
`use` trees (`use crate::a::{b, c::d}`, `use super::x`, `use child::y` in
2018 style), and paths written inline (`crate::a::f()`, `super::x::T`,
`self::x`, and `vault_mirror::a` in the binary). A name a module
re-exports (`pub use dir::ArchiveDir;` in `archive/mod.rs`) is followed to
the file that defines it. Comments, doc comments and string literals are
not read. A module's own `mod x;` is not an edge: only uses are.

Two graphs are checked, each for strongly connected components (Tarjan):
(a) source files; (b) layers, the top-level modules under `src/` (`src/x.rs`
and `src/x/` are layer `x`; `lib.rs` is `lib`, `main.rs` is `main`, the
binary's `src/cli/` is `cli`). A component of two or more nodes is a
cycle: it is printed with one concrete line per edge inside it as
evidence, and the exit status is 1.

Usage:
    scripts/import-cycles.py [SRC]       check SRC (default: src)
    scripts/import-cycles.py --self-test check the checker on made-up trees
"""
import os
import re
import sys
import tempfile

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
LIBRARY = "vault_mirror"


def blank(text, start, end):
    """`text[start:end]` with every character but newlines made a space."""
    return "".join("\n" if c == "\n" else " " for c in text[start:end])


def strip_comments_and_strings(text):
    """The text with comments and literals blanked, same length and lines."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(blank(text, i, end))
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text, i, j))
            i = j
        elif re.match(r'b?r#*"', text[i : i + 200]) and not re.match(r"\w", text[i - 1 : i] or " "):
            raw = re.match(r'(b?r)(#*)"', text[i:])
            close = '"' + raw.group(2)
            end = text.find(close, i + raw.end())
            end = n if end < 0 else end + len(close)
            out.append(blank(text, i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text, i, j + 1))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            lit = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if lit:
                out.append(blank(text, i, i + lit.end()))
                i += lit.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


# `#[cfg(test)]`, or `#[cfg(all(test, unix))]`: compiled only for tests.
CFG_TEST = re.compile(r"#\[cfg\((?:test|all\([^\]]*\btest\b[^\]]*\))\)\]")


def strip_test_items(text):
    """Blank every item under `#[cfg(test)]`; return the text and the names
    of the file modules (`mod x;`) that are test-only."""
    test_mods = set()
    while True:
        match = CFG_TEST.search(text)
        if not match:
            return text, test_mods
        start = match.start()
        # Skip further attributes, then take the item up to its `;` or its block.
        j = match.end()
        while True:
            attr = re.match(r"\s*#\[", text[j:])
            if not attr:
                break
            k = j + attr.end() - 1
            depth = 0
            while k < len(text):
                depth += {"[": 1, "]": -1}.get(text[k], 0)
                k += 1
                if depth == 0:
                    break
            j = k
        semi, brace = text.find(";", j), text.find("{", j)
        if brace < 0 or (0 <= semi < brace):
            end = len(text) if semi < 0 else semi + 1
            declared = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text[j:end])
            if declared:
                test_mods.add(declared.group(1))
        else:
            end = matching_brace(text, brace)
        text = text[:start] + blank(text, start, end) + text[end:]


class Crate:
    def __init__(self, name, root_file):
        self.name = name
        self.root_file = root_file


class File:
    def __init__(self, crate, module, path, raw, text):
        self.crate = crate
        self.module = module  # tuple of names below the crate root
        self.path = path
        self.raw_lines = raw.splitlines()
        self.text = text  # comments, literals and test items blanked
        self.is_dir_owner = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
        self.children = {}  # file module children: name -> File
        self.inline = []  # (start, end, name) of inline `mod x { }` blocks
        self.reexports = {}  # name -> (base module tuple, path list)

    def line_of(self, offset):
        return self.text.count("\n", 0, offset) + 1

    def source_line(self, offset):
        number = self.line_of(offset)
        return number, self.raw_lines[number - 1].strip()


def child_file(parent, name):
    """Where `mod name;` in `parent` lives, per the 2018 rules."""
    folder = os.path.dirname(parent.path)
    if not parent.is_dir_owner:
        folder = os.path.join(folder, os.path.splitext(os.path.basename(parent.path))[0])
    for candidate in (os.path.join(folder, name + ".rs"), os.path.join(folder, name, "mod.rs")):
        if os.path.isfile(candidate):
            return candidate
    return None


MOD_DECL = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])", re.M)


def load_tree(crate, modules):
    """Every file of `crate`, reached through its `mod` declarations."""
    pending = [((), crate.root_file)]
    while pending:
        module, path = pending.pop()
        with open(path, encoding="utf-8") as handle:
            raw = handle.read()
        text, test_mods = strip_test_items(strip_comments_and_strings(raw))
        file = File(crate, module, path, raw, text)
        modules[(crate.name, module)] = file
        for match in MOD_DECL.finditer(text):
            name = match.group(1)
            if match.group(2) == "{":
                brace = match.end() - 1
                file.inline.append((brace, matching_brace(text, brace), name))
            elif name not in test_mods:
                child = child_file(file, name)
                if child:
                    pending.append((module + (name,), child))


def module_at(file, offset):
    """The module a position in a file is in (inline `mod x { }` counted)."""
    module = file.module
    for start, end, name in sorted(file.inline):
        if start <= offset < end:
            module = module + (name,)
    return module


def parse_use_tree(text, offset):
    """The leaf paths of a `use` tree: [(segments, offset of the leaf)]."""
    leaves = []

    def tree(i, prefix):
        segments = list(prefix)
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i < len(text) and text[i] == "{":
                i += 1
                while True:
                    while i < len(text) and (text[i].isspace() or text[i] == ","):
                        i += 1
                    if i >= len(text) or text[i] == "}":
                        return i + 1
                    i = tree(i, segments)
            if i < len(text) and text[i] == "*":
                leaves.append((segments, offset + i))
                return i + 1
            name = re.match(IDENT, text[i:])
            if not name:
                return i
            start = i
            i += name.end()
            segments = segments + [name.group(0)]
            sep = re.match(r"\s*::\s*", text[i:])
            if sep:
                i += sep.end()
                continue
            rename = re.match(r"\s+as\s+" + IDENT, text[i:])
            if rename:
                i += rename.end()
            leaves.append((segments, offset + start))
            return i

    tree(0, [])
    return leaves


USE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]*);")
INLINE = re.compile(
    r"(?<![\w:])(crate|super|self|" + LIBRARY + r")((?:\s*::\s*(?:super|" + IDENT + r"))+)"
)


class Graph:
    def __init__(self, src):
        self.src = src
        self.modules = {}
        library = os.path.join(src, "lib.rs")
        binary = os.path.join(src, "main.rs")
        self.library = LIBRARY if os.path.isfile(library) else None
        if self.library:
            load_tree(Crate(LIBRARY, library), self.modules)
        if os.path.isfile(binary):
            load_tree(Crate("main", binary), self.modules)
        for file in self.modules.values():
            for name_key, other in self.modules.items():
                if name_key[0] == file.crate.name and name_key[1][:-1] == file.module and name_key[1]:
                    file.children[name_key[1][-1]] = other
        self.collect_reexports()
        self.edges = {}  # (file, file) -> (line number, line)
        for file in self.modules.values():
            self.read_uses(file)

    def name(self, file):
        return os.path.relpath(file.path, self.src)

    def layer(self, file):
        if file.module:
            return file.module[0]
        return "lib" if file.crate.name == LIBRARY else "main"

    def base(self, file, module, kind):
        """The (crate, module) a path starting with `kind` is relative to."""
        crate = file.crate.name
        if kind == "crate":
            return crate, ()
        if kind == LIBRARY and crate != LIBRARY:
            return LIBRARY, ()
        if kind == "self":
            return crate, module
        if kind == "super":
            return crate, module[:-1]
        return None

    def resolve(self, crate, module, segments, depth=0):
        """The file of the deepest module a path names, re-exports followed."""
        while segments and segments[0] == "super":
            module, segments = module[:-1], segments[1:]
        while segments and (crate, module + (segments[0],)) in self.modules:
            module, segments = module + (segments[0],), segments[1:]
        if (crate, module) not in self.modules:
            return None
        file = self.modules[(crate, module)]
        if segments and segments[0] in file.reexports and depth < 10:
            target = self.resolve(crate, *file.reexports[segments[0]], depth + 1)
            if target is not None:
                return target
        return file

    def start(self, file, module, segments):
        """Where a `use` path starts: a keyword, the library, or a child module."""
        head = segments[0]
        if head in ("crate", "self", "super", LIBRARY):
            base = self.base(file, module, head)
            if base is None:
                return None
            if head == "super":  # `resolve` takes each `super` itself.
                return file.crate.name, module, segments
            return base[0], base[1], segments[1:]
        if (file.crate.name, module + (head,)) in self.modules:
            return file.crate.name, module, segments
        return None  # another crate (std, tokio, ...)

    def collect_reexports(self):
        for file in self.modules.values():
            for match in USE.finditer(file.text):
                if not match.group(1):
                    continue
                module = module_at(file, match.start())
                for segments, _ in parse_use_tree(match.group(2), match.start(2)):
                    if len(segments) < 2 or segments[-1] in ("*", "self"):
                        continue
                    begun = self.start(file, module, segments)
                    if begun and begun[0] == file.crate.name:
                        file.reexports[segments[-1]] = (begun[1], begun[2])

    def add(self, file, target, offset):
        if target is None or target is file:
            return
        key = (file, target)
        if key not in self.edges:
            self.edges[key] = file.source_line(offset)

    def read_uses(self, file):
        for match in USE.finditer(file.text):
            module = module_at(file, match.start())
            for segments, at in parse_use_tree(match.group(2), match.start(2)):
                begun = self.start(file, module, segments)
                if begun:
                    self.add(file, self.resolve(*begun), at)
        for match in INLINE.finditer(file.text):
            kind = match.group(1)
            segments = [s for s in re.split(r"\s*::\s*", match.group(2).strip()) if s]
            module = module_at(file, match.start())
            base = self.base(file, module, kind)
            if base is not None:
                self.add(file, self.resolve(base[0], base[1], segments), match.start())
        # A bare `child::x` path in a file that declares `mod child;`.
        for child in file.children:
            for match in re.finditer(r"(?<![\w:])" + child + r"\s*::\s*(" + IDENT + ")", file.text):
                target = self.resolve(file.crate.name, file.module, [child, match.group(1)])
                self.add(file, target, match.start())


def components(nodes, edges):
    """Tarjan's strongly connected components of two or more nodes."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]
    targets = {node: sorted({b for (a, b) in edges if a == node}) for node in nodes}

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in targets[node]:
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
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(members, edges):
    """The shortest way from the first member back to it, inside the component."""
    inside = set(members)
    start = members[0]
    came_from = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for a, b in sorted(edges):
                if a != node or b not in inside:
                    continue
                if b == start:
                    walk = [start]
                    while node != start:
                        walk.append(node)
                        node = came_from[node]
                    return [start] + walk[:0:-1] + [start] if len(walk) > 1 else [start, start]
                if b not in came_from:
                    came_from[b] = node
                    following.append(b)
        frontier = following
    return members + members[:1]


def check(src, out=sys.stdout):
    """Print the cycles under `src`; return how many there are."""
    graph = Graph(src)
    files = {graph.name(f): f for f in graph.modules.values()}
    file_edges = {}
    layer_edges = {}
    for (a, b), (number, line) in sorted(graph.edges.items(), key=lambda e: (graph.name(e[0][0]), e[1][0])):
        evidence = f"{graph.name(a)}:{number}: {line}"
        file_edges.setdefault((graph.name(a), graph.name(b)), evidence)
        if graph.layer(a) != graph.layer(b):
            layer_edges.setdefault((graph.layer(a), graph.layer(b)), evidence)
    layers = {graph.layer(f) for f in graph.modules.values()}
    layer_cycles = components(layers, layer_edges)
    file_cycles = components(set(files), file_edges)
    for kind, cycles, edges in (("layer", layer_cycles, layer_edges), ("file", file_cycles, file_edges)):
        for members in cycles:
            walk = shortest_cycle(members, edges)
            print(f"{kind} cycle: " + " -> ".join(walk), file=out)
            if len(walk) - 1 < len(members):
                print(f"  (one of the cycles among these {len(members)}: {', '.join(members)})", file=out)
            inside = set(members)
            for (a, b), evidence in sorted(edges.items()):
                if a in inside and b in inside:
                    print(f"  {a} -> {b}    {evidence}", file=out)
    print(
        f"{len(layer_cycles)} cycles among {len(layers)} layers, "
        f"{len(file_cycles)} among {len(files)} files",
        file=out,
    )
    return len(layer_cycles) + len(file_cycles)


def self_test():
    """A made-up crate with a three-layer cycle, and one without."""
    import io

    def write(root, files):
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as handle:
                handle.write(text)

    acyclic = {
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub fn helper() {}\n",
        "a.rs": "//! Uses `crate::c` only in this comment.\nuse crate::b::Thing;\n"
        'pub fn f() -> &\'static str { let _ = Thing; "crate::c::x" }\n',
        "b/mod.rs": "mod inner;\npub use inner::Thing;\n",
        "b/inner.rs": "pub struct Thing;\npub fn g() { crate::c::h(); super::super::helper(); }\n",
        "c.rs": "pub fn h() {}\n#[cfg(test)]\nmod tests {\n    use crate::a::f;\n}\n",
        "main.rs": "mod cli;\nfn main() { cli::run() }\n",
        "cli/mod.rs": "mod table;\nuse vault_mirror::a;\npub fn run() { table::show(); }\n",
        "cli/table.rs": "pub fn show() { vault_mirror::c::h() }\n",
    }
    # c -> a closes a -> b -> c; `inner` -> `c` through an inline path,
    # a -> b through the re-export in b/mod.rs.
    cyclic = dict(acyclic)
    cyclic["c.rs"] = "use crate::{\n    a::{self, f},\n};\npub fn h() { f(); }\n"
    failures = []
    with tempfile.TemporaryDirectory() as root:
        for name, tree, want in (("acyclic", acyclic, 0), ("cyclic", cyclic, 2)):
            src = os.path.join(root, name)
            write(src, tree)
            report = io.StringIO()
            found = check(src, report)
            text = report.getvalue()
            if found != want:
                failures.append(f"{name}: {found} cycles, expected {want}:\n{text}")
            if name == "cyclic":
                for expected in (
                    "layer cycle: a -> b -> c -> a",
                    "a -> b    a.rs:2: use crate::b::Thing;",
                    "b -> c    b/inner.rs:2: pub fn g() { crate::c::h(); super::super::helper(); }",
                    "c -> a    c.rs:2: a::{self, f},",
                    "file cycle: a.rs -> b/inner.rs -> c.rs -> a.rs",
                ):
                    if expected not in text:
                        failures.append(f"cyclic: missing {expected!r} in:\n{text}")
            elif "cli -> " in text:
                failures.append(f"acyclic: unexpected output:\n{text}")
    for failure in failures:
        print("self-test FAILED: " + failure, file=sys.stderr)
    if not failures:
        print("self-test passed")
    return 1 if failures else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    return 1 if check(argv[1] if len(argv) > 1 else "src") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
