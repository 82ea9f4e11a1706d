"""``retain tune churn|clv``: Optuna TPE search over the xgboost settings, then one final fit.

The study lives in ``<workspace>/mlruns/optuna.db`` under a name that includes the data
fingerprint and the job's settings, so running the command again on the same data and config
resumes it. Each trial is a nested MLflow run under one parent run. Every 10 boosting rounds a
trial reports the objective itself (ROC-AUC for churn, normalized Gini of the ML value model for
CLV) on the validation rows, so a pruned trial's value is the same measure as a completed
trial's; trials behind the median of earlier trials at the same round are pruned. Each trial
prints its value and the best so far, as Optuna's own log does.

The best settings then train the final model through the normal training job, which registers
it and applies the champion gate. When the best trial is one whose settings were already
trained (a resumed study whose new trials found nothing better), nothing new is registered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import xgboost

from retain.features import FeatureStore, SourceData
from retain.metrics.model import normalized_gini, roc_auc
from retain.mlflow import tracking
from retain.models._xgboost import encode_features, learn_categories
from retain.progress import ProgressReporter, null_progress
from retain.training.config import JobConfig
from retain.training.dataset import TrainingSet, build_training_set
from retain.training.publish import JobResult

__all__ = [
    "PruningCallback",
    "TuningResult",
    "ValidationScorer",
    "format_settings",
    "search_space",
    "study_storage",
    "tune",
]

#: Label column and objective of each family's trials.
LABELS = {"churn": "churned", "clv": "future_margin"}
#: Study attributes recording the trial whose settings trained a registered model.
TRAINED_TRIAL, TRAINED_VERSION = "trained_trial", "trained_version"


class ValidationScorer:
    """The tuning objective of a partly boosted model on the validation rows.

    The validation features are encoded once, as the estimators encode them (categories
    learned from the training rows), so each report costs one prediction.

    Parameters
    ----------
    family : {"churn", "clv"}
        ROC-AUC of the predicted probability (churn) or normalized Gini of the predicted
        value (CLV), the measures the trials' final values use.
    training_set : TrainingSet
        Training rows (for the encoding) and validation rows (scored).
    """

    def __init__(self, family: str, training_set: TrainingSet) -> None:
        features = list(training_set.features)
        valid = training_set.validation
        categories = learn_categories(training_set.train[features])
        encoded = encode_features(valid[features], np.asarray(features), categories, "X_valid")
        self.family = family
        self.matrix = xgboost.DMatrix(encoded, enable_categorical=True)
        self.actual = valid[LABELS[family]].to_numpy(float)

    def __call__(self, booster: xgboost.Booster, rounds: int) -> float:
        """The objective of the first ``rounds`` trees."""
        predicted = booster.predict(self.matrix, iteration_range=(0, rounds))
        if self.family == "churn":
            return float(roc_auc(self.actual.astype(int), predicted))
        return float(normalized_gini(self.actual, predicted))


class PruningCallback(xgboost.callback.TrainingCallback):
    """Report the trial's objective every few rounds to Optuna; prune when told to.

    The reported value is the objective itself (``scorer``), not xgboost's training loss, so
    a pruned trial's value (Optuna keeps the last one reported) compares with the values of
    completed trials.
    """

    def __init__(self, trial: optuna.Trial, scorer: Callable[..., float], every: int = 10):
        self.trial = trial
        self.scorer = scorer
        self.every = every

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        if epoch == 0 or epoch % self.every:
            return False
        value = self.scorer(model, epoch + 1)
        if not math.isfinite(value):
            return False
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at round {epoch} ({value:.4f})")
        return False


def format_settings(settings: dict[str, Any], digits: int = 4) -> str:
    """``learning_rate 0.0423, max_depth 5``: floats to ``digits`` significant digits."""
    return ", ".join(
        f"{name} {value:.{digits}g}" if isinstance(value, float) else f"{name} {value}"
        for name, value in settings.items()
    )


def search_space(trial: optuna.Trial, family: str) -> dict[str, Any]:
    """xgboost settings drawn for one trial (the same space for churn and CLV, plus tweedie)."""
    settings = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
    }
    if family == "clv":
        settings["tweedie_variance_power"] = trial.suggest_float("tweedie_variance_power", 1.1, 1.9)
    return settings


def study_storage(workspace: str | Path) -> str:
    """The sqlite URL of the workspace's Optuna studies."""
    folder = Path(workspace).resolve() / "mlruns"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


@dataclass(frozen=True)
class TuningResult:
    """The outcome of ``retain tune``.

    ``final`` is the job trained with the best settings, or ``None`` when they had been
    trained before (``note`` says which version holds them).
    """

    study_name: str
    trials: int
    completed: int
    pruned: int
    best_value: float
    best_settings: dict[str, Any]
    final: JobResult | None
    best_trial: int = 0
    resumed_from: int = 0
    note: str = ""


def _objective(family: str, config: JobConfig, training_set: TrainingSet, pruning: bool):
    """``trial -> validation score`` (ROC-AUC for churn, Gini of the ML value model for CLV)."""
    valid = training_set.validation
    scorer = ValidationScorer(family, training_set) if pruning else None

    def objective(trial: optuna.Trial) -> float:
        settings = {**config.model, **search_space(trial, family)}
        callbacks = [PruningCallback(trial, scorer)] if scorer is not None else None
        with tracking.child_run(f"trial-{trial.number}", settings):
            score = _fit_and_score(family, config, training_set, settings, callbacks)
            tracking.log_metrics_prefixed({config.primary_metric: score}, "valid")
        return score

    def _fit_and_score(family, config, training_set, settings, callbacks) -> float:
        if family == "churn":
            from retain.training.churn import fit_churn

            model = fit_churn(training_set, settings, config.seed, callbacks)
            return roc_auc(valid["churned"].to_numpy(int), model.oof_probability_)
        from retain.models.clv.value import MLValue

        features = list(training_set.features)
        train = training_set.train
        model = MLValue(config.horizon_days, settings=settings, random_state=config.seed)
        model.fit(
            train[features], train["future_margin"].to_numpy(float),
            eval_set=(valid[features], valid["future_margin"].to_numpy(float)),
            callbacks=callbacks,
        )  # fmt: skip
        actual = valid["future_margin"].to_numpy(float)
        return normalized_gini(actual, model.predict(valid[features], discounted=False))

    return objective


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no completed trial yet
        return None


def _trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, metric: str) -> str:
    """One line per trial, as Optuna logs it: its value and the best so far."""
    best = _best(study)
    so_far = f"best {best.value:.4f} (trial {best.number})" if best is not None else "no best yet"
    if trial.state == optuna.trial.TrialState.PRUNED:
        step = trial.last_step
        at = f" at round {step} ({metric} {trial.intermediate_values[step]:.4f})" if step else ""
        return f"trial {trial.number}: pruned{at}; {so_far}"
    if trial.state == optuna.trial.TrialState.COMPLETE:
        return f"trial {trial.number}: {metric} {trial.value:.4f}; {so_far}"
    return f"trial {trial.number}: {trial.state.name.lower()}; {so_far}"


def tune(
    family: str,
    config: JobConfig,
    sources: SourceData,
    store: FeatureStore,
    *,
    train: Callable[..., JobResult],
    workspace: str = ".",
    trials: int | None = None,
    timeout_minutes: float | None = None,
    progress: ProgressReporter = null_progress,
) -> TuningResult:
    """Search settings for ``family`` (``churn`` or ``clv``), then train the final model.

    Parameters
    ----------
    family : {"churn", "clv"}
        Model family.
    config : JobConfig
        The family's config (its ``tuning`` section gives defaults).
    sources, store :
        Data and feature store.
    train : callable
        The family's training job (``train_churn`` / ``train_clv``), run with the best settings.
    trials : int, optional
        New trials to run in this call (default ``config.tuning.trials``).
    timeout_minutes : float, optional
        Stop starting trials after this long.
    """
    settings = config.tuning
    trials = settings.trials if trials is None else trials
    training_set = build_training_set(config, sources, store, progress=progress)
    if family == "churn":
        training_set.check_classes("churned", config.min_class_rows)
    study = _study(family, config, training_set, workspace)
    before = len(study.trials)
    if before:
        earlier = _best(study)
        best_so_far = f"; best {earlier.value:.4f} (trial {earlier.number})" if earlier else ""
        progress(f"resuming study {study.study_name}: {before} earlier trials{best_so_far}")
    objective = _objective(family, config, training_set, settings.pruning)
    tracking.use_workspace(workspace)
    timeout = timeout_minutes if timeout_minutes is not None else settings.timeout_minutes
    metric = config.primary_metric
    with tracking.training_run(family, workspace, run_name=f"tune-{study.study_name}"):
        study.optimize(
            objective, n_trials=trials, timeout=None if timeout is None else timeout * 60,
            callbacks=[lambda study, trial: progress(_trial_line(study, trial, metric))],
        )  # fmt: skip
        counts = _counts(study, before)
        best_trial = _best(study)
        if best_trial is None:
            from retain.errors import RetainError

            raise RetainError(
                f"no trial of study {study.study_name} completed ({counts['pruned']} pruned): "
                "run more trials, or turn pruning off (tuning.pruning: false)"
            )
        tracking.log_metrics_prefixed({"best_value": best_trial.value, **counts}, "tuning")
        tracking.log_params_flat(best_trial.params, prefix="best.")
    best = {**best_trial.params}
    name = f"retain-{family}"
    trained_trial = study.user_attrs.get(TRAINED_TRIAL)
    if trained_trial == best_trial.number:
        version = study.user_attrs.get(TRAINED_VERSION)
        note = (
            f"nothing new to try: no new trial beat trial {best_trial.number} ({metric} "
            f"{best_trial.value:.4f}), whose settings were trained as {name} v{version}; "
            "nothing registered"
        )
        progress(note)
        final = None
    else:
        with tracking.job_clock():
            final = train(
                config, sources, store, workspace=workspace, settings=best, run_name="tuned"
            )
        study.set_user_attr(TRAINED_TRIAL, best_trial.number)
        study.set_user_attr(TRAINED_VERSION, final.version)
        note = f"trial {best_trial.number}'s settings trained {name} v{final.version}"
    return TuningResult(
        study.study_name, counts["trials"], counts["completed"], counts["pruned"],
        float(best_trial.value), best, final, best_trial.number, before, note,
    )  # fmt: skip


def _config_key(config: JobConfig, training_set: TrainingSet) -> str:
    """Six hex digits of what the objective depends on besides the data: the job's settings
    (horizon, cutoffs, model base, seed) and the features, but not the tuning budget."""
    settings = dataclasses.asdict(config)
    for name in ("tuning", "source", "data", "store", "mapping"):
        settings.pop(name, None)
    settings["features"] = list(training_set.features)
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _study(family: str, config: JobConfig, training_set: TrainingSet, workspace) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fingerprint = training_set.manifest["data_fingerprint"][:8]
    fingerprint = f"{fingerprint}-{_config_key(config, training_set)}"
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=config.tuning.startup_trials, n_warmup_steps=20
        )
        if config.tuning.pruning
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        study_name=f"retain-{family}-{fingerprint}",
        storage=study_storage(workspace),
        direction="maximize",
        sampler=optuna.samplers.TPESampler(
            seed=config.seed, n_startup_trials=config.tuning.startup_trials
        ),
        pruner=pruner,
        load_if_exists=True,
    )


def _counts(study: optuna.Study, before: int) -> dict[str, int]:
    states = [trial.state for trial in study.trials[before:]]
    return {
        "trials": len(states),
        "completed": int(np.sum([s == optuna.trial.TrialState.COMPLETE for s in states])),
        "pruned": int(np.sum([s == optuna.trial.TrialState.PRUNED for s in states])),
    }
