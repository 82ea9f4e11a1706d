"""The embedded engine: everything in this process, on DuckDB (the default).

- *Sources* are staged once per fingerprint as a DuckDB database
  (``STORE/sources/<fingerprint>/sources.duckdb``, see :mod:`retain.engines.staging`) and
  attached read-only to an in-memory DuckDB; a build of one cutoff from sources not yet staged
  reads them from memory instead (writing the database costs more than one scan of it saves).
  Snapshot queries share what does not depend on the cutoff across cutoffs (compressed
  in-memory tables).
- *Rows* (a training set, a population, a list) are pandas DataFrames in this process. The
  rules of :mod:`retain.engines.rules` run on them, and on the sources' Arrow tables, in a
  short-lived in-memory DuckDB; where a rule filters rows, their order is kept.
- *Fits* run the estimators' own ``fit`` and ``refit`` on the driver's frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.engines import rules
from retain.engines.base import Batches, Sources, TrainingRows, charged_costs, dated
from retain.engines.layout import KEY
from retain.engines.staging import (
    DATABASE,
    connect,
    is_current,
    open_staged,
    register_plain,
    register_staged,
    stage_sources,
)
from retain.errors import ConfigError

__all__ = ["SHARED_CATALOG", "DuckDBConnection", "DuckDBEngine", "staged_connection"]

#: In-memory DuckDB catalog of the tables shared by the queries of several cutoffs.
SHARED_CATALOG = "_retain_shared"
ROW = "_row"
AS_OF = "as_of"


class DuckDBConnection:
    """Sources opened on DuckDB (see :class:`retain.engines.Connection`).

    Parameters
    ----------
    backend : ibis.BaseBackend
        Ibis' DuckDB backend holding the tables.
    tables : dict of str to ibis.Table
        The sources (and ``_keys``, ``_columns`` when coded).
    details : dict of str to str
        What a snapshot manifest records about them.
    """

    name = "duckdb"
    shares_scans = True

    def __init__(self, backend: ibis.BaseBackend, tables: dict[str, ir.Table], details: dict):
        self.backend, self.tables, self.details = backend, tables, details

    def compile(self, expr: ir.Expr) -> str:
        self.backend._run_pre_execute_hooks(expr)  # registers in-memory tables, as to_pyarrow does
        return self.backend.compile(expr)

    def put_table(self, name: str, table: pa.Table) -> None:
        self.backend.con.register(name, table)

    def create_shared(self, name: str, sql: str) -> None:
        """Create table ``name`` from ``sql``, compressed in memory, for every cutoff's query.

        The table lives in an in-memory catalog attached with ``COMPRESS``; a checkpoint
        compresses it (benchmarks/features.py at 1M customers: the purchase days took 169 MB
        instead of the 445 MB of a temporary table, and 6 cutoffs peaked at 2.4-2.5 GB instead
        of 2.8-3.0 GB, in about the same time). The queries read it through a temporary view of
        their name for it.
        """
        connection = self.backend.con
        connection.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {SHARED_CATALOG} (COMPRESS)")
        with _reordering_allowed(connection):  # a table's row order means nothing here
            connection.execute(f'CREATE OR REPLACE TABLE {SHARED_CATALOG}."{name}" AS {sql}')
        connection.execute(f"CHECKPOINT {SHARED_CATALOG}")
        connection.execute(
            f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM {SHARED_CATALOG}."{name}"'
        )

    def drop_shared(self, name: str) -> None:
        self.backend.con.execute(f'DROP VIEW IF EXISTS "{name}"').fetchall()
        self.backend.con.execute(f'DROP TABLE IF EXISTS {SHARED_CATALOG}."{name}"').fetchall()

    def fetch(self, sql: str) -> pa.Table:
        return self.backend.con.sql(sql).to_arrow_table()

    def execute(self, expr: ir.Expr) -> Any:
        return _execute(self.backend, expr)


@contextmanager
def _reordering_allowed(connection) -> Iterator[None]:
    """DuckDB free to reorder rows (cheaper to parallelise); the setting is restored after."""
    setting = "preserve_insertion_order"
    ((previous,),) = connection.execute(f"SELECT current_setting('{setting}')").fetchall()
    connection.execute(f"SET {setting} = false").fetchall()
    try:
        yield
    finally:
        connection.execute(f"SET {setting} = {'true' if previous else 'false'}").fetchall()


@contextmanager
def staged_connection(database: Path) -> Iterator[DuckDBConnection]:
    """A connection on a staged database (see :func:`retain.engines.staging.stage_sources`)."""
    backend, tables = open_staged(database)
    try:
        yield DuckDBConnection(backend, tables, {"backend": "duckdb", "sources": "staged"})
    finally:
        backend.disconnect()


def _execute(backend: ibis.BaseBackend, expr: ir.Expr) -> Any:
    """The result of ``expr`` as Arrow: a table, a column's array or a scalar."""
    backend._run_pre_execute_hooks(expr)  # registers in-memory tables
    table = backend.con.sql(backend.compile(expr)).to_arrow_table()
    if isinstance(expr, ir.Scalar):
        return table.column(0)[0]
    return table.column(0) if isinstance(expr, ir.Column) else table


def _run(tables: Mapping[str, pa.Table], build: Callable[..., ir.Expr]) -> pa.Table:
    """``build(**ibis_tables)`` run on an in-memory DuckDB holding the Arrow ``tables``."""
    backend = connect()
    try:
        ibis_tables = {}
        for name, table in tables.items():
            backend.con.register(f"_retain_{name}", table)
            schema = ibis.Schema.from_pyarrow(table.schema)
            ibis_tables[name] = ibis.table(schema, name=f"_retain_{name}")
        return _execute(backend, build(**ibis_tables))
    finally:
        backend.disconnect()


def _kept_in_order(table: pa.Table, keep: Callable[..., ir.Table], **others: pa.Table) -> pa.Table:
    """The rows of ``table`` that the rule ``keep(rows, **others)`` keeps, in their order."""
    numbered = table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    kept = _run(
        {"rows": numbered, **others},
        lambda rows, **tables: keep(rows, **tables).select(ROW).order_by(ROW),
    )
    return table.take(kept.column(ROW))


def _arrow(frame: pd.DataFrame, columns: Sequence[str]) -> pa.Table:
    return pa.Table.from_pandas(frame[list(columns)], preserve_index=False)


def _target(frame: pd.DataFrame, label: str) -> np.ndarray:
    """A label as the estimators take it: 0/1 integers of a boolean, else floats."""
    values = frame[label]
    return values.to_numpy(int if pd.api.types.is_bool_dtype(values) else float)


def _transactions(sources: Sources) -> pa.Table:
    return sources.tables["transactions"]


def _cost_sources(sources: Sources, rates: Mapping[str, float] | None) -> dict[str, pa.Table]:
    """The transactions, and with costs (``rates`` not ``None``) the interactions and the
    costs log."""
    tables = {"transactions": _transactions(sources)}
    if rates is not None:
        tables |= {"interactions": sources.tables["interactions"], "costs": sources.logs["costs"]}
    return tables


def _costs(
    transactions: ir.Table, rates: Mapping[str, float] | None, **logs: ir.Table
) -> ir.Table | None:
    """:func:`retain.engines.rules.cost_events` of the tables of :func:`_cost_sources`."""
    if rates is None:
        return None
    return rules.cost_events(transactions, logs["interactions"], logs["costs"], rates)


@dataclass
class DuckDBEngine:
    """The embedded engine (see the module docstring and :class:`retain.engines.Engine`).

    Parameters
    ----------
    coded : bool, default=True
        Give sources read from memory the key codes, value codes and column statistics that
        staging gives (several times faster). ``False`` registers the plain canonical tables:
        the portable path every backend can run, for comparing the two.
    """

    coded: bool = True
    name: ClassVar[str] = "duckdb"
    in_process: ClassVar[bool] = True

    @classmethod
    def from_workspace(
        cls, workspace: str | Path = ".", config_file: str | Path | None = None
    ) -> DuckDBEngine:
        """The embedded engine (it has no settings)."""
        if config_file is not None:
            raise ConfigError("--spark-config is for --engine spark")
        return cls()

    # -- sources and snapshots -----------------------------------------------------------------

    def stage(self, sources: Sources, staging: Path) -> Path:
        """``staging/<fingerprint>/sources.duckdb``, written once per fingerprint."""
        return stage_sources(sources, staging / sources.fingerprint)

    @contextmanager
    def connect(
        self, sources: Sources, staging: Path | None = None, cutoffs: int = 1
    ) -> Iterator[DuckDBConnection]:
        """The sources on an in-memory DuckDB: the staged database under ``staging`` for
        several cutoffs or when it exists already, else the tables from memory."""
        database = staging / sources.fingerprint / DATABASE if staging is not None else None
        if database is not None and (cutoffs > 1 or (database.is_file() and is_current(database))):
            with staged_connection(self.stage(sources, staging)) as connection:
                yield connection
            return
        backend = connect()
        try:
            if self.coded:
                tables = register_staged(backend, sources.compact)
            else:
                tables = register_plain(backend, sources.tables)
            yield DuckDBConnection(backend, tables, {"backend": "duckdb", "sources": "memory"})
        finally:
            backend.disconnect()

    # -- rules on the sources ------------------------------------------------------------------

    def outcomes(
        self,
        sources: Sources,
        cutoffs: Sequence[date],
        *,
        horizon_days: int,
        active_days: int,
        margin_rate: float = 0.3,
        cost_rates: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        rates = charged_costs(sources, cost_rates)

        def build(transactions: ir.Table, **logs: ir.Table) -> ir.Table:
            labels = rules.outcomes(
                transactions, rules.cutoffs_table(cutoffs), horizon_days=horizon_days,
                active_days=active_days, margin_rate=margin_rate,
                costs=_costs(transactions, rates, **logs),
            )  # fmt: skip
            return labels.order_by([AS_OF, KEY])

        return dated(_run(_cost_sources(sources, rates), build).to_pandas())

    def active_customers(
        self, sources: Sources, cutoffs: Sequence[date], active_days: int
    ) -> pd.DataFrame:
        def build(transactions: ir.Table) -> ir.Table:
            active = rules.active_customers(transactions, rules.cutoffs_table(cutoffs), active_days)
            return active.order_by([AS_OF, KEY])

        return dated(_run({"transactions": _transactions(sources)}, build).to_pandas())

    def margin_share(self, sources: Sources, before: date, margin_rate: float) -> float:
        def build(transactions: ir.Table) -> ir.Table:
            return rules.margin_share(transactions, before, margin_rate)

        (row,) = _run({"transactions": _transactions(sources)}, build).to_pylist()
        return rules.finish_margin_share(row, margin_rate)

    def experiment_tallies(
        self,
        sources: Sources,
        assignments: pd.DataFrame,
        as_of: date,
        *,
        churn_days: int,
        margin_days: int,
        margin_rate: float = 0.3,
        discount_rate_monthly: float = 0.0,
    ) -> pd.DataFrame:
        def build(transactions: ir.Table, assignments: ir.Table) -> ir.Table:
            return rules.experiment_tallies(
                transactions, assignments, as_of, churn_days=churn_days,
                margin_days=margin_days, margin_rate=margin_rate,
                discount_rate_monthly=discount_rate_monthly,
            )  # fmt: skip

        tables = {
            "transactions": _transactions(sources),
            "assignments": rules.assignments_arrow(assignments),
        }
        return rules.finish_experiment_tallies(_run(tables, build).to_pandas())

    def campaign_cutoffs(self, campaigns: pa.Table) -> pd.DataFrame:
        def build(campaigns: ir.Table) -> ir.Table:
            return rules.campaign_cutoffs(campaigns).order_by([AS_OF, "campaign_id"])

        return rules.finish_campaign_cutoffs(_run({"campaigns": campaigns}, build).to_pandas())

    def campaign_rows(
        self,
        sources: Sources,
        campaigns: pa.Table,
        snapshots: Sequence[Path],
        features: Sequence[str],
        *,
        validation: Sequence[date],
        horizon_days: int,
        active_days: int,
        margin_rate: float,
    ) -> pd.DataFrame:
        columns = [KEY, AS_OF, *features]
        snapshot = pa.concat_tables([pq.read_table(path, columns=columns) for path in snapshots])
        cutoffs = list(self.campaign_cutoffs(campaigns)[AS_OF])

        def build(transactions: ir.Table, campaigns: ir.Table, snapshots: ir.Table) -> ir.Table:
            labels = rules.outcomes(
                transactions, rules.cutoffs_table(cutoffs), horizon_days=horizon_days,
                active_days=active_days, margin_rate=margin_rate,
            )  # fmt: skip
            rows = rules.campaign_rows(campaigns, labels, snapshots, features, validation)
            return rows.order_by([AS_OF, "campaign_id", KEY])

        tables = {"transactions": _transactions(sources), "campaigns": campaigns,
                  "snapshots": snapshot}  # fmt: skip
        return dated(_run(tables, build).to_pandas())

    def profit_and_loss(
        self,
        sources: Sources,
        as_of: date,
        *,
        margin_rate: float = 0.3,
        cost_rates: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        rates = charged_costs(sources, cost_rates) or {}
        tables = {**_cost_sources(sources, rates), "customers": sources.tables["customers"]}

        def build(transactions: ir.Table, customers: ir.Table, **logs: ir.Table) -> ir.Table:
            pnl = rules.profit_and_loss(
                customers, transactions, _costs(transactions, rates, **logs), as_of, margin_rate
            )
            return pnl.order_by(KEY)

        return dated(_run(tables, build).to_pandas())

    # -- training --------------------------------------------------------------------------------

    def training_rows(
        self,
        sources: Sources,
        snapshots: Sequence[Path],
        features: Sequence[str],
        *,
        cutoffs: Sequence[date],
        validation: Sequence[date],
        horizon_days: int,
        active_days: int,
        margin_rate: float,
        cost_rates: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        columns = [KEY, AS_OF, *features]
        snapshot = pa.concat_tables([pq.read_table(path, columns=columns) for path in snapshots])
        rates = charged_costs(sources, cost_rates)

        def build(transactions: ir.Table, snapshots: ir.Table, **logs: ir.Table) -> ir.Table:
            labels = rules.outcomes(
                transactions, rules.cutoffs_table(cutoffs), horizon_days=horizon_days,
                active_days=active_days, margin_rate=margin_rate,
                costs=_costs(transactions, rates, **logs),
            )  # fmt: skip
            rows = rules.training_rows(labels, snapshots, features, validation)
            return rows.order_by([AS_OF, KEY])

        tables = {**_cost_sources(sources, rates), "snapshots": snapshot}
        return dated(_run(tables, build).to_pandas())

    def cutoff_counts(self, rows: pd.DataFrame) -> pd.DataFrame:
        counts = _run({"rows": _arrow(rows, [AS_OF, "churned"])}, rules.cutoff_counts)
        return rules.finish_cutoff_counts(counts.to_pandas())

    def column_profile(
        self,
        rows: pd.DataFrame,
        features: Sequence[str],
        vocabularies: Mapping[str, Sequence[str]],
        split: str | None = "train",
    ) -> pd.DataFrame:
        def build(rows: ir.Table) -> ir.Table:
            return rules.column_profile(rows, features, vocabularies, split)

        (row,) = _run({"rows": _arrow(rows, [*features, rules.SPLIT])}, build).to_pylist()
        return rules.finish_column_profile(row, features)

    def class_counts(self, rows: pd.DataFrame, label: str) -> dict[str, tuple[int, int]]:
        def build(rows: ir.Table) -> ir.Table:
            return rules.class_counts(rows, label)

        found = _run({"rows": _arrow(rows, [label, rules.SPLIT])}, build).to_pylist()
        return rules.finish_class_counts(found)

    def driver_rows(
        self, rows: pd.DataFrame, *, max_train_rows: int | None = None, seed: int = 0
    ) -> pd.DataFrame:
        """The rows themselves (they are on the driver), without a limit."""
        return rows

    def rows_at(self, rows: pd.DataFrame, as_of: date, columns: Sequence[str]) -> pd.DataFrame:
        return rows.loc[(rows[AS_OF] == pd.Timestamp(as_of)).to_numpy(), list(columns)]

    def fit_trees(self, training_set: TrainingRows, estimator: Any, label: str) -> Any:
        features = list(training_set.features)
        train, valid = training_set.train, training_set.validation
        return estimator.fit(
            train[features], _target(train, label),
            eval_set=(valid[features], _target(valid, label)),
        )  # fmt: skip

    def refit_trees(self, training_set: TrainingRows, model: Any, label: str) -> Any:
        frame = training_set.frame
        return model.refit(frame[list(training_set.features)], _target(frame, label))

    # -- scoring ---------------------------------------------------------------------------------

    def population(
        self,
        snapshot: Path,
        columns: Sequence[str],
        *,
        active_days: int,
        sources: Sources | None = None,
        as_of: date | None = None,
    ) -> pd.DataFrame:
        table = pq.read_table(snapshot, columns=list(columns))
        if sources is None:
            kept = _kept_in_order(table, lambda rows: rules.population(rows, active_days))
        else:

            def keep(rows: ir.Table, transactions: ir.Table) -> ir.Table:
                cutoffs = rules.cutoffs_table(as_of)
                active = rules.active_customers(transactions, cutoffs, active_days)
                return rules.population(rows, active_days, active)

            kept = _kept_in_order(table, keep, transactions=_transactions(sources))
        return kept.to_pandas()

    def from_pandas(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    def count(self, rows: pd.DataFrame) -> int:
        return len(rows)

    def columns(self, rows: pd.DataFrame) -> list[str]:
        return list(rows.columns)

    def sample(
        self, rows: pd.DataFrame, columns: Sequence[str], *, limit: int | None, seed: int
    ) -> pd.DataFrame:
        chosen = rows[list(columns)]
        if limit is None or len(chosen) <= limit:
            return chosen
        return chosen.sample(n=limit, random_state=seed).sort_index()

    def map_batches(
        self, rows: pd.DataFrame, function: Batches, schema: pa.Schema | None = None
    ) -> pd.DataFrame:
        """``function`` on the rows as one batch (the whole population at once)."""
        batches = list(function(iter([rows])))
        if len(batches) == 1:
            return batches[0]
        return pd.concat(batches, ignore_index=True) if batches else rows.iloc[:0]

    def collect(self, rows: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        return rows[list(columns)]

    def rank(
        self,
        rows: pd.DataFrame,
        ids: np.ndarray,
        order: np.ndarray,
        chosen: np.ndarray,
        columns: Sequence[str],
        groups: np.ndarray | None = None,
    ) -> pd.DataFrame:
        if groups is None:
            groups = np.full(len(rows), None, dtype=object)
        group = pd.array(np.asarray(groups, dtype=object), dtype="str")
        frame = rows.assign(selected=chosen, group=group).iloc[order].reset_index(drop=True)
        frame["rank"] = np.arange(1, len(frame) + 1)
        return frame[list(columns)]

    def tallies(self, rows: pd.DataFrame) -> dict[str, dict]:
        def build(rows: ir.Table) -> ir.Table:
            return rules.tallies(rows)[0]

        def actions(rows: ir.Table) -> ir.Table:
            return rules.tallies(rows)[1]

        table = _arrow(rows, rules.TALLIED)
        (totals,) = _run({"rows": table}, build).to_pylist()
        return rules.finish_tallies(totals, _run({"rows": table}, actions).to_pandas())

    def write_list(self, rows: pd.DataFrame, path: Path) -> None:
        pq.write_table(_plain_strings(pa.Table.from_pandas(rows, preserve_index=False)), path)

    def release(self) -> None:
        """Nothing to release: the rows are the caller's frames."""


def _plain_strings(table: pa.Table) -> pa.Table:
    """Text columns as Arrow ``string`` (pandas gives ``large_string``), the type Spark and
    most readers write, so the list has one schema whichever engine scored it."""
    schema = pa.schema(
        field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field
        for field in table.schema
    )
    return table.cast(schema)
