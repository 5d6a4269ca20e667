#!/usr/bin/env python3
"""The model and GLUE files the device check needs, small enough to carry (scripts/gpu-check.sh).

The device machine has no network, and what travels there (the working tree plus carried paths) is limited to
64 MiB, while all-MiniLM-L6-v2's f32 weights alone are 91 MB. So the weights travel as f16 (45 MB, 39 MB after
xz) and are widened back to f32 on the device: every value is the f32 model's value rounded to f16 (relative
error at most 2^-11; a tensor with a value f16 cannot hold stays f32; non-float tensors are copied). Each f16
tensor is stored as byte planes (all its high bytes, then all its low bytes): the high bytes (sign, exponent,
top of the mantissa) compress well once they are together, which saves about 2 MB of xz output. The CUDA/CPU
parity check runs both sides on the same widened weights; benchmarks do not depend on the values; study
children trained on them start from the rounded model (recorded in the pack's manifest, device-data.json).

    pack-device-data.py pack --model DIR --glue DIR [--tasks MRPC,RTE] --out dist/device-data.tar.xz
    pack-device-data.py unpack --archive dist/device-data.tar.xz --dest DIR
        -> DIR/model/ (config, tokenizer, f32 model.safetensors) and DIR/glue/<TASK>/*.tsv

Pure Python (numpy is used when present, for speed). No network.
"""
import argparse
import array
import hashlib
import json
import os
import shutil
import struct
import sys
import tarfile
import tempfile

MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]
F16_MAX = 65504.0
CHUNK = 1 << 20
# The f16 file's metadata key naming its byte layout; packs without it hold plain little-endian f16.
LAYOUT_KEY = "heterolora_layout"
PLANES = "byte-planes"


def to_planes(b):
    """Little-endian 2-byte words -> high bytes, then low bytes."""
    return bytes(b[1::2]) + bytes(b[0::2])


def from_planes(b):
    b = bytes(b)
    n = len(b) // 2
    out = bytearray(len(b))
    out[1::2] = b[:n]
    out[0::2] = b[n:]
    return bytes(out)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return header, memoryview(raw)[8 + n :]


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes), written in order."""
    header, off = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for *_, data in tensors:
            f.write(data)


def convert(data, src, dst):
    """Little-endian float bytes from src ('F32'/'F16') to dst."""
    try:
        import numpy as np

        a = np.frombuffer(bytes(data), dtype="<f4" if src == "F32" else "<f2")
        return a.astype("<f2" if dst == "F16" else "<f4").tobytes()
    except ImportError:
        pass
    sf, df = ("f", "e") if src == "F32" else ("e", "f")
    step = 4 if src == "F32" else 2
    out = bytearray()
    mv = memoryview(bytes(data))
    for i in range(0, len(mv), CHUNK * step):
        part = mv[i : i + CHUNK * step]
        vals = struct.unpack("<%d%s" % (len(part) // step, sf), part)
        out += struct.pack("<%d%s" % (len(vals), df), *vals)
    return bytes(out)


def max_abs(data):
    a = array.array("f")
    a.frombytes(bytes(data))
    if sys.byteorder != "little":
        a.byteswap()
    return max((abs(x) for x in a), default=0.0)


def narrow(src_path, dst_path):
    header, data = read_safetensors(src_path)
    tensors, kept = [], []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        chunk = data[s:e]
        if info["dtype"] == "F32" and max_abs(chunk) <= F16_MAX:
            tensors.append((name, "F16", info["shape"], to_planes(convert(chunk, "F32", "F16"))))
        else:
            kept.append(name)
            tensors.append((name, info["dtype"], info["shape"], bytes(chunk)))
    write_safetensors(dst_path, tensors, {"heterolora_transport": "f32 rounded to f16", LAYOUT_KEY: PLANES})
    return kept


def widen(src_path, dst_path):
    header, data = read_safetensors(src_path)
    planes = header.get("__metadata__", {}).get(LAYOUT_KEY) == PLANES
    tensors = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        chunk = data[s:e]
        if info["dtype"] == "F16":
            if planes:
                chunk = from_planes(chunk)
            tensors.append((name, "F32", info["shape"], convert(chunk, "F16", "F32")))
        else:
            tensors.append((name, info["dtype"], info["shape"], bytes(chunk)))
    write_safetensors(dst_path, tensors, {"format": "pt"})


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def pack(a):
    tasks = [t for t in a.tasks.split(",") if t]
    missing = [t for t in tasks if not os.path.isdir(os.path.join(a.glue, t))]
    if missing:
        sys.exit(
            f"pack-device-data.py: no {', '.join(missing)} folder under {a.glue}: fetch it "
            f"(heterolora fetch glue {' '.join(t.lower() for t in missing)}) or pack fewer with --tasks"
        )
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "device-data")
        os.makedirs(os.path.join(root, "model"))
        for f in MODEL_FILES:
            p = os.path.join(a.model, f)
            if os.path.exists(p):
                shutil.copy(p, os.path.join(root, "model", f))
        src = os.path.join(a.model, "model.safetensors")
        kept = narrow(src, os.path.join(root, "model", "model.f16.safetensors"))
        for t in tasks:
            os.makedirs(os.path.join(root, "glue", t))
            for f in sorted(os.listdir(os.path.join(a.glue, t))):
                if f.endswith(".tsv"):
                    shutil.copy(os.path.join(a.glue, t, f), os.path.join(root, "glue", t, f))
        manifest = {
            "model": os.path.basename(os.path.normpath(a.model)),
            "model_sha256_f32": sha256(src),
            "weights": "f32 rounded to f16 for transport (byte planes), widened back to f32 on unpack",
            "kept_f32_or_other": kept,
            "glue_tasks": tasks,
        }
        with open(os.path.join(root, "device-data.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with tarfile.open(a.out, "w:xz", preset=a.preset) as tar:
            tar.add(root, arcname="device-data")
    print(f"{a.out}: {os.path.getsize(a.out)} bytes ({', '.join(tasks)}; {len(kept)} tensors not narrowed)")


def unpack(a):
    with tempfile.TemporaryDirectory(dir=a.dest if os.path.isdir(a.dest) else None) as tmp:
        with tarfile.open(a.archive, "r:*") as tar:
            try:
                tar.extractall(tmp, filter="data")
            except TypeError:  # Python without extraction filters
                tar.extractall(tmp)
        root = os.path.join(tmp, "device-data")
        model = os.path.join(root, "model")
        widen(os.path.join(model, "model.f16.safetensors"), os.path.join(model, "model.safetensors"))
        os.remove(os.path.join(model, "model.f16.safetensors"))
        os.makedirs(a.dest, exist_ok=True)
        for name in ("model", "glue", "device-data.json"):
            dst = os.path.join(a.dest, name)
            if os.path.isdir(dst):
                shutil.rmtree(dst)
            elif os.path.exists(dst):
                os.remove(dst)
            shutil.move(os.path.join(root, name), dst)
    print(f"{a.dest}: model/ and glue/ unpacked")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--model", default=os.environ.get("HETEROLORA_MODEL_DIR", "datasets/models/all-MiniLM-L6-v2"))
    p.add_argument("--glue", default=os.environ.get("HETEROLORA_GLUE_DIR", "datasets/glue"))
    p.add_argument("--tasks", default="MRPC,RTE", help="GLUE task folders, comma-separated")
    p.add_argument("--out", default="dist/device-data.tar.xz")
    p.add_argument("--preset", type=int, default=6, help="xz preset")
    u = sub.add_parser("unpack")
    u.add_argument("--archive", default="dist/device-data.tar.xz")
    u.add_argument("--dest", required=True)
    a = ap.parse_args(argv)
    pack(a) if a.cmd == "pack" else unpack(a)


if __name__ == "__main__":
    main()
