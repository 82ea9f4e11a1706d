"""Curves of what contacts add: the predicted incremental-profit curve of a list, and the
figure of an uplift ranking's Qini curve.

- :func:`profit_curve`: customers sorted by expected net gain (best first), the cumulative
  expected net gain of contacting the first ``k`` of them, for every ``k``. It rises while
  gains are positive and peaks where the next contact is expected to lose money: contacting
  more customers than the peak costs more than it adds.
- :func:`qini_plot` draws a Qini curve computed by :func:`retain.metrics.uplift.qini_curve`
  (Radcliffe 2007) on a randomised experiment, such as the uplift model's out-of-time
  validation (``retain train uplift``); nothing in the list itself is an experiment with
  outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

__all__ = ["profit_curve", "profit_curve_plot", "qini_plot"]

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


def qini_plot(counts: ArrayLike, qini: ArrayLike) -> Figure:
    """A Qini curve (``counts`` targeted, ``qini`` value, as
    :func:`retain.metrics.uplift.qini_curve` returns them) against random targeting."""
    counts, qini = np.asarray(counts, dtype=float), np.asarray(qini, dtype=float)
    figure = Figure(figsize=FIGSIZE)
    ax = figure.subplots()
    ax.plot(counts, qini, label="ranking")
    ax.plot([0, counts[-1]], [0, qini[-1]], color="grey", linestyle="--", label="random")
    ax.set(title="Qini curve", xlabel="customers targeted", ylabel="incremental outcome")
    ax.legend(loc="lower right")
    figure.tight_layout()
    return figure
