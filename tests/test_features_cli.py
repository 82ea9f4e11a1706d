"""``retain features build`` and ``retain features list`` end to end on the small world."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from retain.cli import app
from test_features_values import REPO

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("cli") / "store"


def invoke(*args: str):
    return runner.invoke(app, [str(arg) for arg in args])


def build(world_dir, store, *cutoffs: str):
    as_of = [item for cutoff in cutoffs for item in ("--as-of", cutoff)]
    return invoke(
        "features", "build", "--data", world_dir, *as_of, "--store", store, "--repo", REPO
    )


def test_build_then_skip_then_list(world_dir, store):
    first = build(world_dir, store, "2024-07-01", "2025-01-01")
    assert first.exit_code == 0, first.output
    assert first.output.count("built") == 2
    assert len(list(store.glob("snapshots/as_of=*/*.parquet"))) == 2
    again = build(world_dir, store, "2025-01-01")
    assert again.exit_code == 0, again.output
    assert "skipped" in again.output and "built" not in again.output
    listed = invoke("features", "list", "--store", store, "--repo", REPO)
    assert listed.exit_code == 0, listed.output
    for text in ("purchases", "engagement", "customer_profile", "2024-07-01", "2025-01-01"):
        assert text in listed.output
    assert "current" in listed.output


def test_a_cutoff_before_the_data_exits_2_and_writes_nothing(world_dir, tmp_path):
    store = tmp_path / "store"
    result = build(world_dir, store, "2025-01-01", "2020-01-01")
    assert result.exit_code == 2
    assert "error:" in result.output and "before the first event" in result.output
    assert "Traceback" not in result.output
    assert not list(store.rglob("*.parquet")) and not list(store.rglob("*.json"))


def test_a_malformed_date_exits_2(world_dir, tmp_path):
    result = build(world_dir, tmp_path / "store", "2025-13-01")
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_a_bad_repository_exits_2(world_dir, tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "bad.py").write_text(
        "from retain.features import Entity, FeatureView, Recency, col\n"
        "v = FeatureView('bad', Entity('customer'), 'transactions',"
        " [Recency('r', where=col('amt') > 0)])\n"
    )
    result = invoke("features", "list", "--repo", tmp_path / "repo", "--store", tmp_path / "s")
    assert result.exit_code == 2
    assert "view 'bad', feature 'r': unknown column 'amt'" in result.output


def test_a_folder_without_definitions_lists_the_packaged_repository(tmp_path, monkeypatch):
    """Like every other command, ``features`` falls back to the packaged definitions."""
    monkeypatch.chdir(tmp_path)
    listed = invoke("features", "list", "--store", tmp_path / "store")
    assert listed.exit_code == 0, listed.output
    assert "purchases" in listed.output and "customer_profile" in listed.output
