"""Training and validation cutoffs: a time split, never a random one.

The latest cutoffs whose label window the data cover validate; earlier ones train. A training
cutoff's label window must close by the first validation cutoff, otherwise its labels would be
read from the validation period.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta

from retain.errors import RetainError
from retain.training.config import CutoffPlan

__all__ = [
    "HORIZON_CHOICES",
    "CutoffSplit",
    "IncompleteLabelWindowError",
    "PlanDoesNotFitError",
    "fitting_plan",
    "month_start",
    "plan_cutoffs",
]

#: Horizons (days) suggested when the configured one does not fit the data, longest first:
#: a year, three quarters, half a year, a quarter, two months, a month.
HORIZON_CHOICES = (365, 273, 182, 91, 61, 30)


class PlanDoesNotFitError(RetainError):
    """The configured horizon and cutoffs do not fit the span of the data."""


class IncompleteLabelWindowError(PlanDoesNotFitError):
    """A cutoff whose label window runs past the end of the data."""


@dataclass(frozen=True)
class CutoffSplit:
    """Cutoffs of a training set.

    Attributes
    ----------
    training, validation : tuple of date
        Cutoffs in date order.
    data_end : date
        Day after the last event: label windows must end on or before it.
    dropped : tuple of date
        Planned training cutoffs left out because the data start after them.
    """

    training: tuple[date, ...]
    validation: tuple[date, ...]
    data_end: date
    dropped: tuple[date, ...] = ()

    @property
    def all(self) -> tuple[date, ...]:
        """Every cutoff, training first."""
        return self.training + self.validation


def month_start(day: date, months_back: int = 0) -> date:
    """First day of the month ``months_back`` months before the month of ``day``."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def plan_cutoffs(
    plan: CutoffPlan, horizon_days: int, data_start: date, data_end: date
) -> CutoffSplit:
    """Turn a :class:`CutoffPlan` into dates for data spanning ``[data_start, data_end)``.

    Raises
    ------
    IncompleteLabelWindowError
        A requested cutoff whose ``[as_of, as_of + horizon_days)`` runs past ``data_end``.
    PlanDoesNotFitError
        No room for a validation cutoff after the first event, or for any training cutoff.
        Every message ends with a plan that fits the data (see :func:`fitting_plan`).
    RetainError
        A training date whose label window reaches the validation period.
    """
    try:
        return _plan_cutoffs(plan, horizon_days, data_start, data_end)
    except PlanDoesNotFitError as error:
        fits = fitting_plan(plan, horizon_days, data_start, data_end)
        hint = (
            f"; a plan that fits these data: {fits}"
            if fits
            else f"; the data ({data_start} to {data_end}) are too short for any horizon of "
            f"{min(HORIZON_CHOICES)} days or more"
        )
        raise type(error)(f"{error}{hint}") from None


def _plan_cutoffs(
    plan: CutoffPlan, horizon_days: int, data_start: date, data_end: date
) -> CutoffSplit:
    horizon = timedelta(days=horizon_days)
    validation = plan.validation_dates or _validation(plan, horizon, data_end)
    for day in validation:
        _check_complete(day, horizon, data_end)
        if day <= data_start:
            raise PlanDoesNotFitError(
                f"validation cutoff {day} is not after the first event ({data_start}): with a "
                f"{horizon_days}-day label window the data leave no history before it"
            )
    first_validation = min(validation)
    planned = plan.training_dates or _training(plan, horizon, first_validation)
    for day in planned:
        if day + horizon > first_validation or day >= first_validation:
            raise RetainError(
                f"training cutoff {day}: its label window [{day}, {day + horizon}) reaches the "
                f"validation cutoff {first_validation}; pick an earlier one"
            )
    kept = tuple(sorted(day for day in planned if day > data_start))
    dropped = tuple(sorted(day for day in planned if day <= data_start))
    if plan.training and not kept:
        raise PlanDoesNotFitError(
            f"no training cutoff fits between the first event ({data_start}) and the validation "
            f"cutoff {first_validation} with a {horizon_days}-day label window: the data are "
            "too short for this horizon"
        )
    return CutoffSplit(kept, tuple(sorted(validation)), data_end, dropped)


def fitting_plan(
    plan: CutoffPlan, horizon_days: int, data_start: date, data_end: date
) -> str | None:
    """A plan that fits data spanning ``[data_start, data_end)``, in words, or ``None``.

    The configured horizon with the training cutoffs that fit, else the longest of
    :data:`HORIZON_CHOICES` below it that leaves at least two training cutoffs (else one),
    each with automatic cutoffs, e.g. ``"horizon_days 91 with 4 training cutoffs (2024-02-01
    to 2024-05-01) and validation cutoff 2024-08-01"``.
    """
    automatic = dataclasses.replace(plan, last=None, training_dates=(), validation_dates=())
    horizons = [horizon_days, *(h for h in HORIZON_CHOICES if h < horizon_days)]
    for least in (2, 1):
        for horizon in horizons:
            try:
                split = _plan_cutoffs(automatic, horizon, data_start, data_end)
            except RetainError:
                continue
            if len(split.training) >= min(least, plan.training):
                return _describe(horizon, split, plan)
    return None


def _describe(horizon: int, split: CutoffSplit, plan: CutoffPlan) -> str:
    explicit = plan.last or plan.training_dates or plan.validation_dates
    count = len(split.training)
    text = f"horizon_days {horizon}"
    if plan.training:
        span = (
            f"{split.training[0]}" if count == 1 else f"{split.training[0]} to {split.training[-1]}"
        )
        text += f" with {count} training cutoff{'s' if count != 1 else ''} ({span})"
    cutoffs = ", ".join(map(str, split.validation))
    plural = "s" if len(split.validation) != 1 else ""
    text += f" and validation cutoff{plural} {cutoffs}"
    return (
        f"{text} (automatic cutoffs: leave cutoffs.last and the dates unset)" if explicit else text
    )


def _check_complete(day: date, horizon: timedelta, data_end: date) -> None:
    if day + horizon > data_end:
        raise IncompleteLabelWindowError(
            f"cutoff {day}: its label window [{day}, {day + horizon}) runs past the end of the "
            f"data ({data_end}); the latest cutoff with a complete window is {data_end - horizon}"
        )


def _validation(plan: CutoffPlan, horizon: timedelta, data_end: date) -> tuple[date, ...]:
    last = plan.last or month_start(data_end - horizon)
    _check_complete(last, horizon, data_end)
    earlier = (month_start(last, step * plan.step_months) for step in range(1, plan.validation))
    return (last, *earlier)


def _training(plan: CutoffPlan, horizon: timedelta, first_validation: date) -> tuple[date, ...]:
    latest = month_start(first_validation - max(horizon, timedelta(days=1)))
    return tuple(month_start(latest, step * plan.step_months) for step in range(plan.training))
