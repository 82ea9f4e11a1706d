"""Atomic writes: a failure mid-write leaves the previous output intact and no temp debris."""

from __future__ import annotations

import pytest

from retain.atomic import atomic_dir, atomic_file


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


def test_atomic_dir_swaps_whole_folder(tmp_path):
    target = tmp_path / "2025-10-01"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as folder:
        (folder / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["2025-10-01"]


def test_atomic_dir_keeps_previous_on_failure(tmp_path):
    target = tmp_path / "2025-10-01"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as folder:
        (folder / "new.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert (target / "old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["2025-10-01"]
