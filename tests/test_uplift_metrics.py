"""Uplift measures (retain.metrics.uplift) against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from retain.metrics.uplift import (
    auuc,
    effect_at_capacity,
    effect_curve,
    effect_qini_coefficient,
    incremental_profit_at_capacity,
    incremental_profit_curve,
    matched_treatment,
    qini_coefficient,
    qini_curve,
    uplift_curve,
)

# Four customers ranked by score; treated, control, treated, control.
Y = [3.0, 1.0, 2.0, 0.0]
SCORE = [0.9, 0.5, 0.4, 0.1]
TREATED = [1, 0, 1, 0]


def test_qini_curve_by_hand():
    # k=1: 3 - 0; k=2: 3 - 1*1/1; k=3: 5 - 1*2/1; k=4: 5 - 1*2/2
    counts, qini = qini_curve(Y, SCORE, TREATED)
    assert counts.tolist() == [0, 1, 2, 3, 4]
    assert qini.tolist() == [0.0, 3.0, 2.0, 3.0, 4.0]


def test_uplift_curve_by_hand():
    # (mean treated - mean control) * k: 3*1, (3-1)*2, (2.5-1)*3, (2.5-0.5)*4
    counts, uplift = uplift_curve(Y, SCORE, TREATED)
    assert counts.tolist() == [0, 1, 2, 3, 4]
    assert uplift.tolist() == pytest.approx([0.0, 3.0, 4.0, 4.5, 8.0])


def test_areas_by_hand():
    # trapezoids of width 1/4 under (0, 3, 4, 4.5, 8): 0.375 + 0.875 + 1.0625 + 1.5625
    assert auuc(Y, SCORE, TREATED) == pytest.approx(3.875)
    # under (0, 3, 2, 3, 4): 0.375 + 0.625 + 0.625 + 0.875 = 2.5, less random's 4 / 2
    assert qini_coefficient(Y, SCORE, TREATED) == pytest.approx(0.5)
    # the reverse ranking is worse than random
    assert qini_coefficient(Y, [-s for s in SCORE], TREATED) < 0


def test_normalised_qini_is_one_for_the_perfect_ranking():
    y, treated = np.array(Y), np.array(TREATED, dtype=bool)
    perfect = np.where(treated, y, -y)
    assert qini_coefficient(Y, perfect, TREATED, normalize=True) == pytest.approx(1.0)
    assert qini_coefficient(Y, SCORE, TREATED, normalize=True) < 1.0


def test_incremental_profit_at_capacity_by_hand():
    # top 2: uplift (3 - 1) * 2 = 4, less two contacts at 1.5
    assert incremental_profit_at_capacity(Y, SCORE, TREATED, 0.5, cost=1.5) == pytest.approx(1.0)
    # per-row costs: the top two cost 2 + 0.5
    costs = [2.0, 0.5, 9.0, 9.0]
    assert incremental_profit_at_capacity(Y, SCORE, TREATED, 0.5, cost=costs) == pytest.approx(1.5)
    # capacity rounds up: 0.3 of 4 rows is 2 rows
    assert incremental_profit_at_capacity(Y, SCORE, TREATED, 0.3) == pytest.approx(4.0)


def test_tied_scores_do_not_depend_on_row_order():
    y, score, treated = [2.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1, 0, 1, 0]
    counts, qini = qini_curve(y, score, treated)
    assert counts.tolist() == [0, 2, 4]
    assert qini.tolist() == [0.0, 2.0, 2.0]
    order = [1, 0, 3, 2]
    swapped = qini_curve(*(np.asarray(v)[order] for v in (y, score, treated)))
    assert swapped[1].tolist() == qini.tolist()
    # inside a tied block the curve is interpolated: U(2) = (2 - 0) * 2, so U(1) = 2
    assert incremental_profit_at_capacity(y, score, treated, 0.25) == pytest.approx(2.0)


def test_true_effects_by_hand():
    effect, score = [5.0, -1.0, 2.0, 0.0], [0.9, 0.8, 0.1, 0.0]
    counts, total = effect_curve(effect, score)
    assert total.tolist() == [0.0, 5.0, 4.0, 6.0, 6.0]
    assert effect_at_capacity(effect, score, 0.5) == pytest.approx(4.0)
    # trapezoids under (0, 5, 4, 6, 6) = 0.625 + 1.125 + 1.25 + 1.5 = 4.5, less 6 / 2
    assert effect_qini_coefficient(effect, score) == pytest.approx(1.5)


def test_matched_treatment_keeps_the_recommended_action_and_controls():
    keep, treated = matched_treatment(["a", "b", "control", "a"], ["a", "a", "b", "b"])
    assert keep.tolist() == [True, False, True, False]
    assert treated.tolist() == [True, False]


@pytest.mark.parametrize(
    ("y", "score", "treatment", "message"),
    [
        ([1.0, 2.0], [0.1, 0.2], [1, 1], "needs treated and control rows"),
        ([1.0, 2.0], [0.1, 0.2], [1, 2], "treatment must hold 1"),
        ([1.0, np.nan], [0.1, 0.2], [1, 0], "non-finite"),
        ([1.0, 2.0], [0.1], [1, 0], "different lengths"),
    ],
)
def test_bad_inputs_are_refused(y, score, treatment, message):
    with pytest.raises(ValueError, match=message):
        qini_curve(y, score, treatment)


def test_capacity_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="top_fraction"):
        incremental_profit_at_capacity(Y, SCORE, TREATED, 0.0)


def test_incremental_profit_curve_by_hand():
    # U(k) less 0.5 a contact: k=1: 3*1 - 0.5; k=2: (3 - 1)*2 - 1; k=3: (2.5 - 1)*3 - 1.5;
    # k=4: (2.5 - 0.5)*4 - 2
    counts, profit = incremental_profit_curve(Y, SCORE, TREATED, cost=0.5)
    assert counts.tolist() == [0, 1, 2, 3, 4]
    assert profit.tolist() == [0.0, 2.5, 3.0, 3.0, 6.0]
    # the measure at capacity reads the same curve (k = ceil(0.5 * 4) = 2)
    assert incremental_profit_at_capacity(Y, SCORE, TREATED, 0.5, cost=0.5) == 3.0
