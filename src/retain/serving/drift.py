"""Feature drift: population stability index (PSI) of each feature against a reference.

``PSI = sum((current - reference) * ln(current / reference))`` over bins: quantile bins of the
reference for numbers (missing values are a bin of their own), the categories for categoricals.
Shares are floored at 1e-4 so an empty bin does not give an infinite index. Rules of thumb:
below 0.1 stable, 0.1-0.2 some shift, above 0.2 a shift worth a look.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["population_stability", "psi"]

FLOOR = 1e-4


def _shares(codes: np.ndarray, bins: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=bins).astype(float)
    return np.maximum(counts / max(counts.sum(), 1.0), FLOOR)


def _index(reference: np.ndarray, current: np.ndarray) -> float:
    return float(np.sum((current - reference) * np.log(current / reference)))


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """PSI of one feature."""
    if not pd.api.types.is_numeric_dtype(reference):
        categories = pd.Index(pd.unique(pd.concat([reference, current]).astype(str)))
        ref = categories.get_indexer(reference.astype(str))
        cur = categories.get_indexer(current.astype(str))
        return _index(_shares(ref, len(categories)), _shares(cur, len(categories)))
    ref_values = reference.to_numpy(float)
    cur_values = current.to_numpy(float)
    known = ref_values[np.isfinite(ref_values)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if known.size else []

    def codes(values: np.ndarray) -> np.ndarray:
        inside = np.searchsorted(edges, values, side="right")
        return np.where(np.isfinite(values), inside, len(edges) + 1)

    size = len(edges) + 2
    return _index(_shares(codes(ref_values), size), _shares(codes(cur_values), size))


def population_stability(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], bins: int = 10
) -> pd.Series:
    """PSI of every feature, largest first."""
    values = {name: psi(reference[name], current[name], bins) for name in features}
    return pd.Series(values, name="psi").sort_values(ascending=False)
