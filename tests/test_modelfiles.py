"""Model files are verified before unpickling; untrusted registries are refused; a copied
workspace's store points at its own mlruns (real MLflow, a tiny scikit-learn model)."""

from __future__ import annotations

import pickle
import shutil
import sqlite3
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from retain.errors import ModelFileError
from retain.mlflow import modelfiles
from retain.mlflow.registry import MODEL_NAMES, load_model, register
from retain.mlflow.relocation import relocate_store
from retain.mlflow.tracking import log_model, training_run


class _Payload:
    """A pickle that writes a file when it is loaded: what an attacker would plant."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.write_text, (self.sentinel, "code ran"))


@pytest.fixture(autouse=True)
def _clean(mlflow_workspace, mlflow_isolation, monkeypatch):
    """Each test starts on the module's store with no registered models and no active run."""
    monkeypatch.delenv(modelfiles.TRUST_ENV, raising=False)
    with mlflow_isolation(mlflow_workspace):
        client = MlflowClient()
        for name in MODEL_NAMES.values():
            if client.search_registered_models(filter_string=f"name = '{name}'"):
                client.delete_registered_model(name)
        yield


def _register(workspace: Path) -> tuple[str, Path]:
    """Log and register a small churn model; return its version and its model.pkl in the store."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"recency": rng.normal(size=60), "frequency": rng.normal(size=60)})
    y = (X["recency"] > 0).astype(int).to_numpy()
    with training_run("churn", workspace) as run:
        info = log_model(LogisticRegression().fit(X, y), X.head(5))
        version = register(info.model_uri, "churn", run.info.run_id,
                           primary_metric="roc_auc", score=0.8)  # fmt: skip
    pickles = sorted(Path(workspace, "mlruns").rglob(f"{info.model_id}/**/model.pkl"))
    assert len(pickles) == 1
    return str(version.version), pickles[0]


def test_checksums_are_recorded_and_a_good_model_loads(mlflow_workspace):
    version, pickle_path = _register(mlflow_workspace)
    tags = MlflowClient().get_model_version("retain-churn", version).tags
    recorded = modelfiles._recorded(tags, "m", "r")
    assert {"MLmodel", "model.pkl"} <= set(recorded)
    assert all(len(digest) == 64 for digest in recorded.values())
    model = load_model("churn", version)
    assert model.predict_proba(pd.DataFrame({"recency": [1.0], "frequency": [0.0]})).shape == (1, 2)
    assert pickle_path.is_file()


def test_a_tampered_model_file_is_refused_and_never_unpickled(mlflow_workspace, tmp_path):
    version, pickle_path = _register(mlflow_workspace)
    sentinel = tmp_path / "pwned.txt"
    pickle_path.write_bytes(pickle.dumps(_Payload(sentinel)))
    with pytest.raises(ModelFileError, match=r"retain-churn v\d+: .*changed: model.pkl"):
        load_model("churn", version)
    assert not sentinel.exists()


def test_an_added_or_missing_file_is_refused(mlflow_workspace):
    version, pickle_path = _register(mlflow_workspace)
    (pickle_path.parent / "extra.py").write_text("print('hi')")
    with pytest.raises(ModelFileError, match="added: extra.py"):
        load_model("churn", version)
    (pickle_path.parent / "extra.py").unlink()
    (pickle_path.parent / "conda.yaml").unlink()
    with pytest.raises(ModelFileError, match="missing: conda.yaml"):
        load_model("churn", version)


def test_a_version_without_checksums_is_refused(mlflow_workspace):
    version, _ = _register(mlflow_workspace)
    MlflowClient().delete_model_version_tag("retain-churn", version, modelfiles.CHECKSUM_TAG)
    with pytest.raises(ModelFileError, match="registered without file checksums.*retrain|train"):
        load_model("churn", version)


def test_remote_registries_need_explicit_trust(monkeypatch):
    with pytest.raises(ModelFileError, match="RETAIN_TRUSTED_REGISTRY=http://mlflow.example:5000"):
        modelfiles.check_trusted("http://mlflow.example:5000")
    with pytest.raises(ModelFileError, match="not trusted"):
        modelfiles.check_trusted("sqlite:////shared/other.db")
    monkeypatch.setenv(modelfiles.TRUST_ENV, "https://a.example, http://mlflow.example:5000/")
    modelfiles.check_trusted("http://mlflow.example:5000")
    modelfiles.check_trusted("sqlite:////any/workspace/mlruns/mlflow.db")


def test_loading_from_an_untrusted_registry_is_refused(mlflow_workspace, monkeypatch):
    version, _ = _register(mlflow_workspace)
    monkeypatch.setattr(mlflow, "get_registry_uri", lambda: "http://mlflow.example:5000")
    with pytest.raises(ModelFileError, match="not trusted"):
        load_model("churn", version)


def test_a_copied_workspace_uses_its_own_mlruns(mlflow_workspace, mlflow_isolation, tmp_path):
    version, _ = _register(mlflow_workspace)
    copy = tmp_path / "copy"
    shutil.copytree(mlflow_workspace, copy)
    changed = relocate_store(copy, copy / "mlruns" / "mlflow.db")
    assert changed > 0
    assert relocate_store(copy, copy / "mlruns" / "mlflow.db") == 0  # done once
    original = str(Path(mlflow_workspace).resolve())
    with sqlite3.connect(copy / "mlruns" / "mlflow.db") as connection:
        for table, column in (("runs", "artifact_uri"), ("model_versions", "storage_location"),
                              ("experiments", "artifact_location")):  # fmt: skip
            values = [row[0] for row in connection.execute(f"SELECT {column} FROM {table}")]
            assert values and not any(original + "/" in str(value) for value in values)
    with sqlite3.connect(Path(mlflow_workspace) / "mlruns" / "mlflow.db") as connection:
        stored = [row[0] for row in connection.execute("SELECT artifact_uri FROM runs")]
    assert all(original in uri for uri in stored)  # the original is untouched
    # the copy loads from its own files: break the original's, the copy still verifies
    for path in Path(mlflow_workspace, "mlruns").rglob("model.pkl"):
        path.rename(path.with_suffix(".moved"))
    try:
        with mlflow_isolation(copy):
            assert load_model("churn", version) is not None
    finally:
        for path in Path(mlflow_workspace, "mlruns").rglob("model.moved"):
            path.rename(path.with_suffix(".pkl"))
