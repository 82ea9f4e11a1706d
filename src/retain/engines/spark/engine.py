"""The Spark engine (see :class:`retain.engines.Engine`): the same work as the embedded engine,
its rows kept on Spark.

- *Snapshots*: the compiled feature views run through Ibis' PySpark backend on the sources as
  temporary views (staged as Parquet on a local master, see :mod:`.staging`), on the plain path
  every backend shares (no staged key codes). The number of distinct values of each text column
  (which selects the bitmask distinct count) is counted on the driver from the Arrow tables, as
  staging does for DuckDB, rather than by two Spark jobs per column. Spark 4 runs in ANSI mode
  (``spark.sql.ansi.enabled``): a division by zero or an overflowing cast is an error, not a
  null; the compiled expressions divide only by ``NULLIF(x, 0)`` and sum integers of millionths
  well within ``BIGINT``, so they run unchanged.
- *Rules* (:mod:`retain.engines.rules`) run as Spark SQL compiled by Ibis, on DataFrames
  registered as temporary views.
- *Rows* are Spark DataFrames, persisted while in use (:meth:`SparkEngine.release` drops them).
  Per-customer work runs in ``mapInPandas``, its function and what it closes over pickled to
  the Python workers. The driver collects only what it needs: every validation row of a
  training set and at most :data:`DRIVER_TRAIN_ROWS` training rows (a seeded sample), a sample
  of a population for statistics, and the narrow columns of a list that selection and ranking
  read (about 50 bytes a customer): a selection is a global decision (a knapsack) and a rank a
  total order, so neither parallelises usefully.
- *Lists* are written by Spark as one Parquet file, sorted by rank and coalesced into one
  partition, the part file moved into place (a single file of ~100 bytes a customer stays
  manageable into the tens of millions). The folder must be one the driver and every executor
  see (a local folder with a ``local[*]`` master, a shared mount on a cluster).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from retain.engines import rules
from retain.engines.base import Batches, Sources, TrainingRows, charged_costs, dated
from retain.engines.layout import COLUMNS, CUTOFFS_TABLE, KEY
from retain.engines.spark.session import (
    SparkSettings,
    load_spark_settings,
    require_pyspark,
    spark_session,
)
from retain.engines.spark.staging import from_arrow, is_local, source_frames, stage_parquet
from retain.engines.spark.staging import to_arrow as collect_arrow
from retain.engines.staging import column_counts
from retain.errors import RetainError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["DRIVER_TRAIN_ROWS", "SOURCE_VIEW", "SparkConnection", "SparkEngine"]

#: Name of the temporary view of a source table (fixed, so compiled SQL is reused).
SOURCE_VIEW = "_retain_source_{name}"
#: Most training rows collected to the driver for the baselines (a seeded sample beyond).
DRIVER_TRAIN_ROWS = 250_000
AS_OF = "as_of"
#: Columns of the transactions the rules read.
TRANSACTION_COLUMNS = (KEY, "timestamp", "amount", "margin")
_VIEWS = itertools.count()


class SparkConnection:
    """Sources opened on Spark (see :class:`retain.engines.Connection`)."""

    name = "spark"
    shares_scans = False

    def __init__(self, backend: ibis.BaseBackend, tables: dict[str, ir.Table], details: dict):
        self.backend, self.tables, self.details = backend, tables, details

    def compile(self, expr: ir.Expr) -> str:
        return self.backend.compile(expr)

    def put_table(self, name: str, table: pa.Table) -> None:
        # a temporary view of an in-memory table: every SQL backend has them, PySpark included
        self.backend.create_view(name, ibis.memtable(table), overwrite=True)

    def create_shared(self, name: str, sql: str) -> None:
        self.backend._session.sql(sql).createOrReplaceTempView(name)

    def drop_shared(self, name: str) -> None:
        self.backend._session.catalog.dropTempView(name)

    def fetch(self, sql: str) -> pa.Table:
        return collect_arrow(self.backend._session.sql(sql))

    def execute(self, expr: ir.Expr) -> Any:
        return self.backend.to_pyarrow(expr)


@dataclass
class SparkEngine:
    """The Spark engine (see the module docstring and :class:`retain.engines.Engine`).

    Parameters
    ----------
    settings : SparkSettings, optional
        Used when no Spark session is active (under ``spark-submit`` one is); the packaged
        defaults when absent.
    session : SparkSession, optional
        The session to use (default: the active one, else one started from ``settings`` when
        first needed).
    driver_train_rows : int, default=DRIVER_TRAIN_ROWS
        Most training rows collected to the driver.
    """

    settings: SparkSettings = field(default_factory=SparkSettings)
    session: SparkSession | None = None
    driver_train_rows: int = DRIVER_TRAIN_ROWS
    name: ClassVar[str] = "spark"
    in_process: ClassVar[bool] = False
    _backend: Any = field(default=None, repr=False)
    _transactions: dict[str, DataFrame] = field(default_factory=dict, repr=False)
    _cached: list[DataFrame] = field(default_factory=list, repr=False)
    _views: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def from_workspace(
        cls, workspace: str | Path = ".", config_file: str | Path | None = None
    ) -> SparkEngine:
        """The engine of the workspace's Spark settings (or ``config_file``); the session
        starts when first needed.

        Raises
        ------
        RetainError
            pyspark is not installed.
        """
        require_pyspark()
        return cls(load_spark_settings(workspace, config_file))

    @property
    def spark(self) -> SparkSession:
        """The Spark session (the active one, else one started from the settings)."""
        if self.session is None:
            self.session = spark_session(self.settings)
        return self.session

    @property
    def backend(self) -> ibis.BaseBackend:
        """Ibis' PySpark backend on the session."""
        if self._backend is None:
            self._backend = ibis.pyspark.connect(self.spark)
        return self._backend

    @property
    def workers(self) -> int:
        """``num_workers`` of xgboost.spark, checked against the session's task slots."""
        workers = self.settings.xgboost_workers
        if not isinstance(workers, int) or workers < 1:
            raise RetainError(f"xgboost_workers must be a positive integer; got {workers!r}")
        context = self.spark.sparkContext
        slots = context.defaultParallelism
        if context.master.startswith("local") and workers > slots:
            raise RetainError(
                f"xgboost_workers is {workers} but Spark runs {context.master} with "
                f"{slots} task slot(s); barrier training would wait forever. Lower "
                "spark.xgboost_workers in retain.yaml"
            )
        return workers

    # -- plumbing ------------------------------------------------------------------------------

    def _keep(self, frame: DataFrame) -> DataFrame:
        """Persist ``frame`` until :meth:`release`."""
        from pyspark import StorageLevel

        self._cached.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
        return frame

    def _table(self, frame: DataFrame) -> ir.Table:
        """``frame`` as an Ibis table (a temporary view, dropped by :meth:`release`)."""
        view = f"_retain_rows_{next(_VIEWS)}"
        frame.createOrReplaceTempView(view)
        self._views.append(view)
        return self.backend.table(view)

    def _frame(self, expr: ir.Table) -> DataFrame:
        """The DataFrame of an Ibis expression (its in-memory tables registered first)."""
        self.backend._run_pre_execute_hooks(expr)
        return self.spark.sql(self.backend.compile(expr))

    def _pandas(self, frame: DataFrame) -> pd.DataFrame:
        return collect_arrow(frame).to_pandas()

    def _transactions_of(self, sources: Sources) -> ir.Table:
        """The sources' transactions on Spark (cached per data fingerprint)."""
        if sources.fingerprint not in self._transactions:
            columns = sources.tables["transactions"].select(list(TRANSACTION_COLUMNS))
            self._transactions[sources.fingerprint] = self._keep(from_arrow(self.spark, columns))
        return self._table(self._transactions[sources.fingerprint])

    def _costs_of(self, sources: Sources, rates: Mapping[str, float] | None) -> ir.Table | None:
        """:func:`retain.engines.rules.cost_events` on Spark (``None`` without costs)."""
        if rates is None:
            return None
        interactions = sources.tables["interactions"].select([KEY, "timestamp", "type"])
        frames = {
            name: from_arrow(self.spark, table)
            for name, table in (("interactions", interactions), ("costs", sources.logs["costs"]))
        }
        tables = {name: self._table(frame) for name, frame in frames.items()}
        return rules.cost_events(
            self._transactions_of(sources), tables["interactions"], tables["costs"], rates
        )

    def release(self) -> None:
        """Unpersist the DataFrames and drop the views this engine made (it stays usable)."""
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()
        self._transactions.clear()
        if self.session is not None:
            for view in self._views:
                self.session.catalog.dropTempView(view)
        self._views.clear()

    # -- sources and snapshots -----------------------------------------------------------------

    def stage(self, sources: Sources, staging: Path) -> Path:
        """``staging/<fingerprint>-parquet/<table>.parquet``, written once per fingerprint."""
        folder = staging / f"{sources.fingerprint}-parquet"
        stage_parquet(sources, folder)
        return folder

    @contextmanager
    def connect(
        self, sources: Sources, staging: Path | None = None, cutoffs: int = 1
    ) -> Iterator[SparkConnection]:
        """The sources as temporary views: staged as Parquet under ``staging`` on a local
        master, else sent from the driver; the views are dropped after."""
        session, backend = self.spark, self.backend
        folder = staging / f"{sources.fingerprint}-parquet" if staging is not None else None
        folder = folder if folder is not None and is_local(session) else None
        frames = source_frames(session, sources, folder)
        frames[COLUMNS] = session.createDataFrame(column_counts(sources.tables))
        views = {name: SOURCE_VIEW.format(name=name.strip("_")) for name in frames}
        try:
            for name, frame in frames.items():
                frame.createOrReplaceTempView(views[name])
            tables = {name: backend.table(view) for name, view in views.items()}
            details = {
                "backend": "spark",
                "spark": session.version,
                "master": session.sparkContext.master,
                "sources": "parquet" if folder is not None else "driver",
            }
            yield SparkConnection(backend, tables, details)
        finally:
            for view in [*views.values(), CUTOFFS_TABLE]:
                session.catalog.dropTempView(view)

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
        costs = self._costs_of(sources, charged_costs(sources, cost_rates))
        labels = rules.outcomes(
            self._transactions_of(sources), rules.cutoffs_table(cutoffs),
            horizon_days=horizon_days, active_days=active_days, margin_rate=margin_rate,
            costs=costs,
        )  # fmt: skip
        return dated(self._pandas(self._frame(labels.order_by([AS_OF, KEY]))))

    def active_customers(
        self, sources: Sources, cutoffs: Sequence[date], active_days: int
    ) -> pd.DataFrame:
        active = rules.active_customers(
            self._transactions_of(sources), rules.cutoffs_table(cutoffs), active_days
        )
        return dated(self._pandas(self._frame(active.order_by([AS_OF, KEY]))))

    def margin_share(self, sources: Sources, before: date, margin_rate: float) -> float:
        share = rules.margin_share(self._transactions_of(sources), before, margin_rate)
        return rules.finish_margin_share(self._frame(share).first().asDict(), margin_rate)

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
        assigned = from_arrow(self.spark, rules.assignments_arrow(assignments))
        tallied = rules.experiment_tallies(
            self._transactions_of(sources), self._table(assigned), as_of,
            churn_days=churn_days, margin_days=margin_days, margin_rate=margin_rate,
            discount_rate_monthly=discount_rate_monthly,
        )  # fmt: skip
        return rules.finish_experiment_tallies(self._pandas(self._frame(tallied)))

    def campaign_cutoffs(self, campaigns: pa.Table) -> pd.DataFrame:
        found = rules.campaign_cutoffs(self._table(from_arrow(self.spark, campaigns)))
        ordered = self._frame(found.order_by([AS_OF, "campaign_id"]))
        return rules.finish_campaign_cutoffs(self._pandas(ordered))

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
        """The campaign rows collected to the driver (enrolled customers are few): the
        snapshot files read by Spark, joined with the campaigns and their outcomes."""
        read = self.spark.read.option("recursiveFileLookup", "true")
        frame = read.parquet(*[str(Path(path).resolve()) for path in snapshots])
        missing = [name for name in (KEY, AS_OF, *features) if name not in frame.columns]
        if missing:
            raise RetainError(f"snapshots {', '.join(map(str, snapshots))} lack columns {missing}")
        log = self._table(from_arrow(self.spark, campaigns))
        cutoffs = list(self.campaign_cutoffs(campaigns)[AS_OF])
        labels = rules.outcomes(
            self._transactions_of(sources), rules.cutoffs_table(cutoffs),
            horizon_days=horizon_days, active_days=active_days, margin_rate=margin_rate,
        )  # fmt: skip
        rows = rules.campaign_rows(log, labels, self._table(frame), features, validation)
        ordered = self._frame(rows.order_by([AS_OF, "campaign_id", KEY]))
        return dated(self._pandas(ordered))

    def profit_and_loss(
        self,
        sources: Sources,
        as_of: date,
        *,
        margin_rate: float = 0.3,
        cost_rates: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        costs = self._costs_of(sources, charged_costs(sources, cost_rates) or {})
        customers = self._table(from_arrow(self.spark, sources.tables["customers"]))
        pnl = rules.profit_and_loss(
            customers, self._transactions_of(sources), costs, as_of, margin_rate
        )
        return dated(self._pandas(self._frame(pnl.order_by(KEY))))

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
    ) -> DataFrame:
        """The training rows on Spark (persisted): the snapshot files read by Spark (the same
        files the embedded engine reads), joined with the outcomes."""
        read = self.spark.read.option("recursiveFileLookup", "true")
        frame = read.parquet(*[str(Path(path).resolve()) for path in snapshots])
        missing = [name for name in (KEY, AS_OF, *features) if name not in frame.columns]
        if missing:
            raise RetainError(f"snapshots {', '.join(map(str, snapshots))} lack columns {missing}")
        labels = rules.outcomes(
            self._transactions_of(sources), rules.cutoffs_table(cutoffs),
            horizon_days=horizon_days, active_days=active_days, margin_rate=margin_rate,
            costs=self._costs_of(sources, charged_costs(sources, cost_rates)),
        )  # fmt: skip
        rows = rules.training_rows(labels, self._table(frame), features, validation)
        return self._keep(self._frame(rows))

    def cutoff_counts(self, rows: DataFrame) -> pd.DataFrame:
        counts = self._frame(rules.cutoff_counts(self._table(rows)))
        return rules.finish_cutoff_counts(self._pandas(counts))

    def column_profile(
        self,
        rows: DataFrame,
        features: Sequence[str],
        vocabularies: Mapping[str, Sequence[str]],
        split: str | None = "train",
    ) -> pd.DataFrame:
        profile = rules.column_profile(self._table(rows), features, vocabularies, split)
        return rules.finish_column_profile(self._frame(profile).first().asDict(), features)

    def class_counts(self, rows: DataFrame, label: str) -> dict[str, tuple[int, int]]:
        counts = self._frame(rules.class_counts(self._table(rows), label))
        return rules.finish_class_counts([row.asDict() for row in counts.collect()])

    def driver_rows(
        self, rows: DataFrame, *, max_train_rows: int | None = None, seed: int = 0
    ) -> pd.DataFrame:
        """Every validation row and the training rows (a seeded uniform sample of about
        ``max_train_rows`` above it; at most :attr:`driver_train_rows` in any case), ordered by
        cutoff and key."""
        from pyspark.sql import functions as sf

        limit = min(max_train_rows or self.driver_train_rows, self.driver_train_rows)
        train = rows.where(sf.col(rules.SPLIT) == "train")
        count = train.count()
        if count > limit:
            train = train.sample(fraction=limit / count, seed=seed)
        chosen = train.unionByName(rows.where(sf.col(rules.SPLIT) == "validation"))
        frame = dated(self._pandas(chosen))
        return frame.sort_values([AS_OF, KEY], kind="stable", ignore_index=True)

    def rows_at(self, rows: DataFrame, as_of: date, columns: Sequence[str]) -> pd.DataFrame:
        from pyspark.sql import functions as sf

        wanted = list(dict.fromkeys([KEY, *columns]))
        at_cutoff = rows.where(sf.col(AS_OF) == sf.lit(as_of)).select(*wanted)
        frame = self._pandas(at_cutoff).sort_values(KEY, kind="stable", ignore_index=True)
        return frame[list(columns)]

    def fit_trees(self, training_set: TrainingRows, estimator: Any, label: str) -> Any:
        from retain.engines.spark.training import fit_trees

        return fit_trees(training_set, estimator, label, self.workers)

    def refit_trees(self, training_set: TrainingRows, model: Any, label: str) -> Any:
        from retain.engines.spark.training import refit_trees

        return refit_trees(training_set, model, label, self.workers)

    # -- scoring ---------------------------------------------------------------------------------

    def population(
        self,
        snapshot: Path,
        columns: Sequence[str],
        *,
        active_days: int,
        sources: Sources | None = None,
        as_of: date | None = None,
    ) -> DataFrame:
        frame = self.spark.read.parquet(str(Path(snapshot).resolve())).select(*columns)
        active = None
        if sources is not None:
            cutoffs = rules.cutoffs_table(as_of)
            active = rules.active_customers(self._transactions_of(sources), cutoffs, active_days)
        return self._keep(self._frame(rules.population(self._table(frame), active_days, active)))

    def from_pandas(self, frame: pd.DataFrame) -> DataFrame:
        return from_arrow(self.spark, pa.Table.from_pandas(frame, preserve_index=False))

    def count(self, rows: DataFrame) -> int:
        return rows.count()

    def columns(self, rows: DataFrame) -> list[str]:
        return list(rows.columns)

    def sample(
        self, rows: DataFrame, columns: Sequence[str], *, limit: int | None, seed: int
    ) -> pd.DataFrame:
        chosen = rows.select(*columns)
        if limit is not None:
            count = rows.count()
            if count > limit:
                fraction = min(1.0, 1.1 * limit / count)
                chosen = chosen.sample(fraction=fraction, seed=seed).limit(limit)
        return self._pandas(chosen)

    def map_batches(
        self, rows: DataFrame, function: Batches, schema: pa.Schema | None = None
    ) -> DataFrame:
        """``mapInPandas`` (``schema``: the output's Arrow schema; default the input's). A
        frame in fewer partitions than ``spark.sql.shuffle.partitions`` (a snapshot file is
        often one Parquet row group) is spread over the cores first."""
        from pyspark.sql.pandas.types import from_arrow_schema

        partitions = int(self.spark.conf.get("spark.sql.shuffle.partitions"))
        if rows.rdd.getNumPartitions() < partitions:
            rows = rows.repartition(partitions)
        spark_schema = rows.schema if schema is None else from_arrow_schema(schema)
        return self._keep(rows.mapInPandas(function, schema=spark_schema))

    def collect(self, rows: DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        return self._pandas(rows.select(*columns))

    def rank(
        self,
        rows: DataFrame,
        ids: np.ndarray,
        order: np.ndarray,
        chosen: np.ndarray,
        columns: Sequence[str],
        groups: np.ndarray | None = None,
    ) -> DataFrame:
        """The ranks, flags and groups go to Spark as a small DataFrame joined to the wide
        rows."""
        if groups is None:
            groups = np.full(len(ids), None, dtype=object)
        ranks = pa.table(
            {
                KEY: pa.array(np.asarray(ids, dtype=object)[order], pa.string()),
                "rank": pa.array(np.arange(1, len(order) + 1, dtype=np.int64)),
                "selected": pa.array(np.asarray(chosen, dtype=bool)[order]),
                "group": pa.array(np.asarray(groups, dtype=object)[order].tolist(), pa.string()),
            }
        )
        ranked = from_arrow(self.spark, ranks)
        rows = rows.drop("rank", "selected", "group")  # ranked again: the new ones count
        return self._keep(rows.join(ranked, on=KEY, how="inner").select(*columns))

    def tallies(self, rows: DataFrame) -> dict[str, dict]:
        totals, by_action = rules.tallies(self._table(rows))
        found = self._frame(totals).first().asDict()
        return rules.finish_tallies(found, self._pandas(self._frame(by_action)))

    def write_list(self, rows: DataFrame, path: Path) -> None:
        """One Parquet file at ``path``: Spark writes one part (rows in rank order), moved into
        place. ``coalesce(1)`` after the sort concatenates the sorted partitions in order
        without another shuffle; the work before the sort's exchange keeps every partition."""
        parts = path.with_name(f".{path.stem}.parts")
        rows.orderBy("rank").coalesce(1).write.mode("error").parquet(str(parts.resolve()))
        written = sorted(parts.glob("part-*.parquet"))
        if len(written) != 1:
            raise RetainError(f"Spark wrote {len(written)} Parquet parts in {parts}, expected 1")
        written[0].replace(path)
        shutil.rmtree(parts)
