"""Feature drift: population stability index (PSI) of each feature against a training reference.

The churn training job stores a *profile* of its validation rows (``drift_reference.json`` in
its MLflow run): for each numeric feature the reference's quantile edges and the share of rows
in each bin (missing values are a bin of their own), for each categorical feature the share of
each category. Scoring bins the new snapshot with the same edges, so no reference data has to be
read or rebuilt. ``PSI = sum((current - reference) * ln(current / reference))``; shares are
floored at 1e-4 so an empty bin does not give an infinite index. Rules of thumb: below 0.1
stable, 0.1-0.2 some shift, above 0.2 a shift worth a look.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["population_stability", "reference_profile"]

FLOOR = 1e-4


def _numeric_codes(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value: 0..len(edges) by the edges, len(edges) + 1 for missing."""
    inside = np.searchsorted(edges, values, side="right")
    return np.where(np.isfinite(values), inside, len(edges) + 1)


def _shares(codes: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=size).astype(float)
    return counts / max(counts.sum(), 1.0)


def _profile_of(column: pd.Series, bins: int) -> dict:
    if not pd.api.types.is_numeric_dtype(column):
        shares = column.astype(object).fillna("<missing>").astype(str).value_counts(normalize=True)
        return {"kind": "categorical", "shares": {str(k): float(v) for k, v in shares.items()}}
    values = column.to_numpy(float)
    known = values[np.isfinite(values)]
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.unique(np.quantile(known, quantiles)) if known.size else np.array([])
    shares = _shares(_numeric_codes(values, edges), len(edges) + 2)
    return {"kind": "numeric", "edges": edges.tolist(), "shares": shares.tolist()}


def reference_profile(frame: pd.DataFrame, features: list[str], bins: int = 10) -> dict:
    """The binned distribution of each feature of ``frame`` (what drift is measured against)."""
    return {"bins": bins, "rows": len(frame), "features": {
        name: _profile_of(frame[name], bins) for name in features
    }}  # fmt: skip


def _index(reference: np.ndarray, current: np.ndarray) -> float:
    reference, current = np.maximum(reference, FLOOR), np.maximum(current, FLOOR)
    return float(np.sum((current - reference) * np.log(current / reference)))


def _psi(profile: dict, column: pd.Series) -> float:
    if profile["kind"] == "categorical":
        reference = profile["shares"]
        current = column.astype(object).fillna("<missing>").astype(str).value_counts(normalize=True)
        names = sorted(set(reference) | set(current.index))
        return _index(
            np.array([reference.get(name, 0.0) for name in names]),
            np.array([float(current.get(name, 0.0)) for name in names]),
        )
    edges = np.asarray(profile["edges"], float)
    codes = _numeric_codes(column.to_numpy(float), edges)
    return _index(np.asarray(profile["shares"]), _shares(codes, len(edges) + 2))


def population_stability(profile: dict, frame: pd.DataFrame) -> pd.Series:
    """PSI of every profiled feature of ``frame`` against the reference, largest first."""
    values = {name: _psi(spec, frame[name]) for name, spec in profile["features"].items()}
    return pd.Series(values, name="psi", dtype=float).sort_values(ascending=False)
