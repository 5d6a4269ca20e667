"""Writes datasets/manifests/glue.json from a verified GLUE copy (SHA256SUMS + its files).

Usage: python3 scripts/make_glue_manifest.py <GLUE folder> > datasets/manifests/glue.json

Row counts are data rows: lines minus the header line where the file has one (CoLA train/dev and
MRPC's dev_ids.tsv have none). The counts agree with each task's SOURCE.txt. Files that the
pinned copy lacks but the official archives carry (QNLI train.tsv) are listed without a checksum.
"""
import hashlib, json, os, sys

root = sys.argv[1]
sums = {}
for line in open(os.path.join(root, "SHA256SUMS")):
    h, p = line.split()
    sums[p] = h
# Not in SHA256SUMS but shipped in the copy: GLUE's MRPC source file.
extra = ["MRPC/msr_paraphrase_train.txt"]
NO_HEADER = {"CoLA/train.tsv", "CoLA/dev.tsv", "MRPC/dev_ids.tsv"}
files = []
for p in sorted(list(sums) + extra):
    full = os.path.join(root, p)
    data = open(full, "rb").read()
    h = hashlib.sha256(data).hexdigest()
    if p in sums:
        assert sums[p] == h, p
    lines = [l for l in data.split(b"\n") if l.strip()]
    header = p not in NO_HEADER
    task, name = p.split("/")
    files.append({
        "task": task, "file": name, "sha256": h, "bytes": len(data),
        "rows": len(lines) - (1 if header else 0), "header": header,
        # Split files are what `fetch glue` needs; MRPC's sources are kept when available.
        "required": name in ("train.tsv", "dev.tsv", "test.tsv"),
    })
files.append({"task": "QNLI", "file": "train.tsv", "sha256": None, "bytes": None,
              "rows": 104743, "header": True, "required": False})
files.sort(key=lambda f: (f["task"], f["file"]))
print(json.dumps({
    "about": "Official GLUE task files (as GLUE's download_glue_data.py leaves them): sha256, data rows "
             "(without header) and whether `heterolora fetch glue` requires the file. MRPC/train.tsv is "
             "the official 3668-pair split rebuilt from msr_paraphrase_train.txt + dev_ids.tsv.",
    "archives": {
        "CoLA": "https://dl.fbaipublicfiles.com/glue/data/CoLA.zip",
        "SST-2": "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
        "STS-B": "https://dl.fbaipublicfiles.com/glue/data/STS-B.zip",
        "QNLI": "https://dl.fbaipublicfiles.com/glue/data/QNLIv2.zip",
        "RTE": "https://dl.fbaipublicfiles.com/glue/data/RTE.zip",
        "WNLI": "https://dl.fbaipublicfiles.com/glue/data/WNLI.zip",
    },
    "mrpc": {
        "train": "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt",
        "test": "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt",
        "dev_ids": "https://dl.fbaipublicfiles.com/glue/data/mrpc_dev_ids.tsv",
    },
    "files": files,
}, indent=1))
