"""Training sets: feature snapshots at several cutoffs joined to the outcomes after each.

Snapshots come from the feature store (the files scoring reads too), labels from the rule of
:func:`retain.engines.rules.outcomes`; an engine (:mod:`retain.engines`) joins them and keeps
the rows. Rows are the customers active at each cutoff; the latest cutoff(s) validate and
earlier ones train (see :mod:`retain.training.cutoffs`). The jobs then fit their xgboost models
through the same engine (:meth:`~retain.engines.Engine.fit_trees`): in this process on DuckDB,
with ``xgboost.spark`` on Spark, the same model classes either way.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from retain.engines import Engine, Rows, get_engine
from retain.engines.base import charged_costs
from retain.engines.rules import OUTCOMES
from retain.engines.sources import COST_EVENTS
from retain.errors import ConfigError, RetainError
from retain.features import FeatureStore, SourceData, categorical
from retain.features.repository import Repository
from retain.features.store import categories
from retain.progress import ProgressReporter, null_progress
from retain.training.config import JobConfig
from retain.training.cutoffs import CutoffSplit, plan_cutoffs

__all__ = [
    "DRIVER_TRAIN_ROWS",
    "KEY",
    "NO_COSTS",
    "REQUIRED_FEATURES",
    "TrainingSet",
    "TrainingWarning",
    "build_training_set",
    "check_populated",
    "costless_features",
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
#: Most training rows an engine that keeps its rows elsewhere collects to the driver for the
#: baselines (a seeded sample beyond; every validation row is collected).
DRIVER_TRAIN_ROWS = 250_000


class TrainingWarning(UserWarning):
    """Something a training job adapted to the data (e.g. features it left out)."""


@dataclass(frozen=True)
class TrainingSet:
    """Rows (customer × cutoff) with features and outcomes, split by time.

    Attributes
    ----------
    frame : pandas.DataFrame
        The driver's rows: ``customer_id``, ``as_of``, the features (attributes with a
        vocabulary as categoricals), :data:`~retain.engines.rules.OUTCOMES` and ``split``
        (``"train"`` or ``"validation"``). Every row on an engine in this process; every
        validation row and at most :data:`DRIVER_TRAIN_ROWS` training rows on another.
    features : tuple of str
        Model input columns.
    split : CutoffSplit
        The cutoffs.
    manifest : dict
        What the set is made of, for tracking (cutoffs, rows, label rates, fingerprint, views);
        its counts are of every row.
    rows : Rows, optional
        Every row, held by ``engine`` (default: ``frame``).
    vocabularies : dict of str to list of str
        Declared categories (plus ``"other"``) of the attributes that have them.
    engine : Engine, optional
        The engine holding ``rows`` (default: DuckDB, in this process).
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    split: CutoffSplit
    manifest: dict = field(default_factory=dict)
    rows: Rows = None
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    engine: Engine | None = None

    def __post_init__(self) -> None:
        if self.rows is None:  # a set built by hand: its frame is every row
            object.__setattr__(self, "rows", self.frame)

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
        """``{"train": (positives, negatives), "validation": (...)}`` of a 0/1 ``label``,
        over every row."""
        return (self.engine or get_engine()).class_counts(self.rows, label)

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


def _cost_rates(config: JobConfig) -> dict[str, float] | None:
    """The configured costs (``retain.yaml``) for CLV's labels; churn's need none."""
    settings = getattr(config, "workspace_config", None)
    if not hasattr(config, "margin_rate") or settings is None:
        return None
    return settings.costs.rates()


def build_training_set(
    config: JobConfig,
    sources: SourceData,
    store: FeatureStore,
    *,
    engine: Engine | None = None,
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
    engine : Engine, optional
        Builds missing snapshots, joins the outcomes and keeps the rows (default: DuckDB).
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
    engine = engine or get_engine()
    features = model_features(store, config)
    split = plan_split(config, sources)
    built = store.build(sources, split.all, progress=progress, engine=engine)
    rows = engine.training_rows(
        sources, [result.path for result in built], features, cutoffs=split.all,
        validation=split.validation, horizon_days=config.horizon_days,
        active_days=config.active_days, margin_rate=getattr(config, "margin_rate", 0.3),
        cost_rates=_cost_rates(config),
    )  # fmt: skip
    counts = engine.cutoff_counts(rows)
    check_populated(counts, split)
    manifest = training_manifest(config, sources, store, split, counts, features, built)
    vocabularies = categories(store.repository)
    left_out: dict[str, str] = {}
    if leave_out:
        # the rows models learn from (every row when no cutoff trains)
        fitted = "train" if manifest["train_rows"] else None
        profile = engine.column_profile(rows, features, vocabularies, fitted)
        expected = costless_features(store.repository, sources)
        features, left_out = leave_out_uninformative(features, profile, expected)
        manifest["features"] = list(features)
    manifest["left_out_features"] = left_out
    limit = None if engine.in_process else DRIVER_TRAIN_ROWS
    frame = engine.driver_rows(rows, max_train_rows=limit, seed=config.seed)
    frame = categorical(frame[[KEY, "as_of", *features, *OUTCOMES, "split"]], store.repository)
    manifest.update(engine=engine.name, driver_train_rows=int((frame["split"] == "train").sum()))
    return TrainingSet(
        frame.reset_index(drop=True), features, split, manifest, rows, vocabularies, engine
    )


def uninformative_features(profile: pd.DataFrame) -> dict[str, str]:
    """Features entirely missing or constant in the training rows, and which of the two.

    ``profile`` has one row per feature with ``present`` and ``distinct`` (see
    :func:`retain.engines.rules.column_profile`). The BTYD summary
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


#: Why the features over the cost events are constant where nothing costs (see
#: :func:`costless_features`).
NO_COSTS = "constant: no cost to serve (no costs log, no costs in retain.yaml)"


def costless_features(repository: Repository, sources: SourceData) -> dict[str, str]:
    """The features of the views over the cost events (``cost_events``), with
    :data:`NO_COSTS`, where nothing costs (no ``costs`` log, no costs charged from
    ``retain.yaml``): they are 0 by construction, which is expected, not a data problem.
    Empty when something costs."""
    if charged_costs(sources, sources.cost_rates) is not None:
        return {}
    return {
        name: NO_COSTS
        for view in repository.views
        if view.source == COST_EVENTS
        for name in view.feature_names
    }


def leave_out_uninformative(
    features: tuple[str, ...], profile: pd.DataFrame, expected: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """``features`` less those :func:`uninformative_features` finds, with one
    :class:`TrainingWarning` naming them (each with why): a column without a value, or with one
    value only, teaches no model anything, and baselines such as the logistic regression fail
    on them. The models, baselines, drift reference and scoring then all use the rest.

    Parameters
    ----------
    features : tuple of str
        Candidate model inputs.
    profile : pandas.DataFrame
        Their ``present`` and ``distinct`` counts in the training rows.
    expected : mapping of str to str, optional
        Features known to carry nothing here, and why (e.g. :func:`costless_features`): left
        out with that reason when they are missing or constant, without a warning, which is
        kept for what the data did not lead one to expect.

    Returns
    -------
    (tuple of str, dict of str to str)
        The features kept, and those left out with why.
    """
    left_out = uninformative_features(profile)
    expected = expected or {}
    left_out = {name: expected.get(name, reason) for name, reason in left_out.items()}
    surprising = {name: why for name, why in left_out.items() if name not in expected}
    if surprising:
        by_reason: dict[str, list[str]] = {}
        for name, reason in surprising.items():
            by_reason.setdefault(reason, []).append(name)
        described = "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())
        warnings.warn(
            f"left out {len(surprising)} feature(s) entirely missing or constant in the "
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


def check_populated(counts: pd.DataFrame, split: CutoffSplit) -> None:
    """Refuse a cutoff without rows (``counts`` from :meth:`Engine.cutoff_counts
    <retain.engines.Engine.cutoff_counts>`).

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
    """What a training set is made of, for tracking (``counts`` as in :func:`check_populated`)."""
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
