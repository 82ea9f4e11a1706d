"""Benchmark ``retain score`` end to end at scale (run by hand, not a test).

Usage::

    .venv/bin/python benchmarks/scoring.py                        # 1M simulated customers
    .venv/bin/python benchmarks/scoring.py --customers 100000     # a quicker look
    .venv/bin/python benchmarks/scoring.py --engine spark         # also time the Spark engine
    .venv/bin/python benchmarks/scoring.py --workspace DIR        # reuse models trained before

Models are trained once on a smaller simulated world (``--train-customers``) in a temporary
workspace (or taken from ``--workspace``, a workspace an earlier run printed); a large world
(``--customers``, cached under ``--cache``) is then scored at its end date in fresh
subprocesses, so each peak RSS is its own:

- ``first``: a new data extract, never seen by the store: read and validate it, build the
  snapshot, three models, reasons, actions, selection, write (what a daily run with new data
  costs);
- ``again``: the same extract scored again (the store knows the files by their fingerprint:
  snapshot reused, no table read);
- ``baseline``: the bare minimum on the same snapshot: read the features of the active
  customers and call the three models' predict methods (no reasons, no drift, no selection, no
  files, no tracking). The ratio says what the rest of the pipeline costs.

With ``--engine spark`` a fourth measurement, ``spark``, scores the same extract again with
``engine="spark"`` (snapshot reused, ``spark`` of the workspace's ``retain.yaml``:
``local[*]``); its peak RSS is the driver's Python only (the JVM and the Python workers are
other processes).

Each measurement also reports its CPU seconds (all threads) and the 1-minute load average
before and after it: the machine is shared, and with another job busy a 2-core run gets about
one core, so wall time tracks CPU time.

Targets (issue #6): end to end <= 60 s and <= 4 GB peak RSS for 1M customers, for ``first``
and ``again``.
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

from _measure import cpu_seconds, peak_rss_gb

ROOT = Path(__file__).resolve().parents[1]


def prepare(args) -> tuple[Path, Path, date]:
    """Train the models in a workspace (or reuse one) and simulate (or reuse) the world to
    score; the workspace's store then knows nothing of that world."""
    from retain.data.simulator import simulate_world, write_world
    from retain.training.jobs import run_training
    from retain.workspace import init_workspace

    if args.workspace:
        workspace = Path(args.workspace)
        print(f"models trained before, in {workspace}")
    else:
        workspace = Path(tempfile.mkdtemp(prefix="retain-bench-scoring-"))
        init_workspace(workspace)
        started = time.perf_counter()
        train_world = simulate_world(args.train_customers, seed=args.seed)
        write_world(train_world, workspace / "data" / "train")
        del train_world
        run_training("all", workspace=workspace, data=workspace / "data" / "train")
        seconds = time.perf_counter() - started
        print(f"trained on {args.train_customers:,} customers in {seconds:.1f} s")
    data = Path(args.cache) / f"world-{args.customers}-{args.seed + 1}"
    if not (data / "simulation.json").is_file():
        started = time.perf_counter()
        world = simulate_world(args.customers, seed=args.seed + 1)
        write_world(world, data)
        del world
        print(f"simulated {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
    end = date.fromisoformat(json.loads((data / "simulation.json").read_text())["end"])
    forget(workspace / "store", data)
    return workspace, data, end


def forget(store: Path, data: Path) -> None:
    """Remove from ``store`` what it holds of ``data``, so that ``first`` meets it anew."""
    import shutil

    from retain.data import folder_fingerprint

    fingerprint = folder_fingerprint(data).fingerprint
    for path in (store / "sources").glob(f"{fingerprint}*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for manifest in (store / "snapshots").glob("as_of=*/*.json"):
        if json.loads(manifest.read_text()).get("source_fingerprint") == fingerprint:
            manifest.with_suffix(".parquet").unlink(missing_ok=True)
            manifest.unlink()


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
        "cpu_seconds": cpu_seconds(),
        "peak_rss_gb": peak_rss_gb(),
        "rows": rows,
        "steps": steps,
    }


def baseline(workspace: Path, data: Path, as_of: date, progress) -> int:
    """Features of the active customers and the three models' bare predictions."""
    from retain.engines import get_engine
    from retain.features import categorical, open_sources, open_store
    from retain.mlflow import registry, tracking
    from retain.serving.population import active_population
    from retain.training.config import load_config

    tracking.use_workspace(workspace)
    models = {family: registry.load_model(family) for family in ("churn", "clv", "segments")}
    config = load_config("churn", workspace=workspace)
    store = open_store(config, workspace)
    sources = store.sources(open_sources(config, data, workspace))
    rows = active_population(get_engine(), sources, store, as_of, config.active_days)
    population = categorical(rows, store.repository)
    X = population.drop(columns=["customer_id", "as_of"])
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
    load_before = os.getloadavg()[0]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    measured = json.loads(output.strip().splitlines()[-1])
    return {**measured, "load": (load_before, os.getloadavg()[0])}


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
    parser.add_argument(
        "--workspace", help="a workspace with trained models (printed by an earlier run)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
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
        before, after = result["load"]
        print(
            f"  {kind:9s} {result['seconds']:7.1f} s  {result['cpu_seconds']:6.1f} s CPU  "
            f"{result['peak_rss_gb']:5.2f} GB  {result['rows']:>9,} rows  "
            f"{result['seconds'] / base:5.2f}x baseline  load {before:.2f} -> {after:.2f}"
        )
        for description, at in result["steps"]:
            print(f"      {at:7.1f} s  {description}")
    for kind in ("first", "again"):
        result = results[kind]
        met = result["seconds"] <= 60 and result["peak_rss_gb"] <= 4
        print(f"targets (<= 60 s, <= 4 GB), {kind}: {'met' if met else 'NOT met'}")
    print(f"load average {os.getloadavg()[0]:.2f}; workspace {workspace}")


if __name__ == "__main__":
    main()
