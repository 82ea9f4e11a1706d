"""Reasons in plain words: the strongest contributions towards churn, with the customer's numbers.

Each customer's contributions (log-odds scale, from the churn model) are ranked; the features
pushing *towards* churn most become phrases such as "no purchase for 94 days; usually buys every
21". Features that describe the same thing (the recency and the usual gap) share one phrase, so
three reasons say three different things.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

__all__ = ["phrase", "phrases", "reason_features", "top_reasons"]

# Features folded into one phrase: the first name of each group speaks for the others.
GROUPS = (
    ("recency_days", "purchase_gap_mean_days", "overdue_ratio", "btyd_recency", "btyd_T"),
    ("frequency", "btyd_frequency"),
    ("monetary_mean", "btyd_monetary_value"),
)
GROUP_OF = {name: group[0] for group in GROUPS for name in group}

LABELS = {
    "support_tickets": "support tickets",
    "complaints": "complaints",
    "web_visits": "web visits",
    "app_logins": "app logins",
    "email_opens": "email opens",
    "email_clicks": "email clicks",
    "campaign_contacts": "campaign contacts",
    "orders": "orders",
    "spend": "spend",
}
EVENTS = {
    "support_ticket": "support ticket",
    "complaint": "complaint",
    "web_visit": "web visit",
    "app_login": "app login",
    "email_open": "email opened",
    "email_click": "email clicked",
    "campaign_contact": "campaign contact",
    "survey": "survey answered",
}


def _number(value: float, decimals: int = 0) -> str:
    return f"{value:,.{decimals}f}"


def _recency(row: Mapping) -> str:
    days, gap = row.get("recency_days"), row.get("purchase_gap_mean_days")
    if not _known(days):
        return "no purchase yet"
    text = f"no purchase for {_number(days)} days"
    if _known(gap) and gap > 0:
        text += f"; usually buys every {_number(gap)}"
    return text


def _known(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


SPECIAL: dict[str, Callable[[Mapping], str]] = {
    "recency_days": _recency,
    "frequency": lambda row: f"{_number(row['frequency'])} purchases in total",
    "monetary_total": lambda row: f"net spend to date {_number(row['monetary_total'], 2)}",
    "monetary_mean": lambda row: f"average order {_number(row['monetary_mean'], 2)}",
    "return_share": lambda row: f"returns {row['return_share']:.0%} of orders",
    "returns_count": lambda row: f"{_number(row['returns_count'])} returns",
    "spend_trend_90d": lambda row: (
        "no spend in the previous 90 days to compare"
        if not _known(row["spend_trend_90d"])
        else f"spend in the last 90 days at {row['spend_trend_90d']:.0%} of the 90 before"
    ),
    "survey_score_mean": lambda row: (
        "no survey answer"
        if not _known(row["survey_score_mean"])
        else f"survey score {row['survey_score_mean']:.1f}"
    ),  # fmt: skip
    "days_since_first_purchase": lambda row: (
        f"first purchase {_number(row['days_since_first_purchase'])} days ago"
    ),
    "tenure_days": lambda row: f"customer for {_number(row['tenure_days'])} days",
    "purchase_gap_std_days": lambda row: (
        f"irregular buying: gaps vary by about {_number(row['purchase_gap_std_days'])} days"
    ),
    "distinct_categories": lambda row: f"buys in {_number(row['distinct_categories'])} categories",
    "distinct_channels": lambda row: f"buys through {_number(row['distinct_channels'])} channels",
    "acquisition_channel": lambda row: f"acquired through {row['acquisition_channel']}",
    "acquisition_cost": lambda row: f"acquisition cost {_number(row['acquisition_cost'], 2)}",
    "region": lambda row: f"region {row['region']}",
}
WINDOW = re.compile(r"^(?P<what>[a-z_]+)_(?P<days>\d+)d$")
SINCE = re.compile(r"^days_since_(?P<what>[a-z_]+)$")


NEEDS = {"recency_days": ("recency_days", "purchase_gap_mean_days")}
#: Phrases that read their numbers only as whole numbers (``_number(value)``), whether they are
#: known, and whether they are above 0: rows alike in those get the same phrase.
WHOLE_NUMBERS = {"recency_days"}


def phrase(feature: str, row: dict) -> str:
    """The customer's value of ``feature`` in plain words (``row`` maps feature names to values)."""
    if feature in SPECIAL:
        return SPECIAL[feature](row)
    value = row.get(feature)
    if (match := WINDOW.match(feature)) is not None:
        what, days = match["what"], match["days"]
        label = LABELS.get(what, what.replace("_", " "))
        amount = _number(value, 2 if what == "spend" else 0) if _known(value) and value else "no"
        return f"{amount} {label} in the last {days} days"
    if (match := SINCE.match(feature)) is not None:
        event = EVENTS.get(match["what"], match["what"].replace("_", " "))
        return f"no {event} yet" if not _known(value) else f"last {event} {_number(value)} days ago"
    shown = _number(value, 2) if isinstance(value, int | float) and _known(value) else value
    return f"{feature.replace('_', ' ')} {shown}"


def phrases(feature: str, features: pd.DataFrame) -> list[str]:
    """:func:`phrase` of ``feature`` for every row of ``features`` (reading only what it needs)."""
    return _phrase_array(feature, features).tolist()


def _phrase_array(feature: str, features: pd.DataFrame) -> np.ndarray:
    """:func:`phrases` as an object array, each distinct combination of values phrased once.

    Values are told apart exactly (numbers by their bits, so ``-0.0`` is not ``0.0``): every
    row gets the phrase :func:`phrase` gives its own values.
    """
    needed = [name for name in NEEDS.get(feature, (feature,)) if name in features.columns]
    alike = _whole_codes if feature in WHOLE_NUMBERS else _exact_codes
    codes = np.zeros(len(features), dtype=np.int64)
    for name in needed:
        column_codes, count = alike(features[name])
        codes, _ = pd.factorize(codes * count + column_codes)
    _, first = np.unique(codes, return_index=True)  # factorized: code i first appears at first[i]
    columns = [features[name].iloc[first].astype(object).to_numpy() for name in needed]
    rows = zip(*columns, strict=True) if columns else [()] * len(first)
    texts = [phrase(feature, dict(zip(needed, values, strict=True))) for values in rows]
    return np.asarray(texts, dtype=object)[codes]


def _exact_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Codes ``0 .. count - 1`` of the distinct values of ``column`` (missing values included)."""
    if pd.api.types.is_float_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan).view(np.int64)
    else:
        values = column.astype(object).to_numpy()
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.int64), max(len(uniques), 1)


def _whole_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Codes of a number column's values as whole numbers (``f"{value:,.0f}"`` rounds the exact
    value half to even, as ``rint`` does; the sign of a zero kept), known or not, above 0 or
    not; other columns as :func:`_exact_codes`."""
    if not pd.api.types.is_float_dtype(column.dtype):
        return _exact_codes(column)
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    whole = np.rint(values).view(np.int64)
    whole = np.where(np.isnan(values), np.int64(0x7FF8000000000000), whole)  # one missing code
    whole_codes, _ = pd.factorize(whole)
    codes, uniques = pd.factorize(whole_codes.astype(np.int64) * 2 + (values > 0))
    return codes.astype(np.int64), max(len(uniques), 1)


def _empty(rows: int) -> np.ndarray:
    return np.full(rows, "", dtype=object)


def _group_sums(shap: pd.DataFrame, groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the sum of each group's contributions: group names (in order of first
    appearance) and an array ``(rows, groups)``.

    Equal, bit for bit, to ``shap.T.groupby(groups, sort=False).sum().T`` (which adds up with
    Kahan's compensated summation, reproduced here column by column) without transposing a
    frame of a million columns; non-finite contributions go through pandas itself.
    """
    values = shap.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        grouped = shap.T.groupby(groups, sort=False).sum().T
        return grouped.columns.to_numpy(dtype=object), grouped.to_numpy(dtype=np.float64)
    names = list(dict.fromkeys(groups))
    sums = np.empty((len(values), len(names)), order="F")
    for position, name in enumerate(names):
        members = [values[:, i] for i, group in enumerate(groups) if group == name]
        total = 0.0 + members[0]  # as pandas: from 0.0, so -0.0 becomes 0.0
        compensation = (total - 0.0) - members[0]
        for column in members[1:]:
            y = column - compensation
            t = total + y
            compensation = (t - total) - y
            total = t
        sums[:, position] = total
    return np.asarray(names, dtype=object), sums


def _strongest(values: np.ndarray, count: int) -> np.ndarray:
    """Column positions of the ``count`` largest values of each row, largest first, ties in
    column order: the first ``count`` columns of a stable argsort of ``-values``."""
    count = min(count, values.shape[1])
    if not np.isfinite(values).all():
        return np.argsort(-values, axis=1, kind="stable")[:, :count]
    left = np.array(values, order="C")  # rows contiguous for argmax along them
    order = np.empty((len(values), count), dtype=np.intp)
    for k in range(count):  # argmax takes the first of equal values, as a stable sort does
        order[:, k] = np.argmax(left, axis=1)
        np.put_along_axis(left, order[:, k : k + 1], -np.inf, axis=1)
    return order


def reason_features(contributions: pd.DataFrame, count: int = 3) -> np.ndarray:
    """Per row, up to ``count`` features pushing towards churn, strongest first, one per group.

    Contributions of features in one group (e.g. recency and the usual purchase gap) are added
    up and the group speaks with its first feature's phrase. Returns an object array of shape
    ``(rows, count)`` holding feature names, ``""`` where fewer features push towards churn.
    """
    shap = contributions.drop(columns=["bias"], errors="ignore")
    groups = [GROUP_OF.get(name, name) for name in shap.columns]
    names, values = _group_sums(shap, groups)
    order = _strongest(values, count)
    chosen = names[order]
    towards_churn = np.take_along_axis(values, order, axis=1) > 0
    return np.where(towards_churn, chosen, "")


def top_reasons(
    contributions: pd.DataFrame, features: pd.DataFrame, count: int = 3
) -> tuple[pd.DataFrame, pd.Series]:
    """``reason_1 .. reason_<count>`` phrases and the feature behind each first reason.

    Parameters
    ----------
    contributions : DataFrame
        SHAP contributions towards churn (log-odds), one column per feature plus ``bias``.
    features : DataFrame
        The customers' feature values, indexed like ``contributions``.
    count : int, default=3
        Reasons per customer; missing ones are empty strings.
    """
    chosen = reason_features(contributions, count)
    reasons = {}
    for k in range(chosen.shape[1]):
        texts = _empty(len(features))
        codes, named = pd.factorize(chosen[:, k])
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(named) + 1))
        for code, feature in enumerate(named):
            if feature:
                rows = order[bounds[code] : bounds[code + 1]]
                texts[rows] = _phrase_array(feature, _rows(features, feature, rows))
        reasons[f"reason_{k + 1}"] = texts
    for k in range(chosen.shape[1], count):
        reasons[f"reason_{k + 1}"] = _empty(len(features))
    frame = pd.DataFrame(reasons, index=features.index)
    return frame, pd.Series(chosen[:, 0] if count else "", index=features.index)


def _rows(features: pd.DataFrame, feature: str, rows: np.ndarray) -> pd.DataFrame:
    """The rows of the columns the phrase of ``feature`` reads."""
    needed = [name for name in NEEDS.get(feature, (feature,)) if name in features.columns]
    return features[needed].iloc[rows]
