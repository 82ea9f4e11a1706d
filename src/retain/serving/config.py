"""``serving/score.yaml`` (which models, how many to contact) and ``serving/playbook.yaml``.

Both are read strictly: an unknown key or a wrong type is a :class:`~retain.errors.ConfigError`
naming the file and the key. Where the data, store and definitions are, and the population
(``active_days``), come from the workspace config ``retain.yaml``; a ``score.yaml`` that still
names one of them is an error saying it moved there. A workspace without ``score.yaml`` or a
playbook uses the packaged ones, whose values the dataclass defaults equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from retain.errors import ConfigError, quote, shorten
from retain.serving.contract import REASON_COLUMNS
from retain.settings import read_settings
from retain.workspace import InWorkspace, WorkspaceConfig, load_workspace_config, locate, moved_keys

__all__ = ["Action", "DriftSettings", "Playbook", "Rule", "ScoreConfig", "check_score_config",
           "load_playbook", "load_score_config"]  # fmt: skip


@dataclass(frozen=True)
class DriftSettings:
    """Population stability (PSI) of each feature against the churn model's validation data."""

    threshold: float = 0.2
    strict: bool = False


@dataclass(frozen=True)
class ScoreConfig(InWorkspace):
    """Settings of ``retain score``.

    ``models`` maps a family to the alias (``champion``) or version number to load. ``capacity``
    (customers) and ``budget`` (total action cost) bound the selection; ``None`` is no bound.
    ``csv_max_rows`` bounds the CSV copy of the list on the Spark engine, which collects it on
    the driver (``None``: always write it); the DuckDB engine always writes it.
    ``control_share`` of the selected customers of each action is held out as a control
    group (in [0, 1); see :mod:`retain.serving.experiment`). ``uplift`` is the alias or
    version of the ``retain-uplift`` model whose effects give the expected gains when it is
    registered (``None``: always the playbook's save rates).
    ``workspace_config`` is the workspace config scoring runs in (not a key of the file); its
    ``active_days``, ``data``, ``mapping``, ``store`` and ``features`` are also attributes.
    """

    models: dict[str, str] = field(
        default_factory=lambda: {"churn": "champion", "clv": "champion", "segments": "champion"}
    )
    capacity: int | None = 1000
    budget: float | None = None
    control_share: float = 0.10
    uplift: str | None = "champion"
    playbook: str = "serving/playbook.yaml"
    drift: DriftSettings = field(default_factory=DriftSettings)
    reasons: int = 3
    exact_reasons_max_rows: int = 50_000
    output: str = "serving/output"
    csv_max_rows: int | None = 1_000_000
    pseudonymize: bool = False
    pseudonym_key_env: str = "RETAIN_PSEUDONYM_KEY"
    source: str = "defaults"
    workspace_config: WorkspaceConfig = field(default_factory=WorkspaceConfig)


@dataclass(frozen=True)
class Action:
    """A retention action: what it costs per customer and the share of the value at risk it
    is expected to save (``save_rate``: the prior, until an uplift model measures it)."""

    cost: float
    save_rate: float
    description: str = ""


@dataclass(frozen=True)
class Rule:
    """``when`` every listed condition matches (any of its values), ``action`` is open to the
    customer.

    Conditions: ``value_tier``, ``segment``, ``loyalty_class``, ``lifecycle_stage`` (values of
    those columns) and ``top_reason`` (feature names behind the first reason) in ``when``;
    ``influence_value`` (a number of the list) in ``ranges``, as ``{min: 50, max: 500}``
    (both bounds included, either may be left out).
    """

    action: str
    when: dict[str, list[str]] = field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    """Actions and the rules that open them to customers: the default action is open to
    everyone, each rule's action to the customers meeting all its conditions; the open action
    with the highest expected net gain is recommended (:mod:`retain.serving.gains`)."""

    actions: dict[str, Action]
    rules: tuple[Rule, ...] = ()
    default: str = ""
    source: str = ""


CONDITIONS = ("value_tier", "segment", "loyalty_class", "lifecycle_stage", "top_reason")
#: Conditions on numbers of the list, met by a value within ``{min: .., max: ..}``.
NUMERIC_CONDITIONS = ("influence_value",)
FAMILIES = ("churn", "clv", "segments")
#: The scoring config, relative to the workspace.
SCORE_CONFIG = "serving/score.yaml"


def load_score_config(
    path: str | Path | None = None,
    *,
    workspace: str | Path = ".",
    workspace_config: WorkspaceConfig | None = None,
) -> ScoreConfig:
    """``serving/score.yaml`` of the workspace (or ``path``); the packaged one when absent.

    Parameters
    ----------
    path : str or Path, optional
        Scoring config; default ``<workspace>/serving/score.yaml``, else the packaged one.
    workspace : str or Path, default="."
        Folder holding ``serving/`` and ``retain.yaml``.
    workspace_config : WorkspaceConfig, optional
        The workspace config to run in (with command-line overrides); default the
        workspace's ``retain.yaml``.

    Raises
    ------
    ConfigError
        A missing explicit ``path``, unreadable YAML, an unknown key, a key that moved to
        ``retain.yaml``, a value of the wrong type, or ``models`` naming another family.
    """
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} not found")
    path = Path(path) if path is not None else locate(workspace, SCORE_CONFIG)
    if workspace_config is None:
        workspace_config = load_workspace_config(workspace)
    config = read_settings(
        ScoreConfig, path, moved=moved_keys(), context={"workspace_config": workspace_config}
    )
    unknown = sorted(set(config.models) - set(FAMILIES))
    if unknown:
        raise ConfigError(
            f"{path}: 'models' takes churn, clv and segments (an alias such as champion or a "
            f"version number each); unknown: {quote(unknown)}"
        )
    check_score_config(config)
    return config


def check_score_config(config: ScoreConfig, *, options: bool = False) -> None:
    """Check the ranges of the scoring settings, before any model or data is read.

    ``capacity >= 0``, a finite ``budget >= 0``, ``0 <= control_share < 1``,
    ``active_days >= 1``, a finite drift threshold ``>= 0``, ``reasons`` from 1 to 3, row
    limits ``>= 0``. With ``options``, the selection bounds and the control share are named
    as the command-line options that override them.

    Raises
    ------
    ConfigError
        Naming the file (or option), the key, the value and the range.
    """

    def name(key: str) -> str:
        if options and key in ("capacity", "budget", "control_share"):
            return f"--{key.replace('_', '-')}"
        return f"{config.source}: '{key}'"

    def refuse(key: str, rule: str, value: object) -> None:
        raise ConfigError(f"{name(key)} must be {rule}, got {quote(value)}")

    if config.capacity is not None and config.capacity < 0:
        refuse("capacity", "at least 0 (or null for no bound)", config.capacity)
    if config.budget is not None and not (math.isfinite(config.budget) and config.budget >= 0):
        refuse("budget", "a finite amount of at least 0 (or null for no bound)", config.budget)
    share = config.control_share
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
        refuse("control_share", "a share in [0, 1) (0: no control group)", share)
    if config.active_days < 1:
        refuse("active_days", "at least 1", config.active_days)
    if not (math.isfinite(config.drift.threshold) and config.drift.threshold >= 0):
        refuse("drift.threshold", "a finite number of at least 0", config.drift.threshold)
    if not 1 <= config.reasons <= len(REASON_COLUMNS):
        refuse("reasons", f"from 1 to {len(REASON_COLUMNS)}", config.reasons)
    if config.exact_reasons_max_rows < 0:
        refuse("exact_reasons_max_rows", "at least 0", config.exact_reasons_max_rows)
    if config.csv_max_rows is not None and config.csv_max_rows < 0:
        refuse("csv_max_rows", "at least 0 (or null for always)", config.csv_max_rows)


def load_playbook(path: str | Path) -> Playbook:
    """Read and check a playbook: every rule and the default name a defined action."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"playbook {path} not found (see serving/playbook.yaml in the repository)"
        )
    raw = read_settings(_RawPlaybook, path)
    actions = {name: _action(name, spec, path) for name, spec in raw.actions.items()}
    rules = tuple(_rule(index, spec, actions, path) for index, spec in enumerate(raw.rules))
    if raw.default not in actions:
        raise ConfigError(
            f"{path}: default action {quote(raw.default)} is not among {sorted(actions)}"
        )
    return Playbook(actions, rules, raw.default, str(path))


@dataclass(frozen=True)
class _RawPlaybook:
    actions: dict[str, dict]
    rules: tuple[dict, ...] = ()
    default: str = ""


def _action(name: str, spec: object, path: Path) -> Action:
    where = f"{path}: action {quote(name)}"
    try:
        action = read_settings_from(Action, spec)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {shorten(error, 200)}") from None
    for key in ("cost", "save_rate"):
        value = getattr(action, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: '{key}' must be a number, got {quote(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: '{key}' must be a finite number, got {value}")
    if not isinstance(action.description, str):
        raise ConfigError(f"{where}: 'description' must be text, got {quote(action.description)}")
    if not (0 <= action.save_rate <= 1) or action.cost < 0:
        raise ConfigError(f"{where} needs cost >= 0 and 0 <= save_rate <= 1")
    return Action(float(action.cost), float(action.save_rate), action.description)


def read_settings_from(cls: type, spec: object):
    """Build a small dataclass from a mapping, refusing unknown or missing keys."""
    if not isinstance(spec, dict):
        raise TypeError(f"expected a mapping, got {quote(spec)}")
    return cls(**{str(key): value for key, value in spec.items()})


def _rule(index: int, spec: dict, actions: dict[str, Action], path: Path) -> Rule:
    where = f"{path}: rule {index + 1}"
    if not isinstance(spec, dict) or set(spec) - {"when", "action"} or "action" not in spec:
        raise ConfigError(f"{where}: expected keys 'when' and 'action', got {quote(spec)}")
    if not isinstance(spec["action"], str) or spec["action"] not in actions:
        raise ConfigError(f"{where}: action {quote(spec['action'])} is not among {sorted(actions)}")
    when = spec.get("when") or {}
    if not isinstance(when, dict):
        raise ConfigError(
            f"{where}: 'when' must be a mapping of conditions such as "
            f"{{value_tier: [high]}}, got {quote(when)}"
        )
    known = (*CONDITIONS, *NUMERIC_CONDITIONS)
    unknown = sorted(str(key) for key in set(when) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown condition {quote(unknown)}; known: {', '.join(known)}")
    values, ranges = {}, {}
    for key, value in when.items():
        if key in NUMERIC_CONDITIONS:
            ranges[key] = _range(f"{where}: condition '{key}'", value)
            continue
        listed = value if isinstance(value, list) else [value]
        if any(isinstance(item, dict | list) for item in listed):
            raise ConfigError(
                f"{where}: condition '{key}' takes a value or a list of values, got {quote(value)}"
            )
        values[key] = [str(item) for item in listed]
    return Rule(spec["action"], values, ranges)


def _range(where: str, spec: object) -> tuple[float | None, float | None]:
    """``(min, max)`` of a numeric condition ``{min: .., max: ..}`` (a bound left out: None)."""

    def bound(name: str) -> float | None:
        value = spec.get(name)  # type: ignore[union-attr]
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ConfigError(f"{where}: '{name}' must be a number, got {quote(value)}")
        return float(value)

    if not isinstance(spec, dict) or not spec or set(spec) - {"min", "max"}:
        raise ConfigError(
            f"{where} takes a range such as {{min: 50}} or {{min: 0, max: 500}}, got {quote(spec)}"
        )
    low, high = bound("min"), bound("max")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{where}: min {low:g} is above max {high:g}")
    return low, high
