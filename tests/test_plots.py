"""Evaluation plots: each builds on small random data with the expected elements; atomic PNGs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from retain.metrics.model import decile_table
from retain.plots import (
    calibration_plot,
    decile_plot,
    gain_plot,
    importance_plot,
    precision_recall_plot,
    roc_plot,
    save_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def churn(seed):
    rng = np.random.default_rng(seed)
    good = rng.uniform(0, 1, 200)
    labels = (rng.uniform(0, 1, 200) < good).astype(int)
    return labels, {"xgboost": good, "baseline": rng.uniform(0, 1, 200)}


def legend_texts(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_roc_plot(churn):
    labels, scores = churn
    fig = roc_plot(labels, scores)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 3  # two models + chance diagonal
    texts = legend_texts(ax)
    assert texts[0].startswith("xgboost (AUC 0.")
    assert texts[1].startswith("baseline (AUC ")
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_precision_recall_plot(churn):
    labels, scores = churn
    (ax,) = precision_recall_plot(labels, scores).axes
    assert len(ax.lines) == 3  # two models + base rate
    texts = legend_texts(ax)
    assert all("AP " in text for text in texts[:2])
    assert texts[2] == f"Base rate ({labels.mean():.3f})"


def test_calibration_plot(churn):
    labels, scores = churn
    fig = calibration_plot(labels, scores, bins=5)
    top, bottom = fig.axes
    assert len(top.lines) == 3  # diagonal + two models
    assert sum("ECE " in text for text in legend_texts(top)) == 2
    assert len(bottom.patches) == 2  # one step histogram per model
    assert bottom.get_xlabel() == "Mean predicted probability"


def test_gain_plot(churn):
    labels, scores = churn
    (ax,) = gain_plot(labels, scores).axes
    assert len(ax.lines) == 4  # two models + perfect + random
    texts = legend_texts(ax)
    assert texts[-2:] == ["Perfect", "Random"]
    assert "top 10%: " in texts[0] and "captured" in texts[0]


def test_importance_plot_largest_on_top():
    importance = pd.Series({"recency": 0.5, "tenure": 0.1, "frequency": 0.9, "tickets": 0.3})
    (ax,) = importance_plot(importance, top=3).axes
    assert len(ax.patches) == 3
    # y ticks run bottom to top; the top tick is the largest feature.
    ticks = zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    labels_bottom_up = [label.get_text() for _, label in sorted(ticks, key=lambda t: t[0])]
    assert labels_bottom_up == ["tickets", "recency", "frequency"]
    assert ax.get_title() == "Mean |SHAP| contribution"


def test_decile_plot(seed):
    rng = np.random.default_rng(seed)
    actual = rng.gamma(1.0, 50.0, 100)
    table = decile_table(actual, actual * rng.lognormal(0, 0.3, 100))
    (ax,) = decile_plot(table).axes
    assert len(ax.patches) == 20  # predicted and actual bar per decile
    assert legend_texts(ax) == ["Predicted", "Actual"]
    assert [label.get_text() for label in ax.get_xticklabels()] == [str(d) for d in range(1, 11)]
    assert "decile MAPE" in ax.get_title()


def test_plot_errors(churn):
    labels, _ = churn
    with pytest.raises(ValueError, match="non-empty mapping"):
        roc_plot(labels, {})
    with pytest.raises(ValueError, match="missing column"):
        decile_plot(pd.DataFrame({"decile": [1]}))
    with pytest.raises(ValueError, match="non-empty pandas Series"):
        importance_plot(pd.Series(dtype=float))


def test_save_figure_writes_png_atomically(tmp_path, churn):
    labels, scores = churn
    target = tmp_path / "plots" / "roc.png"
    assert save_figure(roc_plot(labels, scores), target) == target
    assert target.read_bytes()[:8] == PNG_MAGIC
    save_figure(gain_plot(labels, scores), target)  # overwrite in place
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert [path.name for path in target.parent.iterdir()] == ["roc.png"]
