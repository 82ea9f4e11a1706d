"""Feature drift: population stability index (PSI) of each feature against a training reference.

The churn training job stores a *profile* of its validation rows (``drift_reference.json`` in
its MLflow run): for each numeric feature the reference's quantile edges and the share of rows
in each bin (missing values are a bin of their own), for each categorical feature the share of
each category. Scoring bins the new snapshot with the same edges, so no reference data has to be
read or rebuilt. ``PSI = sum((current - reference) * ln(current / reference))``; shares are
floored at 1e-4 so an empty bin does not give an infinite index. Rules of thumb: below 0.1
stable, 0.1-0.2 some shift, above 0.2 a shift worth a look.

Age features
------------
Some features grow with time by construction: a customer's tenure, days since the first
purchase, BTYD ``T`` and ``recency`` (:func:`retain.features.age_features` finds them in the
definitions). Their distribution moves every month even when behaviour does not (a cohort that
joined together ages together: PSI 0.23-0.40 on tenure after 3-7 months on the simulator with no
change in behaviour), so comparing their raw values would warn, and ``--strict`` refuse, on
every monthly run. They are compared on a population-relative basis instead: each value divided
by the 90th percentile of its own population (where a customer stands in the current age range),
which stays put while customers simply age (PSI 0.04-0.08 on the same runs) and still moves when
the mix of old and new customers changes. The raw index is reported too (:func:`age_drift`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["age_drift", "population_stability", "reference_profile"]

FLOOR = 1e-4
#: Age features are divided by this quantile of their own population before binning.
AGE_SCALE_QUANTILE = 0.9


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


def _relative(column: pd.Series) -> pd.Series:
    """Values over the ``AGE_SCALE_QUANTILE`` of their own population (positive part)."""
    values = column.astype(float)
    scale = values.quantile(AGE_SCALE_QUANTILE)
    return values / scale if np.isfinite(scale) and scale > 0 else values * np.nan


def reference_profile(
    frame: pd.DataFrame,
    features: list[str],
    bins: int = 10,
    age_features: Iterable[str] = (),
) -> dict:
    """The binned distribution of each feature of ``frame`` (what drift is measured against).

    Parameters
    ----------
    frame : pandas.DataFrame
        Reference rows (the churn model's validation rows).
    features : list of str
        Columns to profile.
    bins : int, default=10
        Quantile bins per numeric feature.
    age_features : iterable of str, default=()
        Features that grow with time (see :func:`age_features`): also profiled relative to
        their population, which :func:`population_stability` compares.
    """
    ages = [name for name in age_features if name in features]
    profile = {"bins": bins, "rows": len(frame), "features": {
        name: _profile_of(frame[name], bins) for name in features
    }}  # fmt: skip
    if ages:
        profile["age_features"] = ages
        profile["age_scale_quantile"] = AGE_SCALE_QUANTILE
        for name in ages:
            profile["features"][name]["relative"] = _profile_of(_relative(frame[name]), bins)
    return profile


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
    """PSI of every profiled feature of ``frame`` against the reference, largest first.

    Age features of the profile are compared on their population-relative values (see the
    module docstring); :func:`age_drift` gives their raw index as well.
    """
    values = {
        name: _psi(spec["relative"], _relative(frame[name]))
        if "relative" in spec
        else _psi(spec, frame[name])
        for name, spec in profile["features"].items()
    }
    return pd.Series(values, name="psi", dtype=float).sort_values(ascending=False)


def age_drift(profile: dict | None, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per age feature of the profile: the PSI used (``relative``) and of the raw values.

    Empty for a profile without age features (references profiled before they existed).
    """
    if not profile:
        return {}
    out = {}
    for name in profile.get("age_features", []):
        spec = profile["features"][name]
        out[name] = {
            "relative": round(_psi(spec["relative"], _relative(frame[name])), 6),
            "absolute": round(_psi(spec, frame[name]), 6),
        }
    return out
