"""Training job configs: ``training/churn.yaml``, ``training/clv.yaml``, ``training/segments.yaml``.

Each file is read into a frozen dataclass. Unknown keys, wrong types and model settings the
estimator does not take are :class:`~retain.errors.ConfigError` naming the file and the key, so a
typo fails before any data is read. A missing file means the defaults below (which the shipped
YAML files repeat, with comments).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml

from retain.errors import ConfigError

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
Config = TypeVar("Config")


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
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    return _build(CONFIGS[family], {**raw, "source": str(path)}, str(path), "")


def _build(cls: type[Config], raw: dict, file: str, prefix: str) -> Config:
    known = {item.name: item for item in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        keys = ", ".join(f"'{prefix}{key}'" for key in unknown)
        choices = ", ".join(name for name in known if name != "source")
        raise ConfigError(f"{file}: unknown key {keys}; known keys: {choices}")
    hints = typing.get_type_hints(cls)
    values = {
        name: _convert(hints[name], value, file, f"{prefix}{name}") for name, value in raw.items()
    }
    return cls(**values)


def _convert(hint: Any, value: Any, file: str, key: str) -> Any:
    """Check ``value`` against the type hint of its key, converting dates and lists."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in arguments:
            return None
        (hint,) = [argument for argument in arguments if argument is not type(None)]
        return _convert(hint, value, file, key)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: '{key}' must be a mapping of settings, got {value!r}")
        return _build(hint, value, file, f"{key}.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{file}: '{key}' must be a list, got {value!r}")
        return tuple(_convert(arguments[0], item, file, key) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: '{key}' must be a mapping, got {value!r}")
        return dict(value)
    return _scalar(hint, value, file, key)


def _scalar(hint: Any, value: Any, file: str, key: str) -> Any:
    if hint is date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{file}: '{key}' must be a date YYYY-MM-DD, got {value!r}") from None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{file}: '{key}' must be {hint.__name__}, got {value!r}")


def check_estimator_settings(estimator: type, settings: dict, config: JobConfig) -> None:
    """Refuse model settings that ``estimator`` does not take, naming them and the known ones."""
    known = set(inspect.signature(estimator).parameters) - {"random_state", "callbacks"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"{config.source}: unknown key(s) {', '.join(f'model.{key}' for key in unknown)} for "
            f"{estimator.__name__}; known: {', '.join(sorted(known))}"
        )
