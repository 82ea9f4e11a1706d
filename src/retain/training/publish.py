"""The end of every training job: one tracked MLflow run, a registered version, a guarded promotion.

A job hands over its fitted model, its validation metrics, plots and tables; this module logs
them with the config, the training-set manifest and the feature list (with view versions),
registers the model as ``challenger`` and promotes it to ``champion`` only if it beats the
current champion on the primary metric measured on the *same* validation rows. Nothing is
registered when a job fails before this point.

Champion and challenger are compared only within a lineage (:mod:`retain.training.lineage`):
same label definition and feature set. The first model of a new lineage (after a change of
horizon, population or features) is judged against the baselines of its own run instead, on
its own validation rows, and becomes champion when it passes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd

from retain.training import registry, tracking
from retain.training.config import JobConfig
from retain.training.lineage import definition, describe_definition, lineage_id

__all__ = ["JobResult", "publish"]


@dataclass(frozen=True)
class JobResult:
    """What a training job produced.

    Attributes
    ----------
    family : str
        ``churn``, ``clv`` or ``segments``.
    run_id : str
        MLflow run of the job.
    version : str
        Registered model version.
    decision : registry.Decision
        Whether it became champion, and why.
    metrics : dict
        Validation metrics as logged.
    manifest : dict
        The training-set manifest.
    model : object
        The fitted model.
    """

    family: str
    run_id: str
    version: str
    decision: registry.Decision
    metrics: dict[str, float]
    manifest: dict
    model: Any = None


def _config_params(config: JobConfig) -> dict[str, Any]:
    params = dataclasses.asdict(config)
    params.pop("model", None)
    return params


def _feature_list(manifest: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "features": [
            {"name": name, "dtype": str(frame[name].dtype)} for name in manifest["features"]
        ],
        "views": manifest["feature_views"],
    }


def _example(frame: pd.DataFrame) -> pd.DataFrame:
    """Input example as scoring sends it: categoricals as plain strings."""
    categorical = frame.select_dtypes("category").columns
    return frame.astype({name: object for name in categorical})


def publish(
    family: str,
    model: Any,
    config: JobConfig,
    manifest: Mapping[str, Any],
    *,
    workspace: str,
    settings: Mapping[str, Any],
    metrics: Mapping[str, float],
    figures: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    score: Callable[[Any], float],
    input_example: pd.DataFrame,
    predict_method: str,
    run_name: str | None = None,
    documents: Mapping[str, Any] | None = None,
    baselines: tuple[bool, str] | None = None,
) -> JobResult:
    """Track, register and (if it is better) promote a fitted model.

    Parameters
    ----------
    family : str
        Model family.
    model : estimator
        The fitted model.
    config : JobConfig
        Job config (logged as parameters).
    manifest : mapping
        The training-set manifest (see :class:`~retain.training.dataset.TrainingSet`), logged
        with the feature list and view versions it names.
    workspace : str
        Folder holding ``mlruns/``.
    settings : mapping
        Model settings and learned values worth seeing in the run (``model.*`` parameters).
    metrics : mapping
        Validation metrics, logged as ``valid.<name>``.
    figures, tables : mapping
        Artifact path to matplotlib Figure / DataFrame.
    score : callable
        ``score(model) -> float``: the primary metric of a model on the validation rows; applied
        to this model and to the current champion.
    input_example : DataFrame
        A few rows of model input.
    predict_method : str
        Method scoring calls (``predict_proba`` or ``predict``).
    run_name : str, optional
        MLflow run name.
    documents : mapping, optional
        Artifact path to a JSON-serialisable object (e.g. the drift reference).
    baselines : (bool, str), optional
        Whether the model beats the baselines of this run on its validation rows, and how
        (e.g. ``(True, "roc_auc 0.94 >= btyd 0.92")``): decides the first model of a new
        lineage. Without it such a model is promoted.
    """
    tracking.use_workspace(workspace)
    champion = registry.champion(family)
    model_definition = definition(family, manifest, **label_settings(family, config))
    lineage = lineage_id(model_definition)
    with tracking.training_run(family, workspace, run_name=run_name) as run:
        tracking.log_params_flat(_config_params(config))
        tracking.log_params_flat(dict(settings), prefix="model.")
        logged = tracking.log_metrics_prefixed(dict(metrics), "valid")
        tracking.log_json(dict(manifest), "training_set.json")
        tracking.log_json({**model_definition, "lineage": lineage}, "definition.json")
        mlflow.set_tags({"lineage": lineage, "definition": describe_definition(model_definition)})
        tracking.log_json(_feature_list(manifest, input_example), "features.json")
        for path, figure in figures.items():
            tracking.log_figure(figure, path)
        for path, frame in tables.items():
            tracking.log_frame(frame, path)
        for path, document in (documents or {}).items():
            tracking.log_json(document, path)
        info = tracking.log_model(model, _example(input_example), predict_method=predict_method)
        challenger_score = float(score(model))
        mlflow.log_metric(f"gate.{config.primary_metric}", challenger_score)
        version = registry.register(
            info.model_uri, family, run.info.run_id,
            primary_metric=config.primary_metric, score=challenger_score,
            tags={"lineage": lineage, "definition": describe_definition(model_definition)},
        )  # fmt: skip
        champion_lineage = registry.lineage_of(champion) if champion is not None else None
        if champion is not None and champion_lineage != lineage:
            decision = registry.decide_new_lineage(
                family, version.version, metric=config.primary_metric,
                challenger_score=challenger_score, champion_version=str(champion.version),
                verdict=baselines or (True, "no baselines to compare"),
            )  # fmt: skip
        else:
            decision = _gate(family, version.version, champion, challenger_score, score, config)
        mlflow.set_tag("promotion_decision", decision.reason)
    return JobResult(
        family, run.info.run_id, str(version.version), decision, logged,
        dict(manifest), model,
    )  # fmt: skip


def label_settings(family: str, config: JobConfig) -> dict[str, Any]:
    """Config settings besides horizon and population that change a family's label."""
    return {"margin_rate": config.margin_rate} if family == "clv" else {}


def _gate(family, version, champion, challenger_score, score, config) -> registry.Decision:
    """Score the champion on the same validation rows, then let the registry decide.

    A champion that cannot score these rows (e.g. it was trained on other feature definitions)
    is kept; the reason is logged and ``retain models promote`` decides by hand.
    """
    champion_score = None
    if champion is not None:
        try:
            champion_model = registry.load_model(family, str(champion.version))
            champion_score = float(score(champion_model))
            mlflow.log_metric(f"gate.champion_{config.primary_metric}", champion_score)
        except (ValueError, KeyError) as error:
            mlflow.set_tag("champion_not_scored", str(error)[:5000])
    return registry.decide(
        family, version, metric=config.primary_metric, challenger_score=challenger_score,
        champion_score=champion_score, min_improvement=config.min_improvement,
    )  # fmt: skip
