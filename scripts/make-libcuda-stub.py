#!/usr/bin/env python3
"""Link-time stub of the CUDA driver library (libcuda.so, soname libcuda.so.1).

The CUDA driver (libcuda) ships with the GPU driver, in no Python wheel, and a CPU-only build
machine has none. candle turns on cudarc's `dynamic-linking`, so the final link of a
`--features cuda` build wants `-lcuda`. Like the CUDA toolkit's own `stubs/libcuda.so`, this
stub defines every driver entry point the build refers to as an empty function, under the
real soname: the binary records `NEEDED libcuda.so.1` and the device's real driver is loaded
at run time. The stub is never run.

Where the symbol names come from (any combination, merged):
  --rlib FILE       `nm -u` of cudarc's rlib (the exact list the link needs; needs a first build)
  --cudarc-src DIR  `pub fn cu...(` declarations in cudarc's sources (a superset, before any build)
  --symbols FILE    one name per line ('#' comments allowed)
Only names of the form cu[A-Z]... are kept. Extra names are harmless.

Usage: make-libcuda-stub.py --out DIR [--cc CC] (--rlib F | --cudarc-src D | --symbols F)...
Writes DIR/libcuda.so, DIR/libcuda-stub.c and DIR/libcuda-stub.symbols; prints the count.
"""
import argparse
import os
import re
import subprocess
import sys

NAME = re.compile(r"^cu[A-Z][A-Za-z0-9_]*$")
SRC_FN = re.compile(r"\bpub\s+(?:unsafe\s+)?fn\s+(cu[A-Z][A-Za-z0-9_]*)\s*\(")


def from_rlib(path):
    out = subprocess.run(["nm", "-u", path], check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] == "U":
            names.add(parts[-1])
    return names


def from_source(root):
    names = set()
    for base, _dirs, files in os.walk(root):
        # only the driver API: cuBLAS, cuRAND, NVRTC have their own libraries and prefixes
        if "driver" not in os.path.relpath(base, root).split(os.sep):
            continue
        for f in files:
            if f.endswith(".rs"):
                with open(os.path.join(base, f), encoding="utf-8", errors="replace") as fh:
                    names.update(SRC_FN.findall(fh.read()))
    return names


def from_list(path):
    names = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(line)
    return names


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for libcuda.so")
    ap.add_argument("--rlib", action="append", default=[])
    ap.add_argument("--cudarc-src", action="append", default=[])
    ap.add_argument("--symbols", action="append", default=[])
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    a = ap.parse_args(argv)

    names = set()
    for p in a.rlib:
        names |= from_rlib(p)
    for p in a.cudarc_src:
        names |= from_source(p)
    for p in a.symbols:
        names |= from_list(p)
    names = sorted(n for n in names if NAME.match(n))
    if not names:
        sys.exit("make-libcuda-stub.py: no cu* symbol names found in the given sources")

    os.makedirs(a.out, exist_ok=True)
    c_path = os.path.join(a.out, "libcuda-stub.c")
    with open(c_path, "w", encoding="utf-8") as fh:
        fh.write("/* Link-time stub of libcuda.so.1, written by scripts/make-libcuda-stub.py. Never run. */\n")
        for n in names:
            fh.write(f"int {n}(void) {{ return 999; }}\n")  # 999 = CUDA_ERROR_UNKNOWN
    with open(os.path.join(a.out, "libcuda-stub.symbols"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(names) + "\n")
    so = os.path.join(a.out, "libcuda.so")
    subprocess.run(
        [a.cc, "-shared", "-fPIC", "-O0", "-Wl,-soname,libcuda.so.1", "-o", so, c_path],
        check=True,
    )
    print(f"{so}: {len(names)} symbols, soname libcuda.so.1")


if __name__ == "__main__":
    main()
