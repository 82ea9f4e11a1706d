"""Training job configs: ``training/<family>.yaml`` of churn, CLV, segments and uplift.

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
import math
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from retain.errors import ConfigError, quote, shorten
from retain.models.clv.value import BTYD_COLUMNS
from retain.settings import read_settings, settings_keys
from retain.workspace import InWorkspace, WorkspaceConfig, load_workspace_config, locate, moved_keys
from retain.yamlfile import load_yaml

__all__ = [
    "ChurnConfig",
    "CLVConfig",
    "CutoffPlan",
    "JobConfig",
    "SegmentsConfig",
    "TuningConfig",
    "UpliftConfig",
    "BASELINE_FEATURES",
    "check_config",
    "check_estimator_settings",
    "check_range",
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
class JobConfig(InWorkspace):
    """Settings shared by every training job.

    ``workspace_config`` is the workspace config the job runs in (not a key of the file); its
    ``seed``, ``active_days``, ``data``, ``mapping``, ``store`` and ``features`` are also
    attributes of the job config.
    """

    horizon_days: int = 90
    cutoffs: CutoffPlan = field(default_factory=CutoffPlan)
    exclude_features: tuple[str, ...] = ()
    min_class_rows: int = 20
    refit: bool = True
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

    def __post_init__(self) -> None:
        # a job's margin rate: its file's (deprecated), else the workspace's (retain.yaml)
        if getattr(self, "margin_rate", 0.0) is None:
            object.__setattr__(self, "margin_rate", self.workspace_config.margin_rate)


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
    #: ``None``: the workspace's ``margin_rate`` (retain.yaml); a job file's is deprecated
    margin_rate: float | None = None
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


#: Measures of the validation campaign an uplift model may be gated on (higher is better; see
#: retain.training.uplift): the regression-adjusted Qini coefficient is the default.
UPLIFT_GATE_MEASURES = (
    "adjusted_qini",
    "qini",
    "adjusted_incremental_profit_at_capacity",
    "incremental_profit_at_capacity",
    "auuc",
)


@dataclass(frozen=True)
class UpliftConfig(JobConfig):
    """``training/uplift.yaml``: uplift models learned from the logged campaigns.

    The cutoffs are the campaigns' dates (``cutoffs`` is not read): the latest campaign whose
    outcome window the data cover validates, the earlier ones train.
    """

    horizon_days: int = 90
    primary_metric: str = "adjusted_qini"  # the gate's measure: one of UPLIFT_GATE_MEASURES
    #: ``None``: the workspace's ``margin_rate`` (retain.yaml); a job file's is deprecated
    margin_rate: float | None = None
    capacity: float = 0.05
    learners: tuple[str, ...] = ("x",)  # the best out of time (README, Uplift models)
    min_arm_rows: int = 30
    model: dict[str, Any] = field(
        default_factory=lambda: {
            "n_estimators": 200,
            "max_depth": 3,
            "learning_rate": 0.05,
            "min_child_weight": 20.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            "cv_folds": 2,
            "scale_margin": True,
            "margin_floor": 5.0,
        }
    )


CONFIGS: dict[str, type[JobConfig]] = {
    "churn": ChurnConfig,
    "clv": CLVConfig,
    "segments": SegmentsConfig,
    "uplift": UpliftConfig,
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
        raise ConfigError(f"unknown model family {family!r}; known: {', '.join(CONFIGS)}")
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} not found")
    path = Path(path) if path is not None else locate(workspace, config_path(family, "."))
    if workspace_config is None:
        workspace_config = load_workspace_config(workspace)
    own = set(settings_keys(CONFIGS[family]))  # margin_rate: moved, but still read (warned)
    moved = {key: file for key, file in moved_keys().items() if key not in own}
    config = read_settings(
        CONFIGS[family], path, moved=moved, context={"workspace_config": workspace_config}
    )
    if "margin_rate" in own and _sets(path, "margin_rate"):
        warnings.warn(
            f"{path}: 'margin_rate' moved to retain.yaml, where the profit features read it "
            f"too; this job still uses its own ({config.margin_rate}), but delete it here and "
            "set it in retain.yaml",
            FutureWarning,
            stacklevel=2,
        )
    check_config(family, config)
    return config


def _sets(path: Path, key: str) -> bool:
    """Whether the settings file at ``path`` (read and checked already) gives ``key``."""
    raw = load_yaml(path.read_text(encoding="utf-8"), str(path))
    return isinstance(raw, dict) and key in raw


#: Features the baselines of a family are computed from (the recency rule, BG/NBD); a config
#: may not exclude them, or the evaluation would fail after the training set is built.
BASELINE_FEATURES = {
    "churn": ("recency_days", *BTYD_COLUMNS),
    "clv": BTYD_COLUMNS,
    "segments": (),
    "uplift": (),
}


def check_config(family: str, config: JobConfig) -> None:
    """Check the ranges of a job config's values and its model settings, before any data.

    Raises
    ------
    ConfigError
        Naming the file, the key, the value and the range: ``horizon_days >= 1`` (churn, CLV),
        ``active_days >= 1``, cutoff counts, ``min_class_rows >= 1``, finite rates, tuning
        budgets, model settings of the wrong type or range, and ``exclude_features`` naming a
        feature the baselines need.
    """
    where = config.source
    least_horizon = 0 if family == "segments" else 1
    checks = [
        ("horizon_days", config.horizon_days, least_horizon, None),
        ("active_days", config.active_days, 1, None),
        ("cutoffs.validation", config.cutoffs.validation, 1, None),
        ("cutoffs.training", config.cutoffs.training, 0, None),
        ("cutoffs.step_months", config.cutoffs.step_months, 1, None),
        ("min_class_rows", config.min_class_rows, 1, None),
        ("min_improvement", config.min_improvement, None, None),
    ]
    if isinstance(config, CLVConfig):
        checks += [
            ("discount_rate_monthly", config.discount_rate_monthly, 0, 1),
            ("margin_rate", config.margin_rate, 0, 1),
        ]
    if isinstance(config, UpliftConfig):
        checks += [
            ("margin_rate", config.margin_rate, 0, 1),
            ("capacity", config.capacity, 0, 1),
            ("min_arm_rows", config.min_arm_rows, 10, None),
        ]
        if config.capacity <= 0:
            raise ConfigError(f"{where}: 'capacity' must be above 0, got {config.capacity}")
        from retain.models.uplift import LEARNERS

        unknown = [name for name in config.learners if name not in LEARNERS]
        if not config.learners or unknown:
            raise ConfigError(
                f"{where}: 'learners' must name one or more of {', '.join(LEARNERS)}; got "
                f"{', '.join(map(str, config.learners)) or 'none'}"
            )
        if config.primary_metric not in UPLIFT_GATE_MEASURES:
            raise ConfigError(
                f"{where}: 'primary_metric' (the uplift gate's measure) must be one of "
                f"{', '.join(UPLIFT_GATE_MEASURES)}; got {config.primary_metric!r}"
            )
    tuning = getattr(config, "tuning", None)
    if tuning is not None:
        checks += [
            ("tuning.trials", tuning.trials, 1, None),
            ("tuning.startup_trials", tuning.startup_trials, 0, None),
        ]
        if tuning.timeout_minutes is not None:
            checks.append(("tuning.timeout_minutes", tuning.timeout_minutes, 0, None))
    for key, value, low, high in checks:
        check_range(where, key, value, low, high)
    if tuning is not None and tuning.timeout_minutes is not None and tuning.timeout_minutes <= 0:
        raise ConfigError(f"{where}: 'tuning.timeout_minutes' must be above 0")
    needed = [name for name in BASELINE_FEATURES[family] if name in config.exclude_features]
    if needed:
        raise ConfigError(
            f"{where}: 'exclude_features' leaves out {', '.join(needed)}, which the baselines "
            f"need (features {', '.join(BASELINE_FEATURES[family])}); keep them"
        )
    estimator = _estimator(family)
    if estimator is not None:
        check_estimator_settings(estimator, dict(config.model), config)


def check_range(where: str, key: str, value: float, low: float | None, high: float | None) -> None:
    """Refuse ``value`` outside ``[low, high]`` (either may be ``None``) or not finite.

    Raises
    ------
    ConfigError
        ``"<where>: '<key>' must be at least <low>, got <value>"`` and the like.
    """
    if not math.isfinite(value):
        raise ConfigError(f"{where}: '{key}' must be a finite number, got {value}")
    if low is not None and value < low:
        raise ConfigError(f"{where}: '{key}' must be at least {low}, got {value}")
    if high is not None and value > high:
        raise ConfigError(f"{where}: '{key}' must be at most {high}, got {value}")


def _estimator(family: str) -> type | None:
    if family == "churn":
        from retain.models.churn import ChurnClassifier

        return ChurnClassifier
    if family == "clv":
        from retain.models.spend import SpendRegressor

        return SpendRegressor
    if family == "uplift":
        from retain.models.uplift import UpliftModel

        return UpliftModel
    from retain.models.segments import SegmentModel

    return SegmentModel


def check_estimator_settings(estimator: type, settings: dict, config: JobConfig) -> None:
    """Refuse model settings that ``estimator`` does not take, or of the wrong type or range.

    Types are those of the estimator's defaults (a number where the default is a number, text
    where it is text); ranges are the estimator's own checks (``_check_settings``), run here so
    that ``max_depth: deep`` fails before any data are read.
    """
    parameters = inspect.signature(estimator).parameters
    known = set(parameters) - {"random_state", "callbacks"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"{config.source}: unknown key(s) {', '.join(f'model.{key}' for key in unknown)} for "
            f"{estimator.__name__}; known: {', '.join(sorted(known))}"
        )
    for key, value in settings.items():
        default = parameters[key].default
        expected = _setting_type(default)
        if expected is not None and value is not None and not _is_of(value, expected):
            raise ConfigError(
                f"{config.source}: 'model.{key}' must be {_TYPE_WORDS[expected]} (like its "
                f"default {default!r}), got {quote(value)}"
            )
    check = getattr(estimator, "_check_settings", None)
    if check is None:
        return
    try:
        check(estimator(**settings))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{config.source}: model settings: {shorten(error, 300)}") from None


_TYPE_WORDS = {bool: "true or false", float: "a number", str: "text"}


def _setting_type(default: object) -> type | None:
    if isinstance(default, bool):
        return bool
    if isinstance(default, int | float):
        return float
    if isinstance(default, str):
        return str
    return None


def _is_of(value: object, expected: type) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, expected)
