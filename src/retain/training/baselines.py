"""Baselines a churn model has to beat, and the simulator's oracle that none can.

Each baseline sees the same training and validation rows as the model:

- ``recency_rule``: rank by days since the last purchase (a ranking, not a probability);
- ``logistic``: logistic regression on the same features (imputed, scaled, one-hot);
- ``btyd``: BG/NBD probability of no purchase in the horizon, from the BTYD summary features
  (:class:`~retain.models.BTYDChurnClassifier`, fitted in :mod:`retain.training.churn`).

On simulated data the oracle gives each validation customer's true probability of no purchase
given their latent state: the ceiling of what any model can reach.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = [
    "logistic_probability",
    "oracle_no_purchase",
    "recency_score",
    "simulation_truth",
]


def recency_score(X: pd.DataFrame, column: str = "recency_days") -> np.ndarray:
    """Days since the last purchase; customers without one rank as the most at risk."""
    values = X[column].to_numpy(float)
    fallback = np.nanmax(values) + 1 if np.isfinite(values).any() else 0.0
    return np.where(np.isfinite(values), values, fallback)


def _categorical_columns(X: pd.DataFrame) -> list[str]:
    return [name for name in X.columns if not pd.api.types.is_numeric_dtype(X[name])]


def logistic_probability(
    X_train: pd.DataFrame, y_train: object, X_valid: pd.DataFrame, seed: int = 0
) -> np.ndarray:
    """P(churn) on ``X_valid`` from a regularised logistic regression fitted on ``X_train``."""
    categorical = _categorical_columns(X_train)
    numeric = [name for name in X_train.columns if name not in categorical]
    prepare = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                      StandardScaler()), numeric),
            ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                          OneHotEncoder(handle_unknown="ignore")), categorical),
        ]
    )  # fmt: skip
    model = make_pipeline(prepare, LogisticRegression(max_iter=2000, random_state=seed))
    as_text = {name: X_train[name].astype(object) for name in categorical}
    model.fit(X_train.assign(**as_text), np.asarray(y_train, int))
    valid_text = {name: X_valid[name].astype(object) for name in categorical}
    return model.predict_proba(X_valid.assign(**valid_text))[:, 1]


def simulation_truth(data: object) -> pd.DataFrame | None:
    """The simulator's truth table when ``data`` is (loaded from) a simulated data folder."""
    files = getattr(data, "files", None)
    origin = getattr(data, "origin", None)  # SourceData: the files it was read from
    if isinstance(files, dict) and files.get("transactions"):
        data = Path(files["transactions"]).parent
    elif isinstance(origin, str) and origin:
        data = Path(origin.split(", ")[0]).parent
    if not isinstance(data, str | Path):
        return None
    path = Path(data) / "truth.parquet"
    return pd.read_parquet(path) if path.is_file() else None


def oracle_no_purchase(
    truth: pd.DataFrame, as_of: date, horizon_days: int, customers: pd.Series
) -> np.ndarray:
    """The oracle's probability of no purchase in the horizon for ``customers`` at ``as_of``."""
    from retain.data.oracle import oracle

    expected = oracle(truth, as_of, horizon_days)["p_no_purchase"]
    expected.index = expected.index.astype(str)  # ids are read as text, whatever the truth's type
    return expected.reindex(customers.astype(str).to_numpy()).to_numpy(float)
