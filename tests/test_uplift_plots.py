"""Figures of the uplift job (retain.plots): the validation Qini and incremental-profit curves
of several rankings, from the curves retain.training.uplift.validation_curves logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.metrics.uplift import incremental_profit_curve, qini_curve
from retain.plots import incremental_profit_plot, qini_curves_plot
from retain.training.uplift import validation_curves


@pytest.fixture
def curves(seed):
    rng = np.random.default_rng(seed)
    n = 400
    arm = rng.choice(np.array(["control", "call"], dtype=object), n)
    effect = rng.normal(size=n)
    margin = rng.normal(10, 3, n) + np.where(arm == "call", effect, 0.0)
    matched = {
        "model": (np.ones(n, bool), arm == "call", effect, np.full(n, 0.2)),
        "random": (np.ones(n, bool), arm == "call", rng.random(n), np.full(n, 0.2)),
    }
    return margin, arm, matched, validation_curves(margin, matched)


def test_validation_curves_follow_the_measures(curves):
    margin, arm, matched, found = curves
    assert list(found.columns) == ["ranking", "targeted", "share_targeted", "qini",
                                   "incremental_profit"]  # fmt: skip
    model = found[found["ranking"] == "model"]
    assert model["targeted"].iloc[[0, -1]].tolist() == [0, len(margin)]
    counts, qini = qini_curve(margin, matched["model"][2], arm == "call")
    _, profit = incremental_profit_curve(margin, matched["model"][2], arm == "call", 0.2)
    # the logged points lie on the measures' own curves
    assert model["qini"].to_numpy() == pytest.approx(np.interp(model["targeted"], counts, qini))
    assert model["incremental_profit"].to_numpy() == pytest.approx(
        np.interp(model["targeted"], counts, profit)
    )


def test_uplift_figures_show_every_ranking(curves):
    *_, found = curves
    figure = qini_curves_plot(found, {"model": 12.5, "random": -1.0})
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["model (Qini 12)", "random (Qini -1)", "random targeting (model's rows)"]
    figure = incremental_profit_plot(found, capacity=0.05)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["model", "random"] and "capacity 5%" in labels
    assert any(label.startswith("model's peak: ") for label in labels)
    with pytest.raises(ValueError, match="uplift curves need rows"):
        qini_curves_plot(pd.DataFrame({"ranking": []}))
