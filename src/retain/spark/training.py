"""Training on Spark (``retain train --engine spark``): same jobs, same models, same registry.

:class:`SparkTrainer` is the :class:`~retain.training.dataset.TrainingEngine` that
``train_churn`` and ``train_clv`` use with ``--engine spark``. What runs where:

- **Training set, on Spark.** The snapshot Parquet files of the feature store (one per cutoff,
  the same files the embedded engine reads) are read by Spark and joined to labels computed
  with Spark SQL (:mod:`retain.spark.labels`, the definitions of
  :mod:`retain.training.labels`). Every row stays on Spark.
- **Trees, on Spark.** ``xgboost.spark.SparkXGBClassifier`` (churn) and ``SparkXGBRegressor``
  (the CLV spend model) with ``num_workers`` = ``spark.xgboost_workers`` of ``retain.yaml``, early
  stopped on the validation cutoff(s) through ``validation_indicator_col``: the time split of
  the embedded engine. Their input is encoded exactly as
  :func:`retain.models._xgboost.encode_features` encodes a pandas frame (a categorical value
  becomes its position among the sorted training categories, feature type ``"c"``; other
  columns are floats), so the fitted booster is adopted as it is by
  :meth:`ChurnClassifier.fit_from_booster <retain.models.ChurnClassifier.fit_from_booster>` and
  :meth:`SpendRegressor.fit_from_booster <retain.models.SpendRegressor.fit_from_booster>`.
  One model class in the registry whatever the engine: scoring, explanations and the
  champion gate do not know where the trees grew.
- **On the driver.** All validation rows (the calibration is cross-fitted on them, the metrics,
  plots, SHAP importance, drift reference and the champion gate score them with the model's
  own ``predict_proba``); at most :data:`DRIVER_TRAIN_ROWS` training rows, a seeded uniform
  sample when there are more, for the baselines (logistic regression, BG/NBD no-purchase
  probability); the BTYD summary columns (``btyd_*`` features: frequency, recency, age,
  monetary value) of the latest training cutoff, on which the CLV BTYD models are fitted.
- **Segments** fit on one cutoff's snapshot, on the driver, with either engine.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import BooleanType, NumericType, StringType
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

from retain.errors import RetainError
from retain.features import FeatureStore, SourceData
from retain.features.retrieval import categorical
from retain.features.store import categories
from retain.models._xgboost import FeatureEncoding
from retain.models.churn import ChurnClassifier
from retain.models.clv.value import BTYD_COLUMNS, BTYDValue, CLVModel
from retain.models.spend import SpendRegressor
from retain.progress import ProgressReporter, null_progress
from retain.spark.labels import margin_share, outcomes, transactions_frame
from retain.spark.session import load_spark_settings, spark_session
from retain.training.dataset import (
    KEY,
    TrainingSet,
    check_populated,
    leave_out_uninformative,
    model_features,
    plan_split,
    training_manifest,
)
from retain.training.labels import OUTCOMES

__all__ = [
    "DRIVER_TRAIN_ROWS",
    "SparkTrainer",
    "SparkTrainingSet",
    "encode",
    "learn_encoding",
    "read_snapshots",
]

#: Most training rows collected to the driver for the baselines (a seeded sample beyond).
DRIVER_TRAIN_ROWS = 250_000
#: Boolean column telling xgboost.spark which rows are the validation cutoff(s).
VALIDATION_COLUMN = "_validation"
LABEL_COLUMN = "_label"
CHURN_LABEL, CLV_LABEL = "churned", "future_margin"
# Settings of the sklearn-style estimators that xgboost.spark takes from Spark instead.
NOT_FOR_SPARK = ("n_jobs", "enable_categorical")


@dataclass(frozen=True)
class SparkTrainingSet(TrainingSet):
    """A :class:`~retain.training.dataset.TrainingSet` whose rows live on Spark.

    ``frame`` is the driver's part: every validation row and the training rows collected for
    the baselines (all of them up to :data:`DRIVER_TRAIN_ROWS`, else a seeded sample); the
    manifest counts every row.

    Attributes
    ----------
    rows : pyspark.sql.DataFrame
        Every row: ``customer_id``, ``as_of`` (date), the features as in the snapshots,
        :data:`~retain.training.labels.OUTCOMES` and ``split``.
    vocabularies : dict of str to list of str
        Declared categories (plus ``"other"``) of the attributes that have them.
    """

    rows: Any = None
    vocabularies: dict[str, list[str]] = field(default_factory=dict)

    def class_counts(self, label: str) -> dict[str, tuple[int, int]]:
        """Positives and negatives of ``label`` per split, counted over every row on Spark."""
        grouped = self.rows.groupBy("split").agg(
            sf.sum(sf.col(label).cast("int")).alias("positives"), sf.count("*").alias("rows")
        )
        found = {
            row["split"]: (int(row["positives"]), int(row["rows"])) for row in grouped.collect()
        }
        counts = {}
        for name in ("train", "validation"):
            positives, rows = found.get(name, (0, 0))
            counts[name] = positives, rows - positives
        return counts


# ---------------------------------------------------------------------------------------------
# Reading and encoding
# ---------------------------------------------------------------------------------------------


def read_snapshots(
    spark: SparkSession, paths: Sequence[str | Path], key: str, features: Sequence[str]
) -> DataFrame:
    """The snapshot Parquet files as one Spark DataFrame (key, ``as_of`` as a date, features).

    Raises
    ------
    RetainError
        A snapshot lacking one of ``features`` (built from other definitions).
    """
    frame = spark.read.option("recursiveFileLookup", "true").parquet(*map(str, paths))
    missing = [name for name in (key, "as_of", *features) if name not in frame.columns]
    if missing:
        raise RetainError(f"snapshots {', '.join(map(str, paths))} lack columns {missing}")
    return frame.select(key, sf.to_date("as_of").alias("as_of"), *features)


def learn_encoding(
    rows: DataFrame, features: Sequence[str], vocabularies: dict[str, list[str]]
) -> FeatureEncoding:
    """The encoding ``fit`` would learn from the training rows, learned on Spark.

    Text columns are categorical; their categories are the distinct values of the training
    rows, sorted as strings, less values outside the column's declared vocabulary (which the
    embedded engine reads as missing, see :func:`retain.features.retrieval.categorical`).

    Raises
    ------
    ValueError
        Naming feature columns that are neither numeric, boolean nor text.
    """
    types = {name: rows.schema[name].dataType for name in features}
    text = [name for name in features if isinstance(types[name], StringType)]
    unusable = {
        name: kind.simpleString()
        for name, kind in types.items()
        if not isinstance(kind, StringType | NumericType | BooleanType)
    }
    if unusable:
        raise ValueError(f"columns must be numeric or categorical; got {unusable}")
    if not text:
        return FeatureEncoding(tuple(features), {})
    train = rows.where(sf.col("split") == "train")
    seen = train.agg(*[sf.collect_set(name).alias(name) for name in text]).first()
    learned = {
        name: sorted(
            value for value in seen[name] if name not in vocabularies or value in vocabularies[name]
        )
        for name in text
    }
    return FeatureEncoding(tuple(features), learned)


def _encoded(name: str, encoding: FeatureEncoding) -> Column:
    """The numbers xgboost sees for one feature column (see :class:`FeatureEncoding`)."""
    if name not in encoding.categories:
        return sf.col(name).cast("double").alias(name)
    if not encoding.is_categorical(name):
        return sf.lit(None).cast("double").alias(name)
    known = sf.array(*[sf.lit(value) for value in encoding.categories[name]])
    position = sf.array_position(known, sf.col(name))  # 1-based; 0 when unseen, null when null
    return sf.when(position > 0, position - 1).cast("double").alias(name)


def encode(rows: DataFrame, encoding: FeatureEncoding, label: Column) -> DataFrame:
    """xgboost.spark input: encoded features, ``_label`` and the ``_validation`` flag."""
    return rows.select(
        *[_encoded(name, encoding) for name in encoding.feature_names],
        label.cast("double").alias(LABEL_COLUMN),
        (sf.col("split") == "validation").alias(VALIDATION_COLUMN),
    )


# ---------------------------------------------------------------------------------------------
# Fitting trees with xgboost.spark
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Trees:
    booster: Any
    evals_result: dict


def _fit_trees(
    estimator: ChurnClassifier | SpendRegressor,
    data: DataFrame,
    encoding: FeatureEncoding,
    workers: int,
    *,
    early_stopping: bool = True,
) -> _Trees:
    """Fit ``estimator``'s trees with xgboost.spark on ``encode``'s output: early-stopped on
    the validation rows, or (``early_stopping=False``, a refit) on every row for
    ``n_estimators`` rounds."""
    params = estimator.booster_params()
    for name in NOT_FOR_SPARK:
        params.pop(name, None)
    spark_class = SparkXGBRegressor
    if isinstance(estimator, ChurnClassifier):
        params.pop("objective")  # SparkXGBClassifier sets binary:logistic itself
        spark_class = SparkXGBClassifier
    stopping = (
        {"early_stopping_rounds": estimator.early_stopping_rounds,
         "validation_indicator_col": VALIDATION_COLUMN}
        if early_stopping
        else {}
    )  # fmt: skip
    model = spark_class(
        **params,
        **stopping,
        features_col=list(encoding.feature_names),
        feature_names=list(encoding.feature_names),
        feature_types=encoding.feature_types,
        label_col=LABEL_COLUMN,
        num_workers=workers,
        force_repartition=True,
    ).fit(data.drop(VALIDATION_COLUMN) if not early_stopping else data)
    history = model.training_summary.validation_objective_history if model.training_summary else {}
    return _Trees(model.get_booster(), {"validation_0": dict(history)} if history else {})


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


@dataclass
class SparkTrainer:
    """Builds training sets and fits the xgboost models on Spark (see the module docstring).

    Parameters
    ----------
    spark : SparkSession
        The session.
    workers : int, default=2
        ``num_workers`` of xgboost.spark (``spark.xgboost_workers`` in ``retain.yaml``).
    driver_train_rows : int, default=DRIVER_TRAIN_ROWS
        Most training rows collected to the driver for the baselines.
    """

    spark: SparkSession
    workers: int = 2
    driver_train_rows: int = DRIVER_TRAIN_ROWS
    name: str = "spark"
    _transactions: dict[str, DataFrame] = field(default_factory=dict, repr=False)
    _cached: list[DataFrame] = field(default_factory=list, repr=False)

    @classmethod
    def from_workspace(
        cls, workspace: str | Path = ".", spark_config: str | Path | None = None
    ) -> SparkTrainer:
        """The engine of the workspace's Spark settings (or ``spark_config``) on the active or a
        new session."""
        settings = load_spark_settings(workspace, spark_config)
        return cls(spark_session(settings), settings.xgboost_workers)

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise RetainError(f"xgboost_workers must be a positive integer; got {self.workers!r}")
        context = self.spark.sparkContext
        slots = context.defaultParallelism
        if context.master.startswith("local") and self.workers > slots:
            raise RetainError(
                f"xgboost_workers is {self.workers} but Spark runs {context.master} with "
                f"{slots} task slot(s); barrier training would wait forever. Lower "
                "spark.xgboost_workers in retain.yaml"
            )

    def close(self) -> None:
        """Release the DataFrames this engine cached."""
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()
        self._transactions.clear()

    def _persist(self, frame: DataFrame) -> DataFrame:
        self._cached.append(frame.persist())
        return frame

    def transactions(self, sources: SourceData) -> DataFrame:
        """The sources' transactions on Spark (cached per data fingerprint)."""
        if sources.fingerprint not in self._transactions:
            frame = transactions_frame(self.spark, sources.tables["transactions"])
            self._transactions[sources.fingerprint] = self._persist(frame)
        return self._transactions[sources.fingerprint]

    # -- training sets -------------------------------------------------------------------------

    def training_set(
        self,
        config: Any,
        sources: SourceData,
        store: FeatureStore,
        *,
        progress: ProgressReporter = null_progress,
    ) -> SparkTrainingSet:
        """Snapshots at the planned cutoffs joined on Spark to the outcomes after each.

        Same rows, columns, split and manifest as
        :func:`~retain.training.dataset.build_training_set`; raises the same errors.
        """
        features = model_features(store, config)
        split = plan_split(config, sources)
        built = store.build(sources, split.all, progress=progress)
        snapshots = read_snapshots(self.spark, [r.path for r in built], store.key, features)
        labels = outcomes(
            self.transactions(sources), split.all, horizon_days=config.horizon_days,
            active_days=config.active_days, margin_rate=getattr(config, "margin_rate", 0.3),
        )  # fmt: skip
        validation = sf.col("as_of").isin([sf.lit(day) for day in split.validation])
        rows = self._persist(
            labels.join(snapshots, [KEY, "as_of"], "left")
            .withColumn("split", sf.when(validation, "validation").otherwise("train"))
            .select(KEY, "as_of", *features, *OUTCOMES, "split")
        )
        counts = _cutoff_counts(rows)
        check_populated(counts, split)
        profile = _column_profile(rows.where(sf.col("split") == "train"), features)
        features, left_out = leave_out_uninformative(features, profile)
        manifest = training_manifest(config, sources, store, split, counts, features, built)
        manifest["left_out_features"] = left_out
        frame = self._driver_frame(rows, store, manifest["train_rows"], config.seed)
        frame = frame[[KEY, "as_of", *features, *OUTCOMES, "split"]]
        manifest.update(engine=self.name, driver_train_rows=int((frame["split"] == "train").sum()))
        vocabularies = categories(store.repository)
        return SparkTrainingSet(frame, features, split, manifest, rows, vocabularies)

    def _driver_frame(
        self, rows: DataFrame, store: FeatureStore, train_rows: int, seed: int
    ) -> pd.DataFrame:
        """Validation rows and (a sample of) training rows as the embedded engine's frame."""
        train = rows.where(sf.col("split") == "train")
        if train_rows > self.driver_train_rows:
            train = train.sample(fraction=self.driver_train_rows / train_rows, seed=seed)
        chosen = train.unionByName(rows.where(sf.col("split") == "validation"))
        frame = chosen.toArrow().to_pandas()
        frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
        frame = frame.sort_values(["as_of", KEY], kind="stable", ignore_index=True)
        return categorical(frame, store.repository)

    # -- fitting -------------------------------------------------------------------------------

    def fit_churn(
        self, training_set: SparkTrainingSet, settings: dict, seed: int
    ) -> ChurnClassifier:
        """The churn classifier's trees on Spark, calibrated on the validation rows."""
        model = ChurnClassifier(**settings, random_state=seed)
        encoding = self._encoding(training_set)
        data = encode(training_set.rows, encoding, sf.col(CHURN_LABEL))
        trees = _fit_trees(model, data, encoding, self.workers)
        valid = training_set.validation
        eval_set = valid[list(training_set.features)], valid[CHURN_LABEL].to_numpy(int)
        return model.fit_from_booster(
            trees.booster, encoding, eval_set=eval_set, evals_result=trees.evals_result
        )

    def refit_churn(
        self, training_set: SparkTrainingSet, model: ChurnClassifier
    ) -> ChurnClassifier:
        """The classifier's trees grown again on Spark on every training and validation row,
        for the rounds early stopping chose (see :meth:`ChurnClassifier.refit`)."""
        rounds = model.best_iteration_ + 1
        again = ChurnClassifier(**{**model.get_params(), "n_estimators": rounds})
        data = encode(training_set.rows, model.encoding_, sf.col(CHURN_LABEL))
        trees = _fit_trees(again, data, model.encoding_, self.workers, early_stopping=False)
        return model.refit_from_booster(trees.booster)

    def fit_clv(
        self, training_set: SparkTrainingSet, config: Any, settings: dict, sources: SourceData
    ) -> CLVModel:
        """BTYD on the latest training cutoff's summary (driver), the spend model on Spark."""
        latest = max(training_set.split.training)
        share = margin_share(self.transactions(sources), latest, config.margin_rate)
        btyd = BTYDValue(config.btyd, config.horizon_days, config.discount_rate_monthly)
        btyd.fit(_btyd_summary(training_set.rows, latest), margin_share=share)
        regressor = self._fit_spend(training_set, settings, config.seed)
        valid = training_set.validation
        eval_set = valid[list(training_set.features)], valid[CLV_LABEL].to_numpy(float)
        from retain.training.clv import assemble_clv

        return assemble_clv(config, settings, btyd, regressor, eval_set)

    def refit_clv(
        self, training_set: SparkTrainingSet, model: CLVModel, config: Any, sources: SourceData
    ) -> CLVModel:
        """BTYD fitted again on the validation cutoff's summaries (driver), the spend
        regressor grown again on Spark on every training and validation row (see
        :meth:`CLVModel.refit`)."""
        validation = min(training_set.split.validation)
        share = margin_share(self.transactions(sources), validation, config.margin_rate)
        ml = None
        if model.ml_ is not None:
            fitted = model.ml_.regressor_
            again = SpendRegressor(
                **{**fitted.get_params(), "n_estimators": fitted.best_iteration_ + 1}
            )
            target = sf.col(CLV_LABEL)
            label = sf.greatest(target, sf.lit(0.0)) if again.clips_targets else target
            data = encode(training_set.rows, fitted.encoding_, label)
            trees = _fit_trees(again, data, fitted.encoding_, self.workers, early_stopping=False)
            ml = copy.copy(model.ml_)
            ml.regressor_ = copy.copy(fitted).refit_from_booster(trees.booster)
        frame = training_set.frame
        return model.refit(
            frame[list(training_set.features)], frame[CLV_LABEL].to_numpy(float),
            btyd_rows=(frame["split"] == "validation").to_numpy(), margin_share=share, ml=ml,
        )  # fmt: skip

    def _fit_spend(
        self, training_set: SparkTrainingSet, settings: dict, seed: int
    ) -> SpendRegressor:
        model = SpendRegressor(**settings, random_state=seed)
        target = sf.col(CLV_LABEL)
        label = sf.greatest(target, sf.lit(0.0)) if model.clips_targets else target
        encoding = self._encoding(training_set)
        trees = _fit_trees(
            model, encode(training_set.rows, encoding, label), encoding, self.workers
        )
        train = training_set.rows.where(sf.col("split") == "train")
        clipped = train.agg(sf.avg((target < 0).cast("double"))).first()[0] or 0.0
        return model.fit_from_booster(
            trees.booster, encoding, evals_result=trees.evals_result, clipped_share=clipped
        )

    @staticmethod
    def _encoding(training_set: SparkTrainingSet) -> FeatureEncoding:
        rows, features = training_set.rows, training_set.features
        return learn_encoding(rows, features, training_set.vocabularies)


def _cutoff_counts(rows: DataFrame) -> pd.DataFrame:
    """Rows and churn rate per cutoff, indexed by date (as :func:`cutoff_counts`)."""
    grouped = rows.groupBy("as_of").agg(
        sf.count("*").alias("rows"), sf.avg(sf.col("churned").cast("double")).alias("churn_rate")
    )
    found = sorted((row["as_of"], row["rows"], row["churn_rate"]) for row in grouped.collect())
    index = pd.Index([day for day, _, _ in found], name="as_of", dtype=object)
    return pd.DataFrame(
        {"rows": [n for _, n, _ in found], "churn_rate": [r for _, _, r in found]}, index=index
    )


def _column_profile(rows: DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """Non-missing and distinct values (up to two) of each feature, as
    :func:`~retain.training.dataset.column_profile` counts them: a column has two distinct
    values exactly when its minimum and maximum differ."""
    aggregates = []
    for index, name in enumerate(features):
        aggregates += [
            sf.count(name).alias(f"n{index}"),
            sf.min(name).alias(f"lo{index}"),
            sf.max(name).alias(f"hi{index}"),
        ]
    found = rows.agg(*aggregates).first()
    present = [int(found[f"n{index}"]) for index in range(len(features))]
    distinct = [
        0 if not present[index] else 1 if found[f"lo{index}"] == found[f"hi{index}"] else 2
        for index in range(len(features))
    ]
    return pd.DataFrame({"present": present, "distinct": distinct}, index=list(features))


def _btyd_summary(rows: DataFrame, as_of: date) -> pd.DataFrame:
    """The BTYD summary columns of the customers at ``as_of``, collected to the driver."""
    present = [name for name in BTYD_COLUMNS if name in rows.columns]
    at_cutoff = rows.where(sf.col("as_of") == sf.lit(as_of)).select(KEY, *present)
    summary = at_cutoff.toArrow().to_pandas()
    return summary.sort_values(KEY, kind="stable", ignore_index=True).drop(columns=KEY)
