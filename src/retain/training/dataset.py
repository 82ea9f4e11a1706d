"""Training sets: feature snapshots at several cutoffs joined to the outcomes after each.

Features come from :func:`retain.features.get_features` (the call scoring uses too), labels from
:func:`retain.training.labels.outcomes`. Rows are the customers active at each cutoff; the
latest cutoff(s) validate and earlier ones train (see :mod:`retain.training.cutoffs`).

The jobs build their set and fit their xgboost models through a :class:`TrainingEngine`; the
default is this module and the in-process fits, ``retain.spark.training.SparkTrainer`` does
both on Spark and hands back the same :class:`TrainingSet` and model classes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

import pandas as pd

from retain.errors import ConfigError, RetainError
from retain.features import FeatureStore, SourceData, get_features
from retain.progress import ProgressReporter, null_progress
from retain.training.config import JobConfig
from retain.training.cutoffs import CutoffSplit, plan_cutoffs
from retain.training.labels import OUTCOMES, outcomes

__all__ = [
    "KEY",
    "REQUIRED_FEATURES",
    "TrainingEngine",
    "TrainingSet",
    "TrainingWarning",
    "build_training_set",
    "check_populated",
    "column_profile",
    "cutoff_counts",
    "data_span",
    "describe_cutoffs",
    "leave_out_uninformative",
    "model_features",
    "plan_split",
    "training_manifest",
    "uninformative_features",
]

KEY = "customer_id"
#: Feature columns a model family reads by name (the BTYD summary): kept even when constant.
REQUIRED_FEATURES = ("btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary_value")


class TrainingWarning(UserWarning):
    """Something a training job adapted to the data (e.g. features it left out)."""


@dataclass(frozen=True)
class TrainingSet:
    """Rows (customer × cutoff) with features and outcomes, split by time.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``customer_id``, ``as_of``, the features, :data:`~retain.training.labels.OUTCOMES` and
        ``split`` (``"train"`` or ``"validation"``).
    features : tuple of str
        Model input columns.
    split : CutoffSplit
        The cutoffs.
    manifest : dict
        What the set is made of, for tracking (cutoffs, rows, label rates, fingerprint, views).
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    split: CutoffSplit
    manifest: dict = field(default_factory=dict)

    def part(self, name: str) -> pd.DataFrame:
        """The ``"train"`` or ``"validation"`` rows."""
        return self.frame[self.frame["split"] == name]

    @property
    def train(self) -> pd.DataFrame:
        """Rows of the training cutoffs."""
        return self.part("train")

    @property
    def validation(self) -> pd.DataFrame:
        """Rows of the validation cutoffs."""
        return self.part("validation")

    def class_counts(self, label: str) -> dict[str, tuple[int, int]]:
        """``{"train": (positives, negatives), "validation": (...)}`` of a 0/1 ``label``."""
        counts = {}
        for name in ("train", "validation"):
            values = self.part(name)[label].astype(bool)
            counts[name] = int(values.sum()), int((~values).sum())
        return counts

    def check_classes(self, label: str, minimum: int) -> None:
        """Refuse a split with fewer than ``minimum`` positives or negatives of ``label``."""
        problems = []
        for name, (positives, negatives) in self.class_counts(label).items():
            if min(positives, negatives) < minimum:
                problems.append(
                    f"{name} split ({', '.join(map(str, self._cutoffs(name)))}): "
                    f"{positives:,} {label} and {negatives:,} not {label}"
                )
        if problems:
            raise RetainError(
                f"too few rows of a class to train on (at least {minimum:,} of each needed, "
                "min_class_rows in the config):\n  - " + "\n  - ".join(problems)
            )

    def _cutoffs(self, name: str) -> tuple[date, ...]:
        return self.split.training if name == "train" else self.split.validation


class TrainingEngine(Protocol):
    """Where a job builds its training set and fits its xgboost models.

    ``train_churn`` and ``train_clv`` take one as ``engine``; without it they build with
    :func:`build_training_set` and fit in this process. Evaluation, baselines, plots,
    tracking, registration and the champion gate are the same code for every engine.
    """

    name: str

    def training_set(
        self, config: JobConfig, sources: SourceData, store: FeatureStore, *, progress: Any
    ) -> TrainingSet:
        """The training set; its ``frame`` holds at least every validation row."""

    def fit_churn(self, training_set: TrainingSet, settings: dict, seed: int) -> Any:
        """A fitted, calibrated :class:`~retain.models.ChurnClassifier`."""

    def refit_churn(self, training_set: TrainingSet, model: Any) -> Any:
        """``model`` refitted on every training and validation row (see
        :meth:`~retain.models.ChurnClassifier.refit`)."""

    def fit_clv(
        self, training_set: TrainingSet, config: Any, settings: dict, sources: SourceData
    ) -> Any:
        """A fitted :class:`~retain.models.CLVModel` (margin share learned from ``sources``)."""

    def refit_clv(
        self, training_set: TrainingSet, model: Any, config: Any, sources: SourceData
    ) -> Any:
        """``model`` refitted for the latest behaviour (see :meth:`CLVModel.refit`)."""


def build_training_set(
    config: JobConfig,
    sources: SourceData,
    store: FeatureStore,
    *,
    progress: ProgressReporter = null_progress,
    leave_out: bool = True,
) -> TrainingSet:
    """Build (or reuse) the snapshots at the planned cutoffs and join their outcomes.

    Parameters
    ----------
    config : JobConfig
        Cutoff plan, horizon, lookback and excluded features.
    sources : SourceData
        Validated sources (see :func:`retain.features.open_sources`).
    store : FeatureStore
        Where snapshots live.
    progress : callable, optional
        Called once per cutoff built.
    leave_out : bool, default=True
        Leave out features entirely missing or constant in the training rows (see
        :func:`leave_out_uninformative`); segment models, which read their columns by name
        and are unharmed by constant ones, keep every feature.

    Raises
    ------
    IncompleteLabelWindowError
        A requested cutoff whose label window the data do not cover.
    RetainError
        No active customer at a cutoff.
    """
    features = model_features(store, config)
    split = plan_split(config, sources)
    built = store.build(sources, split.all, progress=progress)
    snapshot = get_features(split.all, store=store, data=sources, as_categorical=True)
    labels = outcomes(
        sources.tables["transactions"],
        split.all,
        horizon_days=config.horizon_days,
        active_days=config.active_days,
        margin_rate=getattr(config, "margin_rate", 0.3),
    )
    frame = labels.merge(snapshot, on=[KEY, "as_of"], how="left", validate="one_to_one")
    frame["split"] = frame["as_of"].dt.date.map(lambda day: _split_of(day, split))
    frame = frame[[KEY, "as_of", *features, *OUTCOMES, "split"]]
    counts = cutoff_counts(frame)
    check_populated(counts, split)
    left_out: dict[str, str] = {}
    if leave_out:
        fitted = frame[frame["split"] == "train"]  # the rows models learn from
        profile = column_profile(fitted if len(fitted) else frame, features)
        features, left_out = leave_out_uninformative(features, profile)
        frame = frame[[KEY, "as_of", *features, *OUTCOMES, "split"]]
    manifest = training_manifest(config, sources, store, split, counts, features, built)
    manifest["left_out_features"] = left_out
    return TrainingSet(frame.reset_index(drop=True), features, split, manifest)


def column_profile(rows: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """Per feature of ``rows``: non-missing values (``present``) and distinct ones, counted up
    to two (``distinct``): all a decision on uninformative features needs."""
    return pd.DataFrame(
        {
            "present": [int(rows[name].notna().sum()) for name in features],
            "distinct": [min(int(rows[name].nunique(dropna=True)), 2) for name in features],
        },
        index=list(features),
    )


def uninformative_features(profile: pd.DataFrame) -> dict[str, str]:
    """Features entirely missing or constant in the training rows, and which of the two.

    ``profile`` has one row per feature with ``present`` and ``distinct`` (see
    :func:`column_profile`; the Spark trainer computes the same on Spark). The BTYD summary
    (:data:`REQUIRED_FEATURES`) is never left out: models read it by name.
    """
    reasons = {}
    for name, row in profile.iterrows():
        if name in REQUIRED_FEATURES:
            continue
        if row["present"] == 0:
            reasons[str(name)] = "all missing"
        elif row["distinct"] < 2:
            reasons[str(name)] = "constant"
    return reasons


def leave_out_uninformative(
    features: tuple[str, ...], profile: pd.DataFrame
) -> tuple[tuple[str, ...], dict[str, str]]:
    """``features`` less those :func:`uninformative_features` finds, with one
    :class:`TrainingWarning` naming them (each with why): a column without a value, or with one
    value only, teaches no model anything, and baselines such as the logistic regression fail
    on them. The models, baselines, drift reference and scoring then all use the rest.
    """
    left_out = uninformative_features(profile)
    if left_out:
        by_reason: dict[str, list[str]] = {}
        for name, reason in left_out.items():
            by_reason.setdefault(reason, []).append(name)
        described = "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())
        warnings.warn(
            f"left out {len(left_out)} feature(s) entirely missing or constant in the "
            f"training rows: {described}",
            TrainingWarning,
            stacklevel=2,
        )
    return tuple(name for name in features if name not in left_out), left_out


def plan_split(config: JobConfig, sources: SourceData) -> CutoffSplit:
    """The config's cutoff plan turned into dates for the span of ``sources``."""
    return plan_cutoffs(config.cutoffs, config.horizon_days, *data_span(sources))


def model_features(store: FeatureStore, config: JobConfig) -> tuple[str, ...]:
    """The repository's features less the config's ``exclude_features``, in repository order.

    Raises
    ------
    ConfigError
        ``exclude_features`` names a feature the repository does not define.
    """
    names = store.repository.feature_names
    unknown = sorted(set(config.exclude_features) - set(names))
    if unknown:
        raise ConfigError(
            f"{config.source}: exclude_features names unknown features {unknown}; "
            f"known: {', '.join(names)}"
        )
    return tuple(name for name in names if name not in config.exclude_features)


def data_span(sources: SourceData) -> tuple[date, date]:
    """The first event day of ``sources`` and the day after the last (label windows end by it).

    Raises
    ------
    RetainError
        No event in the data.
    """
    bounds = sources.event_range
    if bounds is None:
        raise RetainError(f"no transactions or interactions in {sources.origin or 'the data'}")
    first, last = (pd.Timestamp(bound).date() for bound in bounds)
    return first, last + timedelta(days=1)


def _split_of(day: date, split: CutoffSplit) -> str:
    return "validation" if day in split.validation else "train"


def cutoff_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows and churn rate per cutoff (indexed by date) of a frame with ``as_of``, ``churned``."""
    return frame.groupby(frame["as_of"].dt.date).agg(
        rows=(KEY, "size"), churn_rate=("churned", "mean")
    )


def check_populated(counts: pd.DataFrame, split: CutoffSplit) -> None:
    """Refuse a cutoff without rows (``counts`` from :func:`cutoff_counts`).

    Raises
    ------
    RetainError
        Naming the cutoffs without an active customer.
    """
    present = set(counts.index[counts["rows"] > 0])
    empty = [str(day) for day in split.all if day not in present]
    if empty:
        raise RetainError(
            f"no active customers (a purchase in the lookback window) at cutoff(s) "
            f"{', '.join(empty)}"
        )


def describe_cutoffs(manifest: dict) -> str:
    """The cutoffs of a training set in one line: rows and churn rate of each split."""

    def part(cutoffs: list[str]) -> str:
        rows = sum(manifest["rows"].get(day, 0) for day in cutoffs)
        churned = sum(manifest["rows"].get(day, 0) * manifest["churn_rate"].get(day, 0.0)
                      for day in cutoffs)  # fmt: skip
        span = cutoffs[0] if len(cutoffs) == 1 else f"{cutoffs[0]} to {cutoffs[-1]}"
        rate = f", churn {churned / rows:.1%}" if rows else ""
        return f"{len(cutoffs)} ({span}; {rows:,} rows{rate})"

    text = f"horizon {manifest['horizon_days']} days"
    if manifest["training_cutoffs"]:
        text += f", training cutoffs {part(manifest['training_cutoffs'])}"
    return text + f", validation {part(manifest['validation_cutoffs'])}"


def training_manifest(config, sources, store, split, counts, features, built) -> dict:
    """What a training set is made of, for tracking (``counts`` from :func:`cutoff_counts`)."""
    rows = {str(day): int(row.rows) for day, row in counts.iterrows()}
    validation = {str(day) for day in split.validation}
    return {
        "training_cutoffs": [str(day) for day in split.training],
        "validation_cutoffs": [str(day) for day in split.validation],
        "dropped_cutoffs": [str(day) for day in split.dropped],
        "data_end": str(split.data_end),
        "horizon_days": config.horizon_days,
        "active_days": config.active_days,
        "rows": rows,
        "churn_rate": {str(day): round(float(row.churn_rate), 6) for day, row in counts.iterrows()},
        "train_rows": sum(n for day, n in rows.items() if day not in validation),
        "validation_rows": sum(n for day, n in rows.items() if day in validation),
        "data_fingerprint": sources.fingerprint,
        "data_origin": sources.origin,
        "feature_views": store.repository.versions,
        "features": list(features),
        "snapshots": {str(result.as_of): result.snapshot_id for result in built},
    }
