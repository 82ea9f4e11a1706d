"""Careless and hostile inputs: each is a clear error (exit code 2, the file, column or key
named, no traceback), found before any data are read where it can be, and nothing is written
or destroyed. The slow cases (kills, full disks, tampered models) are in test_faults.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retain.atomic import atomic_dir
from retain.cli import app

runner = CliRunner()
MISSING_DATA = "no-such-data-folder"


def _refused(arguments: list[str], *expected: str, limit: int = 4000):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    for text in expected:
        assert text in result.output, result.output
    assert len(result.output) < limit, f"{len(result.output):,} characters"
    return result.output


def _listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.fixture
def workspace(make_workspace) -> Path:
    """An empty workspace (packaged configs) with a tiny valid data folder."""
    rows = "customer_id,timestamp,amount\nA,2024-01-05,10.5\nA,2024-02-01,-2\nB,2024-01-20,7\n"
    return make_workspace("bad_inputs", scaffold=False, files={"data/transactions.csv": rows})


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- numeric options


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--capacity", "-5", "--capacity must be at least 0"),
        ("--budget", "nan", "--budget must be a finite amount"),
        ("--budget", "-1", "--budget must be a finite amount"),
    ],
)
def test_selection_options_are_checked_before_any_work(workspace, option, value, message):
    _refused(["score", "--as-of", "2024-03-01", option, value, "--workspace", str(workspace)],
             message)  # fmt: skip
    assert not (workspace / "serving").exists() and not (workspace / "mlruns").exists()


@pytest.mark.parametrize(
    "arguments",
    [
        ["report", "--list", "x", "--top", "0"],
        ["tune", "churn", "--trials", "-1"],
        ["tune", "churn", "--timeout-minutes", "nan"],
        ["quickstart", "--customers", "0"],
        ["simulate", "--model", "bgnbd", "--r", "nan", "--out", "sim", "--customers", "5"],
    ],
)
def test_other_numeric_options_are_bounded(workspace, arguments, monkeypatch):
    monkeypatch.chdir(workspace)
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("horizon_days: -5\n", "'horizon_days' must be at least 1"),
        ("cutoffs: {validation: 0}\n", "'cutoffs.validation' must be at least 1"),
        ("min_improvement: .nan\n", "'min_improvement' must be a finite number"),
        ("model: {max_depth: deep}\n", "'model.max_depth' must be a number"),
        ("model: {learning_rate: -1}\n", "learning_rate must be a number in (0, inf)"),
        ("exclude_features: [btyd_T]\n", "leaves out btyd_T, which the baselines need"),
        ("tuning: {trials: 0}\n", "'tuning.trials' must be at least 1"),
    ],
)
def test_training_config_errors_come_before_the_data(workspace, text, key):
    config = _write(workspace / "training" / "churn.yaml", text)
    _refused(["train", "churn", "--data", MISSING_DATA, "--workspace", str(workspace)],
             str(config), key)  # fmt: skip
    assert not (workspace / "mlruns").exists()


def test_every_family_config_is_checked_before_training_starts(workspace):
    _write(workspace / "training" / "segments.yaml", "cutoffs: {validation: 0}\n")
    _refused(["train", "all", "--data", MISSING_DATA, "--workspace", str(workspace)],
             "segments.yaml", "'cutoffs.validation'")  # fmt: skip


@pytest.mark.parametrize("command", [["train", "churn"], ["score", "--as-of", "2024-03-01"]])
def test_workspace_config_ranges_come_before_the_data(workspace, command):
    config = _write(workspace / "retain.yaml", "active_days: 0\n")
    _refused([*command, "--workspace", str(workspace)], str(config),
             "'active_days' must be at least 1")  # fmt: skip
    assert not (workspace / "mlruns").exists()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("capacity: -1\n", "'capacity' must be at least 0"),
        ("budget: .nan\n", "'budget' must be a finite amount"),
        ("drift: {threshold: .inf}\n", "'drift.threshold' must be a finite number of at least 0"),
        ("reasons: 9\n", "'reasons' must be from 1 to 3"),
        ("capacity: lots\n", "'capacity' must be int"),
    ],
)
def test_score_config_errors(workspace, text, key):
    config = _write(workspace / "serving" / "score.yaml", text)
    _refused(["score", "--as-of", "2024-03-01", "--workspace", str(workspace)], str(config), key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("actions: {call: {cost: abc, save_rate: 0.1}}\ndefault: call\n",
         "action 'call': 'cost' must be a number, got 'abc'"),
        ("actions: {call: {cost: .nan, save_rate: 0.1}}\ndefault: call\n",
         "'cost' must be a finite number"),
        ("actions: {call: {cost: 1, save_rate: 0.1}}\ndefault: call\n"
         "rules: [{when: [value_tier, high], action: call}]\n",
         "rule 1: 'when' must be a mapping of conditions"),
        ("actions: {call: {cost: 1, save_rate: 0.1}}\ndefault: call\n"
         "rules: [{when: {value_tier: {a: 1}}, action: call}]\n",
         "condition 'value_tier' takes a value or a list of values"),
        ("actions: {call: {cost: 1, save_rate: 0.1}}\ndefault: [call]\n",
         "'default' must be str"),
    ],
)  # fmt: skip
def test_playbook_errors(workspace, text, message):
    playbook = _write(workspace / "serving" / "playbook.yaml", text)
    _refused(["score", "--as-of", "2024-03-01", "--workspace", str(workspace)],
             str(playbook), message)  # fmt: skip


def test_workspace_timestamp_window_is_checked(workspace, monkeypatch):
    _write(workspace / "retain.yaml", "timestamp_window: {days_ahead: -1}\n")
    monkeypatch.chdir(workspace)
    _refused(["validate", "--data", "data"], "retain.yaml", "'timestamp_window.days_ahead'")


# --------------------------------------------------------------------------- YAML and messages


ALIAS_BOMB = "\n".join(
    [
        "a: &a [x, x, x, x, x, x, x, x, x]",
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "transactions: {columns: *h}",
    ]
)


def test_yaml_alias_bombs_are_refused_with_a_short_message(workspace):
    mapping = _write(workspace / "map.yaml", ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 600
    _refused(["validate", "--data", str(workspace / "data"), "--mapping", str(mapping)],
             str(mapping), "expand to more than", limit=600)  # fmt: skip


def test_small_aliases_still_work(workspace):
    mapping = _write(
        workspace / "map.yaml", "transactions: &t {separator: ','}\ninteractions: *t\n"
    )
    result = runner.invoke(app, ["validate", "--data", str(workspace / "data"),
                                 "--mapping", str(mapping)])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_huge_values_are_quoted_short(workspace):
    long_id = "X" * 200_000
    (workspace / "data" / "transactions.csv").write_text(
        f"customer_id,timestamp,amount\n{long_id},yesterday,1\n"
    )
    output = _refused(["validate", "--data", str(workspace / "data")], "column 'timestamp'")
    assert long_id[:100] not in output


def test_a_huge_key_in_a_mapping_is_quoted_short(workspace):
    mapping = _write(workspace / "map.yaml", "transactions:\n  ? " + "k" * 50_000 + "\n  : 1\n")
    _refused(["validate", "--data", str(workspace / "data"), "--mapping", str(mapping)],
             "unknown key", limit=1000)  # fmt: skip


# --------------------------------------------------------------------------- the data


@pytest.mark.parametrize(
    ("rows", "column", "message"),
    [
        ("A,2300-01-01,5\n", "timestamp", "dated outside 1900-01-01 to"),
        ("A,1850-06-01,5\n", "timestamp", "dated outside 1900-01-01 to"),
        ("A,2024-01-01,10000000000000\n", "amount", "beyond ±1,000,000,000,000"),
        ("A,2024-01-01,-2e13\n", "amount", "beyond ±1,000,000,000,000"),
    ],
)
def test_implausible_values_are_data_errors(workspace, rows, column, message):
    path = workspace / "data" / "transactions.csv"
    path.write_text(path.read_text() + rows)
    _refused(["validate", "--data", str(workspace / "data")],
             str(path), f"column '{column}'", message)  # fmt: skip


def test_the_timestamp_window_comes_from_retain_yaml(workspace, monkeypatch):
    _write(workspace / "retain.yaml", "timestamp_window: {earliest: 2024-01-10}\n")
    monkeypatch.chdir(workspace)
    _refused(["validate", "--data", "data"], "dated outside 2024-01-10 to", "'2024-01-05'")


def test_duplicate_header_names_are_an_error(workspace):
    path = _write(workspace / "data" / "transactions.csv",
                  "customer_id,timestamp,amount,amount\nA,2024-01-05,1,2\n")  # fmt: skip
    _refused(["validate", "--data", str(workspace / "data")], str(path),
             "column 'amount'", "names this column 2 times")  # fmt: skip


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"encoding": "rot13"}, "transactions.encoding: 'rot13' is not a text encoding"),
        ({"encoding": "base64"}, "is not a text encoding"),
        ({"timestamp_format": "%Y-%Q"}, "transactions.timestamp_format: invalid format"),
        ({"file": "../outside.csv"}, "transactions.file: '../outside.csv' is outside the data"),
        ({"file": "/etc/hostname"}, "transactions.file: '/etc/hostname' is outside the data"),
    ],
)
def test_mapping_errors_name_the_key(workspace, section, message):
    mapping = _write(workspace / "map.yaml", json.dumps({"transactions": section}))
    _refused(["validate", "--data", str(workspace / "data"), "--mapping", str(mapping)],
             str(mapping), message)  # fmt: skip


def test_a_symlink_out_of_the_data_folder_is_refused(workspace):
    outside = _write(workspace / "outside" / "secret.csv", "customer_id,timestamp,amount\n")
    (workspace / "data" / "link.csv").symlink_to(outside)
    mapping = _write(workspace / "map.yaml", "transactions: {file: link.csv}\n")
    output = _refused(["validate", "--data", str(workspace / "data"), "--mapping", str(mapping)],
                      "link.csv", "resolves outside the data folder")  # fmt: skip
    assert "secret" in output  # names where it leads, quotes nothing from it


# --------------------------------------------------------------------------- output paths


def test_score_never_replaces_the_workspace(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    before = _listing(workspace)
    _refused(["score", "--as-of", "2024-03-01", "--out", "."], "working folder")
    _refused(["score", "--as-of", "2024-03-01", "--out", str(workspace.parent)], "working folder")
    assert _listing(workspace) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("precious"), "is a file, not a folder retain wrote"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("precious")), "notes.txt"),
        (lambda p: p.parent.joinpath("real").mkdir() or p.symlink_to(p.parent / "real"),
         "symbolic link"),
    ],
    ids=["file", "foreign-folder", "symlink"],
)  # fmt: skip
def test_score_out_is_checked_before_any_model_is_loaded(workspace, make, message):
    target = workspace / "out"
    make(target)
    before = _listing(workspace)
    # no model is registered here: the output check must come first
    _refused(["score", "--as-of", "2024-03-01", "--out", str(target),
              "--workspace", str(workspace)], str(target), message)  # fmt: skip
    assert _listing(workspace) == before


def test_report_out_must_be_a_report_file(workspace):
    folder = workspace / "reports"
    folder.mkdir()
    foreign = _write(workspace / "notes.html", "<html>my notes</html>")
    _refused(["report", "--list", "nowhere", "--out", str(folder)], "is a folder")
    _refused(["report", "--list", "nowhere", "--out", str(foreign)],
             "is not a HTML report retain wrote")  # fmt: skip
    assert foreign.read_text() == "<html>my notes</html>"
    listed = workspace / "list"
    with atomic_dir(listed, kind="list") as folder:  # retain's own file, but not a report
        (folder / "summary.json").write_text("{}")
    _refused(["report", "--list", str(listed), "--out", str(listed / "summary.json")],
             "is not a HTML report retain wrote")  # fmt: skip
    assert (listed / "summary.json").read_text() == "{}"


def test_backtest_out_is_checked_before_the_data(workspace):
    target = _write(workspace / "bt", "not a folder")
    _refused(["backtest", "--list", "nowhere", "--data", MISSING_DATA, "--out", str(target)],
             "is a file")  # fmt: skip
    folder = workspace / "bt2"
    _write(folder / "backtest.json", "my own notes")
    _refused(["backtest", "--list", "nowhere", "--data", MISSING_DATA, "--out", str(folder)],
             "backtest.json exists and is not a backtest summary retain wrote")  # fmt: skip
    assert (folder / "backtest.json").read_text() == "my own notes"


def test_simulate_never_writes_over_real_data(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    before = (workspace / "data" / "transactions.csv").read_text()
    _refused(["simulate", "--customers", "20", "--out", "data"], "transactions.csv")
    assert (workspace / "data" / "transactions.csv").read_text() == before
    for _ in range(2):  # a folder it simulated into before may be written again
        result = runner.invoke(app, ["simulate", "--customers", "20", "--out", "sim"])
        assert result.exit_code == 0, result.output


def test_a_store_path_that_is_a_file_is_refused_before_the_data(workspace):
    store = _write(workspace / "store", "a file")
    _refused(["features", "build", "--data", MISSING_DATA, "--as-of", "2024-02-01",
              "--store", str(store / "inner")], "is a file, not a folder")  # fmt: skip


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only folders")
def test_a_read_only_store_is_a_clean_error(workspace):  # pragma: no cover - CI runs as root
    store = workspace / "store"
    store.mkdir()
    store.chmod(0o500)
    _refused(["features", "build", "--data", str(workspace / "data"), "--as-of", "2024-02-01",
              "--store", str(store)], "permission denied")  # fmt: skip
