"""The feature store and sources a workspace config names: what training and scoring open.

Both take a config with ``data``, ``mapping``, ``store`` and ``features`` (a job or scoring config
in a workspace, see :mod:`retain.workspace`); paths are relative to the workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retain.errors import RetainError
from retain.features.inputs import SourceData, resolve_data
from retain.features.store import FeatureStore
from retain.workspace import load_workspace_config, locate, resolve_path

__all__ = ["open_sources", "open_store"]


def open_store(config: Any, workspace: str | Path = ".") -> FeatureStore:
    """The feature store and repository a config (any with ``store`` and ``features``) names.

    The packaged default repository serves when the workspace has none.
    """
    return FeatureStore(resolve_path(workspace, config.store), locate(workspace, config.features))


def open_sources(config: Any, data: object = None, workspace: str | Path = ".") -> SourceData:
    """Validated sources: ``data`` if given (folder, Dataset or tables), else the config's.

    The costs and the margin rate of the workspace's ``retain.yaml`` are charged (see
    :meth:`~retain.features.SourceData.charge`). A folder's tables are read and checked when
    first needed (see :class:`~retain.features.SourceData`); ``FeatureStore.sources`` adds
    what a store recorded about the same files.
    """
    if data is None:
        data = resolve_path(workspace, config.data)
    if isinstance(data, str | Path) and not Path(data).exists():
        raise RetainError(
            f"data folder {data} not found; pass --data DIR (or run `retain simulate` first)"
        )
    mapping = resolve_path(workspace, config.mapping) if config.mapping else None
    settings = load_workspace_config(workspace)
    # the configured costs are charged in the cost events (a feature source), the margin rate
    # read by the profit events: part of the fingerprint, so snapshots are made again when
    # they change
    sources = resolve_data(data, mapping, settings.timestamp_window)
    return sources.charge(settings.costs.rates(), settings.margin_rate)
