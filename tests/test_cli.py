"""The command line: every stage is listed; bad arguments are refused cleanly."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from retain.cli import app

STAGES = [
    "simulate",
    "validate",
    "features",
    "train",
    "tune",
    "models",
    "score",
    "report",
    "backtest",
    "quickstart",
    "init",
]
runner = CliRunner()


def test_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in STAGES:
        assert stage in result.output


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    assert scripts.get("retain") == "retain.cli:app"


def test_python_dash_m_runs_the_command_line():
    """``python -m retain`` (the file given to ``spark-submit``) is the same command line."""
    result = subprocess.run(
        [sys.executable, "-m", "retain", "features", "build", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--engine" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "churm"], "unknown model family 'churm'"),
        (["tune", "segments"], "tuning is for churn or clv"),
        (["train", "all", "--config", "training/churn.yaml"], "use it with a single family"),
    ],
)
def test_training_commands_refuse_bad_arguments_cleanly(arguments, message, tmp_path):
    result = runner.invoke(app, [*arguments, "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
