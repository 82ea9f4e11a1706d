"""Reasons: the fast path gives, row for row, what phrasing every row one by one gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.serving.reasons import GROUP_OF, phrase, phrases, reason_features, top_reasons

FEATURES = [
    "recency_days", "purchase_gap_mean_days", "overdue_ratio", "frequency", "btyd_frequency",
    "monetary_mean", "spend_90d", "complaints_30d", "days_since_complaint", "return_share",
    "survey_score_mean", "region",
]  # fmt: skip


def reference(contributions: pd.DataFrame, features: pd.DataFrame, count: int) -> pd.DataFrame:
    """The reasons computed the plain way: grouped with pandas, sorted, phrased row by row."""
    shap = contributions.drop(columns=["bias"])
    grouped = shap.T.groupby([GROUP_OF.get(name, name) for name in shap.columns], sort=False)
    values = grouped.sum().T
    order = np.argsort(-values.to_numpy(), axis=1, kind="stable")[:, :count]
    names = values.columns.to_numpy(dtype=object)[order]
    towards = np.take_along_axis(values.to_numpy(), order, axis=1) > 0
    chosen = np.where(towards, names, "")
    rows = features.astype(object).to_dict(orient="records")
    texts = {
        f"reason_{k + 1}": [phrase(name, row) if name else "" for name, row in
                            zip(chosen[:, k], rows, strict=True)]
        for k in range(count)
    }  # fmt: skip
    return pd.DataFrame(texts, index=features.index)


@pytest.fixture(scope="module")
def customers() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    n = 4_000
    features = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 400, n).astype(float),
            "purchase_gap_mean_days": rng.choice([np.nan, 0.0, -0.0, 0.5, 1.5, 2.5, 20.3], n),
            "overdue_ratio": rng.random(n),
            "frequency": rng.integers(0, 30, n).astype(float),
            "btyd_frequency": rng.integers(0, 30, n).astype(float),
            "monetary_mean": rng.gamma(2.0, 40.0, n),
            "spend_90d": np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2.0, 80.0, n)),
            "complaints_30d": rng.integers(0, 3, n).astype(float),
            "days_since_complaint": np.where(rng.random(n) < 0.5, np.nan, rng.integers(0, 99, n)),
            "return_share": rng.random(n),
            "survey_score_mean": np.where(rng.random(n) < 0.5, np.nan, rng.random(n) * 5),
            "region": pd.Categorical(rng.choice(["north", "south", None], n)),
        }
    )
    features.loc[:5, "recency_days"] = [np.nan, -0.0, 0.5, 1.5, 2.5, 1e6]
    values = rng.standard_normal((n, len(FEATURES))) * 10.0 ** rng.integers(-6, 1, (n, 1))
    values[: n // 4, :4] = 0.25  # ties within and across groups
    values[n // 4 : n // 2] = 0.0  # nothing towards churn
    contributions = pd.DataFrame(values, columns=FEATURES).assign(bias=-1.0)
    return contributions, features


@pytest.mark.parametrize("count", [1, 3, 20])
def test_reasons_equal_the_plain_computation(customers, count):
    contributions, features = customers
    reasons, top = top_reasons(contributions, features, count)
    expected = reference(contributions, features, min(count, 9))
    pd.testing.assert_frame_equal(reasons[expected.columns], expected)
    assert (reasons.drop(columns=expected.columns) == "").all().all()
    assert top.tolist() == reason_features(contributions, 1)[:, 0].tolist()


def test_phrases_equal_phrase_row_by_row(customers):
    _, features = customers
    for feature in ("recency_days", "monetary_mean", "spend_90d", "days_since_complaint",
                    "region", "survey_score_mean"):  # fmt: skip
        rows = features.astype(object).to_dict(orient="records")
        assert phrases(feature, features) == [phrase(feature, row) for row in rows], feature


def test_non_finite_contributions_are_ranked_as_pandas_ranks_them(customers):
    contributions, features = customers
    broken = contributions.copy()
    broken.iloc[0, 0], broken.iloc[1, 3] = np.nan, np.inf
    reasons, _ = top_reasons(broken, features, 3)
    pd.testing.assert_frame_equal(reasons, reference(broken, features, 3))
