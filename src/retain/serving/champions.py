"""The models scoring uses: loaded from the registry with what their training runs recorded.

Each model comes with its registered version, its run id, the feature list and view versions
its run logged (``features.json``), its validation metrics and, for churn, the calibration
table and the validation cutoffs (the drift reference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from retain.errors import RetainError
from retain.mlflow import registry
from retain.mlflow.lineage import check_served_definition
from retain.training.config import config_path, load_config

__all__ = ["Champion", "check_champions", "check_features", "load_champion", "load_champions",
           "run_table"]  # fmt: skip

FAMILIES = ("churn", "clv", "segments")


@dataclass(frozen=True)
class Champion:
    """A registered model ready to score, and what its training run recorded."""

    family: str
    name: str
    version: str
    run_id: str
    model: Any
    features: list[str]
    views: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    drift_reference: dict | None = None

    def describe(self) -> dict[str, Any]:
        """Name, version, run id, the estimator that serves, validation metrics and training
        period, for ``summary.json`` (a churn model is xgboost's ``ChurnClassifier`` or, where
        it did not beat BTYD, ``BTYDChurnClassifier``)."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "estimator": type(self.model).__name__,
            "metrics": self.metrics,
            "training_period": training_period(self.manifest),
        }


def training_period(manifest: dict) -> dict[str, Any] | None:
    """The days whose outcomes a model learned from: from its first training cutoff to the end
    of its last validation cutoff's label window (validation rows stop the boosting and fit the
    calibration), or ``None`` when the manifest does not say.

    A list scored at a cutoff before ``until`` is backtested on outcomes the model has seen.
    """
    from datetime import date, timedelta

    cutoffs = [*manifest.get("training_cutoffs", []), *manifest.get("validation_cutoffs", [])]
    horizon = manifest.get("horizon_days")
    if not cutoffs or not horizon:
        return None
    days = sorted(date.fromisoformat(str(day)) for day in cutoffs)
    return {
        "from": days[0].isoformat(),
        "until": (days[-1] + timedelta(days=int(horizon))).isoformat(),
        "horizon_days": int(horizon),
    }


def _run_json(run_id: str, artifact: str) -> dict:
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact}")
    except (MlflowException, OSError) as error:
        raise RetainError(f"run {run_id} has no readable {artifact}: {error}") from None


def _optional_json(run_id: str, artifact: str) -> dict | None:
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact}")
    except (MlflowException, OSError):
        return None


def load_champion(family: str, alias_or_version: str = registry.CHAMPION) -> Champion:
    """Load one registered model and its training record.

    Raises
    ------
    RetainError
        No such model, alias or version (naming the ``retain train`` command to run).
    """
    model = registry.load_model(family, str(alias_or_version))
    version = registry.find_version(family, alias_or_version)
    run_id = str(version.run_id)
    recorded = _run_json(run_id, "features.json")
    metrics = MlflowClient().get_run(run_id).data.metrics
    return Champion(
        family=family,
        name=registry.model_name(family),
        version=str(version.version),
        run_id=run_id,
        model=model,
        features=[item["name"] for item in recorded["features"]],
        views=dict(recorded["views"]),
        metrics={k.removeprefix("valid."): v for k, v in metrics.items() if k.startswith("valid.")},
        manifest=_run_json(run_id, "training_set.json"),
        drift_reference=_optional_json(run_id, "drift_reference.json"),
    )


def load_champions(models: dict[str, str]) -> dict[str, Champion]:
    """Churn, CLV and segment models by alias or version (``{"churn": "champion", ...}``)."""
    return {family: load_champion(family, models[family]) for family in FAMILIES}


def check_features(champion: Champion, columns: list[str], views: dict[str, str]) -> None:
    """Refuse to score when the snapshot's features differ from those the model was trained on.

    Raises
    ------
    RetainError
        Naming the features missing from the snapshot and the views whose definitions changed.
    """
    missing = [name for name in champion.features if name not in columns]
    changed = {
        view: (version, views.get(view))
        for view, version in champion.views.items()
        if views.get(view) != version
    }
    if not missing and not changed:
        return
    lines = [f"features differ from those {champion.name} v{champion.version} was trained on:"]
    if missing:
        lines.append(f"  - missing from the snapshot: {', '.join(missing)}")
    for view, (trained, now) in changed.items():
        lines.append(f"  - view {view}: trained on version {trained}, now {now or 'absent'}")
    lines.append(f"  retrain with `retain train {champion.family}` or pin an older model version")
    raise RetainError("\n".join(lines))


def run_table(champion: Champion, artifact: str) -> pd.DataFrame | None:
    """A CSV its training run logged (e.g. ``evaluation/calibration_table.csv``), if present."""
    try:
        path = mlflow.artifacts.download_artifacts(f"runs:/{champion.run_id}/{artifact}")
    except (MlflowException, OSError):
        return None
    return pd.read_csv(path)


def check_champions(
    champions: Mapping[str, Any], workspace: str | Path, active_days: int, active_source: str
) -> None:
    """Refuse to score with champions trained for another horizon or population.

    Parameters
    ----------
    champions : mapping of str to Champion
        The loaded models by family (each with ``name``, ``version`` and ``manifest``).
    workspace : str or Path
        Holds ``training/<family>.yaml``, whose ``horizon_days`` the churn and CLV models
        must have been trained for.
    active_days : int
        The population scoring selects (every model must have been trained on it).
    active_source : str
        Where ``active_days`` comes from, for the message.

    Raises
    ------
    DefinitionMismatchError
        The first model whose definition differs, naming both.
    """
    for family, champion in champions.items():
        horizon, source = None, ""
        if family in ("churn", "clv"):
            horizon = load_config(family, workspace=workspace).horizon_days
            path = config_path(family, workspace)
            source = str(path) if path.is_file() else f"the default of {family}"
        check_served_definition(
            champion.name, champion.version, champion.manifest, horizon_days=horizon,
            active_days=active_days, horizon_source=source, active_source=active_source,
        )  # fmt: skip
