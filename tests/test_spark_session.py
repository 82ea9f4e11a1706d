"""Spark settings: ``spark.yaml`` read strictly, the master overridable from the environment.

No Spark session is started here: these run without pyspark.
"""

from __future__ import annotations

import dataclasses

import pytest

from retain.errors import ConfigError, RetainError
from retain.spark.session import MASTER_ENV, SparkSettings, load_spark_settings
from retain.workspace import PACKAGED


def test_the_packaged_file_holds_the_defaults(tmp_path):
    """An empty folder gets the packaged ``spark.yaml``, whose values are the dataclass's."""
    packaged = load_spark_settings(tmp_path)
    assert packaged.source == str(PACKAGED / "spark.yaml")
    assert dataclasses.replace(packaged, source="defaults") == SparkSettings()


def test_a_workspace_file_is_read(tmp_path):
    (tmp_path / "spark.yaml").write_text(
        "master: local[3]\nxgboost_workers: 3\nconfig: {spark.executor.memory: 8g}\n"
    )
    settings = load_spark_settings(tmp_path)
    assert (settings.master, settings.xgboost_workers) == ("local[3]", 3)
    assert settings.config == {"spark.executor.memory": "8g"}
    assert settings.shuffle_partitions == SparkSettings().shuffle_partitions


def test_the_environment_overrides_the_master(monkeypatch):
    settings = SparkSettings(master="local[3]")
    monkeypatch.delenv(MASTER_ENV, raising=False)
    assert settings.effective_master == "local[3]"
    monkeypatch.setenv(MASTER_ENV, "spark://head:7077")
    assert settings.effective_master == "spark://head:7077"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mastr: yarn\n", "unknown key 'mastr'"),
        ("xgboost_workers: two\n", "xgboost_workers"),
    ],
)
def test_a_bad_file_names_itself_and_the_key(tmp_path, text, message):
    path = tmp_path / "spark.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_spark_settings(tmp_path)
    assert str(path) in str(caught.value)


def test_a_missing_file_given_explicitly_is_an_error(tmp_path):
    with pytest.raises(RetainError, match="Spark settings file not found"):
        load_spark_settings(tmp_path, tmp_path / "cluster.yaml")
