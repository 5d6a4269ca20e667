#!/usr/bin/env python3
"""Compare two `heterolora bench parity` files (logits, loss, gradients) tensor by tensor.

    python3 scripts/compare-parity.py DEVICE.safetensors REFERENCE.safetensors [--tol 1e-3]

For every tensor of the reference: the relative L2 difference |a - b| / |b| and the largest absolute
difference. Prints one JSON object (worst tensor, logits, loss, the adapter gradients' worst, every tensor's
figures, pass) and exits 0 when every tensor is within --tol, 1 when one is not, 2 when the files do not hold
the same tensors. Pure Python (the device image's python3 may lack numpy): the files are little-endian f32.
"""

import argparse
import array
import json
import math
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {meta['dtype']}, expected F32 (bench parity writes f32)")
        a, b = meta["data_offsets"]
        values = array.array("f")
        values.frombytes(data[base + a : base + b])
        if sys.byteorder != "little":
            values.byteswap()
        out[name] = (meta["shape"], values)
    return out


def compare(a, b):
    diff2 = sum((x - y) ** 2 for x, y in zip(a, b))
    ref2 = sum(y * y for y in b)
    max_abs = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
    rel = math.sqrt(diff2) / max(math.sqrt(ref2), 1e-30)
    return rel, max_abs, math.sqrt(ref2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("device")
    ap.add_argument("reference")
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    dev, ref = read_safetensors(args.device), read_safetensors(args.reference)
    if set(dev) != set(ref):
        print(json.dumps({"pass": False, "error": "different tensors",
                          "only_device": sorted(set(dev) - set(ref)), "only_reference": sorted(set(ref) - set(dev))}))
        return 2
    tensors = {}
    for name in sorted(ref):
        (sa, a), (sb, b) = dev[name], ref[name]
        if sa != sb:
            print(json.dumps({"pass": False, "error": f"{name}: shape {sa} against {sb}"}))
            return 2
        rel, max_abs, norm = compare(a, b)
        tensors[name] = {"rel_l2": rel, "max_abs": max_abs, "ref_l2": norm}
    grads = {k: v for k, v in tensors.items() if k.startswith("grad.")}
    worst = max(tensors, key=lambda k: tensors[k]["rel_l2"])
    ok = all(v["rel_l2"] <= args.tol and math.isfinite(v["rel_l2"]) for v in tensors.values())
    print(json.dumps({
        "pass": ok,
        "tolerance_rel_l2": args.tol,
        "tensors": len(tensors),
        "logits": tensors.get("logits"),
        "loss": tensors.get("loss"),
        "grads_worst_rel_l2": max((v["rel_l2"] for v in grads.values()), default=None),
        "worst": {"name": worst, **tensors[worst]},
        "by_tensor": tensors,
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
