"""``retain train clv``: BTYD and ML models of future net margin, compared on a later cutoff.

Both predict the net margin of the next ``horizon_days`` for the customers active at each
cutoff. They are compared on the validation cutoff by normalized Gini (the primary metric),
Spearman correlation, decile MAPE and total error of the undiscounted prediction against the
realised margin; the better one is what the registered ``CLVModel`` predicts with. CLV itself
(what scoring reports) is discounted monthly.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from retain.features import FeatureStore, SourceData
from retain.models.clv.value import BTYDValue, CLVModel, MLValue
from retain.models.spend import SpendRegressor
from retain.progress import ProgressReporter, null_progress
from retain.reports import plots
from retain.training.config import CLVConfig, check_estimator_settings
from retain.training.dataset import TrainingEngine, TrainingSet, build_training_set
from retain.training.metrics import decile_table, normalized_gini, value_metrics
from retain.training.publish import JobResult, publish

__all__ = ["assemble_clv", "evaluate_clv", "fit_clv", "margin_share", "train_clv"]

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
    predictions = {
        "btyd": model.btyd_.predict(X_valid, discounted=False),
        "ml": model.ml_.predict(X_valid, discounted=False),
    }
    if truth is not None and valid["as_of"].nunique() == 1:
        from retain.data.oracle import oracle

        expected = oracle(truth, valid["as_of"].iloc[0].date(), horizon_days)
        oracle_margin = expected["expected_margin"].reindex(valid["customer_id"].to_numpy())
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
    build = engine.training_set if engine is not None else build_training_set
    training_set = build(config, sources, store, progress=progress)
    progress("features and labels ready")
    fit = engine.fit_clv if engine is not None else _fit_clv_here
    model = fit(training_set, config, settings, sources)
    share = model.btyd_.margin_share_
    progress(f"models fitted; {model.method_} chosen (Gini {model.validation_gini_})")
    metrics, deciles = evaluate_clv(model, training_set, truth, config.horizon_days)
    valid = training_set.validation
    X_valid, actual = valid[list(training_set.features)], valid[LABEL].to_numpy(float)
    learned = {
        "method": model.method_,
        "margin_share": share,
        **{f"btyd_{key}": value for key, value in model.btyd_.purchase_model_.params_.items()},
        **{f"gamma_gamma_{key}": value for key, value in model.btyd_.spend_model_.params_.items()},
        "ml_best_iteration": model.ml_.regressor_.best_iteration_,
    }
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
            actual, np.asarray(candidate.predict(X_valid, discounted=False))
        ),
        input_example=X_valid.head(5),
        predict_method="predict",
        run_name=run_name,
    )
