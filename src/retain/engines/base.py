"""The engine protocol: where retain's data work runs, behind one interface.

An engine stages the canonical sources and runs compiled snapshot queries on them (through a
:class:`Connection`), evaluates the rules of :mod:`retain.engines.rules` (labels, the active
population, tallies), holds the rows of a training set or a list (its own handle, a
:data:`Rows`), applies a per-batch function to them, collects the few columns the driver needs
and writes the list. Feast's ``OfflineStore.get_historical_features`` and Ibis'
``BaseBackend`` are the models: the core (features, training, serving) calls these methods and
never imports a backend; :func:`retain.engines.get_engine` is the one place engines are named.

Everything an engine computes is defined elsewhere once: snapshot queries by the feature
compiler, rules as Ibis expressions, the per-customer scoring by the caller's function, the
selection by :mod:`retain.serving.selection` on the driver. An engine decides only where and
how the work runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "Batches",
    "Connection",
    "Engine",
    "Rows",
    "Sources",
    "TrainingRows",
    "charged_costs",
    "dated",
]

#: An engine's handle on rows it holds: a pandas DataFrame on DuckDB (in this process), a Spark
#: DataFrame on Spark. Only the engine that made it reads it.
Rows = Any
#: A function of an iterator of pandas batches, yielding pandas batches (``mapInPandas``).
Batches = Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]


class Sources(Protocol):
    """Validated sources (:class:`retain.features.SourceData`), as an engine reads them."""

    fingerprint: str

    @property
    def tables(self) -> dict[str, pa.Table]:
        """The canonical tables, plain text columns."""

    @property
    def compact(self) -> dict[str, pa.Table]:
        """The canonical tables with dictionary-coded text (see :mod:`retain.data.dictionaries`)."""

    @property
    def logs(self) -> dict[str, pa.Table]:
        """The logs rules read (``costs``), canonical columns, plain text."""


class TrainingRows(Protocol):
    """A training set (:class:`retain.training.dataset.TrainingSet`), as an engine fits on it."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    rows: Rows
    vocabularies: dict[str, list[str]]

    @property
    def train(self) -> pd.DataFrame:
        """The driver's training rows."""

    @property
    def validation(self) -> pd.DataFrame:
        """Every validation row, on the driver."""


@runtime_checkable
class Connection(Protocol):
    """Sources opened on an engine: what :func:`retain.features.iter_snapshots` runs on.

    Attributes
    ----------
    name : str
        The engine's name (compiled SQL is cached per engine).
    tables : dict of str to ibis.Table
        The canonical sources, and what staging prepared: the key codes under ``_keys``, the
        column statistics under ``_columns`` (see :mod:`retain.engines.layout`).
    details : dict of str to str
        Recorded in a snapshot's manifest under ``engine`` (``backend`` first).
    shares_scans : bool
        Whether the parts of a query that do not depend on the cutoff are worth creating once
        as tables for several cutoffs (:meth:`create_shared`).
    """

    name: str
    tables: dict[str, ir.Table]
    details: dict[str, str]
    shares_scans: bool

    def compile(self, expr: ir.Expr) -> str:
        """The SQL text of ``expr`` on this engine."""

    def put_table(self, name: str, table: pa.Table) -> None:
        """Create or replace a small table ``name`` (the cutoffs) that compiled SQL reads."""

    def create_shared(self, name: str, sql: str) -> None:
        """Create table ``name`` from ``sql`` for the queries of several cutoffs."""

    def drop_shared(self, name: str) -> None:
        """Drop a table :meth:`create_shared` made."""

    def fetch(self, sql: str) -> pa.Table:
        """The result of ``sql`` as one Arrow table."""

    def execute(self, expr: ir.Expr) -> pa.Table:
        """The (small) result of an expression on :attr:`tables`, as Arrow."""


class Engine(Protocol):
    """Where retain runs: sources and snapshots, rules, training rows and fits, scoring.

    Attributes
    ----------
    name : str
        The name :func:`~retain.engines.get_engine` knows the engine by.
    in_process : bool
        Whether the rows the engine holds live in this process (a pandas DataFrame), so that
        the driver has every row at no cost: callers then take statistics on every row and
        set no limit on what they collect.
    """

    name: str
    in_process: bool

    # -- sources and snapshots -----------------------------------------------------------------

    @classmethod
    def from_workspace(
        cls, workspace: str | Path = ".", config_file: str | Path | None = None
    ) -> Engine:
        """The engine with the settings of a workspace's ``retain.yaml`` (or ``config_file``)."""

    def stage(self, sources: Sources, staging: Path) -> Path:
        """Stage ``sources`` under the folder ``staging`` once per fingerprint (the engine
        names what it writes there); return where they are."""

    def connect(
        self, sources: Sources, staging: Path | None = None, cutoffs: int = 1
    ) -> AbstractContextManager[Connection]:
        """Open ``sources`` for ``cutoffs`` snapshot queries: staged under ``staging`` (see
        :meth:`stage`) when the engine finds that worth it, else read from memory."""

    # -- rules on the sources -------------------------------------------------------------------

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
        """:func:`retain.engines.rules.outcomes` on the driver, ordered by cutoff and key;
        ``as_of`` as ``datetime64[us]``. Costs are the sources' ``costs`` log and the
        configured ``cost_rates`` (:meth:`retain.workspace.CostSettings.rates`), see
        :func:`charged_costs`."""

    def active_customers(
        self, sources: Sources, cutoffs: Sequence[date], active_days: int
    ) -> pd.DataFrame:
        """:func:`retain.engines.rules.active_customers` on the driver, ordered likewise."""

    def margin_share(self, sources: Sources, before: date, margin_rate: float) -> float:
        """:func:`retain.engines.rules.margin_share` as a number."""

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
        """:func:`retain.engines.rules.experiment_tallies` of ``assignments`` (columns
        :data:`retain.engines.rules.ASSIGNED`) on the driver, finished by
        :func:`retain.engines.rules.finish_experiment_tallies`."""

    def campaign_cutoffs(self, campaigns: pa.Table) -> pd.DataFrame:
        """:func:`retain.engines.rules.campaign_cutoffs` of a campaigns log on the driver,
        ordered by cutoff and campaign; ``as_of`` and ``last_day`` as dates."""

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
        """:func:`retain.engines.rules.campaign_rows` on the driver: the campaigns' enrolled
        customers active at their campaign's cutoff, with the outcomes after it (the
        :func:`~retain.engines.rules.outcomes` rule) and their features from the snapshot
        files; ordered by cutoff, campaign and key; ``as_of`` as ``datetime64[us]``."""

    def profit_and_loss(
        self,
        sources: Sources,
        as_of: date,
        *,
        margin_rate: float = 0.3,
        cost_rates: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """:func:`retain.engines.rules.profit_and_loss` on the driver, in key order; ``as_of``
        as ``datetime64[us]``; costs as in :meth:`outcomes`."""

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
    ) -> Rows:
        """:func:`retain.engines.rules.training_rows`: the outcomes of the customers active at
        each cutoff with their features from the snapshot files, and the split (costs as in
        :meth:`outcomes`)."""

    def cutoff_counts(self, rows: Rows) -> pd.DataFrame:
        """:func:`retain.engines.rules.cutoff_counts`, indexed by cutoff (a date)."""

    def column_profile(
        self,
        rows: Rows,
        features: Sequence[str],
        vocabularies: Mapping[str, Sequence[str]],
        split: str | None = "train",
    ) -> pd.DataFrame:
        """:func:`retain.engines.rules.column_profile` of the ``split`` rows (every row with
        ``None``), indexed by feature."""

    def class_counts(self, rows: Rows, label: str) -> dict[str, tuple[int, int]]:
        """Positives and negatives of a 0/1 ``label`` per split (``train``, ``validation``)."""

    def driver_rows(self, rows: Rows, *, max_train_rows: int | None, seed: int) -> pd.DataFrame:
        """Every validation row and the training rows (a seeded sample of about
        ``max_train_rows`` above it), ordered by cutoff and key; ``as_of`` as
        ``datetime64[us]``."""

    def rows_at(self, rows: Rows, as_of: date, columns: Sequence[str]) -> pd.DataFrame:
        """``columns`` of the rows at cutoff ``as_of``, in key order, on the driver."""

    def fit_trees(self, training_set: TrainingRows, estimator: Any, label: str) -> Any:
        """Fit a :class:`~retain.models.ChurnClassifier` or
        :class:`~retain.models.SpendRegressor` on the training rows, early-stopped (and a
        classifier calibrated) on the validation rows; returns the fitted estimator."""

    def refit_trees(self, training_set: TrainingRows, model: Any, label: str) -> Any:
        """Grow ``model``'s trees again on every row for the rounds early stopping chose (the
        model keeps its fit so far as ``holdout_``); returns ``model``, refitted in place."""

    # -- scoring ---------------------------------------------------------------------------------

    def population(
        self,
        snapshot: Path,
        columns: Sequence[str],
        *,
        active_days: int,
        sources: Sources | None = None,
        as_of: date | None = None,
    ) -> Rows:
        """``columns`` of the snapshot file's customers active at its cutoff
        (:func:`retain.engines.rules.population`: by ``recency_days`` without ``sources``,
        else by the transactions), in key order."""

    def from_pandas(self, frame: pd.DataFrame) -> Rows:
        """Rows of the engine holding ``frame``'s rows."""

    def count(self, rows: Rows) -> int:
        """Number of rows."""

    def columns(self, rows: Rows) -> list[str]:
        """Column names, in order."""

    def sample(
        self, rows: Rows, columns: Sequence[str], *, limit: int | None, seed: int
    ) -> pd.DataFrame:
        """``columns`` of every row, or of a seeded sample of about ``limit`` rows above it."""

    def map_batches(self, rows: Rows, function: Batches, schema: pa.Schema | None = None) -> Rows:
        """``function`` applied to the rows as pandas batches; ``schema`` is the Arrow schema
        of its output (default: the input's)."""

    def collect(self, rows: Rows, columns: Sequence[str]) -> pd.DataFrame:
        """``columns`` of every row on the driver, in the rows' order."""

    def rank(
        self,
        rows: Rows,
        ids: np.ndarray,
        order: np.ndarray,
        chosen: np.ndarray,
        columns: Sequence[str],
        groups: np.ndarray | None = None,
    ) -> Rows:
        """The rows with ``rank`` (1 = first), ``selected`` and ``group`` added, ``columns``
        kept.

        ``ids``, ``chosen`` and ``groups`` (``treatment``, ``control`` or ``None``; all
        ``None`` when not given) are in the order :meth:`collect` gave; ``order`` puts them
        in rank order.
        """

    def tallies(self, rows: Rows) -> dict[str, Any]:
        """:func:`retain.engines.rules.tallies` of a ranked list."""

    def write_list(self, rows: Rows, path: Path) -> None:
        """Write the ranked rows, in rank order, as one Parquet file at ``path``."""

    def release(self) -> None:
        """Release what the engine holds for rows it handed out (caches); it stays usable."""


def charged_costs(
    sources: Sources, cost_rates: Mapping[str, float] | None
) -> dict[str, float] | None:
    """The configured cost rates to charge beside the sources' ``costs`` log, checked against
    it (:func:`retain.engines.rules.check_cost_kinds`); ``None`` when nothing costs (no rate,
    no logged row), so that the rules skip the cost events altogether."""
    import pyarrow.compute as pc

    from retain.engines import rules

    rates = {kind: float(rate) for kind, rate in (cost_rates or {}).items() if rate}
    log = sources.logs["costs"]
    if log.num_rows:
        rules.check_cost_kinds(rates, pc.unique(log.column("kind")).to_pylist())
    return rates if rates or log.num_rows else None


def dated(frame: pd.DataFrame, column: str = "as_of") -> pd.DataFrame:
    """``frame`` with ``column`` (dates from an engine) as ``datetime64[us]``, as snapshots hold
    cutoffs; changed in place."""
    frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    return frame
