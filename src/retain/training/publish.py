"""The end of every training job: one tracked MLflow run, a registered version, a guarded promotion.

A job hands over its fitted model, its validation metrics, plots and tables; this module logs
them with the config, the training-set manifest and the feature list (with view versions),
registers the model as ``challenger`` and promotes it to ``champion`` only if it beats the
current champion on the primary metric measured on the *same* validation rows. Nothing is
registered when a job fails before this point.

Champion and challenger are compared only within a lineage (:mod:`retain.mlflow.lineage`):
same label definition and feature set. The first model of a new lineage (after a change of
horizon, population or features) is judged against the baselines of its own run instead, on
its own validation rows, and becomes champion when it passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient

from retain.errors import ModelFileError
from retain.mlflow import registry, tracking
from retain.mlflow.lineage import definition, describe_definition, lineage_id
from retain.training.config import JobConfig

__all__ = ["JobResult", "model_params", "publish", "run_name_of"]

#: Depth to which the settings of fitted sub-models (``ml_`` -> ``regressor_``) are logged.
_PARAM_DEPTH = 3


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
    params = config.run_params()
    params.pop("model", None)
    return params


def _feature_list(manifest: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "features": [
            {"name": name, "dtype": str(frame[name].dtype)} for name in manifest["features"]
        ],
        "views": manifest["feature_views"],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(item) for item in value)
    return value


def model_params(model: Any, _depth: int = 0) -> dict[str, Any]:
    """The settings a fitted model actually used, nested by part.

    ``get_params(deep=False)`` of the model (defaults included, so a model trained from an empty
    folder logs them too), and the same for each fitted part that is one of retain's estimators
    (``ml_`` -> ``regressor_``), under the part's name without the trailing ``_``. Callbacks and
    other objects are left out; sequences become comma-separated strings.
    """
    if not hasattr(model, "get_params"):
        return {}
    params = {
        key: _plain(value)
        for key, value in model.get_params(deep=False).items()
        if key != "callbacks"
        and (value is None or isinstance(value, str | int | float | bool | list | tuple | dict))
    }
    if _depth >= _PARAM_DEPTH:
        return params
    for name, part in vars(model).items():
        if (
            name.endswith("_")
            and not name.startswith("_")
            and type(part).__module__.startswith("retain.")
            and hasattr(part, "get_params")
        ):
            params[name.rstrip("_")] = model_params(part, _depth + 1)
    return params


def run_name_of(family: str, manifest: Mapping[str, Any], version: str | None = None) -> str:
    """``churn-2026-01-01-v3``: the family, the end of the data it learned from, the version.

    The date is the manifest's ``data_end`` (the day after the last event), else its last
    validation cutoff, else today.
    """
    cutoffs = list(manifest.get("validation_cutoffs") or [])
    day = manifest.get("data_end") or (cutoffs[-1] if cutoffs else date.today().isoformat())
    return f"{family}-{day}" + (f"-v{version}" if version is not None else "")


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
    parts: Mapping[str, Any] | None = None,
    started_at: float | None = None,
    baselines: tuple[bool, str] | None = None,
    baselines_required: bool = False,
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
        Model settings and learned values worth seeing in the run (``model.*`` parameters),
        logged with every setting the model actually used (:func:`model_params`).
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
        A suffix of the run name, which is ``<family>-<data end>-v<version>`` (e.g.
        ``churn-2026-01-01-v3-tuned``).
    documents : mapping, optional
        Artifact path to a JSON-serialisable object (e.g. the drift reference).
    parts : mapping, optional
        Other fitted models logged inside the model for its pyfunc flavour (segments:
        ``{"clv": model}``; see :func:`retain.mlflow.tracking.log_model`).
    started_at : float, optional
        When the job started (``time.time()``), so that the run's duration covers building the
        training set and the fit; default the start of the job clock
        (:func:`retain.mlflow.tracking.job_clock`), else now.
    baselines : (bool, str), optional
        Whether the model beats the baselines of this run on its validation rows, and how
        (e.g. ``(True, "roc_auc 0.94 >= btyd 0.92")``): decides the first model of a new
        lineage. Without it such a model is promoted.
    baselines_required : bool, default=False
        A model that does not beat ``baselines`` is never promoted, champion or not (uplift).
    """
    tracking.use_workspace(workspace)
    champion = registry.champion(family)
    model_definition = definition(family, manifest, **label_settings(family, config))
    lineage = lineage_id(model_definition)
    start = started_at if started_at is not None else tracking.job_started()
    base_name = run_name_of(family, manifest)
    with tracking.training_run(family, workspace, run_name=base_name, start_time=start) as run:
        tracking.log_params_flat(_config_params(config))
        tracking.log_params_flat(
            {**tracking.flatten(model_params(model)), **tracking.flatten(dict(settings))},
            prefix="model.",
        )
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
        info = tracking.log_model(
            model, _example(input_example), predict_method=predict_method,
            output=tracking.FAMILY_OUTPUTS.get(family), parts=parts,
        )  # fmt: skip
        challenger_score = float(score(model))
        mlflow.log_metric(f"gate.{config.primary_metric}", challenger_score)
        version = registry.register(
            info.model_uri, family, run.info.run_id,
            primary_metric=config.primary_metric, score=challenger_score,
            tags={"lineage": lineage, "definition": describe_definition(model_definition)},
        )  # fmt: skip
        champion_lineage = registry.lineage_of(champion) if champion is not None else None
        if baselines_required and baselines is not None and not baselines[0]:
            decision = registry.refuse(
                family, version.version, metric=config.primary_metric,
                challenger_score=challenger_score, verdict=baselines[1],
            )  # fmt: skip
        elif champion is not None and champion_lineage != lineage:
            decision = registry.decide_new_lineage(
                family, version.version, metric=config.primary_metric,
                challenger_score=challenger_score, champion_version=str(champion.version),
                verdict=baselines or (True, "no baselines to compare"),
            )  # fmt: skip
        else:
            decision = _gate(family, version.version, champion, challenger_score, score, config)
        mlflow.set_tag("promotion_decision", decision.reason)
        name = run_name_of(family, manifest, str(version.version))
        MlflowClient().update_run(run.info.run_id, name=f"{name}-{run_name}" if run_name else name)
    return JobResult(
        family, run.info.run_id, str(version.version), decision, logged,
        dict(manifest), model,
    )  # fmt: skip


def label_settings(family: str, config: JobConfig) -> dict[str, Any]:
    """Config settings besides horizon and population that change a family's label."""
    return {"margin_rate": config.margin_rate} if family in ("clv", "uplift") else {}


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
        except (ValueError, KeyError, ModelFileError) as error:  # unverifiable: never unpickled
            mlflow.set_tag("champion_not_scored", str(error)[:5000])
    return registry.decide(
        family, version, metric=config.primary_metric, challenger_score=challenger_score,
        champion_score=champion_score, min_improvement=config.min_improvement,
    )  # fmt: skip
