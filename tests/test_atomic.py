"""Atomic writes: a failure or a kill mid-write leaves the previous output intact, debris is
cleaned by the next run, and nothing retain did not write is ever replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from retain.atomic import (
    MARKER,
    atomic_dir,
    atomic_file,
    check_output_dir,
    check_output_file,
    claim,
)
from retain.errors import OutputError


def _write_list(target, text, kind="list"):
    with atomic_dir(target, kind=kind) as folder:
        (folder / "list.csv").write_text(text)


def test_atomic_file_replaces_on_success(tmp_path):
    target = tmp_path / "out" / "list.csv"
    with atomic_file(target) as temporary:
        temporary.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["list.csv"]


def test_atomic_file_keeps_previous_on_failure(tmp_path):
    target = tmp_path / "list.csv"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_file(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv"]


def test_atomic_dir_replaces_a_folder_it_wrote(tmp_path):
    target = tmp_path / "2025-10-01"
    _write_list(target, "old")
    marker = json.loads((target / MARKER).read_text())
    assert marker == {"kind": "list", "written_by": "retain", "files": ["list.csv"]}
    _write_list(target, "new")
    assert (target / "list.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2025-10-01"]


def test_atomic_dir_keeps_previous_on_failure(tmp_path):
    target = tmp_path / "2025-10-01"
    _write_list(target, "old")
    with pytest.raises(RuntimeError), atomic_dir(target, kind="list") as folder:
        (folder / "list.csv").write_text("half")
        raise RuntimeError("interrupted")
    assert (target / "list.csv").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["2025-10-01"]


def test_empty_and_legacy_folders_may_be_replaced(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _write_list(empty, "new")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "summary.json").write_text("{}")
    with atomic_dir(legacy, kind="list", legacy_files=("summary.json",)) as folder:
        (folder / "summary.json").write_text('{"new": 1}')
    assert json.loads((legacy / "summary.json").read_text()) == {"new": 1}


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda t: t.write_text("precious"), "is a file"),
        (lambda t: (t.mkdir(), (t / "notes.txt").write_text("precious")), "notes.txt"),
        (lambda t: _write_list(t, "x", kind="backtest"), "holds a retain backtest"),
        (
            lambda t: (_write_list(t, "x"), (t / "mine.xlsx").write_text("precious")),
            "mine.xlsx",
        ),
    ],
    ids=["file", "foreign-folder", "other-kind", "list-with-a-foreign-file"],
)
def test_atomic_dir_refuses_what_it_did_not_write(tmp_path, prepare, message):
    target = tmp_path / "out"
    prepare(target)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(OutputError, match=message):
        _write_list(target, "new")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing touched


def test_atomic_dir_refuses_the_working_folder_and_its_parents(tmp_path, monkeypatch):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.chdir(workspace)
    for target in (workspace, tmp_path):
        with pytest.raises(OutputError, match="working folder"):
            check_output_dir(target, "list")


def test_atomic_dir_refuses_a_symlink(tmp_path):
    real = tmp_path / "real"
    _write_list(real, "x")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OutputError, match="symbolic link"):
        _write_list(tmp_path / "link", "new")


def test_claimed_files_belong_to_the_folder(tmp_path):
    target = tmp_path / "list"
    _write_list(target, "x")
    report = target / "report.html"
    report.write_text("<html>")
    claim(report)
    assert check_output_file(report, "HTML report") == report
    _write_list(target, "y")  # the claimed report goes with the folder
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "list.csv"]


def test_check_output_file_refuses_folders_and_foreign_files(tmp_path):
    (tmp_path / "notes.html").write_text("mine")
    with pytest.raises(OutputError, match="not a HTML report retain wrote"):
        check_output_file(tmp_path / "notes.html", "HTML report")
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, "HTML report")
    assert check_output_file(tmp_path / "notes.html", "HTML report", lambda p: True)


SCRIPT = """
import sys
from pathlib import Path
import retain.atomic as atomic
if sys.argv[2] == "two-renames":
    atomic._exchange = lambda first, second: False  # as on a file system without renameat2
with atomic.atomic_dir(Path(sys.argv[1]), kind="list") as folder:
    (folder / "list.csv").write_text("new")
"""


@pytest.mark.parametrize(
    ("failpoint", "swap"),
    [
        ("atomic_dir:complete", "exchange"),
        ("atomic_dir:exchanged", "exchange"),
        ("atomic_dir:set-aside", "two-renames"),
    ],
)
def test_kill_at_any_step_keeps_a_list_and_the_next_run_cleans_up(tmp_path, failpoint, swap):
    target = tmp_path / "2025-10-01"
    _write_list(target, "old")
    env = {**os.environ, "RETAIN_FAILPOINT": failpoint}
    killed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target), swap], env=env, check=False, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    debris = [p.name for p in tmp_path.iterdir() if p.name != target.name]
    assert debris, "the kill should leave a temporary folder behind"
    if failpoint == "atomic_dir:set-aside":
        assert not target.exists()  # between the two renames: the old list is set aside
    else:
        assert (target / "list.csv").read_text() in ("old", "new")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(target), swap], check=False)
    assert done.returncode == 0
    assert (target / "list.csv").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_set_aside_folder_is_put_back_when_the_target_is_missing(tmp_path):
    target = tmp_path / "2025-10-01"
    _write_list(target, "old")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    retired = tmp_path / f".2025-10-01.old-{int(dead.stdout)}"  # left by an older retain
    target.rename(retired)
    with pytest.raises(RuntimeError), atomic_dir(target, kind="list"):
        raise RuntimeError("this run fails, but the previous list is back")
    assert (target / "list.csv").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_concurrent_writers_each_leave_a_complete_folder(tmp_path):
    target = tmp_path / "list"
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from retain.atomic import atomic_dir
        with atomic_dir(Path(sys.argv[1]), kind="list") as folder:
            for part in range(20):
                (folder / f"part-{part}.txt").write_text(sys.argv[2])
                time.sleep(0.005)
    """)
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(target), str(writer)])
        for writer in range(4)
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0, 0]
    texts = {path.read_text() for path in target.glob("part-*.txt")}
    assert len(texts) == 1 and len(list(target.glob("part-*.txt"))) == 20  # one run's, whole
    assert [p.name for p in tmp_path.iterdir()] == ["list"]
