"""``retain plan``: what a training job will train on, before any snapshot is built or model fitted.

A plan is the job's cutoffs (training and validation), the label window after each, and the
customers active at each cutoff with their churn rate: everything that decides whether the
data can train the job, computed from the transactions alone (seconds, where the job takes
minutes). When the configured horizon or cutoffs do not fit the data, the plan is an error that
names a plan that does (see :func:`retain.training.cutoffs.fitting_plan`).

CLV needs no label window to be estimated: BTYD models (BG/NBD or Pareto/NBD with Gamma-Gamma)
predict any horizon from the purchase history alone. When the configured CLV horizon leaves no
complete label window, the CLV job falls back to BTYD for that horizon, evaluated out of time
over the longest window the data allow (:func:`clv_label_horizon`); the ML spend model, which
learns from realised windows of the configured length, is trained only when they fit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from retain.engines import get_engine
from retain.features import SourceData
from retain.training.config import CLVConfig, JobConfig, SegmentsConfig
from retain.training.cutoffs import (
    HORIZON_CHOICES,
    CutoffSplit,
    PlanDoesNotFitError,
    plan_cutoffs,
)
from retain.training.dataset import data_span, plan_split

__all__ = ["TrainingPlan", "clv_label_horizon", "make_plan", "plan_table"]


@dataclass(frozen=True)
class TrainingPlan:
    """What a training job will use.

    Attributes
    ----------
    family : str
        ``churn``, ``clv`` or ``segments``.
    horizon_days : int
        The configured horizon (what the model predicts).
    label_horizon_days : int
        Length of the label windows the job learns and is evaluated on: the horizon, or for a
        CLV fallback to BTYD the longest window that fits.
    active_days : int
        Population: a purchase in the ``active_days`` before a cutoff.
    split : CutoffSplit
        Training and validation cutoffs.
    counts : pandas.DataFrame
        Per cutoff (index, a date): ``rows`` (active customers) and ``churn_rate``.
    data_start, data_end : date
        First event day and the day after the last.
    methods : tuple of str
        What the job fits: ``("xgboost", "btyd")`` or, for a CLV fallback, ``("btyd",)``.
    notes : tuple of str
        What the job adapted, in words.
    """

    family: str
    horizon_days: int
    label_horizon_days: int
    active_days: int
    split: CutoffSplit
    counts: pd.DataFrame
    data_start: date
    data_end: date
    methods: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def rows(self) -> list[dict]:
        """One dict per cutoff: ``as_of``, ``role``, ``window`` (label window), ``rows``,
        ``churn_rate``; training cutoffs first."""
        window = timedelta(days=self.label_horizon_days)
        found = []
        for role, cutoffs in (
            ("training", self.split.training),
            ("validation", self.split.validation),
        ):
            for day in cutoffs:
                counted = self.counts.loc[day] if day in self.counts.index else None
                found.append(
                    {
                        "as_of": day,
                        "role": role,
                        "window": (day, day + window) if self.label_horizon_days else None,
                        "rows": int(counted["rows"]) if counted is not None else 0,
                        "churn_rate": _rate(counted),
                    }
                )
        return found

    def as_dict(self) -> dict:
        """JSON-ready form (logged with each training run as ``plan``)."""
        return {
            "family": self.family,
            "horizon_days": self.horizon_days,
            "label_horizon_days": self.label_horizon_days,
            "active_days": self.active_days,
            "data_start": str(self.data_start),
            "data_end": str(self.data_end),
            "methods": list(self.methods),
            "notes": list(self.notes),
            "cutoffs": [
                {
                    "as_of": str(row["as_of"]),
                    "role": row["role"],
                    "label_window": [str(day) for day in row["window"]] if row["window"] else None,
                    "rows": row["rows"],
                    "churn_rate": None
                    if row["churn_rate"] is None
                    else round(row["churn_rate"], 6),
                }
                for row in self.rows()
            ],
        }


def _rate(counted: pd.Series | None) -> float | None:
    if counted is None or pd.isna(counted["churn_rate"]):
        return None
    return float(counted["churn_rate"])


def clv_label_horizon(
    config: CLVConfig, data_start: date, data_end: date
) -> tuple[int, str | None]:
    """The label window the CLV job learns from, and why it is not the horizon (or ``None``).

    The configured horizon when its plan fits the data. Otherwise the job falls back to BTYD
    for the configured horizon, evaluated over the longest of the configured horizon's
    :data:`~retain.training.cutoffs.HORIZON_CHOICES` below it whose plan fits.

    Raises
    ------
    PlanDoesNotFitError
        Not even the shortest window fits (the message names what would).
    """
    try:
        plan_cutoffs(config.cutoffs, config.horizon_days, data_start, data_end)
        return config.horizon_days, None
    except PlanDoesNotFitError as error:
        failure = error
    for horizon in (h for h in HORIZON_CHOICES if h < config.horizon_days):
        try:
            plan_cutoffs(config.cutoffs, horizon, data_start, data_end)
        except PlanDoesNotFitError:
            continue
        return horizon, (
            f"no {config.horizon_days}-day label window fits the data ({data_start} to "
            f"{data_end}): CLV over {config.horizon_days} days comes from BTYD "
            f"({config.btyd} x Gamma-Gamma, which need no label window), evaluated out of time "
            f"over {horizon} days; the ML spend model is trained once {config.horizon_days}-day "
            "windows fit"
        )
    raise failure


def make_plan(config: JobConfig, sources: SourceData, family: str) -> TrainingPlan:
    """The plan of a job on ``sources`` (reads the transactions; builds no snapshot).

    Raises
    ------
    PlanDoesNotFitError
        The configured horizon or cutoffs do not fit the data (with a plan that does).
    RetainError
        No events in the data.
    """
    start, end = data_span(sources)
    notes: list[str] = []
    methods: tuple[str, ...] = ("xgboost", "btyd")
    label_horizon = config.horizon_days
    if isinstance(config, CLVConfig):
        label_horizon, fallback = clv_label_horizon(config, start, end)
        if fallback:
            notes.append(fallback)
            methods = ("btyd",)
    elif isinstance(config, SegmentsConfig):
        methods = ("segments",)
    labelled = dataclasses.replace(config, horizon_days=label_horizon)
    split = plan_split(labelled, sources)
    if split.dropped:
        count = len(split.dropped)
        notes.append(
            f"{count} planned training cutoff{'s' if count != 1 else ''} "
            f"({split.dropped[0]} to {split.dropped[-1]}) left out: not after the first event "
            f"({start})"
        )
    engine = get_engine()  # the plan counts on the driver (the rows are few)
    labels = engine.outcomes(
        sources, split.all, horizon_days=label_horizon, active_days=config.active_days
    )
    counts = engine.cutoff_counts(labels)
    if not label_horizon:  # segments: a population, no label
        counts["churn_rate"] = float("nan")
    return TrainingPlan(
        family, config.horizon_days, label_horizon, config.active_days, split, counts,
        start, end, methods, tuple(notes),
    )  # fmt: skip


def plan_table(plan: TrainingPlan):
    """A rich table of the plan's cutoffs (for ``retain plan``)."""
    from rich import box
    from rich.table import Table

    title = f"{plan.family} plan"
    if plan.horizon_days:
        title += f": horizon {plan.horizon_days} days"
        if plan.label_horizon_days != plan.horizon_days:
            title += f" (labels over {plan.label_horizon_days})"
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1))
    for column, justify in (
        ("cutoff", "left"), ("role", "left"), ("labels until", "left"),
        ("active", "right"), ("churn rate", "right"),
    ):  # fmt: skip
        table.add_column(column, justify=justify, no_wrap=True)
    for row in plan.rows():
        until = str(row["window"][1]) if row["window"] else ""
        rate = "" if row["churn_rate"] is None else f"{row['churn_rate']:.1%}"
        role = row["role"] if plan.label_horizon_days else "fit"
        table.add_row(str(row["as_of"]), role, until, f"{row['rows']:,}", rate)
    table.caption = (
        f"active: a purchase in the {plan.active_days} days before the cutoff; "
        f"data {plan.data_start} to {plan.data_end}"
    )
    return table
