"""Benchmark the engines against each other: DuckDB against Spark ``local[2]`` (run by hand).

Usage::

    .venv/bin/python benchmarks/engines.py                       # 1M customers (~20M orders)
    .venv/bin/python benchmarks/engines.py --customers 100000    # a quicker look
    .venv/bin/python benchmarks/engines.py --engines spark       # one engine only

The simulated world is generated once and cached under ``--cache`` (default
/tmp/retain-bench, the folder benchmarks/features.py uses, so a world simulated by either is
reused). Each stage on each engine then runs in a fresh subprocess, so that its peak memory is
its own; for Spark the peak of the JVM (a child process that also runs the executors in local
mode) is added to the Python driver's.

Stages (one function each; add training or scoring as ``<stage>_worker`` + ``STAGES``):

- ``features``: the default feature repository at one cutoff (the month start before the end
  of the data), from the validated sources to a snapshot Parquet file, through
  ``FeatureStore.build(engine=...)``. Loading and validating the data folder is the same for
  both engines and is reported apart; so are staging the sources (``Engine.stage``, once per
  dataset: a DuckDB database, or Parquet files for Spark) and starting the Spark session. The
  snapshots of both engines are compared value by value.

Printed per engine: wall seconds of each part, peak RSS (``VmHWM`` of each process, read from
``/proc``: ``ru_maxrss`` is inherited across ``exec``) and the ratio Spark / DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from _measure import peak_rss_gb

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT / "features"
ENGINES = ("duckdb", "spark")  # retain.engines.ENGINES, without importing retain here
SPARK_MASTER = "local[2]"


# --------------------------------------------------------------------------- measurements


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (the Spark JVM and anything it started)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def peak_rss_with_children_gb() -> float:
    """This process's peak RSS plus that of each live descendant (an upper bound of the
    combined peak: the processes need not peak at the same moment)."""
    return peak_rss_gb() + sum(peak_rss_gb(child) for child in descendants(os.getpid()))


class Clock:
    """Wall seconds of named parts, in order."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self._started = time.perf_counter()

    def lap(self, name: str) -> None:
        """Record the seconds since the last lap under ``name``."""
        now = time.perf_counter()
        self.parts[name] = round(now - self._started, 3)
        self._started = now


# --------------------------------------------------------------------------- data


def prepare(customers: int, seed: int, cache: Path) -> tuple[Path, date]:
    """The simulated world's data folder (simulated once) and the cutoff to build."""
    from retain.data.simulator import simulate_world, write_world

    data_dir = cache / f"world-{customers}-{seed}"
    description = data_dir / "simulation.json"
    if not description.is_file():
        started = time.perf_counter()
        write_world(simulate_world(customers, seed=seed), data_dir)
        print(f"simulated {customers:,} customers in {time.perf_counter() - started:.1f} s")
    end = date.fromisoformat(json.loads(description.read_text())["end"])
    return data_dir, end.replace(day=1)


# --------------------------------------------------------------------------- stages


def _engine(name: str):
    """The engine called ``name``; Spark on ``SPARK_MASTER`` with the benchmark's settings."""
    from retain.engines import get_engine

    if name != "spark":
        return get_engine(name)
    from retain.engines.spark import SparkEngine, SparkSettings

    return SparkEngine(SparkSettings(master=SPARK_MASTER, driver_memory="6g", shuffle_partitions=8))


def features_worker(name: str, data_dir: Path, cutoff: date, out: Path) -> dict:
    """Validated sources -> one snapshot, on engine ``name``; the parts timed separately."""
    from retain.features import FeatureStore, load_repository, resolve_data

    clock = Clock()
    sources = resolve_data(data_dir)
    sources.compact  # noqa: B018  (loading is lazy: read and check the tables in this lap)
    clock.lap("load")
    store = FeatureStore(out / f"store-{name}", load_repository(REPO))
    engine = _engine(name)
    if not engine.in_process:
        engine.spark  # noqa: B018  (the session starts in this lap)
        clock.lap("session")
    engine.stage(sources, store.root / "sources")
    clock.lap("stage")
    (result,) = store.build(sources, cutoff, engine=engine)
    clock.lap("build")
    rss = peak_rss_with_children_gb()
    return {"parts": clock.parts, "rss_gb": rss, "rows": result.rows, "path": str(result.path)}


#: stage name -> worker(engine, data_dir, cutoff, out) -> {"parts": {...}, "rss_gb": ...}
STAGES: dict[str, Callable[[str, Path, date, Path], dict]] = {"features": features_worker}
#: the part of each stage the engines are compared on
COMPARED = {"features": "build"}


def compare_snapshots(duckdb_path: str, spark_path: str) -> dict[str, int]:
    """Columns whose values differ between the engines (floats beyond 1e-9 relative)."""
    import numpy as np
    import pandas as pd

    left, right = pd.read_parquet(duckdb_path), pd.read_parquet(spark_path)
    if list(left.columns) != list(right.columns) or len(left) != len(right):
        return {"_shape": 1}
    differing = {}
    for name in left.columns:
        if pd.api.types.is_float_dtype(left[name]):
            same = np.isclose(left[name], right[name], rtol=1e-9, atol=0, equal_nan=True)
        else:
            same = (left[name].astype(str) == right[name].astype(str)).to_numpy()
        if not same.all():
            differing[name] = int((~same).sum())
    return differing


# --------------------------------------------------------------------------- driver


def run_worker(stage: str, engine: str, data_dir: Path, cutoff: date, out: Path) -> dict:
    """Run one stage on one engine in a fresh interpreter; its JSON result."""
    command = [sys.executable, __file__, "--worker", stage, "--engine", engine]
    command += ["--data", str(data_dir), "--as-of", str(cutoff), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{stage} on {engine} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(stage: str, rows: dict[str, dict]) -> None:
    """Print each engine's parts, total and peak RSS, and Spark / DuckDB ratios."""
    compared = COMPARED[stage]
    base = rows.get("duckdb")
    for engine, row in rows.items():
        parts = "  ".join(f"{name} {seconds:6.1f} s" for name, seconds in row["parts"].items())
        line = f"  {engine:<7} {parts}  peak RSS {row['rss_gb']:5.2f} GB"
        if base is not None and engine != "duckdb":
            ratio = row["parts"][compared] / base["parts"][compared]
            line += f"  ({compared}: {ratio:.1f}x DuckDB)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/retain-bench"))
    parser.add_argument("--stages", nargs="+", choices=sorted(STAGES), default=sorted(STAGES))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--worker", choices=sorted(STAGES))
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--as-of")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        cutoff = date.fromisoformat(args.as_of)
        print(json.dumps(STAGES[args.worker](args.engine, args.data, cutoff, args.out)))
        return
    data_dir, cutoff = prepare(args.customers, args.seed, args.cache)
    out = args.cache / f"engines-{args.customers}-{args.seed}"
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f}; Spark master {SPARK_MASTER}")
    print(f"data: {data_dir} ({args.customers:,} customers), cutoff {cutoff}")
    for stage in args.stages:
        print(f"\n== {stage}")
        _clear(out)
        rows = {}
        for engine in args.engines:
            rows[engine] = run_worker(stage, engine, data_dir, cutoff, out)
        report(stage, rows)
        if stage == "features" and len(rows) == 2:
            differing = compare_snapshots(rows["duckdb"]["path"], rows["spark"]["path"])
            print(f"  values differing between the engines: {differing or 'none'}")


def _clear(out: Path) -> None:
    """Start each run from an empty store (staging and building are timed every time)."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    for engine in ENGINES:
        shutil.rmtree(out / f"store-{engine}", ignore_errors=True)


if __name__ == "__main__":
    main()
