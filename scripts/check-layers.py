#!/usr/bin/env python3
"""Checks that src/ imports run one way: each module may use only modules of its own layer or
below, and no two files import each other (directly or in a cycle).

    python3 scripts/check-layers.py            # report; exit 1 on a violation
    python3 scripts/check-layers.py --list     # also list every cross-module import

Layers, lowest first (a module may use its own layer and every layer below it):
  0 base        error, rng, device, display (HTML/evcxr rendering primitives)
  1 data        data, assets
  2 model       adapters, model
  3 search      proxy, search
  4 train       train, predict
  5 tracking    tracking
  6 study       study
  7 outside     plot, notebook, cli, prelude, lib, main   (read from all)

"Uses" is any `crate::<module>` path or `super::`/`self::` path that resolves into another
top-level module, in code outside `#[cfg(test)]` blocks and comments. Doc-links are ignored.
Cycles are checked between files (a file = a module), within and across top-level modules.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"

LAYERS = {
    "error": 0, "rng": 0, "device": 0, "display": 0,
    "data": 1, "assets": 1,
    "adapters": 2, "model": 2,
    "proxy": 3, "search": 3,
    "train": 4, "predict": 4,
    "tracking": 5,
    "study": 6,
    "plot": 7, "notebook": 7, "cli": 7, "bench": 7, "prelude": 7, "lib": 7, "main": 7,
}


def strip(text):
    """Source without comments, string literals and #[cfg(test)] modules."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def module_path(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def resolve(base, segs):
    """Resolve `super::`/`self::` segments against the file's module path `base`."""
    cur = list(base)
    while segs and segs[0] in ("super", "self"):
        if segs[0] == "super":
            cur = cur[:-1]
        segs = segs[1:]
    return cur + segs


def imports(path, files):
    """Module paths (as file module paths) this file uses."""
    base = module_path(path)
    if path.name != "mod.rs" and path.name not in ("lib.rs", "main.rs"):
        # In a non-mod file `super` is the parent directory's module.
        pass
    text = strip(path.read_text())
    found = set()
    # `use` trees: expand braces one level deep, enough for this code base.
    for m in re.finditer(r"\buse\s+((?:crate|super|self)(?:::[\w*]+)*)(?:::\{([^;]*)\})?\s*;", text, re.S):
        head = m.group(1).split("::")
        tails = [t.strip() for t in m.group(2).split(",")] if m.group(2) else [""]
        for t in tails:
            segs = head + [s for s in re.split(r"::", t.split(" as ")[0]) if s and s != "{"]
            found.add(tuple(segs))
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
        found.add(tuple(m.group(1).split("::")))
    out = set()
    for segs in found:
        segs = list(segs)
        if segs[0] == "crate":
            full = segs[1:]
        else:
            full = resolve(base, segs)
        # The longest prefix that is a file module.
        for k in range(len(full), 0, -1):
            if tuple(full[:k]) in files:
                out.add(tuple(full[:k]))
                break
    out.discard(tuple(base))
    return out


def main():
    files = {tuple(module_path(p)): p for p in ROOT.rglob("*.rs")}
    files.pop((), None)
    files[("lib",)] = ROOT / "lib.rs"
    files[("main",)] = ROOT / "main.rs"
    edges = {}
    for mod, path in files.items():
        edges[mod] = {d for d in imports(path, files) if d != mod and d[:1] != ()}
    bad = []
    listing = []
    for mod, deps in sorted(edges.items()):
        top = mod[0]
        for d in sorted(deps):
            if d[0] == top:
                continue
            listing.append(f"{'::'.join(mod)} -> {'::'.join(d)}")
            lm, ld = LAYERS.get(top), LAYERS.get(d[0])
            if lm is None or ld is None:
                bad.append(f"{'::'.join(mod)} -> {'::'.join(d)}: module without a layer (add it to LAYERS)")
            elif ld > lm:
                bad.append(f"{'::'.join(mod)} (layer {lm}, {top}) uses {'::'.join(d)} (layer {ld}, {d[0]}): a lower layer imports a higher one")
    # Cycles between files (Tarjan's strongly connected components), ignoring a module's use of
    # its own parent `mod.rs` re-exports (a child naming `super::X` is not a cycle by itself
    # unless the parent also imports the child's items outside the `mod` declaration).
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    for comp in sccs:
        # A parent mod.rs that only re-exports its children (`pub use child::X`) and a child that
        # uses those re-exports form a cycle in name only; report only cycles between siblings
        # or across modules.
        names = ["::".join(c) for c in comp]
        bad.append("import cycle: " + " <-> ".join(names))
    if "--list" in sys.argv:
        print("\n".join(listing))
    if bad:
        print(f"{len(bad)} layering problem(s):")
        print("\n".join("  " + b for b in bad))
        return 1
    print(f"layers one way, no import cycles ({len(files)} files, {len(listing)} cross-module imports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
