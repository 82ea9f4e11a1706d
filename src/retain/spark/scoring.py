"""``retain score --engine spark``: the retention-priority list computed on Apache Spark.

The same list as the DuckDB engine (:mod:`retain.serving.score`), step by step:

1. **Population.** The sources are opened and ``as_of`` checked as on DuckDB; the snapshot at
   ``as_of`` is found in the store (built there first if missing) and Spark reads its Parquet
   file. The active customers (a purchase in the ``active_days`` before ``as_of``) are those
   with ``recency_days <= active_days``: with the repository's ``recency_days`` defined as days
   since the last transaction with a positive amount (the default), this is exactly the rule of
   :func:`retain.training.labels.active_customers`, as both count days between dates. With any
   other definition the ids from that function are joined instead.
2. **Drift.** PSI on every active customer up to :data:`DRIFT_SAMPLE_ROWS` (then equal to the
   DuckDB engine's), above that on a seeded random sample of about that many.
3. **Scoring.** ``mapInPandas`` applies :func:`retain.serving.score.score_batch`, the function
   the DuckDB engine applies to the whole population, to each Arrow batch; the models travel in
   its closure (they are plain picklable Python objects).
4. **Ranking and selection.** One selection rule for both engines: a narrow projection (id,
   gain, value at risk, cost: about 40 bytes a customer) is collected to the driver, where
   :func:`retain.serving.selection.rank_and_select` selects (an LP bound and a greedy repair,
   see that module) and ranks; the ranks and flags go back as a small DataFrame joined to the
   wide rows in parallel. A selection is a global decision (a knapsack), and a rank a total
   order, so neither parallelises usefully; a million customers take about a second.
5. **Writing.** Into a temporary folder renamed onto the output folder when complete, as on
   DuckDB: ``retention_priority.parquet`` written by Spark as one file (sorted by rank, coalesced
   into one partition, the part file moved into place: a single file of ~100 bytes a customer
   stays manageable into the tens of millions); ``retention_priority.csv`` from that file on the
   driver, only when the list has at most ``csv_max_rows`` rows; the contact sheet of the
   selected customers (and the report, as on DuckDB); ``summary.json`` with the same keys, its
   counts and totals aggregated by Spark.

The output folder must be a path the driver and every executor see (a local folder with a
``local[*]`` master, a shared mount on a cluster): the final rename is a file-system rename.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf

from retain.atomic import atomic_dir
from retain.csvfile import write_csv
from retain.errors import RetainError
from retain.features import CutoffWarning, FeatureStore, SourceData
from retain.features.store import categories
from retain.serving.config import ScoreConfig
from retain.serving.contract import (
    CSV_FILE,
    LIST_COLUMNS,
    LIST_FILE,
    LIST_KIND,
    LIST_LEGACY_FILES,
    SUMMARY_FILE,
)
from retain.serving.population import recency_is_purchase_recency
from retain.serving.pseudonyms import pseudonymize
from retain.serving.reasons import Explainer
from retain.serving.score import (
    ScoringJob,
    _drift,
    _summary,
    build_explainer,
    check_population,
    finish_folder,
    open_inputs,
    refuse_drift,
    score_batch,
    tallies,
)
from retain.serving.selection import Selection
from retain.serving.selection import rank_and_select as rank_and_select_rows
from retain.serving.sheets import round_for_people
from retain.spark.session import load_spark_settings, spark_session
from retain.training.labels import active_customers

__all__ = ["DRIFT_SAMPLE_ROWS", "SCORED_TYPES", "active_population", "rank_and_select",
           "score_on_spark"]  # fmt: skip

#: Drift is measured on every customer up to this many, on a random sample of about as many above.
DRIFT_SAMPLE_ROWS = 200_000

#: Spark type of each column :func:`~retain.serving.score.score_batch` gives the list (in order).
SCORED_TYPES: dict[str, str] = {
    "customer_id": "string",
    "as_of": "date",
    "churn_probability": "double",
    "clv": "double",
    "value_at_risk": "double",
    "recommended_action": "string",
    "action_cost": "double",
    "save_rate": "double",
    "expected_net_gain": "double",
    "segment": "string",
    "value_tier": "string",
    "loyalty_class": "string",
    "lifecycle_stage": "string",
    "cluster": "long",
    "reason_1": "string",
    "reason_2": "string",
    "reason_3": "string",
    "recency_days": "double",
    "frequency": "double",
    "monetary_total": "double",
}
KEY = "customer_id"
#: Columns the driver collects to select and rank.
NARROW = (KEY, "expected_net_gain", "value_at_risk", "action_cost")


def score_on_spark(job: ScoringJob, *, spark_config: str | Path | None = None):
    """Score the job on Spark and write its list; return the list (or its head) and summary.

    Parameters
    ----------
    job : ScoringJob
        What to score (see :func:`retain.serving.score.score`).
    spark_config : str or Path, optional
        Spark settings file (default: ``spark`` of the workspace's ``retain.yaml``); ignored
        when a session is already active (``spark-submit``, notebooks, tests).

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The list in rank order (its first ``csv_max_rows`` rows when it is longer) and the
        summary written to ``summary.json``.
    """
    spark = spark_session(load_spark_settings(job.workspace, spark_config))
    config = job.config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CutoffWarning)
        sources, store = open_inputs(job)
        population = active_population(spark, store, sources, job.as_of, config.active_days)
        check_population(job.champions, population.columns, store)
        rows = population.count()
        if rows == 0:
            raise RetainError(
                f"no active customers at {job.as_of} (none bought in the {config.active_days} "
                "days before it)"
            )
        job.progress(f"features of {rows:,} active customers")
    vocabularies = categories(store.repository)
    drift = _sampled_drift(job, population, rows, vocabularies)
    refuse_drift(drift, config)
    churn = job.champions["churn"]
    sample = (
        pd.DataFrame()
        if churn.drift_reference
        else _sample(population, list(churn.features), rows, vocabularies)
    )
    explainer = build_explainer(churn, store.repository.path, job.currency, config.reasons, sample)
    with _persisted() as keep:
        scored = keep(_score(population, job, vocabularies, rows, explainer))
        listing, selection, risk = rank_and_select(
            scored, capacity=config.capacity, budget=config.budget
        )  # the first action: scores, then selects and ranks on the driver
        listing = keep(listing)
        if job.key is not None:
            listing = keep(_pseudonymized(listing, job.key))
        counted = _tallies(listing, selection, risk, job)
        job.progress("scored, explained and ranked")
        summary = _summary(
            counted, job.as_of, job.champions, store, sources, drift, config,
            job.key is not None, explainer, job,
        )  # fmt: skip
        frame = _write(job, listing, summary, rows)
    return frame, summary


# -- population ------------------------------------------------------------------------------


def active_population(
    spark: SparkSession, store: FeatureStore, sources: SourceData, as_of: date, active_days: int
) -> DataFrame:
    """The snapshot at ``as_of`` as a Spark DataFrame, only the customers active at ``as_of``.

    The snapshot is built first (on the store's default engine) when the store lacks it.
    Columns: the key, ``as_of`` and every feature of the repository, as in the snapshot.
    """
    [built] = store.build(sources, [as_of])
    columns = [store.key, "as_of", *store.repository.feature_names]
    snapshot = spark.read.parquet(str(Path(built.path).resolve())).select(*columns)
    if recency_is_purchase_recency(store):
        return snapshot.where(sf.col("recency_days") <= active_days)
    active = active_customers(sources.tables["transactions"], as_of, active_days)
    ids = spark.createDataFrame(active[[KEY]].astype({KEY: object}), schema=f"{KEY} string")
    return snapshot.join(ids, on=KEY, how="inner")


def _categorized(frame: pd.DataFrame, vocabularies: Mapping[str, list[str]]) -> pd.DataFrame:
    """Attributes with a vocabulary as categoricals, as ``get_features(as_categorical=True)``."""
    frame = frame.copy()
    for name, vocabulary in vocabularies.items():
        if name in frame.columns:
            frame[name] = pd.Categorical(frame[name], categories=vocabulary)
    return frame


def _sample(population: DataFrame, features: list[str], rows: int, vocabularies) -> pd.DataFrame:
    """``features`` of every customer up to :data:`DRIFT_SAMPLE_ROWS`, of a seeded random
    sample of about as many above, on the driver."""
    sample = population.select(*features)
    if rows > DRIFT_SAMPLE_ROWS:
        fraction = min(1.0, 1.1 * DRIFT_SAMPLE_ROWS / rows)
        sample = sample.sample(fraction=fraction, seed=0).limit(DRIFT_SAMPLE_ROWS)
    with _arrow(population.sparkSession):
        return _categorized(sample.toPandas(), vocabularies)


def _sampled_drift(job: ScoringJob, population: DataFrame, rows: int, vocabularies) -> dict:
    """PSI of the model features, on every row up to the sample size, on a sample above."""
    churn = job.champions["churn"]
    if churn.drift_reference is None:
        return _drift(churn, pd.DataFrame(), job.config)
    frame = _sample(population, list(churn.drift_reference["features"]), rows, vocabularies)
    drift = _drift(churn, frame, job.config)
    if rows > DRIFT_SAMPLE_ROWS:
        drift["note"] = f"PSI on a random sample of {len(frame):,} of {rows:,} customers"
    return drift


# -- scoring ---------------------------------------------------------------------------------


def _score(
    population: DataFrame, job: ScoringJob, vocabularies, rows: int, explainer: Explainer
) -> DataFrame:
    """``score_batch`` on every Arrow batch of the population, in parallel partitions."""
    spark = population.sparkSession
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    scorer = _scorer(
        models={family: champion.model for family, champion in job.champions.items()},
        playbook=job.playbook,
        config=job.config,
        vocabularies=vocabularies,
        approximate=rows > job.config.exact_reasons_max_rows,
        explainer=explainer,
    )
    schema = ", ".join(f"{name} {kind}" for name, kind in SCORED_TYPES.items())
    # a snapshot file is often a single Parquet row group: spread it over the cores first
    return population.repartition(partitions).mapInPandas(scorer, schema=schema)


def _scorer(
    models, playbook, config: ScoreConfig, vocabularies, approximate: bool, explainer: Explainer
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function ``mapInPandas`` runs in the Python workers (everything it needs is local)."""
    columns = list(SCORED_TYPES)

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            population = _categorized(batch.reset_index(drop=True), vocabularies)
            scored = score_batch(
                population, models, playbook, config, approximate=approximate,
                explainer=explainer,
            )  # fmt: skip
            yield scored[columns]

    return score_batches


# -- ranking and selection -------------------------------------------------------------------


def rank_and_select(
    scored: DataFrame, *, capacity: int | None, budget: float | None
) -> tuple[DataFrame, Selection, pd.Series]:
    """The list: ``rank`` and ``selected`` added, columns in the contract's order.

    The id, gain, value at risk and cost of every customer are collected to the driver, where
    :func:`retain.serving.selection.rank_and_select` (the DuckDB engine's function) selects
    and ranks; the result is joined back. Returns the list, the selection and every
    customer's value at risk (for the summary).
    """
    spark = scored.sparkSession
    with _arrow(spark):
        narrow = scored.select(*NARROW).toPandas()
    order, selection = rank_and_select_rows(
        narrow[KEY].to_numpy(dtype=object), narrow["expected_net_gain"].to_numpy(float),
        narrow["value_at_risk"].to_numpy(float), narrow["action_cost"].to_numpy(float),
        capacity=capacity, budget=budget,
    )  # fmt: skip
    ranks = pd.DataFrame(
        {
            KEY: narrow[KEY].to_numpy(dtype=object)[order],
            "rank": np.arange(1, len(order) + 1, dtype=np.int64),
            "selected": selection.chosen[order],
        }
    )
    with _arrow(spark):
        ranked = spark.createDataFrame(ranks, schema=f"{KEY} string, rank long, selected boolean")
    listing = scored.join(ranked, on=KEY, how="inner").select(*LIST_COLUMNS)
    return listing, selection, narrow["value_at_risk"]


def _pseudonymized(listing: DataFrame, key: bytes) -> DataFrame:
    """Customer ids replaced by keyed HMACs (after ranking, as on DuckDB)."""

    @sf.pandas_udf("string")
    def keyed(ids: pd.Series) -> pd.Series:
        return pseudonymize(ids, key)

    return listing.withColumn(KEY, keyed(sf.col(KEY)))


# -- summary and files -----------------------------------------------------------------------


def _tallies(listing: DataFrame, selection: Selection, risk: pd.Series, job: ScoringJob) -> dict:
    """``counts`` and ``totals`` of ``summary.json`` aggregated by Spark, and ``selection``."""
    chosen = sf.col("selected")

    def total(column: Column) -> Column:
        return sf.coalesce(sf.sum(column), sf.lit(0.0))

    row = listing.agg(
        sf.count(sf.lit(1)).alias("rows"),
        sf.count(sf.when(chosen, 1)).alias("selected"),
        total(sf.col("value_at_risk")).alias("value_at_risk"),
        total(sf.col("clv")).alias("clv"),
        total(sf.greatest(sf.col("expected_net_gain"), sf.lit(0.0))).alias("expected_net_gain"),
        total(sf.when(chosen, sf.col("value_at_risk"))).alias("selected_value_at_risk"),
        total(sf.when(chosen, sf.col("expected_net_gain"))).alias("selected_expected_net_gain"),
        total(sf.when(chosen, sf.col("action_cost"))).alias("selected_cost"),
    ).first()
    actions = listing.where(chosen).groupBy("recommended_action").count()
    by_action = sorted(actions.collect(), key=lambda r: (-r["count"], r["recommended_action"]))
    totals = {name: float(row[name]) for name in ("value_at_risk", "clv", "expected_net_gain",
              "selected_value_at_risk", "selected_expected_net_gain", "selected_cost")}  # fmt: skip
    counts = {
        "customers_active": int(row["rows"]),
        "scored": int(row["rows"]),
        "selected": int(row["selected"]),
        "by_action": {r["recommended_action"]: int(r["count"]) for r in by_action},
    }
    return tallies(counts, totals, selection, risk.to_numpy(float), job)


def _write(job: ScoringJob, listing: DataFrame, summary: dict, rows: int) -> pd.DataFrame:
    """Write the list's files atomically; return the list (or its first ``csv_max_rows``)."""
    csv_max_rows = job.config.csv_max_rows
    fits = csv_max_rows is None or rows <= csv_max_rows
    with atomic_dir(job.out, kind=LIST_KIND, legacy_files=LIST_LEGACY_FILES) as folder:
        _write_one_parquet(listing.orderBy("rank"), folder / LIST_FILE)
        frame = _head(folder / LIST_FILE, None if fits else csv_max_rows)
        if fits:
            write_csv(round_for_people(pa.Table.from_pandas(frame, preserve_index=False)),
                      folder / CSV_FILE)  # fmt: skip
        else:
            job.progress(f"no {CSV_FILE}: {rows:,} rows > csv_max_rows ({csv_max_rows:,})")
        (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        selected = pq.read_table(folder / LIST_FILE, filters=[("selected", "==", True)])
        finish_folder(folder, job, selected.to_pandas())
    return frame


def _head(path: Path, rows: int | None) -> pd.DataFrame:
    """The first ``rows`` rows of a Parquet file (all when ``None``), read on the driver."""
    if rows is None:
        return pd.read_parquet(path)
    batches, taken = [], 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=min(rows, 65_536)):
        batches.append(batch)
        taken += batch.num_rows
        if taken >= rows:
            break
    return pa.Table.from_batches(batches).slice(0, rows).to_pandas()


def _write_one_parquet(in_order: DataFrame, path: Path) -> None:
    """One Parquet file at ``path``: Spark writes one part (rows in order), moved into place.

    ``coalesce(1)`` after the sort concatenates the sorted partitions in order without another
    shuffle; the scoring before the sort's exchange keeps every partition.
    """
    parts = path.with_name(f".{path.stem}.parts")
    in_order.coalesce(1).write.mode("error").parquet(str(parts.resolve()))
    written = sorted(parts.glob("part-*.parquet"))
    if len(written) != 1:
        raise RetainError(f"Spark wrote {len(written)} Parquet parts in {parts}, expected 1")
    written[0].replace(path)
    shutil.rmtree(parts)


# -- session helpers -------------------------------------------------------------------------


@contextmanager
def _arrow(spark: SparkSession) -> Iterator[None]:
    """Arrow transfers for ``toPandas`` (much faster), restoring the session's setting after."""
    name = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(name, None)
    spark.conf.set(name, "true")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(name)
        else:
            spark.conf.set(name, before)


@contextmanager
def _persisted() -> Iterator[Callable[[Any], Any]]:
    """``keep(frame)`` persists a DataFrame until the block ends (the scores are computed once)."""
    kept = []

    def keep(frame):
        kept.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
        return frame

    try:
        yield keep
    finally:
        for frame in kept:
            frame.unpersist()
