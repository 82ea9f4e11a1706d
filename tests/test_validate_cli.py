"""``retain validate``: a summary on good data; clean errors (exit 2) naming file and column."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retain import cli
from retain.cli import app
from retain.errors import DataError

runner = CliRunner()

TRANSACTIONS = (
    "customer_id,timestamp,amount\nC1,2024-03-01,10\nC2,2024-03-02,-5\nC1,2024-03-01,10\n"
)
INTERACTIONS = "customer_id,timestamp,type\nC1,2024-03-01,web_visit\nC2,2024-03-03,complaint\n"


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    """``--debug`` sets a module-level flag; start every test without it."""
    monkeypatch.setitem(cli._state, "debug", False)


def flat(text: str) -> str:
    """Output without whitespace: rich wraps long paths at the console width."""
    return "".join(text.split())


def data_dir(root: Path, **tables: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_validate_good_data_prints_the_summary(tmp_path):
    data = data_dir(
        tmp_path, **{"transactions.csv": TRANSACTIONS, "interactions.csv": INTERACTIONS}
    )
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 0, result.output
    output = result.stdout  # the summary is the result; warnings go to stderr
    assert "warning:" in result.stderr and "identical" in result.stderr
    assert "warning:" not in output
    for words in ("transactions", "customers", "2 (2 derived)", "returns share", "complaint"):
        assert words in output
    assert "33.3%" in output  # one return among three rows: the repeat without order id is kept
    assert "fingerprint" in output and "Traceback" not in result.output


def test_validate_reads_data_and_mapping_from_the_workspace_config(tmp_path):
    workspace = tmp_path / "shop"
    data_dir(workspace / "exports", **{"orders.txt": "C1 20240301 10\nC2 20240302 -5\n"})
    (workspace / "map.yaml").write_text(
        "transactions:\n  file: orders.txt\n  separator: whitespace\n  header: false\n"
        "  columns: {customer_id: 1, timestamp: 2, amount: 3}\n  timestamp_format: '%Y%m%d'\n"
    )
    (workspace / "retain.yaml").write_text("data: exports\nmapping: map.yaml\n")
    result = runner.invoke(app, ["validate", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    assert "orders.txt" in flat(result.stdout) and "50.0%" in result.stdout
    other = data_dir(tmp_path / "other", **{"transactions.csv": TRANSACTIONS})
    override = runner.invoke(app, ["validate", "--workspace", str(workspace), "--data", str(other)])
    assert override.exit_code == 2  # --data replaces `data`; the mapping still applies
    assert "orders.txt" in flat(override.output) and "does not exist" in override.output


@pytest.mark.parametrize(
    ("tables", "file", "column"),
    [
        (
            {"transactions.csv": "customer_id,timestamp,amount\nC1,soon,1\n"},
            "transactions.csv",
            "timestamp",
        ),
        (
            {"transactions.csv": "customer_id,timestamp\nC1,2024-03-01\n"},
            "transactions.csv",
            "amount",
        ),
        (
            {"transactions.csv": TRANSACTIONS, "customers.csv": "customer_id\nC1\nC1\n"},
            "customers.csv",
            "customer_id",
        ),
    ],
    ids=["bad-timestamp", "missing-amount-column", "duplicate-customer"],
)
def test_validate_bad_data_exits_2_naming_file_and_column(tmp_path, tables, file, column):
    data = data_dir(tmp_path / "data", **tables)
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 2
    assert file in flat(result.output)
    assert f"column'{column}'" in flat(result.output)
    assert "Traceback" not in result.output


def test_validate_bad_mapping_exits_2_naming_the_key(tmp_path):
    data = data_dir(tmp_path / "data", **{"transactions.csv": TRANSACTIONS})
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("transactions:\n  colums: {amount: dollars}\n")
    result = runner.invoke(app, ["validate", "--data", str(data), "--mapping", str(mapping)])
    assert result.exit_code == 2
    assert "transactions.colums" in flat(result.output)
    assert "Traceback" not in result.output


def test_validate_missing_folder_exits_2(tmp_path):
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_validate_with_debug_raises_the_error(tmp_path):
    data = data_dir(tmp_path, **{"transactions.csv": "customer_id,timestamp,amount\nC1,soon,1\n"})
    result = runner.invoke(app, ["--debug", "validate", "--data", str(data)])
    assert result.exit_code != 0
    assert isinstance(result.exception, DataError)
    assert result.exception.problems[0].column == "timestamp"
    shown = "".join(traceback.format_exception(*result.exc_info))
    assert shown.startswith("Traceback") and "DataError" in shown
