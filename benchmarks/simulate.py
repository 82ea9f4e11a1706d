"""Benchmark: simulate a retail world and write it to Parquet (run by hand, not a test).

Prints wall and CPU time per step, the peak resident memory, the row counts, and the ratio
against a baseline measured in the same run on the same row count: numpy drawing and sorting
that many uniform timestamps and pyarrow writing them to a one-column Parquet file. The
ratio is what to compare across machines and loads; the target is 1M customers in at most
60 s and 6 GB on a 2-core machine.

Usage::

    .venv/bin/python benchmarks/simulate.py --customers 1000000
    .venv/bin/python benchmarks/simulate.py --customers 50000 --campaigns --costs --referrals

Run the options on and off in separate processes: the peak memory is the process's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from _measure import peak_rss_gb
from retain.data.simulator import simulate_world, write_world


class Clock:
    """Wall and CPU (user + system) time since the last lap."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        elapsed = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return elapsed


def run_simulation(
    customers: int, seed: int, out_dir: Path, options: dict[str, bool]
) -> tuple[float, dict[str, int]]:
    """Simulate and write; print each step; return the total wall time and row counts."""
    total, step = Clock(), Clock()

    def report(description: str, advance: float = 1.0) -> None:
        wall, cpu = step.lap()
        print(f"  {description:<34} {wall:7.2f} s wall {cpu:7.2f} s cpu")

    world = simulate_world(customers, seed=seed, progress=report, **options)
    write_world(world, out_dir)
    report("write_world")
    return total.lap()[0], world.counts()


def run_baseline(rows: int, seed: int, out_dir: Path) -> float:
    """Draw, sort and write ``rows`` uniform timestamps: the same-run yardstick."""
    clock = Clock()
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, 915 * 86_400, rows))
    stamps = (seconds * 1_000_000).view("datetime64[us]")
    pq.write_table(pa.table({"timestamp": stamps}), out_dir / "baseline.parquet")
    return clock.lap()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the files here")
    for option in ("campaigns", "costs", "referrals"):
        parser.add_argument(f"--{option}", action="store_true", help=f"simulate with {option}")
    args = parser.parse_args()
    options = {name: getattr(args, name) for name in ("campaigns", "costs", "referrals")}

    load = os.getloadavg()
    chosen = ", ".join(name for name, on in options.items() if on) or "none"
    print(
        f"simulate {args.customers:,} customers (seed {args.seed}, options: {chosen}); "
        f"{os.cpu_count()} cores"
    )
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = args.out or Path(scratch) / "world"
        elapsed, counts = run_simulation(args.customers, args.seed, out_dir, options)
        peak = peak_rss_gb()
        rows = counts["transactions"] + counts["interactions"]
        baseline = run_baseline(rows, args.seed, Path(scratch))
        size = sum(path.stat().st_size for path in out_dir.glob("*.parquet")) / 2**20

    print(f"rows: {', '.join(f'{name} {count:,}' for name, count in counts.items())}")
    print(
        f"simulate + write: {elapsed:.2f} s wall, peak RSS {peak:.2f} GiB, Parquet {size:.0f} MiB"
    )
    print(f"baseline (draw + sort + write {rows:,} timestamps): {baseline:.2f} s")
    print(f"ratio simulate+write / baseline: {elapsed / baseline:.1f}x")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
