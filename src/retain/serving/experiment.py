"""Every campaign an experiment: control groups, the campaign log, treated minus control.

**Control groups.** ``retain score`` holds out a share (``control_share`` of
``serving/score.yaml``, default 0.10) of the selected customers of each action, ``round(share x
selected)`` customers marked ``group = control`` (not to be contacted), the others ``group =
treatment``. The draw is *blocked* (stratified) so that treated and control customers are
matched on predicted gain, churn risk and value: complete randomisation drew, in one test
world, a control group whose churn differed by 14% from the treated with no effect at all.
The action's customers, in the list's order (by expected net gain), are cut into about
``sqrt(blocks)`` strata of consecutive ranks; within a stratum they are ordered by churn
probability (gain being about equal there, customers of equal risk then also have about equal
value); and that sequence is cut into blocks of ``ceil(1 / share)`` consecutive customers.
Each block holds out its exact quota, ``round(share x end) - round(share x start)`` of its
``start..end`` positions (cumulative rounding: the quotas add up to the action's total and
differ from ``share x block`` by less than one), drawn at random within the block. The draw
depends on the config seed, the cutoff, the selected customers' ids, ranks and churn
probabilities only, so it is the same on every engine and in every run. The backtest's Welch
intervals ignore the blocks, so they are conservative: blocking only removes variance between
the groups.

**Campaign log.** ``campaign_log.csv`` beside the list holds the selected customers in the data
contract's ``campaigns`` format (``customer_id, timestamp, campaign_id, action, group,
cost``): the campaign is ``retain-<as_of>``, dated at the cutoff, control rows cost 0. Copy it
into the data folder as ``campaigns.csv`` (or add its rows there) once the contacts are made,
so that the next training learns from them; retain never writes into the data folder.

**Treated minus control** (:func:`effect_table`), per action and per decile of the selected
customers by rank: the difference of the means of realised retained margin and of churn
between the treatment and the control group, with a 95% interval from the normal
approximation with Welch's (unequal variances) standard error, ``sqrt(s_t^2 / n_t + s_c^2 /
n_c)``. By intention to treat: customers are compared as assigned, whatever contact was made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

__all__ = [
    "CAMPAIGN_LOG",
    "CONTROL",
    "EFFECT_COLUMNS",
    "TREATMENT",
    "Z95",
    "campaign_id",
    "campaign_log",
    "control_positions",
    "effect_table",
    "hold_out",
    "welch_interval",
]

CAMPAIGN_LOG = "campaign_log.csv"
TREATMENT, CONTROL = "treatment", "control"
#: Two-sided 95% quantile of the standard normal.
Z95 = 1.959963984540054
#: Columns of :func:`effect_table`.
EFFECT_COLUMNS = (
    "action", "decile", "treated", "control", "predicted_incremental_margin",
    "realised_incremental_margin", "margin_low", "margin_high", "predicted_churn_effect",
    "realised_churn_effect", "churn_low", "churn_high",
)  # fmt: skip


def campaign_id(as_of: date) -> str:
    """The campaign a list's contacts belong to: ``retain-<as_of>``."""
    return f"retain-{as_of.isoformat()}"


def hold_out(
    ids: np.ndarray,
    actions: np.ndarray,
    chosen: np.ndarray,
    share: float,
    seed: int,
    as_of: date,
    order: np.ndarray | None = None,
    risk: np.ndarray | None = None,
) -> np.ndarray:
    """The group of each customer: ``treatment`` or ``control`` for the chosen ones (a seeded,
    blocked ``round(share x n)`` of the ``n`` chosen customers of each action held out, see
    the module docstring), ``None`` for the others.

    Parameters
    ----------
    ids, actions : array of str
        Customer ids and recommended actions, in any order.
    chosen : array of bool
        Selected for contact.
    share : float
        Control share, in [0, 1).
    seed : int
        The config seed; with ``as_of`` it seeds the draw.
    as_of : datetime.date
        The list's cutoff.
    order : array of float, optional
        The customers' position in the list (their rank): the strata follow it. Ties, and
        every customer when ``order`` is not given, follow the ids.
    risk : array of float, optional
        Churn probability: the order of the customers within a stratum (without it, the
        blocks follow ``order`` alone).

    Returns
    -------
    numpy.ndarray of object
        ``"treatment"``, ``"control"`` or ``None``, in the rows' order.
    """
    ids = np.asarray(ids, dtype=object)
    actions = np.asarray(actions, dtype=object)
    chosen = np.asarray(chosen, dtype=bool)
    position = _key(order, ids, "order")
    risk = _key(risk, ids, "risk")
    groups = np.full(len(ids), None, dtype=object)
    groups[chosen] = TREATMENT
    rng = np.random.default_rng([int(seed), as_of.toordinal()])
    for action in sorted(set(actions[chosen].tolist())):
        members = np.flatnonzero(chosen & (actions == action))
        # by position, ties by id: the same blocks whatever the rows' order
        members = members[np.lexsort((ids[members].astype(str), position[members]))]
        members = members[_strata_order(risk[members], share)]
        groups[members[control_positions(len(members), share, rng)]] = CONTROL
    return groups


def _key(values: np.ndarray | None, ids: np.ndarray, name: str) -> np.ndarray:
    """A sort key per customer (zeros when not given: ties everywhere)."""
    key = np.zeros(len(ids)) if values is None else np.asarray(values, dtype=float)
    if key.shape != ids.shape:
        raise ValueError(f"{name} has {key.size} values for {ids.size} customers")
    return np.where(np.isnan(key), np.inf, key)  # missing last, still in a block


def _strata_order(risk: np.ndarray, share: float) -> np.ndarray:
    """Within ``sqrt(blocks)`` strata of consecutive customers, order by ``risk``: a stable
    permutation of ``0..len(risk)-1`` (the identity when ``risk`` ties everywhere)."""
    size = len(risk)
    if share <= 0 or size == 0:
        return np.arange(size)
    block = _block(share)
    blocks = -(-size // block)
    per_stratum = block * -(-blocks // math.ceil(math.sqrt(blocks)))  # whole blocks
    stratum = np.arange(size) // per_stratum
    return np.lexsort((np.arange(size), risk, stratum))


def _block(share: float) -> int:
    """Customers per block: the fewest that hold at least one control customer."""
    return max(1, math.ceil(1 / share - 1e-9))


def control_positions(size: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """Positions ``0..size-1`` held out: blocks of ``ceil(1 / share)`` consecutive positions,
    each with its cumulative-rounding quota drawn at random (``round(share x size)`` in all).

    Parameters
    ----------
    size : int
        Customers of one action, in the blocks' order.
    share : float
        Control share, in [0, 1).
    rng : numpy.random.Generator
        The draw within each block.

    Returns
    -------
    numpy.ndarray of int
        Sorted positions.
    """
    if not 0 <= share < 1:
        raise ValueError(f"control share must be in [0, 1), got {share!r}")
    if share == 0 or size == 0:
        return np.empty(0, dtype=np.int64)
    block = _block(share)
    starts = np.arange(0, size, block)
    ends = np.minimum(starts + block, size)
    quotas = _rounded(share * ends) - _rounded(share * starts)
    held = [start + rng.choice(end - start, quota, replace=False)
            for start, end, quota in zip(starts, ends, quotas, strict=True) if quota]  # fmt: skip
    return np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)


def _rounded(values: np.ndarray) -> np.ndarray:
    """Half up, as ``round(share x n)`` means throughout (numpy rounds half to even)."""
    return np.floor(values + 0.5).astype(np.int64)


def campaign_log(selected: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The selected customers of a list as rows of the ``campaigns`` log, in rank order."""
    rows = selected.sort_values("rank", kind="stable")
    treated = rows["group"].to_numpy(dtype=object) == TREATMENT
    return pd.DataFrame(
        {
            "customer_id": rows["customer_id"].astype(str).to_numpy(dtype=object),
            "timestamp": [as_of.isoformat()] * len(rows),
            "campaign_id": [campaign_id(as_of)] * len(rows),
            "action": rows["recommended_action"].astype(str).to_numpy(dtype=object),
            "group": rows["group"].to_numpy(dtype=object),
            "cost": np.where(treated, rows["action_cost"].to_numpy(float), 0.0),
        }
    )


def welch_interval(
    treated: tuple[float, float, float], control: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Difference of means (treated minus control) and its 95% interval.

    Each group is ``(n, sum, sum of squares)``; the interval is the normal approximation with
    Welch's standard error. NaN where a group is empty; the interval is NaN unless both groups
    have at least two customers.
    """
    (n_t, s_t, q_t), (n_c, s_c, q_c) = treated, control
    if n_t < 1 or n_c < 1:
        return math.nan, math.nan, math.nan
    difference = s_t / n_t - s_c / n_c
    if n_t < 2 or n_c < 2:
        return difference, math.nan, math.nan

    def variance(n: float, total: float, squares: float) -> float:
        return max(0.0, (squares - total * total / n) / (n - 1))

    error = math.sqrt(variance(n_t, s_t, q_t) / n_t + variance(n_c, s_c, q_c) / n_c)
    return difference, difference - Z95 * error, difference + Z95 * error


def _sums(part: pd.DataFrame, group: str, prefix: str) -> tuple[float, float, float]:
    rows = part[part["group"] == group]
    return (
        float(rows["customers"].sum()),
        float(rows[f"{prefix}_sum"].sum()),
        float(rows[f"{prefix}_squares"].sum()),
    )


def effect_table(
    tallies: pd.DataFrame, predicted: pd.DataFrame, strata: Sequence[str] = ("action", "decile")
) -> pd.DataFrame:
    """Realised treated-minus-control effects with 95% intervals against the predicted ones.

    Parameters
    ----------
    tallies : pandas.DataFrame
        :meth:`retain.engines.Engine.experiment_tallies`: per ``action``, ``decile`` and
        ``group``: ``customers``, ``churned_sum``, ``churned_squares``, ``margin_sum``,
        ``margin_squares``.
    predicted : pandas.DataFrame
        Per assigned customer: ``action``, ``decile``, ``expected_incremental_margin`` and
        ``expected_churn_effect``.
    strata : sequence of str
        The rows of the table: one per action (``decile`` = 0: all deciles), one per decile
        (``action`` = ``all``), and one for everything.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EFFECT_COLUMNS`: per action, then per decile, then overall.
    """
    records = []

    def add(action: str, decile: int, part: pd.DataFrame, guess: pd.DataFrame) -> None:
        margin = welch_interval(_sums(part, TREATMENT, "margin"), _sums(part, CONTROL, "margin"))
        churn = welch_interval(_sums(part, TREATMENT, "churned"), _sums(part, CONTROL, "churned"))
        records.append(
            {
                "action": action,
                "decile": decile,
                "treated": int(part.loc[part["group"] == TREATMENT, "customers"].sum()),
                "control": int(part.loc[part["group"] == CONTROL, "customers"].sum()),
                "predicted_incremental_margin": _mean(guess["expected_incremental_margin"]),
                "realised_incremental_margin": margin[0],
                "margin_low": margin[1],
                "margin_high": margin[2],
                "predicted_churn_effect": _mean(guess["expected_churn_effect"]),
                "realised_churn_effect": churn[0],
                "churn_low": churn[1],
                "churn_high": churn[2],
            }
        )

    if "action" in strata:
        for action in sorted(set(tallies["action"])):
            add(action, 0, tallies[tallies["action"] == action],
                predicted[predicted["action"] == action])  # fmt: skip
    if "decile" in strata:
        for decile in sorted(set(tallies["decile"])):
            add("all", int(decile), tallies[tallies["decile"] == decile],
                predicted[predicted["decile"] == decile])  # fmt: skip
    add("all", 0, tallies, predicted)
    return pd.DataFrame.from_records(records, columns=list(EFFECT_COLUMNS))


def _mean(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce")
    return float(values.mean()) if values.notna().any() else math.nan
