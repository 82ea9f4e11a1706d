"""Spark settings: the ``spark:`` section of ``retain.yaml`` (or ``--spark-config``), read
strictly, the master overridable from the environment.

No Spark session is started here: these run without pyspark.
"""

from __future__ import annotations

import dataclasses

import pytest

from retain.engines.spark.session import MASTER_ENV, SparkSettings, load_spark_settings
from retain.errors import ConfigError
from retain.workspace import PACKAGED


def test_the_packaged_workspace_config_holds_the_defaults(tmp_path):
    """An empty folder gets the ``spark`` section of the packaged ``retain.yaml``, whose values
    are the dataclass's."""
    packaged = load_spark_settings(tmp_path)
    assert packaged.source == str(PACKAGED / "retain.yaml")
    assert dataclasses.replace(packaged, source="defaults") == SparkSettings()


def test_the_section_of_the_workspace_config_is_read(tmp_path):
    (tmp_path / "retain.yaml").write_text(
        "spark:\n  master: local[3]\n  xgboost_workers: 3\n  config: {spark.executor.memory: 8g}\n"
    )
    settings = load_spark_settings(tmp_path)
    assert (settings.master, settings.xgboost_workers) == ("local[3]", 3)
    assert settings.config == {"spark.executor.memory": "8g"}
    assert settings.shuffle_partitions == SparkSettings().shuffle_partitions
    assert settings.source == str(tmp_path / "retain.yaml")


def test_a_file_given_explicitly_replaces_the_section(tmp_path):
    (tmp_path / "retain.yaml").write_text("spark:\n  master: local[3]\n")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("master: yarn\nshuffle_partitions: 200\n")
    settings = load_spark_settings(tmp_path, cluster)
    assert (settings.master, settings.shuffle_partitions) == ("yarn", 200)


def test_a_left_over_spark_yaml_says_where_its_settings_went(tmp_path):
    (tmp_path / "spark.yaml").write_text("xgboost_workers: 2\n")
    with pytest.raises(ConfigError, match="moved into retain.yaml, as its `spark:` section"):
        load_spark_settings(tmp_path)
    assert load_spark_settings(tmp_path, tmp_path / "spark.yaml").xgboost_workers == 2


def test_the_environment_overrides_the_master(monkeypatch):
    settings = SparkSettings(master="local[3]")
    monkeypatch.delenv(MASTER_ENV, raising=False)
    assert settings.effective_master == "local[3]"
    monkeypatch.setenv(MASTER_ENV, "spark://head:7077")
    assert settings.effective_master == "spark://head:7077"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spark:\n  mastr: yarn\n", "unknown key 'spark.mastr'"),
        ("spark:\n  xgboost_workers: two\n", "'spark.xgboost_workers' must be int"),
    ],
)
def test_a_bad_section_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "retain.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_spark_settings(tmp_path)
    assert str(path) in str(caught.value)


def test_a_missing_file_given_explicitly_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="Spark settings file not found"):
        load_spark_settings(tmp_path, tmp_path / "cluster.yaml")
