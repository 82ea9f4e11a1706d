"""UpliftModel (retain.models.uplift): known effects recovered, the interface the list codes
against, scikit-learn conventions, bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from retain.models import UpliftModel
from retain.models.uplift import CONTROL, effect_columns


@pytest.fixture(scope="module")
def experiment():
    """A randomised experiment with known effects: ``call`` adds 3 * max(x0, 0) to the margin
    and lowers churn where x0 > 0; ``mail`` costs 2 of margin to customers of kind ``u``."""
    rng = np.random.default_rng(0)
    n = 4000
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "kind": pd.Categorical(rng.choice(["u", "v"], n)),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    arm = rng.choice([CONTROL, "call", "mail"], n, p=[0.3, 0.35, 0.35])
    effect = {"call": 3 * X["x0"].clip(lower=0), "mail": -2.0 * (X["kind"] == "u")}
    margin = 5 + 4 * X["x1"] + rng.normal(scale=2, size=n)
    for action, values in effect.items():
        margin += np.where(arm == action, values, 0.0)
    logit = -0.5 + X["x1"] - np.where(arm == "call", 2 * X["x0"].clip(lower=0), 0.0)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, margin, churned, arm, effect


@pytest.mark.parametrize(
    ("learner", "scale_margin"), [("t", True), ("dr", True), ("x", True), ("t", False)]
)
def test_effects_are_recovered(experiment, learner, scale_margin):
    X, margin, churned, arm, effect = experiment
    model = UpliftModel(
        learner=learner, n_estimators=60, scale_margin=scale_margin, random_state=0
    ).fit(X, margin, churned, arm)
    assert (model.scale_model_ is not None) == scale_margin
    assert model.actions_ == ["call", "mail"] and model.arms_ == [CONTROL, "call", "mail"]
    effects = model.predict_effects(X)
    assert list(effects.columns) == effect_columns(["call", "mail"]) == [
        "incremental_margin__call", "churn_effect__call",
        "incremental_margin__mail", "churn_effect__mail",
    ]  # fmt: skip
    assert effects.index.equals(X.index)
    for action in ("call", "mail"):
        found = effects[f"incremental_margin__{action}"]
        assert np.corrcoef(found, effect[action])[0, 1] > 0.75
        assert abs(found.mean() - effect[action].mean()) < 0.4
    # calls cut churn where x0 > 0 and nowhere else; mails do nothing to churn
    positive = X["x0"] > 0.5
    assert effects.loc[positive, "churn_effect__call"].mean() < -0.15
    assert abs(effects.loc[X["x0"] < -0.5, "churn_effect__call"].mean()) < 0.08
    assert abs(effects["churn_effect__mail"].mean()) < 0.05
    assert effects.filter(like="churn_effect").abs().max().max() <= 1.0


def test_pooled_x_learner_recovers_each_actions_effects(experiment):
    X, margin, churned, arm, effect = experiment
    model = UpliftModel(learner="x", n_estimators=60, pool_actions=True).fit(
        X, margin, churned, arm
    )
    assert set(model.models_["margin"]) == {"treated", CONTROL}
    effects = model.predict_effects(X)
    for action in ("call", "mail"):
        found = effects[f"incremental_margin__{action}"]
        assert np.corrcoef(found, effect[action])[0, 1] > 0.75
        assert abs(found.mean() - effect[action].mean()) < 0.4
    assert effects.loc[X["x0"] > 0.5, "churn_effect__call"].mean() < -0.15
    with pytest.raises(ValueError, match="pool_actions must be true or false"):
        UpliftModel(pool_actions="yes").fit(X, margin, churned, arm)


def test_structured_margin_effect_is_churn_prevented_times_margin_if_retained(experiment):
    X, margin, churned, arm, _ = experiment
    model = UpliftModel(learner="x", n_estimators=60, margin_effect="structured").fit(
        X, margin, churned, arm
    )
    assert model.scale_model_ is None and set(model.models_) == {"churn"}
    effects = model.predict_effects(X)
    kept = np.maximum(model.retained_model_.predict(X.astype({"kind": "category"})), 0.0)
    np.testing.assert_allclose(
        effects["incremental_margin__call"], -effects["churn_effect__call"] * kept, rtol=1e-6
    )
    # calls keep customers where x0 > 0: margin gained there, not where x0 < 0
    gained = effects["incremental_margin__call"]
    assert gained[X["x0"] > 0.5].mean() > 0.5
    assert abs(gained[X["x0"] < -0.5].mean()) < 0.4 * gained[X["x0"] > 0.5].mean()
    # a margin effect that does not go through churn (mail) is not seen: the design's limit
    assert abs(effects["incremental_margin__mail"].mean()) < 0.5
    with pytest.raises(ValueError, match="margin_effect must be one of direct, structured"):
        UpliftModel(margin_effect="both").fit(X, margin, churned, arm)


def test_known_propensities_are_used(experiment):
    X, margin, churned, arm, _ = experiment
    shares = pd.DataFrame({CONTROL: 0.3, "call": 0.35, "mail": 0.35}, index=X.index)
    model = UpliftModel(n_estimators=10).fit(X, margin, churned, arm, propensity=shares)
    assert model.propensity_ == pytest.approx({CONTROL: 0.3, "call": 0.35, "mail": 0.35})
    shares.loc[shares.index[arm == "mail"], "mail"] = 0.0
    with pytest.raises(ValueError, match="propensity 0"):
        UpliftModel(n_estimators=10).fit(X, margin, churned, arm, propensity=shares)


def test_same_seed_same_effects_and_scikit_learn_conventions(experiment):
    X, margin, churned, arm, _ = experiment
    model = UpliftModel(n_estimators=10, random_state=3)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict_effects(X)
    first = model.fit(X, margin, churned, arm).predict_effects(X)
    again = clone(model).fit(X, margin, churned, arm).predict(X)
    pd.testing.assert_frame_equal(first, again)
    # columns in another order and extra columns do not matter; a missing one does
    shuffled = X[["kind", "x1", "x0"]].assign(extra=1.0)
    pd.testing.assert_frame_equal(model.predict_effects(shuffled), first)
    with pytest.raises(ValueError, match="missing 1 feature"):
        model.predict_effects(X.drop(columns="x1"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: np.where(a == CONTROL, "call", a), "needs control rows and treated rows"),
        (lambda a: np.where(np.arange(a.size) < 5, "rare", a), "fewer than 10 rows"),
    ],
)
def test_experiments_without_enough_arms_are_refused(experiment, change, message):
    X, margin, churned, arm, _ = experiment
    with pytest.raises(ValueError, match=message):
        UpliftModel(n_estimators=5).fit(X, margin, churned, change(arm))


def test_bad_settings_and_outcomes_are_refused(experiment):
    X, margin, churned, arm, _ = experiment
    with pytest.raises(ValueError, match="learner must be one of t, dr, x"):
        UpliftModel(learner="s").fit(X, margin, churned, arm)
    with pytest.raises(ValueError, match="cv_folds must be a whole number, at least 2"):
        UpliftModel(learner="dr", cv_folds=1).fit(X, margin, churned, arm)
    with pytest.raises(ValueError, match="churned must hold 0 and 1"):
        UpliftModel().fit(X, margin, churned * 2, arm)
    with pytest.raises(ValueError, match="non-finite"):
        UpliftModel().fit(X, np.where(arm == "call", np.nan, margin), churned, arm)
