"""``retain train churn``: the xgboost churn classifier, its baselines, tracking and registration.

Rows are the customers active at each cutoff; the label is no purchase in the next
``horizon_days``. The model is early-stopped and calibrated on the validation cutoff(s); its
validation metrics use out-of-fold calibrated probabilities, so they are not flattered by the
calibrator seeing the rows it is scored on.

Never worse than BTYD: the BTYD churn model (:class:`~retain.models.BTYDChurnClassifier`,
fitted on the validation cutoff's purchase summaries, which use only events before it) is
evaluated on the same rows, and where the xgboost model's ROC-AUC does not beat it, the BTYD
model is what gets registered and served. The served xgboost model is then refitted on the
training *and* validation cutoffs (``refit`` in the config) so that it knows the latest
behaviour; the metrics reported and gated are those of the model before the refit, out of time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from retain import plots
from retain.engines import Engine, get_engine
from retain.features import FeatureStore, SourceData, age_features
from retain.metrics.drift import reference_profile
from retain.metrics.model import (
    average_precision,
    calibration_table,
    classification_metrics,
    gain_curve,
    lift_and_capture,
    roc_auc,
)
from retain.models.btyd_churn import SUMMARY_COLUMNS, BTYDChurnClassifier
from retain.models.churn import ChurnClassifier
from retain.progress import ProgressReporter, null_progress
from retain.training.baselines import (
    logistic_probability,
    oracle_no_purchase,
    recency_score,
)
from retain.training.config import ChurnConfig, check_estimator_settings
from retain.training.dataset import (
    TrainingSet,
    TrainingWarning,
    build_training_set,
    describe_cutoffs,
)
from retain.training.publish import JobResult, publish

__all__ = [
    "ChurnEvaluation",
    "baseline_verdict",
    "choose_served",
    "evaluate_churn",
    "fit_btyd_churn",
    "fit_churn",
    "holdout_churn_probability",
    "refit_churn",
    "train_churn",
]

LABEL = "churned"
SHAP_SAMPLE_ROWS = 5_000
#: How runs and lists name the served churn model.
SERVED_NAMES = {"model": "xgboost", "btyd": "btyd (bgnbd)"}


def _served_note(served: str, metrics: dict[str, dict[str, float]]) -> str:
    if "btyd" not in metrics:
        return "xgboost serves (no BTYD baseline)"
    ours, theirs = metrics["model"]["roc_auc"], metrics["btyd"]["roc_auc"]
    if served == "model":
        return f"xgboost serves (ROC-AUC {ours:.4f} against BTYD {theirs:.4f})"
    return f"BTYD serves: xgboost ROC-AUC {ours:.4f} does not beat BTYD {theirs:.4f}"


@dataclass(frozen=True)
class ChurnEvaluation:
    """Validation results of a churn model and its baselines.

    Attributes
    ----------
    metrics : dict of str to dict
        Per model (``model``, ``model_uncalibrated``, ``logistic``, ``btyd``, ``recency_rule``
        and, on simulated data, ``oracle``), its metrics; ``btyd`` is missing when the
        repository has no BTYD summary features.
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
    """Fit the classifier on the training rows, early-stopped and calibrated on validation, on
    the engine holding the rows (``callbacks``, e.g. a tuning trial's pruning, run in this
    process only)."""
    model = ChurnClassifier(**settings, random_state=seed, callbacks=callbacks)
    return _engine(training_set).fit_trees(training_set, model, LABEL)


def refit_churn(training_set: TrainingSet, model: ChurnClassifier) -> ChurnClassifier:
    """Refit ``model``'s trees on the training and validation rows, in place (see
    :meth:`ChurnClassifier.refit`)."""
    return _engine(training_set).refit_trees(training_set, model, LABEL)


def _engine(training_set: TrainingSet) -> Engine:
    return training_set.engine or get_engine()


def fit_btyd_churn(
    training_set: TrainingSet, horizon_days: int, seed: int
) -> BTYDChurnClassifier | None:
    """The BTYD churn model of the validation rows, or ``None`` without BTYD summary features.

    BG/NBD is fitted to the purchase summaries of the customers at the validation cutoff(s),
    which hold only events before it, so the fit sees no label; the probabilities are then
    calibrated by cross-fitting on the same rows, as the xgboost model's are.
    """
    valid = training_set.validation
    if not set(SUMMARY_COLUMNS) <= set(valid.columns):
        warnings.warn(
            f"no BTYD summary features ({', '.join(SUMMARY_COLUMNS)}) in the training set: "
            "the BTYD baseline is left out",
            TrainingWarning,
            stacklevel=2,
        )
        return None
    model = BTYDChurnClassifier("bgnbd", horizon_days, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(valid, eval_set=(valid, valid[LABEL].to_numpy(int)))
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            warnings.warn(
                "the BTYD churn model's fit stopped before the optimiser converged; its "
                "probabilities may be slightly off",
                TrainingWarning,
                stacklevel=2,
            )
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)  # fmt: skip
    return model


def choose_served(metrics: dict[str, dict[str, float]]) -> str:
    """``"model"`` (xgboost) when its validation ROC-AUC beats the BTYD baseline's, else
    ``"btyd"``: the served churn model is never worse than BTYD on the same rows."""
    if "btyd" not in metrics:
        return "model"
    return "model" if metrics["model"]["roc_auc"] > metrics["btyd"]["roc_auc"] else "btyd"


def baseline_verdict(metrics: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """Whether the served model's validation ROC-AUC is at least every baseline's that ranks
    (BTYD and the recency rule) and above 0.5, and the comparison in words: what the first
    model of a new lineage must pass."""
    served = metrics["served"]["roc_auc"]
    others = {
        name: metrics[name]["roc_auc"] for name in ("btyd", "recency_rule") if name in metrics
    }
    passed = served > 0.5 and all(served >= value for value in others.values())
    compared = ", ".join(f"{name} {value:.4f}" for name, value in others.items())
    return passed, f"roc_auc {served:.4f} against {compared or 'no baseline'}"


def holdout_churn_probability(model: object, X: pd.DataFrame) -> np.ndarray:
    """P(churn) on ``X`` of ``model`` as it was before a refit (see ``holdout_``): what the
    champion gate compares, out of time for both models. Models without one predict as is."""
    predict = getattr(model, "predict_holdout_proba", None) or model.predict_proba
    return np.asarray(predict(X))[:, 1]


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
    btyd: BTYDChurnClassifier | None = None,
) -> ChurnEvaluation:
    """Metrics of the model and its baselines on the validation rows.

    ``btyd`` is the BTYD churn model (see :func:`fit_btyd_churn`); its out-of-fold calibrated
    probabilities are compared, as the model's are.
    """
    features = list(training_set.features)
    train, valid = training_set.train, training_set.validation
    labels = valid[LABEL].to_numpy(int)
    probabilities = {
        "model": model.oof_probability_,
        "model_uncalibrated": model.oof_raw_probability_,
        "logistic": logistic_probability(train[features], train[LABEL], valid[features], seed),
    }
    if btyd is not None:
        probabilities["btyd"] = btyd.oof_probability_
    if truth is not None:
        cutoff = valid["as_of"].iloc[0].date()
        if valid["as_of"].nunique() == 1:
            oracle = oracle_no_purchase(truth, cutoff, horizon_days, valid["customer_id"])
            if np.isfinite(oracle).all():  # a truth of these very customers
                probabilities["oracle"] = oracle
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
    engine: Engine | None = None,
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
    engine : Engine, optional
        Builds the training set and fits the classifier (default: DuckDB, in this process;
        see :mod:`retain.engines`).

    Raises
    ------
    RetainError
        Bad config, incomplete label windows, too few churners or non-churners: before any run
        is started or model registered.
    """
    settings = {**config.model, **(settings or {})}
    check_estimator_settings(ChurnClassifier, settings, config)
    training_set = build_training_set(config, sources, store, engine=engine, progress=progress)
    training_set.check_classes(LABEL, config.min_class_rows)
    progress(f"features and labels ready: {describe_cutoffs(training_set.manifest)}")
    model = fit_churn(training_set, settings, config.seed)
    progress(f"model fitted ({model.best_iteration_ + 1} trees, {model.calibration_} calibration)")
    btyd = fit_btyd_churn(training_set, config.horizon_days, config.seed)
    evaluation = evaluate_churn(
        model, training_set, config.horizon_days, seed=config.seed, truth=truth, btyd=btyd
    )
    served_name = choose_served(evaluation.metrics)
    evaluation.metrics["served"] = dict(evaluation.metrics[served_name])
    progress(f"evaluated against baselines; {_served_note(served_name, evaluation.metrics)}")
    served = model if served_name == "model" else btyd
    if served_name == "model" and config.refit:
        served = refit_churn(training_set, model)
        progress("refitted on the training and validation cutoffs")
    valid = training_set.validation
    X_valid, y_valid = valid[list(training_set.features)], valid[LABEL].to_numpy(int)
    learned = {
        "served_model": SERVED_NAMES[served_name],
        "refit": bool(served_name == "model" and config.refit),
        "best_iteration": model.best_iteration_,
        "calibration": model.calibration_,
        **{f"calibration_logloss_{k}": v for k, v in model.calibration_scores_.items()},
    }
    if btyd is not None:
        learned.update({f"btyd_{k}": v for k, v in btyd.purchase_model_.params_.items()})
    return publish(
        "churn",
        served,
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
        score=lambda candidate: roc_auc(y_valid, holdout_churn_probability(candidate, X_valid)),
        input_example=X_valid.head(5),
        predict_method="predict_proba",
        run_name=run_name,
        baselines=baseline_verdict(evaluation.metrics),
        documents={
            "drift_reference.json": reference_profile(
                X_valid, list(X_valid.columns), age_features=age_features(store.repository)
            )
        },
    )
