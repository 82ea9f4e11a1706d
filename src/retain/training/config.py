"""Training job configs: ``training/churn.yaml``, ``training/clv.yaml``, ``training/segments.yaml``.

Each file is read into a frozen dataclass. Unknown keys, wrong types and model settings the
estimator does not take are :class:`~retain.errors.ConfigError` naming the file and the key, so a
typo fails before any data is read. A job file holds what is particular to the job (horizon,
cutoffs, model, tuning); where the data, mapping, store and definitions are, the engine, the seed
and the population (``active_days``) come from the workspace config ``retain.yaml``
(:class:`~retain.workspace.WorkspaceConfig`), and a job file that still names one of them is an
error saying it moved there.

A workspace without the file uses the packaged one; the dataclass defaults below equal the
packaged files (a test checks it), and a section given in part (``model: {max_depth: 6}``)
keeps the packaged values of the keys it leaves out.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from retain.errors import ConfigError
from retain.settings import read_settings
from retain.workspace import WorkspaceConfig, load_workspace_config, locate, moved_keys

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
#: Workspace settings (``retain.yaml``) that shape a job's model, logged with its run.
RUN_WORKSPACE_KEYS = ("data", "mapping", "store", "features", "engine", "seed", "active_days")


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


#: xgboost settings of the churn and spend models that both packaged configs share.
_TREES = {
    "n_estimators": 1000,
    "learning_rate": 0.05,
    "max_depth": 4,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
}


@dataclass(frozen=True)
class JobConfig:
    """Settings shared by every training job.

    ``workspace_config`` is the workspace config the job runs in (not a key of the file); its
    ``seed``, ``active_days``, ``data``, ``mapping``, ``store`` and ``features`` are also
    attributes of the job config.
    """

    horizon_days: int = 90
    cutoffs: CutoffPlan = field(default_factory=CutoffPlan)
    exclude_features: tuple[str, ...] = ()
    min_class_rows: int = 20
    primary_metric: str = ""
    min_improvement: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)
    source: str = "defaults"
    workspace_config: WorkspaceConfig = field(default_factory=WorkspaceConfig)

    def run_params(self) -> dict[str, Any]:
        """The settings a run logs: the job's, then the workspace settings that shape its model
        (:data:`RUN_WORKSPACE_KEYS`), under their ``retain.yaml`` names."""
        params = dataclasses.asdict(self)
        settings = params.pop("workspace_config")
        return {**params, **{key: settings[key] for key in RUN_WORKSPACE_KEYS}}

    @property
    def seed(self) -> int:
        """Seed of every random choice (``retain.yaml``)."""
        return self.workspace_config.seed

    @property
    def active_days(self) -> int:
        """Population: a purchase in the ``active_days`` before a cutoff (``retain.yaml``)."""
        return self.workspace_config.active_days

    @property
    def data(self) -> str:
        """Data folder (``retain.yaml``)."""
        return self.workspace_config.data

    @property
    def mapping(self) -> str | None:
        """Column mapping file (``retain.yaml``)."""
        return self.workspace_config.mapping

    @property
    def store(self) -> str:
        """Feature snapshot store (``retain.yaml``)."""
        return self.workspace_config.store

    @property
    def features(self) -> str:
        """Feature repository (``retain.yaml``)."""
        return self.workspace_config.features


@dataclass(frozen=True)
class ChurnConfig(JobConfig):
    """``training/churn.yaml``: the xgboost churn classifier (settings of ``ChurnClassifier``)."""

    horizon_days: int = 90
    primary_metric: str = "roc_auc"
    model: dict[str, Any] = field(
        default_factory=lambda: {
            **_TREES,
            "reg_lambda": 1.0,
            "early_stopping_rounds": 50,
            "calibration": "auto",
            "device": "cpu",
        }
    )
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
    model: dict[str, Any] = field(
        default_factory=lambda: {
            **_TREES,
            "tweedie_variance_power": 1.5,
            "early_stopping_rounds": 50,
            "device": "cpu",
        }
    )
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
    family: str,
    path: str | Path | None = None,
    *,
    workspace: str | Path = ".",
    workspace_config: WorkspaceConfig | None = None,
) -> JobConfig:
    """Read the config of a model family.

    Parameters
    ----------
    family : {"churn", "clv", "segments"}
        Model family.
    path : str or Path, optional
        Config file; default ``<workspace>/training/<family>.yaml``, else the packaged one.
    workspace : str or Path, default="."
        Folder holding ``training/`` and ``retain.yaml``.
    workspace_config : WorkspaceConfig, optional
        The workspace config to run in (with command-line overrides); default the
        workspace's ``retain.yaml``.

    Raises
    ------
    ConfigError
        Unknown family, unreadable YAML, an unknown key, a key that moved to ``retain.yaml``
        or a value of the wrong type.
    """
    if family not in CONFIGS:
        raise ConfigError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} not found")
    path = Path(path) if path is not None else locate(workspace, config_path(family, "."))
    if workspace_config is None:
        workspace_config = load_workspace_config(workspace)
    return read_settings(
        CONFIGS[family], path, moved=moved_keys(),
        context={"workspace_config": workspace_config},
    )  # fmt: skip


def check_estimator_settings(estimator: type, settings: dict, config: JobConfig) -> None:
    """Refuse model settings that ``estimator`` does not take, naming them and the known ones."""
    known = set(inspect.signature(estimator).parameters) - {"random_state", "callbacks"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"{config.source}: unknown key(s) {', '.join(f'model.{key}' for key in unknown)} for "
            f"{estimator.__name__}; known: {', '.join(sorted(known))}"
        )
