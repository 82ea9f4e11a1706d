"""Trees grown on Spark with ``xgboost.spark``, adopted by retain's own estimators.

``SparkXGBClassifier`` (churn) and ``SparkXGBRegressor`` (the CLV spend model) run with
``num_workers`` = ``spark.xgboost_workers`` of ``retain.yaml``, early-stopped on the validation
cutoff(s) through ``validation_indicator_col``: the time split of the embedded engine. Their
input is encoded exactly as :func:`retain.models._xgboost.encode_features` encodes a pandas
frame (a categorical value becomes its position among the sorted training categories, feature
type ``"c"``; other columns are floats), so the fitted booster is adopted as it is by
:meth:`ChurnClassifier.fit_from_booster <retain.models.ChurnClassifier.fit_from_booster>` and
:meth:`SpendRegressor.fit_from_booster <retain.models.SpendRegressor.fit_from_booster>`: one
model class in the registry whatever the engine, so scoring, explanations and the champion
gate do not know where the trees grew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import BooleanType, NumericType, StringType
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

from retain.engines.base import TrainingRows
from retain.engines.rules import SPLIT
from retain.models._xgboost import FeatureEncoding
from retain.models.churn import ChurnClassifier
from retain.models.spend import SpendRegressor

__all__ = ["encode", "fit_trees", "learn_encoding", "refit_trees"]

#: Boolean column telling xgboost.spark which rows are the validation cutoff(s).
VALIDATION_COLUMN = "_validation"
LABEL_COLUMN = "_label"
# Settings of the sklearn-style estimators that xgboost.spark takes from Spark instead.
NOT_FOR_SPARK = ("n_jobs", "enable_categorical")


def learn_encoding(
    rows: DataFrame, features: Sequence[str], vocabularies: dict[str, list[str]]
) -> FeatureEncoding:
    """The encoding ``fit`` would learn from the training rows, learned on Spark.

    Text columns are categorical; their categories are the distinct values of the training
    rows, sorted as strings, less values outside the column's declared vocabulary (which the
    driver reads as missing, see :func:`retain.features.categorical`).

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
    train = rows.where(sf.col(SPLIT) == "train")
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
        (sf.col(SPLIT) == "validation").alias(VALIDATION_COLUMN),
    )


@dataclass(frozen=True)
class _Trees:
    booster: Any
    evals_result: dict


def _grow(
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


def _label(estimator: ChurnClassifier | SpendRegressor, label: str) -> Column:
    """The training target: a spend model whose objective needs targets >= 0 clips them."""
    target = sf.col(label)
    clips = isinstance(estimator, SpendRegressor) and estimator.clips_targets
    return sf.greatest(target, sf.lit(0.0)) if clips else target


def fit_trees(
    training_set: TrainingRows,
    estimator: ChurnClassifier | SpendRegressor,
    label: str,
    workers: int,
) -> ChurnClassifier | SpendRegressor:
    """``estimator`` fitted on Spark: trees early-stopped on the validation rows, a classifier
    then calibrated on the driver's validation rows."""
    rows = training_set.rows
    encoding = learn_encoding(rows, training_set.features, training_set.vocabularies)
    trees = _grow(estimator, encode(rows, encoding, _label(estimator, label)), encoding, workers)
    if isinstance(estimator, ChurnClassifier):
        valid = training_set.validation
        eval_set = valid[list(training_set.features)], valid[label].to_numpy(int)
        return estimator.fit_from_booster(
            trees.booster, encoding, eval_set=eval_set, evals_result=trees.evals_result
        )
    train = rows.where(sf.col(SPLIT) == "train")
    clipped = train.agg(sf.avg((sf.col(label) < 0).cast("double"))).first()[0] or 0.0
    return estimator.fit_from_booster(
        trees.booster, encoding, evals_result=trees.evals_result, clipped_share=clipped
    )


def refit_trees(
    training_set: TrainingRows,
    model: ChurnClassifier | SpendRegressor,
    label: str,
    workers: int,
) -> ChurnClassifier | SpendRegressor:
    """``model``'s trees grown again on Spark on every training and validation row, for the
    rounds early stopping chose (see :meth:`ChurnClassifier.refit`); ``model`` adopts them."""
    again = type(model)(**{**model.get_params(), "n_estimators": model.best_iteration_ + 1})
    data = encode(training_set.rows, model.encoding_, _label(again, label))
    trees = _grow(again, data, model.encoding_, workers, early_stopping=False)
    return model.refit_from_booster(trees.booster)
