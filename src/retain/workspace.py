"""A workspace: the folder holding ``features/``, ``training/``, ``serving/``, data and runs.

Definitions and configs a workspace lacks come from the defaults packaged with retain (the
repository's own ``features/``, ``training/`` and ``serving/`` folders), so every command works
from an empty folder; ``retain init`` copies them in to be edited.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from retain.errors import ConfigError
from retain.settings import read_settings

__all__ = [
    "CONFIG_FILE",
    "ENGINES",
    "PACKAGED",
    "SCAFFOLD",
    "WorkspaceConfig",
    "init_workspace",
    "load_workspace_config",
    "locate",
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
    "features/customers.py",
    "features/engagement.py",
    "features/purchases.py",
    "features/reasons.yaml",
    "training/churn.yaml",
    "training/clv.yaml",
    "training/segments.yaml",
    "serving/score.yaml",
    "serving/playbook.yaml",
    "spark.yaml",
)


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
class WorkspaceConfig:
    """``retain.yaml``: where a workspace's data, mapping, store and definitions are.

    Every command reads it; command-line options override single keys. Paths are relative to
    the workspace unless absolute (see :meth:`path`).

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
        Seed of every random choice.
    active_days : int, default=365
        Population: customers with a purchase in the ``active_days`` before a cutoff.
    currency : str, default="USD"
        Currency of every amount, shown with money in lists and reports.
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
    source: str = "defaults"

    def path(self, workspace: str | Path, value: str | Path) -> Path:
        """``value`` relative to ``workspace`` unless absolute."""
        value = Path(value)
        return value if value.is_absolute() else Path(workspace) / value


def load_workspace_config(
    workspace: str | Path = ".", path: str | Path | None = None
) -> WorkspaceConfig:
    """Read ``<workspace>/retain.yaml`` (or ``path``); the packaged defaults when absent.

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
    if config.engine not in ENGINES:
        raise ConfigError(
            f"{path}: 'engine' must be one of {', '.join(ENGINES)}, got {config.engine!r}"
        )
    if config.active_days < 1:
        raise ConfigError(f"{path}: 'active_days' must be at least 1, got {config.active_days}")
    return config
