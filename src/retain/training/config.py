"""Training job configs: ``training/churn.yaml``, ``training/clv.yaml``, ``training/segments.yaml``.

Each file is read into a frozen dataclass. Unknown keys, wrong types and model settings the
estimator does not take are :class:`~retain.errors.ConfigError` naming the file and the key, so a
typo fails before any data is read. A missing file means the defaults below (which the shipped
YAML files repeat, with comments).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from retain.errors import ConfigError
from retain.settings import read_settings

__all__ = [
    "ChurnConfig",
    "CLVConfig",
    "CutoffPlan",
    "JobConfig",
    "SegmentsConfig",
    "TuningConfig",
    "check_estimator_settings",
    "config_path",
    "load_config",
]

FAMILIES = ("churn", "clv", "segments")


@dataclass(frozen=True)
class CutoffPlan:
    """Which cutoffs make the training and validation rows.

    Validation uses the ``validation`` latest month starts (every ``step_months``) whose label
    window is complete, ending at ``last``; training uses the ``training`` month starts before
    them whose label windows close by the first validation cutoff, so that no training label
    looks into the validation period. Explicit ``training_dates`` / ``validation_dates``
    override the plan.
    """

    last: date | None = None
    validation: int = 1
    training: int = 9
    step_months: int = 1
    training_dates: tuple[date, ...] = ()
    validation_dates: tuple[date, ...] = ()


@dataclass(frozen=True)
class TuningConfig:
    """Optuna settings for ``retain tune``."""

    trials: int = 20
    timeout_minutes: float | None = None
    pruning: bool = True
    startup_trials: int = 5


@dataclass(frozen=True)
class JobConfig:
    """Settings shared by every training job."""

    seed: int = 0
    data: str = "data/simulated"
    mapping: str | None = None
    store: str = "store"
    features: str = "features"
    horizon_days: int = 90
    active_days: int = 365
    cutoffs: CutoffPlan = field(default_factory=CutoffPlan)
    exclude_features: tuple[str, ...] = ()
    min_class_rows: int = 20
    refit: bool = True
    primary_metric: str = ""
    min_improvement: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)
    source: str = "defaults"


@dataclass(frozen=True)
class ChurnConfig(JobConfig):
    """``training/churn.yaml``: the xgboost churn classifier (settings of ``ChurnClassifier``)."""

    horizon_days: int = 90
    primary_metric: str = "roc_auc"
    tuning: TuningConfig = field(default_factory=TuningConfig)


@dataclass(frozen=True)
class CLVConfig(JobConfig):
    """``training/clv.yaml``: BTYD and ML spend models of future net margin."""

    horizon_days: int = 365
    primary_metric: str = "gini"
    cutoffs: CutoffPlan = field(default_factory=lambda: CutoffPlan(training=3))
    btyd: str = "bgnbd"
    discount_rate_monthly: float = 0.01
    margin_rate: float = 0.3
    tuning: TuningConfig = field(default_factory=TuningConfig)


@dataclass(frozen=True)
class SegmentsConfig(JobConfig):
    """``training/segments.yaml``: RFM, value tier, loyalty, lifecycle and clusters."""

    horizon_days: int = 0
    primary_metric: str = "silhouette"
    cutoffs: CutoffPlan = field(default_factory=lambda: CutoffPlan(training=0))


CONFIGS: dict[str, type[JobConfig]] = {
    "churn": ChurnConfig,
    "clv": CLVConfig,
    "segments": SegmentsConfig,
}


def config_path(family: str, workspace: str | Path = ".") -> Path:
    """Where the config of ``family`` lives in a workspace: ``training/<family>.yaml``."""
    return Path(workspace) / "training" / f"{family}.yaml"


def load_config(
    family: str, path: str | Path | None = None, *, workspace: str | Path = "."
) -> JobConfig:
    """Read the config of a model family.

    Parameters
    ----------
    family : {"churn", "clv", "segments"}
        Model family.
    path : str or Path, optional
        Config file; default ``<workspace>/training/<family>.yaml`` (the defaults when absent).
    workspace : str or Path, default="."
        Folder holding ``training/``.

    Raises
    ------
    ConfigError
        Unknown family, unreadable YAML, an unknown key or a value of the wrong type.
    """
    if family not in CONFIGS:
        raise ConfigError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    explicit = path is not None
    path = Path(path) if explicit else config_path(family, workspace)
    if not path.is_file():
        if explicit:
            raise ConfigError(f"config file {path} not found")
        return CONFIGS[family]()
    return read_settings(CONFIGS[family], path)


def check_estimator_settings(estimator: type, settings: dict, config: JobConfig) -> None:
    """Refuse model settings that ``estimator`` does not take, naming them and the known ones."""
    known = set(inspect.signature(estimator).parameters) - {"random_state", "callbacks"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"{config.source}: unknown key(s) {', '.join(f'model.{key}' for key in unknown)} for "
            f"{estimator.__name__}; known: {', '.join(sorted(known))}"
        )
