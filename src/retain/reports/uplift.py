"""Curves of what contacts add: the predicted incremental-profit curve of a list, and the Qini
curve of an uplift ranking.

- :func:`profit_curve`: customers sorted by expected net gain (best first), the cumulative
  expected net gain of contacting the first ``k`` of them, for every ``k``. It rises while
  gains are positive and peaks where the next contact is expected to lose money: contacting
  more customers than the peak costs more than it adds.
- :func:`qini_curve` and :func:`qini_coefficient` (Radcliffe 2007, "Using control groups to
  target on predicted lift"): on a randomised experiment's rows ranked by a predicted uplift
  ``score``, ``Q(k) = Y_t(k) - Y_c(k) x N_t(k) / N_c(k)``, the outcome of the treated among
  the first ``k`` minus that of the controls scaled to the same size. The coefficient is the
  area between the curve and the straight line of random targeting, per customer. Fed by the
  uplift model's out-of-time validation (``retain-uplift``) once it exists; nothing in the
  list itself is a randomised experiment with outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

__all__ = ["profit_curve", "profit_curve_plot", "qini_coefficient", "qini_curve", "qini_plot"]

FIGSIZE = (7.0, 4.0)


def profit_curve(gain: ArrayLike) -> pd.DataFrame:
    """Cumulative expected net gain by customers contacted, best gains first.

    Parameters
    ----------
    gain : array-like of float
        Expected net gain per customer (missing values count as 0).

    Returns
    -------
    pandas.DataFrame
        ``contacted`` (0 to n) and ``profit`` (the cumulative expected net gain).
    """
    values = np.nan_to_num(np.asarray(gain, dtype=float), nan=0.0)
    ordered = -np.sort(-values, kind="stable")
    profit = np.concatenate([[0.0], np.cumsum(ordered)])
    return pd.DataFrame({"contacted": np.arange(len(profit)), "profit": profit})


def qini_curve(score: ArrayLike, treatment: ArrayLike, outcome: ArrayLike) -> pd.DataFrame:
    """The Qini curve of a ranking on a randomised experiment.

    Parameters
    ----------
    score : array-like of float
        Predicted uplift per customer (higher = target first).
    treatment : array-like of bool
        Whether the customer was treated (else control).
    outcome : array-like of float
        The realised outcome (e.g. retained margin, or 1 for retained).

    Returns
    -------
    pandas.DataFrame
        ``targeted`` (0 to n) and ``qini``: ``Y_t(k) - Y_c(k) N_t(k) / N_c(k)`` (0 while no
        control is among the first ``k``), and ``random``: the line of random targeting to
        the overall value.

    Raises
    ------
    ValueError
        Arrays of different lengths, or no treated or no control customer.
    """
    score = np.asarray(score, dtype=float)
    treated = np.asarray(treatment, dtype=bool)
    outcome = np.asarray(outcome, dtype=float)
    if not len(score) == len(treated) == len(outcome):
        raise ValueError("score, treatment and outcome must have one length")
    if treated.all() or not treated.any():
        raise ValueError("a Qini curve needs treated and control customers")
    order = np.argsort(-score, kind="stable")
    treated, outcome = treated[order], outcome[order]
    n_t = np.concatenate([[0], np.cumsum(treated)])
    n_c = np.concatenate([[0], np.cumsum(~treated)])
    y_t = np.concatenate([[0.0], np.cumsum(np.where(treated, outcome, 0.0))])
    y_c = np.concatenate([[0.0], np.cumsum(np.where(treated, 0.0, outcome))])
    scale = np.divide(n_t, n_c, out=np.zeros(len(n_t)), where=n_c > 0)
    qini = y_t - y_c * scale
    targeted = np.arange(len(qini))
    return pd.DataFrame(
        {"targeted": targeted, "qini": qini, "random": qini[-1] * targeted / targeted[-1]}
    )


def qini_coefficient(score: ArrayLike, treatment: ArrayLike, outcome: ArrayLike) -> float:
    """Area between the Qini curve and random targeting, per customer (trapezoids)."""
    curve = qini_curve(score, treatment, outcome)
    gap = (curve["qini"] - curve["random"]).to_numpy()
    return float(np.sum((gap[1:] + gap[:-1]) / 2) / (len(gap) - 1))


def profit_curve_plot(curve: pd.DataFrame, capacity: int | None, currency: str = "") -> Figure:
    """The profit curve with its peak and the list's capacity marked."""
    figure = Figure(figsize=FIGSIZE)
    ax = figure.subplots()
    ax.plot(curve["contacted"], curve["profit"], color="#1f77b4", label="expected net gain")
    peak = int(curve["profit"].to_numpy().argmax())
    ax.scatter([curve["contacted"][peak]], [curve["profit"][peak]], color="#d62728", zorder=3,
               label=f"peak: {peak:,} customers")  # fmt: skip
    if capacity is not None and 0 < capacity < len(curve):
        ax.axvline(capacity, color="grey", linestyle="--", label=f"capacity {capacity:,}")
    ax.axhline(0, color="black", linewidth=0.5)
    unit = f" ({currency})" if currency else ""
    ax.set(
        title="Predicted incremental profit by customers contacted",
        xlabel="customers contacted (best expected net gain first)",
        ylabel=f"cumulative expected net gain{unit}",
    )
    ax.legend(loc="lower right")
    figure.tight_layout()
    return figure


def qini_plot(curve: pd.DataFrame) -> Figure:
    """A Qini curve (:func:`qini_curve`) against random targeting."""
    figure = Figure(figsize=FIGSIZE)
    ax = figure.subplots()
    ax.plot(curve["targeted"], curve["qini"], label="ranking")
    ax.plot(curve["targeted"], curve["random"], color="grey", linestyle="--", label="random")
    ax.set(title="Qini curve", xlabel="customers targeted", ylabel="incremental outcome")
    ax.legend(loc="lower right")
    figure.tight_layout()
    return figure
