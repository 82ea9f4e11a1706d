"""The workspace config ``retain.yaml``: one source of defaults, what overrides what, moved keys.

Every config read from a file has dataclass defaults equal to its packaged file, a workspace
without the file reads the packaged one, and job and scoring configs take data, store, seed and
population from ``retain.yaml`` (a job file that still names them is told where they went).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from retain.errors import ConfigError
from retain.serving.config import ScoreConfig, load_score_config
from retain.settings import read_settings
from retain.training.config import CONFIGS, load_config
from retain.workspace import (
    PACKAGED,
    SCAFFOLD,
    WorkspaceConfig,
    init_workspace,
    load_workspace_config,
    workspace_settings,
)


def without_origin(config):
    """A config's settings, without where it was read from (nor the workspace it runs in)."""
    changes = {"source": ""}
    if hasattr(config, "workspace_config"):
        changes["workspace_config"] = WorkspaceConfig()
    if isinstance(config, WorkspaceConfig):
        changes["spark"] = dataclasses.replace(config.spark, source="")
    return dataclasses.replace(config, **changes)


@pytest.mark.parametrize(
    ("cls", "file"),
    [
        *((cls, f"training/{family}.yaml") for family, cls in CONFIGS.items()),
        (ScoreConfig, "serving/score.yaml"),
        (WorkspaceConfig, "retain.yaml"),
    ],
    ids=[*CONFIGS, "score", "workspace"],
)
def test_code_defaults_equal_the_packaged_files(cls, file):
    """One source of defaults: reading the packaged file gives exactly the dataclass defaults
    (model settings included: an empty folder trains the model the shipped file describes)."""
    context = {"workspace_config": WorkspaceConfig()} if cls is not WorkspaceConfig else {}
    packaged = read_settings(cls, PACKAGED / file, context=context)
    assert without_origin(packaged) == without_origin(cls())  # retain.yaml: spark section too


def test_churn_model_defaults_are_the_packaged_ones():
    """The defaults an empty folder used to get from code (max_depth 5, min_child_weight 1)."""
    model = CONFIGS["churn"]().model
    assert (model["max_depth"], model["min_child_weight"]) == (4, 5.0)


def test_an_empty_folder_reads_the_packaged_files(tmp_path):
    assert load_workspace_config(tmp_path).source == str(PACKAGED / "retain.yaml")
    assert load_config("churn", workspace=tmp_path).source == str(
        PACKAGED / "training" / "churn.yaml"
    )
    assert load_score_config(workspace=tmp_path).source == str(PACKAGED / "serving/score.yaml")


def test_a_section_given_in_part_keeps_the_other_defaults(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "churn.yaml").write_text("model:\n  max_depth: 6\n")
    (tmp_path / "training" / "clv.yaml").write_text("cutoffs:\n  validation: 2\n")
    churn = load_config("churn", workspace=tmp_path)
    assert churn.model == {**CONFIGS["churn"]().model, "max_depth": 6}
    clv = load_config("clv", workspace=tmp_path)
    assert (clv.cutoffs.validation, clv.cutoffs.training) == (2, 3)  # CLV's own default: 3
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "score.yaml").write_text("models:\n  churn: '3'\n")
    models = load_score_config(workspace=tmp_path).models
    assert models == {"churn": "3", "clv": "champion", "segments": "champion"}


def test_jobs_and_scoring_take_the_workspace_settings(tmp_path):
    (tmp_path / "retain.yaml").write_text(
        "data: exports\nmapping: map.yaml\nstore: snapshots\nseed: 11\nactive_days: 180\n"
    )
    for family in CONFIGS:
        config = load_config(family, workspace=tmp_path)
        assert (config.seed, config.active_days, config.data) == (11, 180, "exports")
        assert (config.mapping, config.store) == ("map.yaml", "snapshots")
    scoring = load_score_config(workspace=tmp_path)
    assert (scoring.active_days, scoring.data, scoring.store) == (180, "exports", "snapshots")


@pytest.mark.parametrize(
    ("file", "text", "key"),
    [
        ("training/churn.yaml", "horizon_days: 91\ndata: exports\n", "data"),
        ("training/clv.yaml", "seed: 3\n", "seed"),
        ("training/segments.yaml", "active_days: 180\n", "active_days"),
        ("serving/score.yaml", "capacity: 10\nactive_days: 180\n", "active_days"),
        ("serving/score.yaml", "store: snapshots\n", "store"),
    ],
)
def test_a_key_that_moved_to_retain_yaml_is_an_error_saying_so(tmp_path, file, text, key):
    path = tmp_path / file
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        if file.startswith("serving"):
            load_score_config(workspace=tmp_path)
        else:
            load_config(Path(file).stem, workspace=tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert f"'{key}' moved to retain.yaml: delete it here and set it there" in message


def test_command_line_options_override_single_keys(tmp_path, monkeypatch):
    (tmp_path / "retain.yaml").write_text("data: exports\nmapping: map.yaml\nseed: 4\n")
    monkeypatch.chdir(tmp_path)
    settings = workspace_settings(tmp_path, data="elsewhere", engine="spark")
    assert settings.data == str(tmp_path / "elsewhere")  # relative to where the user is
    assert settings.path(tmp_path / "ws", settings.data) == tmp_path / "elsewhere"
    assert (settings.mapping, settings.seed, settings.engine) == ("map.yaml", 4, "spark")
    assert workspace_settings(tmp_path, data=object()).data == "exports"  # tables in memory
    with pytest.raises(ConfigError, match="--engine: unknown engine 'polars'; known: duckdb"):
        workspace_settings(tmp_path, engine="polars")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dat: x\n", "unknown key 'dat'"),
        ("engine: polars\n", "'engine': unknown engine 'polars'; known: duckdb, spark"),
        ("active_days: 0\n", "'active_days' must be at least 1"),
        ("seed: one\n", "'seed' must be int"),
        ("margin_rate: 1.5\n", "'margin_rate' is a share of the amount, from 0 to 1; got 1.5"),
        ("margin_rate: -0.1\n", "'margin_rate' is a share of the amount, from 0 to 1"),
    ],
)
def test_a_bad_workspace_config_names_the_file_and_the_key(tmp_path, text, message):
    (tmp_path / "retain.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_workspace_config(tmp_path)
    assert str(tmp_path / "retain.yaml") in str(caught.value)


def test_init_writes_retain_yaml_and_no_spark_yaml(tmp_path):
    written = {path.relative_to(tmp_path).as_posix() for path in init_workspace(tmp_path)}
    assert written == set(SCAFFOLD)
    assert "retain.yaml" in written and not (tmp_path / "spark.yaml").exists()
    assert load_workspace_config(tmp_path).source == str(tmp_path / "retain.yaml")


def test_jobs_take_the_margin_rate_of_retain_yaml(tmp_path):
    (tmp_path / "retain.yaml").write_text("margin_rate: 0.4\n")
    for family in ("clv", "uplift"):
        assert load_config(family, workspace=tmp_path).margin_rate == 0.4
    assert load_config("clv", workspace=tmp_path).run_params()["margin_rate"] == 0.4
    assert load_config("clv", workspace=tmp_path / "elsewhere").margin_rate == 0.3  # default


@pytest.mark.parametrize("family", ["clv", "uplift"])
def test_a_job_files_margin_rate_still_counts_for_its_job_with_a_warning(tmp_path, family):
    (tmp_path / "retain.yaml").write_text("margin_rate: 0.4\n")
    path = tmp_path / "training" / f"{family}.yaml"
    path.parent.mkdir()
    path.write_text("margin_rate: 0.2\n")
    with pytest.warns(FutureWarning, match="'margin_rate' moved to retain.yaml") as caught:
        config = load_config(family, workspace=tmp_path)
    assert str(path) in str(caught[0].message)
    assert config.margin_rate == 0.2  # the job's labels, as before
    path.write_text("margin_rate: 1.2\n")
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match="'margin_rate' must be at"):
        load_config(family, workspace=tmp_path)


def test_a_margin_rate_in_the_score_config_is_an_error_saying_where_it_went(tmp_path):
    path = tmp_path / "serving" / "score.yaml"
    path.parent.mkdir()
    path.write_text("margin_rate: 0.2\n")
    with pytest.raises(ConfigError, match="'margin_rate' moved to retain.yaml"):
        load_score_config(workspace=tmp_path)


def test_a_bad_margin_rate_exits_2_naming_the_file(tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app

    (tmp_path / "retain.yaml").write_text("margin_rate: 3\n")
    result = CliRunner().invoke(app, ["features", "build", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "'margin_rate' is a share of the amount" in result.output
    assert "Traceback" not in result.output
