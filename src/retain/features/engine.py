"""Run compiled snapshots on a backend and hand back one Arrow table per cutoff."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import Literal

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.features.compiler import AS_OF_DAY, EPOCH, compile_snapshot, epoch_day
from retain.features.definitions import FeatureView
from retain.features.repository import Repository
from retain.features.sources import to_ibis_tables

__all__ = ["Strategy", "compute_features", "iter_snapshots"]

#: ``per_cutoff`` runs the compiled query once per cutoff; ``joined`` joins all cutoffs in and
#: scans the sources once.
Strategy = Literal["per_cutoff", "joined"]
#: benchmarks/features.py, 1M customers, 6 monthly cutoffs: ``joined`` took the same CPU time
#: as ``per_cutoff`` (188 s against 189 s; 196 s against 267 s in a noisier run) but 11 GB of
#: memory against 3 GB, since every cutoff's rows go through the aggregates at once.
#: ``per_cutoff`` keeps memory at one snapshot's and writes each snapshot as it finishes.
DEFAULT_STRATEGY: Strategy = "per_cutoff"


def iter_snapshots(
    repository: Repository,
    tables: Mapping[str, ir.Table],
    as_of: Sequence[date],
    *,
    backend: ibis.BaseBackend,
    strategy: Strategy = DEFAULT_STRATEGY,
) -> Iterator[tuple[date, pa.Table]]:
    """Yield ``(as_of, snapshot)`` for each cutoff, in date order.

    The snapshot expression is compiled once; only the content of the cutoffs table changes
    between runs (compiling a full repository costs about a second of Python).

    A snapshot is an Arrow table: the join key, ``as_of`` (timestamp, midnight), then the
    features, sorted by key.
    """
    if strategy not in ("per_cutoff", "joined"):
        raise ValueError(f"strategy must be 'per_cutoff' or 'joined', got {strategy!r}")
    cutoffs = sorted(set(as_of))
    run = _compiled(repository, tables, backend)
    if strategy == "per_cutoff":
        for cutoff in cutoffs:
            yield cutoff, _finish(run([cutoff]), cutoff)
        return
    table = run(cutoffs)
    days = table.column(AS_OF_DAY)
    for cutoff in cutoffs:
        yield cutoff, _finish(table.filter(pc.equal(days, epoch_day(cutoff))), cutoff)


def _cutoffs_table(cutoffs: Sequence[date]) -> pa.Table:
    days = [epoch_day(cutoff) for cutoff in cutoffs]
    return pa.table({AS_OF_DAY: pa.array(days, pa.int64())})


_SQL_CACHE: dict[tuple, str] = {}
CUTOFFS_TABLE = "_retain_cutoffs"


def _compiled(repository: Repository, tables: Mapping[str, ir.Table], backend: ibis.BaseBackend):
    """A function running the snapshot query for a list of cutoffs, compiled only once.

    The SQL text depends only on the definitions and the names and schemas of the tables, so it
    is also cached across builds in the process (Ibis needs about a second per compilation).
    """
    identities = tuple(_identity(name, table) for name, table in tables.items())
    cache_key = (backend.name, tuple(sorted(repository.versions.items())), identities)
    sql = _SQL_CACHE.get(cache_key)
    if sql is None:
        cutoffs = ibis.table({AS_OF_DAY: "int64"}, name=CUTOFFS_TABLE)  # bound by name when run
        expr = compile_snapshot(repository, tables, cutoffs)
        if backend.name == "duckdb":
            backend._run_pre_execute_hooks(expr)  # registers in-memory tables, as to_pyarrow does
        sql = backend.compile(expr)
        if None not in identities:
            _SQL_CACHE[cache_key] = sql

    def run(cutoffs: Sequence[date]) -> pa.Table:
        _put_table(backend, CUTOFFS_TABLE, _cutoffs_table(cutoffs))
        if backend.name == "duckdb":
            return backend.con.sql(sql).to_arrow_table()
        return backend.to_pyarrow(backend.sql(sql))

    return run


def _identity(name: str, table: ir.Table) -> tuple | None:
    """What the compiled SQL depends on for one table: its name and schema (``None`` when the
    table is an expression or a one-off in-memory table, whose SQL cannot be reused)."""
    op = table.op()
    if not isinstance(op, ops.PhysicalTable) or isinstance(op, ops.InMemoryTable):
        return None
    return (name, op.name, repr(table.schema()))


def _put_table(backend: ibis.BaseBackend, name: str, table: pa.Table) -> None:
    """Create or replace a small table on the backend (DuckDB: register the Arrow table)."""
    if backend.name == "duckdb":
        backend.con.register(name, table)
    else:
        backend.create_table(name, table, temp=True, overwrite=True)


def _finish(table: pa.Table, cutoff: date) -> pa.Table:
    """Replace the engine's epoch-day column with an ``as_of`` timestamp after the key."""
    table = table.drop_columns([AS_OF_DAY])
    stamps = np.full(table.num_rows, np.datetime64(cutoff, "us"))
    return table.add_column(1, "as_of", pa.array(stamps, pa.timestamp("us")))


def compute_features(
    views: Repository | Sequence[FeatureView],
    sources: Mapping[str, ir.Table | pd.DataFrame | pa.Table | None],
    as_of: date | str | Sequence[date | str],
    *,
    backend: ibis.BaseBackend | None = None,
    strategy: Strategy = DEFAULT_STRATEGY,
) -> pd.DataFrame:
    """Compute features at one or more cutoffs, without the snapshot store.

    Parameters
    ----------
    views : Repository or sequence of FeatureView
        Feature definitions (validated here when given as a sequence).
    sources : mapping of str to DataFrame, Arrow table or ibis.Table
        Canonical tables ``customers``, ``transactions``, ``interactions``; absent tables and
        optional columns count as empty. Ibis tables must live on ``backend``.
    as_of : date, str or sequence of them
        Cutoff date(s), ``YYYY-MM-DD``.
    backend : ibis backend, default=a new in-memory DuckDB connection
    strategy : {"per_cutoff", "joined"}, default="per_cutoff"

    Returns
    -------
    pandas.DataFrame
        One row per entity known at each cutoff: key, ``as_of``, features.
    """
    repository = views if isinstance(views, Repository) else Repository.from_views(list(views))
    cutoffs = as_dates(as_of)
    backend = backend or ibis.duckdb.connect()
    tables = to_ibis_tables(sources, backend)
    parts = [
        table
        for _, table in iter_snapshots(
            repository, tables, cutoffs, backend=backend, strategy=strategy
        )
    ]
    return pa.concat_tables(parts).to_pandas()


def as_dates(as_of: date | str | Sequence[date | str]) -> list[date]:
    """Cutoffs as dates; accepts ``YYYY-MM-DD`` strings, dates and midnight timestamps."""
    values = [as_of] if isinstance(as_of, str | date) else list(as_of)
    dates = []
    for value in values:
        if isinstance(value, str):
            value = date.fromisoformat(value)
        elif isinstance(value, datetime):  # pandas Timestamps included
            if value.time() != time(0) or value.tzinfo is not None:
                raise ValueError(f"a cutoff is a date (UTC-naive midnight), got {value}")
            value = value.date()
        if not isinstance(value, date) or value <= EPOCH:
            raise ValueError(f"not a valid cutoff date: {value!r}")
        dates.append(value)
    return sorted(set(dates))
