"""A workspace: the folder holding ``features/``, ``training/``, ``serving/``, data and runs.

Definitions and configs a workspace lacks come from the defaults packaged with retain (the
repository's own ``features/``, ``training/`` and ``serving/`` folders), so every command works
from an empty folder; ``retain init`` copies them in to be edited.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["PACKAGED", "SCAFFOLD", "init_workspace", "locate"]

#: The packaged defaults (links to the repository's folders, copied into wheels).
PACKAGED = Path(__file__).resolve().parent / "defaults"

#: What ``retain init`` writes, relative to the workspace.
SCAFFOLD = (
    "features/customers.py",
    "features/engagement.py",
    "features/purchases.py",
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
