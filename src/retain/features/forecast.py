"""Model-based features filled in after the snapshot query: BTYD forecasts (see
:class:`~retain.features.definitions.BTYDForecast`).

The snapshot query leaves their columns empty; :func:`add_forecasts` fits a BG/NBD model to
the snapshot's own BTYD summaries (events before its cutoff only) and fills them. It runs on the
finished Arrow table of one cutoff, whichever engine computed it, so DuckDB and Spark snapshots
stay equal and a snapshot never depends on another cutoff.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from retain.features.definitions import BTYD_MIN_ENTITIES, BTYDForecast, FeatureView
from retain.models.clv import BGNBD

__all__ = ["add_forecasts", "forecasts_of"]


def forecasts_of(views: Iterable[FeatureView]) -> list[BTYDForecast]:
    """The BTYD forecasts defined in ``views``."""
    return [f for view in views for f in view.features if isinstance(f, BTYDForecast)]


def add_forecasts(table: pa.Table, forecasts: Iterable[BTYDForecast]) -> pa.Table:
    """``table`` (one cutoff's snapshot) with each forecast's columns filled in.

    Parameters
    ----------
    table : pyarrow.Table
        A snapshot holding each forecast's summary columns and (empty) output columns.
    forecasts : iterable of BTYDForecast
        The forecasts to fill.

    Returns
    -------
    pyarrow.Table
        The same columns in the same order; outputs are float64, missing where the entity
        has no summary or the model could not be fitted.
    """
    for forecast in forecasts:
        alive, expected = _forecast(table, forecast)
        for name, values in ((forecast.p_alive, alive), (forecast.expected, expected)):
            index = table.schema.get_field_index(name)
            column = pa.array(values, type=pa.float64(), mask=~np.isfinite(values))
            table = table.set_column(index, pa.field(name, pa.float64()), column)
    return table


def _forecast(table: pa.Table, forecast: BTYDForecast) -> tuple[np.ndarray, np.ndarray]:
    frequency, recency, age = (
        table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        for name in forecast.inputs
    )
    alive = np.full(table.num_rows, np.nan)
    expected = np.full(table.num_rows, np.nan)
    known = np.isfinite(frequency) & np.isfinite(recency) & np.isfinite(age) & (age > 0)
    if known.sum() < BTYD_MIN_ENTITIES or not (frequency[known] > 0).any():
        return alive, expected
    x, t_x, T = frequency[known], np.minimum(recency[known], age[known]), age[known]
    with warnings.catch_warnings():
        # a fit that stops at its iteration limit still ranks customers; the values say so
        warnings.simplefilter("ignore")
        try:
            model = BGNBD().fit(x, t_x, T)
            alive[known] = model.probability_alive(x, t_x, T)
            expected[known] = model.predict_purchases(float(forecast.horizon_days), x, t_x, T)
        except (ValueError, FloatingPointError, ArithmeticError):
            return np.full(table.num_rows, np.nan), np.full(table.num_rows, np.nan)
    return alive, expected
