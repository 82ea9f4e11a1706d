"""Was the list right? Compare a past retention-priority list with what customers then did.

Once the horizon after a list's cutoff ``as_of`` has passed, :func:`backtest` joins the list
(``retention_priority.parquet`` and ``summary.json``, see :mod:`retain.serving.contract`) with
the realised outcomes of the listed customers (:func:`retain.engines.rules.outcomes`) and
measures how well the ranking and the selection did.

Definitions
-----------
Per listed customer, from the transactions in the windows after ``as_of``:

* ``churned``: no purchase in ``[as_of, as_of + churn horizon)`` (the label the churn model
  was trained on);
* ``future_margin``: net margin in ``[as_of, as_of + CLV horizon)``, the realised counterpart
  of the predicted ``clv`` (undiscounted; predicted ``clv`` is discounted, so a small shortfall
  of prediction against realisation is expected);
* ``lost_value = clv x churned``: the predicted value of a customer who did churn. Its sum over
  a group is the value at risk that actually materialised there; ``value_at_risk`` is its
  prediction (``churn_probability x clv``).

Per decile of the list by rank (decile 1 = the top-ranked tenth; groups differ in size by at
most one, earlier groups take the extra rows): customers, mean predicted churn probability,
realised churn rate, predicted value at risk, realised lost value, predicted CLV and realised
future margin (sums), and the share of all lost value the decile holds.

Overall (``BacktestResult.overall``):

* ``roc_auc``: ROC AUC of ``churn_probability`` against ``churned`` (NaN with one class only);
* ``selected_churn_rate`` / ``not_selected_churn_rate`` and ``churn_lift`` (selected churn rate
  over the overall rate);
* ``value_at_risk_captured``: sum of ``lost_value`` over the selected customers;
  ``random_expected``: what a random selection of the same size captures on average
  (``share selected x total lost value``); ``random_draw``: what one random selection of that
  size, drawn with ``seed``, captured; ``lift_over_random = captured / random_expected``;
  ``share_captured = captured / total lost value``;
* ``selected_future_margin``: realised margin of the selected customers over the CLV horizon,
  and ``selected_retained_margin``: the part of it from selected customers who did not churn;
* the list's CLV against the realised margin (a ranking of value, so discounting does not
  matter): ``clv_gini`` (normalized Gini), ``clv_spearman`` and ``clv_top_decile_capture``
  (the share of all realised margin held by the tenth of the list with the highest CLV; a
  random tenth holds 0.1 on average).

**Every campaign an experiment.** When the list held out control groups (its ``group``
column, see :mod:`retain.serving.experiment`), ``BacktestResult.experiment`` compares the
treatment and the control group of the selected customers, per action and per decile of the
selected customers by rank (decile 1 = the first tenth to contact), and overall: the realised
incremental retained margin (treated minus control mean of the net margin) and churn effect
(treated minus control churn rate over the churn horizon), each with a 95% interval (normal
approximation, Welch's unequal-variances standard error), against the list's predicted
``expected_incremental_margin`` and ``expected_churn_effect`` (means). The comparison is by
intention to treat: customers as assigned, whatever contact was made. The outcomes come from
the engine (:func:`retain.engines.rules.experiment_tallies`).

**Like for like.** Each action's realised margin is measured on the basis its prediction was
made on, which ``summary.json`` records (``gains.margin_basis``, :func:`margin_basis`): an
action valued by the playbook prior (``save_rate x value_at_risk``, from the discounted CLV)
is compared with the margin over the CLV horizon *discounted* monthly at the CLV model's rate,
as the CLV discounts (present value at the cutoff; a transaction in month ``m`` after the
cutoff counts ``1 / (1 + rate) ** m``); an action valued by the uplift model, which learned
the undiscounted margin over its own horizon, with the undiscounted margin over that horizon.
The ``all`` rows average each customer's realised margin on their action's basis.

The outcomes and the experiment's tallies are computed on the workspace's engine (``engine``
of ``retain.yaml``, or ``--engine``; DuckDB or Spark, one rule for both, so the same numbers).

Each horizon is backtested as soon as its window has passed: churn after ``as_of + churn
horizon``, value after ``as_of + CLV horizon``. The data cover a window when the last event
(transaction or interaction) falls on or after its last day. A churn window the data do not
cover is refused, saying how many days are missing and from when the backtest is possible
(``allow_partial=True`` computes it anyway); a CLV window not yet covered is computed on the
days there are and labelled partial (``windows`` and ``warnings`` say how many days).

When the list's cutoff falls inside a model's training period (from its first training cutoff
to the end of its last validation label window, recorded in ``summary.json``), the outcomes
being compared were seen in training: the result warns that the backtest is in-sample.

With a workspace, the data folder and mapping come from ``retain.yaml`` (``--data`` and
``--mapping`` override them) and the margin rate from ``training/clv.yaml``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retain.atomic import atomic_file, check_output_file, claim
from retain.csvfile import write_csv
from retain.engines import Engine, get_engine
from retain.errors import OutputError, RetainError
from retain.serving.contract import LIST_FILE, SUMMARY_FILE
from retain.serving.experiment import CONTROL, EFFECT_COLUMNS, TREATMENT, effect_table

if TYPE_CHECKING:
    import os

__all__ = [
    "DECILE_COLUMNS",
    "REQUIRED_COLUMNS",
    "BacktestResult",
    "backtest",
    "assignments",
    "check_backtest_out",
    "margin_basis",
    "print_backtest",
    "print_experiment",
    "write_backtest",
]

#: List columns the backtest needs.
REQUIRED_COLUMNS = ("rank", "customer_id", "selected", "churn_probability", "clv", "value_at_risk")

#: Columns of :attr:`BacktestResult.deciles` (and ``backtest_deciles.csv``).
DECILE_COLUMNS = (
    "decile",
    "rank_from",
    "rank_to",
    "customers",
    "selected",
    "mean_churn_probability",
    "realised_churn_rate",
    "predicted_value_at_risk",
    "realised_lost_value",
    "share_of_lost_value",
    "predicted_clv",
    "realised_future_margin",
)

DECILES_FILE = "backtest_deciles.csv"
EXPERIMENT_FILE = "backtest_experiment.csv"
RESULT_FILE = "backtest.json"
MARGIN_RATE = 0.3
SAMPLE = 5


@dataclass(frozen=True)
class BacktestResult:
    """A list compared with what its customers did.

    Attributes
    ----------
    deciles : pandas.DataFrame
        One row per decile of the list by rank, columns :data:`DECILE_COLUMNS`.
    overall : dict
        Whole-list measures (see the module docstring); floats, ints and NaN where undefined.
    as_of : datetime.date
        The list's cutoff.
    horizon_days : int
        Churn horizon: ``churned`` is no purchase in ``[as_of, as_of + horizon_days)``.
    clv_horizon_days : int
        Window of ``future_margin``, the realised counterpart of ``clv``.
    complete : bool
        False when the data end before a horizon does (a CLV window, or with
        ``allow_partial=True`` the churn window).
    warnings : tuple of str
        Caveats to show with the numbers (partial windows, in-sample, undefined measures).
    customers : pandas.DataFrame
        The list joined with the outcomes: one row per listed customer, by rank.
    list_path : str
        The list file read.
    windows : dict
        Per outcome window: days, covered days, completeness, last day.
    in_sample : bool
        Whether a model's training period holds the list's cutoff.
    experiment : pandas.DataFrame
        Treated minus control (columns :data:`retain.serving.experiment.EFFECT_COLUMNS`): per
        action (``decile`` 0), per decile (``action`` ``all``), then overall; empty when the
        list held out no control group.
    """

    deciles: pd.DataFrame
    overall: dict[str, Any]
    as_of: date
    horizon_days: int
    clv_horizon_days: int
    complete: bool
    warnings: tuple[str, ...] = ()
    customers: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    list_path: str = ""
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_sample: bool = False
    experiment: pd.DataFrame = field(default_factory=pd.DataFrame)


# --------------------------------------------------------------------------- reading the list


def _list_files(list_path: str | Path) -> tuple[Path, Path]:
    path = Path(list_path)
    if path.is_dir():
        list_file = path / LIST_FILE
    elif path.exists() or path.suffix == ".parquet":
        list_file = path
    else:
        raise RetainError(f"list {path} not found (expected {LIST_FILE} or the folder holding it)")
    if not list_file.is_file():
        raise RetainError(f"list file {list_file} not found (written by `retain score`)")
    summary_file = list_file.parent / SUMMARY_FILE
    if not summary_file.is_file():
        raise RetainError(
            f"summary file {summary_file} not found; the backtest needs the {SUMMARY_FILE} "
            f"written next to {list_file.name} (cutoff, horizons)"
        )
    return list_file, summary_file


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RetainError(f"cannot read summary file {path}: {error}") from error
    if not isinstance(summary, dict):
        raise RetainError(f"summary file {path} does not hold a JSON object")
    return summary


def _read_list(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for unreadable files
        raise RetainError(f"cannot read list file {path} as Parquet: {error}") from error
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise RetainError(
            f"list file {path} lacks required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (see retain.serving.contract.LIST_COLUMNS)"
        )
    if frame.empty:
        raise RetainError(f"list file {path} has no rows")
    for name in ("rank", "customer_id", "selected", "churn_probability", "clv", "value_at_risk"):
        column = frame[name]
        if name not in ("customer_id", "selected"):
            column = pd.to_numeric(column, errors="coerce").where(lambda v: np.isfinite(v))
        if column.isna().any():
            raise RetainError(
                f"list file {path}: column {name} has {int(column.isna().sum()):,} missing or "
                "non-numeric values"
            )
    return frame


def _as_of(summary: Mapping[str, Any], frame: pd.DataFrame, summary_file: Path) -> date:
    raw = summary.get("as_of")
    if raw is None and "as_of" in frame.columns:
        raw = frame["as_of"].iloc[0]
    if raw is None:
        raise RetainError(f"summary file {summary_file} has no 'as_of' and the list none either")
    try:
        as_of = pd.Timestamp(raw).date()
    except (TypeError, ValueError) as error:
        raise RetainError(f"{summary_file}: 'as_of' is not a date: {raw!r}") from error
    if "as_of" in frame.columns:
        found = {pd.Timestamp(value).date() for value in frame["as_of"].dropna().unique()}
        if found - {as_of}:
            shown = ", ".join(sorted(str(day) for day in found))
            raise RetainError(
                f"the list's as_of ({shown}) disagrees with its summary ({as_of}); "
                "the files do not belong together"
            )
    return as_of


def _horizon(given: int | None, summary: Mapping[str, Any], key: str, file: Path) -> int:
    if given is None:
        horizons = summary.get("horizons")
        if not isinstance(horizons, Mapping) or horizons.get(key) is None:
            raise RetainError(
                f"summary file {file} has no horizons.{key}; pass the horizon explicitly"
            )
        given = horizons[key]
    if isinstance(given, bool) or int(given) != given or given < 1:
        raise RetainError(f"{key} must be a positive whole number of days, got {given!r}")
    return int(given)


# --------------------------------------------------------------------------- coverage


def _coverage(
    last_event: date | None, as_of: date, horizons: Mapping[str, int]
) -> list[tuple[str, int, int, date]]:
    """``(window, length, days missing, end)`` of each window the data do not cover."""
    covered_until = last_event + timedelta(days=1) if last_event is not None else as_of
    short = []
    for name, days in horizons.items():
        end = as_of + timedelta(days=days)
        if covered_until < end:
            short.append((name, days, (end - covered_until).days, end))
    return short


def _windows(
    last_event: date | None, as_of: date, horizons: Mapping[str, int]
) -> dict[str, dict[str, Any]]:
    """Per outcome window: its length, the days the data cover, whether it is complete."""
    covered_until = last_event + timedelta(days=1) if last_event is not None else as_of
    out = {}
    for name, days in horizons.items():
        covered = max(0, min(days, (covered_until - as_of).days))
        out[name] = {
            "days": int(days),
            "covered_days": int(covered),
            "complete": covered >= days,
            "ends": (as_of + timedelta(days=days - 1)).isoformat(),
        }
    return out


def _partial_note(name: str, window: Mapping[str, Any], last_event: date | None) -> str:
    label = "churn" if name == "churn" else "CLV"
    last = f"the data end on {last_event}" if last_event else "there are no events"
    return (
        f"PARTIAL {label} window: {last}, so {window['covered_days']} of its {window['days']} "
        f"days are covered (it ends on {window['ends']}); realised "
        f"{'churn' if name == 'churn' else 'margin and the value measures'} count only those "
        "days"
    )


def _in_sample(
    summary: Mapping[str, Any], as_of: date, workspace: str | os.PathLike | None
) -> list[str]:
    """Warnings for models whose training period holds the list's cutoff."""
    notes = []
    models = summary.get("models")
    if not isinstance(models, Mapping):
        return notes
    for family in ("churn", "clv"):
        model = models.get(family)
        if not isinstance(model, Mapping):
            continue
        period = model.get("training_period") or _recorded_period(model, workspace)
        if not period:
            continue
        start, until = date.fromisoformat(period["from"]), date.fromisoformat(period["until"])
        if as_of < until:
            notes.append(
                f"IN-SAMPLE: the list's cutoff {as_of} falls inside the training period of "
                f"{model.get('name', family)} v{model.get('version', '?')} (outcomes from "
                f"{start} to {until - timedelta(days=1)} were its training and validation "
                f"labels): its {family} outcomes were seen in training, so these numbers "
                f"flatter it; backtest a list scored on or after {until}"
            )
    return notes


def _recorded_period(
    model: Mapping[str, Any], workspace: str | os.PathLike | None
) -> dict[str, Any] | None:
    """The training period from the model's run (lists written before summaries held it)."""
    run_id = model.get("run_id")
    if not run_id or workspace is None:
        return None
    try:
        import mlflow

        from retain.mlflow.tracking import use_workspace
        from retain.serving.champions import training_period

        use_workspace(workspace)
        return training_period(mlflow.artifacts.load_dict(f"runs:/{run_id}/training_set.json"))
    except Exception:  # the run is in another store, or gone: nothing to check against
        return None


def _coverage_message(short: list[tuple[str, int, int, date]], last_event: date | None) -> str:
    windows = " and ".join(
        f"the {'churn' if name == 'churn' else 'CLV'} window of {days} days runs to "
        f"{end - timedelta(days=1)}"
        for name, days, _, end in short
    )
    _, _, missing, end = max(short, key=lambda item: item[2])
    last = f"the last event is on {last_event}" if last_event else "there are no events"
    return (
        f"the data do not cover the outcome windows yet: {last}, but {windows}. "
        f"{missing} day{'s' if missing != 1 else ''} of data are missing; the backtest becomes "
        f"possible once the data reach {end - timedelta(days=1)} (from {end} on)"
    )


# --------------------------------------------------------------------------- computation


def _realised(
    engine: Engine, sources, as_of: date, horizons: dict[str, int], margin_rate: float
) -> pd.DataFrame:
    """Outcomes of every customer with a purchase before ``as_of`` (the list's superset)."""
    bounds = sources.event_range
    first = pd.Timestamp(bounds[0]).date() if bounds else as_of
    lookback = max((as_of - first).days + 1, 1)  # everyone who ever bought before as_of
    frames = {}
    for days in sorted(set(horizons.values())):
        frames[days] = engine.outcomes(
            sources,
            [as_of],
            horizon_days=days,
            active_days=lookback,
            margin_rate=margin_rate,
        ).set_index("customer_id")
    churn = frames[horizons["churn"]]
    value = frames[horizons["clv"]]
    return pd.DataFrame(
        {
            "churned": churn["churned"].astype(bool),
            "future_orders": churn["future_orders"],
            "future_margin": value["future_margin"].reindex(churn.index),
        }
    )


def _group_rows(rows: int, groups: int) -> list[np.ndarray]:
    return [part for part in np.array_split(np.arange(rows), min(groups, rows)) if part.size]


def _deciles(customers: pd.DataFrame, groups: int) -> pd.DataFrame:
    total_lost = float(customers["lost_value"].sum())
    records = []
    for number, rows in enumerate(_group_rows(len(customers), groups), start=1):
        part = customers.iloc[rows]
        lost = float(part["lost_value"].sum())
        records.append(
            {
                "decile": number,
                "rank_from": int(part["rank"].iloc[0]),
                "rank_to": int(part["rank"].iloc[-1]),
                "customers": len(part),
                "selected": int(part["selected"].sum()),
                "mean_churn_probability": float(part["churn_probability"].mean()),
                "realised_churn_rate": float(part["churned"].mean()),
                "predicted_value_at_risk": float(part["value_at_risk"].sum()),
                "realised_lost_value": lost,
                "share_of_lost_value": lost / total_lost if total_lost else math.nan,
                "predicted_clv": float(part["clv"].sum()),
                "realised_future_margin": float(part["future_margin"].sum()),
            }
        )
    return pd.DataFrame.from_records(records, columns=list(DECILE_COLUMNS))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _overall(customers: pd.DataFrame, seed: int, notes: list[str]) -> dict[str, Any]:
    from retain.metrics.model import roc_auc

    churned = customers["churned"].to_numpy(bool)
    selected = customers["selected"].to_numpy(bool)
    lost = customers["lost_value"].to_numpy(float)
    rows, chosen = len(customers), int(selected.sum())
    if 0 < churned.sum() < rows:
        auc = roc_auc(churned, customers["churn_probability"].to_numpy(float))
    else:
        auc = math.nan
        notes.append(
            f"ROC AUC is undefined: {'all' if churned.all() else 'none'} of the listed "
            "customers churned"
        )
    if chosen == 0:
        notes.append("no customer in the list is selected: selection measures are undefined")
    total_lost = float(lost.sum())
    captured = float(lost[selected].sum())
    random_expected = chosen / rows * total_lost
    draw = np.random.default_rng(seed).choice(rows, size=chosen, replace=False)
    churn_rate = float(churned.mean())
    selected_rate = float(churned[selected].mean()) if chosen else math.nan
    margin = customers["future_margin"].to_numpy(float)
    return {
        "customers": rows,
        "selected": chosen,
        "churners": int(churned.sum()),
        "churn_rate": churn_rate,
        "mean_churn_probability": float(customers["churn_probability"].mean()),
        "roc_auc": auc,
        "selected_churn_rate": selected_rate,
        "not_selected_churn_rate": float(churned[~selected].mean()) if chosen < rows else math.nan,
        "churn_lift": _ratio(selected_rate, churn_rate) if chosen else math.nan,
        "churners_captured_share": _ratio(float(churned[selected].sum()), float(churned.sum())),
        "predicted_value_at_risk": float(customers["value_at_risk"].sum()),
        "predicted_value_at_risk_selected": float(customers["value_at_risk"][selected].sum()),
        "realised_lost_value": total_lost,
        "value_at_risk_captured": captured,
        "random_expected": random_expected,
        "random_draw": float(lost[draw].sum()),
        "lift_over_random": _ratio(captured, random_expected),
        "share_captured": _ratio(captured, total_lost),
        "predicted_clv": float(customers["clv"].sum()),
        "realised_future_margin": float(margin.sum()),
        "selected_future_margin": float(margin[selected].sum()),
        "selected_retained_margin": float(margin[selected & ~churned].sum()),
        **_value_measures(customers["clv"].to_numpy(float), margin, notes),
        "seed": int(seed),
    }


def _value_measures(clv: np.ndarray, margin: np.ndarray, notes: list[str]) -> dict[str, float]:
    """The list's CLV against the realised margin: normalized Gini, Spearman, top-decile
    capture (share of the realised margin held by the tenth with the highest CLV)."""
    from retain.metrics.model import normalized_gini

    undefined = {"clv_gini": math.nan, "clv_spearman": math.nan, "clv_top_decile_capture": math.nan}
    if len(clv) < 2 or np.all(margin == margin[0]):
        notes.append("CLV measures are undefined: the realised margin is the same for everyone")
        return undefined
    top = np.argsort(-clv, kind="stable")[: max(1, math.ceil(0.1 * len(clv)))]
    total = float(margin.sum())
    spearman = pd.Series(clv).corr(pd.Series(margin), method="spearman")
    return {
        "clv_gini": float(normalized_gini(margin, clv)),
        "clv_spearman": float(spearman) if np.isfinite(spearman) else math.nan,
        "clv_top_decile_capture": float(margin[top].sum()) / total if total > 0 else math.nan,
    }


def backtest(
    list_path: str | Path,
    data: object = None,
    *,
    mapping: object = None,
    workspace: str | Path | None = None,
    horizon_days: int | None = None,
    clv_horizon_days: int | None = None,
    deciles: int = 10,
    seed: int = 0,
    margin_rate: float | None = None,
    allow_partial: bool = False,
    engine: str | Engine | None = None,
    spark_config: str | Path | None = None,
) -> BacktestResult:
    """Compare a retention-priority list with what its customers did after its cutoff.

    Parameters
    ----------
    list_path : path-like
        ``retention_priority.parquet`` or the folder holding it; ``summary.json`` must sit
        next to it.
    data : path-like, retain.data.Dataset, SourceData or mapping of tables, optional
        Data covering the list's cutoff and the horizon after it (see
        :func:`retain.features.resolve_data`); default the workspace's ``data``
        (``retain.yaml``).
    mapping : path, dict or None, default=None
        Column mapping when ``data`` is a folder; default the workspace's ``mapping`` when
        ``data`` comes from the workspace.
    workspace : path-like, optional
        Workspace whose ``retain.yaml`` gives the data and mapping, whose
        ``training/clv.yaml`` gives the margin rate and whose MLflow store holds the models'
        training periods for lists that do not record them; default ``"."`` when ``data``
        is not given.
    horizon_days : int, optional
        Churn horizon; default ``summary["horizons"]["churn_days"]``.
    clv_horizon_days : int, optional
        Window of realised margin; default ``summary["horizons"]["clv_days"]``.
    deciles : int, default=10
        Number of rank groups (fewer when the list is shorter).
    seed : int, default=0
        Seed of the random selection drawn for comparison.
    margin_rate : float, optional
        Margin as a share of the amount for transactions without a ``margin``; default the
        workspace's CLV config (``margin_rate``), else 0.3.
    allow_partial : bool, default=False
        Compute even when the data end before the churn window does; the result has
        ``complete=False`` and says so in ``warnings``. (A CLV window that has not passed
        never stops the backtest: its measures are labelled partial.)
    engine : {"duckdb", "spark"} or Engine, optional
        The engine that computes the outcomes and the experiment's tallies: a name, or an
        engine the caller made (and releases). Default: ``engine`` of the workspace's
        ``retain.yaml`` (DuckDB when neither a workspace nor an engine is given).
    spark_config : str or Path, optional
        Spark settings file replacing the ``spark`` section of ``retain.yaml``; only with
        the ``spark`` engine.

    Returns
    -------
    BacktestResult

    Raises
    ------
    RetainError
        Missing list or summary, missing columns, a pseudonymized list, listed customers absent
        from the data, or (without ``allow_partial``) data that do not cover the churn window.
    """
    if data is None:
        from retain.workspace import load_workspace_config

        workspace = Path(".") if workspace is None else Path(workspace)
        config = load_workspace_config(workspace)
        data = config.path(workspace, config.data)
        if mapping is None and config.mapping:
            mapping = config.path(workspace, config.mapping)
    if margin_rate is None:
        margin_rate = _margin_rate(workspace)
    chosen, owned = _engine(engine, workspace, spark_config)
    try:
        return _backtest(
            list_path, data, mapping, workspace, horizon_days, clv_horizon_days, deciles, seed,
            margin_rate, allow_partial, chosen,
        )  # fmt: skip
    finally:
        if owned:
            chosen.release()


def _engine(
    engine: str | Engine | None, workspace: str | Path | None, spark_config: str | Path | None
) -> tuple[Engine, bool]:
    """The backtest's engine, and whether the backtest made it (and so releases it)."""
    if engine is not None and not isinstance(engine, str):
        if spark_config is not None:
            raise RetainError("spark_config applies to an engine named, not to one given")
        return engine, False
    if workspace is not None:
        from retain.workspace import workspace_settings

        engine = workspace_settings(workspace, engine=engine).engine
    return get_engine(engine, workspace=workspace or ".", config_file=spark_config), True


def _backtest(
    list_path, data, mapping, workspace, horizon_days, clv_horizon_days, deciles, seed,
    margin_rate, allow_partial, engine: Engine,
) -> BacktestResult:  # fmt: skip
    """The steps of :func:`backtest`, on ``engine``."""
    from retain.features import resolve_data

    if isinstance(deciles, bool) or int(deciles) != deciles or deciles < 1:
        raise RetainError(f"deciles must be a positive whole number, got {deciles!r}")
    list_file, summary_file = _list_files(list_path)
    summary = _read_summary(summary_file)
    if summary.get("pseudonymized"):
        raise RetainError(
            f"the list {list_file} was written with pseudonymized customer ids (keyed HMACs), "
            "which cannot be joined back to the data; backtest a list scored without "
            "--pseudonymize"
        )
    frame = _read_list(list_file)
    as_of = _as_of(summary, frame, summary_file)
    horizons = {
        "churn": _horizon(horizon_days, summary, "churn_days", summary_file),
        "clv": _horizon(clv_horizon_days, summary, "clv_days", summary_file),
    }

    sources = resolve_data(data, mapping)
    bounds = sources.event_range
    last_event = pd.Timestamp(bounds[1]).date() if bounds else None
    notes: list[str] = []
    windows = _windows(last_event, as_of, horizons)
    short = [item for item in _coverage(last_event, as_of, horizons) if item[0] == "churn"]
    if short:
        message = _coverage_message(short, last_event)
        if not allow_partial:
            raise RetainError(message + "; pass --allow-partial to compute it anyway")
        notes.append(_partial_note("churn", windows["churn"], last_event))
    if not windows["clv"]["complete"]:
        notes.append(_partial_note("clv", windows["clv"], last_event))
    notes.extend(_in_sample(summary, as_of, workspace))

    frame = frame.sort_values("rank", kind="stable").reset_index(drop=True)
    frame["customer_id"] = frame["customer_id"].astype(str)
    duplicated = frame["customer_id"].duplicated()
    if duplicated.any():
        sample = frame.loc[duplicated, "customer_id"].head(SAMPLE).tolist()
        raise RetainError(
            f"list file {list_file} holds {int(duplicated.sum())} duplicated customer ids, "
            f"e.g. {sample}"
        )
    realised = _realised(engine, sources, as_of, horizons, margin_rate)
    absent = ~frame["customer_id"].isin(realised.index)
    if absent.any():
        count = int(absent.sum())
        sample = frame.loc[absent, "customer_id"].head(SAMPLE).tolist()
        raise RetainError(
            f"{count:,} of the {len(frame):,} listed customers have no purchase before "
            f"{as_of} in {sources.origin or 'the data'}, e.g. {sample}: is this the data the "
            "list was scored on?"
        )
    customers = frame.join(realised, on="customer_id")
    customers["selected"] = customers["selected"].astype(bool)
    for name in ("churn_probability", "clv", "value_at_risk"):
        customers[name] = customers[name].astype(float)
    customers["lost_value"] = customers["clv"] * customers["churned"]
    experiment = _experiment(engine, frame, sources, as_of, horizons, margin_rate,
                             lambda: margin_basis(summary, horizons["clv"], workspace, notes),
                             notes)  # fmt: skip

    return BacktestResult(
        deciles=_deciles(customers, int(deciles)),
        overall=_overall(customers, seed, notes),
        as_of=as_of,
        horizon_days=horizons["churn"],
        clv_horizon_days=horizons["clv"],
        complete=all(window["complete"] for window in windows.values()),
        warnings=tuple(notes),
        customers=customers,
        list_path=str(list_file),
        windows=windows,
        in_sample=any(note.startswith("IN-SAMPLE") for note in notes),
        experiment=experiment,
    )


def assignments(frame: pd.DataFrame, deciles: int = 10) -> pd.DataFrame:
    """The selected customers of a list (sorted by rank) with their action, group and decile
    among the selected (1 = the first tenth to contact), and the predicted effects."""
    chosen = frame[frame["selected"].astype(bool) & frame["group"].isin([TREATMENT, CONTROL])]
    chosen = chosen.reset_index(drop=True)
    decile = np.zeros(len(chosen), dtype=np.int64)
    for number, rows in enumerate(_group_rows(len(chosen), deciles) if len(chosen) else [], 1):
        decile[rows] = number
    predicted = {
        name: chosen[name].astype(float).to_numpy() if name in chosen else np.nan
        for name in ("expected_incremental_margin", "expected_churn_effect")
    }
    return pd.DataFrame(
        {
            "customer_id": chosen["customer_id"].astype(str).to_numpy(dtype=object),
            "action": chosen["recommended_action"].astype(str).to_numpy(dtype=object),
            "decile": decile,
            "group": chosen["group"].astype(str).to_numpy(dtype=object),
            **predicted,
        }
    )


def _experiment(
    engine: Engine, frame: pd.DataFrame, sources, as_of: date, horizons: dict[str, int],
    margin_rate: float, find_basis: Callable[[], dict[str, dict[str, float]]],
    notes: list[str],
) -> pd.DataFrame:  # fmt: skip
    """Treated minus control of the list's control groups (empty without any): each action's
    realised margin on the basis of its prediction (``find_basis``: :func:`margin_basis`,
    asked only when there is an experiment to measure)."""
    if "group" not in frame.columns or "recommended_action" not in frame.columns:
        return pd.DataFrame(columns=list(EFFECT_COLUMNS))
    assigned = assignments(frame)
    if assigned.empty:  # a list scored before control groups, or nobody selected
        return pd.DataFrame(columns=list(EFFECT_COLUMNS))
    if not (assigned["group"] == CONTROL).any():
        notes.append(
            "no control group in the list (control_share 0, or a list scored before control "
            "groups): the contacts' effect cannot be measured"
        )
        return pd.DataFrame(columns=list(EFFECT_COLUMNS))
    basis = find_basis()
    fallback = basis.get("*", {"days": horizons["clv"], "discount_rate_monthly": 0.0})
    keys = [_basis_key(basis.get(action, fallback)) for action in assigned["action"]]
    parts = []
    for days, rate in sorted(set(keys)):
        rows = assigned[[key == (days, rate) for key in keys]].reset_index(drop=True)
        parts.append(engine.experiment_tallies(
            sources, rows, as_of, churn_days=horizons["churn"], margin_days=days,
            margin_rate=margin_rate, discount_rate_monthly=rate,
        ))  # fmt: skip
    tallies = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return effect_table(tallies, assigned)


def _basis_key(basis: Mapping[str, float]) -> tuple[int, float]:
    return int(basis["days"]), float(basis["discount_rate_monthly"])


def margin_basis(
    summary: Mapping[str, Any], clv_days: int, workspace: str | Path | None, notes: list[str]
) -> dict[str, dict[str, float]]:
    """Per action, the window and discount rate of the list's predicted incremental margin
    (``summary.json`` ``gains.margin_basis``, see :func:`retain.serving.gains.gains_source`),
    which the realised margin is measured on.

    A list that does not record it (scored before it was) used the playbook prior for every
    action: the CLV horizon, discounted at the workspace CLV config's rate (undiscounted
    without a workspace; ``notes`` says so).

    Returns
    -------
    dict
        ``{action: {"days": int, "discount_rate_monthly": float}}``; the key ``"*"`` stands
        for every action (the fallback).
    """
    gains = summary.get("gains")
    recorded = gains.get("margin_basis") if isinstance(gains, Mapping) else None
    if isinstance(recorded, Mapping) and recorded:
        return {str(action): dict(item) for action, item in recorded.items()}
    if workspace is None:
        notes.append(
            "the list does not record the basis of its predicted margin (gains.margin_basis); "
            f"the realised margin is the undiscounted margin over {clv_days} days"
        )
        rate = 0.0
    else:
        from retain.training.config import load_config

        rate = float(load_config("clv", workspace=workspace).discount_rate_monthly)
    return {"*": {"days": clv_days, "discount_rate_monthly": rate}}


def _margin_rate(workspace: str | Path | None) -> float:
    """The CLV job's margin rate (``retain.yaml``, or a job file that still sets its own), as
    its labels used; else 0.3."""
    if workspace is None:
        return MARGIN_RATE
    from retain.training.config import load_config

    return float(load_config("clv", workspace=workspace).margin_rate)


# --------------------------------------------------------------------------- output


def _json_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def write_backtest(result: BacktestResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``backtest_deciles.csv``, ``backtest.json`` and (when the list held out control
    groups) ``backtest_experiment.csv`` into ``out_dir``, each atomically.

    ``backtest.json`` holds the cutoff, horizons, completeness, warnings, the overall measures
    and the decile rows (undefined measures as ``null``).

    Returns
    -------
    dict
        ``{"deciles": path, "summary": path}`` and ``"experiment": path`` when written.
    """
    paths = check_backtest_out(out_dir)
    if result.experiment.empty:
        paths.pop("experiment")
    with atomic_file(paths["deciles"]) as temporary:
        write_csv(result.deciles, temporary)
    if "experiment" in paths:
        with atomic_file(paths["experiment"]) as temporary:
            write_csv(result.experiment, temporary)
    payload = {
        "as_of": result.as_of.isoformat(),
        "horizons": {"churn_days": result.horizon_days, "clv_days": result.clv_horizon_days},
        "complete": result.complete,
        "windows": result.windows,
        "in_sample": result.in_sample,
        "warnings": list(result.warnings),
        "list": result.list_path,
        "overall": {key: _json_value(value) for key, value in result.overall.items()},
        "deciles": [
            {key: _json_value(value) for key, value in row.items()}
            for row in result.deciles.to_dict(orient="records")
        ],
        "experiment": {
            "method": "treated minus control, by intention to treat; 95% intervals from the "
            "normal approximation with Welch's (unequal variances) standard error",
            "rows": [
                {key: _json_value(value) for key, value in row.items()}
                for row in result.experiment.to_dict(orient="records")
            ],
        },
    }
    with atomic_file(paths["summary"]) as temporary:
        temporary.write_text(json.dumps(payload, indent=2) + "\n")
    for path in paths.values():
        claim(path)  # written into a list folder: part of it from now on
    return paths


def check_backtest_out(out_dir: str | Path) -> dict[str, Path]:
    """The files :func:`write_backtest` writes into ``out_dir``, once they are known to be safe
    to write: ``out_dir`` is a folder (or absent) and neither file exists unless retain wrote it.

    Raises
    ------
    OutputError
        ``out_dir`` is a file, or a backtest file there is not retain's.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; --out names the folder the backtest files go to")
    return {
        "deciles": check_output_file(out / DECILES_FILE, "backtest table", _is_deciles),
        "summary": check_output_file(out / RESULT_FILE, "backtest summary", _is_result),
        "experiment": check_output_file(
            out / EXPERIMENT_FILE, "backtest experiment table", _is_experiment
        ),
    }


def _is_deciles(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        return handle.readline().startswith("decile,")


def _is_experiment(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        return handle.readline().startswith("action,decile,")


def _is_result(path: Path) -> bool:
    payload = json.loads(path.read_text(encoding="utf-8"))
    return isinstance(payload, dict) and {"as_of", "overall", "deciles"} <= set(payload)


def _number(value: float, pattern: str = "{:,.0f}") -> str:
    return pattern.format(value) if isinstance(value, int | float) and math.isfinite(value) else "-"


def print_backtest(result: BacktestResult, console=None) -> None:
    """Print the decile table and the headline measures (rich; the CLI console by default)."""
    from rich.table import Table

    if console is None:
        from retain.progress import console
    overall = result.overall
    title = (
        f"Backtest of the list at {result.as_of}: churn over {result.horizon_days} days, "
        f"margin over {result.clv_horizon_days} days"
    )
    table = Table(title=title, title_justify="left")
    for heading in (
        "decile", "ranks", "customers", "selected", "p(churn)", "churned", "VaR pred.",
        "VaR realised", "CLV pred.", "margin realised",
    ):  # fmt: skip
        table.add_column(heading, justify="right")
    for row in result.deciles.itertuples(index=False):
        table.add_row(
            str(row.decile),
            f"{row.rank_from}-{row.rank_to}",
            f"{row.customers:,}",
            f"{row.selected:,}",
            _number(row.mean_churn_probability, "{:.1%}"),
            _number(row.realised_churn_rate, "{:.1%}"),
            _number(row.predicted_value_at_risk),
            _number(row.realised_lost_value),
            _number(row.predicted_clv),
            _number(row.realised_future_margin),
        )
    console.print(table)
    console.print(
        f"ROC AUC {_number(overall['roc_auc'], '{:.3f}')}; churn rate "
        f"{_number(overall['churn_rate'], '{:.1%}')} overall, "
        f"{_number(overall['selected_churn_rate'], '{:.1%}')} among the "
        f"{overall['selected']:,} selected, "
        f"{_number(overall['not_selected_churn_rate'], '{:.1%}')} among the rest",
        highlight=False,
    )
    console.print(
        f"Value at risk captured by the selection: {_number(overall['value_at_risk_captured'])} "
        f"({_number(overall['share_captured'], '{:.1%}')} of "
        f"{_number(overall['realised_lost_value'])}) against "
        f"{_number(overall['random_expected'])} for a random selection "
        f"(one draw: {_number(overall['random_draw'])}); lift "
        f"{_number(overall['lift_over_random'], '{:.2f}')}x",
        highlight=False,
    )
    clv_window = result.windows.get("clv", {})
    partial = (
        f", partial: {clv_window['covered_days']} of {clv_window['days']} days"
        if clv_window and not clv_window["complete"]
        else ""
    )
    console.print(
        f"CLV against the margin realised over {result.clv_horizon_days} days{partial}: "
        f"normalized Gini {_number(overall['clv_gini'], '{:.3f}')}, Spearman "
        f"{_number(overall['clv_spearman'], '{:.3f}')}; the top tenth by CLV holds "
        f"{_number(overall['clv_top_decile_capture'], '{:.1%}')} of the realised margin "
        "(a random tenth: 10%)",
        highlight=False,
    )
    if not result.experiment.empty:
        print_experiment(result.experiment, console)
    for note in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {note}", highlight=False)


def print_experiment(effects: pd.DataFrame, console) -> None:
    """The treated-minus-control table (rich)."""
    from rich.table import Table

    table = Table(
        title="Treated minus control (95% intervals: normal approximation, Welch)",
        title_justify="left",
    )
    for heading in ("action", "decile", "treated", "control", "margin pred.", "margin realised",
                    "churn pred.", "churn realised"):  # fmt: skip
        table.add_column(heading, justify="right")
    for row in effects.itertuples(index=False):
        table.add_row(
            row.action,
            str(row.decile) if row.decile else "all",
            f"{row.treated:,}",
            f"{row.control:,}",
            _number(row.predicted_incremental_margin, "{:,.2f}"),
            f"{_number(row.realised_incremental_margin, '{:,.2f}')} "
            f"[{_number(row.margin_low, '{:,.2f}')}, {_number(row.margin_high, '{:,.2f}')}]",
            _number(row.predicted_churn_effect, "{:+.1%}"),
            f"{_number(row.realised_churn_effect, '{:+.1%}')} "
            f"[{_number(row.churn_low, '{:+.1%}')}, {_number(row.churn_high, '{:+.1%}')}]",
        )
    console.print(table)
