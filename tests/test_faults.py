"""The fault suite: ``retain`` killed (SIGKILL) at several moments, run concurrently, out of disk
space, and fed a tampered model. Previous outputs stay intact, the next run succeeds and
cleans up, errors are clean (exit code 2, no traceback), nothing partial is left.

Each command runs as a real process (``python -m retain``) in a copy of the session's trained
workspace; the kills happen at named failpoints (``RETAIN_FAILPOINT``, see
:mod:`retain.atomic`), so each interrupts exactly the step it names.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

AS_OF = "2026-01-01"
KILLED = -signal.SIGKILL


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def original(trained_models, trained_workspace) -> tuple[Path, dict[str, int]]:
    """The session's trained workspace and its ``mlruns`` as they were before this module."""
    return trained_workspace, _listing(trained_workspace / "mlruns")


@pytest.fixture(scope="module")
def workspace(original, tmp_path_factory) -> Path:
    """A copy of the trained workspace (data, store, mlruns): its store is relocated on use."""
    folder = tmp_path_factory.mktemp("faults") / "workspace"
    shutil.copytree(original[0], folder, symlinks=True)
    return folder


@pytest.fixture(scope="module")
def retain(mlflow_isolation):
    """``retain(workspace, *arguments)`` runs ``python -m retain`` in ``workspace`` (MLflow
    pointed at the workspace's own store)."""

    def run(workspace: Path, *arguments: str, failpoint: str | None = None, wait: bool = True):
        env = mlflow_isolation.environment()
        env.pop("RETAIN_FAILPOINT", None)
        if failpoint is not None:
            env["RETAIN_FAILPOINT"] = failpoint
        command = [sys.executable, "-m", "retain", *arguments]
        process = subprocess.Popen(command, cwd=workspace, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        if not wait:
            return process
        output, _ = process.communicate(timeout=600)
        return process.returncode, output

    return run


def _clean_exit(code: int, output: str, *expected: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output
    for text in expected:
        assert text in output, output


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _list_is_complete(folder: Path) -> pd.DataFrame:
    frame = pd.read_parquet(folder / "retention_priority.parquet")
    csv = pd.read_csv(folder / "retention_priority.csv", dtype={"customer_id": str})
    summary = json.loads((folder / "summary.json").read_text())
    assert len(frame) == len(csv) == summary["counts"]["scored"] > 0
    return frame


# --------------------------------------------------------------------------- features build


def test_features_build_killed_mid_write_leaves_no_partial_store(workspace, retain):
    store = workspace / "store-faults"
    build = [
        "features",
        "build",
        "--data",
        "data/simulated",
        "--as-of",
        "2025-08-01",
        "--as-of",
        "2025-09-01",
        "--store",
        str(store),
    ]  # fmt: skip (two: sources staged)
    for failpoint in ("atomic_dir:complete", "atomic_file:complete"):
        code, output = retain(workspace, *build, failpoint=failpoint)
        assert code == KILLED, output
    assert not list(store.rglob("*.parquet"))  # no snapshot, not even a partial one
    code, output = retain(workspace, *build)
    assert code == 0, output
    assert len(list(store.rglob("snapshots/**/*.parquet"))) == 2
    assert (store / "sources").is_dir()
    leftovers = [p for p in store.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers


# --------------------------------------------------------------------------- train


def _registry(workspace: Path) -> tuple[int, str | None]:
    """Versions of retain-segments and the version its champion alias names (read with sqlite)."""
    with sqlite3.connect(workspace / "mlruns" / "mlflow.db") as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM model_versions WHERE name = 'retain-segments'"
        ).fetchone()
        champion = connection.execute(
            "SELECT version FROM registered_model_aliases "
            "WHERE name = 'retain-segments' AND alias = 'champion'"
        ).fetchone()
    return count, None if champion is None else str(champion[0])


def test_train_killed_then_concurrent_runs_share_one_registry(workspace, retain):
    versions, champion = _registry(workspace)
    assert champion is not None
    code, output = retain(workspace, "train", "segments", failpoint="modelfiles:hashed")
    assert code == KILLED, output  # the model was logged and hashed, not registered
    assert _registry(workspace) == (versions, champion)
    runs = [retain(workspace, "train", "segments", wait=False) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    after, champion_after = _registry(workspace)
    assert after == versions + 2 and champion_after is not None
    code, output = retain(workspace, "models", "list", "segments")
    assert code == 0 and "champion" in output, output


# --------------------------------------------------------------------------- score


def test_score_killed_at_each_step_keeps_a_readable_list(workspace, retain):
    out = workspace / "serving" / "output" / "faults"
    code, output = retain(workspace, "score", "--as-of", AS_OF, "--out", str(out))
    assert code == 0, output
    first = _list_is_complete(out)
    for failpoint in ("score:parquet-written", "atomic_dir:exchanged"):
        code, output = retain(workspace, "score", "--as-of", AS_OF, "--out", str(out),
                              "--capacity", "10", failpoint=failpoint)  # fmt: skip
        assert code == KILLED, output
        listed = _list_is_complete(out)  # the previous list, or (after the swap) the new one
        assert int(listed["selected"].sum()) in (int(first["selected"].sum()), 10)
        assert _debris(out.parent), "the kill leaves its temporary folder behind"
    # two runs at once into the same folder: both finish, one complete list, no debris
    runs = [retain(workspace, "score", "--as-of", AS_OF, "--out", str(out), "--capacity", "25",
                   wait=False) for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert int(_list_is_complete(out)["selected"].sum()) == 25
    assert _debris(out.parent) == []
    from retain.reports.html import load_list

    assert len(load_list(out)[0]) == len(_list_is_complete(out))  # what the report reads


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only; skipped where it cannot be mounted), unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clean_error_and_leaves_nothing(workspace, retain, small_disk):
    code, output = retain(workspace, "score", "--as-of", AS_OF, "--out", str(small_disk / "list"))
    _clean_exit(code, output, "the disk is full", str(small_disk / "list"))
    assert list(small_disk.iterdir()) == []
    store = small_disk / "store"
    code, output = retain(workspace, "features", "build", "--data", "data/simulated",
                          "--as-of", "2025-08-01", "--as-of", "2025-09-01",
                          "--store", str(store))  # fmt: skip
    _clean_exit(code, output, "disk")
    assert not list(store.rglob("*.parquet")) and not list(store.rglob("*.tmp*"))


def test_a_read_only_store_is_a_clean_error(workspace, retain, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    store = str(small_disk / "store")
    code, output = retain(workspace, "features", "build", "--data", "data/simulated",
                          "--as-of", "2025-09-01", "--store", store)  # fmt: skip
    _clean_exit(code, output, "read-only", store)


# --------------------------------------------------------------------------- tampering


class _Payload:
    def __init__(self, sentinel: str):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def test_a_tampered_model_file_is_refused_and_never_run(workspace, retain, tmp_path):
    out = workspace / "serving" / "output" / "faults"
    before = _listing(out)
    sentinel = tmp_path / "pwned"
    for path in (workspace / "mlruns").rglob("model.pkl"):
        path.write_bytes(pickle.dumps(_Payload(str(sentinel))))
    code, output = retain(workspace, "score", "--as-of", AS_OF, "--out", str(out))
    _clean_exit(code, output, "files differ from those registered", "changed: model.pkl")
    assert not sentinel.exists()
    assert _listing(out) == before


def test_the_original_workspace_was_never_touched(original):
    folder, listing = original
    assert _listing(folder / "mlruns") == listing
