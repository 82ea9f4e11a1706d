"""Command-line conventions: results on stdout, progress and warnings on stderr, ``--version``,
tables that fit 80 columns, the same data options on every stage, ``--as-of`` defaulting to the
day after the last event, and errors naming flags as typed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from retain import __version__, cli
from retain.cli import app
from retain.progress import console, results

runner = CliRunner()
#: Stages that read data: each takes --data, --mapping and --workspace, meaning the same.
DATA_STAGES = (
    ("validate",),
    ("features", "build"),
    ("train",),
    ("tune",),
    ("score",),
    ("backtest",),
)
#: Stages that work in a workspace without reading data.
WORKSPACE_STAGES = (
    ("features", "list"),
    ("models", "list"),
    ("models", "promote"),
    ("quickstart",),
)


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    """Both consoles as wide as an 80-column terminal (``COLUMNS=80``); no --debug."""
    monkeypatch.setitem(cli._state, "debug", False)
    for each in (console, results):
        monkeypatch.setattr(each, "_width", 80)


def options(*names: str) -> dict:
    """``--flag`` -> its option, of the command ``retain NAMES...``."""
    found = typer.main.get_command(app)
    for name in names:
        found = found.commands[name]
    return {flag: item for item in found.params for flag in item.opts if flag.startswith("--")}


def fits(text: str, width: int = 80) -> None:
    """Every line within ``width`` columns, and nothing cut short with an ellipsis."""
    lines = text.splitlines()
    assert lines, "no output"
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, too_long
    assert "…" not in text, text


def test_version_goes_to_stdout():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"retain {__version__}"
    piped = subprocess.run(
        [sys.executable, "-m", "retain", "--version"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert piped.returncode == 0 and piped.stdout.strip() == f"retain {__version__}"


@pytest.mark.parametrize("names", DATA_STAGES, ids=" ".join)
def test_every_data_stage_takes_data_mapping_and_workspace_alike(names):
    found = options(*names)
    assert {"--data", "--mapping", "--workspace"} <= set(found), sorted(found)
    for flag, key in (("--data", "`data`"), ("--mapping", "`mapping`")):
        assert found[flag].default is None  # so retain.yaml decides
        assert key in found[flag].help and "retain.yaml" in found[flag].help
    assert str(found["--workspace"].default) == "."
    if "--as-of" in found:
        assert not found["--as-of"].required
        assert "day after the last event" in found["--as-of"].help


@pytest.mark.parametrize("names", WORKSPACE_STAGES, ids=" ".join)
def test_every_workspace_stage_takes_workspace(names):
    assert str(options(*names)["--workspace"].default) == "."


def test_engine_defaults_to_the_workspace_config_everywhere():
    for names in (("features", "build"), ("train",), ("score",)):
        engine = options(*names)["--engine"]
        assert engine.default is None and "retain.yaml" in engine.help


def test_validate_results_on_stdout_warnings_on_stderr(tmp_path):
    (tmp_path / "transactions.csv").write_text(
        "customer_id,timestamp,amount\nC1,2024-03-01,10\nC1,2024-03-01,10\nC2,2024-03-02,5\n"
    )
    result = runner.invoke(app, ["validate", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "warning:" not in result.stdout
    assert "fingerprint" in result.stdout and "fingerprint" not in result.stderr
    fits(result.stdout)


def test_features_build_defaults_to_the_day_after_the_last_event(world, world_dir, tmp_path):
    result = runner.invoke(
        app, ["features", "build", "--data", str(world_dir), "--store", str(tmp_path / "store")]
    )
    assert result.exit_code == 0, result.output
    last = world.transactions["timestamp"].max()
    cutoff = (last.normalize() + pd.Timedelta(days=1)).date()
    assert f"as of {cutoff}: the day after the last event" in result.stderr
    assert str(cutoff) in result.stdout and "built" in result.stdout
    fits(result.stdout)
    listed = runner.invoke(app, ["features", "list", "--store", str(tmp_path / "store")])
    assert listed.exit_code == 0, listed.output
    assert "customer_profile" in listed.stdout and str(cutoff) in listed.stdout
    fits(listed.stdout)


def test_models_list_can_be_piped_to_grep(trained_models, trained_workspace):
    result = runner.invoke(app, ["models", "list", "--workspace", str(trained_workspace)])
    assert result.exit_code == 0, result.output
    churn = [line for line in result.stdout.splitlines() if line.startswith("churn ")]
    assert churn and all("roc_auc" in line for line in churn)  # a row per version, on its line
    assert "champion" in result.stdout and not result.stderr
    fits(result.stdout)
    reasons = runner.invoke(
        app, ["models", "list", "churn", "--reasons", "--workspace", str(trained_workspace)]
    )
    assert reasons.exit_code == 0 and "retain-churn v1:" in reasons.stdout


def test_score_without_as_of_scores_the_day_after_the_last_event(
    trained_models, trained_workspace, tmp_path
):
    out = tmp_path / "list"
    result = runner.invoke(
        app, ["score", "--workspace", str(trained_workspace), "--out", str(out), "--capacity",
              "50"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "as of 2026-01-01, the day after the last event (2025-12-31" in result.stderr
    assert "top 10 of" in result.stdout and f"list: {out}" in "".join(result.stdout.split("\n"))
    assert "models loaded" not in result.stdout  # progress stays on stderr
    fits(result.stdout)
    assert (out / "retention_priority.parquet").is_file()


def test_errors_name_flags_as_typed(trained_models, trained_workspace, tmp_path):
    """A list whose horizon has not passed: the hint names ``--allow-partial``."""
    out = tmp_path / "list"
    scored = runner.invoke(
        app, ["score", "--as-of", "2025-12-01", "--workspace", str(trained_workspace), "--out",
              str(out), "--capacity", "50"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    result = runner.invoke(
        app, ["backtest", "--list", str(out), "--workspace", str(trained_workspace)]
    )
    assert result.exit_code == 2
    assert "--allow-partial" in result.stderr and "allow_partial to" not in result.stderr
    assert result.stdout == ""
    spark = runner.invoke(
        app, ["score", "--workspace", str(trained_workspace), "--spark-config", "x.yaml"]
    )
    assert spark.exit_code == 2 and "--spark-config is for --engine spark" in spark.stderr
