"""Evaluation plots for churn, value and uplift models.

Every function builds a :class:`matplotlib.figure.Figure` directly (never through ``pyplot``), so
no backend is selected, no global figure registry grows and the functions are safe to call from
jobs, tests and threads. Numbers shown in legends and titles come from
:mod:`retain.metrics.model`, so a plot always agrees with the logged metrics.

Functions taking ``scores`` or ``probabilities`` accept a mapping from a model name to that
model's predictions for the same rows, and draw one curve per model in mapping order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_curve, roc_curve

from retain.atomic import atomic_file
from retain.metrics.model import (
    average_precision,
    calibration_table,
    expected_calibration_error,
    gain_curve,
    lift_and_capture,
    roc_auc,
)

__all__ = [
    "calibration_plot",
    "calibration_table_plot",
    "decile_plot",
    "gain_curve_plot",
    "gain_plot",
    "group_bar_plot",
    "importance_plot",
    "incremental_profit_plot",
    "precision_recall_plot",
    "probability_histogram",
    "qini_curves_plot",
    "roc_plot",
    "save_figure",
]

FIGSIZE = (6.0, 4.5)
REFERENCE = {"color": "0.5", "linestyle": "--", "linewidth": 1.0}
#: Columns of the uplift curves :func:`qini_curves_plot` and :func:`incremental_profit_plot` draw.
UPLIFT_CURVE_COLUMNS = ("ranking", "share_targeted", "qini", "incremental_profit")
#: Curves with more points than this are thinned before drawing (the shape is unchanged).
MAX_CURVE_POINTS = 2_000
DECILE_COLUMNS = ("decile", "predicted_mean", "actual_mean")


def _figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _check_models(scores: Mapping[str, ArrayLike], what: str) -> None:
    if not isinstance(scores, Mapping) or len(scores) == 0:
        raise ValueError(f"{what} must be a non-empty mapping of model name to predictions")


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str, legend: str = "lower right") -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc=legend, fontsize="small", frameon=False)


def _unit_square(ax: Axes) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most about ``MAX_CURVE_POINTS`` evenly spaced points, always both ends."""
    if x.size <= MAX_CURVE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, x.size - 1, MAX_CURVE_POINTS).round().astype(int))
    return x[keep], y[keep]


def roc_plot(y_true: ArrayLike, scores: Mapping[str, ArrayLike]) -> Figure:
    """ROC curves, one per model, with the AUC in the legend and the chance diagonal.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (both classes present).
    scores : mapping of str to array-like of shape (n,)
        Scores per model; higher means more likely positive.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_models(scores, "scores")
    fig = _figure()
    ax = fig.add_subplot()
    for name, score in scores.items():
        auc = roc_auc(y_true, score)
        false_positive, true_positive, _ = roc_curve(np.asarray(y_true), np.asarray(score))
        ax.plot(false_positive, true_positive, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], label="Chance (AUC 0.500)", **REFERENCE)
    _unit_square(ax)
    _finish(ax, "ROC curve", "False positive rate", "True positive rate")
    return fig


def precision_recall_plot(y_true: ArrayLike, scores: Mapping[str, ArrayLike]) -> Figure:
    """Precision-recall curves with average precision (AP) in the legend and the base rate.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (at least one positive).
    scores : mapping of str to array-like of shape (n,)
        Scores per model; higher means more likely positive.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_models(scores, "scores")
    fig = _figure()
    ax = fig.add_subplot()
    labels = np.asarray(y_true, dtype=float)
    for name, score in scores.items():
        ap = average_precision(y_true, score)
        precision, recall, _ = precision_recall_curve(labels, np.asarray(score, dtype=float))
        recall, precision = _thin(recall, precision)
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})")
    base_rate = float(labels.mean())
    ax.axhline(base_rate, label=f"Base rate ({base_rate:.3f})", **REFERENCE)
    _unit_square(ax)
    _finish(ax, "Precision-recall curve", "Recall", "Precision", legend="upper right")
    return fig


def calibration_plot(
    y_true: ArrayLike, probabilities: Mapping[str, ArrayLike], bins: int = 10
) -> Figure:
    """Reliability diagram (ECE in the legend) above a histogram of the predictions.

    Bins are uniform on [0, 1], as for the ``ece`` of
    :func:`retain.metrics.model.classification_metrics`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    probabilities : mapping of str to array-like of shape (n,)
        Predicted probabilities in [0, 1] per model.
    bins : int, default=10
        Number of uniform bins, for both panels.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the reliability diagram (top) and the prediction histogram (bottom).
    """
    _check_models(probabilities, "probabilities")
    fig = _figure((6.0, 5.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], label="Perfectly calibrated", **REFERENCE)
    for name, probability in probabilities.items():
        table = calibration_table(y_true, probability, bins=bins)
        ece = expected_calibration_error(y_true, probability, bins=bins)
        (line,) = top.plot(
            table["mean_predicted"],
            table["observed_rate"],
            marker="o",
            markersize=4,
            label=f"{name} (ECE {ece:.3f})",
        )
        bottom.hist(
            np.asarray(probability, dtype=float),
            bins=bins,
            range=(0, 1),
            histtype="step",
            color=line.get_color(),
            label=name,
        )
    _unit_square(top)
    _finish(top, "Calibration", "", "Observed positive rate", legend="upper left")
    bottom.set_xlabel("Mean predicted probability")
    bottom.set_ylabel("Rows")
    bottom.grid(True, alpha=0.3)
    return fig


def gain_plot(
    y_true: ArrayLike, scores: Mapping[str, ArrayLike], top_fraction: float = 0.1
) -> Figure:
    """Cumulative gain curves with the random and perfect references.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (at least one positive).
    scores : mapping of str to array-like of shape (n,)
        Scores per model; customers are contacted from the highest score down.
    top_fraction : float, default=0.1
        Share of customers contacted for the capture figure shown in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_models(scores, "scores")
    fig = _figure()
    ax = fig.add_subplot()
    for name, score in scores.items():
        _, capture = lift_and_capture(y_true, score, top_fraction)
        contacted, captured = _thin(*gain_curve(y_true, score))
        ax.plot(
            contacted, captured, label=f"{name} (top {top_fraction:.0%}: {capture:.0%} captured)"
        )
    perfect = gain_curve(y_true, y_true)
    ax.plot(*_thin(*perfect), color="0.2", linestyle=":", linewidth=1.0, label="Perfect")
    ax.plot([0, 1], [0, 1], label="Random", **REFERENCE)
    _unit_square(ax)
    _finish(ax, "Cumulative gain", "Share of customers contacted", "Share of positives captured")
    return fig


def importance_plot(
    importance: pd.Series, top: int = 20, title: str = "Mean |SHAP| contribution"
) -> Figure:
    """Horizontal bars of the ``top`` features by absolute importance, largest at the top.

    Parameters
    ----------
    importance : pandas.Series
        Importance per feature, indexed by feature name; signed values are ranked by magnitude.
        The series name, when set, labels the x axis.
    top : int, default=20
        Number of features shown.
    title : str, default="Mean |SHAP| contribution"
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(importance, pd.Series) or importance.empty:
        raise ValueError("importance must be a non-empty pandas Series indexed by feature name")
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top!r}")
    values = pd.to_numeric(importance, errors="raise").astype(float)
    order = values.abs().sort_values(ascending=False, kind="stable").index[:top]
    shown = values.loc[order]
    fig = _figure((6.0, 1.2 + 0.28 * len(shown)))
    ax = fig.add_subplot()
    positions = np.arange(len(shown))[::-1]  # first (largest) bar at the top
    ax.barh(positions, shown.to_numpy(), color="C0")
    ax.set_yticks(positions, [str(label) for label in shown.index], fontsize="small")
    ax.set_title(title)
    ax.set_xlabel(str(importance.name) if importance.name is not None else "Importance")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def decile_plot(table: pd.DataFrame) -> Figure:
    """Mean predicted against mean actual value per predicted decile (CLV models).

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`retain.metrics.model.decile_table` (columns ``decile``,
        ``predicted_mean``, ``actual_mean``; ``ape``, when present, gives the decile MAPE in the
        title).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [column for column in DECILE_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"decile table is missing column(s) {missing}; use decile_table()")
    if table.empty:
        raise ValueError("decile table is empty")
    fig = _figure()
    ax = fig.add_subplot()
    positions = np.arange(len(table))
    width = 0.4
    ax.bar(positions - width / 2, table["predicted_mean"], width, label="Predicted", color="C0")
    ax.bar(positions + width / 2, table["actual_mean"], width, label="Actual", color="C1")
    ax.axhline(0, color="0.3", linewidth=0.8)
    ax.set_xticks(positions, [str(decile) for decile in table["decile"]])
    title = "Predicted vs actual value per decile"
    if "ape" in table.columns and table["ape"].notna().any():
        title += f" (decile MAPE {table['ape'].mean():.1%})"
    ax.set_title(title)
    ax.set_xlabel("Decile of predicted value (1 = highest)")
    ax.set_ylabel("Mean value per customer")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return fig


def probability_histogram(
    probabilities: ArrayLike, selected: ArrayLike | None = None, bins: int = 20
) -> Figure:
    """Distribution of churn probabilities of all customers and of the selected ones.

    Each group is drawn as the share of its own customers in each bin, so a selection of a
    few hundred among tens of thousands is as visible as the whole list.

    Parameters
    ----------
    probabilities : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    selected : array-like of bool, shape (n,), optional
        Customers chosen for contact; when given, their distribution is drawn too.
    bins : int, default=20
        Number of uniform bins on [0, 1].

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(probabilities, dtype=float)
    fig = _figure((6.0, 3.6))
    ax = fig.add_subplot()

    def shares(group: np.ndarray) -> np.ndarray:
        return np.full(len(group), 100.0 / max(len(group), 1))

    ax.hist(values, bins=bins, range=(0, 1), weights=shares(values), color="0.65",
            label=f"All customers ({len(values):,})")  # fmt: skip
    if selected is not None:
        chosen = values[np.asarray(selected, dtype=bool)]
        ax.hist(chosen, bins=bins, range=(0, 1), weights=shares(chosen), color="C3", alpha=0.75,
                edgecolor="C3", linewidth=1.2, label=f"Selected ({len(chosen):,})")  # fmt: skip
    ax.set_xlim(0, 1)
    _finish(ax, "Churn probability", "Churn probability", "Share of the group (%)",
            legend="upper center")  # fmt: skip
    return fig


def group_bar_plot(
    values: pd.Series, selected: pd.Series | None = None, title: str = "", xlabel: str = ""
) -> Figure:
    """Horizontal bars per group in the given order (first on top), the selected customers'
    part of each drawn over it in a strong colour.

    Parameters
    ----------
    values : pandas.Series
        A total per group (e.g. value at risk), indexed by group, in display order.
    selected : pandas.Series, optional
        The selected customers' part of each total, indexed like ``values``.
    title, xlabel : str
        Figure title and x-axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(values, pd.Series) or values.empty:
        raise ValueError("values must be a non-empty pandas Series indexed by group")
    totals = pd.to_numeric(values, errors="raise").astype(float)
    fig = _figure((6.0, 1.3 + 0.32 * len(totals)))
    ax = fig.add_subplot()
    positions = np.arange(len(totals))[::-1]  # the first group on top
    ax.barh(positions, totals.to_numpy(), color="0.75", label="All customers")
    if selected is not None:
        part = pd.to_numeric(selected.reindex(totals.index), errors="raise").fillna(0.0)
        ax.barh(positions, part.to_numpy(dtype=float), height=0.5, color="C3", label="Selected")
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    ax.set_yticks(positions, [str(label) for label in totals.index], fontsize="small")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def calibration_table_plot(table: pd.DataFrame) -> Figure:
    """Reliability diagram from precomputed bins (``calibration_table`` rows).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``mean_predicted`` and ``observed_rate`` (one row per bin); ``rows``, when
        present, sizes the markers.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in ("mean_predicted", "observed_rate") if c not in table.columns]
    if missing or table.empty:
        raise ValueError(f"calibration table is empty or lacks column(s) {missing}")
    fig = _figure((5.0, 4.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="Perfectly calibrated", **REFERENCE)
    sizes = None
    if "rows" in table.columns:
        rows = table["rows"].to_numpy(float)
        sizes = 15 + 150 * rows / max(rows.max(), 1.0)
    ax.plot(table["mean_predicted"], table["observed_rate"], color="C0", label="Model")
    ax.scatter(table["mean_predicted"], table["observed_rate"], s=sizes, color="C0", zorder=3)
    _unit_square(ax)
    _finish(ax, "Calibration", "Mean predicted probability", "Observed rate", "upper left")
    return fig


def gain_curve_plot(
    share_contacted: ArrayLike, share_captured: ArrayLike, top_fraction: float = 0.1
) -> Figure:
    """Cumulative gain from a precomputed curve, with the random reference.

    Parameters
    ----------
    share_contacted, share_captured : array-like of shape (m,)
        The curve, as returned by :func:`retain.metrics.model.gain_curve`.
    top_fraction : float, default=0.1
        Share contacted whose capture is marked and shown in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    contacted = np.asarray(share_contacted, dtype=float)
    captured = np.asarray(share_captured, dtype=float)
    if contacted.size == 0 or contacted.shape != captured.shape:
        raise ValueError("share_contacted and share_captured must be non-empty, equal lengths")
    capture = float(np.interp(top_fraction, contacted, captured))
    fig = _figure((5.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(*_thin(contacted, captured), label=f"Model (top {top_fraction:.0%}: {capture:.0%})")
    ax.plot([top_fraction], [capture], marker="o", color="C0")
    ax.plot([0, 1], [0, 1], label="Random", **REFERENCE)
    _unit_square(ax)
    _finish(ax, "Cumulative gain", "Share of customers contacted", "Share of churners captured")
    return fig


def _uplift_curves(curves: pd.DataFrame, value: str) -> Figure:
    missing = [name for name in UPLIFT_CURVE_COLUMNS if name not in curves]
    if missing or curves.empty:
        raise ValueError(f"uplift curves need rows and the columns {UPLIFT_CURVE_COLUMNS}")
    fig = _figure()
    ax = fig.add_subplot()
    for name, curve in curves.groupby("ranking", sort=False):
        ax.plot(curve["share_targeted"], curve[value], label=str(name),
                linewidth=2.0 if name == "model" else 1.2)  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.5)
    return fig


def qini_curves_plot(curves: pd.DataFrame, qini: Mapping[str, float] | None = None) -> Figure:
    """Qini curves of several rankings of one randomised experiment, with random targeting.

    Parameters
    ----------
    curves : pandas.DataFrame
        ``ranking``, ``share_targeted`` (0 to 1) and ``qini`` (the incremental outcome among
        the treated of the top share, :func:`retain.metrics.uplift.qini_curve`), ordered by
        share within each ranking; an ``incremental_profit`` column too.
    qini : mapping of str to float, optional
        Qini coefficient per ranking, shown in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _uplift_curves(curves, "qini")
    ax = fig.axes[0]
    if qini:
        for line in ax.get_lines():
            found = qini.get(str(line.get_label()))
            if found is not None:
                line.set_label(f"{line.get_label()} (Qini {found:,.0f})")
    model = curves[curves["ranking"] == "model"]
    end = float(model["qini"].iloc[-1]) if len(model) else float(curves["qini"].iloc[-1])
    ax.plot([0, 1], [0, end], label="random targeting (model's rows)", **REFERENCE)
    _finish(ax, "Qini curve (validation campaign)", "Share of customers targeted",
            "Incremental margin among the treated", legend="best")  # fmt: skip
    return fig


def incremental_profit_plot(curves: pd.DataFrame, capacity: float | None = None) -> Figure:
    """Estimated incremental profit by share of customers contacted, per ranking, with the
    model's peak and the capacity marked.

    Parameters
    ----------
    curves : pandas.DataFrame
        As for :func:`qini_curves_plot`, with ``incremental_profit``
        (:func:`retain.metrics.uplift.incremental_profit_curve`).
    capacity : float, optional
        Share of customers that can be contacted, drawn as a vertical line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _uplift_curves(curves, "incremental_profit")
    ax = fig.axes[0]
    model = curves[curves["ranking"] == "model"].reset_index(drop=True)
    if len(model):
        peak = int(model["incremental_profit"].to_numpy().argmax())
        ax.plot([model["share_targeted"][peak]], [model["incremental_profit"][peak]], "o",
                color="C3", label=f"model's peak: {model['share_targeted'][peak]:.0%}")  # fmt: skip
    if capacity is not None:
        ax.axvline(capacity, label=f"capacity {capacity:.0%}", **REFERENCE)
    _finish(ax, "Incremental profit (validation campaign)", "Share of customers contacted",
            "Treated minus control margin, less costs", legend="best")  # fmt: skip
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write ``fig`` as a PNG, atomically (a temporary sibling renamed into place).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Figure to write.
    path : path-like
        Destination; parent folders are created.
    dpi : int, default=150
        Resolution.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    target = Path(path)
    with atomic_file(target) as temporary:
        fig.savefig(temporary, format="png", dpi=dpi)
    return target
