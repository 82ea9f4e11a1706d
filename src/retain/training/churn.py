"""``retain train churn``: the xgboost churn classifier, its baselines, tracking and registration.

Rows are the customers active at each cutoff; the label is no purchase in the next
``horizon_days``. The model is early-stopped and calibrated on the validation cutoff(s); its
validation metrics use out-of-fold calibrated probabilities, so they are not flattered by the
calibrator seeing the rows it is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retain.features import FeatureStore, SourceData
from retain.models.churn import ChurnClassifier
from retain.progress import ProgressReporter, null_progress
from retain.reports import plots
from retain.serving.drift import age_features, reference_profile
from retain.training.baselines import (
    btyd_no_purchase,
    logistic_probability,
    oracle_no_purchase,
    recency_score,
)
from retain.training.config import ChurnConfig, check_estimator_settings
from retain.training.dataset import TrainingEngine, TrainingSet, build_training_set
from retain.training.metrics import (
    average_precision,
    calibration_table,
    classification_metrics,
    gain_curve,
    lift_and_capture,
    roc_auc,
)
from retain.training.publish import JobResult, publish

__all__ = ["ChurnEvaluation", "evaluate_churn", "fit_churn", "train_churn"]

LABEL = "churned"
SHAP_SAMPLE_ROWS = 5_000


@dataclass(frozen=True)
class ChurnEvaluation:
    """Validation results of a churn model and its baselines.

    Attributes
    ----------
    metrics : dict of str to dict
        Per model (``model``, ``model_uncalibrated``, ``logistic``, ``btyd``, ``recency_rule``
        and, on simulated data, ``oracle``), its metrics.
    probabilities : dict of str to numpy.ndarray
        Validation probabilities of churn per model (and the recency rule's score).
    importance : pandas.Series
        Mean absolute SHAP contribution per feature on (a sample of) the validation rows.
    """

    metrics: dict[str, dict[str, float]]
    probabilities: dict[str, np.ndarray]
    importance: pd.Series
    labels: np.ndarray

    def flat_metrics(self) -> dict[str, float]:
        """``<model>_<metric>`` for logging."""
        return {
            f"{name}_{metric}": value
            for name, values in self.metrics.items()
            for metric, value in values.items()
        }


def fit_churn(
    training_set: TrainingSet, settings: dict, seed: int, callbacks: list | None = None
) -> ChurnClassifier:
    """Fit the classifier on the training rows, early-stopped and calibrated on validation."""
    features = list(training_set.features)
    train, valid = training_set.train, training_set.validation
    model = ChurnClassifier(**settings, random_state=seed, callbacks=callbacks)
    return model.fit(
        train[features], train[LABEL].to_numpy(int),
        eval_set=(valid[features], valid[LABEL].to_numpy(int)),
    )  # fmt: skip


def _ranking_metrics(labels: np.ndarray, score: np.ndarray) -> dict[str, float]:
    lift, capture = lift_and_capture(labels, score, 0.1)
    return {
        "roc_auc": roc_auc(labels, score),
        "pr_auc": average_precision(labels, score),
        "lift_at_top": lift,
        "capture_at_top": capture,
    }


def evaluate_churn(
    model: ChurnClassifier,
    training_set: TrainingSet,
    horizon_days: int,
    *,
    seed: int = 0,
    truth: pd.DataFrame | None = None,
) -> ChurnEvaluation:
    """Metrics of the model and its baselines on the validation rows."""
    features = list(training_set.features)
    train, valid = training_set.train, training_set.validation
    labels = valid[LABEL].to_numpy(int)
    latest = train[train["as_of"] == train["as_of"].max()]
    probabilities = {
        "model": model.oof_probability_,
        "model_uncalibrated": model.oof_raw_probability_,
        "logistic": logistic_probability(train[features], train[LABEL], valid[features], seed),
        "btyd": btyd_no_purchase(latest, valid, horizon_days)[0],
    }
    if truth is not None:
        cutoff = valid["as_of"].iloc[0].date()
        if valid["as_of"].nunique() == 1:
            probabilities["oracle"] = oracle_no_purchase(
                truth, cutoff, horizon_days, valid["customer_id"]
            )
    metrics = {name: classification_metrics(labels, p) for name, p in probabilities.items()}
    recency = recency_score(valid)
    metrics["recency_rule"] = _ranking_metrics(labels, recency)
    probabilities["recency_rule"] = recency
    sample = valid[features].sample(min(len(valid), SHAP_SAMPLE_ROWS), random_state=seed)
    return ChurnEvaluation(metrics, probabilities, model.shap_importance(sample), labels)


def _gain_points(labels: np.ndarray, probability: np.ndarray, points: int = 101) -> pd.DataFrame:
    """The cumulative gain curve at ``points`` evenly spaced shares contacted (for reports)."""
    contacted, captured = gain_curve(labels, probability)
    shares = np.linspace(0.0, 1.0, points)
    return pd.DataFrame(
        {"share_contacted": shares, "share_captured": np.interp(shares, contacted, captured)}
    )


def churn_figures(evaluation: ChurnEvaluation) -> dict[str, object]:
    """The plots logged with a churn run, by artifact file name."""
    labels, scores = evaluation.labels, evaluation.probabilities
    probabilities = {k: v for k, v in scores.items() if k != "recency_rule"}
    calibrated = {k: scores[k] for k in ("model", "model_uncalibrated", "logistic")}
    return {
        "plots/roc.png": plots.roc_plot(labels, scores),
        "plots/precision_recall.png": plots.precision_recall_plot(labels, scores),
        "plots/calibration.png": plots.calibration_plot(labels, calibrated),
        "plots/cumulative_gain.png": plots.gain_plot(labels, probabilities),
        "plots/shap_importance.png": plots.importance_plot(evaluation.importance),
    }


def train_churn(
    config: ChurnConfig,
    sources: SourceData,
    store: FeatureStore,
    *,
    workspace: str = ".",
    truth: pd.DataFrame | None = None,
    settings: dict | None = None,
    run_name: str | None = None,
    progress: ProgressReporter = null_progress,
    engine: TrainingEngine | None = None,
) -> JobResult:
    """Build the training set, fit, evaluate against baselines, track and register.

    Parameters
    ----------
    config : ChurnConfig
        Job settings (``training/churn.yaml``).
    sources : SourceData
        Validated sources.
    store : FeatureStore
        Feature snapshot store.
    workspace : str, default="."
        Folder holding ``mlruns/``.
    truth : DataFrame, optional
        The simulator's truth table: the oracle's metrics are logged as the ceiling.
    settings : dict, optional
        Model settings overriding ``config.model`` (the best trial of ``retain tune``).
    run_name : str, optional
        MLflow run name.
    progress : callable, optional
        Progress reporter.
    engine : TrainingEngine, optional
        Builds the training set and fits the classifier elsewhere (e.g.
        ``retain.spark.training.SparkTrainer``); default in this process with DuckDB.

    Raises
    ------
    RetainError
        Bad config, incomplete label windows, too few churners or non-churners: before any run
        is started or model registered.
    """
    settings = {**config.model, **(settings or {})}
    check_estimator_settings(ChurnClassifier, settings, config)
    build = engine.training_set if engine is not None else build_training_set
    training_set = build(config, sources, store, progress=progress)
    training_set.check_classes(LABEL, config.min_class_rows)
    progress("features and labels ready")
    fit = engine.fit_churn if engine is not None else fit_churn
    model = fit(training_set, settings, config.seed)
    progress(f"model fitted ({model.best_iteration_ + 1} trees, {model.calibration_} calibration)")
    evaluation = evaluate_churn(
        model, training_set, config.horizon_days, seed=config.seed, truth=truth
    )
    progress("evaluated against baselines")
    valid = training_set.validation
    X_valid, y_valid = valid[list(training_set.features)], valid[LABEL].to_numpy(int)
    learned = {
        "best_iteration": model.best_iteration_,
        "calibration": model.calibration_,
        **{f"calibration_logloss_{k}": v for k, v in model.calibration_scores_.items()},
    }
    return publish(
        "churn",
        model,
        config,
        training_set.manifest,
        workspace=workspace,
        settings={**settings, **learned},
        metrics=evaluation.flat_metrics(),
        figures=churn_figures(evaluation),
        tables={
            "importance/shap_importance.csv": evaluation.importance.rename("mean_abs_shap")
            .rename_axis("feature")
            .reset_index(),
            "evaluation/calibration_table.csv": calibration_table(
                evaluation.labels, evaluation.probabilities["model"]
            ),
            "evaluation/gain_curve.csv": _gain_points(
                evaluation.labels, evaluation.probabilities["model"]
            ),
        },
        score=lambda candidate: roc_auc(y_valid, candidate.predict_proba(X_valid)[:, 1]),
        input_example=X_valid.head(5),
        predict_method="predict_proba",
        run_name=run_name,
        documents={
            "drift_reference.json": reference_profile(
                X_valid, list(X_valid.columns), age_features=age_features(store.repository)
            )
        },
    )
