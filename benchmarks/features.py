"""Benchmark the feature store on simulated data (run by hand, not a test).

Usage::

    .venv/bin/python benchmarks/features.py                      # 1M customers (~20M orders)
    .venv/bin/python benchmarks/features.py --customers 100000   # a quicker look

The simulated world is generated once and cached under ``--cache`` (default /tmp/retain-bench),
loaded and checked with ``retain.data.load_dataset``, and staged the way the store stages it (a
DuckDB database of the canonical tables). Each measurement then runs in a fresh subprocess, so
that its peak RSS is its own:

- ``engine``: the full default repository at 1 cutoff and at 6 monthly cutoffs, from staged
  sources to snapshot Parquet files, with both multi-cutoff strategies (a scan per cutoff, or
  one pass with the cutoffs joined in);
- ``pandas``: an equivalent pandas implementation of the same definitions (customer ids
  factorised once, one groupby per feature), checked value by value against the engine;
- ``duckdb``: a bare DuckDB SQL RFM query (recency, frequency, monetary) on the same files.

Targets (issue #4): one cutoff <= 10 s, >= 5x faster than pandas, peak RSS <= 3 GB.

On a shared machine, ``--repeat N`` runs every measurement N times (interleaved: engine,
DuckDB, pandas, then again) and keeps each one's fastest run, so that a burst of someone
else's work does not decide a ratio; the load average is printed before and after each
section. ``--cutoffs 1`` runs the one-cutoff section only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from _measure import cpu_seconds, peak_rss_gb

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT / "features"
SOURCES = ("customers", "transactions", "interactions", "cost_events")


def monthly_cutoffs(last: date, count: int) -> list[date]:
    """``count`` month starts ending at ``last``."""
    stamps = pd.date_range(end=pd.Timestamp(last), periods=count, freq="MS")
    return [stamp.date() for stamp in stamps]


# --------------------------------------------------------------------------- preparation


def prepare(customers: int, seed: int, cache: Path) -> tuple[Path, dict]:
    """Simulate, load and validate, and stage the sources as the store does (each once).

    Each step is skipped when its result is there: the simulated world (``simulation.json``
    written), and a staged database of the current format; the seconds each took are kept in
    ``bench.json``. Staging is a one-off per dataset, not part of building a cutoff.
    """
    from retain.data import load_dataset
    from retain.data.simulator import simulate_world, write_world
    from retain.engines.staging import is_current, stage_sources
    from retain.features import resolve_data

    data_dir = cache / f"world-{customers}-{seed}"
    info_path = data_dir / "bench.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {"seconds": {}}
    database = Path(info.get("database", data_dir / "missing"))
    if database.is_file() and is_current(database):
        return database, info
    if not (data_dir / "simulation.json").is_file():
        started = time.perf_counter()
        write_world(simulate_world(customers, seed=seed), data_dir)
        info["seconds"]["simulate"] = time.perf_counter() - started
    started = time.perf_counter()
    dataset = load_dataset(data_dir)
    info["seconds"]["load_dataset"] = time.perf_counter() - started
    sources = resolve_data(dataset)
    started = time.perf_counter()
    database = stage_sources(sources, cache / "store" / "sources" / sources.fingerprint)
    info["seconds"]["stage"] = time.perf_counter() - started
    info.update(
        database=str(database),
        end=json.loads((data_dir / "simulation.json").read_text())["end"],
        transactions=len(dataset.transactions),
        interactions=len(dataset.interactions),
        customers=len(dataset.customers),
    )
    info_path.write_text(json.dumps(info, indent=2))
    return database, info


# --------------------------------------------------------------------------- workers


def engine_worker(staged: Path, cutoffs: list[date], strategy: str, out: Path) -> dict:
    """Staged sources -> one snapshot Parquet per cutoff, through the store's engine."""
    import ibis.backends.duckdb  # noqa: F401  (imported on first connection otherwise: 0.15 s)
    import pyarrow.parquet as pq

    from retain.engines.duckdb import staged_connection
    from retain.features import iter_snapshots, load_repository

    # imports are not timed (as the other workers import duckdb or pandas first)
    repository = load_repository(REPO)
    started, cpu = time.perf_counter(), cpu_seconds()
    rows = 0
    with staged_connection(staged) as connection:
        snapshots = iter_snapshots(repository, connection, cutoffs, strategy=strategy)
        for cutoff, table in snapshots:
            pq.write_table(table, out / f"engine-{cutoff}.parquet", compression="zstd")
            rows += table.num_rows
            del table  # as the store does: not held while the next cutoff is computed
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "rss_gb": peak_rss_gb(), "rows": rows}


def duckdb_worker(staged: Path, cutoffs: list[date]) -> dict:
    """The bare DuckDB SQL baseline: RFM of purchases before each cutoff."""
    import duckdb

    con = duckdb.connect(str(staged), read_only=True)
    started, cpu = time.perf_counter(), cpu_seconds()
    rows = 0
    for cutoff in cutoffs:
        result = con.sql(
            f"""
            SELECT customer_id,
                   DATE '{cutoff}' - MAX(CAST(timestamp AS DATE)) AS recency_days,
                   COUNT(*) AS frequency,
                   SUM(amount) AS monetary_total
            FROM transactions
            WHERE timestamp < TIMESTAMP '{cutoff}' AND amount > 0
            GROUP BY customer_id
            """
        ).to_arrow_table()
        rows += result.num_rows
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "rss_gb": peak_rss_gb(), "rows": rows}


def pandas_worker(staged: Path, cutoffs: list[date], out: Path) -> dict:
    """The same features in pandas; the result is compared with the engine's afterwards."""
    import duckdb

    from retain.engines.sources import arrow_schema
    from retain.features import load_repository

    repository = load_repository(REPO)
    with duckdb.connect(str(staged), read_only=True) as con:
        # the canonical columns with their canonical types, as before staging added codes and
        # ENUMs (text stays text: pandas gets what it got before, no categoricals)
        tables = {
            name: con.sql(f"SELECT * FROM {name}")
            .select(*arrow_schema(name).names)
            .to_arrow_table()
            for name in SOURCES
        }
    tables = {name: table.cast(arrow_schema(name)).to_pandas() for name, table in tables.items()}
    started, cpu = time.perf_counter(), cpu_seconds()
    frames = [pandas_snapshot(repository, tables, cutoff) for cutoff in cutoffs]
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    rss = peak_rss_gb()
    mismatches = {}
    for cutoff, frame in zip(cutoffs, frames, strict=True):
        engine = out / f"engine-{cutoff}.parquet"
        if engine.is_file():
            mismatches[str(cutoff)] = compare(pd.read_parquet(engine), frame)
    return {"seconds": seconds, "cpu": cpu, "rss_gb": rss, "mismatches": mismatches}


# --------------------------------------------------------------------------- pandas version


def _mask(condition, frame: pd.DataFrame) -> np.ndarray:
    """Evaluate a filter's canonical form on a frame (missing values fail, as in SQL)."""
    if condition is None:
        return np.ones(len(frame), dtype=bool)
    return _evaluate(condition.canonical(), frame)


def _evaluate(node: list, frame: pd.DataFrame) -> np.ndarray:
    head = node[0]
    if head in ("and", "or"):
        left, right = _evaluate(node[1], frame), _evaluate(node[2], frame)
        return left & right if head == "and" else left | right
    if head == "not":
        return ~_evaluate(node[1], frame)
    column = frame[node[1]]
    if head == "isnull":
        return column.isna().to_numpy()
    if head == "isin":
        return column.isin(node[2]).to_numpy()
    operators = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
    result = getattr(column, operators[head])(node[2])
    return result.fillna(False).to_numpy(dtype=bool) & column.notna().to_numpy()


def pandas_snapshot(repository, tables: dict[str, pd.DataFrame], cutoff: date) -> pd.DataFrame:
    """Every feature of the repository at ``cutoff``, computed with pandas."""
    from retain.features import Attribute, Tenure

    as_of_day = (pd.Timestamp(cutoff) - pd.Timestamp("1970-01-01")).days
    results, known = {}, []
    for view in repository.views:
        if view.schema.is_static:
            continue
        frame = tables[view.source]
        day = frame["timestamp"].to_numpy().astype("datetime64[D]").astype(np.int64)
        rows = frame[day < as_of_day].assign(_day=day[day < as_of_day])
        codes, uniques = pd.factorize(rows["customer_id"])
        rows = rows.assign(_code=codes)
        known.append(pd.Index(uniques))
        results[view.name] = _pandas_event_view(view, rows, uniques, as_of_day)
    customers = tables["customers"]
    signup = customers["signup_date"]
    known.append(pd.Index(customers.loc[signup < pd.Timestamp(cutoff), "customer_id"]))
    spine = known[0]
    for index in known[1:]:
        spine = spine.union(index)
    snapshot = pd.DataFrame(index=spine.sort_values())
    for view in repository.views:
        if view.schema.is_static:
            static = customers.set_index("customer_id").reindex(snapshot.index)
            for feature in view.features:
                if isinstance(feature, Tenure):
                    days = (pd.Timestamp(cutoff) - static[feature.column].dt.floor("D")).dt.days
                    snapshot[feature.name] = days.where(days > 0).astype("float64")
                elif isinstance(feature, Attribute):
                    values = static[feature.source_column]
                    if feature.categories is not None:
                        values = values.where(
                            values.isin(feature.categories) | values.isna(), Attribute.OTHER
                        )
                    snapshot[feature.name] = values
        else:
            snapshot = snapshot.join(results[view.name])
            snapshot[_zero_defaults(view)] = snapshot[_zero_defaults(view)].fillna(0)
    return snapshot


def _zero_defaults(view) -> list[str]:
    """Features that are 0, not missing, for a customer without events in the view."""
    from retain.features import Trend, WindowAggregate

    zero = [
        feature.name
        for feature in view.features
        if isinstance(feature, WindowAggregate)
        and feature.agg in ("count", "count_distinct", "sum")
    ]
    return zero + [f.name for f in view.features if isinstance(f, Trend) and f.method != "ratio"]


def _pandas_event_view(view, rows: pd.DataFrame, uniques, as_of_day: int) -> pd.DataFrame:
    from retain.features import (
        BTYDForecast,
        BTYDSummary,
        GapProbability,
        GapStatistics,
        Pace,
        Ratio,
        Recency,
        Tenure,
        Trend,
        WindowAggregate,
    )
    from retain.features.forecast import add_forecasts

    out = pd.DataFrame(index=pd.Index(uniques, name="customer_id"))
    codes = rows["_code"].to_numpy()
    day = rows["_day"].to_numpy()

    def window(start, end=0):
        keep = np.ones(len(rows), dtype=bool)
        if start is not None:
            keep &= day >= as_of_day - start
        if end:
            keep &= day < as_of_day - end
        return keep

    def aggregate(agg, column, keep):
        values = rows[column] if column else pd.Series(np.ones(len(rows)), index=rows.index)
        grouped = values[keep].groupby(codes[keep])
        result = {
            "count": grouped.count,
            "sum": grouped.sum,
            "mean": grouped.mean,
            "min": grouped.min,
            "max": grouped.max,
            "count_distinct": grouped.nunique,
        }[agg]()
        full = result.reindex(np.arange(len(uniques)))
        if agg in ("count", "count_distinct", "sum"):
            full = full.fillna(0)
        return full.to_numpy()

    for feature in view.features:
        where = _mask(getattr(feature, "where", None), rows)
        if isinstance(feature, WindowAggregate):
            out[feature.name] = aggregate(
                feature.agg, feature.column, where & window(feature.window_days)
            )
        elif isinstance(feature, Recency):
            last = pd.Series(day[where]).groupby(codes[where]).max()
            out[feature.name] = as_of_day - last.reindex(np.arange(len(uniques))).to_numpy()
        elif isinstance(feature, Tenure):
            out[feature.name] = as_of_day - pd.Series(day).groupby(codes).min().to_numpy()
        elif isinstance(feature, Trend):
            days = feature.window_days
            recent = aggregate(feature.agg, feature.column, where & window(days))
            previous = aggregate(feature.agg, feature.column, where & window(2 * days, days))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(previous != 0, recent / previous, np.nan)
            out[feature.name] = ratio if feature.method == "ratio" else recent - previous
        elif isinstance(feature, Pace):
            recent = aggregate("count", None, where & window(feature.window_days))
            baseline = aggregate("count", None, where & window(feature.baseline_days))
            first = pd.Series(day[where]).groupby(codes[where]).min()
            since = as_of_day - first.reindex(np.arange(len(uniques))).to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = baseline / np.minimum(since, feature.baseline_days)
                out[feature.name] = (recent / np.minimum(since, feature.window_days)) / np.where(
                    rate > 0, rate, np.nan
                )
        elif isinstance(feature, GapStatistics | BTYDSummary | GapProbability):
            _pandas_daily(out, feature, rows[where], as_of_day, len(uniques))
    for feature in view.features:
        if isinstance(feature, Ratio):
            denominator = out[feature.denominator].astype(float).replace(0, np.nan)
            out[feature.name] = out[feature.numerator] / denominator
        if isinstance(feature, BTYDForecast):  # the same model, fitted on these summaries
            names = [*feature.inputs, *feature.outputs]
            summaries = {name: out.get(name, np.full(len(out), np.nan)) for name in names}
            table = pa.table({name: np.asarray(v, float) for name, v in summaries.items()})
            filled = add_forecasts(table, [feature]).to_pandas()
            for name in feature.outputs:
                out[name] = filled[name].to_numpy()
    return out[list(view.feature_names)]


def _pandas_daily(out, feature, rows: pd.DataFrame, as_of_day: int, size: int) -> None:
    from retain.features import GapProbability, GapStatistics

    column = "amount" if isinstance(feature, GapStatistics | GapProbability) else feature.column
    daily = rows.groupby(["_code", "_day"], sort=True)[column].sum().reset_index()
    daily["gap"] = daily.groupby("_code")["_day"].diff()
    grouped = daily.groupby("_code")
    first, last = grouped["_day"].min(), grouped["_day"].max()
    days = grouped.size()
    index = np.arange(size)
    if isinstance(feature, GapStatistics):
        mean = ((last - first) / (days - 1).replace(0, np.nan)).reindex(index)
        std = grouped["gap"].std(ddof=1).reindex(index)
        out[feature.mean] = mean.to_numpy()
        out[feature.std] = std.to_numpy()
        out[feature.overdue] = ((as_of_day - last.reindex(index)) / mean).to_numpy()
        return
    if isinstance(feature, GapProbability):
        share = ((last - first) / (as_of_day - first)).astype(float)
        probability = (share ** (days - 1).astype(float)).where(days >= 2)
        out[feature.name] = probability.reindex(index).to_numpy()
        return
    repeat = daily[daily["gap"].notna()].groupby("_code")[column].sum()
    frequency = (days - 1).reindex(index)
    out[feature.frequency] = frequency.to_numpy(dtype=float)
    out[feature.recency] = (last - first).reindex(index).to_numpy(dtype=float)
    out[feature.T] = (as_of_day - first).reindex(index).to_numpy(dtype=float)
    monetary = (repeat.reindex(frequency.index).fillna(0) / frequency.replace(0, np.nan)).fillna(0)
    out[feature.monetary_value] = monetary.where(frequency.notna()).to_numpy()


def compare(engine: pd.DataFrame, other: pd.DataFrame) -> dict:
    """Columns whose values differ beyond floating-point noise, with a count of rows."""
    engine = engine.set_index("customer_id").drop(columns="as_of")
    other = other.reindex(engine.index)
    differing = {}
    if len(other.dropna(how="all")) != len(engine):
        differing["_rows"] = abs(len(other.dropna(how="all")) - len(engine))
    for name in engine.columns:
        left, right = engine[name], other[name]
        if pd.api.types.is_numeric_dtype(left):
            left, right = left.to_numpy(float), right.to_numpy(float)
            same = np.isclose(left, right, rtol=1e-9, atol=1e-6, equal_nan=True)
        else:
            same = (left.fillna("<NA>") == right.fillna("<NA>")).to_numpy()
        if not same.all():
            differing[name] = int((~same).sum())
    return differing


# --------------------------------------------------------------------------- driver


def run_worker(kind: str, staged: Path, cutoffs: list[date], out: Path, strategy: str) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--staged", str(staged)]
    command += ["--out", str(out), "--strategy", strategy]
    command += [arg for cutoff in cutoffs for arg in ("--as-of", str(cutoff))]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/retain-bench"))
    parser.add_argument("--cutoffs", type=int, default=6)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (fastest kept)")
    parser.add_argument("--worker", choices=["engine", "pandas", "duckdb"])
    parser.add_argument("--staged", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--strategy", default="per_cutoff")
    parser.add_argument("--as-of", action="append", default=[])
    args = parser.parse_args()
    if args.worker:
        cutoffs = [date.fromisoformat(text) for text in args.as_of]
        if args.worker == "engine":
            result = engine_worker(args.staged, cutoffs, args.strategy, args.out)
        elif args.worker == "pandas":
            result = pandas_worker(args.staged, cutoffs, args.out)
        else:
            result = duckdb_worker(args.staged, cutoffs)
        print(json.dumps(result))
        return
    report(args)


def report(args) -> None:
    staged, info = prepare(args.customers, args.seed, args.cache)
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} before the run (ratios: x the engine)")
    print(
        f"data: {info['customers']:,} customers, {info['transactions']:,} transactions, "
        f"{info['interactions']:,} interactions; preparation (once): "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in info["seconds"].items())
    )
    out = args.cache / "out"
    out.mkdir(parents=True, exist_ok=True)
    cutoffs = monthly_cutoffs(date.fromisoformat(info["end"]), args.cutoffs)
    sections = [("1 cutoff", cutoffs[-1:])]
    if len(cutoffs) > 1:  # --cutoffs 1: the one-cutoff section only
        sections.append((f"{len(cutoffs)} cutoffs", cutoffs))
    for label, chosen in sections:
        print(f"\n== {label} ({chosen[0]} .. {chosen[-1]}), load average {_load()}")
        strategies = ["per_cutoff"] if len(chosen) == 1 else ["per_cutoff", "joined"]
        workers = [(f"engine {strategy}", "engine", strategy) for strategy in strategies]
        workers.append(("bare DuckDB RFM", "duckdb", ""))
        if not args.skip_pandas:
            workers.append(("pandas", "pandas", ""))
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in workers}
        for _ in range(args.repeat):
            for name, kind, strategy in workers:
                runs[name].append(run_worker(kind, staged, chosen, out, strategy))
        rows = {name: min(found, key=lambda row: row["seconds"]) for name, found in runs.items()}
        engine = rows["engine per_cutoff"]
        for name, row in rows.items():
            wall, cpu = row["seconds"], row["cpu"]
            every = " ".join(f"{run['seconds']:.2f}" for run in runs[name])
            print(
                f"  {name:<20} wall {wall:7.2f} s ({wall / engine['seconds']:5.2f}x)"
                f"  cpu {cpu:7.2f} s ({cpu / engine['cpu']:5.2f}x)  RSS {row['rss_gb']:5.2f} GB"
                + (f"  (runs: {every} s)" if args.repeat > 1 else "")
            )
        if "pandas" in rows:
            print(f"  pandas vs engine mismatches: {rows['pandas']['mismatches']}")
        print(f"  load average after: {_load()}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
