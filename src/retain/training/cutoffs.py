"""Training and validation cutoffs: a time split, never a random one.

The latest cutoffs whose label window the data cover validate; earlier ones train. A training
cutoff's label window must close by the first validation cutoff, otherwise its labels would be
read from the validation period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from retain.errors import RetainError
from retain.training.config import CutoffPlan

__all__ = ["CutoffSplit", "IncompleteLabelWindowError", "month_start", "plan_cutoffs"]


class IncompleteLabelWindowError(RetainError):
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
    RetainError
        No room for a validation cutoff or for any training cutoff.
    """
    horizon = timedelta(days=horizon_days)
    validation = plan.validation_dates or _validation(plan, horizon, data_end)
    for day in validation:
        _check_complete(day, horizon, data_end)
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
        raise RetainError(
            f"no training cutoff fits between the first event ({data_start}) and the validation "
            f"cutoff {first_validation} with a {horizon_days}-day label window; the data are too "
            "short for this horizon (lower horizon_days or give cutoffs.training_dates)"
        )
    return CutoffSplit(kept, tuple(sorted(validation)), data_end, dropped)


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
