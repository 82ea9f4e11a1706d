"""Measures of uplift models: Qini and uplift curves, their areas, profit at a capacity.

An uplift model scores each customer by the *change* a contact is expected to make to an
outcome (margin retained, churn). It is judged on a randomised experiment: customers were
contacted (``treatment``) or held out (control) at random, and a good score puts the customers
whose outcome the contact raises most at the top. Where the true individual effects are known
(the simulator's oracle), the same curves are computed from them directly.

Definitions, for the ``k`` customers ranked highest by the score, of whom ``N_T(k)`` were
treated with total outcome ``Y_T(k)`` and ``N_C(k)`` were controls with total ``Y_C(k)``:

* **Qini curve** (Radcliffe 2007): ``Q(k) = Y_T(k) - Y_C(k) * N_T(k) / N_C(k)``, the
  incremental outcome among the treated of the top ``k``, the controls scaled to their number.
* **Uplift curve** (Rzepakowski & Jaroszewicz 2012; Gutierrez & Gérardy 2017):
  ``U(k) = (Y_T(k) / N_T(k) - Y_C(k) / N_C(k)) * k``, the incremental outcome had all ``k``
  been treated.
* **Qini coefficient** (Radcliffe 2007): the area between the Qini curve and the straight line
  of random targeting from ``(0, 0)`` to ``(1, Q(n))``, with the share targeted ``k / n`` on
  the horizontal axis. Normalised, it is divided by the same area of the perfect ranking.
* **AUUC**: the area under the uplift curve over the share targeted; random targeting
  expects ``U(n) / 2``.
* **Incremental profit at capacity** (Devriendt, Berrevoets & Verbeke 2021, after the
  profit-driven measures of Verbeke et al. 2012): what contacting the top share of customers
  adds, ``U(k)`` minus the cost of the ``k`` contacts.

Conventions
-----------
* A term with an empty group (``N_T(k) = 0`` or ``N_C(k) = 0``) counts 0, as in
  scikit-uplift and CausalML.
* Customers with tied scores are taken together: the curves have points only where the score
  changes, and values in between are interpolated linearly (what a random order of the tied
  customers gives on average), so results do not depend on the order of tied rows.
* The Qini and uplift curves need a two-group experiment; several actions tested against one
  control group are compared through :func:`matched_treatment` (Zhao, Fang & Simchi-Levi 2017).

References
----------
Radcliffe, N. J. (2007). Using control groups to target on predicted lift: building and
assessing uplift models. *Direct Marketing Analytics Journal* 1, 14-21.

Rzepakowski, P. & Jaroszewicz, S. (2012). Decision trees for uplift modeling with single and
multiple treatments. *Knowledge and Information Systems* 32(2), 303-327.

Gutierrez, P. & Gérardy, J.-Y. (2017). Causal inference and uplift modelling: a review of the
literature. *Proceedings of Machine Learning Research* 67, 1-13.

Verbeke, W., Dejaeger, K., Martens, D., Hur, J. & Baesens, B. (2012). New insights into churn
prediction in the telecommunication sector: a profit driven data mining approach. *European
Journal of Operational Research* 218(1), 211-229.

Devriendt, F., Berrevoets, J. & Verbeke, W. (2021). Why you should stop predicting customer
churn and start using uplift models. *Information Sciences* 548, 497-515.

Zhao, Y., Fang, X. & Simchi-Levi, D. (2017). Uplift modeling with multiple treatments and
general response types. *Proceedings of the 2017 SIAM International Conference on Data
Mining*, 588-596.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from retain.metrics.model import _same_length, _top_count, _vector

__all__ = [
    "auuc",
    "effect_at_capacity",
    "effect_curve",
    "effect_qini_coefficient",
    "incremental_profit_at_capacity",
    "incremental_profit_curve",
    "matched_treatment",
    "qini_coefficient",
    "qini_curve",
    "uplift_curve",
]


# --------------------------------------------------------------------------- validation


def _treated(treatment: ArrayLike) -> NDArray[np.bool_]:
    """``treatment`` as booleans (1/True = treated), rejecting other values."""
    values = _vector(treatment, "treatment")
    if not np.all((values == 0) | (values == 1)):
        found = np.unique(values[(values != 0) & (values != 1)])[:5]
        raise ValueError(
            f"treatment must hold 1 (treated) and 0 (control) or booleans; found {found.tolist()}"
        )
    return values == 1


def _experiment(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    outcome, ranking, treated = _vector(y, "y"), _vector(score, "score"), _treated(treatment)
    _same_length(outcome, ranking, ("y", "score"))
    _same_length(outcome, treated, ("y", "treatment"))
    n_treated = int(treated.sum())
    if n_treated == 0 or n_treated == treated.size:
        only = "treated" if n_treated else "control"
        raise ValueError(
            f"an uplift measure needs treated and control rows; all {treated.size} are {only}"
        )
    return outcome, ranking, treated


def _effects(effect: ArrayLike, score: ArrayLike) -> tuple[NDArray, NDArray]:
    values, ranking = _vector(effect, "effect"), _vector(score, "score")
    _same_length(values, ranking, ("effect", "score"))
    return values, ranking


# --------------------------------------------------------------------------- curves


def _ranked_totals(
    score: NDArray[np.float64], *columns: NDArray
) -> tuple[NDArray[np.int64], list[NDArray[np.float64]]]:
    """Running totals of ``columns`` down the ranking, at the end of each block of tied scores.

    Returns the number of rows ranked so far (starting with 0) and each column's total over
    them (starting with 0).
    """
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    ends = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), ranked.size - 1]
    counts = np.r_[0, ends + 1].astype(np.int64)
    totals = [np.r_[0.0, np.cumsum(column[order], dtype=np.float64)[ends]] for column in columns]
    return counts, totals


def _ratio(numerator: NDArray, denominator: NDArray) -> NDArray[np.float64]:
    """``numerator / denominator``, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _group_totals(
    y: NDArray, score: NDArray, treated: NDArray
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    counts, (n_treated, y_treated, y_control) = _ranked_totals(
        score, treated.astype(np.float64), np.where(treated, y, 0.0), np.where(treated, 0.0, y)
    )
    return counts, n_treated, counts - n_treated, y_treated, y_control


def qini_curve(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Qini curve: incremental outcome among the treated of the top ``k``, by ``k``.

    ``Q(k) = Y_T(k) - Y_C(k) * N_T(k) / N_C(k)`` (Radcliffe 2007), at ``k = 0`` and at the
    end of every block of tied scores.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome (margin, 0/1 retained, ...).
    score : array-like of shape (n,)
        Predicted uplift; higher is targeted first.
    treatment : array-like of shape (n,)
        1 (or True) for treated rows, 0 (or False) for control rows; both must occur.

    Returns
    -------
    n_targeted : numpy.ndarray of int
        Number of rows targeted, from 0 to ``n``.
    qini : numpy.ndarray of float
        ``Q`` at each of them (0 at ``k = 0``).

    Raises
    ------
    ValueError
        On lengths that differ, non-finite values, treatment values other than 0/1 or a
        single group.

    Examples
    --------
    >>> counts, qini = qini_curve([3, 1, 2, 0], [0.9, 0.5, 0.4, 0.1], [1, 0, 1, 0])
    >>> counts.tolist(), qini.tolist()
    ([0, 1, 2, 3, 4], [0.0, 3.0, 2.0, 3.0, 4.0])
    """
    y, score, treated = _experiment(y, score, treatment)
    counts, n_treated, n_control, y_treated, y_control = _group_totals(y, score, treated)
    return counts, y_treated - y_control * _ratio(n_treated, n_control)


def uplift_curve(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Uplift curve: incremental outcome had all of the top ``k`` been treated, by ``k``.

    ``U(k) = (Y_T(k) / N_T(k) - Y_C(k) / N_C(k)) * k`` (Rzepakowski & Jaroszewicz 2012;
    Gutierrez & Gérardy 2017), at ``k = 0`` and at the end of every block of tied scores.

    Parameters
    ----------
    y, score, treatment : array-like of shape (n,)
        As for :func:`qini_curve`.

    Returns
    -------
    n_targeted : numpy.ndarray of int
        Number of rows targeted, from 0 to ``n``.
    uplift : numpy.ndarray of float
        ``U`` at each of them (0 at ``k = 0``).

    Raises
    ------
    ValueError
        As :func:`qini_curve`.
    """
    y, score, treated = _experiment(y, score, treatment)
    counts, n_treated, n_control, y_treated, y_control = _group_totals(y, score, treated)
    return counts, (_ratio(y_treated, n_treated) - _ratio(y_control, n_control)) * counts


def effect_curve(
    effect: ArrayLike, score: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Total true effect of treating the top ``k``, by ``k``, where individual effects are known.

    On simulated data the oracle gives each customer's true effect; this is the curve the
    Qini and uplift curves estimate from an experiment (CausalML's cumulative gain with a
    known treatment effect).

    Parameters
    ----------
    effect : array-like of shape (n,)
        True effect of treating each row.
    score : array-like of shape (n,)
        Ranking score; higher is targeted first.

    Returns
    -------
    n_targeted : numpy.ndarray of int
        Number of rows targeted, from 0 to ``n``.
    total_effect : numpy.ndarray of float
        Sum of the effects of the rows targeted (tied blocks whole).

    Raises
    ------
    ValueError
        On lengths that differ or non-finite values.
    """
    effect, score = _effects(effect, score)
    counts, (total,) = _ranked_totals(score, effect)
    return counts, total


# --------------------------------------------------------------------------- areas


def _area(counts: NDArray[np.int64], values: NDArray[np.float64]) -> float:
    """Trapezoidal area under ``values`` over the share targeted ``counts / n``."""
    share = counts / counts[-1]
    return float(np.sum((share[1:] - share[:-1]) * (values[1:] + values[:-1]) / 2.0))


def _above_random(counts: NDArray[np.int64], values: NDArray[np.float64]) -> float:
    """Area between a curve and the straight line from (0, 0) to its end."""
    return _area(counts, values) - values[-1] / 2.0


def qini_coefficient(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike, *, normalize: bool = False
) -> float:
    """Qini coefficient: area between the Qini curve and random targeting (Radcliffe 2007).

    The horizontal axis is the share of rows targeted (0 to 1), so the unnormalised
    coefficient is in the outcome's units: the incremental outcome the ranking adds over
    random targeting, averaged over every depth of targeting. Positive is better than random.

    Parameters
    ----------
    y, score, treatment : array-like of shape (n,)
        As for :func:`qini_curve`.
    normalize : bool, default=False
        Divide by the same area of the perfect ranking of these rows (treated rows by
        outcome, highest first, then control rows by outcome, lowest last: Radcliffe's
        optimum, scikit-uplift's ``qini_auc_score``), giving at most 1. With outcomes as
        noisy as a customer's margin the perfect ranking sorts noise, so normalised values
        are small; compare models on the same rows only.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`qini_curve`, and when normalising rows whose perfect ranking is no
        better than random.
    """
    counts, qini = qini_curve(y, score, treatment)
    area = _above_random(counts, qini)
    if not normalize:
        return area
    outcome, treated = _vector(y, "y"), _treated(treatment)
    perfect = _above_random(*qini_curve(outcome, np.where(treated, outcome, -outcome), treated))
    if perfect <= 0:
        raise ValueError("the perfect ranking of these rows is no better than random")
    return area / perfect


def auuc(y: ArrayLike, score: ArrayLike, treatment: ArrayLike) -> float:
    """Area under the uplift curve over the share of rows targeted (0 to 1).

    In the outcome's units: the incremental outcome of treating the top share, averaged over
    every share (Gutierrez & Gérardy 2017). Random targeting expects ``U(n) / 2``, half the
    incremental outcome of treating everyone.

    Parameters
    ----------
    y, score, treatment : array-like of shape (n,)
        As for :func:`qini_curve`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`qini_curve`.
    """
    return _area(*uplift_curve(y, score, treatment))


def effect_qini_coefficient(effect: ArrayLike, score: ArrayLike) -> float:
    """The Qini coefficient computed from true individual effects (simulated data).

    The area between :func:`effect_curve` and the straight line of random targeting, over
    the share targeted: what :func:`qini_coefficient` estimates from an experiment, scaled
    to every row treated.

    Parameters
    ----------
    effect, score : array-like of shape (n,)
        As for :func:`effect_curve`.

    Returns
    -------
    float
    """
    return _above_random(*effect_curve(effect, score))


# --------------------------------------------------------------------------- capacity


def _at(counts: NDArray[np.int64], values: NDArray[np.float64], k: int) -> float:
    """A curve's value at ``k`` rows; linear inside a block of tied scores."""
    return float(np.interp(k, counts, values))


def _costs(cost: ArrayLike | float, n: int) -> NDArray[np.float64]:
    values = np.asarray(cost, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(n, float(values))
    values = _vector(values, "cost")
    if values.shape[0] != n:
        raise ValueError(f"cost must be one number or one per row ({n}); got {values.shape[0]}")
    return values


def effect_at_capacity(effect: ArrayLike, score: ArrayLike, capacity: float) -> float:
    """Total true effect of treating the top ``capacity`` share of rows (simulated data).

    The number of rows is ``ceil(capacity * n)``; where the cut falls inside a block of tied
    scores, the block counts in proportion (the average over random orders of the ties).

    Parameters
    ----------
    effect, score : array-like of shape (n,)
        As for :func:`effect_curve`.
    capacity : float
        Share of rows that can be treated, in (0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> effect_at_capacity([5.0, -1.0, 2.0, 0.0], [0.9, 0.8, 0.1, 0.0], 0.5)
    4.0
    """
    effect, score = _effects(effect, score)
    k = _top_count(effect.size, capacity)
    return _at(*effect_curve(effect, score), k)


def incremental_profit_at_capacity(
    y: ArrayLike,
    score: ArrayLike,
    treatment: ArrayLike,
    capacity: float,
    cost: ArrayLike | float = 0.0,
) -> float:
    """Estimated incremental profit of treating the top ``capacity`` share, from an experiment.

    ``U(k) - cost of the k contacts``, with ``k = ceil(capacity * n)`` and ``U`` the uplift
    curve (Devriendt, Berrevoets & Verbeke 2021): the treated-minus-control difference in
    mean outcome among the top ``k``, times ``k``, less what contacting them costs.

    Parameters
    ----------
    y, score, treatment : array-like of shape (n,)
        As for :func:`qini_curve`; ``y`` in money (e.g. margin over the horizon).
    capacity : float
        Share of rows that can be contacted, in (0, 1].
    cost : float or array-like of shape (n,), default=0.0
        Cost of contacting each row (one number for all, or per row, e.g. the cost of the
        action recommended to it).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`qini_curve`, a capacity outside (0, 1] or costs of another length.
    """
    outcome = _vector(y, "y")
    k = _top_count(outcome.size, capacity)
    return _at(*incremental_profit_curve(outcome, score, treatment, cost), k)


def incremental_profit_curve(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike, cost: ArrayLike | float = 0.0
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Estimated incremental profit of treating the top ``k``, by ``k``: ``U(k)`` less the
    cost of the ``k`` contacts (the curve :func:`incremental_profit_at_capacity` reads).

    Parameters
    ----------
    y, score, treatment : array-like of shape (n,)
        As for :func:`qini_curve`; ``y`` in money.
    cost : float or array-like of shape (n,), default=0.0
        Cost of contacting each row.

    Returns
    -------
    n_targeted : numpy.ndarray of int
        Number of rows targeted, from 0 to ``n``, at the end of every block of tied scores.
    profit : numpy.ndarray of float
        The estimated incremental profit at each of them (0 at ``k = 0``).

    Examples
    --------
    >>> counts, profit = incremental_profit_curve([3, 1, 2, 0], [0.9, 0.5, 0.4, 0.1],
    ...                                           [1, 0, 1, 0], cost=0.5)
    >>> counts.tolist(), profit.tolist()
    ([0, 1, 2, 3, 4], [0.0, 2.5, 3.0, 3.0, 6.0])
    """
    outcome, ranking, treated = _experiment(y, score, treatment)
    counts, uplift = uplift_curve(outcome, ranking, treated)
    _, (spent,) = _ranked_totals(ranking, _costs(cost, outcome.size))
    return counts, uplift - spent


# --------------------------------------------------------------------------- several actions


def matched_treatment(
    treatment: ArrayLike, recommended: ArrayLike, control: str = "control"
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Rows of a multi-action experiment that judge a recommendation, as a two-group one.

    A row counts when it got the action recommended to it (treated) or was held out
    (control); rows given another action say nothing about the recommendation and are
    left out (Zhao, Fang & Simchi-Levi 2017). Under randomisation the kept rows are a fair
    experiment of "the recommended action against none" whenever the actions' shares among
    the treated do not depend on the customer.

    Parameters
    ----------
    treatment : array-like of str, shape (n,)
        Action each row got, or ``control``.
    recommended : array-like of str, shape (n,)
        Action recommended to each row.
    control : str, default="control"
        Label of control rows in ``treatment``.

    Returns
    -------
    keep : numpy.ndarray of bool
        Rows to keep.
    treated : numpy.ndarray of bool
        For the kept rows, True where treated (``treatment[keep] == recommended[keep]``).

    Examples
    --------
    >>> keep, treated = matched_treatment(["a", "b", "control"], ["a", "a", "b"])
    >>> keep.tolist(), treated.tolist()
    ([True, False, True], [True, False])
    """
    given = np.asarray(treatment, dtype=object)
    chosen = np.asarray(recommended, dtype=object)
    if given.ndim != 1 or chosen.ndim != 1:
        raise ValueError("treatment and recommended must be one-dimensional")
    _same_length(given, chosen, ("treatment", "recommended"))
    is_control = given == control
    match = given == chosen
    keep = is_control | match
    return keep, match[keep]
