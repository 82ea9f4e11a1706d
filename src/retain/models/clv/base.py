"""Shared machinery of the BTYD estimators: input checks, row aggregation and the optimiser.

Each model lives in its own module on top of :class:`BTYDEstimator`, which follows the
scikit-learn conventions: settings are only stored by ``__init__``, ``fit`` validates its
inputs, learns attributes ending in ``_`` and returns ``self``, and prediction methods call
:func:`sklearn.utils.validation.check_is_fitted` first.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "BTYDEstimator",
    "RFMSummary",
    "as_result",
    "central_gradient",
    "check_frequency",
    "check_horizon",
    "check_rfm",
    "distinct_rows",
    "reject_if",
    "summarise_rfm",
    "to_float_array",
    "unique_rows",
]

MAX_SAMPLES = 5
# Log-parameters stay inside [-LOG_BOUND, LOG_BOUND] so that exp() can neither overflow nor
# underflow while the optimiser explores; fitted values at the bound mean the data do not
# identify the parameter (e.g. no dropout at all).
LOG_BOUND = 30.0
# Step of central differences in log-parameters: truncation ~ step^2, rounding ~ 1e-16/step.
FD_STEP = 1e-5
# Merge identical repeat-buyer rows when distinct recencies are fewer than this share of rows.
MERGE_IF_DISTINCT_BELOW = 0.8


def to_float_array(name: str, values: object) -> np.ndarray:
    """Return ``values`` (scalar, list, numpy array or pandas Series) as a float array.

    Raises
    ------
    ValueError
        If the values are not numeric or have more than one dimension.
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric ({exc})") from exc
    if array.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {array.shape}")
    return array


def reject_if(name: str, bad: np.ndarray, shown: np.ndarray, problem: str) -> None:
    """Raise a ``ValueError`` naming ``name`` with a sample of ``shown`` where ``bad`` holds."""
    count = int(np.count_nonzero(bad))
    if count:
        sample = [_plain(value) for value in shown[bad][:MAX_SAMPLES]]
        plural = "s" if count != 1 else ""
        raise ValueError(f"{name} {problem}; {count} bad value{plural}, e.g. {sample}")


def _plain(value: object) -> object:
    """A numpy scalar (or a row of them) as plain Python numbers, for readable messages."""
    if isinstance(value, np.ndarray):
        return tuple(float(item) for item in value)
    return float(value)


def check_finite_non_negative(name: str, values: np.ndarray) -> None:
    """Reject NaN, infinite and negative values."""
    reject_if(name, ~np.isfinite(values), values, "must be finite")
    reject_if(name, values < 0, values, "must be non-negative")


def check_frequency(frequency: object) -> np.ndarray:
    """Repeat-purchase counts: finite, non-negative and integer-valued."""
    x = to_float_array("frequency", frequency)
    check_finite_non_negative("frequency", x)
    reject_if("frequency", x != np.round(x), x, "must be integer-valued")
    return x


def check_rfm(frequency: object, recency: object, T: object) -> tuple[np.ndarray, ...]:
    """Validate one customer summary per row and broadcast it to equal-length float arrays.

    Parameters
    ----------
    frequency : array-like of int
        Number of repeat purchases.
    recency : array-like of float
        Age of the customer at the last repeat purchase (0 when ``frequency`` is 0).
    T : float or array-like of float
        Age of the customer at the end of the observation period.

    Returns
    -------
    x, t_x, T : numpy.ndarray
        Float arrays of the broadcast shape.

    Raises
    ------
    ValueError
        Naming the offending argument and showing a sample of bad values.
    """
    x = check_frequency(frequency)
    t_x = to_float_array("recency", recency)
    age = to_float_array("T", T)
    check_finite_non_negative("recency", t_x)
    check_finite_non_negative("T", age)
    try:
        x, t_x, age = np.broadcast_arrays(x, t_x, age)
    except ValueError as exc:
        shapes = f"{x.shape}, {t_x.shape}, {age.shape}"
        raise ValueError(f"frequency, recency and T have incompatible shapes {shapes}") from exc
    pairs = np.column_stack([np.ravel(t_x), np.ravel(age)])
    reject_if("recency", np.ravel(t_x > age), pairs, "must not exceed T (showing recency, T)")
    reject_if(
        "recency", np.ravel((x == 0) & (t_x != 0)), np.ravel(t_x), "must be 0 when frequency is 0"
    )
    return x, t_x, age


def check_horizon(t: object) -> np.ndarray:
    """Prediction horizon(s): finite and non-negative."""
    horizon = to_float_array("t", t)
    check_finite_non_negative("t", horizon)
    return horizon


def as_result(values: np.ndarray) -> np.ndarray | float:
    """A plain float for scalar inputs, else the array."""
    return float(values) if np.ndim(values) == 0 else values


def unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of equal-length 1-D columns and how often each occurs.

    Sorts with ``np.lexsort`` and compares neighbours, which is several times faster than
    ``np.unique(..., axis=0)`` (that sorts an opaque void view).
    """
    distinct, inverse = distinct_rows(*columns)
    return distinct, np.bincount(inverse, minlength=len(distinct[0])).astype(np.float64)


def distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of equal-length 1-D columns and, per input row, its distinct row."""
    if len(columns[0]) == 0:
        return [column.copy() for column in columns], np.zeros(0, dtype=np.intp)
    order = np.lexsort(columns[::-1])
    sorted_cols = [column[order] for column in columns]
    same_as_previous = np.ones(len(order) - 1, dtype=bool)
    for column in sorted_cols:
        same_as_previous &= column[1:] == column[:-1]
    starts = np.concatenate([[True], ~same_as_previous])
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return [column[starts] for column in sorted_cols], inverse


def central_gradient(
    function: Callable[[np.ndarray], float], theta: np.ndarray, step: float = FD_STEP
) -> np.ndarray:
    """Gradient of a scalar function by central differences."""
    gradient = np.empty_like(theta)
    for i in range(len(theta)):
        shift = np.zeros_like(theta)
        shift[i] = step
        gradient[i] = (function(theta + shift) - function(theta - shift)) / (2 * step)
    return gradient


@dataclass(frozen=True)
class RFMSummary:
    """Sufficient statistics of ``(frequency, recency, T)`` with identical rows merged.

    Customers without repeat purchases all have recency 0 and differ only in ``T``; the
    others are ``(x, t_x, T)`` rows with weights (distinct ones, when merging pays).
    ``slot`` maps each repeat row to its entry in ``x_values`` so that terms depending only
    on ``x`` are computed once per distinct frequency; likewise ``age_slot`` into
    ``age_values`` (distinct T) and ``pair_slot`` into the distinct ``(pair_x, pair_age)``.
    """

    n_customers: int
    x_values: np.ndarray
    x_weight: np.ndarray
    zero_age: np.ndarray
    zero_weight: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weight: np.ndarray
    slot: np.ndarray
    age_values: np.ndarray
    age_slot: np.ndarray
    pair_x: np.ndarray
    pair_age: np.ndarray
    pair_slot: np.ndarray


def summarise_rfm(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> RFMSummary:
    """Merge identical customers (validated, equal-length 1-D inputs) into weighted rows."""
    x_values, x_weight = np.unique(x, return_counts=True)
    zero = x == 0
    zero_age, zero_weight = np.unique(T[zero], return_counts=True)
    repeat = ~zero
    rx, rt, rT = x[repeat], t_x[repeat], T[repeat]
    # Merging pays only when recencies repeat (discrete time); with continuous recencies
    # nearly every row is distinct and the three-key sort would be wasted.
    if len(np.unique(rt)) < MERGE_IF_DISTINCT_BELOW * len(rt):
        (rx, rt, rT), weight = unique_rows(rx, rt, rT)
    else:
        weight = np.ones(len(rx))
    age_values, age_slot = np.unique(rT, return_inverse=True)
    slot = np.searchsorted(x_values, rx)
    # distinct (x, T) pairs: terms that ignore recency are computed once per pair
    pairs, pair_slot = np.unique(slot * len(age_values) + age_slot, return_inverse=True)
    return RFMSummary(
        n_customers=len(x),
        x_values=x_values,
        x_weight=x_weight.astype(np.float64),
        zero_age=zero_age,
        zero_weight=zero_weight.astype(np.float64),
        x=rx,
        t_x=rt,
        T=rT,
        weight=weight,
        slot=slot,
        age_values=age_values,
        age_slot=age_slot,
        pair_x=x_values[pairs // len(age_values)] if len(age_values) else rx,
        pair_age=age_values[pairs % len(age_values)] if len(age_values) else rT,
        pair_slot=pair_slot,
    )


Objective = Callable[[np.ndarray], tuple[float, np.ndarray]] | Callable[[np.ndarray], float]


class BTYDEstimator(BaseEstimator):
    """Base class: maximum likelihood on log-parameters with L-BFGS-B.

    Parameters
    ----------
    penalizer : float, default=0.0
        Coefficient of an L2 penalty ``penalizer * sum(params ** 2)`` added to the mean
        negative log-likelihood per customer (as in lifetimes); shrinks extreme estimates on
        small data sets.
    tol : float, default=1e-10
        Relative tolerance on the objective (L-BFGS-B ``ftol``); the gradient tolerance is
        the same number.
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    initial_params : dict or None, default=None
        Starting values by parameter name; parameters not given start from a data-based guess.
    """

    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        penalizer: float = 0.0,
        tol: float = 1e-10,
        max_iter: int = 1000,
        initial_params: Mapping[str, float] | None = None,
    ):
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter
        self.initial_params = initial_params

    def _check_settings(self) -> None:
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be finite and >= 0; got {self.penalizer!r}")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"tol must be positive; got {self.tol!r}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1; got {self.max_iter!r}")
        unknown = set(self.initial_params or {}) - set(self.param_names)
        if unknown:
            raise ValueError(f"initial_params has unknown keys {sorted(unknown)}")
        for name, value in (self.initial_params or {}).items():
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"initial_params[{name!r}] must be positive; got {value!r}")

    def _fit_inputs(
        self, frequency: object, recency: object, T: object
    ) -> tuple[np.ndarray, np.ndarray, RFMSummary]:
        """Check settings and customer summaries, then merge identical customers.

        The common start of every frequency/recency/T fit; returns the flat frequency and
        age arrays (for starting values) and the merged summary the likelihoods work on.
        """
        self._check_settings()
        x, t_x, age = (np.ravel(v) for v in check_rfm(frequency, recency, T))
        if x.size == 0:
            raise ValueError("frequency is empty; need at least one customer")
        return x, age, summarise_rfm(x, t_x, age)

    def _start(self, guess: Mapping[str, float]) -> np.ndarray:
        """Starting parameters: ``initial_params`` where given, else the data-based guess."""
        given = dict(self.initial_params or {})
        return np.array([given.get(name, guess[name]) for name in self.param_names], float)

    def _penalised(self, objective: Objective, with_gradient: bool) -> Objective:
        """Wrap a mean negative log-likelihood of log-parameters with the L2 penalty."""
        penalizer = float(self.penalizer)
        if penalizer == 0.0:
            return objective
        if not with_gradient:
            return lambda theta: objective(theta) + penalizer * np.sum(np.exp(2 * theta))

        def penalised(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, gradient = objective(theta)
            squares = np.exp(2 * theta)
            return value + penalizer * squares.sum(), gradient + 2 * penalizer * squares

        return penalised

    def _minimise(self, objective: Objective, start: np.ndarray, with_gradient: bool) -> None:
        """Minimise over log-parameters; sets ``params_``, ``converged_`` and ``n_iter_``."""
        theta0 = np.clip(np.log(start), -LOG_BOUND, LOG_BOUND)
        result = minimize(
            self._penalised(objective, with_gradient),
            theta0,
            jac=with_gradient,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(theta0),
            options={"maxiter": int(self.max_iter), "ftol": self.tol, "gtol": self.tol},
        )
        self.params_ = {
            name: float(v) for name, v in zip(self.param_names, np.exp(result.x), strict=True)
        }
        self.converged_ = bool(result.success)
        self.n_iter_ = int(result.nit)
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge: {result.message}",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _param_values(self) -> tuple[float, ...]:
        return tuple(self.params_[name] for name in self.param_names)
