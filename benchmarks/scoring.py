"""Benchmark ``retain score`` end to end at scale (run by hand, not a test).

Usage::

    .venv/bin/python benchmarks/scoring.py                        # 1M simulated customers
    .venv/bin/python benchmarks/scoring.py --customers 100000     # a quicker look
    .venv/bin/python benchmarks/scoring.py --engine spark         # also time the Spark engine

Models are trained once on a smaller simulated world (``--train-customers``) in a temporary
workspace; a large world (``--customers``, cached under ``--cache``) is then scored at its end
date in fresh subprocesses, so each peak RSS is its own:

- ``first``: a new data extract: load and validate, stage the sources, build the snapshot,
  three models, reasons, actions, selection, write (what a daily run with new data costs);
- ``again``: the same extract scored again (staging and snapshot reused);
- ``baseline``: the bare minimum on the same snapshot: read the features of the active
  customers and call the three models' predict methods (no reasons, no drift, no selection, no
  files, no tracking). The ratio says what the rest of the pipeline costs.

With ``--engine spark`` a fourth measurement, ``spark``, scores the same extract again with
``engine="spark"`` (snapshot reused, the workspace's ``spark.yaml``: ``local[*]``); its peak RSS
is the driver's Python only (the JVM and the Python workers are other processes).

Targets (issue #6): end to end <= 60 s and <= 4 GB peak RSS for 1M customers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _measure import peak_rss_gb

ROOT = Path(__file__).resolve().parents[1]


def prepare(args) -> tuple[Path, Path, date]:
    """Train the models in a workspace and simulate (or reuse) the world to score."""
    from retain.data.simulator import simulate_world, write_world
    from retain.training.jobs import run_training
    from retain.workspace import init_workspace

    workspace = Path(tempfile.mkdtemp(prefix="retain-bench-scoring-"))
    init_workspace(workspace)
    started = time.perf_counter()
    train_world = simulate_world(args.train_customers, seed=args.seed)
    write_world(train_world, workspace / "data" / "train")
    run_training("all", workspace=workspace, data=workspace / "data" / "train")
    print(f"trained on {args.train_customers:,} customers in {time.perf_counter() - started:.1f} s")
    data = Path(args.cache) / f"world-{args.customers}-{args.seed + 1}"
    if not (data / "simulation.json").is_file():
        started = time.perf_counter()
        world = simulate_world(args.customers, seed=args.seed + 1)
        write_world(world, data)
        del world
        print(f"simulated {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
    end = date.fromisoformat(json.loads((data / "simulation.json").read_text())["end"])
    return workspace, data, end


def worker(kind: str, workspace: Path, data: Path, as_of: date) -> dict:
    """One measurement, in this (fresh) process."""
    started = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def progress(description: str, advance: float = 1.0) -> None:
        steps.append((description, round(time.perf_counter() - started, 2)))

    if kind == "baseline":
        rows = baseline(workspace, data, as_of, progress)
    elif kind == "spark":
        rows = spark_score(workspace, data, as_of, progress)
    else:
        from retain.serving.score import score

        result = score(as_of, workspace=workspace, data=data, out=workspace / "out" / kind,
                       progress=progress)  # fmt: skip
        rows = len(result.frame)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_gb": peak_rss_gb(),
        "rows": rows,
        "steps": steps,
    }


def baseline(workspace: Path, data: Path, as_of: date, progress) -> int:
    """Features of the active customers and the three models' bare predictions."""
    from retain.features import get_features
    from retain.training import registry, tracking
    from retain.training.config import load_config
    from retain.training.dataset import open_sources, open_store
    from retain.training.labels import active_customers

    tracking.use_workspace(workspace)
    models = {family: registry.load_model(family) for family in ("churn", "clv", "segments")}
    config = load_config("churn", workspace=workspace)
    sources = open_sources(config, data, workspace)
    features = get_features(as_of, store=open_store(config, workspace), data=sources,
                            as_categorical=True)  # fmt: skip
    active = active_customers(sources.tables["transactions"], as_of, config.active_days)
    X = features.merge(active, on=["customer_id", "as_of"]).drop(columns=["customer_id", "as_of"])
    progress("features")
    clv = models["clv"].predict(X)
    models["churn"].predict_proba(X)
    models["segments"].predict(X.assign(clv=clv))
    progress("predicted")
    return len(X)


def spark_score(workspace: Path, data: Path, as_of: date, progress) -> int:
    """``retain score --engine spark`` on the same extract; the number of customers listed."""
    from retain.serving.score import score

    result = score(as_of, workspace=workspace, data=data, out=workspace / "out" / "spark",
                   progress=progress, engine="spark")  # fmt: skip
    return int(result.summary["counts"]["scored"])


def run(kind: str, workspace: Path, data: Path, as_of: date) -> dict:
    """Run a measurement in a fresh interpreter and return what it measured."""
    command = [sys.executable, __file__, "--worker", kind, "--workspace", str(workspace),
               "--data", str(data), "--as-of", str(as_of)]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="/tmp/retain-bench-scoring")
    parser.add_argument(
        "--engine", choices=("duckdb", "spark"), default="duckdb",
        help="spark: also time the Spark engine, after the DuckDB runs",
    )  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        measured = worker(args.worker, Path(args.workspace), Path(args.data),
                          date.fromisoformat(args.as_of))  # fmt: skip
        print(json.dumps(measured))
        return
    workspace, data, as_of = prepare(args)
    print(f"load average {os.getloadavg()[0]:.2f}; scoring {data} at {as_of}")
    kinds = ("first", "again", "baseline", *(("spark",) if args.engine == "spark" else ()))
    results = {kind: run(kind, workspace, data, as_of) for kind in kinds}
    base = results["baseline"]["seconds"]
    for kind, result in results.items():
        print(
            f"  {kind:9s} {result['seconds']:7.1f} s  {result['peak_rss_gb']:5.2f} GB  "
            f"{result['rows']:>9,} rows  {result['seconds'] / base:5.2f}x baseline"
        )
        for description, at in result["steps"]:
            print(f"      {at:7.1f} s  {description}")
    again = results["again"]
    verdict = "met" if again["seconds"] <= 60 and again["peak_rss_gb"] <= 4 else "NOT met"
    print(f"targets (<= 60 s, <= 4 GB, sources staged): {verdict}")
    print(f"load average {os.getloadavg()[0]:.2f}; workspace {workspace}")


if __name__ == "__main__":
    main()
