"""Input checks shared by the segment estimators: frames, numeric columns, CLV, settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd

__all__ = [
    "as_clv",
    "check_fraction",
    "check_frame",
    "check_integer",
    "check_names",
    "check_positive",
    "numeric_column",
]


def check_frame(features: object, columns: Iterable[str], *, fitting: bool = False) -> pd.DataFrame:
    """Check that ``features`` is a non-empty DataFrame holding every column in ``columns``.

    Parameters
    ----------
    features : object
        The feature frame, one row per customer.
    columns : iterable of str
        Columns the caller needs.
    fitting : bool, default=False
        Whether the frame is used to learn thresholds (then it must have rows).

    Returns
    -------
    pandas.DataFrame
        ``features`` itself.

    Raises
    ------
    TypeError
        If ``features`` is not a DataFrame.
    ValueError
        Naming every missing column, or when fitting on an empty frame.
    """
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    missing = [column for column in dict.fromkeys(columns) if column not in features.columns]
    if missing:
        names = ", ".join(repr(column) for column in missing)
        raise ValueError(f"features lack required column(s): {names}")
    if fitting and features.empty:
        raise ValueError("features have no rows to fit on")
    return features


def numeric_column(features: pd.DataFrame, column: str) -> np.ndarray:
    """One column as a float array, missing values as NaN.

    Raises
    ------
    ValueError
        If the column is not numeric (or boolean).
    """
    values = features[column]
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        raise ValueError(f"column {column!r} must be numeric, got dtype {values.dtype}")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def as_clv(clv: object, index: pd.Index) -> np.ndarray:
    """Predicted future value per customer, aligned on ``index``, as a float array.

    A Series is aligned by index label (it may hold more customers, in any order); anything else
    is taken position by position and must have one value per row.

    Raises
    ------
    ValueError
        If customers lack a value, the length differs, or values are not finite.
    """
    if isinstance(clv, pd.DataFrame):
        if clv.shape[1] != 1:
            raise ValueError(f"clv must be one column, got {clv.shape[1]}")
        clv = clv.iloc[:, 0]
    if isinstance(clv, pd.Series):
        if not clv.index.equals(index):
            missing = index.difference(clv.index)
            if len(missing):
                sample = list(missing[:5])
                raise ValueError(f"clv lacks {len(missing)} customer(s) of features, e.g. {sample}")
            if not clv.index.is_unique:
                raise ValueError("clv has duplicate index labels")
            clv = clv.reindex(index)
        values = pd.to_numeric(clv, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = np.asarray(clv, dtype=np.float64).reshape(-1)
        if values.shape[0] != len(index):
            raise ValueError(f"clv has {values.shape[0]} values for {len(index)} customers")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"clv must be finite; {int(bad.sum())} missing or infinite value(s)")
    return values


def check_fraction(name: str, value: object) -> float:
    """A setting in (0, 1)."""
    if not isinstance(value, Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return float(value)


def check_positive(name: str, value: object) -> float:
    """A finite setting > 0."""
    if not isinstance(value, Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def check_integer(name: str, value: object, minimum: int) -> int:
    """An integer setting >= ``minimum``."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_names(name: str, value: object) -> tuple[str, ...]:
    """A non-empty sequence of distinct column names (a YAML list is fine)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name} must be a non-empty list of column names, got {value!r}")
    names = tuple(value)
    if not all(isinstance(item, str) for item in names):
        raise ValueError(f"{name} must hold column names (strings), got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} has duplicate columns: {value!r}")
    return names
