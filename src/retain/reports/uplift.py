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
- :func:`uplift_validation` finds, for a list scored with an uplift model, that model's
  validation curves and measures in its MLflow run (``evaluation/curves.csv``, the ``valid.*``
  metrics), for the report to show.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

__all__ = ["profit_curve", "profit_curve_plot", "qini_plot", "uplift_validation"]

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


#: How ``summary.json``'s ``gains.source`` names the uplift model (serving/gains.py).
UPLIFT_SOURCE = re.compile(r"uplift model (?P<name>retain-uplift) v(?P<version>\d+)")
#: The run's artifact holding the validation curves (``retain train uplift``).
CURVES_ARTIFACT = "evaluation/curves.csv"
#: Rankings whose Qini coefficient the report quotes, in order.
QUOTED_RANKINGS = ("model", "value_at_risk", "churn_probability", "random", "oracle")


def _workspace_of(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` holding a retain tracking store."""
    for candidate in (folder.resolve(), *folder.resolve().parents):
        if (candidate / "mlruns" / "mlflow.db").is_file():
            return candidate
    return None


def uplift_validation(summary: Mapping[str, Any], folder: Path) -> dict[str, Any] | None:
    """The validation curves and Qini coefficients of the uplift model a list was scored with.

    The model is the one ``summary["gains"]["source"]`` names (``uplift model retain-uplift
    vN``); its run is found in the workspace holding the list: the nearest folder at or
    above ``folder`` with ``mlruns/mlflow.db`` (whose tracking, or ``MLFLOW_TRACKING_URI``
    where the user set it, is used as by every command).

    Parameters
    ----------
    summary : mapping
        The list's ``summary.json``.
    folder : pathlib.Path
        The list's folder.

    Returns
    -------
    dict or None
        ``None`` when the list was scored without an uplift model. Else ``version``,
        ``run_id``, ``curves`` (:func:`retain.training.uplift.validation_curves`' frame, or
        ``None``), ``qini`` (ranking to Qini coefficient), ``adjusted_qini`` (the same,
        regression-adjusted: the gate's measure), ``capacity`` and
        ``missing`` (why the curves or measures could not be read, or ``None``): the
        report still renders when the run is gone or was logged before the curves were.
    """
    gains = summary.get("gains")
    source = gains.get("source") if isinstance(gains, Mapping) else None
    found = UPLIFT_SOURCE.search(str(source or ""))
    if found is None:
        return None
    result: dict[str, Any] = {"version": found["version"], "run_id": None, "curves": None,
                              "qini": {}, "adjusted_qini": {}, "capacity": None,
                              "missing": None}  # fmt: skip
    workspace = _workspace_of(folder)
    if workspace is None:
        result["missing"] = f"no MLflow store (mlruns/) in or above {folder}"
        return result
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from retain.mlflow import tracking

    try:
        tracking.use_workspace(workspace)
        client = MlflowClient()
        version = client.get_model_version(found["name"], found["version"])
        run = client.get_run(version.run_id)
        result["run_id"] = version.run_id
        metrics = run.data.metrics
        result["qini"] = {name: metrics[f"valid.{name}_qini"] for name in QUOTED_RANKINGS
                          if f"valid.{name}_qini" in metrics}  # fmt: skip
        result["adjusted_qini"] = {
            name: metrics[f"valid.{name}_adjusted_qini"]
            for name in QUOTED_RANKINGS
            if f"valid.{name}_adjusted_qini" in metrics
        }
        capacity = run.data.params.get("capacity")
        result["capacity"] = float(capacity) if capacity is not None else None
        with tempfile.TemporaryDirectory(prefix="retain-report-") as scratch:
            path = client.download_artifacts(version.run_id, CURVES_ARTIFACT, scratch)
            result["curves"] = pd.read_csv(path)
    except (MlflowException, OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        result["missing"] = f"{found['name']} v{found['version']}: {first[:200]}"
    return result
