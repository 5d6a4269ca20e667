#!/usr/bin/env python3
"""The real MLflow opens a store our tracker wrote and sees the same runs.

Usage (CI, after `pip install mlflow`):
    cargo run --example mlflow_fixture -- write   target/mlflow-check/mlflow.db
    python tests/mlflow_check.py                  target/mlflow-check/mlflow.db
    cargo run --example mlflow_fixture -- recheck target/mlflow-check/mlflow.db
    python tests/mlflow_check.py --after-recheck  target/mlflow-check/mlflow.db

The first pass checks, through MLflow's public API, the runs, params, latest metrics, metric
histories, nested runs, NaN/inf values, artifacts and a search filter that `mlflow_fixture write`
recorded in expected.json (beside the DB). Opening the file makes MLflow upgrade its schema in
place; `mlflow_fixture recheck` then proves our code still reads and writes it, and the second
pass checks that MLflow sees the run written after the upgrade. Exits non-zero on any mismatch.
"""

import argparse
import json
import math
import os
import sqlite3
import sys
import tempfile

OUR_REVISION = "89d4b8295536"
FLOAT_MAX = 1.7976931348623157e308


def fail(msg):
    print(f"mlflow_check: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def revision(db):
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
    finally:
        con.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--after-recheck", action="store_true")
    args = ap.parse_args()
    db = os.path.abspath(args.db)
    check(os.path.exists(db), f"{db} does not exist: run `cargo run --example mlflow_fixture -- write {args.db}` first")
    expected = json.load(open(os.path.join(os.path.dirname(db), "expected.json")))
    before = revision(db)

    import mlflow
    from mlflow.tracking import MlflowClient

    uri = "sqlite:///" + db
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    print(f"mlflow {mlflow.__version__}; store revision before opening: {before}")

    exp = client.get_experiment_by_name(expected["experiment"])
    check(exp is not None, f"MLflow does not see experiment {expected['experiment']!r}")
    check(exp.experiment_id == expected["experiment_id"], f"experiment id {exp.experiment_id} != {expected['experiment_id']}")
    # MLflow 3's UI opens the experiment in its model-training view, not the GenAI one.
    kind = exp.tags.get("mlflow.experimentKind")
    check(kind == "custom_model_development", f"experiment kind tag {kind!r}")
    after = revision(db)
    check(after and after[0] != OUR_REVISION, f"MLflow did not upgrade the schema (still {after})")
    print(f"store revision after MLflow opened it: {after[0]}")

    if args.after_recheck:
        after_check(client, expected)
        print("mlflow_check: OK (after recheck)")
        return

    runs = mlflow.search_runs(experiment_ids=[exp.experiment_id])
    check(len(runs) == 5, f"search_runs found {len(runs)} runs, expected 5 (sweep, 3 trials, non-finite)")

    df = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string=expected["filter"])
    check(list(df["run_id"]) == expected["filter_matches"],
          f"filter {expected['filter']!r} matched {list(df['run_id'])}, expected {expected['filter_matches']}")
    check("metrics.acc" in df.columns and "params.r" in df.columns, f"columns: {list(df.columns)}")

    kids = mlflow.search_runs(experiment_ids=[exp.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{expected['sweep_run_id']}'")
    check(sorted(kids["run_id"]) == sorted(t["run_id"] for t in expected["trials"]), "nested runs under the sweep")

    for t in expected["trials"]:
        rid = t["run_id"]
        run = client.get_run(rid)
        check(run.info.status == t["status"], f"{rid}: status {run.info.status}")
        check(run.info.run_name == t["run_name"], f"{rid}: run name {run.info.run_name!r}")
        check(run.data.params.get("r") == t["r"], f"{rid}: params.r = {run.data.params.get('r')!r}")
        check(run.data.params.get("lora_alpha") == t["lora_alpha"], f"{rid}: params.lora_alpha")
        check(run.data.tags.get("mlflow.parentRunId") == expected["sweep_run_id"], f"{rid}: parent tag")
        check(run.data.tags.get("allocator") == "greedy", f"{rid}: tag allocator")
        check(abs(run.data.metrics["acc"] - t["acc_latest"]) < 1e-12, f"{rid}: latest acc {run.data.metrics['acc']}")
        check(abs(run.data.metrics["loss"] - t["loss"]) < 1e-12, f"{rid}: latest loss")
        hist = client.get_metric_history(rid, "acc")
        got = sorted((m.step, m.timestamp, m.value) for m in hist)
        want = sorted((p["step"], p["timestamp"], p["value"]) for p in t["acc_history"])
        check(len(got) == len(want) and all(g[0] == w[0] and g[1] == w[1] and abs(g[2] - w[2]) < 1e-12
                                            for g, w in zip(got, want)),
              f"{rid}: acc history {got} != {want}")
        top = sorted(a.path for a in client.list_artifacts(rid))
        check(top == ["allocation.json", "notes"], f"{rid}: artifacts {top}")
        notes = [a.path for a in client.list_artifacts(rid, "notes")]
        check(notes == ["notes/readme.txt"], f"{rid}: artifacts under notes/: {notes}")
        with tempfile.TemporaryDirectory() as d:
            local = client.download_artifacts(rid, "allocation.json", d)
            alloc = json.load(open(local))
            check(alloc["r"] == int(t["r"]), f"{rid}: allocation.json content {alloc}")

    odd = client.get_run(expected["non_finite_run_id"])
    check(odd.info.status == "FAILED", f"non-finite run status {odd.info.status}")
    check(math.isnan(odd.data.metrics["nan_metric"]), f"NaN metric read as {odd.data.metrics['nan_metric']}")
    check(odd.data.metrics["inf_metric"] == FLOAT_MAX, f"+inf metric read as {odd.data.metrics['inf_metric']}")
    check(odd.data.metrics["neg_inf_metric"] == -FLOAT_MAX, f"-inf metric read as {odd.data.metrics['neg_inf_metric']}")

    sweep = client.get_run(expected["sweep_run_id"])
    check(sweep.data.params.get("budget") == "50000", "sweep param budget")
    check("mlflow_fixture" in sweep.data.tags.get("mlflow.note.content", ""), "sweep note")
    print("mlflow_check: OK (MLflow sees the runs, params, latest metrics, histories, artifacts and filter)")


def after_check(client, expected):
    rid = expected.get("after_upgrade_run_id")
    check(rid, "expected.json has no after_upgrade_run_id: run `mlflow_fixture recheck` first")
    run = client.get_run(rid)
    check(run.info.status == expected["after_upgrade_status"], f"status {run.info.status}")
    check(run.data.params.get("phase") == "recheck", "param phase")
    hist = client.get_metric_history(rid, "acc")
    check(len(hist) == 10, f"history of the run written after the upgrade has {len(hist)} points")
    check([a.path for a in client.list_artifacts(rid)] == ["after.txt"], "artifact after.txt")
    exp = client.get_experiment_by_name("after-upgrade")
    check(exp is not None and exp.experiment_id == run.info.experiment_id, "experiment created after the upgrade")
    kind = exp.tags.get("mlflow.experimentKind")
    check(kind == "custom_model_development", f"experiment created after the upgrade: kind tag {kind!r}")


if __name__ == "__main__":
    main()
