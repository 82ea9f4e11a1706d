"""``retain tune churn|clv``: Optuna TPE search over the xgboost settings, then one final fit.

The study lives in ``<workspace>/mlruns/optuna.db`` under a name that includes the data
fingerprint, so running the command again on the same data resumes it. Each trial is a nested
MLflow run under one parent run; trials whose validation loss falls behind the median of earlier
trials at the same boosting round are pruned. The best settings then train the final model
through the normal training job, which registers it and applies the champion gate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import xgboost

from retain.features import FeatureStore, SourceData
from retain.progress import ProgressReporter, null_progress
from retain.training import tracking
from retain.training.config import JobConfig
from retain.training.dataset import TrainingSet, build_training_set
from retain.training.metrics import normalized_gini, roc_auc
from retain.training.publish import JobResult

__all__ = ["PruningCallback", "TuningResult", "search_space", "study_storage", "tune"]

HIGHER_IS_BETTER = {"auc", "aucpr", "map", "ndcg"}


class PruningCallback(xgboost.callback.TrainingCallback):
    """Report the validation metric to an Optuna trial every few rounds; prune when told to."""

    def __init__(self, trial: optuna.Trial, every: int = 10):
        self.trial = trial
        self.every = every

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        if epoch % self.every or not evals_log:
            return False
        dataset = next(iter(evals_log.values()))
        metric, values = next(iter(dataset.items()))
        value = float(values[-1])
        self.trial.report(value if metric in HIGHER_IS_BETTER else -value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at round {epoch}")
        return False


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
    """The outcome of ``retain tune``."""

    study_name: str
    trials: int
    completed: int
    pruned: int
    best_value: float
    best_settings: dict[str, Any]
    final: JobResult


def _objective(family: str, config: JobConfig, training_set: TrainingSet, pruning: bool):
    """``trial -> validation score`` (ROC-AUC for churn, Gini of the ML value model for CLV)."""
    valid = training_set.validation

    def objective(trial: optuna.Trial) -> float:
        settings = {**config.model, **search_space(trial, family)}
        callbacks = [PruningCallback(trial)] if pruning else None
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
    objective = _objective(family, config, training_set, settings.pruning)
    tracking.use_workspace(workspace)
    timeout = timeout_minutes if timeout_minutes is not None else settings.timeout_minutes
    with tracking.training_run(family, workspace, run_name=f"tune {study.study_name}"):
        study.optimize(
            objective, n_trials=trials, timeout=None if timeout is None else timeout * 60,
            callbacks=[lambda study, trial: progress(f"trial {trial.number}: {trial.state.name}")],
        )  # fmt: skip
        counts = _counts(study, before)
        tracking.log_metrics_prefixed({"best_value": study.best_value, **counts}, "tuning")
        tracking.log_params_flat(study.best_params, prefix="best.")
    best = {**study.best_params}
    final = train(config, sources, store, workspace=workspace, settings=best, run_name="tuned")
    return TuningResult(
        study.study_name, counts["trials"], counts["completed"], counts["pruned"],
        float(study.best_value), best, final,
    )  # fmt: skip


def _study(family: str, config: JobConfig, training_set: TrainingSet, workspace) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fingerprint = training_set.manifest["data_fingerprint"][:8]
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
