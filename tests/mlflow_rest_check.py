#!/usr/bin/env python3
"""MLflow's own Python client reads back what heterolora logged to an MLflow tracking server.

Usage:
    python tests/mlflow_rest_check.py http://127.0.0.1:PORT expect.json

expect.json (written by tests/tracking_rest*.rs):
    {"runs": [{"run_id": "...", "status": "FINISHED",
               "params": {"k": "v"},            # each must be there with this value
               "tags": {"k": "v"},              # each must be there with this value
               "metrics": {"key": [[step, value], ...]},   # the full history, in any order
               "metric_keys": ["key", ...],     # must be logged (history not compared)
               "artifacts": ["rel/path", ...],  # must be listed (recursively)
               "artifact_texts": {"rel/path": "content"}}]}
Exits non-zero, naming the mismatch, on the first difference.
"""

import json
import math
import os
import sys
import tempfile

FLOAT_MAX = 1.7976931348623157e308


def fail(msg):
    print(f"mlflow_rest_check: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def same(a, b):
    if isinstance(b, str):
        b = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[b]
    if math.isnan(b):
        return math.isnan(a)
    if math.isinf(b):
        return a == (FLOAT_MAX if b > 0 else -FLOAT_MAX) or a == b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def list_all(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        if f.is_dir:
            out.extend(list_all(client, run_id, f.path))
        else:
            out.append(f.path)
    return out


def main():
    uri, expect_file = sys.argv[1], sys.argv[2]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    expect = json.load(open(expect_file))
    n_points = 0
    for e in expect["runs"]:
        rid = e["run_id"]
        run = client.get_run(rid)
        if "status" in e and run.info.status != e["status"]:
            fail(f"run {rid}: status {run.info.status}, expected {e['status']}")
        for k, v in e.get("params", {}).items():
            if run.data.params.get(k) != v:
                fail(f"run {rid}: param {k} = {run.data.params.get(k)!r}, expected {v!r}")
        for k, v in e.get("tags", {}).items():
            if run.data.tags.get(k) != v:
                fail(f"run {rid}: tag {k} = {run.data.tags.get(k)!r}, expected {v!r}")
        for k in e.get("metric_keys", []):
            if k not in run.data.metrics:
                fail(f"run {rid}: no metric {k} (has {sorted(run.data.metrics)})")
        for k, points in e.get("metrics", {}).items():
            hist = client.get_metric_history(rid, k)
            got = sorted((m.step, m.value) for m in hist)
            want = sorted(points, key=lambda p: p[0])
            if len(got) != len(want):
                fail(f"run {rid}: metric {k} has {len(got)} points, expected {len(want)}")
            # Same steps; at each step the same multiset of values.
            by_step = {}
            for s, v in got:
                by_step.setdefault(s, []).append(v)
            for s, v in want:
                vals = by_step.get(s, [])
                hit = next((i for i, x in enumerate(vals) if same(x, v)), None)
                if hit is None:
                    fail(f"run {rid}: metric {k} step {s}: expected {v}, server has {vals}")
                vals.pop(hit)
            n_points += len(got)
        listed = set(list_all(client, rid))
        for a in e.get("artifacts", []):
            if a not in listed:
                fail(f"run {rid}: artifact {a} not listed (listed: {sorted(listed)})")
        for a, text in e.get("artifact_texts", {}).items():
            with tempfile.TemporaryDirectory() as d:
                p = client.download_artifacts(rid, a, d)
                got = open(p).read()
            if got != text:
                fail(f"run {rid}: artifact {a} differs ({len(got)} vs {len(text)} characters)")
    print(f"mlflow_rest_check: OK: {len(expect['runs'])} runs, {n_points} metric points")


if __name__ == "__main__":
    main()
