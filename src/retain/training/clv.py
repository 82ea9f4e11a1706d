"""``retain train clv``: BTYD and ML models of future net margin, compared on a later cutoff.

Both predict the net margin of the next ``horizon_days`` for the customers active at each
cutoff. They are compared on the validation cutoff by normalized Gini (the primary metric),
Spearman correlation, decile MAPE and total error of the undiscounted prediction against the
realised margin; the better one is what the registered ``CLVModel`` predicts with. CLV itself
(what scoring reports) is discounted monthly.

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

import dataclasses
import warnings
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from retain import plots
from retain.features import FeatureStore, SourceData
from retain.metrics.model import decile_table, normalized_gini, value_metrics
from retain.models.clv.value import BTYDValue, CLVModel, MLValue
from retain.models.spend import SpendRegressor
from retain.progress import ProgressReporter, null_progress
from retain.training.config import CLVConfig, check_estimator_settings
from retain.training.dataset import (
    TrainingEngine,
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


def margin_share(transactions: pa.Table, before: date, margin_rate: float) -> float:
    """Net margin per unit of gross spend in the transactions before ``before``.

    Transactions without a ``margin`` count ``amount * margin_rate``; returns (negative
    amounts) lower the margin but not the gross spend, as they do in the BTYD spend model.
    """
    connection = duckdb.connect()
    try:
        connection.register("transactions", transactions)
        margin, spend = connection.execute(
            """
            SELECT sum(coalesce(margin, amount * $rate)), sum(amount) FILTER (WHERE amount > 0)
            FROM transactions WHERE timestamp < $before::TIMESTAMP
            """,
            {"rate": margin_rate, "before": before.isoformat()},
        ).fetchone()
    finally:
        connection.close()
    return float(margin / spend) if spend else float(margin_rate)


def fit_clv(training_set: TrainingSet, config: CLVConfig, settings: dict, share: float) -> CLVModel:
    """Fit both CLV methods; BTYD on the latest training cutoff so each customer counts once."""
    features = list(training_set.features)
    train, valid = training_set.train, training_set.validation
    model = _clv_model(config, settings)
    latest = (train["as_of"] == train["as_of"].max()).to_numpy()
    return model.fit(
        train[features], train[LABEL].to_numpy(float),
        eval_set=(valid[features], valid[LABEL].to_numpy(float)),
        margin_share=share, btyd_rows=latest,
    )  # fmt: skip


def _fit_clv_here(
    training_set: TrainingSet, config: CLVConfig, settings: dict, sources: SourceData
) -> CLVModel:
    """:func:`fit_clv` in this process, the margin share learned with DuckDB."""
    before = max(training_set.split.training)
    share = margin_share(sources.tables["transactions"], before, config.margin_rate)
    return fit_clv(training_set, config, settings, share)


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
    frame, split = training_set.frame, training_set.split
    transactions = sources.tables["transactions"]
    valid = training_set.validation
    eval_set = valid[features], valid[LABEL].to_numpy(float)
    latest_training = frame[frame["as_of"].dt.date == max(split.training)]
    share = margin_share(transactions, max(split.training), config.margin_rate)
    evaluated = BTYDValue(config.btyd, window, config.discount_rate_monthly)
    holdout = dataclasses.replace(config, horizon_days=window)
    holdout_model = _clv_model(holdout, settings).fit_from_parts(
        evaluated.fit(latest_training[features], margin_share=share), None, eval_set
    )
    share = margin_share(transactions, min(split.validation), config.margin_rate)
    served = BTYDValue(config.btyd, config.horizon_days, config.discount_rate_monthly)
    served.fit(valid[features], margin_share=share)
    return _clv_model(config, settings).fit_from_parts(
        served, None, eval_set, holdout=holdout_model
    )


def refit_clv(
    training_set: TrainingSet, model: CLVModel, config: CLVConfig, sources: SourceData
) -> CLVModel:
    """Refit ``model`` for the latest behaviour (see :meth:`CLVModel.refit`): BTYD on the
    validation cutoff's summaries, the spend regressor on every training and validation row."""
    frame = training_set.frame
    share = margin_share(
        sources.tables["transactions"], min(training_set.split.validation), config.margin_rate
    )
    return model.refit(
        frame[list(training_set.features)], frame[LABEL].to_numpy(float),
        btyd_rows=(frame["split"] == "validation").to_numpy(), margin_share=share,
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
) -> CLVModel:
    """A :class:`CLVModel` of ``config`` from parts fitted elsewhere (``xgboost.spark``), the
    method chosen on ``eval_set`` as :meth:`CLVModel.fit` chooses it.

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
        Validation features and realised net margin.
    """
    ml = MLValue(config.horizon_days, config.discount_rate_monthly, settings, config.seed)
    return _clv_model(config, settings).fit_from_parts(
        btyd, ml.fit_from_regressor(regressor), eval_set
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
    actual = valid[LABEL].to_numpy(float)
    predictions = {"btyd": model.btyd_.predict(X_valid, discounted=False)}
    if model.ml_ is not None:
        predictions["ml"] = model.ml_.predict(X_valid, discounted=False)
    if truth is not None and valid["as_of"].nunique() == 1:
        from retain.data.oracle import oracle

        expected = oracle(truth, valid["as_of"].iloc[0].date(), horizon_days)["expected_margin"]
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
    engine: TrainingEngine | None = None,
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
    build = engine.training_set if engine is not None else build_training_set
    labelled = dataclasses.replace(config, horizon_days=window)
    training_set = build(labelled, sources, store, progress=progress)
    progress(f"features and labels ready: {describe_cutoffs(training_set.manifest)}")
    training_set.manifest.update(horizon_days=config.horizon_days, label_window_days=window)
    if fallback:
        model = fit_btyd_clv(training_set, config, settings, sources, window)
        progress(f"BTYD fitted for {config.horizon_days} days (no ML spend model: {window}-day "
                 "label windows only)")  # fmt: skip
    else:
        fit = engine.fit_clv if engine is not None else _fit_clv_here
        model = fit(training_set, config, settings, sources)
        progress(f"models fitted; {model.method_} chosen (Gini {model.validation_gini_})")
        if config.refit:
            refit = engine.refit_clv if engine is not None else refit_clv
            model = refit(training_set, model, config, sources)
            progress("refitted on the latest cutoffs")
    evaluated = holdout_clv(model)
    metrics, deciles = evaluate_clv(evaluated, training_set, truth, window)
    valid = training_set.validation
    X_valid, actual = valid[list(training_set.features)], valid[LABEL].to_numpy(float)
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
