"""``retain train clv``: BTYD and ML models of future net margin, compared on a later cutoff.

Both predict the net margin of the next ``horizon_days`` for the customers active at each
cutoff. They are compared on the validation cutoff by normalized Gini (the primary metric),
Spearman correlation, decile MAPE and total error of the undiscounted prediction against the
realised margin; the better one is what the registered ``CLVModel`` predicts with. CLV itself
(what scoring reports) is discounted monthly.

Where serving customers costs something (the ``costs`` log, the ``costs:`` of ``retain.yaml``),
a third regressor learns the future cost to serve (``future_cost``, the same xgboost settings)
and CLV becomes expected discounted net *profit*: each method's margin less that cost, or, where
the features hold the cost and margin to date and validation prefers it, less the margin times
the customer's own cost share (:func:`retain.models.clv.value.cost_share`). The
methods are then compared, and the champion gate scores, on realised net profit
(``future_profit``); without costs that is the net margin, and every number is as before.

The served model then learns the latest behaviour (``refit`` in the config): BTYD is fitted
again on the validation cutoff's purchase summaries and the spend regressor grown again on the
training and validation rows; the metrics and the champion gate use the model before that
(``holdout_``), out of time.

When no label window of the configured horizon fits the data (a 365-day CLV on nine months of
history), the job falls back to BTYD, which needs none, for the configured horizon: it is
evaluated out of time over the longest window that fits (:func:`retain.training.plan.
clv_label_horizon`), says so in one warning and in the run, and trains no ML spend model.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from datetime import date

import numpy as np
import pandas as pd

from retain import plots
from retain.engines import Engine, get_engine
from retain.features import FeatureStore, SourceData
from retain.metrics.model import decile_table, normalized_gini, value_metrics
from retain.models.clv.value import BTYD_COLUMNS, BTYDValue, CLVModel, MLValue
from retain.models.spend import SpendRegressor
from retain.progress import ProgressReporter, null_progress
from retain.training.config import CLVConfig, check_estimator_settings
from retain.training.dataset import (
    TrainingSet,
    TrainingWarning,
    build_training_set,
    data_span,
    describe_cutoffs,
)
from retain.training.plan import clv_label_horizon
from retain.training.publish import JobResult, publish

__all__ = [
    "assemble_clv",
    "evaluate_clv",
    "fit_btyd_clv",
    "fit_clv",
    "holdout_clv",
    "margin_share",
    "refit_clv",
    "train_clv",
]

LABEL = "future_margin"
#: Realised future cost to serve, and net profit (margin - cost): what CLV predicts with costs.
COST_LABEL = "future_cost"
VALUE_LABEL = "future_profit"


def margin_share(
    sources: SourceData, before: date, margin_rate: float, engine: Engine | None = None
) -> float:
    """Net margin per unit of gross spend in the transactions before ``before`` (see
    :func:`retain.engines.rules.margin_share`), on ``engine`` (default DuckDB)."""
    return (engine or get_engine()).margin_share(sources, before, margin_rate)


def fit_clv(
    training_set: TrainingSet, config: CLVConfig, settings: dict, sources: SourceData
) -> CLVModel:
    """Fit both CLV methods on the engine holding the rows: BTYD on the latest training
    cutoff's summaries (each customer counts once, on the driver), the spend regressor on the
    training rows, early-stopped on validation; the method is chosen on validation."""
    engine = _engine(training_set)
    latest = max(training_set.split.training)
    share = margin_share(sources, latest, config.margin_rate, engine)
    summaries = engine.rows_at(training_set.rows, latest, _btyd_columns(training_set))
    btyd = BTYDValue(config.btyd, config.horizon_days, config.discount_rate_monthly)
    btyd.fit(summaries, margin_share=share)
    regressor = SpendRegressor(**settings, random_state=config.seed)
    regressor = engine.fit_trees(training_set, regressor, LABEL)
    valid = training_set.validation
    eval_set = valid[list(training_set.features)], valid[VALUE_LABEL].to_numpy(float)
    return assemble_clv(
        config, settings, btyd, regressor, eval_set, cost=_fit_cost(training_set, config, settings),
        eval_cost=valid[COST_LABEL].to_numpy(float),
    )  # fmt: skip


def has_costs(training_set: TrainingSet) -> bool:
    """Whether any training or validation row has a future cost to serve (the driver's rows)."""
    frame = training_set.frame
    return COST_LABEL in frame and bool((frame[COST_LABEL] != 0).any())


def _fit_cost(training_set: TrainingSet, config: CLVConfig, settings: dict) -> MLValue | None:
    """The regressor of future cost to serve (the spend regressor's settings), on the engine
    holding the rows; ``None`` when nothing costs."""
    if not has_costs(training_set):
        return None
    regressor = SpendRegressor(**settings, random_state=config.seed)
    regressor = _engine(training_set).fit_trees(training_set, regressor, COST_LABEL)
    cost = MLValue(config.horizon_days, config.discount_rate_monthly, settings, config.seed)
    return cost.fit_from_regressor(regressor)


def _engine(training_set: TrainingSet) -> Engine:
    return training_set.engine or get_engine()


def _btyd_columns(training_set: TrainingSet) -> list[str]:
    return [name for name in BTYD_COLUMNS if name in training_set.features]


def fit_btyd_clv(
    training_set: TrainingSet, config: CLVConfig, settings: dict, sources: SourceData, window: int
) -> CLVModel:
    """CLV from BTYD alone, for the configured horizon, when no label window of it fits.

    The model the metrics describe (``holdout_``) predicts the training set's shorter label
    window from the latest training cutoff's summaries; the served one predicts the configured
    horizon from the validation cutoff's summaries (which hold no label either). No ML spend
    model is trained: it would learn the shorter window's value.
    """
    features = list(training_set.features)
    split, engine = training_set.split, _engine(training_set)
    valid = training_set.validation
    eval_set = valid[features], valid[VALUE_LABEL].to_numpy(float)
    latest = max(split.training)
    latest_training = engine.rows_at(training_set.rows, latest, features)
    share = margin_share(sources, latest, config.margin_rate, engine)
    evaluated = BTYDValue(config.btyd, window, config.discount_rate_monthly)
    holdout = dataclasses.replace(config, horizon_days=window)
    holdout_model = _clv_model(holdout, settings).fit_from_parts(
        evaluated.fit(latest_training, margin_share=share), None, eval_set
    )
    share = margin_share(sources, min(split.validation), config.margin_rate, engine)
    served = BTYDValue(config.btyd, config.horizon_days, config.discount_rate_monthly)
    served.fit(valid[features], margin_share=share)
    return _clv_model(config, settings).fit_from_parts(
        served, None, eval_set, holdout=holdout_model
    )


def refit_clv(
    training_set: TrainingSet, model: CLVModel, config: CLVConfig, sources: SourceData
) -> CLVModel:
    """Refit ``model`` for the latest behaviour (see :meth:`CLVModel.refit`): BTYD on the
    validation cutoff's summaries (on the driver), the spend regressor grown again on every
    training and validation row (on the engine holding them)."""
    engine = _engine(training_set)
    share = margin_share(sources, min(training_set.split.validation), config.margin_rate, engine)
    ml = cost = None
    if model.ml_ is not None:  # a copy: the model before the refit keeps its regressor
        ml = copy.copy(model.ml_)
        ml.regressor_ = engine.refit_trees(training_set, copy.copy(ml.regressor_), LABEL)
    if getattr(model, "cost_", None) is not None:
        cost = copy.copy(model.cost_)
        cost.regressor_ = engine.refit_trees(training_set, copy.copy(cost.regressor_), COST_LABEL)
    frame = training_set.frame
    return model.refit(
        frame[list(training_set.features)], frame[LABEL].to_numpy(float),
        btyd_rows=(frame["split"] == "validation").to_numpy(), margin_share=share, ml=ml,
        cost=cost,
    )  # fmt: skip


def holdout_clv(model: object) -> object:
    """The model as fitted before a refit (``holdout_``), else the model: what validation
    metrics and the champion gate describe."""
    return getattr(model, "holdout_", None) or model


def assemble_clv(
    config: CLVConfig,
    settings: dict,
    btyd: BTYDValue,
    regressor: SpendRegressor,
    eval_set: tuple[pd.DataFrame, np.ndarray],
    cost: MLValue | None = None,
    eval_cost: np.ndarray | None = None,
) -> CLVModel:
    """A :class:`CLVModel` of ``config`` from parts fitted apart (the spend regressor on the
    engine), the method chosen on ``eval_set`` as :meth:`CLVModel.fit` chooses it.

    Parameters
    ----------
    config : CLVConfig
        Horizon, discount rate, BTYD model and seed.
    settings : dict
        The regressor's settings (recorded on the ML part).
    btyd : BTYDValue
        Fitted BTYD value model.
    regressor : SpendRegressor
        Fitted regressor of future net margin.
    eval_set : (DataFrame, array-like)
        Validation features and realised net profit (net margin without costs).
    cost : MLValue, optional
        Fitted regressor of the future cost to serve (see :func:`has_costs`).
    eval_cost : array-like, optional
        Realised future cost to serve of the ``eval_set`` rows: what the cost share is scaled
        to and judged on against ``cost`` (see :attr:`CLVModel.cost_method_`).
    """
    ml = MLValue(config.horizon_days, config.discount_rate_monthly, settings, config.seed)
    return _clv_model(config, settings).fit_from_parts(
        btyd, ml.fit_from_regressor(regressor), eval_set, cost=cost, eval_cost=eval_cost
    )


def _clv_model(config: CLVConfig, settings: dict) -> CLVModel:
    return CLVModel(
        purchase_model=config.btyd,
        horizon_days=config.horizon_days,
        discount_rate_monthly=config.discount_rate_monthly,
        settings=settings,
        random_state=config.seed,
    )


def evaluate_clv(
    model: CLVModel, training_set: TrainingSet, truth: pd.DataFrame | None, horizon_days: int
) -> tuple[dict[str, dict[str, float]], dict[str, pd.DataFrame]]:
    """Value metrics and decile tables of both methods (and the oracle) on validation."""
    valid = training_set.validation
    X_valid = valid[list(training_set.features)]
    actual = valid[VALUE_LABEL].to_numpy(float)
    predictions = {"btyd": model.net(model.btyd_, X_valid, discounted=False)}
    if model.ml_ is not None:
        predictions["ml"] = model.net(model.ml_, X_valid, discounted=False)
    if truth is not None and valid["as_of"].nunique() == 1:
        from retain.data.oracle import oracle

        expected = oracle(truth, valid["as_of"].iloc[0].date(), horizon_days)
        costs = getattr(model, "cost_", None) is not None and "expected_profit" in expected
        expected = expected["expected_profit" if costs else "expected_margin"]
        expected.index = expected.index.astype(str)  # ids are read as text
        oracle_margin = expected.reindex(valid["customer_id"].astype(str).to_numpy())
        if np.isfinite(oracle_margin.to_numpy(float)).all():  # a truth of these customers
            predictions["oracle"] = oracle_margin.to_numpy(float)
    metrics = {name: value_metrics(actual, value) for name, value in predictions.items()}
    metrics["model"] = dict(metrics[model.method_])
    deciles = {name: decile_table(actual, value) for name, value in predictions.items()}
    return metrics, deciles


def train_clv(
    config: CLVConfig,
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
    """Build the training set, fit both CLV methods, evaluate, track and register.

    Parameters are those of :func:`retain.training.churn.train_churn`; ``settings`` override
    the ``SpendRegressor`` settings of ``config.model``; ``engine`` builds the set and fits
    both methods elsewhere (e.g. on Spark).
    """
    settings = {**config.model, **(settings or {})}
    check_estimator_settings(SpendRegressor, settings, config)
    if config.btyd not in ("bgnbd", "pareto_nbd"):
        from retain.errors import ConfigError

        raise ConfigError(f"{config.source}: btyd must be bgnbd or pareto_nbd, got {config.btyd!r}")
    window, fallback = clv_label_horizon(config, *data_span(sources))
    if fallback:
        warnings.warn(fallback, TrainingWarning, stacklevel=2)
    labelled = dataclasses.replace(config, horizon_days=window)
    training_set = build_training_set(labelled, sources, store, engine=engine, progress=progress)
    progress(f"features and labels ready: {describe_cutoffs(training_set.manifest)}")
    training_set.manifest.update(horizon_days=config.horizon_days, label_window_days=window)
    if fallback:
        model = fit_btyd_clv(training_set, config, settings, sources, window)
        progress(f"BTYD fitted for {config.horizon_days} days (no ML spend model: {window}-day "
                 "label windows only)")  # fmt: skip
    else:
        model = fit_clv(training_set, config, settings, sources)
        progress(f"models fitted; {model.method_} chosen (Gini {model.validation_gini_})")
        if config.refit:
            model = refit_clv(training_set, model, config, sources)
            progress("refitted on the latest cutoffs")
    evaluated = holdout_clv(model)
    metrics, deciles = evaluate_clv(evaluated, training_set, truth, window)
    valid = training_set.validation
    X_valid, actual = valid[list(training_set.features)], valid[VALUE_LABEL].to_numpy(float)
    learned = {
        "method": model.method_,
        "label_window_days": window,
        "fallback": fallback or "",
        "refit": bool(config.refit and not fallback),
        "margin_share": model.btyd_.margin_share_,
        **{f"btyd_{key}": value for key, value in model.btyd_.purchase_model_.params_.items()},
        **{f"gamma_gamma_{key}": value for key, value in model.btyd_.spend_model_.params_.items()},
    }
    if evaluated.ml_ is not None:
        learned["ml_best_iteration"] = evaluated.ml_.regressor_.best_iteration_
    if getattr(evaluated, "cost_", None) is not None:
        learned["cost_best_iteration"] = evaluated.cost_.regressor_.best_iteration_
        learned["cost_method"] = evaluated.cost_method_
        learned.update({f"cost_share_scale_{k}": v for k, v in evaluated.cost_scales_.items()})
    return publish(
        "clv",
        model,
        config,
        training_set.manifest,
        workspace=workspace,
        settings={**settings, **learned},
        metrics={f"{name}_{k}": v for name, values in metrics.items() for k, v in values.items()},
        figures={f"plots/deciles_{name}.png": plots.decile_plot(t) for name, t in deciles.items()},
        tables={f"evaluation/deciles_{name}.csv": t for name, t in deciles.items()},
        score=lambda candidate: normalized_gini(
            actual, np.asarray(holdout_clv(candidate).predict(X_valid, discounted=False))
        ),
        input_example=X_valid.head(5),
        predict_method="predict",
        run_name=run_name,
        baselines=_baseline_verdict(metrics),
    )


def _baseline_verdict(metrics: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """The model's validation Gini against BTYD's (the baseline) and 0: what the first model
    of a new lineage must pass."""
    ours, theirs = metrics["model"]["gini"], metrics["btyd"]["gini"]
    return ours > 0 and ours >= theirs, f"gini {ours:.4f} against btyd {theirs:.4f}"
