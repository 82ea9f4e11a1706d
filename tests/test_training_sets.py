"""Training configs, the time split, labels and training sets: known answers on small data."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from retain.errors import ConfigError, RetainError
from retain.features import SourceData, open_store, resolve_data
from retain.models import ChurnClassifier
from retain.training.config import (
    ChurnConfig,
    CLVConfig,
    CutoffPlan,
    SegmentsConfig,
    check_estimator_settings,
    load_config,
)
from retain.training.cutoffs import IncompleteLabelWindowError, month_start, plan_cutoffs
from retain.training.dataset import build_training_set
from retain.workspace import PACKAGED, WorkspaceConfig

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("family", ["churn", "clv", "segments"])
def test_shipped_configs_are_the_defaults(family, tmp_path):
    """The repository's files are the packaged ones; a folder without them reads those."""
    shipped = load_config(family, workspace=ROOT)
    defaults = load_config(family, workspace=tmp_path)
    assert shipped.source.endswith(f"training/{family}.yaml")
    assert defaults.source == str(PACKAGED / "training" / f"{family}.yaml")
    assert job_settings(shipped) == job_settings(defaults)


def job_settings(config):
    """A job config's own settings: where it was read from and the workspace left out."""
    return dataclasses.replace(config, source="", workspace_config=WorkspaceConfig())


def test_missing_config_file_means_the_packaged_defaults(tmp_path):
    for family, cls in (("churn", ChurnConfig), ("clv", CLVConfig), ("segments", SegmentsConfig)):
        assert job_settings(load_config(family, workspace=tmp_path)) == job_settings(cls())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("horizon_dayz: 90\n", "unknown key 'horizon_dayz'"),
        ("cutoffs:\n  lats: 2025-01-01\n", "unknown key 'cutoffs.lats'"),
        ("horizon_days: ninety\n", "'horizon_days' must be int, got 'ninety'"),
        ("cutoffs:\n  last: soon\n", "'cutoffs.last' must be a date YYYY-MM-DD"),
        ("exclude_features: region\n", "'exclude_features' must be a list"),
        ("- 1\n- 2\n", "expected a mapping of settings"),
        ("horizon_days: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, expected):
    path = tmp_path / "churn.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config("churn", path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_unknown_model_setting_is_named():
    config = ChurnConfig(source="training/churn.yaml")
    with pytest.raises(ConfigError, match=r"model\.max_dept .*ChurnClassifier.*max_depth"):
        check_estimator_settings(ChurnClassifier, {"max_dept": 3}, config)


def test_unknown_family_and_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown model family 'churm'"):
        load_config("churm")
    with pytest.raises(ConfigError, match="not found"):
        load_config("churn", tmp_path / "absent.yaml")


# --------------------------------------------------------------------------- cutoffs


def test_month_start_counts_back_over_years():
    assert month_start(date(2025, 3, 17)) == date(2025, 3, 1)
    assert month_start(date(2025, 3, 17), 3) == date(2024, 12, 1)


def test_plan_validates_on_the_latest_complete_window_and_trains_before_it():
    split = plan_cutoffs(CutoffPlan(), 90, date(2023, 7, 1), date(2026, 1, 1))
    assert split.validation == (date(2025, 10, 1),)
    # the latest training label window [2025-07-01, 2025-09-29) closes before validation
    assert split.training[-1] == date(2025, 7, 1)
    assert split.training[0] == date(2024, 11, 1)
    assert len(split.training) == 9


def test_training_cutoffs_before_the_data_are_dropped_and_reported():
    split = plan_cutoffs(CutoffPlan(training=6), 365, date(2023, 9, 15), date(2026, 1, 1))
    assert split.validation == (date(2025, 1, 1),)
    assert split.training == (date(2023, 10, 1), date(2023, 11, 1), date(2023, 12, 1),
                              date(2024, 1, 1))  # fmt: skip
    assert split.dropped == (date(2023, 8, 1), date(2023, 9, 1))


def test_incomplete_label_window_is_refused():
    plan = CutoffPlan(last=date(2025, 11, 1))
    with pytest.raises(IncompleteLabelWindowError, match=r"runs past the end of the data"):
        plan_cutoffs(plan, 90, date(2023, 7, 1), date(2026, 1, 1))


def test_training_cutoff_reaching_into_validation_is_refused():
    plan = CutoffPlan(training_dates=(date(2025, 9, 1),))
    with pytest.raises(RetainError, match="reaches the validation cutoff 2025-10-01"):
        plan_cutoffs(plan, 90, date(2023, 7, 1), date(2026, 1, 1))


def test_data_too_short_for_the_horizon():
    with pytest.raises(RetainError, match="too short for this horizon"):
        plan_cutoffs(CutoffPlan(), 365, date(2024, 6, 1), date(2026, 1, 1))


# --------------------------------------------------------------------------- labels (every engine)


def _transactions(rows) -> SourceData:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "margin"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")
    return resolve_data({"transactions": pa.Table.from_pandas(frame, preserve_index=False)})


CUTOFF = date(2025, 1, 1)
HAND_MADE = _transactions(
    [
        ("A", "2024-01-02 00:00:00", 10.0, 2.0),  # exactly active_days before: active
        ("A", "2025-01-01 00:00:00", 50.0, None),  # exactly at the cutoff: future
        ("A", "2025-03-31 23:59:59", -20.0, -4.0),  # last second of a 90-day window
        ("B", "2024-01-01 23:59:59", 10.0, 1.0),  # a second before the lookback: not active
        ("C", "2024-12-31 23:59:59", 30.0, 6.0),  # active, then buys nothing: churned
        ("C", "2025-04-01 00:00:00", 30.0, 6.0),  # the window's end is excluded
        ("D", "2024-06-01 00:00:00", -15.0, -3.0),  # a return only: not active
    ]
)


def test_active_customers_have_a_purchase_in_the_lookback(engine):
    active = engine.active_customers(HAND_MADE, [CUTOFF], active_days=365)
    assert active["customer_id"].tolist() == ["A", "C"]
    assert (active["as_of"] == pd.Timestamp(CUTOFF)).all()


def test_outcomes_by_hand(engine):
    labels = engine.outcomes(
        HAND_MADE, [CUTOFF], horizon_days=90, active_days=365, margin_rate=0.25
    )
    assert labels.dtypes.astype(str).to_dict() == {
        "customer_id": "str", "as_of": "datetime64[us]", "future_orders": "int32",
        "future_spend": "float64", "future_margin": "float64", "future_cost": "float64",
        "future_profit": "float64", "churned": "bool",
    }  # fmt: skip
    labels = labels.set_index("customer_id")
    assert labels.index.tolist() == ["A", "C"]
    assert labels.loc["A", "future_orders"] == 1
    assert labels.loc["A", "future_spend"] == pytest.approx(30.0)
    # margin missing on the order: 50 * 0.25; the refund brings its own -4
    assert labels.loc["A", "future_margin"] == pytest.approx(12.5 - 4.0)
    # without costs, profit is margin
    assert (labels["future_cost"] == 0).all()
    assert labels["future_profit"].tolist() == labels["future_margin"].tolist()
    assert not labels.loc["A", "churned"]
    assert labels.loc["C", "future_orders"] == 0
    assert labels.loc["C", "churned"]


def test_margin_share_by_hand(engine):
    """Net margin over gross spend before the cutoff: A 2 (its refund is after), B 1, C 6,
    D -3 against purchases of 10 + 10 + 30."""
    share = engine.margin_share(HAND_MADE, CUTOFF, margin_rate=0.25)
    assert share == pytest.approx((2.0 + 1.0 + 6.0 - 3.0) / 50.0, rel=1e-12)
    assert engine.margin_share(HAND_MADE, date(2024, 1, 1), margin_rate=0.25) == 0.25


def test_outcomes_match_pandas_on_simulated_data(world, engine):
    sources = resolve_data(
        {"customers": world.customers, "transactions": world.transactions,
         "interactions": world.interactions}
    )  # fmt: skip
    cutoffs = [date(2025, 1, 1), date(2025, 6, 1)]
    labels = engine.outcomes(sources, cutoffs, horizon_days=90, active_days=365)
    frame = world.transactions
    for cutoff in cutoffs:
        start = pd.Timestamp(cutoff)
        before = frame[
            (frame.timestamp < start) & (frame.timestamp >= start - pd.Timedelta(days=365))
        ]
        active = sorted(before.loc[before.amount > 0, "customer_id"].unique())
        after = frame[
            (frame.timestamp >= start) & (frame.timestamp < start + pd.Timedelta(days=90))
        ]
        margin = after.groupby("customer_id")["margin"].sum()
        ours = labels[labels.as_of == start].set_index("customer_id")
        assert ours.index.tolist() == active
        expected = margin.reindex(active, fill_value=0.0).round(6)
        pd.testing.assert_series_equal(
            ours["future_margin"].round(6), expected, check_names=False, check_index_type=False
        )
        buyers = set(after.loc[after.amount > 0, "customer_id"])
        assert ours["churned"].tolist() == [c not in buyers for c in active]


# --------------------------------------------------------------------------- training sets


@pytest.fixture(scope="module")
def small_sources(world):
    return resolve_data(
        {"customers": world.customers, "transactions": world.transactions,
         "interactions": world.interactions}
    )  # fmt: skip


def _config(tmp_path, **changes) -> ChurnConfig:
    settings = WorkspaceConfig(store=str(tmp_path / "store"), features=str(ROOT / "features"))
    base = ChurnConfig(workspace_config=settings)
    return dataclasses.replace(base, cutoffs=CutoffPlan(training=3), **changes)


def test_training_set_rows_are_the_active_customers_split_by_time(tmp_path, small_sources):
    config = _config(tmp_path)
    store = open_store(config)
    training_set = build_training_set(config, small_sources, store)
    frame = training_set.frame
    assert set(frame["split"]) == {"train", "validation"}
    assert frame.loc[frame.split == "validation", "as_of"].dt.date.unique().tolist() == [
        date(2025, 10, 1)
    ]
    assert not frame.duplicated(["as_of", "customer_id"]).any()
    # every row is a customer with a purchase in the lookback
    assert (frame["recency_days"] <= config.active_days).all()
    assert training_set.manifest["data_fingerprint"] == small_sources.fingerprint
    assert training_set.manifest["features"] == list(training_set.features)
    assert len(training_set.manifest["snapshots"]) == 4


def test_excluded_features_are_left_out_and_unknown_ones_named(tmp_path, small_sources):
    config = _config(tmp_path, exclude_features=("region",))
    store = open_store(config)
    assert "region" not in build_training_set(config, small_sources, store).features
    bad = _config(tmp_path, exclude_features=("regoin",))
    with pytest.raises(ConfigError, match=r"unknown features \['regoin'\]"):
        build_training_set(bad, small_sources, store)


def test_too_few_of_a_class_is_refused(tmp_path, small_sources):
    config = _config(tmp_path)
    training_set = build_training_set(config, small_sources, open_store(config))
    with pytest.raises(RetainError, match=r"too few rows of a class .*at least 100,000 of each"):
        training_set.check_classes("churned", 100_000)
