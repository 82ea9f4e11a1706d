"""A workspace: the folder holding ``retain.yaml``, ``features/``, ``training/``, ``serving/``,
data and runs.

``retain.yaml`` (:class:`WorkspaceConfig`) says where the data, mapping, store and feature
definitions are, which engine runs and with which seed; every command and Python entry point
reads it, and their options (``--data``, ``--mapping``, ...) override single keys. Job configs
(``training/*.yaml``) and ``serving/score.yaml`` hold only what is particular to a job.

Definitions and configs a workspace lacks come from the defaults packaged with retain (the
repository's own ``retain.yaml``, ``features/``, ``training/`` and ``serving/``), so every
command works from an empty folder; ``retain init`` copies them in to be edited.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from retain.errors import ConfigError
from retain.settings import read_settings, settings_keys

__all__ = [
    "CONFIG_FILE",
    "ENGINES",
    "CostSettings",
    "InWorkspace",
    "MASTER_ENV",
    "PACKAGED",
    "SCAFFOLD",
    "SparkSettings",
    "TimestampWindow",
    "WorkspaceConfig",
    "init_workspace",
    "load_workspace_config",
    "locate",
    "resolve_path",
    "moved_keys",
    "workspace_settings",
]

#: The workspace config file, at the workspace root.
CONFIG_FILE = "retain.yaml"

#: Engine names a config may give (the engine itself is chosen in one place elsewhere).
ENGINES = ("duckdb", "spark")

#: The packaged defaults (links to the repository's folders, copied into wheels).
PACKAGED = Path(__file__).resolve().parent / "defaults"

#: What ``retain init`` writes, relative to the workspace.
SCAFFOLD = (
    CONFIG_FILE,
    "features/costs.py",
    "features/customers.py",
    "features/engagement.py",
    "features/profit.py",
    "features/purchases.py",
    "features/reasons.yaml",
    "training/churn.yaml",
    "training/clv.yaml",
    "training/segments.yaml",
    "training/uplift.yaml",
    "serving/score.yaml",
    "serving/playbook.yaml",
)

#: Environment variable naming the Spark master; it overrides ``spark.master``.
MASTER_ENV = "RETAIN_SPARK_MASTER"


def locate(workspace: str | Path, path: str | Path) -> Path:
    """``path`` in the workspace if it exists there (or is absolute), else the packaged default.

    A relative path the workspace lacks and no default provides is returned as the workspace's
    own, so the error that follows names the path the user expects.
    """
    path = Path(path)
    if path.is_absolute():
        return path
    own = Path(workspace) / path
    packaged = PACKAGED / path
    return packaged if not own.exists() and packaged.exists() else own


def init_workspace(target: str | Path, *, force: bool = False) -> list[Path]:
    """Copy the default definitions and configs into ``target``; return the files written.

    Existing files are kept unless ``force``.
    """
    target = Path(target)
    written = []
    for relative in SCAFFOLD:
        destination = target / relative
        if destination.exists() and not force:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGED / relative, destination)
        written.append(destination)
    (target / "data").mkdir(parents=True, exist_ok=True)
    return written


@dataclass(frozen=True)
class SparkSettings:
    """The ``spark:`` section of ``retain.yaml``, used by ``--engine spark``.

    Attributes
    ----------
    master : str, default="local[*]"
        Spark master; ``RETAIN_SPARK_MASTER`` overrides it (see :attr:`effective_master`).
    app_name : str, default="retain"
        Application name.
    driver_memory : str, default="4g"
        Driver memory, where retain starts the driver (not under ``spark-submit``).
    shuffle_partitions : int, default=8
        ``spark.sql.shuffle.partitions``; 2-3x the cores on a cluster.
    xgboost_workers : int, default=2
        ``num_workers`` of xgboost.spark for the churn and spend models.
    config : dict, default={}
        Any other Spark settings, e.g. ``{spark.executor.memory: 8g}``.
    source : str
        The file read, for messages.
    """

    master: str = "local[*]"
    app_name: str = "retain"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    xgboost_workers: int = 2
    config: dict[str, str] = field(default_factory=dict)
    source: str = "defaults"

    @property
    def effective_master(self) -> str:
        """``RETAIN_SPARK_MASTER`` when set, else ``master``."""
        return os.environ.get(MASTER_ENV) or self.master


@dataclass(frozen=True)
class TimestampWindow:
    """The dates an event or signup may plausibly carry; anything outside is a data error.

    A transaction dated 2300 (a typo, a placeholder) would otherwise make training plan its
    cutoffs centuries ahead; one dated 0001-01-01 would stretch every tenure.

    Attributes
    ----------
    earliest : date, default=1900-01-01
        No timestamp before this day.
    days_ahead : int, default=1
        No timestamp after today (UTC) plus this many days (a day of slack for time zones).
    """

    earliest: date = date(1900, 1, 1)
    days_ahead: int = 1

    def bounds(self, today: date | None = None) -> tuple[date, date]:
        """``(earliest, latest)``: timestamps from ``earliest`` to before ``latest + 1 day``."""
        today = today or datetime.now(UTC).date()
        return self.earliest, today + timedelta(days=self.days_ahead)


@dataclass(frozen=True)
class CostSettings:
    """The ``costs:`` section of ``retain.yaml``: the cost to serve that the data do not log.

    Every amount is in the workspace currency and 0 by default, so a workspace without the
    section has no cost but the ``costs`` table's (and the same numbers as before costs
    existed). The costs below are charged as cost events of their own kind, beside the rows of
    the ``costs`` table: a kind must come from one place (a kind both configured here and
    present in the table is an error, as it would be counted twice).

    Attributes
    ----------
    per_order : float, default=0
        Each order (a transaction with a positive amount): kind ``order``.
    per_return : float, default=0
        Each return (a negative amount): kind ``return``.
    payment_share : float, default=0
        Payment cost as a share of an order's amount (0 to 1): kind ``payment``.
    shipping_share : float, default=0
        Shipping cost as a share of an order's amount (0 to 1): kind ``shipping``.
    per_interaction : dict of str to float, default={}
        Interaction type -> cost of each interaction of that type (e.g. ``support_ticket: 4``,
        ``complaint: 12``, ``campaign_contact: 0.5``): kind = the type.
    """

    per_order: float = 0.0
    per_return: float = 0.0
    payment_share: float = 0.0
    shipping_share: float = 0.0
    per_interaction: dict[str, float] = field(default_factory=dict)

    def rates(self) -> dict[str, float]:
        """Kind -> configured amount (per event, or share of the amount), non-zero ones only."""
        rates = {"order": self.per_order, "return": self.per_return,
                 "payment": self.payment_share, "shipping": self.shipping_share,
                 **self.per_interaction}  # fmt: skip
        return {kind: float(value) for kind, value in rates.items() if value}

    def check(self, where: str) -> None:
        """Raise a :class:`~retain.errors.ConfigError` naming ``where`` and the key for a
        negative, non-finite or (for shares) above-1 amount, or an empty interaction type."""
        values = {
            "per_order": self.per_order,
            "per_return": self.per_return,
            "payment_share": self.payment_share,
            "shipping_share": self.shipping_share,
        }
        for kind, value in self.per_interaction.items():
            if not isinstance(kind, str) or not kind.strip():
                raise ConfigError(f"{where}: 'costs.per_interaction' has an empty type {kind!r}")
            if kind in ("order", "return", "payment", "shipping"):
                raise ConfigError(
                    f"{where}: 'costs.per_interaction.{kind}': {kind!r} is a kind of "
                    "transaction cost; set it with its own key (per_order, per_return, "
                    "payment_share, shipping_share)"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"{where}: 'costs.per_interaction.{kind}' must be a number, got {value!r}"
                )
            values[f"per_interaction.{kind}"] = value
        for key, value in values.items():
            if not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"{where}: 'costs.{key}' must be a finite amount of 0 or more, got {value!r}"
                )
            if key.endswith("_share") and value > 1:
                raise ConfigError(
                    f"{where}: 'costs.{key}' is a share of the amount, from 0 to 1; got {value!r}"
                )


@dataclass(frozen=True)
class WorkspaceConfig:
    """``retain.yaml``: where a workspace's data, mapping, store and definitions are.

    Every command reads it; command-line options override single keys (see :meth:`override`).
    Paths are relative to the workspace unless absolute (see :meth:`path`).

    Attributes
    ----------
    data : str, default="data/simulated"
        Data folder.
    mapping : str or None, default=None
        Mapping YAML for data in other shapes.
    store : str, default="store"
        Feature snapshot store.
    features : str, default="features"
        Feature repository (the packaged one when the workspace has none).
    engine : {"duckdb", "spark"}, default="duckdb"
        Engine of features, training and scoring.
    seed : int, default=0
        Seed of every random choice: training, tuning, and the simulation of ``quickstart``.
    active_days : int, default=365
        Population: customers with a purchase in the ``active_days`` before a cutoff, for
        training and scoring alike.
    currency : str, default="USD"
        Currency of every amount, shown with money in lists and reports.
    spark : SparkSettings
        Spark settings (the ``spark:`` section).
    timestamp_window : TimestampWindow
        Plausible dates of events and signups (default 1900-01-01 to today + 1 day).
    costs : CostSettings
        Cost to serve that the data do not log (the ``costs:`` section; none by default).
    margin_rate : float, default=0.3
        Margin as a share of the amount of a transaction without a ``margin`` (0 to 1): in
        the profit features (``profit_events``) and, unless a job file still sets its own, in
        the CLV and uplift labels.
    source : str
        The file read, for messages.
    """

    data: str = "data/simulated"
    mapping: str | None = None
    store: str = "store"
    features: str = "features"
    engine: str = "duckdb"
    seed: int = 0
    active_days: int = 365
    currency: str = "USD"
    spark: SparkSettings = field(default_factory=SparkSettings)
    timestamp_window: TimestampWindow = field(default_factory=TimestampWindow)
    costs: CostSettings = field(default_factory=CostSettings)
    margin_rate: float = 0.3
    source: str = "defaults"

    def path(self, workspace: str | Path, value: str | Path) -> Path:
        """``value`` relative to ``workspace`` unless absolute."""
        value = Path(value)
        return value if value.is_absolute() else Path(workspace) / value

    def override(
        self,
        *,
        data: str | Path | None = None,
        mapping: str | Path | None = None,
        store: str | Path | None = None,
        features: str | Path | None = None,
        engine: str | None = None,
    ) -> WorkspaceConfig:
        """This config with the options given (``None``: keep the config's value) in place.

        Paths given here are taken as the user typed them, relative to the current folder
        (not the workspace), and kept as absolute paths.

        Raises
        ------
        ConfigError
            An unknown engine.
        """
        changes: dict[str, str] = {}
        for key, value in (("data", data), ("mapping", mapping), ("store", store),
                           ("features", features)):  # fmt: skip
            if value is not None:
                changes[key] = str(Path(value).absolute())
        if engine is not None:
            changes["engine"] = _engine(engine, "--engine")
        return dataclasses.replace(self, **changes)


class InWorkspace:
    """The keys of ``retain.yaml`` as attributes of a config that runs in a workspace.

    For job and scoring configs, which hold their workspace config in a ``workspace_config``
    field (not a key of their file).
    """

    workspace_config: WorkspaceConfig

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


def moved_keys() -> dict[str, str]:
    """Keys of ``retain.yaml`` -> where they live now, for job and scoring configs that still
    hold them (an error with this hint)."""
    return {key: CONFIG_FILE for key in settings_keys(WorkspaceConfig)}


def _engine(value: str, where: str) -> str:
    if value not in ENGINES:
        raise ConfigError(f"{where}: unknown engine {value!r}; known: {', '.join(ENGINES)}")
    return value


def load_workspace_config(
    workspace: str | Path = ".", path: str | Path | None = None
) -> WorkspaceConfig:
    """Read ``<workspace>/retain.yaml`` (or ``path``); the packaged one when absent.

    Raises
    ------
    ConfigError
        An explicit ``path`` that does not exist, unreadable YAML, an unknown key, a value of
        the wrong type or out of range.
    """
    explicit = path is not None
    path = Path(path) if explicit else Path(workspace) / CONFIG_FILE
    if not path.is_file():
        if explicit:
            raise ConfigError(f"workspace config {path} not found")
        path = PACKAGED / CONFIG_FILE
    config = read_settings(WorkspaceConfig, path)
    _engine(config.engine, f"{path}: 'engine'")
    if config.active_days < 1:
        raise ConfigError(f"{path}: 'active_days' must be at least 1, got {config.active_days}")
    if config.timestamp_window.days_ahead < 0:
        raise ConfigError(
            f"{path}: 'timestamp_window.days_ahead' must be at least 0, got "
            f"{config.timestamp_window.days_ahead}"
        )
    config.costs.check(str(path))
    if not (math.isfinite(config.margin_rate) and 0 <= config.margin_rate <= 1):
        raise ConfigError(
            f"{path}: 'margin_rate' is a share of the amount, from 0 to 1; got "
            f"{config.margin_rate!r}"
        )
    return config


def workspace_settings(
    workspace: str | Path = ".",
    *,
    data: object = None,
    mapping: str | Path | None = None,
    store: str | Path | None = None,
    features: str | Path | None = None,
    engine: str | None = None,
) -> WorkspaceConfig:
    """The workspace's ``retain.yaml`` with what a command was given in place of its keys.

    ``data`` replaces the ``data`` key when it is a folder; tables in memory (a ``Dataset``)
    are the caller's to pass along. Paths are relative to the current folder.
    """
    folder = data if isinstance(data, str | Path) else None
    return load_workspace_config(workspace).override(
        data=folder, mapping=mapping, store=store, features=features, engine=engine
    )


def resolve_path(workspace: str | Path, path: str | Path) -> Path:
    """``path`` relative to the workspace unless absolute."""
    path = Path(path)
    return path if path.is_absolute() else Path(workspace) / path
