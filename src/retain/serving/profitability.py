"""``retain profitability``: each customer's profit and loss, and where money is lost, on whom.

1. **Profit and loss to date** (:func:`retain.engines.rules.profit_and_loss`, on the engine):
   revenue, margin, cost to serve by kind (the ``costs`` log and the costs of ``retain.yaml``),
   acquisition cost, profit to date, months to pay back the acquisition cost, and the realised
   profit of the customers each one referred.
2. **Predicted future profit** (with the CLV and segment champions): the CLV champion's
   discounted margin over its horizon less the expected discounted cost to serve
   (:class:`retain.models.clv.cost.CostToServe`: each customer's cost per order times their
   expected purchases, plus their service cost per day times their expected days alive; the
   two scales are learned from the horizon before ``as_of``, out of time, when the data cover
   it). Lifetime value = realised (margin - cost to serve so far) + potential (predicted future
   profit); CLV : CAC = lifetime value / acquisition cost. Segments, value tiers (of the profit
   CLV) and lifecycle stages come from the segment champion. Influence value = the realised
   and predicted profit of the customers a customer referred.
3. **Tables** by segment, value tier, lifecycle stage, acquisition channel and region, and a
   summary: totals, the whale curve (cumulative profit against customers ranked by profit),
   the share of customers who destroy profit, and what the unprofitable customers share.

Everything is written atomically into a new folder (``serving/profitability/<as_of>/``): a
folder retain did not write as a profitability folder is never replaced.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.atomic import atomic_dir, check_output_dir
from retain.engines import Engine, get_engine
from retain.engines.rules import COST_KINDS
from retain.errors import RetainError, storage_error
from retain.features import (
    CutoffWarning,
    FeatureStore,
    SourceData,
    default_cutoff,
    open_sources,
    open_store,
    with_categories,
)
from retain.features.store import categories
from retain.mlflow import tracking
from retain.models.clv.cost import COST_INPUTS, CostToServe, cost_drivers, cost_rates
from retain.progress import ProgressReporter, null_progress
from retain.serving.champions import check_features, load_champion
from retain.training.config import load_config
from retain.workspace import WorkspaceConfig, resolve_path, workspace_settings

__all__ = [
    "GROUPS",
    "PNL_FILE",
    "PROFITABILITY_KIND",
    "SUMMARY_FILE",
    "ProfitabilityResult",
    "drivers_of_unprofitability",
    "group_table",
    "print_profitability",
    "profitability",
    "summarize",
    "whale_curve",
]

#: What a profitability folder holds (its marker's kind).
PROFITABILITY_KIND = "profitability"
#: The per-customer profit and loss.
PNL_FILE = "pnl.parquet"
SUMMARY_FILE = "summary.json"
#: Columns the P&L is tabled by (``by_<group>.parquet``); the first three need the champions.
GROUPS = ("segment", "value_tier", "lifecycle_stage", "acquisition_channel", "region")
#: Points of the whale curve in ``summary.json`` (customer shares 0, 1%, ..., 100%).
CURVE_POINTS = 101


@dataclass(frozen=True)
class ProfitabilityResult:
    """A written profitability folder: the per-customer P&L, the tables and the summary."""

    out: Path
    pnl: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    summary: dict


def profitability(
    as_of: date | None = None,
    *,
    workspace: str | Path = ".",
    data: object = None,
    mapping: str | Path | None = None,
    out: str | Path | None = None,
    engine: str | None = None,
    spark_config: str | Path | None = None,
    models: Mapping[str, str] | None = None,
    progress: ProgressReporter = null_progress,
) -> ProfitabilityResult:
    """Write each customer's profit and loss at ``as_of`` and the tables of where money is lost.

    Parameters
    ----------
    as_of : date, optional
        Cutoff: everything before it counts. Default: the day after the last event.
    workspace : str or Path, default="."
        Folder with ``retain.yaml`` (data, engine, ``costs:``), ``training/clv.yaml`` (the
        margin rate) and ``mlruns/`` (the champions).
    data : str, Path, Dataset or tables, optional
        Sources (default: ``data`` of ``retain.yaml``).
    mapping : str or Path, optional
        Column mapping of a data folder (default: ``mapping`` of ``retain.yaml``).
    out : str or Path, optional
        Output folder (default ``serving/profitability/<as_of>`` in the workspace).
    engine : {"duckdb", "spark"}, optional
        Default: ``engine`` of ``retain.yaml``.
    spark_config : str or Path, optional
        Spark settings replacing the ``spark`` section; only with ``engine="spark"``.
    models : mapping, optional
        Alias or version of the ``clv`` and ``segments`` models (default: champions). Without
        a CLV champion the predicted columns are missing (``summary.json`` says so).
    progress : callable, optional
        Progress reporter.

    Raises
    ------
    RetainError
        Bad costs (in ``retain.yaml`` or a kind both configured and logged), bad data, an
        output folder retain may not replace, features differing from the models': nothing is
        written.
    """
    workspace = Path(workspace)
    settings = workspace_settings(workspace, data=data, mapping=mapping, engine=engine)
    chosen = get_engine(settings.engine, workspace=workspace, config_file=spark_config)
    clv_config = load_config("clv", workspace=workspace, workspace_config=settings)
    if out is not None:
        out = Path(out)
        check_output_dir(out, PROFITABILITY_KIND)
    store = open_store(settings, workspace)
    sources = store.sources(open_sources(settings, data, workspace))
    if as_of is None:
        as_of, last = default_cutoff(sources)
        progress(f"as of {as_of}, the day after the last event ({last:%Y-%m-%d %H:%M})")
    if out is None:
        out = resolve_path(workspace, "serving/profitability") / str(as_of)
        check_output_dir(out, PROFITABILITY_KIND)
    try:
        pnl, notes = _pnl(chosen, sources, store, settings, clv_config, as_of, models, workspace,
                          progress)  # fmt: skip
    finally:
        chosen.release()
    tables = {group: group_table(pnl, group) for group in GROUPS if group in pnl}
    summary = summarize(pnl, as_of, settings, notes)
    summary["data_fingerprint"] = sources.fingerprint
    try:
        with atomic_dir(out, kind=PROFITABILITY_KIND) as folder:
            pq.write_table(pa.Table.from_pandas(pnl, preserve_index=False), folder / PNL_FILE)
            for group, table in tables.items():
                pq.write_table(
                    pa.Table.from_pandas(table, preserve_index=False),
                    folder / f"by_{group}.parquet",
                )
            (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    except OSError as error:
        raise storage_error(error, f"write the profitability tables to {out}") from None
    return ProfitabilityResult(out, pnl, tables, summary)


# --------------------------------------------------------------------------- the P&L


def _pnl(
    engine: Engine,
    sources: SourceData,
    store: FeatureStore,
    settings: WorkspaceConfig,
    clv_config: Any,
    as_of: date,
    models: Mapping[str, str] | None,
    workspace: Path,
    progress: ProgressReporter,
) -> tuple[pd.DataFrame, list[str]]:
    rates = settings.costs.rates()
    margin_rate = clv_config.margin_rate
    progress("profit and loss to date")
    pnl = engine.profit_and_loss(sources, as_of, margin_rate=margin_rate, cost_rates=rates)
    pnl["realised_value"] = pnl["margin"] - pnl["cost_to_serve"]
    notes: list[str] = []
    champions = _champions(models, workspace, notes)
    if champions is None:
        return _finish(pnl), notes
    clv, segments = champions
    progress("predicted future profit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CutoffWarning)
        X = _features(engine, sources, store, as_of, pnl, clv)
    value = np.asarray(clv.model.predict(X), dtype=float)
    if getattr(clv.model, "cost_", None) is not None:  # a profit CLV: the list's own value
        expected_cost = np.asarray(clv.model.expected_cost(X), dtype=float)
        margin, how = value + expected_cost, "its cost regressor"
        if getattr(clv.model, "cost_method_", "regressor") == "share":
            how = "its predicted margin times each customer's cost share to date"
    else:  # a margin CLV: each customer's cost rates
        margin = value
        cost_model = _cost_model(engine, sources, store, clv, clv_config, rates, as_of, notes)
        expected_cost = cost_model.predict(cost_drivers(clv.model, X, cost_rates(pnl)))
        how = (
            f"cost rates scaled by {cost_model.order_scale_:.3f} per order, "
            f"{cost_model.service_scale_:.3f} service, {cost_model.contact_scale_:.3f} contact"
        )
    pnl["predicted_margin"] = margin
    pnl["predicted_cost_to_serve"] = expected_cost
    pnl["predicted_future_profit"] = margin - expected_cost
    if segments is not None:
        assigned = segments.model.predict(X.assign(clv=pnl["predicted_future_profit"].to_numpy()))
        for name in ("segment", "value_tier", "lifecycle_stage"):
            pnl[name] = assigned[name].to_numpy(dtype=object)
    notes.append(
        f"predicted: {clv.name} v{clv.version} ({clv_config.horizon_days} days, discounted "
        f"{clv_config.discount_rate_monthly:.2%} a month); expected cost to serve: {how}"
    )
    return _finish(pnl), notes


def _champions(models, workspace: Path, notes: list[str]):
    """The CLV and segment champions (segments ``None`` if absent); ``None`` without CLV."""
    models = dict(models or {})
    tracking.use_workspace(workspace)
    try:
        clv = load_champion("clv", models.get("clv", "champion"))
    except RetainError as error:
        notes.append(f"no predicted profit: {error}")
        return None
    try:
        segments = load_champion("segments", models.get("segments", "champion"))
    except RetainError as error:
        notes.append(f"no segments: {error}")
        segments = None
    return clv, segments


def _features(
    engine: Engine, sources: SourceData, store: FeatureStore, as_of: date, pnl, clv
) -> pd.DataFrame:
    """The snapshot's features of the P&L's customers, row by row with ``pnl``."""
    [built] = store.build(sources, [as_of], engine=engine)
    snapshot = pd.read_parquet(built.path)
    check_features(clv, list(snapshot.columns), store.repository.versions)
    snapshot = with_categories(snapshot, categories(store.repository))
    rows = snapshot.set_index(store.key).reindex(pnl["customer_id"])
    return rows.drop(columns=["as_of"]).reset_index(drop=True)


def _cost_model(engine, sources, store, clv, clv_config, rates, as_of, notes) -> CostToServe:
    """Cost to serve with scales learned over the CLV horizon before ``as_of``: drivers at
    ``as_of - horizon`` against the costs realised from then to ``as_of`` (out of time, no
    event at or after ``as_of``); scales of 1 when the data do not reach that far back."""
    model = CostToServe()
    horizon = int(clv_config.horizon_days)
    back = as_of - timedelta(days=horizon)
    bounds = sources.event_range
    if bounds is None or back <= pd.Timestamp(bounds[0]).date() + timedelta(days=30):
        notes.append(f"cost scales not learned: the data do not reach {back}")
        return model.fit(pd.DataFrame(columns=list(COST_INPUTS)))
    past = engine.profit_and_loss(
        sources, back, margin_rate=clv_config.margin_rate, cost_rates=rates
    )
    realised = engine.outcomes(
        sources, [back], horizon_days=horizon, active_days=clv_config.active_days,
        margin_rate=clv_config.margin_rate, cost_rates=rates,
    )  # fmt: skip
    past = past[past["customer_id"].isin(realised["customer_id"])].reset_index(drop=True)
    X = _features(engine, sources, store, back, past, clv)
    drivers = cost_drivers(clv.model, X, cost_rates(past))
    future = realised.set_index("customer_id")["future_cost"].reindex(past["customer_id"])
    return model.fit(drivers, future.to_numpy(float))


def _finish(pnl: pd.DataFrame) -> pd.DataFrame:
    """Lifetime value, CLV : CAC and influence value, once the predicted columns are known."""
    future = pnl.get("predicted_future_profit", pd.Series(np.nan, index=pnl.index))
    pnl["lifetime_value"] = pnl["realised_value"] + future
    cac = pnl["acquisition_cost"].to_numpy(float)
    pnl["clv_to_cac"] = np.divide(
        pnl["lifetime_value"].to_numpy(float), cac, out=np.full(len(pnl), np.nan), where=cac > 0
    )
    referred = pnl.loc[pnl["referred_by"].notna(), ["referred_by"]].assign(value=future)
    predicted = referred.groupby("referred_by")["value"].sum(min_count=1)
    pnl["influence_predicted"] = (
        pnl["customer_id"].map(predicted).where(pnl["referrals"] > 0, 0.0).astype(float)
    )
    pnl["influence_value"] = pnl["influence_realised"] + pnl["influence_predicted"]
    pnl["unprofitable"] = pnl["profit_to_date"] < 0
    return pnl


# --------------------------------------------------------------------------- tables


def group_table(pnl: pd.DataFrame, group: str) -> pd.DataFrame:
    """The P&L summed by ``group`` (missing values as ``"unknown"``), by profit to date.

    Columns: the group, ``customers``, ``unprofitable`` (profit to date below 0) and its
    ``unprofitable_share``, the sums of revenue, margin, each cost and profit, ``profit_share``
    (of the total profit to date), ``clv_to_cac`` (lifetime value over acquisition cost, of the
    sums), ``payback_months_median`` (of those who paid back) and ``paid_back_share`` (of those
    with an acquisition cost).
    """
    frame = pnl.assign(**{group: pnl[group].astype(object).fillna("unknown").astype(str)})
    money = ["revenue", "margin", *[f"cost_{kind}" for kind in (*COST_KINDS, "other")],
             "cost_to_serve", "acquisition_cost", "profit_to_date", "realised_value",
             "predicted_future_profit", "lifetime_value", "influence_value"]  # fmt: skip
    money = [name for name in money if name in frame]
    grouped = frame.groupby(group, sort=True)
    table = grouped[money].sum(min_count=1)
    table.insert(0, "customers", grouped.size())
    table.insert(1, "unprofitable", grouped["unprofitable"].sum().astype("int64"))
    table.insert(2, "unprofitable_share", table["unprofitable"] / table["customers"])
    total = frame["profit_to_date"].sum()
    table["profit_share"] = table["profit_to_date"] / total if total else np.nan
    cac = table["acquisition_cost"].to_numpy(float)
    table["clv_to_cac"] = np.divide(
        table["lifetime_value"].to_numpy(float), cac, out=np.full(len(table), np.nan),
        where=cac > 0,
    )  # fmt: skip
    paying = frame[frame["acquisition_cost"] > 0]
    table["payback_months_median"] = paying.groupby(group)["payback_months"].median()
    table["paid_back_share"] = (
        paying.groupby(group)["payback_months"].count() / paying.groupby(group).size()
    )
    table = table.sort_values("profit_to_date", ascending=False, kind="stable")
    return table.reset_index()


def whale_curve(profit: np.ndarray, points: int = CURVE_POINTS) -> dict[str, list[float]]:
    """Cumulative share of total profit against the share of customers ranked by profit (most
    profitable first), at ``points`` evenly spaced customer shares from 0 to 1."""
    ranked = np.sort(np.nan_to_num(np.asarray(profit, dtype=float)))[::-1]
    total = ranked.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(ranked)])
    shares = np.linspace(0.0, 1.0, points)
    index = np.round(shares * len(ranked)).astype(int)
    values = cumulative[index] / total if total else np.zeros(points)
    return {"customer_share": shares.round(4).tolist(), "profit_share": values.round(6).tolist()}


def summarize(
    pnl: pd.DataFrame, as_of: date, settings: WorkspaceConfig, notes: list[str]
) -> dict[str, Any]:
    """``summary.json``: totals, the share of profit-destroying customers, the whale curve on
    profit to date (and on lifetime value less acquisition cost, with predictions), and the
    drivers of unprofitability."""
    profit = pnl["profit_to_date"].to_numpy(float)
    money = ["revenue", "margin", "cost_to_serve", "acquisition_cost", "profit_to_date",
             "predicted_future_profit", "influence_value"]  # fmt: skip
    totals = {name: float(pnl[name].sum()) for name in money if name in pnl}
    totals["cost_by_kind"] = {
        kind: float(pnl[f"cost_{kind}"].sum())
        for kind in (*COST_KINDS, "other")
        if pnl[f"cost_{kind}"].sum()
    }
    curve = whale_curve(profit)
    top = int(round(0.2 * (CURVE_POINTS - 1)))
    summary: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "currency": settings.currency,
        "customers": len(pnl),
        "unprofitable": int((profit < 0).sum()),
        "unprofitable_share": float((profit < 0).mean()) if len(pnl) else None,
        "totals": totals,
        "whale_curve": {
            **curve,
            "peak_profit_share": max(curve["profit_share"]),
            "top_20_percent_profit_share": curve["profit_share"][top],
        },
        "costs": {"configured": settings.costs.rates()},
        "drivers": drivers_of_unprofitability(pnl),
        "notes": notes,
    }
    if "predicted_future_profit" in pnl:
        future = pnl["predicted_future_profit"].to_numpy(float)
        lifetime = pnl["lifetime_value"].to_numpy(float) - pnl["acquisition_cost"].to_numpy(float)
        summary["predicted_unprofitable_share"] = float(np.mean(future < 0))
        # over the lifetime: profit to date plus the predicted future profit
        summary["lifetime_unprofitable_share"] = float(np.mean(lifetime < 0))
        summary["lifetime_whale_curve"] = whale_curve(lifetime)
    return summary


def drivers_of_unprofitability(pnl: pd.DataFrame) -> dict[str, Any]:
    """What the customers with a loss to date share, against the others: their mean cost by
    kind, orders, returns and acquisition cost, and how over-represented each acquisition
    channel, region and segment is among them (their share there over the share of all)."""
    losing = pnl["unprofitable"]
    if not losing.any() or losing.all():
        return {}
    columns = ["orders", "returns", "revenue", "margin", "acquisition_cost", "cost_to_serve",
               *[f"cost_{kind}" for kind in (*COST_KINDS, "other")]]  # fmt: skip
    means = {
        name: {"unprofitable": float(pnl.loc[losing, name].mean()),
               "profitable": float(pnl.loc[~losing, name].mean())}
        for name in columns
        if pnl[name].any()
    }  # fmt: skip
    mix = {}
    for group in ("acquisition_channel", "region", "segment"):
        if group not in pnl:
            continue
        values = pnl[group].astype(object).fillna("unknown").astype(str)
        among = values[losing].value_counts(normalize=True)
        overall = values.value_counts(normalize=True)
        lift = (among / overall).dropna().sort_values(ascending=False)
        mix[group] = {str(name): round(float(value), 4) for name, value in lift.items()}
    return {"means": means, "over_representation": mix}


def print_profitability(result: ProfitabilityResult, console: Any) -> None:
    """The headline figures and the folder, for the command line."""
    summary = result.summary
    currency = summary["currency"]
    totals = summary["totals"]
    curve = summary["whale_curve"]
    lines = [
        f"{summary['customers']:,} customers at {summary['as_of']}: profit to date "
        f"{totals['profit_to_date']:,.0f} {currency} (margin {totals['margin']:,.0f}, cost to "
        f"serve {totals['cost_to_serve']:,.0f}, acquisition {totals['acquisition_cost']:,.0f})",
        f"unprofitable to date: {summary['unprofitable']:,} ({summary['unprofitable_share']:.1%})"
        f"; the most profitable 20% earn {curve['top_20_percent_profit_share']:.0%} of profit, "
        f"the curve peaks at {curve['peak_profit_share']:.0%}",
    ]
    if "predicted_unprofitable_share" in summary:
        lines.append(
            f"predicted future profit {totals['predicted_future_profit']:,.0f} {currency}; "
            f"predicted to lose money: {summary['predicted_unprofitable_share']:.1%} over the "
            f"CLV horizon, {summary['lifetime_unprofitable_share']:.1%} over their lifetime"
        )
    lines += [f"note: {note}" for note in summary["notes"]]
    lines.append(f"profitability: {result.out}")
    for line in lines:
        console.print(line, highlight=False, overflow="fold")
