"""Segment models: hand-checked rules, learned edges kept after fit, clusters chosen by silhouette.

Real snapshots come from the session's simulated world (3,000 customers) at two cutoffs; the
predicted future value is a fixed stand-in (the segments only need a number per customer).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.datasets import make_blobs

from retain.errors import ConfigError
from retain.models.segments import (
    LIFECYCLE_STAGES,
    LOYALTY_CLASSES,
    RFM_GRID,
    RFM_SEGMENTS,
    SEGMENT_COLUMNS,
    VALUE_TIERS,
    BehaviouralClusters,
    LifecycleStage,
    LoyaltyClass,
    RFMSegmenter,
    SegmentModel,
    ValueTier,
    segment_summary,
)
from retain.models.segments.rfm import score_edges

CUTOFF_A, CUTOFF_B = "2025-07-01", "2025-01-01"
FAST = {"n_init": 2, "k_max": 6}  # keeps the suite quick; defaults are exercised elsewhere


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def snapshots(world) -> dict[str, pd.DataFrame]:
    from retain.features import compute_features, load_repository

    sources = {
        "customers": world.customers,
        "transactions": world.transactions,
        "interactions": world.interactions,
    }
    frame = compute_features(load_repository("features"), sources, [CUTOFF_A, CUTOFF_B])
    return {
        cutoff: frame[frame["as_of"] == pd.Timestamp(cutoff)].set_index("customer_id")
        for cutoff in (CUTOFF_A, CUTOFF_B)
    }


def _clv(features: pd.DataFrame, seed: int = 0) -> pd.Series:
    """A stand-in prediction of future value: part recent spend, part noise."""
    noise = np.random.default_rng(seed).gamma(1.0, 60.0, len(features))
    return pd.Series(0.7 * features["spend_365d"].clip(lower=0) + noise, index=features.index)


@pytest.fixture(scope="module")
def snapshot_a(snapshots) -> pd.DataFrame:
    return snapshots[CUTOFF_A]


@pytest.fixture(scope="module")
def snapshot_b(snapshots) -> pd.DataFrame:
    return snapshots[CUTOFF_B]


@pytest.fixture(scope="module")
def fitted(snapshot_a) -> SegmentModel:
    return SegmentModel(**FAST).fit(snapshot_a, _clv(snapshot_a))


def _rfm_frame(recency, frequency, monetary) -> pd.DataFrame:
    return pd.DataFrame(
        {"recency_days": recency, "frequency": frequency, "monetary_total": monetary},
        index=[f"C{i}" for i in range(len(recency))],
    )


@pytest.fixture()
def ten_buyers() -> pd.DataFrame:
    """Ten buyers, each better than the next, and one customer who never bought."""
    return _rfm_frame(
        [*range(10, 101, 10), np.nan],
        [*range(10, 0, -1), 0],
        [*range(1000, 99, -100), 0.0],
    )


# ---------------------------------------------------------------- RFM


def test_score_edges_keep_ties_together_and_use_every_score():
    values = np.repeat([1, 2, 3, 4, 5, 6], [50, 20, 10, 10, 5, 5]).astype(float)
    # naive quantiles collapse: the 20 % and 40 % quantiles are both 1
    assert np.quantile(values, 0.2) == np.quantile(values, 0.4) == 1
    edges = score_edges(values, 5)
    # shares below 2, 3, 4, 5, 6: 0.5, 0.7, 0.8, 0.9, 0.95 -> closest usable to .2 .4 .6 .8
    np.testing.assert_array_equal(edges, [2, 3, 4, 5])
    scores = 1 + np.searchsorted(edges, values, side="right")
    assert set(scores) == {1, 2, 3, 4, 5}
    for value in np.unique(values):
        assert len(set(scores[values == value])) == 1


def test_score_edges_with_few_distinct_values_spread_to_the_ends():
    np.testing.assert_array_equal(score_edges(np.array([1.0, 1, 1, 2]), 5), [2, 2, 2, 2])
    np.testing.assert_array_equal(score_edges(np.array([1.0, 2, 3]), 5), [2, 2, 3, 3])
    assert np.isinf(score_edges(np.array([4.0, 4.0]), 5)).all()


def test_rfm_hand_checked_edges_scores_and_segments(ten_buyers):
    rfm = RFMSegmenter().fit(ten_buyers)
    assert rfm.n_buyers_ == 10  # the never-buyer is not part of the edges
    np.testing.assert_array_equal(rfm.recency_edges_, [20, 40, 60, 80])
    np.testing.assert_array_equal(rfm.frequency_edges_, [3, 5, 7, 9])
    np.testing.assert_array_equal(rfm.monetary_edges_, [300, 500, 700, 900])
    out = rfm.transform(ten_buyers)
    assert list(out.columns) == ["r_score", "f_score", "m_score", "rfm_code", "segment"]
    assert out.loc["C0", "rfm_code"] == "555" and out.loc["C0", "segment"] == "Champions"
    assert out.loc["C9", "rfm_code"] == "111" and out.loc["C9", "segment"] == "Lost"
    assert out.loc["C10", "rfm_code"] == "111" and out.loc["C10", "segment"] == "Lost"
    assert out["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 1]


@pytest.mark.parametrize(
    ("recency", "frequency", "code", "segment"),
    [
        (10, 1, "515", "New"),
        (30, 1, "415", "Promising"),
        (10, 5, "535", "Potential Loyalist"),
        (50, 5, "335", "Need Attention"),
        (50, 9, "355", "Loyal"),
        (50, 2, "315", "About to Sleep"),
        (70, 5, "235", "At Risk"),
        (100, 10, "155", "Cannot Lose Them"),
        (70, 1, "215", "Hibernating"),
        (100, 1, "115", "Lost"),
        (np.nan, 4, "111", "Lost"),  # no order: worst on every score
    ],
)
def test_rfm_grid_cells(ten_buyers, recency, frequency, code, segment):
    rfm = RFMSegmenter().fit(ten_buyers)
    out = rfm.transform(_rfm_frame([recency], [frequency], [5000.0]))
    assert (out.loc["C0", "rfm_code"], out.loc["C0", "segment"]) == (code, segment)


def test_rfm_grid_is_the_documented_table():
    assert RFM_GRID[4][3] == RFM_GRID[4][4] == "Champions"
    assert RFM_GRID[0][0] == "Lost" and RFM_GRID[0][4] == "Cannot Lose Them"
    assert {name for row in RFM_GRID for name in row} == set(RFM_SEGMENTS)


def test_rfm_fm_axis_and_other_bins(ten_buyers):
    row = _rfm_frame([10], [5], [1000.0])  # R5 F3 M5
    by_f = RFMSegmenter().fit(ten_buyers).transform(row)
    by_fm = RFMSegmenter(segment_on="fm").fit(ten_buyers).transform(row)
    assert by_f.loc["C0", "segment"] == "Potential Loyalist"
    assert by_fm.loc["C0", "segment"] == "Champions"  # FM = (3 + 5 + 1) // 2 = 4
    three = RFMSegmenter(bins=3).fit(ten_buyers).transform(ten_buyers)
    assert set(three["r_score"]) == {1, 2, 3}
    assert three.loc["C0", "segment"] == "Champions"  # 3 of 3 is 5 of 5 on the grid


def test_rfm_rejects_bad_settings_and_no_buyers(ten_buyers):
    with pytest.raises(ValueError, match="bins"):
        RFMSegmenter(bins=12).fit(ten_buyers)
    with pytest.raises(ValueError, match="segment_on"):
        RFMSegmenter(segment_on="m").fit(ten_buyers)
    with pytest.raises(ValueError, match="no customer has an order"):
        RFMSegmenter().fit(_rfm_frame([np.nan], [0], [0.0]))


def test_rfm_on_real_data_gives_even_usable_scores(snapshot_a):
    rfm = RFMSegmenter().fit(snapshot_a)
    out = rfm.transform(snapshot_a)
    buyers = snapshot_a["frequency"] > 0
    for column in ("r_score", "f_score", "m_score"):
        shares = out.loc[buyers, column].value_counts(normalize=True)
        assert sorted(shares.index) == [1, 2, 3, 4, 5]
        assert shares.between(0.1, 0.3).all(), shares
    for edges in (rfm.recency_edges_, rfm.frequency_edges_, rfm.monetary_edges_):
        assert np.all(np.diff(edges) > 0)
    # a single order is the commonest frequency: all those customers share one score
    assert out.loc[snapshot_a["frequency"] == 1, "f_score"].nunique() == 1
    best = (out["r_score"] == 5) & (out["f_score"] == 5)
    assert best.any() and (out.loc[best, "segment"] == "Champions").all()
    assert (out.loc[~buyers, "segment"] == "Lost").all()


# ---------------------------------------------------------------- value tiers


def test_value_tier_hand_checked():
    fit_on = pd.DataFrame({"monetary_total": np.arange(100.0)})
    tier = ValueTier().fit(fit_on, np.arange(100.0))
    assert tier.high_threshold_ == pytest.approx(158.4)  # lifetime 0, 2, ..., 198
    assert tier.medium_threshold_ == pytest.approx(99.0)
    assert tier.potential_threshold_ == pytest.approx(79.2)
    assert tier.realised_threshold_ == pytest.approx(49.5)
    realised = [100, 10, 60, 10, 10]
    future = [100, 100, 50, 10, 150]
    out = tier.transform(pd.DataFrame({"monetary_total": realised}), future)
    # the last is a low spender with a high future, but high overall: high comes first
    assert out["value_tier"].tolist() == ["high", "potential", "medium", "low", "high"]


def test_value_tier_aligns_clv_by_index_and_rejects_gaps():
    features = pd.DataFrame({"monetary_total": [10.0, 500.0, 40.0]}, index=["a", "b", "c"])
    clv = pd.Series([1.0, 900.0, 5.0], index=["a", "b", "c"])
    tier = ValueTier().fit(features, clv)
    shuffled = clv.iloc[[2, 0, 1]]
    pd.testing.assert_frame_equal(tier.transform(features, shuffled), tier.transform(features, clv))
    with pytest.raises(ValueError, match="lacks 1 customer"):
        tier.transform(features, clv.drop("b"))
    with pytest.raises(ValueError, match="finite"):
        tier.transform(features, clv.where(clv > 2))
    with pytest.raises(ValueError, match="3 customers"):
        tier.transform(features, [1.0, 2.0])
    with pytest.raises(ValueError, match="below high_quantile"):
        ValueTier(medium_quantile=0.9).fit(features, clv)


# ---------------------------------------------------------------- loyalty


def test_loyalty_hand_checked():
    fit_on = pd.DataFrame(
        {
            "recency_days": [*range(10, 101, 10), 400.0, np.nan],
            "orders_365d": [*range(10, 0, -1), 0, 0],
        }
    )
    loyalty = LoyaltyClass().fit(fit_on)
    assert loyalty.n_active_ == 10
    assert loyalty.recency_threshold_ == pytest.approx(55.0)
    assert loyalty.frequency_threshold_ == pytest.approx(5.5)
    rows = pd.DataFrame(
        {
            "recency_days": [5, 50, 55, 56, 300, 365, 366, np.nan],
            "orders_365d": [20, 6, 1, 20, 1, 9, 9, 0],
        }
    )
    assert loyalty.transform(rows)["loyalty_class"].tolist() == [
        "loyal",
        "loyal",
        "potential",
        "marginal",
        "marginal",
        "marginal",
        "churned",
        "churned",
    ]


# ---------------------------------------------------------------- lifecycle


def test_lifecycle_rules_and_precedence():
    nan = np.nan
    rows = pd.DataFrame(
        [
            # tenure, recency, trend, spend_90d, overdue, expected
            (nan, nan, nan, 0.0, nan, "churned"),  # never bought
            (500, 366, nan, 0.0, 9.0, "churned"),  # no order in churn_days
            (60, 1, 0.0, 50.0, 3.0, "new"),  # new comes before declining
            (90, 90, nan, 0.0, nan, "new"),  # at most new_days old
            (300, 20, 0.5, 50.0, 0.5, "declining"),  # trend at the decline ratio
            (300, 20, 2.0, 200.0, 2.0, "declining"),  # overdue beats growth
            (300, 120, nan, 0.0, nan, "declining"),  # one order, older than new_days
            (300, 20, 1.5, 150.0, 1.0, "growing"),  # trend at the growth ratio
            (300, 20, nan, 80.0, 0.5, "growing"),  # spend after none in the 90 days before
            (300, 20, 1.0, 100.0, 1.0, "mature"),
            (300, 60, nan, 0.0, 1.9, "mature"),  # no recent spend, still on rhythm
        ],
        columns=[
            "days_since_first_purchase",
            "recency_days",
            "spend_trend_90d",
            "spend_90d",
            "overdue_ratio",
            "expected",
        ],
    )
    stage = LifecycleStage().fit(rows)
    assert stage.transform(rows)["lifecycle_stage"].tolist() == rows["expected"].tolist()
    assert sum(stage.stage_counts_.values()) == len(rows)
    with pytest.raises(ValueError, match="decline_ratio"):
        LifecycleStage(decline_ratio=2.0).fit(rows)


# ---------------------------------------------------------------- clusters


def _blobs(centers: int, seed: int = 3) -> pd.DataFrame:
    points, _ = make_blobs(
        n_samples=600, centers=centers, n_features=3, cluster_std=0.5, random_state=seed
    )
    return pd.DataFrame(points, columns=["a", "b", "c"])


@pytest.mark.parametrize("centers", [3, 5])
def test_clusters_recover_k_on_separated_blobs(centers):
    blobs = _blobs(centers)
    model = BehaviouralClusters(features=("a", "b", "c"), k_min=2, k_max=7, n_init=2)
    model.fit(blobs)
    assert model.k_ == centers
    assert set(model.silhouette_scores_) == set(range(2, 8))
    assert max(model.silhouette_scores_.values()) == model.silhouette_scores_[centers]


def test_clusters_are_deterministic_and_numbered_by_size(snapshot_a):
    settings = {"n_init": 2, "k_max": 5, "sample_size": 1000, "random_state": 11}
    first = BehaviouralClusters(**settings).fit(snapshot_a)
    second = BehaviouralClusters(**settings).fit(snapshot_a)
    assert first.silhouette_scores_ == second.silhouette_scores_
    pd.testing.assert_frame_equal(first.transform(snapshot_a), second.transform(snapshot_a))
    pd.testing.assert_frame_equal(first.profile_, second.profile_)
    profile = first.profile_
    assert profile["cluster"].tolist() == list(range(first.k_))
    assert profile["customers"].is_monotonic_decreasing
    assert profile["share"].sum() == pytest.approx(1.0)
    assert profile["label"].str.fullmatch(r"(high|low) \w+, (high|low) \w+").all()
    counts = first.transform(snapshot_a)["cluster"].value_counts().sort_index()
    assert counts.tolist() == profile["customers"].tolist()
    assert first.silhouette(snapshot_a) == pytest.approx(first.silhouette_)


def test_clusters_log_impute_and_clip():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"skewed": rng.lognormal(3, 1.5, 300), "even": rng.normal(0, 1, 300)})
    frame.loc[:9, "even"] = np.nan
    model = BehaviouralClusters(features=["skewed", "even"], k_max=4, n_init=1).fit(frame)
    assert model.log_features_ == ("skewed",)
    assert model.medians_["even"] == pytest.approx(frame["even"].median())
    odd = pd.DataFrame({"skewed": [-5.0, np.nan], "even": [np.nan, 0.0]})
    assert model.transform(odd)["cluster"].between(0, model.k_ - 1).all()


# ---------------------------------------------------------------- the segment model


def test_model_output_shape_and_vocabulary(fitted, snapshot_a):
    out = fitted.transform(snapshot_a, _clv(snapshot_a))
    assert list(out.columns) == list(SEGMENT_COLUMNS)
    assert out.index.equals(snapshot_a.index)
    assert set(out["segment"]) <= set(RFM_SEGMENTS)
    assert set(out["value_tier"]) <= set(VALUE_TIERS)
    assert set(out["loyalty_class"]) == set(LOYALTY_CLASSES)
    assert set(out["lifecycle_stage"]) == set(LIFECYCLE_STAGES)
    assert out["cluster"].between(0, fitted.clusters_.k_ - 1).all()
    never = snapshot_a["frequency"] == 0
    assert never.any()
    assert (
        out.loc[never, ["segment", "loyalty_class", "lifecycle_stage"]].to_numpy()
        == [
            "Lost",
            "churned",
            "churned",
        ]
    ).all()


def test_model_transform_after_fit_equals_fit_transform(fitted, snapshot_a):
    clv = _clv(snapshot_a)
    fresh = SegmentModel(**FAST).fit_transform(snapshot_a, clv)
    pd.testing.assert_frame_equal(fitted.transform(snapshot_a, clv), fresh)


def test_model_pickles_to_identical_output(fitted, snapshot_a, snapshot_b):
    restored = pickle.loads(pickle.dumps(fitted))
    for frame in (snapshot_a, snapshot_b):
        pd.testing.assert_frame_equal(
            restored.transform(frame, _clv(frame)), fitted.transform(frame, _clv(frame))
        )


def test_model_scores_another_cutoff_with_the_fitted_edges(fitted, snapshot_a, snapshot_b):
    edges = {
        name: getattr(fitted.rfm_, name).copy()
        for name in ("recency_edges_", "frequency_edges_", "monetary_edges_")
    }
    thresholds = dict(vars(fitted.value_tier_))
    centres = fitted.clusters_.kmeans_.cluster_centers_.copy()
    out_b = fitted.transform(snapshot_b, _clv(snapshot_b))
    for name, before in edges.items():
        np.testing.assert_array_equal(getattr(fitted.rfm_, name), before)
    assert vars(fitted.value_tier_) == thresholds
    np.testing.assert_array_equal(fitted.clusters_.kmeans_.cluster_centers_, centres)
    assert -1 < fitted.silhouette(snapshot_b) < 1
    # B's scores are A's edges applied to B's values
    buyers = snapshot_b["frequency"] > 0
    expected = 1 + np.searchsorted(edges["frequency_edges_"], snapshot_b["frequency"], "right")
    np.testing.assert_array_equal(out_b.loc[buyers, "f_score"], expected[buyers.to_numpy()])
    # ... which differ from B's own edges: a refit would have changed the scores
    refit = RFMSegmenter().fit(snapshot_b)
    assert not np.array_equal(refit.frequency_edges_, edges["frequency_edges_"])
    assert not out_b["f_score"].equals(refit.transform(snapshot_b)["f_score"])


def test_model_from_yaml_settings(snapshot_a):
    text = """
    model:
      rfm_bins: 4
      churn_days: 300
      cluster_features: [recency_days, frequency, spend_365d]
      k_min: 2
      k_max: 4
      n_init: 1
    """
    config = yaml.safe_load(text)["model"]
    model = SegmentModel(**config)
    assert clone(model).get_params() == model.get_params()
    assert SegmentModel.from_config(config).get_params() == model.get_params()
    out = model.fit_transform(snapshot_a, _clv(snapshot_a))
    assert out["r_score"].max() == 4
    assert model.clusters_.features_ == ("recency_days", "frequency", "spend_365d")
    with pytest.raises(ConfigError, match="'rfm_bin' \\(did you mean 'rfm_bins'\\?\\)"):
        SegmentModel.from_config({"rfm_bin": 5})


def test_model_names_every_missing_column(fitted, snapshot_a):
    clv = _clv(snapshot_a)
    lacking = snapshot_a.drop(columns=["overdue_ratio", "spend_365d"])
    with pytest.raises(ValueError, match="'spend_365d'") as error:
        SegmentModel(**FAST).fit(lacking, clv)
    assert "'overdue_ratio'" in str(error.value)
    with pytest.raises(ValueError, match="'overdue_ratio', 'spend_365d'"):
        fitted.transform(lacking, clv)
    with pytest.raises(TypeError, match="DataFrame"):
        fitted.transform(snapshot_a.to_numpy(), clv)


def test_segment_summary(fitted, snapshot_a):
    clv = _clv(snapshot_a)
    assigned = fitted.transform(snapshot_a, clv)
    summary = segment_summary(assigned, snapshot_a, clv)
    assert summary["customers"].sum() == len(snapshot_a)
    assert summary["share"].sum() == pytest.approx(1.0)
    assert summary["clv_share"].sum() == pytest.approx(1.0)
    assert summary["segment"].tolist() == [s for s in RFM_SEGMENTS if s in set(summary["segment"])]
    champions = summary.set_index("segment").loc["Champions"]
    expected = clv[assigned["segment"] == "Champions"].mean()
    assert champions["mean_clv"] == pytest.approx(expected)
    by_cluster = segment_summary(assigned, snapshot_a, clv, by="cluster")
    assert by_cluster["customers"].is_monotonic_decreasing
