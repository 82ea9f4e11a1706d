"""A copied or moved workspace uses its own ``mlruns``.

MLflow's SQLite store records where artifacts live as absolute paths (an experiment's artifact
location, each run's artifact URI, each logged model's and model version's storage location).
A workspace copied elsewhere would therefore read, and write, the original's artifacts; a
moved one would find none. :func:`relocate_store` rewrites those paths when the workspace's
store was written under another folder: every path under ``<old folder>/mlruns/`` becomes the
same path under ``<this folder>/mlruns/``. Paths elsewhere (an artifact store the user chose)
are left alone. It runs before MLflow opens the store, and does nothing when the paths are
already this folder's.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote

__all__ = ["relocate_store"]

STORE_DIR = "mlruns"
#: Columns of MLflow's schema that hold artifact paths.
PATH_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
)
_EXPERIMENT_PREFIX = "retain-"


def relocate_store(workspace: str | Path, database: str | Path) -> int:
    """Point the artifact paths of a workspace's store at its own ``mlruns`` folder.

    Parameters
    ----------
    workspace : path-like
        The workspace (its ``mlruns/`` holds the artifacts).
    database : path-like
        Its ``mlruns/mlflow.db``.

    Returns
    -------
    int
        Paths rewritten (0 when the store was written here, or does not exist yet).
    """
    database = Path(database)
    if not database.is_file():
        return 0
    root = Path(workspace).resolve()
    with closing(sqlite3.connect(database, timeout=60)) as connection, connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if not {"experiments", "runs"} <= tables:
            return 0
        old_roots = _old_roots(connection, root)
        if not old_roots:
            return 0
        connection.execute("BEGIN IMMEDIATE")  # one relocation at a time
        old_roots = _old_roots(connection, root)  # another process may have just done it
        rewrites = []
        for old in old_roots:
            rewrites.append((_uri(old), _uri(root)))
            rewrites.append((f"{old.as_posix()}/{STORE_DIR}/", f"{root.as_posix()}/{STORE_DIR}/"))
        changed = 0
        for table, column in PATH_COLUMNS:
            if table not in tables:
                continue
            for before, after in rewrites:
                cursor = connection.execute(  # table and column names from PATH_COLUMNS
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE substr({column}, 1, ?) = ?",
                    (after, len(before) + 1, len(before), before),
                )
                changed += cursor.rowcount
        return changed


def _uri(folder: Path) -> str:
    return f"{folder.as_uri()}/{STORE_DIR}/"


def _old_roots(connection: sqlite3.Connection, root: Path) -> list[Path]:
    """Folders other than ``root`` under whose ``mlruns/`` retain's experiments keep artifacts."""
    found = set()
    query = "SELECT artifact_location FROM experiments WHERE name LIKE ?"
    for (location,) in connection.execute(query, (f"{_EXPERIMENT_PREFIX}%",)):
        text = str(location or "")
        marker = text.rfind(f"/{STORE_DIR}/")
        if marker < 0:
            continue
        prefix = text[:marker]
        if prefix.startswith("file://"):
            prefix = unquote(prefix[len("file://") :])
        if not prefix.startswith("/"):
            continue  # not a local path: an artifact store the user chose
        folder = Path(prefix)
        if folder != root:
            found.add(folder)
    return sorted(found)
