"""The main job end to end: the quickstart command from an empty folder (the notebook:
test_notebook.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retain.cli import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def empty_folder(tmp_path, monkeypatch, mlflow_isolation):
    monkeypatch.chdir(tmp_path)
    with mlflow_isolation():
        yield tmp_path


def test_quickstart_runs_from_an_empty_folder(empty_folder):
    result = CliRunner().invoke(app, ["quickstart", "--customers", "2000", "--seed", "3"])
    assert result.exit_code == 0, result.output
    lists = list((empty_folder / "serving" / "output").iterdir())
    assert [folder.name for folder in lists] == ["2026-01-01"]
    frame = pd.read_parquet(lists[0] / "retention_priority.parquet")
    assert frame["rank"].tolist()[:10] == list(range(1, 11))
    assert (lists[0] / "report.html").stat().st_size > 10_000
    assert "top 10 of" in result.output and "report" in result.output


def test_quickstart_with_campaigns_ranks_by_the_uplift_model_when_it_passes_its_gate(
    empty_folder,
):
    """``--campaigns`` simulates randomised campaigns and trains the uplift job: the list's
    gains come from the model exactly when the job made it champion, else from the prior, and
    the output says which."""
    import json

    result = CliRunner().invoke(
        app, ["quickstart", "--customers", "2000", "--seed", "3", "--campaigns"]
    )
    assert result.exit_code == 0, result.output
    assert (empty_folder / "data" / "simulated" / "campaigns.parquet").is_file()
    [folder] = (empty_folder / "serving" / "output").iterdir()
    gains = json.loads((folder / "summary.json").read_text())["gains"]
    promoted = "retain-uplift v1 (champion)" in result.output
    assert promoted or "retain-uplift v1 (challenger)" in result.output
    assert gains["measured"] is promoted
    assert gains["source"] == ("uplift model retain-uplift v1" if promoted else "playbook prior")
    assert f"ranked by {gains['source']}" in " ".join(result.output.split())


def test_init_scaffolds_the_defaults_without_overwriting(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for relative in ("features/purchases.py", "features/reasons.yaml", "training/churn.yaml",
                     "serving/playbook.yaml"):  # fmt: skip
        assert (tmp_path / relative).read_text() == (ROOT / relative).read_text()
    (tmp_path / "training" / "churn.yaml").write_text("seed: 5\n")
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 0 and "already has every default file" in " ".join(
        again.output.split()
    )
    assert (tmp_path / "training" / "churn.yaml").read_text() == "seed: 5\n"
