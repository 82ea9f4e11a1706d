"""Drift on monthly runs: features that grow with time (tenure, days since the first purchase,
BTYD T and recency) are compared relative to their population, so scoring months after the
champion's date on a world whose behaviour does not change raises no drift."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from retain.data.simulator import simulate_world
from retain.engines import get_engine
from retain.features import FeatureStore, age_features, resolve_data
from retain.metrics.drift import age_drift, population_stability, reference_profile
from retain.serving.population import active_population
from retain.training.config import load_config
from retain.training.dataset import build_training_set
from retain.workspace import locate

ROOT = Path(__file__).resolve().parents[1]
CHAMPION_DATE = date(2026, 1, 1)  # the champion learned from the data before this day
LATER = (date(2026, 3, 1), date(2026, 5, 1))
THRESHOLD = 0.2  # serving/score.yaml drift.threshold


@pytest.fixture(scope="module")
def monthly(tmp_path_factory):
    """A simulated world running on past the champion's date, with unchanged behaviour: the
    champion's validation profile (from data before ``CHAMPION_DATE`` only) and the active
    populations scoring would see at its date and months later."""
    world = simulate_world(2_000, seed=5, end="2026-06-01")
    tables = {name: getattr(world, name) for name in ("customers", "transactions", "interactions")}
    end = pd.Timestamp(CHAMPION_DATE)
    known = {
        "customers": world.customers[world.customers["signup_date"] < end],
        "transactions": world.transactions[world.transactions["timestamp"] < end],
        "interactions": world.interactions[world.interactions["timestamp"] < end],
    }
    folder = tmp_path_factory.mktemp("drift")
    store = FeatureStore(folder / "store", locate(folder, "features"))
    config = load_config("churn", workspace=folder)
    training = build_training_set(config, resolve_data(known), store)
    valid = training.validation[list(training.features)]
    profile = reference_profile(
        valid, list(valid.columns), age_features=age_features(store.repository)
    )
    plain = reference_profile(valid, list(valid.columns))
    sources = resolve_data(tables)
    engine = get_engine("duckdb")  # its rows are pandas frames, what the profiles compare
    populations = {
        day: active_population(engine, sources, store, day, config.active_days)
        for day in (CHAMPION_DATE, *LATER)
    }
    return profile, plain, populations


def test_age_features_are_found_in_the_definitions(tmp_path):
    repository = FeatureStore(tmp_path / "store", ROOT / "features").repository
    assert set(age_features(repository)) == {
        "tenure_days", "days_since_first_purchase", "btyd_T", "btyd_recency"
    }  # fmt: skip


def test_monthly_runs_on_unchanged_behaviour_raise_no_drift(monthly):
    profile, plain, populations = monthly
    for day, population in populations.items():
        psi = population_stability(profile, population)
        drifted = psi[psi > THRESHOLD]
        assert drifted.empty, (day, drifted.round(3).to_dict())
        ages = age_drift(profile, population)
        assert set(ages) == set(profile["age_features"])
        assert all(values["relative"] < 0.1 for values in ages.values()), (day, ages)
    # compared on raw values, the same runs would warn (and --strict refuse) on age alone
    raw = population_stability(plain, populations[LATER[0]])
    assert raw["tenure_days"] > THRESHOLD and raw["btyd_T"] > THRESHOLD
    assert age_drift(profile, populations[LATER[0]])["btyd_T"]["absolute"] > THRESHOLD


def test_a_real_shift_in_age_still_drifts(monthly):
    profile, _, populations = monthly
    population = populations[CHAMPION_DATE]
    # a base where the newest half of the customers is gone: the age mix has changed
    older = population[population["tenure_days"] > population["tenure_days"].median()]
    assert population_stability(profile, older)["tenure_days"] > THRESHOLD


def test_the_churn_champion_profiles_its_age_features(
    trained_models, trained_workspace, mlflow_isolation
):
    run_id = trained_models["churn"].run_id
    with mlflow_isolation(trained_workspace):
        reference = mlflow.artifacts.load_dict(f"runs:/{run_id}/drift_reference.json")
    assert set(reference["age_features"]) == {
        "tenure_days", "days_since_first_purchase", "btyd_T", "btyd_recency"
    }  # fmt: skip
    assert "relative" in reference["features"]["btyd_T"]
